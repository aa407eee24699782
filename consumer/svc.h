/* ee-consumer internals: the worker service.
 *
 * Threads (docs/KAFKA.md "Worker design"):
 *   poll thread (main)  owns every rd_kafka consumer, the offset tracker and
 *                       every job that is not running: it polls records,
 *                       parses and checks them, answers bad ones at once,
 *                       queues good ones, serves delivery reports, stores
 *                       offsets, pauses/resumes partitions, handles
 *                       rebalances and shutdown. It never runs inference.
 *   inference thread    takes queued jobs into one ee_batch per model and
 *                       steps the batches; produces partial and final
 *                       replies; hands cancelled jobs back.
 *   librdkafka threads  (internal) and the libmicrohttpd thread (/metrics).
 *
 * A job is owned by exactly one thread at a time: poll thread (parsed) ->
 * queue -> inference thread (running) -> producer (final reply in flight,
 * opaque = job) -> poll thread (delivery report) -> freed. Its offset is
 * stored only when the final reply or dead letter is acknowledged, and only
 * as part of the contiguous finished prefix of its partition.
 *
 * Modules, top down (each calls only those below it; its header says what
 * it offers):
 *   main -> svc_poll -> svc_jobs -> svc_auth, svc_kafka, svc_queue
 *   main -> svc_infer -> svc_jobs, svc_queue
 *   every module -> svc_metrics, svc_log
 * This header holds only the shared state. */
#ifndef EE_SVC_H
#define EE_SVC_H

#include "ee_arch.h"
#include "ee_batch.h"
#include "ee_vindex.h"
#include "ee_bert.h"
#include "ee_cnn.h"
#include "ee_config.h"
#include "ee_gguf.h"
#include "ee_llama.h"
#include "ee_metrics.h"
#include "ee_offtrack.h"
#include "ee_proto.h"
#include "ee_seal.h"

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* ---- served models -------------------------------------------------------- */

typedef struct svc_model {
    const char *name;        /* config section name (topics use it) */
    const char *path;
    ee_gguf *gguf;
    ee_model_kind kind;      /* decoder (generate) or encoder (embed) */
    /* decoders */
    ee_llama_model *m;
    ee_llama_ctx *ctx;
    ee_batch *batch;         /* inference thread only */
    /* encoders */
    ee_bert_model *enc;
    /* classifiers (eecnn, stem run by the client) */
    ee_cnn_model *cnn;
    char key_id[EE_PROTO_KEY_ID_LEN + 1];
    int32_t stop[16];        /* encrypted end-of-generation ids */
    int n_stop;
    ee_proto_limits limits;
} svc_model;

/* ---- blind indexes (svc_index.c) --------------------------------------------- */

typedef struct svc_index {
    const char *name;        /* [index NAME] */
    char *topic;             /* ee.index.<name>, compacted */
    int model;               /* the encoder (index into svc.models) */
    int dim;
    ee_vindex_kind kind;
    ee_vindex *vx;           /* vector id = slot */
    rd_kafka_t *rk;          /* assign()ed consumer of the topic */
    pthread_rwlock_t lock;   /* the documents: poll thread writes, inference reads */
    char **ids;              /* [n_slots] document id of each slot */
    char **docs;             /* [n_slots] sealed text, NULL when deleted */
    size_t n_slots, cap_slots, cap_docs, live;
    int64_t *hash;           /* id -> slot, open addressing, -1 empty */
    size_t hcap;
    long rejected;           /* records skipped (logged) */
} svc_index;

/* ---- jobs ------------------------------------------------------------------ */

typedef enum job_state {
    JOB_QUEUED = 0, /* parsed on the poll thread, then in svc.queue */
    JOB_RUNNING,   /* inference thread */
    JOB_REPLYING,  /* final reply / dead letter in flight */
} job_state;

