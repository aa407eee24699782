/* Real all-MiniLM-L6-v2 (`make minilm`: $EE_MINILM, its source directory
 * next to it): our encoder against the independent numpy reference
 * (tests/ref/bert_ref.py: weights read from model.safetensors by hand, text
 * tokenized by the `tokenizers` package, truncation as sentence-transformers
 * does it) on tests/data/bert_sentences.json: 60 sentences, long ones
 * (> 256 tokens), unicode, the empty string. Per sentence: cosine >=
 * 0.9999 and max |diff| <= 1e-4; batched == one by one. Also the f16 file
 * our converter writes, a file written the way llama.cpp's converter
 * writes it (tests/ref/bert_llamacpp_gguf.py: same keys, names and types
 * as ours), `ee-model embed` round-tripping its floats, and the
 * safetensors reader on the real checkpoint. The worst numbers are printed
 * (docs/ENCODER.md quotes them). */
#include "ee_bert.h"
#include "ee_bert_import.h"
#include "ee_gguf.h"
#include "ee_clock.h"
#include "ee_compute.h"
#include "ee_safetensors.h"
#include "ee_testmodel.h"

#include <check.h>
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SENTENCES "tests/data/bert_sentences.json"

static const char *gguf_path(void) {
    const char *p = getenv("EE_MINILM");
    return p && *p ? p : ".cache/models/all-MiniLM-L6-v2.gguf";
}

/* The source directory: $EE_MINILM_DIR, else the GGUF's path without
 * ".gguf" (where scripts/fetch-minilm.sh keeps it). */
static const char *src_dir(void) {
    static char d[1024];
    const char *p = getenv("EE_MINILM_DIR");
    if (p && *p) return p;
    snprintf(d, sizeof d, "%s", gguf_path());
    size_t n = strlen(d);
    if (n > 5 && !strcmp(d + n - 5, ".gguf")) d[n - 5] = 0;
    return d;
}

/* ---- the reference, computed once per test case (in the parent, before
 * Check forks the tests) -------------------------------------------------- */

static char ref_path[1024];

static void make_ref(void) {
    char *out = ee_test_tmpfile(".json");
    snprintf(ref_path, sizeof ref_path, "%s", out);
    free(out);
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "'%s' tests/ref/bert_ref.py --model '%s' --sentences-json %s --out '%s'",
             ee_test_python(), src_dir(), SENTENCES, ref_path);
    if (system(cmd) != 0) ref_path[0] = 0; /* the tests report it */
}

static void remove_ref(void) {
    if (ref_path[0]) unlink(ref_path);
}

typedef struct ref_set {
    json_t *j;
    int n;
    int32_t **ids;   /* full ids of each sentence */
    size_t *len;
} ref_set;

static void ref_load(ref_set *r) {
    ck_assert_msg(ref_path[0], "the numpy reference failed (see stderr)");
    json_error_t je;
    r->j = json_load_file(ref_path, 0, &je);
    ck_assert_msg(r->j != NULL, "reference: %s", je.text);
    const json_t *items = json_object_get(r->j, "items");
    r->n = (int)json_array_size(items);
    ck_assert_int_ge(r->n, 50);
    r->ids = calloc((size_t)r->n, sizeof *r->ids);
    r->len = calloc((size_t)r->n, sizeof *r->len);
    for (int s = 0; s < r->n; s++) {
        const json_t *a = json_object_get(json_array_get(items, s), "ids");
        r->len[s] = json_array_size(a);
        r->ids[s] = malloc(r->len[s] * sizeof(int32_t));
        for (size_t i = 0; i < r->len[s]; i++)
            r->ids[s][i] = (int32_t)json_integer_value(json_array_get(a, i));
    }
}

static void ref_free(ref_set *r) {
    for (int s = 0; s < r->n; s++) free(r->ids[s]);
    free(r->ids);
    free(r->len);
    json_decref(r->j);
}

static const json_t *ref_item(const ref_set *r, int s) {
    return json_array_get(json_object_get(r->j, "items"), (size_t)s);
}

/* Our embeddings of every sentence (one batch), checked against the
 * reference; worst numbers out. */
typedef struct agreement {
    double min_cos, max_abs;
    int worst_cos_at, worst_abs_at;
} agreement;

