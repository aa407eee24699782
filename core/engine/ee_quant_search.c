/* ee_quant_search: block quantization that searches the block scale (and
 * minimum) for the least squared error, instead of taking them from the
 * block's extremes as ggml's reference quantizers do.
 *
 * Why: an encrypted model's weights are the plaintext ones rotated,
 * permuted and rescaled, then rounded again. For SmolLM2, published only
 * as Q4_1, the plaintext requantizes onto its own grid for free while the
 * encrypted weights pay a second rounding (docs/BENCHMARKS.md, "Quantized
 * encrypted models"). A better rounding of the encrypted weights is the
 * part of that gap the key holder can close. The file format is unchanged
 * (any GGUF reader, llama.cpp included, reads the blocks).
 *
 * Method (after ggml's make_qx_quants / make_qkx2_quants): for a set of
 * candidate scales around the extremes' one, round every value, solve the
 * least-squares scale (and minimum) for those integers, and keep the
 * candidate whose error, with d and m rounded to f16 as stored, is least.
 * The integers are then re-rounded against the stored f16 values, which is
 * optimal for them. The reference quantizer's block is a candidate too, so
 * no block is ever worse than ggml's rounding of it. Pure float arithmetic
 * in a fixed order: deterministic. */
#include "ee_quant.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#define QK 32
#define N_STEPS 20 /* candidates on each side of the extremes' scale */

static void wr16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }

static inline int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

static float f16_round(float v) { return ee_fp16_to_fp32(ee_fp32_to_fp16(v)); }

/* Symmetric: x ~ d q, q in [qmin, qmax]. Writes the best d (f16-rounded)
 * and q; returns the squared error. */
static float symmetric_block(const float *x, int qmin, int qmax, float *d_out, int *q) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < QK; j++)
        if (fabsf(x[j]) > amax) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    if (amax == 0.0f) {
        *d_out = 0.0f;
        for (int j = 0; j < QK; j++) q[j] = 0;
        return 0.0f;
    }
    /* The extreme value maps to the end of the range with more room
     * (qmin = -8 for Q4_0, as ggml's reference does), or a bit inside. */
    const float nmax = (float)(-qmin > qmax ? -qmin : qmax);
    const float sign = -qmin > qmax ? -1.0f : 1.0f;
    float best_err = FLT_MAX, best_d = 0.0f;
    for (int s = -N_STEPS; s <= N_STEPS; s++) {
        const float iscale = sign * (nmax + 0.1f * (float)s) / max;
        float sxq = 0.0f, sqq = 0.0f;
        for (int j = 0; j < QK; j++) {
            const int l = clampi((int)lrintf(iscale * x[j]), qmin, qmax);
            sxq += x[j] * (float)l;
            sqq += (float)l * (float)l;
        }
        if (sqq <= 0.0f) continue;
        const float d = f16_round(sxq / sqq);
        if (d == 0.0f) continue;
        const float id = 1.0f / d;
        float err = 0.0f;
        for (int j = 0; j < QK; j++) {
            const int l = clampi((int)lrintf(x[j] * id), qmin, qmax);
            const float e = x[j] - d * (float)l;
            err += e * e;
        }
        if (err < best_err) {
            best_err = err;
            best_d = d;
        }
    }
    const float id = best_d != 0.0f ? 1.0f / best_d : 0.0f;
    for (int j = 0; j < QK; j++) q[j] = clampi((int)lrintf(x[j] * id), qmin, qmax);
    *d_out = best_d;
    return best_err;
}

