/* prod_buf: a growable byte buffer (text being assembled for output). */
#ifndef PROD_BUF_H
#define PROD_BUF_H

#include "ee_error.h"

#include <stddef.h>

typedef struct prod_buf {
    char *p;
    size_t n, cap;
} prod_buf;

int prod_buf_add(prod_buf *b, const void *data, size_t n, ee_err *err);
/* Drop the first n bytes (keeps the rest). */
void prod_buf_consume(prod_buf *b, size_t n);
void prod_buf_free(prod_buf *b);

#endif
