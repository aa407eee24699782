/* libFuzzer target: the tokenizer (encode and decode) with the real SmolLM2
 * vocabulary ($EE_FUZZ_MODEL, default the cached model file). Properties:
 * encoded ids are in range; decode(encode(x)) == x for every x without the
 * bytes SmolLM2 has no token for (ee_tokenizer.h); any id sequence decodes,
 * and the lossy decode is valid UTF-8. */
#include "ee_gguf.h"
#include "ee_tokenizer.h"
#include "ee_unicode.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static ee_gguf *g_gguf;
static ee_tokenizer *g_tok;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    const char *path = getenv("EE_FUZZ_MODEL");
    if (!path) path = ".cache/models/SmolLM2-135M-Instruct.Q4_1.gguf";
    ee_err err;
    g_gguf = ee_gguf_open(path, &err);
    if (g_gguf) g_tok = ee_tokenizer_open_gguf(g_gguf, &err);
    if (!g_tok) {
        fprintf(stderr, "fuzz_tokenizer: %s: %s (set EE_FUZZ_MODEL)\n", path, err.msg);
        exit(2);
    }
    return 0;
}

/* Whether some byte of d has no byte-level token (encoding it alone gives
 * no id): such bytes are dropped, as HF and llama.cpp drop them. */
static int has_missing_byte(const uint8_t *d, size_t n) {
    for (size_t i = 0; i < n; i++) {
        int32_t *ids = NULL;
        size_t k = 0;
        int bad = ee_tokenizer_encode(g_tok, (const char *)d + i, 1, false, false, &ids, &k, NULL) ||
                  k == 0;
        free(ids);
        if (bad) return 1;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 4096) return 0;
    const int32_t V = ee_tokenizer_n_vocab(g_tok);
    ee_err err;
    for (int special = 0; special < 2; special++) {
        int32_t *ids = NULL;
        size_t n = 0;
        if (ee_tokenizer_encode(g_tok, (const char *)data, size, false, special, &ids, &n, &err))
            abort(); /* encoding never fails */
        for (size_t i = 0; i < n; i++)
            if (ids[i] < 0 || ids[i] >= V) abort();
        char *text = NULL;
        size_t len = 0;
        if (ee_tokenizer_decode(g_tok, ids, n, true, &text, &len, &err)) abort();
        if (!special && (len != size || memcmp(text, data, size)) && !has_missing_byte(data, size))
            abort(); /* lossless on every byte the vocabulary has */
        free(text);
        free(ids);
    }
    /* The bytes as ids: every in-range sequence decodes to valid UTF-8. */
    size_t n = size / 4;
    int32_t *ids = malloc(sizeof(int32_t) * (n + 1));
    if (!ids) return 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t v;
        memcpy(&v, data + 4 * i, 4);
        ids[i] = (int32_t)(v % (uint32_t)V);
    }
    char *text = NULL;
    size_t len = 0;
    if (ee_tokenizer_decode_lossy(g_tok, ids, n, (size & 1) != 0, &text, &len, &err)) abort();
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        int k = ee_unicode_utf8_decode((const unsigned char *)text + i, len - i, &cp);
        if (k <= 0) abort();
        i += (size_t)k;
    }
    free(text);
    free(ids);
    return 0;
}
