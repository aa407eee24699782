/* Property tests of Equivariant Encryption, one operation at a time.
 *
 * For each layer kind F and each transform family the scheme (or a sibling
 * architecture: BERT, CNN) uses with it, under three keys (EE_P_TEST
 * streams, a distinct index per transform), on random inputs:
 *
 *  (a) recoverability: decrypt(encrypt(x)) == x BIT FOR BIT (memcmp).
 *      Permutations (and signed permutations) are exact in f32. Maps with
 *      arbitrary reals (orthogonal rotations, positive scales) keep the
 *      ciphertext in double and round the decryption to float: the double
 *      round-off (~1e-16 relative) is far below half an f32 ulp, so the
 *      rounded result is x itself.
 *  (b) equivariance: decrypt(F'(encrypt(x))) ~= F(x), where F' is F with
 *      its parameters transformed as the scheme does (in double, rounded to
 *      f32 like an f32 encrypted file) and run in f32 by OUR kernels
 *      (ee_ops, ee_mat_mul) on f32 ciphertext.
 *
 *      Metric (rel_err below): max_i |dec_i - ref_i| / max_i |ref_i|, i.e.
 *      the worst absolute error relative to the largest |F(x)| of the
 *      tensor; bound TOL = 1e-5. Both sides run in f32, so what is left is
 *      f32 round-off (observed ~1e-7).
 *
 * Negative controls (NEG = 1e-2, i.e. 1000x the tolerance) pin down why
 * the scheme uses the families it does: a scale through SiLU/GELU, a scale
 * on the gate instead of up, an unfolded norm gain, a rotation that moves
 * the all-ones vector through LayerNorm, a full-head rotation of q/k
 * through RoPE, a sign flip through ReLU or max-pooling and a CNN head
 * column left unscaled all break equivariance.
 *
 * Conventions: column vectors, y = W x; a batch X [T][n] stores x_t as
 * rows, so x_t -> Q x_t is X -> X Q^T and its inverse X' -> X' Q.
 * Permutations: perm[i] is the image of i; the encrypted vector has
 * x'[perm[i]] = x[i]. EE_PROPS_VERBOSE=1 prints every measured error. */
#include "ee_cnn.h"
#include "ee_cnn_cipher.h"
#include "ee_encrypt.h"
#include "ee_gguf.h"
#include "ee_key.h"
#include "ee_mat.h"
#include "ee_conv.h"
#include "ee_ops.h"
#include "ee_scheme.h"
#include "ee_testcnn.h"
#include "ee_testmodel.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NKEYS 3
#define TOL 1e-5 /* equivariance bound (rel_err metric above) */
#define NEG 1e-2 /* a negative control must exceed this */
#define SCALE_R 4.0 /* scales log-uniform in [1/4, 4] */

/* ---- keys, streams, transforms --------------------------------------------- */

static void test_key(ee_key *k, int ki) {
    uint8_t b[EE_KEY_BYTES];
    for (int i = 0; i < EE_KEY_BYTES; i++) b[i] = (uint8_t)(0xA5 ^ (ki * 73 + i * 29 + 11));
    ee_key_from_bytes(k, b);
}

/* Stream index: op in the high bits, transform / input number low. Inputs
 * use op indices >= 100, so no input shares a stream with a secret. */
#define IDX(op, j) ((uint32_t)(op) * 256u + (uint32_t)(j))
#define IN(op) (100 + (op))

static void stream(ee_stream *s, int ki, uint32_t idx) {
    ee_key k;
    test_key(&k, ki);
    ee_stream_init(s, &k, EE_P_TEST, idx);
    ee_key_wipe(&k);
}

static void *xalloc(size_t bytes) {
    void *p = calloc(1, bytes ? bytes : 1);
    ck_assert_ptr_nonnull(p);
    return p;
}
#define FALLOC(n) ((float *)xalloc((size_t)(n) * sizeof(float)))
#define DALLOC(n) ((double *)xalloc((size_t)(n) * sizeof(double)))

static uint32_t *make_perm(int ki, uint32_t idx, uint32_t n) {
    uint32_t *p = xalloc(n * sizeof *p);
    ee_stream s;
    stream(&s, ki, idx);
    ee_random_permutation(&s, p, n);
    ee_stream_wipe(&s);
    return p;
}

static double *make_orth(int ki, uint32_t idx, int n) {
    double *q = DALLOC((size_t)n * n);
    ee_stream s;
    ee_err err = {{0}};
    stream(&s, ki, idx);
    ck_assert_msg(ee_random_orthogonal(&s, q, n, &err) == 0, "%s", err.msg);
    ee_stream_wipe(&s);
    return q;
}

static double *make_scales(int ki, uint32_t idx, int n, double r) {
    double *c = DALLOC(n);
    ee_stream s;
    stream(&s, ki, idx);
    for (int i = 0; i < n; i++) c[i] = ee_random_scale(&s, r);
    ee_stream_wipe(&s);
    return c;
}

/* Inputs: standard normals (times sd, plus mu) from a test stream. */
static float *make_input(int ki, uint32_t idx, size_t n, double sd, double mu) {
    float *x = FALLOC(n);
    ee_stream s;
    stream(&s, ki, idx);
    for (size_t i = 0; i < n; i++) x[i] = (float)(mu + sd * ee_stream_gauss(&s));
    ee_stream_wipe(&s);
    return x;
}

/* ---- small dense algebra in double (test side) ----------------------------- */

static double *to_d(const float *x, size_t n) {
    double *y = DALLOC(n);
    for (size_t i = 0; i < n; i++) y[i] = x[i];
    return y;
}
static float *to_f(const double *x, size_t n) {
    float *y = FALLOC(n);
    for (size_t i = 0; i < n; i++) y[i] = (float)x[i];
    return y;
}
/* C[m][n] = A[m][k] B[n][k]^T */
static double *mm_nt(const double *A, const double *B, int m, int k, int n) {
    double *C = DALLOC((size_t)m * n);
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double s = 0;
            for (int l = 0; l < k; l++) s += A[(size_t)i * k + l] * B[(size_t)j * k + l];
            C[(size_t)i * n + j] = s;
        }
    return C;
}
/* C[m][n] = A[m][k] B[k][n] */
static double *mm_nn(const double *A, const double *B, int m, int k, int n) {
    double *C = DALLOC((size_t)m * n);
    for (int i = 0; i < m; i++)
        for (int l = 0; l < k; l++) {
            double a = A[(size_t)i * k + l];
            for (int j = 0; j < n; j++) C[(size_t)i * n + j] += a * B[(size_t)l * n + j];
        }
    return C;
}

/* Y[T][rows] = X[T][cols] W^T through the engine's f32 matrix product. */
static void lin(const float *W, int rows, int cols, const float *X, int T, float *Y) {
    ee_mat m = {.type = EE_DT_F32, .rows = rows, .cols = cols,
                .row_bytes = (size_t)cols * sizeof(float), .data = (void *)W, .owned = false};
    ck_assert_int_eq(ee_mat_mul(&m, X, cols, T, Y, rows, 0.0f), 0);
}

/* max|got - ref| / max|ref| */
static double rel_err(const float *got, const float *ref, size_t n) {
    double e = 0, m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - ref[i]);
        if (!(d <= e)) e = d; /* NaN propagates as a failure */
        if (fabs(ref[i]) > m) m = fabs(ref[i]);
    }
    ck_assert_msg(m > 0, "reference is all zeros");
    return e / m;
}

static void note(const char *what, int ki, double e) {
    if (getenv("EE_PROPS_VERBOSE")) fprintf(stderr, "ee_props %-58s key %d  %.3e\n", what, ki, e);
}
static void expect_close(const char *what, int ki, const float *got, const float *ref, size_t n) {
    double e = rel_err(got, ref, n);
    note(what, ki, e);
    ck_assert_msg(e <= TOL, "%s (key %d): rel err %.3e > %.0e", what, ki, e, TOL);
}
static void expect_broken(const char *what, int ki, const float *got, const float *ref, size_t n) {
    double e = rel_err(got, ref, n);
    note(what, ki, e);
    ck_assert_msg(e > NEG, "negative control %s (key %d): rel err %.3e should exceed %.0e", what,
                  ki, e, NEG);
}
static void expect_bitwise(const char *what, int ki, const float *got, const float *ref, size_t n) {
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) bad += memcmp(&got[i], &ref[i], sizeof(float)) != 0;
    note(what, ki, (double)bad);
    ck_assert_msg(bad == 0, "%s (key %d): %zu of %zu values not bitwise equal", what, ki, bad, n);
}

/* (a) for an orthogonal Q (n x n) on T rows: X' = X Q^T in double, X' Q
 * rounded to float must be X. */
static void check_recover_orth(const char *what, int ki, const double *Q, const float *X, int T,
                               int n) {
    double *Xd = to_d(X, (size_t)T * n);
    double *Xe = mm_nt(Xd, Q, T, n, n);
    double *Xb = mm_nn(Xe, Q, T, n, n);
    float *back = to_f(Xb, (size_t)T * n);
    expect_bitwise(what, ki, back, X, (size_t)T * n);
    free(Xd), free(Xe), free(Xb), free(back);
}

/* (a) for a monomial map x'[perm[i]] = s_i x[i] on T rows of n: the pure
 * permutation round trip in f32, and the scaled one with a double
 * ciphertext, both bitwise. */
static void check_recover_monomial(const char *what, int ki, const uint32_t *perm,
                                   const double *s, const float *X, int T, int n) {
    float *ef = FALLOC((size_t)T * n), *back = FALLOC((size_t)T * n);
    double *ed = DALLOC((size_t)T * n);
    for (int t = 0; t < T; t++)
        for (int i = 0; i < n; i++) {
            ef[(size_t)t * n + perm[i]] = X[(size_t)t * n + i];
            ed[(size_t)t * n + perm[i]] = s[i] * X[(size_t)t * n + i];
        }
    char lab[128];
    for (int t = 0; t < T; t++)
        for (int i = 0; i < n; i++) back[(size_t)t * n + i] = ef[(size_t)t * n + perm[i]];
    snprintf(lab, sizeof lab, "%s [perm, f32]", what);
    expect_bitwise(lab, ki, back, X, (size_t)T * n);
    /* (an f32 ciphertext fl(s x) would not do: fl(fl(s x) / s) misses x by
     * an ulp for ~11% of inputs) */
    for (int t = 0; t < T; t++)
        for (int i = 0; i < n; i++)
            back[(size_t)t * n + i] = (float)(ed[(size_t)t * n + perm[i]] / s[i]);
    snprintf(lab, sizeof lab, "%s [perm+scale, double]", what);
    expect_bitwise(lab, ki, back, X, (size_t)T * n);
    free(ef), free(back), free(ed);
}

/* Gather an encrypted channel layout back: out[t][i] = in[t][perm[i]] / s_i
 * (s may be NULL). */
