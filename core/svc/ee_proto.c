/* ee_proto: the job protocol, version 1. See ee_proto.h and docs/PROTOCOL.md. */
#include "ee_proto.h"

#include <inttypes.h>
#include <limits.h>
#include <jansson.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- error codes ---------------------------------------------------------- */

static const char *const code_names[EE_PROTO_E_COUNT] = {
    [EE_PROTO_OK] = "ok",
    [EE_PROTO_E_BAD_REQUEST] = "bad_request",
    [EE_PROTO_E_UNSUPPORTED_VERSION] = "unsupported_version",
    [EE_PROTO_E_UNKNOWN_MODEL] = "unknown_model",
    [EE_PROTO_E_UNKNOWN_TASK] = "unknown_task",
    [EE_PROTO_E_KEY_MISMATCH] = "key_mismatch",
    [EE_PROTO_E_TOO_LARGE] = "too_large",
    [EE_PROTO_E_BAD_TOKEN] = "bad_token",
    [EE_PROTO_E_EXPIRED] = "expired",
    [EE_PROTO_E_OVERLOADED] = "overloaded",
    [EE_PROTO_E_INTERNAL] = "internal",
    [EE_PROTO_E_SHUTTING_DOWN] = "shutting_down",
    [EE_PROTO_E_UNAUTHENTICATED] = "unauthenticated",
    [EE_PROTO_E_FORBIDDEN] = "forbidden",
    [EE_PROTO_E_REPLAYED] = "replayed",
    [EE_PROTO_E_UNSUPPORTED_TASK] = "unsupported_task",
};

/* ---- job kinds ------------------------------------------------------------ */

static const ee_proto_task_info TASKS[] = {
    /* task              wire name   input                  final reply */
    {EE_TASK_GENERATE, "generate", "encrypted prompt ids", "encrypted generated ids"},
    {EE_TASK_EMBED,    "embed",    "encrypted ids of one text ([CLS] .. [SEP])",
                                   "the encrypted embedding (floats)"},
    {EE_TASK_SEARCH,   "search",   "encrypted ids of the query, or its encrypted embedding",
                                   "the top-k documents of the index: ids, scores, sealed texts"},
    {EE_TASK_CLASSIFY, "classify", "the encrypted feature map of the client's stem (floats)",
                                   "the encrypted class scores (floats)"},
};

const ee_proto_task_info *ee_proto_task_find(const char *name) {
    for (size_t i = 0; name && i < sizeof TASKS / sizeof TASKS[0]; i++)
        if (strcmp(TASKS[i].name, name) == 0) return &TASKS[i];
    return NULL;
}

const ee_proto_task_info *ee_proto_task_get(ee_proto_task task) {
    for (size_t i = 0; i < sizeof TASKS / sizeof TASKS[0]; i++)
        if (TASKS[i].task == task) return &TASKS[i];
    return NULL;
}

/* "only \"generate\"" or "\"a\", \"b\"": the known names, for errors. */
static void task_names(char *out, size_t cap) {
    size_t n = sizeof TASKS / sizeof TASKS[0], o = 0;
    out[0] = '\0';
    if (n == 1) {
        snprintf(out, cap, "only \"%s\"", TASKS[0].name);
        return;
    }
    for (size_t i = 0; i < n && o < cap; i++)
        o += (size_t)snprintf(out + o, cap - o, "%s\"%s\"", i ? ", " : "", TASKS[i].name);
}

const char *ee_proto_code_name(ee_proto_code c) {
    if ((int)c < 0 || c >= EE_PROTO_E_COUNT) return NULL;
    return code_names[c];
}

int ee_proto_code_parse(const char *name, ee_proto_code *out) {
    if (!name) return -1;
    for (int c = 1; c < EE_PROTO_E_COUNT; c++) {
        if (strcmp(name, code_names[c]) == 0) {
            if (out) *out = (ee_proto_code)c;
            return 0;
        }
    }
    return -1;
}

bool ee_proto_code_retryable(ee_proto_code c) {
    return c == EE_PROTO_E_OVERLOADED || c == EE_PROTO_E_INTERNAL ||
           c == EE_PROTO_E_SHUTTING_DOWN;
}

int ee_proto_error_set(ee_proto_error *err, ee_proto_code code, const char *fmt, ...) {
    if (!err) return -1;
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return -1;
}

/* ---- names ---------------------------------------------------------------- */

static bool name_char(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '_' || c == '-';
}

static bool charset_ok(const char *s, size_t max) {
    if (!s) return false;
    size_t n = 0;
    for (; s[n]; n++) {
        if (n >= max || !name_char((unsigned char)s[n])) return false;
    }
    return n >= 1;
}

bool ee_proto_valid_name(const char *s) { return charset_ok(s, EE_PROTO_NAME_MAX); }

bool ee_proto_valid_topic(const char *s) {
    if (!charset_ok(s, EE_PROTO_TOPIC_MAX)) return false;
    return strcmp(s, ".") != 0 && strcmp(s, "..") != 0;
}

bool ee_proto_valid_id(const char *s) {
    if (!s) return false;
    size_t n = strlen(s);
    if (n < 1 || n > EE_PROTO_ID_MAX) return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f) return false;
        /* U+0080..U+009F (C1 controls) are C2 80..C2 9F in UTF-8 */
        if (c == 0xc2 && i + 1 < n && (unsigned char)s[i + 1] >= 0x80 &&
            (unsigned char)s[i + 1] <= 0x9f)
            return false;
    }
    return true;
}

