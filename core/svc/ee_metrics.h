/* ee_metrics: a small thread-safe Prometheus registry and its HTTP endpoint.
 *
 * Registry
 *   Every metric family is registered once (name, help, type; histograms
 *   also give their bucket upper bounds). A family holds series, one per
 *   label set of at most EE_METRICS_MAX_LABELS pairs. Label sets are
 *   canonical: pairs are sorted by label name, so {a,b} and {b,a} are the
 *   same series. A series is created on first use and lives until
 *   ee_metrics_free(), so the handle returned by ee_metrics_series() stays
 *   valid and the hot path (ee_metrics_series_add/set) is lock-free (C11
 *   atomics on the value). Histogram observations take a per-series mutex
 *   so a scrape never sees _count disagree with the +Inf bucket.
 *   The by-name calls (ee_metrics_counter_add, ee_metrics_gauge_set, ...)
 *   look the series up under the registry mutex; they are fine for anything
 *   that is not per-token.
 *
 * Rendering
 *   ee_metrics_render() returns the Prometheus text exposition format 0.0.4:
 *   families sorted by name, series sorted by their label text, HELP text
 *   escaped (backslash, newline), label values escaped (backslash, quote,
 *   newline), histograms as cumulative _bucket{le="..."} lines ending with
 *   le="+Inf", then _sum and _count. Numbers: integers below 1e15 print
 *   without exponent, others in the shortest %g form that reads back
 *   exactly; NaN, +Inf and -Inf as Prometheus spells them. Formatting
 *   assumes the C locale's '.' decimal point (the default for a program
 *   that never calls setlocale).
 *
 * HTTP
 *   ee_metrics_server_start() runs libmicrohttpd with its own polling
 *   thread: GET /metrics (200, text/plain; version=0.0.4), GET /healthz
 *   (200 "ok\n", or 503 "<reason>\n" when the health callback says no),
 *   404 for any other path, 405 (with Allow: GET) for any other method.
 *   The health callback runs on the server thread.
 *
 * Library code never prints: failures return -1 / NULL and fill ee_err. */
#ifndef EE_METRICS_H
#define EE_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ee_error.h"

#define EE_METRICS_MAX_LABELS  3
#define EE_METRICS_MAX_BUCKETS 64

typedef enum ee_metric_type {
    EE_METRIC_COUNTER,
    EE_METRIC_GAUGE,
    EE_METRIC_HISTOGRAM,
} ee_metric_type;

/* One label pair. Names match [a-zA-Z_][a-zA-Z0-9_]* and do not start with
 * "__"; values are any UTF-8 text (escaped when rendered). */
typedef struct ee_label {
    const char *name;
    const char *value;
} ee_label;

/* EE_LABELS({"status","error"},{"code","bad_request"}) expands to the
 * `labels, nlabels` argument pair of the calls below. */
#define EE_LABELS(...)                                   \
    ((const ee_label[]){__VA_ARGS__}),                   \
    (sizeof((const ee_label[]){__VA_ARGS__}) / sizeof(ee_label))
#define EE_NO_LABELS ((const ee_label *)NULL), ((size_t)0)

/* Default buckets for latencies in seconds (queue time, inference):
 * 0.005 0.01 0.025 0.05 0.1 0.25 0.5 1 2.5 5 10 30 60. */
#define EE_METRICS_LATENCY_NBUCKETS 13
extern const double ee_metrics_latency_buckets[EE_METRICS_LATENCY_NBUCKETS];

typedef struct ee_metrics ee_metrics;
typedef struct ee_metric_series ee_metric_series;

ee_metrics *ee_metrics_new(ee_err *err);
void ee_metrics_free(ee_metrics *m); /* NULL ok; stop servers first */

/* Register a counter or gauge. Names match [a-zA-Z_:][a-zA-Z0-9_:]*; a name
 * may be registered only once (a second call fails, naming it). help may
 * be NULL or "" (then no HELP line is rendered). */
int ee_metrics_register(ee_metrics *m, const char *name, const char *help,
                        ee_metric_type type, ee_err *err);

/* Register a histogram with `n` (1..EE_METRICS_MAX_BUCKETS) finite,
 * strictly increasing upper bounds; +Inf is implicit. The name must not
 * end in _bucket, _sum or _count, and its series may not use label "le". */
int ee_metrics_register_histogram(ee_metrics *m, const char *name, const char *help,
                                  const double *bounds, size_t n, ee_err *err);

/* Get or create the series of `name` with these labels. The handle is
 * valid until ee_metrics_free(). NULL (with err) if the family is unknown
 * or a label is invalid, duplicated or too many. */
ee_metric_series *ee_metrics_series(ee_metrics *m, const char *name,
                                    const ee_label *labels, size_t nlabels, ee_err *err);

/* Lock-free updates through a handle. Each returns -1 (and changes nothing)
 * if the operation does not fit the family's type: add on counters and
 * gauges (counters refuse negative or NaN deltas), set on gauges, observe
 * on histograms. */
int ee_metrics_series_add(ee_metric_series *s, double delta);
int ee_metrics_series_set(ee_metric_series *s, double value);
int ee_metrics_series_observe(ee_metric_series *s, double value);
double ee_metrics_series_value(const ee_metric_series *s); /* counter/gauge value, histogram sum */
uint64_t ee_metrics_series_count(ee_metric_series *s);     /* histogram count, else 0 */

/* By-name conveniences: lookup (creating the series) plus the update. */
int ee_metrics_counter_add(ee_metrics *m, const char *name, const ee_label *labels,
                           size_t nlabels, double delta);
int ee_metrics_counter_inc(ee_metrics *m, const char *name, const ee_label *labels,
                           size_t nlabels);
int ee_metrics_gauge_set(ee_metrics *m, const char *name, const ee_label *labels,
                         size_t nlabels, double value);
int ee_metrics_gauge_add(ee_metrics *m, const char *name, const ee_label *labels,
                         size_t nlabels, double delta);
int ee_metrics_observe(ee_metrics *m, const char *name, const ee_label *labels,
                       size_t nlabels, double value);

/* Hide a series from rendering (e.g. a partition that was revoked) until
 * its next update; handles stay valid and the stored value is kept.
 * Returns 0 if the series existed, -1 otherwise. */
int ee_metrics_series_remove(ee_metrics *m, const char *name, const ee_label *labels,
                             size_t nlabels);
/* Hide every series of a family (then set the current ones again to
 * replace a per-partition set wholesale). -1 if the family is unknown. */
int ee_metrics_family_clear(ee_metrics *m, const char *name);

/* The exposition text (malloc'd, caller frees); NULL on allocation failure. */
char *ee_metrics_render(ee_metrics *m);

/* ---- HTTP endpoint ------------------------------------------------------ */

/* Return true when healthy. When returning false, write a short reason
 * (NUL-terminated, at most reason_cap bytes) into `reason`. */
typedef bool (*ee_health_fn)(void *user, char *reason, size_t reason_cap);

typedef struct ee_metrics_server ee_metrics_server;

/* Serve `m` on bind_addr:port (bind_addr NULL = "127.0.0.1"; an IPv4 or
 * IPv6 literal; port 0 = any free port). health NULL = always healthy.
 * `m` must outlive the server. */
ee_metrics_server *ee_metrics_server_start(ee_metrics *m, const char *bind_addr, uint16_t port,
                                           ee_health_fn health, void *user, ee_err *err);
uint16_t ee_metrics_server_port(const ee_metrics_server *s);
/* Stop the server thread, close the socket, free. NULL ok. */
void ee_metrics_server_stop(ee_metrics_server *s);

#endif
