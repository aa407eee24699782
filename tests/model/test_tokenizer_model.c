/* Real SmolLM2 tokenizer against the HF `tokenizers` reference
 * (tests/ref/ref_tokenizer.py over tests/data/tok_corpus.txt), produced by
 * `make test-model` into $EE_REF before this runs. */
#include "ee_gguf.h"
#include "ee_testmodel.h"
#include "ee_chat.h"
#include "ee_tokenizer.h"

#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Loaded once in the parent (unchecked fixture) and inherited by each
 * forked test. */
static ee_gguf *g_gguf;
static ee_tokenizer *g_tok;
static double g_open_ms;
static json_t *g_lines;  /* array of "line" records */
static json_t *g_vocab;  /* the "vocab" record */

static void load_refs(void) {
    char path[1024];
    snprintf(path, sizeof path, "%s/tok_ref.jsonl", ee_test_refdir());
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "cannot open %s (run `make test-model`)", path);
    g_lines = json_array();
    char *buf = NULL;
    size_t cap = 0;
    ssize_t n;
    long expect = -1;
    while ((n = getline(&buf, &cap, f)) > 0) {
        json_error_t je;
        json_t *j = json_loadb(buf, (size_t)n, JSON_ALLOW_NUL, &je);
        ck_assert_msg(j != NULL, "%s: %s at line %d", path, je.text, je.line);
        const char *kind = json_string_value(json_object_get(j, "kind"));
        ck_assert_ptr_nonnull(kind);
        if (strcmp(kind, "line") == 0) {
            json_array_append_new(g_lines, j);
        } else if (strcmp(kind, "vocab") == 0) {
            g_vocab = j;
        } else {
            expect = (long)json_integer_value(json_object_get(j, "n_lines"));
            json_decref(j);
        }
    }
    free(buf);
    fclose(f);
    ck_assert_int_eq((long)json_array_size(g_lines), expect);
    ck_assert_ptr_nonnull(g_vocab);
}

static void setup(void) {
    ee_err err = {{0}};
    g_gguf = ee_gguf_open(ee_test_model_path(), &err);
    ck_assert_msg(g_gguf != NULL, "%s", err.msg);
    double t0 = now_s();
    g_tok = ee_tokenizer_open_gguf(g_gguf, &err);
    g_open_ms = 1e3 * (now_s() - t0);
    ck_assert_msg(g_tok != NULL, "%s", err.msg);
    load_refs();
}

static void teardown(void) {
    ee_tokenizer_close(g_tok);
    ee_gguf_close(g_gguf);
    json_decref(g_lines);
    json_decref(g_vocab);
    g_tok = NULL;
    g_gguf = NULL;
    g_lines = g_vocab = NULL;
}

/* ---- helpers ----------------------------------------------------------- */

static const char *str_of(json_t *rec, const char *key, size_t *len) {
    json_t *s = json_object_get(rec, key);
    ck_assert_msg(json_is_string(s), "reference record lacks string '%s'", key);
    *len = json_string_length(s);
    return json_string_value(s);
}

/* Print ids around position pos with their token strings. */
static void fmt_ids(char *out, size_t cap, const int32_t *ids, size_t n, size_t pos) {
    size_t o = 0;
    size_t a = pos > 4 ? pos - 4 : 0, b = pos + 5 < n ? pos + 5 : n;
    o += (size_t)snprintf(out + o, cap - o, "[%s", a ? "... " : "");
    for (size_t i = a; i < b && o < cap; i++) {
        const char *s = ee_tokenizer_token_str(g_tok, ids[i]);
        o += (size_t)snprintf(out + o, cap - o, "%s%d '%s'", i > a ? ", " : "", ids[i], s ? s : "?");
    }
    if (o < cap) snprintf(out + o, cap - o, "%s]", b < n ? " ..." : "");
}

/* Compare our ids with the reference array; on mismatch fail naming the
 * line, the first differing position and both id windows. */
