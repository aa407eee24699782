/* The WordPiece tokenizer against HF `tokenizers` running
 * all-MiniLM-L6-v2's own tokenizer.json (tests/ref/ref_wordpiece.py over
 * tests/data/tok_corpus.txt + tests/data/wp_corpus.txt, written to $EE_REF
 * by `make test-model` before this runs).
 *
 * The vocabulary is read from $EE_MINILM (the converted model) when set,
 * else from the vocabulary-only fixture $EE_REF/wp_vocab.gguf, written the
 * way llama.cpp's converter writes BERT vocabularies. */
#include "ee_gguf.h"
#include "ee_testmodel.h"
#include "ee_wordpiece.h"

#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Loaded once in the parent (unchecked fixture), inherited by each forked
 * test. */
static char g_path[1024];
static ee_gguf *g_gguf;
static ee_wordpiece *g_wp;
static double g_open_ms;
static json_t *g_lines, *g_bytes, *g_vocab;

static void load_refs(void) {
    char path[1024];
    snprintf(path, sizeof path, "%s/wp_ref.jsonl", ee_test_refdir());
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "cannot open %s (run `make test-model`)", path);
    g_lines = json_array();
    g_bytes = json_array();
    char *buf = NULL;
    size_t cap = 0;
    ssize_t n;
    long n_lines = -1, n_bytes = -1;
    while ((n = getline(&buf, &cap, f)) > 0) {
        json_error_t je;
        json_t *j = json_loadb(buf, (size_t)n, JSON_ALLOW_NUL, &je);
        ck_assert_msg(j != NULL, "%s: %s at line %d", path, je.text, je.line);
        const char *kind = json_string_value(json_object_get(j, "kind"));
        ck_assert_ptr_nonnull(kind);
        if (strcmp(kind, "line") == 0) {
            json_array_append_new(g_lines, j);
        } else if (strcmp(kind, "bytes") == 0) {
            json_array_append_new(g_bytes, j);
        } else if (strcmp(kind, "vocab") == 0) {
            g_vocab = j;
        } else {
            n_lines = (long)json_integer_value(json_object_get(j, "n_lines"));
            n_bytes = (long)json_integer_value(json_object_get(j, "n_bytes"));
            json_decref(j);
        }
    }
    free(buf);
    fclose(f);
    ck_assert_int_eq((long)json_array_size(g_lines), n_lines);
    ck_assert_int_eq((long)json_array_size(g_bytes), n_bytes);
    ck_assert_ptr_nonnull(g_vocab);
}

static void setup(void) {
    const char *m = getenv("EE_MINILM");
    if (m && *m) snprintf(g_path, sizeof g_path, "%s", m);
    else snprintf(g_path, sizeof g_path, "%s/wp_vocab.gguf", ee_test_refdir());
    ee_err err = {{0}};
    g_gguf = ee_gguf_open(g_path, &err);
    ck_assert_msg(g_gguf != NULL, "%s (run `make test-model`, or set EE_MINILM)", err.msg);
    double t0 = now_s();
    int rc = ee_wordpiece_open_gguf(&g_wp, g_gguf, &err);
    g_open_ms = 1e3 * (now_s() - t0);
    ck_assert_msg(rc == 0, "%s: %s", g_path, err.msg);
    load_refs();
}

static void teardown(void) {
    ee_wordpiece_close(g_wp);
    ee_gguf_close(g_gguf);
    json_decref(g_lines);
    json_decref(g_bytes);
    json_decref(g_vocab);
    g_wp = NULL;
    g_gguf = NULL;
    g_lines = g_bytes = g_vocab = NULL;
}

/* ---- helpers ----------------------------------------------------------- */

static const char *str_of(json_t *rec, const char *key, size_t *len) {
    json_t *s = json_object_get(rec, key);
    ck_assert_msg(json_is_string(s), "reference record lacks string '%s'", key);
    *len = json_string_length(s);
    return json_string_value(s);
}

static void fmt_ids(char *out, size_t cap, const int32_t *ids, size_t n, size_t pos) {
    size_t o = 0;
    size_t a = pos > 4 ? pos - 4 : 0, b = pos + 5 < n ? pos + 5 : n;
    o += (size_t)snprintf(out + o, cap - o, "[%s", a ? "... " : "");
    for (size_t i = a; i < b && o < cap; i++) {
        const char *s = ee_wordpiece_token(g_wp, ids[i]);
        o += (size_t)snprintf(out + o, cap - o, "%s%d '%s'", i > a ? ", " : "", ids[i], s ? s : "?");
    }
    if (o < cap) snprintf(out + o, cap - o, "%s]", b < n ? " ..." : "");
}

/* Whether ours equals the reference array; on the first mismatch of a run
 * (*first_bad still empty) describes it there. */
