#include "prod_replies.h"

#include <string.h>
#include <time.h>

int prod_replies_open(prod_replies *r, const prod_kafka_opts *o, prod_kcap *cap, ee_err *err) {
    memset(r, 0, sizeof *r);
    r->rk = prod_kafka_consumer(o, cap, err);
    return r->rk ? 0 : -1;
}

/* Errors of a topic that is still settling (just created, leader moving):
 * the answer changes within moments, so they are retried. */
static bool transient(rd_kafka_resp_err_t e) {
    return e == RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION ||
           e == RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE ||
           e == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
           e == RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION || e == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC ||
           e == RD_KAFKA_RESP_ERR_OFFSET_NOT_AVAILABLE;
}

static rd_kafka_resp_err_t end_offset(rd_kafka_t *rk, const char *topic, int p, double deadline,
                                      int64_t *lo, int64_t *hi) {
    for (;;) {
        int left = prod_ms_left(deadline);
        rd_kafka_resp_err_t e =
            rd_kafka_query_watermark_offsets(rk, topic, p, lo, hi, left ? left : 1);
        if (!e || !transient(e) || prod_ms_left(deadline) == 0) return e;
        struct timespec ts = {0, 100 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

int prod_replies_assign(prod_replies *r, const prod_kafka_opts *o, prod_kcap *cap,
                        const char *topic, int n_partitions, bool from_beginning,
                        double deadline, ee_err *err) {
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(n_partitions);
    for (int p = 0; p < n_partitions; p++) {
        int64_t lo = 0, hi = RD_KAFKA_OFFSET_BEGINNING;
        if (!from_beginning) {
            rd_kafka_resp_err_t e = end_offset(r->rk, topic, p, deadline, &lo, &hi);
            if (e) {
                rd_kafka_topic_partition_list_destroy(parts);
                if (e == RD_KAFKA_RESP_ERR__TIMED_OUT || e == RD_KAFKA_RESP_ERR__TRANSPORT)
                    return prod_kcap_unreachable(cap, o->bootstrap, rd_kafka_err2str(e), err);
                return ee_err_set(err,
                                  "reply topic %s partition %d: cannot read its end offset: %s",
                                  topic, p, rd_kafka_err2str(e));
            }
        }
        rd_kafka_topic_partition_list_add(parts, topic, p)->offset = hi;
    }
    rd_kafka_resp_err_t e = rd_kafka_assign(r->rk, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    if (e)
        return ee_err_set(err, "reply topic %s: cannot assign its partitions: %s", topic,
                          rd_kafka_err2str(e));
    return 0;
}

rd_kafka_message_t *prod_replies_poll(prod_replies *r, int timeout_ms) {
    return rd_kafka_consumer_poll(r->rk, timeout_ms);
}

void prod_replies_close(prod_replies *r) {
    if (!r->rk) return;
    rd_kafka_consumer_close(r->rk);
    rd_kafka_destroy(r->rk);
    r->rk = NULL;
}
