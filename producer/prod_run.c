/* prod_run: send a set of jobs and wait for them (submit, index, ask). */
#include "prod_run.h"

#include "prod_exit.h"
#include "prod_send.h"

#include "ee_clock.h"

#include <stdlib.h>

/* Sends every job, then waits for deliveries and (--wait) final replies. */
int prod_run(const prod_run_spec *s, prod_session *ss, prod_collect *col, double deadline, ee_err *err) {
    for (size_t i = 0; i < s->n; i++) {
        prod_job *j = prod_tracker_add(col->tr, s->ids[i], err);
        if (!j) return PROD_EXIT_USAGE;
        /* built now so that the deadline counts from the moment of sending */
        int64_t dl = 0;
        s->bodies[i] = prod_request_json(s->cl, &s->pp[i], s->ids[i], s->g, &dl, err);
        if (!s->bodies[i]) return PROD_EXIT_USAGE;
        prod_request rq = {.topic = s->pp[i].topic,
                           .key = s->g->session ? s->g->session : s->ids[i],
                           .id = s->ids[i],
                           .reply_to = s->reply_to,
                           .json = s->bodies[i],
                           .deadline_ms = dl};
        if (prod_request_protect(s->cl, &rq, err)) return PROD_EXIT_USAGE;
        j->t_sent = ee_now_ms();
        int src = prod_send(ss->producer, &rq, j, deadline, err);
        prod_request_clear(&rq);
        if (src) return PROD_EXIT_KAFKA;
        prod_print_submitted(col->pr, j, s->pp[i].topic, s->pp[i].cls, s->reply_to,
                             s->pp[i].enc, s->pp[i].n);
    }
    for (;;) {
        rd_kafka_poll(ss->producer, 0); /* delivery reports */
        if (prod_collect_deliveries(col, err)) return PROD_EXIT_USAGE;
        bool all_delivered = true;
        for (size_t i = 0; i < col->tr->n; i++)
            if (!col->tr->jobs[i]->delivered && col->tr->jobs[i]->state == PROD_JOB_PENDING)
                all_delivered = false;
        if (!s->wait && all_delivered) return col->exit_code;
        if (s->wait && col->tr->pending == 0) return col->exit_code;
        int left = prod_ms_left(deadline);
        if (left == 0) break;
        if (s->wait) {
            if (prod_collect_step(col, left < 100 ? left : 100, err)) return PROD_EXIT_KAFKA;
        } else {
            rd_kafka_poll(ss->producer, left < 100 ? left : 100);
        }
    }
    if (!s->wait) { /* the requests themselves are not confirmed */
        for (size_t i = 0; i < col->tr->n; i++)
            if (!col->tr->jobs[i]->delivered && !col->tr->jobs[i]->delivery_err)
                col->tr->jobs[i]->delivery_err = RD_KAFKA_RESP_ERR__MSG_TIMED_OUT;
        if (prod_collect_deliveries(col, err)) return PROD_EXIT_USAGE;
        return col->exit_code;
    }
    prod_collect_give_up(col, s->timeout_ms, err);
    return col->exit_code;
}
