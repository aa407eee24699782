/* ee_vindex: argument checks, ids, tombstones and locking in C; faiss only
 * stores rows and searches them (ee_vindex_faiss.cpp).
 *
 * State: faiss holds rows 0..rows-1 in insertion order. row_id[r] is the
 * caller's id of row r, or -1 once the row is dead (replaced or removed);
 * the bitmap `live` says the same for faiss's IDSelector; `map` takes a
 * live id to its row. An update first reserves every array it will touch,
 * then changes faiss, then the arrays, so a failure leaves all three in
 * agreement. */
#include "ee_vindex.h"

#include "ee_idmap.h"
#include "ee_vindex_faiss.h"

#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    ee_vindex_kind kind;
    const char *name;
} KINDS[] = {
    {EE_VINDEX_FLAT, "flat"},
    {EE_VINDEX_HNSW, "hnsw"},
};
#define N_KINDS (sizeof KINDS / sizeof KINDS[0])

#define DEFAULT_HNSW_M 32
#define DEFAULT_EF_CONSTRUCTION 80
#define DEFAULT_EF_SEARCH 64
#define DEFAULT_MAX_DEAD 0.25

struct ee_vindex {
    ee_vindex_kind kind;
    int dim;
    ee_vindex_opts opts; /* defaults filled in */
    ee_vfaiss *fx;
    int64_t *row_id;     /* row -> id, -1: dead */
    uint8_t *live;       /* bit r % 8 of byte r / 8: row r is live */
    size_t rows, cap;    /* rows in faiss; rows the two arrays hold */
    size_t dead;
    ee_idmap map;        /* live id -> row */
    size_t compactions, compact_fails;
    /* Set when a failed add left faiss in a state we could not repair
     * (a partly linked HNSW graph whose rebuild failed too). */
    bool broken;
    pthread_rwlock_t lock;
};

const char *ee_vindex_kind_name(ee_vindex_kind k) {
    for (size_t i = 0; i < N_KINDS; i++)
        if (KINDS[i].kind == k) return KINDS[i].name;
    return "?";
}

int ee_vindex_kind_parse(const char *s, ee_vindex_kind *out, ee_err *err) {
    for (size_t i = 0; s && i < N_KINDS; i++)
        if (strcmp(s, KINDS[i].name) == 0) {
            *out = KINDS[i].kind;
            return 0;
        }
    return ee_err_set(err, "unknown vector index kind '%s' (flat, hnsw)", s ? s : "(null)");
}

static int resolve_opts(ee_vindex_opts *o, const ee_vindex_opts *in, ee_err *err) {
    *o = in ? *in : (ee_vindex_opts){0};
    if (!o->hnsw_m) o->hnsw_m = DEFAULT_HNSW_M;
    if (!o->ef_construction) o->ef_construction = DEFAULT_EF_CONSTRUCTION;
    if (!o->ef_search) o->ef_search = DEFAULT_EF_SEARCH;
    if (o->max_dead == 0) o->max_dead = DEFAULT_MAX_DEAD;
    if (o->hnsw_m < 2 || o->hnsw_m > 256)
        return ee_err_set(err, "vector index: hnsw_m %d is outside 2..256", o->hnsw_m);
    if (o->ef_construction < 1)
        return ee_err_set(err, "vector index: ef_construction %d is below 1", o->ef_construction);
    if (o->ef_search < 1) return ee_err_set(err, "vector index: ef_search %d is below 1", o->ef_search);
    if (!(o->max_dead > 0 && o->max_dead <= 1))
        return ee_err_set(err, "vector index: max_dead %g is outside (0, 1]", o->max_dead);
    return 0;
}

