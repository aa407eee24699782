/* Unit tests for ee_config: the worker's configuration file.
 *
 * - config/worker.example.ini loads and validates with the documented values.
 * - Every kind of error (one loop test per case) gives a message with the
 *   exact "<string>:LINE:" and the key or section.
 * - Missing files, NUL bytes, CRLF and BOM files.
 * - Overrides win over the file; bad overrides leave the config unchanged.
 * - [kafka] pass-through keeps file order; overrides replace in place.
 * - Secret values (password / secret keys) never appear in messages.
 * - An empty file loads but fails validation naming what is missing.
 * - Lines longer than inih's buffer are refused with their line number
 *   (inih itself would split them and parse the pieces as further lines). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ee_config.h"

static char *write_tmp(const char *text, size_t len) {
    char *path = strdup("/tmp/ee_config_test_XXXXXX");
    ck_assert_ptr_nonnull(path);
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq((long)write(fd, text, len), (long)len);
    close(fd);
    return path;
}

#define ASSERT_HAS(msg, needle) \
    ck_assert_msg(strstr((msg), (needle)) != NULL, "'%s' not in '%s'", (needle), (msg))
#define ASSERT_HASNT(msg, needle) \
    ck_assert_msg(strstr((msg), (needle)) == NULL, "'%s' in '%s'", (needle), (msg))

static const char GOOD[] = "[worker]\n"
                           "name = w-7\n"
                           "threads = 2\n"
                           "classes = small\n"
                           "[model smollm2]\n"
                           "path = /m/a.gguf\n"
                           "[kafka]\n"
                           "bootstrap.servers = a:9092\n"
                           "client.id = c1\n"
                           "security.protocol = plaintext\n";

/* ---- the example ---------------------------------------------------------- */

START_TEST(example_loads_and_validates) {
    ee_config c;
    ee_err err = {{0}};
    int rc = ee_config_load(&c, "config/worker.example.ini", &err);
    ck_assert_msg(rc == 0, "%s", err.msg);
    ck_assert_msg(ee_config_validate(&c, &err) == 0, "%s", err.msg);
    ck_assert_str_eq(c.name, "worker-1");
    ck_assert_str_eq(ee_config_name(&c), "worker-1");
    ck_assert_uint_eq(c.threads, 2);
    ck_assert_uint_eq(c.n_classes, 2);
    ck_assert_str_eq(c.classes[0], "small");
    ck_assert_str_eq(c.classes[1], "large");
    ck_assert_uint_eq(c.max_inflight, 0); /* auto until the models are known */
    ck_assert_uint_eq(ee_config_auto_inflight(&c, false), c.max_batch);
    ck_assert_uint_eq(ee_config_auto_inflight(&c, true), 8 * c.max_batch);
    c.max_inflight = 7; /* set by the user: kept */
    ck_assert_uint_eq(ee_config_auto_inflight(&c, true), 7);
    c.max_inflight = 0;
    ck_assert_uint_eq(c.grace_ms, 20000);
    ck_assert_uint_eq(c.metrics_port, 9464);
    ck_assert_ptr_null(c.group);
    ck_assert_uint_eq(c.max_prompt_tokens, 2048);
    ck_assert_uint_eq(c.max_new_tokens, 512);
    ck_assert_uint_eq(c.max_request_bytes, 1048576);
    ck_assert_uint_eq(c.n_models, 1);
    ck_assert_str_eq(c.models[0].name, "smollm2");
    ck_assert_str_eq(c.models[0].path, "/models/smollm2.enc.gguf");
    ck_assert_uint_eq(c.n_kafka, 2);
    ck_assert_str_eq(c.kafka[0].key, "bootstrap.servers");
    ck_assert_str_eq(c.kafka[0].value, "127.0.0.1:9092");
    ck_assert_str_eq(c.kafka[1].key, "security.protocol");
    ck_assert_str_eq(c.kafka[1].value, "plaintext");
    ck_assert(ee_config_has_class(&c, "large"));
    ck_assert(!ee_config_has_class(&c, "medium"));
    ck_assert_ptr_nonnull(ee_config_model_find(&c, "smollm2"));
    ck_assert_ptr_null(ee_config_model_find(&c, "other"));
    char *g = ee_config_group_for(&c, "smollm2", "small", &err);
    ck_assert_str_eq(g, "ee-workers.smollm2.small");
    free(g);
    ee_proto_limits l = ee_config_limits(&c, 49152);
    ck_assert_uint_eq(l.n_vocab, 49152);
    ck_assert_uint_eq(l.max_new_tokens, 512);
    ee_config_free(&c);
    ee_config_free(&c); /* harmless twice */
}
END_TEST

