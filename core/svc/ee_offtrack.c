#include "ee_offtrack.h"

#include "ee_buf.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

typedef struct rec {
    int64_t offset;
    bool done;
} rec;

typedef struct part {
    int cons;
    char *topic;
    int32_t partition;
    uint64_t gen;
    rec *r;        /* ring of pending records, oldest first */
    size_t head, n, cap;
} part;

struct ee_offtrack {
    part *p;
    size_t n, cap;
    uint64_t next_gen;
};

ee_offtrack *ee_offtrack_new(void) {
    ee_offtrack *t = calloc(1, sizeof *t);
    if (t) t->next_gen = 1;
    return t;
}

void ee_offtrack_free(ee_offtrack *t) {
    if (!t) return;
    for (size_t i = 0; i < t->n; i++) {
        free(t->p[i].topic);
        free(t->p[i].r);
    }
    free(t->p);
    free(t);
}

static part *find(const ee_offtrack *t, int cons, const char *topic, int32_t partition) {
    for (size_t i = 0; i < t->n; i++)
        if (t->p[i].cons == cons && t->p[i].partition == partition &&
            strcmp(t->p[i].topic, topic) == 0)
            return &t->p[i];
    return NULL;
}

static rec *at(part *p, size_t i) { return &p->r[(p->head + i) % p->cap]; }

uint64_t ee_offtrack_add(ee_offtrack *t, int cons, const char *topic, int32_t partition,
                         int64_t offset) {
    part *p = find(t, cons, topic, partition);
    if (!p) {
        if (ee_array_reserve(&t->p, &t->cap, t->n + 1, sizeof *t->p, NULL)) return 0;
        char *name = strdup(topic);
        if (!name) return 0;
        p = &t->p[t->n++];
        memset(p, 0, sizeof *p);
        p->cons = cons;
        p->topic = name;
        p->partition = partition;
        p->gen = t->next_gen++;
    }
    if (p->n > 0 && offset <= at(p, p->n - 1)->offset) return 0;
    if (p->n == p->cap) { /* grow the ring, unrolling it */
        size_t nc = p->cap ? 2 * p->cap : 16;
        rec *nr = malloc(nc * sizeof *nr);
        if (!nr) return 0;
        for (size_t i = 0; i < p->n; i++) nr[i] = *at(p, i);
        free(p->r);
        p->r = nr;
        p->head = 0;
        p->cap = nc;
    }
    p->r[(p->head + p->n) % p->cap] = (rec){offset, false};
    p->n++;
    return p->gen;
}

int64_t ee_offtrack_done(ee_offtrack *t, int cons, const char *topic, int32_t partition,
                         int64_t offset, uint64_t gen) {
    part *p = find(t, cons, topic, partition);
    if (!p || p->gen != gen || p->n == 0) return -2;
    /* Binary search: offsets in the ring are increasing. */
    size_t lo = 0, hi = p->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (at(p, mid)->offset < offset) lo = mid + 1;
        else hi = mid;
    }
    if (lo == p->n || at(p, lo)->offset != offset || at(p, lo)->done) return -2;
    at(p, lo)->done = true;
    int64_t pos = -1;
    while (p->n > 0 && at(p, 0)->done) {
        pos = at(p, 0)->offset + 1;
        p->head = (p->head + 1) % p->cap;
        p->n--;
    }
    return pos;
}

void ee_offtrack_drop(ee_offtrack *t, int cons, const char *topic, int32_t partition) {
    part *p = find(t, cons, topic, partition);
    if (!p) return;
    free(p->topic);
    free(p->r);
    *p = t->p[--t->n];
}

size_t ee_offtrack_pending(const ee_offtrack *t, int cons, const char *topic, int32_t partition) {
    part *p = find(t, cons, topic, partition);
    return p ? p->n : 0;
}

size_t ee_offtrack_pending_total(const ee_offtrack *t) {
    size_t n = 0;
    for (size_t i = 0; i < t->n; i++) n += t->p[i].n;
    return n;
}
