/* The worker's Kafka clients: one consumer per consumer group (a group per
 * (model, class) unless [worker] group joins them), one idempotent producer
 * for replies and dead letters (replaced after a fatal error), topic
 * creation and pausing. Delivery reports and rebalances go to the hooks the
 * caller passes (svc_poll.c), so this file calls nothing above it.
 *
 * librdkafka 2.0.2 rules followed here (../shared/NOTES.md s6): offsets are
 * stored by hand (enable.auto.offset.store=false) after the delivery
 * report, and auto-commit commits what was stored. */
#include "svc_kafka.h"

#include "svc_log.h"
#include "svc_metrics.h"

#include "ee_clock.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- callbacks -------------------------------------------------------------- */

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
    (void)rk;
    json_t *f = json_object();
    json_object_set_new(f, "client", json_string(rd_kafka_name(rk)));
    json_object_set_new(f, "facility", json_string(fac));
    json_object_set_new(f, "message", json_string(buf));
    /* CONFWARN: the shared [kafka] section gives the reply producer
     * consumer-only properties too; librdkafka says so, harmlessly. */
    bool confwarn = strcmp(fac, "CONFWARN") == 0;
    svc_log(level <= 3 ? "error" : level <= 4 && !confwarn ? "warn" : "info", "librdkafka", f);
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque) {
    svc *s = opaque;
    json_t *f = json_object();
    json_object_set_new(f, "client", json_string(rd_kafka_name(rk)));
    json_object_set_new(f, "error", json_string(rd_kafka_err2name(err)));
    json_object_set_new(f, "reason", json_string(reason));
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char buf[256];
        rd_kafka_resp_err_t orig = rd_kafka_fatal_error(rk, buf, sizeof buf);
        json_object_set_new(f, "fatal", json_string(rd_kafka_err2name(orig)));
        json_object_set_new(f, "fatal_reason", json_string(buf));
        /* The reply producer is replaced (svc_producer_recreate); a fatal
         * consumer error (e.g. a fenced static member) ends the worker. */
        if (rk == s->producer) atomic_store(&s->fatal, true);
        else atomic_store(&s->fatal_final, true);
        svc_log("error", "kafka_fatal", f);
        return;
    }
    svc_log(err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN ? "error" : "warn", "kafka_error", f);
}

static int stats_cb(rd_kafka_t *rk, char *json, size_t len, void *opaque) {
    (void)rk;
    svc_metrics_stats(opaque, json, len);
    return 0; /* librdkafka frees json */
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    svc *s = opaque;
    s->hooks.delivered(s, m);
}

/* ---- setup ------------------------------------------------------------------ */

static int conf_set(rd_kafka_conf_t *conf, const char *k, const char *v, ee_err *err) {
    char e[512];
    if (rd_kafka_conf_set(conf, k, v, e, sizeof e) != RD_KAFKA_CONF_OK)
        return ee_err_set(err, "kafka property %s: %s", k, e);
    return 0;
}

/* Our defaults, then the user's [kafka] properties (they win), then the
 * few the worker's guarantees depend on (they cannot be overridden). */
