#include "ee_ops.h"

#include "ee_kernels_impl.h"

#include <math.h>
#include <stdlib.h>

void ee_rmsnorm(float *y, const float *x, const float *g, int n, float eps) {
    /* Accumulate in double: the sum of 576 squares in f32 loses ~1e-6
     * relative, which is visible when we compare logits at 1e-3. */
    double ss = 0.0;
    for (int i = 0; i < n; i++) ss += (double)x[i] * x[i];
    float scale = (float)(1.0 / sqrt(ss / n + eps));
    if (g) {
        for (int i = 0; i < n; i++) y[i] = x[i] * scale * g[i];
    } else {
        for (int i = 0; i < n; i++) y[i] = x[i] * scale;
    }
}

void ee_layernorm(float *y, const float *x, const float *g, const float *b,
                  int n, float eps) {
    double mean = 0.0;
    for (int i = 0; i < n; i++) mean += x[i];
    mean /= n;
    double var = 0.0;
    for (int i = 0; i < n; i++) {
        double d = x[i] - mean;
        var += d * d;
    }
    var /= n;
    float inv = (float)(1.0 / sqrt(var + eps));
    float m = (float)mean;
    for (int i = 0; i < n; i++) {
        float v = (x[i] - m) * inv;
        if (g) v *= g[i];
        if (b) v += b[i];
        y[i] = v;
    }
}

void ee_relu(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

/* exp and SiLU run the kernel set chosen at run time (ee_kernels_impl.h:
 * AVX-512 or AVX2 range reduction + degree-6 polynomial, within 2 ulp of
 * expf); the loops below are the scalar path. */
double ee_exp_sum(float *x, int n, float sub) {
    const ee_kernel_set *ks = ee_kernels_active();
    if (ks->exp_sum) return ks->exp_sum(x, n, sub);
    double sum = 0.0;
    for (int i = 0; i < n; i++) {
        x[i] = expf(x[i] - sub);
        sum += x[i];
    }
    return sum;
}

void ee_silu(float *x, size_t n) {
    const ee_kernel_set *ks = ee_kernels_active();
    if (ks->silu) {
        ks->silu(x, n);
        return;
    }
    for (size_t i = 0; i < n; i++) x[i] = x[i] / (1.0f + expf(-x[i]));
}

void ee_gelu(float *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f));
}

void ee_gelu_tanh(float *x, size_t n) {
    const float c = 0.79788456080286536f; /* sqrt(2/pi) */
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        x[i] = 0.5f * v * (1.0f + tanhf(c * (v + 0.044715f * v * v * v)));
    }
}

void ee_swiglu(float *a, const float *b, size_t n) {
    ee_silu(a, n);
    for (size_t i = 0; i < n; i++) a[i] *= b[i];
}

void ee_softmax(float *x, int n) {
    float mx = -INFINITY;
    for (int i = 0; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    if (mx == -INFINITY) { /* fully masked row: define as zeros */
        for (int i = 0; i < n; i++) x[i] = 0.0f;
        return;
    }
    float inv = (float)(1.0 / ee_exp_sum(x, n, mx));
    for (int i = 0; i < n; i++) x[i] *= inv;
}

void ee_rope_table(float *cs, int n_rot, int pos, float theta) {
    for (int i = 0; i < n_rot / 2; i++) {
        /* Same angle as llama.cpp's theta_scale^i, in double so large
         * positions stay accurate. */
        double ang = (double)pos * pow((double)theta, -2.0 * i / n_rot);
        cs[2 * i] = (float)cos(ang);
        cs[2 * i + 1] = (float)sin(ang);
    }
}

void ee_rope_apply(float *x, int n_heads, int hd, int n_rot, const float *cs) {
    for (int h = 0; h < n_heads; h++) {
        float *p = x + (size_t)h * hd;
        for (int i = 0; i < n_rot / 2; i++) {
            float c = cs[2 * i], s = cs[2 * i + 1], x0 = p[2 * i], x1 = p[2 * i + 1];
            p[2 * i] = x0 * c - x1 * s;
            p[2 * i + 1] = x0 * s + x1 * c;
        }
    }
}

void ee_rope_adjacent(float *x, int n_heads, int hd, int n_rot, int pos, float theta) {
    /* The table in pieces of 256 pairs (any n_rot, no allocation): the
     * angle of pair i depends on i and n_rot only. */
    float cs[512];
    for (int i0 = 0; i0 < n_rot / 2; i0 += 256) {
        const int np = n_rot / 2 - i0 < 256 ? n_rot / 2 - i0 : 256;
        for (int i = 0; i < np; i++) {
            double ang = (double)pos * pow((double)theta, -2.0 * (i0 + i) / n_rot);
            cs[2 * i] = (float)cos(ang);
            cs[2 * i + 1] = (float)sin(ang);
        }
        for (int h = 0; h < n_heads; h++) {
            float *p = x + (size_t)h * hd + 2 * i0;
            for (int i = 0; i < np; i++) {
                float c = cs[2 * i], s = cs[2 * i + 1], x0 = p[2 * i], x1 = p[2 * i + 1];
                p[2 * i] = x0 * c - x1 * s;
                p[2 * i + 1] = x0 * s + x1 * c;
            }
        }
    }
}

float ee_dot(const float *a, const float *b, int n) {
    float acc[16] = {0};
    int i = 0;
    /* 16 independent partial sums: GCC vectorises this into one zmm
     * register (or two ymm) without needing -ffast-math. */
    for (; i + 16 <= n; i += 16)
        for (int k = 0; k < 16; k++) acc[k] += a[i + k] * b[i + k];
    float s = 0.0f;
    for (int k = 0; k < 16; k++) s += acc[k];
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

void ee_add(float *y, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] += x[i];
}

