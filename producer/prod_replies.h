/* prod_replies: reading the client's reply topic.
 *
 * The consumer is assigned every partition explicitly (no group
 * membership, so no rebalance wait and no committed offsets), either at
 * the partitions' current high watermarks or at their beginnings.
 *
 * Why explicit watermarks and not "end": the offsets are read from the
 * brokers BEFORE the requests are produced, so every reply to them lies
 * at or after those offsets and cannot be missed, however fast a worker
 * answers. RD_KAFKA_OFFSET_END would be resolved later, when fetching
 * starts, and could skip a reply that was already written by then. */
#ifndef PROD_REPLIES_H
#define PROD_REPLIES_H

#include "prod_kafka.h"

#include "ee_error.h"

#include <stdbool.h>

typedef struct prod_replies {
    rd_kafka_t *rk;
} prod_replies;

/* The consumer, not yet reading anything. */
int prod_replies_open(prod_replies *r, const prod_kafka_opts *o, prod_kcap *cap, ee_err *err);
/* Read partitions 0..n_partitions-1 of topic: from_beginning, what the
 * topic holds (`wait`); else only what is written from now on. deadline is
 * monotonic ms. */
int prod_replies_assign(prod_replies *r, const prod_kafka_opts *o, prod_kcap *cap,
                        const char *topic, int n_partitions, bool from_beginning,
                        double deadline, ee_err *err);
/* Next record or consumer error (check ->err), NULL if none within
 * timeout_ms. Destroy with rd_kafka_message_destroy. */
rd_kafka_message_t *prod_replies_poll(prod_replies *r, int timeout_ms);
void prod_replies_close(prod_replies *r);

#endif
