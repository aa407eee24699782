/* ee_tokenizer: GPT-2 byte-level BPE with the "smollm" pre-tokenizer.
 *
 * Exactness target: HF `tokenizers` (BPE model, Digits + ByteLevel
 * pre-tokenizers, ByteLevel decoder), which is what SmolLM2 was trained
 * with; llama.cpp agrees with it for this model. Notably HF never shortcuts
 * a word that is itself a vocabulary entry, so neither do we.
 *
 * Encoding runs on ids only: each byte of a pre-tokenized word starts as
 * its byte-level token, and merges are looked up by (left id, right id) in
 * a hash table built at open. The tokenizer is immutable after open (no
 * word cache), so one instance can serve many threads. */
#include "ee_tokenizer.h"

#include "ee_chat_tmpl.h"

#include "ee_tok_pretok.h"
#include "ee_unicode.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct ee_tok_merge {
    int32_t a, b;     /* pair of ids; a == -1 marks an empty slot */
    int32_t rank;     /* index in the merges list */
    int32_t result;   /* id of the merged token */
} ee_tok_merge;

struct ee_tokenizer {
    int32_t n_vocab;
    /* Token strings (as stored) in one arena, NUL after each. */
    char *str_arena;
    uint32_t *str_off, *str_len;
    /* Decoded bytes of each token (the ByteLevel decoder's output). */
    char *piece_arena;
    uint32_t *piece_off, *piece_len;
    uint8_t *type;

    /* string -> id, open addressing, -1 empty. */
    int32_t *vocab_slots;
    uint32_t vocab_mask;
    /* (a, b) -> merge, open addressing. */
    ee_tok_merge *merge_slots;
    uint32_t merge_mask;
    /* Token of each byte's byte-level character, -1 if absent. */
    int32_t byte_tok[256];

    /* Control and user-defined tokens, longest first, for parse_special. */
    int32_t *special;
    int n_special;
    uint8_t special_first[256];  /* 1 if some special token starts with it */

    int32_t bos, eos;
    bool add_bos;
    int32_t eog[16];
    int n_eog;

    ee_chat_tmpl chat;          /* tokenizer.chat_template, recognised */
};

/* ---- GPT-2 bytes_to_unicode ------------------------------------------- */

/* Printable Latin-1 bytes map to themselves; the other 68 bytes map, in
 * byte order, to U+0100 upwards (space -> U+0120, newline -> U+010A). */
static bool byte_is_printable(unsigned b) {
    return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

static void byte_level_tables(uint32_t byte_to_cp[256], int16_t cp_to_byte[324]) {
    for (int i = 0; i < 324; i++) cp_to_byte[i] = -1;
    unsigned n = 0;
    for (unsigned b = 0; b < 256; b++) {
        uint32_t cp = byte_is_printable(b) ? b : 256 + n++;
        byte_to_cp[b] = cp;
        cp_to_byte[cp] = (int16_t)b;
    }
}

/* ---- hashing ----------------------------------------------------------- */

static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull;  /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h ^ (h >> 29);
}

