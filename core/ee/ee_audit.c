/* The weight-alignment attack (see ee_audit.h). Sections:
 *   1. loading: tensors as f32 rows, optional simulated fine-tune noise
 *   2. small helpers: row norms, confident-assignment test
 *   3. stage 1: rotation from layer 0 (sorted Gram rows, assignment, Procrustes)
 *   4. stage 2: refinement over every layer's MLP
 *   5. stage 3: vocabulary (projected candidates, exact re-ranking)
 *   6. stage 4: per-head maps
 *   7. the driver
 * Conventions: a weight [rows][cols] is `rows` vectors of `cols` values
 * (GGUF ne = [cols, rows]). Public vectors x and encrypted vectors y of the
 * residual side satisfy y = x R (+ noise) with R = Q^T the transposed
 * residual rotation; un-rotating is y R^T. */
#include "ee_audit.h"

#include "ee_kernels.h"
#include "ee_lap.h"
#include "ee_linalg.h"
#include "ee_llama.h"
#include "ee_mat.h"
#include "ee_clock.h"
#include "ee_scheme.h"

#include <cblas.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MLP_MARGIN 0.5     /* sum-of-three-cosines lead over the runner-up */
#define VOCAB_SIGMAS 3.0   /* margin from the bisector, in noise standard deviations */
#define HEAD_RATIO 0.8     /* best head residual < this x the runner-up's (and mutual) */
#define VOCAB_PROJ 64      /* random projection width for vocabulary candidates */
#define VOCAB_CAND 6       /* candidates re-ranked exactly */
#define VOCAB_BLOCK 256    /* encrypted rows per candidate block */

typedef struct audit {
    const ee_gguf *enc, *pub;
    ee_llama_hparams hp;
    ee_audit_opts o;
    uint64_t rng;
    double *R; /* [d][d] current estimate of Q^T */
    ee_err *err;
} audit;

/* ---- 1. loading ------------------------------------------------------------------ */

static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double gauss(uint64_t *s) {
    double u1 = ((splitmix(s) >> 11) + 1.0) * 0x1.0p-53, u2 = (splitmix(s) >> 11) * 0x1.0p-53;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* Tensor `name` of g as f32 [rows][cols]; public tensors get the simulated
 * fine-tune noise. *out malloc'd. */
static int load(audit *a, const ee_gguf *g, const char *name, int64_t cols, int64_t rows,
                float **out) {
    ee_mat m;
    const bool pub = g == a->pub;
    /* Noise depends on (seed, name) only: the attacker's model is the same
     * whichever stage reads a tensor, and however often. */
    uint64_t rng = a->rng;
    for (const char *p = name; *p; p++) rng = (rng ^ (uint8_t)*p) * 0x100000001B3ull;
    if (ee_mat_load(&m, g, name, cols, rows, false, a->err))
        return ee_err_wrap(a->err, "%s model", pub ? "public" : "encrypted");
    float *v = malloc(sizeof(float) * (size_t)rows * cols);
    if (!v) {
        ee_mat_free(&m);
        return ee_err_set(a->err, "out of memory loading '%s'", name);
    }
    for (int64_t r = 0; r < rows; r++) ee_mat_row(&m, r, v + r * cols);
    ee_mat_free(&m);
    if (pub && a->o.perturb > 0) {
        const size_t n = (size_t)rows * cols;
        double s = 0, s2 = 0;
        for (size_t i = 0; i < n; i++) s += v[i], s2 += (double)v[i] * v[i];
        double mean = s / n, sd = sqrt(fmax(s2 / n - mean * mean, 0.0));
        if (rows == 1) sd = sqrt(s2 / n); /* a gain vector: relative to its size */
        for (size_t i = 0; i < n; i++) v[i] += (float)(a->o.perturb * sd * gauss(&rng));
    }
    *out = v;
    return 0;
}

static int load_layer(audit *a, const ee_gguf *g, int l, const char *suffix, int64_t cols,
                      int64_t rows, float **out) {
    char name[96];
    snprintf(name, sizeof name, "blk.%d.%s.weight", l, suffix);
    return load(a, g, name, cols, rows, out);
}

/* ---- 2. helpers ------------------------------------------------------------------------ */

static void scale_cols(float *X, int64_t rows, int64_t cols, const float *g) {
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) X[r * cols + c] *= g[c];
}

static float *transpose(const float *X, int64_t rows, int64_t cols) {
    float *T = malloc(sizeof(float) * (size_t)rows * cols);
    if (T)
        for (int64_t r = 0; r < rows; r++)
            for (int64_t c = 0; c < cols; c++) T[c * rows + r] = X[r * cols + c];
    return T;
}

/* Normalise rows to unit length; norms[r] receives the old length. */
static void unit_rows(float *X, int64_t rows, int64_t cols, double *norms) {
    for (int64_t r = 0; r < rows; r++) {
        double s = 0;
        for (int64_t c = 0; c < cols; c++) s += (double)X[r * cols + c] * X[r * cols + c];
        s = sqrt(s);
        if (norms) norms[r] = s;
        if (s > 0)
            for (int64_t c = 0; c < cols; c++) X[r * cols + c] = (float)(X[r * cols + c] / s);
    }
}

/* Z[rows][d] = Y R^T (un-rotate). */
static float *unrotate(const audit *a, const float *Y, int64_t rows) {
    const int d = a->hp.n_embd;
    float *Rf = malloc(sizeof(float) * d * d), *Z = malloc(sizeof(float) * (size_t)rows * d);
    if (!Rf || !Z) {
        free(Rf), free(Z);
        return NULL;
    }
    for (int i = 0; i < d * d; i++) Rf[i] = (float)a->R[i];
    ee_sgemm_nt(Y, Rf, Z, rows, d, d); /* Z = Y R^T: B = R, rows of R dotted */
    free(Rf);
    return Z;
}

