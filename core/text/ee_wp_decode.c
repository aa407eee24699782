/* ee_wordpiece_decode: tokenizers' WordPiece decoder (prefix "##",
 * cleanup on; tokenizers/src/decoders/wordpiece.rs), one piece at a time:
 * the first piece is kept as it is, a later "##xy" becomes "xy" and any
 * other later piece " " + piece; then each piece is cleaned up. */
#include "ee_wordpiece_impl.h"

#include <stdlib.h>
#include <string.h>

/* Replace every non-overlapping `from` in s[0..n) with `to` (not longer),
 * left to right, as Rust's str::replace; returns the new length. */
static size_t replace_all(char *s, size_t n, const char *from, const char *to) {
    size_t fl = strlen(from), tl = strlen(to), o = 0;
    for (size_t i = 0; i < n;) {
        if (n - i >= fl && memcmp(s + i, from, fl) == 0) {
            memcpy(s + o, to, tl);
            o += tl;
            i += fl;
        } else {
            s[o++] = s[i++];
        }
    }
    return o;
}

/* tokenizers' cleanup(), in its order. */
static size_t cleanup(char *s, size_t n) {
    static const char *const pairs[][2] = {
        {" .", "."},     {" ?", "?"},     {" !", "!"},         {" ,", ","},
        {" ' ", "'"},    {" n't", "n't"}, {" 'm", "'m"},       {" do not", " don't"},
        {" 's", "'s"},   {" 've", "'ve"}, {" 're", "'re"},
    };
    for (size_t k = 0; k < sizeof pairs / sizeof pairs[0]; k++) n = replace_all(s, n, pairs[k][0], pairs[k][1]);
    return n;
}

int ee_wordpiece_decode(const ee_wordpiece *t, const int32_t *ids, size_t n, bool skip_special, char **text,
                        size_t *len, ee_err *err) {
    if (!t || !text || (!ids && n)) return ee_err_set(err, "wordpiece_decode: invalid arguments");
    *text = NULL;
    if (len) *len = 0;
    size_t total = 1;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= t->n_vocab)
            return ee_err_set(err, "wordpiece_decode: id %d at index %zu out of range (vocabulary %d)", ids[i], i,
                              t->n_vocab);
        total += t->len[ids[i]] + 1;
    }
    char *s = malloc(total);
    if (!s) return ee_err_set(err, "wordpiece_decode: out of memory");
    size_t o = 0;
    bool first = true;
    for (size_t i = 0; i < n; i++) {
        int32_t id = ids[i];
        if (skip_special && t->type[id] == EE_TOKTYPE_CONTROL) continue;
        const char *p = t->arena + t->off[id];
        size_t pl = t->len[id], start = o;
        if (!first && pl >= 2 && p[0] == '#' && p[1] == '#') {
            p += 2;
            pl -= 2;
        } else if (!first) {
            s[o++] = ' ';
        }
        memcpy(s + o, p, pl);
        o = start + cleanup(s + start, o + pl - start);
        first = false;
    }
    s[o] = '\0';
    *text = s;
    if (len) *len = o;
    return 0;
}
