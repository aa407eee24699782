/* ee_config: the worker's configuration file. See ee_config.h and
 * config/README.md.
 *
 * inih calls the handler without a line number (Debian builds it with
 * INI_HANDLER_LINENO 0), so files and strings are fed through our own
 * fgets-style reader (ini_parse_stream): it counts physical lines, so the
 * handler always knows the line it is called for. The reader also:
 *   - refuses lines that do not fit inih's buffer (`num`, 200 bytes by
 *     default): inih would otherwise parse the first 199 bytes as a line, then
 *     the rest as further lines, silently truncating the value;
 *   - sees section headers, so empty sections (no handler call) are still
 *     checked: unknown names, duplicates, [model X] without a path;
 *   - refuses indented lines after a key, which inih would append to the
 *     previous key as a multi-line value;
 *   - stops the parse at our first error.
 * inih's own syntax errors (no '=' or ':', no ']') come back as the return
 * value: the line of its first error; whichever error line is first wins. */
#include "ee_config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ini.h>
#include <librdkafka/rdkafka.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sodium.h>
#include <string.h>
#include <strings.h>

/* ---- small helpers -------------------------------------------------------- */

static char *xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}

static char *xstrndup(const char *s, size_t n) {
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

bool ee_config_key_is_secret(const char *key) {
    if (!key) return false;
    for (const char *p = key; *p; p++)
        if (strncasecmp(p, "password", 8) == 0 || strncasecmp(p, "secret", 6) == 0) return true;
    return false;
}

/* A value for a message: "<redacted>" for secret keys, else with non-printable
 * bytes as \xNN and cut after 48 bytes. */
typedef struct shown {
    char s[256];
} shown;

static shown show(const char *key, const char *value) {
    shown o;
    if (ee_config_key_is_secret(key)) {
        snprintf(o.s, sizeof o.s, "<redacted>");
        return o;
    }
    size_t j = 0, i = 0;
    for (; value[i] && i < 48; i++) {
        unsigned char ch = (unsigned char)value[i];
        if (ch >= 0x20 && ch < 0x7f && ch != '\\')
            o.s[j++] = (char)ch;
        else
            j += (size_t)snprintf(o.s + j, sizeof o.s - j, "\\x%02x", ch);
    }
    if (value[i]) j += (size_t)snprintf(o.s + j, sizeof o.s - j, "...");
    o.s[j] = '\0';
    return o;
}

static bool has_control(const char *v) {
    for (const unsigned char *p = (const unsigned char *)v; *p; p++)
        if (*p < 0x20 || *p == 0x7f) return true;
    return false;
}

/* Strict decimal: digits only, min..max. */
static bool parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out) {
    if (!*s) return false;
    uint64_t v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9') return false;
        v = v * 10 + (uint64_t)(*p - '0');
        if (v > max) return false;
    }
    if (v < min) return false;
    *out = (uint32_t)v;
    return true;
}

static bool valid_class(const char *s) {
    size_t n = strlen(s);
    if (n < 1 || n > EE_CONFIG_CLASS_MAX) return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-'))
            return false;
    return true;
}

static bool valid_kafka_prop(const char *s) {
    if (!*s) return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '_' || *p == '-'))
            return false;
    return true;
}

static void free_classes(char **v, size_t n) {
    for (size_t i = 0; i < n; i++) free(v[i]);
    free(v);
}

/* ---- keys of [worker] and [limits] ------------------------------------------ */

typedef enum sect { S_NONE, S_WORKER, S_LIMITS, S_MODEL, S_KAFKA, S_TOPICS, S_TENANT, S_INDEX } sect;
typedef enum ktype { K_U32, K_NAME, K_GROUP, K_CLASSES, K_ADDR, K_PATH } ktype;

typedef struct keydef {
    sect section;
    const char *name;
    ktype type;
    uint32_t min, max;
    size_t off; /* of the uint32_t / char * field */
} keydef;

#define OFF(f) offsetof(ee_config, f)
static const keydef KEYS[] = {
    {S_WORKER, "name", K_NAME, 0, 0, OFF(name)},
    {S_WORKER, "threads", K_U32, 1, EE_CONFIG_THREADS_MAX, OFF(threads)},
    {S_WORKER, "classes", K_CLASSES, 0, 0, 0},
    {S_WORKER, "max_inflight", K_U32, 1, EE_CONFIG_INFLIGHT_MAX, OFF(max_inflight)},
    {S_WORKER, "grace_ms", K_U32, 0, EE_CONFIG_GRACE_MS_MAX, OFF(grace_ms)},
    {S_WORKER, "metrics_port", K_U32, 0, EE_CONFIG_PORT_MAX, OFF(metrics_port)},
    {S_WORKER, "group", K_GROUP, 0, 0, OFF(group)},
    {S_WORKER, "metrics_bind", K_ADDR, 0, 0, OFF(metrics_bind)},
    {S_WORKER, "max_batch", K_U32, 1, EE_CONFIG_BATCH_MAX, OFF(max_batch)},
    {S_WORKER, "require_sealed", K_U32, 0, 1, OFF(require_sealed)},
    {S_WORKER, "require_signed", K_U32, 0, 1, OFF(require_signed)},
    {S_WORKER, "pool_key", K_PATH, 0, 0, OFF(pool_key)},
    {S_WORKER, "replay_window_ms", K_U32, 1000, EE_CONFIG_REPLAY_WINDOW_MAX, OFF(replay_window_ms)},
    {S_WORKER, "replay_capacity", K_U32, 1, EE_CONFIG_REPLAY_CAPACITY_MAX, OFF(replay_capacity)},
    {S_LIMITS, "max_prompt_tokens", K_U32, 1, EE_CONFIG_TOKENS_MAX, OFF(max_prompt_tokens)},
    {S_LIMITS, "max_new_tokens", K_U32, 1, EE_CONFIG_TOKENS_MAX, OFF(max_new_tokens)},
    {S_LIMITS, "max_request_bytes", K_U32, 1, EE_CONFIG_REQUEST_BYTES_MAX, OFF(max_request_bytes)},
    {S_TOPICS, "create", K_U32, 0, 1, OFF(topics_create)},
    {S_TOPICS, "partitions", K_U32, 1, EE_CONFIG_PARTITIONS_MAX, OFF(topic_partitions)},
    {S_TOPICS, "replication_factor", K_U32, 1, EE_CONFIG_REPLICATION_MAX, OFF(topic_replication)},
};
#define N_KEYS (sizeof KEYS / sizeof KEYS[0])

