/* WordPiece (BERT) tokenizer unit tests on a small handmade vocabulary,
 * written to GGUF in llama.cpp's phantom-space form with our writer and
 * read back. Expected tokens were taken from HF `tokenizers` (WordPiece
 * model over the same vocabulary with BertNormalizer, BertPreTokenizer,
 * TemplateProcessing [CLS] $A [SEP] and the five special tokens added);
 * the model tier (tests/model/test_wordpiece_model.c) compares whole
 * corpora with the real all-MiniLM-L6-v2 tokenizer. */
#include "ee_gguf.h"
#include "ee_testmodel.h"
#include "ee_unicode.h"
#include "ee_wordpiece.h"
#include "ee_wp_normalize.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- fixture ----------------------------------------------------------- */

/* WordPiece form; the first five are the special (CONTROL) tokens. */
static const char *const VOCAB[] = {
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[unused0]",
    "hello", "world", "un", "##aff", "##able", "aff", "able", "a", "##a", "ab", "##b", "b", "##bc", "c",
    "##c", "e", "i", "x", "y", "##y", ",", ".", "!", "?", "[", "]", "'", "-", "$", "+",
    "\xE2\x80\x94",                 /* U+2014 em dash */
    "\xC2\xBF",                     /* U+00BF inverted question mark */
    "cafe", "strasse", ("stra\xC3\x9F" "e"),
    "\xC4\xB1",                     /* U+0131 dotless i */
    "\xCF\x83",                     /* sigma */
    "\xCE\xBF\xCE\xB4\xCE\xBF\xCF\x83", /* "οδοσ" */
    "k", "mask", "\xE4\xB8\xAD", "\xE6\x96\x87", /* 中 文 */
    "\xE3\x81\x82\xE3\x81\x84",     /* あい */
    "\xE1\x84\x80", "##\xE1\x85\xA1", /* jamo ᄀ, ##ᅡ */
    "\xC7\x86", "\xC3\x9F", "##s", "s", "t", "##t", "\xC3\xA6",
    "\xF0\x9D\x85\xA5", "##\xF0\x9D\x85\xA5", "##\xF0\x9D\x85\xAD", /* U+1D165, ##U+1D165, ##U+1D16D */
    "\xE2\x82\xAC",                 /* € */
    "##e",
};
#define NV ((int)(sizeof VOCAB / sizeof VOCAB[0]))

enum { K_UNK = 1, K_CLS = 2, K_SEP = 4, K_PAD = 8, K_MASK = 16, K_BOS_EOS = 32, K_ALL = 31 };

typedef struct {
    const char *model;  /* tokenizer.ggml.model */
    unsigned keys;      /* which id keys to write */
    bool old_form;      /* "[...]" tokens kept as they are (older converters) */
    bool no_types;      /* no token_type array */
    int n_types;        /* token_type entries (0: NV) */
} fixture_opts;

/* llama.cpp's phantom form, written independently of the library's
 * reader: CONTROL as is; "##x" -> "x"; else U+2581 + token. */
static char *phantom(const char *tok, bool control, bool old_form) {
    size_t n = strlen(tok);
    char *s = malloc(n + 4);
    if (control || (old_form && tok[0] == '[' && tok[n - 1] == ']')) memcpy(s, tok, n + 1);
    else if (strncmp(tok, "##", 2) == 0) memcpy(s, tok + 2, n - 1);
    else memcpy(s, "\xE2\x96\x81", 3), memcpy(s + 3, tok, n + 1);
    return s;
}

