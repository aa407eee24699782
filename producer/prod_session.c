#include "prod_session.h"

#include "prod_admin.h"
#include "prod_exit.h"
#include "prod_send.h"

#include <string.h>

static int check_request_topics(prod_session *s, const prod_common *c,
                                const char *const *topics, size_t n, double deadline,
                                ee_err *err) {
    const struct rd_kafka_metadata *md = NULL;
    if (prod_kafka_metadata(s->producer, &s->cap, c->kafka.bootstrap, deadline, &md, err))
        return -1;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++)
        if (prod_kafka_partitions(md, topics[i], NULL) < 0)
            rc = ee_err_set(err, "request topic '%s' does not exist at %s (no worker set up for "
                                 "this model and class? topics are never auto-created)",
                            topics[i], c->kafka.bootstrap);
    rd_kafka_metadata_destroy(md);
    return rc;
}

int prod_session_open(prod_session *s, const prod_common *c, const char *const *req_topics,
                      size_t n_topics, bool wait, int delivery_timeout_ms, double deadline,
                      ee_err *err) {
    memset(s, 0, sizeof *s);
    if (prod_kcap_init(&s->cap, &c->kafka, err)) return PROD_EXIT_USAGE;
    s->cap_ok = true;
    s->producer = prod_kafka_producer(&c->kafka, &s->cap, delivery_timeout_ms, prod_send_dr, err);
    if (!s->producer) return PROD_EXIT_KAFKA;
    if (check_request_topics(s, c, req_topics, n_topics, deadline, err)) return PROD_EXIT_KAFKA;
    int parts = prod_admin_ensure_topic(s->producer, &s->cap, c->kafka.bootstrap, c->reply_to,
                                        c->reply_partitions, c->reply_replication, deadline, err);
    if (parts < 0) return PROD_EXIT_KAFKA;
    if (wait && (prod_replies_open(&s->rep, &c->kafka, &s->cap, err) ||
                 prod_replies_assign(&s->rep, &c->kafka, &s->cap, c->reply_to, parts, false,
                                     deadline, err)))
        return PROD_EXIT_KAFKA;
    return 0;
}

void prod_session_close(prod_session *s) {
    prod_replies_close(&s->rep);
    if (s->producer) {
        rd_kafka_purge(s->producer, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_poll(s->producer, 0); /* purged records report to their jobs now */
        rd_kafka_destroy(s->producer);
    }
    if (s->cap_ok) prod_kcap_destroy(&s->cap);
    memset(s, 0, sizeof *s);
}
