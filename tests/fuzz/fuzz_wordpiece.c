/* libFuzzer target: the WordPiece tokenizer (normalizer, pre-tokenizer,
 * WordPiece, special tokens, decode) on any bytes. The vocabulary is the
 * BERT GGUF named by $EE_FUZZ_WP_MODEL (e.g. build/ref/wp_vocab.gguf,
 * all-MiniLM-L6-v2's), else a small built-in one. Properties:
 *  - encoding never fails given room; ids are in range; [CLS] first and
 *    [SEP] last; the size query gives the same count;
 *  - any bytes encode as their lossy UTF-8 decoding (ee_unicode_utf8_lossy)
 *    does: ill-formed bytes are U+FFFD, which the normalizer drops;
 *  - without [CLS]/[SEP] the ids are the same minus those two;
 *  - with special tokens read as text, the only special id inside is [UNK];
 *  - the normalizer's output and any decode are valid UTF-8. */
#include "ee_gguf.h"
#include "ee_unicode.h"
#include "ee_wordpiece.h"
#include "ee_wp_normalize.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static ee_gguf *g_gguf;
static ee_wordpiece *g_wp;

/* Built-in vocabulary (WordPiece form): specials, ASCII letters, digits
 * and punctuation word-initial and as continuations, a few words, some
 * non-ASCII pieces. */
static int builtin(ee_err *err) {
    static char store[4096];
    const char *toks[512];
    int n = 0;
    size_t o = 0;
    static const char *const fixed[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "##ing", "hello",
                                        "##llo", "un", "##aff", "##able", "\xC3\xA9", "##\xC3\xA9", "\xE4\xB8\xAD",
                                        "\xCF\x83", "##\xCF\x83", "\xC3\x9F", "\xE1\x84\x80", "##\xE1\x85\xA1"};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) toks[n++] = fixed[i];
    for (int c = 0x21; c < 0x7F; c++) {
        if (c >= 'A' && c <= 'Z') continue; /* lowercased away */
        store[o] = (char)c, store[o + 1] = 0, toks[n++] = store + o, o += 2;
        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
            memcpy(store + o, "##", 2), store[o + 2] = (char)c, store[o + 3] = 0, toks[n++] = store + o, o += 4;
    }
    int32_t types[512];
    for (int i = 0; i < n; i++) types[i] = i < 5 ? EE_TOKTYPE_CONTROL : EE_TOKTYPE_NORMAL;
    ee_wordpiece_arrays a = {.n_vocab = n, .tokens = toks, .types = types, .unk_id = 1, .cls_id = 2,
                             .sep_id = 3, .pad_id = 0, .mask_id = 4};
    return ee_wordpiece_open_arrays(&g_wp, &a, err);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    const char *path = getenv("EE_FUZZ_WP_MODEL");
    ee_err err = {{0}};
    int rc;
    if (path && *path) {
        g_gguf = ee_gguf_open(path, &err);
        rc = g_gguf ? ee_wordpiece_open_gguf(&g_wp, g_gguf, &err) : -1;
    } else {
        path = "(built-in vocabulary)";
        rc = builtin(&err);
    }
    if (rc) {
        fprintf(stderr, "fuzz_wordpiece: %s: %s\n", path, err.msg);
        exit(2);
    }
    return 0;
}

static void check_utf8(const char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int k = ee_unicode_utf8_decode((const unsigned char *)s + i, n - i, &cp);
        if (k <= 0) abort();
        i += (size_t)k;
    }
}

static int32_t *encode(const char *d, size_t size, const ee_wordpiece_opts *o, size_t *n) {
    size_t q = 0;
    ee_wordpiece_encode_opts(g_wp, d, size, o, NULL, 0, &q, NULL);
    int32_t *ids = malloc(sizeof *ids * (q + 1));
    if (!ids) abort();
    if (ee_wordpiece_encode_opts(g_wp, d, size, o, ids, q + 1, n, NULL) || *n != q) abort();
    return ids;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 8192) return 0;
    const char *d = (const char *)data;
    const int32_t V = ee_wordpiece_n_vocab(g_wp);
    size_t n, nb, nl, np;
    int32_t *ids = encode(d, size, NULL, &n);
    if (n < 2 || ids[0] != ee_wordpiece_cls(g_wp) || ids[n - 1] != ee_wordpiece_sep(g_wp)) abort();
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= V) abort();

    ee_wordpiece_opts bare_o = {.add_cls_sep = false, .parse_special = true};
    int32_t *bare = encode(d, size, &bare_o, &nb);
    if (nb != n - 2 || memcmp(bare, ids + 1, sizeof *ids * nb)) abort();

    char *lossy = malloc(3 * size + 1);
    if (!lossy) abort();
    size_t ll = ee_unicode_utf8_lossy(data, size, lossy);
    int32_t *lids = encode(lossy, ll, NULL, &nl);
    if (nl != n || memcmp(lids, ids, sizeof *ids * n)) abort();

    ee_wordpiece_opts plain_o = {.add_cls_sep = true, .parse_special = false};
    int32_t *plain = encode(d, size, &plain_o, &np);
    for (size_t i = 1; i + 1 < np; i++)
        if (ee_wordpiece_is_special(g_wp, plain[i]) && plain[i] != ee_wordpiece_unk(g_wp)) abort();

    /* Decode what was encoded, and the input's bytes read as ids. */
    ee_err err;
    char *text;
    size_t tl;
    for (int skip = 0; skip < 2; skip++) {
        if (ee_wordpiece_decode(g_wp, ids, n, skip, &text, &tl, &err)) abort();
        check_utf8(text, tl);
        free(text);
    }
    size_t k = size / 2;
    int32_t *raw = malloc(sizeof *raw * (k + 1));
    if (!raw) abort();
    for (size_t i = 0; i < k; i++) raw[i] = (int32_t)((data[2 * i] | data[2 * i + 1] << 8) % V);
    if (ee_wordpiece_decode(g_wp, raw, k, size & 1, &text, &tl, &err)) abort();
    check_utf8(text, tl);
    free(text);

    /* The normalizer alone: valid UTF-8, and the same length whatever the
     * room. */
    char small[16];
    size_t full = ee_wp_normalize(d, size, small, sizeof small);
    char *norm = malloc(full + 1);
    if (!norm || ee_wp_normalize(d, size, norm, full + 1) != full) abort();
    check_utf8(norm, full);

    free(norm);
    free(raw);
    free(plain);
    free(lids);
    free(lossy);
    free(bare);
    free(ids);
    return 0;
}