static void expect_ids(const char *what, long line, const int32_t *ours, size_t n, json_t *ref) {
    size_t m = json_array_size(ref);
    size_t i = 0;
    while (i < n && i < m && ours[i] == (int32_t)json_integer_value(json_array_get(ref, i))) i++;
    if (i == n && i == m) return;
    int32_t *theirs = malloc(sizeof *theirs * (m ? m : 1));
    for (size_t k = 0; k < m; k++) theirs[k] = (int32_t)json_integer_value(json_array_get(ref, k));
    char a[2048], b[2048];
    fmt_ids(a, sizeof a, ours, n, i);
    fmt_ids(b, sizeof b, theirs, m, i);
    free(theirs);
    ck_abort_msg("%s: corpus line %ld differs at token %zu (ours %zu tokens, reference %zu)\n  ours:   %s\n  theirs: %s",
                 what, line, i, n, m, a, b);
}

static void expect_bytes(const char *what, long line, const char *ours, size_t n, const char *ref, size_t m) {
    if (n == m && memcmp(ours, ref, n) == 0) return;
    size_t i = 0;
    while (i < n && i < m && ours[i] == ref[i]) i++;
    ck_abort_msg("%s: corpus line %ld differs at byte %zu (ours %zu bytes, reference %zu): ours '%.40s' vs '%.40s'",
                 what, line, i, n, m, ours + (i < n ? i : n), ref + (i < m ? i : m));
}

/* ---- tests ------------------------------------------------------------- */

START_TEST(metadata) {
    ck_assert_int_eq(ee_tokenizer_n_vocab(g_tok), 49152);
    ck_assert_int_eq(ee_tokenizer_bos(g_tok), 1);
    ck_assert_int_eq(ee_tokenizer_eos(g_tok), 2);
    ck_assert(!ee_tokenizer_add_bos(g_tok));
    int32_t eog[8];
    ck_assert_int_eq(ee_tokenizer_eog_ids(g_tok, eog, 8), 2);
    ck_assert_int_eq(eog[0], 0);
    ck_assert_int_eq(eog[1], 2);
    for (int32_t i = 0; i <= 16; i++) ck_assert(ee_tokenizer_is_control(g_tok, i));
    ck_assert(!ee_tokenizer_is_control(g_tok, 17));
    ck_assert_str_eq(ee_tokenizer_token_str(g_tok, 1), "<|im_start|>");
    ck_assert_int_eq(ee_tokenizer_token_id(g_tok, "Ġthe", strlen("Ġthe")), 260);
    ck_assert(ee_chat_supported(g_tok));
    ck_assert_str_eq(ee_chat_default_system(g_tok),
                     "You are a helpful AI assistant named SmolLM, trained by Hugging Face");
    fprintf(stderr, "tokenizer_model: open from GGUF took %.1f ms\n", g_open_ms);
    ck_assert_msg(g_open_ms < 500.0, "open took %.1f ms", g_open_ms);
}
END_TEST

static void check_encode(const char *key, bool parse_special) {
    ee_err err = {{0}};
    size_t nl = json_array_size(g_lines);
    ck_assert_uint_ge(nl, 2000);
    for (size_t i = 0; i < nl; i++) {
        json_t *rec = json_array_get(g_lines, i);
        size_t len;
        const char *text = str_of(rec, "text", &len);
        int32_t *ids;
        size_t n;
        ck_assert_msg(ee_tokenizer_encode(g_tok, text, len, true, parse_special, &ids, &n, &err) == 0, "%s",
                      err.msg);
        expect_ids(key, (long)i + 1, ids, n, json_object_get(rec, key));
        free(ids);
    }
}

START_TEST(encode_plain_matches_reference) { check_encode("ids", false); }
END_TEST

START_TEST(encode_special_matches_reference) { check_encode("special_ids", true); }
END_TEST