static char *write_fixture(const fixture_opts *o) {
    ee_err err = {{0}};
    ee_gguf_writer *w = ee_gguf_writer_new(&err);
    ck_assert_msg(w != NULL, "%s", err.msg);
    char *toks[NV];
    int32_t types[NV];
    for (int i = 0; i < NV; i++) {
        types[i] = i < 5 ? EE_TOKTYPE_CONTROL : EE_TOKTYPE_NORMAL;
        toks[i] = phantom(VOCAB[i], i < 5, o->old_form);
    }
    int rc = ee_gguf_writer_set_str(w, "general.architecture", "bert", &err);
    rc |= ee_gguf_writer_set_str(w, "tokenizer.ggml.model", o->model ? o->model : "bert", &err);
    rc |= ee_gguf_writer_set_str_arr(w, "tokenizer.ggml.tokens", (const char *const *)toks, NV, &err);
    if (!o->no_types)
        rc |= ee_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", EE_GGUF_I32, types,
                                     (uint64_t)(o->n_types ? o->n_types : NV), &err);
    if (o->keys & K_UNK) rc |= ee_gguf_writer_set_u32(w, "tokenizer.ggml.unknown_token_id", 1, &err);
    if (o->keys & K_CLS) rc |= ee_gguf_writer_set_u32(w, "tokenizer.ggml.cls_token_id", 2, &err);
    if (o->keys & K_SEP) rc |= ee_gguf_writer_set_u32(w, "tokenizer.ggml.seperator_token_id", 3, &err);
    if (o->keys & K_PAD) rc |= ee_gguf_writer_set_u32(w, "tokenizer.ggml.padding_token_id", 0, &err);
    if (o->keys & K_MASK) rc |= ee_gguf_writer_set_u32(w, "tokenizer.ggml.mask_token_id", 4, &err);
    if (o->keys & K_BOS_EOS) {
        rc |= ee_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 2, &err);
        rc |= ee_gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", 3, &err);
    }
    char *path = ee_test_tmpfile(".gguf");
    if (rc == 0) rc = ee_gguf_writer_write(w, path, &err);
    ck_assert_msg(rc == 0, "%s", err.msg);
    ee_gguf_writer_free(w);
    for (int i = 0; i < NV; i++) free(toks[i]);
    return path;
}

/* Open a fixture; returns -1 with err set on failure. */
static int open_fixture(const fixture_opts *o, ee_wordpiece **t, ee_err *err) {
    char *path = write_fixture(o);
    ee_gguf *g = ee_gguf_open(path, err);
    unlink(path);
    free(path);
    ck_assert_msg(g != NULL, "%s", err->msg);
    int rc = ee_wordpiece_open_gguf(t, g, err);
    ee_gguf_close(g); /* the tokenizer keeps nothing of the file */
    return rc;
}

static ee_wordpiece *T;

static void setup(void) {
    ee_err err = {{0}};
    fixture_opts o = {.keys = K_ALL};
    ck_assert_msg(open_fixture(&o, &T, &err) == 0, "%s", err.msg);
}

static void teardown(void) {
    ee_wordpiece_close(T);
    T = NULL;
}

/* Tokens of text[0..len) as one space-separated string (static buffer). */
static const char *toks_of(const ee_wordpiece *t, const char *text, size_t len, const ee_wordpiece_opts *o) {
    static char out[8192];
    int32_t ids[512];
    size_t n;
    ee_err err = {{0}};
    ck_assert_msg(ee_wordpiece_encode_opts(t, text, len, o, ids, 512, &n, &err) == 0, "%s", err.msg);
    size_t k = 0;
    out[0] = 0;
    for (size_t i = 0; i < n; i++) {
        const char *s = ee_wordpiece_token(t, ids[i]);
        ck_assert_ptr_nonnull(s);
        k += (size_t)snprintf(out + k, sizeof out - k, "%s%s", i ? " " : "", s);
    }
    return out;
}

#define EXPECT_LEN(text, len, want)                                                           \
    do {                                                                                      \
        const char *got_ = toks_of(T, (text), (len), NULL);                                   \
        ck_assert_msg(strcmp(got_, (want)) == 0, "encode(\"%s\"):\n  got  %s\n  want %s", #text, \
                      got_, (want));                                                          \
    } while (0)
#define EXPECT(text, want) EXPECT_LEN(text, strlen(text), want)

/* ---- loading ----------------------------------------------------------- */

START_TEST(gguf_phantom_form) {
    ck_assert_int_eq(ee_wordpiece_n_vocab(T), NV);
    for (int i = 0; i < NV; i++) {
        ck_assert_str_eq(ee_wordpiece_token(T, i), VOCAB[i]);
        ck_assert_int_eq(ee_wordpiece_token_id(T, VOCAB[i], strlen(VOCAB[i])), i);
        ck_assert(ee_wordpiece_is_special(T, i) == (i < 5));
    }
    ck_assert_ptr_null(ee_wordpiece_token(T, -1));
    ck_assert_ptr_null(ee_wordpiece_token(T, NV));
    ck_assert_int_eq(ee_wordpiece_token_id(T, "aff", 3), 11);
    ck_assert_int_eq(ee_wordpiece_token_id(T, "##aff", 5), 9);
    ck_assert_int_eq(ee_wordpiece_token_id(T, "\xE2\x96\x81" "aff", 6), -1); /* not the stored form */
    ck_assert_int_eq(ee_wordpiece_unk(T), 1);
    ck_assert_int_eq(ee_wordpiece_cls(T), 2);
    ck_assert_int_eq(ee_wordpiece_sep(T), 3);
    ck_assert_int_eq(ee_wordpiece_pad(T), 0);
    ck_assert_int_eq(ee_wordpiece_mask(T), 4);
}
END_TEST

