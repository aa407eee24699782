#include "prod_kafka.h"

#include "prod_ids.h"

#include "ee_clock.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

int prod_ms_left(double deadline) {
    double left = deadline - ee_now_ms();
    if (left <= 0) return 0;
    return left > 2e9 ? 2000000000 : (int)left + 1;
}

/* ---- what librdkafka reports ------------------------------------------- */

static void cap_store(prod_kcap *c, const char *msg) {
    pthread_mutex_lock(&c->mu);
    snprintf(c->last, sizeof c->last, "%s", msg);
    pthread_mutex_unlock(&c->mu);
}

/* Called from librdkafka's threads. */
static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
    prod_kcap *c = rd_kafka_opaque(rk);
    if (!c) return;
    if (c->forward) fprintf(stderr, "rdkafka %d %s: %s\n", level, fac, buf);
    if (level <= 3) cap_store(c, buf); /* LOG_ERR and worse: connection failures */
}

/* Called from rd_kafka_poll / rd_kafka_consumer_poll. */
static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque) {
    (void)rk;
    prod_kcap *c = opaque;
    pthread_mutex_lock(&c->mu);
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
        c->all_down = true;
        /* "1/1 brokers are down" says less than the connect error before it */
        if (!c->last[0]) snprintf(c->last, sizeof c->last, "%s", reason);
    } else {
        if (err == RD_KAFKA_RESP_ERR__FATAL) c->fatal = true;
        snprintf(c->last, sizeof c->last, "%s", reason);
    }
    pthread_mutex_unlock(&c->mu);
    if (c->forward) fprintf(stderr, "rdkafka error %s: %s\n", rd_kafka_err2name(err), reason);
}

static bool prop_name_is(const char *prop, const char *name) {
    size_t n = strlen(name);
    return strncmp(prop, name, n) == 0 && prop[n] == '=';
}

int prod_kcap_init(prod_kcap *c, const prod_kafka_opts *o, ee_err *err) {
    memset(c, 0, sizeof *c);
    if (pthread_mutex_init(&c->mu, NULL)) return ee_err_set(err, "cannot create a mutex");
    for (size_t i = 0; i < o->n_props; i++)
        if (prop_name_is(o->props[i], "debug")) c->forward = true;
    return 0;
}

void prod_kcap_destroy(prod_kcap *c) { pthread_mutex_destroy(&c->mu); }

void prod_kcap_last(prod_kcap *c, char *out, size_t cap) {
    pthread_mutex_lock(&c->mu);
    snprintf(out, cap, "%s", c->last);
    pthread_mutex_unlock(&c->mu);
}

int prod_kcap_unreachable(prod_kcap *c, const char *bootstrap, const char *fallback,
                          ee_err *err) {
    char last[512];
    prod_kcap_last(c, last, sizeof last);
    return ee_err_set(err, "cannot reach Kafka at %s: %s", bootstrap, last[0] ? last : fallback);
}

/* ---- configuration ------------------------------------------------------- */

static bool secret_name(const char *name, size_t len) {
    for (size_t i = 0; i < len; i++)
        if ((len - i >= 8 && strncasecmp(name + i, "password", 8) == 0) ||
            (len - i >= 6 && strncasecmp(name + i, "secret", 6) == 0))
            return true;
    return false;
}

static int set(rd_kafka_conf_t *conf, const char *k, const char *v, ee_err *err) {
    char es[512];
    if (rd_kafka_conf_set(conf, k, v, es, sizeof es) != RD_KAFKA_CONF_OK)
        return ee_err_set(err, "kafka setting %s: %s", k, es);
    return 0;
}

/* The --kafka pairs, in order, on top of conf. */
static int apply_props(rd_kafka_conf_t *conf, const prod_kafka_opts *o, ee_err *err) {
    for (size_t i = 0; i < o->n_props; i++) {
        const char *p = o->props[i], *eq = strchr(p, '=');
        if (!eq || eq == p)
            return ee_err_set(err, "--kafka: '%s' is not PROP=VALUE",
                              secret_name(p, strlen(p)) ? "<redacted>" : p);
        char name[256];
        size_t len = (size_t)(eq - p);
        if (len >= sizeof name) return ee_err_set(err, "--kafka: property name too long");
        memcpy(name, p, len);
        name[len] = 0;
        char es[512];
        if (rd_kafka_conf_set(conf, name, eq + 1, es, sizeof es) != RD_KAFKA_CONF_OK) {
            /* librdkafka's message may quote the value */
            if (secret_name(name, len))
                return ee_err_set(err, "--kafka %s=<redacted>: rejected by librdkafka", name);
            return ee_err_set(err, "--kafka %s: %s", p, es);
        }
    }
    return 0;
}

