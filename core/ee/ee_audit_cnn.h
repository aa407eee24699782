/* ee_audit_cnn: what a worker learns about the image from the encrypted
 * feature map of an eecnn classifier (ee-cnn-v1; issue 13, docs/SECURITY.md).
 *
 * The client runs the plaintext stem and sends
 *     fmap'[j] = s0[j] * relu(conv0(x) + b0)[perm0[j]]      (s0[j] > 0)
 * The image x is the secret. Two inversions, each given only what its
 * adversary holds (never the key, the labels or the images):
 *
 *   A  a worker without the public weights (private weights, or anyone who
 *      sees the traffic). From one map alone:
 *        "channel mean" / "channel max": each channel divided by its own
 *          maximum over the image, which removes its unknown scale (an
 *          all-zero channel contributes nothing), averaged (or their
 *          maximum taken) into an h x w picture;
 *        "aligned mean": each channel min-max normalised (scale- and
 *          offset-free), its polarity aligned to the consensus (a channel
 *          that correlates negatively with the mean picture enters as
 *          1 - v; three rounds), averaged with weights its contrast (the
 *          standard deviation of the normalised channel);
 *        "deconvolution": the map IS relu(w_c * x + b_c) with unknown k x k
 *          filters w_c and biases b_c (the key's positive scale s0 folds
 *          into them; the permutation does not matter), so the filters and
 *          the image are fitted jointly by alternating least squares
 *          (filters with the picture fixed, then the picture; a zero entry
 *          counts only where the fit puts it above 0), started from the
 *          aligned mean, every channel first divided by its RMS (else the
 *          key's scales would weight the channels: the result is the same
 *          for every key).
 *      From the n maps a worker intercepts (same key: every channel keeps
 *      its filter, scale and position across maps); never labels, images
 *      or weights:
 *        "pooled PC": each channel standardised over all maps, the first
 *          principal component of the channel vectors of all pixels of all
 *          maps, each pixel projected on it;
 *        "deconvolution from n maps": as above, one set of filters shared
 *          by all maps, started from the pooled PC.
 *      The deconvolution assumes the stem's kernel is as large as block
 *      1's (which the encrypted file shows), stride 1, "same" zero
 *      padding, one grey input channel (exact for in_c = 1). Its fit is
 *      determined only up to x -> a x + d, which the correlation ignores,
 *      and its sign is the start's.
 *
 *   B  a worker that also holds the public plaintext weights, stem
 *      included:
 *        1. perm0, perm1: each 3x3 kernel W1'[j][i] of the encrypted block 1
 *           is W1[perm1 j][perm0 i] times s1[j] / s0[i] > 0, so its
 *           direction is the public kernel's. Encrypted input channel i is
 *           matched to public input channel c by how well its kernels'
 *           directions find partners among c's (sum over output channels
 *           of 1 - the best cosine), one linear assignment; then output
 *           channels the same way with perm0 known;
 *        2. scales: log(|W1'[j][i]| / |W1[perm1 j][perm0 i]|)
 *           = log s1[j] - log s0[i], least squares: s0 up to one common
 *           factor g;
 *        3. per image: the map un-permuted and divided by the recovered
 *           scales is g * relu(conv0(x) + b0); every positive entry is one
 *           linear equation conv0(x)[c,p] + b0[c] = u * map[c,p] in the
 *           pixels x and u = 1/g, solved by linear least squares (LAPACK
 *           dgelsd through ee_lstsq). Nothing is clamped.
 *
 * The harness (ee_audit_cnn_run) is the model owner's side: it holds the
 * key and a test set, produces exactly the feature maps a client would
 * send (plaintext stem, ee_cnn_fmap_encrypt), hands them to the attacks
 * and scores what comes back. */
#ifndef EE_AUDIT_CNN_H
#define EE_AUDIT_CNN_H

#include "ee_cnn.h"
#include "ee_error.h"
#include "ee_key.h"

#include <stdbool.h>

/* ---- the adversaries ------------------------------------------------------ */

typedef enum ee_cnn_inv_a_mode {
    EE_CNN_INV_A_MEAN,    /* average of the max-normalised channels */
    EE_CNN_INV_A_MAX,     /* per pixel, the largest max-normalised channel */
    EE_CNN_INV_A_ALIGNED, /* min-max normalised, polarity-aligned, contrast-weighted mean */
} ee_cnn_inv_a_mode;

/* Attack A from one map at a time. enc: the encrypted model (for its shape
 * only); efmaps [n][fmap len] as the worker receives them, each inverted
 * on its own; out [n][h * w] pictures in arbitrary units (>= 0; all zero
 * for an all-zero map; ALIGNED: stretched to [0, 1]). */
int ee_cnn_invert_a(const ee_cnn_model *enc, const float *efmaps, int n, ee_cnn_inv_a_mode mode,
                    float *out, ee_err *err);

/* Attack A "pooled PC" from all n maps together (one key): out [n][h * w]
 * each stretched to [0, 1] (0 for a flat one). Its sign: the one that
 * correlates positively with the channel-mean pictures of the same maps. */
int ee_cnn_invert_a_pc(const ee_cnn_model *enc, const float *efmaps, int n, float *out,
                       ee_err *err);