static agreement compare(const ref_set *r, const float *ours, int d, size_t max_len) {
    agreement a = {1.0, 0.0, -1, -1};
    for (int s = 0; s < r->n; s++) {
        if (r->len[s] > max_len) continue;
        const json_t *e = json_object_get(ref_item(r, s), "embedding");
        ck_assert_uint_eq(json_array_size(e), (size_t)d);
        double dot = 0, na = 0, nb = 0, mx = 0;
        for (int i = 0; i < d; i++) {
            double x = ours[(size_t)s * d + i], y = json_number_value(json_array_get(e, (size_t)i));
            dot += x * y, na += x * x, nb += y * y;
            if (!(fabs(x - y) <= mx)) mx = fabs(x - y);
        }
        double c = dot / sqrt(na * nb);
        if (!(c >= a.min_cos)) a.min_cos = c, a.worst_cos_at = s;
        if (!(mx <= a.max_abs)) a.max_abs = mx, a.worst_abs_at = s;
    }
    return a;
}

static float *embed_batch(const ee_bert_model *m, const ref_set *r) {
    float *out = malloc((size_t)r->n * m->hp.n_embd * sizeof(float));
    ee_err err = {{0}};
    ck_assert_msg(ee_bert_embed(m, (const int32_t *const *)r->ids, r->len, r->n, out, &err) == 0,
                  "%s", err.msg);
    return out;
}

static ee_bert_model *open_model(const char *path, ee_gguf **g) {
    ee_err err = {{0}};
    *g = ee_gguf_open(path, &err);
    ck_assert_msg(*g != NULL, "%s (run `make minilm`)", err.msg);
    ee_bert_model *m = ee_bert_load(*g, NULL, &err);
    ck_assert_msg(m != NULL, "%s", err.msg);
    ee_compute_set_threads(2);
    return m;
}

/* ---- tests ------------------------------------------------------------------- */

START_TEST(matches_reference) {
    ref_set r;
    ref_load(&r);
    ee_gguf *g;
    ee_bert_model *m = open_model(gguf_path(), &g);
    const int d = m->hp.n_embd;
    ck_assert_int_eq(d, 384);
    ck_assert_int_eq(m->hp.max_seq, 256);
    ck_assert(m->hp.normalize);
    ck_assert_int_eq(json_integer_value(json_object_get(r.j, "max_seq_length")), 256);
    int n_long = 0, n_empty = 0;
    for (int s = 0; s < r.n; s++) {
        const json_t *it = ref_item(&r, s);
        size_t used = json_array_size(json_object_get(it, "ids_used"));
        ck_assert_uint_eq(ee_bert_kept(m, r.len[s]), used);
        n_long += r.len[s] > 256;
        n_empty += !strcmp(json_string_value(json_object_get(it, "text")), "");
    }
    ck_assert_int_ge(n_long, 3);
    ck_assert_int_eq(n_empty, 1);

    float *all = embed_batch(m, &r);
    agreement a = compare(&r, all, d, SIZE_MAX);
    /* One by one. */
    float *one = malloc((size_t)r.n * d * sizeof(float));
    ee_err err = {{0}};
    double max_one = 0;
    for (int s = 0; s < r.n; s++) {
        const int32_t *ids = r.ids[s];
        ck_assert_msg(ee_bert_embed(m, &ids, &r.len[s], 1, one + (size_t)s * d, &err) == 0, "%s",
                      err.msg);
        for (int i = 0; i < d; i++) {
            double x = fabs((double)one[(size_t)s * d + i] - all[(size_t)s * d + i]);
            if (!(x <= max_one)) max_one = x;
        }
    }
    agreement b = compare(&r, one, d, SIZE_MAX);
    fprintf(stderr,
            "bert_model: %d sentences (%d longer than 256 tokens) vs numpy: batched worst cosine "
            "%.15f (sentence %d), worst max |diff| %.3g (sentence %d); one by one worst cosine "
            "%.15f, worst max |diff| %.3g; batched vs one by one max |diff| %.3g\n",
            r.n, n_long, a.min_cos, a.worst_cos_at, a.max_abs, a.worst_abs_at, b.min_cos,
            b.max_abs, max_one);
    ck_assert_msg(a.min_cos >= 0.9999 && a.max_abs <= 1e-4,
                  "batched: worst cosine %.9f (sentence %d), worst max |diff| %g (sentence %d)",
                  a.min_cos, a.worst_cos_at, a.max_abs, a.worst_abs_at);
    ck_assert_msg(b.min_cos >= 0.9999 && b.max_abs <= 1e-4, "one by one: %.9f, %g", b.min_cos,
                  b.max_abs);
    ck_assert_msg(max_one <= 1e-6, "batched vs one by one: max |diff| %g", max_one);
    free(one);
    free(all);
    ee_bert_free(m);
    ee_gguf_close(g);
    ref_free(&r);
}
END_TEST