/* Affine: x ~ d q + m, q in [0, 15] (Q4_1). */
static void affine_block(const float *x, float *d_out, float *m_out, int *q) {
    float min = FLT_MAX, max = -FLT_MAX;
    for (int j = 0; j < QK; j++) {
        if (x[j] < min) min = x[j];
        if (x[j] > max) max = x[j];
    }
    if (max == min) {
        *d_out = 0.0f;
        *m_out = f16_round(min);
        for (int j = 0; j < QK; j++) q[j] = 0;
        return;
    }
    float best_err = FLT_MAX, best_d = 0.0f, best_m = min;
    for (int s = -N_STEPS; s <= N_STEPS; s++) {
        const float iscale = (15.0f + 0.1f * (float)s) / (max - min);
        /* Least squares for (d, m) given the integers l. */
        float sl = 0.0f, sll = 0.0f, sx = 0.0f, sxl = 0.0f;
        for (int j = 0; j < QK; j++) {
            const int l = clampi((int)lrintf(iscale * (x[j] - min)), 0, 15);
            sl += (float)l;
            sll += (float)l * (float)l;
            sx += x[j];
            sxl += x[j] * (float)l;
        }
        const float det = QK * sll - sl * sl;
        if (det <= 0.0f) continue;
        float d = (QK * sxl - sl * sx) / det;
        float m = (sll * sx - sl * sxl) / det;
        if (d <= 0.0f) continue;
        d = f16_round(d);
        m = f16_round(m);
        if (d == 0.0f) continue;
        const float id = 1.0f / d;
        float err = 0.0f;
        for (int j = 0; j < QK; j++) {
            const int l = clampi((int)lrintf((x[j] - m) * id), 0, 15);
            const float e = x[j] - (d * (float)l + m);
            err += e * e;
        }
        if (err < best_err) {
            best_err = err;
            best_d = d;
            best_m = m;
        }
    }
    if (best_d == 0.0f) { /* no candidate: the extremes' grid */
        best_d = f16_round((max - min) / 15.0f);
        best_m = f16_round(min);
    }
    const float id = best_d != 0.0f ? 1.0f / best_d : 0.0f;
    for (int j = 0; j < QK; j++) q[j] = clampi((int)lrintf((x[j] - best_m) * id), 0, 15);
    *d_out = best_d;
    *m_out = best_m;
}

int ee_quantize_row_search(ee_dtype t, const float *src, void *dst, uint64_t n, ee_err *err) {
    if (t != EE_DT_Q8_0 && t != EE_DT_Q4_0 && t != EE_DT_Q4_1)
        return ee_quantize_row(t, src, dst, n, err);
    if (n % QK != 0)
        return ee_err_set(err, "quantize: %llu values is not a multiple of the block (%d)",
                          (unsigned long long)n, QK);
    for (uint64_t i = 0; i < n; i++)
        if (!isfinite(src[i]))
            return ee_err_set(err, "quantize: value %llu is not finite", (unsigned long long)i);
    const size_t bb = ee_dtype_get(t)->block_bytes;
    uint8_t *b = dst;
    uint8_t cand[34];
    float y[QK];
    int q[QK];
    for (uint64_t k = 0; k < n / QK; k++, b += bb) {
        const float *x = src + k * QK;
        float d, m;
        switch (t) {
        case EE_DT_Q8_0:
            symmetric_block(x, -127, 127, &d, q);
            wr16(cand, ee_fp32_to_fp16(d));
            for (int j = 0; j < QK; j++) cand[2 + j] = (uint8_t)(int8_t)q[j];
            break;
        case EE_DT_Q4_0:
            symmetric_block(x, -8, 7, &d, q);
            wr16(cand, ee_fp32_to_fp16(d));
            for (int j = 0; j < QK / 2; j++)
                cand[2 + j] = (uint8_t)((q[j] + 8) | ((q[QK / 2 + j] + 8) << 4));
            break;
        default: /* EE_DT_Q4_1 */
            affine_block(x, &d, &m, q);
            wr16(cand, ee_fp32_to_fp16(d));
            wr16(cand + 2, ee_fp32_to_fp16(m));
            for (int j = 0; j < QK / 2; j++) cand[4 + j] = (uint8_t)(q[j] | (q[QK / 2 + j] << 4));
            break;
        }
        /* The reference block into dst; the candidate replaces it only if
         * its stored values are strictly closer. */
        if (ee_quantize_row(t, x, b, QK, err)) return -1;
        double e_ref = 0.0, e_cand = 0.0;
        ee_dequantize_row(t, b, y, QK, NULL);
        for (int j = 0; j < QK; j++) e_ref += ((double)x[j] - y[j]) * ((double)x[j] - y[j]);
        ee_dequantize_row(t, cand, y, QK, NULL);
        for (int j = 0; j < QK; j++) e_cand += ((double)x[j] - y[j]) * ((double)x[j] - y[j]);
        if (e_cand < e_ref) memcpy(b, cand, bb);
    }
    return 0;
}
