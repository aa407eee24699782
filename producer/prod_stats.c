#include "prod_stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

double prod_percentile(const double *sorted, size_t n, double q) {
    if (n == 0) return 0;
    size_t rank = (size_t)ceil(q * (double)n); /* 1-based */
    if (rank < 1) rank = 1;
    if (rank > n) rank = n;
    return sorted[rank - 1];
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void prod_dist_make(prod_dist *d, double *v, size_t n) {
    memset(d, 0, sizeof *d);
    if (n == 0) return;
    qsort(v, n, sizeof *v, cmp_double);
    double sum = 0;
    for (size_t i = 0; i < n; i++) sum += v[i];
    d->n = n;
    d->p50 = prod_percentile(v, n, 0.50);
    d->p90 = prod_percentile(v, n, 0.90);
    d->p99 = prod_percentile(v, n, 0.99);
    d->max = v[n - 1];
    d->mean = sum / (double)n;
}

double prod_job_latency(const prod_job *j) {
    if (j->t_sent <= 0 || j->t_done <= 0) return -1;
    return j->t_done - (j->t_intended > 0 ? j->t_intended : j->t_sent);
}

double prod_job_service(const prod_job *j) {
    if (j->t_sent <= 0 || j->t_done <= 0) return -1;
    return j->t_done - j->t_sent;
}

static int count_worker(prod_stats *s, const char *name, ee_err *err) {
    if (!name) name = "(unnamed)";
    for (size_t i = 0; i < s->n_workers; i++)
        if (strcmp(s->workers[i].name, name) == 0) {
            s->workers[i].jobs++;
            return 0;
        }
    prod_worker_count *w = realloc(s->workers, (s->n_workers + 1) * sizeof *w);
    if (!w) return ee_err_set(err, "out of memory");
    s->workers = w;
    if (!(w[s->n_workers].name = strdup(name))) return ee_err_set(err, "out of memory");
    w[s->n_workers++].jobs = 1;
    return 0;
}

int prod_stats_make(prod_stats *s, const prod_tracker *t, size_t total, double wall_ms,
                    ee_err *err) {
    memset(s, 0, sizeof *s);
    s->total = total;
    s->wall_ms = wall_ms;
    double *lat = malloc((t->n + 1) * sizeof *lat), *svc = malloc((t->n + 1) * sizeof *svc),
           *ft = malloc((t->n + 1) * sizeof *ft);
    size_t n_lat = 0, n_svc = 0, n_ft = 0;
    int rc = 0;
    if (!lat || !svc || !ft) {
        rc = ee_err_set(err, "out of memory");
        goto out;
    }
    for (size_t k = 0; k < t->n; k++) {
        const prod_job *j = t->jobs[k];
        switch (j->state) {
        case PROD_JOB_OK:
            s->ok++;
            s->generated += j->final.completion_tokens;
            s->prompt += j->final.prompt_tokens;
            s->queue_ms += j->final.queue_ms;
            s->prefill_ms += j->final.prefill_ms;
            s->decode_ms += j->final.decode_ms;
            if (prod_job_latency(j) >= 0) lat[n_lat++] = prod_job_latency(j);
            if (prod_job_service(j) >= 0) svc[n_svc++] = prod_job_service(j);
            if (j->t_first > 0 && j->t_sent > 0) ft[n_ft++] = j->t_first - j->t_sent;
            break;
        case PROD_JOB_ERROR: s->error++; break;
        case PROD_JOB_TIMEOUT:
        case PROD_JOB_PENDING: s->timeout++; break;
        case PROD_JOB_UNSENT: s->unsent++; break;
        }
        if ((j->state == PROD_JOB_OK || j->state == PROD_JOB_ERROR) && j->final.id &&
            count_worker(s, j->final.worker, err)) {
            rc = -1;
            goto out;
        }
    }
    if (t->n < total) s->unsent += total - t->n; /* never started */
    if (s->ok) {
        s->queue_ms /= (double)s->ok;
        s->prefill_ms /= (double)s->ok;
        s->decode_ms /= (double)s->ok;
    }
    prod_dist_make(&s->latency, lat, n_lat);
    prod_dist_make(&s->service, svc, n_svc);
    prod_dist_make(&s->first_token, ft, n_ft);
out:
    free(lat);
    free(svc);
    free(ft);
    if (rc) prod_stats_free(s);
    return rc;
}

void prod_stats_free(prod_stats *s) {
    for (size_t i = 0; i < s->n_workers; i++) free(s->workers[i].name);
    free(s->workers);
    s->workers = NULL;
    s->n_workers = 0;
}