static float *unpermute(const float *in, const uint32_t *perm, const double *s, int T, int n) {
    float *out = FALLOC((size_t)T * n);
    for (int t = 0; t < T; t++)
        for (int i = 0; i < n; i++) {
            double v = in[(size_t)t * n + perm[i]];
            out[(size_t)t * n + i] = (float)(s ? v / s[i] : v);
        }
    return out;
}
/* out[t][perm[i]] = s_i in[t][i] (rounded to f32; s may be NULL). */
static float *permute(const float *in, const uint32_t *perm, const double *s, int T, int n) {
    float *out = FALLOC((size_t)T * n);
    for (int t = 0; t < T; t++)
        for (int i = 0; i < n; i++) {
            double v = in[(size_t)t * n + i];
            out[(size_t)t * n + perm[i]] = (float)(s ? s[i] * v : v);
        }
    return out;
}

/* Sizes: residual d, output m, MLP width FF, rows T. All multiples of 16,
 * so the vectorised activations take the same path at every position. */
enum { D = 64, M = 48, FF = 96, T = 12, TB = 40 /* > EE_FUSED_BATCH_ROWS: sgemm path */ };

/* ---- 1. linear --------------------------------------------------------------- */
/* y = W x.  x' = Q x (Q orthogonal), y' = A y, W' = A W Q^T:
 *   W' x' = A W Q^T Q x = A y.
 * A is a monomial P diag(s) (s > 0; the MLP's channel map) or orthogonal
 * (the residual rotation on the output side of o_proj / down_proj). */
START_TEST(linear_rotation_in_monomial_or_rotation_out) {
    const int ki = _i;
    const int rows_list[2] = {T, TB};
    double *Q = make_orth(ki, IDX(1, 0), D);
    uint32_t *pi = make_perm(ki, IDX(1, 1), M);
    double *s = make_scales(ki, IDX(1, 2), M, SCALE_R);
    double *A = make_orth(ki, IDX(1, 3), M);
    float *W = make_input(ki, IDX(IN(1), 0), (size_t)M * D, 0.125, 0);
    double *Wd = to_d(W, (size_t)M * D);
    double *WQt = mm_nt(Wd, Q, M, D, D); /* W Q^T */

    /* W'_mono: row pi(i) = s_i (W Q^T)[i];  W'_rot = A W Q^T */
    double *Wm = DALLOC((size_t)M * D);
    for (int i = 0; i < M; i++)
        for (int j = 0; j < D; j++) Wm[(size_t)pi[i] * D + j] = s[i] * WQt[(size_t)i * D + j];
    double *Wr = mm_nn(A, WQt, M, M, D);
    float *Wmf = to_f(Wm, (size_t)M * D), *Wrf = to_f(Wr, (size_t)M * D);

    for (int r = 0; r < 2; r++) {
        const int n = rows_list[r];
        float *X = make_input(ki, IDX(IN(1), 1 + r), (size_t)n * D, 1.0, 0);
        check_recover_orth("linear: x = Q^T (Q x)", ki, Q, X, n, D);

        float *Y = FALLOC((size_t)n * M), *Ye = FALLOC((size_t)n * M);
        lin(W, M, D, X, n, Y);
        check_recover_monomial("linear: monomial out", ki, pi, s, Y, n, M);
        check_recover_orth("linear: y = A^T (A y)", ki, A, Y, n, M);

        double *Xd = to_d(X, (size_t)n * D);
        double *Xe = mm_nt(Xd, Q, n, D, D);
        float *Xef = to_f(Xe, (size_t)n * D);

        lin(Wmf, M, D, Xef, n, Ye);
        float *dec = unpermute(Ye, pi, s, n, M);
        expect_close(n == T ? "linear monomial out (fused)" : "linear monomial out (sgemm)", ki,
                     dec, Y, (size_t)n * M);
        free(dec);

        lin(Wrf, M, D, Xef, n, Ye);
        double *Yed = to_d(Ye, (size_t)n * M);
        double *Yb = mm_nn(Yed, A, n, M, M);
        dec = to_f(Yb, (size_t)n * M);
        expect_close(n == T ? "linear rotation out (fused)" : "linear rotation out (sgemm)", ki,
                     dec, Y, (size_t)n * M);
        free(dec), free(Yed), free(Yb), free(Xd), free(Xe), free(Xef), free(X), free(Y), free(Ye);
    }
    free(Q), free(pi), free(s), free(A), free(W), free(Wd), free(WQt), free(Wm), free(Wr);
    free(Wmf), free(Wrf);
}
END_TEST

/* ---- 2. ReLU ------------------------------------------------------------------ */
/* relu(s x) = s relu(x) for s > 0, and relu acts per element, so
 * relu(P diag(s) x) = P diag(s) relu(x). A negative entry (sign flip) does
 * not commute: relu(-x) = -min(x, 0) != -relu(x). */
START_TEST(relu_commutes_with_positive_monomials) {
    const int ki = _i;
    uint32_t *pi = make_perm(ki, IDX(2, 0), D);
    double *s = make_scales(ki, IDX(2, 1), D, SCALE_R);
    float *X = make_input(ki, IDX(IN(2), 0), (size_t)T * D, 1.0, 0);
    check_recover_monomial("relu: monomial round trip", ki, pi, s, X, T, D);
    float *ref = FALLOC((size_t)T * D);
    memcpy(ref, X, (size_t)T * D * sizeof(float));
    ee_relu(ref, (size_t)T * D);

    /* permutation only: bitwise */
    float *Xe = permute(X, pi, NULL, T, D);
    ee_relu(Xe, (size_t)T * D);
    float *dec = unpermute(Xe, pi, NULL, T, D);
    expect_bitwise("relu permutation (bitwise)", ki, dec, ref, (size_t)T * D);
    free(Xe), free(dec);

    /* permutation and positive scales */
    Xe = permute(X, pi, s, T, D);
    ee_relu(Xe, (size_t)T * D);
    dec = unpermute(Xe, pi, s, T, D);
    expect_close("relu positive monomial", ki, dec, ref, (size_t)T * D);
    for (size_t i = 0; i < (size_t)T * D; i++) ck_assert((dec[i] == 0) == (ref[i] == 0));
    free(Xe), free(dec);

    /* negative control: flip the sign of some channels */
    ee_stream st;
    stream(&st, ki, IDX(2, 2));
    int flipped = 0;
    for (int i = 0; i < D; i++)
        if (ee_stream_u64(&st) & 1) s[i] = -s[i], flipped++;
    ee_stream_wipe(&st);
    ck_assert_int_gt(flipped, 0);
    Xe = permute(X, pi, s, T, D);
    ee_relu(Xe, (size_t)T * D);
    dec = unpermute(Xe, pi, s, T, D);
    expect_broken("relu with sign flips", ki, dec, ref, (size_t)T * D);
    free(Xe), free(dec), free(pi), free(s), free(X), free(ref);
}
END_TEST

/* ---- 3. GELU (erf, tanh) and SiLU --------------------------------------------- */
/* f acts per element: f(P x) = P f(x). But f(s x) != s f(x) (they are not
 * positively homogeneous), so no scale may sit on their input: that is why
 * the scheme scales only the up projection (after SiLU's gate). */
typedef void (*act_fn)(float *, size_t);
static const struct {
    const char *name;
    act_fn f;
} ACTS[3] = {{"gelu", ee_gelu}, {"gelu_tanh", ee_gelu_tanh}, {"silu", ee_silu}};

START_TEST(smooth_activations_commute_with_permutations_only) {
    const int ki = _i;
    uint32_t *pi = make_perm(ki, IDX(3, 0), FF);
    double *s = make_scales(ki, IDX(3, 1), FF, SCALE_R);
    float *X = make_input(ki, IDX(IN(3), 0), (size_t)T * FF, 1.5, 0);
    check_recover_monomial("activations: monomial round trip", ki, pi, s, X, T, FF);
    for (int a = 0; a < 3; a++) {
        char what[96];
        float *ref = FALLOC((size_t)T * FF);
        memcpy(ref, X, (size_t)T * FF * sizeof(float));
        ACTS[a].f(ref, (size_t)T * FF);

        float *Xe = permute(X, pi, NULL, T, FF);
        ACTS[a].f(Xe, (size_t)T * FF);
        float *dec = unpermute(Xe, pi, NULL, T, FF);
        snprintf(what, sizeof what, "%s permutation (bitwise)", ACTS[a].name);
        expect_bitwise(what, ki, dec, ref, (size_t)T * FF);
        free(Xe), free(dec);

        Xe = permute(X, pi, s, T, FF);
        ACTS[a].f(Xe, (size_t)T * FF);
        dec = unpermute(Xe, pi, s, T, FF);
        snprintf(what, sizeof what, "%s with positive scales (negative control)", ACTS[a].name);
        expect_broken(what, ki, dec, ref, (size_t)T * FF);
        free(Xe), free(dec), free(ref);
    }
    free(pi), free(s), free(X);
}
END_TEST

/* ---- 4. SwiGLU ------------------------------------------------------------------ */
/* silu(g) * u per channel, so with g' = P g and u' = P diag(c) u:
 *   silu(g') * u' = P diag(c) (silu(g) * u), undone by diag(1/c) P^T.
 * In a Llama MLP (x' = Q x): W_gate' = P W_gate Q^T, W_up' = P C W_up Q^T,
 * W_down' = Q W_down C^-1 P^T, so down' (swiglu(gate' x', up' x')) = Q y.
 * Negative control: the scale on the gate instead (silu is not
 * homogeneous). */
static void mlp(const float *Wg, const float *Wu, const float *Wd, const float *X, float *Y) {
    float *G = FALLOC((size_t)T * FF), *U = FALLOC((size_t)T * FF);
    lin(Wg, FF, D, X, T, G);
    lin(Wu, FF, D, X, T, U);
    ee_swiglu(G, U, (size_t)T * FF);
    lin(Wd, D, FF, G, T, Y);
    free(G), free(U);
}

