/* prod_progress: the live line of a load test on a terminal (stderr,
 * redrawn in place with \r about 4 times a second): jobs done of total, in
 * flight, errors, throughput so far (jobs/s and generated tok/s over the
 * time since the run started) and the p50 latency of the ok jobs so far. */
#ifndef PROD_PROGRESS_H
#define PROD_PROGRESS_H

#include "prod_tracker.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define PROD_PROGRESS_EVERY_MS 250.0

typedef struct prod_progress_counts {
    size_t total, done, inflight, errors, ok;
    uint64_t tokens;   /* generated tokens of ok jobs */
    double elapsed_ms; /* since the run started */
    size_t n_lat;      /* ok jobs with a latency */
    double p50;        /* their median latency (from the intended send), ms */
} prod_progress_counts;

typedef struct prod_progress {
    bool on;
    FILE *out;       /* stderr */
    double last;     /* monotonic ms of the last redraw; 0 = never */
} prod_progress;

/* Whether to draw: force > 0 yes (--progress), force < 0 no
 * (--no-progress), 0: only when fd is a terminal. */
bool prod_progress_wanted(int force, int fd);

/* Counts from the tracker (jobs never added are neither done nor in
 * flight). Returns -1 only when out of memory for the p50. */
int prod_progress_measure(prod_progress_counts *c, const prod_tracker *t, size_t total,
                          double elapsed_ms);

/* The line without \r, e.g. "12/100 done, 4 in flight, 0 errors | 3.21 jobs/s,
 * 201.5 tok/s | p50 812 ms"; returns its length (truncated to cap - 1). */
size_t prod_progress_format(char *buf, size_t cap, const prod_progress_counts *c);

/* Redraws when on and PROD_PROGRESS_EVERY_MS passed since the last redraw
 * (or force). */
void prod_progress_tick(prod_progress *p, const prod_tracker *t, size_t total, double t0,
                        double now, bool force);
/* Erases the line (the summary follows). */
void prod_progress_end(prod_progress *p);

#endif
