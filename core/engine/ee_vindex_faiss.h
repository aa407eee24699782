/* ee_vindex_faiss: the C++ bridge to faiss, used only by ee_vindex.c.
 *
 * Why C++ here: Debian's libfaiss-dev (1.7.3) installs the c_api headers
 * but its only library, libfaiss.a, is static and holds the C++ classes
 * alone (`nm libfaiss.a | grep -c ' T faiss_'` is 0). So this bridge, the
 * one C++ file in core/, exposes exactly the calls ee_vindex needs, with C
 * linkage. Every C++ exception (faiss throws FaissException, the standard
 * library bad_alloc) is caught in the bridge and becomes an ee_err message:
 * none crosses into C.
 *
 * An index here knows rows, not ids: faiss numbers vectors 0, 1, ... in the
 * order they were added, and ee_vindex maps its callers' ids to those rows.
 * Scores are inner products (METRIC_INNER_PRODUCT), best first.
 *
 * Thread safety is faiss's: searches may run concurrently with each other,
 * an add or compact needs all searches excluded (ee_vindex's lock). */
#ifndef EE_VINDEX_FAISS_H
#define EE_VINDEX_FAISS_H

#include "ee_error.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ee_vfaiss ee_vfaiss;

/* hnsw_m 0: exact search (IndexFlatIP); else an HNSW graph of degree
 * hnsw_m built with ef_construction and searched with ef_search
 * (IndexHNSWFlat). */
ee_vfaiss *ee_vfaiss_open(int dim, int hnsw_m, int ef_construction, int ef_search, ee_err *err);
void ee_vfaiss_close(ee_vfaiss *f);

/* Rows held, dead or alive (faiss's ntotal). */
size_t ee_vfaiss_rows(const ee_vfaiss *f);

/* Append n vectors as rows ee_vfaiss_rows().. in order. On failure the
 * rows added may be fewer than n but more than 0 (see ee_vfaiss_rows). */
int ee_vfaiss_add(ee_vfaiss *f, const float *x, size_t n, ee_err *err);

/* Top k rows per query among the rows whose bit is set in live
 * (bit r % 8 of byte r / 8; NULL: all rows). rows and scores hold nq * k;
 * a slot with no row has row -1. */
int ee_vfaiss_search(const ee_vfaiss *f, const float *q, size_t nq, int k, const uint8_t *live,
                     int64_t *rows, float *scores, ee_err *err);

/* HNSW's search breadth (flat: no effect). A field of the index, not a
 * per-search parameter: faiss 1.7.3's IndexHNSW::search ignores the
 * efSearch of SearchParametersHNSW (measured: recall follows the field
 * only), so this is an update, made under the exclusive lock. */
void ee_vfaiss_set_ef_search(ee_vfaiss *f, int ef_search);

/* Keep only the rows whose bit is set in live, in their order, renumbered
 * from 0. Flat: removed in place. HNSW: the graph is rebuilt from the kept
 * vectors (faiss cannot remove from a graph), and the old one is kept
 * unchanged if that fails. */
int ee_vfaiss_compact(ee_vfaiss *f, const uint8_t *live, ee_err *err);

#ifdef __cplusplus
}
#endif

#endif