START_TEST(defaults_and_string) {
    ee_config c;
    ee_err err = {{0}};
    ck_assert_msg(ee_config_load_string(&c, GOOD, &err) == 0, "%s", err.msg);
    ck_assert_msg(ee_config_validate(&c, &err) == 0, "%s", err.msg);
    ck_assert_str_eq(c.source, "<string>");
    ck_assert_uint_eq(c.max_inflight, EE_CONFIG_DEFAULT_MAX_INFLIGHT);
    ck_assert_uint_eq(c.max_new_tokens, EE_CONFIG_DEFAULT_MAX_NEW_TOKENS);
    ck_assert_str_eq(ee_config_kafka_get(&c, "client.id"), "c1");
    ck_assert_ptr_null(ee_config_kafka_get(&c, "group.id"));
    ee_config_free(&c);

    ck_assert_uint_eq(c.max_batch, EE_CONFIG_DEFAULT_MAX_BATCH);
    ck_assert_uint_eq(c.topics_create, 1);
    ck_assert_uint_eq(c.topic_partitions, EE_CONFIG_DEFAULT_PARTITIONS);
    ck_assert_ptr_null(c.metrics_bind);
    ee_config_free(&c);

    /* [topics], metrics_bind, max_batch from the file and as overrides */
    ck_assert_msg(ee_config_load_string(&c, "[worker]\nmetrics_bind = ::\nmax_batch = 8\n"
                                            "[topics]\ncreate = 0\npartitions = 12\n"
                                            "replication_factor = 3\n", &err) == 0, "%s", err.msg);
    ck_assert_str_eq(c.metrics_bind, "::");
    ck_assert_uint_eq(c.max_batch, 8);
    ck_assert_uint_eq(c.topics_create, 0);
    ck_assert_uint_eq(c.topic_partitions, 12);
    ck_assert_uint_eq(c.topic_replication, 3);
    ck_assert_int_eq(ee_config_set_override(&c, "topics.partitions", "2", &err), 0);
    ck_assert_uint_eq(c.topic_partitions, 2);
    ck_assert_int_eq(ee_config_set_override(&c, "worker.metrics_bind", "0.0.0.0", &err), 0);
    ck_assert_str_eq(c.metrics_bind, "0.0.0.0");
    ck_assert_int_eq(ee_config_set_override(&c, "topics.bogus", "2", &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "override topics.bogus: unknown key"));
    ee_config_free(&c);

    /* no name: the default */
    ck_assert_int_eq(ee_config_load_string(&c, "[worker]\nthreads=1\n", &err), 0);
    ck_assert_str_eq(ee_config_name(&c), EE_CONFIG_DEFAULT_NAME);
    ee_config_free(&c);

    /* CRLF, BOM, '#' comments, ':' separators, inline comments, spaces in headers */
    const char *crlf = "\xEF\xBB\xBF# top\r\n[ worker ]\r\nthreads: 3 ; three\r\nclasses=small\r\n"
                       "[model m]  ; mine\r\npath = /p;x\r\n";
    ck_assert_msg(ee_config_load_string(&c, crlf, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(c.threads, 3);
    ck_assert_str_eq(c.models[0].path, "/p;x");
    ck_assert_msg(ee_config_validate(&c, &err) == 0, "%s", err.msg);
    ee_config_free(&c);
}
END_TEST

/* ---- errors ----------------------------------------------------------------- */

typedef struct bad_case {
    const char *text;
    const char *want1; /* substrings of the message */
    const char *want2;
} bad_case;

#define PK "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
static const bad_case BAD[] = {
    {"[worker]\nname = w\n\n\n\n\nthreads = two\n",
     "<string>:7: [worker] threads: 'two' is not an integer in 1..256", NULL},
    {"[worker]\nthreads = 0\n", "<string>:2: [worker] threads: '0' is not an integer in 1..256", NULL},
    {"[worker]\nthreads = 257\n", "<string>:2: [worker] threads:", "257"},
    {"[worker]\nthreads = 2x\n", "<string>:2: [worker] threads: '2x'", NULL},
    {"[worker]\nthreads = -1\n", "<string>:2: [worker] threads: '-1'", NULL},
    {"[worker]\nthreads = 0x10\n", "<string>:2: [worker] threads:", NULL},
    {"[worker]\nthreads =\n", "<string>:2: [worker] threads: '' is not an integer", NULL},
    {"[worker]\nthreads = 99999999999999999999999\n", "<string>:2: [worker] threads:", NULL},
    {"[worker]\nmetrics_port = 65536\n",
     "<string>:2: [worker] metrics_port: '65536' is not an integer in 0..65535", NULL},
    {"[worker]\ngrace_ms = 1.5\n", "<string>:2: [worker] grace_ms:", NULL},
    {"[limits]\nmax_new_tokens = 0\n", "<string>:2: [limits] max_new_tokens:", NULL},
    {"[worker]\nmetrics_bind = localhost\n",
     "<string>:2: [worker] metrics_bind: 'localhost' is not an IPv4 or IPv6 address", NULL},
    {"[worker]\nmax_batch = 65\n", "<string>:2: [worker] max_batch: '65' is not an integer in 1..64",
     NULL},
    {"[topics]\npartitions = 0\n", "<string>:2: [topics] partitions:", NULL},
    {"[topics]\nreplication_factor = 33\n", "<string>:2: [topics] replication_factor:", NULL},
    {"[topics]\ncreate = yes\n", "<string>:2: [topics] create: 'yes' is not an integer in 0..1", NULL},
    {"[topics]\nretention = 1\n", "<string>:2: [topics] retention: unknown key", "partitions"},
    {"[topics]\n[topics]\n", "<string>:2: duplicate section [topics] (first at line 1)", NULL},
    {"[workers]\nthreads = 1\n", "<string>:1: unknown section [workers]", NULL},
    {"[worker]\n[kafka]\n[Worker]\n", "<string>:3: unknown section [Worker]", NULL},
    {"[worker]\nthread = 2\n", "<string>:2: [worker] thread: unknown key", "threads"},
    {"[limits]\nmax_tokens = 2\n", "<string>:2: [limits] max_tokens: unknown key", NULL},
    {"[worker]\nthreads = 2\nname = a\nthreads = 3\n",
     "<string>:4: [worker] threads: duplicate key (first at line 2)", NULL},
    {"[worker]\nthreads = 2\n[limits]\n[worker]\n",
     "<string>:4: duplicate section [worker] (first at line 1)", NULL},
    {"[model a]\npath = /x\n[model a]\npath = /y\n",
     "<string>:3: [model a]: duplicate section (first at line 1)", NULL},
    {"[worker]\nthreads = 1\n[model m]\n[kafka]\n", "<string>:3: [model m]: missing path", NULL},
    {"[model m]\n", "<string>:1: [model m]: missing path", NULL},
    {"[model m]\npath = /a\npath = /b\n",
     "<string>:3: [model m] path: duplicate key (first at line 2)", NULL},
    {"[model m]\npath =\n", "<string>:2: [model m] path: empty path", NULL},
    {"[model m]\nfile = /a\n", "<string>:2: [model m] file: unknown key", NULL},
    {"[model bad/name]\npath = /a\n", "<string>:1: [model bad/name]:", "not a model name"},
    {"[model]\npath = /a\n", "<string>:1: unknown section [model]", NULL},
    {"threads = 2\n", "<string>:1: threads: key outside any section", NULL},
    {"[worker]\nthreads 2\n", "<string>:2: syntax error", NULL},
    {"[worker\nthreads = 2\n", "<string>:1: syntax error", NULL},
    {"[worker] junk\n", "<string>:1: text after the section header", NULL},
    {"[worker]\nname = a\n  continued\n", "<string>:3: indented line after a key", NULL},
    {"[worker]\nclasses = small, Large\n", "<string>:2: [worker] classes: 'Large' is not a class",
     NULL},
    {"[worker]\nclasses = small,,large\n", "<string>:2: [worker] classes: empty class", NULL},
    {"[worker]\nclasses = small, small\n", "<string>:2: [worker] classes: duplicate class 'small'",
     NULL},
    {"[worker]\nclasses = abcdefghijklmnopqrstuvwxyz0123456\n", "<string>:2: [worker] classes:",
     NULL},
    {"[worker]\ngroup = bad group\n", "<string>:2: [worker] group: 'bad group'", NULL},
    {"[kafka]\nbootstrap.server = a:9092\n",
     "<string>:2: [kafka] bootstrap.server: unknown librdkafka property", NULL},
    {"[kafka]\nsecurity.protocol = bogus\n", "<string>:2: [kafka] security.protocol: librdkafka:",
     NULL},
    {"[kafka]\ngroup.id = g\n", "<string>:2: [kafka] group.id: set by the worker", NULL},
    {"[kafka]\nclient.id =\n", "<string>:2: [kafka] client.id: empty value", NULL},
    {"[kafka]\nclient.id = a\nlinger.ms = 5\nclient.id = b\n",
     "<string>:4: [kafka] client.id: duplicate key (first at line 2)", NULL},
    {"[kafka]\nclient.id = a\tb\n", "<string>:2: [kafka] client.id: 'a\\x09b' contains a control",
     NULL},
    /* sealed and signed jobs */
    {"[worker]\nrequire_sealed = yes\n", "<string>:2: [worker] require_sealed: 'yes' is not an integer in 0..1", NULL},
    {"[worker]\nreplay_window_ms = 10\n", "<string>:2: [worker] replay_window_ms:", "1000..86400000"},
    {"[worker]\npool_key =\n", "<string>:2: [worker] pool_key: empty path", NULL},
    {"[tenant acme]\npublic_key = abc\nmodels = *\n", "<string>:2: [tenant acme] public_key: 'abc' is not an Ed25519 public key", NULL},
    {"[tenant acme]\nmodels = *\n", "<string>:1: [tenant acme]: missing public_key", NULL},
    {"[tenant acme]\npublic_key = " PK "\n", "<string>:1: [tenant acme]: missing models", NULL},
    {"[tenant acme]\npublic_key = " PK "\nmodels = smollm2, bad/name\n", "<string>:3: [tenant acme] models: 'bad/name' is not a model name", NULL},
    {"[tenant acme]\npublic_key = " PK "\nmodels = a, a\n", "<string>:3: [tenant acme] models: duplicate model name 'a'", NULL},
    {"[tenant acme]\npublic_key = " PK "\nmodels = a\nclasses = Small\n", "<string>:4: [tenant acme] classes: 'Small' is not a class name", NULL},
    {"[tenant acme]\npublic_key = " PK "\npublic_key = " PK "\n", "<string>:3: [tenant acme] public_key: duplicate key (first at line 2)", NULL},
    {"[tenant acme]\nkey = x\n", "<string>:2: [tenant acme] key: unknown key (known: public_key, models, classes)", NULL},
    {"[tenant acme]\npublic_key = " PK "\nmodels = *\n[tenant acme]\n", "<string>:4: [tenant acme]: duplicate section (first at line 1)", NULL},
    {"[tenant bad/x]\n", "<string>:1: [tenant bad/x]: 'bad/x' is not a tenant name", NULL},
    {"[index docs]\nmodel = a/b\n", "<string>:2: [index docs] model: 'a/b' is not a model name", NULL},
    {"[index docs]\nkind = ivf\n", "<string>:2: [index docs] kind: 'ivf' is not flat or hnsw", NULL},
    {"[index docs]\nsize = 3\n", "<string>:2: [index docs]", "unknown key 'size' (known: model, kind)"},
    {"[index docs]\nmodel = m\n[index docs]\n", "<string>:3: [index docs]: duplicate section", NULL},
    {"[index bad/x]\n", "<string>:1: [index bad/x]: 'bad/x' is not an index name", NULL},
    /* the first error wins, whether inih's or ours */
    {"[worker]\nbroken line\nthreads = x\n", "<string>:2: syntax error", NULL},
    {"[worker]\nthreads = x\nbroken line\n", "<string>:2: [worker] threads:", NULL},
};
#define N_BAD ((int)(sizeof BAD / sizeof BAD[0]))

START_TEST(bad_config_case) {
    const bad_case *b = &BAD[_i];
    ee_config c;
    ee_err err = {{0}};
    int rc = ee_config_load_string(&c, b->text, &err);
    ck_assert_msg(rc == -1, "case %d loaded: %s", _i, b->text);
    ASSERT_HAS(err.msg, b->want1);
    if (b->want2) ASSERT_HAS(err.msg, b->want2);
    /* freed on failure; a later free is harmless */
    ck_assert_ptr_null(c.models);
    ck_assert_ptr_null(c.kafka);
    ee_config_free(&c);
}
END_TEST

START_TEST(tenants_and_sealing_settings) {
    ee_config c;
    ee_err err = {{0}};
    const char *text = "[worker]\nclasses = small, large\nrequire_sealed = 1\nrequire_signed = 1\n"
                       "pool_key = /keys/pool.key\nreplay_window_ms = 60000\n"
                       "[model smollm2]\npath = /m.gguf\n"
                       "[tenant acme]\npublic_key = " PK "\nmodels = smollm2\nclasses = small\n"
                       "[tenant ops]\npublic_key = " PK "\nmodels = *\n";
    ck_assert_msg(ee_config_load_string(&c, text, &err) == 0, "%s", err.msg);
    ck_assert_msg(ee_config_validate(&c, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(c.require_sealed, 1);
    ck_assert_uint_eq(c.require_signed, 1);
    ck_assert_str_eq(c.pool_key, "/keys/pool.key");
    ck_assert_uint_eq(c.replay_window_ms, 60000);
    ck_assert_uint_eq(c.replay_capacity, EE_CONFIG_DEFAULT_REPLAY_CAPACITY);
    ck_assert_uint_eq(c.n_tenants, 2);
    const ee_config_tenant *a = ee_config_tenant_find(&c, "acme"), *o = ee_config_tenant_find(&c, "ops");
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_null(ee_config_tenant_find(&c, "nobody"));
    ck_assert_uint_eq(a->pk[0], 0x01);
    ck_assert_uint_eq(a->pk[31], 0xef);
    ck_assert(ee_config_tenant_allows(a, "smollm2", "small"));
    ck_assert(!ee_config_tenant_allows(a, "smollm2", "large"));
    ck_assert(!ee_config_tenant_allows(a, "other", "small"));
    ck_assert(ee_config_tenant_allows(o, "other", "large"));
    ck_assert_int_eq(ee_config_set_override(&c, "worker.require_sealed", "0", &err), 0);
    ck_assert_uint_eq(c.require_sealed, 0);
    ee_config_free(&c);
    /* The settings need their keys. */
    ck_assert_int_eq(ee_config_load_string(&c, "[worker]\nclasses = small\nrequire_sealed = 1\n"
                                               "[model m]\npath = /m\n", &err), 0);
    ck_assert_int_eq(ee_config_validate(&c, &err), -1);
    ASSERT_HAS(err.msg, "require_sealed = 1 needs pool_key");
    ee_config_free(&c);
    ck_assert_int_eq(ee_config_load_string(&c, "[worker]\nclasses = small\nrequire_signed = 1\n"
                                               "[model m]\npath = /m\n", &err), 0);
    ck_assert_int_eq(ee_config_validate(&c, &err), -1);
    ASSERT_HAS(err.msg, "require_signed = 1 needs at least one [tenant NAME]");
    ee_config_free(&c);
}
END_TEST

START_TEST(file_errors) {
    ee_config c;
    ee_err err = {{0}};
    ck_assert_int_eq(ee_config_load(&c, "/nonexistent/dir/worker.ini", &err), -1);
    ASSERT_HAS(err.msg, "/nonexistent/dir/worker.ini");
    ASSERT_HAS(err.msg, "cannot open");
    ee_config_free(&c);

    const char bad[] = "[worker]\nthreads = 2\n\nthreads = 3\n";
    char *p = write_tmp(bad, sizeof bad - 1);
    ck_assert_int_eq(ee_config_load(&c, p, &err), -1);
    char want[128];
    snprintf(want, sizeof want, "%s:4: [worker] threads: duplicate key", p);
    ASSERT_HAS(err.msg, want);
    unlink(p);
    free(p);

    const char nul[] = "[worker]\nthreads = 2\nname = a\0b\n";
    p = write_tmp(nul, sizeof nul - 1);
    ck_assert_int_eq(ee_config_load(&c, p, &err), -1);
    snprintf(want, sizeof want, "%s:3: NUL byte", p);
    ASSERT_HAS(err.msg, want);
    unlink(p);
    free(p);
    ee_config_free(&c);
}
END_TEST

/* ---- overrides ---------------------------------------------------------------- */

START_TEST(overrides_win) {
    ee_config c;
    ee_err err = {{0}};
    char *p = write_tmp(GOOD, sizeof GOOD - 1);
    ck_assert_msg(ee_config_load(&c, p, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(ee_config_set_override(&c, "worker.threads", "8", &err), 0);
    ck_assert_int_eq(ee_config_set_override(&c, "worker.classes", "large, small", &err), 0);
    ck_assert_int_eq(ee_config_set_override(&c, "worker.group", "my-group", &err), 0);
    ck_assert_int_eq(ee_config_set_override(&c, "worker.metrics_port", "0", &err), 0);
    ck_assert_int_eq(ee_config_set_override(&c, "limits.max_new_tokens", "64", &err), 0);
    ck_assert_int_eq(ee_config_set_override(&c, "kafka.bootstrap.servers", "b:9093", &err), 0);
    ck_assert_int_eq(ee_config_set_override(&c, "model.smollm2", "/other.gguf", &err), 0);
    ck_assert_int_eq(ee_config_set_override(&c, "model.extra", "/extra.gguf", &err), 0);
    ck_assert_msg(ee_config_validate(&c, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(c.threads, 8);
    ck_assert_uint_eq(c.n_classes, 2);
    ck_assert_str_eq(c.classes[0], "large");
    ck_assert_str_eq(c.group, "my-group");
    ck_assert_uint_eq(c.metrics_port, 0);
    ck_assert_uint_eq(c.max_new_tokens, 64);
    ck_assert_str_eq(ee_config_kafka_get(&c, "bootstrap.servers"), "b:9093");
    ck_assert_uint_eq(c.n_models, 2);
    ck_assert_str_eq(ee_config_model_find(&c, "smollm2")->path, "/other.gguf");
    ck_assert_str_eq(c.models[1].name, "extra");
    char *g = ee_config_group_for(&c, "smollm2", "small", &err);
    ck_assert_str_eq(g, "my-group");
    free(g);

    /* bad overrides: message names the override, config unchanged */
    static const char *const bad[][3] = {
        {"worker.threads", "x", "override worker.threads: 'x' is not an integer in 1..256"},
        {"worker.threads", "0", "override worker.threads: '0'"},
        {"worker.thread", "2", "override worker.thread: unknown key"},
        {"threads", "2", "override threads: expected SECTION.KEY"},
        {"work.threads", "2", "override work.threads: unknown section"},
        {"worker.classes", "", "override worker.classes: empty class"},
        {"model.a/b", "/p", "override model.a/b: 'a/b' is not a model name"},
        {"model.m", "", "override model.m: empty path"},
        {"kafka.bootstrap.server", "x", "override kafka.bootstrap.server: unknown librdkafka"},
        {"kafka.group.id", "x", "override kafka.group.id: set by the worker"},
        {"worker.group", "", "override worker.group: '' is not a valid group id"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_int_eq(ee_config_set_override(&c, bad[i][0], bad[i][1], &err), -1);
        ASSERT_HAS(err.msg, bad[i][2]);
    }
    ck_assert_uint_eq(c.threads, 8);
    ck_assert_uint_eq(c.n_classes, 2);
    ck_assert_uint_eq(c.n_models, 2);
    ck_assert_str_eq(c.group, "my-group");
    ck_assert_msg(ee_config_validate(&c, &err) == 0, "%s", err.msg);
    ee_config_free(&c);
    unlink(p);
    free(p);

    /* no file at all: CLI flags only */
    ee_config_init(&c);
    ck_assert_int_eq(ee_config_validate(&c, &err), -1);
    ck_assert_int_eq(ee_config_set_override(&c, "worker.classes", "small", &err), 0);
    ck_assert_int_eq(ee_config_set_override(&c, "model.smollm2", "/m.gguf", &err), 0);
    ck_assert_msg(ee_config_validate(&c, &err) == 0, "%s", err.msg);
    ee_config_free(&c);
}
END_TEST

/* Blind indexes: [index NAME] and --index NAME=MODEL[:KIND] (docs/RAG.md). */
START_TEST(indexes) {
    ee_config c;
    ee_err err = {{0}};
    ck_assert_msg(ee_config_load_string(&c, "[worker]\nclasses = small\n[model minilm]\npath = /m.gguf\n"
                                            "[index docs]\nmodel = minilm\nkind = hnsw\n", &err) == 0,
                  "%s", err.msg);
    ck_assert_uint_eq(c.n_indexes, 1);
    ck_assert_str_eq(c.indexes[0].name, "docs");
    ck_assert_str_eq(c.indexes[0].model, "minilm");
    ck_assert_str_eq(c.indexes[0].kind, "hnsw");
    ck_assert_msg(ee_config_validate(&c, &err) == 0, "%s", err.msg);
    /* the flag form, and its refusals */
    ck_assert_int_eq(ee_config_set_override(&c, "index.faq", "minilm", &err), 0);
    ck_assert_uint_eq(c.n_indexes, 2);
    ck_assert_ptr_null(c.indexes[1].kind); /* flat by default */
    ck_assert_int_eq(ee_config_set_override(&c, "index.docs", "minilm:flat", &err), 0);
    ck_assert_str_eq(c.indexes[0].kind, "flat");
    static const char *const bad[][3] = {
        {"index.a b", "minilm", "'a b' is not an index name"},
        {"index.x", "", "is not MODEL[:flat|hnsw]"},
        {"index.x", ":flat", "is not MODEL[:flat|hnsw]"},
        {"index.x", "minilm:ivf", "kind: 'ivf' is not flat or hnsw"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_int_eq(ee_config_set_override(&c, bad[i][0], bad[i][1], &err), -1);
        ASSERT_HAS(err.msg, bad[i][2]);
    }
    /* validation: the model must be served */
    ck_assert_int_eq(ee_config_set_override(&c, "index.orphan", "nosuch", &err), 0);
    ck_assert_int_eq(ee_config_validate(&c, &err), -1);
    ASSERT_HAS(err.msg, "[index orphan] model: 'nosuch' is not a served model");
    ee_config_free(&c);
    ck_assert_int_eq(ee_config_load_string(&c, "[worker]\nclasses = small\n[model m]\npath = /m\n"
                                               "[index d]\nkind = flat\n", &err), 0);
    ck_assert_int_eq(ee_config_validate(&c, &err), -1);
    ASSERT_HAS(err.msg, "[index d] model: missing");
    ee_config_free(&c);
}
END_TEST

START_TEST(kafka_order_preserved) {
    const char text[] = "[kafka]\n"
                        "security.protocol = plaintext\n"
                        "linger.ms = 5\n"
                        "bootstrap.servers = a:1,b:2\n"
                        "client.id = z\n"
                        "acks = all\n"
                        "debug = broker,topic\n";
    static const char *const want[][2] = {
        {"security.protocol", "plaintext"}, {"linger.ms", "5"},  {"bootstrap.servers", "a:1,b:2"},
        {"client.id", "z"},                 {"acks", "all"},      {"debug", "broker,topic"},
    };
    ee_config c;
    ee_err err = {{0}};
    ck_assert_msg(ee_config_load_string(&c, text, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(c.n_kafka, 6);
    for (size_t i = 0; i < 6; i++) {
        ck_assert_str_eq(c.kafka[i].key, want[i][0]);
        ck_assert_str_eq(c.kafka[i].value, want[i][1]);
    }
    /* replace in place, append new */
    ck_assert_int_eq(ee_config_set_override(&c, "kafka.linger.ms", "10", &err), 0);
    ck_assert_int_eq(ee_config_set_override(&c, "kafka.fetch.max.bytes", "1000000", &err), 0);
    ck_assert_uint_eq(c.n_kafka, 7);
    ck_assert_str_eq(c.kafka[1].key, "linger.ms");
    ck_assert_str_eq(c.kafka[1].value, "10");
    ck_assert_str_eq(c.kafka[6].key, "fetch.max.bytes");
    ee_config_free(&c);
}
END_TEST

/* ---- secrets ------------------------------------------------------------------ */

START_TEST(secrets_redacted) {
    ee_config c;
    ee_err err = {{0}};
    static const char *const texts[] = {
        "[kafka]\nsasl.password = hunter2\tx\n",
        "[kafka]\nssl.key.password = hunter2\x7f\n",
        "[kafka]\nsasl.oauthbearer.client.secret = hunter2\x01\n",
        "[worker]\nmy_SECRET = hunter2\n",
        "[worker]\nname = hunter2\n[model m]\npath = /x\n[kafka]\nsasl.password = hunter2\n"
        "sasl.password = hunter2\n",
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        ck_assert_int_eq(ee_config_load_string(&c, texts[i], &err), -1);
        ASSERT_HASNT(err.msg, "hunter2");
        ASSERT_HAS(err.msg, "<string>:");
    }
    ck_assert_int_eq(ee_config_load_string(&c, texts[0], &err), -1);
    ASSERT_HAS(err.msg, "<string>:2: [kafka] sasl.password: '<redacted>' contains a control");

    /* a secret in an overlong line: only the line number */
    char line[1024];
    memset(line, 'h', sizeof line);
    memcpy(line, "[kafka]\nsasl.password = ", 24);
    line[sizeof line - 1] = '\0';
    ck_assert_int_eq(ee_config_load_string(&c, line, &err), -1);
    ASSERT_HAS(err.msg, "<string>:2: line is");
    ASSERT_HASNT(err.msg, "hhh");

    /* overrides */
    ck_assert_int_eq(ee_config_load_string(&c, GOOD, &err), 0);
    ck_assert_int_eq(ee_config_set_override(&c, "kafka.sasl.password", "hunter2\n", &err), -1);
    ASSERT_HAS(err.msg, "override kafka.sasl.password: '<redacted>'");
    ASSERT_HASNT(err.msg, "hunter2");
    ck_assert_int_eq(ee_config_set_override(&c, "kafka.sasl.password", "hunter2", &err), 0);
    ck_assert_str_eq(ee_config_kafka_get(&c, "sasl.password"), "hunter2");
    ee_config_free(&c);

    ck_assert(ee_config_key_is_secret("sasl.password"));
    ck_assert(ee_config_key_is_secret("SSL.KEY.PASSWORD"));
    ck_assert(ee_config_key_is_secret("sasl.oauthbearer.client.secret"));
    ck_assert(!ee_config_key_is_secret("bootstrap.servers"));
}
END_TEST

/* ---- empty, validation ------------------------------------------------------------ */

START_TEST(empty_fails_validation) {
    ee_config c;
    ee_err err = {{0}};
    ck_assert_int_eq(ee_config_load_string(&c, "", &err), 0);
    ck_assert_int_eq(ee_config_validate(&c, &err), -1);
    ASSERT_HAS(err.msg, "<string>: missing");
    ASSERT_HAS(err.msg, "[worker] classes");
    ASSERT_HAS(err.msg, "[model NAME]");
    ee_config_free(&c);

    char *p = write_tmp("; only a comment\n\n", 18);
    ck_assert_int_eq(ee_config_load(&c, p, &err), 0);
    ck_assert_int_eq(ee_config_validate(&c, &err), -1);
    ASSERT_HAS(err.msg, p);
    ASSERT_HAS(err.msg, "[worker] classes");
    ee_config_free(&c);
    unlink(p);
    free(p);

    /* only the model missing */
    ck_assert_int_eq(ee_config_load_string(&c, "[worker]\nclasses = small\n", &err), 0);
    ck_assert_int_eq(ee_config_validate(&c, &err), -1);
    ASSERT_HAS(err.msg, "[model NAME]");
    ASSERT_HASNT(err.msg, "classes");
    ee_config_free(&c);
}
END_TEST

START_TEST(validate_checks_fields) {
    ee_config c;
    ee_err err = {{0}};
    ck_assert_int_eq(ee_config_load_string(&c, GOOD, &err), 0);
    ck_assert_int_eq(ee_config_validate(&c, &err), 0);
    c.threads = 0;
    ck_assert_int_eq(ee_config_validate(&c, &err), -1);
    ASSERT_HAS(err.msg, "[worker] threads: 0 is not in 1..256");
    c.threads = 257;
    ck_assert_int_eq(ee_config_validate(&c, &err), -1);
    c.threads = 4;
    c.metrics_port = 70000;
    ck_assert_int_eq(ee_config_validate(&c, &err), -1);
    ASSERT_HAS(err.msg, "metrics_port");
    c.metrics_port = 0;
    ck_assert_int_eq(ee_config_validate(&c, &err), 0);
    char *saved = c.classes[0];
    c.classes[0] = "Small!";
    ck_assert_int_eq(ee_config_validate(&c, &err), -1);
    ASSERT_HAS(err.msg, "'Small!' is not a class name");
    c.classes[0] = saved;
    saved = c.models[0].path;
    c.models[0].path = "";
    ck_assert_int_eq(ee_config_validate(&c, &err), -1);
    ASSERT_HAS(err.msg, "[model smollm2] path");
    c.models[0].path = saved;
    saved = c.models[0].name;
    c.models[0].name = "no spaces";
    ck_assert_int_eq(ee_config_validate(&c, &err), -1);
    ASSERT_HAS(err.msg, "not a model name");
    c.models[0].name = saved;
    ck_assert_int_eq(ee_config_validate(&c, &err), 0);
    ee_config_free(&c);
}
END_TEST

/* ---- long lines ---------------------------------------------------------------- */

START_TEST(long_lines) {
    ee_config c;
    ee_err err = {{0}};
    const size_t limit = 198; /* inih's 200-byte buffer minus '\n' and NUL */
    char *text = malloc(200000);
    ck_assert_ptr_nonnull(text);
    for (size_t content = limit - 2; content <= limit + 2; content++) {
        /* "path = /" + 'a' * (content - 8): a line of exactly `content` bytes */
        int n = sprintf(text, "[worker]\nclasses = small\n[model m]\npath = /");
        memset(text + n, 'a', content - 8);
        strcpy(text + n + content - 8, "\n");
        int rc = ee_config_load_string(&c, text, &err);
        if (content <= limit) {
            ck_assert_msg(rc == 0, "%zu: %s", content, err.msg);
            ck_assert_uint_eq(strlen(c.models[0].path), content - 7);
            ck_assert_int_eq(ee_config_validate(&c, &err), 0);
        } else {
            ck_assert_int_eq(rc, -1);
            char want[96];
            snprintf(want, sizeof want, "<string>:4: line is %zu bytes long; the limit is 198",
                     content);
            ASSERT_HAS(err.msg, want);
        }
        ee_config_free(&c);
    }
    /* the same at the end of a text without a final newline */
    int n = sprintf(text, "[model m]\npath = /");
    memset(text + n, 'b', 191);
    text[n + 191] = '\0'; /* line 2: 199 bytes */
    ck_assert_int_eq(ee_config_load_string(&c, text, &err), -1);
    ASSERT_HAS(err.msg, "<string>:2: line is 199 bytes");

    /* very long lines and values: refused, no crash */
    n = sprintf(text, "[kafka]\n; fine\nclient.id = ");
    memset(text + n, 'x', 150000);
    strcpy(text + n + 150000, "\n[worker]\n");
    ck_assert_int_eq(ee_config_load_string(&c, text, &err), -1);
    ASSERT_HAS(err.msg, "<string>:3: line is 150012 bytes long");
    char *p = write_tmp(text, strlen(text));
    ck_assert_int_eq(ee_config_load(&c, p, &err), -1);
    ASSERT_HAS(err.msg, ":3: line is 150012 bytes long");
    unlink(p);
    free(p);
    /* a very long section header, and a long comment line */
    memset(text, 'z', 5000);
    text[0] = '[';
    strcpy(text + 4999, "]\n");
    ck_assert_int_eq(ee_config_load_string(&c, text, &err), -1);
    ASSERT_HAS(err.msg, "<string>:1: line is 5000 bytes");
    memset(text, ';', 5000);
    text[5000] = '\0';
    ck_assert_int_eq(ee_config_load_string(&c, text, &err), -1);
    ASSERT_HAS(err.msg, "<string>:1: line is");
    /* an over-long (but short enough for a line) value */
    ck_assert_int_eq(ee_config_set_override(&c, "worker.name", text, &err), -1);
    ck_assert_int_eq(strlen(err.msg) < EE_ERR_MAX, 1);
    ee_config_free(&c);
    free(text);
}
END_TEST

Suite *suite_config(void) {
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("load");
    tcase_add_test(tc, example_loads_and_validates);
    tcase_add_test(tc, defaults_and_string);
    tcase_add_loop_test(tc, bad_config_case, 0, N_BAD);
    tcase_add_test(tc, file_errors);
    tcase_add_test(tc, tenants_and_sealing_settings);
    tcase_add_test(tc, empty_fails_validation);
    tcase_add_test(tc, long_lines);
    suite_add_tcase(s, tc);

    tc = tcase_create("use");
    tcase_add_test(tc, overrides_win);
    tcase_add_test(tc, kafka_order_preserved);
    tcase_add_test(tc, indexes);
    tcase_add_test(tc, secrets_redacted);
    tcase_add_test(tc, validate_checks_fields);
    suite_add_tcase(s, tc);
    return s;
}
