/* ee_config: the worker's configuration file (config/README.md is the spec).
 *
 * INI, parsed with inih: [worker], [limits], one [model NAME] per served
 * model, and [kafka] whose keys pass through to librdkafka verbatim (in file
 * order). Loading is strict: unknown sections and keys (outside [kafka]),
 * duplicate sections and keys, malformed or out-of-range integers, lines
 * longer than inih's buffer and multi-line continuations are all errors, and
 * every error names the file, the line and the key:
 *
 *   worker.ini:7: [worker] threads: 'two' is not an integer in 1..256
 *
 * Values of keys containing "password" or "secret" (any section, any case)
 * are never put in messages; "<redacted>" stands for them.
 *
 * Usage: ee_config_load (or ee_config_init for no file), then
 * ee_config_set_override for each CLI flag (overrides win), then
 * ee_config_validate, and ee_config_free at the end. Nothing here prints. */
#ifndef EE_CONFIG_H
#define EE_CONFIG_H

#include "ee_error.h"
#include "ee_proto.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Ranges (inclusive) checked on load, override and validate. */
#define EE_CONFIG_THREADS_MAX 256
#define EE_CONFIG_INFLIGHT_MAX 4096
#define EE_CONFIG_GRACE_MS_MAX 3600000u          /* one hour */
#define EE_CONFIG_PORT_MAX 65535
#define EE_CONFIG_TOKENS_MAX 1048576u            /* prompt / new tokens */
#define EE_CONFIG_REQUEST_BYTES_MAX 1073741824u  /* 1 GiB */
#define EE_CONFIG_CLASS_MAX 32                   /* [a-z0-9_-]{1,32} */
#define EE_CONFIG_MAX_CLASSES 16
#define EE_CONFIG_FILE_MAX (1u << 20)
#define EE_CONFIG_BATCH_MAX 64                   /* sequences per forward */
#define EE_CONFIG_PARTITIONS_MAX 10000
#define EE_CONFIG_REPLICATION_MAX 32            /* config files over 1 MiB refused */

/* Defaults (what ee_config_init sets). */
#define EE_CONFIG_DEFAULT_NAME "ee-worker"
#define EE_CONFIG_DEFAULT_THREADS 1
/* 0 = auto (ee_config_auto_inflight): chosen when the models are known. */
#define EE_CONFIG_DEFAULT_MAX_INFLIGHT 0
#define EE_CONFIG_DEFAULT_GRACE_MS 20000
#define EE_CONFIG_DEFAULT_METRICS_PORT 9464
#define EE_CONFIG_DEFAULT_MAX_PROMPT_TOKENS 2048
#define EE_CONFIG_DEFAULT_MAX_NEW_TOKENS 512
#define EE_CONFIG_DEFAULT_MAX_REQUEST_BYTES 1048576
#define EE_CONFIG_DEFAULT_MAX_BATCH 4
#define EE_CONFIG_DEFAULT_PARTITIONS 4
#define EE_CONFIG_DEFAULT_REPLICATION 1
#define EE_CONFIG_DEFAULT_METRICS_BIND "127.0.0.1"
#define EE_CONFIG_DEFAULT_REPLAY_WINDOW_MS 600000u  /* 10 minutes */
#define EE_CONFIG_DEFAULT_REPLAY_CAPACITY 1000000u
#define EE_CONFIG_REPLAY_WINDOW_MAX 86400000u        /* one day */
#define EE_CONFIG_REPLAY_CAPACITY_MAX 16777216u

typedef struct ee_config_kv {
    char *key;
    char *value;
} ee_config_kv;

typedef struct ee_config_model {
    char *name; /* ee_proto_valid_name: appears in topics */
    char *path; /* encrypted GGUF */
} ee_config_model;

/* [index NAME]: a blind vector index this worker serves search jobs from
 * (docs/RAG.md); its store is the compacted topic ee.index.NAME. */
typedef struct ee_config_index {
    char *name;  /* ee_proto_valid_name */
    char *model; /* the encoder model ([model X]) whose encrypted vectors it holds */
    char *kind;  /* "flat" (exact, default) or "hnsw" (approximate) */
} ee_config_index;

/* [tenant NAME]: a client allowed to submit signed jobs (docs/PROTOCOL.md,
 * "Sealed and signed jobs"). */
typedef struct ee_config_tenant {
    char *name;       /* ee_proto_valid_name; the ee-tenant header */
    uint8_t pk[32];   /* Ed25519 public key (public_key = 64 hex) */
    bool has_pk;
    char **models;    /* model names it may use; one "*" = all */
    size_t n_models;
    char **classes;   /* classes it may use; one "*" = all; none = all */
    size_t n_classes;
} ee_config_tenant;

