#include "ee_kernels.h"

#include "ee_quant.h"

#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

/* Block layouts (ggml). */
typedef struct { uint16_t d, m; uint8_t qs[16]; } blk_q4_1; /* 20 bytes, 32 values */
typedef struct { uint16_t d; uint8_t qs[16]; } blk_q4_0;    /* 18 bytes, 32 values */
typedef struct { uint16_t d; int8_t qs[32]; } blk_q8_0;     /* 34 bytes, 32 values */
_Static_assert(sizeof(blk_q4_1) == 20, "q4_1 block");
_Static_assert(sizeof(blk_q4_0) == 18, "q4_0 block");
_Static_assert(sizeof(blk_q8_0) == 34, "q8_0 block");

static int g_threads = 1;

void ee_kernels_set_threads(int n) { g_threads = n < 1 ? 1 : n; }
int ee_kernels_threads(void) { return g_threads; }

void ee_split_range(int64_t n, int parts, int id, int64_t align, int64_t *a, int64_t *b) {
    int64_t per = ((n + parts - 1) / parts + align - 1) / align * align;
    *a = id * per < n ? id * per : n;
    *b = *a + per < n ? *a + per : n;
}

bool ee_gemv_supported(ee_dtype t) {
    return t == EE_DT_F32 || t == EE_DT_F16 || t == EE_DT_BF16 || t == EE_DT_Q8_0 ||
           t == EE_DT_Q4_0 || t == EE_DT_Q4_1;
}

/* ---- scalar reference ---------------------------------------------------- */

int ee_gemv_stored_ref(ee_dtype t, const void *w, size_t row_bytes, int64_t rows,
                       int64_t cols, const float *x, int64_t ldx, int T, float *y,
                       int64_t ldy, float beta) {
    float *row = malloc((size_t)cols * sizeof(float));
    if (!row) return -1;
    for (int64_t r = 0; r < rows; r++) {
        ee_dequantize_row(t, (const uint8_t *)w + (size_t)r * row_bytes, row, (uint64_t)cols, NULL);
        for (int i = 0; i < T; i++) {
            double acc = 0.0;
            for (int64_t c = 0; c < cols; c++) acc += (double)row[c] * x[i * ldx + c];
            float *out = &y[i * ldy + r];
            *out = (float)acc + (beta != 0.0f ? beta * *out : 0.0f);
        }
    }
    free(row);
    return 0;
}

/* ---- fused kernels ----------------------------------------------------------
 * Each computes rows [r0, r1) for all T activation rows. `xs` holds block
 * sums of x ([T][cols/32]) for the affine type Q4_1. */

typedef struct gemv_job {
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
} gemv_job;

static inline void store_out(const gemv_job *j, int i, int64_t r, float v) {
    float *out = &j->y[i * j->ldy + r];
    *out = j->beta != 0.0f ? v + j->beta * *out : v;
}

#if defined(__AVX512F__)
static inline float hsum(__m512 v) { return _mm512_reduce_add_ps(v); }

/* Inline F16C conversion: a call into ee_quant per block costs more than
 * the block's arithmetic. */
static inline float h2f(uint16_t h) { return _cvtsh_ss(h); }

/* The 32 quants of a Q4 block as floats minus `bias` (8 for Q4_0, 0 for
 * Q4_1): values 0..15 are the low nibbles of qs[0..15], 16..31 the high
 * ones. Exact in f32 (small integers); with a constant bias of 0 the
 * subtraction folds away. */
static inline __attribute__((always_inline)) void unpack_q4(const uint8_t *qs, float bias,
                                                            __m512 *lo, __m512 *hi) {
    const __m128i mask = _mm_set1_epi8(0x0F);
    const __m128i q = _mm_loadu_si128((const __m128i *)qs);
    const __m512 b = _mm512_set1_ps(bias);
    *lo = _mm512_sub_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_and_si128(q, mask))), b);
    *hi = _mm512_sub_ps(
        _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_and_si128(_mm_srli_epi16(q, 4), mask))), b);
}

/* Each kernel body is written once for a compile-time T (always inlined
 * into a switch over T = 1..8), so the per-row accumulators live in
 * registers. Blocks are processed in pairs into two accumulator sets to
 * break the FMA latency chain. */
#define EE_INLINE static inline __attribute__((always_inline))

/* One 32-value block of row `row` (type t, a compile-time constant after
 * inlining) as two f32 vectors, its scale d and, for the affine Q4_1, its
 * minimum m (0 otherwise). */