/* The matched pairs (x_i, y_match[i]) with ok[i] (all if ok is NULL), as
 * double rows Xs, Ys [n][d]; returns n (-1: out of memory). */
static int64_t gather_pairs(const float *X, const float *Y, int64_t n, int d, const int *match,
                            const uint8_t *ok, double **Xs, double **Ys) {
    *Xs = malloc(sizeof(double) * (size_t)n * d);
    *Ys = malloc(sizeof(double) * (size_t)n * d);
    if (!*Xs || !*Ys) {
        free(*Xs), free(*Ys);
        return -1;
    }
    int64_t m = 0;
    for (int64_t i = 0; i < n; i++) {
        if (ok && !ok[i]) continue;
        for (int c = 0; c < d; c++)
            (*Xs)[m * d + c] = X[i * d + c], (*Ys)[m * d + c] = Y[(int64_t)match[i] * d + c];
        m++;
    }
    return m;
}

/* M += X^T Y over matched rows; with num/den, also sum ||x R - y||^2 and
 * sum ||y||^2 over them. */
static int procrustes_accumulate(const audit *a, double *M, const float *X, const float *Y,
                                 int64_t n, const int *match, const uint8_t *ok, double *num,
                                 double *den) {
    const int d = a->hp.n_embd;
    double *Xs, *Ys;
    int64_t m = gather_pairs(X, Y, n, d, match, ok, &Xs, &Ys);
    if (m < 0) return ee_err_set(a->err, "out of memory");
    if (m > 0 && M)
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, d, d, (int)m, 1.0, Xs, d, Ys, d, 1.0,
                    M, d);
    if (m > 0 && num) { /* Xs <- Xs R - Ys */
        double *XR = malloc(sizeof(double) * (size_t)m * d);
        if (!XR) {
            free(Xs), free(Ys);
            return ee_err_set(a->err, "out of memory");
        }
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, d, d, 1.0, Xs, d, a->R, d,
                    0.0, XR, d);
        for (int64_t i = 0; i < m * d; i++)
            *num += (XR[i] - Ys[i]) * (XR[i] - Ys[i]), *den += Ys[i] * Ys[i];
        free(XR);
    }
    free(Xs), free(Ys);
    return 0;
}

static int cmp_float_desc(const void *p, const void *q) {
    float a = *(const float *)p, b = *(const float *)q;
    return (a < b) - (a > b);
}

static int cmp_double(const void *p, const void *q) {
    double a = *(const double *)p, b = *(const double *)q;
    return (a > b) - (a < b);
}