static rd_kafka_conf_t *base_conf(const prod_kafka_opts *o, prod_kcap *cap, ee_err *err) {
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (!conf) return ee_err_set(err, "out of memory"), NULL;
    rd_kafka_conf_set_opaque(conf, cap);
    rd_kafka_conf_set_log_cb(conf, log_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    if (set(conf, "bootstrap.servers", o->bootstrap, err) ||
        set(conf, "client.id", "ee-producer", err) ||
        set(conf, "log.connection.close", "false", err)) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    return conf;
}

int prod_kafka_check_props(const prod_kafka_opts *o, ee_err *err) {
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (!conf) return ee_err_set(err, "out of memory");
    int rc = apply_props(conf, o, err);
    rd_kafka_conf_destroy(conf);
    return rc;
}

static rd_kafka_t *make(rd_kafka_type_t type, rd_kafka_conf_t *conf, const prod_kafka_opts *o,
                        ee_err *err) {
    if (apply_props(conf, o, err)) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    char es[512];
    rd_kafka_t *rk = rd_kafka_new(type, conf, es, sizeof es);
    if (!rk) {
        rd_kafka_conf_destroy(conf); /* rd_kafka_new frees it only on success */
        return ee_err_set(err, "cannot create a Kafka %s: %s",
                          type == RD_KAFKA_PRODUCER ? "producer" : "consumer", es), NULL;
    }
    return rk;
}

rd_kafka_t *prod_kafka_producer(const prod_kafka_opts *o, prod_kcap *cap, int delivery_timeout_ms,
                                prod_dr_cb dr, ee_err *err) {
    rd_kafka_conf_t *conf = base_conf(o, cap, err);
    if (!conf) return NULL;
    char tmo[32];
    snprintf(tmo, sizeof tmo, "%d", delivery_timeout_ms > 0 ? delivery_timeout_ms : 1);
    /* A request is acknowledged only once every in-sync replica has it;
     * idempotence keeps retries from duplicating or reordering records. */
    if (set(conf, "acks", "all", err) || set(conf, "enable.idempotence", "true", err) ||
        set(conf, "message.timeout.ms", tmo, err) ||
        /* latency first: a job is sent at once (jobs produced while a
         * request is in flight still batch), and Nagle does not hold small
         * records back (docs/BENCHMARKS.md "The worker against the CLI") */
        set(conf, "linger.ms", "0", err) || set(conf, "socket.nagle.disable", "true", err) ||
        /* a typo in --model must not create topics on a permissive broker */
        set(conf, "allow.auto.create.topics", "false", err)) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    if (dr) rd_kafka_conf_set_dr_msg_cb(conf, dr);
    return make(RD_KAFKA_PRODUCER, conf, o, err);
}

rd_kafka_t *prod_kafka_consumer(const prod_kafka_opts *o, prod_kcap *cap, ee_err *err) {
    rd_kafka_conf_t *conf = base_conf(o, cap, err);
    if (!conf) return NULL;
    /* librdkafka's assign() needs a group id; it is never joined (no
     * subscribe) and nothing is committed under it. */
    char hex[17], group[40];
    if (prod_random_hex(hex, 8, err)) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    snprintf(group, sizeof group, "ee-producer-%s", hex);
    if (set(conf, "group.id", group, err) || set(conf, "enable.auto.commit", "false", err) ||
        set(conf, "enable.auto.offset.store", "false", err) ||
        set(conf, "enable.partition.eof", "false", err) ||
        set(conf, "auto.offset.reset", "earliest", err) ||
        /* replies are small and latency matters more than batching */
        set(conf, "fetch.wait.max.ms", "100", err) ||
        set(conf, "socket.nagle.disable", "true", err)) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_t *rk = make(RD_KAFKA_CONSUMER, conf, o, err);
    if (rk) rd_kafka_poll_set_consumer(rk);
    return rk;
}

/* ---- metadata ------------------------------------------------------------ */

int prod_kafka_metadata(rd_kafka_t *rk, prod_kcap *cap, const char *bootstrap, double deadline,
                        const struct rd_kafka_metadata **md, ee_err *err) {
    pthread_mutex_lock(&cap->mu);
    cap->all_down = false;
    pthread_mutex_unlock(&cap->mu);
    for (;;) {
        int left = prod_ms_left(deadline);
        /* short steps so that "all brokers down" ends the wait early */
        int step = left < 500 ? (left > 0 ? left : 1) : 500;
        rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 1, NULL, md, step);
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR) return 0;
        *md = NULL;
        /* serves error_cb (a consumer has nothing assigned yet, so its
         * poll returns no records that could be lost here) */
        if (rd_kafka_type(rk) == RD_KAFKA_PRODUCER) {
            rd_kafka_poll(rk, 0);
        } else {
            rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 0);
            if (m) rd_kafka_message_destroy(m);
        }
        pthread_mutex_lock(&cap->mu);
        bool down = cap->all_down, fatal = cap->fatal;
        pthread_mutex_unlock(&cap->mu);
        if (down || fatal || prod_ms_left(deadline) == 0)
            return prod_kcap_unreachable(cap, bootstrap, rd_kafka_err2str(e), err);
    }
}

int prod_kafka_partitions(const struct rd_kafka_metadata *md, const char *topic, bool *ready) {
    if (ready) *ready = false;
    for (int i = 0; i < md->topic_cnt; i++) {
        const rd_kafka_metadata_topic_t *t = &md->topics[i];
        if (strcmp(t->topic, topic) != 0) continue;
        if (t->err || t->partition_cnt <= 0) return -1;
        bool ok = true;
        for (int p = 0; p < t->partition_cnt; p++)
            if (t->partitions[p].leader < 0 || t->partitions[p].err) ok = false;
        if (ready) *ready = ok;
        return t->partition_cnt;
    }
    return -1;
}