START_TEST(round_trip) {
    ee_err err = {{0}};
    /* Bytes without a token (SmolLM2 lacks 21) are dropped, as by the
     * reference: the round trip gives the text without them. */
    bool has_tok[256];
    int n_missing = 0;
    for (int b = 0; b < 256; b++) {
        char c = (char)b;
        int32_t *ids;
        size_t n;
        ck_assert(ee_tokenizer_encode(g_tok, &c, 1, false, false, &ids, &n, &err) == 0);
        has_tok[b] = n == 1;
        n_missing += n == 0;
        free(ids);
    }
    ck_assert_int_eq(n_missing, 21);
    size_t n_lossy = 0;
    for (size_t i = 0; i < json_array_size(g_lines); i++) {
        json_t *rec = json_array_get(g_lines, i);
        size_t len;
        const char *text = str_of(rec, "text", &len);
        char *want = malloc(len + 1);
        size_t wl = 0;
        for (size_t k = 0; k < len; k++)
            if (has_tok[(unsigned char)text[k]]) want[wl++] = text[k];
        n_lossy += wl != len;
        for (int ps = 0; ps < 2; ps++) {
            int32_t *ids;
            size_t n;
            char *back;
            size_t blen;
            ck_assert_msg(ee_tokenizer_encode(g_tok, text, len, false, ps, &ids, &n, &err) == 0, "%s", err.msg);
            ck_assert_msg(ee_tokenizer_decode(g_tok, ids, n, true, &back, &blen, &err) == 0, "%s", err.msg);
            expect_bytes(ps ? "round trip (special)" : "round trip", (long)i + 1, back, blen, want, wl);
            free(back);
            free(ids);
        }
        free(want);
    }
    ck_assert_uint_ge(n_lossy, 1);  /* the corpus exercises dropped bytes */
}
END_TEST

START_TEST(chat_matches_reference) {
    ee_err err = {{0}};
    size_t n_safe_checked = 0;
    for (size_t i = 0; i < json_array_size(g_lines); i++) {
        json_t *rec = json_array_get(g_lines, i);
        size_t len, clen;
        const char *text = str_of(rec, "text", &len);
        const char *chat = str_of(rec, "chat_text", &clen);
        if (strlen(text) != len) continue;  /* C string API: skip texts with NUL */
        char *r;
        ck_assert_msg(ee_chat_render(g_tok, NULL, text, &r, &err) == 0, "%s", err.msg);
        expect_bytes("chat render", (long)i + 1, r, strlen(r), chat, clen);
        int32_t *ids;
        size_t n;
        ck_assert_msg(ee_tokenizer_encode(g_tok, r, strlen(r), true, true, &ids, &n, &err) == 0, "%s", err.msg);
        expect_ids("chat_ids", (long)i + 1, ids, n, json_object_get(rec, "chat_ids"));
        free(ids);

        /* The injection-safe path equals the reference whenever the user
         * text holds no special-token strings, and otherwise keeps exactly
         * the template's five markers as control ids. */
        ck_assert_msg(ee_chat_encode(g_tok, NULL, text, true, &ids, &n, &err) == 0, "%s", err.msg);
        int32_t *sp;
        size_t nsp;
        ck_assert_msg(ee_tokenizer_encode(g_tok, text, len, false, true, &sp, &nsp, &err) == 0, "%s", err.msg);
        bool has_special = false;
        for (size_t k = 0; k < nsp; k++) has_special |= ee_tokenizer_is_control(g_tok, sp[k]);
        free(sp);
        if (!has_special) {
            expect_ids("chat_encode", (long)i + 1, ids, n, json_object_get(rec, "chat_ids"));
            n_safe_checked++;
        } else {
            int ctl = 0;
            for (size_t k = 0; k < n; k++) ctl += ee_tokenizer_is_control(g_tok, ids[k]);
            ck_assert_msg(ctl == 5, "chat_encode line %zu: %d control ids, expected the template's 5", i + 1,
                          ctl);
            char *back;
            size_t blen;
            ck_assert_msg(ee_tokenizer_decode(g_tok, ids, n, true, &back, &blen, &err) == 0, "%s", err.msg);
            expect_bytes("chat_encode round trip", (long)i + 1, back, blen, r, strlen(r));
            free(back);
        }
        free(ids);
        free(r);
    }
    ck_assert_uint_ge(n_safe_checked, 1000);
}
END_TEST

static void expect_decode(long line, const int32_t *ids, size_t n, bool render, json_t *rec, const char *key) {
    ee_err err = {{0}};
    char *s;
    size_t sl, rl;
    ck_assert_msg(ee_tokenizer_decode_lossy(g_tok, ids, n, render, &s, &sl, &err) == 0, "%s", err.msg);
    const char *ref = str_of(rec, key, &rl);
    expect_bytes(key, line, s, sl, ref, rl);
    free(s);
}

