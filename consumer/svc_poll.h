/* svc_poll: the poll thread's round and rebalances. */
#ifndef EE_SVC_POLL_H
#define EE_SVC_POLL_H

#include "svc.h"

/* Hooks svc_kafka_open takes: delivery reports to svc_on_delivery,
 * rebalances to the poll thread's handler. */
extern const svc_kafka_hooks svc_poll_hooks;
/* One poll round over every consumer and the producer; accept false while
 * shutting down (records polled then are left for redelivery). Returns false
 * if a record could not be held (out of memory). */
bool svc_poll_round(svc *s, int timeout_ms, bool accept);
/* Abandon queued jobs of (cons, partitions) and wait for running ones, up to
 * wait_ms; used on revoke and shutdown. NULL parts: everything of cons (or
 * of every consumer when cons < 0). */
void svc_release_jobs(svc *s, int cons, const rd_kafka_topic_partition_list_t *parts, int wait_ms);

#endif