static const char *WORKER_KEYS =
    "name, threads, classes, max_inflight, max_batch, grace_ms, metrics_port, metrics_bind, group, "
    "require_sealed, require_signed, pool_key, replay_window_ms, replay_capacity";
static const char *TOPICS_KEYS = "create, partitions, replication_factor";
static const char *LIMITS_KEYS = "max_prompt_tokens, max_new_tokens, max_request_bytes";

static int find_key(sect s, const char *name) {
    for (size_t i = 0; i < N_KEYS; i++)
        if (KEYS[i].section == s && strcmp(KEYS[i].name, name) == 0) return (int)i;
    return -1;
}

/* "a, b" -> a fresh list of items that pass ok(), at most max (0: no
 * limit). what names an item ("class", "model name"), hint its form. */
static int parse_list(const char *where, const char *value, bool (*ok)(const char *),
                      const char *what, const char *hint, size_t max, char ***out,
                      size_t *n_out, ee_err *err) {
    char **v = NULL;
    size_t n = 0;
    const char *p = value;
    for (;;) {
        const char *comma = strchr(p, ',');
        const char *end = comma ? comma : p + strlen(p);
        while (p < end && (*p == ' ' || *p == '\t')) p++;
        const char *e = end;
        while (e > p && (e[-1] == ' ' || e[-1] == '\t')) e--;
        char *item = xstrndup(p, (size_t)(e - p));
        char **nv = item ? realloc(v, (n + 1) * sizeof *nv) : NULL;
        if (!nv) {
            free(item);
            free_classes(v, n);
            return ee_err_set(err, "%s: out of memory", where);
        }
        v = nv;
        v[n++] = item;
        int rc = 0;
        if (!*item)
            rc = ee_err_set(err, "%s: empty %s in '%s' (expected a comma-separated list)", where,
                            what, show(what, value).s);
        else if (!ok(item))
            rc = ee_err_set(err, "%s: '%s' is not a %s (%s)", where, show(what, item).s, what, hint);
        else if (max && n > max)
            rc = ee_err_set(err, "%s: more than %zu items", where, max);
        for (size_t i = 0; rc == 0 && i + 1 < n; i++)
            if (strcmp(v[i], item) == 0) rc = ee_err_set(err, "%s: duplicate %s '%s'", where, what, item);
        if (rc) {
            free_classes(v, n);
            return -1;
        }
        if (!comma) break;
        p = comma + 1;
    }
    *out = v;
    *n_out = n;
    return 0;
}

/* Parse "a, b" into a fresh list of classes. where: message prefix. */
static int parse_classes(const char *where, const char *value, char ***out, size_t *n_out,
                         ee_err *err) {
    return parse_list(where, value, valid_class, "class", "[a-z0-9_-]{1,32}",
                      EE_CONFIG_MAX_CLASSES, out, n_out, err);
}

/* Set a [worker]/[limits] key; c unchanged on failure. */
/* Replace the string field of k with a copy of value. */
static int set_string(ee_config *c, const keydef *k, const char *where, const char *value,
                      ee_err *err) {
    char *s = xstrdup(value);
    if (!s) return ee_err_set(err, "%s: out of memory", where);
    char **field = (char **)((char *)c + k->off);
    free(*field);
    *field = s;
    return 0;
}

static int set_known(ee_config *c, const keydef *k, const char *where, const char *value,
                     ee_err *err) {
    if (has_control(value))
        return ee_err_set(err, "%s: '%s' contains a control character", where,
                          show(k->name, value).s);
    switch (k->type) {
    case K_U32: {
        uint32_t v;
        if (!parse_u32(value, k->min, k->max, &v))
            return ee_err_set(err, "%s: '%s' is not an integer in %u..%u", where,
                              show(k->name, value).s, k->min, k->max);
        *(uint32_t *)((char *)c + k->off) = v;
        return 0;
    }
    case K_NAME:
    case K_GROUP: {
        bool ok = k->type == K_NAME ? ee_proto_valid_id(value) : ee_proto_valid_topic(value);
        if (!ok)
            return ee_err_set(err, "%s: '%s' is not a valid %s", where, show(k->name, value).s,
                              k->type == K_NAME ? "worker name (1..128 bytes, no control characters)"
                                                : "group id ([A-Za-z0-9._-]{1,249})");
        return set_string(c, k, where, value, err);
    }
    case K_ADDR: {
        /* An IP literal: libmicrohttpd binds a sockaddr, not a host name. */
        unsigned char buf[sizeof(struct in6_addr)];
        if (inet_pton(AF_INET, value, buf) != 1 && inet_pton(AF_INET6, value, buf) != 1)
            return ee_err_set(err, "%s: '%s' is not an IPv4 or IPv6 address (e.g. 127.0.0.1, 0.0.0.0, ::)",
                              where, show(k->name, value).s);
        return set_string(c, k, where, value, err);
    }
    case K_PATH:
        if (!*value) return ee_err_set(err, "%s: empty path", where);
        return set_string(c, k, where, value, err);
    case K_CLASSES: {
        char **v = NULL;
        size_t n = 0;
        if (parse_classes(where, value, &v, &n, err)) return -1;
        free_classes(c->classes, c->n_classes);
        c->classes = v;
        c->n_classes = n;
        return 0;
    }
    }
    return ee_err_set(err, "%s: internal error", where);
}

/* ---- tenants -------------------------------------------------------------------- */

static bool valid_tenant_model(const char *s) { return strcmp(s, "*") == 0 || ee_proto_valid_name(s); }
static bool valid_tenant_class(const char *s) { return strcmp(s, "*") == 0 || valid_class(s); }