static bool same_ids(const char *what, long line, const int32_t *ours, size_t n, json_t *ref, char *first_bad,
                     size_t cap) {
    size_t m = json_array_size(ref), i = 0;
    while (i < n && i < m && ours[i] == (int32_t)json_integer_value(json_array_get(ref, i))) i++;
    if (i == n && i == m) return true;
    if (!first_bad[0]) {
        int32_t *theirs = malloc(sizeof *theirs * (m ? m : 1));
        for (size_t k = 0; k < m; k++) theirs[k] = (int32_t)json_integer_value(json_array_get(ref, k));
        char a[1024], b[1024];
        fmt_ids(a, sizeof a, ours, n, i);
        fmt_ids(b, sizeof b, theirs, m, i);
        free(theirs);
        snprintf(first_bad, cap, "%s: line %ld differs at token %zu (ours %zu tokens, reference %zu)\n  ours:   %s\n  theirs: %s",
                 what, line, i, n, m, a, b);
    }
    return false;
}

static int32_t *encode_alloc(const char *text, size_t len, const ee_wordpiece_opts *o, size_t *n) {
    ee_err err = {{0}};
    ee_wordpiece_encode_opts(g_wp, text, len, o, NULL, 0, n, NULL);
    int32_t *ids = malloc(sizeof *ids * (*n ? *n : 1));
    ck_assert_msg(ee_wordpiece_encode_opts(g_wp, text, len, o, ids, *n, n, &err) == 0, "%s", err.msg);
    return ids;
}

/* ---- tests ------------------------------------------------------------- */

START_TEST(vocab_matches_reference) {
    json_t *toks = json_object_get(g_vocab, "tokens");
    ck_assert_int_eq(ee_wordpiece_n_vocab(g_wp), (long)json_array_size(toks));
    for (int32_t id = 0; id < ee_wordpiece_n_vocab(g_wp); id++) {
        const char *want = json_string_value(json_array_get(toks, (size_t)id));
        REQUIRE(want && strcmp(ee_wordpiece_token(g_wp, id), want) == 0, "%s: token %d is '%s', reference '%s'",
                g_path, id, ee_wordpiece_token(g_wp, id), want);
    }
    json_t *sp = json_object_get(g_vocab, "special");
    int n_special = 0;
    for (int32_t id = 0; id < ee_wordpiece_n_vocab(g_wp); id++) n_special += ee_wordpiece_is_special(g_wp, id);
    ck_assert_int_eq(n_special, (long)json_array_size(sp));
    for (size_t k = 0; k < json_array_size(sp); k++)
        ck_assert(ee_wordpiece_is_special(g_wp, (int32_t)json_integer_value(json_array_get(sp, k))));
    ck_assert_int_eq(ee_wordpiece_unk(g_wp), json_integer_value(json_object_get(g_vocab, "unk")));
    ck_assert_int_eq(ee_wordpiece_cls(g_wp), json_integer_value(json_object_get(g_vocab, "cls")));
    ck_assert_int_eq(ee_wordpiece_sep(g_wp), json_integer_value(json_object_get(g_vocab, "sep")));
    ck_assert_int_eq(ee_wordpiece_pad(g_wp), json_integer_value(json_object_get(g_vocab, "pad")));
    ck_assert_int_eq(ee_wordpiece_mask(g_wp), json_integer_value(json_object_get(g_vocab, "mask")));
    fprintf(stderr, "wordpiece_model: %s: %d tokens, open took %.1f ms\n", g_path, ee_wordpiece_n_vocab(g_wp),
            g_open_ms);
    ck_assert_msg(g_open_ms < 200.0, "open took %.1f ms", g_open_ms);
}
END_TEST

/* Every corpus line, three ways; counts what is identical and fails with
 * the first difference of each kind. */
START_TEST(encode_matches_reference) {
    static const struct {
        const char *key;
        ee_wordpiece_opts o;
    } kinds[] = {
        {"ids", {.add_cls_sep = true, .parse_special = true}},
        {"ids_plain", {.add_cls_sep = true, .parse_special = false}},
        {"ids_bare", {.add_cls_sep = false, .parse_special = true}},
    };
    size_t nl = json_array_size(g_lines);
    ck_assert_uint_ge(nl, 2000);
    char first_bad[3][4096] = {{0}};
    size_t same[3] = {0};
    for (size_t i = 0; i < nl; i++) {
        json_t *rec = json_array_get(g_lines, i);
        size_t len, n;
        const char *text = str_of(rec, "text", &len);
        for (int k = 0; k < 3; k++) {
            int32_t *ids = encode_alloc(text, len, &kinds[k].o, &n);
            same[k] += same_ids(kinds[k].key, (long)i + 1, ids, n, json_object_get(rec, kinds[k].key), first_bad[k],
                                sizeof first_bad[k]);
            free(ids);
        }
    }
    fprintf(stderr, "wordpiece_model: %zu corpus lines: identical ids %zu (special tokens parsed), %zu (as text), %zu (no [CLS]/[SEP])\n",
            nl, same[0], same[1], same[2]);
    for (int k = 0; k < 3; k++) ck_assert_msg(same[k] == nl, "%s", first_bad[k]);
}
END_TEST

