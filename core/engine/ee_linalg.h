/* ee_linalg: dense linear algebra for analysis code (the ee_audit attacks):
 * a row-parallel sgemm, the orthogonal Procrustes solution and linear least
 * squares through LAPACK's SVD (OpenBLAS ships LAPACK). Unlike ee_dmat, nothing here needs
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

/* Linear least squares: the x [n] minimising ||A x - b|| for A [m][n]
 * row-major and b [m] (any m >= 1; the minimum-norm solution when A is
 * rank deficient), through LAPACK's dgelsd. Singular values below rcond
 * times the largest count as zero; rank (may be NULL) receives how many
 * did not. */
int ee_lstsq(const double *A, int m, int n, const double *b, double rcond, double *x, int *rank,
             ee_err *err);

#endif
