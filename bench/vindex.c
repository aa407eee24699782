/* Vector search through core/engine/ee_vindex (faiss): for flat and HNSW,
 * build time, search latency p50/p99 at batch 1 and batch 32, and
 * recall@10 of HNSW against flat for a sweep of efSearch, on random unit
 * vectors (HNSW's worst case: no structure) and on clustered ones (closer
 * to real embeddings). Prints a Markdown table; asserts nothing.
 *
 *   bench-vindex [--n 10000,100000] [--data random,clustered] [--dim 384]
 *                [--nq 1000] [--ef 16,32,64,128,256] [--seed 1] [--threads N]
 *
 * Recall@10 = |HNSW top 10 ∩ flat top 10| / 10, averaged over nq queries
 * drawn from the same distribution as the stored vectors (not stored
 * themselves). Latency is wall time of one ee_vindex_search call. */
#include "ee_clock.h"
#include "ee_compute.h"
#include "ee_vindex.h"

#include <math.h>
#include <stdbool.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_LIST 16

static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double gauss(uint64_t *s) {
    double u = ((double)(splitmix(s) >> 11) + 0.5) * 0x1.0p-53, v = (double)(splitmix(s) >> 11) * 0x1.0p-53;
    return sqrt(-2.0 * log(u)) * cos(2.0 * M_PI * v);
}

static void normalise(float *v, int d) {
    double n = 0;
    for (int c = 0; c < d; c++) n += (double)v[c] * v[c];
    n = sqrt(n);
    for (int c = 0; c < d; c++) v[c] = (float)(v[c] / n);
}

/* random: Gaussian directions. clustered: n / 100 random unit centres, each
 * point a centre plus Gaussian noise of the same norm, normalised (cosine
 * to its own centre about 0.7, to another centre about 0). */