int ee_vindex_open(ee_vindex **out, ee_vindex_kind kind, int dim, const ee_vindex_opts *opts, ee_err *err) {
    if (!out) return ee_err_set(err, "vector index: NULL output pointer");
    *out = NULL;
    if (strcmp(ee_vindex_kind_name(kind), "?") == 0)
        return ee_err_set(err, "vector index: unknown kind %d (flat, hnsw)", (int)kind);
    if (dim < 1 || dim > EE_VINDEX_MAX_DIM)
        return ee_err_set(err, "vector index: dimension %d is outside 1..%d", dim, EE_VINDEX_MAX_DIM);
    ee_vindex_opts o;
    if (resolve_opts(&o, opts, err)) return -1;
    ee_vindex *ix = calloc(1, sizeof *ix);
    if (!ix) return ee_err_set(err, "vector index: out of memory");
    ix->kind = kind;
    ix->dim = dim;
    ix->opts = o;
    if (pthread_rwlock_init(&ix->lock, NULL) != 0) {
        free(ix);
        return ee_err_set(err, "vector index: cannot create its lock");
    }
    ix->fx = ee_vfaiss_open(dim, kind == EE_VINDEX_HNSW ? o.hnsw_m : 0, o.ef_construction, o.ef_search, err);
    if (!ix->fx) {
        pthread_rwlock_destroy(&ix->lock);
        free(ix);
        return ee_err_wrap(err, "vector index (%s, dim %d)", ee_vindex_kind_name(kind), dim);
    }
    *out = ix;
    return 0;
}

void ee_vindex_close(ee_vindex *ix) {
    if (!ix) return;
    ee_vfaiss_close(ix->fx);
    ee_idmap_free(&ix->map);
    free(ix->row_id);
    free(ix->live);
    pthread_rwlock_destroy(&ix->lock);
    free(ix);
}

/* Searches and size/stats take the lock for reading on a const index: the
 * lock is the one member that changes under a const pointer. */
static void rdlock(const ee_vindex *ix) { pthread_rwlock_rdlock((pthread_rwlock_t *)&ix->lock); }
static void unlock(const ee_vindex *ix) { pthread_rwlock_unlock((pthread_rwlock_t *)&ix->lock); }

static bool is_live(const ee_vindex *ix, size_t r) { return ix->live[r / 8] >> (r % 8) & 1; }
static void set_live(ee_vindex *ix, size_t r) { ix->live[r / 8] |= (uint8_t)(1u << (r % 8)); }

static void kill_row(ee_vindex *ix, size_t r) {
    ix->live[r / 8] &= (uint8_t) ~(1u << (r % 8));
    ix->row_id[r] = -1;
    ix->dead++;
}

/* Room for `need` rows in row_id and live (new bits clear). */
static int reserve_rows(ee_vindex *ix, size_t need, ee_err *err) {
    if (need <= ix->cap) return 0;
    size_t cap = ix->cap ? ix->cap : 64;
    while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    if (cap > SIZE_MAX / sizeof(int64_t)) return ee_err_set(err, "out of memory for %zu rows", need);
    int64_t *ids = realloc(ix->row_id, cap * sizeof *ids);
    if (!ids) return ee_err_set(err, "out of memory for %zu rows", need);
    ix->row_id = ids;
    size_t old_bytes = (ix->cap + 7) / 8, bytes = (cap + 7) / 8;
    uint8_t *live = realloc(ix->live, bytes);
    if (!live) return ee_err_set(err, "out of memory for %zu rows", need);
    memset(live + old_bytes, 0, bytes - old_bytes);
    ix->live = live;
    ix->cap = cap;
    return 0;
}

/* Drop dead rows from faiss and renumber. Returns 0, or -1 with err and the
 * index unchanged (faiss keeps the old rows on failure). */
static int compact(ee_vindex *ix, ee_err *err) {
    if (ee_vfaiss_compact(ix->fx, ix->live, err)) return -1;
    size_t j = 0;
    for (size_t r = 0; r < ix->rows; r++) {
        if (ix->row_id[r] < 0) continue;
        ix->row_id[j] = ix->row_id[r];
        ee_idmap_put(&ix->map, ix->row_id[j], (int64_t)j); /* an overwrite: cannot fail */
        j++;
    }
    memset(ix->live, 0, (ix->rows + 7) / 8);
    for (size_t r = 0; r < j; r++) set_live(ix, r);
    ix->rows = j;
    ix->dead = 0;
    ix->compactions++;
    return 0;
}

