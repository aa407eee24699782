/* Sealed and signed jobs on the worker (docs/PROTOCOL.md, "Sealed and
 * signed jobs"; core/ee_seal.h). Order of the checks, cheapest and least
 * revealing first: the signature (before any decryption work for an
 * unknown sender), the replay window, the tenant's rights, then opening
 * the sealed body. Every refusal is an error reply (or a dead letter when
 * the routing headers are unusable) and never runs inference. */
#include "svc_auth.h"

#include "svc_log.h"

#include "ee_clock.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int svc_auth_open(svc *s, ee_err *err) {
    const ee_config *c = s->cfg;
    if (c->pool_key) {
        if (ee_pool_key_load(&s->pool, c->pool_key, err))
            return ee_err_wrap(err, "[worker] pool_key");
        s->have_pool = true;
        char pk[EE_SEAL_PK_HEX];
        ee_seal_pk_hex(s->pool.pk, pk);
        json_t *f = json_object();
        json_object_set_new(f, "pool_public_key", json_string(pk));
        json_object_set_new(f, "require_sealed", json_boolean(c->require_sealed));
        svc_log("info", "pool_key_loaded", f);
    }
    if (c->n_tenants > 0 || c->require_signed) {
        s->replay = ee_replay_open(c->replay_capacity, c->replay_window_ms, err);
        if (!s->replay) return -1;
    }
    return 0;
}

void svc_auth_close(svc *s) {
    ee_replay_close(s->replay);
    s->replay = NULL;
    ee_seal_wipe(&s->pool, sizeof s->pool);
    s->have_pool = false;
}

static int refuse(svc_job *j, ee_proto_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int refuse(svc_job *j, ee_proto_code code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(j->message, sizeof j->message, fmt, ap);
    va_end(ap);
    j->code = code;
    return -1;
}

/* Header name's last value as a NUL-terminated string in buf; false when
 * absent, too long or holding a NUL. */
static bool header(const svc_job *j, const char *name, char *buf, size_t cap) {
    const void *v = NULL;
    size_t n = 0;
    if (!j->headers || rd_kafka_header_get_last(j->headers, name, &v, &n) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        !v || n >= cap || memchr(v, 0, n))
        return false;
    memcpy(buf, v, n);
    buf[n] = 0;
    return true;
}

static bool parse_i64(const char *s, int64_t *out) {
    if (!*s) return false;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < 0) return false;
    *out = v;
    return true;
}

/* Where the record came from, for telling a redelivery from a replay. */
static uint64_t record_where(const svc_job *j) {
    uint64_t h = 1469598103934665603ull;
    for (const char *p = j->topic; *p; p++) h = (h ^ (uint8_t)*p) * 1099511628211ull;
    h = (h ^ (uint64_t)(uint32_t)j->partition) * 1099511628211ull;
    h = (h ^ (uint64_t)j->offset) * 1099511628211ull;
    return h ? h : 1;
}