EE_INLINE void decode_block(ee_dtype t, const uint8_t *row, int64_t k, __m512 *lo, __m512 *hi,
                            float *d, float *m) {
    if (t == EE_DT_Q8_0) {
        const blk_q8_0 *b = (const blk_q8_0 *)row + k;
        *lo = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)b->qs)));
        *hi = _mm512_cvtepi32_ps(
            _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(b->qs + 16))));
        *d = h2f(b->d);
        *m = 0.0f;
    } else if (t == EE_DT_Q4_0) {
        const blk_q4_0 *b = (const blk_q4_0 *)row + k;
        unpack_q4(b->qs, 8.0f, lo, hi);
        *d = h2f(b->d);
        *m = 0.0f;
    } else { /* EE_DT_Q4_1 */
        const blk_q4_1 *b = (const blk_q4_1 *)row + k;
        unpack_q4(b->qs, 0.0f, lo, hi);
        *d = h2f(b->d);
        *m = h2f(b->m);
    }
}

/* sum_j (q_j d + m) x_j = d sum q x + m sum x per block; the m term only
 * exists for Q4_1 (xs holds the block sums of x). */
EE_INLINE void block_rows_T(const gemv_job *j, int64_t r0, int64_t r1, const int T,
                            const ee_dtype t) {
    const int64_t nb = j->cols / 32;
    const bool affine = t == EE_DT_Q4_1;
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *row = j->w + (size_t)r * j->row_bytes;
        __m512 acc0[EE_FUSED_MAX_T], acc1[EE_FUSED_MAX_T];
        float macc[EE_FUSED_MAX_T];
        for (int i = 0; i < T; i++) {
            acc0[i] = acc1[i] = _mm512_setzero_ps();
            macc[i] = 0.0f;
        }
        for (int64_t k = 0; k < nb; k++) {
            __m512 qlo, qhi;
            float d, m;
            decode_block(t, row, k, &qlo, &qhi, &d, &m);
            const __m512 dv = _mm512_set1_ps(d);
            for (int i = 0; i < T; i++) {
                const float *xp = j->x + i * j->ldx + k * 32;
                __m512 s = _mm512_mul_ps(qlo, _mm512_loadu_ps(xp));
                s = _mm512_fmadd_ps(qhi, _mm512_loadu_ps(xp + 16), s);
                if (k & 1) acc1[i] = _mm512_fmadd_ps(s, dv, acc1[i]);
                else acc0[i] = _mm512_fmadd_ps(s, dv, acc0[i]);
                if (affine) macc[i] += m * j->xs[i * nb + k];
            }
        }
        for (int i = 0; i < T; i++)
            store_out(j, i, r, hsum(_mm512_add_ps(acc0[i], acc1[i])) + macc[i]);
    }
}

#define Q4_1_T(j, r0, r1, T) block_rows_T(j, r0, r1, T, EE_DT_Q4_1)
#define Q4_0_T(j, r0, r1, T) block_rows_T(j, r0, r1, T, EE_DT_Q4_0)
#define Q8_0_T(j, r0, r1, T) block_rows_T(j, r0, r1, T, EE_DT_Q8_0)

#define EE_DISPATCH_T(fn, j, r0, r1)                                        \
    switch ((j)->T) {                                                        \
    case 1: fn(j, r0, r1, 1); break;                                         \
    case 2: fn(j, r0, r1, 2); break;                                         \
    case 3: fn(j, r0, r1, 3); break;                                         \
    case 4: fn(j, r0, r1, 4); break;                                         \
    case 5: fn(j, r0, r1, 5); break;                                         \
    case 6: fn(j, r0, r1, 6); break;                                         \
    case 7: fn(j, r0, r1, 7); break;                                         \
    default: fn(j, r0, r1, 8); break;                                        \
    }

static void rows_q4_1(const gemv_job *j, int64_t r0, int64_t r1) { EE_DISPATCH_T(Q4_1_T, j, r0, r1); }
static void rows_q4_0(const gemv_job *j, int64_t r0, int64_t r1) { EE_DISPATCH_T(Q4_0_T, j, r0, r1); }
static void rows_q8_0(const gemv_job *j, int64_t r0, int64_t r1) { EE_DISPATCH_T(Q8_0_T, j, r0, r1); }