static float *make_data(const char *kind, size_t n, int d, const float *centres, size_t n_centres, uint64_t *s) {
    float *v = malloc(n * (size_t)d * sizeof *v);
    if (!v) return NULL;
    bool clustered = strcmp(kind, "clustered") == 0;
    for (size_t i = 0; i < n; i++) {
        float *x = v + i * (size_t)d;
        const float *c = clustered ? centres + (splitmix(s) % n_centres) * (size_t)d : NULL;
        for (int j = 0; j < d; j++) x[j] = (float)(gauss(s) / sqrt((double)d)) + (c ? c[j] : 0.0f);
        normalise(x, d);
    }
    return v;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double pct(double *v, size_t n, double p) {
    qsort(v, n, sizeof *v, cmp_double);
    size_t i = (size_t)ceil(p / 100.0 * (double)n);
    return v[i ? i - 1 : 0];
}

static void die(const char *what, const ee_err *err) {
    fprintf(stderr, "bench-vindex: %s: %s\n", what, err->msg);
    exit(1);
}

typedef struct {
    double p50_1, p99_1;   /* ms per call, batch 1 */
    double p50_32, p99_32; /* ms per call, batch 32 */
} latency;

/* Batch 1: one call per query over the first min(nq, 500) queries; batch
 * 32: calls of 32 queries over all nq (at least 20 calls, wrapping). */
static latency measure(const ee_vindex *ix, const float *q, size_t nq, int d, int64_t *ids, float *sc) {
    ee_err err = {{0}};
    latency l;
    size_t n1 = nq < 500 ? nq : 500;
    double *t = malloc((n1 > 64 ? n1 : 64) * sizeof *t);
    for (size_t i = 0; i < 10; i++) /* warm: OpenMP team, caches */
        if (ee_vindex_search(ix, q + (i % nq) * (size_t)d, 1, 10, ids, sc, &err)) die("search", &err);
    for (size_t i = 0; i < n1; i++) {
        double t0 = ee_now_ms();
        if (ee_vindex_search(ix, q + i * (size_t)d, 1, 10, ids, sc, &err)) die("search", &err);
        t[i] = ee_now_ms() - t0;
    }
    l.p50_1 = pct(t, n1, 50);
    l.p99_1 = pct(t, n1, 99);
    size_t nb = nq / 32 < 20 ? 20 : nq / 32, per = nq / 32 ? nq / 32 : 1;
    if (nb > 64) nb = 64;
    for (size_t b = 0; b < nb; b++) {
        const float *qb = q + ((b % per) * 32) * (size_t)d;
        double t0 = ee_now_ms();
        if (ee_vindex_search(ix, qb, nq < 32 ? nq : 32, 10, ids, sc, &err)) die("search", &err);
        t[b] = ee_now_ms() - t0;
    }
    l.p50_32 = pct(t, nb, 50);
    l.p99_32 = pct(t, nb, 99);
    free(t);
    return l;
}

static double recall10(const int64_t *a, const int64_t *ex, size_t nq) {
    size_t hit = 0;
    for (size_t q = 0; q < nq; q++)
        for (int i = 0; i < 10; i++)
            for (int j = 0; j < 10; j++)
                if (a[q * 10 + i] == ex[q * 10 + j]) {
                    hit++;
                    break;
                }
    return (double)hit / (double)(nq * 10);
}

static int parse_list(const char *s, long *out) {
    int n = 0;
    char *end;
    while (*s && n < MAX_LIST) {
        out[n++] = strtol(s, &end, 10);
        if (end == s) return -1;
        s = *end == ',' ? end + 1 : end;
    }
    return n;
}

static void machine(void) {
    char model[256] = "?", line[512];
    FILE *f = fopen("/proc/cpuinfo", "r");
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "model name", 10) == 0) {
            char *p = strchr(line, ':');
            if (p) snprintf(model, sizeof model, "%s", p + 2);
            model[strcspn(model, "\n")] = 0;
            break;
        }
    if (f) fclose(f);
    double load[3] = {0};
    f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf %lf %lf", &load[0], &load[1], &load[2]) != 3) load[0] = -1;
        fclose(f);
    }
    printf("machine: %s, nproc %ld, OpenMP threads %d, OpenBLAS %s kernels (1 thread), load average %.2f at "
           "start\n",
           model, sysconf(_SC_NPROCESSORS_ONLN), omp_get_max_threads(), ee_compute_blas_core(), load[0]);
}

