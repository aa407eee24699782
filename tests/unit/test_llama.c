/* Llama forward pass on synthetic models: against the independent numpy
 * reference (tests/ref/llama_np.py over the PyPI gguf reader), and internal
 * consistency: KV-cache decode == prefill, batched == separate, chunked ==
 * whole, stored-type weights == f32 copies, and clean errors. */
#include "ee_gguf.h"
#include "ee_llama.h"
#include "ee_testmodel.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void random_tokens(int32_t *t, int n, unsigned seed) {
    for (int i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        t[i] = (int32_t)((seed >> 8) % EE_TESTMODEL_VOCAB);
    }
}

/* All-position logits for tokens, from a fresh cache. */
static float *run_all(ee_test_llama *f, const int32_t *tok, int n) {
    ee_err err = {{0}};
    ee_kv_cache *kv = ee_kv_cache_new(f->m, 256, &err);
    ck_assert_ptr_nonnull(kv);
    float *lg = malloc((size_t)n * f->m->hp.n_vocab * sizeof(float));
    ee_llama_seq s = {.tokens = tok, .n_tokens = n, .cache = kv, .logits = lg, .all_logits = true};
    ck_assert_msg(ee_llama_forward(f->ctx, &s, 1, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(kv->n, n);
    ee_kv_cache_free(kv);
    return lg;
}

static float max_abs_diff(const float *a, const float *b, size_t n) {
    float m = 0.0f;
    for (size_t i = 0; i < n; i++) {
        float d = fabsf(a[i] - b[i]);
        if (!(d <= m)) m = d; /* NaN propagates as a failure */
    }
    return m;
}

/* Ask the numpy reference for all-position logits. */
static float *numpy_logits(const char *model, const int32_t *tok, int n, int n_vocab) {
    char *out = ee_test_tmpfile(".bin");
    char ids[4096] = {0};
    size_t o = 0;
    for (int i = 0; i < n; i++) o += snprintf(ids + o, sizeof ids - o, "%s%d", i ? "," : "", tok[i]);
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "%s tests/ref/ref_llama.py --model %s --tokens %s --dump-logits %s",
             ee_test_python(), model, ids, out);
    char *err_text = NULL;
    int st = ee_test_run(cmd, NULL, &err_text);
    ck_assert_msg(st == 0, "numpy reference failed (%d): %s", st, err_text);
    free(err_text);
    FILE *fp = fopen(out, "rb");
    ck_assert_ptr_nonnull(fp);
    float *lg = malloc((size_t)n * n_vocab * sizeof(float));
    size_t got = fread(lg, sizeof(float), (size_t)n * n_vocab, fp);
    fclose(fp);
    unlink(out);
    free(out);
    ck_assert_uint_eq(got, (size_t)n * n_vocab);
    return lg;
}

static void check_against_numpy(const ee_testmodel_cfg *cfg, float tol) {
    ee_test_llama f;
    ee_test_llama_open(&f, cfg, true);
    int32_t tok[40];
    random_tokens(tok, 40, 7);
    float *ours = run_all(&f, tok, 40);
    float *ref = numpy_logits(f.path, tok, 40, f.m->hp.n_vocab);
    size_t n = (size_t)40 * f.m->hp.n_vocab;
    float d = max_abs_diff(ours, ref, n);
    ck_assert_msg(d <= tol, "max |logit diff| vs numpy = %g (tol %g)", d, tol);
    for (int p = 0; p < 40; p++) {
        const float *a = ours + (size_t)p * f.m->hp.n_vocab, *b = ref + (size_t)p * f.m->hp.n_vocab;
        int ia = 0, ib = 0;
        for (int v = 1; v < f.m->hp.n_vocab; v++) {
            if (a[v] > a[ia]) ia = v;
            if (b[v] > b[ib]) ib = v;
        }
        ck_assert_msg(ia == ib, "argmax differs at position %d: %d vs %d", p, ia, ib);
    }
    free(ours);
    free(ref);
    ee_test_llama_close(&f);
}

START_TEST(matches_numpy_f32_tied_gqa) {
    ee_testmodel_cfg c = ee_testmodel_default();
    check_against_numpy(&c, 1e-4f);
}
END_TEST

START_TEST(matches_numpy_q4_1_untied_mha) {
    ee_testmodel_cfg c = ee_testmodel_default();
    c.wtype = EE_DT_Q4_1;
    c.tied = false;
    c.n_head_kv = c.n_head; /* plain multi-head attention */
    c.rope_theta = 100000.0f;
    check_against_numpy(&c, 1e-4f);
}
END_TEST

START_TEST(matches_numpy_q8_0_mqa) {
    ee_testmodel_cfg c = ee_testmodel_default();
    c.wtype = EE_DT_Q8_0;
    c.n_head_kv = 1; /* multi-query attention */
    c.n_layer = 3;
    check_against_numpy(&c, 1e-4f);
}
END_TEST

START_TEST(decode_equals_prefill) {
    ee_testmodel_cfg c = ee_testmodel_default();
    ee_test_llama f;
    ee_test_llama_open(&f, &c, false);
    const int n = 30, V = f.m->hp.n_vocab;
    int32_t tok[30];
    random_tokens(tok, n, 3);
    float *full = run_all(&f, tok, n);
    ee_err err = {{0}};
    ee_kv_cache *kv = ee_kv_cache_new(f.m, 64, &err);
    float *lg = malloc((size_t)V * sizeof(float));
    for (int i = 0; i < n; i++) {
        ee_llama_seq s = {.tokens = &tok[i], .n_tokens = 1, .cache = kv, .logits = lg};
        ck_assert_msg(ee_llama_forward(f.ctx, &s, 1, &err) == 0, "%s", err.msg);
        float d = max_abs_diff(lg, full + (size_t)i * V, (size_t)V);
        ck_assert_msg(d <= 1e-4f, "position %d: decode vs prefill diff %g", i, d);
    }
    free(lg);
    free(full);
    ee_kv_cache_free(kv);
    ee_test_llama_close(&f);
}
END_TEST

START_TEST(chunked_prefill_equals_whole) {
    ee_testmodel_cfg c = ee_testmodel_default();
    ee_test_llama f;
    ee_test_llama_open(&f, &c, false);
    const int V = f.m->hp.n_vocab;
    int32_t tok[50];
    random_tokens(tok, 50, 11);
    float *full = run_all(&f, tok, 50);
    ee_err err = {{0}};
    ee_kv_cache *kv = ee_kv_cache_new(f.m, 64, &err);
    float *lg = malloc((size_t)22 * V * sizeof(float));
    int off = 0, sizes[] = {7, 20, 1, 22};
    for (int k = 0; k < 4; k++) {
        ee_llama_seq s = {.tokens = tok + off, .n_tokens = sizes[k], .cache = kv, .logits = lg,
                          .all_logits = true};
        ck_assert_msg(ee_llama_forward(f.ctx, &s, 1, &err) == 0, "%s", err.msg);
        float d = max_abs_diff(lg, full + (size_t)off * V, (size_t)sizes[k] * V);
        ck_assert_msg(d <= 1e-4f, "chunk %d: diff %g", k, d);
        off += sizes[k];
    }
    free(lg);
    free(full);
    ee_kv_cache_free(kv);
    ee_test_llama_close(&f);
}
END_TEST

START_TEST(batch_equals_separate) {
    ee_testmodel_cfg c = ee_testmodel_default();
    ee_test_llama f;
    ee_test_llama_open(&f, &c, false);
    const int V = f.m->hp.n_vocab;
    ee_err err = {{0}};
    /* Three sequences at different positions: one prefilled by 5 tokens
     * then given 1 more, one fresh with 9, one prefilled by 12 given 3. */
    int32_t a[6], b[9], cc[15];
    random_tokens(a, 6, 1);
    random_tokens(b, 9, 2);
    random_tokens(cc, 15, 3);
    float *ref_a = run_all(&f, a, 6), *ref_b = run_all(&f, b, 9), *ref_c = run_all(&f, cc, 15);
    ee_kv_cache *ka = ee_kv_cache_new(f.m, 32, &err), *kb = ee_kv_cache_new(f.m, 32, &err),
                *kc = ee_kv_cache_new(f.m, 32, &err);
    ee_llama_seq pre[2] = {{.tokens = a, .n_tokens = 5, .cache = ka},
                           {.tokens = cc, .n_tokens = 12, .cache = kc}};
    ck_assert_msg(ee_llama_forward(f.ctx, pre, 2, &err) == 0, "%s", err.msg);
    float *la = malloc((size_t)V * sizeof(float)), *lb = malloc((size_t)9 * V * sizeof(float)),
          *lc = malloc((size_t)V * sizeof(float));
    ee_llama_seq batch[3] = {
        {.tokens = a + 5, .n_tokens = 1, .cache = ka, .logits = la},
        {.tokens = b, .n_tokens = 9, .cache = kb, .logits = lb, .all_logits = true},
        {.tokens = cc + 12, .n_tokens = 3, .cache = kc, .logits = lc},
    };
    ck_assert_msg(ee_llama_forward(f.ctx, batch, 3, &err) == 0, "%s", err.msg);
    ck_assert_float_le(max_abs_diff(la, ref_a + (size_t)5 * V, (size_t)V), 1e-4f);
    ck_assert_float_le(max_abs_diff(lb, ref_b, (size_t)9 * V), 1e-4f);
    ck_assert_float_le(max_abs_diff(lc, ref_c + (size_t)14 * V, (size_t)V), 1e-4f);
    ck_assert_int_eq(ka->n, 6);
    ck_assert_int_eq(kb->n, 9);
    ck_assert_int_eq(kc->n, 15);
    free(la);
    free(lb);
    free(lc);
    free(ref_a);
    free(ref_b);
    free(ref_c);
    ee_kv_cache_free(ka);
    ee_kv_cache_free(kb);
    ee_kv_cache_free(kc);
    ee_test_llama_close(&f);
}
END_TEST

START_TEST(stored_types_equal_f32_copies) {
    ee_dtype types[] = {EE_DT_F16, EE_DT_BF16, EE_DT_Q8_0, EE_DT_Q4_0, EE_DT_Q4_1};
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        ee_testmodel_cfg c = ee_testmodel_default();
        c.wtype = types[k];
        c.tied = k % 2 == 0;
        ee_test_llama fa, fb;
        ee_test_llama_open(&fa, &c, false);
        ee_test_llama_open(&fb, &c, true);
        int32_t tok[17];
        random_tokens(tok, 17, (unsigned)k);
        float *a = run_all(&fa, tok, 17), *b = run_all(&fb, tok, 17);
        float d = max_abs_diff(a, b, (size_t)17 * fa.m->hp.n_vocab);
        ck_assert_msg(d <= 1e-4f, "type %d: stored vs f32 diff %g", types[k], d);
        free(a);
        free(b);
        ee_test_llama_close(&fa);
        ee_test_llama_close(&fb);
    }
}
END_TEST

