/* ee-producer submit: encrypt prompts, send them as jobs, optionally wait
 * for and print the decrypted answers. */
#include "prod_client.h"
#include "prod_cmds.h"
#include "prod_collect.h"
#include "prod_exit.h"
#include "prod_ids.h"
#include "prod_jobs.h"
#include "prod_opts.h"
#include "prod_print.h"
#include "prod_run.h"
#include "prod_send.h"
#include "prod_session.h"
#include "prod_tracker.h"

#include "ee_clock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *USAGE =
    "usage: ee-producer submit --bootstrap HOST:PORT --model NAME --key K.eekey\n"
    "         --plain-model PLAIN.gguf (--prompt TEXT | --prompts-file FILE|-) [--chat]\n"
    "         [--class C] [--small-max-prompt N] [--small-max-total N] [--max-tokens N]\n"
    "         [--temperature T] [--top-k K] [--top-p P] [--seed S] [--deadline-ms N]\n"
    "         [--reply-to TOPIC] [--reply-partitions N] [--reply-replication N] [--id ID]\n"
    "         [--session S] [--wait] [--stream] [--json] [--timeout-ms N]\n"
    "         [--kafka PROP=VALUE ...]\n"
    "\n"
    "  Tokenizes each prompt with PLAIN's tokenizer (--chat: in its chat template),\n"
    "  encrypts the ids with the key and sends one job per prompt (a prompts file\n"
    "  holds one prompt per non-blank line) to ee.requests.<model>.<class>. Prints\n"
    "  each job id as it is sent (--json: a JSON object with id, topic, class,\n"
    "  prompt_tokens and encrypted_prompt), then waits until Kafka has every request\n"
    "  (acks=all).\n"
    "\n"
    "  --class C          force the class; else small when prompt <= --small-max-prompt\n"
    "                     (512) and prompt + max-tokens <= --small-max-total (1024)\n"
    "  --max-tokens N     1..1048576 (default 128); --temperature 0..100 (0 greedy);\n"
    "                     --top-k 0.. (0 off); --top-p (0, 1]; --seed 0..2^53\n"
    "  --deadline-ms N    the job expires N ms from now (sent as an absolute time)\n"
    "  --reply-to TOPIC   reply topic (default ee.replies.<host name>); created if\n"
    "                     missing, with --reply-partitions N (default 1) and\n"
    "                     --reply-replication N (default: the broker's default)\n"
    "  --id ID            job id (several prompts: ID-1, ID-2, ...); default job-<random>\n"
    "  --session S        record key, so a session's jobs are done in order\n"
    "  --wait             wait for the replies and print the decrypted text (several\n"
    "                     jobs: 'ID: text'); --json: one result object per job\n"
    "  --stream           ask for partial replies and print text as it comes (implies\n"
    "                     --wait)\n"
    "  --timeout-ms N     give up after N ms in all (default 30000; 120000 with --wait)\n"
    "  --pool-pk HEX      seal each request to the worker pool's key (ee-consumer\n"
    "                     keygen); replies come back sealed to a per-job key\n"
    "  --client-key FILE  sign each request (ee-producer keygen) as --tenant NAME;\n"
    "                     also opens sealed replies (docs/PROTOCOL.md)\n"
    "  --scheme S         ee-llama-v1 for models encrypted before keys were bound to\n"
    "                     models (legacy); default ee-llama-v2\n"
    "  --task embed       an encoder model (ee-model import, encrypt): each text is\n"
    "                     tokenized with PLAIN's WordPiece tokenizer, encrypted, sent\n"
    "                     as an embed job; --wait prints its decrypted embedding (one\n"
    "                     line of floats; --json: embedding and encrypted_embedding)\n"
    "  --kafka PROP=VAL   librdkafka setting, repeatable (e.g. security.protocol=ssl)\n"
    "\n" PROD_EXIT_HELP;

enum { BOOT, MODEL, KEY, PLAIN, SCHEME, POOLPK, CKEY, TENANT, PROMPT, PFILE, CHAT, CLASS, SMP, SMT, MAXT, TEMP, TOPK, TOPP,
       SEED, DEADLINE, REPLY, RPARTS, RREPL, ID, SESSION, WAIT, STREAM, JSON, TIMEOUT, KAFKA, TASK, NF };

typedef struct submit {
    prod_common c;
    prod_gen_opts g;
    prod_lines prompts;
    prod_client cl;
    prod_prompt *pp; /* one per prompt */
    char **ids;
    char **bodies;
    size_t n;
    bool wait;
} submit;

static void submit_free(submit *s) {
    for (size_t i = 0; i < s->n; i++) {
        if (s->pp) prod_prompt_free(&s->pp[i]);
        if (s->ids) free(s->ids[i]);
        if (s->bodies) free(s->bodies[i]);
    }
    free(s->pp);
    free(s->ids);
    free(s->bodies);
    prod_lines_free(&s->prompts);
    prod_client_close(&s->cl);
}

