/* prod_admin: making sure the client's reply topic exists.
 *
 * Workers dead-letter a job whose reply topic is missing, and broker
 * auto-creation is off in the service's clusters (and must not be relied
 * on), so the client creates its reply topic itself with the Admin API.
 * "Already exists" is success (another client won the race). A cluster
 * without the Admin API (the librdkafka mock broker behind
 * scripts/devbroker.sh) is not an error by itself: the topic may exist
 * anyway; only a topic that is still missing is. */
#ifndef PROD_ADMIN_H
#define PROD_ADMIN_H

#include "prod_kafka.h"

#include "ee_error.h"

/* Returns the topic's partition count (>= 1), or -1 with err (the topic is
 * missing and could not be created, or Kafka is unreachable). rk is a
 * producer handle; deadline is monotonic ms. */
int prod_admin_ensure_topic(rd_kafka_t *rk, prod_kcap *cap, const char *bootstrap,
                            const char *topic, int partitions, int replication, double deadline,
                            ee_err *err);

/* The same, creating it with cleanup.policy = cleanup_policy (NULL: the
 * broker's default), e.g. "compact" for a blind index's topic. */
int prod_admin_ensure_topic_ex(rd_kafka_t *rk, prod_kcap *cap, const char *bootstrap,
                               const char *topic, int partitions, int replication,
                               const char *cleanup_policy, double deadline, ee_err *err);
#endif
