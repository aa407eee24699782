/* ee_audit_cnn: what a worker learns about the image from the encrypted
 * feature map of an eecnn classifier (ee-cnn-v1; issue 13, docs/SECURITY.md).
 *
 * The client runs the plaintext stem and sends
 *     fmap'[j] = s0[j] * relu(conv0(x) + b0)[perm0[j]]      (s0[j] > 0)
 * The image x is the secret. Two inversions, each given only what its
 * adversary holds (never the key, the labels or the images):
 *
 *   A  a worker without the public weights (private weights, or anyone who
 *      sees the traffic): "channel mean". Each channel of the map is
 *      divided by its own maximum over the image, which removes its unknown
 *      scale (an all-zero channel contributes nothing), and the channels
 *      are averaged (or their maximum taken) into an h x w picture.
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
    EE_CNN_INV_A_MEAN, /* average of the max-normalised channels */
    EE_CNN_INV_A_MAX,  /* per pixel, the largest max-normalised channel */
} ee_cnn_inv_a_mode;

/* Attack A. enc: the encrypted model (for its shape only); efmaps [n][fmap
 * len] as the worker receives them; out [n][h * w] pictures in arbitrary
 * units (>= 0; all zero for an all-zero map). */
int ee_cnn_invert_a(const ee_cnn_model *enc, const float *efmaps, int n, ee_cnn_inv_a_mode mode,
                    float *out, ee_err *err);

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
    /* B, checked against the key's secrets */
    double perm0_correct, perm1_correct; /* fractions */
    double scale0_err;        /* max relative error of s0 after the best common factor */
    int rank_deficient;       /* images whose system was not of full rank */
    ee_cnn_recovered rec;     /* what B recovered (zeroed when B did not run) */
    double seconds_recover;   /* B steps 1-2 (in b.seconds too) */
    /* The reconstructions, for looking at them: [n][image_len] (true) and
     * [n][h * w] (A) / [n][image_len] (B; NULL when B did not run). */
    float *images, *recon_a_mean, *recon_a_max, *recon_b;
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