static uint64_t hash_pair(int32_t a, int32_t b) {
    uint64_t x = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

static uint32_t table_size(uint64_t n) {
    uint32_t cap = 16;
    while (cap < 2 * n) cap *= 2;
    return cap;
}

int32_t ee_tokenizer_token_id(const ee_tokenizer *t, const char *str, size_t len) {
    if (!t || (!str && len)) return -1;
    uint32_t i = (uint32_t)hash_bytes(str, len) & t->vocab_mask;
    for (;; i = (i + 1) & t->vocab_mask) {
        int32_t id = t->vocab_slots[i];
        if (id < 0) return -1;
        if (t->str_len[id] == len && memcmp(t->str_arena + t->str_off[id], str, len) == 0)
            return id;
    }
}

/* Later duplicates replace earlier ones (HF builds a dict, llama.cpp
 * assigns token_to_id in order: the highest id wins in both). */
static void vocab_insert(ee_tokenizer *t, int32_t id) {
    const char *s = t->str_arena + t->str_off[id];
    size_t len = t->str_len[id];
    uint32_t i = (uint32_t)hash_bytes(s, len) & t->vocab_mask;
    for (;; i = (i + 1) & t->vocab_mask) {
        int32_t o = t->vocab_slots[i];
        if (o < 0 || (t->str_len[o] == len && memcmp(t->str_arena + t->str_off[o], s, len) == 0)) {
            t->vocab_slots[i] = id;
            return;
        }
    }
}

static const ee_tok_merge *merge_find(const ee_tokenizer *t, int32_t a, int32_t b) {
    uint32_t i = (uint32_t)hash_pair(a, b) & t->merge_mask;
    for (;; i = (i + 1) & t->merge_mask) {
        const ee_tok_merge *m = &t->merge_slots[i];
        if (m->a < 0) return NULL;
        if (m->a == a && m->b == b) return m;
    }
}

/* The first of duplicate merges keeps its rank (llama.cpp's emplace). */
static void merge_insert(ee_tokenizer *t, int32_t a, int32_t b, int32_t rank, int32_t result) {
    uint32_t i = (uint32_t)hash_pair(a, b) & t->merge_mask;
    for (;; i = (i + 1) & t->merge_mask) {
        ee_tok_merge *m = &t->merge_slots[i];
        if (m->a < 0) {
            *m = (ee_tok_merge){a, b, rank, result};
            return;
        }
        if (m->a == a && m->b == b) return;
    }
}

/* ---- open / close ------------------------------------------------------ */

void ee_tokenizer_close(ee_tokenizer *t) {
    if (!t) return;
    free(t->str_arena);
    free(t->str_off);
    free(t->str_len);
    free(t->piece_arena);
    free(t->piece_off);
    free(t->piece_len);
    free(t->type);
    free(t->vocab_slots);
    free(t->merge_slots);
    free(t->special);
    ee_chat_tmpl_free(&t->chat);
    free(t);
}

/* A token's decoded bytes, as HF's ByteLevel decoder produces them: if
 * every character is a byte-level character, the bytes they stand for;
 * otherwise (e.g. a special token containing a real space) the string's own
 * bytes. Writes at most len bytes to out; returns the length. */
static size_t token_bytes(const char *s, size_t len, const int16_t cp_to_byte[324], char *out) {
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        int k = ee_unicode_utf8_decode((const unsigned char *)s + i, len - i, &cp);
        if (k == 0 || cp >= 324 || cp_to_byte[cp] < 0) {
            memcpy(out, s, len);
            return len;
        }
        out[n++] = (char)cp_to_byte[cp];
        i += (size_t)k;
    }
    return n;
}

typedef struct {
    uint32_t len;
    int32_t id;
} special_key;

/* Longest first; equal lengths by descending id, so that of two identical
 * strings the highest id wins, as in the vocabulary map. */
static int cmp_special(const void *pa, const void *pb) {
    const special_key *a = pa, *b = pb;
    if (a->len != b->len) return a->len > b->len ? -1 : 1;
    return a->id > b->id ? -1 : a->id < b->id;
}

static void add_eog(ee_tokenizer *t, int32_t id) {
    if (id < 0) return;
    for (int i = 0; i < t->n_eog; i++)
        if (t->eog[i] == id) return;
    if (t->n_eog < (int)(sizeof t->eog / sizeof t->eog[0])) t->eog[t->n_eog++] = id;
}

static int cmp_i32(const void *pa, const void *pb) {
    int32_t a = *(const int32_t *)pa, b = *(const int32_t *)pb;
    return a < b ? -1 : a > b;
}

static int check_id(int32_t id, int32_t n_vocab, const char *what, ee_err *err) {
    if (id < -1 || id >= n_vocab)
        return ee_err_set(err, "tokenizer: %s %d out of range (vocabulary has %d tokens)",
                          what, id, n_vocab);
    return 0;
}