EE_INLINE void half_rows_T(const gemv_job *j, int64_t r0, int64_t r1, const int T, const bool bf16) {
    const int64_t nv = j->cols / 16;
    for (int64_t r = r0; r < r1; r++) {
        const uint16_t *h = (const uint16_t *)(j->w + (size_t)r * j->row_bytes);
        __m512 acc[EE_FUSED_MAX_T], acc1[EE_FUSED_MAX_T];
        for (int i = 0; i < T; i++) acc[i] = acc1[i] = _mm512_setzero_ps();
        for (int64_t k = 0; k < nv; k++) {
            __m256i raw = _mm256_loadu_si256((const __m256i *)(h + k * 16));
            __m512 wv = bf16 ? _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(raw), 16))
                             : _mm512_cvtph_ps(raw);
            for (int i = 0; i < T; i++) {
                __m512 xv = _mm512_loadu_ps(j->x + i * j->ldx + k * 16);
                if (k & 1) acc1[i] = _mm512_fmadd_ps(wv, xv, acc1[i]);
                else acc[i] = _mm512_fmadd_ps(wv, xv, acc[i]);
            }
        }
        for (int i = 0; i < T; i++) {
            float v = hsum(_mm512_add_ps(acc[i], acc1[i]));
            for (int64_t c = nv * 16; c < j->cols; c++) { /* tail */
                float wf = bf16 ? ee_bf16_to_fp32(h[c]) : h2f(h[c]);
                v += wf * j->x[i * j->ldx + c];
            }
            store_out(j, i, r, v);
        }
    }
}

EE_INLINE void f32_rows_T(const gemv_job *j, int64_t r0, int64_t r1, const int T) {
    const int64_t nv = j->cols / 16;
    for (int64_t r = r0; r < r1; r++) {
        const float *wr = (const float *)(j->w + (size_t)r * j->row_bytes);
        __m512 acc[EE_FUSED_MAX_T], acc1[EE_FUSED_MAX_T];
        for (int i = 0; i < T; i++) acc[i] = acc1[i] = _mm512_setzero_ps();
        for (int64_t k = 0; k < nv; k++) {
            __m512 wv = _mm512_loadu_ps(wr + k * 16);
            for (int i = 0; i < T; i++) {
                __m512 xv = _mm512_loadu_ps(j->x + i * j->ldx + k * 16);
                if (k & 1) acc1[i] = _mm512_fmadd_ps(wv, xv, acc1[i]);
                else acc[i] = _mm512_fmadd_ps(wv, xv, acc[i]);
            }
        }
        for (int i = 0; i < T; i++) {
            float v = hsum(_mm512_add_ps(acc[i], acc1[i]));
            for (int64_t c = nv * 16; c < j->cols; c++) v += wr[c] * j->x[i * j->ldx + c];
            store_out(j, i, r, v);
        }
    }
}
#define F16_T(j, r0, r1, T) half_rows_T(j, r0, r1, T, false)
#define BF16_T(j, r0, r1, T) half_rows_T(j, r0, r1, T, true)
static void rows_f16(const gemv_job *j, int64_t r0, int64_t r1) { EE_DISPATCH_T(F16_T, j, r0, r1); }
static void rows_bf16(const gemv_job *j, int64_t r0, int64_t r1) { EE_DISPATCH_T(BF16_T, j, r0, r1); }
static void rows_f32(const gemv_job *j, int64_t r0, int64_t r1) { EE_DISPATCH_T(f32_rows_T, j, r0, r1); }
#endif /* __AVX512F__ */

/* ---- vectorised dequantization ------------------------------------------------ */

static void dequant_row_generic(ee_dtype t, const uint8_t *src, int64_t cols, float *out) {
    ee_dequantize_row(t, src, out, (uint64_t)cols, NULL);
}

void ee_dequant_rows(ee_dtype t, const void *w, size_t row_bytes, int64_t cols, int64_t r0,
                     int64_t r1, float *out) {
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *src = (const uint8_t *)w + (size_t)r * row_bytes;
        float *o = out + (size_t)(r - r0) * cols;
#if defined(__AVX512F__)
        const int64_t nb = cols / 32;
        if (t == EE_DT_Q4_1) {
            const blk_q4_1 *b = (const blk_q4_1 *)src;
            for (int64_t k = 0; k < nb; k++) {
                __m512 d = _mm512_set1_ps(h2f(b[k].d)), m = _mm512_set1_ps(h2f(b[k].m)), lo, hi;
                unpack_q4(b[k].qs, 0.0f, &lo, &hi);
                _mm512_storeu_ps(o + k * 32, _mm512_add_ps(_mm512_mul_ps(lo, d), m));
                _mm512_storeu_ps(o + k * 32 + 16, _mm512_add_ps(_mm512_mul_ps(hi, d), m));
            }
            continue;
        }
        if (t == EE_DT_Q4_0) {
            const blk_q4_0 *b = (const blk_q4_0 *)src;
            for (int64_t k = 0; k < nb; k++) {
                __m512 d = _mm512_set1_ps(h2f(b[k].d)), lo, hi;
                unpack_q4(b[k].qs, 8.0f, &lo, &hi);
                _mm512_storeu_ps(o + k * 32, _mm512_mul_ps(lo, d));
                _mm512_storeu_ps(o + k * 32 + 16, _mm512_mul_ps(hi, d));
            }
            continue;
        }
        if (t == EE_DT_Q8_0) {
            const blk_q8_0 *b = (const blk_q8_0 *)src;
            for (int64_t k = 0; k < nb; k++) {
                __m512 d = _mm512_set1_ps(h2f(b[k].d));
                __m512 q0 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)b[k].qs)));
                __m512 q1 = _mm512_cvtepi32_ps(
                    _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(b[k].qs + 16))));
                _mm512_storeu_ps(o + k * 32, _mm512_mul_ps(q0, d));
                _mm512_storeu_ps(o + k * 32 + 16, _mm512_mul_ps(q1, d));
            }
            continue;
        }
