#include "prod_loadrec.h"

#include "prod_stats.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ms to the microsecond: more digits are only noise */
static json_t *ms3(double v) { return json_real(round(v * 1000) / 1000); }
static json_t *rel(double t, double t0) { return t > 0 ? ms3(t - t0) : json_null(); }

const char *prod_loadrec_status(const prod_job *j) {
    switch (j->state) {
    case PROD_JOB_OK: return "ok";
    case PROD_JOB_ERROR:
        if (j->final.id && !j->final.ok) return ee_proto_code_name(j->final.error_code);
        return "bad_reply";
    default: return prod_job_state_name(j->state);
    }
}

json_t *prod_loadrec_job(const prod_job *j, double t0) {
    json_t *o = json_object();
    const ee_proto_reply *r = &j->final;
    bool ok = j->state == PROD_JOB_OK;
    double lat = prod_job_latency(j), svc = prod_job_service(j);
    bool settled = j->state != PROD_JOB_PENDING;
    json_object_set_new(o, "record", json_string("job"));
    json_object_set_new(o, "id", json_string(j->id));
    json_object_set_new(o, "index", json_integer((json_int_t)j->index));
    json_object_set_new(o, "intended_ms", rel(j->t_intended > 0 ? j->t_intended : j->t_sent, t0));
    json_object_set_new(o, "sent_ms", rel(j->t_sent, t0));
    json_object_set_new(o, "first_token_ms", rel(j->t_first, t0));
    json_object_set_new(o, "final_ms", settled ? rel(j->t_done, t0) : json_null());
    json_object_set_new(o, "status", json_string(prod_loadrec_status(j)));
    json_object_set_new(o, "latency_ms", settled && lat >= 0 ? ms3(lat) : json_null());
    json_object_set_new(o, "service_ms", settled && svc >= 0 ? ms3(svc) : json_null());
    json_object_set_new(o, "prompt_tokens", ok ? json_integer(r->prompt_tokens) : json_null());
    json_object_set_new(o, "completion_tokens",
                        ok ? json_integer(r->completion_tokens) : json_null());
    json_object_set_new(o, "worker", r->worker ? json_string(r->worker) : json_null());
    json_object_set_new(o, "queue_ms", ok ? ms3(r->queue_ms) : json_null());
    json_object_set_new(o, "prefill_ms", ok ? ms3(r->prefill_ms) : json_null());
    json_object_set_new(o, "decode_ms", ok ? ms3(r->decode_ms) : json_null());
    const char *why = j->problem ? j->problem : (r->id && !r->ok ? r->error_message : NULL);
    json_object_set_new(o, "error", why ? json_string(why) : json_null());
    return o;
}

int prod_loadrec_open(prod_loadrec *w, const char *path, ee_err *err) {
    memset(w, 0, sizeof *w);
    w->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
    if (w->fd < 0) return ee_err_set(err, "--records: cannot create '%s': %s", path, strerror(errno));
    if (!(w->path = strdup(path))) {
        close(w->fd);
        return ee_err_set(err, "out of memory");
    }
    return 0;
}

int prod_loadrec_line(prod_loadrec *w, const json_t *o, ee_err *err) {
    char *s = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(15));
    if (!s) return ee_err_set(err, "out of memory");
    size_t n = strlen(s);
    s[n] = '\n'; /* replaces the NUL: one write of the whole line */
    const char *p = s;
    size_t left = n + 1;
    while (left) {
        ssize_t k = write(w->fd, p, left);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            int e = errno;
            free(s);
            return ee_err_set(err, "--records: writing '%s': %s", w->path, strerror(e));
        }
        p += k;
        left -= (size_t)k;
    }
    free(s);
    return 0;
}

int prod_loadrec_flush(prod_loadrec *w, const prod_tracker *t, bool all, ee_err *err) {
    if (t->n > w->cap) {
        size_t cap = t->cap > t->n ? t->cap : t->n;
        unsigned char *p = realloc(w->written, cap);
        if (!p) return ee_err_set(err, "out of memory");
        memset(p + w->cap, 0, cap - w->cap);
        w->written = p;
        w->cap = cap;
    }
    for (size_t k = w->next; k < t->n; k++) {
        const prod_job *j = t->jobs[k];
        if (w->written[k] || (!all && j->state == PROD_JOB_PENDING)) continue;
        json_t *o = prod_loadrec_job(j, w->t0);
        int rc = prod_loadrec_line(w, o, err);
        json_decref(o);
        if (rc) return -1;
        w->written[k] = 1;
    }
    while (w->next < t->n && w->written[w->next]) w->next++;
    return 0;
}

void prod_loadrec_close(prod_loadrec *w) {
    if (w->path) close(w->fd); /* never opened: no path */
    w->fd = -1;
    free(w->path);
    free(w->written);
    w->path = NULL;
    w->written = NULL;
    w->cap = w->next = 0;
}