int svc_auth_check(svc *s, svc_job *j) {
    const ee_config *c = s->cfg;
    char id[EE_PROTO_ID_MAX + 1], reply_to[EE_PROTO_TOPIC_MAX + 1];
    /* Routing headers: where a refusal is answered (the body may be sealed
     * or unreadable). */
    if (header(j, EE_PROTO_HDR_ID, id, sizeof id) && ee_proto_valid_id(id)) {
        j->has_id = true;
        snprintf(j->id, sizeof j->id, "%s", id);
    }
    if (header(j, EE_PROTO_HDR_REPLY_TO, reply_to, sizeof reply_to) &&
        ee_proto_valid_topic(reply_to)) {
        j->has_reply_to = true;
        snprintf(j->reply_to, sizeof j->reply_to, "%s", reply_to);
    }
    j->was_sealed = ee_is_sealed(j->value, j->value_len);

    /* 1. Signature. */
    char sig_hex[EE_SEAL_SIG_HEX + 1], tenant[EE_PROTO_NAME_MAX + 2], ts_s[32], dl_s[32];
    bool has_sig = header(j, EE_PROTO_HDR_SIG, sig_hex, sizeof sig_hex);
    if (!has_sig && c->require_signed)
        return refuse(j, EE_PROTO_E_UNAUTHENTICATED,
                      "unsigned job: this worker requires signed jobs (headers %s, %s, %s)",
                      EE_PROTO_HDR_TENANT, EE_PROTO_HDR_TS, EE_PROTO_HDR_SIG);
    if (has_sig) {
        int64_t ts = 0, dl = 0;
        uint8_t sig[EE_SEAL_SIG_BYTES];
        ee_err err = {{0}};
        if (!header(j, EE_PROTO_HDR_TENANT, tenant, sizeof tenant) || !ee_proto_valid_name(tenant))
            return refuse(j, EE_PROTO_E_UNAUTHENTICATED, "signed job without a valid %s header",
                          EE_PROTO_HDR_TENANT);
        const ee_config_tenant *t = ee_config_tenant_find(c, tenant);
        if (!t) return refuse(j, EE_PROTO_E_UNAUTHENTICATED, "unknown tenant '%s'", tenant);
        if (!header(j, EE_PROTO_HDR_TS, ts_s, sizeof ts_s) || !parse_i64(ts_s, &ts))
            return refuse(j, EE_PROTO_E_UNAUTHENTICATED, "signed job without a valid %s header "
                                                         "(epoch ms)", EE_PROTO_HDR_TS);
        if (header(j, EE_PROTO_HDR_DEADLINE, dl_s, sizeof dl_s) && !parse_i64(dl_s, &dl))
            return refuse(j, EE_PROTO_E_UNAUTHENTICATED, "%s header is not epoch ms",
                          EE_PROTO_HDR_DEADLINE);
        if (!j->has_id || !j->has_reply_to)
            return refuse(j, EE_PROTO_E_UNAUTHENTICATED, "signed job without valid %s and %s "
                                                         "headers", EE_PROTO_HDR_ID,
                          EE_PROTO_HDR_REPLY_TO);
        if (ee_seal_sig_parse(sig_hex, sig, &err))
            return refuse(j, EE_PROTO_E_UNAUTHENTICATED, "%s header: %s", EE_PROTO_HDR_SIG, err.msg);
        ee_signed_fields f = {.topic = j->topic, .id = j->id, .reply_to = j->reply_to,
                              .tenant = tenant, .ts_ms = ts, .deadline_ms = dl,
                              .value = j->value, .value_n = j->value_len};
        if (ee_verify_request(t->pk, &f, sig, &err))
            return refuse(j, EE_PROTO_E_UNAUTHENTICATED, "%s", err.msg);
        /* 2. Replay window. */
        switch (ee_replay_check(s->replay, tenant, j->id, record_where(j), ts, ee_epoch_ms())) {
        case EE_REPLAY_FRESH: break;
        case EE_REPLAY_SEEN:
            return refuse(j, EE_PROTO_E_REPLAYED, "tenant '%s' already sent id '%s' within the "
                                                  "replay window (%u ms)", tenant, j->id,
                          c->replay_window_ms);
        case EE_REPLAY_TOO_OLD:
        case EE_REPLAY_FUTURE:
            return refuse(j, EE_PROTO_E_REPLAYED, "%s %lld lies outside the replay window of "
                                                  "%u ms around the worker's clock",
                          EE_PROTO_HDR_TS, (long long)ts, c->replay_window_ms);
        }
        /* 3. The tenant's rights on this topic's model and class. */
        const char *model = j->model >= 0 ? s->models[j->model].name : "?";
        if (!ee_config_tenant_allows(t, model, j->cls ? j->cls : "?"))
            return refuse(j, EE_PROTO_E_FORBIDDEN, "tenant '%s' may not use model '%s' class '%s'",
                          tenant, model, j->cls ? j->cls : "?");
        j->signed_ok = true;
        j->hdr_deadline = dl;
        memcpy(j->tenant, tenant, strlen(tenant) + 1); /* valid name: <= 64 bytes */
    }

    /* 4. Sealing. */
    if (!j->was_sealed) {
        if (c->require_sealed)
            return refuse(j, EE_PROTO_E_UNAUTHENTICATED,
                          "the record is not sealed: this worker requires sealed jobs");
        return 0;
    }
    if (!s->have_pool)
        return refuse(j, EE_PROTO_E_UNAUTHENTICATED,
                      "the record is sealed but this worker holds no pool key");
    ee_err err = {{0}};
    if (ee_unseal(s->pool.pk, s->pool.sk, j->value, j->value_len, &j->body, &j->body_len, &err))
        return refuse(j, EE_PROTO_E_UNAUTHENTICATED, "%s", err.msg);
    return 0;
}

int svc_auth_after_parse(svc *s, svc_job *j) {
    (void)s;
    const ee_proto_request *r = &j->req;
    if (j->signed_ok) {
        /* The signature covered the headers; the body must say the same. */
        if (strcmp(r->id, j->id) != 0 || strcmp(r->reply_to, j->reply_to) != 0 ||
            r->deadline_ms != j->hdr_deadline)
            return refuse(j, EE_PROTO_E_UNAUTHENTICATED,
                          "the body's id, reply_to or deadline_ms differ from the signed headers");
    }
    if (j->was_sealed) {
        ee_err err = {{0}};
        if (!r->reply_pk)
            return refuse(j, EE_PROTO_E_BAD_REQUEST,
                          "reply_pk: missing (a sealed job names the key its reply is sealed to)");
        if (ee_seal_pk_parse(r->reply_pk, j->reply_pk, &err))
            return refuse(j, EE_PROTO_E_BAD_REQUEST, "reply_pk: %s", err.msg);
        j->seal_reply = true;
    }
    return 0;
}

void svc_auth_parse_failed(svc_job *j) {
    if (!j->body) return;
    /* Seal the error reply if the body names a usable reply key at all. */
    json_t *root = json_loadb((const char *)j->body, j->body_len, 0, NULL);
    const char *pk = json_is_object(root) ? json_string_value(json_object_get(root, "reply_pk")) : NULL;
    if (pk && ee_seal_pk_parse(pk, j->reply_pk, NULL) == 0) j->seal_reply = true;
    json_decref(root);
    if (!j->seal_reply) /* the reply travels in the clear: no body details in it */
        snprintf(j->message, sizeof j->message,
                 "the sealed body is invalid (%s); details withheld: no usable reply_pk to seal "
                 "them to", ee_proto_code_name(j->code));
}

char *svc_auth_reply_value(svc_job *j, char *js, size_t *len) {
    if (!j->seal_reply) {
        *len = strlen(js);
        return js;
    }
    uint8_t *out = NULL;
    size_t n = 0;
    ee_err err = {{0}};
    int rc = ee_seal(j->reply_pk, js, strlen(js), &out, &n, &err);
    free(js);
    if (rc) return NULL;
    *len = n;
    return (char *)out;
}
