/* ee_generate: one sequence's generation loop (prefill in chunks, then
 * decode token by token) over ee_llama, with stop ids, a token limit, an
 * optional deadline and a per-token callback for streaming/cancellation.
 * The consumer's batched scheduler uses ee_llama_forward directly; this is
 * the single-stream path used by the CLI and the tests. */
#ifndef EE_GENERATE_H
#define EE_GENERATE_H

#include "ee_error.h"
#include "ee_llama.h"
#include "ee_sample.h"

#include <stdbool.h>
#include <stdint.h>

#define EE_PREFILL_CHUNK 512 /* tokens per prefill forward (bounds scratch) */

typedef struct ee_gen_params {
    int max_tokens;          /* >= 1 */
    ee_sample_params sample;
    const int32_t *stop_ids; /* end-of-generation ids (not emitted) */
    int n_stop;
    bool ignore_stop;        /* benchmarking: always run max_tokens */
    int64_t deadline_ms;     /* absolute epoch ms; 0 = none */
} ee_gen_params;

typedef enum ee_finish {
    EE_FINISH_STOP = 0,    /* hit a stop id */
    EE_FINISH_LENGTH,      /* max_tokens reached */
    EE_FINISH_CANCELLED,   /* callback asked to stop */
    EE_FINISH_DEADLINE,    /* deadline passed */
} ee_finish;

const char *ee_finish_name(ee_finish f); /* "stop", "length", ... */

typedef struct ee_gen_result {
    int32_t *tokens;   /* generated ids (malloc'd), stop id excluded */
    int n_tokens;
    int n_prompt;
    ee_finish finish;
    int32_t stop_id;   /* the stop id seen, or -1 */
    double prefill_ms; /* prompt forward until first token's logits */
    double decode_ms;  /* the remaining forwards */
    int n_decode;      /* single-token forwards run (decode tok/s = n_decode / decode_ms) */
} ee_gen_result;

/* Return non-zero to stop generation (finish = cancelled). */
typedef int (*ee_gen_token_cb)(void *user, int32_t token, int index);

int ee_generate(const ee_llama_model *m, ee_llama_ctx *ctx, const int32_t *prompt,
                int n_prompt, const ee_gen_params *p, ee_gen_token_cb cb, void *user,
                ee_gen_result *res, ee_err *err);
void ee_gen_result_free(ee_gen_result *r);

#endif
