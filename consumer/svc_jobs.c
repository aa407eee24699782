/* A job from record to acknowledged answer: parse and check on the poll
 * thread, answer bad records at once (error reply if id and reply_to could
 * be read, dead letter otherwise), queue good ones; produce final replies
 * and dead letters; on the broker's acknowledgement store the offset (only
 * the contiguous finished prefix: ee_offtrack). */
#include "svc_jobs.h"

#include "svc_auth.h"
#include "svc_index.h"
#include "svc_kafka.h"
#include "svc_log.h"
#include "svc_metrics.h"
#include "svc_queue.h"

#include "ee_buf.h"
#include "ee_clock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void *dup_bytes(const void *p, size_t n) {
    if (!p || n == 0) return NULL;
    void *d = malloc(n);
    if (d) memcpy(d, p, n);
    return d;
}

svc_job *svc_job_from_message(svc *s, int cons, const rd_kafka_message_t *msg) {
    svc_job *j = calloc(1, sizeof *j);
    if (!j) return NULL;
    j->cons = cons;
    j->topic = strdup(rd_kafka_topic_name(msg->rkt));
    j->partition = msg->partition;
    j->offset = msg->offset;
    rd_kafka_timestamp_type_t tst;
    j->timestamp_ms = rd_kafka_message_timestamp(msg, &tst);
    if (tst == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE) j->timestamp_ms = -1;
    j->key_len = msg->key_len;
    j->key = dup_bytes(msg->key, msg->key_len);
    j->value_len = msg->len;
    j->value = dup_bytes(msg->payload, msg->len);
    rd_kafka_headers_t *h = NULL;
    if (rd_kafka_message_headers(msg, &h) == RD_KAFKA_RESP_ERR_NO_ERROR && h)
        j->headers = rd_kafka_headers_copy(h);
    j->t_received = ee_now_ms();
    j->model = -1;
    atomic_init(&j->cancel, false);
    svc_cons *c = &s->cons[cons];
    for (int i = 0; i < c->n_topics; i++)
        if (j->topic && strcmp(c->topics[i], j->topic) == 0) {
            j->model = c->topic_model[i];
            j->cls = c->topic_class[i];
        }
    if (!j->topic || (msg->len && !j->value) || (msg->key_len && !j->key)) {
        svc_job_free(j);
        return NULL;
    }
    return j;
}

void svc_job_free(svc_job *j) {
    if (!j) return;
    free(j->topic);
    free(j->key);
    free(j->value);
    if (j->body) {
        ee_seal_wipe(j->body, j->body_len); /* the opened request */
        free(j->body);
    }
    if (j->headers) rd_kafka_headers_destroy(j->headers);
    ee_proto_request_free(&j->req);
    free(j->out);
    free(j->embedding);
    free(j->scores);
    for (size_t i = 0; i < j->n_hits; i++) free(j->hits[i].id), free(j->hits[i].doc);
    free(j->hits);
    free(j);
}

static void set_error(svc_job *j, ee_proto_code code, const char *msg) {
    j->code = code;
    snprintf(j->message, sizeof j->message, "%s", msg);
}

/* Answer j now with its error: a reply when we know where, else a dead
 * letter. */
static void answer_error(svc *s, svc_job *j) {
    if (j->has_id && j->has_reply_to) svc_send_final(s, j);
    else svc_send_dlq(s, j);
}

