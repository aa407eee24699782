/* ee_metrics: Prometheus registry and exposition endpoint (see ee_metrics.h). */
#include "ee_metrics.h"

#include "ee_buf.h"

#include <arpa/inet.h>
#include <math.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

const double ee_metrics_latency_buckets[EE_METRICS_LATENCY_NBUCKETS] = {
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
};

typedef struct ee_metric_family {
    char *name;
    char *help;
    ee_metric_type type;
    double *bounds; /* histograms: nb finite upper bounds */
    size_t nb;
    ee_metric_series **series; /* sorted by key */
    size_t nseries, capseries;
} ee_metric_family;

struct ee_metric_series {
    ee_metric_family *fam;
    char *key;               /* rendered label body without braces; "" if none */
    _Atomic uint64_t bits;   /* counter/gauge value (double bits) */
    atomic_bool present;     /* rendered? (cleared by remove/clear) */
    pthread_mutex_t mu;      /* histograms only */
    uint64_t *counts;        /* nb + 1 non-cumulative; last is +Inf */
    uint64_t count;
    double sum;
};

struct ee_metrics {
    pthread_mutex_t mu;
    ee_metric_family **fams; /* sorted by name */
    size_t nfams, capfams;
};

/* ---- small helpers -------------------------------------------------------- */