int main(int argc, char **argv) {
    /* As every binary that computes: OpenBLAS's own thread pool off (one
     * OpenMP team; docs in ee_compute.h) and its best kernels. Without it
     * faiss's flat search of 32 queries (one sgemm, then OpenMP heaps) took
     * 90 ms instead of 5 at 10k: the two spinning pools starve each other. */
    ee_compute_init(argc, argv);
    long ns[MAX_LIST] = {10000, 100000}, efs[MAX_LIST] = {16, 32, 64, 128, 256};
    int n_ns = 2, n_efs = 5, d = 384;
    size_t nq = 1000;
    uint64_t seed = 1;
    const char *data_arg = "random,clustered";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) goto usage;
        if (!strcmp(a, "--n")) n_ns = parse_list(v, ns);
        else if (!strcmp(a, "--ef")) n_efs = parse_list(v, efs);
        else if (!strcmp(a, "--data")) data_arg = v;
        else if (!strcmp(a, "--dim")) d = atoi(v);
        else if (!strcmp(a, "--nq")) nq = (size_t)atol(v);
        else if (!strcmp(a, "--seed")) seed = (uint64_t)atoll(v);
        else if (!strcmp(a, "--threads")) omp_set_num_threads(atoi(v) > 0 ? atoi(v) : 1);
        else goto usage;
        i++;
    }
    if (n_ns < 1 || n_efs < 1 || d < 1 || nq < 1) goto usage;

    machine();
    ee_vindex_opts defaults = {0};
    printf("HNSW: M 32, efConstruction 80 (ee_vindex defaults); k 10; dim %d; %zu queries; latency in ms per "
           "call\n\n",
           d, nq);
    printf("| data | n | index | build s | recall@10 | batch 1 p50 | p99 | batch 32 p50 | p99 |\n");
    printf("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    fflush(stdout);

    char data_list[64];
    snprintf(data_list, sizeof data_list, "%s", data_arg);
    for (char *kind = strtok(data_list, ","); kind; kind = strtok(NULL, ",")) {
        if (strcmp(kind, "random") && strcmp(kind, "clustered")) goto usage;
        for (int ni = 0; ni < n_ns; ni++) {
            size_t n = (size_t)ns[ni];
            uint64_t s = seed;
            size_t n_centres = n / 100 ? n / 100 : 1;
            float *centres = make_data("random", n_centres, d, NULL, 0, &s);
            float *xb = make_data(kind, n, d, centres, n_centres, &s);
            float *q = make_data(kind, nq, d, centres, n_centres, &s);
            int64_t *ids = malloc(n * sizeof *ids), *ex = malloc(nq * 10 * sizeof *ex),
                    *got = malloc(nq * 10 * sizeof *got);
            float *sc = malloc(nq * 10 * sizeof *sc);
            if (!centres || !xb || !q || !ids || !ex || !got || !sc) {
                fprintf(stderr, "bench-vindex: out of memory\n");
                return 1;
            }
            for (size_t i = 0; i < n; i++) ids[i] = (int64_t)i;
            ee_err err = {{0}};
            for (int kindi = 0; kindi < 2; kindi++) {
                ee_vindex *ix = NULL;
                if (ee_vindex_open(&ix, (ee_vindex_kind)kindi, d, &defaults, &err)) die("open", &err);
                double t0 = ee_now_ms();
                if (ee_vindex_upsert(ix, ids, xb, n, &err)) die("upsert", &err);
                double build = (ee_now_ms() - t0) / 1e3;
                if (kindi == EE_VINDEX_FLAT) {
                    if (ee_vindex_search(ix, q, nq, 10, ex, sc, &err)) die("search", &err);
                    latency l = measure(ix, q, nq, d, got, sc);
                    printf("| %s | %zu | flat | %.2f | 1 | %.3f | %.3f | %.3f | %.3f |\n", kind, n, build, l.p50_1,
                           l.p99_1, l.p50_32, l.p99_32);
                } else {
                    for (int e = 0; e < n_efs; e++) {
                        if (ee_vindex_set_ef_search(ix, (int)efs[e], &err)) die("ef", &err);
                        if (ee_vindex_search(ix, q, nq, 10, got, sc, &err)) die("search", &err);
                        double r = recall10(got, ex, nq);
                        latency l = measure(ix, q, nq, d, got, sc);
                        char name[32];
                        snprintf(name, sizeof name, "hnsw ef %ld", efs[e]);
                        if (e == 0)
                            printf("| %s | %zu | %s | %.1f | %.3f | %.3f | %.3f | %.3f | %.3f |\n", kind, n, name,
                                   build, r, l.p50_1, l.p99_1, l.p50_32, l.p99_32);
                        else
                            printf("| | | %s | | %.3f | %.3f | %.3f | %.3f | %.3f |\n", name, r, l.p50_1, l.p99_1,
                                   l.p50_32, l.p99_32);
                        fflush(stdout);
                    }
                }
                fflush(stdout);
                ee_vindex_close(ix);
            }
            free(centres);
            free(xb);
            free(q);
            free(ids);
            free(ex);
            free(got);
            free(sc);
        }
    }
    return 0;
usage:
    fprintf(stderr, "usage: bench-vindex [--n 10000,100000] [--data random,clustered] [--dim 384] [--nq 1000] "
                    "[--ef 16,32,64,128,256] [--seed 1] [--threads N]\n");
    return 2;
}
