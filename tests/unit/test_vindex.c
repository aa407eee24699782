/* ee_vindex (engine layer, faiss through ee_vindex_faiss.cpp) and its id
 * map: flat search against a brute-force inner product computed here,
 * HNSW recall against flat, updates and tombstones, bad arguments, and the
 * invariance that makes blind search work (an orthogonal map applied to
 * stored and query vectors alike changes no result). */
#include "ee_idmap.h"
#include "ee_vindex.h"

#include "ee_testmodel.h"

#include <check.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers -------------------------------------------------------------- */

/* Check logs every passing ck_assert (a write to its log file each time),
 * which made loops of a million checks take minutes: these call Check
 * only on failure. */
#define REQUIRE(cond, ...)                       \
    do {                                         \
        if (!(cond)) ck_abort_msg(__VA_ARGS__);  \
    } while (0)
#define REQUIRE_TRUE(cond) REQUIRE(cond, "failed: %s", #cond)
#define REQUIRE_EQ(a, b)                                                                  \
    do {                                                                                  \
        long long a_ = (long long)(a), b_ = (long long)(b);                               \
        if (a_ != b_) ck_abort_msg("failed: %s == %s (%lld != %lld)", #a, #b, a_, b_);    \
    } while (0)

static double uniform(uint64_t *s) { return (double)(ee_test_splitmix64(s) >> 11) * 0x1.0p-53; }

static double gauss(uint64_t *s) {
    double u = uniform(s), v = uniform(s);
    return sqrt(-2.0 * log(u + 1e-300)) * cos(2.0 * M_PI * v);
}

/* n random unit vectors of dimension d (the distribution of normalised
 * embeddings with no structure: HNSW's hardest case). */
static float *unit_vectors(size_t n, int d, uint64_t seed) {
    float *v = malloc(n * (size_t)d * sizeof *v);
    ck_assert_ptr_nonnull(v);
    uint64_t s = seed;
    for (size_t i = 0; i < n; i++) {
        double norm = 0;
        for (int c = 0; c < d; c++) {
            double g = gauss(&s);
            v[i * d + c] = (float)g;
            norm += g * g;
        }
        norm = sqrt(norm);
        for (int c = 0; c < d; c++) v[i * d + c] = (float)(v[i * d + c] / norm);
    }
    return v;
}

static double dot(const float *a, const float *b, int d) {
    double s = 0;
    for (int c = 0; c < d; c++) s += (double)a[c] * b[c];
    return s;
}

typedef struct {
    double score;
    int64_t id;
} scored;

static int by_score_desc(const void *a, const void *b) {
    const scored *x = a, *y = b;
    if (x->score != y->score) return x->score < y->score ? 1 : -1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* The exact answer for one query: every stored (id, vector) scored in
 * double and sorted best first. Rows with id < 0 are skipped (removed). */
static scored *brute_force(const float *q, const float *xb, const int64_t *ids, size_t n, int d) {
    scored *all = malloc((n ? n : 1) * sizeof *all);
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (ids[i] >= 0) all[m++] = (scored){dot(q, xb + i * d, d), ids[i]};
    qsort(all, m, sizeof *all, by_score_desc);
    return all;
}

/* Check one query's k results against the exact ranking `exact` of m live
 * vectors: the score at each rank equals the exact score at that rank
 * (ties may come in any order, so ranks are compared by score), each id's
 * own exact score equals its reported score, ids are distinct, and when a
 * rank's score is clear of its neighbours the id is the exact one. Slots
 * past m are empty. */
static void check_exact(const int64_t *ids, const float *scores, int k, const scored *exact, size_t m,
                        const char *what) {
    const double tol = 1e-5;
    for (int i = 0; i < k; i++) {
        if ((size_t)i >= m) {
            REQUIRE(ids[i] == -1 && isinf(scores[i]) && scores[i] < 0,
                          "%s: slot %d of %zu live should be empty, got id %lld score %g", what, i, m,
                          (long long)ids[i], scores[i]);
            continue;
        }
        REQUIRE(fabs(scores[i] - exact[i].score) <= tol, "%s: rank %d score %.7f, exact %.7f", what, i,
                      scores[i], exact[i].score);
        double own = NAN;
        for (size_t j = 0; j < m; j++)
            if (exact[j].id == ids[i]) own = exact[j].score;
        REQUIRE(!isnan(own), "%s: rank %d id %lld is not a live id", what, i, (long long)ids[i]);
        REQUIRE(fabs(own - scores[i]) <= tol, "%s: id %lld reported %.7f, exact %.7f", what,
                      (long long)ids[i], scores[i], own);
        for (int j = 0; j < i; j++) REQUIRE(ids[j] != ids[i], "%s: id %lld twice", what, (long long)ids[i]);
        bool clear = (i == 0 || exact[i - 1].score - exact[i].score > 1e-4) &&
                     ((size_t)i + 1 >= m || exact[i].score - exact[i + 1].score > 1e-4);
        if (clear)
            REQUIRE(ids[i] == exact[i].id, "%s: rank %d id %lld, exact %lld", what, i, (long long)ids[i],
                          (long long)exact[i].id);
    }
}

static ee_vindex *open_ix(ee_vindex_kind kind, int d, const ee_vindex_opts *o) {
    ee_err err = {{0}};
    ee_vindex *ix = NULL;
    REQUIRE(ee_vindex_open(&ix, kind, d, o, &err) == 0, "%s", err.msg);
    return ix;
}

static void upsert_ok(ee_vindex *ix, const int64_t *ids, const float *v, size_t n) {
    ee_err err = {{0}};
    REQUIRE(ee_vindex_upsert(ix, ids, v, n, &err) == 0, "%s", err.msg);
}

static void search_ok(const ee_vindex *ix, const float *q, size_t nq, int k, int64_t *ids, float *sc) {
    ee_err err = {{0}};
    REQUIRE(ee_vindex_search(ix, q, nq, k, ids, sc, &err) == 0, "%s", err.msg);
}

static int64_t *seq_ids(size_t n, int64_t first, int64_t step) {
    int64_t *ids = malloc(n * sizeof *ids);
    for (size_t i = 0; i < n; i++) ids[i] = first + (int64_t)i * step;
    return ids;
}

/* Fraction of the exact top-10 found in the approximate top-10. */
static double recall10(const int64_t *approx, const int64_t *exact, size_t nq) {
    size_t hit = 0;
    for (size_t q = 0; q < nq; q++)
        for (int i = 0; i < 10; i++)
            for (int j = 0; j < 10; j++)
                if (approx[q * 10 + i] == exact[q * 10 + j] && exact[q * 10 + j] >= 0) {
                    hit++;
                    break;
                }
    return (double)hit / (double)(nq * 10);
}

/* ---- the id map ----------------------------------------------------------- */

START_TEST(idmap_matches_an_array_model) {
    /* 20,000 random puts, overwrites and deletes over 3,000 keys against a
     * plain array; backward-shift deletion must keep every key findable. */
    enum { KEYS = 3000 };
    int64_t *model = malloc(KEYS * sizeof *model);
    for (int i = 0; i < KEYS; i++) model[i] = -1;
    ee_idmap m = {0};
    ee_err err = {{0}};
    REQUIRE_EQ(ee_idmap_put(&m, 1, 1), -1); /* no room reserved */
    uint64_t s = 42;
    size_t n = 0;
    for (int step = 0; step < 20000; step++) {
        int64_t key = (int64_t)(ee_test_splitmix64(&s) % KEYS) * 7919; /* spread, not dense */
        int slot = (int)(key / 7919);
        if (ee_test_splitmix64(&s) % 3 == 0) {
            bool had = model[slot] >= 0;
            REQUIRE_EQ(ee_idmap_del(&m, key), had);
            if (had) n--;
            model[slot] = -1;
        } else {
            REQUIRE_EQ(ee_idmap_reserve(&m, m.n + 1, &err), 0);
            int64_t val = step;
            REQUIRE_EQ(ee_idmap_put(&m, key, val), 0);
            if (model[slot] < 0) n++;
            model[slot] = val;
        }
        REQUIRE_EQ(m.n, n);
        if (step % 1000 == 0)
            for (int i = 0; i < KEYS; i++) REQUIRE_EQ(ee_idmap_get(&m, (int64_t)i * 7919), model[i]);
    }
    for (int i = 0; i < KEYS; i++) REQUIRE_EQ(ee_idmap_get(&m, (int64_t)i * 7919), model[i]);
    REQUIRE_EQ(ee_idmap_get(&m, -5), -1);
    REQUIRE_EQ(ee_idmap_put(&m, -5, 1), -1);
    ee_idmap_clear(&m);
    REQUIRE_EQ(m.n, 0);
    REQUIRE_EQ(ee_idmap_get(&m, 0), -1);
    ee_idmap_free(&m);
    free(model);
}
END_TEST

/* ---- flat: exact ------------------------------------------------------------ */

START_TEST(flat_equals_brute_force) {
    /* dims 8..384, n up to 5000; 25 queries (faiss's sgemm path, 20 and
     * more) and 3 (its per-query path); k = 10 and k > n. */
    static const struct {
        int d;
        size_t n;
    } cases[] = {{8, 5000}, {17, 1}, {17, 300}, {64, 2000}, {384, 1500}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int d = cases[c].d;
        size_t n = cases[c].n;
        float *xb = unit_vectors(n, d, 100 + c);
        int64_t *ids = seq_ids(n, 1000, 3);
        ee_vindex *ix = open_ix(EE_VINDEX_FLAT, d, NULL);
        upsert_ok(ix, ids, xb, n);
        REQUIRE_EQ(ee_vindex_size(ix), n);
        for (int nq = 3; nq <= 25; nq += 22) {
            float *q = unit_vectors((size_t)nq, d, 900 + c);
            int ks[] = {10, (int)n + 7};
            for (int ki = 0; ki < 2; ki++) {
                int k = ks[ki];
                int64_t *got = malloc((size_t)nq * k * sizeof *got);
                float *sc = malloc((size_t)nq * k * sizeof *sc);
                search_ok(ix, q, (size_t)nq, k, got, sc);
                for (int i = 0; i < nq; i++) {
                    scored *ex = brute_force(q + (size_t)i * d, xb, ids, n, d);
                    char what[96];
                    snprintf(what, sizeof what, "d %d n %zu nq %d k %d query %d", d, n, nq, k, i);
                    check_exact(got + (size_t)i * k, sc + (size_t)i * k, k, ex, n, what);
                    free(ex);
                }
                free(got);
                free(sc);
            }
            free(q);
        }
        ee_vindex_close(ix);
        free(xb);
        free(ids);
    }
}
END_TEST

START_TEST(flat_ties_return_every_tied_id) {
    /* One vector under five ids among 200 others: its query's top 5 are
     * exactly those five, with equal scores. */
    int d = 32;
    size_t n = 200;
    float *xb = unit_vectors(n, d, 7);
    ee_vindex *ix = open_ix(EE_VINDEX_FLAT, d, NULL);
    int64_t *ids = seq_ids(n, 0, 1);
    upsert_ok(ix, ids, xb, n);
    int64_t twins[5] = {500, 501, 502, 503, 504};
    float *copies = malloc(5 * d * sizeof *copies);
    for (int i = 0; i < 5; i++) memcpy(copies + i * d, xb + 17 * d, d * sizeof *copies);
    upsert_ok(ix, twins, copies, 5);
    int64_t got[8];
    float sc[8];
    search_ok(ix, xb + 17 * d, 1, 8, got, sc);
    /* id 17 is a sixth copy: the top 6 are all tied at |v|^2 = 1. */
    bool seen[6] = {0};
    for (int i = 0; i < 6; i++) {
        REQUIRE(fabsf(sc[i] - sc[0]) < 1e-6 && fabsf(sc[i] - 1.0f) < 1e-5, "rank %d score %g", i, sc[i]);
        int slot = got[i] == 17 ? 5 : (int)(got[i] - 500);
        REQUIRE(slot >= 0 && slot < 6 && !seen[slot], "rank %d id %lld", i, (long long)got[i]);
        seen[slot] = true;
    }
    REQUIRE_TRUE(sc[6] < sc[5] - 1e-3);
    ee_vindex_close(ix);
    free(copies);
    free(ids);
    free(xb);
}
END_TEST

START_TEST(empty_index_and_k_beyond_size) {
    for (int kind = 0; kind < 2; kind++) {
        ee_vindex *ix = open_ix((ee_vindex_kind)kind, 16, NULL);
        float *q = unit_vectors(2, 16, 3);
        int64_t got[2 * 4];
        float sc[2 * 4];
        memset(got, 0x55, sizeof got);
        search_ok(ix, q, 2, 4, got, sc);
        for (int i = 0; i < 8; i++) REQUIRE_TRUE(got[i] == -1 && isinf(sc[i]) && sc[i] < 0);
        REQUIRE_EQ(ee_vindex_size(ix), 0);
        /* Two vectors, k 4: two results per query, then empty slots; and
         * after removing both, empty again. */
        float *xb = unit_vectors(2, 16, 4);
        int64_t ids[2] = {10, 20};
        upsert_ok(ix, ids, xb, 2);
        search_ok(ix, q, 2, 4, got, sc);
        for (int r = 0; r < 2; r++) {
            REQUIRE_TRUE(got[r * 4] >= 10 && got[r * 4 + 1] >= 10 && got[r * 4] != got[r * 4 + 1]);
            REQUIRE_TRUE(sc[r * 4] >= sc[r * 4 + 1]);
            REQUIRE_TRUE(got[r * 4 + 2] == -1 && got[r * 4 + 3] == -1);
        }
        ee_err err = {{0}};
        REQUIRE_EQ(ee_vindex_remove(ix, 10, &err), 0);
        REQUIRE_EQ(ee_vindex_remove(ix, 20, &err), 0);
        REQUIRE_EQ(ee_vindex_size(ix), 0);
        search_ok(ix, q, 2, 4, got, sc);
        for (int i = 0; i < 8; i++) REQUIRE_TRUE(got[i] == -1);
        /* nq 0 is a no-op, even with NULL buffers. */
        REQUIRE_EQ(ee_vindex_search(ix, NULL, 0, 4, NULL, NULL, &err), 0);
        ee_vindex_close(ix);
        free(q);
        free(xb);
    }
}
END_TEST

/* ---- updates ------------------------------------------------------------- */

START_TEST(upsert_replaces_and_remove_removes) {
    for (int kind = 0; kind < 2; kind++) {
        int d = 24;
        size_t n = 400;
        float *xb = unit_vectors(n, d, 11);
        float *nv = unit_vectors(n, d, 12); /* replacement vectors */
        int64_t *ids = seq_ids(n, 0, 1);
        ee_vindex *ix = open_ix((ee_vindex_kind)kind, d, NULL);
        upsert_ok(ix, ids, xb, n);
        int64_t got[10];
        float sc[10];
        /* Control: before any update, each vector finds itself first. */
        for (size_t i = 0; i < 40; i++) {
            search_ok(ix, xb + i * d, 1, 10, got, sc);
            REQUIRE_EQ(got[0], (int64_t)i);
        }
        /* Replace ids 0..39: their old vectors no longer find them (score
         * 1 is gone), the new vectors do, and the size is unchanged. */
        upsert_ok(ix, ids, nv, 40);
        REQUIRE_EQ(ee_vindex_size(ix), n);
        for (size_t i = 0; i < 40; i++) {
            search_ok(ix, nv + i * d, 1, 10, got, sc);
            REQUIRE_EQ(got[0], (int64_t)i);
            REQUIRE_TRUE(fabsf(sc[0] - 1.0f) < 1e-5);
            search_ok(ix, xb + i * d, 1, 10, got, sc);
            REQUIRE(got[0] != (int64_t)i || sc[0] < 0.99f, "id %zu still has its old vector", i);
        }
        /* One call with a repeated id keeps the last vector. */
        int64_t rep[3] = {5, 5, 5};
        float three[3 * 24];
        memcpy(three, xb + 100 * d, d * sizeof(float));
        memcpy(three + d, xb + 101 * d, d * sizeof(float));
        memcpy(three + 2 * d, nv + 300 * d, d * sizeof(float));
        upsert_ok(ix, rep, three, 3);
        REQUIRE_EQ(ee_vindex_size(ix), n);
        search_ok(ix, nv + 300 * d, 1, 1, got, sc);
        REQUIRE_EQ(got[0], 5);
        ee_vindex_stats st;
        ee_vindex_stats_get(ix, &st);
        REQUIRE_EQ(st.live, n);
        REQUIRE_EQ(st.dead, 43); /* 40 replaced, id 5 three more times */
        /* Remove 50..249 (half, so the dead rows pass 25% and are dropped):
         * none of them is ever returned, even for its own vector. */
        ee_err err = {{0}};
        for (int64_t id = 50; id < 250; id++) REQUIRE_EQ(ee_vindex_remove(ix, id, &err), 0);
        REQUIRE_EQ(ee_vindex_remove(ix, 99999, &err), 0); /* absent: fine */
        REQUIRE_EQ(ee_vindex_remove(ix, 60, &err), 0);    /* twice: fine */
        REQUIRE_EQ(ee_vindex_size(ix), n - 200);
        ee_vindex_stats_get(ix, &st);
        REQUIRE_TRUE(st.compactions >= 1);
        REQUIRE_EQ(st.compact_fails, 0);
        for (size_t i = 50; i < 250; i++) {
            search_ok(ix, xb + i * d, 1, 10, got, sc);
            for (int j = 0; j < 10; j++)
                REQUIRE(got[j] < 50 || got[j] >= 250, "removed id %lld returned", (long long)got[j]);
        }
        /* The survivors still find themselves after the compaction renumbered rows. */
        for (size_t i = 250; i < n; i += 7) {
            search_ok(ix, xb + i * d, 1, 1, got, sc);
            REQUIRE_EQ(got[0], (int64_t)i);
        }
        /* A removed id comes back with an upsert. */
        upsert_ok(ix, ids + 77, xb + 77 * d, 1);
        search_ok(ix, xb + 77 * d, 1, 1, got, sc);
        REQUIRE_EQ(got[0], 77);
        ee_vindex_close(ix);
        free(xb);
        free(nv);
        free(ids);
    }
}
END_TEST

START_TEST(flat_after_churn_equals_brute_force) {
    /* Random upserts and removes on a flat index (crossing several
     * compactions) give exactly the brute-force answer over what is left. */
    int d = 40;
    size_t universe = 1500;
    float *cur = calloc(universe * d, sizeof *cur);
    int64_t *cur_id = malloc(universe * sizeof *cur_id);
    for (size_t i = 0; i < universe; i++) cur_id[i] = -1;
    ee_vindex *ix = open_ix(EE_VINDEX_FLAT, d, NULL);
    uint64_t s = 5;
    ee_err err = {{0}};
    for (int round = 0; round < 30; round++) {
        size_t m = 100;
        float *v = unit_vectors(m, d, 1000 + round);
        int64_t ids[100];
        for (size_t i = 0; i < m; i++) {
            ids[i] = (int64_t)(ee_test_splitmix64(&s) % universe);
            memcpy(cur + ids[i] * d, v + i * d, d * sizeof *cur); /* last wins, as in the index */
            cur_id[ids[i]] = ids[i];
        }
        upsert_ok(ix, ids, v, m);
        for (int r = 0; r < 60; r++) {
            int64_t id = (int64_t)(ee_test_splitmix64(&s) % universe);
            REQUIRE_EQ(ee_vindex_remove(ix, id, &err), 0);
            cur_id[id] = -1;
        }
        free(v);
    }
    size_t live = 0;
    for (size_t i = 0; i < universe; i++) live += cur_id[i] >= 0;
    REQUIRE_EQ(ee_vindex_size(ix), live);
    ee_vindex_stats st;
    ee_vindex_stats_get(ix, &st);
    REQUIRE_TRUE(st.compactions >= 3);
    float *q = unit_vectors(21, d, 77);
    int k = 15;
    int64_t got[21 * 15];
    float sc[21 * 15];
    search_ok(ix, q, 21, k, got, sc);
    for (int i = 0; i < 21; i++) {
        scored *ex = brute_force(q + i * d, cur, cur_id, universe, d);
        check_exact(got + i * k, sc + i * k, k, ex, live, "after churn");
        free(ex);
    }
    ee_vindex_close(ix);
    free(q);
    free(cur);
    free(cur_id);
}
END_TEST

/* ---- bad arguments -------------------------------------------------------- */

#define EXPECT_ERR(call, needle)                                                               \
    do {                                                                                       \
        REQUIRE_EQ((call), -1);                                                          \
        REQUIRE(strstr(err.msg, needle), "want '%s' in: %s", needle, err.msg);           \
        memset(&err, 0, sizeof err);                                                           \
    } while (0)

START_TEST(bad_arguments_name_the_problem) {
    ee_err err = {{0}};
    ee_vindex *ix = (ee_vindex *)&err; /* must be reset to NULL on failure */
    EXPECT_ERR(ee_vindex_open(&ix, EE_VINDEX_FLAT, 0, NULL, &err), "dimension 0");
    ck_assert_ptr_null(ix);
    EXPECT_ERR(ee_vindex_open(&ix, EE_VINDEX_FLAT, EE_VINDEX_MAX_DIM + 1, NULL, &err), "outside 1..65536");
    EXPECT_ERR(ee_vindex_open(&ix, (ee_vindex_kind)7, 8, NULL, &err), "unknown kind 7");
    EXPECT_ERR(ee_vindex_open(NULL, EE_VINDEX_FLAT, 8, NULL, &err), "NULL output");
    ee_vindex_opts o = {.hnsw_m = 1};
    EXPECT_ERR(ee_vindex_open(&ix, EE_VINDEX_HNSW, 8, &o, &err), "hnsw_m 1");
    o = (ee_vindex_opts){.ef_search = -3};
    EXPECT_ERR(ee_vindex_open(&ix, EE_VINDEX_HNSW, 8, &o, &err), "ef_search -3");
    o = (ee_vindex_opts){.max_dead = 1.5};
    EXPECT_ERR(ee_vindex_open(&ix, EE_VINDEX_FLAT, 8, &o, &err), "max_dead 1.5");

    ix = open_ix(EE_VINDEX_FLAT, 4, NULL);
    float v[3 * 4] = {1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0};
    int64_t ids[3] = {1, 2, 3};
    upsert_ok(ix, ids, v, 3);
    int64_t got[4];
    float sc[4];
    EXPECT_ERR(ee_vindex_search(ix, v, 1, 0, got, sc, &err), "k 0 is below 1");
    EXPECT_ERR(ee_vindex_search(ix, v, 1, -2, got, sc, &err), "k -2");
    EXPECT_ERR(ee_vindex_search(ix, NULL, 1, 2, got, sc, &err), "NULL queries");
    EXPECT_ERR(ee_vindex_search(ix, v, 1, 2, NULL, sc, &err), "NULL ids");
    EXPECT_ERR(ee_vindex_search(ix, v, 1, 2, got, NULL, &err), "NULL scores");
    EXPECT_ERR(ee_vindex_search(NULL, v, 1, 2, got, sc, &err), "NULL index");
    EXPECT_ERR(ee_vindex_search(ix, v, SIZE_MAX / 2, 4, got, sc, &err), "overflow");
    /* Non-finite components are refused, naming vector, id and component,
     * and a refused upsert changes nothing. */
    float bad[2 * 4] = {1, 0, 0, 0, 0, 0, NAN, 0};
    int64_t bad_ids[2] = {8, 9};
    EXPECT_ERR(ee_vindex_upsert(ix, bad_ids, bad, 2, &err), "vector 1 (id 9): component 2 is NaN");
    REQUIRE_EQ(ee_vindex_size(ix), 3);
    bad[6] = INFINITY;
    EXPECT_ERR(ee_vindex_search(ix, bad, 2, 1, got, sc, &err), "query 1: component 2 is infinite");
    int64_t neg[2] = {4, -1};
    EXPECT_ERR(ee_vindex_upsert(ix, neg, v, 2, &err), "id -1 (vector 1) is negative");
    REQUIRE_EQ(ee_vindex_size(ix), 3);
    EXPECT_ERR(ee_vindex_upsert(ix, NULL, v, 1, &err), "NULL ids");
    EXPECT_ERR(ee_vindex_upsert(ix, ids, NULL, 1, &err), "NULL vectors");
    EXPECT_ERR(ee_vindex_upsert(NULL, ids, v, 1, &err), "NULL index");
    EXPECT_ERR(ee_vindex_remove(NULL, 1, &err), "NULL index");
    EXPECT_ERR(ee_vindex_set_ef_search(ix, 0, &err), "ef_search 0");
    REQUIRE_EQ(ee_vindex_upsert(ix, NULL, NULL, 0, &err), 0); /* n 0: nothing to do */
    /* NULL err is allowed everywhere. */
    REQUIRE_EQ(ee_vindex_search(ix, v, 1, 0, got, sc, NULL), -1);
    ee_vindex_close(ix);
    ee_vindex_close(NULL);

    ee_vindex_kind k = EE_VINDEX_FLAT;
    REQUIRE_EQ(ee_vindex_kind_parse("hnsw", &k, &err), 0);
    REQUIRE_EQ(k, EE_VINDEX_HNSW);
    ck_assert_str_eq(ee_vindex_kind_name(k), "hnsw");
    REQUIRE_EQ(ee_vindex_kind_parse("flat", &k, &err), 0);
    ck_assert_str_eq(ee_vindex_kind_name(k), "flat");
    ck_assert_str_eq(ee_vindex_kind_name((ee_vindex_kind)9), "?");
    EXPECT_ERR(ee_vindex_kind_parse("ivf", &k, &err), "unknown vector index kind 'ivf' (flat, hnsw)");
    EXPECT_ERR(ee_vindex_kind_parse(NULL, &k, &err), "(null)");
}
END_TEST

/* ---- HNSW ----------------------------------------------------------------- */

/* Recall@10 of HNSW (defaults: M 32, efConstruction 80, efSearch 64)
 * against flat on 10,000 random unit vectors of dimension 384 and 200
 * random unit queries. Random data is HNSW's worst case: with no clusters
 * every similarity crowds around 0 (sd 1/sqrt(384) = 0.05), so the true
 * top 10 barely stand out and a greedy graph walk misses many. Measured
 * here 0.607-0.612 over four runs (0.619-0.628 in bench-vindex, 1,000
 * queries), at efSearch 256 0.962-0.968: the thresholds sit about 10% and
 * 4% below, room for the run-to-run spread of a graph built by OpenMP
 * threads in no fixed order. They catch what matters: an efSearch that is
 * ignored (faiss 1.7.3's per-search parameter is: recall stayed at the
 * efSearch 16 value, 0.23, for every setting), a broken graph, a wrong
 * metric. Clustered data (hnsw_recall_on_clustered_data) is the realistic
 * case and must be near exact. */
#define HNSW_RECALL_MIN 0.55
#define HNSW_RECALL_MIN_EF256 0.93

START_TEST(hnsw_recall_against_flat) {
    int d = 384;
    size_t n = 10000, nq = 200;
    float *xb = unit_vectors(n, d, 2024);
    float *q = unit_vectors(nq, d, 4048);
    int64_t *ids = seq_ids(n, 0, 1);
    ee_vindex *flat = open_ix(EE_VINDEX_FLAT, d, NULL), *hnsw = open_ix(EE_VINDEX_HNSW, d, NULL);
    upsert_ok(flat, ids, xb, n);
    upsert_ok(hnsw, ids, xb, n);
    int64_t *ex = malloc(nq * 10 * sizeof *ex), *ap = malloc(nq * 10 * sizeof *ap);
    float *sc = malloc(nq * 10 * sizeof *sc);
    search_ok(flat, q, nq, 10, ex, sc);
    search_ok(hnsw, q, nq, 10, ap, sc);
    double r64 = recall10(ap, ex, nq);
    /* A wider search finds more: efSearch is the knob it should be. */
    ee_err err = {{0}};
    REQUIRE_EQ(ee_vindex_set_ef_search(hnsw, 16, &err), 0);
    search_ok(hnsw, q, nq, 10, ap, sc);
    double r16 = recall10(ap, ex, nq);
    REQUIRE_EQ(ee_vindex_set_ef_search(hnsw, 256, &err), 0);
    search_ok(hnsw, q, nq, 10, ap, sc);
    double r256 = recall10(ap, ex, nq);
    fprintf(stderr, "vindex: hnsw recall@10, 10k x 384 random: ef16 %.4f ef64 %.4f ef256 %.4f\n", r16, r64, r256);
    REQUIRE(r64 >= HNSW_RECALL_MIN, "recall@10 %.4f below %.2f", r64, HNSW_RECALL_MIN);
    REQUIRE(r256 >= HNSW_RECALL_MIN_EF256, "recall@10 at efSearch 256 %.4f below %.2f", r256, HNSW_RECALL_MIN_EF256);
    REQUIRE(r16 < r64 && r64 <= r256, "recall not monotone in efSearch: %.4f %.4f %.4f", r16, r64, r256);
    /* Negative control: the recall measure itself sees a wrong answer. */
    for (size_t i = 0; i < nq * 10; i++) ap[i] = (ex[i] + 1) % (int64_t)n;
    REQUIRE_TRUE(recall10(ap, ex, nq) < 0.05);
    ee_vindex_close(flat);
    ee_vindex_close(hnsw);
    free(xb);
    free(q);
    free(ids);
    free(ex);
    free(ap);
    free(sc);
}
END_TEST

START_TEST(hnsw_recall_on_clustered_data) {
    /* 10,000 unit vectors of dimension 384 around 100 random centres
     * (cosine about 0.5 within a cluster, 0 across: embeddings of topics),
     * 200 queries from the same mixture: recall@10 at the default
     * efSearch 64 is 1.000 in bench-vindex (1,000 queries). */
    int d = 384;
    size_t n = 10000, nq = 200, nc = 100;
    float *centres = unit_vectors(nc, d, 71);
    float *xb = unit_vectors(n, d, 72), *q = unit_vectors(nq, d, 73);
    uint64_t s = 74;
    for (size_t i = 0; i < n + nq; i++) {
        float *x = i < n ? xb + i * d : q + (i - n) * d;
        const float *c = centres + (ee_test_splitmix64(&s) % nc) * d;
        double norm = 0;
        for (int j = 0; j < d; j++) {
            x[j] += c[j];
            norm += (double)x[j] * x[j];
        }
        for (int j = 0; j < d; j++) x[j] = (float)(x[j] / sqrt(norm));
    }
    int64_t *ids = seq_ids(n, 0, 1);
    ee_vindex *flat = open_ix(EE_VINDEX_FLAT, d, NULL), *hnsw = open_ix(EE_VINDEX_HNSW, d, NULL);
    upsert_ok(flat, ids, xb, n);
    upsert_ok(hnsw, ids, xb, n);
    int64_t *ex = malloc(nq * 10 * sizeof *ex), *ap = malloc(nq * 10 * sizeof *ap);
    float *sc = malloc(nq * 10 * sizeof *sc);
    search_ok(flat, q, nq, 10, ex, sc);
    search_ok(hnsw, q, nq, 10, ap, sc);
    double r = recall10(ap, ex, nq);
    fprintf(stderr, "vindex: hnsw recall@10, 10k x 384 clustered: ef64 %.4f\n", r);
    REQUIRE(r >= 0.97, "recall@10 on clustered data %.4f below 0.97", r);
    ee_vindex_close(flat);
    ee_vindex_close(hnsw);
    free(centres);
    free(xb);
    free(q);
    free(ids);
    free(ex);
    free(ap);
    free(sc);
}
END_TEST

START_TEST(hnsw_removed_ids_never_appear) {
    /* 3,000 vectors; remove a random 40% in steps (crossing graph rebuilds)
     * and query with the removed vectors themselves, which would otherwise
     * rank their own id first. */
    int d = 48;
    size_t n = 3000;
    float *xb = unit_vectors(n, d, 31);
    int64_t *ids = seq_ids(n, 100000, 1);
    ee_vindex *ix = open_ix(EE_VINDEX_HNSW, d, NULL);
    upsert_ok(ix, ids, xb, n);
    bool *gone = calloc(n, sizeof *gone);
    uint64_t s = 99;
    ee_err err = {{0}};
    int64_t got[20];
    float sc[20];
    size_t removed = 0;
    while (removed < n * 2 / 5) {
        size_t i = ee_test_splitmix64(&s) % n;
        if (gone[i]) continue;
        /* Control: present until removed. */
        if (removed % 50 == 0) {
            search_ok(ix, xb + i * d, 1, 20, got, sc);
            REQUIRE_EQ(got[0], ids[i]);
        }
        REQUIRE_EQ(ee_vindex_remove(ix, ids[i], &err), 0);
        gone[i] = true;
        removed++;
    }
    ee_vindex_stats st;
    ee_vindex_stats_get(ix, &st);
    REQUIRE_TRUE(st.compactions >= 1);
    REQUIRE_EQ(st.live, n - removed);
    size_t self_found = 0, live_q = 0;
    for (size_t i = 0; i < n; i++) {
        search_ok(ix, xb + i * d, 1, 20, got, sc);
        for (int j = 0; j < 20; j++) {
            REQUIRE(got[j] >= 0, "fewer than 20 results from %zu live", n - removed);
            REQUIRE(!gone[got[j] - 100000], "removed id %lld returned", (long long)got[j]);
            if (j) REQUIRE_TRUE(sc[j] <= sc[j - 1]);
        }
        if (!gone[i]) {
            live_q++;
            self_found += got[0] == ids[i];
        }
    }
    /* The rebuilt graph still finds the survivors. */
    REQUIRE(self_found >= live_q * 99 / 100, "%zu of %zu survivors find themselves", self_found, live_q);
    ee_vindex_close(ix);
    free(gone);
    free(xb);
    free(ids);
}
END_TEST

/* ---- blind search: invariance under orthogonal maps ----------------------- */

/* A random orthogonal matrix (Gram-Schmidt twice on a Gaussian matrix, in
 * double), row-major d x d. */
static double *random_orthogonal(int d, uint64_t seed) {
    double *m = malloc((size_t)d * d * sizeof *m);
    uint64_t s = seed;
    for (int i = 0; i < d * d; i++) m[i] = gauss(&s);
    for (int i = 0; i < d; i++)
        for (int pass = 0; pass < 2; pass++) {
            for (int j = 0; j < i; j++) {
                double p = 0;
                for (int c = 0; c < d; c++) p += m[i * d + c] * m[j * d + c];
                for (int c = 0; c < d; c++) m[i * d + c] -= p * m[j * d + c];
            }
            double norm = 0;
            for (int c = 0; c < d; c++) norm += m[i * d + c] * m[i * d + c];
            norm = sqrt(norm);
            for (int c = 0; c < d; c++) m[i * d + c] /= norm;
        }
    return m;
}

static float *apply(const double *m, const float *x, size_t n, int d) {
    float *y = malloc(n * (size_t)d * sizeof *y);
    for (size_t i = 0; i < n; i++)
        for (int r = 0; r < d; r++) {
            double s = 0;
            for (int c = 0; c < d; c++) s += m[r * d + c] * x[i * d + c];
            y[i * d + r] = (float)s;
        }
    return y;
}

/* Top-k of plain and transformed data: same ids (a swap allowed only
 * between ranks whose scores are within tol), scores within 1e-5. Returns
 * the number of queries whose id lists differ at all. */
static size_t compare_topk(const int64_t *a, const float *sa, const int64_t *b, const float *sb, size_t nq,
                           int k, bool must_match) {
    size_t differ = 0;
    for (size_t q = 0; q < nq; q++) {
        bool same = memcmp(a + q * k, b + q * k, (size_t)k * sizeof *a) == 0;
        differ += !same;
        if (!must_match) continue;
        for (int i = 0; i < k; i++) {
            REQUIRE(fabsf(sa[q * k + i] - sb[q * k + i]) <= 1e-5f, "query %zu rank %d: %.7f vs %.7f", q, i,
                          sa[q * k + i], sb[q * k + i]);
            if (a[q * k + i] != b[q * k + i]) {
                bool tie = (i > 0 && sa[q * k + i - 1] - sa[q * k + i] <= 1e-5f) ||
                           (i + 1 < k && sa[q * k + i] - sa[q * k + i + 1] <= 1e-5f);
                REQUIRE(tie, "query %zu rank %d: id %lld vs %lld, not a tie", q, i, (long long)a[q * k + i],
                              (long long)b[q * k + i]);
            }
        }
    }
    return differ;
}

START_TEST(flat_invariant_under_permutation_and_rotation) {
    int d = 96, k = 10;
    size_t n = 3000, nq = 50;
    float *xb = unit_vectors(n, d, 555);
    float *q = unit_vectors(nq, d, 556);
    int64_t *ids = seq_ids(n, 7, 13);
    int64_t *r0 = malloc(nq * k * sizeof *r0), *r1 = malloc(nq * k * sizeof *r1);
    float *s0 = malloc(nq * k * sizeof *s0), *s1 = malloc(nq * k * sizeof *s1);

    ee_vindex *ix = open_ix(EE_VINDEX_FLAT, d, NULL);
    upsert_ok(ix, ids, xb, n);
    search_ok(ix, q, nq, k, r0, s0);
    ee_vindex_close(ix);

    /* 1. A random permutation of coordinates (the permutation part of EE). */
    double *perm = calloc((size_t)d * d, sizeof *perm);
    int *p = malloc(d * sizeof *p);
    for (int i = 0; i < d; i++) p[i] = i;
    uint64_t s = 8;
    for (int i = d - 1; i > 0; i--) {
        int j = (int)(ee_test_splitmix64(&s) % (uint64_t)(i + 1)), t = p[i];
        p[i] = p[j];
        p[j] = t;
    }
    for (int i = 0; i < d; i++) perm[i * d + p[i]] = 1;
    /* 2. A random rotation. 3. Negative control: a non-orthogonal map
     * (a random Gaussian matrix) must change results. */
    double *rot = random_orthogonal(d, 9);
    double *skew = malloc((size_t)d * d * sizeof *skew);
    for (int i = 0; i < d * d; i++) skew[i] = gauss(&s);
    const double *maps[3] = {perm, rot, skew};
    for (int mi = 0; mi < 3; mi++) {
        float *xt = apply(maps[mi], xb, n, d), *qt = apply(maps[mi], q, nq, d);
        ix = open_ix(EE_VINDEX_FLAT, d, NULL);
        upsert_ok(ix, ids, xt, n);
        search_ok(ix, qt, nq, k, r1, s1);
        ee_vindex_close(ix);
        size_t differ = compare_topk(r0, s0, r1, s1, nq, k, mi < 2);
        if (mi < 2) REQUIRE_EQ(differ, 0);
        else REQUIRE(differ > nq / 2, "a non-orthogonal map changed only %zu of %zu queries", differ, nq);
        free(xt);
        free(qt);
    }
    free(perm);
    free(p);
    free(rot);
    free(skew);
    free(xb);
    free(q);
    free(ids);
    free(r0);
    free(r1);
    free(s0);
    free(s1);
}
END_TEST

/* ---- threads -------------------------------------------------------------- */

typedef struct {
    ee_vindex *ix;
    const float *q;
    int d;
    int failures;
} searcher;

/* Ids 0..999 stay; ids 1000.. churn. A search may see any churn state but
 * must always return 10 valid, ordered results and the stable ids'
 * self-matches. */
static void *search_loop(void *arg) {
    searcher *sr = arg;
    int64_t got[10];
    float sc[10];
    for (int it = 0; it < 300; it++) {
        size_t i = (size_t)(it * 37 % 1000);
        if (ee_vindex_search(sr->ix, sr->q + i * sr->d, 1, 10, got, sc, NULL) != 0 || got[0] != (int64_t)i)
            sr->failures++;
        for (int j = 1; j < 10; j++)
            if (got[j] < 0 || sc[j] > sc[j - 1]) sr->failures++;
    }
    return NULL;
}

START_TEST(searches_run_alongside_updates) {
    for (int kind = 0; kind < 2; kind++) {
        int d = 32;
        float *xb = unit_vectors(1000, d, 61), *churn = unit_vectors(500, d, 62);
        int64_t *ids = seq_ids(1000, 0, 1), *cids = seq_ids(500, 1000, 1);
        ee_vindex *ix = open_ix((ee_vindex_kind)kind, d, NULL);
        upsert_ok(ix, ids, xb, 1000);
        searcher sr[3];
        pthread_t th[3];
        for (int t = 0; t < 3; t++) {
            sr[t] = (searcher){ix, xb, d, 0};
            REQUIRE_EQ(pthread_create(&th[t], NULL, search_loop, &sr[t]), 0);
        }
        ee_err err = {{0}};
        for (int round = 0; round < 20; round++) {
            upsert_ok(ix, cids, churn, 500);
            for (int64_t id = 1000; id < 1500; id += 2) REQUIRE_EQ(ee_vindex_remove(ix, id, &err), 0);
        }
        for (int t = 0; t < 3; t++) {
            pthread_join(th[t], NULL);
            REQUIRE(sr[t].failures == 0, "%s: searcher %d saw %d bad results", ee_vindex_kind_name(kind), t,
                          sr[t].failures);
        }
        ee_vindex_close(ix);
        free(xb);
        free(churn);
        free(ids);
        free(cids);
    }
}
END_TEST

Suite *suite_vindex(void) {
    Suite *s = suite_create("vindex");
    TCase *tc = tcase_create("vindex");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, idmap_matches_an_array_model);
    tcase_add_test(tc, flat_equals_brute_force);
    tcase_add_test(tc, flat_ties_return_every_tied_id);
    tcase_add_test(tc, empty_index_and_k_beyond_size);
    tcase_add_test(tc, upsert_replaces_and_remove_removes);
    tcase_add_test(tc, flat_after_churn_equals_brute_force);
    tcase_add_test(tc, bad_arguments_name_the_problem);
    tcase_add_test(tc, hnsw_recall_against_flat);
    tcase_add_test(tc, hnsw_recall_on_clustered_data);
    tcase_add_test(tc, hnsw_removed_ids_never_appear);
    tcase_add_test(tc, flat_invariant_under_permutation_and_rotation);
    tcase_add_test(tc, searches_run_alongside_updates);
    suite_add_tcase(s, tc);
    return s;
}
