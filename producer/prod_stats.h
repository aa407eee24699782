/* prod_stats: the numbers of a load test, from the settled jobs, over the
 * jobs that ended ok. Three client-side distributions:
 *   latency: final reply minus the intended send time (t_intended, the
 *     open-loop schedule, as wrk2 measures to avoid coordinated omission;
 *     in the closed loop t_intended == t_sent, so it is the service time);
 *   service: final reply minus the actual produce call (t_sent);
 *   first token: first streamed partial minus t_sent (streamed jobs only).
 * The queue/prefill/decode means are what the workers reported. */
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

/* Summary of n values (ms); all 0 when n == 0. */
typedef struct prod_dist {
    size_t n;
    double p50, p90, p99, max, mean;
} prod_dist;

typedef struct prod_stats {
    size_t total, ok, error, timeout, unsent;
    double wall_ms;
    uint64_t generated;          /* completion tokens of ok jobs */
    uint64_t prompt;             /* prompt tokens of ok jobs */
    prod_dist latency;           /* from the intended send */
    prod_dist service;           /* from the actual send */
    prod_dist first_token;       /* first partial, from the actual send */
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
/* Sorts v[0..n) in place and summarizes it. */
void prod_dist_make(prod_dist *d, double *v, size_t n);

/* A job's latency from its intended send (t_intended, else t_sent), and
 * its service time from its actual send; -1 when it has no such times. */
double prod_job_latency(const prod_job *j);
double prod_job_service(const prod_job *j);

#endif
