#include "prod_opts.h"

#include "prod_ids.h"

#include "ee_scheme.h"

#include <string.h>

/* The flag if the table has it and it was given. */
static cli_flag *given(cli_flag *f, size_t n, const char *name) {
    cli_flag *x = cli_get(f, n, name);
    return x && x->present ? x : NULL;
}

static int int_flag(cli_flag *f, size_t n, const char *name, long long min, long long max,
                    long long *out, ee_err *err) {
    cli_flag *x = given(f, n, name);
    return x ? prod_int(name, x->value, min, max, out, err) : 0;
}

int prod_common_parse(prod_common *c, cli_flag *f, size_t n, long long default_timeout_ms,
                      ee_err *err) {
    memset(c, 0, sizeof *c);
    cli_flag *x;
    /* values first, so that a bad value is named even with flags missing */
    if ((x = given(f, n, "--bootstrap"))) c->kafka.bootstrap = x->value;
    if ((x = given(f, n, "--kafka"))) {
        c->kafka.props = x->values;
        c->kafka.n_props = x->n_values;
    }
    if ((x = given(f, n, "--key"))) c->key_path = x->value;
    if ((x = given(f, n, "--plain-model"))) c->plain_path = x->value;
    if ((x = given(f, n, "--pool-pk"))) c->pool_pk = x->value;
    if ((x = given(f, n, "--client-key"))) c->client_key = x->value;
    if ((x = given(f, n, "--tenant"))) {
        if (!ee_proto_valid_name(x->value))
            return ee_err_set(err, "--tenant: '%s' is not a valid tenant name ([A-Za-z0-9._-]{1,64})",
                              x->value);
        c->tenant = x->value;
    }
    if (c->pool_pk && !c->client_key)
        return ee_err_set(err, "--pool-pk needs --client-key (the reply is sealed to a key derived "
                               "from it)");
    if (c->client_key && !c->tenant && cli_get(f, n, "--tenant")) /* commands that sign */
        return ee_err_set(err, "--client-key needs --tenant NAME (the name the worker knows the "
                               "key by)");
    if ((x = given(f, n, "--scheme"))) {
        if (!ee_scheme_parse("--scheme", x->value, err)) return -1;
        c->scheme = x->value;
    }
    prod_default_reply_topic(c->reply_default, sizeof c->reply_default);
    c->reply_to = c->reply_default;
    if ((x = given(f, n, "--reply-to"))) {
        if (!ee_proto_valid_topic(x->value))
            return ee_err_set(err, "--reply-to: '%s' is not a valid topic name "
                                   "([A-Za-z0-9._-]{1,249}, not . or ..)", x->value);
        c->reply_to = x->value;
    }
    c->json = given(f, n, "--json") != NULL;
    c->timeout_ms = default_timeout_ms;
    /* replication -1: the broker's default.replication.factor, which is
     * what a cluster with min.insync.replicas > 1 needs for acks=all */
    long long parts = 1, repl = -1;
    if (int_flag(f, n, "--timeout-ms", 1, PROD_TIMEOUT_MAX, &c->timeout_ms, err) ||
        int_flag(f, n, "--reply-partitions", 1, 10000, &parts, err) ||
        int_flag(f, n, "--reply-replication", 1, 32, &repl, err))
        return -1;
    c->reply_partitions = (int)parts;
    c->reply_replication = (int)repl;
    return prod_kafka_check_props(&c->kafka, err);
}

int prod_common_require(const prod_common *c, ee_err *err) {
    if (!c->kafka.bootstrap || !*c->kafka.bootstrap)
        return ee_err_set(err, "--bootstrap HOST:PORT is required");
    if (!c->key_path) return ee_err_set(err, "--key K.eekey is required");
    if (!c->plain_path) return ee_err_set(err, "--plain-model PLAIN.gguf is required");
    return 0;
}

