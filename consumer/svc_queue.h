/* svc_queue: the hand-off between threads. */
#ifndef EE_SVC_QUEUE_H
#define EE_SVC_QUEUE_H

#include "svc.h"

/* Queue a parsed job for the inference thread (poll thread). */
void svc_enqueue(svc *s, svc_job *j);
/* Wake the poll thread (any thread; async-signal-safe). */
void svc_wake(svc *s);

#endif