ee_tokenizer *ee_tokenizer_open_arrays(const ee_tokenizer_arrays *a, ee_err *err) {
    if (!a) {
        ee_err_set(err, "tokenizer: no arrays given");
        return NULL;
    }
    if (a->n_vocab <= 0 || !a->tokens) {
        ee_err_set(err, "tokenizer: empty vocabulary (n_vocab %d)", a->n_vocab);
        return NULL;
    }
    if (a->n_merges < 0 || (a->n_merges > 0 && !a->merges)) {
        ee_err_set(err, "tokenizer: bad merges list (n_merges %d)", a->n_merges);
        return NULL;
    }
    const char *pre = a->pre ? a->pre : "smollm";
    if (strcmp(pre, "smollm") != 0) {
        ee_err_set(err, "tokenizer: pre-tokenizer '%s' is not supported (only 'smollm')", pre);
        return NULL;
    }
    if (check_id(a->bos_id, a->n_vocab, "bos id", err) || check_id(a->eos_id, a->n_vocab, "eos id", err) ||
        check_id(a->eot_id, a->n_vocab, "eot id", err) || check_id(a->eom_id, a->n_vocab, "eom id", err))
        return NULL;

    const int32_t nv = a->n_vocab;
    ee_tokenizer *t = calloc(1, sizeof *t);
    if (!t) goto oom;
    t->n_vocab = nv;
    t->bos = a->bos_id;
    t->eos = a->eos_id;
    t->add_bos = a->add_bos;

    /* Token strings. */
    uint64_t total = 0;
    for (int32_t i = 0; i < nv; i++) {
        if (!a->tokens[i]) {
            ee_err_set(err, "tokenizer: token %d is NULL", i);
            goto fail;
        }
        uint64_t len = a->token_lens ? a->token_lens[i] : strlen(a->tokens[i]);
        if (len > 0xFFFF) {
            ee_err_set(err, "tokenizer: token %d is %llu bytes long (limit 65535)", i,
                       (unsigned long long)len);
            goto fail;
        }
        total += len + 1;
    }
    if (total > 0x7FFFFFFF) {
        ee_err_set(err, "tokenizer: token strings total %llu bytes (limit 2 GiB)",
                   (unsigned long long)total);
        goto fail;
    }
    t->str_arena = malloc(total);
    t->piece_arena = malloc(total);
    t->str_off = malloc(sizeof *t->str_off * (size_t)nv);
    t->str_len = malloc(sizeof *t->str_len * (size_t)nv);
    t->piece_off = malloc(sizeof *t->piece_off * (size_t)nv);
    t->piece_len = malloc(sizeof *t->piece_len * (size_t)nv);
    t->type = malloc((size_t)nv);
    t->vocab_mask = table_size((uint64_t)nv) - 1;
    t->vocab_slots = malloc(sizeof *t->vocab_slots * ((size_t)t->vocab_mask + 1));
    if (!t->str_arena || !t->piece_arena || !t->str_off || !t->str_len || !t->piece_off ||
        !t->piece_len || !t->type || !t->vocab_slots)
        goto oom;
    memset(t->vocab_slots, 0xFF, sizeof *t->vocab_slots * ((size_t)t->vocab_mask + 1));

    uint32_t byte_to_cp[256];
    int16_t cp_to_byte[324];
    byte_level_tables(byte_to_cp, cp_to_byte);

    uint32_t off = 0, poff = 0;
    for (int32_t i = 0; i < nv; i++) {
        size_t len = a->token_lens ? (size_t)a->token_lens[i] : strlen(a->tokens[i]);
        memcpy(t->str_arena + off, a->tokens[i], len);
        t->str_arena[off + len] = '\0';
        t->str_off[i] = off;
        t->str_len[i] = (uint32_t)len;
        off += (uint32_t)len + 1;
        size_t pl = token_bytes(a->tokens[i], len, cp_to_byte, t->piece_arena + poff);
        t->piece_off[i] = poff;
        t->piece_len[i] = (uint32_t)pl;
        poff += (uint32_t)pl;
        int32_t ty = a->types ? a->types[i] : EE_TOKTYPE_NORMAL;
        if (ty < EE_TOKTYPE_UNDEFINED || ty > EE_TOKTYPE_BYTE) {
            ee_err_set(err, "tokenizer: token %d has type %d (valid 0..6)", i, ty);
            goto fail;
        }
        t->type[i] = (uint8_t)ty;
        vocab_insert(t, i);
    }

    /* Byte-level alphabet. */
    for (unsigned b = 0; b < 256; b++) {
        unsigned char u[4];
        int k = ee_unicode_utf8_encode(byte_to_cp[b], u);
        t->byte_tok[b] = ee_tokenizer_token_id(t, (const char *)u, (size_t)k);
    }

    /* Merges. */
    t->merge_mask = table_size((uint64_t)a->n_merges) - 1;
    t->merge_slots = malloc(sizeof *t->merge_slots * ((size_t)t->merge_mask + 1));
    if (!t->merge_slots) goto oom;
    for (size_t i = 0; i <= t->merge_mask; i++) t->merge_slots[i].a = -1;
    {
        ee_buf buf = {0};
        for (int32_t r = 0; r < a->n_merges; r++) {
            const char *m = a->merges[r];
            const char *sp = m ? strchr(m, ' ') : NULL;
            if (!sp || sp == m || sp[1] == '\0') {
                ee_buf_free(&buf);
                ee_err_set(err, "tokenizer: merge %d '%s' is not of the form 'A B'", r, m ? m : "(null)");
                goto fail;
            }
            size_t la = (size_t)(sp - m), lb = strlen(sp + 1);
            ee_buf_clear(&buf);
            if (ee_buf_append(&buf, m, la, NULL) || ee_buf_append(&buf, sp + 1, lb, NULL)) {
                ee_buf_free(&buf);
                goto oom;
            }
            int32_t ia = ee_tokenizer_token_id(t, m, la);
            int32_t ib = ee_tokenizer_token_id(t, sp + 1, lb);
            int32_t iab = ee_tokenizer_token_id(t, buf.p, buf.len);
            if (ia < 0 || ib < 0 || iab < 0) {
                ee_buf_free(&buf);
                ee_err_set(err, "tokenizer: merge %d '%s': %s not in the vocabulary", r, m,
                           ia < 0 ? "left part" : ib < 0 ? "right part" : "merged token");
                goto fail;
            }
            merge_insert(t, ia, ib, r, iab);
        }
        ee_buf_free(&buf);
    }

    /* Special tokens for parse_special, longest first. */
    for (int32_t i = 0; i < nv; i++)
        if ((t->type[i] == EE_TOKTYPE_CONTROL || t->type[i] == EE_TOKTYPE_USER_DEFINED) && t->str_len[i] > 0)
            t->n_special++;
    if (t->n_special) {
        t->special = malloc(sizeof *t->special * (size_t)t->n_special);
        special_key *keys = malloc(sizeof *keys * (size_t)t->n_special);
        if (!t->special || !keys) {
            free(keys);
            goto oom;
        }
        int k = 0;
        for (int32_t i = 0; i < nv; i++)
            if ((t->type[i] == EE_TOKTYPE_CONTROL || t->type[i] == EE_TOKTYPE_USER_DEFINED) &&
                t->str_len[i] > 0) {
                keys[k++] = (special_key){t->str_len[i], i};
                t->special_first[(unsigned char)t->str_arena[t->str_off[i]]] = 1;
            }
        qsort(keys, (size_t)t->n_special, sizeof *keys, cmp_special);
        for (k = 0; k < t->n_special; k++) t->special[k] = keys[k].id;
        free(keys);
    }

    /* End of generation: eos/eot/eom plus llama.cpp's well-known names. */
    add_eog(t, a->eos_id);
    add_eog(t, a->eot_id);
    add_eog(t, a->eom_id);
    static const char *const eog_names[] = {"<|endoftext|>", "<|im_end|>", "<|eot_id|>", "<|eom_id|>",
                                            "<|end|>", "<end_of_turn>", "<|end_of_text|>", "<EOT>"};
    for (size_t i = 0; i < sizeof eog_names / sizeof eog_names[0]; i++)
        add_eog(t, ee_tokenizer_token_id(t, eog_names[i], strlen(eog_names[i])));
    qsort(t->eog, (size_t)t->n_eog, sizeof t->eog[0], cmp_i32);

    if (ee_chat_tmpl_parse(&t->chat, a->chat_template, err)) goto fail;
    return t;

oom:
    ee_err_set(err, "tokenizer: out of memory");
fail:
    ee_tokenizer_close(t);
    return NULL;
}