START_TEST(swiglu_permutation_and_up_scale) {
    const int ki = _i;
    uint32_t *pi = make_perm(ki, IDX(4, 0), FF);
    double *c = make_scales(ki, IDX(4, 1), FF, SCALE_R);
    double *Q = make_orth(ki, IDX(4, 2), D);

    /* the op alone */
    float *G = make_input(ki, IDX(IN(4), 0), (size_t)T * FF, 1.5, 0);
    float *U = make_input(ki, IDX(IN(4), 1), (size_t)T * FF, 1.0, 0);
    check_recover_monomial("swiglu: up round trip", ki, pi, c, U, T, FF);
    float *ref = FALLOC((size_t)T * FF);
    memcpy(ref, G, (size_t)T * FF * sizeof(float));
    ee_swiglu(ref, U, (size_t)T * FF);
    float *Ge = permute(G, pi, NULL, T, FF), *Ue = permute(U, pi, c, T, FF);
    ee_swiglu(Ge, Ue, (size_t)T * FF);
    float *dec = unpermute(Ge, pi, c, T, FF);
    expect_close("swiglu op: perm + up scale", ki, dec, ref, (size_t)T * FF);
    free(Ge), free(Ue), free(dec), free(ref);

    /* the whole MLP block on the rotated residual */
    float *Wg = make_input(ki, IDX(IN(4), 2), (size_t)FF * D, 0.125, 0);
    float *Wu = make_input(ki, IDX(IN(4), 3), (size_t)FF * D, 0.125, 0);
    float *Wdn = make_input(ki, IDX(IN(4), 4), (size_t)D * FF, 0.1, 0);
    float *X = make_input(ki, IDX(IN(4), 5), (size_t)T * D, 1.0, 0);
    float *Y = FALLOC((size_t)T * D), *Ye = FALLOC((size_t)T * D);
    mlp(Wg, Wu, Wdn, X, Y);

    double *Wgd = to_d(Wg, (size_t)FF * D), *Wud = to_d(Wu, (size_t)FF * D);
    double *WgQ = mm_nt(Wgd, Q, FF, D, D), *WuQ = mm_nt(Wud, Q, FF, D, D);
    double *Wdd = to_d(Wdn, (size_t)D * FF);
    double *QWd = mm_nn(Q, Wdd, D, D, FF); /* Q W_down */
    double *Xd = to_d(X, (size_t)T * D), *Xe = mm_nt(Xd, Q, T, D, D);
    float *Xef = to_f(Xe, (size_t)T * D);

    for (int neg = 0; neg < 2; neg++) {
        /* neg = 0: scale on up (the scheme); neg = 1: scale on gate */
        double *Wg2 = DALLOC((size_t)FF * D), *Wu2 = DALLOC((size_t)FF * D);
        double *Wd2 = DALLOC((size_t)D * FF);
        for (int i = 0; i < FF; i++)
            for (int j = 0; j < D; j++) {
                Wg2[(size_t)pi[i] * D + j] = (neg ? c[i] : 1.0) * WgQ[(size_t)i * D + j];
                Wu2[(size_t)pi[i] * D + j] = (neg ? 1.0 : c[i]) * WuQ[(size_t)i * D + j];
            }
        for (int r = 0; r < D; r++)
            for (int i = 0; i < FF; i++)
                Wd2[(size_t)r * FF + pi[i]] = QWd[(size_t)r * FF + i] / c[i];
        float *Wg2f = to_f(Wg2, (size_t)FF * D), *Wu2f = to_f(Wu2, (size_t)FF * D);
        float *Wd2f = to_f(Wd2, (size_t)D * FF);
        mlp(Wg2f, Wu2f, Wd2f, Xef, Ye);
        double *Yed = to_d(Ye, (size_t)T * D), *Yb = mm_nn(Yed, Q, T, D, D);
        float *decm = to_f(Yb, (size_t)T * D);
        if (neg)
            expect_broken("swiglu MLP with the gate scaled", ki, decm, Y, (size_t)T * D);
        else
            expect_close("swiglu MLP block (Q, P, up scale)", ki, decm, Y, (size_t)T * D);
        free(Wg2), free(Wu2), free(Wd2), free(Wg2f), free(Wu2f), free(Wd2f), free(Yed), free(Yb);
        free(decm);
    }
    free(pi), free(c), free(Q), free(G), free(U), free(Wg), free(Wu), free(Wdn), free(X), free(Y);
    free(Ye), free(Wgd), free(Wud), free(WgQ), free(WuQ), free(Wdd), free(QWd), free(Xd), free(Xe);
    free(Xef);
}
END_TEST

/* ---- 5. RMSNorm --------------------------------------------------------------- */
/* n(x) = x / sqrt(mean(x^2) + eps) and |Q x| = |x|, so n(Q x) = Q n(x);
 * the gain is folded into the next linear layer:
 *   W (g . n(x)) = W diag(g) Q^T Q n(x) = (W diag(g) Q^T) n(Q x).
 * Negative control: applying the gain on the rotated side instead,
 * Q^T (g . n(Q x)) != g . n(x) (diag(g) does not commute with Q). */
START_TEST(rmsnorm_rotation_with_folded_gain) {
    const int ki = _i;
    const float eps = 1e-5f;
    double *Q = make_orth(ki, IDX(5, 0), D);
    float *X = make_input(ki, IDX(IN(5), 0), (size_t)T * D, 1.0, 0);
    float *g = make_input(ki, IDX(IN(5), 1), D, 0.5, 1.0);
    float *W = make_input(ki, IDX(IN(5), 2), (size_t)M * D, 0.125, 0);
    check_recover_orth("rmsnorm: x = Q^T (Q x)", ki, Q, X, T, D);

    float *N = FALLOC((size_t)T * D), *N0 = FALLOC((size_t)T * D), *Y = FALLOC((size_t)T * M);
    for (int t = 0; t < T; t++) {
        ee_rmsnorm(N + (size_t)t * D, X + (size_t)t * D, g, D, eps);
        ee_rmsnorm(N0 + (size_t)t * D, X + (size_t)t * D, NULL, D, eps);
    }
    lin(W, M, D, N, T, Y);

    double *Xd = to_d(X, (size_t)T * D), *Xe = mm_nt(Xd, Q, T, D, D);
    float *Xef = to_f(Xe, (size_t)T * D), *Ne = FALLOC((size_t)T * D);
    for (int t = 0; t < T; t++) ee_rmsnorm(Ne + (size_t)t * D, Xef + (size_t)t * D, NULL, D, eps);

    /* gain-free: Q^T n(Q x) = n(x) */
    double *Ned = to_d(Ne, (size_t)T * D), *Nb = mm_nn(Ned, Q, T, D, D);
    float *dec = to_f(Nb, (size_t)T * D);
    expect_close("rmsnorm(Qx) = Q rmsnorm(x)", ki, dec, N0, (size_t)T * D);
    free(dec), free(Nb);

    /* folded gain: (W diag(g) Q^T) n(Q x) = W (g . n(x)) */
    double *Wg = to_d(W, (size_t)M * D);
    for (int i = 0; i < M; i++)
        for (int j = 0; j < D; j++) Wg[(size_t)i * D + j] *= g[j];
    double *Wf = mm_nt(Wg, Q, M, D, D);
    float *Wff = to_f(Wf, (size_t)M * D), *Ye = FALLOC((size_t)T * M);
    lin(Wff, M, D, Ne, T, Ye);
    expect_close("W diag(g) Q^T rmsnorm(Qx) = W rmsnorm_g(x)", ki, Ye, Y, (size_t)T * M);

    /* negative control: gain kept in the norm on the rotated input */
    float *Ng = FALLOC((size_t)T * D);
    for (int t = 0; t < T; t++) ee_rmsnorm(Ng + (size_t)t * D, Xef + (size_t)t * D, g, D, eps);
    double *Ngd = to_d(Ng, (size_t)T * D);
    Nb = mm_nn(Ngd, Q, T, D, D);
    dec = to_f(Nb, (size_t)T * D);
    expect_broken("rmsnorm gain not folded", ki, dec, N, (size_t)T * D);

    free(Q), free(X), free(g), free(W), free(N), free(N0), free(Y), free(Xd), free(Xe), free(Xef);
    free(Ne), free(Ned), free(Wg), free(Wf), free(Wff), free(Ye), free(Ng), free(Ngd), free(Nb);
    free(dec);
}
END_TEST

/* ---- 6. LayerNorm ---------------------------------------------------------------- */
/* ln(x) = (x - mean(x) 1) / sqrt(var(x) + eps).
 * Permutations: P 1 = 1, so mean and var are unchanged and
 * ln(P x; P g, P b) = P ln(x; g, b).
 * Rotations R with R 1 = 1 (R = B diag(1, O) B^T, B orthonormal with first
 * column 1/sqrt(n); here B = the Householder reflector swapping e_1 and
 * 1/sqrt(n)): 1^T R x = (R^T 1)^T x = 1^T x keeps the mean, and
 * R x - mean 1 = R (x - mean 1) keeps the variance, so ln(R x) = R ln(x);
 * the gain and bias fold into the next linear layer:
 *   W (g . ln(x) + b) = (W diag(g) R^T) ln(R x) + W b.
 * Negative control: a Haar rotation Q moves 1, so ln(Q x) != Q ln(x). */
static double *rotation_fixing_ones(int ki, uint32_t idx, int n) {
    double *O = make_orth(ki, idx, n - 1);
    /* H = I - 2 v v^T / (v^T v), v = e_1 - u, u = 1/sqrt(n): H e_1 = u. */
    double *v = DALLOC(n), *H = DALLOC((size_t)n * n), *Dg = DALLOC((size_t)n * n);
    const double u = 1.0 / sqrt((double)n);
    double vv = 0;
    for (int i = 0; i < n; i++) v[i] = (i == 0 ? 1.0 : 0.0) - u, vv += v[i] * v[i];
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) H[(size_t)i * n + j] = (i == j) - 2.0 * v[i] * v[j] / vv;
    Dg[0] = 1.0;
    for (int i = 1; i < n; i++)
        for (int j = 1; j < n; j++) Dg[(size_t)i * n + j] = O[(size_t)(i - 1) * (n - 1) + (j - 1)];
    double *HD = mm_nn(H, Dg, n, n, n);
    double *R = mm_nn(HD, H, n, n, n); /* H^T = H */
    /* R 1 = 1 and R^T R = I up to double round-off */
    for (int i = 0; i < n; i++) {
        double r1 = 0;
        for (int j = 0; j < n; j++) r1 += R[(size_t)i * n + j];
        ck_assert_double_eq_tol(r1, 1.0, 1e-12);
    }
    double *RRt = mm_nt(R, R, n, n, n);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) ck_assert_double_eq_tol(RRt[(size_t)i * n + j], i == j, 1e-12);
    free(O), free(v), free(H), free(Dg), free(HD), free(RRt);
    return R;
}

