/* Fused stored-type GEMV kernels against the scalar reference (dequantize,
 * then dot in double), for every type, batch sizes 1..8, beta 0 and 1,
 * one and two threads. */
#include "ee_kernels.h"
#include "ee_quant.h"

#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static float frand(unsigned *s) {
    *s = *s * 1664525u + 1013904223u;
    return ((*s >> 8) / 16777216.0f) * 2.0f - 1.0f;
}

static void check_type(ee_dtype t, int threads) {
    const int rows = 97, cols = 576;
    ee_err err = {{0}};
    unsigned s = 1234u + (unsigned)t;
    float *wf = malloc((size_t)rows * cols * sizeof(float));
    for (int i = 0; i < rows * cols; i++) wf[i] = frand(&s);
    size_t rb = ee_dtype_row_bytes(t, cols);
    uint8_t *w = malloc(rb * rows);
    for (int r = 0; r < rows; r++)
        ck_assert_int_eq(ee_quantize_row(t, wf + (size_t)r * cols, w + rb * r, cols, &err), 0);
    float x[EE_FUSED_MAX_T * 600], y0[EE_FUSED_MAX_T * 100], y1[EE_FUSED_MAX_T * 100];
    for (int i = 0; i < EE_FUSED_MAX_T * 600; i++) x[i] = frand(&s);
    ee_kernels_set_threads(threads);
    for (int T = 1; T <= EE_FUSED_MAX_T; T++) {
        for (int b = 0; b < 2; b++) {
            float beta = (float)b;
            for (int i = 0; i < EE_FUSED_MAX_T * 100; i++) y0[i] = y1[i] = frand(&s);
            ck_assert_int_eq(ee_gemv_stored(t, w, rb, rows, cols, x, 600, T, y0, 100, beta), 0);
            ck_assert_int_eq(ee_gemv_stored_ref(t, w, rb, rows, cols, x, 600, T, y1, 100, beta), 0);
            for (int i = 0; i < T; i++)
                for (int r = 0; r < rows; r++) {
                    /* Error bound relative to sum |w||x| ~ cols/4. */
                    double tol = 1e-5 * cols;
                    ck_assert_msg(fabs(y0[i * 100 + r] - y1[i * 100 + r]) <= tol,
                                  "type %d T %d beta %g row %d: %g vs %g", t, T, beta, r,
                                  y0[i * 100 + r], y1[i * 100 + r]);
                }
            /* Rows past `rows` untouched. */
        }
    }
    ee_kernels_set_threads(1);
    free(w);
    free(wf);
}

START_TEST(fused_equals_reference_all_types) {
    ee_dtype types[] = {EE_DT_F32, EE_DT_F16, EE_DT_BF16, EE_DT_Q8_0, EE_DT_Q4_0, EE_DT_Q4_1};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        check_type(types[i], 1);
        check_type(types[i], 2);
    }
}
END_TEST

START_TEST(fast_dequant_is_bit_identical) {
    ee_dtype types[] = {EE_DT_F16, EE_DT_BF16, EE_DT_Q8_0, EE_DT_Q4_0, EE_DT_Q4_1};
    const int rows = 9, cols = 576;
    ee_err err = {{0}};
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        ee_dtype t = types[k];
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
                          "type %d row %d differs from the reference", t, r);
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
    suite_add_tcase(s, tc);
    return s;
}
