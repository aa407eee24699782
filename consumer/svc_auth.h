/* svc_auth: sealed and signed jobs. */
#ifndef EE_SVC_AUTH_H
#define EE_SVC_AUTH_H

#include "svc.h"

/* sealed and signed jobs (docs/PROTOCOL.md). */
int svc_auth_open(svc *s, ee_err *err);   /* pool key, replay window */
void svc_auth_close(svc *s);
/* Before parsing: reads the routing headers (so refusals can be answered),
 * verifies the tenant signature, the replay window and the tenant's rights,
 * and opens a sealed value into j->body. Returns 0, or -1 with j->code and
 * j->message set. */
int svc_auth_check(svc *s, svc_job *j);
/* After parsing: the body must agree with the signed headers, and a sealed
 * job must name its reply key. Returns 0 or -1 as above. */
int svc_auth_after_parse(svc *s, svc_job *j);
/* A sealed body failed to parse: seal the error reply if it names a reply
 * key anyway, else strip the message of body details. */
void svc_auth_parse_failed(svc_job *j);
/* A reply value for j: sealed to its reply key when the request was sealed
 * (js is consumed either way); NULL on failure. */
char *svc_auth_reply_value(svc_job *j, char *js, size_t *len);

#endif