bool ee_proto_valid_key_id(const char *s) {
    if (!s) return false;
    size_t n = 0;
    for (; s[n]; n++) {
        char c = s[n];
        if (n >= EE_PROTO_KEY_ID_LEN || !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    }
    return n == EE_PROTO_KEY_ID_LEN;
}

static char *join3(const char *prefix, const char *model, const char *cls, ee_err *err) {
    if (!ee_proto_valid_name(model))
        return ee_err_set(err, "model name must match [A-Za-z0-9._-]{1,%d}", EE_PROTO_NAME_MAX),
               NULL;
    if (!ee_proto_valid_name(cls))
        return ee_err_set(err, "class name must match [A-Za-z0-9._-]{1,%d}", EE_PROTO_NAME_MAX),
               NULL;
    size_t n = strlen(prefix) + strlen(model) + 1 + strlen(cls) + 1;
    char *s = malloc(n);
    if (!s) return ee_err_set(err, "out of memory"), NULL;
    snprintf(s, n, "%s%s.%s", prefix, model, cls);
    return s;
}

char *ee_proto_request_topic(const char *model, const char *cls, ee_err *err) {
    return join3(EE_PROTO_REQUEST_PREFIX, model, cls, err);
}

char *ee_proto_group(const char *model, const char *cls, ee_err *err) {
    return join3(EE_PROTO_GROUP_PREFIX, model, cls, err);
}

const char *ee_proto_choose_class(uint32_t prompt_tokens, uint32_t max_tokens,
                                  const ee_proto_class_thresholds *t) {
    uint32_t max_prompt = t ? t->small_max_prompt : EE_PROTO_SMALL_MAX_PROMPT_DEFAULT;
    uint32_t max_total = t ? t->small_max_total : EE_PROTO_SMALL_MAX_TOTAL_DEFAULT;
    uint64_t total = (uint64_t)prompt_tokens + max_tokens;
    if (prompt_tokens <= max_prompt && total <= max_total) return EE_PROTO_CLASS_SMALL;
    return EE_PROTO_CLASS_LARGE;
}

/* ---- request parsing ------------------------------------------------------ */

static char *xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

#define FAIL(code, ...) return ee_proto_error_set(err, code, __VA_ARGS__)
#define OOM() FAIL(EE_PROTO_E_INTERNAL, "out of memory")

/* Optional fields: absent and JSON null both mean "use the default". */
static json_t *opt(json_t *obj, const char *key) {
    json_t *v = json_object_get(obj, key);
    return json_is_null(v) ? NULL : v;
}

static const char *type_name(const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a real number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "?";
}

/* A required string field; *out points into the JSON (borrowed). */
static int req_string(json_t *obj, const char *key, const char **out, ee_proto_error *err) {
    json_t *v = json_object_get(obj, key);
    if (!v) FAIL(EE_PROTO_E_BAD_REQUEST, "%s: missing", key);
    if (!json_is_string(v)) FAIL(EE_PROTO_E_BAD_REQUEST, "%s: must be a string, not %s", key,
                                 type_name(v));
    *out = json_string_value(v);
    return 0;
}

/* An integer field in [lo, hi]; below lo / above hi give the codes given. */
static int int_field(json_t *v, const char *path, long long lo, long long hi,
                     ee_proto_code code_hi, long long *out, ee_proto_error *err) {
    if (!json_is_integer(v))
        FAIL(EE_PROTO_E_BAD_REQUEST, "%s: must be an integer, not %s", path, type_name(v));
    long long x = json_integer_value(v);
    if (x < lo) FAIL(EE_PROTO_E_BAD_REQUEST, "%s: %lld is below the minimum %lld", path, x, lo);
    if (x > hi) FAIL(code_hi, "%s: %lld is over the maximum %lld", path, x, hi);
    *out = x;
    return 0;
}

/* An array of token ids in [0, n_vocab); malloc'd into *out. */
static int token_array(json_t *v, const char *path, size_t min_n, size_t max_n,
                       ee_proto_code code_many, uint32_t n_vocab, int32_t **out, size_t *n_out,
                       ee_proto_error *err) {
    if (!json_is_array(v))
        FAIL(EE_PROTO_E_BAD_REQUEST, "%s: must be an array, not %s", path, type_name(v));
    size_t n = json_array_size(v);
    if (n < min_n) FAIL(EE_PROTO_E_BAD_REQUEST, "%s: must not be empty", path);
    if (n > max_n) FAIL(code_many, "%s: %zu ids, over the limit of %zu", path, n, max_n);
    int32_t *t = NULL;
    if (n) {
        t = malloc(n * sizeof *t);
        if (!t) OOM();
    }
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(v, i);
        if (!json_is_integer(e)) {
            free(t);
            FAIL(EE_PROTO_E_BAD_REQUEST, "%s[%zu]: must be an integer, not %s", path, i,
                 type_name(e));
        }
        long long x = json_integer_value(e);
        if (x < 0 || x >= (long long)n_vocab) {
            free(t);
            FAIL(EE_PROTO_E_BAD_TOKEN, "%s[%zu]: token id %lld out of range [0, %" PRIu32 ")",
                 path, i, x, n_vocab);
        }
        t[i] = (int32_t)x;
    }
    *out = t;
    *n_out = n;
    return 0;
}

static int number_field(json_t *v, const char *path, double *out, ee_proto_error *err) {
    if (!json_is_number(v))
        FAIL(EE_PROTO_E_BAD_REQUEST, "%s: must be a number, not %s", path, type_name(v));
    double x = json_number_value(v);
    if (!isfinite(x)) FAIL(EE_PROTO_E_BAD_REQUEST, "%s: must be finite", path);
    *out = x;
    return 0;
}

/* A non-empty array of at most max finite numbers (input.embedding,
 * input.fmap), as floats. */
static int float_array(json_t *a, const char *path, size_t max, float **out, size_t *n_out,
                       ee_proto_error *err) {
    if (!a) FAIL(EE_PROTO_E_BAD_REQUEST, "%s: missing", path);
    if (!json_is_array(a) || json_array_size(a) == 0)
        FAIL(EE_PROTO_E_BAD_REQUEST, "%s: must be a non-empty array of numbers", path);
    size_t n = json_array_size(a);
    if (n > max) FAIL(EE_PROTO_E_TOO_LARGE, "%s: %zu values, over the limit of %zu", path, n, max);
    if (!(*out = malloc(n * sizeof **out))) OOM();
    for (size_t i = 0; i < n; i++) {
        double x = 0;
        char p[64];
        snprintf(p, sizeof p, "%s[%zu]", path, i);
        if (number_field(json_array_get(a, i), p, &x, err)) return -1;
        if (fabs(x) > FLT_MAX) FAIL(EE_PROTO_E_BAD_REQUEST, "%s: %g is outside the float range", p, x);
        (*out)[i] = (float)x;
    }
    *n_out = n;
    return 0;
}

