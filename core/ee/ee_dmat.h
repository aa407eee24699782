/* ee_dmat: deterministic double-precision matrix products for the one-time
 * model encryption.
 *
 * Why not BLAS: we promise byte-identical encrypted files for the same key
 * and model, and BLAS results may change with the thread count or the CPU
 * kernels chosen at run time. Here every output element is one thread's
 * sum over k in increasing order, with no FMA contraction (ISO C mode), so
 * the result is the same on every run and machine. */
#ifndef EE_DMAT_H
#define EE_DMAT_H

#include <stdint.h>

/* C[M][N] = A[M][K] * B[K][N], row-major, lda = K, ldb = ldc = N. Rows of C
 * are split across the OpenMP team (each element computed by one thread). */
void ee_dgemm(const double *A, const double *B, double *C, int64_t M, int64_t K, int64_t N);

/* out[N][M] = in[M][N]^T */
void ee_dtranspose(const double *in, double *out, int64_t M, int64_t N);

#endif
