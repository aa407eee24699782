/* The inference thread: one ee_batch per served model. Queued jobs join a
 * batch as slots free up (FIFO per model); each loop steps every batch
 * with work once. Replies are produced from here (librdkafka's produce is
 * thread-safe); delivery reports come back on the poll thread.
 *
 * The OpenMP team used by the engine belongs to this thread: it warms up
 * here, so its threads are the ones that serve jobs. */
#include "svc_infer.h"

#include "svc_index.h"
#include "svc_jobs.h"
#include "svc_log.h"
#include "svc_queue.h"

#include "ee_clock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static svc *g_svc; /* callbacks of ee_batch carry only the job */

/* Hand a job back to the poll thread (abandoned: no reply). Caller holds
 * no lock. */
static void hand_back(svc *s, svc_job *j) {
    pthread_mutex_lock(&s->mu);
    j->next = s->returned;
    s->returned = j;
    pthread_mutex_unlock(&s->mu);
    svc_wake(s);
}

static int on_token(void *job, int32_t tok, int index) {
    (void)index;
    svc_job *j = job;
    svc *s = g_svc;
    if (atomic_load(&j->cancel)) return 1;
    atomic_fetch_add(&s->tokens_generated, 1);
    if (j->req.stream) svc_send_partial(s, j, &tok, 1);
    return 0;
}

static void on_done(void *job, int rc, ee_gen_result *res, const ee_err *err) {
    svc_job *j = job;
    svc *s = g_svc;
    pthread_mutex_lock(&s->mu);
    s->running--;
    pthread_mutex_unlock(&s->mu);
    const svc_model *sm = &s->models[j->model];
    ee_metrics_counter_add(s->metrics, "ee_generated_tokens_total",
                           EE_LABELS({"model", sm->name}), res->n_tokens);
    if (atomic_load(&j->cancel) || (rc == 0 && res->finish == EE_FINISH_CANCELLED)) {
        ee_gen_result_free(res);
        hand_back(s, j);
        return;
    }
    j->prefill_ms = res->prefill_ms;
    j->decode_ms = res->decode_ms;
    ee_metrics_observe(s->metrics, "ee_job_inference_seconds", EE_LABELS({"model", sm->name}),
                       (ee_now_ms() - j->t_started) / 1e3);
    if (rc != 0) {
        j->code = EE_PROTO_E_INTERNAL;
        snprintf(j->message, sizeof j->message, "inference failed: %s", err ? err->msg : "?");
        ee_gen_result_free(res);
    } else if (res->finish == EE_FINISH_DEADLINE) {
        j->code = EE_PROTO_E_EXPIRED;
        snprintf(j->message, sizeof j->message,
                 "deadline_ms: passed during generation after %d of at most %u tokens",
                 res->n_tokens, j->req.params.max_tokens);
        ee_gen_result_free(res);
    } else {
        j->code = EE_PROTO_OK;
        j->out = res->tokens; /* taken */
        j->n_out = (uint32_t)res->n_tokens;
        j->finish = ee_finish_name(res->finish);
        res->tokens = NULL;
    }
    svc_send_final(s, j);
}

/* The jobs of one encoder or classifier pass are done (each has its code
 * and output): their inference time, the running count, their replies. */
static void finish_round(svc *s, const svc_model *sm, svc_job **jobs, int n) {
    double now = ee_now_ms();
    ee_metrics_observe(s->metrics, "ee_pass_jobs", EE_LABELS({"model", sm->name}), n);
    json_t *f = json_object();
    json_object_set_new(f, "model", json_string(sm->name));
    json_object_set_new(f, "jobs", json_integer(n));
    json_object_set_new(f, "ms", json_real(jobs[0]->prefill_ms));
    svc_log("info", "pass_done", f);
    for (int i = 0; i < n; i++)
        ee_metrics_observe(s->metrics, "ee_job_inference_seconds", EE_LABELS({"model", sm->name}),
                           (now - jobs[i]->t_started) / 1e3);
    pthread_mutex_lock(&s->mu);
    s->running -= n;
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; i < n; i++) svc_send_final(s, jobs[i]);
}

