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

/* ---- 1. attack A: no weights ------------------------------------------------ */

int ee_cnn_invert_a(const ee_cnn_model *enc, const float *efmaps, int n, ee_cnn_inv_a_mode mode,
                    float *out, ee_err *err) {
    if (mode != EE_CNN_INV_A_MEAN && mode != EE_CNN_INV_A_MAX)
        return ee_err_set(err, "unknown channel-mean mode %d", (int)mode);
    const int C = ee_cnn_fmap_channels(enc), hw = enc->hp.in_h * enc->hp.in_w;
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

static double dot(const double *a, const double *b, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
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

static int cmp_double(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
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

static int run_a(const ee_cnn_model *enc, const ee_cnn_model *plain, const float *efm,
                 const float *grey, const float *labels, int n, ee_cnn_inv_a_mode mode,
                 float *pic, float *readable, ee_audit_cnn_score *sc, ee_err *err) {
    const int hw = plain->hp.in_h * plain->hp.in_w, in_c = plain->hp.in_c;
    double t0 = ee_now_ms();
    if (ee_cnn_invert_a(enc, efm, n, mode, pic, err)) return -1;
    sc->seconds = (ee_now_ms() - t0) / 1e3;
    /* Its units are arbitrary: scored scaled to [0, 1] by its maximum,
     * against the grey image (mean of the input channels), and classified
     * copied into every input channel. */
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
    if (pub) res->recon_b = malloc(sizeof(float) * (size_t)n * il);
    int rc = -1;
    if (!fm || !efm || !grey || !readable || !logits || !rank || !count || !res->images ||
        !res->recon_a_mean || !res->recon_a_max || (pub && !res->recon_b)) {
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
