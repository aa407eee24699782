/* ee-producer load: a load test through the whole system. Sends --count
 * jobs (cycling through the prompts, each tokenized and encrypted once),
 * keeps at most --concurrency of them outstanding and/or starts them at
 * --rate per second (open loop), waits for every final reply, and reports
 * what the client measured and what the workers reported. */
#include "prod_client.h"
#include "prod_cmds.h"
#include "prod_collect.h"
#include "prod_exit.h"
#include "prod_ids.h"
#include "prod_jobs.h"
#include "prod_opts.h"
#include "prod_loadrec.h"
#include "prod_print.h"
#include "prod_progress.h"
#include "prod_report.h"
#include "prod_sched.h"
#include "prod_send.h"
#include "prod_session.h"
#include "prod_stats.h"
#include "prod_tracker.h"

#include "ee_clock.h"

#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *USAGE =
    "usage: ee-producer load --bootstrap HOST:PORT --model NAME --key K.eekey\n"
    "         --plain-model PLAIN.gguf (--prompt TEXT | --prompts-file FILE|-) [--chat]\n"
    "         [--count N] [--concurrency C] [--rate R] [--max-tokens N] [--temperature T]\n"
    "         [--top-k K] [--top-p P] [--seed S] [--class C] [--small-max-prompt N]\n"
    "         [--small-max-total N] [--reply-to TOPIC] [--reply-partitions N]\n"
    "         [--reply-replication N] [--json] [--timeout-ms N] [--kafka PROP=VALUE ...]\n"
    "         [--stream] [--records FILE] [--report DIR] [--progress | --no-progress]\n"
    "         [--scheme ee-llama-v1]   (legacy models: keys not bound to the model)\n"
    "         [--pool-pk HEX] [--client-key FILE --tenant NAME]   (sealed and signed jobs,\n"
    "         as for submit)\n"
    "\n"
    "  Sends N jobs (default 10), cycling through the prompts, and waits for all\n"
    "  of them. --concurrency C keeps at most C jobs outstanding (default 4);\n"
    "  --rate R starts R jobs per second whatever is outstanding (open loop;\n"
    "  with --concurrency too, C still caps). A job without a final reply\n"
    "  --timeout-ms after it was sent (default 120000) counts as timed out.\n"
    "  Prints jobs ok/error/timeout, wall time, throughput (jobs/s, generated\n"
    "  tokens/s), client latency p50/p90/p99/max/mean (ok jobs, ms), the workers'\n"
    "  mean queue/prefill/decode ms and the jobs per worker; --json prints one\n"
    "  JSON object. Latency: closed loop (no --rate), produce call to final\n"
    "  reply; open loop (--rate), from the INTENDED send time start + i/R (as\n"
    "  wrk2: a stall that delays sends counts, no coordinated omission), with\n"
    "  the service time from the actual send printed beside it.\n"
    "  --stream asks for streamed replies: the time to the first token is\n"
    "  measured (the worker sends a record per token). On a terminal a live\n"
    "  line on stderr shows done, in flight, errors, jobs/s, tok/s and p50 so\n"
    "  far (--progress forces it, --no-progress hides it).\n"
    "  --records FILE: one JSON line per job as it ends (JSON Lines; the first\n"
    "  line describes the run and its start_epoch_ms): intended/sent/first\n"
    "  token/final times in ms since the start, status (ok or the error code),\n"
    "  tokens, worker, worker queue/prefill/decode ms (docs/PROTOCOL.md).\n"
    "  --report DIR: DIR/records.jsonl (or the --records FILE), DIR/summary.json,\n"
    "  and plots drawn by bench/load_report.py (matplotlib: make venv) into DIR:\n"
    "  latency over time, latency distribution, throughput per second, jobs\n"
    "  per worker, and DIR/index.md. Python: $EE_PYTHON, else the tree's\n"
    "  .cache/venv/bin/python, else python3. Job ids: load-<run>-<n>. The reply\n"
    "  topic is as for submit (default ee.replies.<host name>, created if missing).\n"
    "\n" PROD_EXIT_HELP;

