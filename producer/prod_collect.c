#include "prod_collect.h"

#include "prod_exit.h"

#include "ee_clock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DRAIN_MAX 1000 /* records per step once the first has arrived */

static char *dup_msg(const char *prefix, const char *msg) {
    size_t n = strlen(prefix) + strlen(msg) + 1;
    char *s = malloc(n);
    if (s) snprintf(s, n, "%s%s", prefix, msg);
    return s;
}

/* Keeps the reply as the job's final one and settles the job. */
static int take_final(prod_collect *c, prod_job *j, ee_proto_reply *r, ee_err *err) {
    double now = ee_now_ms();
    j->final = *r;
    memset(r, 0, sizeof *r); /* ownership moved */
    prod_job_state st = PROD_JOB_ERROR;
    char *problem = NULL;
    if (j->final.ok && j->final.scores) {
        ee_err de = {{0}};
        j->scores = malloc(j->final.n_scores * sizeof *j->scores);
        if (!j->scores) return ee_err_set(err, "out of memory");
        if (prod_client_decrypt_scores(c->cl, j->final.scores, j->final.n_scores, j->scores,
                                       &de) == 0)
            st = PROD_JOB_OK;
        else
            problem = dup_msg("bad reply: ", de.msg);
    } else if (j->final.ok && j->final.embedding) {
        ee_err de = {{0}};
        j->vec = malloc(j->final.dim * sizeof *j->vec);
        if (!j->vec) return ee_err_set(err, "out of memory");
        if (prod_client_decrypt_vec(c->cl, j->final.embedding, j->final.dim, j->vec, &de) == 0)
            st = PROD_JOB_OK;
        else
            problem = dup_msg("bad reply: ", de.msg);
    } else if (j->final.ok) {
        ee_err de = {{0}};
        j->plain = malloc((j->final.n_tokens + 1) * sizeof *j->plain);
        if (!j->plain) return ee_err_set(err, "out of memory");
        if (prod_client_decrypt(c->cl, j->final.tokens, j->plain, j->final.n_tokens, &de) == 0)
            st = PROD_JOB_OK;
        else
            problem = dup_msg("bad reply: ", de.msg); /* not ids under this key */
    }
    if (st != PROD_JOB_OK) c->exit_code = prod_exit_worst(c->exit_code, PROD_EXIT_REPLY);
    prod_tracker_settle(c->tr, j, st, now, problem);
    return prod_print_result(c->pr, j, err);
}

static int take_partial(prod_collect *c, prod_job *j, const ee_proto_reply *r, ee_err *err) {
    if (r->seq != j->next_seq) return 0; /* repeated (redelivery) or out of order */
    j->next_seq++;
    if (j->t_first == 0 && r->n_tokens > 0) j->t_first = ee_now_ms();
    int32_t *plain = malloc((r->n_tokens + 1) * sizeof *plain);
    if (!plain) return ee_err_set(err, "out of memory");
    ee_err de = {{0}};
    int rc = 0;
    if (prod_client_decrypt(c->cl, r->tokens, plain, r->n_tokens, &de) == 0)
        rc = prod_print_partial(c->pr, j, r, plain, err);
    /* else: an unusable partial is skipped; the final reply is authoritative */
    free(plain);
    return rc;
}

/* The job id a reply record is for, from its ee-id header or its key. */
static bool reply_id(const rd_kafka_message_t *m, char *buf, size_t cap) {
    rd_kafka_headers_t *h = NULL;
    const void *v = NULL;
    size_t n = 0;
    if (rd_kafka_message_headers(m, &h) == RD_KAFKA_RESP_ERR_NO_ERROR && h &&
        rd_kafka_header_get_last(h, EE_PROTO_HDR_ID, &v, &n) == RD_KAFKA_RESP_ERR_NO_ERROR && v &&
        n < cap && !memchr(v, 0, n)) {
        memcpy(buf, v, n);
        buf[n] = 0;
        return true;
    }
    if (m->key && m->key_len < cap && !memchr(m->key, 0, m->key_len)) {
        memcpy(buf, m->key, m->key_len);
        buf[m->key_len] = 0;
        return true;
    }
    return false;
}

