/* prod_loadrec: the per-job records of a load test (--records FILE), JSON
 * Lines. The first line describes the run ({"record":"run", ...,
 * "start_epoch_ms": wall clock at the run start}); then one
 * {"record":"job", ...} line per job, written when it settles, with its
 * times in ms since the run start (monotonic clock): intended_ms (open
 * loop schedule; closed loop = sent_ms), sent_ms, first_token_ms (first
 * streamed partial; null without --stream), final_ms, and status ("ok", a
 * protocol error code, "bad_reply", "timeout", "unsent" or "pending" for
 * a job still open when the run stopped), tokens, worker and the worker's
 * queue/prefill/decode ms. docs/PROTOCOL.md lists the fields.
 *
 * Each line goes out in one write(2) on an O_APPEND descriptor: a crash
 * leaves whole lines only. */
#ifndef PROD_LOADREC_H
#define PROD_LOADREC_H

#include "prod_tracker.h"

#include "ee_error.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct prod_loadrec {
    int fd;                 /* -1: closed */
    char *path;
    double t0;              /* monotonic ms of the run start */
    unsigned char *written; /* per tracker job */
    size_t cap;
    size_t next;            /* every job before it is written */
} prod_loadrec;

/* Creates (truncates) path. */
int prod_loadrec_open(prod_loadrec *w, const char *path, ee_err *err);
/* One object as one line. */
int prod_loadrec_line(prod_loadrec *w, const json_t *o, ee_err *err);
/* Writes the settled jobs not yet written; all: every job (pending ones
 * with status "pending"). */
int prod_loadrec_flush(prod_loadrec *w, const prod_tracker *t, bool all, ee_err *err);
void prod_loadrec_close(prod_loadrec *w);

/* The record of one job, times relative to t0 (new reference). */
json_t *prod_loadrec_job(const prod_job *j, double t0);
/* "ok", the error code's name, "bad_reply", "timeout", "unsent", "pending". */
const char *prod_loadrec_status(const prod_job *j);

#endif