enum { BOOT, MODEL, KEY, PLAIN, SCHEME, POOLPK, CKEY, TENANT, PROMPT, PFILE, CHAT, COUNT, CONC, RATE, MAXT, TEMP, TOPK, TOPP,
       SEED, CLASS, SMP, SMT, REPLY, RPARTS, RREPL, JSON, TIMEOUT, KAFKA, STREAM, RECORDS, REPORT,
       PROGRESS, NOPROGRESS, NF };

typedef struct load {
    prod_common c;
    prod_gen_opts g;
    prod_lines prompts;
    prod_client cl;
    prod_prompt *pp;
    long long count, conc; /* conc 0: no cap */
    double rate;           /* jobs/s; 0: as fast as the cap allows */
    char run[17];          /* id prefix of this run */
    double t0;             /* monotonic ms of the first send */
    int64_t t0_epoch;      /* wall clock then, epoch ms */
    const char *report;    /* --report DIR, or NULL */
    char records[PATH_MAX]; /* records file, "" = none */
    prod_loadrec rec;
    prod_progress prog;
} load;

static void load_free(load *l) {
    for (size_t i = 0; l->pp && i < l->prompts.n; i++) prod_prompt_free(&l->pp[i]);
    free(l->pp);
    prod_lines_free(&l->prompts);
    prod_client_close(&l->cl);
    prod_loadrec_close(&l->rec);
}

/* --records / --report / --progress: checked and the files made before any
 * job is sent, so that a bad path costs nothing. */
static int prepare_output(load *l, cli_flag *f, ee_err *err) {
    if (f[PROGRESS].present && f[NOPROGRESS].present)
        return ee_err_set(err, "give at most one of --progress and --no-progress");
    l->prog.on = prod_progress_wanted(f[PROGRESS].present ? 1 : f[NOPROGRESS].present ? -1 : 0,
                                      STDERR_FILENO);
    l->prog.out = stderr;
    if (f[REPORT].present) {
        if (!*f[REPORT].value) return ee_err_set(err, "--report: empty directory name");
        l->report = f[REPORT].value;
        if (prod_report_mkdir(l->report, err)) return -1;
    }
    if (f[RECORDS].present) {
        if (!*f[RECORDS].value) return ee_err_set(err, "--records: empty file name");
        if (snprintf(l->records, sizeof l->records, "%s", f[RECORDS].value) >= (int)sizeof l->records)
            return ee_err_set(err, "--records: path too long");
    } else if (l->report &&
               prod_report_path(l->records, sizeof l->records, l->report, "records.jsonl", err)) {
        return -1;
    }
    return l->records[0] ? prod_loadrec_open(&l->rec, l->records, err) : 0;
}

static int prepare(load *l, cli_flag *f, ee_err *err) {
    l->count = 10;
    l->conc = f[RATE].present ? 0 : 4;
    if ((f[COUNT].present && prod_int("--count", f[COUNT].value, 1, 10000000, &l->count, err)) ||
        (f[CONC].present && prod_int("--concurrency", f[CONC].value, 1, 100000, &l->conc, err)) ||
        (f[RATE].present && prod_float("--rate", f[RATE].value, 0.001, 1e6, &l->rate, err)) ||
        prod_common_parse(&l->c, f, NF, 120000, err) || prod_gen_parse(&l->g, f, NF, &l->c, err) ||
        prod_common_require(&l->c, err) || prod_prompts_parse(&l->prompts, f, NF, err) ||
        prepare_output(l, f, err))
        return -1;
    if (prod_random_hex(l->run, 4, err)) return -1;
    if (prod_client_open(&l->cl, l->c.plain_path, l->c.key_path, l->c.scheme, err) ||
        prod_client_secure(&l->cl, l->c.pool_pk, l->c.client_key, l->c.tenant, err))
        return -1;
    l->pp = calloc(l->prompts.n, sizeof *l->pp);
    if (!l->pp) return ee_err_set(err, "out of memory");
    for (size_t i = 0; i < l->prompts.n; i++)
        if (prod_prompt_make(&l->pp[i], &l->cl, l->prompts.v[i], &l->g, err))
            return l->prompts.n > 1 ? ee_err_wrap(err, "prompt %zu", i + 1) : -1;
    return 0;
}