START_TEST(gguf_old_form_and_fallback_ids) {
    ee_err err = {{0}};
    ee_wordpiece *t;
    /* "[unused0]" kept without U+2581; cls/sep from bos/eos. */
    fixture_opts o = {.keys = K_UNK | K_BOS_EOS, .old_form = true};
    ck_assert_msg(open_fixture(&o, &t, &err) == 0, "%s", err.msg);
    ck_assert_str_eq(ee_wordpiece_token(t, 5), "[unused0]");
    ck_assert_int_eq(ee_wordpiece_cls(t), 2);
    ck_assert_int_eq(ee_wordpiece_sep(t), 3);
    ck_assert_int_eq(ee_wordpiece_pad(t), -1);
    ck_assert_int_eq(ee_wordpiece_mask(t), -1);
    ee_wordpiece_close(t);
    /* No id keys at all: unk, cls and sep by name. */
    o = (fixture_opts){.keys = 0};
    ck_assert_msg(open_fixture(&o, &t, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(ee_wordpiece_unk(t), 1);
    ck_assert_int_eq(ee_wordpiece_cls(t), 2);
    ck_assert_int_eq(ee_wordpiece_sep(t), 3);
    ee_wordpiece_close(t);
    /* No token types: nothing is special, so "[CLS]" typed is plain text. */
    o = (fixture_opts){.keys = K_ALL, .no_types = true};
    ck_assert_msg(open_fixture(&o, &t, &err) == 0, "%s", err.msg);
    ck_assert(!ee_wordpiece_is_special(t, 2));
    ck_assert_str_eq(toks_of(t, "[CLS]", 5, NULL), "[CLS] [ [UNK] ] [SEP]");
    ee_wordpiece_close(t);
}
END_TEST

START_TEST(gguf_errors) {
    ee_err err = {{0}};
    ee_wordpiece *t = (ee_wordpiece *)&err; /* must be reset to NULL */
    fixture_opts o = {.keys = K_ALL, .model = "gpt2"};
    ck_assert_int_eq(open_fixture(&o, &t, &err), -1);
    ck_assert_ptr_null(t);
    ck_assert_msg(strstr(err.msg, "'gpt2'") && strstr(err.msg, "'bert'"), "%s", err.msg);
    o = (fixture_opts){.keys = K_ALL, .n_types = NV - 1};
    ck_assert_int_eq(open_fixture(&o, &t, &err), -1);
    ck_assert_msg(strstr(err.msg, "token_type"), "%s", err.msg);

    /* A file without tokenizer keys. */
    ee_gguf_writer *w = ee_gguf_writer_new(&err);
    ck_assert(ee_gguf_writer_set_str(w, "tokenizer.ggml.model", "bert", &err) == 0);
    char *path = ee_test_tmpfile(".gguf");
    ck_assert(ee_gguf_writer_write(w, path, &err) == 0);
    ee_gguf_writer_free(w);
    ee_gguf *g = ee_gguf_open(path, &err);
    ck_assert_ptr_nonnull(g);
    ck_assert_int_eq(ee_wordpiece_open_gguf(&t, g, &err), -1);
    ck_assert_msg(strstr(err.msg, "tokenizer.ggml.tokens"), "%s", err.msg);
    ee_gguf_close(g);
    unlink(path);
    free(path);
    ck_assert_int_eq(ee_wordpiece_open_gguf(&t, NULL, &err), -1);
    ck_assert_int_eq(ee_wordpiece_open_gguf(NULL, NULL, NULL), -1);
}
END_TEST

START_TEST(arrays_validation) {
    ee_err err = {{0}};
    ee_wordpiece *t;
    const char *toks[] = {"[UNK]", "[CLS]", "[SEP]", "a", "##a", "a"};
    ee_wordpiece_arrays a = {.n_vocab = 6, .tokens = toks, .unk_id = 0, .cls_id = 1, .sep_id = 2,
                             .pad_id = -1, .mask_id = -1};
    ck_assert_msg(ee_wordpiece_open_arrays(&t, &a, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(ee_wordpiece_token_id(t, "a", 1), 5); /* duplicates: the highest id */
    ck_assert_str_eq(toks_of(t, "aa", 2, NULL), "[CLS] a ##a [SEP]");
    ee_wordpiece_close(t);

    a.unk_id = -1; /* no unknown token */
    ck_assert_int_eq(ee_wordpiece_open_arrays(&t, &a, &err), -1);
    ck_assert_msg(strstr(err.msg, "unknown-token id -1 missing"), "%s", err.msg);
    a.unk_id = 0;
    a.mask_id = 6;
    ck_assert_int_eq(ee_wordpiece_open_arrays(&t, &a, &err), -1);
    ck_assert_msg(strstr(err.msg, "mask id 6 out of range"), "%s", err.msg);
    a.mask_id = -1;
    int32_t types[6] = {3, 3, 3, 1, 1, 9};
    a.types = types;
    ck_assert_int_eq(ee_wordpiece_open_arrays(&t, &a, &err), -1);
    ck_assert_msg(strstr(err.msg, "token 5 has type 9"), "%s", err.msg);
    a.types = NULL;
    a.n_vocab = 0;
    ck_assert_int_eq(ee_wordpiece_open_arrays(&t, &a, &err), -1);
    ck_assert_int_eq(ee_wordpiece_open_arrays(&t, NULL, &err), -1);
}
END_TEST

/* ---- encoding rules ---------------------------------------------------- */

START_TEST(basic_and_greedy) {
    EXPECT("hello world", "[CLS] hello world [SEP]");
    EXPECT("unaffable", "[CLS] un ##aff ##able [SEP]");
    /* Longest first, not best overall: "abc" is ab ##c, not a ##bc. */
    EXPECT("abc", "[CLS] ab ##c [SEP]");
    EXPECT("ab bc abbc abc", "[CLS] ab b ##c ab ##bc ab ##c [SEP]");
}
END_TEST

START_TEST(punctuation) {
    EXPECT("Hello, World!", "[CLS] hello , world ! [SEP]");
    EXPECT("hello,world!hello?", "[CLS] hello , world ! hello ? [SEP]");
    /* ASCII punctuation (incl. symbols $ +) and Unicode P* split; Unicode
     * symbols (€ Sc, © So) do not: "a€b" is one word, which the vocabulary
     * cannot spell. */
    EXPECT("a-b a$b a+b a\xE2\x80\x94" "b a\xC2\xBF" "b a\xE2\x82\xAC" "b a\xC2\xA9" "b",
           "[CLS] a - b a $ b a + b a \xE2\x80\x94 b a \xC2\xBF b [UNK] [UNK] [SEP]");
}
END_TEST

START_TEST(cjk) {
    EXPECT("\xE4\xB8\xAD\xE6\x96\x87", "[CLS] \xE4\xB8\xAD \xE6\x96\x87 [SEP]");
    EXPECT("\xE4\xB8\xAD" "a\xE6\x96\x87", "[CLS] \xE4\xB8\xAD a \xE6\x96\x87 [SEP]");
    /* Kana are not CJK ideographs: one word. */
    EXPECT("\xE3\x81\x82\xE3\x81\x84", "[CLS] \xE3\x81\x82\xE3\x81\x84 [SEP]");
    /* A Hangul syllable is not padded but decomposes (NFD) into jamo. */
    EXPECT("\xEA\xB0\x80", "[CLS] \xE1\x84\x80 ##\xE1\x85\xA1 [SEP]");
}
END_TEST

START_TEST(accents_and_case) {
    EXPECT("Caf\xC3\xA9 CAFE\xCC\x81 c\xCC\xA7" "afe", "[CLS] cafe cafe cafe [SEP]");
    /* ß stays (no canonical decomposition); ẞ lowercases to ß. */
    EXPECT("STRASSE Stra\xC3\x9F" "e STRA\xE1\xBA\x9E" "E", "[CLS] strasse stra\xC3\x9F" "e stra\xC3\x9F" "e [SEP]");
    /* İ: NFD I + U+0307, the mark dropped, then lowercase: i. ı stays. */
    EXPECT("\xC4\xB0 I\xCC\x87 \xC4\xB1 i", "[CLS] i i \xC4\xB1 i [SEP]");
    /* Lowercase per code point: no final sigma. */
    EXPECT("\xCE\x9F\xCE\x94\xCE\x9F\xCE\xA3 \xCF\x83", "[CLS] \xCE\xBF\xCE\xB4\xCE\xBF\xCF\x83 \xCF\x83 [SEP]");
    /* Kelvin sign (NFD K), DŽ and Dž (lowercase dž), Æ. */
    EXPECT("\xE2\x84\xAA \xC7\x84 \xC7\x85 \xC3\x86", "[CLS] k \xC7\x86 \xC7\x86 \xC3\xA6 [SEP]");
    EXPECT("\xC3\xA6\xCC\x81", "[CLS] \xC3\xA6 [SEP]");
}
END_TEST

START_TEST(control_and_whitespace) {
    static const char in[] = "hel\0lo hel\alo hel\xE2\x80\x8Blo hel\xC2\xADlo hel\xEF\xBF\xBDlo hel\xEE\x80\x80lo";
    EXPECT_LEN(in, sizeof in - 1, "[CLS] hello hello hello hello hello hello [SEP]");
    /* NEL, VT and U+001C are control characters: removed, not spaces. */
    EXPECT("hello\xC2\x85world hello\vworld hello\x1cworld", "[CLS] [UNK] [UNK] [UNK] [SEP]");
    EXPECT("hello\tworld\nhello\xC2\xA0world\xE3\x80\x80hello\xE2\x80\xA8world\xE2\x80\x83"
           "a\xE1\xA0\x8E" "b",
           "[CLS] hello world hello world hello world ab [SEP]");
    /* An unassigned code point (U+0378) is kept: the word is unknown. */
    EXPECT("a\xCD\xB8" "b", "[CLS] [UNK] [SEP]");
}
END_TEST

START_TEST(unknown_words) {
    char w[202];
    memset(w, 'a', sizeof w);
    const char *got = toks_of(T, w, 100, NULL); /* 100 characters: pieces */
    ck_assert_int_eq((int)strlen(got), (int)strlen("[CLS] a [SEP]") + 99 * 4);
    EXPECT_LEN(w, 101, "[CLS] [UNK] [SEP]");
    EXPECT_LEN(w, 202, "[CLS] [UNK] [SEP]");
    /* A word is [UNK] as a whole when any position fails. */
    EXPECT("helloq hellob xyz xy", "[CLS] [UNK] hello ##b [UNK] x ##y [SEP]");
    /* Length counts normalized characters: 100 "é" (200 bytes, 300 after
     * NFD) are 100 "e", 101 are too many. */
    char acc[2 * 101];
    for (int i = 0; i < 101; i++) memcpy(acc + 2 * i, "\xC3\xA9", 2);
    char want[1024] = "[CLS] e";
    for (int i = 1; i < 100; i++) strcat(want, " ##e");
    strcat(want, " [SEP]");
    EXPECT_LEN(acc, 200, want);
    EXPECT_LEN(acc, 202, "[CLS] [UNK] [SEP]");
    /* ...and 300 combining marks in a word vanish. */
    char marks[2 * 300 + 3];
    marks[0] = 'a';
    for (int i = 0; i < 300; i++) memcpy(marks + 1 + 2 * i, "\xCC\x81", 2);
    marks[601] = 'b';
    EXPECT_LEN(marks, 602, "[CLS] ab [SEP]");
}
END_TEST

START_TEST(special_tokens_in_text) {
    EXPECT("[CLS]", "[CLS] [CLS] [SEP]");
    EXPECT("a[MASK]b [mask] [MASK [UNK][PAD]", "[CLS] a [MASK] b [ mask ] [ mask [UNK] [PAD] [SEP]");
    EXPECT("[[SEP]]", "[CLS] [ [SEP] ] [SEP]");
    /* [unused0] is an ordinary token: never matched in text. */
    EXPECT("[unused0]", "[CLS] [ [UNK] ] [SEP]");
    ee_wordpiece_opts plain = {.add_cls_sep = true, .parse_special = false};
    ck_assert_str_eq(toks_of(T, "a[MASK]b", 8, &plain), "[CLS] a [ mask ] b [SEP]");
    ee_wordpiece_opts bare = {.add_cls_sep = false, .parse_special = true};
    ck_assert_str_eq(toks_of(T, "a[MASK]b", 8, &bare), "a [MASK] b");
    ck_assert_str_eq(toks_of(T, "", 0, &bare), "");
}
END_TEST

START_TEST(empty_input) {
    EXPECT("", "[CLS] [SEP]");
    EXPECT_LEN(NULL, 0, "[CLS] [SEP]");
    EXPECT("   \x00 \xE2\x80\x8B ", "[CLS] [SEP]");
}
END_TEST

START_TEST(combining_order) {
    /* U+1D16D (class 226) and U+1D165 (216) are spacing marks that survive
     * the Mn filter: NFD sorts them, across a dropped Mn (U+0301, 230) but
     * not across U+0902 (Mn of class 0, a starter). */
    EXPECT("x\xF0\x9D\x85\xAD\xF0\x9D\x85\xA5 x\xF0\x9D\x85\xAD\xCC\x81\xF0\x9D\x85\xA5 "
           "x\xF0\x9D\x85\xAD\xE0\xA4\x82\xF0\x9D\x85\xA5",
           "[CLS] x ##\xF0\x9D\x85\xA5 ##\xF0\x9D\x85\xAD x ##\xF0\x9D\x85\xA5 ##\xF0\x9D\x85\xAD "
           "x ##\xF0\x9D\x85\xAD ##\xF0\x9D\x85\xA5 [SEP]");
    /* More of them than a word holds: [UNK] whatever their order. */
    char run[1 + 4 * 102 + 1];
    run[0] = 'a';
    for (int i = 0; i < 102; i++) memcpy(run + 1 + 4 * i, "\xF0\x9D\x85\xA5", 4);
    run[sizeof run - 1] = 'b';
    EXPECT_LEN(run, sizeof run, "[CLS] [UNK] [SEP]");
    /* 99 of them and "a": 100 characters, spelled. */
    char want[8192] = "[CLS] a";
    for (int i = 0; i < 99; i++) strcat(want, " ##\xF0\x9D\x85\xA5");
    strcat(want, " [SEP]");
    EXPECT_LEN(run, 1 + 4 * 99, want);
}
END_TEST

START_TEST(invalid_utf8) {
    /* Each ill-formed byte is U+FFFD, which clean_text drops: the pieces
     * around it join. */
    EXPECT("hel\xFFlo", "[CLS] hello [SEP]");
    EXPECT("hello\xC3", "[CLS] hello [SEP]");
    EXPECT("\xC0\xAFhello \xED\xA0\x80world\xF4\x90\x80\x80", "[CLS] hello world [SEP]");
    EXPECT("[CLS]\xFF[SEP]", "[CLS] [CLS] [SEP] [SEP]");
    /* Property: any bytes encode as their lossy UTF-8 decoding does. */
    uint64_t rng = 7;
    static const char pool[] = "aAbc \xC3\xA9\xE4\xB8\xAD[MASK]\xFF\x80\xC3\xE2\x82\xED\xA0\xF0\x9F\x98\x80,.";
    for (int iter = 0; iter < 2000; iter++) {
        char in[48], lossy[3 * 48];
        size_t n = ee_test_splitmix64(&rng) % sizeof in;
        for (size_t i = 0; i < n; i++) in[i] = pool[ee_test_splitmix64(&rng) % (sizeof pool - 1)];
        size_t ln = ee_unicode_utf8_lossy((const unsigned char *)in, n, lossy);
        char a[8192];
        snprintf(a, sizeof a, "%s", toks_of(T, in, n, NULL));
        const char *b = toks_of(T, lossy, ln, NULL);
        REQUIRE(strcmp(a, b) == 0, "iteration %d: %s vs %s", iter, a, b);
    }
}
END_TEST

START_TEST(cap_and_arguments) {
    ee_err err = {{0}};
    int32_t ids[8] = {-7, -7, -7, -7, -7, -7, -7, -7};
    size_t n = 99;
    /* Size query. */
    ck_assert_int_eq(ee_wordpiece_encode(T, "hello world", 11, NULL, 0, &n, &err), -1);
    ck_assert_uint_eq(n, 4);
    ck_assert_msg(strstr(err.msg, "needs 4 ids, room for 0"), "%s", err.msg);
    /* Too small: the first cap ids, the count needed, an error. */
    ck_assert_int_eq(ee_wordpiece_encode(T, "hello world", 11, ids, 3, &n, &err), -1);
    ck_assert_uint_eq(n, 4);
    ck_assert_int_eq(ids[0], 2);
    ck_assert_int_eq(ids[1], 6);
    ck_assert_int_eq(ids[2], 7);
    ck_assert_int_eq(ids[3], -7); /* nothing written past cap */
    /* Exactly enough. */
    ck_assert_int_eq(ee_wordpiece_encode(T, "hello world", 11, ids, 4, &n, &err), 0);
    ck_assert_uint_eq(n, 4);
    ck_assert_int_eq(ids[3], 3);
    /* Invalid arguments. */
    ck_assert_int_eq(ee_wordpiece_encode(NULL, "a", 1, ids, 8, &n, &err), -1);
    ck_assert_int_eq(ee_wordpiece_encode(T, "a", 1, ids, 8, NULL, &err), -1);
    ck_assert_int_eq(ee_wordpiece_encode(T, NULL, 1, ids, 8, &n, &err), -1);
    ck_assert_int_eq(ee_wordpiece_encode(T, "a", 1, NULL, 8, &n, NULL), -1);
}
END_TEST

START_TEST(decode) {
    ee_err err = {{0}};
    char *s;
    size_t n;
    int32_t a[] = {2, 6, 9, 10, 27, 3}; /* [CLS] hello ##aff ##able . [SEP] */
    ck_assert(ee_wordpiece_decode(T, a, 6, true, &s, &n, &err) == 0);
    ck_assert_str_eq(s, "helloaffable.");
    ck_assert_uint_eq(n, strlen(s));
    free(s);
    int32_t b[] = {9, 6, 27, 3}; /* a first "##" piece keeps its prefix */
    ck_assert(ee_wordpiece_decode(T, b, 4, false, &s, NULL, &err) == 0);
    ck_assert_str_eq(s, "##aff hello. [SEP]");
    free(s);
    int32_t c[] = {6, 32, 44, 27, 29}; /* hello ' k . ? */
    ck_assert(ee_wordpiece_decode(T, c, 5, true, &s, NULL, &err) == 0);
    ck_assert_str_eq(s, "hello ' k.?");
    free(s);
    ck_assert(ee_wordpiece_decode(T, NULL, 0, true, &s, &n, &err) == 0);
    ck_assert_str_eq(s, "");
    free(s);
    int32_t bad[] = {6, NV};
    ck_assert_int_eq(ee_wordpiece_decode(T, bad, 2, true, &s, &n, &err), -1);
    ck_assert_msg(strstr(err.msg, "index 1"), "%s", err.msg);
    ck_assert_ptr_null(s);
}
END_TEST

/* ---- the normalizer and its tables ------------------------------------- */

START_TEST(normalizer_tables) {
    uint32_t d[4], l[3];
    ck_assert_int_eq(ee_wp_decompose(0xE9, d), 2);
    ck_assert(d[0] == 'e' && d[1] == 0x301);
    ck_assert_int_eq(ee_wp_decompose(0x1F82, d), 4); /* the longest NFD */
    ck_assert_int_eq(ee_wp_decompose(0xAC00, d), 2);  /* Hangul: L V */
    ck_assert(d[0] == 0x1100 && d[1] == 0x1161);
    ck_assert_int_eq(ee_wp_decompose(0xD7A3, d), 3); /* L V T */
    ck_assert(d[0] == 0x1112 && d[1] == 0x1175 && d[2] == 0x11C2);
    ck_assert_int_eq(ee_wp_decompose('a', d), 1);
    ck_assert_int_eq(ee_wp_lowercase(0x130, l), 2); /* İ -> i + U+0307 */
    ck_assert(l[0] == 'i' && l[1] == 0x307);
    ck_assert_int_eq(ee_wp_lowercase(0x3A3, l), 1); /* Σ -> σ, never ς */
    ck_assert_uint_eq(l[0], 0x3C3);
    ck_assert_int_eq(ee_wp_lowercase(0x1E9E, l), 1);
    ck_assert_uint_eq(l[0], 0xDF);
    ck_assert_int_eq(ee_wp_lowercase(0xA7CB, l), 1); /* Unicode 16: Rust's std knows it */
    ck_assert_uint_eq(l[0], 0x264);
    ck_assert_int_eq(ee_wp_ccc_of(0x301), 230);
    ck_assert_int_eq(ee_wp_ccc_of(0x1D16D), 226);
    ck_assert_int_eq(ee_wp_ccc_of(0x7FD), 0); /* Unicode 11: unknown to the NFD crate */
    ck_assert_int_eq(ee_wp_ccc_of('a'), 0);
    /* The crates' Unicode 9 categories: U+0890 (Cf since 14.0) is kept,
     * U+061D (Po since 14.0) is not punctuation, U+07FD (Mn since 11.0)
     * is not a mark. */
    ck_assert_uint_eq(ee_wp_flags(0x890) & EE_WP_REMOVE, 0);
    ck_assert_uint_eq(ee_wp_flags(0x61D) & EE_WP_PUNCT, 0);
    ck_assert_uint_eq(ee_wp_flags(0x7FD) & EE_WP_MN, 0);
    ck_assert_uint_ne(ee_wp_flags(0x300) & EE_WP_MN, 0);
    ck_assert_uint_ne(ee_wp_flags(0x4E00) & EE_WP_CJK, 0);
    ck_assert_uint_eq(ee_wp_flags(0x3042) & EE_WP_CJK, 0);
    ck_assert_uint_eq(ee_wp_flags(0x110000), 0);
    /* ASCII, against the rules written out. */
    for (uint32_t c = 0; c < 0x80; c++) {
        unsigned f = ee_wp_flags(c);
        bool space = c == ' ' || c == '\t' || c == '\n' || c == '\r';
        bool removed = !space && (c < 0x20 || c == 0x7F);
        bool punct = c > 0x20 && c < 0x7F && !(c >= '0' && c <= '9') && !((c | 0x20) >= 'a' && (c | 0x20) <= 'z');
        REQUIRE(!!(f & EE_WP_SPACE) == space && !!(f & EE_WP_REMOVE) == removed &&
                    !!(f & EE_WP_PUNCT) == punct && !(f & (EE_WP_MN | EE_WP_DECOMP | EE_WP_CCC | EE_WP_CJK)),
                "ASCII 0x%02x flags 0x%02x", c, f);
        REQUIRE(!!(f & EE_WP_LOWER) == (c >= 'A' && c <= 'Z'), "ASCII 0x%02x LOWER", c);
    }
    char out[64];
    ck_assert_uint_eq(ee_wp_normalize("\xCE\x9F\xCE\x94\xCE\x9F\xCE\xA3", 8, out, sizeof out), 8);
    ck_assert_str_eq(out, "\xCE\xBF\xCE\xB4\xCE\xBF\xCF\x83");
    ck_assert_uint_eq(ee_wp_normalize("A\xE4\xB8\xAD\x01\tB", 7, out, sizeof out), 8);
    ck_assert_str_eq(out, "a \xE4\xB8\xAD  b");
    ck_assert_uint_eq(ee_wp_normalize("ABCDEF", 6, out, 4), 6); /* truncated, full length */
    ck_assert_str_eq(out, "abc");
}
END_TEST

Suite *suite_wordpiece(void) {
    Suite *s = suite_create("wordpiece");
    TCase *tc = tcase_create("rules");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, gguf_phantom_form);
    tcase_add_test(tc, gguf_old_form_and_fallback_ids);
    tcase_add_test(tc, gguf_errors);
    tcase_add_test(tc, arrays_validation);
    tcase_add_test(tc, basic_and_greedy);
    tcase_add_test(tc, punctuation);
    tcase_add_test(tc, cjk);
    tcase_add_test(tc, accents_and_case);
    tcase_add_test(tc, control_and_whitespace);
    tcase_add_test(tc, unknown_words);
    tcase_add_test(tc, special_tokens_in_text);
    tcase_add_test(tc, empty_input);
    tcase_add_test(tc, combining_order);
    tcase_add_test(tc, invalid_utf8);
    tcase_add_test(tc, cap_and_arguments);
    tcase_add_test(tc, decode);
    tcase_add_test(tc, normalizer_tables);
    suite_add_tcase(s, tc);
    return s;
}
