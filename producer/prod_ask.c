/* ee-producer ask: retrieval-augmented generation with every step blind.
 *
 *   1. the question is tokenized with the plaintext encoder, encrypted and
 *      sent as a search job: a worker embeds it and searches the index in
 *      the encrypted space (the plaintext ranking, docs/EE.md);
 *   2. the hits' sealed documents are opened here, with the key;
 *   3. the prompt (documents + question) is tokenized with the plaintext
 *      LLM, encrypted and sent as a generate job; the answer is decrypted.
 * Workers see encrypted ids, encrypted vectors and sealed texts only. */
#include "prod_client.h"
#include "prod_cmds.h"
#include "prod_collect.h"
#include "prod_exit.h"
#include "prod_ids.h"
#include "prod_jobs.h"
#include "prod_opts.h"
#include "prod_print.h"
#include "prod_run.h"
#include "prod_session.h"
#include "prod_tracker.h"

#include "ee_buf.h"
#include "ee_clock.h"
#include "ee_docseal.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *USAGE =
    "usage: ee-producer ask --bootstrap HOST:PORT --model ENCODER --index NAME\n"
    "         --key K.eekey --plain-model ENCODER.gguf --llm NAME --llm-plain-model LLM.gguf\n"
    "         --question TEXT [--k N] [--max-tokens N] [--json] [--show-prompt]\n"
    "         [--timeout-ms N] [--reply-to TOPIC] [--kafka PROP=VAL ...]\n"
    "\n"
    "  Retrieval-augmented generation over Kafka with every step blind (docs/RAG.md):\n"
    "  a search job finds the question's --k (default 3) nearest documents in the\n"
    "  blind index NAME; their sealed texts are opened here; a generate job asks LLM\n"
    "  the question with them in its chat template (greedy). Prints the answer and\n"
    "  the sources (--json: one object with question, answer, sources, prompt).\n"
    "  One key file serves both models (each model binds it to itself).\n"
    "\n" PROD_EXIT_HELP;

enum { BOOT, MODEL, INDEX, KEY, PLAIN, LLM, LLMPLAIN, QUESTION, K, MAXT, JSON, SHOWP, TIMEOUT, REPLY,
       KAFKA, HELP, NF };

/* The instruction around the documents: short, so a 135M model keeps to it. */
static int build_prompt(ee_buf *b, const ee_proto_hit *hits, char *const *texts, size_t n,
                        const char *question, ee_err *err) {
    if (ee_buf_puts(b, "Answer the question using the context.\n\nContext:\n", err)) return -1;
    for (size_t i = 0; i < n; i++)
        if (texts[i] && ee_buf_printf(b, err, "- %s\n", texts[i])) return -1;
    (void)hits;
    return ee_buf_printf(b, err, "\nQuestion: %s", question);
}

/* Send one job built from text under g and wait for it; the job or NULL. */
static prod_job *one_job(prod_client *cl, prod_gen_opts *g, const char *text, prod_session *ss,
                         prod_tracker *tr, const prod_common *c, double deadline, int *rc,
                         ee_err *err) {
    prod_prompt pp = {0};
    char jid[32], *ids[1], *bodies[1] = {NULL};
    if (prod_random_job_id(jid, err) || prod_prompt_make(&pp, cl, text, g, err)) {
        *rc = PROD_EXIT_USAGE;
        return NULL;
    }
    ids[0] = jid;
    prod_print pr = {.cl = cl, .quiet = true};
    prod_collect col = {.rep = &ss->rep, .tr = tr, .cl = cl, .pr = &pr, .cap = &ss->cap};
    prod_run_spec sp = {.cl = cl, .g = g, .reply_to = c->reply_to, .pp = &pp, .ids = ids,
                        .bodies = bodies, .n = 1, .wait = true, .timeout_ms = c->timeout_ms};
    *rc = prod_run(&sp, ss, &col, deadline, err);
    free(bodies[0]);
    prod_prompt_free(&pp);
    prod_job *j = prod_tracker_find(tr, jid);
    if (!j || j->state != PROD_JOB_OK) {
        if (j && j->final.error_message)
            ee_err_set(err, "job %s: %s: %s", jid, ee_proto_code_name(j->final.error_code),
                       j->final.error_message);
        else if (!err->msg[0])
            ee_err_set(err, "job %s: %s", jid, j && j->problem ? j->problem : "no answer");
        if (*rc == PROD_EXIT_OK) *rc = PROD_EXIT_REPLY;
        return NULL;
    }
    return j;
}