static int start_job(load *l, prod_session *ss, prod_tracker *tr, size_t i, double due,
                     ee_err *err) {
    char id[64];
    snprintf(id, sizeof id, "load-%s-%zu", l->run, i + 1);
    const prod_prompt *pp = &l->pp[i % l->prompts.n];
    prod_job *j = prod_tracker_add(tr, id, err);
    if (!j) return PROD_EXIT_USAGE;
    int64_t dl = 0;
    char *body = prod_request_json(&l->cl, pp, id, &l->g, &dl, err);
    if (!body) return PROD_EXIT_USAGE;
    prod_request rq = {.topic = pp->topic, .key = id, .id = id, .reply_to = l->c.reply_to,
                       .json = body, .deadline_ms = dl};
    if (prod_request_protect(&l->cl, &rq, err)) {
        free(body);
        return PROD_EXIT_USAGE;
    }
    j->t_sent = ee_now_ms();
    j->t_intended = l->rate > 0 ? due : j->t_sent;
    int rc = prod_send(ss->producer, &rq, j, j->t_sent + (double)l->c.timeout_ms, err);
    prod_request_clear(&rq);
    free(body);
    return rc ? PROD_EXIT_KAFKA : 0;
}

/* The first line of the records file: the run and its settings. */
static json_t *run_json(const load *l) {
    json_t *o = json_object();
    json_object_set_new(o, "record", json_string("run"));
    json_object_set_new(o, "version", json_integer(1));
    json_object_set_new(o, "run", json_string(l->run));
    json_object_set_new(o, "start_epoch_ms", json_integer((json_int_t)l->t0_epoch));
    json_object_set_new(o, "loop", json_string(l->rate > 0 ? "open" : "closed"));
    json_object_set_new(o, "latency_from",
                        json_string(l->rate > 0 ? "intended_send" : "actual_send"));
    json_object_set_new(o, "count", json_integer(l->count));
    json_object_set_new(o, "concurrency", l->conc ? json_integer(l->conc) : json_null());
    json_object_set_new(o, "rate", l->rate > 0 ? json_real(l->rate) : json_null());
    json_object_set_new(o, "max_tokens", json_integer(l->g.params.max_tokens));
    json_object_set_new(o, "stream", json_boolean(l->g.stream));
    json_object_set_new(o, "prompts", json_integer((json_int_t)l->prompts.n));
    json_object_set_new(o, "timeout_ms", json_integer(l->c.timeout_ms));
    return o;
}