void ee_proto_params_default(ee_proto_params *p, const ee_proto_limits *lim) {
    memset(p, 0, sizeof *p);
    p->max_tokens = EE_PROTO_DEFAULT_MAX_TOKENS;
    if (lim && lim->max_new_tokens && lim->max_new_tokens < p->max_tokens)
        p->max_tokens = lim->max_new_tokens;
    p->temperature = 0.0;
    p->top_k = 0;
    p->top_p = 1.0;
    p->seed = 0;
}

static int parse_params(json_t *pj, const ee_proto_limits *lim, ee_proto_params *p,
                        ee_proto_error *err) {
    ee_proto_params_default(p, lim);
    if (!pj) return 0;
    if (!json_is_object(pj))
        FAIL(EE_PROTO_E_BAD_REQUEST, "params: must be an object, not %s", type_name(pj));
    json_t *v;
    long long x;
    if ((v = opt(pj, "max_tokens"))) {
        if (int_field(v, "params.max_tokens", 1, lim->max_new_tokens, EE_PROTO_E_TOO_LARGE, &x,
                      err))
            return -1;
        p->max_tokens = (uint32_t)x;
    }
    if ((v = opt(pj, "temperature"))) {
        if (number_field(v, "params.temperature", &p->temperature, err)) return -1;
        if (p->temperature < 0 || p->temperature > EE_PROTO_TEMPERATURE_MAX)
            FAIL(EE_PROTO_E_BAD_REQUEST, "params.temperature: %g outside [0, %g]",
                 p->temperature, EE_PROTO_TEMPERATURE_MAX);
    }
    if ((v = opt(pj, "top_k"))) {
        if (int_field(v, "params.top_k", 0, INT32_MAX, EE_PROTO_E_BAD_REQUEST, &x, err))
            return -1;
        p->top_k = (uint32_t)x;
    }
    if ((v = opt(pj, "top_p"))) {
        if (number_field(v, "params.top_p", &p->top_p, err)) return -1;
        if (!(p->top_p > 0 && p->top_p <= 1))
            FAIL(EE_PROTO_E_BAD_REQUEST, "params.top_p: %g outside (0, 1]", p->top_p);
    }
    if ((v = opt(pj, "seed"))) {
        if (int_field(v, "params.seed", 0, (long long)EE_PROTO_SEED_MAX, EE_PROTO_E_BAD_REQUEST,
                      &x, err))
            return -1;
        p->seed = (uint64_t)x;
    }
    if ((v = opt(pj, "stop_ids"))) {
        if (token_array(v, "params.stop_ids", 0, EE_PROTO_MAX_STOP, EE_PROTO_E_BAD_REQUEST,
                        lim->n_vocab, &p->stop_ids, &p->n_stop, err))
            return -1;
    }
    return 0;
}

/* Keep id and reply_to in err when they are present and valid. */
static void recover_ids(json_t *root, ee_proto_error *err) {
    const char *s = json_string_value(json_object_get(root, "id"));
    if (s && ee_proto_valid_id(s)) {
        memcpy(err->id, s, strlen(s) + 1);
        err->has_id = true;
    }
    s = json_string_value(json_object_get(root, "reply_to"));
    if (s && ee_proto_valid_topic(s)) {
        memcpy(err->reply_to, s, strlen(s) + 1);
        err->has_reply_to = true;
    }
}

static int dup_into(char **dst, const char *s, ee_proto_error *err) {
    if (!(*dst = xstrdup(s))) OOM();
    return 0;
}

