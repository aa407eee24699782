/* ee_mat: a 2-D weight matrix and the matrix products the engine runs.
 *
 * Convention (same as GGUF/ggml): a weight with ne = [cols, rows] stores
 * `rows` rows of `cols` contiguous values; a linear layer computes
 * y[r] = sum_c W[r][c] * x[c], i.e. Y = X W^T for a batch X [T][cols].
 *
 * Small batches (T <= EE_FUSED_BATCH_ROWS: decode, short prompts) run the
 * fused kernels of ee_kernels.h straight over the stored blocks. Larger batches (prefill)
 * dequantize each thread's share of rows into scratch and call sgemm;
 * the dequantization is amortised over the batch. */
#ifndef EE_MAT_H
#define EE_MAT_H

#include "ee_dtype.h"
#include "ee_error.h"
#include "ee_gguf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ee_mat {
    ee_dtype type;     /* storage type of data */
    int64_t rows;      /* output features (ne[1]) */
    int64_t cols;      /* input features, contiguous (ne[0]) */
    size_t row_bytes;  /* bytes per stored row */
    void *data;        /* rows * row_bytes bytes */
    bool owned;        /* free data on ee_mat_free */
} ee_mat;

/* Load tensor `name` from g, checking its shape is [cols, rows] (rows == 1
 * and a 1-D tensor of `cols` values is accepted for vectors). If `as` is
 * EE_DT_F32 the data are dequantized into an owned buffer; otherwise the
 * stored type is kept and data point into the mapping. */
int ee_mat_load(ee_mat *m, const ee_gguf *g, const char *name, int64_t cols,
                int64_t rows, bool to_f32, ee_err *err);
/* Load a 1-D f32 vector of n values (norm gains, biases), dequantizing if
 * stored otherwise. *out is malloc'd. */
int ee_vec_load(float **out, const ee_gguf *g, const char *name, int64_t n,
                ee_err *err);
void ee_mat_free(ee_mat *m);

/* Dequantize row r into out[cols]. */
void ee_mat_row(const ee_mat *m, int64_t r, float *out);

/* Y[T][rows] = X[T][cols] W^T + beta * Y. X rows are ldx apart, Y rows ldy
 * apart (ldx >= cols, ldy >= rows). Returns 0, or -1 when the scratch for
 * dequantized rows cannot be allocated (Y incomplete; report out of
 * memory). */
int ee_mat_mul(const ee_mat *m, const float *x, int64_t ldx, int64_t T,
               float *y, int64_t ldy, float beta);

#endif