static int parse_pk_hex(const char *where, const char *value, uint8_t pk[32], ee_err *err) {
    size_t len = strlen(value), got = 0;
    bool hex = len == 64;
    for (size_t i = 0; hex && i < len; i++)
        hex = (value[i] >= '0' && value[i] <= '9') || (value[i] >= 'a' && value[i] <= 'f') ||
              (value[i] >= 'A' && value[i] <= 'F');
    if (!hex || sodium_hex2bin(pk, 32, value, len, NULL, &got, NULL) != 0 || got != 32)
        return ee_err_set(err, "%s: '%s' is not an Ed25519 public key (64 hex characters, as "
                               "'ee-producer keygen' prints)", where, show("public_key", value).s);
    return 0;
}

static bool list_has(char *const *v, size_t n, const char *s) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i], "*") == 0 || strcmp(v[i], s) == 0) return true;
    return false;
}

const ee_config_tenant *ee_config_tenant_find(const ee_config *c, const char *name) {
    for (size_t i = 0; name && i < c->n_tenants; i++)
        if (strcmp(c->tenants[i].name, name) == 0) return &c->tenants[i];
    return NULL;
}

bool ee_config_tenant_allows(const ee_config_tenant *t, const char *model, const char *cls) {
    return list_has(t->models, t->n_models, model) &&
           (t->n_classes == 0 || list_has(t->classes, t->n_classes, cls));
}

/* ---- models and kafka ----------------------------------------------------------- */

static ee_config_model *model_find_mut(ee_config *c, const char *name) {
    for (size_t i = 0; i < c->n_models; i++)
        if (strcmp(c->models[i].name, name) == 0) return &c->models[i];
    return NULL;
}

static int check_model_name(const char *where, const char *name, ee_err *err) {
    if (!ee_proto_valid_name(name))
        return ee_err_set(err, "%s: '%s' is not a model name ([A-Za-z0-9._-]{1,%d})", where,
                          show("model", name).s, EE_PROTO_NAME_MAX);
    return 0;
}

/* Append a model with no path. */
static ee_config_model *model_add(ee_config *c, const char *name) {
    char *n = xstrdup(name);
    if (!n) return NULL;
    ee_config_model *m = realloc(c->models, (c->n_models + 1) * sizeof *m);
    if (!m) {
        free(n);
        return NULL;
    }
    c->models = m;
    m = &c->models[c->n_models++];
    m->name = n;
    m->path = NULL;
    return m;
}

static int check_path(const char *where, const char *value, ee_err *err) {
    if (!*value) return ee_err_set(err, "%s: empty path", where);
    if (has_control(value))
        return ee_err_set(err, "%s: '%s' contains a control character", where,
                          show("path", value).s);
    return 0;
}

/* The index named name (created when create), or NULL. */
static ee_config_index *index_get(ee_config *c, const char *name, bool create) {
    for (size_t i = 0; i < c->n_indexes; i++)
        if (strcmp(c->indexes[i].name, name) == 0) return &c->indexes[i];
    if (!create) return NULL;
    char *nm = xstrdup(name);
    ee_config_index *v = nm ? realloc(c->indexes, (c->n_indexes + 1) * sizeof *v) : NULL;
    if (!v) {
        free(nm);
        return NULL;
    }
    c->indexes = v;
    memset(&v[c->n_indexes], 0, sizeof *v);
    v[c->n_indexes].name = nm;
    return &v[c->n_indexes++];
}

/* model = NAME | kind = flat|hnsw */
static int index_set(ee_config_index *ix, const char *where, const char *key, const char *value,
                     ee_err *err) {
    char **slot;
    if (strcmp(key, "model") == 0) {
        if (!ee_proto_valid_name(value))
            return ee_err_set(err, "%s model: '%s' is not a model name", where, show("model", value).s);
        slot = &ix->model;
    } else if (strcmp(key, "kind") == 0) {
        if (strcmp(value, "flat") != 0 && strcmp(value, "hnsw") != 0)
            return ee_err_set(err, "%s kind: '%s' is not flat or hnsw", where, show("kind", value).s);
        slot = &ix->kind;
    } else {
        return ee_err_set(err, "%s: unknown key '%s' (known: model, kind)", where, show("key", key).s);
    }
    char *v = xstrdup(value);
    if (!v) return ee_err_set(err, "%s: out of memory", where);
    free(*slot);
    *slot = v;
    return 0;
}

static int set_model_path(ee_config_model *m, const char *where, const char *value, ee_err *err) {
    char *p = xstrdup(value);
    if (!p) return ee_err_set(err, "%s: out of memory", where);
    free(m->path);
    m->path = p;
    return 0;
}

/* Checks a kafka property and value, also against librdkafka (which knows
 * every property: typos are caught here, not at connect time). */
static int check_kafka(const char *where, const char *prop, const char *value, ee_err *err) {
    if (!valid_kafka_prop(prop))
        return ee_err_set(err, "%s: not a librdkafka property name", where);
    if (strcmp(prop, "group.id") == 0)
        return ee_err_set(err, "%s: set by the worker per (model, class); use [worker] group",
                          where);
    if (!*value) return ee_err_set(err, "%s: empty value", where);
    if (has_control(value))
        return ee_err_set(err, "%s: '%s' contains a control character", where,
                          show(prop, value).s);
    /* Setting plugin.library.paths loads code: leave it to the real conf. */
    if (strcmp(prop, "plugin.library.paths") == 0) return 0;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (!conf) return ee_err_set(err, "%s: out of memory", where);
    char errstr[512] = "";
    rd_kafka_conf_res_t r = rd_kafka_conf_set(conf, prop, value, errstr, sizeof errstr);
    rd_kafka_conf_destroy(conf);
    if (r == RD_KAFKA_CONF_OK) return 0;
    if (r == RD_KAFKA_CONF_UNKNOWN) return ee_err_set(err, "%s: unknown librdkafka property", where);
    if (ee_config_key_is_secret(prop)) /* librdkafka's text may quote the value */
        return ee_err_set(err, "%s: librdkafka refused '<redacted>'", where);
    return ee_err_set(err, "%s: librdkafka: %s", where, errstr);
}