void svc_handle_job(svc *s, svc_job *j) {
    j->gen = ee_offtrack_add(s->track, j->cons, j->topic, j->partition, j->offset);
    if (j->gen == 0) {
        /* Already tracked (a refetch of an offset we hold): the first copy
         * answers it. */
        svc_log_job("warn", "duplicate_record_ignored", j, NULL);
        svc_unlink_job(s, j);
        svc_job_free(j);
        return;
    }
    s->inflight++;
    if (j->model < 0) { /* cannot happen: we only subscribe to our topics */
        set_error(j, EE_PROTO_E_UNKNOWN_MODEL, "topic is not served by this worker");
        svc_send_dlq(s, j);
        return;
    }
    const svc_model *topic_model = &s->models[j->model];
    /* Sealed and signed jobs: signature, replay, rights, opening. */
    if (svc_auth_check(s, j) != 0) {
        answer_error(s, j);
        return;
    }
    const char *body = j->body ? (const char *)j->body : j->value;
    size_t body_len = j->body ? j->body_len : j->value_len;
    ee_proto_error perr;
    memset(&perr, 0, sizeof perr);
    if (ee_proto_parse_request(body ? body : "", body_len, &topic_model->limits, &j->req, &perr) != 0) {
        /* Where to answer: the body's id/reply_to if it had them, else the
         * routing headers'. */
        if (perr.has_id) snprintf(j->id, sizeof j->id, "%s", perr.id);
        if (perr.has_reply_to) snprintf(j->reply_to, sizeof j->reply_to, "%s", perr.reply_to);
        j->has_id |= perr.has_id;
        j->has_reply_to |= perr.has_reply_to;
        set_error(j, perr.code, perr.message);
        svc_auth_parse_failed(j);
        answer_error(s, j);
        return;
    }
    j->parsed = true;
    if (svc_auth_after_parse(s, j) != 0) {
        answer_error(s, j);
        return;
    }
    j->has_id = j->has_reply_to = true;
    snprintf(j->id, sizeof j->id, "%s", j->req.id);
    snprintf(j->reply_to, sizeof j->reply_to, "%s", j->req.reply_to);
    char msg[EE_PROTO_TOPIC_MAX + 3 * EE_PROTO_NAME_MAX + 128];
    if (strcmp(j->req.model, topic_model->name) != 0) {
        /* Topics route by model: a request for another model on this topic
         * was sent to the wrong place, even if we happen to serve it. */
        snprintf(msg, sizeof msg, "model: '%s' is not served on topic %s (model '%s')",
                 j->req.model, j->topic, topic_model->name);
        set_error(j, EE_PROTO_E_UNKNOWN_MODEL, msg);
        answer_error(s, j);
        return;
    }
    if (strcmp(j->req.key_id, topic_model->key_id) != 0) {
        snprintf(msg, sizeof msg, "key_id: %s is not the key of model %s (%s)", j->req.key_id,
                 topic_model->name, topic_model->key_id);
        set_error(j, EE_PROTO_E_KEY_MISMATCH, msg);
        answer_error(s, j);
        return;
    }
    /* What each kind of model does (search also runs on encoders). */
    static const struct {
        ee_proto_task task;
        const char *what;
    } BY_KIND[] = {[EE_KIND_DECODER] = {EE_TASK_GENERATE, "a decoder"},
                   [EE_KIND_ENCODER] = {EE_TASK_EMBED, "an encoder"},
                   [EE_KIND_CLASSIFIER] = {EE_TASK_CLASSIFY, "an image classifier"}};
    const ee_proto_task want = BY_KIND[topic_model->kind].task;
    const bool kind_ok = j->req.task_kind == want ||
                         (j->req.task_kind == EE_TASK_SEARCH && topic_model->kind == EE_KIND_ENCODER);
    if (kind_ok && j->req.task_kind == EE_TASK_SEARCH) {
        svc_index *ix = svc_index_find(s, j->req.index);
        if (!ix || ix->model != j->model) {
            snprintf(msg, sizeof msg, "search.index: '%s' is not an index of model %s on this "
                     "worker", j->req.index, topic_model->name);
            set_error(j, EE_PROTO_E_BAD_REQUEST, msg);
            answer_error(s, j);
            return;
        }
        if (j->req.query && (int)j->req.query_dim != ix->dim) {
            snprintf(msg, sizeof msg, "input.embedding: %zu values; model %s's embeddings have %d",
                     j->req.query_dim, topic_model->name, ix->dim);
            set_error(j, EE_PROTO_E_BAD_REQUEST, msg);
            answer_error(s, j);
            return;
        }
        j->index = (int)(ix - s->indexes);
    }
    if (!kind_ok) {
        snprintf(msg, sizeof msg, "task: model %s is %s; it does %s, not %s", topic_model->name,
                 BY_KIND[topic_model->kind].what,
                 ee_proto_task_get(want)->name, j->req.task);
        set_error(j, EE_PROTO_E_UNSUPPORTED_TASK, msg);
        answer_error(s, j);
        return;
    }
    if (j->req.task_kind == EE_TASK_CLASSIFY && j->req.fmap_len != ee_cnn_fmap_len(topic_model->cnn)) {
        const ee_cnn_model *cm = topic_model->cnn;
        snprintf(msg, sizeof msg, "input.fmap: %zu values; model %s takes %zu (%d channels x %d x "
                 "%d, the output of its stem)", j->req.fmap_len, topic_model->name,
                 ee_cnn_fmap_len(cm), ee_cnn_fmap_channels(cm), cm->hp.in_h, cm->hp.in_w);
        set_error(j, EE_PROTO_E_BAD_REQUEST, msg);
        answer_error(s, j);
        return;
    }
    if (ee_proto_check_deadline(&j->req, ee_epoch_ms(), &perr) != 0) {
        set_error(j, EE_PROTO_E_EXPIRED, perr.message);
        answer_error(s, j);
        return;
    }
    svc_enqueue(s, j);
}

