/* AVX-512 kernels (F, BW, VL, DQ with FMA and F16C): the fused products,
 * dequantization, exp and SiLU. Compiled with its own target flags
 * (Makefile ISA_FLAGS_ee_kernels_avx512) whatever the tree's -march, and
 * only ever called after ee_kernels.c checked CPUID. Blocks of 32 values
 * are two 16-lane vectors. */
#include "ee_kernels_impl.h"

#include "ee_quant.h"

#include <immintrin.h>
#include <math.h>

#if !defined(__AVX512F__) || !defined(__AVX512BW__) || !defined(__FMA__) || !defined(__F16C__)
#error "ee_kernels_avx512.c needs its ISA flags (see ISA_FLAGS_ee_kernels_avx512 in the Makefile)"
#endif

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
        const ee_blk_q8_0 *b = (const ee_blk_q8_0 *)row + k;
        *lo = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)b->qs)));
        *hi = _mm512_cvtepi32_ps(
            _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(b->qs + 16))));
        *d = h2f(b->d);
        *m = 0.0f;
    } else if (t == EE_DT_Q4_0) {
        const ee_blk_q4_0 *b = (const ee_blk_q4_0 *)row + k;
        unpack_q4(b->qs, 8.0f, lo, hi);
        *d = h2f(b->d);
        *m = 0.0f;
    } else { /* EE_DT_Q4_1 */
        const ee_blk_q4_1 *b = (const ee_blk_q4_1 *)row + k;
        unpack_q4(b->qs, 0.0f, lo, hi);
        *d = h2f(b->d);
        *m = h2f(b->m);
    }
}


/* sum_j (q_j d + m) x_j = d sum q x + m sum x per block; the m term only
 * exists for Q4_1 (xs holds the block sums of x). */
EE_INLINE void block_rows_T(const ee_gemv_job *j, int64_t r0, int64_t r1, const int T,
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
        const size_t bb = ee_blk_bytes(t);
        for (int64_t k = 0; k < nb; k++) {
            __m512 qlo, qhi;
            float d, m;
            if (T >= EE_PREFETCH_MIN_T)
                _mm_prefetch((const char *)row + k * bb + EE_PREFETCH_BYTES, _MM_HINT_T0);
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
            ee_store_out(j, i, r, hsum(_mm512_add_ps(acc0[i], acc1[i])) + macc[i]);
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


EE_INLINE void half_rows_T(const ee_gemv_job *j, int64_t r0, int64_t r1, const int T, const bool bf16) {
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
            ee_store_out(j, i, r, v);
        }
    }
}

EE_INLINE void f32_rows_T(const ee_gemv_job *j, int64_t r0, int64_t r1, const int T) {
    const int64_t nv = j->cols / 16;
    for (int64_t r = r0; r < r1; r++) {
        const float *wr = (const float *)(j->w + (size_t)r * j->row_bytes);
        __m512 acc[EE_FUSED_MAX_T], acc1[EE_FUSED_MAX_T];
        for (int i = 0; i < T; i++) acc[i] = acc1[i] = _mm512_setzero_ps();
        for (int64_t k = 0; k < nv; k++) {
            if (T >= EE_PREFETCH_MIN_T)
                _mm_prefetch((const char *)(wr + k * 16) + EE_PREFETCH_BYTES, _MM_HINT_T0);
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
            ee_store_out(j, i, r, v);
        }
    }
}
#define F16_T(j, r0, r1, T) half_rows_T(j, r0, r1, T, false)
#define BF16_T(j, r0, r1, T) half_rows_T(j, r0, r1, T, true)

/* One switch per call, not per row: the T-specialised loops run the
 * whole range. */
static bool gemv_rows(const ee_gemv_job *j, int64_t r0, int64_t r1) {
    switch (j->t) {
    case EE_DT_Q4_1: EE_DISPATCH_T(Q4_1_T, j, r0, r1); return true;
    case EE_DT_Q4_0: EE_DISPATCH_T(Q4_0_T, j, r0, r1); return true;
    case EE_DT_Q8_0: EE_DISPATCH_T(Q8_0_T, j, r0, r1); return true;
    case EE_DT_F16: EE_DISPATCH_T(F16_T, j, r0, r1); return true;
    case EE_DT_BF16: EE_DISPATCH_T(BF16_T, j, r0, r1); return true;
    case EE_DT_F32: EE_DISPATCH_T(f32_rows_T, j, r0, r1); return true;
    default: return false;
    }
}