/* Our f16 file, and one written as llama.cpp's converter writes it (which
 * must hold the same keys, names, shapes and types as ours), against the
 * f32 reference. f16 weights cost some agreement; the bound says how much. */
START_TEST(f16_files) {
    ref_set r;
    ref_load(&r);
    ee_err err = {{0}};
    char *ours = ee_test_tmpfile(".gguf"), *theirs = ee_test_tmpfile(".gguf");
    ee_bert_import_opts io = {.wtype = EE_DT_F16, .name = "all-MiniLM-L6-v2"};
    ck_assert_msg(ee_bert_import(src_dir(), ours, &io, &err) == 0, "%s", err.msg);
    char cmd[4096], *out_text = NULL, *err_text = NULL;
    snprintf(cmd, sizeof cmd,
             "'%s' tests/ref/bert_llamacpp_gguf.py --from '%s' --out '%s' --outtype f16 "
             "--compare '%s'",
             ee_test_python(), src_dir(), theirs, ours);
    int st = ee_test_run(cmd, &out_text, &err_text);
    ck_assert_msg(st == 0, "llama.cpp-style file differs from ours (%d):\n%s%s", st, out_text,
                  err_text);
    free(out_text);
    free(err_text);
    const char *files[2] = {ours, theirs}, *names[2] = {"ours (f16)", "llama.cpp-style (f16)"};
    for (int k = 0; k < 2; k++) {
        ee_gguf *g;
        ee_bert_model *m = open_model(files[k], &g);
        float *e = embed_batch(m, &r);
        /* A llama.cpp file has no max_seq_length: sentences are cut at
         * its context length (512) instead of 256, so longer ones differ
         * from sentence-transformers by design. */
        size_t max_len = k == 0 ? SIZE_MAX : 256;
        ck_assert_int_eq(m->hp.max_seq, k == 0 ? 256 : 512);
        agreement a = compare(&r, e, m->hp.n_embd, max_len);
        fprintf(stderr, "bert_model: %s vs numpy f32%s: worst cosine %.9f, worst max |diff| %.3g\n",
                names[k], k ? " (sentences <= 256 tokens)" : "", a.min_cos, a.max_abs);
        ck_assert_msg(a.min_cos >= 0.9999 && a.max_abs <= 1e-3, "%s: worst cosine %.9f, max %g",
                      names[k], a.min_cos, a.max_abs);
        free(e);
        ee_bert_free(m);
        ee_gguf_close(g);
    }
    unlink(ours);
    unlink(theirs);
    free(ours);
    free(theirs);
    ref_free(&r);
}
END_TEST

/* ee-model embed --tokens --json: the embedding the library computes (to
 * 1e-6: the CLI runs OpenBLAS's SkylakeX kernels through ee_compute_init,
 * this test binary OpenBLAS's own pick), and the same floats, bit for bit,
 * from a tokens file (9 significant digits round-trip a float). */