/* The run itself; returns the exit code. */
static int run(load *l, prod_session *ss, prod_collect *col, ee_err *err) {
    prod_tracker *tr = col->tr;
    const double t0 = l->t0 = ee_now_ms();
    l->t0_epoch = ee_epoch_ms();
    size_t started = 0, oldest = 0;
    const size_t n = (size_t)l->count;
    if (l->records[0]) {
        l->rec.t0 = t0;
        json_t *h = run_json(l);
        int hr = prod_loadrec_line(&l->rec, h, err);
        json_decref(h);
        if (hr) return PROD_EXIT_USAGE;
    }
    for (;;) {
        double now = ee_now_ms();
        double due = prod_sched_at(t0, started, l->rate);
        while (started < n && (l->conc == 0 || tr->pending < (size_t)l->conc) && now >= due) {
            int rc = start_job(l, ss, tr, started, due, err);
            if (rc) return rc;
            due = prod_sched_at(t0, ++started, l->rate);
        }
        rd_kafka_poll(ss->producer, 0); /* delivery reports */
        if (prod_collect_deliveries(col, err)) return PROD_EXIT_USAGE;
        /* jobs are sent in order with one timeout: the oldest expire first */
        now = ee_now_ms();
        for (; oldest < tr->n; oldest++) {
            prod_job *j = tr->jobs[oldest];
            if (j->state != PROD_JOB_PENDING) continue;
            if (now - j->t_sent < (double)l->c.timeout_ms) break;
            prod_tracker_settle(tr, j, PROD_JOB_TIMEOUT, now, NULL);
            col->exit_code = prod_exit_worst(col->exit_code, PROD_EXIT_TIMEOUT);
        }
        if (l->records[0] && prod_loadrec_flush(&l->rec, tr, false, err)) return PROD_EXIT_USAGE;
        prod_progress_tick(&l->prog, tr, n, t0, now, false);
        if (started == n && tr->pending == 0) break;
        int wait = 50;
        if (l->rate > 0 && started < n) {
            double next = prod_sched_at(t0, started, l->rate) - ee_now_ms();
            if (next < wait) wait = next > 0 ? (int)next : 0;
        }
        if (prod_collect_step(col, wait, err)) return PROD_EXIT_KAFKA;
    }
    prod_progress_tick(&l->prog, tr, n, t0, ee_now_ms(), true);
    return col->exit_code;
}

static void print_dist(const char *label, const prod_dist *d, const char *what) {
    if (d->n)
        printf("%-12sp50 %.1f, p90 %.1f, p99 %.1f, max %.1f, mean %.1f (%s)\n", label, d->p50,
               d->p90, d->p99, d->max, d->mean, what);
    else
        printf("%-12s- (no job ended ok)\n", label);
}

static void print_plain(const prod_stats *s, const load *l) {
    double secs = s->wall_ms / 1000.0;
    printf("jobs        %zu: %zu ok, %zu error, %zu timeout, %zu unsent\n", s->total, s->ok,
           s->error, s->timeout, s->unsent);
    char conc[32] = "unlimited", rate[32] = "unlimited";
    if (l->conc) snprintf(conc, sizeof conc, "%lld", l->conc);
    if (l->rate > 0) snprintf(rate, sizeof rate, "%g jobs/s", l->rate);
    printf("wall        %.3f s (concurrency %s, rate %s)\n", secs, conc, rate);
    printf("throughput  %.2f jobs/s, %.1f generated tokens/s (%llu tokens)\n",
           secs > 0 ? (double)s->ok / secs : 0, secs > 0 ? (double)s->generated / secs : 0,
           (unsigned long long)s->generated);
    if (l->rate > 0) {
        print_dist("latency ms", &s->latency,
                   "open loop: from the intended send, coordinated omission corrected");
        print_dist("service ms", &s->service, "from the actual send");
    } else {
        print_dist("latency ms", &s->latency, "closed loop: produce call to final reply");
    }
    if (s->first_token.n) print_dist("ttft ms", &s->first_token, "from the actual send");
    printf("worker ms   mean queue %.1f, prefill %.1f, decode %.1f\n", s->queue_ms,
           s->prefill_ms, s->decode_ms);
    printf("workers    ");
    for (size_t i = 0; i < s->n_workers; i++)
        printf("%s %s: %zu", i ? "," : "", s->workers[i].name, s->workers[i].jobs);
    printf("%s\n", s->n_workers ? "" : " -");
}

/* Three decimals (ms to the microsecond): more digits are only noise. */
static json_t *round3(double v) { return json_real(round(v * 1000) / 1000); }

static json_t *dist_json(const prod_dist *d) {
    json_t *o = json_object();
    const char *names[] = {"p50", "p90", "p99", "max", "mean"};
    const double vals[] = {d->p50, d->p90, d->p99, d->max, d->mean};
    for (int i = 0; i < 5; i++) json_object_set_new(o, names[i], d->n ? round3(vals[i]) : json_null());
    json_object_set_new(o, "n", json_integer((json_int_t)d->n));
    return o;
}