int prod_cmd_ask(int argc, char **argv) {
    cli_flag f[NF] = {
        [BOOT] = {"--bootstrap", true}, [MODEL] = {"--model", true}, [INDEX] = {"--index", true},
        [KEY] = {"--key", true}, [PLAIN] = {"--plain-model", true}, [LLM] = {"--llm", true},
        [LLMPLAIN] = {"--llm-plain-model", true}, [QUESTION] = {"--question", true},
        [K] = {"--k", true}, [MAXT] = {"--max-tokens", true}, [JSON] = {"--json", false},
        [SHOWP] = {"--show-prompt", false}, [TIMEOUT] = {"--timeout-ms", true},
        [REPLY] = {"--reply-to", true}, [KAFKA] = {"--kafka", true, true}, [HELP] = {"--help", false},
    };
    if (cli_wants_help(argc, argv)) {
        fputs(USAGE, stdout);
        return PROD_EXIT_OK;
    }
    ee_err err = {{0}};
    prod_common c;
    prod_gen_opts gs, gl;
    prod_client ce = {0}, cg = {0};
    prod_session ss = {0};
    prod_tracker t1 = {0}, t2 = {0};
    ee_buf prompt = {0};
    char **texts = NULL;
    char *answer = NULL;
    size_t alen = 0, nh = 0;
    int rc = PROD_EXIT_USAGE;
    long k = 3, maxt = 96;
    if (cli_parse(argc, argv, f, NF, &err) || prod_common_parse(&c, f, NF, 180000, &err) ||
        prod_gen_parse(&gs, f, NF, &c, &err) || prod_common_require(&c, &err))
        goto done;
    if (!f[INDEX].present || !f[LLM].present || !f[LLMPLAIN].present || !f[QUESTION].present) {
        ee_err_set(&err, "--index, --llm, --llm-plain-model and --question are required");
        goto done;
    }
    if ((f[K].present && cli_int("--k", f[K].value, 1, EE_PROTO_MAX_K, &k, &err)) ||
        (f[MAXT].present && cli_int("--max-tokens", f[MAXT].value, 1, 4096, &maxt, &err)))
        goto done;
    if (!ee_proto_valid_name(f[INDEX].value) || !ee_proto_valid_name(f[LLM].value)) {
        ee_err_set(&err, "--index and --llm must match [A-Za-z0-9._-]{1,64}");
        goto done;
    }
    gs.task = EE_TASK_SEARCH;
    gs.index = f[INDEX].value;
    gs.k = (uint32_t)k;
    gl = gs;
    gl.task = EE_TASK_GENERATE;
    gl.model = f[LLM].value;
    gl.index = NULL;
    gl.k = 0;
    gl.chat = true;
    gl.params.max_tokens = (uint32_t)maxt;
    gl.params.temperature = 0; /* greedy: the answer is reproducible */
    if (prod_client_open(&ce, c.plain_path, c.key_path, c.scheme, &err)) goto done;
    if (!ce.wp) {
        ee_err_set(&err, "--plain-model %s is not an encoder", c.plain_path);
        goto done;
    }
    if (prod_client_open(&cg, f[LLMPLAIN].value, c.key_path, NULL, &err)) {
        ee_err_wrap(&err, "--llm-plain-model");
        goto done;
    }
    double deadline = ee_now_ms() + (double)c.timeout_ms;
    char tenc[EE_PROTO_TOPIC_MAX + 1], tllm[EE_PROTO_TOPIC_MAX + 1];
    {
        ee_err e2 = {{0}};
        char *a = ee_proto_request_topic(gs.model, gs.cls ? gs.cls : "small", &e2);
        char *b = ee_proto_request_topic(gl.model, gl.cls ? gl.cls : "small", &e2);
        snprintf(tenc, sizeof tenc, "%s", a ? a : "");
        snprintf(tllm, sizeof tllm, "%s", b ? b : "");
        free(a), free(b);
    }
    const char *topics[2] = {tenc, tllm};
    rc = prod_session_open(&ss, &c, topics, 2, true, (int)c.timeout_ms, deadline, &err);
    if (rc) goto done;
    /* 1. blind search */
    double t0 = ee_now_ms();
    prod_job *js = one_job(&ce, &gs, f[QUESTION].value, &ss, &t1, &c, deadline, &rc, &err);
    if (!js) goto done;
    double search_ms = ee_now_ms() - t0;
    /* 2. open the documents here */
    nh = js->final.n_hits;
    texts = calloc(nh ? nh : 1, sizeof *texts);
    if (!texts) {
        ee_err_set(&err, "out of memory");
        rc = PROD_EXIT_USAGE;
        goto done;
    }
    for (size_t i = 0; i < nh; i++) {
        size_t len;
        ee_err e2 = {{0}};
        const ee_proto_hit *h = &js->final.hits[i];
        if (!h->doc || ee_doc_open(ce.doc_key, h->id, h->doc, &texts[i], &len, &e2))
            fprintf(stderr, "ee-producer ask: document %s: %s\n", h->id,
                    h->doc ? e2.msg : "no sealed text in the reply");
    }
    if (build_prompt(&prompt, js->final.hits, texts, nh, f[QUESTION].value, &err)) goto done;
    /* 3. blind generation */
    t0 = ee_now_ms();
    prod_job *jg = one_job(&cg, &gl, ee_buf_cstr(&prompt), &ss, &t2, &c, deadline, &rc, &err);
    if (!jg) goto done;
    double gen_ms = ee_now_ms() - t0;
    if (ee_tokenizer_decode_lossy(cg.tok, jg->plain, jg->final.n_tokens, false, &answer, &alen, &err)) {
        rc = PROD_EXIT_USAGE;
        goto done;
    }
    if (c.json) {
        json_t *o = json_object(), *src = json_array();
        json_object_set_new(o, "question", json_string(f[QUESTION].value));
        json_object_set_new(o, "answer", json_stringn(answer, alen));
        for (size_t i = 0; i < nh; i++) {
            json_t *h = json_object();
            json_object_set_new(h, "id", json_string(js->final.hits[i].id));
            json_object_set_new(h, "score", json_real(js->final.hits[i].score));
            json_object_set_new(h, "text", texts[i] ? json_string(texts[i]) : json_null());
            json_array_append_new(src, h);
        }
        json_object_set_new(o, "sources", src);
        json_object_set_new(o, "prompt", json_string(ee_buf_cstr(&prompt)));
        json_object_set_new(o, "search_ms", json_real(search_ms));
        json_object_set_new(o, "generate_ms", json_real(gen_ms));
        json_object_set_new(o, "answer_tokens", json_integer((json_int_t)jg->final.n_tokens));
        char *s = json_dumps(o, JSON_COMPACT);
        if (s) puts(s);
        free(s);
        json_decref(o);
    } else {
        if (f[SHOWP].present) printf("--- prompt\n%s\n--- answer\n", ee_buf_cstr(&prompt));
        printf("%.*s\n", (int)alen, answer);
        for (size_t i = 0; i < nh; i++)
            printf("[%zu] %s (score %.4f): %s\n", i + 1, js->final.hits[i].id,
                   js->final.hits[i].score, texts[i] ? texts[i] : "(not opened)");
    }
    rc = PROD_EXIT_OK;
done:
    if (err.msg[0] && rc != PROD_EXIT_OK) prod_fail("ask", rc, err.msg);
    prod_session_close(&ss);
    prod_tracker_free(&t1);
    prod_tracker_free(&t2);
    for (size_t i = 0; texts && i < nh; i++) free(texts[i]);
    free(texts);
    free(answer);
    ee_buf_free(&prompt);
    prod_client_close(&ce);
    prod_client_close(&cg);
    cli_flags_free(f, NF);
    return rc;
}