/* ---- producing ------------------------------------------------------------- */

/* Produce one record; retries while the local queue is full. Returns the
 * librdkafka error of the enqueue (not the delivery). value is freed. */
static rd_kafka_resp_err_t produce(svc *s, const char *topic, const void *key, size_t key_len,
                                   char *value, size_t len, rd_kafka_headers_t *hdrs,
                                   void *opaque) {
    bool poll_thread = pthread_equal(pthread_self(), s->poll_tid);
    for (int tries = 0;; tries++) {
        pthread_rwlock_rdlock(&s->prod_lock);
        rd_kafka_resp_err_t e = rd_kafka_producev(
            s->producer, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, key_len),
            RD_KAFKA_V_VALUE(value, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE),
            RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
        pthread_rwlock_unlock(&s->prod_lock);
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR) return e; /* headers and value now owned */
        bool again = tries < 30000 &&
                     (e == RD_KAFKA_RESP_ERR__QUEUE_FULL || e == RD_KAFKA_RESP_ERR__FATAL);
        if (!again) {
            free(value);
            if (hdrs) rd_kafka_headers_destroy(hdrs);
            return e;
        }
        if (e == RD_KAFKA_RESP_ERR__FATAL) {
            /* The producer is dead: the poll thread replaces it (here if
             * we are the poll thread), then this record goes on the new one. */
            atomic_store(&s->fatal, true);
            if (poll_thread && svc_producer_recreate(s) != 0) tries = 30000;
        }
        usleep(1000); /* the poll thread drains delivery reports / swaps */
    }
}

static rd_kafka_headers_t *reply_headers(const svc_job *j) {
    rd_kafka_headers_t *h = rd_kafka_headers_new(1);
    rd_kafka_header_add(h, EE_PROTO_HDR_ID, -1, j->id, -1);
    return h;
}

void svc_send_partial(svc *s, svc_job *j, const int32_t *toks, size_t n) {
    ee_proto_reply r = {.id = j->id, .ok = true, .seq = j->seq, .final = false,
                        .tokens = (int32_t *)toks, .n_tokens = n, .worker = (char *)s->name};
    ee_err err = {{0}};
    char *js = ee_proto_reply_to_json(&r, &err);
    size_t len = 0;
    if (!js || !(js = svc_auth_reply_value(j, js, &len))) return;
    if (produce(s, j->reply_to, j->id, strlen(j->id), js, len, reply_headers(j), NULL) ==
        RD_KAFKA_RESP_ERR_NO_ERROR)
        j->seq++;
}

/* The reply could not be produced or delivered: dead-letter the request,
 * saying why (an ok job becomes internal; an error keeps its code). */
static void dead_letter_reply(svc *s, svc_job *j, rd_kafka_resp_err_t e) {
    char m[EE_PROTO_TOPIC_MAX + 256];
    snprintf(m, sizeof m, "reply to %s failed: %s", j->reply_to, rd_kafka_err2str(e));
    if (j->code == EE_PROTO_OK) {
        set_error(j, EE_PROTO_E_INTERNAL, m);
    } else {
        size_t l = strlen(j->message);
        snprintf(j->message + l, sizeof j->message - l, " (%s)", m);
    }
    svc_send_dlq(s, j);
}

void svc_send_final(svc *s, svc_job *j) {
    ee_err err = {{0}};
    char *js;
    if (j->code == EE_PROTO_OK) {
        ee_proto_reply r = {.id = j->id, .ok = true, .seq = j->seq, .final = true,
                            .tokens = j->out, .n_tokens = j->n_out,
                            .embedding = j->embedding, .dim = (size_t)j->dim,
                            .hits = j->hits, .n_hits = j->n_hits,
                            .is_search = j->req.task_kind == EE_TASK_SEARCH,
                            .scores = j->scores, .n_scores = (size_t)j->n_scores,
                            .finish_reason = (char *)j->finish,
                            .prompt_tokens = (uint32_t)j->req.n_tokens,
                            .completion_tokens = j->n_out, .queue_ms = j->queue_ms,
                            .prefill_ms = j->prefill_ms, .decode_ms = j->decode_ms,
                            .worker = (char *)s->name};
        js = ee_proto_reply_to_json(&r, &err);
    } else {
        js = ee_proto_error_reply_json(j->id, j->code, j->message, s->name, j->seq, &err);
    }
    size_t len = 0;
    if (js && !(js = svc_auth_reply_value(j, js, &len))) snprintf(err.msg, sizeof err.msg, "sealing the reply failed");
    if (!js) { /* a bug: say so in the dead letter rather than lose the job */
        set_error(j, EE_PROTO_E_INTERNAL, err.msg);
        svc_send_dlq(s, j);
        return;
    }
    j->state = JOB_REPLYING;
    j->dlq = false;
    rd_kafka_resp_err_t e = produce(s, j->reply_to, j->id, strlen(j->id), js, len, reply_headers(j), j);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) dead_letter_reply(s, j, e);
}