/* Optional id key: absent -> -1. */
static int gguf_opt_id(const ee_gguf *g, const char *key, int32_t *out, ee_err *err) {
    *out = -1;
    if (!ee_gguf_find_kv(g, key)) return 0;
    uint32_t v;
    if (ee_gguf_get_u32(g, key, &v, err)) return -1;
    if (v > INT32_MAX) return ee_err_set(err, "%s: %u out of range", key, v);
    *out = (int32_t)v;
    return 0;
}

ee_tokenizer *ee_tokenizer_open_gguf(const ee_gguf *g, ee_err *err) {
    if (!g) {
        ee_err_set(err, "tokenizer: no GGUF file");
        return NULL;
    }
    const char *model = ee_gguf_get_str(g, "tokenizer.ggml.model", err);
    if (!model) goto fail;
    if (strcmp(model, "gpt2") != 0) {
        ee_err_set(err, "tokenizer.ggml.model is '%s': only 'gpt2' (byte-level BPE) is supported", model);
        goto fail;
    }
    const char *pre = ee_gguf_get_str(g, "tokenizer.ggml.pre", err);
    if (!pre) goto fail;
    if (strcmp(pre, "smollm") != 0) {
        ee_err_set(err, "tokenizer.ggml.pre is '%s': only 'smollm' is supported", pre);
        goto fail;
    }
    const ee_gguf_kv *toks = ee_gguf_get_arr(g, "tokenizer.ggml.tokens", EE_GGUF_STRING, err);
    if (!toks) goto fail;
    if (toks->n == 0 || toks->n > INT32_MAX) {
        ee_err_set(err, "tokenizer.ggml.tokens: %llu tokens", (unsigned long long)toks->n);
        goto fail;
    }
    int32_t nv = (int32_t)toks->n;

    int32_t *types = NULL;
    if (ee_gguf_find_kv(g, "tokenizer.ggml.token_type")) {
        const ee_gguf_kv *ty = ee_gguf_get_arr(g, "tokenizer.ggml.token_type", EE_GGUF_I32, err);
        if (!ty) goto fail;
        if (ty->n != toks->n) {
            ee_err_set(err, "tokenizer.ggml.token_type has %llu entries, tokens has %d",
                       (unsigned long long)ty->n, nv);
            goto fail;
        }
        types = malloc(sizeof *types * (size_t)nv);
        if (!types) {
            ee_err_set(err, "tokenizer: out of memory");
            goto fail;
        }
        memcpy(types, ty->arr, sizeof *types * (size_t)nv);  /* little-endian host */
    }

    const char *const *merges = NULL;
    int32_t n_merges = 0;
    if (ee_gguf_find_kv(g, "tokenizer.ggml.merges")) {
        const ee_gguf_kv *mk = ee_gguf_get_arr(g, "tokenizer.ggml.merges", EE_GGUF_STRING, err);
        if (!mk) goto fail_free;
        if (mk->n > INT32_MAX) {
            ee_err_set(err, "tokenizer.ggml.merges: %llu merges", (unsigned long long)mk->n);
            goto fail_free;
        }
        merges = (const char *const *)mk->strs;
        n_merges = (int32_t)mk->n;
    }

    ee_tokenizer_arrays a = {
        .n_vocab = nv,
        .tokens = (const char *const *)toks->strs,
        .token_lens = toks->str_lens,
        .types = types,
        .n_merges = n_merges,
        .merges = merges,
        .pre = pre,
    };
    if (gguf_opt_id(g, "tokenizer.ggml.bos_token_id", &a.bos_id, err) ||
        gguf_opt_id(g, "tokenizer.ggml.eos_token_id", &a.eos_id, err) ||
        gguf_opt_id(g, "tokenizer.ggml.eot_token_id", &a.eot_id, err) ||
        gguf_opt_id(g, "tokenizer.ggml.eom_token_id", &a.eom_id, err))
        goto fail_free;
    if (ee_gguf_find_kv(g, "tokenizer.ggml.add_bos_token") &&
        ee_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &a.add_bos, err))
        goto fail_free;
    const ee_gguf_kv *tmpl = ee_gguf_find_kv(g, "tokenizer.chat_template");
    if (tmpl) {
        if (tmpl->type != EE_GGUF_STRING) {
            ee_err_set(err, "tokenizer.chat_template is not a string (type %d)", (int)tmpl->type);
            goto fail_free;
        }
        a.chat_template = tmpl->str;
    }

    ee_tokenizer *t = ee_tokenizer_open_arrays(&a, err);
    free(types);
    return t;

    /* Errors name the key; callers add the file path (they know it). */
