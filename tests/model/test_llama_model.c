/* Real SmolLM2-135M-Instruct: our f32 engine against the independent numpy
 * reference (tests/ref/ref_llama.py over the PyPI gguf reader), produced by
 * `make test-model` into $EE_REF before this runs. */
#include "ee_generate.h"
#include "ee_gguf.h"
#include "ee_llama.h"
#include "ee_clock.h"
#include "ee_compute.h"

#include <check.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *env_or(const char *k, const char *d) {
    const char *v = getenv(k);
    return v ? v : d;
}

typedef struct {
    ee_gguf *g;
    ee_llama_model *m;
    ee_llama_ctx *ctx;
} real_model;

static void rm_open_mode(real_model *r, bool stored_weights) {
    ee_err err = {{0}};
    const char *path = env_or("EE_MODEL", ".cache/models/SmolLM2-135M-Instruct.Q4_1.gguf");
    r->g = ee_gguf_open(path, &err);
    ck_assert_msg(r->g != NULL, "%s", err.msg);
    ee_llama_load_opts o = {.f32_weights = !stored_weights};
    r->m = ee_llama_load(r->g, &o, &err);
    ck_assert_msg(r->m != NULL, "%s", err.msg);
    r->ctx = ee_llama_ctx_new(r->m, &err);
    ck_assert_ptr_nonnull(r->ctx);
    ee_compute_set_threads(2);
}

static void rm_close(real_model *r) {
    ee_llama_ctx_free(r->ctx);
    ee_llama_free(r->m);
    ee_gguf_close(r->g);
}

static json_t *load_json(const char *name) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", env_or("EE_REF", "build/ref"), name);
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    ck_assert_msg(j != NULL, "cannot read reference %s: %s (run `make test-model`)", path, je.text);
    return j;
}

static int32_t *ids_of(json_t *arr, int *n) {
    *n = (int)json_array_size(arr);
    int32_t *v = malloc((size_t)*n * sizeof *v);
    for (int i = 0; i < *n; i++) v[i] = (int32_t)json_integer_value(json_array_get(arr, (size_t)i));
    return v;
}

/* _i == 0: weights as f32 copies, all positions in one prefill forward;
 * _i == 1: weights kept in the file's Q4_1/Q8_0 blocks, one token per
 * forward, so the fused decode kernels (the fast path) are what is checked. */
START_TEST(logits_match_reference) {
    real_model r;
    rm_open_mode(&r, _i == 1);
    json_t *meta = load_json("llama_logits.json");
    const int V = (int)json_integer_value(json_object_get(meta, "n_vocab"));
    const int P = (int)json_integer_value(json_object_get(meta, "positions"));
    ck_assert_int_eq(V, r.m->hp.n_vocab);
    json_t *prompts = json_object_get(meta, "prompts");
    const size_t np = json_array_size(prompts);
    ck_assert_uint_ge(np, 3);
    ck_assert_int_ge(P, 32);
    char path[1024];
    snprintf(path, sizeof path, "%s/llama_logits.bin", env_or("EE_REF", "build/ref"));
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    float *ref = malloc((size_t)P * V * sizeof(float)), *ours = malloc((size_t)P * V * sizeof(float));
    float worst = 0.0f;
    ee_err err = {{0}};
    for (size_t p = 0; p < np; p++) {
        ck_assert_uint_eq(fread(ref, sizeof(float), (size_t)P * V, f), (size_t)P * V);
        int n;
        int32_t *ids = ids_of(json_object_get(json_array_get(prompts, p), "tokens"), &n);
        ck_assert_int_eq(n, P);
        ee_kv_cache *kv = ee_kv_cache_new(r.m, P, &err);
        if (_i == 0) { /* prefill: all positions in one forward (sgemm path) */
            ee_llama_seq s = {.tokens = ids, .n_tokens = n, .cache = kv, .logits = ours, .all_logits = true};
            ck_assert_msg(ee_llama_forward(r.ctx, &s, 1, &err) == 0, "%s", err.msg);
        } else { /* decode: one token per forward (fused stored-type kernels) */
            for (int i = 0; i < n; i++) {
                ee_llama_seq s = {.tokens = ids + i, .n_tokens = 1, .cache = kv,
                                  .logits = ours + (size_t)i * V};
                ck_assert_msg(ee_llama_forward(r.ctx, &s, 1, &err) == 0, "%s", err.msg);
            }
        }
        for (int pos = 0; pos < P; pos++) {
            const float *a = ours + (size_t)pos * V, *b = ref + (size_t)pos * V;
            float d = 0.0f;
            int ia = 0, ib = 0;
            for (int v = 0; v < V; v++) {
                float x = fabsf(a[v] - b[v]);
                if (!(x <= d)) d = x;
                if (a[v] > a[ia]) ia = v;
                if (b[v] > b[ib]) ib = v;
            }
            if (d > worst) worst = d;
            ck_assert_msg(d <= 1e-3f, "prompt %zu position %d: max |logit diff| %g > 1e-3", p, pos, d);
            ck_assert_msg(ia == ib, "prompt %zu position %d: argmax %d vs reference %d", p, pos, ia, ib);
        }
        ee_kv_cache_free(kv);
        free(ids);
    }
    fprintf(stderr, "[model] logits (%s weights): %zu prompts x %d positions, max |diff| vs numpy = %.3g\n",
            _i ? "stored" : "f32", np, P, worst);
    fclose(f);
    free(ref);
    free(ours);
    json_decref(meta);
    rm_close(&r);
}
END_TEST

START_TEST(greedy_matches_reference) {
    real_model r;
    rm_open_mode(&r, _i == 1);
    json_t *g = load_json("llama_greedy.json");
    json_t *runs = json_object_get(g, "runs");
    ck_assert_uint_ge(json_array_size(runs), 5);
    ee_err err = {{0}};
    size_t total = 0;
    for (size_t k = 0; k < json_array_size(runs); k++) {
        json_t *run = json_array_get(runs, k);
        int np, nt;
        int32_t *prompt = ids_of(json_object_get(run, "prompt_tokens"), &np);
        int32_t *want = ids_of(json_object_get(run, "tokens"), &nt);
        ck_assert_int_ge(nt, 64);
        ee_gen_params gp = {.max_tokens = nt, .sample = {.temperature = 0, .top_p = 1},
                            .ignore_stop = true};
        ee_gen_result res;
        ck_assert_msg(ee_generate(r.m, r.ctx, prompt, np, &gp, NULL, NULL, &res, &err) == 0, "%s",
                      err.msg);
        ck_assert_int_eq(res.n_tokens, nt);
        for (int i = 0; i < nt; i++) {
            if (res.tokens[i] != want[i]) {
                json_t *mg = json_array_get(json_object_get(run, "margins"), (size_t)i);
                ck_abort_msg("prompt %zu diverges at generated token %d: ours %d, reference %d "
                             "(reference top1-top2 margin there %.6g)",
                             k, i, res.tokens[i], want[i], json_number_value(mg));
            }
        }
        total += (size_t)nt;
        ee_gen_result_free(&res);
        free(prompt);
        free(want);
    }
    fprintf(stderr, "[model] greedy (%s weights): %zu runs, %zu tokens identical to the numpy reference\n",
            _i ? "stored" : "f32", json_array_size(runs), total);
    json_decref(g);
    rm_close(&r);
}
END_TEST

Suite *suite_llama_model(void) {
    Suite *s = suite_create("llama_model");
    TCase *tc = tcase_create("smollm2");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, logits_match_reference, 0, 2);
    tcase_add_loop_test(tc, greedy_matches_reference, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}
