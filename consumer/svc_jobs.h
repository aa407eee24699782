/* svc_jobs: the job lifecycle: parse, check, answer, finish. */
#ifndef EE_SVC_JOBS_H
#define EE_SVC_JOBS_H

#include "svc.h"

svc_job *svc_job_from_message(svc *s, int cons, const rd_kafka_message_t *msg);
void svc_job_free(svc_job *j);
void svc_handle_job(svc *s, svc_job *j);        /* poll thread: check, answer or queue */
void svc_job_finished(svc *s, svc_job *j, bool acked); /* poll thread: release, store offset */
void svc_collect_returned(svc *s);              /* poll thread: jobs handed back */
/* Produce the final reply / dead letter for j (any thread); on failure to
 * even enqueue, j goes back through svc_job_finished(acked=false). */
void svc_send_final(svc *s, svc_job *j);
void svc_send_dlq(svc *s, svc_job *j);
void svc_send_partial(svc *s, svc_job *j, const int32_t *toks, size_t n);
void svc_on_delivery(svc *s, const rd_kafka_message_t *m);
/* The list of every live job (svc.all), poll thread. */
void svc_link_job(svc *s, svc_job *j);
void svc_unlink_job(svc *s, svc_job *j);

#endif
