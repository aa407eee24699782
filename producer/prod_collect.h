/* prod_collect: reply records in, settled jobs and printed results out.
 *
 * Each record of the reply topic is parsed (ee_proto_parse_reply); replies
 * for ids this process does not track belong to other clients sharing the
 * topic and are skipped silently. For tracked ids: the first final reply
 * settles the job (later ones are duplicates from at-least-once delivery
 * and are ignored), partials are taken in seq order, output ids are
 * decrypted with the client's key. */
#ifndef PROD_COLLECT_H
#define PROD_COLLECT_H

#include "prod_client.h"
#include "prod_print.h"
#include "prod_replies.h"
#include "prod_tracker.h"

#include "ee_error.h"

typedef struct prod_collect {
    prod_replies *rep;
    prod_tracker *tr;
    const prod_client *cl;
    prod_print *pr;
    prod_kcap *cap;     /* may be NULL: librdkafka's last error, for messages */
    int exit_code;      /* worst so far: PROD_EXIT_REPLY after an error reply */
    char last_err[256]; /* last consumer error, for the timeout message */
} prod_collect;

/* Handles the records that arrive within timeout_ms (then whatever is
 * already buffered). Returns 0, or -1 with err on a local failure (out of
 * memory, output) or a fatal Kafka error. */
int prod_collect_step(prod_collect *c, int timeout_ms, ee_err *err);

/* Settles pending jobs whose request Kafka refused or timed out (their
 * delivery report came back with an error), printing them; raises
 * exit_code to PROD_EXIT_KAFKA. Returns -1 with err on a local failure. */
int prod_collect_deliveries(prod_collect *c, ee_err *err);

/* Settles every pending job as timed out (printing their JSON results),
 * raises exit_code to PROD_EXIT_TIMEOUT, and puts "timed out after N ms
 * waiting for K job(s): ID, ID, ..." in err. */
void prod_collect_give_up(prod_collect *c, long long timeout_ms, ee_err *err);

#endif
