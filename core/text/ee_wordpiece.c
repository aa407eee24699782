/* ee_wordpiece: vocabulary, special tokens and encoding (WordPiece model
 * of tokenizers/src/models/wordpiece/mod.rs over the words of
 * ee_wp_normalize).
 *
 * WordPiece is greedy longest-match-first: from the start of the word, the
 * longest prefix in the vocabulary, then from there the longest "##"
 * continuation, and so on; a word with a position where nothing matches is
 * one [UNK]. Candidates longer than the vocabulary's longest token cannot
 * match, so each position tries at most that many, which keeps the cost
 * linear in the text. */
#include "ee_wordpiece_impl.h"

#include "ee_wp_normalize.h"

#include <stdlib.h>
#include <string.h>

/* ---- vocabulary hash --------------------------------------------------- */

#define FNV_INIT 1469598103934665603ull

static uint64_t fnv(uint64_t h, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

static uint64_t mix(uint64_t h) { return h ^ (h >> 29); }

/* Id of "##" + s[0..n) when cont, else of s[0..n), whose FNV-1a hash
 * (over the "##" too) is h; -1 if absent. */
static int32_t lookup_h(const ee_wordpiece *t, bool cont, const char *s, size_t n, uint64_t h) {
    h = mix(h);
    const uint32_t tag = (uint32_t)(h >> 32);
    const size_t p = cont ? 2 : 0;
    for (uint32_t i = (uint32_t)h & t->mask;; i = (i + 1) & t->mask) {
        int32_t id = t->slots[i].id;
        if (id < 0) return -1;
        if (t->slots[i].tag != tag || t->len[id] != n + p) continue;
        const char *k = t->arena + t->off[id];
        if ((!cont || (k[0] == '#' && k[1] == '#')) && memcmp(k + p, s, n) == 0) return id;
    }
}

int32_t ee_wordpiece_token_id(const ee_wordpiece *t, const char *str, size_t len) {
    if (!t || (!str && len)) return -1;
    return lookup_h(t, false, str ? str : "", len, fnv(FNV_INIT, str ? str : "", len));
}

/* Later duplicates replace earlier ones: the highest id wins. */
static void vocab_insert(ee_wordpiece *t, int32_t id) {
    const char *s = t->arena + t->off[id];
    size_t n = t->len[id];
    uint64_t h = mix(fnv(FNV_INIT, s, n));
    for (uint32_t i = (uint32_t)h & t->mask;; i = (i + 1) & t->mask) {
        int32_t o = t->slots[i].id;
        if (o < 0 || (t->len[o] == n && memcmp(t->arena + t->off[o], s, n) == 0)) {
            t->slots[i] = (struct ee_wp_slot){id, (uint32_t)(h >> 32)};
            return;
        }
    }
}

/* ---- open / close ------------------------------------------------------ */

void ee_wordpiece_close(ee_wordpiece *t) {
    if (!t) return;
    free(t->arena);
    free(t->off);
    free(t->len);
    free(t->type);
    free(t->slots);
    free(t->special);
    free(t);
}

static int check_id(int32_t id, int32_t n_vocab, bool required, const char *what, ee_err *err) {
    if (id < -1 || id >= n_vocab || (required && id < 0))
        return ee_err_set(err, "wordpiece: %s id %d %s (vocabulary has %d tokens)", what, id,
                          id < 0 ? "missing" : "out of range", n_vocab);
    return 0;
}

typedef struct {
    uint32_t len;
    int32_t id;
} special_key;

/* Longest first; equal lengths by descending id (the highest id wins). */
static int cmp_special(const void *pa, const void *pb) {
    const special_key *a = pa, *b = pb;
    if (a->len != b->len) return a->len > b->len ? -1 : 1;
    return a->id > b->id ? -1 : a->id < b->id;
}

static int build_specials(ee_wordpiece *t) {
    for (int32_t i = 0; i < t->n_vocab; i++)
        t->n_special += t->type[i] == EE_TOKTYPE_CONTROL && t->len[i] > 0;
    if (!t->n_special) return 0;
    t->special = malloc(sizeof *t->special * (size_t)t->n_special);
    special_key *keys = malloc(sizeof *keys * (size_t)t->n_special);
    if (!t->special || !keys) {
        free(keys);
        return -1;
    }
    int k = 0;
    for (int32_t i = 0; i < t->n_vocab; i++)
        if (t->type[i] == EE_TOKTYPE_CONTROL && t->len[i] > 0) {
            keys[k++] = (special_key){t->len[i], i};
            t->special_first[(unsigned char)t->arena[t->off[i]]] = 1;
        }
    qsort(keys, (size_t)t->n_special, sizeof *keys, cmp_special);
    for (k = 0; k < t->n_special; k++) t->special[k] = keys[k].id;
    free(keys);
    return 0;
}

int ee_wordpiece_open_arrays(ee_wordpiece **out, const ee_wordpiece_arrays *a, ee_err *err) {
    if (!out) return ee_err_set(err, "wordpiece: no output pointer");
    *out = NULL;
    if (!a || a->n_vocab <= 0 || !a->tokens)
        return ee_err_set(err, "wordpiece: empty vocabulary (n_vocab %d)", a ? a->n_vocab : 0);
    const int32_t nv = a->n_vocab;
    if (check_id(a->unk_id, nv, true, "unknown-token", err) || check_id(a->cls_id, nv, true, "cls", err) ||
        check_id(a->sep_id, nv, true, "separator", err) || check_id(a->pad_id, nv, false, "padding", err) ||
        check_id(a->mask_id, nv, false, "mask", err))
        return -1;

    uint64_t total = 0;
    for (int32_t i = 0; i < nv; i++) {
        if (!a->tokens[i]) return ee_err_set(err, "wordpiece: token %d is NULL", i);
        uint64_t len = a->token_lens ? a->token_lens[i] : strlen(a->tokens[i]);
        if (len > 0xFFFF)
            return ee_err_set(err, "wordpiece: token %d is %llu bytes long (limit 65535)", i,
                              (unsigned long long)len);
        int32_t ty = a->types ? a->types[i] : EE_TOKTYPE_NORMAL;
        if (ty < EE_TOKTYPE_UNDEFINED || ty > EE_TOKTYPE_BYTE)
            return ee_err_set(err, "wordpiece: token %d has type %d (valid 0..6)", i, ty);
        total += len + 1;
    }
    if (total > 0x7FFFFFFF)
        return ee_err_set(err, "wordpiece: token strings total %llu bytes (limit 2 GiB)",
                          (unsigned long long)total);

    ee_wordpiece *t = calloc(1, sizeof *t);
    if (!t) return ee_err_set(err, "wordpiece: out of memory");
    t->n_vocab = nv;
    t->unk = a->unk_id;
    t->cls = a->cls_id;
    t->sep = a->sep_id;
    t->pad = a->pad_id;
    t->mask_id = a->mask_id;
    uint32_t cap = 16;
    while (cap < 2 * (uint64_t)nv) cap *= 2;
    t->mask = cap - 1;
    t->arena = malloc(total);
    t->off = malloc(sizeof *t->off * (size_t)nv);
    t->len = malloc(sizeof *t->len * (size_t)nv);
    t->type = malloc((size_t)nv);
    t->slots = malloc(sizeof *t->slots * (size_t)cap);
    if (!t->arena || !t->off || !t->len || !t->type || !t->slots) goto oom;
    for (uint32_t i = 0; i < cap; i++) t->slots[i].id = -1;

    uint32_t off = 0;
    for (int32_t i = 0; i < nv; i++) {
        size_t len = a->token_lens ? (size_t)a->token_lens[i] : strlen(a->tokens[i]);
        memcpy(t->arena + off, a->tokens[i], len);
        t->arena[off + len] = '\0';
        t->off[i] = off;
        t->len[i] = (uint32_t)len;
        off += (uint32_t)len + 1;
        t->type[i] = (uint8_t)(a->types ? a->types[i] : EE_TOKTYPE_NORMAL);
        bool cont = len >= 2 && a->tokens[i][0] == '#' && a->tokens[i][1] == '#';
        uint32_t *mx = cont ? &t->max_cont : &t->max_first;
        uint32_t l = (uint32_t)(cont ? len - 2 : len);
        if (l > *mx) *mx = l;
        vocab_insert(t, i);
    }
    if (build_specials(t)) goto oom;
    *out = t;
    return 0;
oom:
    ee_wordpiece_close(t);
    return ee_err_set(err, "wordpiece: out of memory");
}

/* ---- accessors --------------------------------------------------------- */

int32_t ee_wordpiece_n_vocab(const ee_wordpiece *t) { return t->n_vocab; }
int32_t ee_wordpiece_unk(const ee_wordpiece *t) { return t->unk; }
int32_t ee_wordpiece_cls(const ee_wordpiece *t) { return t->cls; }
int32_t ee_wordpiece_sep(const ee_wordpiece *t) { return t->sep; }
int32_t ee_wordpiece_pad(const ee_wordpiece *t) { return t->pad; }
int32_t ee_wordpiece_mask(const ee_wordpiece *t) { return t->mask_id; }

const char *ee_wordpiece_token(const ee_wordpiece *t, int32_t id) {
    return t && id >= 0 && id < t->n_vocab ? t->arena + t->off[id] : NULL;
}

bool ee_wordpiece_is_special(const ee_wordpiece *t, int32_t id) {
    return t && id >= 0 && id < t->n_vocab && t->type[id] == EE_TOKTYPE_CONTROL;
}

/* ---- encode ------------------------------------------------------------ */

typedef struct {
    const ee_wordpiece *t;
    int32_t *ids;
    size_t cap, n;  /* n counts every id, written or not */
    uint64_t cont_h; /* hash of "##" */
} enc_ctx;

static void push(enc_ctx *c, int32_t id) {
    if (c->n < c->cap) c->ids[c->n] = id;
    c->n++;
}

static int wp_word(const char *w, size_t len, size_t n_chars, void *vctx) {
    enc_ctx *c = vctx;
    const ee_wordpiece *t = c->t;
    if (n_chars > EE_WP_MAX_WORD_CHARS) {
        push(c, t->unk);
        return 0;
    }
    const size_t mark = c->n;
    uint64_t h[EE_WP_MAX_WORD_BYTES + 1]; /* h[k]: hash of the candidate of k bytes */
    for (size_t start = 0; start < len;) {
        size_t room = start ? t->max_cont : t->max_first;
        size_t end = len - start > room ? start + room : len;
        while (end > start && end < len && ((unsigned char)w[end] & 0xC0) == 0x80) end--;
        h[0] = start ? c->cont_h : FNV_INIT;
        for (size_t k = 0; k < end - start; k++) h[k + 1] = (h[k] ^ (unsigned char)w[start + k]) * 1099511628211ull;
        int32_t id = -1;
        while (end > start && (id = lookup_h(t, start > 0, w + start, end - start, h[end - start])) < 0) {
            do end--;
            while (end > start && ((unsigned char)w[end] & 0xC0) == 0x80);
        }
        if (id < 0) {  /* nothing matches here: the whole word is [UNK] */
            c->n = mark;
            push(c, t->unk);
            return 0;
        }
        push(c, id);
        start = end;
    }
    return 0;
}

/* Leftmost-longest special token at text[i..len), or -1 (tokenizers'
 * added-token matcher). */
static int32_t special_at(const ee_wordpiece *t, const char *text, size_t i, size_t len) {
    if (!t->special_first[(unsigned char)text[i]]) return -1;
    for (int k = 0; k < t->n_special; k++) {
        int32_t id = t->special[k];
        size_t l = t->len[id];
        if (l <= len - i && memcmp(text + i, t->arena + t->off[id], l) == 0) return id;
    }
    return -1;
}

int ee_wordpiece_encode_opts(const ee_wordpiece *t, const char *text, size_t len,
                             const ee_wordpiece_opts *opts, int32_t *ids, size_t cap,
                             size_t *n_out, ee_err *err) {
    if (n_out) *n_out = 0;
    if (!t || !n_out || (!text && len) || (!ids && cap))
        return ee_err_set(err, "wordpiece_encode: invalid arguments");
    ee_wordpiece_opts o = opts ? *opts : (ee_wordpiece_opts){.add_cls_sep = true, .parse_special = true};
    enc_ctx c = {.t = t, .ids = ids, .cap = cap, .cont_h = fnv(FNV_INIT, "##", 2)};
    if (o.add_cls_sep) push(&c, t->cls);
    size_t frag = 0;
    if (o.parse_special && t->n_special) {
        for (size_t i = 0; i < len;) {
            int32_t id = special_at(t, text, i, len);
            if (id < 0) {
                i++;
                continue;
            }
            ee_wp_pretokenize(text + frag, i - frag, wp_word, &c);
            push(&c, id);
            i += t->len[id];
            frag = i;
        }
    }
    if (len > frag) ee_wp_pretokenize(text + frag, len - frag, wp_word, &c);
    if (o.add_cls_sep) push(&c, t->sep);
    *n_out = c.n;
    if (c.n > cap) return ee_err_set(err, "wordpiece_encode: the text needs %zu ids, room for %zu", c.n, cap);
    return 0;
}

int ee_wordpiece_encode(const ee_wordpiece *t, const char *text, size_t len, int32_t *ids, size_t cap,
                        size_t *n_out, ee_err *err) {
    return ee_wordpiece_encode_opts(t, text, len, NULL, ids, cap, n_out, err);
}

int ee_wordpiece_encode_alloc(const ee_wordpiece *t, const char *text, size_t len, int32_t **ids,
                              size_t *n_out, ee_err *err) {
    *ids = NULL;
    *n_out = 0;
    size_t n = 0;
    ee_wordpiece_encode(t, text, len, NULL, 0, &n, NULL); /* size query */
    int32_t *v = malloc(sizeof *v * (n ? n : 1));
    if (!v) return ee_err_set(err, "out of memory");
    if (ee_wordpiece_encode(t, text, len, v, n, &n, err)) {
        free(v);
        return -1;
    }
    *ids = v;
    *n_out = n;
    return 0;
}
