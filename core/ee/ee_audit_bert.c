/* The weight-alignment attack on an encrypted BERT encoder (ee-bert-v1).
 *
 * Adversary: a worker holding the encrypted GGUF and the public weights
 * (or a perturbed copy: --perturb simulates a private fine-tune). The
 * scheme can only permute the residual stream (docs/EE.md), so:
 *   1. residual permutation: every coordinate j of the stream has a
 *      fingerprint that the permutation moves but does not change: its
 *      column of the position and token-type tables and its entry in every
 *      gain and bias on the stream. Nearest fingerprints, made one-to-one
 *      by a linear assignment, give P;
 *   2. vocabulary: with P undone, each encrypted token row is the public
 *      row of its plaintext id (exactly, unperturbed): nearest row by L2
 *      over the whole vocabulary (blocked sgemm);
 *   3. MLP channels per layer: ffn_up rows with P undone, matched the same
 *      way (one assignment per layer);
 *   4. heads per layer: the Gram matrix B^T B of a head's q, k or v rows
 *      (P undone) does not change under B -> s R B (up to s^2: compared
 *      normalised), so heads match by nearest Gram.
 * With P and the vocabulary known, an encrypted embedding is the plaintext
 * one with its coordinates permuted back, and encrypted ids are text. A
 * match counts as recovered only when it is unambiguous (its cost is well
 * below the runner-up's). */
#include "ee_audit.h"

#include "ee_arch.h"
#include "ee_clock.h"
#include "ee_lap.h"
#include "ee_linalg.h"
#include "ee_tensor_io.h"

#include <cblas.h>
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SURE_RATIO 0.25 /* best cost below a quarter of the runner-up's */

typedef struct baudit {
    const ee_gguf *enc, *pub;
    ee_audit_opts o;
    int d, L, nh, hd, ff, V, n_ctx, n_types;
    ee_err *err;
} baudit;

