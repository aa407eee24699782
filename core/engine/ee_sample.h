/* ee_sample: choosing the next token from logits.
 *
 * Greedy when temperature <= 0 (ties break to the lowest id, like argmax).
 * Otherwise: temperature, then top-k, then top-p (nucleus) over the
 * survivors, then a draw from a seeded PCG32 stream, so the same seed and
 * logits give the same tokens on every machine. */
#ifndef EE_SAMPLE_H
#define EE_SAMPLE_H

#include "ee_error.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct ee_sample_params {
    float temperature; /* <= 0: greedy */
    int top_k;         /* <= 0: all */
    float top_p;       /* (0, 1]; 1: all */
    uint64_t seed;
} ee_sample_params;

typedef struct ee_sampler ee_sampler;

/* Validates params (names the bad one). */
ee_sampler *ee_sampler_new(const ee_sample_params *p, int n_vocab, ee_err *err);
void ee_sampler_free(ee_sampler *s);
int32_t ee_sampler_next(ee_sampler *s, const float *logits);

/* Index of the largest logit (lowest index on ties). */
int32_t ee_argmax(const float *x, int n);

#endif
