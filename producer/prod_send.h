/* prod_send: one request record onto its topic, with the protocol's key and
 * headers, and the delivery report that settles whether Kafka has it. */
#ifndef PROD_SEND_H
#define PROD_SEND_H

#include "prod_client.h"
#include "prod_tracker.h"

#include "ee_error.h"

#include <librdkafka/rdkafka.h>

typedef struct prod_request {
    const char *topic;    /* ee.requests.<model>.<class> */
    const char *key;      /* session, else the id */
    const char *id;       /* ee-id header */
    const char *reply_to; /* ee-reply-to header */
    const char *json;     /* the body (ee_proto_request_to_json) */
    int64_t deadline_ms;  /* the body's deadline_ms (0: none), ee-deadline when signed */
    /* filled by prod_request_protect: */
    uint8_t *sealed;      /* the sealed body (owned), else NULL: json goes as is */
    size_t sealed_len;
    const char *tenant;   /* signed: ee-tenant, ee-ts, ee-sig headers */
    int64_t ts_ms;
    char sig[EE_SEAL_SIG_HEX];
} prod_request;

/* Seal the body to the pool (cl->seal) and sign the record (cl->tenant
 * with a client key), as docs/PROTOCOL.md "Sealed and signed jobs" says.
 * Free with prod_request_clear. */
int prod_request_protect(const prod_client *cl, prod_request *r, ee_err *err);
void prod_request_clear(prod_request *r);

/* Enqueue the record; job (may be NULL) receives the delivery report. A
 * full local queue is waited out (serving delivery reports) until the
 * deadline (monotonic ms). */
int prod_send(rd_kafka_t *rk, const prod_request *r, prod_job *job, double deadline, ee_err *err);

/* The dr_msg_cb to give prod_kafka_producer: marks job->delivered or
 * job->delivery_err. Runs inside rd_kafka_poll / rd_kafka_flush. */
void prod_send_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque);

#endif