static int kafka_set(ee_config *c, const char *where, const char *prop, const char *value,
                     ee_err *err) {
    char *v = xstrdup(value);
    if (!v) return ee_err_set(err, "%s: out of memory", where);
    for (size_t i = 0; i < c->n_kafka; i++)
        if (strcmp(c->kafka[i].key, prop) == 0) {
            free(c->kafka[i].value);
            c->kafka[i].value = v;
            return 0;
        }
    char *k = xstrdup(prop);
    ee_config_kv *kv = k ? realloc(c->kafka, (c->n_kafka + 1) * sizeof *kv) : NULL;
    if (!kv) {
        free(k);
        free(v);
        return ee_err_set(err, "%s: out of memory", where);
    }
    c->kafka = kv;
    c->kafka[c->n_kafka].key = k;
    c->kafka[c->n_kafka].value = v;
    c->n_kafka++;
    return 0;
}

/* ---- init / free ------------------------------------------------------------ */

void ee_config_init(ee_config *c) {
    memset(c, 0, sizeof *c);
    c->threads = EE_CONFIG_DEFAULT_THREADS;
    c->max_inflight = EE_CONFIG_DEFAULT_MAX_INFLIGHT;
    c->grace_ms = EE_CONFIG_DEFAULT_GRACE_MS;
    c->metrics_port = EE_CONFIG_DEFAULT_METRICS_PORT;
    c->max_prompt_tokens = EE_CONFIG_DEFAULT_MAX_PROMPT_TOKENS;
    c->max_new_tokens = EE_CONFIG_DEFAULT_MAX_NEW_TOKENS;
    c->max_request_bytes = EE_CONFIG_DEFAULT_MAX_REQUEST_BYTES;
    c->max_batch = EE_CONFIG_DEFAULT_MAX_BATCH;
    c->topics_create = 1;
    c->topic_partitions = EE_CONFIG_DEFAULT_PARTITIONS;
    c->topic_replication = EE_CONFIG_DEFAULT_REPLICATION;
    c->replay_window_ms = EE_CONFIG_DEFAULT_REPLAY_WINDOW_MS;
    c->replay_capacity = EE_CONFIG_DEFAULT_REPLAY_CAPACITY;
    /* name stays NULL until set: it must be malloc'd to be freeable. */
}

void ee_config_free(ee_config *c) {
    if (!c) return;
    free(c->source);
    free(c->name);
    free(c->group);
    free(c->metrics_bind);
    free(c->pool_key);
    free_classes(c->classes, c->n_classes);
    for (size_t i = 0; i < c->n_tenants; i++) {
        free(c->tenants[i].name);
        free_classes(c->tenants[i].models, c->tenants[i].n_models);
        free_classes(c->tenants[i].classes, c->tenants[i].n_classes);
    }
    free(c->tenants);
    for (size_t i = 0; i < c->n_models; i++) {
        free(c->models[i].name);
        free(c->models[i].path);
    }
    free(c->models);
    for (size_t i = 0; i < c->n_indexes; i++) {
        free(c->indexes[i].name);
        free(c->indexes[i].model);
        free(c->indexes[i].kind);
    }
    free(c->indexes);
    for (size_t i = 0; i < c->n_kafka; i++) {
        free(c->kafka[i].key);
        free(c->kafka[i].value);
    }
    free(c->kafka);
    ee_config_init(c);
}

/* ---- parsing ------------------------------------------------------------------ */

typedef struct pstate {
    ee_config *c;
    const char *file;
    const char *text;
    size_t len, pos;
    int line;      /* physical line last handed to inih */
    int err_line;  /* line of our first error; 0 none */
    ee_err *err;
    sect cur;
    ee_config_model *model; /* current [model X] (index into c->models) */
    size_t index_idx;       /* current [index X] */
    size_t model_idx;
    char cur_name[96];      /* "[worker]", "[model x]" for messages */
    bool key_in_section;    /* a key line was seen since the header */
    int seen_key[N_KEYS];   /* line of each [worker]/[limits] key; 0 unseen */
    int seen_sect[5];       /* line of [worker], [limits], [kafka], [topics] */
    int *model_line;        /* header line and path line per model */
    int *path_line;
    int *kafka_line;        /* line of each kafka key */
    size_t tenant_idx;      /* current [tenant X] */
    int *tenant_line;       /* header line per tenant */
    int tenant_seen[3];     /* lines of public_key, models, classes in the current one */
} pstate;

static int fail(pstate *st, int line) {
    st->err_line = line;
    return -1;
}