typedef struct svc_job {
    struct svc_job *next;       /* queue / hand-back link */
    struct svc_job *all_prev, *all_next; /* svc.all: every live job (poll thread) */
    _Atomic(job_state) state;   /* written by the owner, read by the poll thread */
    /* where the record came from */
    int cons;                   /* index into svc.cons */
    char *topic;
    int32_t partition;
    int64_t offset;
    int64_t timestamp_ms;       /* record timestamp, -1 unknown */
    uint64_t gen;               /* ee_offtrack generation of the partition */
    void *key;                  /* original key/value/headers, for the DLQ */
    size_t key_len;
    void *value;
    size_t value_len;
    rd_kafka_headers_t *headers;
    /* where to answer: from the request, or what parsing could still read */
    bool has_id, has_reply_to;
    char id[EE_PROTO_ID_MAX + 1];
    char reply_to[EE_PROTO_TOPIC_MAX + 1];
    /* sealed and signed jobs (svc_auth.c) */
    uint8_t *body;              /* the opened request body (sealed records), else NULL */
    size_t body_len;
    bool was_sealed;            /* the record value was sealed */
    bool seal_reply;            /* replies are sealed to reply_pk */
    uint8_t reply_pk[EE_SEAL_PK_BYTES];
    bool signed_ok;             /* a tenant's valid signature covered it */
    int64_t hdr_deadline;       /* ee-deadline header (signed) */
    char tenant[EE_PROTO_NAME_MAX + 1];
    /* the request (valid once parsed) */
    ee_proto_request req;
    bool parsed;
    int model;                  /* index into svc.models */
    const char *cls;            /* class of the topic (svc.cons[cons]) */
    double t_received;          /* ee_now_ms at poll */
    double t_started;           /* taken by the inference thread */
    /* running */
    atomic_bool cancel;         /* poll thread asks: abandon (no reply) */
    uint32_t seq;               /* next reply seq */
    /* outcome */
    bool dlq;                   /* the in-flight record is a dead letter */
    ee_proto_code code;         /* final outcome (OK or the error) */
    char message[EE_ERR_MAX + 512];
    int32_t *out;               /* generated ids (encrypted), final reply */
    uint32_t n_out;
    float *embedding;           /* embed: the encrypted embedding, final reply */
    int dim;
    float *scores;              /* classify: the encrypted class scores, final reply */
    int n_scores;
    ee_proto_hit *hits;         /* search: the hits, final reply */
    size_t n_hits;
    int index;                  /* search: index into svc.indexes */
    const char *finish;         /* "stop", "length" */
    double retry_at;            /* dead letter failed: resend at (ee_now_ms) */
    double queue_ms, prefill_ms, decode_ms;
} svc_job;

/* ---- consumers ------------------------------------------------------------- */

typedef struct svc_cons {
    rd_kafka_t *rk;
    char *group;
    char **topics;      /* ee.requests.<model>.<class> */
    int *topic_model;   /* model index per topic */
    const char **topic_class;
    int n_topics;
    bool paused;        /* we paused its assignment for backpressure */
    int idx;
} svc_cons;

/* ---- hooks --------------------------------------------------------------------- */

struct svc;
/* What the Kafka clients call back into (set by svc_kafka_open): keeps
 * svc_kafka.c below the modules that handle replies and rebalances. */
typedef struct svc_kafka_hooks {
    void (*delivered)(struct svc *s, const rd_kafka_message_t *m);
    void (*rebalance)(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                      rd_kafka_topic_partition_list_t *parts, void *opaque);
} svc_kafka_hooks;

/* ---- the service ------------------------------------------------------------ */

typedef struct svc {
    ee_config *cfg;
    const char *name;           /* worker name */
    svc_model *models;
    int n_models;
    svc_cons *cons;
    int n_cons;
    svc_index *indexes;
    int n_indexes;
    svc_kafka_hooks hooks;      /* svc_kafka_open */
    rd_kafka_t *producer;       /* replaced after a fatal error: use under prod_lock */
    pthread_rwlock_t prod_lock; /* read: produce (any thread); write: the swap */
    pthread_t poll_tid;
    long test_fatal_after;      /* EE_TEST_FATAL_AFTER: test hook, 0 = off */
    long acked;                 /* final replies / dead letters acknowledged */
    ee_offtrack *track;         /* poll thread only */

    /* job queue + hand-back list (poll <-> inference) */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    svc_job *q_head, *q_tail;
    int q_len;
    svc_job *returned;          /* abandoned by the inference thread */
    int running;                /* jobs in the inference thread */
    bool infer_stop;
    bool draining;              /* shutdown: take no new jobs from the queue */
    pthread_t infer_thread;

    int inflight;               /* jobs not yet finished (poll thread) */
    svc_job *all;               /* every live job (poll thread) */
    svc_job **retry;            /* dead letters to resend (poll thread) */
    size_t n_retry, cap_retry;
    atomic_int stop_signal;     /* SIGTERM/SIGINT count */
    atomic_bool fatal;          /* producer fatal error: replace the producer */
    atomic_bool fatal_final;    /* unrecoverable (consumer fatal, no new producer) */
    atomic_bool kafka_down;     /* no broker UP in the last statistics */

    /* sealed and signed jobs: the pool key (when configured) and the
     * replay window (when tenants are configured); poll thread only */
    ee_pool_key pool;
    bool have_pool;
    ee_replay *replay;

    ee_metrics *metrics;
    ee_metrics_server *http;
    atomic_llong tokens_generated;

    /* The poll thread sleeps in poll(2) on wake_rd; librdkafka writes to
     * wake_wr when any consumer queue or the producer's queue goes from
     * empty to non-empty (rd_kafka_queue_io_event_enable), and the
     * inference thread does when it hands a job back. poll_pending: a
     * queue was left non-empty last round (no new event will come). */
    int wake_rd, wake_wr;
    bool poll_pending;
} svc;

#endif
