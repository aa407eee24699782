#include "ee_mat.h"

#include "ee_kernels.h"
#include "ee_quant.h"

#include <cblas.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

int ee_mat_load(ee_mat *m, const ee_gguf *g, const char *name, int64_t cols,
                int64_t rows, bool to_f32, ee_err *err) {
    memset(m, 0, sizeof *m);
    const ee_gguf_tensor *t = ee_gguf_find_tensor(g, name);
    if (!t) return ee_err_set(err, "tensor '%s' is missing", name);
    bool shape_ok = (t->n_dims == 2 && (int64_t)t->ne[0] == cols &&
                     (int64_t)t->ne[1] == rows) ||
                    (rows == 1 && t->n_dims == 1 && (int64_t)t->ne[0] == cols);
    if (!shape_ok)
        return ee_err_set(err,
                          "tensor '%s' has shape [%llu, %llu] (%u dims), expected "
                          "[%lld, %lld]",
                          name, (unsigned long long)t->ne[0],
                          (unsigned long long)(t->n_dims > 1 ? t->ne[1] : 1),
                          t->n_dims, (long long)cols, (long long)rows);
    m->rows = rows;
    m->cols = cols;
    if (!to_f32 || t->type == EE_DT_F32) { /* use the mapping as stored */
        m->type = t->type;
        m->row_bytes = ee_dtype_row_bytes(t->type, (uint64_t)cols);
        m->data = (void *)t->data;
        m->owned = false;
        return 0;
    }
    m->type = EE_DT_F32;
    m->row_bytes = (size_t)cols * sizeof(float);
    float *buf = malloc((size_t)rows * m->row_bytes);
    if (!buf) return ee_err_set(err, "out of memory loading '%s'", name);
    size_t src_row = ee_dtype_row_bytes(t->type, (uint64_t)cols);
    for (int64_t r = 0; r < rows; r++) {
        if (ee_dequantize_row(t->type, (const uint8_t *)t->data + (size_t)r * src_row,
                              buf + (size_t)r * cols, (uint64_t)cols, err) != 0) {
            free(buf);
            return ee_err_wrap(err, "tensor '%s'", name);
        }
    }
    m->data = buf;
    m->owned = true;
    return 0;
}

int ee_vec_load(float **out, const ee_gguf *g, const char *name, int64_t n,
                ee_err *err) {
    ee_mat m;
    if (ee_mat_load(&m, g, name, n, 1, true, err) != 0) return -1;
    if (m.owned) {
        *out = m.data;
        return 0;
    }
    /* f32 in the mapping: copy so the caller always owns the vector. */
    float *v = malloc((size_t)n * sizeof(float));
    if (!v) return ee_err_set(err, "out of memory loading '%s'", name);
    memcpy(v, m.data, (size_t)n * sizeof(float));
    *out = v;
    return 0;
}

void ee_mat_free(ee_mat *m) {
    if (m && m->owned) free(m->data);
    if (m) memset(m, 0, sizeof *m);
}

void ee_mat_row(const ee_mat *m, int64_t r, float *out) {
    const uint8_t *src = (const uint8_t *)m->data + (size_t)r * m->row_bytes;
    if (m->type == EE_DT_F32) {
        memcpy(out, src, (size_t)m->cols * sizeof(float));
        return;
    }
    ee_dequantize_row(m->type, src, out, (uint64_t)m->cols, NULL);
}

/* Batches above EE_FUSED_MAX_T rows dequantize the whole weight once into
 * a per-thread scratch and run sgemm: the dequantization (~1 ns/weight) is
 * amortised over the batch, and sgemm does the heavy lifting. */
static _Thread_local float *t_scratch;
static _Thread_local size_t t_scratch_n;

static float *scratch(size_t n) {
    if (n > t_scratch_n) {
        float *p = realloc(t_scratch, n * sizeof(float));
        if (!p) return NULL;
        t_scratch = p;
        t_scratch_n = n;
    }
    return t_scratch;
}

/* Rows [r0, r1) of the product through OpenBLAS (single-threaded call). */
static int mul_rows_blas(const ee_mat *m, int64_t r0, int64_t r1, const float *x, int64_t ldx,
                         int64_t T, float *y, int64_t ldy, float beta) {
    const int cols = (int)m->cols, nr = (int)(r1 - r0);
    const float *w;
    if (m->type == EE_DT_F32) {
        w = (const float *)m->data + (size_t)r0 * cols;
    } else {
        float *buf = scratch((size_t)nr * cols);
        if (!buf) return -1;
        ee_dequant_rows(m->type, m->data, m->row_bytes, cols, r0, r1, buf);
        w = buf;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)T, nr, cols, 1.0f, x, (int)ldx, w,
                cols, beta, y + r0, (int)ldy);
    return 0;
}

int ee_mat_mul(const ee_mat *m, const float *x, int64_t ldx, int64_t T, float *y,
               int64_t ldy, float beta) {
    /* Up to EE_FUSED_BATCH_ROWS rows, passes of the fused kernel (8 rows
     * each) beat dequantize + sgemm: measured crossover ~32-48 rows on
     * SmolLM2 (docs/BENCHMARKS.md, "short prompts"). */
    if (T <= EE_FUSED_BATCH_ROWS && ee_gemv_supported(m->type)) {
        for (int64_t t0 = 0; t0 < T; t0 += EE_FUSED_MAX_T) {
            int n = T - t0 < EE_FUSED_MAX_T ? (int)(T - t0) : EE_FUSED_MAX_T;
            if (ee_gemv_stored(m->type, m->data, m->row_bytes, m->rows, m->cols, x + t0 * ldx,
                               ldx, n, y + t0 * ldy, ldy, beta))
                return -1;
        }
        return 0;
    }
    int nt = ee_kernels_threads(), failed = 0;
    if (nt > 1 && m->rows >= 64 * nt) {
#pragma omp parallel num_threads(nt) reduction(| : failed)
        {
            int64_t a, b;
            ee_split_range(m->rows, omp_get_num_threads(), omp_get_thread_num(), 16, &a, &b);
            if (a < b) failed |= mul_rows_blas(m, a, b, x, ldx, T, y, ldy, beta) != 0;
        }
    } else {
        failed = mul_rows_blas(m, 0, m->rows, x, ldx, T, y, ldy, beta) != 0;
    }
    return failed ? -1 : 0;
}