static int parse_fields(json_t *root, const ee_proto_limits *lim, ee_proto_request *r,
                        ee_proto_error *err) {
    const char *s;
    json_t *v;

    /* v first: a later version may change everything else */
    v = json_object_get(root, "v");
    if (!v) FAIL(EE_PROTO_E_UNSUPPORTED_VERSION, "v: missing (this worker speaks version %d)",
                 EE_PROTO_VERSION);
    if (!json_is_integer(v) || json_integer_value(v) != EE_PROTO_VERSION)
        FAIL(EE_PROTO_E_UNSUPPORTED_VERSION, "v: must be the integer %d", EE_PROTO_VERSION);

    if (req_string(root, "id", &s, err)) return -1;
    size_t n = strlen(s);
    if (n == 0) FAIL(EE_PROTO_E_BAD_REQUEST, "id: must not be empty");
    if (n > EE_PROTO_ID_MAX)
        FAIL(EE_PROTO_E_BAD_REQUEST, "id: %zu bytes, over the limit of %d", n, EE_PROTO_ID_MAX);
    if (!ee_proto_valid_id(s)) FAIL(EE_PROTO_E_BAD_REQUEST, "id: contains control characters");
    if (dup_into(&r->id, s, err)) return -1;

    if (req_string(root, "reply_to", &s, err)) return -1;
    if (!ee_proto_valid_topic(s))
        FAIL(EE_PROTO_E_BAD_REQUEST,
             "reply_to: not a valid Kafka topic name (1..%d of [A-Za-z0-9._-], not . or ..)",
             EE_PROTO_TOPIC_MAX);
    if (dup_into(&r->reply_to, s, err)) return -1;

    if (req_string(root, "model", &s, err)) return -1;
    if (!ee_proto_valid_name(s))
        FAIL(EE_PROTO_E_BAD_REQUEST, "model: must match [A-Za-z0-9._-]{1,%d}",
             EE_PROTO_NAME_MAX);
    if (dup_into(&r->model, s, err)) return -1;

    if (req_string(root, "task", &s, err)) return -1;
    const ee_proto_task_info *ti = ee_proto_task_find(s);
    if (!ti) {
        char known[128];
        task_names(known, sizeof known);
        FAIL(EE_PROTO_E_UNKNOWN_TASK, "task: unknown task (version %d has %s)", EE_PROTO_VERSION,
             known);
    }
    r->task_kind = ti->task;
    if (dup_into(&r->task, s, err)) return -1;

    if (req_string(root, "key_id", &s, err)) return -1;
    if (!ee_proto_valid_key_id(s))
        FAIL(EE_PROTO_E_BAD_REQUEST, "key_id: must be %d lowercase hex characters",
             EE_PROTO_KEY_ID_LEN);
    if (dup_into(&r->key_id, s, err)) return -1;

    v = json_object_get(root, "input");
    if (!v) FAIL(EE_PROTO_E_BAD_REQUEST, "input: missing");
    if (!json_is_object(v))
        FAIL(EE_PROTO_E_BAD_REQUEST, "input: must be an object, not %s", type_name(v));
    if (r->task_kind == EE_TASK_CLASSIFY) {
        if (json_object_get(v, "tokens"))
            FAIL(EE_PROTO_E_BAD_REQUEST, "input.tokens: a classify job carries input.fmap, not tokens");
        if (float_array(json_object_get(v, "fmap"), "input.fmap", EE_PROTO_MAX_FMAP, &r->fmap,
                        &r->fmap_len, err))
            return -1;
    }
    json_t *toks = r->task_kind == EE_TASK_CLASSIFY ? NULL : json_object_get(v, "tokens");
    json_t *qv = r->task_kind == EE_TASK_SEARCH ? json_object_get(v, "embedding") : NULL;
    if (toks && qv) FAIL(EE_PROTO_E_BAD_REQUEST, "input: give tokens or embedding, not both");
    if (!toks && !qv && r->task_kind != EE_TASK_CLASSIFY)
        FAIL(EE_PROTO_E_BAD_REQUEST, "input.tokens: missing%s",
             r->task_kind == EE_TASK_SEARCH ? " (or input.embedding)" : "");
    if (toks && token_array(toks, "input.tokens", 1, lim->max_prompt_tokens, EE_PROTO_E_TOO_LARGE,
                            lim->n_vocab, &r->tokens, &r->n_tokens, err))
        return -1;
    if (qv && float_array(qv, "input.embedding", EE_PROTO_MAX_DIM, &r->query, &r->query_dim, err))
        return -1;
    if (r->task_kind == EE_TASK_SEARCH) {
        json_t *so = json_object_get(root, "search");
        if (!so) FAIL(EE_PROTO_E_BAD_REQUEST, "search: missing (a search job names its index)");
        if (!json_is_object(so))
            FAIL(EE_PROTO_E_BAD_REQUEST, "search: must be an object, not %s", type_name(so));
        const char *ix;
        if (req_string(so, "index", &ix, err)) {
            snprintf(err->message, sizeof err->message, "search.index: missing or not a string");
            return -1;
        }
        if (!ee_proto_valid_name(ix))
            FAIL(EE_PROTO_E_BAD_REQUEST, "search.index: must match [A-Za-z0-9._-]{1,%d}",
                 EE_PROTO_NAME_MAX);
        if (dup_into(&r->index, ix, err)) return -1;
        r->k = 5;
        json_t *kv = opt(so, "k");
        long long x;
        if (kv) {
            if (int_field(kv, "search.k", 1, EE_PROTO_MAX_K, EE_PROTO_E_TOO_LARGE, &x, err)) return -1;
            r->k = (uint32_t)x;
        }
    }

    if (parse_params(opt(root, "params"), lim, &r->params, err)) return -1;

    if ((v = opt(root, "deadline_ms"))) {
        long long x;
        if (int_field(v, "deadline_ms", 0, LLONG_MAX, EE_PROTO_E_BAD_REQUEST, &x, err))
            return -1;
        r->deadline_ms = x;
    }

    if ((v = opt(root, "stream"))) {
        if (!json_is_boolean(v))
            FAIL(EE_PROTO_E_BAD_REQUEST, "stream: must be a boolean, not %s", type_name(v));
        r->stream = json_is_true(v);
        if (r->stream && r->task_kind != EE_TASK_GENERATE)
            FAIL(EE_PROTO_E_BAD_REQUEST, "stream: only generate jobs stream (task is %s)", r->task);
    }

    if ((v = opt(root, "session"))) {
        if (!json_is_string(v))
            FAIL(EE_PROTO_E_BAD_REQUEST, "session: must be a string, not %s", type_name(v));
        if (!ee_proto_valid_id(json_string_value(v)))
            FAIL(EE_PROTO_E_BAD_REQUEST,
                 "session: must be 1..%d bytes without control characters", EE_PROTO_ID_MAX);
        if (dup_into(&r->session, json_string_value(v), err)) return -1;
    }

    if ((v = opt(root, "reply_pk"))) { /* sealed jobs: the key the reply is sealed to */
        const char *pkh = json_is_string(v) ? json_string_value(v) : NULL;
        bool hex = pkh && strlen(pkh) == 64;
        for (size_t i = 0; hex && i < 64; i++)
            hex = (pkh[i] >= '0' && pkh[i] <= '9') || (pkh[i] >= 'a' && pkh[i] <= 'f');
        if (!hex)
            FAIL(EE_PROTO_E_BAD_REQUEST, "reply_pk: must be 64 lowercase hex characters (an "
                                         "X25519 public key)");
        if (dup_into(&r->reply_pk, pkh, err)) return -1;
    }
    return 0;
}

int ee_proto_parse_request(const char *buf, size_t len, const ee_proto_limits *lim,
                           ee_proto_request *out, ee_proto_error *err) {
    ee_proto_error scratch;
    if (!err) err = &scratch;
    memset(err, 0, sizeof *err);
    if (out) memset(out, 0, sizeof *out);
    if (!out || !lim || lim->n_vocab == 0 || lim->max_prompt_tokens == 0 ||
        lim->max_new_tokens == 0)
        FAIL(EE_PROTO_E_INTERNAL, "request: parser called without output or valid limits");
    if (!buf || len == 0) FAIL(EE_PROTO_E_BAD_REQUEST, "request: empty record");
    if (lim->max_request_bytes && len > lim->max_request_bytes)
        FAIL(EE_PROTO_E_TOO_LARGE, "request: %zu bytes, over the limit of %zu", len,
             lim->max_request_bytes);

    json_error_t je;
    json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        FAIL(EE_PROTO_E_BAD_REQUEST, "request: not valid JSON (line %d, column %d): %s", je.line,
             je.column, je.text);
    if (!json_is_object(root)) {
        json_decref(root);
        FAIL(EE_PROTO_E_BAD_REQUEST, "request: must be a JSON object");
    }
    recover_ids(root, err);
    int rc = parse_fields(root, lim, out, err);
    json_decref(root);
    if (rc) {
        ee_proto_request_free(out);
        return -1;
    }
    err->code = EE_PROTO_OK;
    err->message[0] = '\0';
    return 0;
}