/* What the deconvolution's fit says, without the key or the images. */
typedef struct ee_cnn_deconv_info {
    int iterations;    /* rounds, the largest over the fits */
    /* Relative misfit sqrt(sum (relu(w * x + b) - map)^2 / sum map^2) of the
     * RMS-normalised maps (0: the maps are explained exactly), the median
     * and the largest over the fits. */
    double resid, resid_max;
} ee_cnn_deconv_info;

/* Attack A "deconvolution": start [n][h * w] the starting pictures (any
 * scale and offset; their polarity is kept); joint: false fits every map
 * on its own (its own filters: one map), true all n with one set of
 * filters (n intercepted maps). out [n][h * w] stretched to [0, 1]; out
 * may be start. info may be NULL. */
int ee_cnn_invert_a_deconv(const ee_cnn_model *enc, const float *efmaps, int n,
                           const float *start, bool joint, float *out, ee_cnn_deconv_info *info,
                           ee_err *err);

/* What attack B reads from the weights (steps 1 and 2). */
typedef struct ee_cnn_recovered {
    int c0, c1;         /* stem and block-1 channels */
    int *perm0;         /* [c0] encrypted stem channel i holds public channel perm0[i] */
    int *perm1;         /* [c1] encrypted block-1 channel j holds public channel perm1[j] */
    double *s0;         /* [c0] its scale, up to one common factor (geometric mean 1) */
    double *s1;         /* [c1] block-1 scales, the same factor */
    /* Confidence the attacker sees without the key: an assignment is
     * unambiguous when its cost is below a quarter of the row's next best. */
    double perm0_sure, perm1_sure; /* fractions of channels */
    double perm0_cost;  /* mean matched cost per kernel (0: exact directions) */
    double scale_rms;   /* RMS residual of the log-scale fit (0: consistent) */
} ee_cnn_recovered;

/* Attack B steps 1-2: enc (encrypted, no stem) and pub (plaintext, same
 * shape). Fails on other shapes. */
int ee_cnn_recover(const ee_cnn_model *enc, const ee_cnn_model *pub, ee_cnn_recovered *r,
                   ee_err *err);
void ee_cnn_recovered_free(ee_cnn_recovered *r);
/* Attack B step 3: images [n][image len] from efmaps [n][fmap len]. rank
 * (may be NULL) [n] receives each system's numerical rank (full: image
 * len + 1). */
int ee_cnn_invert_b(const ee_cnn_model *pub, const ee_cnn_recovered *r, const float *efmaps,
                    int n, float *images, int *rank, ee_err *err);

/* ---- the harness ------------------------------------------------------------ */

typedef struct ee_audit_cnn_score {
    bool ran;
    double corr_median, corr_p10; /* per-image Pearson correlation with the true image */
    double max_abs_err;           /* over all pixels (B: raw output; A: scaled to [0, 1]) */
    double accuracy;              /* plaintext model's accuracy on the reconstructions */
    double seconds;               /* the attack's own time, all images */
} ee_audit_cnn_score;

typedef struct ee_audit_cnn_result {
    int n, image_len, h, w, c0, c1, n_class;
    double acc_true;          /* plaintext model on the true images */
    double acc_chance;        /* 1 / classes */
    double acc_majority;      /* share of the most frequent label */
    ee_audit_cnn_score a_mean, a_max, b;
    /* A, the stronger variants: from one map (aligned mean, deconvolution)
     * and from all n maps of the test set (pooled PC, deconvolution). */
    ee_audit_cnn_score a_aligned, a_deconv1, a_pc, a_deconvn;
    ee_cnn_deconv_info deconv1, deconvn;
    /* B, checked against the key's secrets */
    double perm0_correct, perm1_correct; /* fractions */
    double scale0_err;        /* max relative error of s0 after the best common factor */
    int rank_deficient;       /* images whose system was not of full rank */
    ee_cnn_recovered rec;     /* what B recovered (zeroed when B did not run) */
    double seconds_recover;   /* B steps 1-2 (in b.seconds too) */
    /* The reconstructions, for looking at them: [n][image_len] (true) and
     * [n][h * w] (A) / [n][image_len] (B; NULL when B did not run). */
    float *images, *recon_a_mean, *recon_a_max, *recon_b;
    float *recon_a_aligned, *recon_a_deconv1, *recon_a_pc, *recon_a_deconvn; /* [n][h * w] */
} ee_audit_cnn_result;

/* enc: the encrypted file's model; pub: the public weights (NULL: attack
 * A only); plain: the model enc was encrypted from (its stem is the
 * client's); key: the scheme key bound to plain (ee_scheme_key);
 * images [n][image len] and labels [n] (class indices) a test set.
 * The attacks get enc, pub and the encrypted maps only. */
int ee_audit_cnn_run(const ee_cnn_model *enc, const ee_cnn_model *pub, const ee_cnn_model *plain,
                     const ee_key *key, const float *images, const float *labels, int n,
                     ee_audit_cnn_result *res, ee_err *err);
void ee_audit_cnn_result_free(ee_audit_cnn_result *res);

#endif
