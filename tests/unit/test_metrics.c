/* Unit tests for ee_metrics: the Prometheus registry and its HTTP endpoint.
 *
 * - Rendering: an exact golden string for a small registry (HELP escaping,
 *   label-value escaping, canonical label order, a labelled histogram with
 *   cumulative buckets, a family without series and without help), number
 *   formatting, the default latency buckets (bounds inclusive).
 * - Per-partition gauges: set/replace, remove, family clear.
 * - Refusals: duplicate or invalid names, bad labels, type mismatches.
 * - Concurrency: 4 threads updating counters, gauges and a histogram (by
 *   handle and by name, creating series as they go) while a 5th renders;
 *   totals are exact.
 * - HTTP on port 0 through a raw socket client: /metrics (body equals the
 *   render, content type), /healthz in both states, 404, 405, query
 *   strings; a second server on a taken port fails with a message; stop
 *   is clean under ASan. */
#include <arpa/inet.h>
#include <check.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "ee_metrics.h"

static ee_metrics *new_registry(void) {
    ee_err err = {{0}};
    ee_metrics *m = ee_metrics_new(&err);
    ck_assert_msg(m != NULL, "%s", err.msg);
    return m;
}

#define REG_OK(call)                                        \
    do {                                                    \
        ee_err e_ = {{0}};                                  \
        ck_assert_msg((call) == 0, "%s: %s", #call, e_.msg); \
    } while (0)

/* ---- rendering ------------------------------------------------------------ */

START_TEST(render_golden) {
    ee_metrics *m = new_registry();
    static const double b[] = {0.1, 1, 2.5};
    REG_OK(ee_metrics_register(m, "ee_jobs_total", "Jobs by final status.", EE_METRIC_COUNTER, &e_));
    REG_OK(ee_metrics_register(m, "ee_info", "Back\\slash and\nnewline \"quoted\".", EE_METRIC_GAUGE, &e_));
    REG_OK(ee_metrics_register_histogram(m, "ee_queue_seconds", "Queue time.", b, 3, &e_));
    REG_OK(ee_metrics_register(m, "ee_unused_total", NULL, EE_METRIC_COUNTER, &e_));

    ck_assert_int_eq(ee_metrics_counter_inc(m, "ee_jobs_total",
                                            EE_LABELS({"status", "error"}, {"code", "bad_request"})), 0);
    /* same series, labels in the other order */
    ck_assert_int_eq(ee_metrics_counter_inc(m, "ee_jobs_total",
                                            EE_LABELS({"code", "bad_request"}, {"status", "error"})), 0);
    ck_assert_int_eq(ee_metrics_counter_add(m, "ee_jobs_total", EE_LABELS({"status", "ok"}), 3), 0);
    ck_assert_int_eq(ee_metrics_gauge_set(m, "ee_info", EE_LABELS({"path", "a\\b\"c\nd"}), 1.5), 0);
    const double obs[] = {0.0625, 0.5, 0.75, 3};
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(ee_metrics_observe(m, "ee_queue_seconds", EE_LABELS({"model", "m1"}), obs[i]), 0);

    const char *want =
        "# HELP ee_info Back\\\\slash and\\nnewline \"quoted\".\n"
        "# TYPE ee_info gauge\n"
        "ee_info{path=\"a\\\\b\\\"c\\nd\"} 1.5\n"
        "# HELP ee_jobs_total Jobs by final status.\n"
        "# TYPE ee_jobs_total counter\n"
        "ee_jobs_total{code=\"bad_request\",status=\"error\"} 2\n"
        "ee_jobs_total{status=\"ok\"} 3\n"
        "# HELP ee_queue_seconds Queue time.\n"
        "# TYPE ee_queue_seconds histogram\n"
        "ee_queue_seconds_bucket{model=\"m1\",le=\"0.1\"} 1\n"
        "ee_queue_seconds_bucket{model=\"m1\",le=\"1\"} 3\n"
        "ee_queue_seconds_bucket{model=\"m1\",le=\"2.5\"} 3\n"
        "ee_queue_seconds_bucket{model=\"m1\",le=\"+Inf\"} 4\n"
        "ee_queue_seconds_sum{model=\"m1\"} 4.3125\n"
        "ee_queue_seconds_count{model=\"m1\"} 4\n"
        "# TYPE ee_unused_total counter\n";
    char *got = ee_metrics_render(m);
    ck_assert_ptr_nonnull(got);
    ck_assert_msg(strcmp(got, want) == 0, "got:\n%s\nwant:\n%s", got, want);
    free(got);
    ee_metrics_free(m);
}
END_TEST

START_TEST(render_unlabelled_and_empty) {
    ee_metrics *m = new_registry();
    char *got = ee_metrics_render(m);
    ck_assert_str_eq(got, "");
    free(got);
    static const double b[] = {1};
    REG_OK(ee_metrics_register(m, "up", "Up.", EE_METRIC_GAUGE, &e_));
    REG_OK(ee_metrics_register_histogram(m, "lat", "L.", b, 1, &e_));
    ee_err err = {{0}};
    ee_metric_series *up = ee_metrics_series(m, "up", EE_NO_LABELS, &err);
    ee_metric_series *lat = ee_metrics_series(m, "lat", EE_NO_LABELS, &err);
    ck_assert_ptr_nonnull(up);
    ck_assert_ptr_nonnull(lat);
    ck_assert_int_eq(ee_metrics_series_set(up, 1), 0);
    ck_assert_int_eq(ee_metrics_series_observe(lat, 2), 0);
    got = ee_metrics_render(m);
    ck_assert_str_eq(got,
                     "# HELP lat L.\n# TYPE lat histogram\n"
                     "lat_bucket{le=\"1\"} 0\nlat_bucket{le=\"+Inf\"} 1\nlat_sum 2\nlat_count 1\n"
                     "# HELP up Up.\n# TYPE up gauge\nup 1\n");
    free(got);
    ee_metrics_free(m);
}
END_TEST

static void expect_line(ee_metrics *m, const char *line) {
    char *got = ee_metrics_render(m);
    ck_assert_ptr_nonnull(got);
    ck_assert_msg(strstr(got, line) != NULL, "missing line '%s' in:\n%s", line, got);
    free(got);
}

START_TEST(render_numbers) {
    ee_metrics *m = new_registry();
    REG_OK(ee_metrics_register(m, "g", "G.", EE_METRIC_GAUGE, &e_));
    static const struct {
        double v;
        const char *text;
    } cases[] = {
        {0.1, "0.1"},         {-2, "-2"},        {1e21, "1e+21"},
        {1.0 / 3, "0.3333333333333333"}, {123456789012, "123456789012"},
        {2.5e-7, "2.5e-07"},  {0, "0"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ee_metrics_gauge_set(m, "g", EE_NO_LABELS, cases[i].v);
        char line[64];
        snprintf(line, sizeof line, "\ng %s\n", cases[i].text);
        expect_line(m, line);
    }
    ee_metrics_gauge_set(m, "g", EE_NO_LABELS, NAN);
    expect_line(m, "\ng NaN\n");
    ee_metrics_gauge_set(m, "g", EE_NO_LABELS, INFINITY);
    expect_line(m, "\ng +Inf\n");
    ee_metrics_gauge_set(m, "g", EE_NO_LABELS, -INFINITY);
    expect_line(m, "\ng -Inf\n");
    ee_metrics_free(m);
}
END_TEST

START_TEST(latency_buckets_inclusive) {
    ee_metrics *m = new_registry();
    REG_OK(ee_metrics_register_histogram(m, "ee_inference_seconds", "Inference latency.",
                                         ee_metrics_latency_buckets, EE_METRICS_LATENCY_NBUCKETS, &e_));
    ee_metrics_observe(m, "ee_inference_seconds", EE_NO_LABELS, 0.005); /* on the first bound */
    ee_metrics_observe(m, "ee_inference_seconds", EE_NO_LABELS, 60);    /* on the last */
    ee_metrics_observe(m, "ee_inference_seconds", EE_NO_LABELS, 61);    /* past it */
    char *got = ee_metrics_render(m);
    const char *want =
        "# HELP ee_inference_seconds Inference latency.\n"
        "# TYPE ee_inference_seconds histogram\n"
        "ee_inference_seconds_bucket{le=\"0.005\"} 1\n"
        "ee_inference_seconds_bucket{le=\"0.01\"} 1\n"
        "ee_inference_seconds_bucket{le=\"0.025\"} 1\n"
        "ee_inference_seconds_bucket{le=\"0.05\"} 1\n"
        "ee_inference_seconds_bucket{le=\"0.1\"} 1\n"
        "ee_inference_seconds_bucket{le=\"0.25\"} 1\n"
        "ee_inference_seconds_bucket{le=\"0.5\"} 1\n"
        "ee_inference_seconds_bucket{le=\"1\"} 1\n"
        "ee_inference_seconds_bucket{le=\"2.5\"} 1\n"
        "ee_inference_seconds_bucket{le=\"5\"} 1\n"
        "ee_inference_seconds_bucket{le=\"10\"} 1\n"
        "ee_inference_seconds_bucket{le=\"30\"} 1\n"
        "ee_inference_seconds_bucket{le=\"60\"} 2\n"
        "ee_inference_seconds_bucket{le=\"+Inf\"} 3\n"
        "ee_inference_seconds_sum 121.005\n"
        "ee_inference_seconds_count 3\n";
    ck_assert_msg(strcmp(got, want) == 0, "got:\n%s", got);
    free(got);
    ee_metrics_free(m);
}
END_TEST

START_TEST(partition_gauges_replace_and_remove) {
    ee_metrics *m = new_registry();
    REG_OK(ee_metrics_register(m, "kafka_consumergroup_lag", "Consumer lag in messages.",
                               EE_METRIC_GAUGE, &e_));
    for (int p = 0; p < 3; p++) {
        char part[16];
        snprintf(part, sizeof part, "%d", p);
        ck_assert_int_eq(ee_metrics_gauge_set(m, "kafka_consumergroup_lag",
                                              EE_LABELS({"consumergroup", "ee"}, {"topic", "ee.jobs"},
                                                        {"partition", part}),
                                              10 * p), 0);
    }
    /* replace partition 1 */
    ee_metrics_gauge_set(m, "kafka_consumergroup_lag",
                         EE_LABELS({"partition", "1"}, {"topic", "ee.jobs"}, {"consumergroup", "ee"}), 7);
    char *got = ee_metrics_render(m);
    const char *want =
        "# HELP kafka_consumergroup_lag Consumer lag in messages.\n"
        "# TYPE kafka_consumergroup_lag gauge\n"
        "kafka_consumergroup_lag{consumergroup=\"ee\",partition=\"0\",topic=\"ee.jobs\"} 0\n"
        "kafka_consumergroup_lag{consumergroup=\"ee\",partition=\"1\",topic=\"ee.jobs\"} 7\n"
        "kafka_consumergroup_lag{consumergroup=\"ee\",partition=\"2\",topic=\"ee.jobs\"} 20\n";
    ck_assert_msg(strcmp(got, want) == 0, "got:\n%s", got);
    free(got);

    /* partition 0 revoked */
    ck_assert_int_eq(ee_metrics_series_remove(m, "kafka_consumergroup_lag",
                                              EE_LABELS({"consumergroup", "ee"}, {"topic", "ee.jobs"},
                                                        {"partition", "0"})), 0);
    ck_assert_int_eq(ee_metrics_series_remove(m, "kafka_consumergroup_lag",
                                              EE_LABELS({"consumergroup", "ee"}, {"topic", "ee.jobs"},
                                                        {"partition", "9"})), -1);
    got = ee_metrics_render(m);
    ck_assert_ptr_null(strstr(got, "partition=\"0\""));
    ck_assert_ptr_nonnull(strstr(got, "partition=\"1\",topic=\"ee.jobs\"} 7\n"));
    free(got);

    /* wholesale replacement: clear, then set the current assignment */
    ck_assert_int_eq(ee_metrics_family_clear(m, "kafka_consumergroup_lag"), 0);
    ck_assert_int_eq(ee_metrics_family_clear(m, "nope"), -1);
    ee_metrics_gauge_set(m, "kafka_consumergroup_lag",
                         EE_LABELS({"consumergroup", "ee"}, {"topic", "ee.jobs"}, {"partition", "2"}), 5);
    got = ee_metrics_render(m);
    ck_assert_str_eq(got,
                     "# HELP kafka_consumergroup_lag Consumer lag in messages.\n"
                     "# TYPE kafka_consumergroup_lag gauge\n"
                     "kafka_consumergroup_lag{consumergroup=\"ee\",partition=\"2\",topic=\"ee.jobs\"} 5\n");
    free(got);
    ee_metrics_free(m);
}
END_TEST

/* ---- refusals ------------------------------------------------------------- */

#define REFUSED(call, needle)                                                        \
    do {                                                                             \
        ee_err e_ = {{0}};                                                           \
        ck_assert_int_eq((call), -1);                                                \
        ck_assert_msg(strstr(e_.msg, needle) != NULL, "%s: message '%s' lacks '%s'", \
                      #call, e_.msg, needle);                                        \
    } while (0)

START_TEST(refusals) {
    ee_metrics *m = new_registry();
    static const double good[] = {1, 2}, flat[] = {1, 1}, inf[] = {1, INFINITY};
    REG_OK(ee_metrics_register(m, "c_total", "C.", EE_METRIC_COUNTER, &e_));
    REG_OK(ee_metrics_register(m, "g", "G.", EE_METRIC_GAUGE, &e_));
    REG_OK(ee_metrics_register_histogram(m, "h", "H.", good, 2, &e_));

    REFUSED(ee_metrics_register(m, "c_total", "again", EE_METRIC_GAUGE, &e_), "'c_total' already registered");
    REFUSED(ee_metrics_register(m, "1abc", "x", EE_METRIC_GAUGE, &e_), "invalid metric name '1abc'");
    REFUSED(ee_metrics_register(m, "a-b", "x", EE_METRIC_GAUGE, &e_), "invalid metric name 'a-b'");
    REFUSED(ee_metrics_register(m, "", "x", EE_METRIC_GAUGE, &e_), "invalid metric name");
    REFUSED(ee_metrics_register(m, "h_count", "x", EE_METRIC_COUNTER, &e_), "clashes with histogram");
    REFUSED(ee_metrics_register(m, "x", "x", EE_METRIC_HISTOGRAM, &e_), "ee_metrics_register_histogram");
    REFUSED(ee_metrics_register_histogram(m, "h2", "x", flat, 2, &e_), "strictly increasing");
    REFUSED(ee_metrics_register_histogram(m, "h3", "x", inf, 2, &e_), "not finite");
    REFUSED(ee_metrics_register_histogram(m, "h4", "x", good, 0, &e_), "bucket bounds");
    REFUSED(ee_metrics_register_histogram(m, "h5_sum", "x", good, 2, &e_), "must not end in");
    REG_OK(ee_metrics_register(m, "q_sum", "Q.", EE_METRIC_GAUGE, &e_));
    REFUSED(ee_metrics_register_histogram(m, "q", "x", good, 2, &e_), "histogram 'q' clashes with metric 'q_sum'");

    ee_err err = {{0}};
    ck_assert_ptr_null(ee_metrics_series(m, "nope", EE_NO_LABELS, &err));
    ck_assert_msg(strstr(err.msg, "'nope' is not registered"), "%s", err.msg);
    ck_assert_ptr_null(ee_metrics_series(m, "g", EE_LABELS({"__x", "1"}), &err));
    ck_assert_msg(strstr(err.msg, "invalid label name '__x'"), "%s", err.msg);
    ck_assert_ptr_null(ee_metrics_series(m, "g", EE_LABELS({"1x", "1"}), &err));
    ck_assert_msg(strstr(err.msg, "invalid label name '1x'"), "%s", err.msg);
    ck_assert_ptr_null(ee_metrics_series(m, "g", EE_LABELS({"a", "1"}, {"b", "1"}, {"c", "1"}, {"d", "1"}), &err));
    ck_assert_msg(strstr(err.msg, "4 labels, at most 3"), "%s", err.msg);
    ck_assert_ptr_null(ee_metrics_series(m, "g", EE_LABELS({"a", "1"}, {"a", "2"}), &err));
    ck_assert_msg(strstr(err.msg, "duplicate label 'a'"), "%s", err.msg);
    ck_assert_ptr_null(ee_metrics_series(m, "g", EE_LABELS({"a", NULL}), &err));
    ck_assert_msg(strstr(err.msg, "NULL value"), "%s", err.msg);
    ck_assert_ptr_null(ee_metrics_series(m, "h", EE_LABELS({"le", "1"}), &err));
    ck_assert_msg(strstr(err.msg, "'le' is reserved"), "%s", err.msg);

    /* type mismatches and bad values change nothing */
    ck_assert_int_eq(ee_metrics_counter_add(m, "c_total", EE_NO_LABELS, -1), -1);
    ck_assert_int_eq(ee_metrics_counter_add(m, "c_total", EE_NO_LABELS, NAN), -1);
    ck_assert_int_eq(ee_metrics_gauge_set(m, "c_total", EE_NO_LABELS, 5), -1);
    ck_assert_int_eq(ee_metrics_gauge_add(m, "c_total", EE_NO_LABELS, 5), -1);
    ck_assert_int_eq(ee_metrics_counter_inc(m, "g", EE_NO_LABELS), -1);
    ck_assert_int_eq(ee_metrics_observe(m, "g", EE_NO_LABELS, 1), -1);
    ck_assert_int_eq(ee_metrics_gauge_set(m, "h", EE_NO_LABELS, 1), -1);
    ck_assert_int_eq(ee_metrics_counter_inc(m, "nope", EE_NO_LABELS), -1);
    ck_assert_int_eq(ee_metrics_series_add(NULL, 1), -1);
    ee_metric_series *c = ee_metrics_series(m, "c_total", EE_NO_LABELS, &err);
    ck_assert_double_eq(ee_metrics_series_value(c), 0);
    ck_assert_int_eq(ee_metrics_gauge_add(m, "g", EE_NO_LABELS, -2.5), 0); /* gauges go down */
    ck_assert_double_eq(ee_metrics_series_value(ee_metrics_series(m, "g", EE_NO_LABELS, &err)), -2.5);
    ee_metrics_free(m);
    ee_metrics_free(NULL);
}
END_TEST

/* ---- concurrency ---------------------------------------------------------- */

enum { NTHREADS = 4, ITERS = 50000, BYNAME = 5000 };

typedef struct {
    ee_metrics *m;
    int id;
    atomic_int *done;
} worker_arg;

static void *worker(void *p) {
    worker_arg *a = p;
    ee_metric_series *c = ee_metrics_series(a->m, "ops_total", EE_NO_LABELS, NULL);
    ee_metric_series *g = ee_metrics_series(a->m, "inflight", EE_NO_LABELS, NULL);
    ee_metric_series *h = ee_metrics_series(a->m, "lat_seconds", EE_LABELS({"model", "m"}), NULL);
    if (!c || !g || !h) return (void *)1;
    for (int i = 0; i < ITERS; i++) {
        ee_metrics_series_add(c, 1);
        ee_metrics_series_add(g, 2);
        ee_metrics_series_add(g, -1);
        ee_metrics_series_observe(h, (i % 4) * 0.5); /* 0, 0.5, 1, 1.5: exact sums */
    }
    char w[8];
    snprintf(w, sizeof w, "%d", a->id);
    for (int i = 0; i < BYNAME; i++) {
        ee_metrics_counter_inc(a->m, "jobs_total", EE_LABELS({"status", "ok"}));
        ee_metrics_counter_inc(a->m, "jobs_total", EE_LABELS({"worker", w}));
    }
    atomic_fetch_add(a->done, 1);
    return NULL;
}

static void *renderer(void *p) {
    worker_arg *a = p;
    while (atomic_load(a->done) < NTHREADS) {
        char *t = ee_metrics_render(a->m);
        if (!t) return (void *)1;
        free(t);
    }
    return NULL;
}

START_TEST(concurrent_increments) {
    ee_metrics *m = new_registry();
    static const double b[] = {0.5, 1};
    REG_OK(ee_metrics_register(m, "ops_total", "Ops.", EE_METRIC_COUNTER, &e_));
    REG_OK(ee_metrics_register(m, "jobs_total", "Jobs.", EE_METRIC_COUNTER, &e_));
    REG_OK(ee_metrics_register(m, "inflight", "In flight.", EE_METRIC_GAUGE, &e_));
    REG_OK(ee_metrics_register_histogram(m, "lat_seconds", "Latency.", b, 2, &e_));
    atomic_int done = 0;
    pthread_t th[NTHREADS + 1];
    worker_arg args[NTHREADS + 1];
    for (int i = 0; i <= NTHREADS; i++) {
        args[i] = (worker_arg){m, i, &done};
        ck_assert_int_eq(pthread_create(&th[i], NULL, i < NTHREADS ? worker : renderer, &args[i]), 0);
    }
    for (int i = 0; i <= NTHREADS; i++) {
        void *ret = (void *)1;
        pthread_join(th[i], &ret);
        ck_assert_ptr_null(ret);
    }
    ee_err err = {{0}};
    ck_assert_double_eq(ee_metrics_series_value(ee_metrics_series(m, "ops_total", EE_NO_LABELS, &err)),
                        NTHREADS * ITERS);
    ck_assert_double_eq(ee_metrics_series_value(ee_metrics_series(m, "inflight", EE_NO_LABELS, &err)),
                        NTHREADS * ITERS);
    ee_metric_series *h = ee_metrics_series(m, "lat_seconds", EE_LABELS({"model", "m"}), &err);
    ck_assert_uint_eq(ee_metrics_series_count(h), NTHREADS * ITERS);
    ck_assert_double_eq(ee_metrics_series_value(h), NTHREADS * ITERS / 4 * (0 + 0.5 + 1 + 1.5));
    ck_assert_double_eq(ee_metrics_series_value(ee_metrics_series(m, "jobs_total", EE_LABELS({"status", "ok"}), &err)),
                        NTHREADS * BYNAME);
    char line[128];
    snprintf(line, sizeof line, "lat_seconds_bucket{model=\"m\",le=\"0.5\"} %d\n", NTHREADS * ITERS / 2);
    expect_line(m, line);
    snprintf(line, sizeof line, "lat_seconds_bucket{model=\"m\",le=\"1\"} %d\n", NTHREADS * ITERS * 3 / 4);
    expect_line(m, line);
    for (int i = 0; i < NTHREADS; i++) {
        snprintf(line, sizeof line, "jobs_total{worker=\"%d\"} %d\n", i, BYNAME);
        expect_line(m, line);
    }
    ee_metrics_free(m);
}
END_TEST

/* ---- HTTP ----------------------------------------------------------------- */

typedef struct {
    int status;
    char *head; /* status line + headers */
    char *body;
} http_resp;

static void http_resp_free(http_resp *r) {
    free(r->head);
    free(r->body);
}

/* One request over a fresh connection (HTTP/1.1, Connection: close),
 * reading until the server closes. */
static http_resp http(uint16_t port, const char *method, const char *path, const char *body) {
    http_resp r = {0};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    char req[1024];
    int n = snprintf(req, sizeof req,
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                     "Content-Length: %zu\r\n\r\n%s",
                     method, path, body ? strlen(body) : 0, body ? body : "");
    ck_assert_int_eq(send(fd, req, (size_t)n, MSG_NOSIGNAL), n);
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (len + 1024 > cap) buf = realloc(buf, cap *= 2);
        ssize_t k = recv(fd, buf + len, cap - len - 1, 0);
        if (k <= 0) break;
        len += (size_t)k;
    }
    close(fd);
    buf[len] = 0;
    char *sep = strstr(buf, "\r\n\r\n");
    ck_assert_msg(sep != NULL, "no header end in response: '%s'", buf);
    *sep = 0;
    r.head = strdup(buf);
    r.body = strdup(sep + 4);
    free(buf);
    ck_assert_int_eq(sscanf(r.head, "HTTP/1.%*d %d", &r.status), 1);
    return r;
}

static bool has_header(const http_resp *r, const char *line) {
    /* case-insensitive name match is not needed: MHD writes them as given */
    return strstr(r->head, line) != NULL;
}

typedef struct {
    atomic_bool healthy;
    atomic_int calls;
} health_state;

static bool health_cb(void *user, char *reason, size_t cap) {
    health_state *h = user;
    atomic_fetch_add(&h->calls, 1);
    if (atomic_load(&h->healthy)) return true;
    snprintf(reason, cap, "model not loaded");
    return false;
}

START_TEST(http_endpoints) {
    ee_metrics *m = new_registry();
    REG_OK(ee_metrics_register(m, "ee_jobs_total", "Jobs.", EE_METRIC_COUNTER, &e_));
    ee_metrics_counter_add(m, "ee_jobs_total", EE_LABELS({"status", "ok"}), 42);
    health_state hs;
    atomic_init(&hs.healthy, true);
    atomic_init(&hs.calls, 0);
    ee_err err = {{0}};
    ee_metrics_server *srv = ee_metrics_server_start(m, NULL, 0, health_cb, &hs, &err);
    ck_assert_msg(srv != NULL, "%s", err.msg);
    uint16_t port = ee_metrics_server_port(srv);
    ck_assert_uint_ne(port, 0);

    http_resp r = http(port, "GET", "/metrics", NULL);
    ck_assert_int_eq(r.status, 200);
    ck_assert_msg(has_header(&r, "Content-Type: text/plain; version=0.0.4; charset=utf-8"), "%s", r.head);
    char *want = ee_metrics_render(m);
    ck_assert_str_eq(r.body, want);
    ck_assert_ptr_nonnull(strstr(r.body, "ee_jobs_total{status=\"ok\"} 42\n"));
    free(want);
    http_resp_free(&r);

    r = http(port, "GET", "/metrics?name[]=x", NULL);
    ck_assert_int_eq(r.status, 200);
    http_resp_free(&r);

    r = http(port, "GET", "/healthz", NULL);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "ok\n");
    http_resp_free(&r);

    atomic_store(&hs.healthy, false);
    r = http(port, "GET", "/healthz", NULL);
    ck_assert_int_eq(r.status, 503);
    ck_assert_str_eq(r.body, "model not loaded\n");
    http_resp_free(&r);
    ck_assert_int_eq(atomic_load(&hs.calls), 2);

    atomic_store(&hs.healthy, true);
    r = http(port, "GET", "/healthz", NULL);
    ck_assert_int_eq(r.status, 200);
    http_resp_free(&r);

    r = http(port, "GET", "/", NULL);
    ck_assert_int_eq(r.status, 404);
    http_resp_free(&r);
    r = http(port, "GET", "/metrics/extra", NULL);
    ck_assert_int_eq(r.status, 404);
    http_resp_free(&r);

    r = http(port, "POST", "/metrics", "a=b&c=d");
    ck_assert_int_eq(r.status, 405);
    ck_assert_msg(has_header(&r, "Allow: GET"), "%s", r.head);
    http_resp_free(&r);
    r = http(port, "DELETE", "/healthz", NULL);
    ck_assert_int_eq(r.status, 405);
    http_resp_free(&r);

    /* the server still answers after the refusals */
    r = http(port, "GET", "/healthz", NULL);
    ck_assert_int_eq(r.status, 200);
    http_resp_free(&r);

    /* a second server on the same port fails and says where */
    ee_metrics_server *dup = ee_metrics_server_start(m, "127.0.0.1", port, NULL, NULL, &err);
    ck_assert_ptr_null(dup);
    char where[64];
    snprintf(where, sizeof where, "127.0.0.1:%u", (unsigned)port);
    ck_assert_msg(strstr(err.msg, where), "%s", err.msg);

    ee_metrics_server_stop(srv);
    ee_metrics_server_stop(NULL);
    ee_metrics_free(m);
}
END_TEST

START_TEST(http_no_health_and_bad_address) {
    ee_metrics *m = new_registry();
    ee_err err = {{0}};
    ck_assert_ptr_null(ee_metrics_server_start(m, "localhost", 0, NULL, NULL, &err));
    ck_assert_msg(strstr(err.msg, "'localhost' is not an IPv4 or IPv6 literal"), "%s", err.msg);
    ck_assert_ptr_null(ee_metrics_server_start(NULL, NULL, 0, NULL, NULL, &err));

    ee_metrics_server *srv = ee_metrics_server_start(m, "127.0.0.1", 0, NULL, NULL, &err);
    ck_assert_msg(srv != NULL, "%s", err.msg);
    http_resp r = http(ee_metrics_server_port(srv), "GET", "/healthz", NULL);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "ok\n");
    http_resp_free(&r);
    r = http(ee_metrics_server_port(srv), "GET", "/metrics", NULL);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "");
    http_resp_free(&r);
    ee_metrics_server_stop(srv);
    ee_metrics_free(m);
}
END_TEST

Suite *suite_metrics(void) {
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("registry");
    tcase_add_test(tc, render_golden);
    tcase_add_test(tc, render_unlabelled_and_empty);
    tcase_add_test(tc, render_numbers);
    tcase_add_test(tc, latency_buckets_inclusive);
    tcase_add_test(tc, partition_gauges_replace_and_remove);
    tcase_add_test(tc, refusals);
    suite_add_tcase(s, tc);
    TCase *tc_c = tcase_create("concurrency");
    tcase_set_timeout(tc_c, 60);
    tcase_add_test(tc_c, concurrent_increments);
    suite_add_tcase(s, tc_c);
    TCase *tc_h = tcase_create("http");
    tcase_set_timeout(tc_h, 30);
    tcase_add_test(tc_h, http_endpoints);
    tcase_add_test(tc_h, http_no_health_and_bad_address);
    suite_add_tcase(s, tc_h);
    return s;
}
