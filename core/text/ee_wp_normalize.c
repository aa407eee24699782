/* ee_wp_normalize: BertNormalizer + BertPreTokenizer in one streaming pass
 * (see ee_wp_normalize.h for the rules and where the tables come from).
 *
 * Each input code point goes through clean_text, the CJK padding and its
 * NFD decomposition; the decomposed code points then meet the canonical
 * reordering, the Mn filter and to_lowercase, and the result feeds the
 * pre-tokenizer. Streaming is exact because every step is local: the only
 * context is canonical reordering, which sorts each run of code points
 * with a nonzero combining class by class (stably). Marks (Mn) are dropped
 * after the sort, so only the run's non-Mn members (a few spacing marks)
 * are kept and sorted; they never are whitespace or punctuation (the
 * generator checks), so a run with more of them than a word may hold makes
 * its word [UNK] whatever their order, and they are only counted. */
#include "ee_wp_normalize.h"

#include "ee_unicode.h"

#include <stdbool.h>
#include <string.h>

/* ---- table lookups ----------------------------------------------------- */

static int find_cp(const uint32_t *keys, uint32_t n, uint32_t cp) {
    uint32_t lo = 0, hi = n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (keys[mid] < cp) lo = mid + 1;
        else hi = mid;
    }
    return lo < n && keys[lo] == cp ? (int)lo : -1;
}

enum { S_BASE = 0xAC00, L_BASE = 0x1100, V_BASE = 0x1161, T_BASE = 0x11A7,
       V_COUNT = 21, T_COUNT = 28, S_COUNT = 11172 };

int ee_wp_decompose(uint32_t cp, uint32_t out[4]) {
    if (!(ee_wp_flags(cp) & EE_WP_DECOMP)) {
        out[0] = cp;
        return 1;
    }
    if (cp - S_BASE < S_COUNT) {  /* Hangul syllable: L V (T) */
        uint32_t s = cp - S_BASE;
        out[0] = L_BASE + s / (V_COUNT * T_COUNT);
        out[1] = V_BASE + (s % (V_COUNT * T_COUNT)) / T_COUNT;
        out[2] = T_BASE + s % T_COUNT;
        return out[2] == T_BASE ? 2 : 3;
    }
    int i = find_cp(ee_wp_decomp_cp, ee_wp_decomp_n, cp);
    if (i < 0) {  /* not reached: the generator lists every DECOMP code point */
        out[0] = cp;
        return 1;
    }
    int n = ee_wp_decomp_len[i];
    memcpy(out, ee_wp_decomp_pool + ee_wp_decomp_off[i], sizeof *out * (size_t)n);
    return n;
}

int ee_wp_lowercase(uint32_t cp, uint32_t out[3]) {
    if (cp < 0x80) {
        out[0] = cp >= 'A' && cp <= 'Z' ? cp + 32 : cp;
        return 1;
    }
    int i = ee_wp_flags(cp) & EE_WP_LOWER ? find_cp(ee_wp_lower_cp, ee_wp_lower_n, cp) : -1;
    if (i < 0) {
        out[0] = cp;
        return 1;
    }
    int n = ee_wp_lower_len[i];
    memcpy(out, ee_wp_lower_pool + ee_wp_lower_off[i], sizeof *out * (size_t)n);
    return n;
}

int ee_wp_ccc_of(uint32_t cp) {
    if (!(ee_wp_flags(cp) & EE_WP_CCC)) return 0;
    uint32_t lo = 0, hi = ee_wp_ccc_n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if ((ee_wp_ccc[mid] >> 8) < cp) lo = mid + 1;
        else hi = mid;
    }
    return lo < ee_wp_ccc_n && (ee_wp_ccc[lo] >> 8) == cp ? (int)(ee_wp_ccc[lo] & 0xFF) : 0;
}

/* ---- the pass ---------------------------------------------------------- */

#define RUN_CAP (EE_WP_MAX_WORD_CHARS + 1)

typedef struct {
    /* Pending canonical-reordering run: its non-Mn members, input order. */
    uint32_t run_cp[RUN_CAP];
    uint8_t run_ccc[RUN_CAP];
    size_t n_run, n_run_extra;  /* kept; beyond RUN_CAP (only counted) */
    /* Pre-tokenizer: the current word, whose text is kept while it fits. */
    char word[EE_WP_MAX_WORD_BYTES];
    size_t wlen, wchars;
    ee_wp_word_fn fn;  /* NULL: normalizer only, into out */
    void *ctx;
    int rc;
    char *out;
    size_t cap, olen;
} wp_state;

static void flush_word(wp_state *st) {
    if (!st->fn || st->wchars == 0 || st->rc) return;
    bool fits = st->wchars <= EE_WP_MAX_WORD_CHARS;
    st->rc = st->fn(fits ? st->word : NULL, fits ? st->wlen : 0, st->wchars, st->ctx);
    st->wlen = st->wchars = 0;
}

