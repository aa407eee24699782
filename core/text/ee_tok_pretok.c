#include "ee_tok_pretok.h"

#include "ee_unicode.h"

#include <stdint.h>

/* One character at s[i]: its class and byte length. Malformed UTF-8 is one
 * "other" byte, like any symbol, so it stays in the text unchanged. */
typedef struct {
    uint32_t cp;
    ee_uc_class cls;
    size_t n;
} ch_t;

static ch_t char_at(const unsigned char *s, size_t end, size_t i) {
    ch_t c;
    int n = ee_unicode_utf8_decode(s + i, end - i, &c.cp);
    if (n == 0) {
        c.cp = 0xFFFFFFFFu;  /* not a code point: never ' ' or '\'' */
        c.cls = EE_UC_OTHER;
        c.n = 1;
    } else {
        c.cls = ee_unicode_class(c.cp);
        c.n = (size_t)n;
    }
    return c;
}

/* End of the run of characters of class cls starting at i. */
static size_t run_end(const unsigned char *s, size_t end, size_t i, ee_uc_class cls) {
    while (i < end) {
        ch_t c = char_at(s, end, i);
        if (c.cls != cls) break;
        i += c.n;
    }
    return i;
}

/* Length of a contraction ('s 't 're 've 'm 'll 'd, lowercase only as in
 * GPT-2's pattern) at s[i] (which is '\''), or 0. */
static size_t contraction(const unsigned char *s, size_t end, size_t i) {
    if (i + 1 >= end) return 0;
    unsigned char a = s[i + 1];
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    if (i + 2 >= end) return 0;
    unsigned char b = s[i + 2];
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
    return 0;
}

/* GPT-2's pattern over s[start..end), end acting as end of text. */
static int split_gpt2(const unsigned char *s, size_t start, size_t end,
                      ee_tok_piece_fn fn, void *ctx) {
    size_t i = start;
    while (i < end) {
        ch_t c = char_at(s, end, i);
        size_t j;
        if (c.cp == '\'' && (j = contraction(s, end, i)) != 0) {
            j += i;
        } else if (c.cls != EE_UC_SPACE) {
            /* \p{L}+, \p{N}+ or [^\s\p{L}\p{N}]+ */
            j = run_end(s, end, i, c.cls);
        } else {
            ch_t d = {0, EE_UC_SPACE, 0};
            if (c.cp == ' ' && i + 1 < end) d = char_at(s, end, i + 1);
            if (d.cls != EE_UC_SPACE) {
                /* " ?X+": the space leads a run of letters/numbers/other */
                j = run_end(s, end, i + 1, d.cls);
            } else {
                /* Whitespace run. \s+(?!\S): at the end of the stretch take
                 * it all; before a non-space, backtrack one character so the
                 * last one is left to lead the next word. A lone whitespace
                 * character before a non-space falls through to \s+. */
                size_t last = i;
                j = i;
                while (j < end) {
                    ch_t w = char_at(s, end, j);
                    if (w.cls != EE_UC_SPACE) break;
                    last = j;
                    j += w.n;
                }
                if (j < end && last > i) j = last;
            }
        }
        int rc = fn((const char *)s + i, j - i, ctx);
        if (rc) return rc;
        i = j;
    }
    return 0;
}

int ee_tok_pretokenize(const char *text, size_t len, ee_tok_piece_fn fn, void *ctx) {
    const unsigned char *s = (const unsigned char *)text;
    size_t seg = 0, i = 0;
    while (i < len) {
        /* ASCII fast path for the common case. */
        if (s[i] < 0x80) {
            if (s[i] >= '0' && s[i] <= '9') {
                int rc = split_gpt2(s, seg, i, fn, ctx);
                if (rc) return rc;
                if ((rc = fn(text + i, 1, ctx))) return rc;
                seg = i + 1;
            }
            i++;
            continue;
        }
        ch_t c = char_at(s, len, i);
        if (c.cls == EE_UC_NUMBER) {
            int rc = split_gpt2(s, seg, i, fn, ctx);
            if (rc) return rc;
            if ((rc = fn(text + i, c.n, ctx))) return rc;
            seg = i + c.n;
        }
        i += c.n;
    }
    return split_gpt2(s, seg, len, fn, ctx);
}
