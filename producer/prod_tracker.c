#include "prod_tracker.h"

#include <stdlib.h>
#include <string.h>

static size_t hash_id(const char *s) {
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return (size_t)(h ^ (h >> 32));
}

static void slot_put(size_t *slots, size_t n_slots, const char *id, size_t index) {
    size_t i = hash_id(id) & (n_slots - 1);
    while (slots[i]) i = (i + 1) & (n_slots - 1);
    slots[i] = index + 1;
}

static int grow_slots(prod_tracker *t, ee_err *err) {
    size_t n = t->n_slots ? t->n_slots * 2 : 64;
    size_t *s = calloc(n, sizeof *s);
    if (!s) return ee_err_set(err, "out of memory");
    for (size_t k = 0; k < t->n; k++) slot_put(s, n, t->jobs[k]->id, k);
    free(t->slots);
    t->slots = s;
    t->n_slots = n;
    return 0;
}

prod_job *prod_tracker_find(const prod_tracker *t, const char *id) {
    if (!t->n_slots) return NULL;
    for (size_t i = hash_id(id) & (t->n_slots - 1); t->slots[i]; i = (i + 1) & (t->n_slots - 1)) {
        prod_job *j = t->jobs[t->slots[i] - 1];
        if (strcmp(j->id, id) == 0) return j;
    }
    return NULL;
}

prod_job *prod_tracker_add(prod_tracker *t, const char *id, ee_err *err) {
    if (prod_tracker_find(t, id)) return ee_err_set(err, "job id '%s' is used twice", id), NULL;
    /* keep the table at most half full so probes stay short */
    if ((t->n + 1) * 2 > t->n_slots && grow_slots(t, err)) return NULL;
    if (ee_array_reserve(&t->jobs, &t->cap, t->n + 1, sizeof *t->jobs, err)) return NULL;
    prod_job *j = calloc(1, sizeof *j);
    if (!j || !(j->id = strdup(id))) {
        free(j);
        return ee_err_set(err, "out of memory"), NULL;
    }
    j->index = t->n;
    j->state = PROD_JOB_PENDING;
    t->jobs[t->n] = j;
    slot_put(t->slots, t->n_slots, id, t->n);
    t->n++;
    t->pending++;
    return j;
}

void prod_tracker_settle(prod_tracker *t, prod_job *j, prod_job_state s, double now,
                         char *problem) {
    if (j->state != PROD_JOB_PENDING) {
        free(problem);
        return;
    }
    j->state = s;
    j->t_done = now;
    free(j->problem);
    j->problem = problem;
    t->pending--;
}

void prod_tracker_free(prod_tracker *t) {
    for (size_t k = 0; k < t->n; k++) {
        prod_job *j = t->jobs[k];
        free(j->id);
        prod_stream_free(&j->stream);
        ee_buf_free(&j->line);
        ee_proto_reply_free(&j->final);
        free(j->plain);
        free(j->vec);
        free(j->scores);
        free(j->problem);
        free(j);
    }
    free(t->jobs);
    free(t->slots);
    memset(t, 0, sizeof *t);
}

const char *prod_job_state_name(prod_job_state s) {
    switch (s) {
    case PROD_JOB_PENDING: return "pending";
    case PROD_JOB_OK: return "ok";
    case PROD_JOB_ERROR: return "error";
    case PROD_JOB_TIMEOUT: return "timeout";
    case PROD_JOB_UNSENT: return "unsent";
    }
    return "?";
}
