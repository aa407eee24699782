/* See ee_audit_cnn.h: the two inversions of the encrypted feature map of
 * an eecnn classifier, and the harness that scores them.
 *
 * The adversaries' functions (sections 1-2) take the models and the maps
 * only; the key, the images and the labels appear in section 3 alone. */
#include "ee_audit_cnn.h"

#include "ee_clock.h"
#include "ee_cnn_cipher.h"
#include "ee_lap.h"
#include "ee_linalg.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SURE_RATIO 0.25   /* an assignment is unambiguous below a quarter of the next best */
#define TINY_NORM 1e-30   /* a kernel this small has no direction */
#define LSTSQ_RCOND 1e-10 /* singular values below this x the largest count as zero */

static double dot(const double *a, const double *b, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

static int cmp_double(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

/* ---- 1. attack A: no weights ------------------------------------------------ */

#define ALIGN_ROUNDS 3      /* polarity-alignment rounds of the aligned mean */
#define PC_POWER_ITERS 5000 /* power iterations for the first principal component */
#define DECONV_ITERS 200    /* alternating least-squares rounds at most */
#define DECONV_TOL 1e-5     /* stop when the misfit improves by less than this, relative */
#define DECONV_HINGE 2      /* filter solves a round (violated zeros from the latest filters) */

/* p[n] -> (p - min) / (max - min); a flat picture -> 0. */
static void stretch01(float *p, int n) {
    float lo = p[0], hi = p[0];
    for (int i = 1; i < n; i++) lo = p[i] < lo ? p[i] : lo, hi = p[i] > hi ? p[i] : hi;
    for (int i = 0; i < n; i++) p[i] = hi > lo ? (p[i] - lo) / (hi - lo) : 0;
}

static void stretch01_d(const double *x, float *o, int n) {
    double lo = x[0], hi = x[0];
    for (int i = 1; i < n; i++) lo = fmin(lo, x[i]), hi = fmax(hi, x[i]);
    for (int i = 0; i < n; i++) o[i] = hi > lo && isfinite(hi - lo) ? (float)((x[i] - lo) / (hi - lo)) : 0;
}

/* Covariance of a[n] and b[n] (unnormalised); its sign is the correlation's. */
static double cov_d(const double *a, const double *b, int n) {
    double ma = 0, mb = 0, s = 0;
    for (int i = 0; i < n; i++) ma += a[i], mb += b[i];
    ma /= n, mb /= n;
    for (int i = 0; i < n; i++) s += (a[i] - ma) * (b[i] - mb);
    return s;
}

/* One map e [C][hw] -> o [hw]: min-max normalised channels, polarity
 * aligned to the (weighted) mean, contrast-weighted. v, wt, m: scratch
 * [C][hw], [C], [2 hw]. */
static void aligned_one(const float *e, int C, int hw, double *v, double *wt, double *m,
                        float *o) {
    for (int j = 0; j < C; j++) {
        const float *ch = e + (size_t)j * hw;
        double *vj = v + (size_t)j * hw;
        float lo = ch[0], hi = ch[0];
        for (int p = 1; p < hw; p++) lo = ch[p] < lo ? ch[p] : lo, hi = ch[p] > hi ? ch[p] : hi;
        if (!(hi > lo)) { /* flat: no picture in it */
            wt[j] = 0;
            continue;
        }
        double mu = 0, var = 0;
        for (int p = 0; p < hw; p++) vj[p] = ((double)ch[p] - lo) / ((double)hi - lo), mu += vj[p];
        mu /= hw;
        for (int p = 0; p < hw; p++) var += (vj[p] - mu) * (vj[p] - mu);
        wt[j] = sqrt(var / hw);
    }
    /* The start: the plain sum of the normalised channels (only the signs
     * of covariances with it matter). */
    int used = 0;
    for (int p = 0; p < hw; p++) m[p] = 0;
    for (int j = 0; j < C; j++)
        if (wt[j] > 0) {
            used++;
            for (int p = 0; p < hw; p++) m[p] += v[(size_t)j * hw + p];
        }
    if (!used) {
        memset(o, 0, sizeof(float) * (size_t)hw);
        return;
    }
    double *acc = m + hw;
    for (int round = 0; round < ALIGN_ROUNDS; round++) {
        double tw = 0;
        for (int p = 0; p < hw; p++) acc[p] = 0;
        for (int j = 0; j < C; j++) {
            if (!(wt[j] > 0)) continue;
            const double *vj = v + (size_t)j * hw;
            const bool flip = cov_d(vj, m, hw) < 0;
            for (int p = 0; p < hw; p++) acc[p] += wt[j] * (flip ? 1 - vj[p] : vj[p]);
            tw += wt[j];
        }
        for (int p = 0; p < hw; p++) m[p] = acc[p] / tw;
    }
    stretch01_d(m, o, hw);
}

int ee_cnn_invert_a(const ee_cnn_model *enc, const float *efmaps, int n, ee_cnn_inv_a_mode mode,
                    float *out, ee_err *err) {
    if (mode != EE_CNN_INV_A_MEAN && mode != EE_CNN_INV_A_MAX && mode != EE_CNN_INV_A_ALIGNED)
        return ee_err_set(err, "unknown channel-mean mode %d", (int)mode);
    const int C = ee_cnn_fmap_channels(enc), hw = enc->hp.in_h * enc->hp.in_w;
    if (mode == EE_CNN_INV_A_ALIGNED) {
        double *v = malloc(sizeof(double) * (size_t)C * hw), *wt = malloc(sizeof(double) * C);
        double *m = malloc(sizeof(double) * 2 * (size_t)hw);
        if (!v || !wt || !m) {
            free(v), free(wt), free(m);
            return ee_err_set(err, "out of memory");
        }
        for (int im = 0; im < n; im++)
            aligned_one(efmaps + (size_t)im * C * hw, C, hw, v, wt, m, out + (size_t)im * hw);
        free(v), free(wt), free(m);
        return 0;
    }
    for (int im = 0; im < n; im++) {
        const float *e = efmaps + (size_t)im * C * hw;
        float *o = out + (size_t)im * hw;
        memset(o, 0, sizeof(float) * (size_t)hw);
        for (int j = 0; j < C; j++) {
            const float *ch = e + (size_t)j * hw;
            float mx = 0;
            for (int p = 0; p < hw; p++)
                if (ch[p] > mx) mx = ch[p];
            if (!(mx > 0)) continue; /* an all-zero channel says nothing */
            for (int p = 0; p < hw; p++) {
                float v = ch[p] / mx;
                if (mode == EE_CNN_INV_A_MEAN)
                    o[p] += v / (float)C;
                else if (v > o[p])
                    o[p] = v;
            }
        }
    }
    return 0;
}

int ee_cnn_invert_a_pc(const ee_cnn_model *enc, const float *efmaps, int n, float *out,
                       ee_err *err) {
    const int C = ee_cnn_fmap_channels(enc), hw = enc->hp.in_h * enc->hp.in_w;
    const size_t npix = (size_t)n * hw;
    if (n < 1) return 0;
    double *mu = calloc((size_t)C, sizeof(double)), *sd = calloc((size_t)C, sizeof(double));
    double *S = calloc((size_t)C * C, sizeof(double)), *v = malloc(sizeof(double) * C);
    double *u = malloc(sizeof(double) * C), *z = malloc(sizeof(double) * C);
    float *ref = malloc(sizeof(float) * npix);
    int rc = -1;
    if (!mu || !sd || !S || !v || !u || !z || !ref) {
        ee_err_set(err, "out of memory");
        goto done;
    }
    /* Every channel's mean and spread over all pixels of all maps: its
     * scale is the same in every map (one key). */
    for (int im = 0; im < n; im++)
        for (int j = 0; j < C; j++)
            for (int p = 0; p < hw; p++) mu[j] += efmaps[((size_t)im * C + j) * hw + p];
    for (int j = 0; j < C; j++) mu[j] /= (double)npix;
    for (int im = 0; im < n; im++)
        for (int j = 0; j < C; j++)
            for (int p = 0; p < hw; p++) {
                double d = efmaps[((size_t)im * C + j) * hw + p] - mu[j];
                sd[j] += d * d;
            }
    for (int j = 0; j < C; j++) sd[j] = sqrt(sd[j] / (double)npix);
    /* Covariance of the standardised channels (a flat channel: 0). */
    for (int im = 0; im < n; im++)
        for (int p = 0; p < hw; p++) {
            for (int j = 0; j < C; j++)
                z[j] = sd[j] > 0 ? (efmaps[((size_t)im * C + j) * hw + p] - mu[j]) / sd[j] : 0;
            for (int j = 0; j < C; j++)
                for (int k = 0; k < C; k++) S[(size_t)j * C + k] += z[j] * z[k];
        }
    /* Its leading eigenvector by power iteration from the plain mean. */
    for (int j = 0; j < C; j++) v[j] = 1 / sqrt((double)C);
    for (int it = 0; it < PC_POWER_ITERS; it++) {
        double nn = 0, dd = 0;
        for (int j = 0; j < C; j++) {
            u[j] = dot(S + (size_t)j * C, v, C);
            nn += u[j] * u[j];
        }
        nn = sqrt(nn);
        if (!(nn > 0)) break; /* every channel flat */
        for (int j = 0; j < C; j++) u[j] /= nn, dd = fmax(dd, fabs(u[j] - v[j])), v[j] = u[j];
        if (dd < 1e-14) break;
    }
    /* Projections, signed to agree with the channel mean. */
    if (ee_cnn_invert_a(enc, efmaps, n, EE_CNN_INV_A_MEAN, ref, err)) goto done;
    double agree = 0, mp = 0, mr = 0;
    for (int im = 0; im < n; im++)
        for (int p = 0; p < hw; p++) {
            double s = 0;
            for (int j = 0; j < C; j++)
                if (sd[j] > 0) s += v[j] * (efmaps[((size_t)im * C + j) * hw + p] - mu[j]) / sd[j];
            out[(size_t)im * hw + p] = (float)s;
            mp += s, mr += ref[(size_t)im * hw + p];
        }
    mp /= (double)npix, mr /= (double)npix;
    for (size_t q = 0; q < npix; q++) agree += (out[q] - mp) * (ref[q] - mr);
    for (int im = 0; im < n; im++) {
        float *o = out + (size_t)im * hw;
        if (agree < 0)
            for (int p = 0; p < hw; p++) o[p] = -o[p];
        stretch01(o, hw);
    }
    rc = 0;
done:
    free(mu), free(sd), free(S), free(v), free(u), free(z), free(ref);
    return rc;
}

/* Solves S z = r for symmetric positive semi-definite S [n][n] (both
 * overwritten) by Cholesky after adding RIDGE x its mean diagonal to the
 * diagonal: an unknown no equation touches comes out 0. */
#define RIDGE 1e-10
static void solve_psd(double *S, double *r, int n, double *z) {
    double tr = 0;
    for (int i = 0; i < n; i++) tr += S[(size_t)i * n + i];
    const double lam = tr > 0 ? RIDGE * tr / n : 1;
    for (int i = 0; i < n; i++) S[(size_t)i * n + i] += lam;
    for (int j = 0; j < n; j++) { /* S = L L^T, L in the lower triangle */
        double d = S[(size_t)j * n + j];
        for (int t = 0; t < j; t++) d -= S[(size_t)j * n + t] * S[(size_t)j * n + t];
        d = d > lam * 1e-6 ? sqrt(d) : sqrt(lam); /* rounding can only make a semi-definite S worse */
        S[(size_t)j * n + j] = d;
        for (int i = j + 1; i < n; i++) {
            double v = S[(size_t)i * n + j];
            for (int t = 0; t < j; t++) v -= S[(size_t)i * n + t] * S[(size_t)j * n + t];
            S[(size_t)i * n + j] = v / d;
        }
    }
    for (int i = 0; i < n; i++) { /* L y = r */
        double v = r[i];
        for (int t = 0; t < i; t++) v -= S[(size_t)i * n + t] * z[t];
        z[i] = v / S[(size_t)i * n + i];
    }
    for (int i = n - 1; i >= 0; i--) { /* L^T z = y */
        double v = z[i];
        for (int t = i + 1; t < n; t++) v -= S[(size_t)t * n + i] * z[t];
        z[i] = v / S[(size_t)i * n + i];
    }
}

/* Scratch of the blind deconvolution: the model is
 *     map[c][p] = relu(w_c . patch_p(x) + b_c),  w_c k x k,
 * with the key's scale folded into w_c and b_c. */
typedef struct deconv_ws {
    int C, h, w, k;
    double *F;           /* [G][C][hw] the maps, each channel divided by its RMS over the group */
    double *W;           /* [C][kk + 1] filters and biases */
    double *S, *r;       /* normal equations, up to [hw][hw] and [hw] */
    double *patch;       /* [kk + 1] */
    int *idx;            /* [kk] pixel of each tap (-1 outside) */
} deconv_ws;

/* The pixels under the k x k window at (y, xx) (-1: zero padding) and, if
 * x, the patch [kk + 1] of x there (then 1 for the bias). */
static void window(const deconv_ws *ws, const double *x, int y, int xx) {
    const int k = ws->k, pad = k / 2;
    for (int dy = 0; dy < k; dy++)
        for (int dx = 0; dx < k; dx++) {
            int iy = y + dy - pad, ix = xx + dx - pad, q = dy * k + dx;
            ws->idx[q] = iy >= 0 && iy < ws->h && ix >= 0 && ix < ws->w ? iy * ws->w + ix : -1;
            if (x) ws->patch[q] = ws->idx[q] >= 0 ? x[ws->idx[q]] : 0;
        }
    if (x) ws->patch[k * k] = 1;
}

/* Alternating least squares on the G maps in ws->F, x [G][hw] the start
 * (refined in place). Every positive entry is an equation w_c . patch +
 * b_c = map; a zero entry the current fit puts above 0 one with 0 (ReLU:
 * a zero says only "at most 0"). Solved for the filters with x fixed, then
 * for x with the filters fixed, until the misfit stops improving. */
static void deconv_group(deconv_ws *ws, int G, double *x, int *iters, double *resid) {
    const int C = ws->C, h = ws->h, w = ws->w, hw = h * w, k = ws->k, kk = k * k, np1 = kk + 1;
    const size_t gp = (size_t)G * hw;
    const double *F = ws->F;
    double prev = INFINITY, res = 0, fss = 0;
    bool have_w = false;
    for (size_t q = 0; q < (size_t)G * C * hw; q++) fss += F[q] * F[q];
    *iters = 0;
    if (!(fss > 0)) { /* all-zero maps: nothing to fit */
        *resid = 0;
        return;
    }
    for (int it = 0; it < DECONV_ITERS; it++) {
        /* x -> a x + d is free: pin it (zero mean, unit spread over the group). */
        double mx = 0, vx = 0;
        for (size_t q = 0; q < gp; q++) mx += x[q];
        mx /= (double)gp;
        for (size_t q = 0; q < gp; q++) vx += (x[q] - mx) * (x[q] - mx);
        vx = sqrt(vx / (double)gp);
        if (!(vx > 0) || !isfinite(vx)) break; /* a flat start: nothing to refine */
        for (size_t q = 0; q < gp; q++) x[q] = (x[q] - mx) / vx;
        /* The filters, x fixed; the zeros above 0 from the latest filters. */
        for (int c = 0; c < C; c++) {
            double *wc = ws->W + (size_t)c * np1;
            for (int pass = 0; pass < DECONV_HINGE; pass++) {
                const bool hinge = have_w || pass > 0;
                int rows = 0;
                memset(ws->S, 0, sizeof(double) * np1 * np1);
                memset(ws->r, 0, sizeof(double) * np1);
                for (int g = 0; g < G; g++)
                    for (int p = 0; p < hw; p++) {
                        const double f = F[((size_t)g * C + c) * hw + p];
                        window(ws, x + (size_t)g * hw, p / w, p % w);
                        if (!(f > 0) && !(hinge && dot(wc, ws->patch, np1) > 0)) continue;
                        rows++;
                        for (int a = 0; a < np1; a++) {
                            ws->r[a] += ws->patch[a] * f;
                            for (int b = 0; b <= a; b++)
                                ws->S[a * np1 + b] += ws->patch[a] * ws->patch[b];
                        }
                    }
                if (rows == 0) { /* never on: nothing to learn about it */
                    memset(wc, 0, sizeof(double) * np1);
                    break;
                }
                for (int a = 0; a < np1; a++)
                    for (int b = a + 1; b < np1; b++) ws->S[a * np1 + b] = ws->S[b * np1 + a];
                solve_psd(ws->S, ws->r, np1, wc);
            }
        }
        have_w = true;
        /* Each picture, the filters fixed: the same equations in x. */
        for (int g = 0; g < G; g++) {
            double *xg = x + (size_t)g * hw;
            memset(ws->S, 0, sizeof(double) * hw * hw);
            memset(ws->r, 0, sizeof(double) * hw);
            int rows = 0;
            for (int c = 0; c < C; c++) {
                const double *wc = ws->W + (size_t)c * np1;
                for (int p = 0; p < hw; p++) {
                    const double f = F[((size_t)g * C + c) * hw + p];
                    window(ws, xg, p / w, p % w);
                    if (!(f > 0) && !(dot(wc, ws->patch, np1) > 0)) continue;
                    rows++;
                    const double t = f - wc[kk];
                    for (int a = 0; a < kk; a++) {
                        const int ia = ws->idx[a];
                        if (ia < 0) continue;
                        ws->r[ia] += wc[a] * t;
                        for (int b = 0; b < kk; b++)
                            if (ws->idx[b] >= 0) ws->S[(size_t)ia * hw + ws->idx[b]] += wc[a] * wc[b];
                    }
                }
            }
            if (rows) solve_psd(ws->S, ws->r, hw, xg);
        }
        /* The misfit the attacker sees: relu(w * x + b) against the maps. */
        double rss = 0;
        for (int g = 0; g < G; g++)
            for (int p = 0; p < hw; p++) {
                window(ws, x + (size_t)g * hw, p / w, p % w);
                for (int c = 0; c < C; c++) {
                    double z = dot(ws->W + (size_t)c * np1, ws->patch, np1);
                    double d = (z > 0 ? z : 0) - F[((size_t)g * C + c) * hw + p];
                    rss += d * d;
                }
            }
        res = sqrt(rss / fss);
        *iters = it + 1;
        if (prev - res < DECONV_TOL * prev) break;
        prev = res;
    }
    *resid = res;
}

int ee_cnn_invert_a_deconv(const ee_cnn_model *enc, const float *efmaps, int n,
                           const float *start, bool joint, float *out, ee_cnn_deconv_info *info,
                           ee_err *err) {
    if (info) memset(info, 0, sizeof *info);
    if (n < 1) return 0;
    if (enc->hp.n_block < 2 || enc->blocks[1].k < 1)
        return ee_err_set(err, "the deconvolution needs block 1's kernel size (its guess for "
                               "the stem's)");
    deconv_ws ws = {.C = ee_cnn_fmap_channels(enc), .h = enc->hp.in_h, .w = enc->hp.in_w,
                    .k = enc->blocks[1].k};
    const int C = ws.C, hw = ws.h * ws.w, kk = ws.k * ws.k, np1 = kk + 1, G = joint ? n : 1;
    const int ngroups = joint ? 1 : n, sn = hw > np1 ? hw : np1;
    double *x = malloc(sizeof(double) * (size_t)G * hw);
    double *res = malloc(sizeof(double) * (size_t)ngroups), *rms = malloc(sizeof(double) * C);
    ws.F = malloc(sizeof(double) * (size_t)G * C * hw);
    ws.W = calloc((size_t)C * np1, sizeof(double));
    ws.S = malloc(sizeof(double) * (size_t)sn * sn);
    ws.r = malloc(sizeof(double) * (size_t)sn);
    ws.patch = malloc(sizeof(double) * (size_t)np1);
    ws.idx = malloc(sizeof(int) * (size_t)kk);
    int rc = -1, most = 0;
    if (!x || !res || !rms || !ws.F || !ws.W || !ws.S || !ws.r || !ws.patch || !ws.idx) {
        ee_err_set(err, "out of memory");
        goto done;
    }
    for (int gi = 0; gi < ngroups; gi++) {
        const size_t first = (size_t)gi * G;
        const float *e = efmaps + first * C * hw;
        /* Every channel to unit RMS over the group: the key's scales would
         * otherwise weight the channels in the least squares. */
        for (int c = 0; c < C; c++) rms[c] = 0;
        for (int g = 0; g < G; g++)
            for (int c = 0; c < C; c++)
                for (int p = 0; p < hw; p++) {
                    double v = e[((size_t)g * C + c) * hw + p];
                    rms[c] += v * v;
                }
        for (int c = 0; c < C; c++) rms[c] = sqrt(rms[c] / ((double)G * hw));
        for (int g = 0; g < G; g++)
            for (int c = 0; c < C; c++)
                for (int p = 0; p < hw; p++) {
                    const size_t q = ((size_t)g * C + c) * hw + p;
                    ws.F[q] = rms[c] > 0 ? e[q] / rms[c] : 0;
                }
        for (size_t q = 0; q < (size_t)G * hw; q++) x[q] = start[first * hw + q];
        int it = 0;
        deconv_group(&ws, G, x, &it, &res[gi]);
        most = it > most ? it : most;
        for (int g = 0; g < G; g++)
            stretch01_d(x + (size_t)g * hw, out + (first + g) * hw, hw);
    }
    if (info) {
        qsort(res, (size_t)ngroups, sizeof(double), cmp_double);
        info->iterations = most;
        info->resid = ngroups % 2 ? res[ngroups / 2] : (res[ngroups / 2 - 1] + res[ngroups / 2]) / 2;
        info->resid_max = res[ngroups - 1];
    }
    rc = 0;
done:
    free(x), free(res), free(rms), free(ws.F), free(ws.W), free(ws.S), free(ws.r), free(ws.patch),
        free(ws.idx);
    return rc;
}

/* ---- 2. attack B: the public weights ---------------------------------------- */

void ee_cnn_recovered_free(ee_cnn_recovered *r) {
    free(r->perm0);
    free(r->perm1);
    free(r->s0);
    free(r->s1);
    memset(r, 0, sizeof *r);
}

static int check_shapes(const ee_cnn_model *enc, const ee_cnn_model *pub, ee_err *err) {
    if (enc->hp.client_blocks != 1 || enc->hp.n_block < 2 || !enc->blocks[1].weight)
        return ee_err_set(err, "--model is not an encrypted eecnn file (it should have no stem: "
                               "eecnn.client_blocks = 1)");
    if (pub->hp.client_blocks != 0 || !pub->blocks[0].weight || pub->hp.n_block < 2)
        return ee_err_set(err, "--public has no stem: give the plaintext model");
    const ee_cnn_block *e1 = &enc->blocks[1], *p1 = &pub->blocks[1], *p0 = &pub->blocks[0];
    if (enc->hp.in_c != pub->hp.in_c || enc->hp.in_h != pub->hp.in_h ||
        enc->hp.in_w != pub->hp.in_w || e1->c_in != p1->c_in || e1->c_out != p1->c_out ||
        e1->k != p1->k || p0->c_out != e1->c_in || p0->h != enc->hp.in_h)
        return ee_err_set(err, "--public's shape differs from the encrypted model's (image "
                               "%dx%dx%d vs %dx%dx%d; block 1 %d->%d k%d vs %d->%d k%d)",
                          pub->hp.in_c, pub->hp.in_h, pub->hp.in_w, enc->hp.in_c, enc->hp.in_h,
                          enc->hp.in_w, p1->c_in, p1->c_out, p1->k, e1->c_in, e1->c_out, e1->k);
    return 0;
}

/* Unit directions and norms of every kernel of w [co][ci][kk]. */
static void directions(const float *w, int co, int ci, int kk, double *dir, double *norm) {
    for (size_t q = 0; q < (size_t)co * ci; q++) {
        const float *k = w + q * kk;
        double s = 0;
        for (int t = 0; t < kk; t++) s += (double)k[t] * k[t];
        norm[q] = sqrt(s);
        for (int t = 0; t < kk; t++) dir[q * kk + t] = norm[q] > TINY_NORM ? k[t] / norm[q] : 0;
    }
}

/* Assignment on cost [n][n] -> perm, and the fraction of rows whose
 * assigned cost is below SURE_RATIO x the row's best other cost. */
static int assign(const double *cost, int n, int *perm, double *sure, double *mean_cost,
                  ee_err *err) {
    if (ee_lap_solve(cost, n, perm, err)) return -1;
    int ok = 0;
    double total = 0;
    for (int i = 0; i < n; i++) {
        double best = cost[(size_t)i * n + perm[i]], other = INFINITY;
        for (int c = 0; c < n; c++)
            if (c != perm[i] && cost[(size_t)i * n + c] < other) other = cost[(size_t)i * n + c];
        ok += best < SURE_RATIO * other;
        total += best;
    }
    *sure = (double)ok / n;
    *mean_cost = total / n;
    return 0;
}

int ee_cnn_recover(const ee_cnn_model *enc, const ee_cnn_model *pub, ee_cnn_recovered *r,
                   ee_err *err) {
    memset(r, 0, sizeof *r);
    if (check_shapes(enc, pub, err)) return -1;
    const ee_cnn_block *eb = &enc->blocks[1], *pb = &pub->blocks[1];
    const int c0 = eb->c_in, c1 = eb->c_out, kk = eb->k * eb->k;
    const size_t nk = (size_t)c0 * c1;
    double *de = malloc(sizeof(double) * nk * kk), *dp = malloc(sizeof(double) * nk * kk);
    double *ne = malloc(sizeof(double) * nk), *np = malloc(sizeof(double) * nk);
    double *cost0 = malloc(sizeof(double) * (size_t)c0 * c0);
    double *cost1 = malloc(sizeof(double) * (size_t)c1 * c1);
    double *lr = malloc(sizeof(double) * nk);
    r->c0 = c0, r->c1 = c1;
    r->perm0 = malloc(sizeof(int) * (size_t)c0);
    r->perm1 = malloc(sizeof(int) * (size_t)c1);
    r->s0 = malloc(sizeof(double) * (size_t)c0);
    r->s1 = malloc(sizeof(double) * (size_t)c1);
    int rc = -1;
    if (!de || !dp || !ne || !np || !cost0 || !cost1 || !lr || !r->perm0 || !r->perm1 || !r->s0 ||
        !r->s1) {
        ee_err_set(err, "out of memory");
        goto done;
    }
    directions(eb->weight, c1, c0, kk, de, ne);
    directions(pb->weight, c1, c0, kk, dp, np);
    /* 1a. input channels: encrypted i against public c. Each kernel
     * (j, i) of the encrypted column has a partner (perm1 j, c) of the
     * same direction when c = perm0[i]; cost: 1 - its best cosine, averaged. */
    for (int i = 0; i < c0; i++)
        for (int c = 0; c < c0; c++) {
            double s = 0;
            for (int j = 0; j < c1; j++) {
                const double *u = de + ((size_t)j * c0 + i) * kk;
                double best = -1;
                for (int a = 0; a < c1; a++) {
                    double d = dot(u, dp + ((size_t)a * c0 + c) * kk, kk);
                    if (d > best) best = d;
                }
                s += 1 - best;
            }
            cost0[(size_t)i * c0 + c] = s / c1;
        }
    if (assign(cost0, c0, r->perm0, &r->perm0_sure, &r->perm0_cost, err)) goto done;
    /* 1b. output channels, input channels now aligned: all c0 kernels of a
     * row must agree. */
    for (int j = 0; j < c1; j++)
        for (int a = 0; a < c1; a++) {
            double s = 0;
            for (int i = 0; i < c0; i++)
                s += 1 - dot(de + ((size_t)j * c0 + i) * kk, dp + ((size_t)a * c0 + r->perm0[i]) * kk, kk);
            cost1[(size_t)j * c1 + a] = s / c0;
        }
    double cost1_mean;
    if (assign(cost1, c1, r->perm1, &r->perm1_sure, &cost1_mean, err)) goto done;
    /* 2. log |W1'[j][i]| / |W1[perm1 j][perm0 i]| = a_j - b_i (a = log s1,
     * b = log s0): least squares by alternating exact updates (one sweep
     * solves it when every kernel is usable), then geometric mean of s0 = 1. */
    double *a = r->s1, *b = r->s0;
    for (int i = 0; i < c0; i++) b[i] = 0;
    for (int j = 0; j < c1; j++) a[j] = 0;
    for (int j = 0; j < c1; j++)
        for (int i = 0; i < c0; i++) {
            double x = ne[(size_t)j * c0 + i], y = np[(size_t)r->perm1[j] * c0 + r->perm0[i]];
            lr[(size_t)j * c0 + i] = x > TINY_NORM && y > TINY_NORM ? log(x / y) : NAN;
        }
    for (int it = 0; it < 200; it++) {
        double change = 0;
        for (int j = 0; j < c1; j++) {
            double s = 0;
            int k = 0;
            for (int i = 0; i < c0; i++)
                if (isfinite(lr[(size_t)j * c0 + i])) s += lr[(size_t)j * c0 + i] + b[i], k++;
            double v = k ? s / k : 0;
            change = fmax(change, fabs(v - a[j]));
            a[j] = v;
        }
        for (int i = 0; i < c0; i++) {
            double s = 0;
            int k = 0;
            for (int j = 0; j < c1; j++)
                if (isfinite(lr[(size_t)j * c0 + i])) s += a[j] - lr[(size_t)j * c0 + i], k++;
            double v = k ? s / k : 0;
            change = fmax(change, fabs(v - b[i]));
            b[i] = v;
        }
        if (change < 1e-13) break;
    }
    double mb = 0, rss = 0;
    int used = 0;
    for (int i = 0; i < c0; i++) mb += b[i] / c0;
    for (int j = 0; j < c1; j++)
        for (int i = 0; i < c0; i++)
            if (isfinite(lr[(size_t)j * c0 + i])) {
                double d = lr[(size_t)j * c0 + i] - (a[j] - b[i]);
                rss += d * d, used++;
            }
    r->scale_rms = used ? sqrt(rss / used) : NAN;
    for (int i = 0; i < c0; i++) b[i] = exp(b[i] - mb);
    for (int j = 0; j < c1; j++) a[j] = exp(a[j] - mb);
    rc = 0;
done:
    free(de), free(dp), free(ne), free(np), free(cost0), free(cost1), free(lr);
    if (rc) ee_cnn_recovered_free(r);
    return rc;
}

int ee_cnn_invert_b(const ee_cnn_model *pub, const ee_cnn_recovered *r, const float *efmaps,
                    int n, float *images, int *rank, ee_err *err) {
    const ee_cnn_block *s = &pub->blocks[0];
    if (pub->hp.client_blocks != 0 || !s->weight || s->c_out != r->c0)
        return ee_err_set(err, "the public stem does not fit the recovered channels");
    const int C = s->c_out, ci = s->c_in, h = s->h, w = s->w, k = s->k, pad = k / 2;
    const int hw = h * w, nx = ci * hw, nv = nx + 1, rows_max = C * hw;
    double *A = malloc(sizeof(double) * (size_t)rows_max * nv);
    double *rhs = malloc(sizeof(double) * (size_t)rows_max), *z = malloc(sizeof(double) * nv);
    double *F = malloc(sizeof(double) * (size_t)C * hw);
    int rc = -1;
    if (!A || !rhs || !z || !F) {
        ee_err_set(err, "out of memory");
        goto done;
    }
    for (int im = 0; im < n; im++) {
        const float *e = efmaps + (size_t)im * C * hw;
        /* g * relu(conv0(x) + b0), in public channel order. */
        for (int i = 0; i < C; i++)
            for (int p = 0; p < hw; p++)
                F[(size_t)r->perm0[i] * hw + p] = (double)e[(size_t)i * hw + p] / r->s0[i];
        int m = 0;
        for (int c = 0; c < C; c++)
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++) {
                    double f = F[(size_t)c * hw + y * w + x];
                    if (!(f > 0)) continue; /* ReLU cut it: no equation */
                    double *row = A + (size_t)m * nv;
                    memset(row, 0, sizeof(double) * nv);
                    for (int q = 0; q < ci; q++)
                        for (int dy = 0; dy < k; dy++) {
                            int iy = y + dy - pad;
                            if (iy < 0 || iy >= h) continue;
                            for (int dx = 0; dx < k; dx++) {
                                int ix = x + dx - pad;
                                if (ix < 0 || ix >= w) continue;
                                row[(size_t)q * hw + iy * w + ix] =
                                    s->weight[(((size_t)c * ci + q) * k + dy) * k + dx];
                            }
                        }
                    row[nx] = -f; /* - u * map */
                    rhs[m] = -(double)s->bias[c];
                    m++;
                }
        float *out = images + (size_t)im * nx;
        if (m == 0) { /* an all-zero map: nothing to solve */
            for (int p = 0; p < nx; p++) out[p] = 0;
            if (rank) rank[im] = 0;
            continue;
        }
        int rk = 0;
        if (ee_lstsq(A, m, nv, rhs, LSTSQ_RCOND, z, &rk, err)) {
            ee_err_wrap(err, "image %d", im);
            goto done;
        }
        for (int p = 0; p < nx; p++) out[p] = (float)z[p];
        if (rank) rank[im] = rk;
    }
    rc = 0;
done:
    free(A), free(rhs), free(z), free(F);
    return rc;
}

/* ---- 3. the harness: the key holder makes the maps and scores ---------------- */

void ee_audit_cnn_result_free(ee_audit_cnn_result *res) {
    ee_cnn_recovered_free(&res->rec);
    free(res->images);
    free(res->recon_a_mean);
    free(res->recon_a_max);
    free(res->recon_b);
    free(res->recon_a_aligned);
    free(res->recon_a_deconv1);
    free(res->recon_a_pc);
    free(res->recon_a_deconvn);
    memset(res, 0, sizeof *res);
}

static double pearson(const float *a, const float *b, int n) {
    double ma = 0, mb = 0;
    for (int i = 0; i < n; i++) ma += a[i], mb += b[i];
    ma /= n, mb /= n;
    double sab = 0, saa = 0, sbb = 0;
    for (int i = 0; i < n; i++) {
        double x = a[i] - ma, y = b[i] - mb;
        sab += x * y, saa += x * x, sbb += y * y;
    }
    double r = sab / sqrt(saa * sbb);
    return isfinite(r) ? r : 0; /* a flat picture correlates with nothing */
}

/* Quantile q of sorted v[n], interpolated linearly. */
static double quantile(const double *v, int n, double q) {
    double pos = q * (n - 1);
    int lo = (int)floor(pos);
    if (lo >= n - 1) return v[n - 1];
    return v[lo] + (pos - lo) * (v[lo + 1] - v[lo]);
}

/* Correlation quantiles, max error and readability of recon [n][len]
 * against truth [n][len]; readable [n][image_len] is what the plaintext
 * model classifies. */
static int score(const ee_cnn_model *plain, const float *recon, const float *truth, int len,
                 const float *readable, const float *labels, int n, ee_audit_cnn_score *sc,
                 ee_err *err) {
    double *corr = malloc(sizeof(double) * (size_t)n);
    float *logits = malloc(sizeof(float) * (size_t)n * plain->hp.n_class);
    if (!corr || !logits) {
        free(corr), free(logits);
        return ee_err_set(err, "out of memory");
    }
    sc->max_abs_err = 0;
    for (int i = 0; i < n; i++) {
        corr[i] = pearson(recon + (size_t)i * len, truth + (size_t)i * len, len);
        for (int p = 0; p < len; p++) {
            double d = fabs((double)recon[(size_t)i * len + p] - truth[(size_t)i * len + p]);
            if (!(d <= sc->max_abs_err)) sc->max_abs_err = isfinite(d) ? d : INFINITY;
        }
    }
    qsort(corr, (size_t)n, sizeof(double), cmp_double);
    sc->corr_median = quantile(corr, n, 0.5);
    sc->corr_p10 = quantile(corr, n, 0.1);
    int rc = ee_cnn_classify_images(plain, readable, n, logits, err);
    if (!rc) {
        int ok = 0;
        for (int i = 0; i < n; i++)
            ok += ee_cnn_argmax(logits + (size_t)i * plain->hp.n_class, plain->hp.n_class) ==
                  (int)labels[i];
        sc->accuracy = (double)ok / n;
        sc->ran = true;
    }
    free(corr), free(logits);
    return rc;
}

/* Attack A's pictures pic [n][hw], in arbitrary units: scored scaled to
 * [0, 1] by their maximum, against the grey image (mean of the input
 * channels), and classified copied into every input channel (readable
 * [n][image len] scratch). */
static int score_a(const ee_cnn_model *plain, const float *pic, const float *grey,
                   const float *labels, int n, float *readable, ee_audit_cnn_score *sc,
                   ee_err *err) {
    const int hw = plain->hp.in_h * plain->hp.in_w, in_c = plain->hp.in_c;
    float *scaled = malloc(sizeof(float) * (size_t)n * hw);
    if (!scaled) return ee_err_set(err, "out of memory");
    for (int i = 0; i < n; i++) {
        const float *p = pic + (size_t)i * hw;
        float *o = scaled + (size_t)i * hw, mx = 0;
        for (int q = 0; q < hw; q++) mx = p[q] > mx ? p[q] : mx;
        for (int q = 0; q < hw; q++) o[q] = mx > 0 ? p[q] / mx : 0;
        for (int c = 0; c < in_c; c++)
            memcpy(readable + ((size_t)i * in_c + c) * hw, o, sizeof(float) * (size_t)hw);
    }
    int rc = score(plain, scaled, grey, hw, readable, labels, n, sc, err);
    free(scaled);
    return rc ? -1 : 0;
}

static int run_a(const ee_cnn_model *enc, const ee_cnn_model *plain, const float *efm,
                 const float *grey, const float *labels, int n, ee_cnn_inv_a_mode mode,
                 float *pic, float *readable, ee_audit_cnn_score *sc, ee_err *err) {
    double t0 = ee_now_ms();
    if (ee_cnn_invert_a(enc, efm, n, mode, pic, err)) return -1;
    sc->seconds = (ee_now_ms() - t0) / 1e3;
    return score_a(plain, pic, grey, labels, n, readable, sc, err);
}

/* The deconvolution from start (whose own time is start_s), scored. */
static int run_deconv(const ee_cnn_model *enc, const ee_cnn_model *plain, const float *efm,
                      const float *grey, const float *labels, int n, const float *start,
                      double start_s, bool joint, float *pic, float *readable,
                      ee_cnn_deconv_info *info, ee_audit_cnn_score *sc, ee_err *err) {
    double t0 = ee_now_ms();
    if (ee_cnn_invert_a_deconv(enc, efm, n, start, joint, pic, info, err)) return -1;
    sc->seconds = start_s + (ee_now_ms() - t0) / 1e3;
    return score_a(plain, pic, grey, labels, n, readable, sc, err);
}

int ee_audit_cnn_run(const ee_cnn_model *enc, const ee_cnn_model *pub, const ee_cnn_model *plain,
                     const ee_key *key, const float *images, const float *labels, int n,
                     ee_audit_cnn_result *res, ee_err *err) {
    memset(res, 0, sizeof *res);
    if (n < 1) return ee_err_set(err, "the test set is empty");
    if (plain->hp.client_blocks != 0 || !plain->blocks[0].weight)
        return ee_err_set(err, "the model the file was encrypted from has no stem (give the "
                               "plaintext model)");
    if (enc->hp.client_blocks != 1 || ee_cnn_fmap_len(enc) != ee_cnn_fmap_len(plain) ||
        enc->hp.n_class != plain->hp.n_class || enc->hp.n_block != plain->hp.n_block)
        return ee_err_set(err, "the encrypted model does not fit the plaintext one it was "
                               "encrypted from (or is not encrypted)");
    if (pub && check_shapes(enc, pub, err)) return -1;
    const int il = (int)ee_cnn_image_len(plain), fl = (int)ee_cnn_fmap_len(plain);
    const int hw = plain->hp.in_h * plain->hp.in_w, in_c = plain->hp.in_c, nc = plain->hp.n_class;
    res->n = n, res->image_len = il, res->h = plain->hp.in_h, res->w = plain->hp.in_w;
    res->c0 = plain->blocks[0].c_out, res->c1 = plain->blocks[1].c_out, res->n_class = nc;
    ee_cnn_cipher cc = {0};
    ee_cnn_secrets sec;
    memset(&sec, 0, sizeof sec);
    float *fm = malloc(sizeof(float) * (size_t)n * fl), *efm = malloc(sizeof(float) * (size_t)n * fl);
    float *grey = malloc(sizeof(float) * (size_t)n * hw);
    float *readable = malloc(sizeof(float) * (size_t)n * il);
    float *logits = malloc(sizeof(float) * (size_t)n * nc);
    int *rank = malloc(sizeof(int) * (size_t)n), *count = calloc((size_t)nc, sizeof(int));
    res->images = malloc(sizeof(float) * (size_t)n * il);
    res->recon_a_mean = malloc(sizeof(float) * (size_t)n * hw);
    res->recon_a_max = malloc(sizeof(float) * (size_t)n * hw);
    res->recon_a_aligned = malloc(sizeof(float) * (size_t)n * hw);
    res->recon_a_deconv1 = malloc(sizeof(float) * (size_t)n * hw);
    res->recon_a_pc = malloc(sizeof(float) * (size_t)n * hw);
    res->recon_a_deconvn = malloc(sizeof(float) * (size_t)n * hw);
    if (pub) res->recon_b = malloc(sizeof(float) * (size_t)n * il);
    int rc = -1;
    if (!fm || !efm || !grey || !readable || !logits || !rank || !count || !res->images ||
        !res->recon_a_mean || !res->recon_a_max || !res->recon_a_aligned ||
        !res->recon_a_deconv1 || !res->recon_a_pc || !res->recon_a_deconvn ||
        (pub && !res->recon_b)) {
        ee_err_set(err, "out of memory");
        goto done;
    }
    memcpy(res->images, images, sizeof(float) * (size_t)n * il);
    for (int i = 0; i < n; i++) {
        if (!(labels[i] >= 0 && labels[i] < nc)) {
            ee_err_set(err, "test label %d is %g, not a class of %d", i, labels[i], nc);
            goto done;
        }
        count[(int)labels[i]]++;
        for (int p = 0; p < hw; p++) {
            double s = 0;
            for (int q = 0; q < in_c; q++) s += images[(size_t)i * il + (size_t)q * hw + p];
            grey[(size_t)i * hw + p] = (float)(s / in_c);
        }
    }
    /* The client's path: plaintext stem, feature map encrypted. */
    if (ee_cnn_stem(plain, images, n, fm, err) ||
        ee_cnn_cipher_init(&cc, key, res->c0, hw, nc, err))
        goto done;
    for (int i = 0; i < n; i++) ee_cnn_fmap_encrypt(&cc, fm + (size_t)i * fl, efm + (size_t)i * fl);
    /* Baselines: the plaintext model on the true images, chance. */
    if (ee_cnn_classify_images(plain, images, n, logits, err)) goto done;
    int ok = 0, most = 0;
    for (int i = 0; i < n; i++) ok += ee_cnn_argmax(logits + (size_t)i * nc, nc) == (int)labels[i];
    for (int c = 0; c < nc; c++) most = count[c] > most ? count[c] : most;
    res->acc_true = (double)ok / n;
    res->acc_chance = 1.0 / nc;
    res->acc_majority = (double)most / n;

    /* A: the encrypted model (its shape) and the maps. */
    if (run_a(enc, plain, efm, grey, labels, n, EE_CNN_INV_A_MEAN, res->recon_a_mean, readable,
              &res->a_mean, err) ||
        run_a(enc, plain, efm, grey, labels, n, EE_CNN_INV_A_MAX, res->recon_a_max, readable,
              &res->a_max, err))
        goto done;
    /* The stronger A: from each map alone the aligned mean and, started
     * from it, the deconvolution; from all n maps together the pooled PC
     * and, started from it, the deconvolution with shared filters. */
    if (run_a(enc, plain, efm, grey, labels, n, EE_CNN_INV_A_ALIGNED, res->recon_a_aligned,
              readable, &res->a_aligned, err) ||
        run_deconv(enc, plain, efm, grey, labels, n, res->recon_a_aligned,
                   res->a_aligned.seconds, false, res->recon_a_deconv1, readable, &res->deconv1,
                   &res->a_deconv1, err))
        goto done;
    double tpc = ee_now_ms();
    if (ee_cnn_invert_a_pc(enc, efm, n, res->recon_a_pc, err)) goto done;
    res->a_pc.seconds = (ee_now_ms() - tpc) / 1e3;
    if (score_a(plain, res->recon_a_pc, grey, labels, n, readable, &res->a_pc, err) ||
        run_deconv(enc, plain, efm, grey, labels, n, res->recon_a_pc, res->a_pc.seconds, true,
                   res->recon_a_deconvn, readable, &res->deconvn, &res->a_deconvn, err))
        goto done;

    /* B: the encrypted model, the public one and the maps. */
    if (pub) {
        double t0 = ee_now_ms();
        if (ee_cnn_recover(enc, pub, &res->rec, err)) goto done;
        res->seconds_recover = (ee_now_ms() - t0) / 1e3;
        if (ee_cnn_invert_b(pub, &res->rec, efm, n, res->recon_b, rank, err)) goto done;
        res->b.seconds = (ee_now_ms() - t0) / 1e3;
        for (int i = 0; i < n; i++) res->rank_deficient += rank[i] < il + 1;
        if (score(plain, res->recon_b, images, il, res->recon_b, labels, n, &res->b, err))
            goto done;
        /* Checked against the key's secrets. */
        int c_out[EE_CNN_MAX_BLOCKS];
        for (int l = 0; l < plain->hp.n_block; l++) c_out[l] = plain->blocks[l].c_out;
        if (ee_cnn_secrets_derive(&sec, key, plain->hp.n_block, c_out, nc, err)) goto done;
        int k0 = 0, k1 = 0;
        for (int i = 0; i < res->c0; i++) k0 += res->rec.perm0[i] == (int)sec.perm[0][i];
        for (int j = 0; j < res->c1; j++) k1 += res->rec.perm1[j] == (int)sec.perm[1][j];
        res->perm0_correct = (double)k0 / res->c0;
        res->perm1_correct = (double)k1 / res->c1;
        double lg = 0;
        for (int i = 0; i < res->c0; i++) lg += log(sec.scale[0][i] / res->rec.s0[i]) / res->c0;
        res->scale0_err = 0;
        for (int i = 0; i < res->c0; i++)
            res->scale0_err = fmax(res->scale0_err,
                                   fabs(sec.scale[0][i] / res->rec.s0[i] / exp(lg) - 1));
    }
    rc = 0;
done:
    ee_cnn_cipher_free(&cc);
    ee_cnn_secrets_free(&sec);
    free(fm), free(efm), free(grey), free(readable), free(logits), free(rank), free(count);
    if (rc) ee_audit_cnn_result_free(res);
    return rc;
}
