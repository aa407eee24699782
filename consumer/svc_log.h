/* svc_log: JSON log lines. */
#ifndef EE_SVC_LOG_H
#define EE_SVC_LOG_H

#include "svc.h"

/* one JSON object per line on stderr. fields may be NULL; it is
 * consumed (json_decref). Never pass keys or plaintext (there is none). */
void svc_log(const char *level, const char *event, json_t *fields);
void svc_log_job(const char *level, const char *event, const svc_job *j, json_t *fields);

#endif