/* After an update: drop the dead rows once they pass max_dead. A failure
 * (out of memory while rebuilding a graph) is not the update's failure:
 * the tombstones keep results right, and the next update tries again. */
static void maybe_compact(ee_vindex *ix) {
    if (!ix->dead || (double)ix->dead <= ix->opts.max_dead * (double)ix->rows) return;
    ee_err ignored;
    if (compact(ix, &ignored)) ix->compact_fails++;
}

static int check_finite(const float *v, size_t n, int dim, const char *what, const int64_t *ids,
                        ee_err *err) {
    for (size_t i = 0; i < n; i++)
        for (int c = 0; c < dim; c++) {
            float x = v[i * (size_t)dim + (size_t)c];
            if (isfinite(x)) continue;
            const char *bad = isnan(x) ? "NaN" : "infinite";
            if (ids)
                return ee_err_set(err, "%s %zu (id %lld): component %d is %s", what, i, (long long)ids[i], c, bad);
            return ee_err_set(err, "%s %zu: component %d is %s", what, i, c, bad);
        }
    return 0;
}

static int check_unbroken(const ee_vindex *ix, const char *doing, ee_err *err) {
    if (!ix->broken) return 0;
    return ee_err_set(err, "%s: the index is unusable since an add failed and could not be undone; close it",
                      doing);
}

int ee_vindex_upsert(ee_vindex *ix, const int64_t *ids, const float *vecs, size_t n, ee_err *err) {
    if (!ix) return ee_err_set(err, "vector upsert: NULL index");
    if (n == 0) return 0;
    if (!ids || !vecs) return ee_err_set(err, "vector upsert: NULL %s for %zu vectors", !ids ? "ids" : "vectors", n);
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0)
            return ee_err_set(err, "vector upsert: id %lld (vector %zu) is negative (ids are >= 0; -1 marks an empty result)",
                              (long long)ids[i], i);
    if (n > SIZE_MAX / (size_t)ix->dim) return ee_err_set(err, "vector upsert: %zu vectors overflow", n);
    if (check_finite(vecs, n, ix->dim, "vector upsert: vector", ids, err)) return -1;

    pthread_rwlock_wrlock(&ix->lock);
    int rc = -1;
    if (check_unbroken(ix, "vector upsert", err)) goto out;
    if (n > EE_VINDEX_MAX_ROWS - ix->rows) {
        ee_err_set(err, "vector upsert: %zu more vectors exceed %u rows (%zu live, %zu dead)", n,
                   EE_VINDEX_MAX_ROWS, ix->rows - ix->dead, ix->dead);
        goto out;
    }
    size_t base = ix->rows;
    if (reserve_rows(ix, base + n, err) || ee_idmap_reserve(&ix->map, ix->map.n + n, err)) {
        ee_err_wrap(err, "vector upsert");
        goto out;
    }
    if (ee_vfaiss_add(ix->fx, vecs, n, err)) {
        /* faiss may hold some of the new rows: none is mapped, so tombstone
         * them. A graph may be half linked: rebuild it without them. */
        size_t now = ee_vfaiss_rows(ix->fx);
        for (size_t r = base; r < now && r < base + n; r++) kill_row(ix, r);
        ix->rows = now;
        if (now != base && ix->kind == EE_VINDEX_HNSW) {
            ee_err ignored;
            if (compact(ix, &ignored)) ix->broken = true;
        }
        ee_err_wrap(err, "vector upsert of %zu vectors", n);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        size_t r = base + i;
        int64_t old = ee_idmap_get(&ix->map, ids[i]);
        if (old >= 0) kill_row(ix, (size_t)old);
        ee_idmap_put(&ix->map, ids[i], (int64_t)r); /* reserved above */
        ix->row_id[r] = ids[i];
        set_live(ix, r);
    }
    ix->rows = base + n;
    maybe_compact(ix);
    rc = 0;
out:
    pthread_rwlock_unlock(&ix->lock);
    return rc;
}