/* Embed jobs of one encoder model, all in one forward pass (every token of
 * every text through each linear layer as one product; attention per
 * text). Each job gets its encrypted embedding and its final reply. */
static void run_embeds(svc *s, svc_model *sm, svc_job **jobs, int n) {
    if (n == 0) return;
    const int d = sm->enc->hp.n_embd;
    const int32_t **ids = malloc(sizeof *ids * (size_t)n);
    size_t *lens = malloc(sizeof *lens * (size_t)n);
    float *out = malloc(sizeof(float) * (size_t)n * d);
    ee_err err = {{0}};
    double t0 = ee_now_ms();
    int rc = -1;
    int n_run = 0; /* jobs with ids to embed (a search may bring its vector) */
    int *row = malloc(sizeof *row * (size_t)n);
    if (ids && lens && out && row) {
        for (int i = 0; i < n; i++) {
            row[i] = -1;
            if (!jobs[i]->req.tokens) continue;
            row[i] = n_run;
            ids[n_run] = jobs[i]->req.tokens;
            lens[n_run++] = jobs[i]->req.n_tokens;
        }
        rc = n_run ? ee_bert_embed(sm->enc, (const int32_t *const *)ids, lens, n_run, out, &err) : 0;
    } else {
        ee_err_set(&err, "out of memory");
    }
    double ms = ee_now_ms() - t0;
    for (int i = 0; i < n; i++) {
        svc_job *j = jobs[i];
        j->prefill_ms = ms;
        const float *vec = rc == 0 ? (row[i] >= 0 ? out + (size_t)row[i] * d : j->req.query) : NULL;
        if (vec && j->req.task_kind == EE_TASK_SEARCH) {
            /* the encrypted query against the index: the plaintext ranking */
            ee_err serr = {{0}};
            double t1 = ee_now_ms();
            if (svc_index_search(&s->indexes[j->index], vec, (int)j->req.k, &j->hits, &j->n_hits,
                                 &serr) == 0) {
                j->code = EE_PROTO_OK;
            } else {
                j->code = EE_PROTO_E_INTERNAL;
                snprintf(j->message, sizeof j->message, "search failed: %s", serr.msg);
            }
            j->decode_ms = ee_now_ms() - t1;
        } else if (vec && (j->embedding = malloc(sizeof(float) * d))) {
            memcpy(j->embedding, vec, sizeof(float) * d);
            j->dim = d;
            j->code = EE_PROTO_OK;
        } else {
            j->code = EE_PROTO_E_INTERNAL;
            snprintf(j->message, sizeof j->message, "embedding failed: %s",
                     rc ? err.msg : "out of memory");
        }
    }
    finish_round(s, sm, jobs, n);
    free(ids);
    free(lens);
    free(out);
    free(row);
}

/* Classify jobs of one classifier, in one call: the encrypted feature maps
 * through the encrypted network (pool, the other blocks, the head); each
 * job gets its encrypted class scores. */
static void run_classifies(svc *s, svc_model *sm, svc_job **jobs, int n) {
    if (n == 0) return;
    const size_t fl = ee_cnn_fmap_len(sm->cnn);
    const int nc = sm->cnn->hp.n_class;
    float *in = malloc(sizeof(float) * fl * (size_t)n);
    float *out = malloc(sizeof(float) * (size_t)nc * n);
    ee_err err = {{0}};
    double t0 = ee_now_ms();
    int rc = -1;
    if (in && out) {
        for (int i = 0; i < n; i++) memcpy(in + fl * i, jobs[i]->req.fmap, sizeof(float) * fl);
        rc = ee_cnn_classify_fmaps(sm->cnn, in, n, out, &err);
    } else {
        ee_err_set(&err, "out of memory");
    }
    double ms = ee_now_ms() - t0;
    for (int i = 0; i < n; i++) {
        svc_job *j = jobs[i];
        j->prefill_ms = ms;
        if (rc == 0 && (j->scores = malloc(sizeof(float) * nc))) {
            memcpy(j->scores, out + (size_t)nc * i, sizeof(float) * nc);
            j->n_scores = nc;
            j->code = EE_PROTO_OK;
        } else {
            j->code = EE_PROTO_E_INTERNAL;
            snprintf(j->message, sizeof j->message, "classification failed: %s",
                     rc ? err.msg : "out of memory");
        }
    }
    finish_round(s, sm, jobs, n);
    free(in);
    free(out);
}

