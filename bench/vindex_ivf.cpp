/* The measurement behind ee_vindex's choice of HNSW over IVF-flat: faiss's
 * IndexIVFFlat (inner product, nlist = 4 sqrt(n) k-means cells, trained on
 * the stored vectors) on the same data as bench/vindex.c (same generator,
 * same seed), recall@10 against exact search and batch-1 latency for a
 * sweep of nprobe. C++ because it calls faiss directly (the product reaches
 * faiss only through core/engine/ee_vindex_faiss.cpp); not part of eeinfer.
 *
 *   bench-vindex-ivf [n] [random|clustered]      (default 10000 random) */
#include <faiss/IndexFlat.h>
#include <faiss/IndexIVFFlat.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

extern "C" void openblas_set_num_threads(int);

static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double gauss(uint64_t *s) {
    double u = ((double)(splitmix(s) >> 11) + 0.5) * 0x1.0p-53, v = (double)(splitmix(s) >> 11) * 0x1.0p-53;
    return std::sqrt(-2.0 * std::log(u)) * std::cos(2.0 * M_PI * v);
}

/* bench/vindex.c's make_data, line for line. */
static std::vector<float> make_data(bool clustered, size_t n, int d, const float *centres, size_t n_centres,
                                    uint64_t *s) {
    std::vector<float> v(n * (size_t)d);
    for (size_t i = 0; i < n; i++) {
        float *x = v.data() + i * (size_t)d;
        const float *c = clustered ? centres + (splitmix(s) % n_centres) * (size_t)d : nullptr;
        for (int j = 0; j < d; j++) x[j] = (float)(gauss(s) / std::sqrt((double)d)) + (c ? c[j] : 0.0f);
        double nn = 0;
        for (int j = 0; j < d; j++) nn += (double)x[j] * x[j];
        nn = std::sqrt(nn);
        for (int j = 0; j < d; j++) x[j] = (float)(x[j] / nn);
    }
    return v;
}

static double now_ms() {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

int main(int argc, char **argv) {
    openblas_set_num_threads(1); /* as ee_compute_init */
    size_t n = argc > 1 ? (size_t)atol(argv[1]) : 10000, nq = 1000;
    bool clustered = argc > 2 && std::strcmp(argv[2], "clustered") == 0;
    int d = 384, k = 10;
    uint64_t s = 1;
    size_t n_centres = n / 100 ? n / 100 : 1;
    std::vector<float> centres = make_data(false, n_centres, d, nullptr, 0, &s);
    std::vector<float> xb = make_data(clustered, n, d, centres.data(), n_centres, &s);
    std::vector<float> q = make_data(clustered, nq, d, centres.data(), n_centres, &s);

    faiss::IndexFlatIP flat(d);
    flat.add((faiss::Index::idx_t)n, xb.data());
    std::vector<float> D(nq * k);
    std::vector<faiss::Index::idx_t> ex(nq * k), got(nq * k);
    flat.search((faiss::Index::idx_t)nq, q.data(), k, D.data(), ex.data());

    size_t nlist = (size_t)(4 * std::sqrt((double)n));
    faiss::IndexFlatIP quantizer(d);
    faiss::IndexIVFFlat ivf(&quantizer, d, nlist, faiss::METRIC_INNER_PRODUCT);
    double t0 = now_ms();
    ivf.train((faiss::Index::idx_t)n, xb.data());
    double train = now_ms() - t0;
    t0 = now_ms();
    ivf.add((faiss::Index::idx_t)n, xb.data());
    double add = now_ms() - t0;
    printf("ivf-flat, %s, n %zu, dim %d, nlist %zu: train %.1f s, add %.1f s\n", clustered ? "clustered" : "random",
           n, d, nlist, train / 1e3, add / 1e3);
    printf("| nprobe | recall@10 | batch 1 p50 ms | p99 ms |\n| ---: | ---: | ---: | ---: |\n");
    for (int nprobe : {1, 4, 16, 64}) {
        ivf.nprobe = (size_t)nprobe;
        ivf.search((faiss::Index::idx_t)nq, q.data(), k, D.data(), got.data());
        size_t hit = 0;
        for (size_t i = 0; i < nq; i++)
            for (int a = 0; a < k; a++)
                for (int b = 0; b < k; b++)
                    if (got[i * k + a] == ex[i * k + b]) hit++;
        std::vector<double> t(500);
        for (size_t i = 0; i < t.size(); i++) {
            double t1 = now_ms();
            ivf.search(1, q.data() + i * d, k, D.data(), got.data());
            t[i] = now_ms() - t1;
        }
        std::sort(t.begin(), t.end());
        printf("| %d | %.3f | %.3f | %.3f |\n", nprobe, (double)hit / (double)(nq * k), t[249], t[494]);
    }
    return 0;
}
