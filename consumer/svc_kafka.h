/* svc_kafka: the Kafka clients. */
#ifndef EE_SVC_KAFKA_H
#define EE_SVC_KAFKA_H

#include "svc.h"

/* Make the consumers and the producer. Delivery reports and rebalances go
 * to hooks (copied into s->hooks). */
int svc_kafka_open(svc *s, const svc_kafka_hooks *hooks, ee_err *err);
void svc_kafka_close(svc *s);
int svc_create_topics(svc *s, ee_err *err);
int svc_subscribe(svc *s, ee_err *err);
/* After a fatal producer error (librdkafka 2.0.2's idempotent producer can
 * raise spurious ones): a new producer replaces the old, whose unsent
 * records are purged and re-sent on the new one. Poll thread. Returns 0, or
 * -1 if no producer could be made (then the worker drains and exits 3). */
int svc_producer_recreate(svc *s);
void svc_set_paused(svc *s, bool paused);
/* A client configuration as the worker's own clients get it (defaults,
 * [kafka] settings, callbacks); consumers join group. */
rd_kafka_conf_t *svc_kafka_conf(svc *s, bool consumer, const char *group, ee_err *err);
/* librdkafka writes one byte to the wake pipe when q becomes non-empty;
 * q is destroyed (the queue stays). */
void svc_kafka_wake_on(svc *s, rd_kafka_queue_t *q);

#endif
