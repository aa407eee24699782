/* prod_session: the Kafka side of submitting jobs, set up in the order
 * that makes the client safe:
 *   1. producer (acks=all, idempotent), and a metadata round trip: Kafka
 *      unreachable is reported here, clearly, before anything is sent;
 *   2. the request topics must exist (no auto-creation: a mistyped model
 *      must not create topics nobody serves);
 *   3. the reply topic is created if missing (prod_admin);
 *   4. when waiting, the reply consumer is assigned at the reply topic's
 *      current end offsets BEFORE any request is produced (prod_replies),
 *      so no reply can be missed. */
#ifndef PROD_SESSION_H
#define PROD_SESSION_H

#include "prod_kafka.h"
#include "prod_opts.h"
#include "prod_replies.h"

#include "ee_error.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct prod_session {
    prod_kcap cap;
    bool cap_ok;
    rd_kafka_t *producer;
    prod_replies rep; /* rep.rk is NULL when not waiting */
} prod_session;

/* Returns 0, or a PROD_EXIT_* code with err. delivery_timeout_ms bounds
 * each request's delivery; deadline (monotonic ms) bounds the setup. */
int prod_session_open(prod_session *s, const prod_common *c, const char *const *req_topics,
                      size_t n_topics, bool wait, int delivery_timeout_ms, double deadline,
                      ee_err *err);
/* Drops undelivered requests (their reports arrive as failures first). */
void prod_session_close(prod_session *s);

#endif
