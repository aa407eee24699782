/* prod_print: everything the client shows about jobs.
 *
 * stdout carries results (text, or one JSON object per line with --json);
 * stderr carries problems ("job ID: error CODE: MESSAGE") and notes. Text
 * is decrypted here, never by the caller: the printer holds the client's
 * tokenizer and cipher. JSON lines have an "event" field: "submitted",
 * "partial" (--stream) or "result". */
#ifndef PROD_PRINT_H
#define PROD_PRINT_H

#include "prod_client.h"
#include "prod_tracker.h"

#include "ee_error.h"
#include "ee_proto.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct prod_print {
    const prod_client *cl;
    bool json;
    bool multi;   /* several jobs: plain text lines start with "ID: " */
    bool stream;  /* show partial replies */
    bool quiet;   /* load test: no per-job stdout, a few problem lines only */
    bool erase_line; /* a progress line is on stderr: erase it before a problem */
    size_t n_problems;
} prod_print;

/* "ID" (plain) or {"event":"submitted",...} (json). */
void prod_print_submitted(const prod_print *p, const prod_job *j, const char *topic,
                          const char *cls, const char *reply_to, const int32_t *enc, size_t n);
/* An accepted stream partial: plaintext ids plain[0..r->n_tokens). */
int prod_print_partial(prod_print *p, prod_job *j, const ee_proto_reply *r, const int32_t *plain,
                       ee_err *err);
/* A settled job (ok, error, timeout, unsent). */
int prod_print_result(prod_print *p, prod_job *j, ee_err *err);
/* Quiet mode: how many problem lines were not shown. */
size_t prod_print_hidden(const prod_print *p);

#endif
