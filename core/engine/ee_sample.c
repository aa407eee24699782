#include "ee_sample.h"

#include <math.h>
#include <stdlib.h>

typedef struct {
    float logit;
    int32_t id;
} cand;

struct ee_sampler {
    ee_sample_params p;
    int n_vocab;
    uint64_t state, inc; /* PCG32 */
    cand *c;
};

static uint32_t pcg32(ee_sampler *s) {
    uint64_t old = s->state;
    s->state = old * 6364136223846793005ULL + s->inc;
    uint32_t xs = (uint32_t)(((old >> 18u) ^ old) >> 27u);
    uint32_t rot = (uint32_t)(old >> 59u);
    return (xs >> rot) | (xs << ((-rot) & 31));
}

/* Uniform in [0, 1) with 24 random bits. */
static float uniform01(ee_sampler *s) { return (pcg32(s) >> 8) * (1.0f / 16777216.0f); }

ee_sampler *ee_sampler_new(const ee_sample_params *p, int n_vocab, ee_err *err) {
    if (!(p->temperature >= 0.0f) || !isfinite(p->temperature)) {
        ee_err_set(err, "temperature %g must be a finite number >= 0", p->temperature);
        return NULL;
    }
    if (!(p->top_p > 0.0f && p->top_p <= 1.0f)) {
        ee_err_set(err, "top_p %g must be in (0, 1]", p->top_p);
        return NULL;
    }
    if (p->top_k < 0) {
        ee_err_set(err, "top_k %d must be >= 0 (0 = no limit)", p->top_k);
        return NULL;
    }
    ee_sampler *s = calloc(1, sizeof *s);
    if (!s || !(s->c = malloc((size_t)n_vocab * sizeof(cand)))) {
        free(s);
        ee_err_set(err, "out of memory");
        return NULL;
    }
    s->p = *p;
    s->n_vocab = n_vocab;
    s->inc = (p->seed << 1u) | 1u;
    s->state = 0;
    pcg32(s);
    s->state += p->seed ^ 0x853c49e6748fea9bULL;
    pcg32(s);
    return s;
}

void ee_sampler_free(ee_sampler *s) {
    if (!s) return;
    free(s->c);
    free(s);
}

int32_t ee_argmax(const float *x, int n) {
    int32_t best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

static int cand_desc(const void *a, const void *b) {
    const cand *x = a, *y = b;
    if (x->logit != y->logit) return x->logit < y->logit ? 1 : -1;
    return x->id < y->id ? -1 : (x->id > y->id);
}

int32_t ee_sampler_next(ee_sampler *s, const float *logits) {
    if (s->p.temperature <= 0.0f) return ee_argmax(logits, s->n_vocab);
    int n = s->n_vocab;
    for (int i = 0; i < n; i++) {
        s->c[i].logit = logits[i] / s->p.temperature;
        s->c[i].id = i;
    }
    /* Sorting 49k candidates costs ~2 ms; only do it when a cut needs order. */
    bool need_sort = (s->p.top_k > 0 && s->p.top_k < n) || s->p.top_p < 1.0f;
    if (need_sort) {
        qsort(s->c, (size_t)n, sizeof(cand), cand_desc);
        if (s->p.top_k > 0 && s->p.top_k < n) n = s->p.top_k;
    }
    float mx = -INFINITY;
    for (int i = 0; i < n; i++) mx = s->c[i].logit > mx ? s->c[i].logit : mx;
    double sum = 0.0;
    for (int i = 0; i < n; i++) sum += exp((double)s->c[i].logit - mx);
    if (s->p.top_p < 1.0f) {
        /* Keep the smallest prefix whose probability reaches top_p. */
        double acc = 0.0;
        int keep = n;
        for (int i = 0; i < n; i++) {
            acc += exp((double)s->c[i].logit - mx) / sum;
            if (acc >= s->p.top_p) {
                keep = i + 1;
                break;
            }
        }
        n = keep;
        sum = 0.0;
        for (int i = 0; i < n; i++) sum += exp((double)s->c[i].logit - mx);
    }
    double r = uniform01(s) * sum, acc = 0.0;
    for (int i = 0; i < n; i++) {
        acc += exp((double)s->c[i].logit - mx);
        if (r < acc) return s->c[i].id;
    }
    return s->c[n - 1].id;
}