fail_free:
    free(types);
fail:
    return NULL;
}

/* ---- accessors --------------------------------------------------------- */

int32_t ee_tokenizer_n_vocab(const ee_tokenizer *t) { return t->n_vocab; }
int32_t ee_tokenizer_bos(const ee_tokenizer *t) { return t->bos; }
int32_t ee_tokenizer_eos(const ee_tokenizer *t) { return t->eos; }
bool ee_tokenizer_add_bos(const ee_tokenizer *t) { return t->add_bos; }

int ee_tokenizer_eog_ids(const ee_tokenizer *t, int32_t *out, int cap) {
    for (int i = 0; i < t->n_eog && i < cap; i++) out[i] = t->eog[i];
    return t->n_eog;
}

bool ee_tokenizer_is_eog(const ee_tokenizer *t, int32_t id) {
    for (int i = 0; i < t->n_eog; i++)
        if (t->eog[i] == id) return true;
    return false;
}

bool ee_tokenizer_is_control(const ee_tokenizer *t, int32_t id) {
    return id >= 0 && id < t->n_vocab && t->type[id] == EE_TOKTYPE_CONTROL;
}

int32_t ee_tokenizer_token_type(const ee_tokenizer *t, int32_t id) {
    return id >= 0 && id < t->n_vocab ? t->type[id] : -1;
}

