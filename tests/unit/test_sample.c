/* Sampler: greedy, determinism, and the distribution it draws from. */
#include "ee_sample.h"

#include <check.h>
#include <math.h>
#include <string.h>

START_TEST(greedy_is_argmax_lowest_on_ties) {
    float lg[5] = {0.1f, 3.0f, 3.0f, -1.0f, 2.9f};
    ee_sample_params p = {.temperature = 0, .top_p = 1};
    ee_err err = {{0}};
    ee_sampler *s = ee_sampler_new(&p, 5, &err);
    ck_assert_int_eq(ee_sampler_next(s, lg), 1);
    ee_sampler_free(s);
}
END_TEST

START_TEST(same_seed_same_tokens) {
    float lg[50];
    for (int i = 0; i < 50; i++) lg[i] = (float)sin(i);
    ee_sample_params p = {.temperature = 1.0f, .top_p = 1.0f, .seed = 42};
    ee_err err = {{0}};
    ee_sampler *a = ee_sampler_new(&p, 50, &err), *b = ee_sampler_new(&p, 50, &err);
    p.seed = 43;
    ee_sampler *c = ee_sampler_new(&p, 50, &err);
    int same = 0, diff = 0;
    for (int i = 0; i < 200; i++) {
        int32_t x = ee_sampler_next(a, lg), y = ee_sampler_next(b, lg), z = ee_sampler_next(c, lg);
        same += x == y;
        diff += x != z;
    }
    ck_assert_int_eq(same, 200);
    ck_assert_int_gt(diff, 50);
    ee_sampler_free(a);
    ee_sampler_free(b);
    ee_sampler_free(c);
}
END_TEST

START_TEST(draws_follow_softmax_with_temperature) {
    float lg[4] = {1.0f, 2.0f, 0.0f, 1.5f};
    const float T = 0.7f;
    ee_sample_params p = {.temperature = T, .top_p = 1.0f, .seed = 7};
    ee_err err = {{0}};
    ee_sampler *s = ee_sampler_new(&p, 4, &err);
    int cnt[4] = {0};
    const int N = 40000;
    for (int i = 0; i < N; i++) cnt[ee_sampler_next(s, lg)]++;
    double z = 0;
    for (int i = 0; i < 4; i++) z += exp(lg[i] / T);
    for (int i = 0; i < 4; i++) {
        double pr = exp(lg[i] / T) / z;
        double sd = sqrt(pr * (1 - pr) / N);
        ck_assert_msg(fabs(cnt[i] / (double)N - pr) < 5 * sd + 1e-3,
                      "token %d: freq %.4f vs p %.4f", i, cnt[i] / (double)N, pr);
    }
    ee_sampler_free(s);
}
END_TEST

START_TEST(top_k_and_top_p_cut) {
    /* probabilities at T=1: softmax(log p) = p */
    float lg[4] = {logf(0.5f), logf(0.3f), logf(0.15f), logf(0.05f)};
    ee_err err = {{0}};
    ee_sample_params p = {.temperature = 1.0f, .top_p = 0.7f, .seed = 1};
    ee_sampler *s = ee_sampler_new(&p, 4, &err);
    int cnt[4] = {0};
    for (int i = 0; i < 5000; i++) cnt[ee_sampler_next(s, lg)]++;
    ck_assert_int_eq(cnt[2] + cnt[3], 0); /* 0.5 + 0.3 reaches 0.7 */
    ck_assert_int_gt(cnt[1], 1000);
    ee_sampler_free(s);
    p = (ee_sample_params){.temperature = 5.0f, .top_k = 1, .top_p = 1.0f, .seed = 1};
    s = ee_sampler_new(&p, 4, &err);
    for (int i = 0; i < 100; i++) ck_assert_int_eq(ee_sampler_next(s, lg), 0);
    ee_sampler_free(s);
}
END_TEST

START_TEST(invalid_params_named) {
    ee_err err = {{0}};
    ee_sample_params p = {.temperature = -1, .top_p = 1};
    ck_assert_ptr_null(ee_sampler_new(&p, 4, &err));
    ck_assert_ptr_nonnull(strstr(err.msg, "temperature"));
    p = (ee_sample_params){.temperature = 1, .top_p = 0};
    ck_assert_ptr_null(ee_sampler_new(&p, 4, &err));
    ck_assert_ptr_nonnull(strstr(err.msg, "top_p"));
    p = (ee_sample_params){.temperature = 1, .top_p = 1, .top_k = -2};
    ck_assert_ptr_null(ee_sampler_new(&p, 4, &err));
    ck_assert_ptr_nonnull(strstr(err.msg, "top_k"));
}
END_TEST

Suite *suite_sample(void) {
    Suite *s = suite_create("sample");
    TCase *tc = tcase_create("sample");
    tcase_add_test(tc, greedy_is_argmax_lowest_on_ties);
    tcase_add_test(tc, same_seed_same_tokens);
    tcase_add_test(tc, draws_follow_softmax_with_temperature);
    tcase_add_test(tc, top_k_and_top_p_cut);
    tcase_add_test(tc, invalid_params_named);
    suite_add_tcase(s, tc);
    return s;
}