#endif
        dequant_row_generic(t, src, cols, o);
    }
}

/* Portable fallback: dequantize a row, then dot in f32. Returns -1 if the
 * row buffer cannot be had (rows above 4096 values take the heap). */
static int rows_generic(const gemv_job *j, int64_t r0, int64_t r1) {
    float stack[4096];
    float *row = j->cols <= 4096 ? stack : malloc((size_t)j->cols * sizeof(float));
    if (!row) return -1;
    for (int64_t r = r0; r < r1; r++) {
        ee_dequantize_row(j->t, j->w + (size_t)r * j->row_bytes, row, (uint64_t)j->cols, NULL);
        for (int i = 0; i < j->T; i++) {
            float acc = 0.0f;
            const float *xp = j->x + i * j->ldx;
            for (int64_t c = 0; c < j->cols; c++) acc += row[c] * xp[c];
            store_out(j, i, r, acc);
        }
    }
    if (row != stack) free(row);
    return 0;
}

static int run_rows(const gemv_job *j, int64_t r0, int64_t r1) {
#if defined(__AVX512F__)
    switch (j->t) {
    case EE_DT_Q4_1: rows_q4_1(j, r0, r1); return 0;
    case EE_DT_Q4_0: rows_q4_0(j, r0, r1); return 0;
    case EE_DT_Q8_0: rows_q8_0(j, r0, r1); return 0;
    case EE_DT_F16: rows_f16(j, r0, r1); return 0;
    case EE_DT_BF16: rows_bf16(j, r0, r1); return 0;
    case EE_DT_F32: rows_f32(j, r0, r1); return 0;
    default: break;
    }
#endif
    return rows_generic(j, r0, r1);
}

int ee_gemv_stored(ee_dtype t, const void *w, size_t row_bytes, int64_t rows, int64_t cols,
                   const float *x, int64_t ldx, int T, float *y, int64_t ldy, float beta) {
    gemv_job j = {.t = t, .w = w, .row_bytes = row_bytes, .cols = cols, .x = x, .ldx = ldx,
                  .T = T, .y = y, .ldy = ldy, .beta = beta, .xs = NULL};
    float xs_stack[EE_FUSED_MAX_T * 64];
    float *xs = NULL;
    if (t == EE_DT_Q4_1) {
        const int64_t nb = cols / 32;
        xs = (size_t)(T * nb) <= sizeof xs_stack / sizeof xs_stack[0]
                 ? xs_stack
                 : malloc((size_t)T * nb * sizeof(float));
        if (!xs) return -1;
        for (int i = 0; i < T; i++)
            for (int64_t k = 0; k < nb; k++) {
                float s = 0.0f;
                for (int c = 0; c < 32; c++) s += x[i * ldx + k * 32 + c];
                xs[i * nb + k] = s;
            }
        j.xs = xs;
    }
    int nt = g_threads, failed = 0;
    /* Below ~64K weights the fork/join costs more than it saves. */
    if (rows * cols < 65536 || rows < 2 * nt) nt = 1;
#ifdef _OPENMP
    if (nt > 1) {
#pragma omp parallel num_threads(nt) reduction(| : failed)
        {
            /* Row ranges rounded to 16 rows so threads never write the
             * same cache line of y. */
            int64_t a, b;
            ee_split_range(rows, omp_get_num_threads(), omp_get_thread_num(), 16, &a, &b);
            if (a < b) failed |= run_rows(&j, a, b) != 0;
        }
    } else
#endif
        failed = run_rows(&j, 0, rows) != 0;
    if (xs && xs != xs_stack) free(xs);
    return failed ? -1 : 0;
}
