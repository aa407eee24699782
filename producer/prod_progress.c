#include "prod_progress.h"

#include "prod_stats.h"

#include <stdlib.h>
#include <unistd.h>

bool prod_progress_wanted(int force, int fd) {
    if (force) return force > 0;
    return isatty(fd) == 1;
}

int prod_progress_measure(prod_progress_counts *c, const prod_tracker *t, size_t total,
                          double elapsed_ms) {
    *c = (prod_progress_counts){.total = total, .elapsed_ms = elapsed_ms};
    double *lat = malloc((t->n + 1) * sizeof *lat);
    for (size_t k = 0; k < t->n; k++) {
        const prod_job *j = t->jobs[k];
        switch (j->state) {
        case PROD_JOB_PENDING: c->inflight++; continue;
        case PROD_JOB_OK:
            c->ok++;
            c->tokens += j->final.completion_tokens;
            if (lat && prod_job_latency(j) >= 0) lat[c->n_lat++] = prod_job_latency(j);
            break;
        default: c->errors++; break;
        }
        c->done++;
    }
    if (!lat) return -1;
    prod_dist d;
    prod_dist_make(&d, lat, c->n_lat);
    c->p50 = d.p50;
    free(lat);
    return 0;
}

size_t prod_progress_format(char *buf, size_t cap, const prod_progress_counts *c) {
    double s = c->elapsed_ms / 1000.0;
    char p50[48] = "p50 -";
    if (c->n_lat) snprintf(p50, sizeof p50, "p50 %.0f ms", c->p50);
    int n = snprintf(buf, cap, "%zu/%zu done, %zu in flight, %zu error%s | %.2f jobs/s, %.1f tok/s | %s",
                     c->done, c->total, c->inflight, c->errors, c->errors == 1 ? "" : "s",
                     s > 0 ? (double)c->ok / s : 0, s > 0 ? (double)c->tokens / s : 0, p50);
    if (n < 0) return 0;
    return (size_t)n < cap ? (size_t)n : cap - 1;
}

void prod_progress_tick(prod_progress *p, const prod_tracker *t, size_t total, double t0,
                        double now, bool force) {
    if (!p->on || (!force && p->last > 0 && now - p->last < PROD_PROGRESS_EVERY_MS)) return;
    p->last = now;
    prod_progress_counts c;
    if (prod_progress_measure(&c, t, total, now - t0)) return;
    char line[256];
    prod_progress_format(line, sizeof line, &c);
    /* \033[K clears what a longer previous line left */
    fprintf(p->out ? p->out : stderr, "\r%s\033[K", line);
    fflush(p->out ? p->out : stderr);
}

void prod_progress_end(prod_progress *p) {
    if (!p->on || p->last == 0) return;
    fputs("\r\033[K", p->out ? p->out : stderr);
    fflush(p->out ? p->out : stderr);
}
