/* Machine limits for the roofline in docs/BENCHMARKS.md: DRAM read
 * bandwidth (1 and 2 threads) and OpenBLAS sgemm throughput at the sizes a
 * SmolLM2 prefill uses. Prints measured numbers; asserts nothing. */
#include "ee_clock.h"
#include "ee_compute.h"

#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static double read_bw(const float *buf, size_t n, int threads, double *sink) {
    double best = 0;
    for (int rep = 0; rep < 5; rep++) {
        double t0 = ee_now_ms(), total = 0;
#pragma omp parallel num_threads(threads) reduction(+ : total)
        {
            /* 64 independent lanes (4 zmm accumulators) so the loop is bound
             * by memory, not by add latency. */
            float acc[64] = {0};
            int id = omp_get_thread_num(), nt = omp_get_num_threads();
            size_t per = n / nt, a = id * per, b = a + per;
            for (size_t i = a; i < b; i += 64)
                for (int k = 0; k < 64; k++) acc[k] += buf[i + k];
            for (int k = 0; k < 64; k++) total += acc[k];
        }
        double ms = ee_now_ms() - t0;
        *sink += total;
        double gbs = n * sizeof(float) / (ms / 1e3) / 1e9;
        if (gbs > best) best = gbs;
    }
    return best;
}

int main(int argc, char **argv) {
    ee_compute_init(argc, argv);
    size_t n = (size_t)1 << 28; /* 1 GiB of floats: far beyond the 32 MiB L3 */
    float *buf = malloc(n * sizeof(float));
    if (!buf) return 1;
    for (size_t i = 0; i < n; i++) buf[i] = (float)(i & 1023);
    double sink = 0;
    printf("BLAS core: %s\n", ee_compute_blas_core());
    for (int t = 1; t <= 2; t++)
        printf("DRAM read bandwidth, %d thread(s): %.1f GB/s\n", t, read_bw(buf, n, t, &sink));
    free(buf);
    /* sgemm at prefill shapes: X[512][576] x W^T[576][1536] and the FFN down. */
    int shapes[][3] = {{512, 1536, 576}, {512, 576, 1536}, {512, 576, 576}};
    for (int t = 1; t <= 2; t++) {
        ee_compute_set_threads(t);
        double flop = 0, ms = 0;
        for (int s = 0; s < 3; s++) {
            int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
            float *a = calloc((size_t)M * K, 4), *b = calloc((size_t)N * K, 4), *c = calloc((size_t)M * N, 4);
            for (int rep = 0; rep < 20; rep++) {
                double t0 = ee_now_ms();
#pragma omp parallel num_threads(t)
                {
                    int id = omp_get_thread_num(), nt = omp_get_num_threads();
                    int per = (N + nt - 1) / nt, n0 = id * per, n1 = n0 + per < N ? n0 + per : N;
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, n1 - n0, K, 1.0f, a, K,
                                b + (size_t)n0 * K, K, 0.0f, c + n0, N);
                }
                if (rep >= 5) { ms += ee_now_ms() - t0; flop += 2.0 * M * N * K; }
            }
            free(a); free(b); free(c);
        }
        printf("sgemm at prefill shapes, %d thread(s): %.1f GFLOP/s\n", t, flop / (ms / 1e3) / 1e9);
    }
    printf("(checksum %g)\n", sink);
    return 0;
}
