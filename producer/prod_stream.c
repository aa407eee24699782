#include "prod_stream.h"

#include <stdlib.h>
#include <string.h>

size_t prod_utf8_complete_len(const unsigned char *b, size_t n) {
    size_t i = n, k = 0;
    while (i > 0 && k < 3 && (b[i - 1] & 0xC0) == 0x80) {
        i--;
        k++;
    }
    if (i == 0) return n; /* continuation bytes only: ill-formed, nothing to wait for */
    unsigned char c = b[i - 1];
    size_t need = (c >= 0xF0 && c <= 0xF4) ? 4 : (c >= 0xE0 && c <= 0xEF) ? 3
                : (c >= 0xC2 && c <= 0xDF) ? 2 : 0;
    if (need && n - (i - 1) < need) return i - 1;
    return n;
}

static int keep_ids(prod_stream *s, const int32_t *ids, size_t n, ee_err *err) {
    if (ee_array_reserve(&s->ids, &s->cap, s->n + n, sizeof *s->ids, err)) return -1;
    if (n) memcpy(s->ids + s->n, ids, n * sizeof *ids);
    s->n += n;
    return 0;
}

static int add_piece(const ee_tokenizer *tok, int32_t id, ee_buf *b, ee_err *err) {
    char small[256];
    int len = ee_tokenizer_piece(tok, id, false, small, sizeof small);
    if (len < 0) return ee_err_set(err, "token id %d is out of range", id);
    if ((size_t)len <= sizeof small) return ee_buf_append(b, small, (size_t)len, err);
    char *big = malloc((size_t)len); /* a piece longer than any real token */
    if (!big) return ee_err_set(err, "out of memory");
    ee_tokenizer_piece(tok, id, false, big, (size_t)len);
    int rc = ee_buf_append(b, big, (size_t)len, err);
    free(big);
    return rc;
}

int prod_stream_push(prod_stream *s, const ee_tokenizer *tok, const int32_t *ids, size_t n,
                     ee_buf *out, ee_err *err) {
    for (size_t i = 0; i < n; i++)
        if (add_piece(tok, ids[i], &s->pend, err)) return -1;
    if (keep_ids(s, ids, n, err)) return -1;
    size_t ok = prod_utf8_complete_len((const unsigned char *)s->pend.p, s->pend.len);
    if (ok && ee_buf_append(out, s->pend.p, ok, err)) return -1;
    ee_buf_consume(&s->pend, ok);
    return 0;
}

int prod_stream_finish(prod_stream *s, ee_buf *out, ee_err *err) {
    if (s->pend.len && ee_buf_append(out, s->pend.p, s->pend.len, err)) return -1;
    ee_buf_consume(&s->pend, s->pend.len);
    return 0;
}

bool prod_stream_is_prefix(const prod_stream *s, const int32_t *ids, size_t n) {
    return s->n <= n && (s->n == 0 || memcmp(s->ids, ids, s->n * sizeof *ids) == 0);
}

void prod_stream_free(prod_stream *s) {
    free(s->ids);
    ee_buf_free(&s->pend);
    memset(s, 0, sizeof *s);
}