START_TEST(layernorm_permutations_and_ones_fixing_rotations) {
    const int ki = _i;
    const float eps = 1e-12f; /* BERT */
    uint32_t *pi = make_perm(ki, IDX(6, 0), D);
    double *R = rotation_fixing_ones(ki, IDX(6, 1), D);
    double *Qh = make_orth(ki, IDX(6, 2), D);
    float *X = make_input(ki, IDX(IN(6), 0), (size_t)T * D, 1.0, 0.75); /* nonzero mean */
    float *g = make_input(ki, IDX(IN(6), 1), D, 0.5, 1.0);
    float *b = make_input(ki, IDX(IN(6), 2), D, 0.5, 0);
    float *W = make_input(ki, IDX(IN(6), 3), (size_t)M * D, 0.125, 0);
    check_recover_orth("layernorm: x = R^T (R x)", ki, R, X, T, D);

    float *L = FALLOC((size_t)T * D), *L0 = FALLOC((size_t)T * D), *Y = FALLOC((size_t)T * M);
    for (int t = 0; t < T; t++) {
        ee_layernorm(L + (size_t)t * D, X + (size_t)t * D, g, b, D, eps);
        ee_layernorm(L0 + (size_t)t * D, X + (size_t)t * D, NULL, NULL, D, eps);
    }
    lin(W, M, D, L, T, Y);

    /* permutation, gain and bias permuted with it */
    {
        float *Xe = permute(X, pi, NULL, T, D), *ge = permute(g, pi, NULL, 1, D);
        float *be = permute(b, pi, NULL, 1, D), *Le = FALLOC((size_t)T * D);
        for (int t = 0; t < T; t++)
            ee_layernorm(Le + (size_t)t * D, Xe + (size_t)t * D, ge, be, D, eps);
        float *dec = unpermute(Le, pi, NULL, T, D);
        expect_close("layernorm permutation (g, b permuted)", ki, dec, L, (size_t)T * D);
        free(Xe), free(ge), free(be), free(Le), free(dec);
    }
    /* rotation fixing 1, gain and bias folded into the next linear */
    {
        double *Xd = to_d(X, (size_t)T * D), *Xe = mm_nt(Xd, R, T, D, D);
        float *Xef = to_f(Xe, (size_t)T * D), *Le = FALLOC((size_t)T * D);
        for (int t = 0; t < T; t++)
            ee_layernorm(Le + (size_t)t * D, Xef + (size_t)t * D, NULL, NULL, D, eps);
        double *Led = to_d(Le, (size_t)T * D), *Lb = mm_nn(Led, R, T, D, D);
        float *dec = to_f(Lb, (size_t)T * D);
        expect_close("layernorm(Rx) = R layernorm(x), R1 = 1", ki, dec, L0, (size_t)T * D);

        double *Wg = to_d(W, (size_t)M * D), *bias = DALLOC(M);
        for (int i = 0; i < M; i++)
            for (int j = 0; j < D; j++) {
                bias[i] += Wg[(size_t)i * D + j] * b[j];
                Wg[(size_t)i * D + j] *= g[j];
            }
        double *Wf = mm_nt(Wg, R, M, D, D);
        float *Wff = to_f(Wf, (size_t)M * D), *Ye = FALLOC((size_t)T * M);
        lin(Wff, M, D, Le, T, Ye);
        for (int t = 0; t < T; t++)
            for (int i = 0; i < M; i++) Ye[(size_t)t * M + i] += (float)bias[i];
        expect_close("W diag(g) R^T ln(Rx) + W b = W ln_gb(x)", ki, Ye, Y, (size_t)T * M);
        free(Xd), free(Xe), free(Xef), free(Le), free(Led), free(Lb), free(dec), free(Wg);
        free(bias), free(Wf), free(Wff), free(Ye);
    }
    /* negative control: a Haar rotation does not fix 1 */
    {
        double *Xd = to_d(X, (size_t)T * D), *Xe = mm_nt(Xd, Qh, T, D, D);
        float *Xef = to_f(Xe, (size_t)T * D), *Le = FALLOC((size_t)T * D);
        for (int t = 0; t < T; t++)
            ee_layernorm(Le + (size_t)t * D, Xef + (size_t)t * D, NULL, NULL, D, eps);
        double *Led = to_d(Le, (size_t)T * D), *Lb = mm_nn(Led, Qh, T, D, D);
        float *dec = to_f(Lb, (size_t)T * D);
        expect_broken("layernorm with a Haar rotation", ki, dec, L0, (size_t)T * D);
        free(Xd), free(Xe), free(Xef), free(Le), free(Led), free(Lb), free(dec);
    }
    free(pi), free(R), free(Qh), free(X), free(g), free(b), free(W), free(L), free(L0), free(Y);
}
END_TEST

/* ---- 7. attention: RoPE, GQA, softmax ------------------------------------------- */
/* Per kv head g and RoPE pair i (angle phi, scale s > 0):
 *   q pair -> s Rot(phi) q pair, k pair -> (1/s) Rot(phi) k pair.
 * 2-D rotations commute, so RoPE(pos) Rot(phi) = Rot(phi) RoPE(pos), and
 * (s Rot q)^T ((1/s) Rot k) = q^T k: every score is unchanged, so is the
 * softmax. v -> U_g v (U_g orthogonal) gives a' = sum p_j U_g v_j = U_g a,
 * undone by U_g^T (in Wo). Head permutation: kv heads by sigma, the q heads
 * of a group move with their kv head and are permuted within it by tau_g.
 * Negative control: a full-head rotation O_g of q and k keeps q.k without
 * RoPE (checked) but not through it, since O_g does not commute with the
 * position rotations. */
enum { NH = 4, NKV = 2, GRP = NH / NKV, HD = 16 };
#define ROPE_THETA 10000.0f

/* Causal GQA attention over T positions, RoPE on n_rot dims: q [T][NH][HD],
 * k, v [T][NKV][HD] -> out [T][NH][HD]. */
static void attention(const float *q_in, const float *k_in, const float *v, int n_rot,
                      float *out) {
    float *q = FALLOC((size_t)T * NH * HD), *k = FALLOC((size_t)T * NKV * HD);
    memcpy(q, q_in, (size_t)T * NH * HD * sizeof(float));
    memcpy(k, k_in, (size_t)T * NKV * HD * sizeof(float));
    for (int t = 0; t < T; t++) {
        ee_rope_adjacent(q + (size_t)t * NH * HD, NH, HD, n_rot, t, ROPE_THETA);
        ee_rope_adjacent(k + (size_t)t * NKV * HD, NKV, HD, n_rot, t, ROPE_THETA);
    }
    const float scale = 1.0f / sqrtf((float)HD);
    float p[T];
    for (int t = 0; t < T; t++)
        for (int h = 0; h < NH; h++) {
            const int g = h / GRP;
            const float *qh = q + ((size_t)t * NH + h) * HD;
            for (int j = 0; j < T; j++)
                p[j] = j <= t ? ee_dot(qh, k + ((size_t)j * NKV + g) * HD, HD) * scale : -INFINITY;
            ee_softmax(p, T);
            float *o = out + ((size_t)t * NH + h) * HD;
            for (int e = 0; e < HD; e++) o[e] = 0;
            for (int j = 0; j <= t; j++)
                for (int e = 0; e < HD; e++) o[e] += p[j] * v[((size_t)j * NKV + g) * HD + e];
        }
    free(q), free(k);
}

/* y = M x for a HD x HD matrix in double, rounded. */
static void head_map(const double *Mx, const float *x, float *y, double *yd) {
    for (int a = 0; a < HD; a++) {
        double s = 0;
        for (int b = 0; b < HD; b++) s += Mx[a * HD + b] * x[b];
        if (y) y[a] = (float)s;
        if (yd) yd[a] = s;
    }
}

START_TEST(attention_rope_gqa_pair_rotations_and_head_permutation) {
    const int ki = _i;
    uint32_t *sigma = make_perm(ki, IDX(7, 0), NKV);
    uint32_t *tau[NKV];
    double *U[NKV], *Oh[NKV], *QK[NKV], *KK[NKV]; /* v map; neg control; q / k pair maps */
    {
        ee_stream st;
        stream(&st, ki, IDX(7, 1));
        for (int g = 0; g < NKV; g++) {
            tau[g] = make_perm(ki, IDX(7, 2 + g), GRP);
            U[g] = make_orth(ki, IDX(7, 10 + g), HD);
            Oh[g] = make_orth(ki, IDX(7, 20 + g), HD);
            QK[g] = DALLOC(HD * HD), KK[g] = DALLOC(HD * HD);
            for (int i = 0; i < HD / 2; i++) {
                double phi = 2.0 * M_PI * ee_stream_unit(&st);
                double s = ee_random_scale(&st, SCALE_R), c = cos(phi), sn = sin(phi);
                const int a = 2 * i, b = 2 * i + 1;
                QK[g][a * HD + a] = s * c, QK[g][a * HD + b] = -s * sn;
                QK[g][b * HD + a] = s * sn, QK[g][b * HD + b] = s * c;
                KK[g][a * HD + a] = c / s, KK[g][a * HD + b] = -sn / s;
                KK[g][b * HD + a] = sn / s, KK[g][b * HD + b] = c / s;
            }
        }
        ee_stream_wipe(&st);
    }
    /* physical slot of q head h / kv head g */
    int qslot[NH];
    for (int h = 0; h < NH; h++)
        qslot[h] = (int)sigma[h / GRP] * GRP + (int)tau[h / GRP][h % GRP];

    const size_t nq = (size_t)T * NH * HD, nk = (size_t)T * NKV * HD;
    float *q = make_input(ki, IDX(IN(7), 0), nq, 1.0, 0);
    float *k = make_input(ki, IDX(IN(7), 1), nk, 1.0, 0);
    float *v = make_input(ki, IDX(IN(7), 2), nk, 1.0, 0);
    float *ref = FALLOC(nq), *out = FALLOC(nq), *dec = FALLOC(nq);
    float *qe = FALLOC(nq), *ke = FALLOC(nk), *ve = FALLOC(nk);
    attention(q, k, v, HD, ref);

    /* (a) every map round-trips bitwise with a double ciphertext: v by
     * U^T, and each q / k pair map M = s Rot(phi) (or (1/s) Rot(phi)) by
     * M^-1 = M^T / det(M), det(M) = s^2 (or 1/s^2). */
    {
        double yd[HD];
        float xb[HD];
        size_t bad = 0;
        for (int t = 0; t < T; t++)
            for (int h = 0; h < NH + 2 * NKV; h++) {
                /* h < NH: q head h; then k heads; then v heads */
                const int g = h < NH ? h / GRP : (h - NH) % NKV;
                const float *x = h < NH        ? q + ((size_t)t * NH + h) * HD
                                 : h < NH + NKV ? k + ((size_t)t * NKV + g) * HD
                                                : v + ((size_t)t * NKV + g) * HD;
                const double *Mx = h < NH ? QK[g] : h < NH + NKV ? KK[g] : U[g];
                head_map(Mx, x, NULL, yd);
                if (h >= NH + NKV) {
                    for (int a = 0; a < HD; a++) {
                        double r = 0;
                        for (int b = 0; b < HD; b++) r += Mx[b * HD + a] * yd[b];
                        xb[a] = (float)r;
                    }
                } else {
                    for (int i = 0; i < HD / 2; i++) {
                        const int a = 2 * i, b = a + 1;
                        double det = Mx[a * HD + a] * Mx[b * HD + b] - Mx[a * HD + b] * Mx[b * HD + a];
                        xb[a] = (float)((Mx[a * HD + a] * yd[a] + Mx[b * HD + a] * yd[b]) / det);
                        xb[b] = (float)((Mx[a * HD + b] * yd[a] + Mx[b * HD + b] * yd[b]) / det);
                    }
                }
                bad += memcmp(xb, x, sizeof xb) != 0;
            }
        note("attention: q, k, v round trips (bad heads)", ki, (double)bad);
        ck_assert_msg(bad == 0, "attention round trip: %zu head vectors not bitwise equal", bad);
    }

    /* (b) the scheme's maps */
    for (int t = 0; t < T; t++) {
        for (int h = 0; h < NH; h++)
            head_map(QK[h / GRP], q + ((size_t)t * NH + h) * HD,
                     qe + ((size_t)t * NH + qslot[h]) * HD, NULL);
        for (int g = 0; g < NKV; g++) {
            head_map(KK[g], k + ((size_t)t * NKV + g) * HD, ke + ((size_t)t * NKV + sigma[g]) * HD, NULL);
            head_map(U[g], v + ((size_t)t * NKV + g) * HD, ve + ((size_t)t * NKV + sigma[g]) * HD, NULL);
        }
    }
    attention(qe, ke, ve, HD, out);
    for (int t = 0; t < T; t++)
        for (int h = 0; h < NH; h++) {
            const float *o = out + ((size_t)t * NH + qslot[h]) * HD;
            const double *Ug = U[h / GRP];
            for (int a = 0; a < HD; a++) {
                double s = 0;
                for (int b = 0; b < HD; b++) s += Ug[b * HD + a] * o[b];
                dec[((size_t)t * NH + h) * HD + a] = (float)s;
            }
        }
    expect_close("attention rope+gqa: pair rot/scale, U, head perm", ki, dec, ref, nq);

    /* negative control: full-head rotations O_g on q and k (same slots, v
     * in the clear) are fine without RoPE and broken with it. */
    for (int rope = 0; rope < 2; rope++) {
        const int n_rot = rope ? HD : 0;
        float *ref2 = FALLOC(nq);
        attention(q, k, v, n_rot, ref2);
        for (int t = 0; t < T; t++) {
            for (int h = 0; h < NH; h++)
                head_map(Oh[h / GRP], q + ((size_t)t * NH + h) * HD, qe + ((size_t)t * NH + h) * HD, NULL);
            for (int g = 0; g < NKV; g++)
                head_map(Oh[g], k + ((size_t)t * NKV + g) * HD, ke + ((size_t)t * NKV + g) * HD, NULL);
        }
        attention(qe, ke, v, n_rot, out);
        if (rope)
            expect_broken("attention: full-head q/k rotation through RoPE", ki, out, ref2, nq);
        else
            expect_close("attention: full-head q/k rotation, no RoPE", ki, out, ref2, nq);
        free(ref2);
    }

    for (int g = 0; g < NKV; g++) free(tau[g]), free(U[g]), free(Oh[g]), free(QK[g]), free(KK[g]);
    free(sigma), free(q), free(k), free(v), free(ref), free(out), free(dec), free(qe), free(ke);
    free(ve);
}
END_TEST