/* A code point of the normalized text. */
static void emit(wp_state *st, uint32_t cp) {
    unsigned char u[4];
    int k = cp < 0x80 ? (u[0] = (unsigned char)cp, 1) : ee_unicode_utf8_encode(cp, u);
    if (!st->fn) {
        for (int i = 0; i < k; i++, st->olen++)
            if (st->olen + 1 < st->cap) st->out[st->olen] = (char)u[i];
        return;
    }
    unsigned f = ee_wp_flags(cp);
    if (f & EE_WP_SPACE) {
        flush_word(st);
    } else if (f & EE_WP_PUNCT) {
        flush_word(st);
        if (!st->rc) st->rc = st->fn((const char *)u, (size_t)k, 1, st->ctx);
    } else {
        if (st->wchars < EE_WP_MAX_WORD_CHARS) {
            memcpy(st->word + st->wlen, u, (size_t)k);
            st->wlen += (size_t)k;
        }
        st->wchars++;
    }
}

static void emit_lower(wp_state *st, uint32_t cp) {
    uint32_t l[3];
    int n = ee_wp_lowercase(cp, l);
    for (int i = 0; i < n; i++) emit(st, l[i]);
}

/* The run's kept members sorted by class, stably (insertion sort: at most
 * RUN_CAP entries, and in practice one or two). */
static void flush_run(wp_state *st) {
    size_t n = st->n_run;
    for (size_t i = 1; i < n; i++) {
        uint32_t c = st->run_cp[i];
        uint8_t k = st->run_ccc[i];
        size_t j = i;
        for (; j > 0 && st->run_ccc[j - 1] > k; j--) {
            st->run_cp[j] = st->run_cp[j - 1];
            st->run_ccc[j] = st->run_ccc[j - 1];
        }
        st->run_cp[j] = c;
        st->run_ccc[j] = k;
    }
    for (size_t i = 0; i < n; i++) emit_lower(st, st->run_cp[i]);
    if (st->fn) st->wchars += st->n_run_extra;  /* the word is too long anyway */
    st->n_run = st->n_run_extra = 0;
}

/* A code point of the NFD text (after clean_text and the CJK padding). */
static void nfd_char(wp_state *st, uint32_t cp) {
    unsigned f = ee_wp_flags(cp);
    if (f & EE_WP_CCC) {
        if (f & EE_WP_MN) return;  /* dropped; the others' order is unchanged */
        if (st->n_run < RUN_CAP) {
            st->run_cp[st->n_run] = cp;
            st->run_ccc[st->n_run++] = (uint8_t)ee_wp_ccc_of(cp);
        } else {
            st->n_run_extra++;
        }
        return;
    }
    if (st->n_run || st->n_run_extra) flush_run(st);
    if (f & EE_WP_MN) return;
    emit_lower(st, cp);
}

/* A code point of the input. */
static void input_char(wp_state *st, uint32_t cp) {
    unsigned f = ee_wp_flags(cp);
    if (f & EE_WP_REMOVE) return;
    if (f & EE_WP_SPACE) {
        nfd_char(st, ' ');
        return;
    }
    if (f & EE_WP_CJK) nfd_char(st, ' ');
    if (f & EE_WP_DECOMP) {
        uint32_t d[4];
        int n = ee_wp_decompose(cp, d);
        for (int i = 0; i < n; i++) nfd_char(st, d[i]);
    } else {
        nfd_char(st, cp);
    }
    if (f & EE_WP_CJK) nfd_char(st, ' ');
}

static void run_pass(wp_state *st, const char *text, size_t len) {
    const unsigned char *s = (const unsigned char *)text;
    for (size_t i = 0; i < len && !st->rc;) {
        uint32_t cp = s[i];
        if (cp < 0x80) { /* ASCII: a starter without decomposition or mark */
            unsigned f = ee_wp_flags(cp);
            i++;
            if (f & EE_WP_REMOVE) continue;
            if (st->n_run || st->n_run_extra) flush_run(st);
            emit(st, f & EE_WP_SPACE ? ' ' : cp - 'A' < 26u ? cp + 32 : cp);
            continue;
        }
        int k = ee_unicode_utf8_decode(s + i, len - i, &cp);
        if (k == 0) {  /* ill-formed: U+FFFD, which clean_text drops */
            i++;
            continue;
        }
        input_char(st, cp);
        i += (size_t)k;
    }
    if (st->n_run || st->n_run_extra) flush_run(st);
    flush_word(st);
}

int ee_wp_pretokenize(const char *text, size_t len, ee_wp_word_fn fn, void *ctx) {
    wp_state st;
    st.n_run = st.n_run_extra = st.wlen = st.wchars = 0;
    st.fn = fn;
    st.ctx = ctx;
    st.rc = 0;
    st.out = NULL;
    st.cap = st.olen = 0;
    run_pass(&st, text, len);
    return st.rc;
}

size_t ee_wp_normalize(const char *text, size_t len, char *out, size_t cap) {
    wp_state st;
    st.n_run = st.n_run_extra = st.wlen = st.wchars = 0;
    st.fn = NULL;
    st.ctx = NULL;
    st.rc = 0;
    st.out = out;
    st.cap = cap;
    st.olen = 0;
    run_pass(&st, text, len);
    if (cap) out[st.olen < cap ? st.olen : cap - 1] = '\0';
    return st.olen;
}
