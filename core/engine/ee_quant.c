/* Reference scalar conversions between f32 and the stored tensor types.
 * Each kernel follows ggml's dequantize_row_* / quantize_row_*_ref
 * (ggml-quants.c) operation by operation so results are bit-exact; the
 * comments note where the order of operations matters. */
#include "ee_quant.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

/* Bit-exactness depends on a*b+c not being fused into an FMA. GCC in ISO
 * mode (-std=c11) already uses -ffp-contract=off; clang needs the pragma. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif
#if defined(__FAST_MATH__)
#error "ee_quant.c must not be built with -ffast-math: the reference kernels must be bit-exact"
#endif

_Static_assert(sizeof(float) == 4, "float must be IEEE binary32");
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "GGUF blocks are read in host order: little-endian hosts only");

static inline uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static inline float f32_from_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Blocks sit at arbitrary byte offsets (mmap + 18/20/34-byte blocks), so
 * scales are read with memcpy, never through a uint16_t pointer. */
static inline uint16_t rd16(const uint8_t *p) {
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}

static inline void wr16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }

float ee_fp16_to_fp32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t mant = h & 0x3ff;
    uint32_t bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (mant << 13);  /* inf / NaN, payload kept */
    } else if (exp != 0) {
        bits = sign | ((exp + 112) << 23) | (mant << 13);
    } else if (mant == 0) {
        bits = sign;
    } else {
        /* Subnormal half: normalize. value = mant * 2^-24. */
        uint32_t e = 113;
        while (!(mant & 0x400)) {
            mant <<= 1;
            e--;
        }
        bits = sign | (e << 23) | ((mant & 0x3ff) << 13);
    }
    return f32_from_bits(bits);
}

uint16_t ee_fp32_to_fp16(float f) {
    uint32_t x = f32_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t a = x & 0x7fffffffu;
    if (a > 0x7f800000u) {
        /* NaN: quiet it and keep the top payload bits, as F16C does. */
        return (uint16_t)(sign | 0x7e00 | ((a >> 13) & 0x3ff));
    }
    if (a >= 0x477ff000u) {
        /* >= 65520 (halfway past the largest half, 65504) rounds to inf. */
        return (uint16_t)(sign | 0x7c00);
    }
    if (a < 0x38800000u) {
        /* Below the smallest normal half (2^-14): subnormal or zero.
         * value / 2^-24 = mant * 2^(e-126); round to nearest even. */
        if (a <= 0x33000000u) return sign; /* <= 2^-25: ties to even -> 0 */
        uint32_t e = a >> 23;
        uint32_t mant = (a & 0x7fffff) | 0x800000;
        uint32_t shift = 126 - e; /* 14..24 */
        uint32_t q = mant >> shift;
        uint32_t rem = mant & ((1u << shift) - 1);
        uint32_t half = 1u << (shift - 1);
        if (rem > half || (rem == half && (q & 1))) q++;
        return (uint16_t)(sign | q); /* q == 0x400 encodes 2^-14 exactly */
    }
    uint32_t h = ((a >> 23) - 112) << 10 | ((a >> 13) & 0x3ff);
    uint32_t rem = a & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++; /* carry may bump exp */
    return (uint16_t)(sign | h);
}

float ee_bf16_to_fp32(uint16_t h) { return f32_from_bits((uint32_t)h << 16); }

uint16_t ee_fp32_to_bf16(float f) {
    /* Same as ggml_compute_fp32_to_bf16: NaN forced quiet, no flush of
     * subnormals, round to nearest even. */
    uint32_t u = f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 64);
    return (uint16_t)((u + (0x7fffu + ((u >> 16) & 1))) >> 16);
}

/* ggml writes `(int8_t)(float)`; a float whose value does not fit is UB in
 * C. x86 (cvttss2si) yields INT32_MIN for out-of-range/NaN and the low byte
 * is kept; we reproduce that without the UB so garbage inputs stay defined. */
static inline int8_t trunc_i8(float v) {
    int32_t i = (v >= -2147483648.0f && v < 2147483648.0f) ? (int32_t)v : INT32_MIN;
    return (int8_t)(uint8_t)((uint32_t)i & 0xff);
}

static inline int min15(int v) { return v < 15 ? v : 15; }

enum { QK = 32, QK_K = 256 };

static void deq_q4_0(const uint8_t *b, float *y, uint64_t nb) {
    for (uint64_t i = 0; i < nb; i++, b += 18, y += QK) {
        const float d = ee_fp16_to_fp32(rd16(b));
        const uint8_t *qs = b + 2;
        for (int j = 0; j < QK / 2; j++) {
            const int x0 = (qs[j] & 0x0f) - 8;
            const int x1 = (qs[j] >> 4) - 8;
            y[j] = (float)x0 * d;
            y[j + QK / 2] = (float)x1 * d;
        }
    }
}

