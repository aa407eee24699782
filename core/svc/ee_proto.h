/* ee_proto: the job protocol, version 1 (docs/PROTOCOL.md is the spec).
 *
 * Requests are JSON records on `ee.requests.<model>.<class>`, keyed by the
 * client's session or job id; workers for (model, class) share the group
 * `ee-workers.<model>.<class>`. Replies are JSON records on the topic the
 * request names (`reply_to`), keyed by the request id. Records that cannot be
 * answered go, byte for byte, to `ee.dlq` with headers saying where they came
 * from and why.
 *
 * Token ids in requests and replies are ENCRYPTED ids (ee_vocab_encrypt on the
 * client); nothing here needs or sees the key.
 *
 * Like the rest of core/, nothing here prints: functions return a status and
 * fill an error naming the field and the problem. */
#ifndef EE_PROTO_H
#define EE_PROTO_H

#include "ee_error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EE_PROTO_VERSION 1

/* ---- topics, groups, headers -------------------------------------------- */

#define EE_PROTO_REQUEST_PREFIX "ee.requests." /* + <model>.<class> */
#define EE_PROTO_GROUP_PREFIX "ee-workers."    /* + <model>.<class> */
#define EE_PROTO_DLQ_TOPIC "ee.dlq"

/* Request record headers (mirror the JSON; workers trust the JSON). */
#define EE_PROTO_HDR_ID "ee-id"
#define EE_PROTO_HDR_REPLY_TO "ee-reply-to"
/* Signed jobs (values covered by the signature, ee_seal.h). */
#define EE_PROTO_HDR_TENANT "ee-tenant"
#define EE_PROTO_HDR_TS "ee-ts"             /* epoch ms when signed */
#define EE_PROTO_HDR_DEADLINE "ee-deadline" /* epoch ms; absent = none */
#define EE_PROTO_HDR_SIG "ee-sig"           /* 128 hex: Ed25519 signature */

/* Dead-letter record headers (values are UTF-8 text, numbers in decimal). */
#define EE_PROTO_HDR_DLQ_TOPIC "ee-dlq-topic"
#define EE_PROTO_HDR_DLQ_PARTITION "ee-dlq-partition"
#define EE_PROTO_HDR_DLQ_OFFSET "ee-dlq-offset"
#define EE_PROTO_HDR_DLQ_TIMESTAMP "ee-dlq-timestamp" /* epoch ms; -1 unknown */
#define EE_PROTO_HDR_DLQ_GROUP "ee-dlq-group"
#define EE_PROTO_HDR_DLQ_ERROR_CODE "ee-dlq-error-code"
#define EE_PROTO_HDR_DLQ_ERROR_MESSAGE "ee-dlq-error-message"
#define EE_PROTO_DLQ_NHDR 7

/* Resource classes. */
#define EE_PROTO_CLASS_SMALL "small"
#define EE_PROTO_CLASS_LARGE "large"

/* ---- field limits --------------------------------------------------------- */

#define EE_PROTO_ID_MAX 128      /* bytes of `id` (and `session`) */
#define EE_PROTO_NAME_MAX 64     /* model / class name: [A-Za-z0-9._-]{1,64} */
#define EE_PROTO_TOPIC_MAX 249   /* Kafka's limit */
#define EE_PROTO_KEY_ID_LEN 32   /* lowercase hex of the 16-byte key id */
#define EE_PROTO_MAX_STOP 16     /* params.stop_ids */
#define EE_PROTO_TEMPERATURE_MAX 100.0
#define EE_PROTO_SEED_MAX 9007199254740992ULL /* 2^53: exact in every JSON */
#define EE_PROTO_DEFAULT_MAX_TOKENS 128       /* clamped to max_new_tokens */

/* ---- error codes ---------------------------------------------------------- */