rd_kafka_conf_t *svc_kafka_conf(svc *s, bool consumer, const char *group, ee_err *err) {
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    const ee_config *c = s->cfg;
    char client_id[200];
    snprintf(client_id, sizeof client_id, "%s%s", s->name, consumer ? "" : "-replies");
    static const char *const cons_defaults[][2] = {
        {"auto.offset.reset", "earliest"},
        {"enable.auto.commit", "true"},
        {"auto.commit.interval.ms", "1000"},
        {"statistics.interval.ms", "5000"},
        {"partition.assignment.strategy", "range,roundrobin"},
        /* A broker answers a fetch as soon as data arrives, but an idle
         * fetch that data misses (and the dev mock broker) waits this long:
         * 100 ms instead of 500 bounds the added queue time. */
        {"fetch.wait.max.ms", "100"},
        /* Requests and replies are small single records: Nagle's algorithm
         * only holds them back (service overhead p50 5.2 -> 3.7-4.2 ms,
         * docs/BENCHMARKS.md "The worker against the CLI"). */
        {"socket.nagle.disable", "true"},
    };
    static const char *const prod_defaults[][2] = {
        /* Send a reply at once: records produced while a request is in
         * flight still batch, so linger only added its own delay. */
        {"linger.ms", "0"},
        {"socket.nagle.disable", "true"},
        /* a reply to a missing topic fails in 10 s (then is dead-lettered)
         * instead of the 30 s default */
        {"topic.metadata.propagation.max.ms", "10000"},
    };
    if (conf_set(conf, "client.id", client_id, err)) goto fail;
    if (consumer) {
        for (size_t i = 0; i < sizeof cons_defaults / sizeof cons_defaults[0]; i++)
            if (conf_set(conf, cons_defaults[i][0], cons_defaults[i][1], err)) goto fail;
    } else {
        for (size_t i = 0; i < sizeof prod_defaults / sizeof prod_defaults[0]; i++)
            if (conf_set(conf, prod_defaults[i][0], prod_defaults[i][1], err)) goto fail;
    }
    for (size_t i = 0; i < c->n_kafka; i++) {
        const char *k = c->kafka[i].key;
        /* group.id is the worker's to choose (per model and class) */
        if (strcmp(k, "group.id") == 0) continue;
        if (conf_set(conf, k, c->kafka[i].value, err)) goto fail;
    }
    if (consumer) {
        if (conf_set(conf, "group.id", group, err) ||
            conf_set(conf, "enable.auto.offset.store", "false", err) ||
            conf_set(conf, "enable.partition.eof", "false", err))
            goto fail;
    } else {
        if (conf_set(conf, "enable.idempotence", "true", err) ||
            conf_set(conf, "acks", "all", err))
            goto fail;
        rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    }
    rd_kafka_conf_set_opaque(conf, s);
    rd_kafka_conf_set_log_cb(conf, log_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    if (consumer) {
        rd_kafka_conf_set_rebalance_cb(conf, s->hooks.rebalance);
        rd_kafka_conf_set_stats_cb(conf, stats_cb);
    }
    return conf;
fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

static int add_topic(svc_cons *c, const char *topic, int model, const char *cls) {
    char **t = realloc(c->topics, (size_t)(c->n_topics + 1) * sizeof *t);
    if (!t) return -1;
    c->topics = t;
    int *m = realloc(c->topic_model, (size_t)(c->n_topics + 1) * sizeof *m);
    if (!m) return -1;
    c->topic_model = m;
    const char **k = realloc(c->topic_class, (size_t)(c->n_topics + 1) * sizeof *k);
    if (!k) return -1;
    c->topic_class = k;
    c->topics[c->n_topics] = strdup(topic);
    c->topic_model[c->n_topics] = model;
    c->topic_class[c->n_topics] = cls;
    if (!c->topics[c->n_topics]) return -1;
    c->n_topics++;
    return 0;
}

void svc_kafka_wake_on(svc *s, rd_kafka_queue_t *q) {
    if (!q) return;
    if (s->wake_wr >= 0) rd_kafka_queue_io_event_enable(q, s->wake_wr, "k", 1);
    rd_kafka_queue_destroy(q);
}

int svc_kafka_open(svc *s, const svc_kafka_hooks *hooks, ee_err *err) {
    s->hooks = *hooks;
    int fds[2];
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0)
        return ee_err_set(err, "wake pipe: %s", strerror(errno));
    s->wake_rd = fds[0];
    s->wake_wr = fds[1];
    s->poll_pending = true; /* queues may fill before the events are enabled */
    const ee_config *c = s->cfg;
    size_t pairs = (size_t)s->n_models * c->n_classes;
    s->cons = calloc(pairs, sizeof *s->cons);
    if (!s->cons) return ee_err_set(err, "out of memory");
    /* Group the (model, class) topics by consumer group. */
    for (int mi = 0; mi < s->n_models; mi++)
        for (size_t ci = 0; ci < c->n_classes; ci++) {
            const char *cls = c->classes[ci];
            char *topic = ee_proto_request_topic(s->models[mi].name, cls, err);
            char *group = topic ? ee_config_group_for(c, s->models[mi].name, cls, err) : NULL;
            if (!topic || !group) {
                free(topic);
                return -1;
            }
            svc_cons *sc = NULL;
            for (int k = 0; k < s->n_cons; k++)
                if (strcmp(s->cons[k].group, group) == 0) sc = &s->cons[k];
            if (!sc) {
                sc = &s->cons[s->n_cons];
                sc->idx = s->n_cons++;
                sc->group = group;
            } else {
                free(group);
            }
            int rc = add_topic(sc, topic, mi, cls);
            free(topic);
            if (rc) return ee_err_set(err, "out of memory");
        }
    char e[512];
    rd_kafka_conf_t *pc = svc_kafka_conf(s, false, NULL, err);
    if (!pc) return -1;
    s->producer = rd_kafka_new(RD_KAFKA_PRODUCER, pc, e, sizeof e);
    if (!s->producer) return ee_err_set(err, "kafka producer: %s", e);
    const char *tf = getenv("EE_TEST_FATAL_AFTER");
    if (tf && *tf) s->test_fatal_after = strtol(tf, NULL, 10);
    for (int k = 0; k < s->n_cons; k++) {
        svc_cons *sc = &s->cons[k];
        rd_kafka_conf_t *cc = svc_kafka_conf(s, true, sc->group, err);
        if (!cc) return -1;
        sc->rk = rd_kafka_new(RD_KAFKA_CONSUMER, cc, e, sizeof e);
        if (!sc->rk) return ee_err_set(err, "kafka consumer (group %s): %s", sc->group, e);
        rd_kafka_poll_set_consumer(sc->rk);
        svc_kafka_wake_on(s, rd_kafka_queue_get_consumer(sc->rk));
    }
    svc_kafka_wake_on(s, rd_kafka_queue_get_main(s->producer));
    return 0;
}

int svc_subscribe(svc *s, ee_err *err) {
    for (int k = 0; k < s->n_cons; k++) {
        svc_cons *sc = &s->cons[k];
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(sc->n_topics);
        json_t *ts = json_array();
        for (int i = 0; i < sc->n_topics; i++) {
            rd_kafka_topic_partition_list_add(l, sc->topics[i], RD_KAFKA_PARTITION_UA);
            json_array_append_new(ts, json_string(sc->topics[i]));
        }
        rd_kafka_resp_err_t e = rd_kafka_subscribe(sc->rk, l);
        rd_kafka_topic_partition_list_destroy(l);
        if (e) {
            json_decref(ts);
            return ee_err_set(err, "subscribe (group %s): %s", sc->group, rd_kafka_err2str(e));
        }
        json_t *f = json_object();
        json_object_set_new(f, "group", json_string(sc->group));
        json_object_set_new(f, "topics", ts);
        svc_log("info", "subscribed", f);
    }
    return 0;
}

/* Create the request topics and ee.dlq if missing. A broker without the
 * admin API (the dev mock cluster) or without the ACL gets a warning: the
 * topics may exist already; if not, subscribing logs it. */
int svc_create_topics(svc *s, ee_err *err) {
    (void)err;
    if (!s->cfg->topics_create) return 0;
    int n = 1;
    for (int k = 0; k < s->n_cons; k++) n += s->cons[k].n_topics;
    rd_kafka_NewTopic_t **nt = calloc((size_t)n, sizeof *nt);
    if (!nt) return 0;
    /* Ask for metadata first and create only what is missing: cheaper, and
     * works with brokers that refuse the admin API when nothing is
     * missing. */
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t me = rd_kafka_metadata(s->producer, 1, NULL, &md, 10000);
    if (me) {
        json_t *f = json_object();
        json_object_set_new(f, "error", json_string(rd_kafka_err2str(me)));
        svc_log("warn", "metadata_failed", f);
        md = NULL;
    }
    int m = 0;
    char e[512];
    for (int k = 0; k <= s->n_cons; k++)
        for (int i = 0; i < (k < s->n_cons ? s->cons[k].n_topics : 1); i++) {
            const char *name = k < s->n_cons ? s->cons[k].topics[i] : EE_PROTO_DLQ_TOPIC;
            bool exists = false;
            for (int t = 0; md && t < md->topic_cnt && !exists; t++)
                exists = md->topics[t].err == RD_KAFKA_RESP_ERR_NO_ERROR &&
                         strcmp(md->topics[t].topic, name) == 0;
            if (!exists)
                nt[m++] = rd_kafka_NewTopic_new(name, (int)s->cfg->topic_partitions,
                                                (int)s->cfg->topic_replication, e, sizeof e);
        }
    if (md) rd_kafka_metadata_destroy(md);
    if (m == 0) {
        free(nt);
        return 0;
    }
    rd_kafka_queue_t *q = rd_kafka_queue_new(s->producer);
    rd_kafka_AdminOptions_t *o = rd_kafka_AdminOptions_new(s->producer, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_request_timeout(o, 15000, e, sizeof e);
    rd_kafka_AdminOptions_set_operation_timeout(o, 10000, e, sizeof e);
    rd_kafka_CreateTopics(s->producer, nt, (size_t)m, o, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 20000);
    const rd_kafka_CreateTopics_result_t *res = ev ? rd_kafka_event_CreateTopics_result(ev) : NULL;
    if (!ev || rd_kafka_event_error(ev)) {
        json_t *f = json_object();
        json_object_set_new(f, "error", json_string(ev ? rd_kafka_event_error_string(ev)
                                                       : "no answer in 20 s"));
        svc_log("warn", "create_topics_failed", f);
    } else if (res) {
        size_t cnt = 0;
        const rd_kafka_topic_result_t **tr = rd_kafka_CreateTopics_result_topics(res, &cnt);
        for (size_t i = 0; i < cnt; i++) {
            rd_kafka_resp_err_t te = rd_kafka_topic_result_error(tr[i]);
            json_t *f = json_object();
            json_object_set_new(f, "topic", json_string(rd_kafka_topic_result_name(tr[i])));
            if (te == RD_KAFKA_RESP_ERR_NO_ERROR) {
                json_object_set_new(f, "partitions", json_integer(s->cfg->topic_partitions));
                json_object_set_new(f, "replication_factor",
                                    json_integer(s->cfg->topic_replication));
                svc_log("info", "topic_created", f);
            } else if (te == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
                json_decref(f);
            } else {
                const char *es = rd_kafka_topic_result_error_string(tr[i]);
                json_object_set_new(f, "error", json_string(es ? es : rd_kafka_err2str(te)));
                svc_log("warn", "create_topic_failed", f);
            }
        }
    }
    if (ev) rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(o);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy_array(nt, (size_t)m);
    free(nt);
    return 0;
}

int svc_producer_recreate(svc *s) {
    ee_err err = {{0}};
    char e[512];
    rd_kafka_conf_t *pc = svc_kafka_conf(s, false, NULL, &err);
    rd_kafka_t *nw = pc ? rd_kafka_new(RD_KAFKA_PRODUCER, pc, e, sizeof e) : NULL;
    if (!nw) {
        json_t *f = json_object();
        json_object_set_new(f, "error", json_string(pc ? e : err.msg));
        svc_log("error", "producer_recreate_failed", f);
        return -1;
    }
    svc_kafka_wake_on(s, rd_kafka_queue_get_main(nw));
    pthread_rwlock_wrlock(&s->prod_lock);
    rd_kafka_t *old = s->producer;
    s->producer = nw;
    atomic_store(&s->fatal, false);
    pthread_rwlock_unlock(&s->prod_lock);
    /* Every record the old producer still holds fails with a purge or fatal
     * error; its delivery reports (served here) re-send them on the new one.
     * Idempotence is per producer: a record the broker had already written
     * may be written twice (a duplicate reply: clients dedupe by id). */
    rd_kafka_purge(old, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    double t_end = ee_now_ms() + 10000;
    while (rd_kafka_outq_len(old) > 0 && ee_now_ms() < t_end) rd_kafka_poll(old, 50);
    int left = rd_kafka_outq_len(old);
    rd_kafka_destroy(old);
    ee_metrics_counter_inc(s->metrics, "ee_producer_recreated_total", EE_NO_LABELS);
    json_t *f = json_object();
    json_object_set_new(f, "unflushed", json_integer(left));
    svc_log("warn", "producer_recreated", f);
    return 0;
}

/* ---- running ------------------------------------------------------------------ */

void svc_set_paused(svc *s, bool paused) {
    for (int k = 0; k < s->n_cons; k++) {
        svc_cons *sc = &s->cons[k];
        if (sc->paused == paused) continue;
        rd_kafka_topic_partition_list_t *a = NULL;
        if (rd_kafka_assignment(sc->rk, &a) == RD_KAFKA_RESP_ERR_NO_ERROR && a) {
            if (paused) rd_kafka_pause_partitions(sc->rk, a);
            else rd_kafka_resume_partitions(sc->rk, a);
            rd_kafka_topic_partition_list_destroy(a);
        }
        sc->paused = paused;
    }
    ee_metrics_gauge_set(s->metrics, "ee_partitions_paused", EE_NO_LABELS, paused ? 1 : 0);
    if (paused) ee_metrics_counter_inc(s->metrics, "ee_intake_pauses_total", EE_NO_LABELS);
}

void svc_kafka_close(svc *s) {
    for (int k = 0; k < s->n_cons; k++) {
        svc_cons *sc = &s->cons[k];
        if (sc->rk) rd_kafka_destroy(sc->rk);
        for (int i = 0; i < sc->n_topics; i++) free(sc->topics[i]);
        free(sc->topics);
        free(sc->topic_model);
        free(sc->topic_class);
        free(sc->group);
    }
    free(s->cons);
    s->cons = NULL;
    s->n_cons = 0;
    if (s->producer) rd_kafka_destroy(s->producer);
    s->producer = NULL;
    if (s->wake_rd >= 0) close(s->wake_rd);
    if (s->wake_wr >= 0) close(s->wake_wr);
    s->wake_rd = s->wake_wr = -1;
}