void ee_proto_request_free(ee_proto_request *r) {
    if (!r) return;
    free(r->id);
    free(r->session);
    free(r->model);
    free(r->key_id);
    free(r->task);
    free(r->index);
    free(r->query);
    free(r->fmap);
    free(r->tokens);
    free(r->params.stop_ids);
    free(r->reply_to);
    free(r->reply_pk);
    memset(r, 0, sizeof *r);
}

int ee_proto_check_deadline(const ee_proto_request *r, int64_t now_ms, ee_proto_error *err) {
    if (!r->deadline_ms || now_ms < r->deadline_ms) return 0;
    if (err) {
        memset(err, 0, sizeof *err);
        if (r->id && ee_proto_valid_id(r->id)) {
            snprintf(err->id, sizeof err->id, "%s", r->id);
            err->has_id = true;
        }
        if (r->reply_to && ee_proto_valid_topic(r->reply_to)) {
            snprintf(err->reply_to, sizeof err->reply_to, "%s", r->reply_to);
            err->has_reply_to = true;
        }
    }
    FAIL(EE_PROTO_E_EXPIRED, "deadline_ms: %" PRId64 " passed %" PRId64 " ms ago",
         r->deadline_ms, now_ms - r->deadline_ms);
}

#undef FAIL
#undef OOM

/* ---- JSON building -------------------------------------------------------- */

/* Set obj[key] = v (stealing v); a NULL v or a failed set marks *bad. */
static void put(json_t *obj, const char *key, json_t *v, bool *bad) {
    if (!v || json_object_set_new(obj, key, v) != 0) *bad = true;
}

static json_t *token_json(const int32_t *t, size_t n, bool *bad) {
    json_t *a = json_array();
    if (!a) return NULL;
    for (size_t i = 0; i < n; i++)
        if (json_array_append_new(a, json_integer(t[i])) != 0) *bad = true;
    return a;
}

static char *dump(json_t *root, bool bad, int precision, ee_err *err) {
    if (bad || !root) {
        json_decref(root);
        ee_err_set(err, "out of memory building JSON");
        return NULL;
    }
    char *s = json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(precision));
    json_decref(root);
    if (!s) ee_err_set(err, "cannot serialise JSON (invalid UTF-8 in a string?)");
    return s;
}

/* finite floats as a JSON array; a non-finite value sets *bad */
static json_t *float_json(const float *v, size_t n, bool *bad) {
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++) {
        if (!isfinite(v[i])) *bad = true;
        if (json_array_append_new(a, json_real(v[i]))) *bad = true;
    }
    if (!a) *bad = true;
    return a;
}

char *ee_proto_request_to_json(const ee_proto_request *r, ee_err *err) {
    if (!r || !r->id || !r->model || !r->key_id || !r->reply_to || (!r->tokens && r->n_tokens) ||
        (!r->fmap && r->fmap_len))
        return ee_err_set(err, "request: id, model, key_id, reply_to and tokens are required"),
               NULL;
    if (r->params.n_stop && !r->params.stop_ids)
        return ee_err_set(err, "request: params.stop_ids is NULL with n_stop > 0"), NULL;
    bool bad = false;
    json_t *root = json_object();
    if (!root) return dump(NULL, true, 17, err);
    put(root, "v", json_integer(EE_PROTO_VERSION), &bad);
    put(root, "id", json_string(r->id), &bad);
    if (r->session) put(root, "session", json_string(r->session), &bad);
    put(root, "model", json_string(r->model), &bad);
    put(root, "key_id", json_string(r->key_id), &bad);
    put(root, "task", json_string(r->task ? r->task : "generate"), &bad);
    json_t *input = json_object();
    if (input && r->fmap) {
        put(input, "fmap", float_json(r->fmap, r->fmap_len, &bad), &bad);
    } else if (input && r->query) {
        put(input, "embedding", float_json(r->query, r->query_dim, &bad), &bad);
    } else if (input) {
        put(input, "tokens", token_json(r->tokens, r->n_tokens, &bad), &bad);
    }
    put(root, "input", input, &bad);
    if (r->index) {
        json_t *so = json_object();
        if (so) {
            put(so, "index", json_string(r->index), &bad);
            put(so, "k", json_integer(r->k ? r->k : 5), &bad);
        }
        put(root, "search", so, &bad);
    }
    json_t *p = json_object();
    if (p) {
        put(p, "max_tokens", json_integer(r->params.max_tokens), &bad);
        put(p, "temperature", json_real(r->params.temperature), &bad);
        put(p, "top_k", json_integer(r->params.top_k), &bad);
        put(p, "top_p", json_real(r->params.top_p), &bad);
        put(p, "seed", json_integer((json_int_t)r->params.seed), &bad);
        if (r->params.n_stop)
            put(p, "stop_ids", token_json(r->params.stop_ids, r->params.n_stop, &bad), &bad);
    }
    put(root, "params", p, &bad);
    put(root, "reply_to", json_string(r->reply_to), &bad);
    if (r->deadline_ms) put(root, "deadline_ms", json_integer(r->deadline_ms), &bad);
    put(root, "stream", json_boolean(r->stream), &bad);
    if (r->reply_pk) put(root, "reply_pk", json_string(r->reply_pk), &bad);
    /* json_string returns NULL for invalid UTF-8: reported as a failed put */
    return dump(root, bad, 17, err);
}

