/* ee_wordpiece_open_gguf: a WordPiece vocabulary from GGUF metadata in
 * llama.cpp's "phantom space" form (see ee_wordpiece.h), turned back into
 * the WordPiece form tokenizers uses. */
#include "ee_wordpiece_impl.h"

#include <stdlib.h>
#include <string.h>

#define PHANTOM "\xE2\x96\x81" /* U+2581 */

/* Optional id key: absent -> -1. */
static int opt_id(const ee_gguf *g, const char *key, int32_t *out, ee_err *err) {
    *out = -1;
    if (!ee_gguf_find_kv(g, key)) return 0;
    uint32_t v;
    if (ee_gguf_get_u32(g, key, &v, err)) return -1;
    if (v > INT32_MAX) return ee_err_set(err, "%s: %u out of range", key, v);
    *out = (int32_t)v;
    return 0;
}

/* First of the keys present; else the id of the token named fallback. */
static int special_id(const ee_gguf *g, const char *const *keys, const char *fallback,
                      const ee_wordpiece_arrays *a, int32_t *out, ee_err *err) {
    for (; *keys; keys++) {
        if (opt_id(g, *keys, out, err)) return -1;
        if (*out >= 0) return 0;
    }
    if (!fallback) return 0;
    for (int32_t i = 0; i < a->n_vocab; i++)
        if (a->token_lens[i] == strlen(fallback) && memcmp(a->tokens[i], fallback, a->token_lens[i]) == 0)
            *out = i;  /* the highest id, as the vocabulary map */
    return 0;
}

int ee_wordpiece_open_gguf(ee_wordpiece **out, const ee_gguf *g, ee_err *err) {
    if (!out) return ee_err_set(err, "wordpiece: no output pointer");
    *out = NULL;
    if (!g) return ee_err_set(err, "wordpiece: no GGUF file");
    const char *model = ee_gguf_get_str(g, "tokenizer.ggml.model", err);
    if (!model) return -1;
    if (strcmp(model, "bert") != 0)
        return ee_err_set(err, "tokenizer.ggml.model is '%s': the WordPiece tokenizer reads 'bert'", model);
    const ee_gguf_kv *toks = ee_gguf_get_arr(g, "tokenizer.ggml.tokens", EE_GGUF_STRING, err);
    if (!toks) return -1;
    if (toks->n == 0 || toks->n > INT32_MAX)
        return ee_err_set(err, "tokenizer.ggml.tokens: %llu tokens", (unsigned long long)toks->n);
    const int32_t nv = (int32_t)toks->n;
    const int32_t *types = NULL;
    if (ee_gguf_find_kv(g, "tokenizer.ggml.token_type")) {
        const ee_gguf_kv *ty = ee_gguf_get_arr(g, "tokenizer.ggml.token_type", EE_GGUF_I32, err);
        if (!ty) return -1;
        if (ty->n != toks->n)
            return ee_err_set(err, "tokenizer.ggml.token_type has %llu entries, tokens has %d",
                              (unsigned long long)ty->n, nv);
        types = ty->arr; /* little-endian host, as the reader's other users assume */
    }

    /* WordPiece forms in one buffer: at most 2 bytes longer each. */
    uint64_t total = 0;
    for (int32_t i = 0; i < nv; i++) total += toks->str_lens[i] + 2;
    char *buf = malloc(total ? total : 1);
    const char **strs = malloc(sizeof *strs * (size_t)nv);
    uint64_t *lens = malloc(sizeof *lens * (size_t)nv);
    if (!buf || !strs || !lens) {
        free(buf);
        free(strs);
        free(lens);
        return ee_err_set(err, "wordpiece: out of memory");
    }
    char *p = buf;
    for (int32_t i = 0; i < nv; i++) {
        const char *s = toks->strs[i];
        size_t n = toks->str_lens[i];
        strs[i] = p;
        if (types && types[i] == EE_TOKTYPE_CONTROL) {
            memcpy(p, s, n); /* special tokens are stored as they are */
        } else if (n >= 3 && memcmp(s, PHANTOM, 3) == 0) {
            n -= 3;  /* a word-initial piece */
            memcpy(p, s + 3, n);
        } else if (n >= 2 && s[0] == '[' && s[n - 1] == ']') {
            memcpy(p, s, n); /* older converters: "[...]" kept as it is */
        } else {
            p[0] = p[1] = '#'; /* a continuation */
            memcpy(p + 2, s, n);
            n += 2;
        }
        lens[i] = n;
        p += n;
    }

    ee_wordpiece_arrays a = {.n_vocab = nv, .tokens = strs, .token_lens = lens, .types = types};
    static const char *const unk_keys[] = {"tokenizer.ggml.unknown_token_id", NULL};
    static const char *const cls_keys[] = {"tokenizer.ggml.cls_token_id", "tokenizer.ggml.bos_token_id", NULL};
    static const char *const sep_keys[] = {"tokenizer.ggml.seperator_token_id", "tokenizer.ggml.separator_token_id",
                                           "tokenizer.ggml.eos_token_id", NULL};
    static const char *const pad_keys[] = {"tokenizer.ggml.padding_token_id", NULL};
    static const char *const mask_keys[] = {"tokenizer.ggml.mask_token_id", NULL};
    int rc = -1;
    if (special_id(g, unk_keys, "[UNK]", &a, &a.unk_id, err) ||
        special_id(g, cls_keys, "[CLS]", &a, &a.cls_id, err) ||
        special_id(g, sep_keys, "[SEP]", &a, &a.sep_id, err) ||
        special_id(g, pad_keys, NULL, &a, &a.pad_id, err) || special_id(g, mask_keys, NULL, &a, &a.mask_id, err))
        goto done;
    rc = ee_wordpiece_open_arrays(out, &a, err);
done:
    free(buf);
    free(strs);
    free(lens);
    return rc;
}
