/* ee_kernels_impl: what the per-ISA kernel files share (internal).
 *
 * Layout of the kernel code:
 *   ee_kernels.c         scalar reference, the generic fallback, the
 *                        driver (threads, block sums) and the run-time
 *                        choice of a kernel set;
 *   ee_kernels_avx512.c  compiled with AVX-512 flags (Makefile
 *                        ISA_FLAGS_ee_kernels_avx512);
 *   ee_kernels_avx2.c    compiled with AVX2/FMA/F16C and AVX-512 off.
 * Only the driver calls into a per-ISA file, and only after CPUID said the
 * CPU has that ISA, so the rest of the tree can be built for a baseline
 * (-march=x86-64-v3) and one binary still runs the fastest kernels. */
#ifndef EE_KERNELS_IMPL_H
#define EE_KERNELS_IMPL_H

#include "ee_kernels.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Block layouts (ggml's block_q4_1 / block_q4_0 / block_q8_0), 32 values
 * each, stored back to back along a row. d and m are IEEE halves. */
typedef struct { uint16_t d, m; uint8_t qs[16]; } ee_blk_q4_1; /* 20 bytes: q*d + m */
typedef struct { uint16_t d; uint8_t qs[16]; } ee_blk_q4_0;    /* 18 bytes: (q-8)*d */
typedef struct { uint16_t d; int8_t qs[32]; } ee_blk_q8_0;     /* 34 bytes: q*d */
_Static_assert(sizeof(ee_blk_q4_1) == 20, "q4_1 block");
_Static_assert(sizeof(ee_blk_q4_0) == 18, "q4_0 block");
_Static_assert(sizeof(ee_blk_q8_0) == 34, "q8_0 block");
/* Q4 blocks hold value j (j < 16) in the low nibble of qs[j] and value
 * j + 16 in its high nibble. */

/* Bytes of one block of a block type (a constant once t is). */
static inline size_t ee_blk_bytes(ee_dtype t) {
    return t == EE_DT_Q8_0 ? sizeof(ee_blk_q8_0)
           : t == EE_DT_Q4_0 ? sizeof(ee_blk_q4_0) : sizeof(ee_blk_q4_1);
}

/* Batches of 3+ activation rows prefetch the weight stream EE_PREFETCH_BYTES
 * ahead. With more arithmetic per cache line the hardware prefetcher alone
 * left the loads waiting on DRAM (perf: ~75% of the kernel's cycles on the
 * weight load at T = 8); 2 KB ahead took f32 batch-8 decode from 162 to
 * ~200 tok/s (bench-batch, docs/BENCHMARKS.md "The worker against the
 * CLI"). Single-row decode streams fine without it. No effect on results. */
#define EE_PREFETCH_BYTES 2048
#define EE_PREFETCH_MIN_T 3

/* One fused product: Y[t][r] = beta Y[t][r] + sum_c W[r][c] X[t][c].
 * `xs` holds the 32-value block sums of x ([T][cols/32]) for the affine
 * type Q4_1, NULL otherwise. */
typedef struct ee_gemv_job {
    ee_dtype t;
    const uint8_t *w;
    size_t row_bytes;
    int64_t cols;
    const float *x;
    int64_t ldx;
    int T;
    float *y;
    int64_t ldy;
    float beta;
    const float *xs;
} ee_gemv_job;

static inline void ee_store_out(const ee_gemv_job *j, int i, int64_t r, float v) {
    float *out = &j->y[i * j->ldy + r];
    *out = j->beta != 0.0f ? v + j->beta * *out : v;
}

/* One ISA's kernels. A kernel returns false for a type it does not cover;
 * the driver then runs the scalar path. */
typedef struct ee_kernel_set {
    const char *name; /* "avx512", "avx2", "scalar" */
    /* Rows [r0, r1) of the job, all T activation rows. */
    bool (*gemv_rows)(const ee_gemv_job *j, int64_t r0, int64_t r1);
    /* One row of `cols` values, bit-identical to ee_dequantize_row. */
    bool (*dequant_row)(ee_dtype t, const uint8_t *src, int64_t cols, float *out);
    /* ee_exp_sum and ee_silu (ee_ops.h); NULL: scalar libm versions. */
    double (*exp_sum)(float *x, int n, float sub);
    void (*silu)(float *x, size_t n);
} ee_kernel_set;

extern const ee_kernel_set ee_kernels_avx512_set;
extern const ee_kernel_set ee_kernels_avx2_set;

/* The set chosen for this process (selected on first use). */
const ee_kernel_set *ee_kernels_active(void);

#endif
