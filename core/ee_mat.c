#include "ee_mat.h"

#include "ee_quant.h"

#include <cblas.h>
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

/* Rows dequantized per tile for non-f32 weights: 64 rows x 1536 cols of f32
 * is 384 KiB, inside L2 on the machines we target. */
#define EE_MAT_TILE_ROWS 64

void ee_mat_mul(const ee_mat *m, const float *x, int64_t ldx, int64_t T,
                float *y, int64_t ldy, float beta) {
    const int rows = (int)m->rows, cols = (int)m->cols;
    if (m->type == EE_DT_F32) {
        const float *w = m->data;
        if (T == 1) {
            cblas_sgemv(CblasRowMajor, CblasNoTrans, rows, cols, 1.0f, w, cols, x, 1,
                        beta, y, 1);
        } else {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)T, rows, cols,
                        1.0f, x, (int)ldx, w, cols, beta, y, (int)ldy);
        }
        return;
    }
    float *tile = malloc((size_t)EE_MAT_TILE_ROWS * cols * sizeof(float));
    if (!tile) abort(); /* scratch of a few hundred KiB: treat as fatal */
    for (int r0 = 0; r0 < rows; r0 += EE_MAT_TILE_ROWS) {
        int nr = rows - r0 < EE_MAT_TILE_ROWS ? rows - r0 : EE_MAT_TILE_ROWS;
        for (int r = 0; r < nr; r++) ee_mat_row(m, r0 + r, tile + (size_t)r * cols);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)T, nr, cols, 1.0f, x,
                    (int)ldx, tile, cols, beta, y + r0, (int)ldy);
    }
    free(tile);
}
