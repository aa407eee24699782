#include "ee_dmat.h"

#include <string.h>

/* K is processed in panels so the B panel (KB rows of N doubles) stays in
 * L2 while every row of A streams over it. Within a panel each C element
 * still accumulates k in increasing order, so panelling does not change the
 * result. */
#define KB 64

void ee_dgemm(const double *A, const double *B, double *C, int64_t M, int64_t K, int64_t N) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < M; i++) memset(C + i * N, 0, (size_t)N * sizeof(double));
    for (int64_t k0 = 0; k0 < K; k0 += KB) {
        const int64_t k1 = k0 + KB < K ? k0 + KB : K;
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < M; i++) {
            double *c = C + i * N;
            const double *a = A + i * K;
            for (int64_t k = k0; k < k1; k++) {
                const double aik = a[k];
                const double *b = B + k * N;
                for (int64_t j = 0; j < N; j++) c[j] += aik * b[j];
            }
        }
    }
}

void ee_dtranspose(const double *in, double *out, int64_t M, int64_t N) {
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) out[j * M + i] = in[i * N + j];
}
