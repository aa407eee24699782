/* AVX2 kernels (with FMA and F16C; the x86-64-v3 level): the fused
 * products, dequantization, exp and SiLU. Compiled with its own target
 * flags and AVX-512 explicitly off (Makefile ISA_FLAGS_ee_kernels_avx2), so
 * nothing here needs more than an AVX2 CPU even in a -march=native build;
 * only called after ee_kernels.c checked CPUID.
 *
 * Each 16-lane zmm of the AVX-512 kernels (ee_kernels_avx512.c) is a pair
 * of 8-lane halves here (v.a = lanes 0..7, v.b = lanes 8..15) doing the
 * same operations in the same order, and the horizontal sums pair lanes as
 * _mm512_reduce_add_ps does. So both paths round identically and give
 * bit-identical products, exps and hence the same greedy text; the price is
 * twice the instructions per block, not twice the memory traffic, and
 * single-stream decode is bound by the weight bytes read. */
#include "ee_kernels_impl.h"

#include "ee_quant.h"

#include <immintrin.h>
#include <math.h>

#if !defined(__AVX2__) || !defined(__FMA__) || !defined(__F16C__) || defined(__AVX512F__)
#error "ee_kernels_avx2.c needs its ISA flags (see ISA_FLAGS_ee_kernels_avx2 in the Makefile)"
#endif

#define EE_INLINE static inline __attribute__((always_inline))

/* Sum of 16 lanes (a: 0..7, b: 8..15) with _mm512_reduce_add_ps's pairing:
 * halves, then quarters, then lanes {0,2}+{1,3}. */
EE_INLINE float hsum16(__m256 a, __m256 b) {
    const __m256 t3 = _mm256_add_ps(b, a);
    const __m128 t6 = _mm_add_ps(_mm256_extractf128_ps(t3, 1), _mm256_castps256_ps128(t3));
    const __m128 t8 = _mm_add_ps(t6, _mm_shuffle_ps(t6, t6, _MM_SHUFFLE(1, 0, 3, 2)));
    return _mm_cvtss_f32(t8) + _mm_cvtss_f32(_mm_shuffle_ps(t8, t8, 1));
}

/* Inline F16C conversion: a call into ee_quant per block costs more than
 * the block's arithmetic. */
EE_INLINE float h2f(uint16_t h) { return _cvtsh_ss(h); }

/* 8 bytes at p (any alignment) as 8 int32 lanes, zero- or sign-extended. */
EE_INLINE __m256i load_u8x8(const uint8_t *p) {
    return _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p));
}
EE_INLINE __m256i load_i8x8(const int8_t *p) {
    return _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)p));
}

/* The 32 quants of a Q4 block as floats minus `bias` (8 for Q4_0, 0 for
 * Q4_1), as q[0] = values 0..7, q[1] = 8..15 (low nibbles of qs[0..15]),
 * q[2] = 16..23, q[3] = 24..31 (high nibbles). The bytes are widened to
 * int32 first, so the high nibble is a plain shift. Exact in f32. */
EE_INLINE void unpack_q4(const uint8_t *qs, float bias, __m256 q[4]) {
    const __m256i mask = _mm256_set1_epi32(0x0F);
    const __m256 b = _mm256_set1_ps(bias);
    const __m256i v0 = load_u8x8(qs), v1 = load_u8x8(qs + 8);
    q[0] = _mm256_sub_ps(_mm256_cvtepi32_ps(_mm256_and_si256(v0, mask)), b);
    q[1] = _mm256_sub_ps(_mm256_cvtepi32_ps(_mm256_and_si256(v1, mask)), b);
    q[2] = _mm256_sub_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(v0, 4)), b);
    q[3] = _mm256_sub_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(v1, 4)), b);
}

/* One 32-value block of row `row` (type t, a compile-time constant after
 * inlining): its values as q[0..3] (lanes as in unpack_q4), its scale d
 * and, for the affine Q4_1, its minimum m (0 otherwise). */
EE_INLINE void decode_block(ee_dtype t, const uint8_t *row, int64_t k, __m256 q[4], float *d,
                            float *m) {
    if (t == EE_DT_Q8_0) {
        const ee_blk_q8_0 *b = (const ee_blk_q8_0 *)row + k;
        for (int h = 0; h < 4; h++) q[h] = _mm256_cvtepi32_ps(load_i8x8(b->qs + 8 * h));
        *d = h2f(b->d);
        *m = 0.0f;
    } else if (t == EE_DT_Q4_0) {
        const ee_blk_q4_0 *b = (const ee_blk_q4_0 *)row + k;
        unpack_q4(b->qs, 8.0f, q);
        *d = h2f(b->d);
        *m = 0.0f;
    } else { /* EE_DT_Q4_1 */
        const ee_blk_q4_1 *b = (const ee_blk_q4_1 *)row + k;
        unpack_q4(b->qs, 0.0f, q);
        *d = h2f(b->d);
        *m = h2f(b->m);
    }
}

