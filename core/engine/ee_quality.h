/* ee_quality: how far a model's next-token distributions are from a
 * reference model's on the same text, by llama.cpp's `perplexity
 * --kl-divergence` method: per scored position, KL(p_ref || p), whether
 * the two argmaxes agree, and each model's log-likelihood of the true next
 * token (perplexity, and the mean change of its probability).
 *
 * The logits of the model under test may be in another vocabulary order
 * (an encrypted model's ids): map[i] is the column of reference token i. */
#ifndef EE_QUALITY_H
#define EE_QUALITY_H

#include "ee_error.h"

#include <stddef.h>
#include <stdint.h>

typedef struct ee_quality {
    int64_t n;          /* positions scored */
    int64_t same_top;   /* argmax(test) == argmax(ref) */
    double sum_kld, sum_kld2;
    double sum_nll_ref; /* -ln p_ref(target) */
    double sum_nll;     /* -ln p(target) */
    double sum_dp;      /* p(target) - p_ref(target) */
    float *kld;         /* every position's KLD, for percentiles */
    size_t cap;
} ee_quality;

typedef struct ee_quality_summary {
    int64_t n;
    double kld_mean, kld_stderr, kld_median, kld_p99, kld_max;
    double same_top;     /* fraction */
    double ppl_ref, ppl; /* exp(mean NLL) */
    double ln_ppl_ratio; /* ln(ppl / ppl_ref) */
    double delta_p;      /* mean p(target) - p_ref(target) */
} ee_quality_summary;

void ee_quality_init(ee_quality *q);
void ee_quality_free(ee_quality *q);

/* Score one position: ref and test hold n_vocab logits each; test[map[i]]
 * is token i's logit (map NULL: the same order); target is the true next
 * token (a reference id). Non-finite logits are an error. */
int ee_quality_add(ee_quality *q, const float *ref, const float *test, const uint32_t *map,
                   int n_vocab, int32_t target, ee_err *err);

/* Summary of everything added (zeros when nothing was). */
void ee_quality_summarize(const ee_quality *q, ee_quality_summary *out);

#endif
