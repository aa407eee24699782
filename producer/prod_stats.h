/* prod_stats: the numbers of a load test, from the settled jobs. Latency
 * is measured by the client (produce call to final reply), over the jobs
 * that ended ok; the queue/prefill/decode means are what the workers
 * reported in those replies. */
#ifndef PROD_STATS_H
#define PROD_STATS_H

#include "prod_tracker.h"

#include "ee_error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct prod_worker_count {
    char *name; /* reply `worker`, or "(unnamed)" */
    size_t jobs;
} prod_worker_count;

typedef struct prod_stats {
    size_t total, ok, error, timeout, unsent;
    double wall_ms;
    uint64_t generated;          /* completion tokens of ok jobs */
    size_t n_lat;                /* ok jobs with a latency */
    double p50, p90, p99, max, mean;
    double queue_ms, prefill_ms, decode_ms; /* means over ok jobs */
    prod_worker_count *workers;  /* by first appearance */
    size_t n_workers;
} prod_stats;

/* total: jobs the run meant to send (unsent ones never added count as
 * unsent). */
int prod_stats_make(prod_stats *s, const prod_tracker *t, size_t total, double wall_ms,
                    ee_err *err);
void prod_stats_free(prod_stats *s);

/* Nearest-rank percentile of sorted v[0..n), q in (0, 1]; 0 if n == 0. */
double prod_percentile(const double *sorted, size_t n, double q);

#endif