const char *ee_tokenizer_token_str(const ee_tokenizer *t, int32_t id) {
    return id >= 0 && id < t->n_vocab ? t->str_arena + t->str_off[id] : NULL;
}

/* ---- encode ------------------------------------------------------------ */

const ee_chat_tmpl *ee_tokenizer_chat_tmpl(const ee_tokenizer *t) { return &t->chat; }

typedef struct {
    int32_t id;          /* -1 once merged into its left neighbour */
    int32_t prev, next;  /* -1 at the ends */
} bpe_sym;

typedef struct {
    int32_t rank, pos, result;
} bpe_cand;

typedef struct {
    const ee_tokenizer *t;
    ee_ids *out;
    ee_err *err;
    bpe_sym *sym;
    bpe_cand *heap;
    size_t cap;  /* symbols; the heap has 3 * cap */
} bpe_ctx;

/* Min-heap on (rank, pos): lowest rank first, leftmost on ties (HF's
 * Word::merge_all and llama.cpp's bigram queue order). */
static bool cand_less(const bpe_cand *x, const bpe_cand *y) {
    return x->rank != y->rank ? x->rank < y->rank : x->pos < y->pos;
}

static void heap_push(bpe_cand *h, size_t *n, bpe_cand c) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!cand_less(&c, &h[p])) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = c;
}

static bpe_cand heap_pop(bpe_cand *h, size_t *n) {
    bpe_cand top = h[0], last = h[--*n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1;
        if (l >= *n) break;
        size_t m = (l + 1 < *n && cand_less(&h[l + 1], &h[l])) ? l + 1 : l;
        if (!cand_less(&h[m], &last)) break;
        h[i] = h[m];
        i = m;
    }
    if (*n) h[i] = last;
    return top;
}

