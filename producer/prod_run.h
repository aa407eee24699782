/* prod_run: send jobs built from prompts (prod_prompt) and wait for their
 * deliveries and, when wait, their final replies (kept in col->tr). */
#ifndef PROD_RUN_H
#define PROD_RUN_H

#include "prod_collect.h"
#include "prod_jobs.h"
#include "prod_session.h"

typedef struct prod_run_spec {
    const prod_client *cl;
    const prod_gen_opts *g;
    const char *reply_to;
    prod_prompt *pp;  /* [n] */
    char **ids;       /* [n] job ids */
    char **bodies;    /* [n] receive the request JSON (the caller frees them) */
    size_t n;
    bool wait;
    long long timeout_ms; /* for the give-up message */
} prod_run_spec;

/* A PROD_EXIT_* code (err set on failures). */
int prod_run(const prod_run_spec *s, prod_session *ss, prod_collect *col, double deadline,
             ee_err *err);

#endif