static uint64_t mix(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* [rows][cols] as f32; public tensors get the simulated fine-tune noise
 * (perturb x the tensor's std; a vector: x its RMS), seeded by name. */
static float *load(baudit *a, const ee_gguf *g, ee_tensor role, int l, const char *suffix,
                   int cols, int rows) {
    char name[96];
    ee_tensor_name(name, sizeof name, role, l, suffix);
    double *v = ee_tensor_load_d(g, name, cols, rows, a->err);
    if (!v) {
        ee_err_wrap(a->err, "%s model", g == a->pub ? "public" : "encrypted");
        return NULL;
    }
    const size_t n = (size_t)rows * cols;
    float *f = malloc(sizeof(float) * n);
    if (!f) {
        free(v);
        ee_err_set(a->err, "out of memory loading '%s'", name);
        return NULL;
    }
    double noise = 0;
    if (g == a->pub && a->o.perturb > 0) {
        double s = 0, s2 = 0;
        for (size_t i = 0; i < n; i++) s += v[i], s2 += v[i] * v[i];
        double mean = s / n;
        noise = a->o.perturb * (rows == 1 ? sqrt(s2 / n) : sqrt(fmax(s2 / n - mean * mean, 0)));
    }
    uint64_t rng = a->o.seed;
    for (const char *p = name; *p; p++) rng = (rng ^ (uint8_t)*p) * 0x100000001B3ull;
    for (size_t i = 0; i < n; i++) {
        double x = v[i];
        if (noise > 0) {
            double u1 = ((mix(&rng) >> 11) + 1.0) * 0x1.0p-53, u2 = (mix(&rng) >> 11) * 0x1.0p-53;
            x += noise * sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
        }
        f[i] = (float)x;
    }
    free(v);
    return f;
}

/* For each row of A [na][k], the nearest row of B [nb][k] by L2: best[i],
 * and whether it is unambiguous. Blocked sgemm: |a|^2 + |b|^2 - 2 a.b. */
static int nearest_rows(const float *A, int na, const float *B, int nb, int k, int32_t *best,
                        uint8_t *sure, double *cost /* [na][nb] or NULL */, ee_err *err) {
    enum { BLK = 256 };
    float *S = malloc(sizeof(float) * (size_t)BLK * nb);
    double *nbb = malloc(sizeof(double) * nb);
    if (!S || !nbb) {
        free(S);
        free(nbb);
        return ee_err_set(err, "out of memory");
    }
    for (int j = 0; j < nb; j++) {
        double s = 0;
        for (int c = 0; c < k; c++) s += (double)B[(size_t)j * k + c] * B[(size_t)j * k + c];
        nbb[j] = s;
    }
    for (int i0 = 0; i0 < na; i0 += BLK) {
        int m = na - i0 < BLK ? na - i0 : BLK;
        ee_sgemm_nt(A + (size_t)i0 * k, B, S, m, nb, k);
        for (int r = 0; r < m; r++) {
            const float *a = A + (size_t)(i0 + r) * k;
            double na2 = 0;
            for (int c = 0; c < k; c++) na2 += (double)a[c] * a[c];
            double b1 = DBL_MAX, b2 = DBL_MAX;
            int arg = -1;
            for (int j = 0; j < nb; j++) {
                double dist = fmax(na2 + nbb[j] - 2.0 * S[(size_t)r * nb + j], 0.0);
                if (cost) cost[(size_t)(i0 + r) * nb + j] = dist;
                if (dist < b1) b2 = b1, b1 = dist, arg = j;
                else if (dist < b2) b2 = dist;
            }
            best[i0 + r] = arg;
            if (sure) sure[i0 + r] = b1 < SURE_RATIO * b2;
        }
    }
    free(S);
    free(nbb);
    return 0;
}

/* Match na rows of A to the rows of B one-to-one: nearest costs, then a
 * linear assignment. Returns the fraction matched unambiguously. */
static int assign_rows(const float *A, const float *B, int n, int k, int32_t *map, double *frac,
                       ee_err *err) {
    double *cost = malloc(sizeof(double) * (size_t)n * n);
    int32_t *best = malloc(sizeof(int32_t) * n);
    uint8_t *sure = malloc(n);
    int *col = malloc(sizeof(int) * n);
    int rc = -1;
    if (!cost || !best || !sure || !col) {
        ee_err_set(err, "out of memory");
        goto done;
    }
    if (nearest_rows(A, n, B, n, k, best, sure, cost, err) || ee_lap_solve(cost, n, col, err))
        goto done;
    long ok = 0;
    for (int i = 0; i < n; i++) {
        map[i] = col[i];
        ok += sure[i] && best[i] == col[i];
    }
    *frac = (double)ok / n;
    rc = 0;
done:
    free(cost);
    free(best);
    free(sure);
    free(col);
    return rc;
}

/* X [rows][d] with the residual permutation undone: out[r][map[j]] = X[r][j]. */
static void unpermute_cols(const float *X, int rows, int d, const int32_t *map, float *out) {
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < d; j++) out[(size_t)r * d + map[j]] = X[(size_t)r * d + j];
}

/* ---- 1. residual permutation ---------------------------------------------------- */

/* Fingerprint of every residual coordinate: [d][F], F = n_ctx + n_types +
 * every stream vector (norm gains and biases, output biases). */
static float *fingerprints(baudit *a, const ee_gguf *g, int *F_out) {
    const int d = a->d;
    const int n_vec = 2 + 6 * a->L;
    const int F = a->n_ctx + a->n_types + n_vec;
    float *fp = malloc(sizeof(float) * (size_t)d * F);
    if (!fp) {
        ee_err_set(a->err, "out of memory");
        return NULL;
    }
    float *pos = load(a, g, EE_T_POS_EMBD, 0, "weight", d, a->n_ctx);
    float *typ = pos ? load(a, g, EE_T_TOKEN_TYPES, 0, "weight", d, a->n_types) : NULL;
    if (!typ) {
        free(pos);
        free(fp);
        return NULL;
    }
    for (int j = 0; j < d; j++) {
        for (int t = 0; t < a->n_ctx; t++) fp[(size_t)j * F + t] = pos[(size_t)t * d + j];
        for (int t = 0; t < a->n_types; t++) fp[(size_t)j * F + a->n_ctx + t] = typ[(size_t)t * d + j];
    }
    free(pos);
    free(typ);
    struct { ee_tensor role; const char *suffix; bool per_layer; } vecs[] = {
        {EE_T_TOKEN_EMBD_NORM, "weight", false}, {EE_T_TOKEN_EMBD_NORM, "bias", false},
        {EE_T_ATTN_OUT_NORM, "weight", true},    {EE_T_ATTN_OUT_NORM, "bias", true},
        {EE_T_LAYER_OUT_NORM, "weight", true},   {EE_T_LAYER_OUT_NORM, "bias", true},
        {EE_T_ATTN_OUT, "bias", true},           {EE_T_FFN_DOWN, "bias", true},
    };
    int col = a->n_ctx + a->n_types;
    for (size_t v = 0; v < sizeof vecs / sizeof vecs[0]; v++) {
        for (int l = 0; l < (vecs[v].per_layer ? a->L : 1); l++) {
            float *x = load(a, g, vecs[v].role, l, vecs[v].suffix, d, 1);
            if (!x) {
                free(fp);
                return NULL;
            }
            for (int j = 0; j < d; j++) fp[(size_t)j * F + col] = x[j];
            free(x);
            col++;
        }
    }
    *F_out = F;
    return fp;
}

/* ---- 2. heads ----------------------------------------------------------------------------- */

/* Normalised Gram B^T B of each head's rows of W [d][d] (columns already
 * in public order): [nh][d*d]. */
static float *head_grams(baudit *a, const float *W) {
    const int d = a->d, hd = a->hd;
    float *G = malloc(sizeof(float) * (size_t)a->nh * d * d);
    if (!G) {
        ee_err_set(a->err, "out of memory");
        return NULL;
    }
    for (int h = 0; h < a->nh; h++) {
        float *g = G + (size_t)h * d * d;
        /* g = B^T B with B = rows h*hd.. of W: (d x hd)(hd x d) */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, d, d, hd, 1.0f,
                    W + (size_t)h * hd * d, d, W + (size_t)h * hd * d, d, 0.0f, g, d);
        double tr = 0;
        for (int i = 0; i < d; i++) tr += g[(size_t)i * d + i];
        if (tr > 0)
            for (size_t i = 0; i < (size_t)d * d; i++) g[i] = (float)(g[i] / tr);
    }
    return G;
}