int prod_gen_parse(prod_gen_opts *g, cli_flag *f, size_t n, const prod_common *c, ee_err *err) {
    memset(g, 0, sizeof *g);
    cli_flag *x;
    if ((x = given(f, n, "--model"))) {
        if (!ee_proto_valid_name(x->value))
            return ee_err_set(err, "--model: '%s' is not a valid model name "
                                   "([A-Za-z0-9._-]{1,64})", x->value);
        g->model = x->value;
    }
    if ((x = given(f, n, "--class"))) {
        if (!ee_proto_valid_name(x->value))
            return ee_err_set(err, "--class: '%s' is not a valid class name ([A-Za-z0-9._-]{1,64})",
                              x->value);
        g->cls = x->value;
    }
    if ((x = given(f, n, "--session"))) {
        if (!ee_proto_valid_id(x->value))
            return ee_err_set(err, "--session: not a valid session (1..128 bytes, no control "
                                   "characters)");
        g->session = x->value;
    }
    ee_proto_params_default(&g->params, NULL);
    long long smp = EE_PROTO_SMALL_MAX_PROMPT_DEFAULT, smt = EE_PROTO_SMALL_MAX_TOTAL_DEFAULT;
    long long maxt = g->params.max_tokens, topk = 0, seed = 0;
    double temp = 0, topp = 1;
    if (int_flag(f, n, "--small-max-prompt", 1, PROD_TOKENS_MAX, &smp, err) ||
        int_flag(f, n, "--small-max-total", 1, 2 * PROD_TOKENS_MAX, &smt, err) ||
        int_flag(f, n, "--max-tokens", 1, PROD_TOKENS_MAX, &maxt, err) ||
        int_flag(f, n, "--top-k", 0, 2147483647LL, &topk, err) ||
        int_flag(f, n, "--seed", 0, (long long)EE_PROTO_SEED_MAX, &seed, err) ||
        int_flag(f, n, "--deadline-ms", 1, PROD_TIMEOUT_MAX, &g->deadline_in_ms, err))
        return -1;
    if ((x = given(f, n, "--temperature")) &&
        prod_float("--temperature", x->value, 0, EE_PROTO_TEMPERATURE_MAX, &temp, err))
        return -1;
    if ((x = given(f, n, "--top-p")) &&
        (prod_float("--top-p", x->value, 0, 1, &topp, err) || topp <= 0))
        return ee_err_set(err, "--top-p: '%s' is not a number in (0, 1]", x->value);
    g->th.small_max_prompt = (uint32_t)smp;
    g->th.small_max_total = (uint32_t)smt;
    g->params.max_tokens = (uint32_t)maxt;
    g->params.temperature = temp;
    g->params.top_k = (uint32_t)topk;
    g->params.top_p = topp;
    g->params.seed = (uint64_t)seed;
    g->chat = given(f, n, "--chat") != NULL;
    g->stream = given(f, n, "--stream") != NULL;
    if ((x = given(f, n, "--task"))) {
        const ee_proto_task_info *ti = ee_proto_task_find(x->value);
        if (!ti) return ee_err_set(err, "--task: '%s' is not generate or embed", x->value);
        g->task = ti->task;
    }
    if (g->task == EE_TASK_EMBED && (g->stream || g->chat))
        return ee_err_set(err, "--task embed: %s is for generate jobs", g->stream ? "--stream" : "--chat");
    g->reply_to = c->reply_to;
    if (!g->model) return ee_err_set(err, "--model NAME is required");
    return 0;
}

int prod_prompts_parse(prod_lines *l, cli_flag *f, size_t n, ee_err *err) {
    cli_flag *p = given(f, n, "--prompt"), *file = given(f, n, "--prompts-file");
    if (!p == !file)
        return ee_err_set(err, "give exactly one of --prompt TEXT or --prompts-file FILE");
    if (p) {
        if (!*p->value) return ee_err_set(err, "--prompt: empty prompt");
        return prod_lines_add(l, p->value, err);
    }
    return prod_lines_read(l, file->value, err);
}