static double median(double *v, int n) {
    if (n <= 0) return NAN;
    qsort(v, (size_t)n, sizeof(double), cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Assignment on a similarity matrix S[n][n] (higher is better): match[i]
 * is the column for row i; sure[i] = the match leads every other entry of
 * its row and its column by at least margin. */
static int assign_similar(const float *S, int n, double margin, int *match, uint8_t *sure,
                          ee_err *err) {
    double *cost = malloc(sizeof(double) * (size_t)n * n);
    if (!cost) return ee_err_set(err, "out of memory for a %dx%d assignment", n, n);
    for (size_t i = 0; i < (size_t)n * n; i++) cost[i] = -(double)S[i];
    int rc = ee_lap_solve(cost, n, match, err);
    free(cost);
    if (rc) return -1;
    float *colbest = malloc(sizeof(float) * n * 2); /* best and second per column */
    if (!colbest) return ee_err_set(err, "out of memory");
    for (int j = 0; j < n; j++) colbest[2 * j] = colbest[2 * j + 1] = -INFINITY;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            float s = S[(size_t)i * n + j];
            if (s > colbest[2 * j]) colbest[2 * j + 1] = colbest[2 * j], colbest[2 * j] = s;
            else if (s > colbest[2 * j + 1]) colbest[2 * j + 1] = s;
        }
    for (int i = 0; i < n; i++) {
        const int m = match[i];
        const float sm = S[(size_t)i * n + m];
        float row2 = -INFINITY;
        for (int j = 0; j < n; j++)
            if (j != m && S[(size_t)i * n + j] > row2) row2 = S[(size_t)i * n + j];
        float col2 = colbest[2 * m] == sm ? colbest[2 * m + 1] : colbest[2 * m];
        sure[i] = sm - row2 >= margin && sm - col2 >= margin;
    }
    free(colbest);
    return 0;
}

/* Layer l's MLP vectors of model g as rows [ff][d]: gate and up rows (the
 * public ones times the ffn_norm gain, which the scheme folds in) and the
 * down columns. */
static int load_mlp(audit *a, const ee_gguf *g, int l, float *V[3]) {
    const int d = a->hp.n_embd, ff = a->hp.n_ff;
    float *T = NULL, *gain = NULL;
    V[0] = V[1] = V[2] = NULL;
    if (load_layer(a, g, l, "ffn_gate", d, ff, &V[0]) || load_layer(a, g, l, "ffn_up", d, ff, &V[1]) ||
        load_layer(a, g, l, "ffn_down", ff, d, &T) ||
        (g == a->pub && load_layer(a, g, l, "ffn_norm", d, 1, &gain)))
        goto fail;
    if (!(V[2] = transpose(T, d, ff))) {
        ee_err_set(a->err, "out of memory (layer %d)", l);
        goto fail;
    }
    if (gain) scale_cols(V[0], ff, d, gain), scale_cols(V[1], ff, d, gain);
    free(T), free(gain);
    return 0;
fail:
    free(T), free(gain), free(V[0]), free(V[1]), free(V[2]);
    V[0] = V[1] = V[2] = NULL;
    return -1;
}

/* ---- 3. stage 1: rotation from layer 0 ------------------------------------------------ */

/* Rows of the Gram matrix X X^T, each sorted (descending): invariant under
 * a rotation of the rows' space and, as a multiset per row, under a
 * permutation of the rows. */
static float *sorted_gram(const float *X, int n, int d) {
    float *G = malloc(sizeof(float) * (size_t)n * n);
    if (!G) return NULL;
    ee_sgemm_nt(X, X, G, n, n, d);
#pragma omp parallel for num_threads(ee_kernels_threads()) schedule(static)
    for (int i = 0; i < n; i++) qsort(G + (size_t)i * n, (size_t)n, sizeof(float), cmp_float_desc);
    return G;
}

static int stage_rotation(audit *a, ee_audit_result *res) {
    const int d = a->hp.n_embd, ff = a->hp.n_ff;
    float *X = NULL, *Y = NULL, *g = NULL, *FX = NULL, *FY = NULL, *S = NULL;
    int *match = malloc(sizeof(int) * ff);
    double *M = calloc((size_t)d * d, sizeof(double));
    int rc = -1;
    if (!match || !M) goto oom;
    if (load_layer(a, a->pub, 0, "ffn_gate", d, ff, &X) ||
        load_layer(a, a->pub, 0, "ffn_norm", d, 1, &g) ||
        load_layer(a, a->enc, 0, "ffn_gate", d, ff, &Y))
        goto done;
    scale_cols(X, ff, d, g); /* the scheme folds the norm gain into the gate */
    if (!(FX = sorted_gram(X, ff, d)) || !(FY = sorted_gram(Y, ff, d))) goto oom;
    /* similarity = -||fx - fy||^2 = 2 fx.fy - |fx|^2 - |fy|^2 */
    if (!(S = malloc(sizeof(float) * (size_t)ff * ff))) goto oom;
    ee_sgemm_nt(FX, FY, S, ff, ff, ff);
    double *nx = malloc(sizeof(double) * ff), *ny = malloc(sizeof(double) * ff);
    if (!nx || !ny) {
        free(nx), free(ny);
        goto oom;
    }
    for (int i = 0; i < ff; i++) {
        double sx = 0, sy = 0;
        for (int j = 0; j < ff; j++)
            sx += (double)FX[(size_t)i * ff + j] * FX[(size_t)i * ff + j],
                sy += (double)FY[(size_t)i * ff + j] * FY[(size_t)i * ff + j];
        nx[i] = sx, ny[i] = sy;
    }
    for (int i = 0; i < ff; i++)
        for (int j = 0; j < ff; j++)
            S[(size_t)i * ff + j] = (float)(2.0 * S[(size_t)i * ff + j] - nx[i] - ny[j]);
    free(nx), free(ny);
    double *cost = malloc(sizeof(double) * (size_t)ff * ff);
    if (!cost) goto oom;
    for (size_t i = 0; i < (size_t)ff * ff; i++) cost[i] = -(double)S[i];
    rc = ee_lap_solve(cost, ff, match, a->err);
    free(cost);
    if (rc) goto done;
    rc = -1;
    if (procrustes_accumulate(a, M, X, Y, ff, match, NULL, NULL, NULL) ||
        ee_procrustes(M, d, a->R, a->err))
        goto done;
    double num = 0, den = 0;
    if (procrustes_accumulate(a, NULL, X, Y, ff, match, NULL, &num, &den)) goto done;
    res->rot_residual0 = den > 0 ? sqrt(num / den) : NAN;
    rc = 0;
    goto done;
oom:
    ee_err_set(a->err, "out of memory in the rotation stage");
done:
    free(X), free(Y), free(g), free(FX), free(FY), free(S), free(match), free(M);
    return rc;
}

/* Per-channel invariants of an MLP under the scheme's transforms (residual
 * rotation Q, channel permutation, positive scales c on up and 1/c on
 * down): with g, u the gate and up rows and w the down column,
 *   |g|, |u||w|, cos(g,u), cos(g,w), cos(u,w)
 * (g'.w' = g Q^T Q w / c and |w'| = |w| / c, so c cancels), and the
 * N_GRAM largest cosines of g with the layer's other gate rows (a
 * permutation-free summary of its Gram row). Columns standardised by the
 * public layer's statistics, so both sides share one scale. */
#define N_SCALAR 5
#define N_GRAM 16
#define N_FEAT (N_SCALAR + N_GRAM)

static int mlp_features(audit *a, float *V[3], float *F) {
    const int d = a->hp.n_embd, ff = a->hp.n_ff;
    float *Gn = malloc(sizeof(float) * (size_t)ff * d), *G = malloc(sizeof(float) * (size_t)ff * ff);
    if (!Gn || !G) {
        free(Gn), free(G);
        return ee_err_set(a->err, "out of memory");
    }
    for (int j = 0; j < ff; j++) {
        const float *g = V[0] + (size_t)j * d, *u = V[1] + (size_t)j * d, *w = V[2] + (size_t)j * d;
        double gg = 0, uu = 0, ww = 0, gu = 0, gw = 0, uw = 0;
        for (int c = 0; c < d; c++) {
            gg += (double)g[c] * g[c], uu += (double)u[c] * u[c], ww += (double)w[c] * w[c];
            gu += (double)g[c] * u[c], gw += (double)g[c] * w[c], uw += (double)u[c] * w[c];
        }
        double ng = sqrt(gg) + 1e-30, nu = sqrt(uu) + 1e-30, nw = sqrt(ww) + 1e-30;
        float *f = F + (size_t)j * N_FEAT;
        f[0] = (float)log(ng), f[1] = (float)log(nu * nw);
        f[2] = (float)(gu / (ng * nu)), f[3] = (float)(gw / (ng * nw)), f[4] = (float)(uw / (nu * nw));
        for (int c = 0; c < d; c++) Gn[(size_t)j * d + c] = (float)(g[c] / ng);
    }
    ee_sgemm_nt(Gn, Gn, G, ff, ff, d);
#pragma omp parallel for num_threads(ee_kernels_threads()) schedule(static)
    for (int j = 0; j < ff; j++) {
        float top[N_GRAM];
        for (int t = 0; t < N_GRAM; t++) top[t] = -INFINITY;
        const float *row = G + (size_t)j * ff;
        for (int k = 0; k < ff; k++) {
            if (k == j || row[k] <= top[N_GRAM - 1]) continue;
            int t = N_GRAM - 1;
            while (t > 0 && top[t - 1] < row[k]) top[t] = top[t - 1], t--;
            top[t] = row[k];
        }
        memcpy(F + (size_t)j * N_FEAT + N_SCALAR, top, sizeof top);
    }
    free(Gn), free(G);
    return 0;
}

/* Stage 1 from invariants of (about 8 of) the layers: one assignment per
 * layer on the standardised features, then Procrustes on all matched
 * (unit) vectors.
 * Wrong matches add noise that averages out; the right ones add up. */
static int stage_rotation_invariants(audit *a) {
    const int d = a->hp.n_embd, ff = a->hp.n_ff, L = a->hp.n_layer;
    float *X[3] = {0}, *Y[3] = {0};
    float *FX = malloc(sizeof(float) * (size_t)ff * N_FEAT), *FY = malloc(sizeof(float) * (size_t)ff * N_FEAT);
    double *cost = malloc(sizeof(double) * (size_t)ff * ff), *M = calloc((size_t)d * d, sizeof(double));
    int *match = malloc(sizeof(int) * ff);
    int rc = -1;
    if (!FX || !FY || !cost || !M || !match) {
        ee_err_set(a->err, "out of memory in the rotation stage");
        goto done;
    }
    const int stride = L > 8 ? L / 8 : 1; /* about 8 layers: enough pairs, bounded cost */
    for (int l = 0; l < L; l += stride) {
        if (load_mlp(a, a->pub, l, X) || load_mlp(a, a->enc, l, Y) || mlp_features(a, X, FX) ||
            mlp_features(a, Y, FY))
            goto done;
        for (int k = 0; k < N_FEAT; k++) {
            double s = 0, s2 = 0;
            for (int j = 0; j < ff; j++) s += FX[(size_t)j * N_FEAT + k], s2 += (double)FX[(size_t)j * N_FEAT + k] * FX[(size_t)j * N_FEAT + k];
            double mu = s / ff, sd = sqrt(fmax(s2 / ff - mu * mu, 1e-30));
            for (int j = 0; j < ff; j++) {
                FX[(size_t)j * N_FEAT + k] = (float)((FX[(size_t)j * N_FEAT + k] - mu) / sd);
                FY[(size_t)j * N_FEAT + k] = (float)((FY[(size_t)j * N_FEAT + k] - mu) / sd);
            }
        }
#pragma omp parallel for num_threads(ee_kernels_threads()) schedule(static)
        for (int i = 0; i < ff; i++)
            for (int j = 0; j < ff; j++) {
                double c = 0;
                for (int k = 0; k < N_FEAT; k++) {
                    double t = (double)FX[(size_t)i * N_FEAT + k] - FY[(size_t)j * N_FEAT + k];
                    c += t * t;
                }
                cost[(size_t)i * ff + j] = c;
            }
        if (ee_lap_solve(cost, ff, match, a->err)) goto done;
        for (int k = 0; k < 3; k++) {
            unit_rows(X[k], ff, d, NULL);
            unit_rows(Y[k], ff, d, NULL);
            if (procrustes_accumulate(a, M, X[k], Y[k], ff, match, NULL, NULL, NULL)) goto done;
        }
        for (int k = 0; k < 3; k++) free(X[k]), free(Y[k]), X[k] = Y[k] = NULL;
    }
    if (ee_procrustes(M, d, a->R, a->err)) goto done;
    rc = 0;
done:
    for (int k = 0; k < 3; k++) free(X[k]), free(Y[k]);
    free(FX), free(FY), free(cost), free(M), free(match);
    return rc;
}

/* ---- 4. stage 2: refinement over every layer --------------------------------------- */

/* One layer: match MLP channels by cos(gate) + cos(up) + cos(down) with the
 * current R; add the confident pairs to M; count them. last: also record
 * residual and scale agreement. */
static int refine_layer(audit *a, int l, double *M, int *n_sure, double *num, double *den,
                        double *spread, int *n_spread, bool last) {
    const int d = a->hp.n_embd, ff = a->hp.n_ff;
    float *X[3] = {0}, *Y[3] = {0}, *Z[3] = {0}, *g = NULL, *S = NULL, *T = NULL;
    double *nx[3] = {0}, *ny[3] = {0};
    int *match = malloc(sizeof(int) * ff);
    uint8_t *sure = malloc((size_t)ff);
    int rc = -1;
    if (!match || !sure) goto oom;
    if (load_mlp(a, a->pub, l, X) || load_mlp(a, a->enc, l, Y)) goto done;
    for (int k = 0; k < 3; k++) {
        if (!(nx[k] = malloc(sizeof(double) * ff)) || !(ny[k] = malloc(sizeof(double) * ff))) goto oom;
        unit_rows(X[k], ff, d, nx[k]);
        unit_rows(Y[k], ff, d, ny[k]);
        if (!(Z[k] = unrotate(a, Y[k], ff))) goto oom;
    }
    if (!(S = malloc(sizeof(float) * (size_t)ff * ff)) || !(T = malloc(sizeof(float) * (size_t)ff * ff)))
        goto oom;
    ee_sgemm_nt(X[0], Z[0], S, ff, ff, d);
    for (int k = 1; k < 3; k++) {
        ee_sgemm_nt(X[k], Z[k], T, ff, ff, d);
        for (size_t i = 0; i < (size_t)ff * ff; i++) S[i] += T[i];
    }
    if (assign_similar(S, ff, MLP_MARGIN, match, sure, a->err)) goto done;
    for (int i = 0; i < ff; i++) *n_sure += sure[i];
    for (int k = 0; k < 3; k++)
        if (procrustes_accumulate(a, M, X[k], Y[k], ff, match, sure, last ? num : NULL, den))
            goto done;
    if (last) {
        /* up rows carry c, down columns 1/c: both estimates should agree. */
        for (int i = 0; i < ff; i++) {
            if (!sure[i] || nx[1][i] <= 0 || ny[2][match[i]] <= 0) continue;
            double c_up = ny[1][match[i]] / nx[1][i], c_down = nx[2][i] / ny[2][match[i]];
            spread[(*n_spread)++] = fabs(c_up / c_down - 1.0);
        }
    }
    rc = 0;
    goto done;
oom:
    ee_err_set(a->err, "out of memory refining layer %d", l);
done:
    for (int k = 0; k < 3; k++) free(X[k]), free(Y[k]), free(Z[k]), free(nx[k]), free(ny[k]);
    free(g), free(S), free(T), free(match), free(sure);
    return rc;
}

typedef struct round_stats {
    int n_sure, full, n_spread;
    double num, den;
} round_stats;

/* One pass over every layer with the current R: the confident matches,
 * their Procrustes sums in M, residual and scale agreement. */
static int refine_round(audit *a, double *M, double *spread, round_stats *st) {
    const int d = a->hp.n_embd, L = a->hp.n_layer, ff = a->hp.n_ff;
    memset(M, 0, sizeof(double) * (size_t)d * d);
    memset(st, 0, sizeof *st);
    for (int l = 0; l < L; l++) {
        int before = st->n_sure;
        if (refine_layer(a, l, M, &st->n_sure, &st->num, &st->den, spread, &st->n_spread, true))
            return -1;
        st->full += st->n_sure - before == ff;
    }
    return 0;
}

/* Rounds of matching and Procrustes until the confident matches stop
 * growing. If the first round finds fewer than half the channels (the
 * layer-0 start failed, e.g. under fine-tune noise), the start from every
 * layer's invariants is tried too and the better one kept. */
static int stage_refine(audit *a, ee_audit_result *res) {
    const int d = a->hp.n_embd, L = a->hp.n_layer, ff = a->hp.n_ff;
    const int max_rounds = a->o.rounds > 0 ? a->o.rounds : 6;
    const size_t dd = (size_t)d * d;
    double *M = malloc(sizeof(double) * dd), *R0 = malloc(sizeof(double) * dd);
    double *spread = malloc(sizeof(double) * (size_t)L * ff);
    int rc = -1, prev = -1;
    if (!M || !R0 || !spread) {
        ee_err_set(a->err, "out of memory");
        goto done;
    }
    for (int r = 0; r < max_rounds; r++) {
        round_stats st;
        if (refine_round(a, M, spread, &st)) goto done;
        if (r == 0 && st.n_sure < L * ff / 2) {
            round_stats st0 = st;
            memcpy(R0, a->R, sizeof(double) * dd);
            if (stage_rotation_invariants(a) || refine_round(a, M, spread, &st)) goto done;
            res->rot_start = "per-channel MLP invariants";
            if (st.n_sure <= st0.n_sure) { /* keep the layer-0 start */
                memcpy(a->R, R0, sizeof(double) * dd);
                res->rot_start = "layer-0 Gram rows";
                if (refine_round(a, M, spread, &st)) goto done;
            }
        }
        res->mlp_perm_recovered = (double)st.n_sure / ((double)L * ff);
        res->mlp_layers_full = st.full;
        res->rot_residual = st.den > 0 ? sqrt(st.num / st.den) : NAN;
        res->mlp_scale_spread = median(spread, st.n_spread);
        res->rounds = r + 1;
        /* A new rotation needs enough confident pairs to be determined. */
        if (st.n_sure < d) break;
        if (ee_procrustes(M, d, a->R, a->err)) goto done;
        if (st.n_sure <= prev) break;
        prev = st.n_sure;
    }
    rc = 0;
done:
    free(M), free(R0), free(spread);
    return rc;
}

/* ---- 5. stage 3: vocabulary --------------------------------------------------------- */

typedef struct cand {
    float s[VOCAB_CAND];
    int id[VOCAB_CAND];
} cand;

static inline void cand_push(cand *c, float s, int id) {
    if (s <= c->s[VOCAB_CAND - 1]) return;
    int k = VOCAB_CAND - 1;
    while (k > 0 && c->s[k - 1] < s) c->s[k] = c->s[k - 1], c->id[k] = c->id[k - 1], k--;
    c->s[k] = s, c->id[k] = id;
}

/* Features of every token: [embedding row | LM-head row with the final
 * norm gain] (public), the same un-rotated (encrypted): [V][2d]. */
static float *vocab_features(audit *a, const ee_gguf *g) {
    const int d = a->hp.n_embd, V = a->hp.n_vocab;
    const bool pub = g == a->pub;
    float *E = NULL, *H = NULL, *gn = NULL, *F = NULL;
    const char *head = ee_gguf_find_tensor(g, "output.weight") ? "output.weight" : "token_embd.weight";
    if (load(a, g, "token_embd.weight", d, V, &E) || load(a, g, head, d, V, &H)) goto done;
    if (pub) {
        if (load(a, g, "output_norm.weight", d, 1, &gn)) goto done;
        scale_cols(H, V, d, gn);
    } else {
        float *t = unrotate(a, E, V);
        free(E), E = t;
        t = unrotate(a, H, V);
        free(H), H = t;
        if (!E || !H) goto oom;
    }
    if (!(F = malloc(sizeof(float) * (size_t)V * 2 * d))) goto oom;
    for (int64_t i = 0; i < V; i++) {
        memcpy(F + i * 2 * d, E + i * d, sizeof(float) * d);
        memcpy(F + i * 2 * d + d, H + i * d, sizeof(float) * d);
    }
    goto done;
oom:
    ee_err_set(a->err, "out of memory building vocabulary features");
done:
    free(E), free(H), free(gn);
    return F;
}

static int stage_vocab(audit *a, ee_audit_result *res) {
    const int d2 = 2 * a->hp.n_embd, V = a->hp.n_vocab, k = VOCAB_PROJ;
    float *FP = vocab_features(a, a->pub), *FE = FP ? vocab_features(a, a->enc) : NULL;
    float *P = malloc(sizeof(float) * (size_t)k * d2);
    float *AP = malloc(sizeof(float) * (size_t)V * k), *AE = malloc(sizeof(float) * (size_t)V * k);
    float *halfn = malloc(sizeof(float) * V);
    float *S = malloc(sizeof(float) * (size_t)VOCAB_BLOCK * V);
    cand *cands = malloc(sizeof(cand) * V);
    double *best2 = malloc(sizeof(double) * V * 2); /* per row: d1^2, margin */
    int rc = -1;
    if (!FP || !FE) goto done;
    if (!P || !AP || !AE || !halfn || !S || !cands || !best2) {
        ee_err_set(a->err, "out of memory matching the vocabulary");
        goto done;
    }
    /* Random Gaussian projection (distances kept up to a few percent). */
    uint64_t s = a->o.seed ^ 0x5EED0F0CAB0ull;
    for (size_t i = 0; i < (size_t)k * d2; i++) P[i] = (float)gauss(&s);
    ee_sgemm_nt(FP, P, AP, V, k, d2);
    ee_sgemm_nt(FE, P, AE, V, k, d2);
    for (int j = 0; j < V; j++) {
        double n = 0;
        for (int c = 0; c < k; c++) n += (double)AP[(size_t)j * k + c] * AP[(size_t)j * k + c];
        halfn[j] = (float)(0.5 * n);
    }
    /* Candidates: the VOCAB_CAND largest ae.ap - |ap|^2/2 (= smallest
     * projected distances) per encrypted row. */
    for (int e0 = 0; e0 < V; e0 += VOCAB_BLOCK) {
        const int nb = V - e0 < VOCAB_BLOCK ? V - e0 : VOCAB_BLOCK;
        ee_sgemm_nt(AE + (size_t)e0 * k, AP, S, nb, V, k);
#pragma omp parallel for num_threads(ee_kernels_threads()) schedule(static)
        for (int i = 0; i < nb; i++) {
            cand *c = &cands[e0 + i];
            for (int t = 0; t < VOCAB_CAND; t++) c->s[t] = -INFINITY, c->id[t] = -1;
            const float *row = S + (size_t)i * V;
            for (int j = 0; j < V; j++) cand_push(c, row[j] - halfn[j], j);
        }
    }
    /* Exact re-ranking in the full feature space. */
#pragma omp parallel for num_threads(ee_kernels_threads()) schedule(static)
    for (int e = 0; e < V; e++) {
        double b1 = INFINITY, b2 = INFINITY;
        int j1 = -1, j2 = -1;
        for (int t = 0; t < VOCAB_CAND; t++) {
            int j = cands[e].id[t];
            if (j < 0) continue;
            double dist = 0;
            const float *x = FP + (size_t)j * d2, *y = FE + (size_t)e * d2;
            for (int c = 0; c < d2; c++) dist += ((double)x[c] - y[c]) * ((double)x[c] - y[c]);
            if (dist < b1) b2 = b1, j2 = j1, b1 = dist, j1 = j;
            else if (dist < b2) b2 = dist, j2 = j;
        }
        res->vocab_map[e] = j1;
        /* Distance of the point from the bisector between its two nearest
         * public rows: how far noise would have to push it to flip. */
        double sep = 0;
        if (j2 >= 0)
            for (int c = 0; c < d2; c++) {
                double t = (double)FP[(size_t)j1 * d2 + c] - FP[(size_t)j2 * d2 + c];
                sep += t * t;
            }
        best2[2 * e] = b1;
        best2[2 * e + 1] = j2 < 0 ? INFINITY : sep > 0 ? (b2 - b1) / (2 * sqrt(sep)) : 0;
    }
    /* The noise level per coordinate, from the typical nearest distance
     * (d1^2 ~ 2d sigma^2 for the right match): a match is unambiguous when
     * the point lies more than VOCAB_SIGMAS sigma from the bisector, and
     * no other encrypted row claims the same public row. Exact duplicates
     * (margin 0) are never unambiguous. */
    double *d1s = malloc(sizeof(double) * V);
    if (!d1s) {
        ee_err_set(a->err, "out of memory");
        goto done;
    }
    for (int e = 0; e < V; e++) d1s[e] = best2[2 * e];
    const double sigma = sqrt(median(d1s, V) / d2);
    free(d1s);
    int *claims = calloc((size_t)V, sizeof(int));
    if (!claims) {
        ee_err_set(a->err, "out of memory");
        goto done;
    }
    for (int e = 0; e < V; e++)
        if (res->vocab_map[e] >= 0) claims[res->vocab_map[e]]++;
    int n = 0;
    for (int e = 0; e < V; e++) {
        int j = res->vocab_map[e];
        res->vocab_sure[e] = j >= 0 && claims[j] == 1 && best2[2 * e + 1] > 0 &&
                             best2[2 * e + 1] > VOCAB_SIGMAS * sigma;
        n += res->vocab_sure[e];
    }
    free(claims);
    res->vocab_recovered = (double)n / V;
    rc = 0;
done:
    free(FP), free(FE), free(P), free(AP), free(AE), free(halfn), free(S), free(cands), free(best2);
    return rc;
}

/* ---- 6. stage 4: per-head maps ------------------------------------------------------- */

/* Orthonormal basis (Gram-Schmidt, twice) of the rows B[r][d] -> Qb[r][d]. */
static void orthonormal_rows(const float *B, int r, int d, double *Qb) {
    for (int i = 0; i < r; i++) {
        double *q = Qb + (size_t)i * d;
        for (int c = 0; c < d; c++) q[c] = B[(size_t)i * d + c];
        for (int pass = 0; pass < 2; pass++)
            for (int j = 0; j < i; j++) {
                const double *p = Qb + (size_t)j * d;
                double dot = 0;
                for (int c = 0; c < d; c++) dot += q[c] * p[c];
                for (int c = 0; c < d; c++) q[c] -= dot * p[c];
            }
        double n = 0;
        for (int c = 0; c < d; c++) n += q[c] * q[c];
        n = sqrt(n);
        for (int c = 0; c < d; c++) q[c] = n > 0 ? q[c] / n : 0;
    }
}

/* Relative least-squares residual of A [r][d] ~ M B over all maps M
 * acting within blocks of `blk` rows: the part of A's rows outside the
 * span of the matching block of B. */
static double map_residual(const float *A, const float *B, int r, int blk, int d, double *Qb) {
    double res = 0, tot = 0;
    for (int b0 = 0; b0 < r; b0 += blk) {
        orthonormal_rows(B + (size_t)b0 * d, blk, d, Qb);
        for (int i = b0; i < b0 + blk; i++) {
            const float *x = A + (size_t)i * d;
            double n = 0, proj = 0;
            for (int c = 0; c < d; c++) n += (double)x[c] * x[c];
            for (int j = 0; j < blk; j++) {
                double dot = 0;
                for (int c = 0; c < d; c++) dot += x[c] * Qb[(size_t)j * d + c];
                proj += dot * dot;
            }
            res += fmax(n - proj, 0.0);
            tot += n;
        }
    }
    return tot > 0 ? sqrt(res / tot) : 1.0;
}

/* Match the n encrypted head blocks of `suffix` in layer l to public ones;
 * returns the number matched unambiguously, residuals appended. */
static int heads_of(audit *a, int l, const char *suffix, int n, int blk, const float *gain,
                    double *resid, int *n_resid, int *n_sure) {
    const int d = a->hp.n_embd, hd = a->hp.head_dim;
    float *X = NULL, *Y = NULL, *Z = NULL;
    double *C = malloc(sizeof(double) * n * n), *Qb = malloc(sizeof(double) * blk * d);
    int rc = -1;
    if (!C || !Qb) {
        ee_err_set(a->err, "out of memory");
        goto done;
    }
    if (load_layer(a, a->pub, l, suffix, d, (int64_t)n * hd, &X) ||
        load_layer(a, a->enc, l, suffix, d, (int64_t)n * hd, &Y))
        goto done;
    scale_cols(X, (int64_t)n * hd, d, gain);
    if (!(Z = unrotate(a, Y, (int64_t)n * hd))) {
        ee_err_set(a->err, "out of memory");
        goto done;
    }
#pragma omp parallel for collapse(2) num_threads(ee_kernels_threads()) schedule(dynamic)
    for (int s = 0; s < n; s++)
        for (int h = 0; h < n; h++) {
            double *q = malloc(sizeof(double) * blk * d);
            C[s * n + h] = q ? map_residual(Z + (size_t)s * hd * d, X + (size_t)h * hd * d, hd, blk, d, q)
                             : INFINITY;
            free(q);
        }
    /* Unambiguous: the pair is each other's best (row and column) and
     * clearly ahead of the runner-up in its row. */
    for (int s = 0; s < n; s++) {
        double b1 = INFINITY, b2 = INFINITY;
        int h1 = -1;
        for (int h = 0; h < n; h++) {
            double c = C[s * n + h];
            if (c < b1) b2 = b1, b1 = c, h1 = h;
            else if (c < b2) b2 = c;
        }
        bool mutual = h1 >= 0;
        for (int t = 0; t < n && mutual; t++) mutual = t == s || C[t * n + h1] > b1;
        if (mutual && (n == 1 ? b1 < 0.5 : b1 < HEAD_RATIO * b2)) {
            (*n_sure)++;
            resid[(*n_resid)++] = b1;
        }
    }
    rc = 0;
done:
    free(X), free(Y), free(Z), free(C), free(Qb);
    return rc;
}

static int stage_heads(audit *a, ee_audit_result *res) {
    const int L = a->hp.n_layer, nh = a->hp.n_head, nkv = a->hp.n_head_kv, d = a->hp.n_embd;
    double *resid = malloc(sizeof(double) * (size_t)L * (nh + 2 * nkv));
    int n_resid = 0, sq = 0, sk = 0, sv = 0, rc = 0;
    if (!resid) return ee_err_set(a->err, "out of memory");
    for (int l = 0; l < L && rc == 0; l++) {
        float *ga = NULL;
        if ((rc = load_layer(a, a->pub, l, "attn_norm", d, 1, &ga))) break;
        /* q, k: a 2x2 map per RoPE pair; v: one hd x hd map per head. */
        rc = heads_of(a, l, "attn_q", nh, 2, ga, resid, &n_resid, &sq) ||
             heads_of(a, l, "attn_k", nkv, 2, ga, resid, &n_resid, &sk) ||
             heads_of(a, l, "attn_v", nkv, a->hp.head_dim, ga, resid, &n_resid, &sv);
        free(ga);
    }
    if (rc == 0) {
        res->heads_q = (double)sq / ((double)L * nh);
        res->heads_k = (double)sk / ((double)L * nkv);
        res->heads_v = (double)sv / ((double)L * nkv);
        res->head_residual = median(resid, n_resid);
    }
    free(resid);
    return rc ? -1 : 0;
}

/* ---- 7. driver ----------------------------------------------------------------------- */

static int check_inputs(const ee_gguf *enc, const ee_gguf *pub, ee_llama_hparams *hp, ee_err *err) {
    if (!ee_model_is_encrypted(enc))
        return ee_err_set(err, "--model is not an encrypted model (no ee.scheme); pass the "
                               "encrypted file as --model and the public one as --public");
    if (ee_model_is_encrypted(pub))
        return ee_err_set(err, "--public is an encrypted model (ee.scheme is set); pass the "
                               "plaintext public model");
    const char *scheme = ee_gguf_get_str(enc, "ee.scheme", NULL);
    if (!scheme || strncmp(scheme, "ee-llama-", 9) != 0)
        return ee_err_set(err, "--model: scheme '%s' is not one this audit attacks (ee-llama-*, "
                               "ee-bert-*)", scheme ? scheme : "?");
    ee_llama_hparams hq;
    if (ee_llama_read_hparams(enc, hp, err)) return ee_err_wrap(err, "--model");
    if (ee_llama_read_hparams(pub, &hq, err)) return ee_err_wrap(err, "--public");
    const struct {
        const char *name;
        int e, p;
    } f[] = {{"n_vocab", hp->n_vocab, hq.n_vocab},     {"n_embd", hp->n_embd, hq.n_embd},
             {"n_layer", hp->n_layer, hq.n_layer},     {"n_head", hp->n_head, hq.n_head},
             {"n_head_kv", hp->n_head_kv, hq.n_head_kv}, {"n_ff", hp->n_ff, hq.n_ff}};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        if (f[i].e != f[i].p)
            return ee_err_set(err, "shape mismatch: %s is %d in the encrypted model but %d in the "
                                   "public one (not a relative of each other)",
                              f[i].name, f[i].e, f[i].p);
    if (hp->head_dim % 2) return ee_err_set(err, "head dimension %d is odd", hp->head_dim);
    return 0;
}

int ee_audit_run(const ee_gguf *enc, const ee_gguf *pub, const ee_audit_opts *opts,
                 ee_audit_result *res, ee_err *err) {
    memset(res, 0, sizeof *res);
    audit a = {.enc = enc, .pub = pub, .err = err};
    if (opts) a.o = *opts;
    if (!(a.o.perturb >= 0 && a.o.perturb <= 10))
        return ee_err_set(err, "perturbation %g is outside [0, 10]", a.o.perturb);
    a.rng = a.o.seed * 0x9E3779B97F4A7C15ull + 1;
    const char *scheme = ee_gguf_get_str(enc, "ee.scheme", NULL);
    if (scheme && strncmp(scheme, "ee-bert-", 8) == 0 && !ee_model_is_encrypted(pub)) {
        const char *parch = ee_gguf_get_str(pub, "general.architecture", NULL);
        if (!parch || strcmp(parch, "bert") != 0)
            return ee_err_set(err, "--public: architecture '%s', but the encrypted model is a "
                                   "bert encoder", parch ? parch : "?");
        return ee_audit_bert_run(enc, pub, opts, res, err);
    }
    if (check_inputs(enc, pub, &a.hp, err)) return -1;
    const ee_llama_hparams *hp = &a.hp;
    res->n_vocab = hp->n_vocab, res->n_layer = hp->n_layer, res->n_embd = hp->n_embd;
    res->n_ff = hp->n_ff, res->n_head = hp->n_head, res->n_head_kv = hp->n_head_kv;
    res->vocab_map = malloc(sizeof(int32_t) * hp->n_vocab);
    res->vocab_sure = calloc((size_t)hp->n_vocab, 1);
    a.R = malloc(sizeof(double) * hp->n_embd * hp->n_embd);
    if (!res->vocab_map || !res->vocab_sure || !a.R) {
        free(a.R);
        ee_audit_result_free(res);
        return ee_err_set(err, "out of memory");
    }
    double t0 = ee_now_ms(), t = t0;
    res->rot_start = "layer-0 Gram rows";
    int rc = stage_rotation(&a, res) || stage_refine(&a, res);
    res->seconds_rotation = (ee_now_ms() - t) / 1e3;
    t = ee_now_ms();
    if (!rc) rc = stage_vocab(&a, res);
    res->seconds_vocab = (ee_now_ms() - t) / 1e3;
    t = ee_now_ms();
    if (!rc) rc = stage_heads(&a, res);
    res->seconds_heads = (ee_now_ms() - t) / 1e3;
    res->seconds = (ee_now_ms() - t0) / 1e3;
    free(a.R);
    if (rc) {
        ee_audit_result_free(res);
        return -1;
    }
    return 0;
}

void ee_audit_result_free(ee_audit_result *res) {
    free(res->vocab_map);
    free(res->vocab_sure);
    free(res->resid_map);
    res->vocab_map = NULL;
    res->vocab_sure = NULL;
    res->resid_map = NULL;
}
