/* prod_jobs: from prompt text to a version-1 request.
 *
 * A prompt is tokenized with the plaintext tokenizer and encrypted once
 * (prod_prompt); each job built from it gets its id, routing (class and
 * topic) and the request JSON (ee_proto_request_to_json). */
#ifndef PROD_JOBS_H
#define PROD_JOBS_H

#include "prod_client.h"

#include "ee_error.h"
#include "ee_proto.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct prod_gen_opts {
    const char *model;
    ee_proto_task task;            /* generate (default), embed or search */
    const char *index;             /* search: the index */
    bool invert;                   /* classify: images have dark ink on a light page */
    uint32_t k;                    /* search: hits wanted */
    const char *cls;               /* forced class, or NULL: ee_proto_choose_class */
    ee_proto_class_thresholds th;
    ee_proto_params params;        /* max_tokens, temperature, top_k, top_p, seed */
    long long deadline_in_ms;      /* relative; 0 = no deadline */
    const char *session;           /* NULL: none (the record key is the id) */
    const char *reply_to;
    bool chat;
    bool stream;
} prod_gen_opts;

typedef struct prod_prompt {
    int32_t *enc;      /* encrypted prompt ids */
    size_t n;
    float *fmap;       /* classify: the encrypted feature map (the text is an image path) */
    size_t fmap_len;
    const char *cls;   /* static string, or g->cls */
    char *topic;       /* ee.requests.<model>.<class> */
} prod_prompt;

int prod_prompt_make(prod_prompt *pp, const prod_client *cl, const char *text,
                     const prod_gen_opts *g, ee_err *err);
void prod_prompt_free(prod_prompt *pp);

/* n jobs made from n texts (prompts, documents, image paths) under g: a
 * random id each, its prompt (prod_prompt_make) and topic; bodies are
 * filled by prod_run. On failure *failed is the index of the text that
 * failed (err says why) and the batch is freed. */
typedef struct prod_batch {
    prod_prompt *pp;     /* [n] */
    char **ids;          /* [n] */
    char **bodies;       /* [n] */
    const char **topics; /* [n] pp[i].topic */
    size_t n;
} prod_batch;

int prod_batch_make(prod_batch *b, const prod_client *cl, const char *const *texts, size_t n,
                    const prod_gen_opts *g, size_t *failed, ee_err *err);
void prod_batch_free(prod_batch *b);

/* The request body for job id (malloc'd JSON); the deadline is taken
 * from the clock now and returned in *deadline_ms (may be NULL). When
 * sealing, the body names the job's reply key (reply_pk). */
char *prod_request_json(const prod_client *cl, const prod_prompt *pp, const char *id,
                        const prod_gen_opts *g, int64_t *deadline_ms, ee_err *err);

#endif