/* sum_j (q_j d + m) x_j = d sum q x + m sum x per block; the m term only
 * exists for Q4_1 (xs holds the block sums of x). Per activation row two
 * 16-lane accumulators (even and odd blocks, as in the AVX-512 kernel),
 * i.e. four ymm: a[0]/b[0] even blocks, a[1]/b[1] odd. Lane l of the
 * 16-lane product is q_l x_l + q_{l+16} x_{l+16}. */
/* One block k into accumulators (a, b) for every activation row. */
EE_INLINE void block_step(const ee_gemv_job *j, const uint8_t *row, int64_t k, int64_t nb,
                          const int T, const ee_dtype t, __m256 *acca, __m256 *accb,
                          float *macc) {
    __m256 q[4];
    float d, m;
    if (T >= EE_PREFETCH_MIN_T)
        _mm_prefetch((const char *)row + k * ee_blk_bytes(t) + EE_PREFETCH_BYTES, _MM_HINT_T0);
    decode_block(t, row, k, q, &d, &m);
    const __m256 dv = _mm256_set1_ps(d);
    for (int i = 0; i < T; i++) {
        const float *xp = j->x + i * j->ldx + k * 32;
        __m256 sa = _mm256_mul_ps(q[0], _mm256_loadu_ps(xp));
        __m256 sb = _mm256_mul_ps(q[1], _mm256_loadu_ps(xp + 8));
        sa = _mm256_fmadd_ps(q[2], _mm256_loadu_ps(xp + 16), sa);
        sb = _mm256_fmadd_ps(q[3], _mm256_loadu_ps(xp + 24), sb);
        acca[i] = _mm256_fmadd_ps(sa, dv, acca[i]);
        accb[i] = _mm256_fmadd_ps(sb, dv, accb[i]);
        if (t == EE_DT_Q4_1) macc[i] += m * j->xs[i * nb + k];
    }
}

/* sum_j (q_j d + m) x_j = d sum q x + m sum x per block; the m term only
 * exists for Q4_1 (xs holds the block sums of x). Per activation row two
 * 16-lane accumulators (even and odd blocks, as in the AVX-512 kernel),
 * i.e. four ymm: e0/e1 even blocks (lanes 0..7 / 8..15), o0/o1 odd. Lane l
 * of a 16-lane block product is q_l x_l + q_{l+16} x_{l+16}. Blocks go in
 * pairs so every accumulator is a fixed register, never an indexed array. */
EE_INLINE void block_rows_T(const ee_gemv_job *j, int64_t r0, int64_t r1, const int T,
                            const ee_dtype t) {
    const int64_t nb = j->cols / 32;
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *row = j->w + (size_t)r * j->row_bytes;
        __m256 e0[EE_FUSED_MAX_T], e1[EE_FUSED_MAX_T], o0[EE_FUSED_MAX_T], o1[EE_FUSED_MAX_T];
        float macc[EE_FUSED_MAX_T];
        for (int i = 0; i < T; i++) {
            e0[i] = e1[i] = o0[i] = o1[i] = _mm256_setzero_ps();
            macc[i] = 0.0f;
        }
        int64_t k = 0;
        for (; k + 2 <= nb; k += 2) {
            block_step(j, row, k, nb, T, t, e0, e1, macc);
            block_step(j, row, k + 1, nb, T, t, o0, o1, macc);
        }
        if (k < nb) block_step(j, row, k, nb, T, t, e0, e1, macc);
        for (int i = 0; i < T; i++)
            ee_store_out(j, i, r,
                         hsum16(_mm256_add_ps(e0[i], o0[i]), _mm256_add_ps(e1[i], o1[i])) +
                             macc[i]);
    }
}

#define Q4_1_T(j, r0, r1, T) block_rows_T(j, r0, r1, T, EE_DT_Q4_1)
#define Q4_0_T(j, r0, r1, T) block_rows_T(j, r0, r1, T, EE_DT_Q4_0)
#define Q8_0_T(j, r0, r1, T) block_rows_T(j, r0, r1, T, EE_DT_Q8_0)

/* Each body is written once for a compile-time T (always inlined into a
 * switch over T = 1..8), so the accumulators can live in registers. */
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

/* 16 stored values at w + 16k (f32, f16 or bf16) as two 8-lane halves. */
EE_INLINE void load_w16(const uint8_t *w, int64_t k, int kind, __m256 *a, __m256 *b) {
    if (kind == 0) { /* f32 */
        const float *f = (const float *)w + k * 16;
        *a = _mm256_loadu_ps(f);
        *b = _mm256_loadu_ps(f + 8);
    } else {
        const uint16_t *h = (const uint16_t *)w + k * 16;
        const __m128i r0 = _mm_loadu_si128((const __m128i *)h);
        const __m128i r1 = _mm_loadu_si128((const __m128i *)(h + 8));
        if (kind == 1) { /* f16 */
            *a = _mm256_cvtph_ps(r0);
            *b = _mm256_cvtph_ps(r1);
        } else { /* bf16: the top half of an f32 */
            *a = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(r0), 16));
            *b = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(r1), 16));
        }
    }
}

