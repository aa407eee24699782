/* Layer kinds against their textbook definitions computed in double. */
#include "ee_conv.h"
#include "ee_ops.h"

#include "ee_kernels.h"

#include <check.h>
#include <math.h>
#include <stdlib.h>

static float frand(unsigned *s) {
    *s = *s * 1664525u + 1013904223u;
    return ((*s >> 8) / 16777216.0f) * 4.0f - 2.0f;
}

START_TEST(rmsnorm_definition) {
    unsigned s = 1;
    float x[576], g[576], y[576];
    for (int i = 0; i < 576; i++) x[i] = frand(&s), g[i] = frand(&s);
    ee_rmsnorm(y, x, g, 576, 1e-5f);
    double ss = 0;
    for (int i = 0; i < 576; i++) ss += (double)x[i] * x[i];
    double r = 1.0 / sqrt(ss / 576 + 1e-5);
    for (int i = 0; i < 576; i++) ck_assert_double_eq_tol(y[i], x[i] * r * g[i], 1e-5);
}
END_TEST

START_TEST(layernorm_definition) {
    unsigned s = 2;
    float x[384], y[384];
    for (int i = 0; i < 384; i++) x[i] = frand(&s) + 3.0f;
    ee_layernorm(y, x, NULL, NULL, 384, 1e-12f);
    double m = 0, v = 0;
    for (int i = 0; i < 384; i++) m += y[i];
    m /= 384;
    for (int i = 0; i < 384; i++) v += (y[i] - m) * (y[i] - m);
    ck_assert_double_eq_tol(m, 0.0, 1e-5);
    ck_assert_double_eq_tol(v / 384, 1.0, 1e-4);
}
END_TEST

START_TEST(activations_known_values) {
    float x[5] = {-3.0f, -0.5f, 0.0f, 0.5f, 3.0f};
    float r[5], si[5], ge[5], gt[5];
    for (int i = 0; i < 5; i++) r[i] = si[i] = ge[i] = gt[i] = x[i];
    ee_relu(r, 5);
    ee_silu(si, 5);
    ee_gelu(ge, 5);
    ee_gelu_tanh(gt, 5);
    for (int i = 0; i < 5; i++) {
        double v = x[i];
        ck_assert_float_eq(r[i], (float)(v > 0 ? v : 0));
        ck_assert_double_eq_tol(si[i], v / (1 + exp(-v)), 1e-6);
        ck_assert_double_eq_tol(ge[i], 0.5 * v * (1 + erf(v / sqrt(2.0))), 1e-6);
        ck_assert_double_eq_tol(gt[i], 0.5 * v * (1 + tanh(sqrt(2 / M_PI) * (v + 0.044715 * v * v * v))), 1e-6);
    }
    float a[3] = {1.0f, -2.0f, 0.25f}, b[3] = {2.0f, 3.0f, -1.0f};
    ee_swiglu(a, b, 3);
    ck_assert_double_eq_tol(a[0], 1.0 / (1 + exp(-1.0)) * 2.0, 1e-6);
    ck_assert_double_eq_tol(a[1], -2.0 / (1 + exp(2.0)) * 3.0, 1e-6);
}
END_TEST

START_TEST(softmax_sums_to_one_and_masks) {
    float x[6] = {1.0f, 2.0f, -INFINITY, 1000.0f, 999.0f, -5.0f};
    ee_softmax(x, 6);
    double sum = 0;
    for (int i = 0; i < 6; i++) sum += x[i];
    ck_assert_double_eq_tol(sum, 1.0, 1e-6);
    ck_assert_float_eq(x[2], 0.0f);
    ck_assert_double_eq_tol(x[3] / x[4], exp(1.0), 1e-4);
    float m[3] = {-INFINITY, -INFINITY, -INFINITY};
    ee_softmax(m, 3);
    ck_assert_float_eq(m[0], 0.0f);
}
END_TEST

START_TEST(rope_adjacent_pairs_and_relative_positions) {
    /* One head of dim 8: pair i rotated by pos * theta^(-2i/8). */
    float q[8], k[8];
    unsigned s = 5;
    for (int i = 0; i < 8; i++) q[i] = frand(&s), k[i] = frand(&s);
    float q0[8];
    for (int i = 0; i < 8; i++) q0[i] = q[i];
    ee_rope_adjacent(q, 1, 8, 8, 3, 10000.0f);
    for (int i = 0; i < 4; i++) {
        double a = 3 * pow(10000.0, -2.0 * i / 8);
        ck_assert_double_eq_tol(q[2 * i], q0[2 * i] * cos(a) - q0[2 * i + 1] * sin(a), 1e-6);
        ck_assert_double_eq_tol(q[2 * i + 1], q0[2 * i] * sin(a) + q0[2 * i + 1] * cos(a), 1e-6);
    }
    /* q.k after RoPE depends only on the position difference. */
    float qa[8], ka[8], qb[8], kb[8];
    for (int i = 0; i < 8; i++) qa[i] = qb[i] = q0[i], ka[i] = kb[i] = k[i];
    ee_rope_adjacent(qa, 1, 8, 8, 10, 10000.0f);
    ee_rope_adjacent(ka, 1, 8, 8, 4, 10000.0f);
    ee_rope_adjacent(qb, 1, 8, 8, 106, 10000.0f);
    ee_rope_adjacent(kb, 1, 8, 8, 100, 10000.0f);
    double da = 0, db = 0;
    for (int i = 0; i < 8; i++) da += qa[i] * ka[i], db += qb[i] * kb[i];
    ck_assert_double_eq_tol(da, db, 1e-5);
    /* Partial rotation leaves the tail untouched. */
    float p[8];
    for (int i = 0; i < 8; i++) p[i] = q0[i];
    ee_rope_adjacent(p, 1, 8, 4, 7, 10000.0f);
    for (int i = 4; i < 8; i++) ck_assert_float_eq(p[i], q0[i]);
}
END_TEST

