/* ee_kernels: fused matrix-vector products over weights in their stored
 * type, with f32 activations.
 *
 * Why: single-stream decode is memory-bound. f32 weights cost 538 MB per
 * SmolLM2 token; the Q4_1 file's weights cost 96 MB. These kernels read the
 * stored blocks and never materialise f32 weights, but keep activations and
 * accumulation in f32, so results equal the f32 path up to summation order
 * (unlike llama.cpp, which quantizes activations to 8 bits).
 *
 * Identity used for affine blocks (Q4_1): sum_j (q_j d + m) x_j
 *   = d * sum_j q_j x_j + m * sum_j x_j, with the block sums of x computed
 * once per activation vector. */
#ifndef EE_KERNELS_H
#define EE_KERNELS_H

#include "ee_dtype.h"

#include <stdbool.h>
#include <stdint.h>

/* Largest T one fused pass takes. */
#define EE_FUSED_MAX_T 8
/* Batches up to this many rows run as fused passes of EE_FUSED_MAX_T;
 * bigger batches dequantize + sgemm. */
#define EE_FUSED_BATCH_ROWS 32

bool ee_gemv_supported(ee_dtype t);

/* Y[t][r] = beta * Y[t][r] + sum_c W[r][c] X[t][c] for r < rows, t < T
 * (T <= EE_FUSED_MAX_T). W: rows of row_bytes bytes in type t; cols a
 * multiple of the type's block. Rows are split across the OpenMP team.
 * Returns 0, or -1 when a scratch buffer cannot be allocated (Y is then
 * incomplete; the caller reports out of memory). */
int ee_gemv_stored(ee_dtype t, const void *w, size_t row_bytes, int64_t rows, int64_t cols,
                   const float *x, int64_t ldx, int T, float *y, int64_t ldy, float beta);

/* Scalar reference of the same product (tests compare the two); 0 or -1
 * as above. */
int ee_gemv_stored_ref(ee_dtype t, const void *w, size_t row_bytes, int64_t rows,
                       int64_t cols, const float *x, int64_t ldx, int T, float *y,
                       int64_t ldy, float beta);

/* Dequantize rows [r0, r1) of a stored matrix into out ([r1-r0][cols]),
 * bit-identical to ee_dequantize_row (vectorised for Q4_1/Q4_0/Q8_0/F16/
 * BF16; q*d + m computed as a rounded product then a rounded sum, never an
 * FMA, exactly as ggml's reference does). */
void ee_dequant_rows(ee_dtype t, const void *w, size_t row_bytes, int64_t cols, int64_t r0,
                     int64_t r1, float *out);

/* Threads for the OpenMP team (our kernels and row-split BLAS calls). */
void ee_kernels_set_threads(int n);
int ee_kernels_threads(void);

/* Split [0, n) into `parts` contiguous ranges aligned to `align`; range
 * `id` is [*a, *b) (possibly empty). */
void ee_split_range(int64_t n, int parts, int id, int64_t align, int64_t *a, int64_t *b);

#endif