START_TEST(invalid_utf8_matches_reference) {
    size_t nb = json_array_size(g_bytes), same = 0;
    char first_bad[4096] = {0};
    for (size_t i = 0; i < nb; i++) {
        json_t *rec = json_array_get(g_bytes, i);
        size_t hl;
        const char *hex = str_of(rec, "hex", &hl);
        size_t len = hl / 2, n;
        char *b = malloc(len + 1);
        for (size_t k = 0; k < len; k++) {
            unsigned v;
            ck_assert(sscanf(hex + 2 * k, "%2x", &v) == 1);
            b[k] = (char)v;
        }
        int32_t *ids = encode_alloc(b, len, NULL, &n);
        same += same_ids("bytes", (long)i + 1, ids, n, json_object_get(rec, "ids"), first_bad, sizeof first_bad);
        free(ids);
        free(b);
    }
    fprintf(stderr, "wordpiece_model: %zu invalid UTF-8 strings: identical ids %zu\n", nb, same);
    ck_assert_uint_ge(nb, 200);
    ck_assert_msg(same == nb, "%s", first_bad);
}
END_TEST

START_TEST(decode_matches_reference) {
    ee_err err = {{0}};
    size_t nl = json_array_size(g_lines);
    for (size_t i = 0; i < nl; i++) {
        json_t *rec = json_array_get(g_lines, i), *ref = json_object_get(rec, "ids");
        size_t n = json_array_size(ref);
        int32_t *ids = malloc(sizeof *ids * (n ? n : 1));
        for (size_t k = 0; k < n; k++) ids[k] = (int32_t)json_integer_value(json_array_get(ref, k));
        for (int all = 0; all < 2; all++) {
            char *s;
            size_t sl, wl;
            ck_assert_msg(ee_wordpiece_decode(g_wp, ids, n, !all, &s, &sl, &err) == 0, "%s", err.msg);
            const char *want = str_of(rec, all ? "decoded_all" : "decoded", &wl);
            REQUIRE(sl == wl && memcmp(s, want, sl) == 0, "decode%s of line %zu:\n  ours   '%.200s'\n  theirs '%.200s'",
                    all ? " (specials kept)" : "", i + 1, s, want);
            free(s);
        }
        free(ids);
    }
}
END_TEST

/* A buffer one id short fails with the count and holds the prefix. */
START_TEST(cap_too_small) {
    ee_err err = {{0}};
    for (size_t i = 0; i < json_array_size(g_lines); i += 7) {
        json_t *rec = json_array_get(g_lines, i), *ref = json_object_get(rec, "ids");
        size_t len, m = json_array_size(ref), n;
        const char *text = str_of(rec, "text", &len);
        int32_t *ids = malloc(sizeof *ids * m);
        REQUIRE(ee_wordpiece_encode(g_wp, text, len, ids, m - 1, &n, &err) == -1 && n == m, "line %zu: %zu of %zu",
                i + 1, n, m);
        for (size_t k = 0; k + 1 < m; k++)
            REQUIRE(ids[k] == (int32_t)json_integer_value(json_array_get(ref, k)), "line %zu id %zu", i + 1, k);
        free(ids);
    }
}
END_TEST

/* ee-model tokenize (--prompts-file, --prompt, --json) and detokenize on
 * the same model file. */
