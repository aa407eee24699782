#include "ee_batch.h"

#include "ee_clock.h"
#include "ee_sample.h"

#include <stdlib.h>
#include <string.h>

typedef enum slot_phase { SLOT_FREE = 0, SLOT_PREFILL, SLOT_DECODE } slot_phase;

typedef struct slot {
    slot_phase phase;
    void *job;
    int32_t *prompt; /* [n_prompt], copied */
    int n_prompt;
    int n_fed;       /* prompt tokens already in the cache */
    int32_t stop[EE_BATCH_MAX_STOP];
    int n_stop;
    bool ignore_stop;
    int max_tokens;
    int64_t deadline_ms;
    ee_kv_cache *kv;
    ee_sampler *smp;
    float *logits;   /* [n_vocab] */
    int32_t next;    /* decode: the token to feed this step */
    ee_gen_result res;
    double t_start, t_first; /* first step with this job; prompt logits ready */
    bool want_logits;        /* set per step: logits computed this step */
} slot;

struct ee_batch {
    const ee_llama_model *m;
    ee_llama_ctx *ctx;
    ee_batch_callbacks cb;
    int max_seqs;
    slot *slots;          /* [max_seqs] */
    ee_llama_seq *seqs;   /* [max_seqs] scratch for one forward */
    int *seq_slot;        /* [max_seqs] slot index of seqs[i] */
};

static void slot_release(slot *s) {
    free(s->prompt);
    ee_kv_cache_free(s->kv);
    ee_sampler_free(s->smp);
    free(s->logits);
    memset(s, 0, sizeof *s);
}

/* Hand the result to the caller and free the slot. */
static void slot_finish(ee_batch *b, slot *s, int rc, const ee_err *err) {
    double now = ee_now_ms();
    if (s->t_first > 0) {
        s->res.prefill_ms = s->t_first - s->t_start;
        s->res.decode_ms = now - s->t_first;
    } else if (s->t_start > 0) {
        s->res.prefill_ms = now - s->t_start;
    }
    ee_gen_result res = s->res;
    void *job = s->job;
    s->res.tokens = NULL; /* ownership moves to on_done */
    slot_release(s);
    b->cb.on_done(job, rc, &res, err);
}

ee_batch *ee_batch_new(const ee_llama_model *m, ee_llama_ctx *ctx, int max_seqs,
                       const ee_batch_callbacks *cb, ee_err *err) {
    if (!m || !ctx || !cb || !cb->on_done) {
        ee_err_set(err, "ee_batch_new: model, context and on_done are required");
        return NULL;
    }
    if (max_seqs < 1 || max_seqs > EE_BATCH_MAX_SEQS) {
        ee_err_set(err, "max_seqs %d not in 1..%d", max_seqs, EE_BATCH_MAX_SEQS);
        return NULL;
    }
    ee_batch *b = calloc(1, sizeof *b);
    if (b) {
        b->slots = calloc((size_t)max_seqs, sizeof *b->slots);
        b->seqs = calloc((size_t)max_seqs, sizeof *b->seqs);
        b->seq_slot = calloc((size_t)max_seqs, sizeof *b->seq_slot);
    }
    if (!b || !b->slots || !b->seqs || !b->seq_slot) {
        if (b) {
            free(b->slots);
            free(b->seqs);
            free(b->seq_slot);
        }
        free(b);
        ee_err_set(err, "out of memory");
        return NULL;
    }
    b->m = m;
    b->ctx = ctx;
    b->cb = *cb;
    b->max_seqs = max_seqs;
    return b;
}

void ee_batch_free(ee_batch *b) {
    if (!b) return;
    for (int i = 0; i < b->max_seqs; i++)
        if (b->slots[i].phase != SLOT_FREE) {
            b->slots[i].res.finish = EE_FINISH_CANCELLED;
            slot_finish(b, &b->slots[i], 0, NULL);
        }
    free(b->slots);
    free(b->seqs);
    free(b->seq_slot);
    free(b);
}

int ee_batch_active(const ee_batch *b) {
    int n = 0;
    for (int i = 0; i < b->max_seqs; i++) n += b->slots[i].phase != SLOT_FREE;
    return n;
}

int ee_batch_free_slots(const ee_batch *b) { return b->max_seqs - ee_batch_active(b); }