static json_t *summary_json(const prod_stats *s, const load *l) {
    double secs = s->wall_ms / 1000.0;
    json_t *o = json_object(), *jobs = json_object(), *wm = json_object(), *w = json_object(),
           *set = json_object();
    json_object_set_new(jobs, "total", json_integer((json_int_t)s->total));
    json_object_set_new(jobs, "ok", json_integer((json_int_t)s->ok));
    json_object_set_new(jobs, "error", json_integer((json_int_t)s->error));
    json_object_set_new(jobs, "timeout", json_integer((json_int_t)s->timeout));
    json_object_set_new(jobs, "unsent", json_integer((json_int_t)s->unsent));
    json_object_set_new(o, "jobs", jobs);
    json_object_set_new(o, "run", json_string(l->run));
    json_object_set_new(o, "start_epoch_ms", json_integer((json_int_t)l->t0_epoch));
    json_object_set_new(o, "wall_ms", round3(s->wall_ms));
    json_object_set_new(o, "throughput_jobs_s", round3(secs > 0 ? (double)s->ok / secs : 0));
    json_object_set_new(o, "tokens_s", round3(secs > 0 ? (double)s->generated / secs : 0));
    json_object_set_new(o, "generated_tokens", json_integer((json_int_t)s->generated));
    json_object_set_new(o, "prompt_tokens", json_integer((json_int_t)s->prompt));
    json_object_set_new(o, "latency_ms", dist_json(&s->latency));
    json_object_set_new(o, "latency_from",
                        json_string(l->rate > 0 ? "intended_send" : "actual_send"));
    json_object_set_new(o, "service_ms", dist_json(&s->service));
    json_object_set_new(o, "first_token_ms",
                        s->first_token.n ? dist_json(&s->first_token) : json_null());
    json_object_set_new(wm, "queue", round3(s->queue_ms));
    json_object_set_new(wm, "prefill", round3(s->prefill_ms));
    json_object_set_new(wm, "decode", round3(s->decode_ms));
    json_object_set_new(o, "worker_mean_ms", wm);
    for (size_t i = 0; i < s->n_workers; i++)
        json_object_set_new(w, s->workers[i].name, json_integer((json_int_t)s->workers[i].jobs));
    json_object_set_new(o, "workers", w);
    json_object_set_new(set, "count", json_integer(l->count));
    json_object_set_new(set, "concurrency", l->conc ? json_integer(l->conc) : json_null());
    json_object_set_new(set, "rate", l->rate > 0 ? json_real(l->rate) : json_null());
    json_object_set_new(set, "loop", json_string(l->rate > 0 ? "open" : "closed"));
    json_object_set_new(set, "stream", json_boolean(l->g.stream));
    json_object_set_new(set, "max_tokens", json_integer(l->g.params.max_tokens));
    json_object_set_new(set, "prompts", json_integer((json_int_t)l->prompts.n));
    json_object_set_new(set, "timeout_ms", json_integer(l->c.timeout_ms));
    json_object_set_new(o, "settings", set);
    return o;
}

/* Prints the summary; with --report writes summary.json and draws the
 * plots. Returns -1 with err when the report could not be made. */
static int report(const load *l, const prod_tracker *tr, double wall_ms, ee_err *err) {
    prod_stats st;
    if (prod_stats_make(&st, tr, (size_t)l->count, wall_ms, err)) return -1;
    json_t *o = summary_json(&st, l);
    if (l->c.json) {
        char *txt = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(15));
        if (txt) puts(txt);
        free(txt);
    } else {
        print_plain(&st, l);
    }
    fflush(stdout);
    prod_stats_free(&st);
    int rc = 0;
    if (l->report) {
        char path[PATH_MAX];
        rc = prod_report_path(path, sizeof path, l->report, "summary.json", err) ||
             prod_report_write_json(path, o, err) ||
             prod_report_plot(l->report, l->records, path, err) ? -1 : 0;
    }
    json_decref(o);
    return rc;
}