/* ---- 8. embedding ---------------------------------------------------------------- */
/* E'[pi(i)] = Q E[i]: looking up the encrypted id gives the rotated
 * residual, Q^T E'[pi(i)] = E[i]. */
enum { V = 100 };
START_TEST(embedding_rows_permuted_and_rotated) {
    const int ki = _i;
    uint32_t *pi = make_perm(ki, IDX(8, 0), V);
    double *Q = make_orth(ki, IDX(8, 1), D);
    float *E = make_input(ki, IDX(IN(8), 0), (size_t)V * D, 0.05, 0);
    double *Ed = to_d(E, (size_t)V * D), *QE = mm_nt(Ed, Q, V, D, D); /* row i = Q E[i] */
    double *Ee = DALLOC((size_t)V * D);
    for (int i = 0; i < V; i++) memcpy(Ee + (size_t)pi[i] * D, QE + (size_t)i * D, D * sizeof(double));
    float *Eef = to_f(Ee, (size_t)V * D); /* what an f32 encrypted file stores */

    /* (a) exact: Q^T E'[pi(i)] (double ciphertext) rounds to E[i] */
    float *back = FALLOC((size_t)V * D);
    for (int i = 0; i < V; i++) {
        const double *er = Ee + (size_t)pi[i] * D;
        for (int a = 0; a < D; a++) {
            double s = 0;
            for (int b = 0; b < D; b++) s += Q[(size_t)b * D + a] * er[b];
            back[(size_t)i * D + a] = (float)s;
        }
    }
    expect_bitwise("embedding: Q^T E'[pi(i)] == E[i]", ki, back, E, (size_t)V * D);

    /* (b) lookups of encrypted ids in the f32 table decrypt to the plain
     * rows */
    ee_stream st;
    stream(&st, ki, IDX(IN(8), 1));
    float *got = FALLOC((size_t)T * D), *want = FALLOC((size_t)T * D);
    for (int t = 0; t < T; t++) {
        uint32_t id = (uint32_t)ee_stream_uniform(&st, V), eid = pi[id];
        memcpy(want + (size_t)t * D, E + (size_t)id * D, D * sizeof(float));
        const float *er = Eef + (size_t)eid * D;
        for (int a = 0; a < D; a++) {
            double s = 0;
            for (int b = 0; b < D; b++) s += Q[(size_t)b * D + a] * er[b];
            got[(size_t)t * D + a] = (float)s;
        }
    }
    ee_stream_wipe(&st);
    expect_close("embedding lookup (f32 table)", ki, got, want, (size_t)T * D);
    free(pi), free(Q), free(E), free(Ed), free(QE), free(Ee), free(Eef), free(back);
    free(got), free(want);
}
END_TEST

/* ---- 9. LM head ------------------------------------------------------------------- */
/* logits = W_out (g . n(h)). With h' = Q h and W'_out = P_pi W_out diag(g)
 * Q^T: W'_out n(Q h) = P_pi W_out diag(g) Q^T Q n(h) = P_pi logits, i.e.
 * logits'[pi(i)] = logits[i]; the argmax is the encrypted argmax. */
START_TEST(lm_head_permuted_logits) {
    const int ki = _i;
    const float eps = 1e-5f;
    uint32_t *pi = make_perm(ki, IDX(9, 0), V);
    double *Q = make_orth(ki, IDX(9, 1), D);
    float *H = make_input(ki, IDX(IN(9), 0), (size_t)T * D, 1.0, 0);
    float *g = make_input(ki, IDX(IN(9), 1), D, 0.5, 1.0);
    float *W = make_input(ki, IDX(IN(9), 2), (size_t)V * D, 0.125, 0);

    float *N = FALLOC((size_t)T * D), *Lg = FALLOC((size_t)T * V);
    for (int t = 0; t < T; t++) ee_rmsnorm(N + (size_t)t * D, H + (size_t)t * D, g, D, eps);
    lin(W, V, D, N, T, Lg);

    double *Wd = to_d(W, (size_t)V * D);
    for (int i = 0; i < V; i++)
        for (int j = 0; j < D; j++) Wd[(size_t)i * D + j] *= g[j];
    double *WQ = mm_nt(Wd, Q, V, D, D), *We = DALLOC((size_t)V * D);
    for (int i = 0; i < V; i++) memcpy(We + (size_t)pi[i] * D, WQ + (size_t)i * D, D * sizeof(double));
    float *Wef = to_f(We, (size_t)V * D);

    double *Hd = to_d(H, (size_t)T * D), *He = mm_nt(Hd, Q, T, D, D);
    float *Hef = to_f(He, (size_t)T * D), *Ne = FALLOC((size_t)T * D), *Le = FALLOC((size_t)T * V);
    for (int t = 0; t < T; t++) ee_rmsnorm(Ne + (size_t)t * D, Hef + (size_t)t * D, NULL, D, eps);
    lin(Wef, V, D, Ne, T, Le);
    float *dec = unpermute(Le, pi, NULL, T, V);
    double e = rel_err(dec, Lg, (size_t)T * V);
    expect_close("lm head: logits'[pi(i)] = logits[i]", ki, dec, Lg, (size_t)T * V);

    /* greedy decoding agrees: argmax' = pi(argmax) whenever the top-2 gap
     * exceeds the error bound (asserted, so the check is never vacuous) */
    for (int t = 0; t < T; t++) {
        const float *l = Lg + (size_t)t * V, *le = Le + (size_t)t * V;
        int best = 0, beste = 0;
        float mx = 0, second = -INFINITY;
        for (int i = 1; i < V; i++) best = l[i] > l[best] ? i : best;
        for (int i = 1; i < V; i++) beste = le[i] > le[beste] ? i : beste;
        for (int i = 0; i < V; i++) {
            if (i != best && l[i] > second) second = l[i];
            if (fabsf(l[i]) > mx) mx = fabsf(l[i]);
        }
        ck_assert_msg(l[best] - second > 2 * e * mx, "row %d: top-2 gap too small", t);
        ck_assert_int_eq(beste, (int)pi[best]);
    }
    free(pi), free(Q), free(H), free(g), free(W), free(N), free(Lg), free(Wd), free(WQ), free(We);
    free(Wef), free(Hd), free(He), free(Hef), free(Ne), free(Le), free(dec);
}
END_TEST

/* ---- 10. 2-D convolution ------------------------------------------------------------ */
/* Output channels of conv1 are independent filters: conv1'[pi(c)] =
 * s_c conv1[c] (weights and bias), so conv1'(x)[pi(c)] = s_c conv1(x)[c];
 * ReLU commutes with it (s_c > 0); conv2' reads input channel pi(c) with
 * weight W2[o][c] / s_c, so conv2'(relu(conv1'(x))) = conv2(relu(conv1(x))).
 * Input channels: with x'[rho(c)] = x[c] and W1''[o][rho(c)] = W1[o][c] the
 * sum over input channels is the same sum reordered: conv1''(x') =
 * conv1(x). Negative control: a negative s_c (sign flip) through ReLU. */
enum { CI = 3, CM = 8, CO = 4, IH = 10, IW = 10, K = 3 };

static float *conv_net(const float *x, const float *W1, const float *b1, const float *W2,
                       const float *b2, float *mid_out, int *n_out) {
    int h1, w1, h2, w2;
    float *mid = FALLOC((size_t)CM * IH * IW);
    ee_conv2d(mid, x, W1, b1, CI, IH, IW, CM, K, K, 1, 1, &h1, &w1);
    ck_assert(h1 == IH && w1 == IW);
    ee_relu(mid, (size_t)CM * h1 * w1);
    if (mid_out) memcpy(mid_out, mid, (size_t)CM * h1 * w1 * sizeof(float));
    const int oh = (h1 - K) / 2 + 1, ow = (w1 - K) / 2 + 1;
    float *out = FALLOC((size_t)CO * oh * ow);
    ee_conv2d(out, mid, W2, b2, CM, h1, w1, CO, K, K, 2, 0, &h2, &w2);
    ck_assert(h2 == oh && w2 == ow);
    *n_out = CO * oh * ow;
    free(mid);
    return out;
}

