/* Fused stored-type GEMV kernels against the scalar reference (dequantize,
 * then dot in double), for every kernel set the CPU runs (avx512, avx2,
 * scalar: forced through ee_kernels_set_isa), every type, batch sizes
 * 1..8, beta 0 and 1, one and two threads, an odd row count, an odd block
 * count and (float types) a column tail. The AVX2 set mirrors the AVX-512
 * one lane for lane, so the two must agree bit for bit. */
#include "ee_kernels.h"
#include "ee_ops.h"
#include "ee_quant.h"

#include <check.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static float frand(unsigned *s) {
    *s = *s * 1664525u + 1013904223u;
    return ((*s >> 8) / 16777216.0f) * 2.0f - 1.0f;
}

static const char *const ISAS[] = {"avx512", "avx2", "scalar"};
#define N_ISAS (sizeof ISAS / sizeof ISAS[0])

/* Force a kernel set; false when this CPU cannot run it (then skipped). */
static bool use_isa(const char *isa) {
    if (!ee_kernels_isa_supported(isa)) return false;
    ee_err err = {{0}};
    ck_assert_msg(ee_kernels_set_isa(isa, &err) == 0, "%s: %s", isa, err.msg);
    ck_assert_str_eq(ee_kernels_isa(), isa);
    return true;
}

/* Columns: quantized types an odd number of 32-blocks (the kernels split
 * blocks into even/odd accumulators); float types also a tail past the
 * last 16. ldx 640 >= cols. */
static int test_cols(ee_dtype t) {
    return t == EE_DT_F32 || t == EE_DT_F16 || t == EE_DT_BF16 ? 627 : 608;
}

static void check_type(ee_dtype t, int threads) {
    const int rows = 97, cols = test_cols(t);
    ee_err err = {{0}};
    unsigned s = 1234u + (unsigned)t;
    float *wf = malloc((size_t)rows * cols * sizeof(float));
    for (int i = 0; i < rows * cols; i++) wf[i] = frand(&s);
    size_t rb = ee_dtype_row_bytes(t, cols);
    uint8_t *w = malloc(rb * rows);
    for (int r = 0; r < rows; r++)
        ck_assert_int_eq(ee_quantize_row(t, wf + (size_t)r * cols, w + rb * r, cols, &err), 0);
    float x[EE_FUSED_MAX_T * 640], y0[EE_FUSED_MAX_T * 100], y1[EE_FUSED_MAX_T * 100];
    for (int i = 0; i < EE_FUSED_MAX_T * 640; i++) x[i] = frand(&s);
    ee_kernels_set_threads(threads);
    for (int T = 1; T <= EE_FUSED_MAX_T; T++) {
        for (int b = 0; b < 2; b++) {
            float beta = (float)b;
            for (int i = 0; i < EE_FUSED_MAX_T * 100; i++) y0[i] = y1[i] = frand(&s);
            ck_assert_int_eq(ee_gemv_stored(t, w, rb, rows, cols, x, 640, T, y0, 100, beta), 0);
            ck_assert_int_eq(ee_gemv_stored_ref(t, w, rb, rows, cols, x, 640, T, y1, 100, beta), 0);
            for (int i = 0; i < T; i++)
                for (int r = 0; r < rows; r++) {
                    /* Error bound relative to sum |w||x| ~ cols/4. */
                    double tol = 1e-5 * cols;
                    ck_assert_msg(fabs(y0[i * 100 + r] - y1[i * 100 + r]) <= tol,
                                  "%s type %d T %d beta %g row %d: %g vs %g", ee_kernels_isa(),
                                  t, T, beta, r, y0[i * 100 + r], y1[i * 100 + r]);
                }
            /* Rows past `rows` untouched (y0 and y1 started equal). */
            for (int i = 0; i < EE_FUSED_MAX_T; i++)
                for (int r = i < T ? rows : 0; r < 100; r++)
                    ck_assert_msg(y0[i * 100 + r] == y1[i * 100 + r],
                                  "%s type %d T %d: y[%d][%d] written", ee_kernels_isa(), t, T,
                                  i, r);
        }
    }
    ee_kernels_set_threads(1);
    free(w);
    free(wf);
}

START_TEST(fused_equals_reference_all_types) {
    ee_dtype types[] = {EE_DT_F32, EE_DT_F16, EE_DT_BF16, EE_DT_Q8_0, EE_DT_Q4_0, EE_DT_Q4_1};
    int ran = 0;
    for (size_t k = 0; k < N_ISAS; k++) {
        if (!use_isa(ISAS[k])) continue;
        ran++;
        for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
            check_type(types[i], 1);
            check_type(types[i], 2);
        }
    }
    ck_assert_int_ge(ran, 1); /* scalar always runs */
}
END_TEST

/* AVX2 and AVX-512 give bit-identical products (same operations per lane,
 * same reduction tree), hence the same greedy text. */