char *ee_proto_reply_to_json(const ee_proto_reply *r, ee_err *err) {
    if (!r || !r->id) return ee_err_set(err, "reply: id is required"), NULL;
    if (r->ok && r->final && !r->finish_reason && !r->embedding && !r->is_search && !r->scores)
        return ee_err_set(err, "reply: a final ok reply needs finish_reason, an embedding, hits "
                               "or scores"),
               NULL;
    if (r->ok && r->n_tokens && !r->tokens)
        return ee_err_set(err, "reply: tokens is NULL with n_tokens > 0"), NULL;
    if (!r->ok && (r->error_code <= EE_PROTO_OK || r->error_code >= EE_PROTO_E_COUNT))
        return ee_err_set(err, "reply: an error reply needs a valid error code"), NULL;
    bool bad = false;
    json_t *root = json_object();
    if (!root) return dump(NULL, true, 15, err);
    put(root, "v", json_integer(EE_PROTO_VERSION), &bad);
    put(root, "id", json_string(r->id), &bad);
    put(root, "status", json_string(r->ok ? "ok" : "error"), &bad);
    put(root, "seq", json_integer(r->seq), &bad);
    put(root, "final", json_boolean(r->ok ? r->final : true), &bad);
    if (r->ok) {
        json_t *o = json_object();
        if (o && r->embedding) {
            put(o, "embedding", float_json(r->embedding, r->dim, &bad), &bad);
        } else if (o && r->scores) {
            put(o, "scores", float_json(r->scores, r->n_scores, &bad), &bad);
        } else if (o && r->is_search) {
            json_t *a = json_array();
            for (size_t i = 0; a && i < r->n_hits; i++) {
                const ee_proto_hit *h = &r->hits[i];
                json_t *e = json_object();
                if (!e || !h->id || !isfinite(h->score)) bad = true;
                if (e) {
                    put(e, "id", json_string(h->id ? h->id : ""), &bad);
                    put(e, "score", json_real(h->score), &bad);
                    if (h->doc) put(e, "doc", json_string(h->doc), &bad);
                }
                if (json_array_append_new(a, e)) bad = true;
            }
            put(o, "hits", a, &bad);
        } else if (o) {
            put(o, "tokens", token_json(r->tokens, r->n_tokens, &bad), &bad);
        }
        put(root, "output", o, &bad);
        if (r->final) {
            if (r->finish_reason) put(root, "finish_reason", json_string(r->finish_reason), &bad);
            json_t *u = json_object();
            if (u) {
                put(u, "prompt_tokens", json_integer(r->prompt_tokens), &bad);
                put(u, "completion_tokens", json_integer(r->completion_tokens), &bad);
            }
            put(root, "usage", u, &bad);
            json_t *t = json_object();
            if (t) {
                put(t, "queue_ms", json_real(r->queue_ms), &bad);
                put(t, "prefill_ms", json_real(r->prefill_ms), &bad);
                put(t, "decode_ms", json_real(r->decode_ms), &bad);
            }
            put(root, "timings", t, &bad);
        }
    } else {
        json_t *e = json_object();
        if (e) {
            put(e, "code", json_string(ee_proto_code_name(r->error_code)), &bad);
            put(e, "message", json_string(r->error_message ? r->error_message : ""), &bad);
        }
        put(root, "error", e, &bad);
    }
    if (r->worker) put(root, "worker", json_string(r->worker), &bad);
    return dump(root, bad, 15, err);
}

char *ee_proto_error_reply_json(const char *id, ee_proto_code code, const char *message,
                                const char *worker, uint32_t seq, ee_err *err) {
    ee_proto_reply r = {
        .id = (char *)id,
        .ok = false,
        .seq = seq,
        .final = true,
        .worker = (char *)worker,
        .error_code = code,
        .error_message = (char *)message,
    };
    return ee_proto_reply_to_json(&r, err);
}

/* ---- reply parsing (client side) ------------------------------------------ */

static int rep_int(json_t *obj, const char *key, const char *path, bool required, long long lo,
                   long long hi, long long *out, ee_err *err) {
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) {
        if (required) return ee_err_set(err, "%s: missing", path);
        return 0;
    }
    if (!json_is_integer(v)) return ee_err_set(err, "%s: must be an integer", path);
    long long x = json_integer_value(v);
    if (x < lo || x > hi) return ee_err_set(err, "%s: %lld out of range", path, x);
    *out = x;
    return 0;
}

static int rep_real(json_t *obj, const char *key, const char *path, double *out, ee_err *err) {
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_number(v)) return ee_err_set(err, "%s: must be a number", path);
    *out = json_number_value(v);
    return 0;
}

static int rep_str(json_t *obj, const char *key, const char *path, bool required, char **out,
                   ee_err *err) {
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) {
        if (required) return ee_err_set(err, "%s: missing", path);
        return 0;
    }
    if (!json_is_string(v)) return ee_err_set(err, "%s: must be a string", path);
    if (!(*out = xstrdup(json_string_value(v)))) return ee_err_set(err, "out of memory");
    return 0;
}

/* output.embedding / output.scores: a non-empty array of finite numbers. */
static int reply_floats(json_t *a, const char *path, float **out, size_t *n_out, ee_err *err) {
    if (!json_is_array(a) || json_array_size(a) == 0 || json_array_size(a) > (1u << 20))
        return ee_err_set(err, "%s: must be a non-empty array of numbers", path);
    size_t n = json_array_size(a);
    if (!(*out = malloc(n * sizeof **out))) return ee_err_set(err, "out of memory");
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(a, i);
        if (!json_is_number(e) || !isfinite(json_number_value(e)) ||
            fabs(json_number_value(e)) > FLT_MAX)
            return ee_err_set(err, "%s[%zu]: must be a finite number in the float range", path, i);
        (*out)[i] = (float)json_number_value(e);
    }
    *n_out = n;
    return 0;
}

