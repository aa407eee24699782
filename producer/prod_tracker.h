/* prod_tracker: the jobs this process waits for, looked up by id.
 *
 * Replies come at least once (docs/PROTOCOL.md "Delivery and
 * deduplication"): the first final reply of an id settles the job and
 * everything after it for that id is ignored; stream partials are taken
 * in seq order only (a repeated or out-of-order seq is dropped, the final
 * reply carries the complete output anyway). Job pointers stay valid
 * until prod_tracker_free (librdkafka delivery reports hold them). */
#ifndef PROD_TRACKER_H
#define PROD_TRACKER_H

#include "ee_buf.h"
#include "prod_stream.h"

#include "ee_error.h"
#include "ee_proto.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum prod_job_state {
    PROD_JOB_PENDING, /* waiting for the final reply */
    PROD_JOB_OK,      /* first final reply was ok */
    PROD_JOB_ERROR,   /* first final reply was an error, or unusable */
    PROD_JOB_TIMEOUT, /* given up on */
    PROD_JOB_UNSENT,  /* the request was not delivered to Kafka */
} prod_job_state;

typedef struct prod_job {
    char *id;
    size_t index;          /* order of submission (or of --id) */
    prod_job_state state;
    /* request side */
    double t_sent;         /* monotonic ms at produce; 0 = not sent by us */
    double t_intended;     /* load test: monotonic ms the schedule meant to send
                              at (open loop; closed loop: t_sent); 0 = none */
    bool delivered;        /* delivery report: acknowledged by Kafka */
    int delivery_err;      /* rd_kafka_resp_err_t of a failed delivery, else 0 */
    /* reply side */
    double t_done;         /* monotonic ms when settled */
    double t_first;        /* monotonic ms of the first streamed partial with
                              tokens (a first token); 0 = none seen */
    uint32_t next_seq;     /* next stream partial expected */
    prod_stream stream;    /* text shown from partials */
    ee_buf line;         /* several streamed jobs: the unfinished output line */
    bool shown;            /* something of this job was printed already */
    ee_proto_reply final;  /* the first final reply (owned) */
    int32_t *plain;        /* its output ids, decrypted (final.n_tokens) */
    float *vec;            /* embed: its embedding, decrypted (final.dim) */
    float *scores;         /* classify: its class scores, decrypted (final.n_scores) */
    char *problem;         /* why the job is ERROR/UNSENT when no reply says */
} prod_job;

typedef struct prod_tracker {
    prod_job **jobs;       /* in submission order */
    size_t n, cap;
    size_t *slots;         /* open addressing over ids: job index + 1, 0 empty */
    size_t n_slots;
    size_t pending;
} prod_tracker;

/* Adds a pending job; fails for an id already present. */
prod_job *prod_tracker_add(prod_tracker *t, const char *id, ee_err *err);
prod_job *prod_tracker_find(const prod_tracker *t, const char *id);
/* Settle a pending job (no-op for a settled one); takes problem (may be NULL). */
void prod_tracker_settle(prod_tracker *t, prod_job *j, prod_job_state s, double now,
                         char *problem);
void prod_tracker_free(prod_tracker *t);

const char *prod_job_state_name(prod_job_state s);

#endif