typedef struct ee_config {
    ee_config_index *indexes; /* [index NAME] sections / index.NAME=MODEL[:KIND] */
    size_t n_indexes;
    char *source; /* file path, "<string>" or NULL (init only); for messages */

    /* [worker] */
    char *name;            /* `worker` field of replies, logs */
    uint32_t threads;      /* 1..256 */
    char **classes;        /* resource classes served, file order, no duplicates */
    size_t n_classes;
    uint32_t max_inflight; /* 1..4096; 0 until set or chosen (auto) */
    uint32_t grace_ms;     /* 0..3600000 */
    uint32_t metrics_port; /* 0 disables /metrics and /healthz */
    char *group;           /* NULL: ee-workers.<model>.<class> per pair */
    char *metrics_bind;    /* IP literal; NULL: 127.0.0.1 */
    uint32_t max_batch;    /* jobs decoded together in one forward, 1..64 */
    /* sealed and signed jobs (ee_seal.h) */
    uint32_t require_sealed;   /* 0/1: refuse request records that are not sealed */
    uint32_t require_signed;   /* 0/1: refuse jobs without a valid tenant signature */
    char *pool_key;            /* the pool's X25519 key file (needed to open sealed jobs) */
    uint32_t replay_window_ms; /* signed jobs: accepted timestamp skew and id memory */
    uint32_t replay_capacity;  /* ids remembered at most (the oldest are dropped) */

    /* [limits] */
    uint32_t max_prompt_tokens; /* 1..1048576 */
    uint32_t max_new_tokens;    /* 1..1048576 */
    uint32_t max_request_bytes; /* 1..1 GiB */

    /* [topics]: missing request topics (and ee.dlq) are created at start */
    uint32_t topics_create;     /* 0/1 */
    uint32_t topic_partitions;  /* 1..10000 */
    uint32_t topic_replication; /* 1..32 */

    /* [model NAME] */
    ee_config_model *models; /* file order, then overrides */
    size_t n_models;

    /* [tenant NAME] */
    ee_config_tenant *tenants;
    size_t n_tenants;

    /* [kafka]: librdkafka properties, file order (overrides replace in place
     * or append). */
    ee_config_kv *kafka;
    size_t n_kafka;
} ee_config;

/* Zero c and set the defaults. Never fails. */
void ee_config_init(ee_config *c);

/* Init c and parse the file / NUL-terminated text ("<string>" in messages).
 * Returns 0, or -1 with err (FILE:LINE: [section] key: problem) and c freed
 * (ee_config_free on it is harmless). Does not call ee_config_validate. */
int ee_config_load(ee_config *c, const char *path, ee_err *err);
int ee_config_load_string(ee_config *c, const char *text, ee_err *err);

/* Free everything; c is left initialised with the defaults. */
void ee_config_free(ee_config *c);

/* Set one key as a CLI flag would, winning over the file:
 *   "worker.threads" = "4", "worker.classes" = "small,large" (replaces the
 *   list), "worker.group", "worker.name", ..., "limits.max_new_tokens", ...,
 *   "model.NAME" = PATH (adds or replaces), "kafka.PROP" = VALUE (replaces in
 *   place or appends).
 * Same checks as the file. Returns 0, or -1 with err ("override KEY: ...");
 * c is unchanged on failure. */
int ee_config_set_override(ee_config *c, const char *key, const char *value, ee_err *err);

/* Whole-config checks: at least one class and one model (the message names
 * everything missing), every range and name rule above, unique classes and
 * models, non-empty paths, a valid group. Returns 0 or -1 with err. */
int ee_config_validate(const ee_config *c, ee_err *err);

/* ---- accessors ------------------------------------------------------------ */

/* The tenant named name, or NULL. */
const ee_config_tenant *ee_config_tenant_find(const ee_config *c, const char *name);
/* Whether tenant t may use model / class. */
bool ee_config_tenant_allows(const ee_config_tenant *t, const char *model, const char *cls);

/* c->name, or EE_CONFIG_DEFAULT_NAME when unset. */
const char *ee_config_name(const ee_config *c);
/* The kafka value for prop, or NULL. */
const char *ee_config_kafka_get(const ee_config *c, const char *prop);
/* The model named name, or NULL. */
const ee_config_model *ee_config_model_find(const ee_config *c, const char *name);
bool ee_config_has_class(const ee_config *c, const char *cls);
/* Consumer group for (model, class): the `group` override or
 * ee-workers.<model>.<class> (malloc'd), or NULL with err. */
char *ee_config_group_for(const ee_config *c, const char *model, const char *cls, ee_err *err);
/* Request limits for a model with n_vocab tokens. */
ee_proto_limits ee_config_limits(const ee_config *c, uint32_t n_vocab);

/* Whether a value for key must be redacted in messages ("password" or
 * "secret" in the key, any case). */
bool ee_config_key_is_secret(const char *key);

/* The intake bound when max_inflight was not set: a decoder batches
 * max_batch sequences, so holding more only lengthens the queue; an
 * encoder or classifier runs every queued job in one pass, so its bound is
 * 8 x max_batch (32 by default: 4 held classify jobs per pass cost a
 * pause and resume of the partitions each, up to ~1 s apiece on Kafka
 * 3.9; docs/BENCHMARKS.md). */
uint32_t ee_config_auto_inflight(const ee_config *c, bool any_single_pass_model);

#endif