static int32_t *ref_ids(json_t *arr, size_t *n) {
    *n = json_array_size(arr);
    int32_t *v = malloc(sizeof *v * (*n ? *n : 1));
    for (size_t k = 0; k < *n; k++) v[k] = (int32_t)json_integer_value(json_array_get(arr, k));
    return v;
}

START_TEST(decode_matches_reference) {
    for (size_t i = 0; i < json_array_size(g_lines); i++) {
        json_t *rec = json_array_get(g_lines, i);
        size_t n;
        int32_t *ids = ref_ids(json_object_get(rec, "ids"), &n);
        expect_decode((long)i + 1, ids, n, true, rec, "decoded");
        free(ids);
        ids = ref_ids(json_object_get(rec, "chat_ids"), &n);
        expect_decode((long)i + 1, ids, n, true, rec, "chat_decoded");
        expect_decode((long)i + 1, ids, n, false, rec, "chat_decoded_skip");
        free(ids);
    }
    /* Every single token, as HF decodes it alone (lossy for partial UTF-8);
     * the raw piece must agree with the raw decode. */
    json_t *dec = json_object_get(g_vocab, "decoded"), *skip = json_object_get(g_vocab, "decoded_skip");
    ck_assert_int_eq((long)json_array_size(dec), ee_tokenizer_n_vocab(g_tok));
    ee_err err = {{0}};
    for (int32_t id = 0; id < ee_tokenizer_n_vocab(g_tok); id++) {
        for (int render = 0; render < 2; render++) {
            char *lossy, *raw;
            size_t ll, rl;
            ck_assert(ee_tokenizer_decode_lossy(g_tok, &id, 1, render, &lossy, &ll, &err) == 0);
            json_t *r = json_array_get(render ? dec : skip, (size_t)id);
            if (ll != json_string_length(r) || memcmp(lossy, json_string_value(r), ll) != 0)
                ck_abort_msg("decode of id %d ('%s', render_special %d): ours '%s' vs reference '%s'", id,
                             ee_tokenizer_token_str(g_tok, id), render, lossy, json_string_value(r));
            free(lossy);
            ck_assert(ee_tokenizer_decode(g_tok, &id, 1, render, &raw, &rl, &err) == 0);
            char buf[512];
            int pl = ee_tokenizer_piece(g_tok, id, render, buf, sizeof buf);
            ck_assert(pl >= 0 && (size_t)pl == rl && (size_t)pl <= sizeof buf);
            ck_assert(memcmp(buf, raw, rl) == 0);
            free(raw);
        }
    }
}
END_TEST

START_TEST(encode_speed) {
    ee_err err = {{0}};
    size_t nl = json_array_size(g_lines), bytes = 0, tokens = 0;
    double best = 1e9;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = now_s();
        bytes = tokens = 0;
        for (size_t i = 0; i < nl; i++) {
            size_t len;
            const char *text = str_of(json_array_get(g_lines, i), "text", &len);
            int32_t *ids;
            size_t n;
            ck_assert(ee_tokenizer_encode(g_tok, text, len, false, true, &ids, &n, &err) == 0);
            bytes += len;
            tokens += n;
            free(ids);
        }
        double dt = now_s() - t0;
        if (dt < best) best = dt;
    }
    fprintf(stderr, "tokenizer_model: encoded %zu lines (%zu bytes, %zu tokens) in %.1f ms: %.2f MB/s, %.0f tokens/s\n",
            nl, bytes, tokens, 1e3 * best, (double)bytes / best / 1e6, (double)tokens / best);
    ck_assert_msg(best < 1.0, "encoding the corpus took %.3f s", best);
}
END_TEST

Suite *suite_tokenizer_model(void) {
    Suite *s = suite_create("tokenizer_model");
    TCase *tc = tcase_create("reference");
    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, metadata);
    tcase_add_test(tc, encode_plain_matches_reference);
    tcase_add_test(tc, encode_special_matches_reference);
    tcase_add_test(tc, round_trip);
    tcase_add_test(tc, chat_matches_reference);
    tcase_add_test(tc, decode_matches_reference);
    tcase_add_test(tc, encode_speed);
    suite_add_tcase(s, tc);
    return s;
}
