/* ee-consumer: the eeinfer worker. Serves encrypted models to Kafka
 * consumer groups; see docs/KAFKA.md (operation), docs/PROTOCOL.md (wire
 * format) and config/README.md (configuration). */
#include "svc.h"

#include "svc_auth.h"
#include "svc_index.h"
#include "svc_infer.h"
#include "svc_jobs.h"
#include "svc_kafka.h"
#include "svc_log.h"
#include "svc_metrics.h"
#include "svc_models.h"
#include "svc_poll.h"

#include "ee_kernels.h"
#include "ee_clock.h"
#include "ee_compute.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *USAGE =
    "usage: ee-consumer [--config FILE] [options]\n"
    "       ee-consumer keygen --out POOL.key   (the pool's sealing key pair)\n"
    "  Serves encrypted models (made by `ee-model encrypt`) to Kafka: consumes\n"
    "  ee.requests.<model>.<class>, replies to each request's reply_to topic,\n"
    "  dead-letters what cannot be answered to ee.dlq. Never needs a key.\n"
    "options (each overrides the config file):\n"
    "  --config FILE            worker configuration (config/README.md)\n"
    "  --bootstrap HOST:PORT    Kafka bootstrap servers ([kafka] bootstrap.servers)\n"
    "  --model NAME=ENC.gguf    serve an encrypted model as NAME (repeatable)\n"
    "  --index NAME=MODEL[:flat|hnsw]  serve search jobs from the blind index in the\n"
    "                           compacted topic ee.index.NAME, vectors of encoder MODEL\n"
    "                           (repeatable; docs/RAG.md)\n"
    "  --class C[,C...]         resource classes to serve ([worker] classes)\n"
    "  --group G                one consumer group for every (model, class)\n"
    "  --threads N              inference threads (<= cores this worker owns)\n"
    "  --name NAME              worker name in replies and logs\n"
    "  --max-inflight N         bounded in-flight jobs (partitions pause when full)\n"
    "  --max-batch N            jobs decoded together per forward\n"
    "  --grace-ms N             on SIGTERM/SIGINT: time to finish running jobs\n"
    "  --metrics-port P         /metrics and /healthz port (0: off)\n"
    "  --metrics-bind ADDR      /metrics bind address (IP literal)\n"
    "  --kafka PROP=VALUE       librdkafka property (repeatable)\n"
    "  --set SECTION.KEY=VALUE  any config key (repeatable)\n"
    "  --check                  load and validate config and models, then exit\n"
    "sealed and signed jobs (docs/PROTOCOL.md): [worker] pool_key, require_sealed,\n"
    "  require_signed, replay_window_ms and [tenant NAME] sections in the config\n"
    "  (or --set worker.require_sealed=1 ...)\n"
    "exit status: 0 after a clean shutdown, 1 on bad configuration or a startup\n"
    "failure, 3 after an unrecoverable Kafka error (unanswered jobs are\n"
    "redelivered). A fatal error of the reply producer is recovered in place.\n";

static svc g;

static void on_signal(int sig) {
    (void)sig;
    atomic_fetch_add(&g.stop_signal, 1);
}

static int fail(const char *msg) {
    fprintf(stderr, "ee-consumer: %s\n", msg);
    return 1;
}

/* "NAME=VALUE" -> override PREFIX.NAME = VALUE. */
static int split_override(ee_config *c, const char *flag, const char *prefix, const char *arg,
                          ee_err *err) {
    const char *eq = strchr(arg, '=');
    if (!eq || eq == arg)
        return ee_err_set(err, "%s: '%s' is not NAME=VALUE", flag, arg);
    char key[512];
    snprintf(key, sizeof key, "%s%.*s", prefix, (int)(eq - arg), arg);
    return ee_config_set_override(c, key, eq + 1, err);
}

/* ee-consumer keygen --out POOL.key: the worker pool's X25519 key pair
 * (secret file 0600, never overwritten); prints the public key clients
 * seal to. */