int ee_vindex_remove(ee_vindex *ix, int64_t id, ee_err *err) {
    if (!ix) return ee_err_set(err, "vector remove: NULL index");
    pthread_rwlock_wrlock(&ix->lock);
    int rc = check_unbroken(ix, "vector remove", err);
    int64_t r = rc ? -1 : ee_idmap_get(&ix->map, id);
    if (r >= 0) {
        ee_idmap_del(&ix->map, id);
        kill_row(ix, (size_t)r);
        maybe_compact(ix);
    }
    pthread_rwlock_unlock(&ix->lock);
    return rc;
}

size_t ee_vindex_size(const ee_vindex *ix) {
    if (!ix) return 0;
    rdlock(ix);
    size_t n = ix->rows - ix->dead;
    unlock(ix);
    return n;
}

void ee_vindex_stats_get(const ee_vindex *ix, ee_vindex_stats *st) {
    memset(st, 0, sizeof *st);
    if (!ix) return;
    rdlock(ix);
    st->live = ix->rows - ix->dead;
    st->dead = ix->dead;
    st->compactions = ix->compactions;
    st->compact_fails = ix->compact_fails;
    unlock(ix);
}

int ee_vindex_set_ef_search(ee_vindex *ix, int ef_search, ee_err *err) {
    if (!ix) return ee_err_set(err, "vector index: NULL index");
    if (ef_search < 1) return ee_err_set(err, "vector index: ef_search %d is below 1", ef_search);
    pthread_rwlock_wrlock(&ix->lock);
    ix->opts.ef_search = ef_search;
    ee_vfaiss_set_ef_search(ix->fx, ef_search);
    pthread_rwlock_unlock(&ix->lock);
    return 0;
}

int ee_vindex_search(const ee_vindex *ix, const float *queries, size_t nq, int k, int64_t *ids,
                     float *scores, ee_err *err) {
    if (!ix) return ee_err_set(err, "vector search: NULL index");
    if (k < 1) return ee_err_set(err, "vector search: k %d is below 1", k);
    if (nq == 0) return 0;
    if (!queries || !ids || !scores)
        return ee_err_set(err, "vector search: NULL %s", !queries ? "queries" : !ids ? "ids" : "scores");
    if (nq > SIZE_MAX / (size_t)k / sizeof *ids || nq > SIZE_MAX / (size_t)ix->dim)
        return ee_err_set(err, "vector search: %zu queries of k %d overflow", nq, k);
    if (check_finite(queries, nq, ix->dim, "vector search: query", NULL, err)) return -1;

    rdlock(ix);
    int rc = check_unbroken(ix, "vector search", err);
    size_t live = ix->rows - ix->dead;
    /* faiss is asked for at most as many results as there are live rows
     * (no heap of a huge k for a small index); the rest is filled here. */
    int kk = live < (size_t)k ? (int)live : k;
    if (!rc && kk > 0) {
        /* faiss writes rows into ids; they become ids in place below. */
        rc = ee_vfaiss_search(ix->fx, queries, nq, kk, ix->dead ? ix->live : NULL, ids, scores, err);
        if (rc) ee_err_wrap(err, "vector search (%s, %zu live)", ee_vindex_kind_name(ix->kind), live);
    }
    if (!rc) {
        /* Spread rows of kk to rows of k, from the back: a slot is written
         * only after every source at or before it was read. */
        for (size_t q = nq; q-- > 0;)
            for (int i = k; i-- > 0;) {
                size_t dst = q * (size_t)k + (size_t)i;
                int64_t r = -1;
                float s = 0;
                if (i < kk) {
                    size_t src = q * (size_t)kk + (size_t)i;
                    r = ids[src];
                    s = scores[src];
                }
                bool ok = r >= 0 && (size_t)r < ix->rows && is_live(ix, (size_t)r);
                ids[dst] = ok ? ix->row_id[r] : -1;
                scores[dst] = ok ? s : -INFINITY;
            }
    }
    unlock(ix);
    return rc;
}