static void deq_q4_1(const uint8_t *b, float *y, uint64_t nb) {
    for (uint64_t i = 0; i < nb; i++, b += 20, y += QK) {
        const float d = ee_fp16_to_fp32(rd16(b));
        const float m = ee_fp16_to_fp32(rd16(b + 2));
        const uint8_t *qs = b + 4;
        for (int j = 0; j < QK / 2; j++) {
            const int x0 = qs[j] & 0x0f;
            const int x1 = qs[j] >> 4;
            /* (q*d) + m, rounded twice: no FMA (see pragma above). */
            y[j] = (float)x0 * d + m;
            y[j + QK / 2] = (float)x1 * d + m;
        }
    }
}

static void deq_q8_0(const uint8_t *b, float *y, uint64_t nb) {
    for (uint64_t i = 0; i < nb; i++, b += 34, y += QK) {
        const float d = ee_fp16_to_fp32(rd16(b));
        const int8_t *qs = (const int8_t *)(b + 2);
        for (int j = 0; j < QK; j++) y[j] = (float)qs[j] * d;
    }
}

static void scale_min_k4(int j, const uint8_t *q, uint8_t *d, uint8_t *m) {
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = (uint8_t)((q[j + 4] & 0xf) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

/* block_q4_K: f16 d, f16 dmin, u8 scales[12], u8 qs[128]. */
static void deq_q4_k(const uint8_t *b, float *y, uint64_t nb) {
    for (uint64_t i = 0; i < nb; i++, b += 144) {
        const float d = ee_fp16_to_fp32(rd16(b));
        const float min = ee_fp16_to_fp32(rd16(b + 2));
        const uint8_t *scales = b + 4;
        const uint8_t *q = b + 16;
        int is = 0;
        for (int j = 0; j < QK_K; j += 64) {
            uint8_t sc, m;
            scale_min_k4(is + 0, scales, &sc, &m);
            const float d1 = d * sc, m1 = min * m;
            scale_min_k4(is + 1, scales, &sc, &m);
            const float d2 = d * sc, m2 = min * m;
            for (int l = 0; l < 32; l++) *y++ = d1 * (float)(q[l] & 0xf) - m1;
            for (int l = 0; l < 32; l++) *y++ = d2 * (float)(q[l] >> 4) - m2;
            q += 32;
            is += 2;
        }
    }
}

/* block_q6_K: u8 ql[128], u8 qh[64], i8 scales[16], f16 d. */
static void deq_q6_k(const uint8_t *b, float *y, uint64_t nb) {
    for (uint64_t i = 0; i < nb; i++, b += 210) {
        const float d = ee_fp16_to_fp32(rd16(b + 208));
        const uint8_t *ql = b;
        const uint8_t *qh = b + 128;
        const int8_t *sc = (const int8_t *)(b + 192);
        for (int n = 0; n < QK_K; n += 128) {
            for (int l = 0; l < 32; l++) {
                const int is = l / 16;
                const int q1 = ((ql[l] & 0xf) | (((qh[l] >> 0) & 3) << 4)) - 32;
                const int q2 = ((ql[l + 32] & 0xf) | (((qh[l] >> 2) & 3) << 4)) - 32;
                const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                /* (d * scale) * q, in that order as ggml does. */
                y[l + 0] = d * (float)sc[is + 0] * (float)q1;
                y[l + 32] = d * (float)sc[is + 2] * (float)q2;
                y[l + 64] = d * (float)sc[is + 4] * (float)q3;
                y[l + 96] = d * (float)sc[is + 6] * (float)q4;
            }
            y += 128;
            ql += 64;
            qh += 32;
            sc += 8;
        }
    }
}

static int check_args(const char *what, ee_dtype t, const void *src, const void *dst,
                      uint64_t n, ee_err *err, const ee_dtype_info **info_out) {
    const ee_dtype_info *info = ee_dtype_get((uint32_t)t);
    if (!info) return ee_err_set(err, "%s: unknown tensor type %u", what, (unsigned)t);
    if (n % info->block_elems != 0)
        return ee_err_set(err, "%s %s: %llu values is not a multiple of the block size %u",
                          what, info->name, (unsigned long long)n, info->block_elems);
    if (n > 0 && (!src || !dst)) return ee_err_set(err, "%s %s: NULL buffer", what, info->name);
    *info_out = info;
    return 0;
}

int ee_dequantize_row(ee_dtype t, const void *src, float *dst, uint64_t n, ee_err *err) {
    const ee_dtype_info *info;
    if (check_args("dequantize", t, src, dst, n, err, &info) < 0) return -1;
    const uint8_t *s = src;
    uint64_t nb = n / info->block_elems;
    switch (t) {
    case EE_DT_F32:
        if (n) memcpy(dst, src, (size_t)n * 4);
        return 0;
    case EE_DT_F16:
        for (uint64_t i = 0; i < n; i++) dst[i] = ee_fp16_to_fp32(rd16(s + 2 * i));
        return 0;
    case EE_DT_BF16:
        for (uint64_t i = 0; i < n; i++) dst[i] = ee_bf16_to_fp32(rd16(s + 2 * i));
        return 0;
    case EE_DT_Q4_0: deq_q4_0(s, dst, nb); return 0;
    case EE_DT_Q4_1: deq_q4_1(s, dst, nb); return 0;
    case EE_DT_Q8_0: deq_q8_0(s, dst, nb); return 0;
    case EE_DT_Q4_K: deq_q4_k(s, dst, nb); return 0;
    case EE_DT_Q6_K: deq_q6_k(s, dst, nb); return 0;
    }
    return ee_err_set(err, "dequantize: unsupported type %s", info->name);
}

/* quantize_row_q8_0_ref: d = amax/127, q = roundf(x/d) (half away from 0). */
static void q_q8_0(const float *x, uint8_t *b, uint64_t nb) {
    for (uint64_t i = 0; i < nb; i++, x += QK, b += 34) {
        float amax = 0.0f;
        for (int j = 0; j < QK; j++) {
            const float a = fabsf(x[j]);
            amax = amax > a ? amax : a; /* ggml's MAX(): NaN propagates like it */
        }
        const float d = amax / ((1 << 7) - 1);
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        wr16(b, ee_fp32_to_fp16(d));
        for (int j = 0; j < QK; j++) {
            const float x0 = x[j] * id;
            b[2 + j] = (uint8_t)trunc_i8(roundf(x0));
        }
    }
}

/* quantize_row_q4_0_ref: d = (value with the largest |x|, first one on
 * ties) / -8, q = MIN(15, (int8_t)(x/d + 8.5)). */
static void q_q4_0(const float *x, uint8_t *b, uint64_t nb) {
    for (uint64_t i = 0; i < nb; i++, x += QK, b += 18) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < QK; j++) {
            const float v = x[j];
            if (amax < fabsf(v)) {
                amax = fabsf(v);
                max = v;
            }
        }
        const float d = max / -8;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        wr16(b, ee_fp32_to_fp16(d));
        for (int j = 0; j < QK / 2; j++) {
            const float x0 = x[j] * id;
            const float x1 = x[QK / 2 + j] * id;
            const uint8_t xi0 = (uint8_t)min15(trunc_i8(x0 + 8.5f));
            const uint8_t xi1 = (uint8_t)min15(trunc_i8(x1 + 8.5f));
            b[2 + j] = (uint8_t)(xi0 | (xi1 << 4));
        }
    }
}