static int keygen(int argc, char **argv) {
    if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        puts("usage: ee-consumer keygen --out POOL.key\n"
             "  Writes the worker pool's X25519 secret (mode 0600, never overwritten) and\n"
             "  prints its public key (64 hex), which clients seal jobs to\n"
             "  (ee-producer --pool-pk). Workers load it with [worker] pool_key.");
        return 0;
    }
    if (argc != 3 || strcmp(argv[1], "--out") != 0) return fail("usage: ee-consumer keygen --out POOL.key");
    ee_err err = {{0}};
    ee_pool_key k;
    if (ee_pool_key_generate(&k, &err) || ee_pool_key_save(&k, argv[2], &err)) {
        ee_seal_wipe(&k, sizeof k);
        return fail(err.msg);
    }
    char pk[EE_SEAL_PK_HEX];
    ee_seal_pk_hex(k.pk, pk);
    ee_seal_wipe(&k, sizeof k);
    puts(pk);
    return 0;
}

int main(int argc, char **argv) {
    ee_compute_init(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "keygen") == 0) return keygen(argc - 1, argv + 1);
    {
        /* EE_ISA naming an unknown set or one this CPU lacks stops the
         * worker rather than serving with other kernels. */
        ee_err kerr = {{0}};
        if (ee_kernels_init(&kerr)) return fail(kerr.msg);
    }
    ee_config cfg;
    ee_config_init(&cfg);
    ee_err err = {{0}};
    static const struct option opts[] = {
        {"config", required_argument, 0, 'c'},     {"bootstrap", required_argument, 0, 'b'},
        {"model", required_argument, 0, 'm'},      {"class", required_argument, 0, 'C'},
        {"group", required_argument, 0, 'g'},      {"threads", required_argument, 0, 't'},
        {"name", required_argument, 0, 'n'},       {"max-inflight", required_argument, 0, 'i'},
        {"max-batch", required_argument, 0, 'B'},  {"grace-ms", required_argument, 0, 'G'},
        {"metrics-port", required_argument, 0, 'p'}, {"metrics-bind", required_argument, 0, 'a'},
        {"kafka", required_argument, 0, 'k'},      {"set", required_argument, 0, 's'},
        {"check", no_argument, 0, 'x'},            {"help", no_argument, 0, 'h'},
        {"index", required_argument, 0, 'I'},
        {0, 0, 0, 0},
    };
    /* First pass: the config file (flags override it whatever their order). */
    const char *config_path = NULL;
    bool check_only = false;
    opterr = 0;
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (o == 'h') {
            fputs(USAGE, stdout);
            return 0;
        }
        if (o == '?' || o == ':') {
            char m[300];
            const char *bad = argv[optind - 1];
            if (optopt) snprintf(m, sizeof m, "%s: missing value or unknown flag (--help)", bad);
            else snprintf(m, sizeof m, "unknown flag %s (--help lists them)", bad);
            return fail(m);
        }
        if (o == 'c') {
            if (config_path) return fail("--config given twice");
            config_path = optarg;
        }
        if (o == 'x') check_only = true;
    }
    if (optind < argc) {
        char m[300];
        snprintf(m, sizeof m, "unexpected argument '%s' (--help)", argv[optind]);
        return fail(m);
    }
    if (config_path && ee_config_load(&cfg, config_path, &err)) return fail(err.msg);
    optind = 1;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        int rc = 0;
        switch (o) {
        case 'b': rc = ee_config_set_override(&cfg, "kafka.bootstrap.servers", optarg, &err); break;
        case 'm': rc = split_override(&cfg, "--model", "model.", optarg, &err); break;
        case 'I': rc = split_override(&cfg, "--index", "index.", optarg, &err); break;
        case 'C': rc = ee_config_set_override(&cfg, "worker.classes", optarg, &err); break;
        case 'g': rc = ee_config_set_override(&cfg, "worker.group", optarg, &err); break;
        case 't': rc = ee_config_set_override(&cfg, "worker.threads", optarg, &err); break;
        case 'n': rc = ee_config_set_override(&cfg, "worker.name", optarg, &err); break;
        case 'i': rc = ee_config_set_override(&cfg, "worker.max_inflight", optarg, &err); break;
        case 'B': rc = ee_config_set_override(&cfg, "worker.max_batch", optarg, &err); break;
        case 'G': rc = ee_config_set_override(&cfg, "worker.grace_ms", optarg, &err); break;
        case 'p': rc = ee_config_set_override(&cfg, "worker.metrics_port", optarg, &err); break;
        case 'a': rc = ee_config_set_override(&cfg, "worker.metrics_bind", optarg, &err); break;
        case 'k': rc = split_override(&cfg, "--kafka", "kafka.", optarg, &err); break;
        case 's': rc = split_override(&cfg, "--set", "", optarg, &err); break;
        default: break;
        }
        if (rc) {
            ee_config_free(&cfg);
            return fail(err.msg);
        }
    }
    if (ee_config_validate(&cfg, &err)) {
        ee_config_free(&cfg);
        return fail(err.msg);
    }
    if (!ee_config_kafka_get(&cfg, "bootstrap.servers")) {
        ee_config_free(&cfg);
        return fail("no Kafka bootstrap servers: give --bootstrap HOST:PORT or [kafka] "
                    "bootstrap.servers");
    }
    if (cfg.n_models > 64) {
        ee_config_free(&cfg);
        return fail("at most 64 models per worker");
    }
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    ee_compute_set_threads((int)cfg.threads);

    svc *s = &g;
    s->cfg = &cfg;
    s->wake_rd = s->wake_wr = -1; /* no pipe until svc_kafka_open */
    s->name = ee_config_name(&cfg);
    pthread_mutex_init(&s->mu, NULL);
    pthread_rwlock_init(&s->prod_lock, NULL);
    s->poll_tid = pthread_self();
    pthread_cond_init(&s->cv, NULL);
    s->track = ee_offtrack_new();
    int exit_code = 1;
    bool infer_started = false;
    if (!s->track) {
        ee_err_set(&err, "out of memory");
        goto out;
    }
    {
        json_t *f = json_object();
        json_object_set_new(f, "name", json_string(s->name));
        json_object_set_new(f, "threads", json_integer(cfg.threads));
        json_object_set_new(f, "cpus", json_integer(ncpu));
        json_object_set_new(f, "max_inflight", json_integer(cfg.max_inflight));
        json_object_set_new(f, "max_batch", json_integer(cfg.max_batch));
        json_object_set_new(f, "blas_core", json_string(ee_compute_blas_core()));
        json_object_set_new(f, "isa", json_string(ee_kernels_isa()));
        svc_log("info", "starting", f);
        if (cfg.threads > ncpu) {
            json_t *w = json_object();
            json_object_set_new(w, "threads", json_integer(cfg.threads));
            json_object_set_new(w, "cpus", json_integer(ncpu));
            svc_log("warn", "threads_exceed_cpus", w); /* spinning teams collapse (ENGINE.md) */
        }
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (svc_models_open(s, &err) || svc_auth_open(s, &err)) goto out;
    {
        bool single_pass = false;
        for (int i = 0; i < s->n_models; i++) single_pass |= s->models[i].kind != EE_KIND_DECODER;
        uint32_t want = ee_config_auto_inflight(&cfg, single_pass);
        if (want != cfg.max_inflight) {
            cfg.max_inflight = want;
            json_t *f = json_object();
            json_object_set_new(f, "max_inflight", json_integer(want));
            json_object_set_new(f, "why", json_string(single_pass ? "auto: 8 x max_batch (a model runs every queued job in one pass)"
                                                                  : "auto: max_batch (decoders)"));
            svc_log("info", "intake_bound", f);
        }
    }
    if (check_only) {
        printf("ok: %zu model(s), %zu class(es)\n", cfg.n_models, cfg.n_classes);
        exit_code = 0;
        goto out;
    }
    if (svc_metrics_open(s, &err)) goto out;
    if (svc_kafka_open(s, &svc_poll_hooks, &err)) goto out;
    if (svc_create_topics(s, &err)) goto out;
    if (svc_index_open(s, &err)) goto out; /* every index read before any job */
    if (svc_infer_start(s, &err)) goto out;
    infer_started = true;
    if (svc_subscribe(s, &err)) goto out;
    svc_log("info", "ready", NULL);

    double t_rate = ee_now_ms();
    long long tok_rate = 0;
    bool ok = true;
    while (!atomic_load(&s->stop_signal) && !atomic_load(&s->fatal_final) && ok) {
        ok = svc_poll_round(s, 100, true);
        double now = ee_now_ms();
        if (now - t_rate >= 1000) {
            long long t = atomic_load(&s->tokens_generated);
            ee_metrics_gauge_set(s->metrics, "ee_generated_tokens_per_second", EE_NO_LABELS,
                                 (double)(t - tok_rate) * 1000.0 / (now - t_rate));
            tok_rate = t;
            t_rate = now;
            pthread_mutex_lock(&s->mu);
            int ql = s->q_len, rn = s->running;
            pthread_mutex_unlock(&s->mu);
            ee_metrics_gauge_set(s->metrics, "ee_jobs_queued", EE_NO_LABELS, ql);
            ee_metrics_gauge_set(s->metrics, "ee_jobs_running", EE_NO_LABELS, rn);
        }
    }

    /* Shutdown: stop intake, give running jobs the grace period, send what
     * finished, commit, leave the groups. Anything unanswered stays
     * uncommitted and is redelivered to another worker. */
    {
        json_t *f = json_object();
        json_object_set_new(f, "reason", json_string(atomic_load(&s->fatal_final) ? "kafka_fatal"
                                                     : ok ? "signal" : "out_of_memory"));
        json_object_set_new(f, "inflight", json_integer(s->inflight));
        json_object_set_new(f, "grace_ms", json_integer(cfg.grace_ms));
        svc_log("info", "shutdown_begin", f);
    }
    svc_set_paused(s, true);
    pthread_mutex_lock(&s->mu);
    s->draining = true;
    pthread_mutex_unlock(&s->mu);
    svc_release_jobs(s, -1, NULL, (int)cfg.grace_ms);
    svc_infer_stop(s);
    infer_started = false;
    svc_collect_returned(s);
    rd_kafka_flush(s->producer, 10000); /* delivery reports store offsets */
    svc_collect_returned(s);
    for (int k = 0; k < s->n_cons; k++) {
        rd_kafka_commit(s->cons[k].rk, NULL, 0);
        rd_kafka_consumer_close(s->cons[k].rk); /* leaves the group */
    }
    {
        json_t *f = json_object();
        json_object_set_new(f, "unanswered", json_integer(s->inflight));
        svc_log("info", "shutdown_done", f);
    }
    exit_code = atomic_load(&s->fatal_final) ? 3 : ok ? 0 : 1;
out:
    if (exit_code == 1 && err.msg[0]) {
        json_t *f = json_object();
        json_object_set_new(f, "error", json_string(err.msg));
        svc_log("error", "startup_failed", f);
        fprintf(stderr, "ee-consumer: %s\n", err.msg);
    }
    if (infer_started) {
        pthread_mutex_lock(&s->mu);
        s->draining = true;
        pthread_mutex_unlock(&s->mu);
        svc_infer_stop(s);
    }
    /* Jobs never answered (startup failure paths, retries pending). */
    while (s->all) {
        svc_job *j = s->all;
        svc_unlink_job(s, j);
        svc_job_free(j);
    }
    free(s->retry);
    svc_index_close(s);
    svc_kafka_close(s);
    svc_models_close(s);
    svc_auth_close(s);
    svc_metrics_close(s);
    ee_offtrack_free(s->track);
    ee_config_free(&cfg);
    return exit_code;
}