START_TEST(cli_tokenize) {
    char *dir = ee_test_mkdtemp("wpcli");
    char pf[1200], cmd[4096];
    snprintf(pf, sizeof pf, "%s/prompts.txt", dir);
    FILE *f = fopen(pf, "w");
    ck_assert_ptr_nonnull(f);
    size_t nl = json_array_size(g_lines), used = 0;
    size_t *which = malloc(sizeof *which * nl);
    for (size_t i = 0; i < nl; i++) {
        size_t len;
        const char *text = str_of(json_array_get(g_lines, i), "text", &len);
        if (len == 0 || memchr(text, '\n', len) || memchr(text, '\r', len) || strlen(text) != len) continue;
        fwrite(text, 1, len, f);
        fputc('\n', f);
        which[used++] = i;
    }
    fclose(f);
    snprintf(cmd, sizeof cmd, "%s/ee-model tokenize --model '%s' --prompts-file '%s' --json", ee_test_bindir(),
             g_path, pf);
    char *out = NULL, *errs = NULL;
    ck_assert_msg(ee_test_run(cmd, &out, &errs) == 0, "%s: %s", cmd, errs);
    char *save = NULL, *row = strtok_r(out, "\n", &save);
    size_t checked = 0;
    for (size_t k = 0; k < used; k++, row = strtok_r(NULL, "\n", &save)) {
        ck_assert_msg(row != NULL, "%zu rows for %zu prompts", k, used);
        json_error_t je;
        json_t *got = json_loads(row, 0, &je);
        ck_assert_msg(got != NULL, "row %zu: %s", k + 1, je.text);
        json_t *want = json_object_get(json_array_get(g_lines, which[k]), "ids");
        REQUIRE(json_equal(got, want), "prompts-file line %zu (corpus line %zu) differs", k + 1, which[k] + 1);
        json_decref(got);
        checked++;
    }
    fprintf(stderr, "wordpiece_model: ee-model tokenize --prompts-file: %zu lines identical\n", checked);
    ck_assert_uint_ge(checked, 1000); /* the lines without line breaks or NULs */
    free(out);
    free(errs);

    snprintf(cmd, sizeof cmd, "%s/ee-model tokenize --model '%s' --prompt 'Caf\xC3\xA9 [MASK] \xE4\xB8\xAD!'",
             ee_test_bindir(), g_path);
    ck_assert_msg(ee_test_run(cmd, &out, &errs) == 0, "%s", errs);
    char want[256];
    snprintf(want, sizeof want, "%d,%d,%d,%d,%d,%d\n", ee_wordpiece_cls(g_wp),
             ee_wordpiece_token_id(g_wp, "cafe", 4), ee_wordpiece_mask(g_wp),
             ee_wordpiece_token_id(g_wp, "\xE4\xB8\xAD", 3), ee_wordpiece_token_id(g_wp, "!", 1), ee_wordpiece_sep(g_wp));
    ck_assert_str_eq(out, want);
    free(out);
    free(errs);
    snprintf(cmd, sizeof cmd, "%s/ee-model detokenize --model '%s' --tokens %.*s", ee_test_bindir(), g_path,
             (int)strlen(want) - 1, want);
    ck_assert_msg(ee_test_run(cmd, &out, &errs) == 0, "%s", errs);
    ck_assert_str_eq(out, "cafe \xE4\xB8\xAD!\n");
    free(out);
    free(errs);
    strcat(cmd, " --special");
    ck_assert_msg(ee_test_run(cmd, &out, &errs) == 0, "%s", errs);
    ck_assert_str_eq(out, "[CLS] cafe [MASK] \xE4\xB8\xAD! [SEP]\n");
    free(out);
    free(errs);
    snprintf(cmd, sizeof cmd, "%s/ee-model tokenize --model '%s' --chat --prompt hi", ee_test_bindir(), g_path);
    ck_assert_int_ne(ee_test_run(cmd, &out, &errs), 0);
    ck_assert_msg(strstr(errs, "no chat template"), "%s", errs);
    free(out);
    free(errs);
    free(which);
    unlink(pf);
    ee_test_rmtree(dir);
    free(dir);
}
END_TEST

START_TEST(encode_speed) {
    size_t nl = json_array_size(g_lines), bytes = 0, tokens = 0;
    static int32_t ids[1 << 16];
    double best = 1e9;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = now_s();
        bytes = tokens = 0;
        for (size_t i = 0; i < nl; i++) {
            size_t len, n;
            const char *text = str_of(json_array_get(g_lines, i), "text", &len);
            ck_assert(ee_wordpiece_encode(g_wp, text, len, ids, sizeof ids / sizeof ids[0], &n, NULL) == 0);
            bytes += len;
            tokens += n;
        }
        double dt = now_s() - t0;
        if (dt < best) best = dt;
    }
    fprintf(stderr,
            "wordpiece_model: encoded %zu lines (%zu bytes, %zu tokens) in %.1f ms: %.0f lines/s, %.2f MB/s, %.0f tokens/s\n",
            nl, bytes, tokens, 1e3 * best, (double)nl / best, (double)bytes / best / 1e6, (double)tokens / best);
    ck_assert_msg(best < 2.0, "encoding the corpus took %.3f s", best);
}
END_TEST

Suite *suite_wordpiece_model(void) {
    Suite *s = suite_create("wordpiece_model");
    TCase *tc = tcase_create("reference");
    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, vocab_matches_reference);
    tcase_add_test(tc, encode_matches_reference);
    tcase_add_test(tc, invalid_utf8_matches_reference);
    tcase_add_test(tc, decode_matches_reference);
    tcase_add_test(tc, cap_too_small);
    tcase_add_test(tc, cli_tokenize);
    tcase_add_test(tc, encode_speed);
    suite_add_tcase(s, tc);
    return s;
}