void svc_send_dlq(svc *s, svc_job *j) {
    j->state = JOB_REPLYING;
    j->dlq = true;
    if (j->code == EE_PROTO_OK) set_error(j, EE_PROTO_E_INTERNAL, "dead-lettered");
    /* A sealed job's error message may quote its body (an id out of
     * range, say): the dead letter, which brokers store, keeps only the code. */
    ee_proto_dlq_info d = {.topic = j->topic, .partition = j->partition, .offset = j->offset,
                           .timestamp_ms = j->timestamp_ms, .group = s->cons[j->cons].group,
                           .code = j->code,
                           .message = j->body ? "details withheld: sealed job" : j->message};
    ee_proto_header hd[EE_PROTO_DLQ_NHDR];
    ee_err err = {{0}};
    rd_kafka_headers_t *h = j->headers ? rd_kafka_headers_copy(j->headers) : rd_kafka_headers_new(8);
    if (ee_proto_dlq_headers(&d, hd, &err) == 0) {
        for (int i = 0; i < EE_PROTO_DLQ_NHDR; i++)
            rd_kafka_header_add(h, hd[i].name, -1, hd[i].value, -1);
        ee_proto_headers_free(hd, EE_PROTO_DLQ_NHDR);
    }
    char *val = j->value_len ? malloc(j->value_len) : NULL;
    if (val) memcpy(val, j->value, j->value_len);
    rd_kafka_resp_err_t e = produce(s, EE_PROTO_DLQ_TOPIC, j->key, j->key_len, val,
                                    val ? j->value_len : 0, h, j);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        json_t *f = json_object();
        json_object_set_new(f, "error", json_string(rd_kafka_err2str(e)));
        svc_log_job("error", "dead_letter_enqueue_failed", j, f);
        /* Keep it: the poll thread resends it later (its offset stays
         * uncommitted until a dead letter or reply is acknowledged). */
        j->retry_at = ee_now_ms() + 1000;
        pthread_mutex_lock(&s->mu);
        j->next = s->returned;
        s->returned = j;
        pthread_mutex_unlock(&s->mu);
    }
}

/* ---- acknowledgements (poll thread) ----------------------------------------- */

/* Keep a dead letter that failed for a resend at j->retry_at (poll
 * thread). Out of memory: give the job back uncommitted instead (it is
 * redelivered after a restart). */
static void retry_later(svc *s, svc_job *j) {
    if (ee_array_reserve(&s->retry, &s->cap_retry, s->n_retry + 1, sizeof *s->retry, NULL)) {
        svc_job_finished(s, j, false);
        return;
    }
    s->retry[s->n_retry++] = j;
}

void svc_on_delivery(svc *s, const rd_kafka_message_t *m) {
    svc_job *j = m->_private;
    if (!j) { /* a streamed partial */
        if (m->err) {
            ee_metrics_counter_inc(s->metrics, "ee_reply_failures_total", EE_NO_LABELS);
            json_t *f = json_object();
            json_object_set_new(f, "topic", json_string(rd_kafka_topic_name(m->rkt)));
            json_object_set_new(f, "error", json_string(rd_kafka_err2str(m->err)));
            svc_log("warn", "partial_reply_failed", f);
        }
        return;
    }
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        s->acked++;
        if (s->test_fatal_after > 0 && s->acked == s->test_fatal_after) {
            /* test hook: a fatal idempotence error, as 2.0.2 can raise */
            rd_kafka_test_fatal_error(s->producer, RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER,
                                      "EE_TEST_FATAL_AFTER");
        }
        svc_job_finished(s, j, true);
        return;
    }
    if (m->err == RD_KAFKA_RESP_ERR__FATAL || m->err == RD_KAFKA_RESP_ERR__PURGE_QUEUE ||
        m->err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT) {
        /* Not this record's fault: its producer died. Same record again on
         * the replacement (svc_producer_recreate). */
        if (j->dlq) svc_send_dlq(s, j);
        else svc_send_final(s, j);
        return;
    }
    json_t *f = json_object();
    json_object_set_new(f, "to", json_string(rd_kafka_topic_name(m->rkt)));
    json_object_set_new(f, "error", json_string(rd_kafka_err2str(m->err)));
    if (!j->dlq) {
        /* The reply could not be delivered (reply topic missing, not
         * writable, record too large...): dead-letter the request. */
        ee_metrics_counter_inc(s->metrics, "ee_reply_failures_total", EE_NO_LABELS);
        svc_log_job("warn", "reply_failed", j, f);
        dead_letter_reply(s, j, m->err);
        return;
    }
    svc_log_job("error", "dead_letter_failed", j, f);
    j->retry_at = ee_now_ms() + 1000;
    retry_later(s, j);
}