/* Heads wider than the 512-value table: rotated piecewise, same angles as
 * the definition (no abort, no allocation). */
START_TEST(rope_wide_heads_match_definition) {
    enum { HD = 1100, NR = 1100 };
    static float x[2 * HD], y[2 * HD];
    unsigned s = 5;
    for (int i = 0; i < 2 * HD; i++) x[i] = y[i] = frand(&s);
    ee_rope_adjacent(x, 2, HD, NR, 37, 10000.0f);
    for (int h = 0; h < 2; h++)
        for (int i = 0; i < NR / 2; i++) {
            double ang = 37.0 * pow(10000.0, -2.0 * i / NR);
            double a = y[h * HD + 2 * i], b = y[h * HD + 2 * i + 1];
            ck_assert_double_eq_tol(x[h * HD + 2 * i], a * cos(ang) - b * sin(ang), 1e-5);
            ck_assert_double_eq_tol(x[h * HD + 2 * i + 1], a * sin(ang) + b * cos(ang), 1e-5);
        }
}
END_TEST

START_TEST(conv2d_matches_direct_sum) {
    enum { CI = 3, H = 5, W = 6, CO = 4, K = 3 };
    float in[CI * H * W], w[CO * CI * K * K], b[CO], out[CO * H * W];
    unsigned s = 9;
    for (int i = 0; i < CI * H * W; i++) in[i] = frand(&s);
    for (int i = 0; i < CO * CI * K * K; i++) w[i] = frand(&s);
    for (int i = 0; i < CO; i++) b[i] = frand(&s);
    int oh, ow;
    ee_conv2d(out, in, w, b, CI, H, W, CO, K, K, 1, 1, &oh, &ow);
    ck_assert_int_eq(oh, H);
    ck_assert_int_eq(ow, W);
    /* Spot-check a corner (with padding) and an interior pixel. */
    int pts[2][3] = {{0, 0, 0}, {3, 2, 4}};
    for (int t = 0; t < 2; t++) {
        int co = pts[t][0], y = pts[t][1], x = pts[t][2];
        double acc = b[co];
        for (int ci = 0; ci < CI; ci++)
            for (int ky = 0; ky < K; ky++)
                for (int kx = 0; kx < K; kx++) {
                    int iy = y + ky - 1, ix = x + kx - 1;
                    if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                    acc += in[(ci * H + iy) * W + ix] * w[((co * CI + ci) * K + ky) * K + kx];
                }
        ck_assert_double_eq_tol(out[(co * oh + y) * ow + x], acc, 1e-5);
    }
    ee_conv2d(out, in, w, NULL, CI, H, W, CO, K, K, 2, 0, &oh, &ow);
    ck_assert_int_eq(oh, 2);
    ck_assert_int_eq(ow, 2);
}
END_TEST

/* The vectorised exp (softmax, SiLU) against double-precision exp over the
 * whole useful range, including the tail lanes of a non-multiple of 16,
 * for every kernel set this CPU runs (forced through the test hook). */
static void check_vector_exp(void);
START_TEST(vector_exp_accuracy) {
    static const char *const isas[] = {"avx512", "avx2", "scalar"};
    ee_err err = {{0}};
    for (size_t k = 0; k < sizeof isas / sizeof isas[0]; k++) {
        if (!ee_kernels_isa_supported(isas[k])) continue;
        ck_assert_msg(ee_kernels_set_isa(isas[k], &err) == 0, "%s", err.msg);
        check_vector_exp();
    }
}
END_TEST

static void check_vector_exp(void) {
    enum { N = 4099 };
    static float x[N], y[N];
    for (int i = 0; i < N; i++) x[i] = -100.0f + 188.0f * i / (N - 1);
    for (int i = 0; i < N; i++) y[i] = x[i];
    double sum = ee_exp_sum(y, N, 0.0f), ref_sum = 0.0;
    for (int i = 0; i < N; i++) {
        double r = exp((double)x[i]);
        ref_sum += r;
        if (r < 1e-37) continue; /* float subnormals: absolute error is what matters */
        ck_assert_msg(fabs(y[i] - r) <= 4e-7 * r, "%s: exp(%g) = %g, want %g", ee_kernels_isa(),
                      x[i], y[i], r);
    }
    ck_assert_double_eq_tol(sum / ref_sum, 1.0, 1e-6);
    float z[37];
    for (int i = 0; i < 37; i++) z[i] = y[i] = -20.0f + i * 1.1f;
    ee_silu(y, 37);
    for (int i = 0; i < 37; i++) {
        double v = z[i], r = v / (1 + exp(-v));
        ck_assert_msg(fabs(y[i] - r) <= 1e-6 * fabs(r) + 1e-30, "%s: silu(%g) = %g, want %g",
                      ee_kernels_isa(), v, y[i], r);
    }
}

Suite *suite_ops(void) {
    Suite *s = suite_create("ops");
    TCase *tc = tcase_create("ops");
    tcase_add_test(tc, rmsnorm_definition);
    tcase_add_test(tc, rope_wide_heads_match_definition);
    tcase_add_test(tc, layernorm_definition);
    tcase_add_test(tc, activations_known_values);
    tcase_add_test(tc, softmax_sums_to_one_and_masks);
    tcase_add_test(tc, vector_exp_accuracy);
    tcase_add_test(tc, rope_adjacent_pairs_and_relative_positions);
    tcase_add_test(tc, conv2d_matches_direct_sum);
    suite_add_tcase(s, tc);
    return s;
}