START_TEST(rejects_bad_tokens_and_overflow_without_side_effects) {
    ee_testmodel_cfg c = ee_testmodel_default();
    ee_test_llama f;
    ee_test_llama_open(&f, &c, false);
    ee_err err = {{0}};
    ee_kv_cache *kv = ee_kv_cache_new(f.m, 8, &err);
    int32_t ok[4] = {1, 2, 3, 4};
    ee_llama_seq s = {.tokens = ok, .n_tokens = 4, .cache = kv};
    ck_assert_int_eq(ee_llama_forward(f.ctx, &s, 1, &err), 0);
    int32_t bad[2] = {5, EE_TESTMODEL_VOCAB};
    s = (ee_llama_seq){.tokens = bad, .n_tokens = 2, .cache = kv};
    ck_assert_int_eq(ee_llama_forward(f.ctx, &s, 1, &err), -1);
    ck_assert_msg(strstr(err.msg, "out of range") && strstr(err.msg, "index 1"), "%s", err.msg);
    ck_assert_int_eq(kv->n, 4);
    int32_t neg = -1;
    s = (ee_llama_seq){.tokens = &neg, .n_tokens = 1, .cache = kv};
    ck_assert_int_eq(ee_llama_forward(f.ctx, &s, 1, &err), -1);
    int32_t five[5] = {1, 1, 1, 1, 1};
    s = (ee_llama_seq){.tokens = five, .n_tokens = 5, .cache = kv};
    ck_assert_int_eq(ee_llama_forward(f.ctx, &s, 1, &err), -1);
    ck_assert_msg(strstr(err.msg, "context"), "%s", err.msg);
    ck_assert_int_eq(kv->n, 4);
    ee_llama_seq two[2] = {{.tokens = ok, .n_tokens = 1, .cache = kv},
                           {.tokens = ok, .n_tokens = 1, .cache = kv}};
    ck_assert_int_eq(ee_llama_forward(f.ctx, two, 2, &err), -1);
    ck_assert_ptr_null(ee_kv_cache_new(f.m, 100000, &err));
    ee_kv_cache_free(kv);
    ee_test_llama_close(&f);
}
END_TEST

