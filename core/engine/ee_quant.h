/* ee_quant: conversion between f32 and the stored tensor types.
 *
 * Reference (scalar) kernels, bit-exact with ggml's reference
 * dequantize_row_* / quantize_row_*_ref. Fast fused kernels live elsewhere
 * (ee_kernels) and are tested against these. */
#ifndef EE_QUANT_H
#define EE_QUANT_H

#include "ee_dtype.h"
#include "ee_error.h"

#include <stdint.h>

float ee_fp16_to_fp32(uint16_t h);
uint16_t ee_fp32_to_fp16(float f);   /* round to nearest even */
float ee_bf16_to_fp32(uint16_t h);
uint16_t ee_fp32_to_bf16(float f);   /* round to nearest even, NaN kept */

/* Dequantize n values (n a multiple of the type's block size) from src. */
int ee_dequantize_row(ee_dtype t, const void *src, float *dst, uint64_t n,
                      ee_err *err);

/* Quantize n values into dst (ee_dtype_row_bytes(t, n) bytes). Supported:
 * F32, F16, BF16, Q8_0, Q4_0, Q4_1. */
int ee_quantize_row(ee_dtype t, const float *src, void *dst, uint64_t n,
                    ee_err *err);

/* The same block layouts, with the scale (and Q4_1's minimum) searched for
 * the least squared error of the stored block (ee_quant_search.c): lower
 * error than the reference for Q8_0, Q4_0 and Q4_1; other types quantize
 * as ee_quantize_row. Deterministic. Non-finite input is an error. */
int ee_quantize_row_search(ee_dtype t, const float *src, void *dst, uint64_t n,
                           ee_err *err);

#endif
