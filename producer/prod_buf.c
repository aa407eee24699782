#include "prod_buf.h"

#include <stdlib.h>
#include <string.h>

int prod_buf_add(prod_buf *b, const void *data, size_t n, ee_err *err) {
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) return ee_err_set(err, "out of memory");
        b->p = p;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, data, n);
    b->n += n;
    b->p[b->n] = 0; /* always a C string too */
    return 0;
}

void prod_buf_consume(prod_buf *b, size_t n) {
    if (n >= b->n) {
        b->n = 0;
    } else {
        memmove(b->p, b->p + n, b->n - n);
        b->n -= n;
    }
    if (b->p) b->p[b->n] = 0;
}

void prod_buf_free(prod_buf *b) {
    free(b->p);
    b->p = NULL;
    b->n = b->cap = 0;
}