static int match_heads(baudit *a, int l, const int32_t *rmap, double *ok_q, double *ok_k,
                       double *ok_v) {
    const int d = a->d;
    const ee_tensor roles[3] = {EE_T_ATTN_Q, EE_T_ATTN_K, EE_T_ATTN_V};
    double *oks[3] = {ok_q, ok_k, ok_v};
    for (int r = 0; r < 3; r++) {
        float *We = load(a, a->enc, roles[r], l, "weight", d, d);
        float *Wp = We ? load(a, a->pub, roles[r], l, "weight", d, d) : NULL;
        float *Wu = Wp ? malloc(sizeof(float) * (size_t)d * d) : NULL;
        float *Ge = NULL, *Gp = NULL;
        int32_t best[64];
        uint8_t sure[64];
        int rc = -1;
        if (!Wu) {
            if (Wp) ee_err_set(a->err, "out of memory");
            goto next;
        }
        unpermute_cols(We, d, d, rmap, Wu);
        Ge = head_grams(a, Wu);
        Gp = Ge ? head_grams(a, Wp) : NULL;
        if (!Gp || nearest_rows(Ge, a->nh, Gp, a->nh, d * d, best, sure, NULL, a->err)) goto next;
        for (int h = 0; h < a->nh; h++) *oks[r] += sure[h];
        rc = 0;
    next:
        free(We);
        free(Wp);
        free(Wu);
        free(Ge);
        free(Gp);
        if (rc) return -1;
    }
    return 0;
}

/* ---- 3. the attack --------------------------------------------------------------- */

static int read_dims(baudit *a, const ee_gguf *g, const char *which) {
    uint32_t d, L, nh, ff;
    if (ee_gguf_get_u32(g, "bert.embedding_length", &d, a->err) ||
        ee_gguf_get_u32(g, "bert.block_count", &L, a->err) ||
        ee_gguf_get_u32(g, "bert.attention.head_count", &nh, a->err) ||
        ee_gguf_get_u32(g, "bert.feed_forward_length", &ff, a->err))
        return ee_err_wrap(a->err, "%s model", which);
    if (d == 0 || nh == 0 || d % nh || d > 8192 || L == 0 || L > 512 || ff == 0 || nh > 64)
        return ee_err_set(a->err, "%s model: unsupported shape", which);
    const ee_gguf_tensor *te = ee_gguf_find_tensor(g, "token_embd.weight");
    const ee_gguf_tensor *tp = ee_gguf_find_tensor(g, "position_embd.weight");
    const ee_gguf_tensor *tt = ee_gguf_find_tensor(g, "token_types.weight");
    if (!te || !tp || !tt || te->n_dims != 2 || tp->n_dims != 2 || tt->n_dims != 2)
        return ee_err_set(a->err, "%s model: embedding tables missing or not 2-d", which);
    if (a->d && ((int)d != a->d || (int)L != a->L || (int)nh != a->nh || (int)ff != a->ff ||
                 (int)te->ne[1] != a->V || (int)tp->ne[1] != a->n_ctx || (int)tt->ne[1] != a->n_types))
        return ee_err_set(a->err, "the encrypted and public models differ in shape");
    a->d = (int)d, a->L = (int)L, a->nh = (int)nh, a->hd = (int)(d / nh), a->ff = (int)ff;
    a->V = (int)te->ne[1], a->n_ctx = (int)tp->ne[1], a->n_types = (int)tt->ne[1];
    return 0;
}