static int handle(prod_collect *c, const rd_kafka_message_t *m, ee_err *err) {
    ee_proto_reply r;
    ee_err pe = {{0}};
    const void *payload = m->payload;
    size_t len = m->len;
    char *opened = NULL;
    if (ee_is_sealed(m->payload, m->len)) {
        /* Sealed to this job's reply key: only ours open. */
        char id[EE_PROTO_ID_MAX + 1];
        prod_job *sj = reply_id(m, id, sizeof id) ? prod_tracker_find(c->tr, id) : NULL;
        if (!sj) return 0; /* another client's */
        if (prod_client_open_reply(c->cl, id, m->payload, m->len, &opened, &len, &pe)) {
            if (sj->state == PROD_JOB_PENDING)
                fprintf(stderr, "job %s: ignoring a sealed reply that does not open (partition %d "
                                "offset %lld): %s\n", id, (int)m->partition, (long long)m->offset,
                        pe.msg);
            return 0;
        }
        payload = opened;
    }
    int prc = ee_proto_parse_reply(payload, len, &r, &pe);
    free(opened);
    if (prc) {
        /* unreadable: worth a word only if its key says it is one of ours */
        if (m->key && m->key_len < 512) {
            char key[512];
            memcpy(key, m->key, m->key_len);
            key[m->key_len] = 0;
            prod_job *j = prod_tracker_find(c->tr, key);
            if (j && j->state == PROD_JOB_PENDING)
                fprintf(stderr,
                        "job %s: ignoring an unreadable reply (partition %d offset %lld): %s\n",
                        key, (int)m->partition, (long long)m->offset, pe.msg);
        }
        return 0;
    }
    int rc = 0;
    prod_job *j = prod_tracker_find(c->tr, r.id);
    if (j && j->state == PROD_JOB_PENDING) {
        /* error replies are always final, whatever the flag says */
        if (r.final || !r.ok)
            rc = take_final(c, j, &r, err);
        else
            rc = take_partial(c, j, &r, err);
    }
    ee_proto_reply_free(&r);
    return rc;
}

int prod_collect_step(prod_collect *c, int timeout_ms, ee_err *err) {
    for (int k = 0; k < DRAIN_MAX; k++) {
        rd_kafka_message_t *m = prod_replies_poll(c->rep, k == 0 ? timeout_ms : 0);
        if (!m) return 0;
        int rc = 0;
        if (m->err) {
            snprintf(c->last_err, sizeof c->last_err, "%s", rd_kafka_message_errstr(m));
            if (m->err == RD_KAFKA_RESP_ERR__FATAL)
                rc = ee_err_set(err, "reply consumer: %s", c->last_err);
        } else {
            rc = handle(c, m, err);
        }
        rd_kafka_message_destroy(m);
        if (rc) return -1;
    }
    return 0;
}

int prod_collect_deliveries(prod_collect *c, ee_err *err) {
    for (size_t k = 0; k < c->tr->n; k++) {
        prod_job *j = c->tr->jobs[k];
        if (j->state != PROD_JOB_PENDING || !j->delivery_err) continue;
        char *why = dup_msg("", rd_kafka_err2str((rd_kafka_resp_err_t)j->delivery_err));
        prod_tracker_settle(c->tr, j, PROD_JOB_UNSENT, ee_now_ms(), why);
        c->exit_code = prod_exit_worst(c->exit_code, PROD_EXIT_KAFKA);
        if (prod_print_result(c->pr, j, err)) return -1;
    }
    return 0;
}

void prod_collect_give_up(prod_collect *c, long long timeout_ms, ee_err *err) {
    char ids[EE_ERR_MAX] = "";
    size_t n = 0, len = 0, listed = 0;
    double now = ee_now_ms();
    for (size_t k = 0; k < c->tr->n; k++) {
        prod_job *j = c->tr->jobs[k];
        if (j->state != PROD_JOB_PENDING) continue;
        n++;
        /* the message is one line of bounded length: list what fits */
        size_t idl = strlen(j->id);
        if (len + idl + 2 < sizeof ids - 200) {
            len += (size_t)snprintf(ids + len, sizeof ids - len, "%s%s", listed ? ", " : "", j->id);
            listed++;
        }
        prod_tracker_settle(c->tr, j, PROD_JOB_TIMEOUT, now, NULL);
        ee_err pe;
        prod_print_result(c->pr, j, &pe);
    }
    c->exit_code = prod_exit_worst(c->exit_code, PROD_EXIT_TIMEOUT);
    /* e.g. the brokers went away while waiting */
    if (!c->last_err[0] && c->cap) prod_kcap_last(c->cap, c->last_err, sizeof c->last_err);
    ee_err_set(err, "timed out after %lld ms waiting for %zu job(s): %s%s%s%s%s", timeout_ms, n,
               ids, listed < n ? ", ..." : "", c->last_err[0] ? " (last Kafka error: " : "",
               c->last_err, c->last_err[0] ? ")" : "");
}