START_TEST(conv2d_channel_permutation_and_scale) {
    const int ki = _i;
    const size_t n1 = (size_t)CM * CI * K * K, n2 = (size_t)CO * CM * K * K, hw = (size_t)IH * IW;
    uint32_t *pi = make_perm(ki, IDX(10, 0), CM);
    uint32_t *rho = make_perm(ki, IDX(10, 1), CI);
    double *s = make_scales(ki, IDX(10, 2), CM, SCALE_R);
    float *x = make_input(ki, IDX(IN(10), 0), (size_t)CI * hw, 1.0, 0);
    float *W1 = make_input(ki, IDX(IN(10), 1), n1, 0.3, 0);
    float *b1 = make_input(ki, IDX(IN(10), 2), CM, 0.3, 0);
    float *W2 = make_input(ki, IDX(IN(10), 3), n2, 0.3, 0);
    float *b2 = make_input(ki, IDX(IN(10), 4), CO, 0.3, 0);
    float *mid = FALLOC((size_t)CM * hw), *mide = FALLOC((size_t)CM * hw);
    int n_out, n_out2;
    float *ref = conv_net(x, W1, b1, W2, b2, mid, &n_out);

    /* input channels: image planes permuted (exact round trip) */
    float *xe = FALLOC((size_t)CI * hw), *xb = FALLOC((size_t)CI * hw);
    for (int c = 0; c < CI; c++) memcpy(xe + rho[c] * hw, x + c * hw, hw * sizeof(float));
    for (int c = 0; c < CI; c++) memcpy(xb + c * hw, xe + rho[c] * hw, hw * sizeof(float));
    expect_bitwise("conv: image channel round trip", ki, xb, x, (size_t)CI * hw);

    for (int neg = 0; neg < 2; neg++) {
        double *sc = DALLOC(CM);
        for (int c = 0; c < CM; c++) sc[c] = s[c];
        if (neg) /* flip the channels landing on even slots (half of them) */
            for (int c = 0; c < CM; c++)
                if (pi[c] % 2 == 0) sc[c] = -sc[c];
        float *W1e = FALLOC(n1), *b1e = FALLOC(CM), *W2e = FALLOC(n2);
        const size_t kk = (size_t)K * K;
        for (int c = 0; c < CM; c++) {
            b1e[pi[c]] = (float)(sc[c] * b1[c]);
            for (int ci = 0; ci < CI; ci++)
                for (size_t e = 0; e < kk; e++)
                    W1e[((size_t)pi[c] * CI + rho[ci]) * kk + e] =
                        (float)(sc[c] * W1[((size_t)c * CI + ci) * kk + e]);
        }
        for (int o = 0; o < CO; o++)
            for (int c = 0; c < CM; c++)
                for (size_t e = 0; e < kk; e++)
                    W2e[((size_t)o * CM + pi[c]) * kk + e] =
                        (float)(W2[((size_t)o * CM + c) * kk + e] / sc[c]);
        float *out = conv_net(xe, W1e, b1e, W2e, b2, mide, &n_out2);
        ck_assert_int_eq(n_out2, n_out);
        if (neg) {
            expect_broken("conv: sign-flipped channels through relu", ki, out, ref, (size_t)n_out);
        } else {
            /* hidden activations decrypt: mid'[pi(c)] / s_c = mid[c] */
            float *md = FALLOC((size_t)CM * hw);
            for (int c = 0; c < CM; c++)
                for (size_t p = 0; p < hw; p++) md[c * hw + p] = (float)(mide[pi[c] * hw + p] / sc[c]);
            expect_close("conv: hidden channels (perm, scale, relu)", ki, md, mid, (size_t)CM * hw);
            expect_close("conv2(relu(conv1')) with conv2' = plain", ki, out, ref, (size_t)n_out);
            free(md);
        }
        free(sc), free(W1e), free(b1e), free(W2e), free(out);
    }
    free(pi), free(rho), free(s), free(x), free(W1), free(b1), free(W2), free(b2), free(mid);
    free(mide), free(ref), free(xe), free(xb);
}
END_TEST

/* ---- encoder (BERT, post-LN; ee_scheme_bert.c) ------------------------------ */

/* Post-LN keeps the gain and bias on the residual stream itself: the stream
 * value is g . ln(x) + b. A permutation of the stream (g, b permuted) gives
 * the permuted stream. Negative control: a rotation that fixes 1 (exact for
 * pre-LN, where the gain is folded into the next linear layer) breaks it,
 * because no gain g' satisfies g' . (R z) = R (g . z). */
START_TEST(post_layernorm_stream_permutation_only) {
    const int ki = _i;
    const float eps = 1e-12f;
    uint32_t *pi = make_perm(ki, IDX(20, 0), D);
    double *R = rotation_fixing_ones(ki, IDX(20, 1), D);
    float *X = make_input(ki, IDX(IN(20), 0), (size_t)T * D, 1.0, 0.75);
    float *A = make_input(ki, IDX(IN(20), 3), (size_t)T * D, 1.0, 0); /* a sublayer's output */
    float *g = make_input(ki, IDX(IN(20), 1), D, 0.5, 1.0);
    float *b = make_input(ki, IDX(IN(20), 2), D, 0.5, 0);
    /* plain: h = ln_gb(x); next = ln_gb(h + a) */
    float *H = FALLOC((size_t)T * D), *N = FALLOC((size_t)T * D);
    for (int t = 0; t < T; t++) ee_layernorm(H + (size_t)t * D, X + (size_t)t * D, g, b, D, eps);
    for (size_t i = 0; i < (size_t)T * D; i++) H[i] += A[i];
    for (int t = 0; t < T; t++) ee_layernorm(N + (size_t)t * D, H + (size_t)t * D, g, b, D, eps);
    {
        float *Xe = permute(X, pi, NULL, T, D), *Ae = permute(A, pi, NULL, T, D);
        float *ge = permute(g, pi, NULL, 1, D), *be = permute(b, pi, NULL, 1, D);
        float *He = FALLOC((size_t)T * D), *Ne = FALLOC((size_t)T * D);
        for (int t = 0; t < T; t++)
            ee_layernorm(He + (size_t)t * D, Xe + (size_t)t * D, ge, be, D, eps);
        for (size_t i = 0; i < (size_t)T * D; i++) He[i] += Ae[i];
        for (int t = 0; t < T; t++)
            ee_layernorm(Ne + (size_t)t * D, He + (size_t)t * D, ge, be, D, eps);
        float *dec = unpermute(Ne, pi, NULL, T, D);
        expect_close("post-LN stream: ln(P(ln(Px) + Pa)) = P ln(ln(x) + a)", ki, dec, N,
                     (size_t)T * D);
        free(Xe), free(Ae), free(ge), free(be), free(He), free(Ne), free(dec);
    }
    { /* control: R with R1 = 1 on the stream; the best gain is g, bias R b */
        double *Xd = to_d(X, (size_t)T * D), *Xr = mm_nt(Xd, R, T, D, D);
        double *Ad = to_d(A, (size_t)T * D), *Ar = mm_nt(Ad, R, T, D, D);
        double *bd = to_d(b, D), *br = mm_nt(bd, R, 1, D, D);
        float *Xe = to_f(Xr, (size_t)T * D), *Ae = to_f(Ar, (size_t)T * D), *be = to_f(br, D);
        float *He = FALLOC((size_t)T * D), *Ne = FALLOC((size_t)T * D);
        for (int t = 0; t < T; t++)
            ee_layernorm(He + (size_t)t * D, Xe + (size_t)t * D, g, be, D, eps);
        for (size_t i = 0; i < (size_t)T * D; i++) He[i] += Ae[i];
        for (int t = 0; t < T; t++)
            ee_layernorm(Ne + (size_t)t * D, He + (size_t)t * D, g, be, D, eps);
        double *Nd = to_d(Ne, (size_t)T * D), *Nb = mm_nn(Nd, R, T, D, D);
        float *dec = to_f(Nb, (size_t)T * D);
        expect_broken("post-LN stream under a 1-fixing rotation", ki, dec, N, (size_t)T * D);
        free(Xd), free(Xr), free(Ad), free(Ar), free(bd), free(br), free(Xe), free(Ae), free(be);
        free(He), free(Ne), free(Nd), free(Nb), free(dec);
    }
    free(pi), free(R), free(X), free(A), free(g), free(b), free(H), free(N);
}
END_TEST

enum { ENH = 4, EHD = 16, ET = 9 };

/* softmax(q k^T / sqrt(hd)) v for one head, every token attending to every
 * token (no causal mask). Q, K, V: [ET][EHD]. */
static void bidir_head(const float *Q, const float *Kh, const float *Vv, float *O) {
    float S[ET];
    for (int i = 0; i < ET; i++) {
        for (int j = 0; j < ET; j++) S[j] = ee_dot(Q + i * EHD, Kh + j * EHD, EHD) / sqrtf(EHD);
        ee_softmax(S, ET);
        for (int a = 0; a < EHD; a++) {
            float acc = 0;
            for (int j = 0; j < ET; j++) acc += S[j] * Vv[j * EHD + a];
            O[i * EHD + a] = acc;
        }
    }
}

/* Without RoPE a whole head may rotate: q -> s R q, k -> s^-1 R k keeps
 * q.k; v -> U v comes out as U o; heads permuted. Negative control: k
 * rotated by another orthogonal map. */
START_TEST(bidirectional_attention_full_head_maps) {
    const int ki = _i;
    const size_t HS = (size_t)ET * EHD;
    uint32_t *hp = make_perm(ki, IDX(21, 0), ENH); /* new head h holds old head hp[h] */
    float *Q = make_input(ki, IDX(IN(21), 0), ENH * HS, 1.0, 0);
    float *Km = make_input(ki, IDX(IN(21), 1), ENH * HS, 1.0, 0);
    float *Vv = make_input(ki, IDX(IN(21), 2), ENH * HS, 1.0, 0);
    double *sc = make_scales(ki, IDX(21, 1), ENH, 2.0);
    float *O = FALLOC(ENH * HS), *dec = FALLOC(ENH * HS), *dbad = FALLOC(ENH * HS);
    for (int h = 0; h < ENH; h++) bidir_head(Q + h * HS, Km + h * HS, Vv + h * HS, O + h * HS);
    for (int h = 0; h < ENH; h++) {
        const int old = (int)hp[h];
        double *R = make_orth(ki, IDX(22, h), EHD), *U = make_orth(ki, IDX(23, h), EHD);
        double *R2 = make_orth(ki, IDX(24, h), EHD);
        double *Qd = to_d(Q + old * HS, HS), *Kd = to_d(Km + old * HS, HS), *Vd = to_d(Vv + old * HS, HS);
        double *Qr = mm_nt(Qd, R, ET, EHD, EHD), *Kr = mm_nt(Kd, R, ET, EHD, EHD);
        double *Kw = mm_nt(Kd, R2, ET, EHD, EHD), *Vr = mm_nt(Vd, U, ET, EHD, EHD);
        for (size_t i = 0; i < HS; i++) Qr[i] *= sc[h], Kr[i] /= sc[h], Kw[i] /= sc[h];
        float *Qe = to_f(Qr, HS), *Ke = to_f(Kr, HS), *Kwe = to_f(Kw, HS), *Ve = to_f(Vr, HS);
        float *Oe = FALLOC(HS), *Ob = FALLOC(HS);
        bidir_head(Qe, Ke, Ve, Oe);
        bidir_head(Qe, Kwe, Ve, Ob);
        double *Oed = to_d(Oe, HS), *Obd = to_d(Ob, HS);
        double *Odec = mm_nn(Oed, U, ET, EHD, EHD), *Obad = mm_nn(Obd, U, ET, EHD, EHD);
        for (size_t i = 0; i < HS; i++) dec[old * HS + i] = (float)Odec[i], dbad[old * HS + i] = (float)Obad[i];
        free(R), free(U), free(R2), free(Qd), free(Kd), free(Vd), free(Qr), free(Kr), free(Kw), free(Vr);
        free(Qe), free(Ke), free(Kwe), free(Ve), free(Oe), free(Ob), free(Oed), free(Obd), free(Odec), free(Obad);
    }
    expect_close("bidirectional attention: s R q, R k / s, U v, heads permuted", ki, dec, O, ENH * HS);
    expect_broken("bidirectional attention, k rotated by another map", ki, dbad, O, ENH * HS);
    free(hp), free(Q), free(Km), free(Vv), free(sc), free(O), free(dec), free(dbad);
}
END_TEST

/* The encoder's input: token + position + token-type rows, then LayerNorm.
 * Token rows move by the vocabulary permutation; every table's columns by
 * the residual permutation. Negative control: the type table left as is. */