typedef enum ee_proto_code {
    EE_PROTO_OK = 0,
    EE_PROTO_E_BAD_REQUEST,         /* malformed JSON, missing/mistyped field */
    EE_PROTO_E_UNSUPPORTED_VERSION, /* `v` missing or not 1 */
    EE_PROTO_E_UNKNOWN_MODEL,       /* worker does not serve `model` */
    EE_PROTO_E_UNKNOWN_TASK,        /* `task` is not in the task table */
    EE_PROTO_E_KEY_MISMATCH,        /* `key_id` differs from the model's */
    EE_PROTO_E_TOO_LARGE,           /* prompt/max_tokens over limits, record too big */
    EE_PROTO_E_BAD_TOKEN,           /* a token id outside [0, n_vocab) */
    EE_PROTO_E_EXPIRED,             /* deadline passed before work started */
    EE_PROTO_E_OVERLOADED,          /* worker refused for load (retryable) */
    EE_PROTO_E_INTERNAL,            /* worker bug or resource failure */
    EE_PROTO_E_SHUTTING_DOWN,       /* worker stopping mid-job (retryable) */
    /* appended, never renumbered: sealed and signed jobs */
    EE_PROTO_E_UNAUTHENTICATED,     /* unsigned, badly signed, unknown tenant, unopenable */
    EE_PROTO_E_FORBIDDEN,           /* the tenant may not use this model or class */
    EE_PROTO_E_REPLAYED,            /* id seen within the window, or timestamp outside it */
    /* appended: job kinds */
    EE_PROTO_E_UNSUPPORTED_TASK,    /* a known task the named model does not do */
    EE_PROTO_E_COUNT
} ee_proto_code;

/* "bad_request", ...; "ok" for EE_PROTO_OK; NULL for out-of-range values. */
const char *ee_proto_code_name(ee_proto_code c);
/* Parses a name from ee_proto_code_name (not "ok"); -1 if unknown. */
int ee_proto_code_parse(const char *name, ee_proto_code *out);
/* Whether resending the same request may succeed (overloaded, internal,
 * shutting_down); the others fail again on any worker. */
bool ee_proto_code_retryable(ee_proto_code c);

/* A request error. id / reply_to are kept when they could be read and are
 * valid even if something else failed, so the worker can still send an error
 * reply (has_id && has_reply_to) instead of dead-lettering the record. */
typedef struct ee_proto_error {
    ee_proto_code code;
    char message[EE_ERR_MAX]; /* "field: problem" */
    bool has_id;
    char id[EE_PROTO_ID_MAX + 1];
    bool has_reply_to;
    char reply_to[EE_PROTO_TOPIC_MAX + 1];
} ee_proto_error;

/* Set code and message (printf-style), keep id/reply_to. Returns -1. err may
 * be NULL. For worker-side checks: unknown_model, key_mismatch, ... */
