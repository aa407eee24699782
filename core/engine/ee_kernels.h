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
#include "ee_error.h"

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
 * bit-identical to ee_dequantize_row (vectorised for Q4_1/Q4_0/Q8_0 on
 * AVX-512 and AVX2; q*d + m computed as a rounded product then a rounded
 * sum, never an FMA, exactly as ggml's reference does). */
void ee_dequant_rows(ee_dtype t, const void *w, size_t row_bytes, int64_t cols, int64_t r0,
                     int64_t r1, float *out);

/* Threads for the OpenMP team (our kernels and row-split BLAS calls). */
void ee_kernels_set_threads(int n);
int ee_kernels_threads(void);

/* Split [0, n) into `parts` contiguous ranges aligned to `align`; range
 * `id` is [*a, *b) (possibly empty). */
void ee_split_range(int64_t n, int parts, int id, int64_t align, int64_t *a, int64_t *b);

/* ---- run-time kernel choice ---------------------------------------------
 * One binary carries AVX-512, AVX2 (with FMA and F16C) and scalar kernels
 * (the fused products above, dequantization, and ee_ops' exp and SiLU).
 * The first use picks the best set the CPU has (CPUID), or the one named
 * by the environment variable EE_ISA=avx512|avx2|scalar (empty or "auto":
 * the best). */

/* Make the choice now (thread-safe; once per process). Returns 0, or -1
 * with err set when EE_ISA is unknown or names an ISA this CPU lacks (the
 * kernels then run the CPU's best set; callers should stop instead). */
int ee_kernels_init(ee_err *err);
/* Name of the set in use: "avx512", "avx2" or "scalar". */
const char *ee_kernels_isa(void);
/* Whether this CPU can run the named set (false for unknown names). */
bool ee_kernels_isa_supported(const char *name);
/* Force a set by name (tests and benchmarks). Returns 0, or -1 with err
 * set for an unknown name or one the CPU lacks (the choice is then kept).
 * Not to be called while kernels run on other threads. */
int ee_kernels_set_isa(const char *name, ee_err *err);

#endif