START_TEST(encoder_embeddings_token_position_type) {
    const int ki = _i;
    enum { EV = 50, NTY = 2 };
    const float eps = 1e-12f;
    uint32_t *vp = make_perm(ki, IDX(25, 0), EV), *rp = make_perm(ki, IDX(25, 1), D);
    float *Et = make_input(ki, IDX(IN(25), 0), (size_t)EV * D, 1.0, 0);
    float *Ep = make_input(ki, IDX(IN(25), 1), (size_t)T * D, 1.0, 0);
    float *Ey = make_input(ki, IDX(IN(25), 2), (size_t)NTY * D, 1.0, 0);
    float *g = make_input(ki, IDX(IN(25), 3), D, 0.5, 1.0), *b = make_input(ki, IDX(IN(25), 4), D, 0.5, 0);
    int ids[T], tys[T];
    for (int t = 0; t < T; t++) ids[t] = (t * 7 + ki) % EV, tys[t] = t >= T / 2;
    float *Ete = FALLOC((size_t)EV * D);
    for (int i = 0; i < EV; i++) /* row pi(i), columns permuted */
        for (int j = 0; j < D; j++) Ete[(size_t)vp[i] * D + rp[j]] = Et[(size_t)i * D + j];
    float *Epe = permute(Ep, rp, NULL, T, D), *Eye = permute(Ey, rp, NULL, NTY, D);
    float *ge = permute(g, rp, NULL, 1, D), *be = permute(b, rp, NULL, 1, D);
    float *X = FALLOC(D), *Y = FALLOC((size_t)T * D), *Ye = FALLOC((size_t)T * D), *Yb = FALLOC((size_t)T * D);
    for (int t = 0; t < T; t++) {
        for (int j = 0; j < D; j++) X[j] = Et[ids[t] * D + j] + Ep[t * D + j] + Ey[tys[t] * D + j];
        ee_layernorm(Y + (size_t)t * D, X, g, b, D, eps);
        for (int j = 0; j < D; j++) X[j] = Ete[vp[ids[t]] * D + j] + Epe[t * D + j] + Eye[tys[t] * D + j];
        ee_layernorm(Ye + (size_t)t * D, X, ge, be, D, eps);
        for (int j = 0; j < D; j++) X[j] = Ete[vp[ids[t]] * D + j] + Epe[t * D + j] + Ey[tys[t] * D + j];
        ee_layernorm(Yb + (size_t)t * D, X, ge, be, D, eps);
    }
    float *dec = unpermute(Ye, rp, NULL, T, D), *bad = unpermute(Yb, rp, NULL, T, D);
    expect_close("encoder embeddings (token, position, type) permuted", ki, dec, Y, (size_t)T * D);
    expect_broken("encoder embeddings, type table not permuted", ki, bad, Y, (size_t)T * D);
    free(vp), free(rp), free(Et), free(Ep), free(Ey), free(g), free(b), free(Ete), free(Epe), free(Eye);
    free(ge), free(be), free(X), free(Y), free(Ye), free(Yb), free(dec), free(bad);
}
END_TEST

/* ---- CNN (eecnn, ee-cnn-v1; ee_scheme_cnn.c) ------------------------------- */

/* Channel-major maps [C][hw] (the CNN layout), unlike permute() above:
 * out[perm[c]] = s_c in[c] (rounded to f32; s may be NULL) ... */
static float *permute_channels(const float *in, const uint32_t *perm, const double *s, int C,
                               size_t hw) {
    float *out = FALLOC((size_t)C * hw);
    for (int c = 0; c < C; c++)
        for (size_t i = 0; i < hw; i++)
            out[perm[c] * hw + i] = (float)(s ? s[c] * (double)in[c * hw + i] : in[c * hw + i]);
    return out;
}
/* ... and back: out[c] = in[perm[c]] / s_c. */
static float *unpermute_channels(const float *in, const uint32_t *perm, const double *s, int C,
                                 size_t hw) {
    float *out = FALLOC((size_t)C * hw);
    for (int c = 0; c < C; c++)
        for (size_t i = 0; i < hw; i++)
            out[c * hw + i] = (float)(s ? (double)in[perm[c] * hw + i] / s[c] : in[perm[c] * hw + i]);
    return out;
}

/* A one-block eecnn on a [C][h][w] map whose worker pass
 * (ee_cnn_classify_fmaps) is "pool, then the head": the 1x1 identity stem
 * is only there to load (the worker never runs the stem). head_w NULL: the
 * identity head, so the "logits" are the pooled map itself. */
static ee_cnn_model *probe_model(int C, int h, int w, int pool, int n_class, const float *head_w,
                                 const float *head_b) {
    const int n_feat = C * (pool > 1 ? h / pool : h) * (pool > 1 ? w / pool : w);
    ee_testcnn tc;
    ee_testcnn_init(&tc, 1, &C, 1, C, h, w, pool, head_w ? n_class : n_feat, 1);
    ck_assert_int_eq(tc.n_feat, n_feat);
    for (int o = 0; o < C; o++)
        for (int i = 0; i < C; i++) tc.conv_w[0][o * C + i] = o == i;
    memset(tc.conv_b[0], 0, sizeof(float) * (size_t)C);
    if (head_w) {
        memcpy(tc.head_w, head_w, sizeof(float) * (size_t)n_class * n_feat);
        memcpy(tc.head_b, head_b, sizeof(float) * (size_t)n_class);
    } else {
        for (int r = 0; r < n_feat; r++)
            for (int f = 0; f < n_feat; f++) tc.head_w[(size_t)r * n_feat + f] = r == f;
        memset(tc.head_b, 0, sizeof(float) * (size_t)n_feat);
    }
    ee_cnn_model *m = ee_testcnn_load(&tc);
    ee_testcnn_free(&tc);
    return m;
}

static float *run_fmaps(const ee_cnn_model *m, const float *fmaps, int n) {
    float *out = FALLOC((size_t)n * m->hp.n_class);
    ee_err err = {{0}};
    ck_assert_msg(ee_cnn_classify_fmaps(m, fmaps, n, out, &err) == 0, "%s", err.msg);
    return out;
}

/* ---- 11. max-pooling ------------------------------------------------------------ */
/* pool(x)[c] is a max over windows of channel c alone, so it commutes with
 * a channel permutation; max(s a, s b) = s max(a, b) for s > 0, so
 * pool(P C x) = P C pool(x). Run by the engine (probe_model: its logits are
 * the pooled map). Odd sizes: the trailing row and column are dropped.
 * Negative control: s < 0 turns the max into a min, max(-a, -b) =
 * -min(a, b). */
enum { PC = 6, PH = 7, PW = 9, PP = 2 };

START_TEST(maxpool_commutes_with_positive_channel_scales) {
    const int ki = _i;
    const size_t hw = (size_t)PH * PW, ohw = (size_t)(PH / PP) * (PW / PP);
    uint32_t *pi = make_perm(ki, IDX(11, 0), PC);
    double *s = make_scales(ki, IDX(11, 1), PC, SCALE_R);
    float *X = make_input(ki, IDX(IN(11), 0), PC * hw, 1.0, 0);
    ee_cnn_model *m = probe_model(PC, PH, PW, PP, 0, NULL, NULL);
    float *ref = run_fmaps(m, X, 1);

    /* the probe does pool: a direct max over each window, bitwise */
    float *direct = FALLOC(PC * ohw);
    for (int c = 0; c < PC; c++)
        for (int y = 0; y < PH / PP; y++)
            for (int x = 0; x < PW / PP; x++) {
                float best = -INFINITY;
                for (int dy = 0; dy < PP; dy++)
                    for (int dx = 0; dx < PP; dx++)
                        best = fmaxf(best, X[c * hw + (size_t)(y * PP + dy) * PW + x * PP + dx]);
                direct[c * ohw + (size_t)y * (PW / PP) + x] = best;
            }
    expect_bitwise("maxpool probe = direct window max", ki, ref, direct, PC * ohw);

    float *Xe = permute_channels(X, pi, NULL, PC, hw), *Ye = run_fmaps(m, Xe, 1);
    float *dec = unpermute_channels(Ye, pi, NULL, PC, ohw);
    expect_bitwise("maxpool channel permutation (bitwise)", ki, dec, ref, PC * ohw);
    free(Xe), free(Ye), free(dec);

    Xe = permute_channels(X, pi, s, PC, hw), Ye = run_fmaps(m, Xe, 1);
    dec = unpermute_channels(Ye, pi, s, PC, ohw);
    expect_close("maxpool positive channel scales", ki, dec, ref, PC * ohw);
    free(Xe), free(Ye), free(dec);

    /* negative control: flip the channels landing on even slots */
    for (int c = 0; c < PC; c++)
        if (pi[c] % 2 == 0) s[c] = -s[c];
    Xe = permute_channels(X, pi, s, PC, hw), Ye = run_fmaps(m, Xe, 1);
    dec = unpermute_channels(Ye, pi, s, PC, ohw);
    expect_broken("maxpool with sign-flipped channels", ki, dec, ref, PC * ohw);
    free(Xe), free(Ye), free(dec);
    ee_cnn_free(m);
    free(pi), free(s), free(X), free(ref), free(direct);
}
END_TEST

/* ---- 12. classifier head --------------------------------------------------------- */
/* logits = W flat(x) + b, flat in (c, y, x) order: feature (c, q) is
 * column c S + q (S positions a channel). If channel c arrives at pi(c)
 * times s_c, column block c of W moves to block pi(c) divided by s_c, so
 * W' flat(x') = W flat(x); rows and bias moved by the class permutation
 * rho put logit r at rho(r), and argmax' = rho(argmax). Run by the engine
 * (probe_model, pool 1). Negative control: the columns moved but not
 * divided by s_c. */
enum { HC = 5, HH = 3, HW = 4, HNC = 9, HN = 8 };

