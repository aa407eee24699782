/* See ee_linalg.h. LAPACK is called through its Fortran symbols (dgesvd_, dgelsd_),
 * which Debian's OpenBLAS exports; no LAPACKE package is needed. */
#include "ee_linalg.h"

#include "ee_kernels.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>

void dgesvd_(const char *jobu, const char *jobvt, const int *m, const int *n, double *a,
             const int *lda, double *s, double *u, const int *ldu, double *vt, const int *ldvt,
             double *work, const int *lwork, int *info);
void dgelsd_(const int *m, const int *n, const int *nrhs, double *a, const int *lda, double *b,
             const int *ldb, double *s, const double *rcond, int *rank, double *work,
             const int *lwork, int *iwork, int *info);

void ee_sgemm_nt(const float *A, const float *B, float *C, int64_t M, int64_t N, int64_t K) {
    int nt = ee_kernels_threads();
    if (nt < 1 || M < 64) nt = 1;
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int t = 0; t < nt; t++) {
        int64_t r0 = M * t / nt, r1 = M * (t + 1) / nt;
        if (r1 > r0)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)(r1 - r0), (int)N, (int)K,
                        1.0f, A + r0 * K, (int)K, B, (int)K, 0.0f, C + r0 * N, (int)N);
    }
}

int ee_procrustes(const double *M, int d, double *R, ee_err *err) {
    /* LAPACK is column-major: pass M^T (row-major M read as column-major)
     * and swap roles: M^T = V S U^T, so LAPACK's "U" is our V and its
     * "VT" is our U^T. R = U V^T = (V U^T)^T = (lapU * lapVT)^T. */
    size_t dd = (size_t)d * d;
    double *a = malloc(sizeof(double) * dd), *s = malloc(sizeof(double) * d);
    double *lu = malloc(sizeof(double) * dd), *lvt = malloc(sizeof(double) * dd);
    double wq;
    int info = 0, lwork = -1;
    if (!a || !s || !lu || !lvt) goto oom;
    memcpy(a, M, sizeof(double) * dd);
    dgesvd_("A", "A", &d, &d, a, &d, s, lu, &d, lvt, &d, &wq, &lwork, &info);
    lwork = (int)wq;
    double *work = malloc(sizeof(double) * (size_t)(lwork > 1 ? lwork : 1));
    if (!work) goto oom;
    dgesvd_("A", "A", &d, &d, a, &d, s, lu, &d, lvt, &d, work, &lwork, &info);
    free(work);
    if (info != 0) {
        free(a), free(s), free(lu), free(lvt);
        return ee_err_set(err, "SVD did not converge (dgesvd info %d)", info);
    }
    /* Column-major lu (d x d) times lvt -> P (column-major) = V U^T in our
     * terms; its row-major reading is P^T = U V^T = R. */
    cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, d, d, d, 1.0, lu, d, lvt, d, 0.0, R, d);
    free(a), free(s), free(lu), free(lvt);
    return 0;
oom:
    free(a), free(s), free(lu), free(lvt);
    return ee_err_set(err, "out of memory for a %dx%d SVD", d, d);
}

int ee_lstsq(const double *A, int m, int n, const double *b, double rcond, double *x, int *rank,
             ee_err *err) {
    if (m < 1 || n < 1) return ee_err_set(err, "least squares of an empty %dx%d system", m, n);
    const int ldb = m > n ? m : n, nrhs = 1, mn = m < n ? m : n;
    double *a = malloc(sizeof(double) * (size_t)m * n), *bb = calloc((size_t)ldb, sizeof(double));
    double *s = malloc(sizeof(double) * (size_t)mn), *work = NULL;
    int *iwork = NULL, info = 0, rk = 0, lwork = -1, liw = 0;
    double wq = 0;
    if (!a || !bb || !s) goto oom;
    /* Column-major copy: LAPACK's A(i, j) at a[i + j m]. */
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) a[(size_t)j * m + i] = A[(size_t)i * n + j];
    memcpy(bb, b, sizeof(double) * (size_t)m);
    dgelsd_(&m, &n, &nrhs, a, &m, bb, &ldb, s, &rcond, &rk, &wq, &lwork, &liw, &info);
    lwork = (int)wq;
    if (lwork < 1) lwork = 1;
    if (liw < 1) liw = 1;
    work = malloc(sizeof(double) * (size_t)lwork);
    iwork = malloc(sizeof(int) * (size_t)liw);
    if (!work || !iwork) goto oom;
    dgelsd_(&m, &n, &nrhs, a, &m, bb, &ldb, s, &rcond, &rk, work, &lwork, iwork, &info);
    free(a), free(s), free(work), free(iwork);
    if (info != 0) {
        free(bb);
        return ee_err_set(err, "least squares: SVD did not converge (dgelsd info %d)", info);
    }
    memcpy(x, bb, sizeof(double) * (size_t)n);
    free(bb);
    if (rank) *rank = rk;
    return 0;
oom:
    free(a), free(bb), free(s), free(work), free(iwork);
    return ee_err_set(err, "out of memory for a %dx%d least-squares system", m, n);
}
