/* The hand-off between the worker's threads: the job queue (poll thread ->
 * inference thread) and the poll thread's wake pipe. Below both threads'
 * modules, so neither calls the other to pass work. */
#include "svc_queue.h"

#include <unistd.h>

void svc_enqueue(svc *s, svc_job *j) {
    pthread_mutex_lock(&s->mu);
    j->state = JOB_QUEUED;
    j->next = NULL;
    if (s->q_tail) s->q_tail->next = j;
    else s->q_head = j;
    s->q_tail = j;
    s->q_len++;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

void svc_wake(svc *s) {
    if (s->wake_wr >= 0) {
        ssize_t n = write(s->wake_wr, "w", 1); /* full pipe: a wake-up is pending anyway */
        (void)n;
    }
}
