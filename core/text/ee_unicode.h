/* ee_unicode: the few Unicode facts the tokenizer's pre-tokenizer needs.
 *
 * Classes follow the regex semantics of the HF `tokenizers` GPT-2 pattern
 * (Oniguruma): letter = \p{L}, number = \p{N}, space = \s (U+0009..U+000D,
 * U+0085, Zs, Zl, Zp); everything else is "other". The tables are generated
 * (core/ee_unicode_tables.c, by tools/gen_unicode_tables.py). */
#ifndef EE_UNICODE_H
#define EE_UNICODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum ee_uc_class {
    EE_UC_OTHER = 0,
    EE_UC_LETTER = 1,
    EE_UC_NUMBER = 2,
    EE_UC_SPACE = 3,
} ee_uc_class;

/* Class of a code point; values above U+10FFFF are EE_UC_OTHER. */
ee_uc_class ee_unicode_class(uint32_t cp);
bool ee_unicode_is_letter(uint32_t cp);
bool ee_unicode_is_number(uint32_t cp);
bool ee_unicode_is_space(uint32_t cp);

/* Unicode version the tables were generated from, e.g. "16.0.0". */
const char *ee_unicode_version(void);

/* Decode one strict UTF-8 sequence at s[0..len) (len > 0). Returns its
 * length (1..4) and sets *cp, or returns 0 when s does not start with a
 * well-formed sequence (stray continuation byte, overlong form, surrogate,
 * value above U+10FFFF, or truncated): the caller then treats s[0] as one
 * raw byte. */
int ee_unicode_utf8_decode(const unsigned char *s, size_t len, uint32_t *cp);

/* Encode cp (<= U+10FFFF) into out[0..4); returns the length, 0 if cp is
 * out of range. */
int ee_unicode_utf8_encode(uint32_t cp, unsigned char out[4]);

/* Copy s[0..n) to out as valid UTF-8, replacing each maximal ill-formed
 * subpart with U+FFFD (Unicode's "substitution of maximal subparts", what
 * Rust's String::from_utf8_lossy and Python's errors="replace" do). out
 * must hold 3 * n bytes; returns the bytes written. */
size_t ee_unicode_utf8_lossy(const unsigned char *s, size_t n, char *out);

/* Generated tables (core/ee_unicode_tables.c). Each entry is
 * (first code point << 8 | class); runs are sorted and cover 0..0x10FFFF. */
extern const uint32_t ee_unicode_runs[];
extern const uint32_t ee_unicode_runs_n;
extern const char ee_unicode_tables_version[];

#endif