int ee_batch_add(ee_batch *b, const int32_t *prompt, int n_prompt, const ee_gen_params *p,
                 void *job, ee_err *err) {
    const ee_llama_hparams *hp = &b->m->hp;
    slot *s = NULL;
    for (int i = 0; i < b->max_seqs && !s; i++)
        if (b->slots[i].phase == SLOT_FREE) s = &b->slots[i];
    if (!s) return ee_err_set(err, "batch full (%d jobs)", b->max_seqs);
    if (n_prompt < 1 || !prompt) return ee_err_set(err, "empty prompt");
    if (p->max_tokens < 1) return ee_err_set(err, "max_tokens %d must be >= 1", p->max_tokens);
    long need = (long)n_prompt + p->max_tokens;
    if (need > hp->n_ctx_train)
        return ee_err_set(err,
                          "prompt (%d tokens) + max_tokens (%d) exceeds the model's context of %d",
                          n_prompt, p->max_tokens, hp->n_ctx_train);
    for (int i = 0; i < n_prompt; i++)
        if (prompt[i] < 0 || prompt[i] >= hp->n_vocab)
            return ee_err_set(err, "prompt[%d]: token id %d out of range [0, %d)", i, prompt[i],
                              hp->n_vocab);
    if (p->n_stop < 0 || p->n_stop > (int)(sizeof s->stop / sizeof s->stop[0]))
        return ee_err_set(err, "%d stop ids (at most %zu)", p->n_stop,
                          sizeof s->stop / sizeof s->stop[0]);

    slot t = {0};
    t.prompt = malloc((size_t)n_prompt * sizeof *t.prompt);
    t.logits = malloc((size_t)hp->n_vocab * sizeof *t.logits);
    t.res.tokens = malloc((size_t)p->max_tokens * sizeof *t.res.tokens);
    if (!t.prompt || !t.logits || !t.res.tokens) {
        ee_err_set(err, "out of memory");
        goto fail;
    }
    if (!(t.smp = ee_sampler_new(&p->sample, hp->n_vocab, err))) goto fail;
    if (!(t.kv = ee_kv_cache_new(b->m, (int)need, err))) goto fail;
    memcpy(t.prompt, prompt, (size_t)n_prompt * sizeof *prompt);
    if (p->n_stop) memcpy(t.stop, p->stop_ids, (size_t)p->n_stop * sizeof *p->stop_ids);
    t.n_stop = p->n_stop;
    t.ignore_stop = p->ignore_stop;
    t.n_prompt = n_prompt;
    t.max_tokens = p->max_tokens;
    t.deadline_ms = p->deadline_ms;
    t.job = job;
    t.res.n_prompt = n_prompt;
    t.res.stop_id = -1;
    t.res.finish = EE_FINISH_LENGTH;
    t.phase = SLOT_PREFILL;
    *s = t;
    return 0;
fail:
    free(t.res.tokens);
    slot_release(&t);
    return -1;
}

static bool is_stop(const slot *s, int32_t id) {
    for (int i = 0; i < s->n_stop; i++)
        if (s->stop[i] == id) return true;
    return false;
}

int ee_batch_cancel(ee_batch *b, void *job) {
    for (int i = 0; i < b->max_seqs; i++)
        if (b->slots[i].phase != SLOT_FREE && b->slots[i].job == job) {
            b->slots[i].res.finish = EE_FINISH_CANCELLED;
            slot_finish(b, &b->slots[i], 0, NULL);
            return 0;
        }
    return -1;
}

/* A sampled token for slot s: stop, emit, or end on length/deadline/cancel.
 * Returns true while the job goes on (s->next is set). */
static bool take_token(ee_batch *b, slot *s, int32_t tok) {
    if (!s->ignore_stop && is_stop(s, tok)) {
        s->res.finish = EE_FINISH_STOP;
        s->res.stop_id = tok;
        return false;
    }
    int index = s->res.n_tokens;
    s->res.tokens[s->res.n_tokens++] = tok;
    if (b->cb.on_token && b->cb.on_token(s->job, tok, index) != 0) {
        s->res.finish = EE_FINISH_CANCELLED;
        return false;
    }
    if (s->res.n_tokens == s->max_tokens) { /* no forward for a token we won't use */
        s->res.finish = EE_FINISH_LENGTH;
        return false;
    }
    if (s->deadline_ms > 0 && ee_epoch_ms() >= s->deadline_ms) {
        s->res.finish = EE_FINISH_DEADLINE;
        return false;
    }
    s->next = tok;
    return true;
}

int ee_batch_step(ee_batch *b, ee_err *err) {
    int n = 0, budget = EE_PREFILL_CHUNK;
    double now = ee_now_ms();
    int64_t epoch = ee_epoch_ms();
    /* Decoding jobs first (one token each), then prompt chunks within the
     * prefill budget, oldest slot first. */
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < b->max_seqs; i++) {
            slot *s = &b->slots[i];
            if (s->phase != (pass == 0 ? SLOT_DECODE : SLOT_PREFILL)) continue;
            if (s->deadline_ms > 0 && epoch >= s->deadline_ms) {
                s->res.finish = EE_FINISH_DEADLINE;
                slot_finish(b, s, 0, NULL);
                continue;
            }
            ee_llama_seq q = {.cache = s->kv, .logits = s->logits};
            if (s->phase == SLOT_DECODE) {
                q.tokens = &s->next;
                q.n_tokens = 1;
                s->want_logits = true;
            } else {
                if (budget == 0) continue;
                int left = s->n_prompt - s->n_fed;
                int take = left < budget ? left : budget;
                budget -= take;
                q.tokens = s->prompt + s->n_fed;
                q.n_tokens = take;
                s->want_logits = take == left;
                if (!s->want_logits) q.logits = NULL;
                if (s->t_start == 0) s->t_start = now;
            }
            b->seqs[n] = q;
            b->seq_slot[n] = i;
            n++;
        }
    }
    if (n == 0) return 0;
    if (ee_llama_forward(b->ctx, b->seqs, n, err) != 0) {
        for (int k = 0; k < n; k++) slot_finish(b, &b->slots[b->seq_slot[k]], -1, err);
        return -1;
    }
    double t_done = ee_now_ms();
    for (int k = 0; k < n; k++) {
        slot *s = &b->slots[b->seq_slot[k]];
        if (s->phase == SLOT_PREFILL) {
            s->n_fed += b->seqs[k].n_tokens;
            if (!s->want_logits) continue;
            s->phase = SLOT_DECODE;
            s->t_first = t_done;
        } else {
            s->res.n_decode++;
        }
        int32_t tok = ee_sampler_next(s->smp, s->logits);
        if (!take_token(b, s, tok)) slot_finish(b, s, 0, NULL);
    }
    return ee_batch_active(b);
}
