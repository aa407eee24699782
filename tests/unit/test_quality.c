/* ee_quality: llama.cpp's --kl-divergence statistics on hand-computed
 * distributions, through a vocabulary permutation as an encrypted model's
 * logits come, and the errors it names. */
#include "ee_quality.h"

#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NEAR(a, b) ck_assert_msg(fabs((a) - (b)) < 1e-6, "%.12g != %.12g", (double)(a), (double)(b))

START_TEST(kld_same_top_and_perplexity_by_hand) {
    ee_quality q;
    ee_quality_init(&q);
    ee_err err = {{0}};
    /* ref p = (1/2, 1/4, 1/4); test p = (1/4, 1/4, 1/2) given as logits in
     * an order where test[map[i]] is token i: map = (2, 0, 1). */
    const float ref[3] = {logf(2), 0, 0};
    const float test[3] = {0, logf(2), 0}; /* columns hold tokens 1, 2, 0 */
    /* token0 -> col 2 (0 = ln1), token1 -> col 0 (ln 2), token2 -> col 1 (0) */
    const uint32_t map[3] = {2, 0, 1};
    ck_assert_int_eq(ee_quality_add(&q, ref, test, map, 3, 0, &err), 0);
    ee_quality_summary s;
    ee_quality_summarize(&q, &s);
    const double kld = 0.5 * log(0.5 / 0.25) + 0.25 * log(0.25 / 0.5) + 0.25 * log(0.25 / 0.25);
    ck_assert_int_eq(s.n, 1);
    NEAR(s.kld_mean, kld);
    NEAR(s.kld_max, (float)kld);
    NEAR(s.same_top, 0.0); /* the tops are token 0 and token 2 */
    NEAR(s.ppl_ref, 2.0);  /* p_ref(token0) = 1/2 */
    NEAR(s.ppl, 4.0);      /* p(token0) = 1/4 */
    NEAR(s.ln_ppl_ratio, log(2.0));
    NEAR(s.delta_p, -0.25);
    /* The same distribution in the same order: KLD 0, same top. */
    ck_assert_int_eq(ee_quality_add(&q, ref, ref, NULL, 3, 1, &err), 0);
    ee_quality_summarize(&q, &s);
    ck_assert_int_eq(s.n, 2);
    NEAR(s.kld_mean, kld / 2);
    NEAR(s.same_top, 0.5);
    NEAR(s.kld_median, (float)kld); /* the upper of the two */
    ck_assert(s.kld_stderr > 0);
    ee_quality_free(&q);
}
END_TEST

START_TEST(bad_input_is_named) {
    ee_quality q;
    ee_quality_init(&q);
    ee_err err = {{0}};
    float a[2] = {0, 1}, b[2] = {0, NAN};
    ck_assert_int_eq(ee_quality_add(&q, a, a, NULL, 2, 2, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "out of range"));
    ck_assert_int_eq(ee_quality_add(&q, a, b, NULL, 2, 0, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "model's logits"));
    ck_assert_int_eq(ee_quality_add(&q, b, a, NULL, 2, 0, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "reference"));
    ee_quality_summary s;
    ee_quality_summarize(&q, &s); /* nothing added: all zero */
    ck_assert_int_eq(s.n, 0);
    ck_assert(s.kld_mean == 0 && s.ppl == 0);
    ee_quality_free(&q);
}
END_TEST

Suite *suite_quality(void) {
    Suite *s = suite_create("quality");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, kld_same_top_and_perplexity_by_hand);
    tcase_add_test(tc, bad_input_is_named);
    suite_add_tcase(s, tc);
    return s;
}