static void push_pair(const ee_tokenizer *t, const bpe_sym *sym, bpe_cand *h, size_t *nh, int32_t pos) {
    int32_t nx = sym[pos].next;
    if (nx < 0) return;
    const ee_tok_merge *m = merge_find(t, sym[pos].id, sym[nx].id);
    if (m) heap_push(h, nh, (bpe_cand){m->rank, pos, m->result});
}

static int bpe_word(const char *w, size_t len, void *vctx) {
    bpe_ctx *c = vctx;
    const ee_tokenizer *t = c->t;
    const unsigned char *s = (const unsigned char *)w;
    if (len > INT32_MAX) return ee_err_set(c->err, "tokenizer: word of %zu bytes too long", len);
    if (len == 1) return t->byte_tok[s[0]] < 0 ? 0 : ee_ids_push(c->out, t->byte_tok[s[0]], c->err);

    if (len > c->cap) {
        size_t cap = len < 64 ? 64 : len;
        bpe_sym *sym = realloc(c->sym, sizeof *sym * cap);
        if (!sym) return ee_err_set(c->err, "tokenizer: out of memory");
        c->sym = sym;
        /* Each merge queues at most two new pairs: n-1 + 2(n-1) < 3n. */
        bpe_cand *h = realloc(c->heap, sizeof *h * 3 * cap);
        if (!h) return ee_err_set(c->err, "tokenizer: out of memory");
        c->heap = h;
        c->cap = cap;
    }
    bpe_sym *sym = c->sym;
    bpe_cand *h = c->heap;
    size_t nh = 0;
    /* A byte without a token is dropped and its neighbours become adjacent,
     * as HF's BPE does with no unknown token (SmolLM2 lacks 21 byte tokens,
     * e.g. 0xC0, 0xF5..0xFF, which never occur in UTF-8). */
    int32_t n = 0;
    for (size_t i = 0; i < len; i++) {
        int32_t id = t->byte_tok[s[i]];
        if (id < 0) continue;
        sym[n] = (bpe_sym){id, n - 1, n + 1};
        n++;
    }
    if (n == 0) return 0;
    sym[n - 1].next = -1;
    for (int32_t i = 0; i + 1 < n; i++) push_pair(t, sym, h, &nh, i);

    while (nh) {
        bpe_cand top = heap_pop(h, &nh);
        int32_t p = top.pos;
        if (sym[p].id < 0) continue;  /* merged away */
        int32_t q = sym[p].next;
        if (q < 0) continue;
        /* Stale if either side changed since queued: symbols only grow, so
         * the pair then merges to a longer (different) token. */
        const ee_tok_merge *m = merge_find(t, sym[p].id, sym[q].id);
        if (!m || m->result != top.result) continue;
        sym[p].id = top.result;
        sym[p].next = sym[q].next;
        if (sym[q].next >= 0) sym[sym[q].next].prev = p;
        sym[q].id = -1;
        if (sym[p].prev >= 0) push_pair(t, sym, h, &nh, sym[p].prev);
        push_pair(t, sym, h, &nh, p);
    }
    for (int32_t i = 0; i >= 0; i = sym[i].next)
        if (ee_ids_push(c->out, sym[i].id, c->err)) return -1;
    return 0;
}

int ee_tokenizer_encode_append(const ee_tokenizer *t, const char *text, size_t len, ee_ids *out, ee_err *err) {
    if (len == 0) return 0;
    bpe_ctx c = {.t = t, .out = out, .err = err};
    int rc = ee_tok_pretokenize(text, len, bpe_word, &c);
    free(c.sym);
    free(c.heap);
    return rc ? -1 : 0;
}

/* Leftmost-longest special token at text[i..len), or -1. HF matches added
 * tokens the same way (aho-corasick, LeftmostLongest). */
static int32_t special_at(const ee_tokenizer *t, const char *text, size_t i, size_t len) {
    if (!t->special_first[(unsigned char)text[i]]) return -1;
    for (int k = 0; k < t->n_special; k++) {
        int32_t id = t->special[k];
        size_t l = t->str_len[id];
        if (l <= len - i && memcmp(text + i, t->str_arena + t->str_off[id], l) == 0) return id;
    }
    return -1;
}