/* 16 values k into accumulators (a, b) for every activation row. */
EE_INLINE void float_step(const ee_gemv_job *j, const uint8_t *wr, int64_t k, const int T,
                          const int kind, __m256 *acca, __m256 *accb) {
    __m256 wa, wb;
    load_w16(wr, k, kind, &wa, &wb);
    for (int i = 0; i < T; i++) {
        const float *xp = j->x + i * j->ldx + k * 16;
        acca[i] = _mm256_fmadd_ps(wa, _mm256_loadu_ps(xp), acca[i]);
        accb[i] = _mm256_fmadd_ps(wb, _mm256_loadu_ps(xp + 8), accb[i]);
    }
}

/* Float rows (kind 0 f32, 1 f16, 2 bf16): 16 values per step into the
 * even/odd accumulators, as the AVX-512 kernel; values past the last
 * multiple of 16 are added one by one after the horizontal sum. */
EE_INLINE void float_rows_T(const ee_gemv_job *j, int64_t r0, int64_t r1, const int T,
                            const int kind) {
    const int64_t nv = j->cols / 16;
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *wr = j->w + (size_t)r * j->row_bytes;
        __m256 e0[EE_FUSED_MAX_T], e1[EE_FUSED_MAX_T], o0[EE_FUSED_MAX_T], o1[EE_FUSED_MAX_T];
        for (int i = 0; i < T; i++) e0[i] = e1[i] = o0[i] = o1[i] = _mm256_setzero_ps();
        int64_t k = 0;
        const int64_t vb = kind == 0 ? 64 : 32; /* bytes per 16 values */
        for (; k + 2 <= nv; k += 2) {
            if (T >= EE_PREFETCH_MIN_T)
                _mm_prefetch((const char *)wr + k * vb + EE_PREFETCH_BYTES, _MM_HINT_T0);
            float_step(j, wr, k, T, kind, e0, e1);
            float_step(j, wr, k + 1, T, kind, o0, o1);
        }
        if (k < nv) float_step(j, wr, k, T, kind, e0, e1);
        for (int i = 0; i < T; i++) {
            float v = hsum16(_mm256_add_ps(e0[i], o0[i]), _mm256_add_ps(e1[i], o1[i]));
            for (int64_t c = nv * 16; c < j->cols; c++) { /* tail */
                float wf = kind == 0   ? ((const float *)wr)[c]
                           : kind == 1 ? h2f(((const uint16_t *)wr)[c])
                                       : ee_bf16_to_fp32(((const uint16_t *)wr)[c]);
                v += wf * j->x[i * j->ldx + c];
            }
            ee_store_out(j, i, r, v);
        }
    }
}

#define F32_T(j, r0, r1, T) float_rows_T(j, r0, r1, T, 0)
#define F16_T(j, r0, r1, T) float_rows_T(j, r0, r1, T, 1)
#define BF16_T(j, r0, r1, T) float_rows_T(j, r0, r1, T, 2)

static bool gemv_rows(const ee_gemv_job *j, int64_t r0, int64_t r1) {
    switch (j->t) {
    case EE_DT_Q4_1: EE_DISPATCH_T(Q4_1_T, j, r0, r1); return true;
    case EE_DT_Q4_0: EE_DISPATCH_T(Q4_0_T, j, r0, r1); return true;
    case EE_DT_Q8_0: EE_DISPATCH_T(Q8_0_T, j, r0, r1); return true;
    case EE_DT_F16: EE_DISPATCH_T(F16_T, j, r0, r1); return true;
    case EE_DT_BF16: EE_DISPATCH_T(BF16_T, j, r0, r1); return true;
    case EE_DT_F32: EE_DISPATCH_T(F32_T, j, r0, r1); return true;
    default: return false;
    }
}

/* ---- dequantization (bit-identical to ee_dequantize_row) ------------------- */

/* q*d + m as a rounded product then a rounded sum (separate intrinsics; the
 * tree builds with -ffp-contract=off), as ggml's reference does. */