START_TEST(head_columns_and_class_permutation) {
    const int ki = _i;
    const int S = HH * HW, NF = HC * S;
    uint32_t *pi = make_perm(ki, IDX(12, 0), HC), *rho = make_perm(ki, IDX(12, 1), HNC);
    double *s = make_scales(ki, IDX(12, 2), HC, SCALE_R);
    float *X = make_input(ki, IDX(IN(12), 0), (size_t)HN * NF, 1.0, 0);
    float *W = make_input(ki, IDX(IN(12), 1), (size_t)HNC * NF, 0.3, 0);
    float *b = make_input(ki, IDX(IN(12), 2), HNC, 0.3, 0);
    ee_cnn_model *m = probe_model(HC, HH, HW, 1, HNC, W, b);
    float *ref = run_fmaps(m, X, HN);

    float *Xe = FALLOC((size_t)HN * NF);
    for (int t = 0; t < HN; t++) {
        float *e = permute_channels(X + (size_t)t * NF, pi, s, HC, S);
        memcpy(Xe + (size_t)t * NF, e, sizeof(float) * NF);
        free(e);
    }
    for (int undo = 1; undo >= 0; undo--) {
        float *We = FALLOC((size_t)HNC * NF), *be = FALLOC(HNC);
        for (int r = 0; r < HNC; r++) {
            be[rho[r]] = b[r];
            for (int c = 0; c < HC; c++)
                for (int q = 0; q < S; q++)
                    We[(size_t)rho[r] * NF + pi[c] * S + q] =
                        (float)((double)W[(size_t)r * NF + c * S + q] / (undo ? s[c] : 1.0));
        }
        ee_cnn_model *me = probe_model(HC, HH, HW, 1, HNC, We, be);
        float *Le = run_fmaps(me, Xe, HN);
        float *dec = FALLOC((size_t)HN * HNC);
        for (int t = 0; t < HN; t++)
            for (int r = 0; r < HNC; r++) dec[t * HNC + r] = Le[t * HNC + rho[r]];
        if (!undo) {
            expect_broken("head: columns permuted, scales not undone", ki, dec, ref, (size_t)HN * HNC);
        } else {
            double e = rel_err(dec, ref, (size_t)HN * HNC);
            expect_close("head: logits'[rho(r)] = logits[r]", ki, dec, ref, (size_t)HN * HNC);
            for (int t = 0; t < HN; t++) { /* argmax commutes (gap asserted: not vacuous) */
                const float *l = ref + t * HNC;
                int best = ee_cnn_argmax(l, HNC);
                float second = -INFINITY, mx = 0;
                for (int r = 0; r < HNC; r++) {
                    if (r != best && l[r] > second) second = l[r];
                    mx = fmaxf(mx, fabsf(l[r]));
                }
                ck_assert_msg(l[best] - second > 2 * e * mx, "map %d: top-2 gap too small", t);
                ck_assert_int_eq(ee_cnn_argmax(Le + t * HNC, HNC), (int)rho[best]);
            }
        }
        ee_cnn_free(me);
        free(We), free(be), free(Le), free(dec);
    }
    ee_cnn_free(m);
    free(pi), free(rho), free(s), free(X), free(W), free(b), free(ref), free(Xe);
}
END_TEST

/* ---- 13. whole network: ee_encrypt_model and the client's cipher ------------------ */
/* Sections 10-12 composed by the scheme itself: a random 3-block eecnn
 * (1 -> 4 -> 6 -> 5 channels, 3x3, 8x8 input pooled 2 to 1x1, 7 classes)
 * encrypted by ee_encrypt_model. The client runs the plaintext stem,
 * encrypts its feature map (ee_cnn_fmap_encrypt: perm_0, s_0), the worker
 * runs the encrypted file (pool, blocks 1-2, head), the client decrypts the
 * scores (class permutation). Equal to the plaintext logits, same argmax.
 * Controls: another key's cipher, and the worker's raw scores, are not the
 * plaintext logits; the file holds no stem and no class label. */
enum { WN = 24, WCLS = 7 };

/* Whether the file's bytes contain s anywhere. */
static bool file_contains(const char *path, const char *s) {
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = xalloc((size_t)n);
    ck_assert_int_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    bool hit = memmem(buf, (size_t)n, s, strlen(s)) != NULL;
    free(buf);
    return hit;
}

static void check_encrypted_file(const char *path, const ee_gguf *eg) {
    ck_assert_ptr_null(ee_gguf_find_tensor(eg, "blk.0.conv.weight"));
    ck_assert_ptr_null(ee_gguf_find_tensor(eg, "blk.0.conv.bias"));
    ck_assert_ptr_nonnull(ee_gguf_find_tensor(eg, "blk.1.conv.weight"));
    uint32_t cb = 0;
    ee_err err = {{0}};
    ck_assert_msg(ee_gguf_get_u32(eg, "eecnn.client_blocks", &cb, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(cb, 1);
    const ee_gguf_kv *labels = ee_gguf_get_arr(eg, "eecnn.class_labels", EE_GGUF_STRING, &err);
    ck_assert_msg(labels != NULL, "%s", err.msg);
    ck_assert_uint_eq(labels->n, WCLS);
    char want[32];
    for (int r = 0; r < WCLS; r++) {
        snprintf(want, sizeof want, "<ee_%d>", r);
        ck_assert_str_eq(labels->strs[r], want);
        ck_assert_msg(!file_contains(path, ee_testcnn_label(r)), "label '%s' in the encrypted file",
                      ee_testcnn_label(r));
    }
    ck_assert_ptr_null(ee_gguf_find_kv(eg, "eecnn.train.dataset"));
}

/* The client's path for n images: plaintext stem, encrypt each map with c,
 * the worker's encrypted model, decrypt each score vector with c. */
static float *client_classify(const ee_cnn_model *pm, const ee_cnn_model *em,
                              const ee_cnn_cipher *c, const float *images, int n, float *raw) {
    ee_err err = {{0}};
    const size_t fl = ee_cnn_fmap_len(pm);
    const int nc = pm->hp.n_class;
    float *fm = FALLOC(fl * n), *fe = FALLOC(fl * n), *le = FALLOC((size_t)n * nc);
    float *dec = FALLOC((size_t)n * nc);
    ck_assert_msg(ee_cnn_stem(pm, images, n, fm, &err) == 0, "%s", err.msg);
    for (int i = 0; i < n; i++) ee_cnn_fmap_encrypt(c, fm + fl * i, fe + fl * i);
    ck_assert_msg(ee_cnn_classify_fmaps(em, fe, n, le, &err) == 0, "%s", err.msg);
    for (int i = 0; i < n; i++) ee_cnn_scores_decrypt(c, le + (size_t)i * nc, dec + (size_t)i * nc);
    if (raw) memcpy(raw, le, sizeof(float) * (size_t)n * nc);
    free(fm), free(fe), free(le);
    return dec;
}

static void scheme_cipher(ee_cnn_cipher *c, const ee_key *master, const ee_gguf *plain,
                          const ee_cnn_model *pm) {
    ee_key sk;
    ee_err err = {{0}};
    ck_assert_msg(ee_scheme_key(master, plain, EE_SCHEME_CNN, &sk, &err) == 0, "%s", err.msg);
    ck_assert_msg(ee_cnn_cipher_init(c, &sk, ee_cnn_fmap_channels(pm), pm->hp.in_h * pm->hp.in_w,
                                     pm->hp.n_class, &err) == 0,
                  "%s", err.msg);
    ee_key_wipe(&sk);
}

START_TEST(cnn_network_encrypted_equals_plaintext) {
    const int ki = _i;
    ee_err err = {{0}};
    ee_testcnn tc;
    ee_testcnn_init(&tc, 3, (const int[]){4, 6, 5}, 3, 1, 8, 8, 2, WCLS, 1300 + (uint64_t)ki);
    char *plain_path = ee_testcnn_write(&tc), *enc_path = ee_test_tmpfile(".gguf");
    ee_gguf *pg = ee_gguf_open(plain_path, &err);
    ck_assert_msg(pg != NULL, "%s", err.msg);
    unlink(plain_path); /* the mapping stays valid; a failed assertion leaves no file */
    ee_key k, other;
    test_key(&k, ki);
    test_key(&other, ki + NKEYS);
    ee_encrypt_opts o = {.out_type = EE_DT_F32};
    ee_encrypt_stats st;
    int rc = ee_encrypt_model(pg, &k, &o, enc_path, &st, &err);
    ee_gguf *eg = rc == 0 ? ee_gguf_open(enc_path, &err) : NULL;
    if (eg) check_encrypted_file(enc_path, eg);
    unlink(enc_path);
    ck_assert_msg(eg != NULL, "%s", err.msg);
    ck_assert_str_eq(st.scheme, EE_SCHEME_CNN);

    ee_cnn_model *pm = ee_cnn_load(pg, &err), *em = ee_cnn_load(eg, &err);
    ck_assert_msg(pm && em, "%s", err.msg);
    ck_assert_int_eq(em->hp.client_blocks, 1);
    const size_t n_img = ee_cnn_image_len(pm), n_log = (size_t)WN * WCLS;
    float *img = make_input(ki, IDX(IN(13), 0), WN * n_img, 0.3, 0.5);
    float *ref = FALLOC(n_log), *raw = FALLOC(n_log);
    ck_assert_msg(ee_cnn_classify_images(pm, img, WN, ref, &err) == 0, "%s", err.msg);

    ee_cnn_cipher c, oc;
    scheme_cipher(&c, &k, pg, pm);
    scheme_cipher(&oc, &other, pg, pm);
    float *dec = client_classify(pm, em, &c, img, WN, raw);
    expect_close("cnn: client stem + encrypted worker + decrypt = plaintext", ki, dec, ref, n_log);
    for (int i = 0; i < WN; i++)
        ck_assert_int_eq(ee_cnn_argmax(dec + i * WCLS, WCLS), ee_cnn_argmax(ref + i * WCLS, WCLS));
    expect_broken("cnn: the worker's raw scores", ki, raw, ref, n_log);
    float *wrong = client_classify(pm, em, &oc, img, WN, NULL);
    expect_broken("cnn: another key's cipher", ki, wrong, ref, n_log);
    /* the worker's weights are not the plaintext ones */
    const size_t n1 = (size_t)6 * 4 * 3 * 3;
    expect_broken("cnn: encrypted blk.1 weights", ki, em->blocks[1].weight, pm->blocks[1].weight, n1);

    ee_cnn_cipher_free(&c), ee_cnn_cipher_free(&oc);
    ee_cnn_free(pm), ee_cnn_free(em);
    ee_gguf_close(pg), ee_gguf_close(eg);
    free(plain_path), free(enc_path);
    ee_key_wipe(&k), ee_key_wipe(&other);
    ee_testcnn_free(&tc);
    free(img), free(ref), free(raw), free(dec), free(wrong);
}
END_TEST

Suite *suite_ee_props(void) {
    Suite *s = suite_create("ee_props");
    TCase *tc = tcase_create("ee_props");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, linear_rotation_in_monomial_or_rotation_out, 0, NKEYS);
    tcase_add_loop_test(tc, relu_commutes_with_positive_monomials, 0, NKEYS);
    tcase_add_loop_test(tc, smooth_activations_commute_with_permutations_only, 0, NKEYS);
    tcase_add_loop_test(tc, swiglu_permutation_and_up_scale, 0, NKEYS);
    tcase_add_loop_test(tc, rmsnorm_rotation_with_folded_gain, 0, NKEYS);
    tcase_add_loop_test(tc, layernorm_permutations_and_ones_fixing_rotations, 0, NKEYS);
    tcase_add_loop_test(tc, attention_rope_gqa_pair_rotations_and_head_permutation, 0, NKEYS);
    tcase_add_loop_test(tc, embedding_rows_permuted_and_rotated, 0, NKEYS);
    tcase_add_loop_test(tc, lm_head_permuted_logits, 0, NKEYS);
    tcase_add_loop_test(tc, conv2d_channel_permutation_and_scale, 0, NKEYS);
    tcase_add_loop_test(tc, post_layernorm_stream_permutation_only, 0, NKEYS);
    tcase_add_loop_test(tc, bidirectional_attention_full_head_maps, 0, NKEYS);
    tcase_add_loop_test(tc, encoder_embeddings_token_position_type, 0, NKEYS);
    tcase_add_loop_test(tc, maxpool_commutes_with_positive_channel_scales, 0, NKEYS);
    tcase_add_loop_test(tc, head_columns_and_class_permutation, 0, NKEYS);
    tcase_add_loop_test(tc, cnn_network_encrypted_equals_plaintext, 0, NKEYS);
    suite_add_tcase(s, tc);
    return s;
}