START_TEST(rejects_wrong_architecture_and_missing_tensor) {
    ee_err err = {{0}};
    ee_testmodel_cfg c = ee_testmodel_default();
    char *path = ee_test_tmpfile(".gguf");
    ck_assert_int_eq(ee_testmodel_write(path, &c, &err), 0);
    /* Rewritten with another architecture, then without one tensor. */
    char *p2 = ee_test_gguf_rewrite(path, "bert", NULL);
    ee_gguf *g2 = ee_gguf_open(p2, &err);
    ck_assert_ptr_null(ee_llama_load(g2, NULL, &err));
    ck_assert_msg(strstr(err.msg, "bert"), "%s", err.msg);
    ee_gguf_close(g2);
    char *p3 = ee_test_gguf_rewrite(path, NULL, "blk.1.ffn_up.weight");
    g2 = ee_gguf_open(p3, &err);
    ck_assert_ptr_null(ee_llama_load(g2, NULL, &err));
    ck_assert_msg(strstr(err.msg, "blk.1.ffn_up.weight"), "%s", err.msg);
    ee_gguf_close(g2);
    unlink(path), unlink(p2), unlink(p3);
    free(path), free(p2), free(p3);
}
END_TEST

Suite *suite_llama(void) {
    Suite *s = suite_create("llama");
    TCase *tc = tcase_create("forward");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, matches_numpy_f32_tied_gqa);
    tcase_add_test(tc, matches_numpy_q4_1_untied_mha);
    tcase_add_test(tc, matches_numpy_q8_0_mqa);
    tcase_add_test(tc, decode_equals_prefill);
    tcase_add_test(tc, chunked_prefill_equals_whole);
    tcase_add_test(tc, batch_equals_separate);
    tcase_add_test(tc, stored_types_equal_f32_copies);
    tcase_add_test(tc, rejects_bad_tokens_and_overflow_without_side_effects);
    tcase_add_test(tc, rejects_wrong_architecture_and_missing_tensor);
    suite_add_tcase(s, tc);
    return s;
}