int prod_cmd_load(int argc, char **argv) {
    cli_flag f[NF] = {
        [BOOT] = {"--bootstrap", true},     [MODEL] = {"--model", true},
        [KEY] = {"--key", true},            [PLAIN] = {"--plain-model", true}, [SCHEME] = {"--scheme", true},
        [POOLPK] = {"--pool-pk", true}, [CKEY] = {"--client-key", true}, [TENANT] = {"--tenant", true},
        [PROMPT] = {"--prompt", true},      [PFILE] = {"--prompts-file", true},
        [CHAT] = {"--chat", false},         [COUNT] = {"--count", true},
        [CONC] = {"--concurrency", true},   [RATE] = {"--rate", true},
        [MAXT] = {"--max-tokens", true},    [TEMP] = {"--temperature", true},
        [TOPK] = {"--top-k", true},         [TOPP] = {"--top-p", true},
        [SEED] = {"--seed", true},          [CLASS] = {"--class", true},
        [SMP] = {"--small-max-prompt", true}, [SMT] = {"--small-max-total", true},
        [REPLY] = {"--reply-to", true},     [RPARTS] = {"--reply-partitions", true},
        [RREPL] = {"--reply-replication", true}, [JSON] = {"--json", false},
        [TIMEOUT] = {"--timeout-ms", true}, [KAFKA] = {"--kafka", true, true},
        [STREAM] = {"--stream", false},     [RECORDS] = {"--records", true},
        [REPORT] = {"--report", true},      [PROGRESS] = {"--progress", false},
        [NOPROGRESS] = {"--no-progress", false},
    };
    if (cli_wants_help(argc, argv)) {
        fputs(USAGE, stdout);
        return PROD_EXIT_OK;
    }
    ee_err err = {{0}};
    load l = {.rec = {.fd = -1}};
    prod_session ss = {0};
    prod_tracker tr = {0};
    prod_print pr = {0};
    prod_collect col = {0};
    const char **topics = NULL;
    int rc = PROD_EXIT_USAGE;
    if (cli_parse(argc, argv, f, NF, &err) || prepare(&l, f, &err)) goto done;
    if (!(topics = calloc(l.prompts.n, sizeof *topics))) {
        ee_err_set(&err, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < l.prompts.n; i++) topics[i] = l.pp[i].topic;
    rc = prod_session_open(&ss, &l.c, topics, l.prompts.n, true, (int)l.c.timeout_ms,
                           ee_now_ms() + (double)l.c.timeout_ms, &err);
    if (rc) goto done;
    pr = (prod_print){.cl = &l.cl, .quiet = true, .erase_line = l.prog.on};
    col = (prod_collect){.rep = &ss.rep, .tr = &tr, .cl = &l.cl, .pr = &pr, .cap = &ss.cap};
    rc = run(&l, &ss, &col, &err);
    double wall = ee_now_ms() - l.t0;
    prod_progress_end(&l.prog);
    if (err.msg[0]) { /* a failure mid-run: report what was measured anyway */
        prod_fail("load", rc, err.msg);
        err.msg[0] = 0;
    }
    if (prod_print_hidden(&pr))
        fprintf(stderr, "ee-producer load: ... and %zu more failed jobs\n", prod_print_hidden(&pr));
    /* every job, open ones as "pending" when the run stopped early */
    if (l.records[0] && prod_loadrec_flush(&l.rec, &tr, true, &err)) {
        rc = prod_exit_worst(rc, PROD_EXIT_USAGE);
        prod_fail("load", rc, err.msg);
        err.msg[0] = 0;
    }
    if (report(&l, &tr, wall, &err)) rc = prod_exit_worst(rc, PROD_EXIT_USAGE);
done:
    if (err.msg[0]) prod_fail("load", rc, err.msg);
    prod_session_close(&ss);
    prod_tracker_free(&tr);
    free(topics);
    load_free(&l);
    cli_flags_free(f, NF);
    return rc;
}
