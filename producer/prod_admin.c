#include "prod_admin.h"

#include "ee_clock.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

/* Asks the cluster to create topic; "" in why on success or if it exists. */
static void create_topic(rd_kafka_t *rk, const char *topic, int partitions, int replication,
                         const char *cleanup_policy, double deadline, char *why, size_t why_cap) {
    char es[512];
    why[0] = 0;
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, partitions, replication, es, sizeof es);
    if (!nt) {
        snprintf(why, why_cap, "%s", es);
        return;
    }
    if (cleanup_policy) rd_kafka_NewTopic_set_config(nt, "cleanup.policy", cleanup_policy);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *ao = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    int left = prod_ms_left(deadline);
    if (left < 1) left = 1;
    /* operation timeout: the controller answers once the topic is created */
    rd_kafka_AdminOptions_set_request_timeout(ao, left, es, sizeof es);
    rd_kafka_AdminOptions_set_operation_timeout(ao, left, es, sizeof es);
    rd_kafka_CreateTopics(rk, &nt, 1, ao, q);
    rd_kafka_event_t *ev = NULL;
    while (!ev && prod_ms_left(deadline) > 0) {
        ev = rd_kafka_queue_poll(q, 100);
        if (ev && rd_kafka_event_type(ev) != RD_KAFKA_EVENT_CREATETOPICS_RESULT) {
            rd_kafka_event_destroy(ev);
            ev = NULL;
        }
    }
    if (!ev) {
        snprintf(why, why_cap, "no answer to CreateTopics before the timeout");
    } else if (rd_kafka_event_error(ev)) {
        /* e.g. a broker without the Admin API */
        snprintf(why, why_cap, "%s", rd_kafka_event_error_string(ev));
    } else {
        size_t n = 0;
        const rd_kafka_topic_result_t **res =
            rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
        for (size_t i = 0; i < n; i++) {
            rd_kafka_resp_err_t e = rd_kafka_topic_result_error(res[i]);
            if (e && e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
                const char *s = rd_kafka_topic_result_error_string(res[i]);
                snprintf(why, why_cap, "%s", s && *s ? s : rd_kafka_err2str(e));
            }
        }
    }
    if (ev) rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(ao);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(nt);
}

/* Partition count of topic (-1 missing, -2 with err: Kafka unreachable);
 * *has_controller: the cluster names a controller among its brokers. */
static int lookup(rd_kafka_t *rk, prod_kcap *cap, const char *bootstrap, const char *topic,
                  double deadline, bool *ready, bool *has_controller, ee_err *err) {
    const struct rd_kafka_metadata *md = NULL;
    if (prod_kafka_metadata(rk, cap, bootstrap, deadline, &md, err)) return -2;
    int n = prod_kafka_partitions(md, topic, ready);
    if (has_controller) {
        int left = prod_ms_left(deadline);
        int32_t id = rd_kafka_controllerid(rk, left < 1000 ? left : 1000);
        *has_controller = false;
        for (int i = 0; id >= 0 && i < md->broker_cnt; i++)
            if (md->brokers[i].id == id) *has_controller = true;
    }
    rd_kafka_metadata_destroy(md);
    return n;
}

int prod_admin_ensure_topic(rd_kafka_t *rk, prod_kcap *cap, const char *bootstrap,
                            const char *topic, int partitions, int replication, double deadline,
                            ee_err *err) {
    return prod_admin_ensure_topic_ex(rk, cap, bootstrap, topic, partitions, replication, NULL,
                                      deadline, err);
}

int prod_admin_ensure_topic_ex(rd_kafka_t *rk, prod_kcap *cap, const char *bootstrap,
                               const char *topic, int partitions, int replication,
                               const char *cleanup_policy, double deadline, ee_err *err) {
    bool ready = false, has_controller = false;
    int n = lookup(rk, cap, bootstrap, topic, deadline, &ready, &has_controller, err);
    if (n == -2) return -1;
    if (n > 0 && ready) return n;
    char why[512] = "";
    if (n < 0) {
        /* The Admin API goes through the controller. A cluster without one
         * among its brokers (the mock broker says "controller 0" and has
         * only broker 1) would keep CreateTopics waiting until the
         * deadline: give up on creating at once instead. */
        if (!has_controller)
            snprintf(why, sizeof why, "the cluster names no controller: no Admin API");
        else
            create_topic(rk, topic, partitions, replication, cleanup_policy, deadline, why, sizeof why);
    }
    /* Right after CreateTopics a broker may still answer "unknown topic",
     * and a partition may have no leader yet: wait until it is usable. */
    for (;;) {
        n = lookup(rk, cap, bootstrap, topic, deadline, &ready, NULL, err);
        if (n == -2) return -1;
        if (n > 0 && ready) return n;
        if (why[0] || prod_ms_left(deadline) == 0) break;
        struct timespec ts = {0, 100 * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (n > 0) /* exists, but some partition has no leader */
        return ee_err_set(err, "reply topic '%s' has a partition without a leader", topic);
    if (why[0])
        return ee_err_set(err,
                          "reply topic '%s' does not exist and could not be created (%s); "
                          "create it, or pass --reply-to an existing topic",
                          topic, why);
    return ee_err_set(err, "reply topic '%s' did not appear in the metadata before the timeout",
                      topic);
}