/* Start a job taken from the queue: deadline, then into its model's batch
 * (decoders) or its model's embed list for this round (encoders; returns
 * true). */
static bool start_job(svc *s, svc_job *j) {
    svc_model *sm = &s->models[j->model];
    j->t_started = ee_now_ms();
    int64_t now = ee_epoch_ms();
    j->queue_ms = j->timestamp_ms > 0 && now >= j->timestamp_ms ? (double)(now - j->timestamp_ms)
                                                                 : j->t_started - j->t_received;
    ee_metrics_observe(s->metrics, "ee_job_queue_seconds", EE_LABELS({"model", sm->name}),
                       j->queue_ms / 1e3);
    ee_proto_error perr;
    if (ee_proto_check_deadline(&j->req, now, &perr) != 0) {
        j->code = EE_PROTO_E_EXPIRED;
        snprintf(j->message, sizeof j->message, "%s", perr.message);
        svc_send_final(s, j);
        return false;
    }
    if (sm->kind == EE_KIND_ENCODER || sm->kind == EE_KIND_CLASSIFIER) {
        json_t *f = json_object();
        if (sm->kind == EE_KIND_ENCODER)
            json_object_set_new(f, "tokens", json_integer((json_int_t)j->req.n_tokens));
        else
            json_object_set_new(f, "fmap_values", json_integer((json_int_t)j->req.fmap_len));
        json_object_set_new(f, "queue_ms", json_real(j->queue_ms));
        svc_log_job("info", "job_started", j, f);
        j->state = JOB_RUNNING;
        pthread_mutex_lock(&s->mu);
        s->running++;
        pthread_mutex_unlock(&s->mu);
        return true;
    }
    int32_t stop[EE_BATCH_MAX_STOP];
    int n_stop = 0;
    for (int i = 0; i < sm->n_stop; i++) stop[n_stop++] = sm->stop[i];
    for (size_t i = 0; i < j->req.params.n_stop && n_stop < EE_BATCH_MAX_STOP; i++)
        stop[n_stop++] = j->req.params.stop_ids[i];
    ee_gen_params gp = {
        .max_tokens = (int)j->req.params.max_tokens,
        .sample = {.temperature = (float)j->req.params.temperature,
                   .top_k = (int)j->req.params.top_k,
                   .top_p = (float)j->req.params.top_p,
                   .seed = j->req.params.seed},
        .stop_ids = stop,
        .n_stop = n_stop,
        .deadline_ms = j->req.deadline_ms,
    };
    ee_err err = {{0}};
    json_t *f = json_object();
    json_object_set_new(f, "prompt_tokens", json_integer((json_int_t)j->req.n_tokens));
    json_object_set_new(f, "max_tokens", json_integer(j->req.params.max_tokens));
    json_object_set_new(f, "queue_ms", json_real(j->queue_ms));
    svc_log_job("info", "job_started", j, f);
    j->state = JOB_RUNNING;
    pthread_mutex_lock(&s->mu);
    s->running++;
    pthread_mutex_unlock(&s->mu);
    if (ee_batch_add(sm->batch, j->req.tokens, (int)j->req.n_tokens, &gp, j, &err) != 0) {
        pthread_mutex_lock(&s->mu);
        s->running--;
        pthread_mutex_unlock(&s->mu);
        /* Limits were checked at parse time; what is left is the model's
         * context (prompt + max_tokens) or a resource failure. */
        j->code = strstr(err.msg, "context") ? EE_PROTO_E_TOO_LARGE : EE_PROTO_E_INTERNAL;
        snprintf(j->message, sizeof j->message, "%s", err.msg);
        svc_send_final(s, j);
    }
    return false;
}