static int parse_reply_fields(json_t *root, ee_proto_reply *r, ee_err *err) {
    long long x = -1;
    if (rep_int(root, "v", "v", true, 0, LLONG_MAX, &x, err)) return -1;
    if (x != EE_PROTO_VERSION) return ee_err_set(err, "v: unsupported version %lld", x);
    if (rep_str(root, "id", "id", true, &r->id, err)) return -1;
    char *status = NULL;
    if (rep_str(root, "status", "status", true, &status, err)) return -1;
    bool ok = strcmp(status, "ok") == 0, is_err = strcmp(status, "error") == 0;
    free(status);
    if (!ok && !is_err) return ee_err_set(err, "status: must be \"ok\" or \"error\"");
    r->ok = ok;
    x = 0;
    if (rep_int(root, "seq", "seq", true, 0, UINT32_MAX, &x, err)) return -1;
    r->seq = (uint32_t)x;
    json_t *f = json_object_get(root, "final");
    if (!json_is_boolean(f)) return ee_err_set(err, "final: must be a boolean");
    r->final = json_is_true(f);
    if (rep_str(root, "worker", "worker", false, &r->worker, err)) return -1;

    if (!ok) {
        json_t *e = json_object_get(root, "error");
        if (!json_is_object(e)) return ee_err_set(err, "error: must be an object");
        char *code = NULL;
        if (rep_str(e, "code", "error.code", true, &code, err)) return -1;
        /* codes added later in version 1 read as internal */
        if (ee_proto_code_parse(code, &r->error_code) != 0) r->error_code = EE_PROTO_E_INTERNAL;
        free(code);
        if (rep_str(e, "message", "error.message", false, &r->error_message, err)) return -1;
        return 0;
    }
    json_t *o = json_object_get(root, "output");
    if (!json_is_object(o)) return ee_err_set(err, "output: must be an object");
    json_t *emb = json_object_get(o, "embedding");
    json_t *hits = json_object_get(o, "hits");
    json_t *scores = json_object_get(o, "scores");
    if (hits) {
        if (!json_is_array(hits) || json_array_size(hits) > EE_PROTO_MAX_K)
            return ee_err_set(err, "output.hits: must be an array of at most %d hits", EE_PROTO_MAX_K);
        size_t n = json_array_size(hits);
        r->is_search = true;
        if (n && !(r->hits = calloc(n, sizeof *r->hits))) return ee_err_set(err, "out of memory");
        r->n_hits = n;
        for (size_t i = 0; i < n; i++) {
            json_t *h = json_array_get(hits, i), *sc = json_object_get(h, "score");
            char path[48];
            snprintf(path, sizeof path, "output.hits[%zu]", i);
            if (!json_is_object(h)) return ee_err_set(err, "%s: must be an object", path);
            if (!json_is_number(sc) || !isfinite(json_number_value(sc)))
                return ee_err_set(err, "%s.score: must be a finite number", path);
            r->hits[i].score = json_number_value(sc);
            if (rep_str(h, "id", "output.hits[].id", true, &r->hits[i].id, err) ||
                rep_str(h, "doc", "output.hits[].doc", false, &r->hits[i].doc, err))
                return -1;
        }
    } else if (emb) {
        if (reply_floats(emb, "output.embedding", &r->embedding, &r->dim, err)) return -1;
    } else if (scores) {
        if (reply_floats(scores, "output.scores", &r->scores, &r->n_scores, err)) return -1;
    } else {
        json_t *t = json_object_get(o, "tokens");
        if (!json_is_array(t)) return ee_err_set(err, "output.tokens: must be an array");
        size_t n = json_array_size(t);
        if (n) {
            r->tokens = malloc(n * sizeof *r->tokens);
            if (!r->tokens) return ee_err_set(err, "out of memory");
        }
        for (size_t i = 0; i < n; i++) {
            json_t *e = json_array_get(t, i);
            if (!json_is_integer(e) || json_integer_value(e) < 0 ||
                json_integer_value(e) > INT32_MAX)
                return ee_err_set(err, "output.tokens[%zu]: must be a token id", i);
            r->tokens[i] = (int32_t)json_integer_value(e);
        }
        r->n_tokens = n;
    }
    if (rep_str(root, "finish_reason", "finish_reason",
                r->final && !r->embedding && !r->is_search && !r->scores,
                &r->finish_reason, err))
        return -1;
    json_t *u = json_object_get(root, "usage");
    if (json_is_object(u)) {
        x = 0;
        if (rep_int(u, "prompt_tokens", "usage.prompt_tokens", false, 0, UINT32_MAX, &x, err))
            return -1;
        r->prompt_tokens = (uint32_t)x;
        x = 0;
        if (rep_int(u, "completion_tokens", "usage.completion_tokens", false, 0, UINT32_MAX, &x,
                    err))
            return -1;
        r->completion_tokens = (uint32_t)x;
    }
    json_t *tm = json_object_get(root, "timings");
    if (json_is_object(tm)) {
        if (rep_real(tm, "queue_ms", "timings.queue_ms", &r->queue_ms, err) ||
            rep_real(tm, "prefill_ms", "timings.prefill_ms", &r->prefill_ms, err) ||
            rep_real(tm, "decode_ms", "timings.decode_ms", &r->decode_ms, err))
            return -1;
    }
    return 0;
}

int ee_proto_parse_reply(const char *buf, size_t len, ee_proto_reply *out, ee_err *err) {
    if (!out) return ee_err_set(err, "reply: no output");
    memset(out, 0, sizeof *out);
    if (!buf || !len) return ee_err_set(err, "reply: empty record");
    json_error_t je;
    json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return ee_err_set(err, "reply: not valid JSON (line %d, column %d): %s", je.line,
                          je.column, je.text);
    int rc = json_is_object(root) ? parse_reply_fields(root, out, err)
                                  : ee_err_set(err, "reply: must be a JSON object");
    json_decref(root);
    if (rc) ee_proto_reply_free(out);
    return rc;
}

void ee_proto_reply_free(ee_proto_reply *r) {
    if (!r) return;
    free(r->id);
    free(r->tokens);
    free(r->embedding);
    free(r->scores);
    for (size_t i = 0; i < r->n_hits; i++) {
        free(r->hits[i].id);
        free(r->hits[i].doc);
    }
    free(r->hits);
    free(r->finish_reason);
    free(r->worker);
    free(r->error_message);
    memset(r, 0, sizeof *r);
}

/* ---- dead letters --------------------------------------------------------- */

