/* ee_vindex_faiss: the C++ bridge to faiss (see ee_vindex_faiss.h for why
 * it exists). The only C++ in core/: everything else stays C11.
 *
 * Build facts (Debian libfaiss-dev 1.7.3, /usr/lib/x86_64-linux-gnu/libfaiss.a):
 *   - static, C++ classes only: no faiss_* C symbol, hence this file;
 *   - needs BLAS/LAPACK (sgemm_, ssyrk_, sgesvd_, ...; OpenBLAS here),
 *     OpenMP (GOMP_*) and libstdc++ on the link line (Makefile FAISS_LIBS);
 *   - built for baseline x86-64: no object uses a ymm register, so its own
 *     distance loops (HNSW, flat search of fewer than 20 queries) are SSE;
 *     flat search of 20+ queries is one sgemm, which OpenBLAS runs with
 *     the CPU's best kernels.
 *
 * Every entry point catches everything: an exception that reached the C
 * caller would be undefined behaviour. */
#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/impl/IDSelector.h>

#include <algorithm>
#include <cstring>
#include <exception>
#include <memory>
#include <new>
#include <stdexcept>
#include <vector>

/* C linkage for ee_error.h too, which has no C++ guards of its own. */
extern "C" {
#include "ee_vindex_faiss.h"
}

struct ee_vfaiss {
    std::unique_ptr<faiss::Index> index;
    int dim;
    int hnsw_m; /* 0: flat */
    int ef_construction;
    int ef_search;
};

namespace {

/* faiss messages read "Error in <signature> at <file>:<line>: <message>";
 * the signature is a line of C++ types, so keep the message and the
 * place: "<message> (<file>:<line>)". */
int fail(ee_err *err, const char *doing, const std::exception &e) {
    const char *w = e.what();
    const char *at = std::strncmp(w, "Error in ", 9) == 0 ? std::strstr(w, " at ") : nullptr;
    const char *colon = at ? std::strstr(at + 4, ": ") : nullptr;
    if (colon) {
        const char *file = at + 4;
        for (const char *p = file; p < colon; p++)
            if (*p == '/') file = p + 1;
        return ee_err_set(err, "faiss: %s: %s (%.*s)", doing, colon + 2, (int)(colon - file), file);
    }
    return ee_err_set(err, "faiss: %s: %s", doing, w);
}

int fail_unknown(ee_err *err, const char *doing) {
    return ee_err_set(err, "faiss: %s: unknown C++ exception", doing);
}

std::unique_ptr<faiss::Index> make_index(int dim, int hnsw_m, int ef_construction, int ef_search) {
    if (!hnsw_m) return std::unique_ptr<faiss::Index>(new faiss::IndexFlatIP(dim));
    auto *h = new faiss::IndexHNSWFlat(dim, hnsw_m, faiss::METRIC_INNER_PRODUCT);
    h->hnsw.efConstruction = ef_construction;
    h->hnsw.efSearch = ef_search;
    return std::unique_ptr<faiss::Index>(h);
}

/* The raw vectors of either kind (an HNSWFlat keeps them in an IndexFlat). */
const float *vectors_of(const ee_vfaiss *f) {
    const faiss::Index *store = f->index.get();
    if (f->hnsw_m) store = static_cast<const faiss::IndexHNSW *>(store)->storage;
    auto *flat = dynamic_cast<const faiss::IndexFlat *>(store);
    if (!flat) throw std::logic_error("vector storage is not an IndexFlat");
    return flat->get_xb();
}

bool bit(const uint8_t *live, size_t r) { return live[r / 8] >> (r % 8) & 1; }

} // namespace

extern "C" ee_vfaiss *ee_vfaiss_open(int dim, int hnsw_m, int ef_construction, int ef_search, ee_err *err) {
    try {
        std::unique_ptr<ee_vfaiss> f(new ee_vfaiss);
        f->index = make_index(dim, hnsw_m, ef_construction, ef_search);
        f->dim = dim;
        f->hnsw_m = hnsw_m;
        f->ef_construction = ef_construction;
        f->ef_search = ef_search;
        return f.release();
    } catch (const std::exception &e) {
        fail(err, "creating the index", e);
    } catch (...) {
        fail_unknown(err, "creating the index");
    }
    return nullptr;
}

