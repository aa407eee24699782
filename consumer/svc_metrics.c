/* The worker's Prometheus metrics (docs/KAFKA.md lists them) and /healthz.
 * Consumer lag comes from librdkafka's statistics JSON (statistics.interval.ms),
 * which reports, per assigned partition, consumer_lag = high watermark -
 * committed offset: the kafka_consumergroup_lag users expect. */
#include "svc_metrics.h"

#include "svc_log.h"

#include "ee_kernels.h"
#include "ee_clock.h"
#include "ee_compute.h"

#include <stdio.h>
#include <string.h>

typedef struct mdef {
    const char *name, *help;
    ee_metric_type type;
} mdef;

static const mdef DEFS[] = {
    {"ee_jobs_total", "Jobs finished, by model, class and status (ok, error, dead_letter)",
     EE_METRIC_COUNTER},
    {"ee_job_errors_total", "Jobs answered with an error or dead-lettered, by model and error code",
     EE_METRIC_COUNTER},
    {"ee_jobs_inflight", "Jobs polled and not yet finished (queued, running or replying)",
     EE_METRIC_GAUGE},
    {"ee_jobs_queued", "Jobs waiting for the inference thread", EE_METRIC_GAUGE},
    {"ee_jobs_running", "Jobs in the inference batch", EE_METRIC_GAUGE},
    {"ee_generated_tokens_total", "Tokens generated, by model", EE_METRIC_COUNTER},
    {"ee_generated_tokens_per_second", "Tokens generated per second over the last interval",
     EE_METRIC_GAUGE},
    {"ee_dead_letters_total", "Records written to the dead-letter topic, by error code",
     EE_METRIC_COUNTER},
    {"ee_reply_failures_total", "Replies the broker did not accept (then dead-lettered)",
     EE_METRIC_COUNTER},
    {"ee_jobs_abandoned_total", "Jobs given back unanswered (rebalance or shutdown): redelivered",
     EE_METRIC_COUNTER},
    {"ee_rebalance_errors_total",
     "Failed assign/unassign calls in a rebalance, by group and call (partitions left unfetched)",
     EE_METRIC_COUNTER},
    {"ee_rebalances_total", "Consumer group rebalances seen, by group and kind (assign, revoke)",
     EE_METRIC_COUNTER},
    {"ee_partitions_assigned", "Partitions assigned, by group", EE_METRIC_GAUGE},
    {"ee_partitions_paused", "1 while intake is paused for backpressure", EE_METRIC_GAUGE},
    {"ee_producer_recreated_total", "Reply producers replaced after a fatal error",
     EE_METRIC_COUNTER},
    {"ee_intake_pauses_total", "Times intake was paused because max_inflight jobs were held",
     EE_METRIC_COUNTER},
    {"ee_worker_info", "Always 1; labels name the kernel set (isa) and OpenBLAS core in use",
     EE_METRIC_GAUGE},
    {"kafka_consumergroup_lag",
     "Records behind the committed offset, per partition (librdkafka consumer_lag)",
     EE_METRIC_GAUGE},
};

static const double PASS_BUCKETS[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512};

int svc_metrics_open(svc *s, ee_err *err) {
    s->metrics = ee_metrics_new(err);
    if (!s->metrics) return -1;
    for (size_t i = 0; i < sizeof DEFS / sizeof DEFS[0]; i++)
        if (ee_metrics_register(s->metrics, DEFS[i].name, DEFS[i].help, DEFS[i].type, err))
            return -1;
    if (ee_metrics_register_histogram(s->metrics, "ee_job_queue_seconds",
                                      "Record timestamp to start of inference",
                                      ee_metrics_latency_buckets, EE_METRICS_LATENCY_NBUCKETS, err) ||
        ee_metrics_register_histogram(s->metrics, "ee_job_inference_seconds",
                                      "Start of inference to final reply sent (prefill + decode)",
                                      ee_metrics_latency_buckets, EE_METRICS_LATENCY_NBUCKETS, err) ||
        ee_metrics_register_histogram(s->metrics, "ee_pass_jobs",
                                      "Jobs run together in one pass of an encoder or classifier "
                                      "(embed, search, classify)",
                                      PASS_BUCKETS, sizeof PASS_BUCKETS / sizeof PASS_BUCKETS[0], err))
        return -1;
    ee_metrics_gauge_set(s->metrics, "ee_jobs_inflight", EE_NO_LABELS, 0);
    ee_metrics_gauge_set(s->metrics, "ee_partitions_paused", EE_NO_LABELS, 0);
    ee_metrics_gauge_set(s->metrics, "ee_worker_info",
                         EE_LABELS({"isa", ee_kernels_isa()}, {"blas_core", ee_compute_blas_core()}), 1);
    if (s->cfg->metrics_port == 0) return 0;
    const char *bind = s->cfg->metrics_bind ? s->cfg->metrics_bind : EE_CONFIG_DEFAULT_METRICS_BIND;
    s->http = ee_metrics_server_start(s->metrics, bind, (uint16_t)s->cfg->metrics_port, svc_health,
                                      s, err);
    if (!s->http) return ee_err_wrap(err, "metrics endpoint %s:%u", bind, s->cfg->metrics_port);
    json_t *f = json_object();
    json_object_set_new(f, "bind", json_string(bind));
    json_object_set_new(f, "port", json_integer(ee_metrics_server_port(s->http)));
    svc_log("info", "metrics_listening", f);
    return 0;
}

