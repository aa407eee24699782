/* svc_metrics: /metrics and /healthz. */
#ifndef EE_SVC_METRICS_H
#define EE_SVC_METRICS_H

#include "svc.h"

int svc_metrics_open(svc *s, ee_err *err);
void svc_metrics_close(svc *s);
void svc_metrics_job_done(svc *s, const svc_job *j);
void svc_metrics_stats(svc *s, const char *json, size_t len);
bool svc_health(void *user, char *reason, size_t cap);

#endif
