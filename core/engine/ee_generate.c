#include "ee_generate.h"

#include "ee_clock.h"

#include <stdlib.h>
#include <string.h>

const char *ee_finish_name(ee_finish f) {
    switch (f) {
    case EE_FINISH_STOP: return "stop";
    case EE_FINISH_LENGTH: return "length";
    case EE_FINISH_CANCELLED: return "cancelled";
    case EE_FINISH_DEADLINE: return "deadline";
    }
    return "unknown";
}

static bool is_stop(const ee_gen_params *p, int32_t id) {
    for (int i = 0; i < p->n_stop; i++)
        if (p->stop_ids[i] == id) return true;
    return false;
}

static bool past_deadline(const ee_gen_params *p) {
    return p->deadline_ms > 0 && ee_epoch_ms() >= p->deadline_ms;
}

int ee_generate(const ee_llama_model *m, ee_llama_ctx *ctx, const int32_t *prompt,
                int n_prompt, const ee_gen_params *p, ee_gen_token_cb cb, void *user,
                ee_gen_result *res, ee_err *err) {
    memset(res, 0, sizeof *res);
    res->stop_id = -1;
    res->n_prompt = n_prompt;
    if (n_prompt <= 0) return ee_err_set(err, "empty prompt");
    if (p->max_tokens < 1) return ee_err_set(err, "max_tokens %d must be >= 1", p->max_tokens);
    long need = (long)n_prompt + p->max_tokens;
    if (need > m->hp.n_ctx_train)
        return ee_err_set(err,
                          "prompt (%d tokens) + max_tokens (%d) exceeds the model's "
                          "context of %d",
                          n_prompt, p->max_tokens, m->hp.n_ctx_train);
    int rc = -1;
    ee_kv_cache *kv = ee_kv_cache_new(m, (int)need, err);
    ee_sampler *smp = kv ? ee_sampler_new(&p->sample, m->hp.n_vocab, err) : NULL;
    float *logits = malloc((size_t)m->hp.n_vocab * sizeof(float));
    res->tokens = malloc((size_t)p->max_tokens * sizeof(int32_t));
    if (!kv || !smp || !logits || !res->tokens) {
        if (kv && smp) ee_err_set(err, "out of memory");
        goto out;
    }

    double t0 = ee_now_ms();
    for (int off = 0; off < n_prompt; off += EE_PREFILL_CHUNK) {
        int n = n_prompt - off < EE_PREFILL_CHUNK ? n_prompt - off : EE_PREFILL_CHUNK;
        bool last = off + n == n_prompt;
        ee_llama_seq sq = {.tokens = prompt + off, .n_tokens = n, .cache = kv,
                           .logits = last ? logits : NULL};
        if (ee_llama_forward(ctx, &sq, 1, err) != 0) goto out;
        if (past_deadline(p)) {
            res->finish = EE_FINISH_DEADLINE;
            res->prefill_ms = ee_now_ms() - t0;
            rc = 0;
            goto out;
        }
    }
    double t1 = ee_now_ms();
    res->prefill_ms = t1 - t0;
    res->finish = EE_FINISH_LENGTH;
    for (int i = 0; i < p->max_tokens; i++) {
        int32_t tok = ee_sampler_next(smp, logits);
        if (!p->ignore_stop && is_stop(p, tok)) {
            res->finish = EE_FINISH_STOP;
            res->stop_id = tok;
            break;
        }
        res->tokens[res->n_tokens++] = tok;
        if (cb && cb(user, tok, i) != 0) {
            res->finish = EE_FINISH_CANCELLED;
            break;
        }
        if (i + 1 == p->max_tokens) break; /* no forward for a token we won't use */
        if (past_deadline(p)) {
            res->finish = EE_FINISH_DEADLINE;
            break;
        }
        ee_llama_seq sq = {.tokens = &tok, .n_tokens = 1, .cache = kv, .logits = logits};
        if (ee_llama_forward(ctx, &sq, 1, err) != 0) goto out;
        res->n_decode++;
    }
    res->decode_ms = ee_now_ms() - t1;
    rc = 0;
out:
    if (rc != 0) {
        free(res->tokens);
        res->tokens = NULL;
        res->n_tokens = 0;
    }
    free(logits);
    ee_sampler_free(smp);
    ee_kv_cache_free(kv);
    return rc;
}

void ee_gen_result_free(ee_gen_result *r) {
    if (!r) return;
    free(r->tokens);
    r->tokens = NULL;
    r->n_tokens = 0;
}
