#include "prod_send.h"

#include "prod_kafka.h"

#include "ee_clock.h"
#include "ee_proto.h"

#include <stdio.h>
#include <stdlib.h>

#include <string.h>

int prod_request_protect(const prod_client *cl, prod_request *r, ee_err *err) {
    r->sealed = NULL;
    r->sealed_len = 0;
    r->tenant = NULL;
    if (cl->seal && ee_seal(cl->pool_pk, r->json, strlen(r->json), &r->sealed, &r->sealed_len, err))
        return ee_err_wrap(err, "job %s: sealing", r->id);
    if (cl->tenant && cl->have_ck) {
        r->tenant = cl->tenant;
        r->ts_ms = ee_epoch_ms();
        ee_signed_fields f = {.topic = r->topic, .id = r->id, .reply_to = r->reply_to,
                              .tenant = r->tenant, .ts_ms = r->ts_ms,
                              .deadline_ms = r->deadline_ms,
                              .value = r->sealed ? (const void *)r->sealed : r->json,
                              .value_n = r->sealed ? r->sealed_len : strlen(r->json)};
        uint8_t sig[EE_SEAL_SIG_BYTES];
        ee_sign_request(&cl->ck, &f, sig);
        ee_seal_sig_hex(sig, r->sig);
    }
    return 0;
}

void prod_request_clear(prod_request *r) {
    free(r->sealed);
    r->sealed = NULL;
    r->sealed_len = 0;
}

int prod_send(rd_kafka_t *rk, const prod_request *r, prod_job *job, double deadline,
              ee_err *err) {
    const void *value = r->sealed ? (const void *)r->sealed : r->json;
    size_t value_len = r->sealed ? r->sealed_len : strlen(r->json);
    for (;;) {
        rd_kafka_headers_t *h = rd_kafka_headers_new(6);
        rd_kafka_header_add(h, EE_PROTO_HDR_ID, -1, r->id, -1);
        rd_kafka_header_add(h, EE_PROTO_HDR_REPLY_TO, -1, r->reply_to, -1);
        if (r->tenant) {
            char num[32];
            rd_kafka_header_add(h, EE_PROTO_HDR_TENANT, -1, r->tenant, -1);
            snprintf(num, sizeof num, "%lld", (long long)r->ts_ms);
            rd_kafka_header_add(h, EE_PROTO_HDR_TS, -1, num, -1);
            if (r->deadline_ms) {
                snprintf(num, sizeof num, "%lld", (long long)r->deadline_ms);
                rd_kafka_header_add(h, EE_PROTO_HDR_DEADLINE, -1, num, -1);
            }
            rd_kafka_header_add(h, EE_PROTO_HDR_SIG, -1, r->sig, -1);
        }
        rd_kafka_resp_err_t e = rd_kafka_producev(
            rk, RD_KAFKA_V_TOPIC(r->topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_KEY(r->key, strlen(r->key)), RD_KAFKA_V_VALUE((void *)value, value_len),
            RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_OPAQUE(job), RD_KAFKA_V_END);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR) rd_kafka_headers_destroy(h); /* else owned */
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR) return 0;
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL || prod_ms_left(deadline) == 0)
            return ee_err_set(err, "job %s: cannot produce to %s: %s", r->id, r->topic,
                              rd_kafka_err2str(e));
        rd_kafka_poll(rk, 50); /* delivery reports free queue space */
    }
}

void prod_send_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    (void)opaque;
    prod_job *j = m->_private;
    if (!j) return;
    if (m->err) {
        j->delivery_err = m->err;
    } else {
        j->delivered = true;
    }
}