void svc_metrics_close(svc *s) {
    ee_metrics_server_stop(s->http);
    s->http = NULL;
    ee_metrics_free(s->metrics);
    s->metrics = NULL;
}

void svc_metrics_job_done(svc *s, const svc_job *j) {
    const char *model = j->model >= 0 ? s->models[j->model].name : "";
    const char *status = j->dlq ? "dead_letter" : j->code == EE_PROTO_OK ? "ok" : "error";
    ee_metrics_counter_inc(s->metrics, "ee_jobs_total",
                           EE_LABELS({"model", model}, {"class", j->cls ? j->cls : ""},
                                     {"status", status}));
    if (j->code != EE_PROTO_OK)
        ee_metrics_counter_inc(s->metrics, "ee_job_errors_total",
                               EE_LABELS({"model", model}, {"code", ee_proto_code_name(j->code)}));
    if (j->dlq)
        ee_metrics_counter_inc(s->metrics, "ee_dead_letters_total",
                               EE_LABELS({"code", ee_proto_code_name(j->code)}));
}

/* librdkafka statistics for one consumer: per-partition lag. */
void svc_metrics_stats(svc *s, const char *js, size_t len) {
    json_error_t je;
    json_t *root = json_loadb(js, len, 0, &je);
    if (!root) return;
    const char *name = json_string_value(json_object_get(root, "name"));
    const char *type = json_string_value(json_object_get(root, "type"));
    svc_cons *c = NULL;
    for (int i = 0; i < s->n_cons && name; i++)
        if (strcmp(rd_kafka_name(s->cons[i].rk), name) == 0) c = &s->cons[i];
    if (!c || !type || strcmp(type, "consumer") != 0) {
        json_decref(root);
        return;
    }
    /* Health: is any real broker (not a bootstrap placeholder) up? */
    bool up = false;
    const char *bname;
    json_t *b;
    json_object_foreach(json_object_get(root, "brokers"), bname, b) {
        json_int_t nodeid = json_integer_value(json_object_get(b, "nodeid"));
        const char *state = json_string_value(json_object_get(b, "state"));
        if (nodeid >= 0 && state && strcmp(state, "UP") == 0) up = true;
    }
    atomic_store(&s->kafka_down, !up);
    const char *tname;
    json_t *t;
    json_object_foreach(json_object_get(root, "topics"), tname, t) {
        const char *pname;
        json_t *p;
        json_object_foreach(json_object_get(t, "partitions"), pname, p) {
            if (strcmp(pname, "-1") == 0) continue; /* internal UA partition */
            json_int_t lag = json_integer_value(json_object_get(p, "consumer_lag"));
            bool desired = json_is_true(json_object_get(p, "desired"));
            if (desired && lag >= 0)
                ee_metrics_gauge_set(s->metrics, "kafka_consumergroup_lag",
                                     EE_LABELS({"consumergroup", c->group}, {"topic", tname},
                                               {"partition", pname}),
                                     (double)lag);
            else
                ee_metrics_series_remove(s->metrics, "kafka_consumergroup_lag",
                                         EE_LABELS({"consumergroup", c->group}, {"topic", tname},
                                                   {"partition", pname}));
        }
    }
    json_decref(root);
}

bool svc_health(void *user, char *reason, size_t cap) {
    svc *s = user;
    if (atomic_load(&s->fatal_final)) {
        snprintf(reason, cap, "unrecoverable Kafka error");
        return false;
    }
    if (atomic_load(&s->kafka_down)) {
        snprintf(reason, cap, "no Kafka broker reachable");
        return false;
    }
    if (atomic_load(&s->stop_signal)) {
        snprintf(reason, cap, "shutting down");
        return false;
    }
    return true;
}
