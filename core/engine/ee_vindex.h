/* ee_vindex: a vector index for blind retrieval (top-k by inner product).
 *
 * Two kinds, on faiss (through the bridge ee_vindex_faiss.cpp):
 *   flat  exact search over every stored vector (faiss IndexFlatIP);
 *   hnsw  approximate search on an HNSW graph (IndexHNSWFlat): much faster
 *         on large sets, recall below 1 (docs/BENCHMARKS.md "Vector search").
 * Vectors are used as given: for cosine similarity callers pass
 * L2-normalised vectors. Inner products are invariant under any orthogonal
 * map applied to stored and query vectors alike (a permutation, a
 * rotation), so a worker can search vectors it only sees encrypted that
 * way and get the plaintext answer (tests/unit/test_vindex.c checks it).
 *
 * Ids are the caller's, any value >= 0 (-1 marks an empty result slot).
 * An upsert of a stored id replaces its vector; a removed id is gone from
 * every later result. faiss cannot remove a node from an HNSW graph, so
 * both kinds tombstone: a replaced or removed vector's row stays in faiss
 * but is excluded from searches (a faiss IDSelector over the live rows, so
 * k live results still come back), and when dead rows exceed max_dead of
 * all rows the next update drops them (flat: in place; hnsw: the graph is
 * rebuilt from the live vectors, which costs a build).
 *
 * Vectors and queries must be finite: a NaN or infinity is an error that
 * names the vector and component (faiss would otherwise return garbage
 * order silently).
 *
 * Thread safety: searches run concurrently with each other (a read lock;
 * faiss searches are const), updates take the lock exclusively. Each
 * search also uses faiss's OpenMP threads over its queries, and a flat
 * search of 20 or more queries is one OpenBLAS sgemm: call
 * ee_compute_init first, as every binary that computes does (OpenBLAS's
 * own thread pool off; with it on, its spinning threads and faiss's
 * OpenMP team starved each other, 90 ms instead of 6 per batch of 32 on
 * 10k vectors).
 *
 * Errors: -1 with ee_err naming the problem; nothing is printed. */
#ifndef EE_VINDEX_H
#define EE_VINDEX_H

#include "ee_error.h"

#include <stddef.h>
#include <stdint.h>

typedef enum { EE_VINDEX_FLAT = 0, EE_VINDEX_HNSW } ee_vindex_kind;

#define EE_VINDEX_MAX_DIM 65536
/* faiss's HNSW numbers nodes with int: rows (live + dead) stay below this. */
#define EE_VINDEX_MAX_ROWS 2147483647u

/* 0 in a field means its default. HNSW fields are ignored by flat. */
typedef struct ee_vindex_opts {
    int hnsw_m;          /* graph degree, 2..256; default 32 */
    int ef_construction; /* candidates while building, >= 1; default 80 */
    int ef_search;       /* candidates while searching, >= 1; default 64 (raised to k when k is larger) */
    double max_dead;     /* drop dead rows past this fraction of rows, (0, 1]; default 0.25 */
} ee_vindex_opts;

typedef struct ee_vindex ee_vindex;

/* opts NULL: all defaults. dim 1..EE_VINDEX_MAX_DIM. */
int ee_vindex_open(ee_vindex **out, ee_vindex_kind kind, int dim, const ee_vindex_opts *opts, ee_err *err);
void ee_vindex_close(ee_vindex *ix); /* NULL is fine */

/* Add or replace n vectors (n * dim floats) under ids. Within one call a
 * repeated id keeps its last vector. Checks every id and component before
 * changing anything. */
int ee_vindex_upsert(ee_vindex *ix, const int64_t *ids, const float *vecs, size_t n, ee_err *err);
/* Remove id; an absent id is not an error. */
int ee_vindex_remove(ee_vindex *ix, int64_t id, ee_err *err);
/* Live vectors. */
size_t ee_vindex_size(const ee_vindex *ix);

/* For each of nq queries (nq * dim floats) the top k ids by inner product,
 * best first, into ids[q * k + i] and scores[q * k + i]. Fewer than k
 * results (the index is smaller, or HNSW found fewer live vectors) leave
 * id -1 and score -INFINITY in the remaining slots. Ties are in faiss's
 * order. */
int ee_vindex_search(const ee_vindex *ix, const float *queries, size_t nq, int k, int64_t *ids,
                     float *scores, ee_err *err);

/* Change HNSW's search breadth (flat: accepted, no effect). An update:
 * it waits for running searches (faiss keeps it in the index). */
int ee_vindex_set_ef_search(ee_vindex *ix, int ef_search, ee_err *err);

typedef struct ee_vindex_stats {
    size_t live;          /* = ee_vindex_size */
    size_t dead;          /* tombstoned rows still in faiss */
    size_t compactions;   /* times dead rows were dropped */
    size_t compact_fails; /* a failed drop (out of memory) is retried at the next update; results stay right */
} ee_vindex_stats;
void ee_vindex_stats_get(const ee_vindex *ix, ee_vindex_stats *st);

/* "flat", "hnsw"; "?" for a value outside the enum. */
const char *ee_vindex_kind_name(ee_vindex_kind k);
int ee_vindex_kind_parse(const char *s, ee_vindex_kind *out, ee_err *err);

#endif
