#include "prod_send.h"

#include "prod_kafka.h"

#include "ee_proto.h"

#include <string.h>

int prod_send(rd_kafka_t *rk, const prod_request *r, prod_job *job, double deadline,
              ee_err *err) {
    for (;;) {
        rd_kafka_resp_err_t e = rd_kafka_producev(
            rk, RD_KAFKA_V_TOPIC(r->topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_KEY(r->key, strlen(r->key)),
            RD_KAFKA_V_VALUE((void *)r->json, strlen(r->json)),
            RD_KAFKA_V_HEADER(EE_PROTO_HDR_ID, r->id, (ssize_t)strlen(r->id)),
            RD_KAFKA_V_HEADER(EE_PROTO_HDR_REPLY_TO, r->reply_to, (ssize_t)strlen(r->reply_to)),
            RD_KAFKA_V_OPAQUE(job), RD_KAFKA_V_END);
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