void svc_job_finished(svc *s, svc_job *j, bool acked) {
    if (acked) {
        int64_t pos = ee_offtrack_done(s->track, j->cons, j->topic, j->partition, j->offset,
                                       j->gen);
        if (pos >= 0) {
            rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
            rd_kafka_topic_partition_list_add(l, j->topic, j->partition)->offset = pos;
            rd_kafka_resp_err_t e = rd_kafka_offsets_store(s->cons[j->cons].rk, l);
            if (e == RD_KAFKA_RESP_ERR_NO_ERROR && l->elems[0].err) e = l->elems[0].err;
            if (e) {
                json_t *f = json_object();
                json_object_set_new(f, "error", json_string(rd_kafka_err2str(e)));
                svc_log_job("warn", "offset_store_failed", j, f);
            }
            rd_kafka_topic_partition_list_destroy(l);
        }
        svc_metrics_job_done(s, j);
        json_t *f = json_object();
        json_object_set_new(f, "status", json_string(j->dlq ? "dead_letter"
                                                    : j->code ? "error" : "ok"));
        if (j->code) {
            json_object_set_new(f, "code", json_string(ee_proto_code_name(j->code)));
            json_object_set_new(f, "message", json_string(j->message));
        } else {
            json_object_set_new(f, "finish", json_string(j->finish ? j->finish : ""));
            json_object_set_new(f, "prompt_tokens", json_integer((json_int_t)j->req.n_tokens));
            json_object_set_new(f, "tokens", json_integer(j->n_out));
            json_object_set_new(f, "queue_ms", json_real(j->queue_ms));
            json_object_set_new(f, "prefill_ms", json_real(j->prefill_ms));
            json_object_set_new(f, "decode_ms", json_real(j->decode_ms));
        }
        if (pos >= 0) json_object_set_new(f, "committable", json_integer(pos));
        svc_log_job(j->code ? "warn" : "info", "job_done", j, f);
    } else {
        ee_metrics_counter_inc(s->metrics, "ee_jobs_abandoned_total", EE_NO_LABELS);
        svc_log_job("warn", "job_abandoned", j, NULL);
    }
    s->inflight--;
    ee_metrics_gauge_set(s->metrics, "ee_jobs_inflight", EE_NO_LABELS, s->inflight);
    svc_unlink_job(s, j);
    svc_job_free(j);
}

/* Jobs the inference thread handed back: abandoned (cancelled for a revoke
 * or shutdown), or dead letters that could not even be enqueued. */
void svc_collect_returned(svc *s) {
    pthread_mutex_lock(&s->mu);
    svc_job *l = s->returned;
    s->returned = NULL;
    pthread_mutex_unlock(&s->mu);
    while (l) {
        svc_job *n = l->next;
        l->next = NULL;
        if (l->retry_at > 0 && !atomic_load(&l->cancel)) retry_later(s, l);
        else svc_job_finished(s, l, false);
        l = n;
    }
    /* Resend due dead letters. */
    double now = ee_now_ms();
    for (size_t i = 0; i < s->n_retry;) {
        svc_job *j = s->retry[i];
        if (j->retry_at <= now) {
            s->retry[i] = s->retry[--s->n_retry];
            j->retry_at = 0;
            svc_send_dlq(s, j);
        } else {
            i++;
        }
    }
}

/* ---- svc.all: every live job (poll thread) ---- */

void svc_link_job(svc *s, svc_job *j) {
    j->all_prev = NULL;
    j->all_next = s->all;
    if (s->all) s->all->all_prev = j;
    s->all = j;
}

void svc_unlink_job(svc *s, svc_job *j) {
    if (j->all_prev) j->all_prev->all_next = j->all_next;
    else if (s->all == j) s->all = j->all_next;
    if (j->all_next) j->all_next->all_prev = j->all_prev;
    j->all_prev = j->all_next = NULL;
}
