#include "prod_print.h"

#include "ee_buf.h"
#include "prod_stream.h"

#include "ee_unicode.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QUIET_PROBLEMS 10 /* a load test with 1000 failures shows the first few */

static json_t *ids_json(const int32_t *v, size_t n) {
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++) json_array_append_new(a, json_integer(v[i]));
    return a;
}

static void emit_json(json_t *o) {
    /* 15 digits: 41.2 stays 41.2 (17 would print 41.200000000000003) */
    char *s = o ? json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(15)) : NULL;
    if (s) {
        puts(s);
        fflush(stdout);
    }
    free(s);
    json_decref(o);
}

/* Valid UTF-8 for JSON: ill-formed bytes become U+FFFD. */
static json_t *text_json(const char *s, size_t n) {
    char *fixed = malloc(3 * n + 1);
    if (!fixed) return json_null();
    size_t m = ee_unicode_utf8_lossy((const unsigned char *)s, n, fixed);
    json_t *v = json_stringn(fixed, m);
    free(fixed);
    return v ? v : json_null();
}

static void problem(prod_print *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(prod_print *p, const char *fmt, ...) {
    p->n_problems++;
    if (p->quiet && p->n_problems > QUIET_PROBLEMS) return;
    fflush(stdout); /* keep stdout and stderr in order on a terminal */
    if (p->erase_line) fputs("\r\033[K", stderr); /* redrawn at the next tick */
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

size_t prod_print_hidden(const prod_print *p) {
    return p->quiet && p->n_problems > QUIET_PROBLEMS ? p->n_problems - QUIET_PROBLEMS : 0;
}

void prod_print_submitted(const prod_print *p, const prod_job *j, const char *topic,
                          const char *cls, const char *reply_to, const int32_t *enc, size_t n) {
    if (p->quiet) return;
    if (!p->json) {
        printf("%s\n", j->id);
        fflush(stdout);
        return;
    }
    json_t *o = json_object();
    json_object_set_new(o, "event", json_string("submitted"));
    json_object_set_new(o, "id", json_string(j->id));
    json_object_set_new(o, "topic", json_string(topic));
    json_object_set_new(o, "class", json_string(cls));
    json_object_set_new(o, "reply_to", json_string(reply_to));
    json_object_set_new(o, "prompt_tokens", json_integer((json_int_t)n));
    json_object_set_new(o, "encrypted_prompt", ids_json(enc, n));
    emit_json(o);
}

/* Plain text of a job on stdout: as it comes for one job; for several,
 * whole lines "ID: ..." so that concurrent streams stay readable. Chunks
 * end on character boundaries (prod_stream), so making each valid UTF-8
 * on its own changes only bytes that are ill-formed anyway. */
static int emit_text(const prod_print *p, prod_job *j, const char *raw, size_t n, ee_err *err) {
    char *s = malloc(3 * n + 1);
    if (!s) return ee_err_set(err, "out of memory");
    n = ee_unicode_utf8_lossy((const unsigned char *)raw, n, s);
    if (!p->multi) {
        fwrite(s, 1, n, stdout);
        fflush(stdout);
        free(s);
        j->shown = true;
        return 0;
    }
    int rc = ee_buf_append(&j->line, s, n, err);
    free(s);
    if (rc) return -1;
    char *nl;
    while ((nl = memchr(j->line.p, '\n', j->line.len))) {
        size_t len = (size_t)(nl - j->line.p);
        printf("%s: %.*s\n", j->id, (int)len, j->line.p);
        ee_buf_consume(&j->line, len + 1);
        j->shown = true;
    }
    fflush(stdout);
    return 0;
}

/* End of a job's plain text: the unfinished line, or "ID: " for a job
 * that produced nothing, so that every job shows up once. */
static void end_text(const prod_print *p, prod_job *j) {
    if (!p->multi) {
        putchar('\n');
    } else if (j->line.len || !j->shown) {
        printf("%s: %.*s\n", j->id, (int)j->line.len, j->line.p ? j->line.p : "");
        ee_buf_consume(&j->line, j->line.len);
    }
    j->shown = true;
    fflush(stdout);
}

int prod_print_partial(prod_print *p, prod_job *j, const ee_proto_reply *r, const int32_t *plain,
                       ee_err *err) {
    if (p->quiet || !p->stream) return 0;
    ee_buf chunk = {0};
    int rc = prod_stream_push(&j->stream, p->cl->tok, plain, r->n_tokens, &chunk, err);
    if (rc == 0 && p->json) {
        json_t *o = json_object();
        json_object_set_new(o, "event", json_string("partial"));
        json_object_set_new(o, "id", json_string(j->id));
        json_object_set_new(o, "seq", json_integer(r->seq));
        json_object_set_new(o, "text", text_json(chunk.p ? chunk.p : "", chunk.len));
        json_object_set_new(o, "tokens", ids_json(plain, r->n_tokens));
        json_object_set_new(o, "encrypted_tokens", ids_json(r->tokens, r->n_tokens));
        emit_json(o);
    } else if (rc == 0 && chunk.len) {
        rc = emit_text(p, j, chunk.p, chunk.len, err);
    }
    ee_buf_free(&chunk);
    return rc;
}

/* Plain text of a final ok reply. When partials were shown, only what
 * they lacked is added (partials may be batched or missing); if they are
 * not a prefix of the final output (a redone job with other sampling),
 * the final text, which is authoritative, is shown again whole. */
static int plain_final(prod_print *p, prod_job *j, ee_err *err) {
    const ee_proto_reply *f = &j->final;
    ee_buf out = {0};
    int rc = 0;
    if (p->stream && prod_stream_is_prefix(&j->stream, j->plain, f->n_tokens)) {
        size_t done = j->stream.n;
        rc = prod_stream_push(&j->stream, p->cl->tok, j->plain + done, f->n_tokens - done, &out,
                              err);
        if (rc == 0) rc = prod_stream_finish(&j->stream, &out, err);
    } else {
        if (p->stream) {
            problem(p, "job %s: the streamed text differs from the final reply (the job was "
                       "redone); the final text follows", j->id);
            /* end what was streamed where it stands, start the final text on
             * a line of its own */
            if (!p->multi && j->shown) putchar('\n');
            if (p->multi && j->line.len) {
                printf("%s: %.*s\n", j->id, (int)j->line.len, j->line.p);
                ee_buf_consume(&j->line, j->line.len);
            }
            prod_stream_free(&j->stream);
            j->shown = false;
        }
        char *text = NULL;
        size_t len = 0;
        rc = ee_tokenizer_decode_lossy(p->cl->tok, j->plain, f->n_tokens, false, &text, &len,
                                       err);
        if (rc == 0) rc = ee_buf_append(&out, text, len, err);
        free(text);
    }
    if (rc == 0 && out.len) rc = emit_text(p, j, out.p, out.len, err);
    if (rc == 0) end_text(p, j);
    ee_buf_free(&out);
    return rc;
}

static json_t *result_json(const prod_print *p, const prod_job *j, ee_err *err, int *rc) {
    json_t *o = json_object();
    const ee_proto_reply *f = &j->final;
    json_object_set_new(o, "event", json_string("result"));
    json_object_set_new(o, "id", json_string(j->id));
    json_object_set_new(o, "status", json_string(prod_job_state_name(j->state)));
    if (j->state == PROD_JOB_OK && j->scores) {
        json_t *a = json_array(), *ea = json_array();
        for (size_t i = 0; i < f->n_scores; i++) {
            json_array_append_new(a, json_real(j->scores[i]));
            json_array_append_new(ea, json_real(f->scores[i]));
        }
        int k = ee_cnn_argmax(j->scores, (int)f->n_scores);
        char lb[16];
        json_object_set_new(o, "class", json_integer(k));
        json_object_set_new(o, "label", json_string(ee_cnn_class_label(p->cl->gguf, k, lb)));
        json_object_set_new(o, "scores", a);
        json_object_set_new(o, "encrypted_scores", ea);
        json_t *t = json_object();
        json_object_set_new(t, "queue_ms", json_real(f->queue_ms));
        json_object_set_new(t, "prefill_ms", json_real(f->prefill_ms));
        json_object_set_new(o, "timings", t);
    } else if (j->state == PROD_JOB_OK && j->vec) {
        json_t *a = json_array(), *ea = json_array();
        for (size_t i = 0; i < f->dim; i++) {
            json_array_append_new(a, json_real(j->vec[i]));
            json_array_append_new(ea, json_real(f->embedding[i]));
        }
        json_object_set_new(o, "embedding", a);
        json_object_set_new(o, "encrypted_embedding", ea);
        json_t *u = json_object();
        json_object_set_new(u, "prompt_tokens", json_integer(f->prompt_tokens));
        json_object_set_new(o, "usage", u);
        json_t *t = json_object();
        json_object_set_new(t, "queue_ms", json_real(f->queue_ms));
        json_object_set_new(t, "prefill_ms", json_real(f->prefill_ms));
        json_object_set_new(o, "timings", t);
    } else if (j->state == PROD_JOB_OK) {
        char *text = NULL;
        size_t len = 0;
        /* byte tokens can split characters: lossy keeps the JSON valid */
        if (ee_tokenizer_decode_lossy(p->cl->tok, j->plain, f->n_tokens, false, &text, &len,
                                      err)) {
            *rc = -1;
        } else {
            json_object_set_new(o, "text", json_stringn(text, len));
        }
        free(text);
        json_object_set_new(o, "tokens", ids_json(j->plain, f->n_tokens));
        json_object_set_new(o, "encrypted_tokens", ids_json(f->tokens, f->n_tokens));
        json_object_set_new(o, "finish_reason", json_string(f->finish_reason));
        json_t *u = json_object();
        json_object_set_new(u, "prompt_tokens", json_integer(f->prompt_tokens));
        json_object_set_new(u, "completion_tokens", json_integer(f->completion_tokens));
        json_object_set_new(o, "usage", u);
        json_t *t = json_object();
        json_object_set_new(t, "queue_ms", json_real(f->queue_ms));
        json_object_set_new(t, "prefill_ms", json_real(f->prefill_ms));
        json_object_set_new(t, "decode_ms", json_real(f->decode_ms));
        json_object_set_new(o, "timings", t);
    } else if (j->state == PROD_JOB_ERROR || j->state == PROD_JOB_UNSENT) {
        json_t *e = json_object();
        if (f->id && !f->ok) { /* an error reply */
            json_object_set_new(e, "code", json_string(ee_proto_code_name(f->error_code)));
            json_object_set_new(e, "message",
                                text_json(f->error_message ? f->error_message : "",
                                          f->error_message ? strlen(f->error_message) : 0));
        } else { /* found by the client: not a protocol code */
            json_object_set_new(e, "code", json_string(j->state == PROD_JOB_UNSENT
                                                           ? "not_delivered" : "bad_reply"));
            json_object_set_new(e, "message", json_string(j->problem ? j->problem : ""));
        }
        json_object_set_new(o, "error", e);
    }
    json_object_set_new(o, "worker", f->worker ? json_string(f->worker) : json_null());
    /* null for `wait` (the job was not sent here) and for jobs without a reply */
    bool measured = j->t_sent > 0 && (j->state == PROD_JOB_OK || j->state == PROD_JOB_ERROR);
    json_object_set_new(o, "latency_ms",
                        measured ? json_real(round((j->t_done - j->t_sent) * 1000) / 1000)
                                 : json_null());
    return o;
}

int prod_print_result(prod_print *p, prod_job *j, ee_err *err) {
    const ee_proto_reply *f = &j->final;
    if (j->state != PROD_JOB_OK && !p->json && !p->quiet && j->shown) {
        /* partials were shown (e.g. a deadline passed mid-generation): end
         * their text before the error line */
        if (!p->multi) putchar('\n');
        if (p->multi && j->line.len) {
            printf("%s: %.*s\n", j->id, (int)j->line.len, j->line.p);
            ee_buf_consume(&j->line, j->line.len);
        }
        fflush(stdout);
    }
    if (j->state == PROD_JOB_ERROR) {
        if (f->id && !f->ok)
            problem(p, "job %s: error %s: %s", j->id, ee_proto_code_name(f->error_code),
                    f->error_message ? f->error_message : "");
        else
            problem(p, "job %s: %s", j->id, j->problem ? j->problem : "failed");
    } else if (j->state == PROD_JOB_UNSENT) {
        problem(p, "job %s: not delivered to Kafka: %s", j->id, j->problem ? j->problem : "?");
    }
    if (p->quiet) return 0;
    int rc = 0;
    if (p->json) {
        emit_json(result_json(p, j, err, &rc));
        return rc;
    }
    if (j->state != PROD_JOB_OK) return 0;
    if (j->scores) { /* class scores: the label ("ID: label" for several jobs) */
        int k = ee_cnn_argmax(j->scores, (int)f->n_scores);
        char lb[16];
        if (p->multi) printf("%s: ", j->id);
        printf("%s\n", ee_cnn_class_label(p->cl->gguf, k, lb));
        fflush(stdout);
        return 0;
    }
    if (j->vec) { /* an embedding: one line of floats ("ID: ..." for several jobs) */
        if (p->multi) printf("%s:", j->id);
        for (size_t i = 0; i < f->dim; i++) printf(i || p->multi ? " %.9g" : "%.9g", j->vec[i]);
        putchar('\n');
        fflush(stdout);
        return 0;
    }
    /* version 1 has "stop" and "length"; say so if a newer worker sends more */
    if (f->finish_reason && strcmp(f->finish_reason, "stop") != 0 &&
        strcmp(f->finish_reason, "length") != 0)
        problem(p, "job %s: finish_reason %s", j->id, f->finish_reason);
    return plain_final(p, j, err);
}