int ee_proto_error_set(ee_proto_error *err, ee_proto_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- requests ------------------------------------------------------------- */

typedef struct ee_proto_limits {
    uint32_t n_vocab;           /* token ids must be < n_vocab (>= 1) */
    uint32_t max_prompt_tokens; /* input.tokens length limit (>= 1) */
    uint32_t max_new_tokens;    /* params.max_tokens limit (>= 1) */
    size_t max_request_bytes;   /* whole record; 0 = no limit */
} ee_proto_limits;

typedef struct ee_proto_params {
    uint32_t max_tokens; /* default min(128, max_new_tokens) */
    double temperature;  /* default 0 (greedy) */
    uint32_t top_k;      /* default 0 (all) */
    double top_p;        /* default 1 */
    uint64_t seed;       /* default 0 */
    int32_t *stop_ids;   /* encrypted, added to the model's; may be NULL */
    size_t n_stop;
} ee_proto_params;

/* Job kinds: the `task` field (table in ee_proto.c). New kinds are
 * appended; a worker advertises and routes each like generate. */
typedef enum ee_proto_task {
    EE_TASK_GENERATE = 0, /* encrypted ids in, encrypted ids out (decoders) */
    EE_TASK_EMBED = 1,    /* encrypted ids in, an encrypted embedding out (encoders) */
    EE_TASK_SEARCH = 2,   /* encrypted ids or query vector in, top-k documents out */
    EE_TASK_CLASSIFY = 3, /* encrypted stem feature map in, encrypted class scores out */
    EE_TASK_COUNT
} ee_proto_task;

typedef struct ee_proto_task_info {
    ee_proto_task task;
    const char *name;   /* the wire value */
    const char *input;  /* what `input` carries */
    const char *output; /* what the final reply carries */
} ee_proto_task_info;

/* The table entry for a wire name, or NULL. */
const ee_proto_task_info *ee_proto_task_find(const char *name);
const ee_proto_task_info *ee_proto_task_get(ee_proto_task task);

typedef struct ee_proto_request {
    char *id;          /* client-chosen, unique */
    char *session;     /* optional (NULL): the record key if present */
    char *model;
    char *key_id;      /* 32 lowercase hex */
    char *task;        /* the wire name (ee_proto_task_find) */
    ee_proto_task task_kind;
    int32_t *tokens;   /* encrypted prompt ids (search: or NULL, see query) */
    size_t n_tokens;
    ee_proto_params params;
    /* search: the index, how many hits, and the query as an encrypted
     * vector when input.embedding is given instead of input.tokens */
    char *index;
    uint32_t k;
    float *query;
    size_t query_dim;
    /* classify: the encrypted feature map of the client's stem
     * (input.fmap; the worker checks its length against the model) */
    float *fmap;
    size_t fmap_len;
    char *reply_to;    /* Kafka topic */
    int64_t deadline_ms; /* absolute epoch ms; 0 = none */
    bool stream;
    char *reply_pk;    /* optional: 64 lowercase hex, X25519 key the reply is sealed to */
} ee_proto_request;

/* Parse and validate a request record (not NUL-terminated: len bytes).
 * Returns 0 and fills out (free with ee_proto_request_free), or -1 with err
 * (code, a message naming the field, id/reply_to when usable) and out zeroed.
 * lim is required. Unknown fields are ignored; duplicate keys are refused. */
int ee_proto_parse_request(const char *buf, size_t len, const ee_proto_limits *lim,
                           ee_proto_request *out, ee_proto_error *err);
void ee_proto_request_free(ee_proto_request *r);

/* Producer side: the request as compact JSON (malloc'd, NUL-terminated), or
 * NULL with err. Does not validate against limits (the worker does);
 * session and params.stop_ids are omitted when NULL / empty, deadline_ms when
 * 0. */
char *ee_proto_request_to_json(const ee_proto_request *r, ee_err *err);

/* Default params (max_tokens = min(128, max_new_tokens) or 128 if lim NULL). */
void ee_proto_params_default(ee_proto_params *p, const ee_proto_limits *lim);

/* Worker side: expired if deadline_ms != 0 and now_ms >= deadline_ms.
 * Returns 0, or -1 with err (code expired, id/reply_to from r). */
int ee_proto_check_deadline(const ee_proto_request *r, int64_t now_ms, ee_proto_error *err);

#define EE_PROTO_MAX_K 100          /* search.k */
#define EE_PROTO_MAX_DIM 65536       /* input.embedding */
#define EE_PROTO_MAX_FMAP (1 << 20)  /* input.fmap values */

/* ---- replies -------------------------------------------------------------- */

/* One search hit: a document of the index, its score (inner product of
 * the encrypted vectors = the plaintext cosine) and its sealed text. */
typedef struct ee_proto_hit {
    char *id;
    double score;
    char *doc;
} ee_proto_hit;

typedef struct ee_proto_reply {
    char *id;
    bool ok;             /* status "ok" / "error" */
    uint32_t seq;        /* 0, 1, ... per request id; the final reply is last */
    bool final;          /* false only on streamed partials */
    /* ok: */
    int32_t *tokens;     /* encrypted; partials: new tokens; final: all */
    size_t n_tokens;
    float *embedding;    /* embed: the encrypted embedding (final reply), else NULL */
    size_t dim;
    ee_proto_hit *hits;  /* search: best first (final reply); n_hits may be 0 */
    size_t n_hits;
    bool is_search;      /* the final reply of a search (hits present, maybe empty) */
    float *scores;       /* classify: the encrypted class scores (final reply), else NULL */
    size_t n_scores;
    char *finish_reason; /* final ok generate replies: "stop", "length", ... else NULL */
    uint32_t prompt_tokens, completion_tokens; /* usage (final ok replies) */
    double queue_ms, prefill_ms, decode_ms;    /* timings (final ok replies) */
    char *worker;        /* worker instance name; may be NULL */
    /* error: */
    ee_proto_code error_code;
    char *error_message;
} ee_proto_reply;

/* The reply as compact JSON (malloc'd), or NULL with err (missing id, an ok
 * final reply without finish_reason, an error reply without a valid code). */
char *ee_proto_reply_to_json(const ee_proto_reply *r, ee_err *err);

/* Convenience: the final error reply for a request id. worker may be NULL. */
char *ee_proto_error_reply_json(const char *id, ee_proto_code code, const char *message,
                                const char *worker, uint32_t seq, ee_err *err);

/* Client side: parse a reply record. Returns 0 (free with
 * ee_proto_reply_free) or -1 with err naming the field. */
int ee_proto_parse_reply(const char *buf, size_t len, ee_proto_reply *out, ee_err *err);
void ee_proto_reply_free(ee_proto_reply *r);

/* ---- index records --------------------------------------------------------- */

/* One document of a blind index, as stored in its compacted topic
 * ee.index.<name> (record key = id; a null value deletes it). */
typedef struct ee_proto_index_record {
    char *id;          /* ee_proto_valid_id */
    char *key_id;      /* the encoder model's key id the vector is encrypted under */
    float *embedding;  /* the encrypted embedding (as the worker returned it) */
    size_t dim;
    char *doc;         /* the sealed document (ee_docseal), opaque here */
} ee_proto_index_record;

char *ee_proto_index_record_to_json(const ee_proto_index_record *r, ee_err *err);
int ee_proto_index_record_parse(const char *buf, size_t len, ee_proto_index_record *out,
                                ee_err *err);
void ee_proto_index_record_free(ee_proto_index_record *r);
/* "ee.index.<name>" (malloc'd), NULL with err for an invalid name. */
char *ee_proto_index_topic(const char *index, ee_err *err);

/* ---- names ---------------------------------------------------------------- */

/* [A-Za-z0-9._-]{1,64}: model and class names. */
bool ee_proto_valid_name(const char *s);
/* 1..249 of [A-Za-z0-9._-], not "." nor "..". */
bool ee_proto_valid_topic(const char *s);
/* 1..128 bytes, no control characters (C0, DEL, UTF-8 C1). */
bool ee_proto_valid_id(const char *s);
/* 32 lowercase hex characters. */
bool ee_proto_valid_key_id(const char *s);

/* "ee.requests.<model>.<class>" / "ee-workers.<model>.<class>" (malloc'd),
 * or NULL with err if a name is invalid. */
char *ee_proto_request_topic(const char *model, const char *cls, ee_err *err);
char *ee_proto_group(const char *model, const char *cls, ee_err *err);

/* Resource class from the size of a job: "small" when prompt_tokens <=
 * small_max_prompt and prompt_tokens + max_tokens <= small_max_total, else
 * "large". Static strings. */
typedef struct ee_proto_class_thresholds {
    uint32_t small_max_prompt;
    uint32_t small_max_total;
} ee_proto_class_thresholds;
#define EE_PROTO_SMALL_MAX_PROMPT_DEFAULT 512
#define EE_PROTO_SMALL_MAX_TOTAL_DEFAULT 1024
const char *ee_proto_choose_class(uint32_t prompt_tokens, uint32_t max_tokens,
                                  const ee_proto_class_thresholds *t);

/* ---- dead letters --------------------------------------------------------- */

typedef struct ee_proto_dlq_info {
    const char *topic;    /* original topic */
    int32_t partition;
    int64_t offset;
    int64_t timestamp_ms; /* record timestamp; -1 unknown */
    const char *group;    /* consumer group that gave up */
    ee_proto_code code;
    const char *message;
} ee_proto_dlq_info;

typedef struct ee_proto_header {
    const char *name; /* static */
    char *value;      /* malloc'd, NUL-terminated */
} ee_proto_header;

/* The EE_PROTO_DLQ_NHDR headers for a dead letter, in the order of the
 * EE_PROTO_HDR_DLQ_* list. Returns 0, or -1 with err (nothing to free). */
int ee_proto_dlq_headers(const ee_proto_dlq_info *d, ee_proto_header out[EE_PROTO_DLQ_NHDR],
                         ee_err *err);
void ee_proto_headers_free(ee_proto_header *h, size_t n);

#endif
