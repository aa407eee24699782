/* ee_ops: the layer kinds, each a plain function over f32 rows.
 *
 * Kept separate from any architecture so a Llama decoder, a BERT encoder
 * and a CNN are compositions of the same pieces. Reference semantics are
 * the ones llama.cpp / PyTorch use (noted per function). */
#ifndef EE_OPS_H
#define EE_OPS_H

#include <stddef.h>
#include <stdint.h>

/* y = x / sqrt(mean(x^2) + eps) * g   (g may be NULL: no gain) */
void ee_rmsnorm(float *y, const float *x, const float *g, int n, float eps);
/* y = (x - mean) / sqrt(var + eps) * g + b   (g, b may be NULL) */
void ee_layernorm(float *y, const float *x, const float *g, const float *b,
                  int n, float eps);

void ee_relu(float *x, size_t n);
void ee_silu(float *x, size_t n);                 /* x * sigmoid(x) */
void ee_gelu(float *x, size_t n);                 /* erf form (BERT, torch default) */
void ee_gelu_tanh(float *x, size_t n);            /* tanh approximation */
/* a[i] = silu(a[i]) * b[i]  (SwiGLU) */
void ee_swiglu(float *a, const float *b, size_t n);

/* In-place softmax over n values; returns nothing, handles -inf entries. */
void ee_softmax(float *x, int n);

/* x[i] = exp(x[i] - sub) for i < n; returns the sum of the results (in
 * double). Vectorised (AVX-512 or AVX2, chosen at run time: range
 * reduction + degree-6 polynomial, within 2 ulp of expf); scalar expf
 * otherwise. */
double ee_exp_sum(float *x, int n, float sub);

/* cos/sin table for one position: cs[2i] = cos(pos * theta^(-2i/n_rot)),
 * cs[2i+1] = sin(...), i < n_rot/2. */
void ee_rope_table(float *cs, int n_rot, int pos, float theta);
/* Rotate adjacent pairs of each head with a table from ee_rope_table. */
void ee_rope_apply(float *x, int n_heads, int hd, int n_rot, const float *cs);

/* RoPE on adjacent pairs (GGUF/llama.cpp "normal" layout): for pair i of a
 * head of dim hd, angle = pos * theta^(-2i/hd);
 * (x0, x1) -> (x0 cos - x1 sin, x0 sin + x1 cos). Applies to n_heads heads
 * stored contiguously in x ([n_heads][hd]). Only the first n_rot dims of
 * each head are rotated (n_rot <= hd, even). */
void ee_rope_adjacent(float *x, int n_heads, int hd, int n_rot, int pos,
                      float theta);

/* sum a[i] b[i], vectorised (several accumulators: a single running sum is
 * bound by FMA latency, not throughput). */
float ee_dot(const float *a, const float *b, int n);

/* y[i] += x[i] */
void ee_add(float *y, const float *x, size_t n);

#endif