static char *fmt_alloc(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *fmt_alloc(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return NULL;
    char *s = malloc((size_t)n + 1);
    if (!s) return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

int ee_proto_dlq_headers(const ee_proto_dlq_info *d, ee_proto_header out[EE_PROTO_DLQ_NHDR],
                         ee_err *err) {
    memset(out, 0, EE_PROTO_DLQ_NHDR * sizeof *out);
    if (!d || !d->topic) return ee_err_set(err, "dlq: the original topic is required");
    const char *code = ee_proto_code_name(d->code);
    if (!code || d->code == EE_PROTO_OK) return ee_err_set(err, "dlq: invalid error code");
    static const char *const names[EE_PROTO_DLQ_NHDR] = {
        EE_PROTO_HDR_DLQ_TOPIC,      EE_PROTO_HDR_DLQ_PARTITION,  EE_PROTO_HDR_DLQ_OFFSET,
        EE_PROTO_HDR_DLQ_TIMESTAMP,  EE_PROTO_HDR_DLQ_GROUP,      EE_PROTO_HDR_DLQ_ERROR_CODE,
        EE_PROTO_HDR_DLQ_ERROR_MESSAGE,
    };
    for (int i = 0; i < EE_PROTO_DLQ_NHDR; i++) out[i].name = names[i];
    out[0].value = xstrdup(d->topic);
    out[1].value = fmt_alloc("%" PRId32, d->partition);
    out[2].value = fmt_alloc("%" PRId64, d->offset);
    out[3].value = fmt_alloc("%" PRId64, d->timestamp_ms);
    out[4].value = xstrdup(d->group ? d->group : "");
    out[5].value = xstrdup(code);
    out[6].value = xstrdup(d->message ? d->message : "");
    for (int i = 0; i < EE_PROTO_DLQ_NHDR; i++) {
        if (!out[i].value) {
            ee_proto_headers_free(out, EE_PROTO_DLQ_NHDR);
            return ee_err_set(err, "out of memory");
        }
    }
    return 0;
}

void ee_proto_headers_free(ee_proto_header *h, size_t n) {
    if (!h) return;
    for (size_t i = 0; i < n; i++) {
        free(h[i].value);
        h[i].value = NULL;
    }
}

/* ---- index records -------------------------------------------------------- */

char *ee_proto_index_topic(const char *index, ee_err *err) {
    if (!ee_proto_valid_name(index))
        return ee_err_set(err, "index name '%s' must match [A-Za-z0-9._-]{1,%d}",
                          index ? index : "", EE_PROTO_NAME_MAX), NULL;
    size_t n = strlen(index) + 10;
    char *t = malloc(n);
    if (!t) return ee_err_set(err, "out of memory"), NULL;
    snprintf(t, n, "ee.index.%s", index);
    return t;
}

char *ee_proto_index_record_to_json(const ee_proto_index_record *r, ee_err *err) {
    if (!r || !r->id || !ee_proto_valid_id(r->id) || !r->key_id || !r->embedding || !r->dim || !r->doc)
        return ee_err_set(err, "index record: id, key_id, embedding and doc are required"), NULL;
    bool bad = false;
    json_t *root = json_object();
    if (!root) return dump(NULL, true, 9, err);
    put(root, "v", json_integer(EE_PROTO_VERSION), &bad);
    put(root, "id", json_string(r->id), &bad);
    put(root, "key_id", json_string(r->key_id), &bad);
    put(root, "embedding", float_json(r->embedding, r->dim, &bad), &bad);
    put(root, "doc", json_string(r->doc), &bad);
    return dump(root, bad, 9, err);
}

int ee_proto_index_record_parse(const char *buf, size_t len, ee_proto_index_record *out,
                                ee_err *err) {
    memset(out, 0, sizeof *out);
    if (!buf || !len) return ee_err_set(err, "index record: empty");
    json_error_t je;
    json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) return ee_err_set(err, "index record: not valid JSON: %s", je.text);
    int rc = -1;
    json_t *v = json_object_get(root, "v"), *e = json_object_get(root, "embedding");
    if (!json_is_object(root)) {
        ee_err_set(err, "index record: must be a JSON object");
    } else if (!json_is_integer(v) || json_integer_value(v) != EE_PROTO_VERSION) {
        ee_err_set(err, "index record: v must be %d", EE_PROTO_VERSION);
    } else if (rep_str(root, "id", "id", true, &out->id, err) ||
               rep_str(root, "key_id", "key_id", true, &out->key_id, err) ||
               rep_str(root, "doc", "doc", true, &out->doc, err)) {
    } else if (!ee_proto_valid_id(out->id)) {
        ee_err_set(err, "index record: id is not a valid id");
    } else if (!ee_proto_valid_key_id(out->key_id)) {
        ee_err_set(err, "index record %s: key_id must be %d lowercase hex characters", out->id,
                   EE_PROTO_KEY_ID_LEN);
    } else if (!json_is_array(e) || json_array_size(e) == 0 || json_array_size(e) > EE_PROTO_MAX_DIM) {
        ee_err_set(err, "index record %s: embedding must be a non-empty array of numbers", out->id);
    } else if (!(out->embedding = malloc(json_array_size(e) * sizeof *out->embedding))) {
        ee_err_set(err, "out of memory");
    } else {
        out->dim = json_array_size(e);
        rc = 0;
        for (size_t i = 0; i < out->dim && rc == 0; i++) {
            json_t *x = json_array_get(e, i);
            if (!json_is_number(x) || !isfinite(json_number_value(x)) ||
                fabs(json_number_value(x)) > FLT_MAX)
                rc = ee_err_set(err, "index record %s: embedding[%zu] is not a finite float",
                                out->id, i);
            else
                out->embedding[i] = (float)json_number_value(x);
        }
    }
    json_decref(root);
    if (rc) ee_proto_index_record_free(out);
    return rc;
}

void ee_proto_index_record_free(ee_proto_index_record *r) {
    if (!r) return;
    free(r->id);
    free(r->key_id);
    free(r->embedding);
    free(r->doc);
    memset(r, 0, sizeof *r);
}
