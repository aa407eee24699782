/* prod_ids: job ids, consumer group ids and the default reply topic. */
#ifndef PROD_IDS_H
#define PROD_IDS_H

#include "ee_error.h"

#include <stddef.h>

/* 2*nbytes lowercase hex characters from libsodium's CSPRNG (+ NUL). */
int prod_random_hex(char *out, size_t nbytes, ee_err *err);

/* "job-<16 hex>": fresh and unguessable, so that two clients sharing a
 * reply topic never take each other's replies. */
int prod_random_job_id(char out[32], ee_err *err);

/* "ee.replies.<host>": the host name with everything outside [A-Za-z0-9-]
 * turned into '-' (no '.' or '_', see Kafka's collision warning), or
 * "ee.replies.default" when there is no usable host name. */
void prod_default_reply_topic(char *out, size_t cap);

#endif