/* ---- dequantization (bit-identical to ee_dequantize_row) ------------------- */

static bool dequant_row(ee_dtype t, const uint8_t *src, int64_t cols, float *o) {
    const int64_t nb = cols / 32;
    if (t == EE_DT_Q4_1) {
        const ee_blk_q4_1 *b = (const ee_blk_q4_1 *)src;
        for (int64_t k = 0; k < nb; k++) {
            __m512 d = _mm512_set1_ps(h2f(b[k].d)), m = _mm512_set1_ps(h2f(b[k].m)), lo, hi;
            unpack_q4(b[k].qs, 0.0f, &lo, &hi);
            _mm512_storeu_ps(o + k * 32, _mm512_add_ps(_mm512_mul_ps(lo, d), m));
            _mm512_storeu_ps(o + k * 32 + 16, _mm512_add_ps(_mm512_mul_ps(hi, d), m));
        }
        return true;
    }
    if (t == EE_DT_Q4_0) {
        const ee_blk_q4_0 *b = (const ee_blk_q4_0 *)src;
        for (int64_t k = 0; k < nb; k++) {
            __m512 d = _mm512_set1_ps(h2f(b[k].d)), lo, hi;
            unpack_q4(b[k].qs, 8.0f, &lo, &hi);
            _mm512_storeu_ps(o + k * 32, _mm512_mul_ps(lo, d));
            _mm512_storeu_ps(o + k * 32 + 16, _mm512_mul_ps(hi, d));
        }
        return true;
    }
    if (t == EE_DT_Q8_0) {
        const ee_blk_q8_0 *b = (const ee_blk_q8_0 *)src;
        for (int64_t k = 0; k < nb; k++) {
            __m512 d = _mm512_set1_ps(h2f(b[k].d));
            __m512 q0 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)b[k].qs)));
            __m512 q1 = _mm512_cvtepi32_ps(
                _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(b[k].qs + 16))));
            _mm512_storeu_ps(o + k * 32, _mm512_mul_ps(q0, d));
            _mm512_storeu_ps(o + k * 32 + 16, _mm512_mul_ps(q1, d));
        }
        return true;
    }
    return false;
}

/* ---- exp and SiLU ------------------------------------------------------------ */

/* exp(x) for 16 lanes: n = round(x log2 e), r = x - n ln2 (two-part ln2),
 * exp(r) by the Cephes polynomial, then scalef by 2^n (which also gives 0
 * for very negative x and inf for overflow). */
static inline __m512 exp16(__m512 x) {
    x = _mm512_max_ps(_mm512_min_ps(x, _mm512_set1_ps(88.7228f)), _mm512_set1_ps(-104.0f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(p, n);
}

static double exp_sum(float *x, int n, float sub) {
    /* Sum in double (two 8-lane halves): a softmax row sums values <= 1,
     * but callers may pass unshifted inputs whose float sum overflows. */
    __m512d acc_lo = _mm512_setzero_pd(), acc_hi = _mm512_setzero_pd();
    const __m512 s = _mm512_set1_ps(sub);
    for (int i = 0; i < n; i += 16) {
        __mmask16 k = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        __m512 e = _mm512_maskz_mov_ps(k, exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), s)));
        _mm512_mask_storeu_ps(x + i, k, e);
        acc_lo = _mm512_add_pd(acc_lo, _mm512_cvtps_pd(_mm512_castps512_ps256(e)));
        acc_hi = _mm512_add_pd(acc_hi, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(e), 1))));
    }
    return _mm512_reduce_add_pd(_mm512_add_pd(acc_lo, acc_hi));
}

static void silu(float *x, size_t n) {
    size_t i = 0;
    const __m512 one = _mm512_set1_ps(1.0f);
    for (; i + 16 <= n; i += 16) {
        __m512 v = _mm512_loadu_ps(x + i);
        __m512 e = exp16(_mm512_sub_ps(_mm512_setzero_ps(), v));
        _mm512_storeu_ps(x + i, _mm512_div_ps(v, _mm512_add_ps(one, e)));
    }
    for (; i < n; i++) x[i] = x[i] / (1.0f + expf(-x[i]));
}

const ee_kernel_set ee_kernels_avx512_set = {
    .name = "avx512",
    .gemv_rows = gemv_rows,
    .dequant_row = dequant_row,
    .exp_sum = exp_sum,
    .silu = silu,
};