static void *infer_main(void *arg) {
    svc *s = arg;
    for (int i = 0; i < s->n_models; i++) {
        ee_err err = {{0}};
        if (s->models[i].ctx && ee_llama_warmup(s->models[i].ctx, 64, &err) != 0) {
            json_t *f = json_object();
            json_object_set_new(f, "model", json_string(s->models[i].name));
            json_object_set_new(f, "error", json_string(err.msg));
            svc_log("warn", "warmup_failed", f);
        }
    }
    svc_job *take[EE_BATCH_MAX_SEQS * 8];
    for (;;) {
        int n_take = 0, active = 0;
        for (int i = 0; i < s->n_models; i++)
            if (s->models[i].batch) active += ee_batch_active(s->models[i].batch);
        pthread_mutex_lock(&s->mu);
        while (!s->infer_stop && active == 0 && (s->q_head == NULL || s->draining))
            pthread_cond_wait(&s->cv, &s->mu);
        if (s->infer_stop && active == 0) {
            pthread_mutex_unlock(&s->mu);
            break;
        }
        /* Free slots per model, then FIFO over the queue. Cancelled queued
         * jobs go back; others wait for their model's slots. */
        int free_slots[64] = {0};
        for (int i = 0; i < s->n_models && i < 64; i++)
            free_slots[i] = s->models[i].batch ? ee_batch_free_slots(s->models[i].batch)
                                               : (int)s->cfg->max_batch * 8; /* one pass embeds them */
        svc_job **pp = &s->q_head, *prev = NULL;
        while (*pp && n_take < (int)(sizeof take / sizeof take[0])) {
            svc_job *j = *pp;
            bool cancelled = atomic_load(&j->cancel);
            if (!cancelled && (s->draining || free_slots[j->model] == 0)) {
                prev = j;
                pp = &j->next;
                continue;
            }
            *pp = j->next; /* unlink */
            if (s->q_tail == j) s->q_tail = prev;
            s->q_len--;
            j->next = NULL;
            if (cancelled) {
                j->next = s->returned;
                s->returned = j;
                continue;
            }
            free_slots[j->model]--;
            take[n_take++] = j;
        }
        pthread_mutex_unlock(&s->mu);
        /* Encoders' and classifiers' jobs of this round run as one pass per
         * model. */
        int n_embed = 0;
        for (int k = 0; k < n_take; k++)
            if (start_job(s, take[k])) take[n_embed++] = take[k];
        for (int i = 0; i < s->n_models && n_embed; i++) {
            svc_job *mine[EE_BATCH_MAX_SEQS * 8];
            int n_mine = 0;
            for (int k = 0; k < n_embed; k++)
                if (take[k]->model == i) mine[n_mine++] = take[k];
            if (s->models[i].kind == EE_KIND_CLASSIFIER)
                run_classifies(s, &s->models[i], mine, n_mine);
            else
                run_embeds(s, &s->models[i], mine, n_mine);
        }
        for (int i = 0; i < s->n_models; i++) {
            if (!s->models[i].batch || ee_batch_active(s->models[i].batch) == 0) continue;
            ee_err err = {{0}};
            if (ee_batch_step(s->models[i].batch, &err) < 0) {
                json_t *f = json_object();
                json_object_set_new(f, "model", json_string(s->models[i].name));
                json_object_set_new(f, "error", json_string(err.msg));
                svc_log("error", "forward_failed", f);
            }
        }
    }
    return NULL;
}

int svc_infer_start(svc *s, ee_err *err) {
    g_svc = s;
    static const ee_batch_callbacks cb = {.on_token = on_token, .on_done = on_done};
    for (int i = 0; i < s->n_models; i++) {
        if (s->models[i].kind != EE_KIND_DECODER) continue;
        s->models[i].batch = ee_batch_new(s->models[i].m, s->models[i].ctx,
                                          (int)s->cfg->max_batch, &cb, err);
        if (!s->models[i].batch) return -1;
    }
    if (pthread_create(&s->infer_thread, NULL, infer_main, s) != 0)
        return ee_err_set(err, "cannot start the inference thread");
    return 0;
}

/* Stop after the running jobs end (the caller cancelled what it wanted
 * cancelled). Jobs still queued stay queued for the caller. */
void svc_infer_stop(svc *s) {
    pthread_mutex_lock(&s->mu);
    s->infer_stop = true;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->infer_thread, NULL);
}