static bool is_space(char ch) { return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\f' || ch == '\v'; }

/* A section header line (after leading blanks, starting with '['). Returns 0,
 * or -1 on our error; leaves headers without ']' for inih to refuse. */
static int on_header(pstate *st, const char *start) {
    const char *p = start + 1;
    while (*p && *p != ']' && !(*p == ';' && is_space(p[-1]))) p++;
    if (*p != ']') return 0; /* inih: syntax error */
    const char *after = p + 1;
    while (is_space(*after)) after++;
    if (*after && *after != ';' && *after != '#' && *after != '\n')
        return fail(st, st->line),
               ee_err_set(st->err, "%s:%d: text after the section header", st->file, st->line);
    const char *a = start + 1, *b = p;
    while (a < b && is_space(*a)) a++;
    while (b > a && is_space(b[-1])) b--;
    char name[80];
    size_t n = (size_t)(b - a);
    if (n >= sizeof name) n = sizeof name - 1; /* still unknown or invalid below */
    memcpy(name, a, n);
    name[n] = '\0';
    st->key_in_section = false;
    st->model = NULL;
    int idx = -1;
    if (strcmp(name, "worker") == 0) st->cur = S_WORKER, idx = 0;
    else if (strcmp(name, "limits") == 0) st->cur = S_LIMITS, idx = 1;
    else if (strcmp(name, "kafka") == 0) st->cur = S_KAFKA, idx = 2;
    else if (strcmp(name, "topics") == 0) st->cur = S_TOPICS, idx = 3;
    if (idx >= 0) {
        if (st->seen_sect[idx])
            return fail(st, st->line),
                   ee_err_set(st->err, "%s:%d: duplicate section [%s] (first at line %d)", st->file,
                              st->line, name, st->seen_sect[idx]);
        st->seen_sect[idx] = st->line;
        snprintf(st->cur_name, sizeof st->cur_name, "[%s]", name);
        return 0;
    }
    if (strncmp(name, "model", 5) == 0 && is_space(name[5])) {
        const char *m = name + 5;
        while (is_space(*m)) m++;
        char where[160];
        snprintf(where, sizeof where, "%s:%d: [%s]", st->file, st->line, name);
        if (check_model_name(where, m, st->err)) return fail(st, st->line);
        ee_config *c = st->c;
        if (model_find_mut(c, m)) {
            size_t i = 0;
            while (strcmp(c->models[i].name, m) != 0) i++;
            return fail(st, st->line),
                   ee_err_set(st->err, "%s: duplicate section (first at line %d)", where,
                              st->model_line[i]);
        }
        int *ml = realloc(st->model_line, (c->n_models + 1) * sizeof *ml);
        if (ml) st->model_line = ml;
        int *pl = ml ? realloc(st->path_line, (c->n_models + 1) * sizeof *pl) : NULL;
        if (pl) st->path_line = pl;
        if (!ml || !pl || !model_add(c, m))
            return fail(st, st->line), ee_err_set(st->err, "%s: out of memory", where);
        st->model_idx = c->n_models - 1;
        st->model_line[st->model_idx] = st->line;
        st->path_line[st->model_idx] = 0;
        st->cur = S_MODEL;
        st->model = &c->models[st->model_idx];
        snprintf(st->cur_name, sizeof st->cur_name, "[model %s]", m);
        return 0;
    }
    if (strncmp(name, "index", 5) == 0 && is_space(name[5])) {
        const char *m = name + 5;
        while (is_space(*m)) m++;
        char where[160];
        snprintf(where, sizeof where, "%s:%d: [%s]", st->file, st->line, name);
        if (!ee_proto_valid_name(m))
            return fail(st, st->line),
                   ee_err_set(st->err, "%s: '%s' is not an index name ([A-Za-z0-9._-]{1,%d})", where,
                              show("index", m).s, EE_PROTO_NAME_MAX);
        ee_config_index *ix = index_get(st->c, m, true);
        if (!ix) return fail(st, st->line), ee_err_set(st->err, "%s: out of memory", where);
        if (ix->model || ix->kind)
            return fail(st, st->line), ee_err_set(st->err, "%s: duplicate section", where);
        st->index_idx = (size_t)(ix - st->c->indexes);
        st->cur = S_INDEX;
        snprintf(st->cur_name, sizeof st->cur_name, "[index %s]", m);
        return 0;
    }
    if (strncmp(name, "tenant", 6) == 0 && is_space(name[6])) {
        const char *m = name + 6;
        while (is_space(*m)) m++;
        char where[160];
        snprintf(where, sizeof where, "%s:%d: [%s]", st->file, st->line, name);
        if (!ee_proto_valid_name(m))
            return fail(st, st->line),
                   ee_err_set(st->err, "%s: '%s' is not a tenant name ([A-Za-z0-9._-]{1,%d})", where,
                              show("tenant", m).s, EE_PROTO_NAME_MAX);
        ee_config *c = st->c;
        for (size_t i = 0; i < c->n_tenants; i++)
            if (strcmp(c->tenants[i].name, m) == 0)
                return fail(st, st->line),
                       ee_err_set(st->err, "%s: duplicate section (first at line %d)", where,
                                  st->tenant_line[i]);
        int *tl = realloc(st->tenant_line, (c->n_tenants + 1) * sizeof *tl);
        if (tl) st->tenant_line = tl;
        ee_config_tenant *t = tl ? realloc(c->tenants, (c->n_tenants + 1) * sizeof *t) : NULL;
        if (t) c->tenants = t;
        char *nm = t ? xstrdup(m) : NULL;
        if (!nm) return fail(st, st->line), ee_err_set(st->err, "%s: out of memory", where);
        memset(&c->tenants[c->n_tenants], 0, sizeof *t);
        c->tenants[c->n_tenants].name = nm;
        st->tenant_idx = c->n_tenants;
        st->tenant_line[c->n_tenants++] = st->line;
        memset(st->tenant_seen, 0, sizeof st->tenant_seen);
        st->cur = S_TENANT;
        snprintf(st->cur_name, sizeof st->cur_name, "[tenant %s]", m);
        return 0;
    }
    return fail(st, st->line),
           ee_err_set(st->err,
                      "%s:%d: unknown section [%s] (expected [worker], [limits], [topics], [model NAME], "
                      "[index NAME], [tenant NAME] or [kafka])",
                      st->file, st->line, show("section", name).s);
}

static char *reader(char *str, int num, void *stream) {
    pstate *st = stream;
    if (st->err_line || st->pos >= st->len) return NULL;
    const char *s = st->text + st->pos;
    const char *nl = memchr(s, '\n', st->len - st->pos);
    size_t n = nl ? (size_t)(nl - s) + 1 : st->len - st->pos; /* with the '\n' */
    size_t content = nl ? n - 1 : n;
    st->line++;
    /* Room for the content, a '\n' and the NUL, whether or not this is the
     * last line: one rule for every line. */
    if (num < 3 || content > (size_t)num - 2) {
        fail(st, st->line);
        ee_err_set(st->err, "%s:%d: line is %zu bytes long; the limit is %d (inih)", st->file,
                   st->line, content, num < 3 ? 0 : num - 2);
        return NULL;
    }
    memcpy(str, s, n);
    str[n] = '\0';
    st->pos += n;

    const char *start = str;
    if (st->line == 1 && (unsigned char)start[0] == 0xEF && (unsigned char)start[1] == 0xBB &&
        (unsigned char)start[2] == 0xBF)
        start += 3; /* inih skips a UTF-8 BOM */
    const char *t = start;
    while (is_space(*t)) t++;
    if (!*t || *t == '\n' || *t == ';' || *t == '#') return str; /* blank or comment */
    if (*t == '[') {
        if (on_header(st, t)) return NULL;
        return str;
    }
    if (t > start && st->key_in_section) {
        fail(st, st->line);
        ee_err_set(st->err,
                   "%s:%d: indented line after a key (multi-line values are not supported)",
                   st->file, st->line);
        return NULL;
    }
    st->key_in_section = true;
    return str;
}

static int handler(void *user, const char *section, const char *name, const char *value) {
    (void)section; /* the reader tracks the section (trimmed) */
    pstate *st = user;
    if (st->err_line) return 0;
    ee_config *c = st->c;
    char where[256];
    snprintf(where, sizeof where, "%s:%d: %s %s", st->file, st->line, st->cur_name, name);
    switch (st->cur) {
    case S_NONE:
        ee_err_set(st->err, "%s:%d: %s: key outside any section", st->file, st->line, name);
        return fail(st, st->line), 0;
    case S_WORKER:
    case S_LIMITS:
    case S_TOPICS: {
        int k = find_key(st->cur, name);
        if (k < 0) {
            ee_err_set(st->err, "%s: unknown key (known: %s)", where,
                       st->cur == S_WORKER ? WORKER_KEYS
                       : st->cur == S_LIMITS ? LIMITS_KEYS : TOPICS_KEYS);
            return fail(st, st->line), 0;
        }
        if (st->seen_key[k]) {
            ee_err_set(st->err, "%s: duplicate key (first at line %d)", where, st->seen_key[k]);
            return fail(st, st->line), 0;
        }
        st->seen_key[k] = st->line;
        if (set_known(c, &KEYS[k], where, value, st->err)) return fail(st, st->line), 0;
        return 1;
    }
    case S_INDEX: {
        char sect_where[160]; /* index_set names the key itself */
        snprintf(sect_where, sizeof sect_where, "%s:%d: %s", st->file, st->line, st->cur_name);
        if (index_set(&c->indexes[st->index_idx], sect_where, name, value, st->err))
            return fail(st, st->line), 0;
        return 1;
    }
    case S_MODEL: {
        if (strcmp(name, "path") != 0) {
            ee_err_set(st->err, "%s: unknown key (known: path)", where);
            return fail(st, st->line), 0;
        }
        if (st->path_line[st->model_idx]) {
            ee_err_set(st->err, "%s: duplicate key (first at line %d)", where,
                       st->path_line[st->model_idx]);
            return fail(st, st->line), 0;
        }
        st->path_line[st->model_idx] = st->line;
        if (check_path(where, value, st->err) ||
            set_model_path(&c->models[st->model_idx], where, value, st->err))
            return fail(st, st->line), 0;
        return 1;
    }
    case S_TENANT: {
        static const char *const TK[3] = {"public_key", "models", "classes"};
        int k = -1;
        for (int i = 0; i < 3; i++)
            if (strcmp(name, TK[i]) == 0) k = i;
        if (k < 0) {
            ee_err_set(st->err, "%s: unknown key (known: public_key, models, classes)", where);
            return fail(st, st->line), 0;
        }
        if (st->tenant_seen[k]) {
            ee_err_set(st->err, "%s: duplicate key (first at line %d)", where, st->tenant_seen[k]);
            return fail(st, st->line), 0;
        }
        st->tenant_seen[k] = st->line;
        ee_config_tenant *t = &c->tenants[st->tenant_idx];
        int rc = k == 0 ? parse_pk_hex(where, value, t->pk, st->err)
                 : k == 1 ? parse_list(where, value, valid_tenant_model, "model name",
                                       "[A-Za-z0-9._-]{1,64} or *", 0, &t->models, &t->n_models,
                                       st->err)
                          : parse_list(where, value, valid_tenant_class, "class name",
                                       "[a-z0-9_-]{1,32} or *", 0, &t->classes, &t->n_classes,
                                       st->err);
        if (rc) return fail(st, st->line), 0;
        if (k == 0) t->has_pk = true;
        return 1;
    }
    case S_KAFKA: {
        for (size_t i = 0; i < c->n_kafka; i++)
            if (strcmp(c->kafka[i].key, name) == 0) {
                ee_err_set(st->err, "%s: duplicate key (first at line %d)", where,
                           st->kafka_line[i]);
                return fail(st, st->line), 0;
            }
        if (check_kafka(where, name, value, st->err)) return fail(st, st->line), 0;
        int *kl = realloc(st->kafka_line, (c->n_kafka + 1) * sizeof *kl);
        if (!kl) {
            ee_err_set(st->err, "%s: out of memory", where);
            return fail(st, st->line), 0;
        }
        st->kafka_line = kl;
        kl[c->n_kafka] = st->line;
        if (kafka_set(c, where, name, value, st->err)) return fail(st, st->line), 0;
        return 1;
    }
    }
    return 0;
}

static int parse_text(ee_config *c, const char *file, const char *text, size_t len, ee_err *err) {
    ee_config_init(c);
    c->source = xstrdup(file);
    if (!c->source) return ee_err_set(err, "%s: out of memory", file);
    pstate st = {.c = c, .file = c->source, .text = text, .len = len, .err = err};
    int rc = ini_parse_stream(reader, &st, handler, &st);
    int ret = -1;
    if (rc == -2) {
        ee_err_set(err, "%s: out of memory", c->source);
    } else if (rc > 0 && (!st.err_line || rc < st.err_line)) {
        ee_err_set(err, "%s:%d: syntax error (expected 'key = value', '[section]' or a comment)",
                   c->source, rc);
    } else if (st.err_line) {
        /* message already set */
    } else if (rc != 0) {
        ee_err_set(err, "%s: parse error %d", c->source, rc);
    } else {
        ret = 0;
        for (size_t i = 0; i < c->n_models; i++)
            if (!c->models[i].path) {
                ret = ee_err_set(err, "%s:%d: [model %s]: missing path", c->source,
                                 st.model_line[i], c->models[i].name);
                break;
            }
        for (size_t i = 0; ret == 0 && i < c->n_tenants; i++)
            if (!c->tenants[i].has_pk || c->tenants[i].n_models == 0)
                ret = ee_err_set(err, "%s:%d: [tenant %s]: missing %s", c->source,
                                 st.tenant_line[i], c->tenants[i].name,
                                 !c->tenants[i].has_pk ? "public_key" : "models (names or *)");
    }
    free(st.tenant_line);
    free(st.model_line);
    free(st.path_line);
    free(st.kafka_line);
    if (ret) ee_config_free(c);
    return ret;
}

int ee_config_load_string(ee_config *c, const char *text, ee_err *err) {
    return parse_text(c, "<string>", text, strlen(text), err);
}

int ee_config_load(ee_config *c, const char *path, ee_err *err) {
    ee_config_init(c);
    FILE *f = fopen(path, "rb");
    if (!f) return ee_err_set(err, "%s: cannot open: %s", path, strerror(errno));
    char *buf = malloc(EE_CONFIG_FILE_MAX + 1);
    if (!buf) {
        fclose(f);
        return ee_err_set(err, "%s: out of memory", path);
    }
    size_t n = fread(buf, 1, EE_CONFIG_FILE_MAX + 1, f);
    int rerr = ferror(f);
    fclose(f);
    if (rerr) {
        free(buf);
        return ee_err_set(err, "%s: read error", path);
    }
    if (n > EE_CONFIG_FILE_MAX) {
        free(buf);
        return ee_err_set(err, "%s: larger than %u bytes", path, EE_CONFIG_FILE_MAX);
    }
    const char *z = memchr(buf, '\0', n);
    if (z) {
        int line = 1;
        for (const char *p = buf; p < z; p++) line += *p == '\n';
        free(buf);
        return ee_err_set(err, "%s:%d: NUL byte", path, line);
    }
    buf[n] = '\0';
    int rc = parse_text(c, path, buf, n, err);
    free(buf);
    return rc;
}

/* ---- overrides ---------------------------------------------------------------- */

int ee_config_set_override(ee_config *c, const char *key, const char *value, ee_err *err) {
    if (!key || !value) return ee_err_set(err, "override: missing key or value");
    char where[300];
    snprintf(where, sizeof where, "override %s", show("key", key).s);
    const char *dot = strchr(key, '.');
    if (!dot)
        return ee_err_set(err, "%s: expected SECTION.KEY (worker., limits., topics., model., kafka.)",
                          where);
    size_t sl = (size_t)(dot - key);
    const char *rest = dot + 1;
    if (sl == 6 && strncmp(key, "worker", 6) == 0) {
        int k = find_key(S_WORKER, rest);
        if (k < 0) return ee_err_set(err, "%s: unknown key (known: %s)", where, WORKER_KEYS);
        return set_known(c, &KEYS[k], where, value, err);
    }
    if (sl == 6 && strncmp(key, "limits", 6) == 0) {
        int k = find_key(S_LIMITS, rest);
        if (k < 0) return ee_err_set(err, "%s: unknown key (known: %s)", where, LIMITS_KEYS);
        return set_known(c, &KEYS[k], where, value, err);
    }
    if (sl == 6 && strncmp(key, "topics", 6) == 0) {
        int k = find_key(S_TOPICS, rest);
        if (k < 0) return ee_err_set(err, "%s: unknown key (known: %s)", where, TOPICS_KEYS);
        return set_known(c, &KEYS[k], where, value, err);
    }
    if (sl == 5 && strncmp(key, "model", 5) == 0) {
        if (check_model_name(where, rest, err) || check_path(where, value, err)) return -1;
        ee_config_model *m = model_find_mut(c, rest);
        if (m) return set_model_path(m, where, value, err);
        char *p = xstrdup(value);
        if (!p || !(m = model_add(c, rest))) {
            free(p);
            return ee_err_set(err, "%s: out of memory", where);
        }
        m->path = p;
        return 0;
    }
    if (sl == 5 && strncmp(key, "index", 5) == 0) { /* index.NAME = MODEL[:KIND] */
        if (!ee_proto_valid_name(rest))
            return ee_err_set(err, "%s: '%s' is not an index name", where, show("index", rest).s);
        ee_config_index *ix = index_get(c, rest, true);
        if (!ix) return ee_err_set(err, "%s: out of memory", where);
        const char *colon = strchr(value, ':');
        char model[EE_PROTO_NAME_MAX + 2];
        size_t ml = colon ? (size_t)(colon - value) : strlen(value);
        if (ml == 0 || ml > EE_PROTO_NAME_MAX)
            return ee_err_set(err, "%s: '%s' is not MODEL[:flat|hnsw]", where, show("value", value).s);
        memcpy(model, value, ml);
        model[ml] = 0;
        return index_set(ix, where, "model", model, err) ||
                       (colon && index_set(ix, where, "kind", colon + 1, err))
                   ? -1
                   : 0;
    }
    if (sl == 5 && strncmp(key, "kafka", 5) == 0) {
        if (check_kafka(where, rest, value, err)) return -1;
        return kafka_set(c, where, rest, value, err);
    }
    return ee_err_set(err, "%s: unknown section (expected worker., limits., topics., model., index., kafka.)",
                      where);
}

/* ---- validation ---------------------------------------------------------------- */

int ee_config_validate(const ee_config *c, ee_err *err) {
    const char *src = c->source ? c->source : "config";
    char missing[256] = "";
    if (c->n_classes == 0)
        strcat(missing, "[worker] classes (resource classes to serve, e.g. 'classes = small')");
    if (c->n_models == 0) {
        if (*missing) strcat(missing, " and ");
        strcat(missing, "a [model NAME] section with a path");
    }
    if (*missing) return ee_err_set(err, "%s: missing %s", src, missing);

    for (size_t i = 0; i < N_KEYS; i++) {
        const keydef *k = &KEYS[i];
        const char *sn = k->section == S_WORKER ? "worker"
                         : k->section == S_LIMITS ? "limits" : "topics";
        if (k->type == K_U32) {
            uint32_t v = *(const uint32_t *)((const char *)c + k->off);
            if (v == 0 && k->off == OFF(max_inflight)) continue; /* unset: auto */
            if (v < k->min || v > k->max)
                return ee_err_set(err, "%s: [%s] %s: %u is not in %u..%u", src, sn, k->name, v,
                                  k->min, k->max);
        } else if (k->type == K_NAME || k->type == K_GROUP) {
            const char *v = *(char *const *)((const char *)c + k->off);
            if (v && !(k->type == K_NAME ? ee_proto_valid_id(v) : ee_proto_valid_topic(v)))
                return ee_err_set(err, "%s: [%s] %s: '%s' is not valid", src, sn, k->name,
                                  show(k->name, v).s);
        }
    }
    if (c->n_classes > EE_CONFIG_MAX_CLASSES)
        return ee_err_set(err, "%s: [worker] classes: more than %d", src, EE_CONFIG_MAX_CLASSES);
    for (size_t i = 0; i < c->n_classes; i++) {
        if (!c->classes[i] || !valid_class(c->classes[i]))
            return ee_err_set(err, "%s: [worker] classes: '%s' is not a class name ([a-z0-9_-]{1,%d})",
                              src, c->classes[i] ? show("classes", c->classes[i]).s : "(null)",
                              EE_CONFIG_CLASS_MAX);
        for (size_t j = 0; j < i; j++)
            if (strcmp(c->classes[i], c->classes[j]) == 0)
                return ee_err_set(err, "%s: [worker] classes: duplicate class '%s'", src,
                                  c->classes[i]);
    }
    for (size_t i = 0; i < c->n_models; i++) {
        const ee_config_model *m = &c->models[i];
        if (!m->name || !ee_proto_valid_name(m->name))
            return ee_err_set(err, "%s: [model %s]: not a model name ([A-Za-z0-9._-]{1,%d})", src,
                              m->name ? show("model", m->name).s : "(null)", EE_PROTO_NAME_MAX);
        if (!m->path || !*m->path)
            return ee_err_set(err, "%s: [model %s] path: missing or empty", src, m->name);
        for (size_t j = 0; j < i; j++)
            if (strcmp(m->name, c->models[j].name) == 0)
                return ee_err_set(err, "%s: [model %s]: duplicate model", src, m->name);
    }
    for (size_t i = 0; i < c->n_kafka; i++) {
        if (!c->kafka[i].key || !c->kafka[i].value)
            return ee_err_set(err, "%s: [kafka]: entry %zu incomplete", src, i);
        for (size_t j = 0; j < i; j++)
            if (strcmp(c->kafka[i].key, c->kafka[j].key) == 0)
                return ee_err_set(err, "%s: [kafka] %s: duplicate key", src, c->kafka[i].key);
    }
    for (size_t i = 0; i < c->n_indexes; i++) {
        const ee_config_index *ix = &c->indexes[i];
        if (!ix->model)
            return ee_err_set(err, "%s: [index %s] model: missing (the encoder its vectors come "
                                   "from)", src, ix->name);
        bool known = false;
        for (size_t j = 0; j < c->n_models; j++) known |= strcmp(c->models[j].name, ix->model) == 0;
        if (!known)
            return ee_err_set(err, "%s: [index %s] model: '%s' is not a served model ([model %s])",
                              src, ix->name, ix->model, ix->model);
    }
    /* Sealed and signed jobs need their keys. */
    if (c->require_sealed && !c->pool_key)
        return ee_err_set(err, "%s: [worker] require_sealed = 1 needs pool_key (the pool's key "
                               "file, made by 'ee-consumer keygen')", src);
    if (c->require_signed && c->n_tenants == 0)
        return ee_err_set(err, "%s: [worker] require_signed = 1 needs at least one [tenant NAME] "
                               "section (public_key, models)", src);
    return 0;
}

/* ---- accessors ------------------------------------------------------------------ */

const char *ee_config_name(const ee_config *c) {
    return c->name ? c->name : EE_CONFIG_DEFAULT_NAME;
}

const char *ee_config_kafka_get(const ee_config *c, const char *prop) {
    for (size_t i = 0; i < c->n_kafka; i++)
        if (strcmp(c->kafka[i].key, prop) == 0) return c->kafka[i].value;
    return NULL;
}

const ee_config_model *ee_config_model_find(const ee_config *c, const char *name) {
    for (size_t i = 0; i < c->n_models; i++)
        if (strcmp(c->models[i].name, name) == 0) return &c->models[i];
    return NULL;
}

bool ee_config_has_class(const ee_config *c, const char *cls) {
    for (size_t i = 0; i < c->n_classes; i++)
        if (strcmp(c->classes[i], cls) == 0) return true;
    return false;
}

char *ee_config_group_for(const ee_config *c, const char *model, const char *cls, ee_err *err) {
    if (c->group) {
        char *g = xstrdup(c->group);
        if (!g) ee_err_set(err, "group: out of memory");
        return g;
    }
    return ee_proto_group(model, cls, err);
}

ee_proto_limits ee_config_limits(const ee_config *c, uint32_t n_vocab) {
    ee_proto_limits l = {.n_vocab = n_vocab,
                         .max_prompt_tokens = c->max_prompt_tokens,
                         .max_new_tokens = c->max_new_tokens,
                         .max_request_bytes = c->max_request_bytes};
    return l;
}

uint32_t ee_config_auto_inflight(const ee_config *c, bool any_single_pass_model) {
    if (c->max_inflight) return c->max_inflight;
    uint32_t b = c->max_batch ? c->max_batch : EE_CONFIG_DEFAULT_MAX_BATCH;
    uint32_t v = any_single_pass_model ? 8 * b : b;
    return v > EE_CONFIG_INFLIGHT_MAX ? EE_CONFIG_INFLIGHT_MAX : v;
}
