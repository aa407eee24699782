/* Kafka side of the worker: one consumer per consumer group (a group per
 * (model, class) unless [worker] group joins them), one idempotent producer
 * for replies and dead letters, topic creation, the rebalance callback,
 * backpressure, and the poll loop's single round.
 *
 * librdkafka 2.0.2 rules followed here (../shared/NOTES.md s6): inference
 * never runs on the poll thread; offsets are stored by hand
 * (enable.auto.offset.store=false) after the delivery report, and
 * auto-commit commits what was stored; pause state is ours and re-applied
 * to new assignments; eager rebalancing by default (cooperative-sticky has
 * known bugs in 2.0.2) with incremental calls when a user configures a
 * cooperative assignor anyway. */
#include "svc.h"

#include "ee_platform.h"

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
    svc_on_delivery(opaque, m);
}

static svc_cons *cons_of(svc *s, rd_kafka_t *rk) {
    for (int i = 0; i < s->n_cons; i++)
        if (s->cons[i].rk == rk) return &s->cons[i];
    return NULL;
}

static bool parts_has(const rd_kafka_topic_partition_list_t *l, const char *t, int32_t p) {
    if (!l) return true;
    for (int i = 0; i < l->cnt; i++)
        if (l->elems[i].partition == p && strcmp(l->elems[i].topic, t) == 0) return true;
    return false;
}

/* Jobs of a consumer's partitions (all consumers when cons < 0; all
 * partitions when parts is NULL): queued ones are abandoned at once, the
 * others get wait_ms to finish (delivery reports are served meanwhile),
 * then running ones are cancelled and handed back. Replies already in
 * flight end on their own; their late acks can no longer commit anything
 * (the partition's generation changes on drop). */
void svc_release_jobs(svc *s, int cons, const rd_kafka_topic_partition_list_t *parts,
                      int wait_ms) {
#define MATCH(j) ((cons < 0 || (j)->cons == cons) && parts_has(parts, (j)->topic, (j)->partition))
    /* Queued: unlink under the lock and finish as abandoned. */
    pthread_mutex_lock(&s->mu);
    svc_job **pp = &s->q_head, *prev = NULL, *gone = NULL;
    while (*pp) {
        svc_job *j = *pp;
        if (!MATCH(j)) {
            prev = j;
            pp = &j->next;
            continue;
        }
        *pp = j->next;
        if (s->q_tail == j) s->q_tail = prev;
        s->q_len--;
        j->next = gone;
        gone = j;
    }
    pthread_mutex_unlock(&s->mu);
    while (gone) {
        svc_job *n = gone->next;
        svc_job_finished(s, gone, false);
        gone = n;
    }
    double t_end = ee_now_ms() + wait_ms;
    bool cancelled = false;
    for (;;) {
        int left = 0;
        /* Running jobs, and replies in flight (an acknowledged reply
         * commits its offset before the partitions go; a dead letter
         * waiting for its retry does not hold the rebalance up). */
        for (svc_job *j = s->all; j; j = j->all_next)
            if (MATCH(j) && !(j->state == JOB_REPLYING && j->retry_at > 0)) left++;
        if (left == 0) break;
        double now = ee_now_ms();
        if (now >= t_end) {
            if (cancelled && now >= t_end + 5000) break; /* stuck: give up waiting */
            if (!cancelled) {
                for (svc_job *j = s->all; j; j = j->all_next)
                    if (MATCH(j)) atomic_store(&j->cancel, true);
                cancelled = true;
                json_t *f = json_object();
                json_object_set_new(f, "jobs", json_integer(left));
                svc_log("warn", "cancelling_running_jobs", f);
            }
        }
        if (atomic_load(&s->fatal)) svc_producer_recreate(s);
        rd_kafka_poll(s->producer, 20);
        svc_collect_returned(s);
    }
#undef MATCH
}

/* Apply (assign) or give up (unassign) partitions for either rebalance
 * protocol and report a failure, as librdkafka's examples do: logged with
 * the partitions and counted, never dropped. A failed assign leaves those
 * partitions unfetched until the next rebalance; the log and the metric are
 * how an operator sees it. Returns whether it succeeded. */
