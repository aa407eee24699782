/* ee_linalg: dense linear algebra for analysis code (the ee_audit attack):
 * a row-parallel sgemm and the orthogonal Procrustes solution through
 * LAPACK's SVD (OpenBLAS ships LAPACK). Unlike ee_dmat, nothing here needs
 * to be bit-reproducible. */
#ifndef EE_LINALG_H
#define EE_LINALG_H

#include "ee_error.h"

#include <stdint.h>

/* C[M][N] = A[M][K] B[N][K]^T, rows of C split across the OpenMP team
 * (each part one single-threaded OpenBLAS call). */
void ee_sgemm_nt(const float *A, const float *B, float *C, int64_t M, int64_t N, int64_t K);

/* Orthogonal Procrustes: the orthogonal R [d][d] minimising ||X R - Y||_F
 * given M = X^T Y [d][d] (row-major): R = U V^T for M = U S V^T. */
int ee_procrustes(const double *M, int d, double *R, ee_err *err);

#endif
