/* ee_utf8: validation helpers for text leaving the engine. A model can emit
 * any byte sequence (byte tokens split characters), but JSON and terminals
 * want valid UTF-8. */
#ifndef EE_UTF8_H
#define EE_UTF8_H

#include <stddef.h>

/* Length of the valid UTF-8 sequence starting at s (1..4), or 0 if the bytes
 * at s (n available) do not start one. Rejects overlongs and surrogates. */
size_t ee_utf8_valid_seq(const unsigned char *s, size_t n);

/* Copy of s with every invalid byte replaced by U+FFFD, as Python's
 * decode(errors="replace") does per byte. malloc'd, NUL-terminated. */
char *ee_utf8_lossy(const char *s, size_t n, size_t *out_len);

#endif