START_TEST(avx2_equals_avx512_bitwise) {
    if (!ee_kernels_isa_supported("avx512") || !ee_kernels_isa_supported("avx2")) return;
    ee_dtype types[] = {EE_DT_F32, EE_DT_F16, EE_DT_BF16, EE_DT_Q8_0, EE_DT_Q4_0, EE_DT_Q4_1};
    ee_err err = {{0}};
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        const ee_dtype t = types[k];
        const int rows = 33, cols = test_cols(t);
        unsigned s = 777u + (unsigned)t;
        float *wf = malloc((size_t)rows * cols * sizeof(float));
        for (int i = 0; i < rows * cols; i++) wf[i] = frand(&s);
        const size_t rb = ee_dtype_row_bytes(t, cols);
        uint8_t *w = malloc(rb * rows);
        for (int r = 0; r < rows; r++)
            ck_assert_int_eq(ee_quantize_row(t, wf + (size_t)r * cols, w + rb * r, cols, &err), 0);
        float x[EE_FUSED_MAX_T * 640], y[2][EE_FUSED_MAX_T * 40];
        for (int i = 0; i < EE_FUSED_MAX_T * 640; i++) x[i] = frand(&s);
        for (int T = 1; T <= EE_FUSED_MAX_T; T++) {
            for (int v = 0; v < 2; v++) {
                ck_assert(use_isa(v ? "avx2" : "avx512"));
                for (int i = 0; i < EE_FUSED_MAX_T * 40; i++) y[v][i] = 0.5f;
                ck_assert_int_eq(ee_gemv_stored(t, w, rb, rows, cols, x, 640, T, y[v], 40, 1.0f), 0);
            }
            ck_assert_msg(memcmp(y[0], y[1], sizeof y[0]) == 0, "type %d T %d: avx2 != avx512",
                          t, T);
        }
        free(w);
        free(wf);
    }
    /* exp and SiLU too, over a range with underflow, overflow and tails. */
    enum { N = 1237 };
    static float a[2][N], b[2][N];
    double sum[2];
    for (int v = 0; v < 2; v++) {
        ck_assert(use_isa(v ? "avx2" : "avx512"));
        for (int i = 0; i < N; i++) a[v][i] = b[v][i] = -110.0f + 210.0f * i / (N - 1);
        sum[v] = ee_exp_sum(a[v], N, 1.5f);
        ee_silu(b[v], N);
    }
    ck_assert(memcmp(a[0], a[1], sizeof a[0]) == 0);
    ck_assert(memcmp(b[0], b[1], sizeof b[0]) == 0);
    ck_assert(sum[0] == sum[1]);
}
END_TEST

START_TEST(isa_choice_errors_are_named) {
    ee_err err = {{0}};
    ck_assert_int_eq(ee_kernels_set_isa("neon", &err), -1);
    ck_assert_msg(strstr(err.msg, "neon") && strstr(err.msg, "avx2"), "%s", err.msg);
    ck_assert(!ee_kernels_isa_supported("neon"));
    ck_assert(ee_kernels_isa_supported("scalar"));
    ck_assert_int_eq(ee_kernels_set_isa("scalar", &err), 0);
    ck_assert_str_eq(ee_kernels_isa(), "scalar");
}
END_TEST

START_TEST(fast_dequant_is_bit_identical) {
    ee_dtype types[] = {EE_DT_F16, EE_DT_BF16, EE_DT_Q8_0, EE_DT_Q4_0, EE_DT_Q4_1};
    const int rows = 9, cols = 608;
    ee_err err = {{0}};
    for (size_t k = 0; k < sizeof types / sizeof types[0] * N_ISAS; k++) {
        if (!use_isa(ISAS[k % N_ISAS])) continue;
        ee_dtype t = types[k / N_ISAS];
        unsigned s = 99u + (unsigned)t;
        size_t rb = ee_dtype_row_bytes(t, cols);
        uint8_t *w = malloc(rb * rows);
        float *src = malloc(sizeof(float) * cols), *a = malloc(sizeof(float) * rows * cols),
              *b = malloc(sizeof(float) * cols);
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) src[c] = frand(&s) * (r + 1);
            ck_assert_int_eq(ee_quantize_row(t, src, w + rb * r, cols, &err), 0);
        }
        ee_dequant_rows(t, w, rb, cols, 2, rows, a);
        for (int r = 2; r < rows; r++) {
            ee_dequantize_row(t, w + rb * r, b, cols, &err);
            ck_assert_msg(memcmp(a + (size_t)(r - 2) * cols, b, sizeof(float) * cols) == 0,
                          "%s type %d row %d differs from the reference", ee_kernels_isa(), t, r);
        }
        free(w);
        free(src);
        free(a);
        free(b);
    }
}
END_TEST

Suite *suite_kernels(void) {
    Suite *s = suite_create("kernels");
    TCase *tc = tcase_create("gemv");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, fused_equals_reference_all_types);
    tcase_add_test(tc, fast_dequant_is_bit_identical);
    tcase_add_test(tc, avx2_equals_avx512_bitwise);
    tcase_add_test(tc, isa_choice_errors_are_named);
    suite_add_tcase(s, tc);
    return s;
}