static uint64_t d2u(double d) {
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}
static double u2d(uint64_t u) {
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

static bool valid_metric_name(const char *s) {
    if (!s || !*s) return false;
    for (const char *p = s; *p; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
                  (p != s && c >= '0' && c <= '9');
        if (!ok) return false;
    }
    return true;
}

static bool valid_label_name(const char *s) {
    if (!s || !*s) return false;
    if (s[0] == '_' && s[1] == '_') return false;
    for (const char *p = s; *p; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                  (p != s && c >= '0' && c <= '9');
        if (!ok) return false;
    }
    return true;
}

static bool ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

/* ee_buf with a sticky out-of-memory flag: a page is rendered with many
 * puts and checked once at the end. */
typedef struct {
    ee_buf eb;
    bool oom;
} sbuf;

static void sb_putn(sbuf *b, const char *s, size_t n) {
    if (!b->oom && ee_buf_append(&b->eb, s, n, NULL)) b->oom = true;
}
static void sb_puts(sbuf *b, const char *s) { sb_putn(b, s, strlen(s)); }

/* Escape for a label value (quote too) or for HELP text (no quote). */
static void sb_escaped(sbuf *b, const char *s, bool quote) {
    for (const char *p = s; *p; p++) {
        if (*p == '\\') sb_putn(b, "\\\\", 2);
        else if (*p == '\n') sb_putn(b, "\\n", 2);
        else if (quote && *p == '"') sb_putn(b, "\\\"", 2);
        else sb_putn(b, p, 1);
    }
}

/* Prometheus float text: NaN, +Inf, -Inf, plain integers below 1e15, else
 * the shortest %g that reads back to the same double. */
static void fmt_double(char out[40], double v) {
    if (isnan(v)) {
        strcpy(out, "NaN");
        return;
    }
    if (isinf(v)) {
        strcpy(out, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    if (v == floor(v) && fabs(v) < 1e15) {
        snprintf(out, 40, "%.0f", v);
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(out, 40, "%.*g", prec, v);
        if (strtod(out, NULL) == v) return;
    }
}

/* ---- registry ------------------------------------------------------------- */

ee_metrics *ee_metrics_new(ee_err *err) {
    ee_metrics *m = calloc(1, sizeof *m);
    if (!m) {
        ee_err_set(err, "metrics: out of memory");
        return NULL;
    }
    if (pthread_mutex_init(&m->mu, NULL) != 0) {
        free(m);
        ee_err_set(err, "metrics: pthread_mutex_init failed");
        return NULL;
    }
    return m;
}

static void series_free(ee_metric_series *s) {
    if (!s) return;
    if (s->counts) pthread_mutex_destroy(&s->mu);
    free(s->counts);
    free(s->key);
    free(s);
}

static void family_free(ee_metric_family *f) {
    if (!f) return;
    for (size_t i = 0; i < f->nseries; i++) series_free(f->series[i]);
    free(f->series);
    free(f->name);
    free(f->help);
    free(f->bounds);
    free(f);
}

void ee_metrics_free(ee_metrics *m) {
    if (!m) return;
    for (size_t i = 0; i < m->nfams; i++) family_free(m->fams[i]);
    free(m->fams);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

/* Binary search for `name`; returns the index where it is or would go. */
static size_t family_pos(const ee_metrics *m, const char *name, bool *found) {
    size_t lo = 0, hi = m->nfams;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(m->fams[mid]->name, name);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    *found = false;
    return lo;
}

static ee_metric_family *family_find(const ee_metrics *m, const char *name) {
    bool found;
    size_t i = family_pos(m, name, &found);
    return found ? m->fams[i] : NULL;
}

/* Would `name` clash with a histogram's derived series names, or would a
 * new histogram's derived names clash with an existing family? */
static const char *derived_clash(const ee_metrics *m, const char *name, bool hist) {
    static const char *const sfx[] = {"_bucket", "_sum", "_count"};
    char tmp[512];
    for (size_t k = 0; k < 3; k++) {
        if (hist) {
            snprintf(tmp, sizeof tmp, "%s%s", name, sfx[k]);
            ee_metric_family *f = family_find(m, tmp);
            if (f) return f->name;
        } else if (ends_with(name, sfx[k])) {
            size_t base = strlen(name) - strlen(sfx[k]);
            if (base >= sizeof tmp) continue;
            memcpy(tmp, name, base);
            tmp[base] = 0;
            ee_metric_family *f = family_find(m, tmp);
            if (f && f->type == EE_METRIC_HISTOGRAM) return f->name;
        }
    }
    return NULL;
}

static int register_family(ee_metrics *m, const char *name, const char *help, ee_metric_type type,
                           const double *bounds, size_t nb, ee_err *err) {
    if (!m) return ee_err_set(err, "metrics: NULL registry");
    if (!valid_metric_name(name))
        return ee_err_set(err, "metrics: invalid metric name '%s'", name ? name : "(null)");
    if (strlen(name) > 400) return ee_err_set(err, "metrics: metric name '%.40s...' too long", name);
    if (type != EE_METRIC_COUNTER && type != EE_METRIC_GAUGE && type != EE_METRIC_HISTOGRAM)
        return ee_err_set(err, "metrics: '%s': unknown type %d", name, (int)type);
    if (type == EE_METRIC_HISTOGRAM) {
        if (ends_with(name, "_bucket") || ends_with(name, "_sum") || ends_with(name, "_count"))
            return ee_err_set(err, "metrics: histogram name '%s' must not end in _bucket/_sum/_count",
                              name);
        if (!bounds || nb == 0 || nb > EE_METRICS_MAX_BUCKETS)
            return ee_err_set(err, "metrics: histogram '%s': need 1..%d bucket bounds, got %zu", name,
                              EE_METRICS_MAX_BUCKETS, nb);
        for (size_t i = 0; i < nb; i++) {
            if (!isfinite(bounds[i]))
                return ee_err_set(err, "metrics: histogram '%s': bound %zu is not finite", name, i);
            if (i > 0 && !(bounds[i] > bounds[i - 1]))
                return ee_err_set(err, "metrics: histogram '%s': bounds not strictly increasing at %zu (%g <= %g)",
                                  name, i, bounds[i], bounds[i - 1]);
        }
    }

    ee_metric_family *f = calloc(1, sizeof *f);
    if (!f) return ee_err_set(err, "metrics: out of memory");
    f->type = type;
    f->name = strdup(name);
    f->help = strdup(help ? help : "");
    if (type == EE_METRIC_HISTOGRAM) {
        f->bounds = malloc(nb * sizeof *f->bounds);
        if (f->bounds) memcpy(f->bounds, bounds, nb * sizeof *f->bounds);
        f->nb = nb;
    }
    if (!f->name || !f->help || (type == EE_METRIC_HISTOGRAM && !f->bounds)) {
        family_free(f);
        return ee_err_set(err, "metrics: out of memory");
    }

    pthread_mutex_lock(&m->mu);
    bool found;
    size_t pos = family_pos(m, name, &found);
    const char *clash = found ? NULL : derived_clash(m, name, type == EE_METRIC_HISTOGRAM);
    if (found || clash) {
        pthread_mutex_unlock(&m->mu);
        family_free(f);
        if (found) return ee_err_set(err, "metrics: metric '%s' already registered", name);
        if (type == EE_METRIC_HISTOGRAM)
            return ee_err_set(err, "metrics: histogram '%s' clashes with metric '%s'", name, clash);
        return ee_err_set(err, "metrics: metric '%s' clashes with histogram series of '%s'", name, clash);
    }
    if (ee_array_reserve(&m->fams, &m->capfams, m->nfams + 1, sizeof *m->fams, NULL)) {
        pthread_mutex_unlock(&m->mu);
        family_free(f);
        return ee_err_set(err, "metrics: out of memory");
    }
    memmove(m->fams + pos + 1, m->fams + pos, (m->nfams - pos) * sizeof *m->fams);
    m->fams[pos] = f;
    m->nfams++;
    pthread_mutex_unlock(&m->mu);
    return 0;
}

int ee_metrics_register(ee_metrics *m, const char *name, const char *help, ee_metric_type type,
                        ee_err *err) {
    if (type == EE_METRIC_HISTOGRAM)
        return ee_err_set(err, "metrics: '%s': use ee_metrics_register_histogram for histograms",
                          name ? name : "(null)");
    return register_family(m, name, help, type, NULL, 0, err);
}

int ee_metrics_register_histogram(ee_metrics *m, const char *name, const char *help,
                                  const double *bounds, size_t n, ee_err *err) {
    return register_family(m, name, help, EE_METRIC_HISTOGRAM, bounds, n, err);
}

/* Canonical label text: pairs sorted by name, `a="v",b="w"`. Malloc'd. */
static char *label_key(const ee_metric_family *f, const ee_label *labels, size_t n, ee_err *err) {
    if (n > EE_METRICS_MAX_LABELS) {
        ee_err_set(err, "metrics: '%s': %zu labels, at most %d allowed", f->name, n,
                   EE_METRICS_MAX_LABELS);
        return NULL;
    }
    if (n > 0 && !labels) {
        ee_err_set(err, "metrics: '%s': NULL labels with count %zu", f->name, n);
        return NULL;
    }
    const ee_label *ord[EE_METRICS_MAX_LABELS];
    for (size_t i = 0; i < n; i++) {
        const ee_label *l = &labels[i];
        if (!valid_label_name(l->name)) {
            ee_err_set(err, "metrics: '%s': invalid label name '%s'", f->name,
                       l->name ? l->name : "(null)");
            return NULL;
        }
        if (!l->value) {
            ee_err_set(err, "metrics: '%s': label '%s' has NULL value", f->name, l->name);
            return NULL;
        }
        if (f->type == EE_METRIC_HISTOGRAM && strcmp(l->name, "le") == 0) {
            ee_err_set(err, "metrics: '%s': label 'le' is reserved for histogram buckets", f->name);
            return NULL;
        }
        size_t j = i;
        while (j > 0 && strcmp(ord[j - 1]->name, l->name) > 0) {
            ord[j] = ord[j - 1];
            j--;
        }
        ord[j] = l;
    }
    for (size_t i = 1; i < n; i++)
        if (strcmp(ord[i - 1]->name, ord[i]->name) == 0) {
            ee_err_set(err, "metrics: '%s': duplicate label '%s'", f->name, ord[i]->name);
            return NULL;
        }
    sbuf b = {0};
    sb_puts(&b, "");
    for (size_t i = 0; i < n; i++) {
        if (i) sb_putn(&b, ",", 1);
        sb_puts(&b, ord[i]->name);
        sb_putn(&b, "=\"", 2);
        sb_escaped(&b, ord[i]->value, true);
        sb_putn(&b, "\"", 1);
    }
    if (b.oom) {
        free(b.eb.p);
        ee_err_set(err, "metrics: out of memory");
        return NULL;
    }
    return b.eb.p;
}

static size_t series_pos(const ee_metric_family *f, const char *key, bool *found) {
    size_t lo = 0, hi = f->nseries;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(f->series[mid]->key, key);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    *found = false;
    return lo;
}

/* Lookup under m->mu; create when `create`. */
static ee_metric_series *series_locked(ee_metrics *m, const char *name, const ee_label *labels,
                                       size_t n, bool create, ee_err *err) {
    ee_metric_family *f = family_find(m, name);
    if (!f) {
        ee_err_set(err, "metrics: metric '%s' is not registered", name);
        return NULL;
    }
    char *key = label_key(f, labels, n, err);
    if (!key) return NULL;
    bool found;
    size_t pos = series_pos(f, key, &found);
    if (found) {
        free(key);
        return f->series[pos];
    }
    if (!create) {
        free(key);
        ee_err_set(err, "metrics: '%s': no such series", name);
        return NULL;
    }
    ee_metric_series *s = calloc(1, sizeof *s);
    if (!s) goto oom;
    s->fam = f;
    s->key = key;
    key = NULL;
    atomic_init(&s->bits, d2u(0.0));
    atomic_init(&s->present, true);
    if (f->type == EE_METRIC_HISTOGRAM) {
        s->counts = calloc(f->nb + 1, sizeof *s->counts);
        if (!s->counts) goto oom;
        if (pthread_mutex_init(&s->mu, NULL) != 0) {
            free(s->counts);
            s->counts = NULL;
            goto oom;
        }
    }
    if (ee_array_reserve(&f->series, &f->capseries, f->nseries + 1, sizeof *f->series, NULL))
        goto oom;
    memmove(f->series + pos + 1, f->series + pos, (f->nseries - pos) * sizeof *f->series);
    f->series[pos] = s;
    f->nseries++;
    return s;
oom:
    free(key);
    series_free(s);
    ee_err_set(err, "metrics: out of memory");
    return NULL;
}

ee_metric_series *ee_metrics_series(ee_metrics *m, const char *name, const ee_label *labels,
                                    size_t nlabels, ee_err *err) {
    if (!m || !name) {
        ee_err_set(err, "metrics: NULL registry or name");
        return NULL;
    }
    pthread_mutex_lock(&m->mu);
    ee_metric_series *s = series_locked(m, name, labels, nlabels, true, err);
    pthread_mutex_unlock(&m->mu);
    return s;
}

static void mark_present(ee_metric_series *s) {
    if (!atomic_load_explicit(&s->present, memory_order_relaxed))
        atomic_store_explicit(&s->present, true, memory_order_relaxed);
}

int ee_metrics_series_add(ee_metric_series *s, double delta) {
    if (!s || s->fam->type == EE_METRIC_HISTOGRAM) return -1;
    if (s->fam->type == EE_METRIC_COUNTER && !(delta >= 0)) return -1;
    uint64_t old = atomic_load_explicit(&s->bits, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(&s->bits, &old, d2u(u2d(old) + delta),
                                                  memory_order_relaxed, memory_order_relaxed)) {
    }
    mark_present(s);
    return 0;
}

int ee_metrics_series_set(ee_metric_series *s, double value) {
    if (!s || s->fam->type != EE_METRIC_GAUGE) return -1;
    atomic_store_explicit(&s->bits, d2u(value), memory_order_relaxed);
    mark_present(s);
    return 0;
}

int ee_metrics_series_observe(ee_metric_series *s, double value) {
    if (!s || s->fam->type != EE_METRIC_HISTOGRAM) return -1;
    const ee_metric_family *f = s->fam;
    size_t i = 0; /* first bucket with value <= bound; NaN lands in +Inf */
    while (i < f->nb && !(value <= f->bounds[i])) i++;
    pthread_mutex_lock(&s->mu);
    s->counts[i]++;
    s->count++;
    s->sum += value;
    pthread_mutex_unlock(&s->mu);
    mark_present(s);
    return 0;
}

double ee_metrics_series_value(const ee_metric_series *s) {
    if (!s) return 0;
    if (s->fam->type == EE_METRIC_HISTOGRAM) {
        ee_metric_series *w = (ee_metric_series *)s;
        pthread_mutex_lock(&w->mu);
        double v = w->sum;
        pthread_mutex_unlock(&w->mu);
        return v;
    }
    return u2d(atomic_load_explicit(&s->bits, memory_order_relaxed));
}

uint64_t ee_metrics_series_count(ee_metric_series *s) {
    if (!s || s->fam->type != EE_METRIC_HISTOGRAM) return 0;
    pthread_mutex_lock(&s->mu);
    uint64_t c = s->count;
    pthread_mutex_unlock(&s->mu);
    return c;
}

int ee_metrics_counter_add(ee_metrics *m, const char *name, const ee_label *labels, size_t nlabels,
                           double delta) {
    ee_metric_series *s = ee_metrics_series(m, name, labels, nlabels, NULL);
    if (!s || s->fam->type != EE_METRIC_COUNTER) return -1;
    return ee_metrics_series_add(s, delta);
}

int ee_metrics_counter_inc(ee_metrics *m, const char *name, const ee_label *labels, size_t nlabels) {
    return ee_metrics_counter_add(m, name, labels, nlabels, 1.0);
}

int ee_metrics_gauge_set(ee_metrics *m, const char *name, const ee_label *labels, size_t nlabels,
                         double value) {
    return ee_metrics_series_set(ee_metrics_series(m, name, labels, nlabels, NULL), value);
}

int ee_metrics_gauge_add(ee_metrics *m, const char *name, const ee_label *labels, size_t nlabels,
                         double delta) {
    ee_metric_series *s = ee_metrics_series(m, name, labels, nlabels, NULL);
    if (!s || s->fam->type != EE_METRIC_GAUGE) return -1;
    return ee_metrics_series_add(s, delta);
}

int ee_metrics_observe(ee_metrics *m, const char *name, const ee_label *labels, size_t nlabels,
                       double value) {
    return ee_metrics_series_observe(ee_metrics_series(m, name, labels, nlabels, NULL), value);
}

int ee_metrics_series_remove(ee_metrics *m, const char *name, const ee_label *labels, size_t nlabels) {
    if (!m || !name) return -1;
    pthread_mutex_lock(&m->mu);
    ee_metric_series *s = series_locked(m, name, labels, nlabels, false, NULL);
    if (s) atomic_store(&s->present, false);
    pthread_mutex_unlock(&m->mu);
    return s ? 0 : -1;
}

int ee_metrics_family_clear(ee_metrics *m, const char *name) {
    if (!m || !name) return -1;
    pthread_mutex_lock(&m->mu);
    ee_metric_family *f = family_find(m, name);
    if (f)
        for (size_t i = 0; i < f->nseries; i++) atomic_store(&f->series[i]->present, false);
    pthread_mutex_unlock(&m->mu);
    return f ? 0 : -1;
}

/* ---- rendering ------------------------------------------------------------ */

static void render_sample(sbuf *b, const char *name, const char *suffix, const char *key,
                          const char *le, double v) {
    char num[40];
    sb_puts(b, name);
    sb_puts(b, suffix);
    if (*key || le) {
        sb_putn(b, "{", 1);
        sb_puts(b, key);
        if (le) {
            if (*key) sb_putn(b, ",", 1);
            sb_puts(b, "le=\"");
            sb_puts(b, le);
            sb_putn(b, "\"", 1);
        }
        sb_putn(b, "}", 1);
    }
    sb_putn(b, " ", 1);
    fmt_double(num, v);
    sb_puts(b, num);
    sb_putn(b, "\n", 1);
}

static void render_histogram(sbuf *b, const ee_metric_family *f, ee_metric_series *s) {
    uint64_t counts[EE_METRICS_MAX_BUCKETS + 1];
    pthread_mutex_lock(&s->mu);
    memcpy(counts, s->counts, (f->nb + 1) * sizeof *counts);
    uint64_t count = s->count;
    double sum = s->sum;
    pthread_mutex_unlock(&s->mu);
    uint64_t cum = 0;
    char le[40];
    for (size_t i = 0; i < f->nb; i++) {
        cum += counts[i];
        fmt_double(le, f->bounds[i]);
        render_sample(b, f->name, "_bucket", s->key, le, (double)cum);
    }
    render_sample(b, f->name, "_bucket", s->key, "+Inf", (double)count);
    render_sample(b, f->name, "_sum", s->key, NULL, sum);
    render_sample(b, f->name, "_count", s->key, NULL, (double)count);
}

char *ee_metrics_render(ee_metrics *m) {
    if (!m) return NULL;
    static const char *const tname[] = {"counter", "gauge", "histogram"};
    sbuf b = {0};
    sb_puts(&b, "");
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < m->nfams; i++) {
        const ee_metric_family *f = m->fams[i];
        if (f->help[0]) { /* an empty help text gets no HELP line */
            sb_puts(&b, "# HELP ");
            sb_puts(&b, f->name);
            sb_putn(&b, " ", 1);
            sb_escaped(&b, f->help, false);
            sb_putn(&b, "\n", 1);
        }
        sb_puts(&b, "# TYPE ");
        sb_puts(&b, f->name);
        sb_putn(&b, " ", 1);
        sb_puts(&b, tname[f->type]);
        sb_putn(&b, "\n", 1);
        for (size_t j = 0; j < f->nseries; j++) {
            ee_metric_series *s = f->series[j];
            if (!atomic_load_explicit(&s->present, memory_order_relaxed)) continue;
            if (f->type == EE_METRIC_HISTOGRAM) render_histogram(&b, f, s);
            else
                render_sample(&b, f->name, "", s->key, NULL,
                              u2d(atomic_load_explicit(&s->bits, memory_order_relaxed)));
        }
    }
    pthread_mutex_unlock(&m->mu);
    if (b.oom) {
        free(b.eb.p);
        return NULL;
    }
    return b.eb.p;
}

/* ---- HTTP endpoint -------------------------------------------------------- */

struct ee_metrics_server {
    struct MHD_Daemon *d;
    ee_metrics *m;
    ee_health_fn health;
    void *user;
    uint16_t port;
    pthread_mutex_t logmu;
    char log[256]; /* last libmicrohttpd error message */
};

static void mhd_logger(void *cls, const char *fmt, va_list ap) {
    ee_metrics_server *s = cls;
    pthread_mutex_lock(&s->logmu);
    vsnprintf(s->log, sizeof s->log, fmt, ap);
    size_t n = strlen(s->log);
    while (n > 0 && (s->log[n - 1] == '\n' || s->log[n - 1] == '\r')) s->log[--n] = 0;
    pthread_mutex_unlock(&s->logmu);
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *ctype,
                             char *body, size_t len, bool must_free, bool allow_get) {
    struct MHD_Response *r = MHD_create_response_from_buffer(
        len, body, must_free ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!r) {
        if (must_free) free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    if (allow_get) MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET");
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

#define TEXT_PLAIN "text/plain; charset=utf-8"

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **con_cls) {
    (void)version;
    (void)upload_data;
    (void)con_cls;
    ee_metrics_server *s = cls;
    static char not_found[] = "not found\n", bad_method[] = "method not allowed\n",
                oom[] = "out of memory\n", ok[] = "ok\n";
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0) {
        *upload_data_size = 0; /* discard any body */
        return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, TEXT_PLAIN, bad_method, strlen(bad_method),
                     false, true);
    }
    if (strcmp(url, "/metrics") == 0) {
        char *text = ee_metrics_render(s->m);
        if (!text)
            return reply(c, MHD_HTTP_INTERNAL_SERVER_ERROR, TEXT_PLAIN, oom, strlen(oom), false,
                         false);
        return reply(c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", text,
                     strlen(text), true, false);
    }
    if (strcmp(url, "/healthz") == 0) {
        char reason[256] = "";
        if (!s->health || s->health(s->user, reason, sizeof reason - 1))
            return reply(c, MHD_HTTP_OK, TEXT_PLAIN, ok, strlen(ok), false, false);
        reason[sizeof reason - 1] = 0;
        if (!reason[0]) strcpy(reason, "unhealthy");
        size_t n = strlen(reason);
        char *body = malloc(n + 2);
        if (!body)
            return reply(c, MHD_HTTP_SERVICE_UNAVAILABLE, TEXT_PLAIN, oom, strlen(oom), false,
                         false);
        memcpy(body, reason, n);
        body[n] = '\n';
        body[n + 1] = 0;
        return reply(c, MHD_HTTP_SERVICE_UNAVAILABLE, TEXT_PLAIN, body, n + 1, true, false);
    }
    return reply(c, MHD_HTTP_NOT_FOUND, TEXT_PLAIN, not_found, strlen(not_found), false, false);
}

ee_metrics_server *ee_metrics_server_start(ee_metrics *m, const char *bind_addr, uint16_t port,
                                           ee_health_fn health, void *user, ee_err *err) {
    if (!m) {
        ee_err_set(err, "metrics server: NULL registry");
        return NULL;
    }
    if (!bind_addr) bind_addr = "127.0.0.1";
    struct sockaddr_in sa4;
    struct sockaddr_in6 sa6;
    const struct sockaddr *sa;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    memset(&sa4, 0, sizeof sa4);
    memset(&sa6, 0, sizeof sa6);
    if (inet_pton(AF_INET, bind_addr, &sa4.sin_addr) == 1) {
        sa4.sin_family = AF_INET;
        sa4.sin_port = htons(port);
        sa = (const struct sockaddr *)&sa4;
    } else if (inet_pton(AF_INET6, bind_addr, &sa6.sin6_addr) == 1) {
        sa6.sin6_family = AF_INET6;
        sa6.sin6_port = htons(port);
        sa = (const struct sockaddr *)&sa6;
        flags |= MHD_USE_IPv6;
    } else {
        ee_err_set(err, "metrics server: bind address '%s' is not an IPv4 or IPv6 literal",
                   bind_addr);
        return NULL;
    }
    ee_metrics_server *s = calloc(1, sizeof *s);
    if (!s) {
        ee_err_set(err, "metrics server: out of memory");
        return NULL;
    }
    s->m = m;
    s->health = health;
    s->user = user;
    pthread_mutex_init(&s->logmu, NULL);
    s->d = MHD_start_daemon(flags, port, NULL, NULL, handle, s,
                            MHD_OPTION_SOCK_ADDR, sa,
                            MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, s,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)64,
                            MHD_OPTION_END);
    if (!s->d) {
        pthread_mutex_lock(&s->logmu);
        ee_err_set(err, "metrics server: cannot listen on %s:%u: %s", bind_addr, (unsigned)port,
                   s->log[0] ? s->log : "MHD_start_daemon failed");
        pthread_mutex_unlock(&s->logmu);
        pthread_mutex_destroy(&s->logmu);
        free(s);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info && info->port ? info->port : port;
    if (s->port == 0) {
        ee_err_set(err, "metrics server: cannot determine the bound port on %s", bind_addr);
        ee_metrics_server_stop(s);
        return NULL;
    }
    return s;
}

uint16_t ee_metrics_server_port(const ee_metrics_server *s) { return s ? s->port : 0; }

void ee_metrics_server_stop(ee_metrics_server *s) {
    if (!s) return;
    if (s->d) MHD_stop_daemon(s->d);
    pthread_mutex_destroy(&s->logmu);
    free(s);
}
