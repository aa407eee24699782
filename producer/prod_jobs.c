#include "prod_jobs.h"

#include "prod_ids.h"

#include "ee_clock.h"

#include <stdlib.h>
#include <string.h>

int prod_prompt_make(prod_prompt *pp, const prod_client *cl, const char *text,
                     const prod_gen_opts *g, ee_err *err) {
    memset(pp, 0, sizeof *pp);
    if (g->task == EE_TASK_CLASSIFY) {
        if (prod_client_image_fmap(cl, text, g->invert, &pp->fmap, &pp->fmap_len, err)) return -1;
    } else if (prod_client_encode(cl, text, g->chat, &pp->enc, &pp->n, err)) {
        return -1;
    }
    pp->cls = g->cls ? g->cls
                     : ee_proto_choose_class((uint32_t)(pp->n > UINT32_MAX ? UINT32_MAX : pp->n),
                                             g->params.max_tokens, &g->th);
    pp->topic = ee_proto_request_topic(g->model, pp->cls, err);
    if (!pp->topic) {
        prod_prompt_free(pp);
        return -1;
    }
    return 0;
}

void prod_prompt_free(prod_prompt *pp) {
    free(pp->enc);
    free(pp->fmap);
    free(pp->topic);
    memset(pp, 0, sizeof *pp);
}

char *prod_request_json(const prod_client *cl, const prod_prompt *pp, const char *id,
                        const prod_gen_opts *g, int64_t *deadline_ms, ee_err *err) {
    char reply_pk[EE_SEAL_PK_HEX];
    if (cl->seal) { /* the worker seals the reply to this job's reply key */
        uint8_t pk[32], sk[32];
        ee_reply_keypair(&cl->ck, id, pk, sk);
        ee_seal_wipe(sk, sizeof sk);
        ee_seal_pk_hex(pk, reply_pk);
    }
    ee_proto_request r = {
        .id = (char *)id,
        .session = (char *)g->session,
        .model = (char *)g->model,
        .key_id = (char *)cl->key_id,
        .task = (char *)ee_proto_task_get(g->task)->name,
        .tokens = pp->enc,
        .n_tokens = pp->n,
        .fmap = pp->fmap,
        .fmap_len = pp->fmap_len,
        .params = g->params,
        .reply_to = (char *)g->reply_to,
        .deadline_ms = g->deadline_in_ms ? ee_epoch_ms() + g->deadline_in_ms : 0,
        .stream = g->stream,
        .reply_pk = cl->seal ? reply_pk : NULL,
        .index = (char *)g->index,
        .k = g->k,
    };
    if (deadline_ms) *deadline_ms = r.deadline_ms;
    return ee_proto_request_to_json(&r, err);
}

int prod_batch_make(prod_batch *b, const prod_client *cl, const char *const *texts, size_t n,
                    const prod_gen_opts *g, size_t *failed, ee_err *err) {
    memset(b, 0, sizeof *b);
    *failed = 0;
    b->n = n;
    b->pp = calloc(n ? n : 1, sizeof *b->pp);
    b->ids = calloc(n ? n : 1, sizeof *b->ids);
    b->bodies = calloc(n ? n : 1, sizeof *b->bodies);
    b->topics = calloc(n ? n : 1, sizeof *b->topics);
    if (!b->pp || !b->ids || !b->bodies || !b->topics) {
        prod_batch_free(b);
        return ee_err_set(err, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        char jid[32];
        if (prod_random_job_id(jid, err) || !(b->ids[i] = strdup(jid)) ||
            prod_prompt_make(&b->pp[i], cl, texts[i], g, err)) {
            if (!b->ids[i] && !err->msg[0]) ee_err_set(err, "out of memory");
            *failed = i;
            prod_batch_free(b);
            return -1;
        }
        b->topics[i] = b->pp[i].topic;
    }
    return 0;
}

void prod_batch_free(prod_batch *b) {
    for (size_t i = 0; i < b->n; i++) {
        if (b->pp) prod_prompt_free(&b->pp[i]);
        if (b->ids) free(b->ids[i]);
        if (b->bodies) free(b->bodies[i]);
    }
    free(b->pp), free(b->ids), free(b->bodies), free(b->topics);
    memset(b, 0, sizeof *b);
}