extern "C" void ee_vfaiss_close(ee_vfaiss *f) {
    try {
        delete f;
    } catch (...) {
        /* A destructor that throws would terminate: nothing to report to. */
    }
}

extern "C" void ee_vfaiss_set_ef_search(ee_vfaiss *f, int ef_search) {
    f->ef_search = ef_search;
    if (f->hnsw_m) static_cast<faiss::IndexHNSW *>(f->index.get())->hnsw.efSearch = ef_search;
}

extern "C" size_t ee_vfaiss_rows(const ee_vfaiss *f) { return (size_t)f->index->ntotal; }

extern "C" int ee_vfaiss_add(ee_vfaiss *f, const float *x, size_t n, ee_err *err) {
    try {
        f->index->add((faiss::Index::idx_t)n, x);
        return 0;
    } catch (const std::exception &e) {
        return fail(err, "adding vectors", e);
    } catch (...) {
        return fail_unknown(err, "adding vectors");
    }
}

extern "C" int ee_vfaiss_search(const ee_vfaiss *f, const float *q, size_t nq, int k, const uint8_t *live,
                                int64_t *rows, float *scores, ee_err *err) {
    try {
        size_t nbytes = ((size_t)f->index->ntotal + 7) / 8;
        faiss::IDSelectorBitmap sel(nbytes, live);
        /* IndexHNSW::search insists on SearchParametersHNSW when given
         * parameters at all; it then takes only their selector (efSearch
         * comes from the index, see ee_vfaiss_set_ef_search). */
        faiss::SearchParametersHNSW hp;
        faiss::SearchParameters fp;
        faiss::SearchParameters *p = f->hnsw_m ? &hp : &fp;
        if (f->hnsw_m) hp.efSearch = f->ef_search;
        p->sel = live ? &sel : nullptr;
        f->index->search((faiss::Index::idx_t)nq, q, k, scores, rows, live ? p : nullptr);
        return 0;
    } catch (const std::exception &e) {
        return fail(err, "searching", e);
    } catch (...) {
        return fail_unknown(err, "searching");
    }
}

extern "C" int ee_vfaiss_compact(ee_vfaiss *f, const uint8_t *live, ee_err *err) {
    try {
        size_t n = (size_t)f->index->ntotal;
        if (!f->hnsw_m) {
            /* Flat rows are just an array: remove_ids closes the gaps in
             * place, keeping the order. */
            faiss::IDSelectorBitmap keep((n + 7) / 8, live);
            faiss::IDSelectorNot drop(&keep);
            f->index->remove_ids(drop);
            return 0;
        }
        /* A graph cannot lose nodes in faiss: build a new one from the kept
         * vectors, a chunk at a time (bounded extra memory), and swap it in
         * only when complete. */
        std::unique_ptr<faiss::Index> fresh = make_index(f->dim, f->hnsw_m, f->ef_construction, f->ef_search);
        const float *xb = vectors_of(f);
        const size_t chunk = 16384, d = (size_t)f->dim;
        std::vector<float> buf;
        buf.reserve(std::min(chunk, n) * d);
        for (size_t r = 0; r < n; r++) {
            if (bit(live, r)) buf.insert(buf.end(), xb + r * d, xb + (r + 1) * d);
            if (buf.size() == chunk * d || (r + 1 == n && !buf.empty())) {
                fresh->add((faiss::Index::idx_t)(buf.size() / d), buf.data());
                buf.clear();
            }
        }
        f->index.swap(fresh);
        return 0;
    } catch (const std::exception &e) {
        return fail(err, "compacting the index", e);
    } catch (...) {
        return fail_unknown(err, "compacting the index");
    }
}
