/* ee_batch: continuous batching of generations over one ee_llama context.
 *
 * The worker's scheduler. Up to max_seqs generations run together: every
 * ee_batch_step() is ONE ee_llama_forward over all active jobs (a prompt
 * chunk for jobs still in prefill, one token for jobs decoding), then one
 * sampled token per job whose logits were computed. Jobs join and leave
 * between steps, so a long generation never blocks a short one and decode
 * of k jobs reads the weights once instead of k times (decode is bound by
 * memory bandwidth; docs/ENGINE.md).
 *
 * Per job the result is what ee_generate() gives for the same prompt and
 * params (same sampler stream, same stop/length/deadline rules); logits
 * agree to float rounding (the batched matmuls sum in a different order).
 *
 * Not thread-safe: one thread owns a batch (and its ee_llama_ctx). */
#ifndef EE_BATCH_H
#define EE_BATCH_H

#include "ee_error.h"
#include "ee_generate.h"
#include "ee_llama.h"

#include <stdbool.h>
#include <stdint.h>

#define EE_BATCH_MAX_SEQS 64
#define EE_BATCH_MAX_STOP 32 /* stop ids per job (request + model) */

typedef struct ee_batch ee_batch;

/* Called for each generated token (not for the stop id); index counts from
 * 0 per job. Return non-zero to stop that job (finish = cancelled). */
typedef int (*ee_batch_token_fn)(void *job, int32_t token, int index);

/* Called once per job when it ends, from ee_batch_step (or ee_batch_cancel
 * / ee_batch_free). rc 0: res is the result (the callee owns res->tokens:
 * ee_gen_result_free). rc -1: the job failed with err (res has the tokens
 * generated so far, also owned by the callee). */
typedef void (*ee_batch_done_fn)(void *job, int rc, ee_gen_result *res, const ee_err *err);

typedef struct ee_batch_callbacks {
    ee_batch_token_fn on_token; /* may be NULL */
    ee_batch_done_fn on_done;   /* required */
} ee_batch_callbacks;

/* max_seqs: 1..EE_BATCH_MAX_SEQS jobs in flight. m and ctx must outlive the
 * batch. */
ee_batch *ee_batch_new(const ee_llama_model *m, ee_llama_ctx *ctx, int max_seqs,
                       const ee_batch_callbacks *cb, ee_err *err);
/* Ends every job still running with finish = cancelled (on_done rc 0). */
void ee_batch_free(ee_batch *b);

/* Jobs running / free slots. */
int ee_batch_active(const ee_batch *b);
int ee_batch_free_slots(const ee_batch *b);

/* Add a job. The prompt and stop ids are copied. Checks (before taking a
 * slot): a free slot, prompt length >= 1, max_tokens >= 1, prompt +
 * max_tokens within the model's context, every id in [0, n_vocab), the
 * sampling params. Returns 0, or -1 with err (the job was not added and
 * on_done is not called). job is the caller's handle passed back to the
 * callbacks. */
int ee_batch_add(ee_batch *b, const int32_t *prompt, int n_prompt, const ee_gen_params *p,
                 void *job, ee_err *err);

/* One forward over all active jobs, then sampling, token callbacks and
 * on_done for jobs that ended. Returns the number of jobs still active
 * (>= 0), or -1 with err if the forward itself failed (every job of the
 * step then ended with on_done rc -1). A step with no jobs returns 0. */
int ee_batch_step(ee_batch *b, ee_err *err);

/* End the job now (finish = cancelled, on_done rc 0 with the tokens so
 * far). Returns 0, or -1 if job is not in the batch. */
int ee_batch_cancel(ee_batch *b, void *job);

#endif
