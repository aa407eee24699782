#include "ee_unicode.h"

#include <string.h>

/* ASCII is by far the most common input: answer it without the binary
 * search. (The unit tests check this agrees with the generated runs.) */
static ee_uc_class ascii_class(uint32_t c) {
    if ((c >= 0x09 && c <= 0x0D) || c == 0x20) return EE_UC_SPACE;
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return EE_UC_LETTER;
    if (c >= '0' && c <= '9') return EE_UC_NUMBER;
    return EE_UC_OTHER;
}

ee_uc_class ee_unicode_class(uint32_t cp) {
    if (cp < 0x80) return ascii_class(cp);
    if (cp > 0x10FFFF) return EE_UC_OTHER;
    /* Binary search for the last run starting at or before cp. */
    uint32_t lo = 0, hi = ee_unicode_runs_n;  /* invariant: runs[lo] <= cp */
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        if ((ee_unicode_runs[mid] >> 8) <= cp) lo = mid;
        else hi = mid;
    }
    return (ee_uc_class)(ee_unicode_runs[lo] & 0xFF);
}

bool ee_unicode_is_letter(uint32_t cp) { return ee_unicode_class(cp) == EE_UC_LETTER; }
bool ee_unicode_is_number(uint32_t cp) { return ee_unicode_class(cp) == EE_UC_NUMBER; }
bool ee_unicode_is_space(uint32_t cp) { return ee_unicode_class(cp) == EE_UC_SPACE; }

const char *ee_unicode_version(void) { return ee_unicode_tables_version; }

int ee_unicode_utf8_decode(const unsigned char *s, size_t len, uint32_t *cp) {
    unsigned c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    int n;
    uint32_t v, min;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2, v = c & 0x1F, min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3, v = c & 0x0F, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4, v = c & 0x07, min = 0x10000;
    } else {
        return 0;  /* continuation byte, C0/C1 overlong lead, F5..FF */
    }
    if (len < (size_t)n) return 0;
    for (int i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
    *cp = v;
    return n;
}

int ee_unicode_utf8_encode(uint32_t cp, unsigned char out[4]) {
    if (cp < 0x80) {
        out[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (unsigned char)(0xC0 | (cp >> 6));
        out[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (unsigned char)(0xE0 | (cp >> 12));
        out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    if (cp <= 0x10FFFF) {
        out[0] = (unsigned char)(0xF0 | (cp >> 18));
        out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
        out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        out[3] = (unsigned char)(0x80 | (cp & 0x3F));
        return 4;
    }
    return 0;
}

size_t ee_unicode_utf8_lossy(const unsigned char *s, size_t n, char *out) {
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int k = ee_unicode_utf8_decode(s + i, n - i, &cp);
        if (k > 0) {
            memcpy(out + o, s + i, (size_t)k);
            o += (size_t)k;
            i += (size_t)k;
            continue;
        }
        /* The maximal subpart: the lead byte plus the continuation bytes
         * that could still have begun a well-formed sequence (Unicode
         * Table 3-7 ranges for the second byte). */
        unsigned c = s[i];
        size_t need = 0;
        unsigned lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF) need = 1;
        else if (c == 0xE0) need = 2, lo = 0xA0;
        else if (c == 0xED) need = 2, hi = 0x9F;
        else if (c >= 0xE1 && c <= 0xEF) need = 2;
        else if (c == 0xF0) need = 3, lo = 0x90;
        else if (c == 0xF4) need = 3, hi = 0x8F;
        else if (c >= 0xF1 && c <= 0xF3) need = 3;
        size_t len = 1;
        while (len <= need && i + len < n) {
            unsigned d = s[i + len];
            if (d < (len == 1 ? lo : 0x80) || d > (len == 1 ? hi : 0xBF)) break;
            len++;
        }
        memcpy(out + o, "\xEF\xBF\xBD", 3);
        o += 3;
        i += len;
    }
    return o;
}