START_TEST(cli_round_trip) {
    ref_set r;
    ref_load(&r);
    ee_gguf *g;
    ee_bert_model *m = open_model(gguf_path(), &g);
    int s = 0; /* the longest sentence: truncated */
    for (int i = 1; i < r.n; i++)
        if (r.len[i] > r.len[s]) s = i;
    size_t cap = r.len[s] * 8 + 64;
    char *ids = malloc(cap);
    size_t o = 0;
    for (size_t i = 0; i < r.len[s]; i++) o += snprintf(ids + o, cap - o, "%s%d", i ? "," : "", r.ids[s][i]);
    size_t cmd_cap = cap + 1024;
    char *cmd = malloc(cmd_cap), *out = NULL, *err_text = NULL;
    snprintf(cmd, cmd_cap, "%s/ee-model embed --model '%s' --tokens %s --json --threads 2",
             ee_test_bindir(), gguf_path(), ids);
    int st = ee_test_run(cmd, &out, &err_text);
    ck_assert_msg(st == 0, "ee-model embed failed (%d): %s", st, err_text);
    json_error_t je;
    json_t *j = json_loads(out, 0, &je);
    ck_assert_msg(j != NULL, "ee-model embed --json: %s", je.text);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "n_tokens")), 256);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "n_input_tokens")), (json_int_t)r.len[s]);
    ck_assert(json_is_true(json_object_get(j, "normalized")));
    const json_t *e = json_object_get(j, "embedding");
    ck_assert_uint_eq(json_array_size(e), 384);
    float lib[384];
    ee_err err = {{0}};
    const int32_t *p = r.ids[s];
    ck_assert_int_eq(ee_bert_embed(m, &p, &r.len[s], 1, lib, &err), 0);
    for (int i = 0; i < 384; i++) {
        float cli = (float)json_real_value(json_array_get(e, (size_t)i));
        ck_assert_msg(fabsf(cli - lib[i]) <= 1e-6f, "dim %d: CLI %.9g vs library %.9g", i, cli,
                      lib[i]);
    }
    /* The plain output of a tokens file: the same floats. */
    char *tf = ee_test_tmpfile(".txt");
    ee_test_write_file(tf, ids, strlen(ids));
    free(out);
    free(err_text);
    snprintf(cmd, cmd_cap, "%s/ee-model embed --model '%s' --tokens-file '%s' --threads 2",
             ee_test_bindir(), gguf_path(), tf);
    st = ee_test_run(cmd, &out, &err_text);
    ck_assert_msg(st == 0, "ee-model embed --tokens-file failed (%d): %s", st, err_text);
    char *q = out;
    for (int i = 0; i < 384; i++) {
        char *end;
        float v = strtof(q, &end);
        ck_assert_msg(end != q, "plain output: value %d missing", i);
        float cli = (float)json_real_value(json_array_get(e, (size_t)i));
        ck_assert_msg(v == cli, "dim %d: plain %.9g vs JSON %.9g", i, v, cli);
        q = end;
    }
    unlink(tf);
    free(tf);
    json_decref(j);
    free(out);
    free(err_text);
    free(cmd);
    free(ids);
    ee_bert_free(m);
    ee_gguf_close(g);
    ref_free(&r);
}
END_TEST

/* The safetensors reader on the real checkpoint. */
START_TEST(real_safetensors) {
    char path[1100];
    snprintf(path, sizeof path, "%s/model.safetensors", src_dir());
    ee_err err = {{0}};
    ee_safetensors *st = ee_safetensors_open(path, &err);
    ck_assert_msg(st != NULL, "%s", err.msg);
    ck_assert_uint_eq(ee_safetensors_n_tensors(st), 104);
    ck_assert_str_eq(ee_safetensors_meta(st, "format"), "pt");
    const ee_st_tensor *w = ee_safetensors_find(st, "embeddings.word_embeddings.weight");
    ck_assert_ptr_nonnull(w);
    ck_assert_int_eq(w->dtype, EE_ST_F32);
    ck_assert_uint_eq(w->shape[0], 30522);
    ck_assert_uint_eq(w->shape[1], 384);
    const ee_st_tensor *p = ee_safetensors_find(st, "embeddings.position_ids");
    ck_assert_int_eq(p->dtype, EE_ST_I64);
    ck_assert_int_eq(ee_safetensors_read_f32(p, NULL, &err), -1);
    /* The GGUF's token_embd is the same bytes. */
    ee_gguf *g = ee_gguf_open(gguf_path(), &err);
    ck_assert_msg(g != NULL, "%s", err.msg);
    const ee_gguf_tensor *t = ee_gguf_find_tensor(g, "token_embd.weight");
    ck_assert_uint_eq(t->nbytes, w->nbytes);
    ck_assert(memcmp(t->data, w->data, w->nbytes) == 0);
    ee_gguf_close(g);
    ee_safetensors_close(st);
}
END_TEST

Suite *suite_bert_model(void) {
    Suite *s = suite_create("bert_model");
    TCase *tc = tcase_create("minilm");
    tcase_add_unchecked_fixture(tc, make_ref, remove_ref);
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, matches_reference);
    tcase_add_test(tc, f16_files);
    tcase_add_test(tc, cli_round_trip);
    tcase_add_test(tc, real_safetensors);
    suite_add_tcase(s, tc);
    return s;
}