static bool rebalance_apply(svc *s, rd_kafka_t *rk, bool coop, bool assign,
                            rd_kafka_topic_partition_list_t *parts, const char *group,
                            json_t *fields) {
    const char *what;
    char msg[512] = "";
    if (coop) {
        rd_kafka_error_t *e = assign ? rd_kafka_incremental_assign(rk, parts)
                                     : rd_kafka_incremental_unassign(rk, parts);
        what = assign ? "incremental_assign" : "incremental_unassign";
        if (e) {
            snprintf(msg, sizeof msg, "%s", rd_kafka_error_string(e));
            rd_kafka_error_destroy(e);
        }
    } else {
        rd_kafka_resp_err_t e = rd_kafka_assign(rk, assign ? parts : NULL);
        what = assign ? "assign" : "unassign";
        if (e) snprintf(msg, sizeof msg, "%s", rd_kafka_err2str(e));
    }
    if (!msg[0]) return true;
    json_t *f = json_deep_copy(fields);
    json_object_set_new(f, "call", json_string(what));
    json_object_set_new(f, "error", json_string(msg));
    svc_log("error", "rebalance_call_failed", f);
    ee_metrics_counter_inc(s->metrics, "ee_rebalance_errors_total",
                           EE_LABELS({"group", group}, {"call", what}));
    return false;
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque) {
    svc *s = opaque;
    svc_cons *c = cons_of(s, rk);
    bool coop = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    json_t *f = json_object();
    json_object_set_new(f, "group", json_string(c ? c->group : "?"));
    json_t *pl = json_array();
    for (int i = 0; i < parts->cnt; i++) {
        char b[300];
        snprintf(b, sizeof b, "%s[%d]", parts->elems[i].topic, parts->elems[i].partition);
        json_array_append_new(pl, json_string(b));
    }
    json_object_set_new(f, "partitions", pl);
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        rebalance_apply(s, rk, coop, true, parts, c ? c->group : "?", f);
        /* Our pause state wins, both ways: librdkafka keeps a partition's
         * application pause flag across an unassign/assign, so a partition
         * paused before a revoke would come back paused (and never be
         * fetched) if we only re-applied pauses. */
        if (c && c->paused) rd_kafka_pause_partitions(rk, parts);
        else rd_kafka_resume_partitions(rk, parts);
        ee_metrics_counter_inc(s->metrics, "ee_rebalances_total",
                               EE_LABELS({"group", c ? c->group : "?"}, {"kind", "assign"}));
        svc_log("info", "partitions_assigned", f);
    } else if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        /* Finish (or give back) the work of these partitions, store and
         * commit what finished, then let them go: the next owner starts at
         * the first unfinished record. */
        if (c) {
            svc_release_jobs(s, c->idx, parts, (int)s->cfg->grace_ms);
            rd_kafka_resp_err_t ce = rd_kafka_commit(rk, NULL, 0);
            if (ce && ce != RD_KAFKA_RESP_ERR__NO_OFFSET) { /* nothing stored is not an error */
                json_t *g = json_deep_copy(f);
                json_object_set_new(g, "error", json_string(rd_kafka_err2str(ce)));
                svc_log("warn", "commit_on_revoke_failed", g);
            }
            for (int i = 0; i < parts->cnt; i++)
                ee_offtrack_drop(s->track, c->idx, parts->elems[i].topic,
                                 parts->elems[i].partition);
        }
        rebalance_apply(s, rk, coop, false, parts, c ? c->group : "?", f);
        ee_metrics_counter_inc(s->metrics, "ee_rebalances_total",
                               EE_LABELS({"group", c ? c->group : "?"}, {"kind", "revoke"}));
        svc_log("info", "partitions_revoked", f);
    } else {
        json_object_set_new(f, "error", json_string(rd_kafka_err2str(err)));
        json_t *g = json_deep_copy(f);
        svc_log("error", "rebalance_error", g);
        if (!coop) rebalance_apply(s, rk, coop, false, parts, c ? c->group : "?", f);
        json_decref(f);
        f = NULL;
    }
    if (c) {
        rd_kafka_topic_partition_list_t *a = NULL;
        if (rd_kafka_assignment(rk, &a) == RD_KAFKA_RESP_ERR_NO_ERROR && a) {
            ee_metrics_gauge_set(s->metrics, "ee_partitions_assigned",
                                 EE_LABELS({"group", c->group}), a->cnt);
            rd_kafka_topic_partition_list_destroy(a);
        }
    }
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
static rd_kafka_conf_t *make_conf(svc *s, bool consumer, const char *group, ee_err *err) {
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
        rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
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

void svc_wake(svc *s) {
    if (s->wake_wr >= 0) {
        ssize_t n = write(s->wake_wr, "w", 1); /* full pipe: a wake-up is pending anyway */
        (void)n;
    }
}

/* librdkafka writes one byte to the wake pipe when q becomes non-empty. */
static void wake_on(svc *s, rd_kafka_queue_t *q) {
    if (!q) return;
    if (s->wake_wr >= 0) rd_kafka_queue_io_event_enable(q, s->wake_wr, "k", 1);
    rd_kafka_queue_destroy(q);
}

int svc_kafka_open(svc *s, ee_err *err) {
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
    rd_kafka_conf_t *pc = make_conf(s, false, NULL, err);
    if (!pc) return -1;
    s->producer = rd_kafka_new(RD_KAFKA_PRODUCER, pc, e, sizeof e);
    if (!s->producer) return ee_err_set(err, "kafka producer: %s", e);
    const char *tf = getenv("EE_TEST_FATAL_AFTER");
    if (tf && *tf) s->test_fatal_after = strtol(tf, NULL, 10);
    for (int k = 0; k < s->n_cons; k++) {
        svc_cons *sc = &s->cons[k];
        rd_kafka_conf_t *cc = make_conf(s, true, sc->group, err);
        if (!cc) return -1;
        sc->rk = rd_kafka_new(RD_KAFKA_CONSUMER, cc, e, sizeof e);
        if (!sc->rk) return ee_err_set(err, "kafka consumer (group %s): %s", sc->group, e);
        rd_kafka_poll_set_consumer(sc->rk);
        wake_on(s, rd_kafka_queue_get_consumer(sc->rk));
    }
    wake_on(s, rd_kafka_queue_get_main(s->producer));
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
    rd_kafka_conf_t *pc = make_conf(s, false, NULL, &err);
    rd_kafka_t *nw = pc ? rd_kafka_new(RD_KAFKA_PRODUCER, pc, e, sizeof e) : NULL;
    if (!nw) {
        json_t *f = json_object();
        json_object_set_new(f, "error", json_string(pc ? e : err.msg));
        svc_log("error", "producer_recreate_failed", f);
        return -1;
    }
    wake_on(s, rd_kafka_queue_get_main(nw));
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

static void link_job(svc *s, svc_job *j) {
    j->all_prev = NULL;
    j->all_next = s->all;
    if (s->all) s->all->all_prev = j;
    s->all = j;
}

void svc_unlink_job(svc *s, svc_job *j) {
    if (j->all_prev) j->all_prev->all_next = j->all_next;
    else if (s->all == j) s->all = j->all_next;
    if (j->all_next) j->all_next->all_prev = j->all_prev;
    j->all_prev = j->all_next = NULL;
}

/* Returns false if intake must stop (out of memory: a record we cannot
 * hold must not be skipped, or later offsets would commit past it). */
static bool on_message(svc *s, int k, rd_kafka_message_t *msg, bool accept) {
    if (msg->err) {
        if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) return true;
        json_t *f = json_object();
        json_object_set_new(f, "group", json_string(s->cons[k].group));
        if (msg->rkt) json_object_set_new(f, "topic", json_string(rd_kafka_topic_name(msg->rkt)));
        json_object_set_new(f, "error", json_string(rd_kafka_message_errstr(msg)));
        svc_log("warn", "consumer_error", f);
        return true;
    }
    if (!accept) return true; /* shutting down: not tracked, so redelivered */
    svc_job *j = svc_job_from_message(s, k, msg);
    if (!j) {
        svc_log("error", "out_of_memory", NULL);
        return false;
    }
    link_job(s, j);
    svc_handle_job(s, j);
    ee_metrics_gauge_set(s->metrics, "ee_jobs_inflight", EE_NO_LABELS, s->inflight);
    return true;
}

/* One round: every consumer (records, rebalances), delivery reports, jobs
 * handed back, backpressure. */
bool svc_poll_round(svc *s, int timeout_ms, bool accept) {
    bool ok = true;
    if (atomic_load(&s->fatal) && svc_producer_recreate(s) != 0) {
        atomic_store(&s->fatal_final, true);
        return false;
    }
    /* Sleep until any queue has something (or the timeout). Blocking in one
     * consumer's poll instead would leave a record that arrives for another
     * consumer (the other class, another model) waiting out that timeout:
     * up to 50 ms of queue time per job, measured (docs/BENCHMARKS.md). */
    if (!s->poll_pending && timeout_ms > 0) {
        struct pollfd p = {.fd = s->wake_rd, .events = POLLIN};
        (void)poll(&p, 1, timeout_ms);
    }
    char buf[64];
    while (read(s->wake_rd, buf, sizeof buf) > 0) {
    }
    s->poll_pending = false;
    for (int k = 0; k < s->n_cons; k++) {
        int n = 0;
        for (; n < 64; n++) {
            rd_kafka_message_t *msg = rd_kafka_consumer_poll(s->cons[k].rk, 0);
            if (!msg) break;
            if (!on_message(s, k, msg, accept)) ok = false;
            rd_kafka_message_destroy(msg);
            /* Full: what is left is taken once a job finishes (its delivery
             * report wakes this thread). */
            if (s->inflight >= (int)s->cfg->max_inflight) break;
        }
        if (n == 64) s->poll_pending = true;
    }
    rd_kafka_poll(s->producer, 0);
    svc_collect_returned(s);
    if (accept) {
        bool full = s->inflight >= (int)s->cfg->max_inflight;
        if (full != (s->n_cons && s->cons[0].paused)) svc_set_paused(s, full);
    }
    return ok;
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