/* quantize_row_q4_1_ref: d = (max-min)/15, m = min,
 * q = MIN(15, (int8_t)((x-min)/d + 0.5)). */
static void q_q4_1(const float *x, uint8_t *b, uint64_t nb) {
    for (uint64_t i = 0; i < nb; i++, x += QK, b += 20) {
        float min = FLT_MAX, max = -FLT_MAX;
        for (int j = 0; j < QK; j++) {
            const float v = x[j];
            if (v < min) min = v;
            if (v > max) max = v;
        }
        const float d = (max - min) / ((1 << 4) - 1);
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        wr16(b, ee_fp32_to_fp16(d));
        wr16(b + 2, ee_fp32_to_fp16(min));
        for (int j = 0; j < QK / 2; j++) {
            const float x0 = (x[j] - min) * id;
            const float x1 = (x[QK / 2 + j] - min) * id;
            const uint8_t xi0 = (uint8_t)min15(trunc_i8(x0 + 0.5f));
            const uint8_t xi1 = (uint8_t)min15(trunc_i8(x1 + 0.5f));
            b[4 + j] = (uint8_t)(xi0 | (xi1 << 4));
        }
    }
}

int ee_quantize_row(ee_dtype t, const float *src, void *dst, uint64_t n, ee_err *err) {
    const ee_dtype_info *info;
    if (check_args("quantize", t, src, dst, n, err, &info) < 0) return -1;
    uint8_t *d = dst;
    uint64_t nb = n / info->block_elems;
    switch (t) {
    case EE_DT_F32:
        if (n) memcpy(dst, src, (size_t)n * 4);
        return 0;
    case EE_DT_F16:
        for (uint64_t i = 0; i < n; i++) wr16(d + 2 * i, ee_fp32_to_fp16(src[i]));
        return 0;
    case EE_DT_BF16:
        for (uint64_t i = 0; i < n; i++) wr16(d + 2 * i, ee_fp32_to_bf16(src[i]));
        return 0;
    case EE_DT_Q8_0: q_q8_0(src, d, nb); return 0;
    case EE_DT_Q4_0: q_q4_0(src, d, nb); return 0;
    case EE_DT_Q4_1: q_q4_1(src, d, nb); return 0;
    case EE_DT_Q4_K:
    case EE_DT_Q6_K:
        break;
    }
    return ee_err_set(err, "quantize: type %s is not supported (dequantize only)", info->name);
}
