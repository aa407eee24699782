/* prod_kafka: librdkafka handles for the client, and what they report.
 *
 * librdkafka logs from its own threads and reports errors through
 * callbacks; a prod_kcap collects the last one so that a failure can be
 * explained in one line ("cannot reach Kafka at HOST:PORT: Connect to
 * ipv4#127.0.0.1:1 failed: Connection refused ...") instead of a stream of
 * log lines. Logs are printed only when --kafka debug=... asks for them.
 *
 * Settings the client relies on are set here; --kafka PROP=VALUE pairs are
 * applied after them (the user wins, e.g. for security.protocol). */
#ifndef PROD_KAFKA_H
#define PROD_KAFKA_H

#include "ee_error.h"

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct prod_kafka_opts {
    const char *bootstrap;
    const char *const *props; /* "name=value" from --kafka */
    size_t n_props;
} prod_kafka_opts;

typedef struct prod_kcap {
    pthread_mutex_t mu;
    char last[512];  /* last error or error-level log line */
    bool all_down;   /* every broker unreachable (RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) */
    bool fatal;
    bool forward;    /* print librdkafka's logs (--kafka debug=...) */
} prod_kcap;

int prod_kcap_init(prod_kcap *c, const prod_kafka_opts *o, ee_err *err);
void prod_kcap_destroy(prod_kcap *c);
/* Copy of the last message ("" if none). */
void prod_kcap_last(prod_kcap *c, char *out, size_t cap);
/* "cannot reach Kafka at B: <last message or fallback>" into err; -1. */
int prod_kcap_unreachable(prod_kcap *c, const char *bootstrap, const char *fallback,
                          ee_err *err);

/* Checks the --kafka pairs (syntax, known properties, values) without
 * connecting; a value of a property whose name contains "password" or
 * "secret" never appears in a message. */
int prod_kafka_check_props(const prod_kafka_opts *o, ee_err *err);

typedef void (*prod_dr_cb)(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque);

/* Idempotent producer, acks=all, deliveries bounded by delivery_timeout_ms
 * (message.timeout.ms), no topic auto-creation. */
rd_kafka_t *prod_kafka_producer(const prod_kafka_opts *o, prod_kcap *cap, int delivery_timeout_ms,
                                prod_dr_cb dr, ee_err *err);
/* Consumer for explicit assignments (no subscription, no commits); its
 * group id is random and never joined. */
rd_kafka_t *prod_kafka_consumer(const prod_kafka_opts *o, prod_kcap *cap, ee_err *err);

/* Metadata of all topics, retried until the cluster answers or the
 * deadline (monotonic ms) passes; fails early when every broker is down.
 * Free *md with rd_kafka_metadata_destroy. On a consumer handle, call it
 * only before assigning partitions (it polls the consumer for errors). */
int prod_kafka_metadata(rd_kafka_t *rk, prod_kcap *cap, const char *bootstrap, double deadline,
                        const struct rd_kafka_metadata **md, ee_err *err);
/* Partition count of topic in md; -1 if absent or in error. ready is set
 * to whether every partition has a leader (may be NULL). */
int prod_kafka_partitions(const struct rd_kafka_metadata *md, const char *topic, bool *ready);

/* Milliseconds left until deadline (monotonic ms), at least 0. */
int prod_ms_left(double deadline);

#endif