int ee_audit_bert_run(const ee_gguf *enc, const ee_gguf *pub, const ee_audit_opts *opts,
                      ee_audit_result *res, ee_err *err) {
    memset(res, 0, sizeof *res);
    baudit a = {.enc = enc, .pub = pub, .err = err};
    if (opts) a.o = *opts;
    if (!(a.o.perturb >= 0 && a.o.perturb <= 10))
        return ee_err_set(err, "perturbation %g is outside [0, 10]", a.o.perturb);
    if (read_dims(&a, enc, "encrypted") || read_dims(&a, pub, "public")) return -1;
    const int d = a.d;
    double t0 = ee_now_ms();
    res->n_vocab = a.V, res->n_layer = a.L, res->n_embd = d, res->n_ff = a.ff;
    res->n_head = res->n_head_kv = a.nh;
    res->rot_start = "residual permutation (post-LN encoder)";
    res->vocab_map = malloc(sizeof(int32_t) * a.V);
    res->vocab_sure = malloc(a.V);
    res->resid_map = malloc(sizeof(int32_t) * d);
    float *fe = NULL, *fpub = NULL, *Ee = NULL, *Ep = NULL, *Eu = NULL;
    int rc = -1;
    if (!res->vocab_map || !res->vocab_sure || !res->resid_map) {
        ee_err_set(err, "out of memory");
        goto done;
    }
    /* 1. residual permutation */
    int F = 0, F2 = 0;
    fe = fingerprints(&a, enc, &F);
    fpub = fe ? fingerprints(&a, pub, &F2) : NULL;
    if (!fpub || assign_rows(fe, fpub, d, F, res->resid_map, &res->resid_perm_recovered, err))
        goto done;
    res->seconds_rotation = (ee_now_ms() - t0) / 1e3;
    /* 2. vocabulary */
    double t1 = ee_now_ms();
    Ee = load(&a, enc, EE_T_TOKEN_EMBD, 0, "weight", d, a.V);
    Ep = Ee ? load(&a, pub, EE_T_TOKEN_EMBD, 0, "weight", d, a.V) : NULL;
    Eu = Ep ? malloc(sizeof(float) * (size_t)a.V * d) : NULL;
    if (!Eu) {
        if (Ep) ee_err_set(err, "out of memory");
        goto done;
    }
    unpermute_cols(Ee, a.V, d, res->resid_map, Eu);
    if (nearest_rows(Eu, a.V, Ep, a.V, d, res->vocab_map, res->vocab_sure, NULL, err)) goto done;
    long ok = 0;
    for (int i = 0; i < a.V; i++) ok += res->vocab_sure[i];
    res->vocab_recovered = (double)ok / a.V;
    res->seconds_vocab = (ee_now_ms() - t1) / 1e3;
    free(Ee), free(Ep), free(Eu);
    Ee = Ep = Eu = NULL;
    /* 3. MLP channels, 4. heads */
    double t2 = ee_now_ms(), mlp = 0, hq = 0, hk = 0, hv = 0;
    int32_t *fmap = malloc(sizeof(int32_t) * a.ff);
    if (!fmap) {
        ee_err_set(err, "out of memory");
        goto done;
    }
    for (int l = 0; l < a.L; l++) {
        float *Ue = load(&a, enc, EE_T_FFN_UP, l, "weight", d, a.ff);
        float *Up = Ue ? load(&a, pub, EE_T_FFN_UP, l, "weight", d, a.ff) : NULL;
        float *Uu = Up ? malloc(sizeof(float) * (size_t)a.ff * d) : NULL;
        double frac = 0;
        int bad = !Uu;
        if (Uu) {
            unpermute_cols(Ue, a.ff, d, res->resid_map, Uu);
            bad = assign_rows(Uu, Up, a.ff, d, fmap, &frac, err);
        } else if (Up) {
            ee_err_set(err, "out of memory");
        }
        free(Ue), free(Up), free(Uu);
        if (bad || match_heads(&a, l, res->resid_map, &hq, &hk, &hv)) {
            free(fmap);
            goto done;
        }
        mlp += frac;
        res->mlp_layers_full += frac == 1.0;
    }
    free(fmap);
    res->mlp_perm_recovered = mlp / a.L;
    res->heads_q = hq / (a.L * a.nh), res->heads_k = hk / (a.L * a.nh), res->heads_v = hv / (a.L * a.nh);
    res->seconds_heads = (ee_now_ms() - t2) / 1e3;
    res->seconds = (ee_now_ms() - t0) / 1e3;
    rc = 0;
done:
    free(fe), free(fpub), free(Ee), free(Ep), free(Eu);
    if (rc) ee_audit_result_free(res);
    return rc;
}
