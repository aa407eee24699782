/* prod_send: one request record onto its topic, with the protocol's key and
 * headers, and the delivery report that settles whether Kafka has it. */
#ifndef PROD_SEND_H
#define PROD_SEND_H

#include "prod_tracker.h"

#include "ee_error.h"

#include <librdkafka/rdkafka.h>

typedef struct prod_request {
    const char *topic;    /* ee.requests.<model>.<class> */
    const char *key;      /* session, else the id */
    const char *id;       /* ee-id header */
    const char *reply_to; /* ee-reply-to header */
    const char *json;     /* the body (ee_proto_request_to_json) */
} prod_request;

/* Enqueue the record; job (may be NULL) receives the delivery report. A
 * full local queue is waited out (serving delivery reports) until the
 * deadline (monotonic ms). */
int prod_send(rd_kafka_t *rk, const prod_request *r, prod_job *job, double deadline, ee_err *err);

/* The dr_msg_cb to give prod_kafka_producer: marks job->delivered or
 * job->delivery_err. Runs inside rd_kafka_poll / rd_kafka_flush. */
void prod_send_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque);

#endif
