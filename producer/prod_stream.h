/* prod_stream: turning streamed token ids into text as they arrive.
 *
 * Byte-level BPE tokens can split a multi-byte UTF-8 character across two
 * tokens, and so across two partial replies. The bytes of an incomplete
 * character at the end are held back until the next tokens complete it
 * (or the stream ends), so every chunk handed out ends on a character
 * boundary. The ids shown so far are kept to check, at the final reply,
 * that the stream was a prefix of the authoritative output. */
#ifndef PROD_STREAM_H
#define PROD_STREAM_H

#include "ee_buf.h"

#include "ee_error.h"
#include "ee_tokenizer.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct prod_stream {
    int32_t *ids; /* plaintext ids shown so far */
    size_t n, cap;
    ee_buf pend; /* held-back bytes of an incomplete character */
} prod_stream;

/* Append plaintext ids; the bytes that are now complete are appended to out. */
int prod_stream_push(prod_stream *s, const ee_tokenizer *tok, const int32_t *ids, size_t n,
                     ee_buf *out, ee_err *err);
/* End of the stream: held-back bytes go to out as they are. */
int prod_stream_finish(prod_stream *s, ee_buf *out, ee_err *err);
/* Whether the ids shown so far are a prefix of ids[0..n). */
bool prod_stream_is_prefix(const prod_stream *s, const int32_t *ids, size_t n);
void prod_stream_free(prod_stream *s);

/* Length of the prefix of b[0..n) that does not end inside a UTF-8
 * character still waiting for continuation bytes. */
size_t prod_utf8_complete_len(const unsigned char *b, size_t n);

#endif
