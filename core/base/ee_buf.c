#include "ee_buf.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIN_BYTES 64
#define MIN_ITEMS 16

int ee_array_reserve(void *items, size_t *cap, size_t need, size_t elem_size, ee_err *err) {
    if (need <= *cap) return 0;
    size_t nc = *cap ? *cap : MIN_ITEMS;
    while (nc < need) {
        if (nc > SIZE_MAX / 2) return ee_err_set(err, "out of memory (array of %zu elements)", need);
        nc *= 2;
    }
    /* No object may exceed PTRDIFF_MAX bytes. */
    if (elem_size && nc > (size_t)PTRDIFF_MAX / elem_size)
        return ee_err_set(err, "out of memory (array of %zu elements)", need);
    void **pp = items;
    void *np = realloc(*pp, nc * elem_size);
    if (!np) return ee_err_set(err, "out of memory (%zu bytes)", nc * elem_size);
    *pp = np;
    *cap = nc;
    return 0;
}

int ee_buf_reserve(ee_buf *b, size_t extra, ee_err *err) {
    if (extra > (size_t)PTRDIFF_MAX - b->len - 1)
        return ee_err_set(err, "out of memory (a buffer of more than %zu bytes)", (size_t)PTRDIFF_MAX);
    size_t need = b->len + extra + 1;
    if (need <= b->cap) return 0;
    size_t nc = b->cap ? b->cap : MIN_BYTES;
    while (nc < need) nc = nc > (size_t)PTRDIFF_MAX / 2 ? need : nc * 2;
    char *np = realloc(b->p, nc);
    if (!np) return ee_err_set(err, "out of memory (%zu bytes)", nc);
    b->p = np;
    b->cap = nc;
    return 0;
}

int ee_buf_append(ee_buf *b, const void *data, size_t n, ee_err *err) {
    if (ee_buf_reserve(b, n, err)) return -1;
    if (n) memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

int ee_buf_puts(ee_buf *b, const char *s, ee_err *err) { return ee_buf_append(b, s, strlen(s), err); }

int ee_buf_putc(ee_buf *b, char c, ee_err *err) { return ee_buf_append(b, &c, 1, err); }

int ee_buf_vprintf(ee_buf *b, ee_err *err, const char *fmt, va_list ap) {
    va_list ap2;
    va_copy(ap2, ap);
    char small[256];
    int n = vsnprintf(small, sizeof small, fmt, ap2);
    va_end(ap2);
    if (n < 0) return ee_err_set(err, "format error");
    if ((size_t)n < sizeof small) return ee_buf_append(b, small, (size_t)n, err);
    if (ee_buf_reserve(b, (size_t)n, err)) return -1;
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int ee_buf_printf(ee_buf *b, ee_err *err, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int rc = ee_buf_vprintf(b, err, fmt, ap);
    va_end(ap);
    return rc;
}

const char *ee_buf_cstr(ee_buf *b) {
    if (!b->p && ee_buf_reserve(b, 0, NULL)) return NULL;
    b->p[b->len] = '\0';
    return b->p;
}

char *ee_buf_detach(ee_buf *b, size_t *len) {
    if (!ee_buf_cstr(b)) return NULL;
    char *p = b->p;
    if (len) *len = b->len;
    b->p = NULL;
    b->len = b->cap = 0;
    return p;
}

void ee_buf_consume(ee_buf *b, size_t n) {
    if (n >= b->len) {
        b->len = 0;
    } else {
        memmove(b->p, b->p + n, b->len - n);
        b->len -= n;
    }
    if (b->p) b->p[b->len] = '\0';
}

int ee_buf_read_file(ee_buf *b, FILE *f, size_t max, const char *what, ee_err *err) {
    size_t start = b->len;
    for (;;) {
        if (ee_buf_reserve(b, 1 << 16, err)) return -1;
        size_t r = fread(b->p + b->len, 1, b->cap - b->len - 1, f);
        b->len += r;
        b->p[b->len] = '\0';
        if (max && b->len - start > max) {
            if (max % (1u << 20) == 0) return ee_err_set(err, "%s: larger than %zu MiB", what, max >> 20);
            return ee_err_set(err, "%s: larger than %zu bytes", what, max);
        }
        if (r == 0) break;
    }
    if (ferror(f)) return ee_err_set(err, "%s: read error", what);
    return 0;
}

void ee_buf_clear(ee_buf *b) {
    b->len = 0;
    if (b->p) b->p[0] = '\0';
}

void ee_buf_free(ee_buf *b) {
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

int ee_ids_append(ee_ids *b, const int32_t *ids, size_t n, ee_err *err) {
    if (ee_array_reserve(&b->v, &b->cap, b->n + n, sizeof *b->v, err)) return -1;
    if (n) memcpy(b->v + b->n, ids, n * sizeof *ids);
    b->n += n;
    return 0;
}

void ee_ids_free(ee_ids *b) {
    free(b->v);
    b->v = NULL;
    b->n = b->cap = 0;
}
