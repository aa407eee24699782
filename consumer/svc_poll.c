/* The poll thread's round: every consumer's records and rebalances, the
 * producer's delivery reports, jobs handed back, backpressure. The top of
 * the worker: it calls the job lifecycle (svc_jobs) and the Kafka clients
 * (svc_kafka), and nothing below calls it except through the hooks it
 * gives svc_kafka_open (delivery reports, rebalances).
 *
 * librdkafka 2.0.2 rules followed here (../shared/NOTES.md s6): inference
 * never runs on the poll thread; pause state is ours and re-applied to new
 * assignments; eager rebalancing by default (cooperative-sticky has known
 * bugs in 2.0.2) with incremental calls when a user configures a
 * cooperative assignor anyway. */
#include "svc_poll.h"

#include "svc_index.h"
#include "svc_jobs.h"
#include "svc_kafka.h"
#include "svc_log.h"

#include "ee_clock.h"

#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
    svc_link_job(s, j);
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
    svc_index_poll(s);
    svc_collect_returned(s);
    if (accept) {
        bool full = s->inflight >= (int)s->cfg->max_inflight;
        if (full != (s->n_cons && s->cons[0].paused)) svc_set_paused(s, full);
    }
    return ok;
}

const svc_kafka_hooks svc_poll_hooks = {
    .delivered = svc_on_delivery,
    .rebalance = rebalance_cb,
};
