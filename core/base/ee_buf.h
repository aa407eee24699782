/* ee_buf: the one growable buffer. Bytes (ee_buf) and arrays of any element
 * (ee_array_reserve), both doubling, overflow-checked, and reporting out of
 * memory through ee_err. A zeroed struct is an empty buffer. */
#ifndef EE_BUF_H
#define EE_BUF_H

#include "ee_error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ee_buf {
    char *p;     /* NUL-terminated whenever len > 0 or after ee_buf_cstr */
    size_t len;
    size_t cap;
} ee_buf;

/* Room for `extra` more bytes plus a NUL. */
int ee_buf_reserve(ee_buf *b, size_t extra, ee_err *err);
int ee_buf_append(ee_buf *b, const void *data, size_t n, ee_err *err);
int ee_buf_puts(ee_buf *b, const char *s, ee_err *err);
int ee_buf_putc(ee_buf *b, char c, ee_err *err);
int ee_buf_printf(ee_buf *b, ee_err *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int ee_buf_vprintf(ee_buf *b, ee_err *err, const char *fmt, va_list ap);
/* The text so far, NUL-terminated ("" for an empty buffer; never NULL
 * unless out of memory). */
const char *ee_buf_cstr(ee_buf *b);
/* Hand the bytes to the caller (malloc'd, NUL-terminated, *len if len) and
 * leave b empty. NULL only if out of memory. */
char *ee_buf_detach(ee_buf *b, size_t *len);
/* Drop the first n bytes, keeping the rest (a consumed prefix). */
void ee_buf_consume(ee_buf *b, size_t n);
void ee_buf_clear(ee_buf *b); /* keep the memory */
/* Append everything f yields until EOF; fails naming `what` when more than
 * max bytes come (max 0: no limit) or on a read error. */
int ee_buf_read_file(ee_buf *b, FILE *f, size_t max, const char *what, ee_err *err);
void ee_buf_free(ee_buf *b);

/* Arrays: make *items hold at least `need` elements of elem_size bytes,
 * growing *cap by doubling (from at least min_cap). Elements past the old
 * capacity are uninitialised. */
int ee_array_reserve(void *items, size_t *cap, size_t need, size_t elem_size, ee_err *err);

/* Append one element: EE_ARRAY_PUSH(v, n, cap, value, err) with v a typed
 * pointer, n and cap size_t lvalues. Evaluates to 0 or -1 (err set). */
#define EE_ARRAY_PUSH(v, n, cap, value, err)                                              \
    (ee_array_reserve(&(v), &(cap), (n) + 1, sizeof *(v), (err)) ? -1                     \
                                                                  : ((v)[(n)++] = (value), 0))

/* Growable int32 ids (token sequences). */
typedef struct ee_ids {
    int32_t *v;
    size_t n, cap;
} ee_ids;

static inline int ee_ids_push(ee_ids *b, int32_t id, ee_err *err) {
    return EE_ARRAY_PUSH(b->v, b->n, b->cap, id, err);
}
int ee_ids_append(ee_ids *b, const int32_t *ids, size_t n, ee_err *err);
void ee_ids_free(ee_ids *b);

#endif