int ee_tokenizer_encode(const ee_tokenizer *t, const char *text, size_t len, bool add_bos,
                        bool parse_special, int32_t **ids, size_t *n_ids, ee_err *err) {
    if (!t || !ids || !n_ids || (!text && len))
        return ee_err_set(err, "tokenizer_encode: invalid arguments");
    *ids = NULL;
    *n_ids = 0;
    ee_ids b = {0};
    if (add_bos && t->add_bos && t->bos >= 0 && ee_ids_push(&b, t->bos, err)) goto fail;
    if (parse_special && t->n_special) {
        size_t frag = 0;
        for (size_t i = 0; i < len;) {
            int32_t id = special_at(t, text, i, len);
            if (id < 0) {
                i++;
                continue;
            }
            if (ee_tokenizer_encode_append(t, text + frag, i - frag, &b, err) || ee_ids_push(&b, id, err))
                goto fail;
            i += t->str_len[id];
            frag = i;
        }
        if (ee_tokenizer_encode_append(t, text + frag, len - frag, &b, err)) goto fail;
    } else if (ee_tokenizer_encode_append(t, text, len, &b, err)) {
        goto fail;
    }
    if (!b.v && !(b.v = malloc(sizeof *b.v))) {  /* always hand back a buffer */
        ee_err_set(err, "tokenizer: out of memory");
        goto fail;
    }
    *ids = b.v;
    *n_ids = b.n;
    return 0;
fail:
    free(b.v);
    return -1;
}

/* ---- decode ------------------------------------------------------------ */

int ee_tokenizer_piece(const ee_tokenizer *t, int32_t id, bool render_special, char *buf, size_t cap) {
    if (!t || id < 0 || id >= t->n_vocab) return -1;
    if (t->type[id] == EE_TOKTYPE_CONTROL && !render_special) return 0;
    size_t n = t->piece_len[id];
    if (buf && cap) memcpy(buf, t->piece_arena + t->piece_off[id], n < cap ? n : cap);
    return (int)n;
}

int ee_tokenizer_decode(const ee_tokenizer *t, const int32_t *ids, size_t n, bool render_special, char **text,
                        size_t *len, ee_err *err) {
    if (!t || !text || (!ids && n)) return ee_err_set(err, "tokenizer_decode: invalid arguments");
    *text = NULL;
    if (len) *len = 0;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= t->n_vocab)
            return ee_err_set(err, "tokenizer_decode: id %d at index %zu out of range (vocabulary %d)", ids[i],
                              i, t->n_vocab);
        if (t->type[ids[i]] != EE_TOKTYPE_CONTROL || render_special) total += t->piece_len[ids[i]];
    }
    char *s = malloc(total + 1);
    if (!s) return ee_err_set(err, "tokenizer_decode: out of memory");
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t id = ids[i];
        if (t->type[id] == EE_TOKTYPE_CONTROL && !render_special) continue;
        memcpy(s + o, t->piece_arena + t->piece_off[id], t->piece_len[id]);
        o += t->piece_len[id];
    }
    s[o] = '\0';
    *text = s;
    if (len) *len = o;
    return 0;
}

int ee_tokenizer_decode_lossy(const ee_tokenizer *t, const int32_t *ids, size_t n, bool render_special,
                              char **text, size_t *len, ee_err *err) {
    char *raw;
    size_t rl;
    if (ee_tokenizer_decode(t, ids, n, render_special, &raw, &rl, err)) return -1;
    if (len) *len = 0;
    char *s = rl <= (SIZE_MAX - 1) / 3 ? malloc(3 * rl + 1) : NULL;
    if (!s) {
        free(raw);
        return ee_err_set(err, "tokenizer_decode: out of memory");
    }
    size_t o = ee_unicode_utf8_lossy((const unsigned char *)raw, rl, s);
    free(raw);
    s[o] = '\0';
    *text = s;
    if (len) *len = o;
    return 0;
}