static bool dequant_row(ee_dtype t, const uint8_t *src, int64_t cols, float *o) {
    const int64_t nb = cols / 32;
    if (t == EE_DT_Q4_1 || t == EE_DT_Q4_0 || t == EE_DT_Q8_0) {
        for (int64_t k = 0; k < nb; k++) {
            __m256 q[4];
            float d, m;
            decode_block(t, src, k, q, &d, &m);
            const __m256 dv = _mm256_set1_ps(d), mv = _mm256_set1_ps(m);
            for (int h = 0; h < 4; h++) {
                __m256 v = _mm256_mul_ps(q[h], dv);
                if (t == EE_DT_Q4_1) v = _mm256_add_ps(v, mv);
                _mm256_storeu_ps(o + k * 32 + 8 * h, v);
            }
        }
        return true;
    }
    return false;
}

/* ---- exp and SiLU ------------------------------------------------------------ */

/* exp(x) for 8 lanes, the AVX-512 exp16 step for step. scalef(p, n) (one
 * rounding of p 2^n, also into subnormals) becomes two exact-or-once-
 * rounded multiplications by 2^(n/2) halves: p 2^n1 is a normal float for
 * every clamped n, so only the second product rounds. */
EE_INLINE __m256 exp8(__m256 x) {
    x = _mm256_max_ps(_mm256_min_ps(x, _mm256_set1_ps(88.7228f)), _mm256_set1_ps(-104.0f));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    /* n in [-150, 128]: n1 = floor(n/2), n2 = n - n1, both in [-75, 64]. */
    const __m256i ni = _mm256_cvtps_epi32(n);
    const __m256i n1 = _mm256_srai_epi32(ni, 1), n2 = _mm256_sub_epi32(ni, n1);
    const __m256i bias = _mm256_set1_epi32(127);
    const __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23));
    const __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, bias), 23));
    return _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
}

/* Lanes [0, k) set (k <= 8), for masked loads and stores of a tail. */
EE_INLINE __m256i tail_mask(int k) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(k), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

static double exp_sum(float *x, int n, float sub) {
    /* 16 values per step, summed in double exactly as the AVX-512 path:
     * lo holds lanes 0..7 (4 + 4 doubles), hi lanes 8..15, and the final
     * reduction pairs them as _mm512_reduce_add_pd does. */
    __m256d lo0 = _mm256_setzero_pd(), lo1 = lo0, hi0 = lo0, hi1 = lo0;
    const __m256 s = _mm256_set1_ps(sub);
    for (int i = 0; i < n; i += 16) {
        __m256 e[2];
        for (int h = 0; h < 2; h++) {
            const int left = n - i - 8 * h;
            float *p = x + i + 8 * h;
            if (left >= 8) {
                e[h] = exp8(_mm256_sub_ps(_mm256_loadu_ps(p), s));
                _mm256_storeu_ps(p, e[h]);
            } else if (left > 0) {
                const __m256i k = tail_mask(left);
                e[h] = _mm256_and_ps(exp8(_mm256_sub_ps(_mm256_maskload_ps(p, k), s)),
                                     _mm256_castsi256_ps(k));
                _mm256_maskstore_ps(p, k, e[h]);
            } else {
                e[h] = _mm256_setzero_ps();
            }
        }
        lo0 = _mm256_add_pd(lo0, _mm256_cvtps_pd(_mm256_castps256_ps128(e[0])));
        lo1 = _mm256_add_pd(lo1, _mm256_cvtps_pd(_mm256_extractf128_ps(e[0], 1)));
        hi0 = _mm256_add_pd(hi0, _mm256_cvtps_pd(_mm256_castps256_ps128(e[1])));
        hi1 = _mm256_add_pd(hi1, _mm256_cvtps_pd(_mm256_extractf128_ps(e[1], 1)));
    }
    /* 8-double vector v = lo + hi: v[0..3] = lo0 + hi0, v[4..7] = lo1 + hi1. */
    const __m256d t3 = _mm256_add_pd(_mm256_add_pd(lo1, hi1), _mm256_add_pd(lo0, hi0));
    const __m128d t6 = _mm_add_pd(_mm256_extractf128_pd(t3, 1), _mm256_castpd256_pd128(t3));
    return _mm_cvtsd_f64(t6) + _mm_cvtsd_f64(_mm_unpackhi_pd(t6, t6));
}

static void silu(float *x, size_t n) {
    size_t i = 0;
    const __m256 one = _mm256_set1_ps(1.0f);
    /* Steps of 16 and a scalar tail, as the AVX-512 path, so the same
     * elements take the same route. */
    for (; i + 16 <= n; i += 16)
        for (size_t h = i; h < i + 16; h += 8) {
            __m256 v = _mm256_loadu_ps(x + h);
            __m256 e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), v));
            _mm256_storeu_ps(x + h, _mm256_div_ps(v, _mm256_add_ps(one, e)));
        }
    for (; i < n; i++) x[i] = x[i] / (1.0f + expf(-x[i]));
}

const ee_kernel_set ee_kernels_avx2_set = {
    .name = "avx2",
    .gemv_rows = gemv_rows,
    .dequant_row = dequant_row,
    .exp_sum = exp_sum,
    .silu = silu,
};