/* Everything that can fail before Kafka is involved (exit code 1). */
static int prepare(submit *s, cli_flag *f, ee_err *err) {
    s->wait = f[WAIT].present || f[STREAM].present;
    if (prod_common_parse(&s->c, f, NF, s->wait ? 120000 : 30000, err) ||
        prod_gen_parse(&s->g, f, NF, &s->c, err) || prod_common_require(&s->c, err) ||
        prod_prompts_parse(&s->prompts, f, NF, err))
        return -1;
    s->n = s->prompts.n;
    if (prod_client_open(&s->cl, s->c.plain_path, s->c.key_path, s->c.scheme, err) ||
        prod_client_secure(&s->cl, s->c.pool_pk, s->c.client_key, s->c.tenant, err))
        return -1;
    s->pp = calloc(s->n, sizeof *s->pp);
    s->ids = calloc(s->n, sizeof *s->ids);
    s->bodies = calloc(s->n, sizeof *s->bodies);
    if (!s->pp || !s->ids || !s->bodies) return ee_err_set(err, "out of memory");
    for (size_t i = 0; i < s->n; i++) {
        char id[EE_PROTO_ID_MAX + 32];
        if (f[ID].present && s->n == 1)
            snprintf(id, sizeof id, "%s", f[ID].value);
        else if (f[ID].present)
            snprintf(id, sizeof id, "%.*s-%zu", EE_PROTO_ID_MAX, f[ID].value, i + 1);
        else if (prod_random_job_id(id, err))
            return -1;
        if (!ee_proto_valid_id(id))
            return ee_err_set(err, "--id: '%s' is not a valid job id (1..128 bytes, no control "
                                   "characters)", id);
        if (!(s->ids[i] = strdup(id))) return ee_err_set(err, "out of memory");
        if (prod_prompt_make(&s->pp[i], &s->cl, s->prompts.v[i], &s->g, err)) {
            if (s->n > 1) ee_err_wrap(err, "prompt %zu", i + 1);
            return -1;
        }
    }
    return 0;
}

/* Sends every job, then waits for deliveries and (--wait) final replies. */
static int run(submit *s, prod_session *ss, prod_collect *col, double deadline, ee_err *err) {
    prod_run_spec sp = {.cl = &s->cl, .g = &s->g, .reply_to = s->c.reply_to, .pp = s->pp,
                        .ids = s->ids, .bodies = s->bodies, .n = s->n, .wait = s->wait,
                        .timeout_ms = s->c.timeout_ms};
    return prod_run(&sp, ss, col, deadline, err);
}

int prod_cmd_submit(int argc, char **argv) {
    cli_flag f[NF] = {
        [BOOT] = {"--bootstrap", true},     [MODEL] = {"--model", true},
        [KEY] = {"--key", true},            [PLAIN] = {"--plain-model", true}, [SCHEME] = {"--scheme", true},
        [POOLPK] = {"--pool-pk", true}, [CKEY] = {"--client-key", true}, [TENANT] = {"--tenant", true},
        [PROMPT] = {"--prompt", true},      [PFILE] = {"--prompts-file", true},
        [CHAT] = {"--chat", false},         [CLASS] = {"--class", true},
        [SMP] = {"--small-max-prompt", true}, [SMT] = {"--small-max-total", true},
        [MAXT] = {"--max-tokens", true},    [TEMP] = {"--temperature", true},
        [TOPK] = {"--top-k", true},         [TOPP] = {"--top-p", true},
        [SEED] = {"--seed", true},          [DEADLINE] = {"--deadline-ms", true},
        [REPLY] = {"--reply-to", true},     [RPARTS] = {"--reply-partitions", true},
        [RREPL] = {"--reply-replication", true}, [ID] = {"--id", true},
        [SESSION] = {"--session", true},    [WAIT] = {"--wait", false},
        [STREAM] = {"--stream", false},     [JSON] = {"--json", false},
        [TIMEOUT] = {"--timeout-ms", true}, [KAFKA] = {"--kafka", true, true},
        [TASK] = {"--task", true},
    };
    if (cli_wants_help(argc, argv)) {
        fputs(USAGE, stdout);
        return PROD_EXIT_OK;
    }
    ee_err err = {{0}};
    submit s = {0};
    prod_session ss = {0};
    prod_tracker tr = {0};
    prod_print pr = {0};
    prod_collect col = {0};
    const char **topics = NULL;
    int rc = PROD_EXIT_USAGE;
    double deadline;
    if (cli_parse(argc, argv, f, NF, &err) || prepare(&s, f, &err)) goto done;
    deadline = ee_now_ms() + (double)s.c.timeout_ms;
    if (!(topics = calloc(s.n, sizeof *topics))) {
        ee_err_set(&err, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < s.n; i++) topics[i] = s.pp[i].topic;
    /* deliveries may take whatever is left of the overall timeout */
    rc = prod_session_open(&ss, &s.c, topics, s.n, s.wait, (int)s.c.timeout_ms, deadline, &err);
    if (rc) goto done;
    pr = (prod_print){.cl = &s.cl, .json = s.c.json, .multi = s.n > 1, .stream = s.g.stream};
    col = (prod_collect){.rep = s.wait ? &ss.rep : NULL, .tr = &tr, .cl = &s.cl, .pr = &pr,
                         .cap = &ss.cap};
    rc = run(&s, &ss, &col, deadline, &err);
done:
    if (err.msg[0]) prod_fail("submit", rc, err.msg);
    prod_session_close(&ss); /* before the tracker: delivery reports point into it */
    prod_tracker_free(&tr);
    free(topics);
    submit_free(&s);
    cli_flags_free(f, NF);
    return rc;
}
