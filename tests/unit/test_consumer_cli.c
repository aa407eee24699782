/* ee-consumer start-up: bad flags, bad config and bad models are refused
 * with a message naming the problem (and the file:line for config), before
 * any Kafka connection; a good config passes --check. */
#include "ee_testmodel.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *g_dir, g_plain[512], g_enc[512], g_key[512];

static void setup(void) {
    ee_err err = {{0}};
    g_dir = ee_test_mkdtemp("consumer-cli");
    ck_assert_ptr_nonnull(g_dir);
    snprintf(g_plain, sizeof g_plain, "%s/plain.gguf", g_dir);
    snprintf(g_enc, sizeof g_enc, "%s/enc.gguf", g_dir);
    snprintf(g_key, sizeof g_key, "%s/k.eekey", g_dir);
    ee_testmodel_cfg c = ee_testmodel_default();
    ck_assert_msg(ee_testmodel_write(g_plain, &c, &err) == 0, "%s", err.msg);
    char cmd[4096], *out = NULL, *er = NULL;
    snprintf(cmd, sizeof cmd, "%s/ee-model keygen --out %s && %s/ee-model encrypt --model %s --key %s --out %s",
             ee_test_bindir(), g_key, ee_test_bindir(), g_plain, g_key, g_enc);
    int st = ee_test_run(cmd, &out, &er);
    ck_assert_msg(st == 0, "encrypt failed: %s", er);
    free(out);
    free(er);
}

static void teardown(void) {
    ee_test_rmtree(g_dir);
    free(g_dir);
}

static void expect(const char *args, int want_ok, const char *n1, const char *n2) {
    char cmd[4096], *out = NULL, *err = NULL;
    snprintf(cmd, sizeof cmd, "%s/ee-consumer %s", ee_test_bindir(), args);
    int st = ee_test_run(cmd, &out, &err);
    if (want_ok) ck_assert_msg(st == 0, "'%s' should succeed: %s", args, err);
    else ck_assert_msg(st != 0, "'%s' should fail", args);
    const char *hay = want_ok ? out : err;
    ck_assert_msg(strstr(hay, n1), "'%s': output '%s' lacks '%s'", args, hay, n1);
    if (n2) ck_assert_msg(strstr(hay, n2), "'%s': output '%s' lacks '%s'", args, hay, n2);
    free(out);
    free(err);
}

START_TEST(refusals_name_the_problem) {
    char a[2048];
    expect("--bogus", 0, "unknown flag --bogus", NULL);
    expect("--threads", 0, "--threads", "missing value");
    expect("extra", 0, "unexpected argument 'extra'", NULL);
    expect("--bootstrap 127.0.0.1:1", 0, "missing [worker] classes", "[model NAME]");
    snprintf(a, sizeof a, "--bootstrap 127.0.0.1:1 --class small --model %s", g_enc);
    expect(a, 0, "--model", "is not NAME=VALUE");
    snprintf(a, sizeof a, "--bootstrap 127.0.0.1:1 --class small --model m=%s --threads 0", g_enc);
    expect(a, 0, "worker.threads", "'0' is not an integer in 1..256");
    snprintf(a, sizeof a, "--bootstrap 127.0.0.1:1 --class Small --model m=%s", g_enc);
    expect(a, 0, "worker.classes", "'Small' is not a class");
    snprintf(a, sizeof a, "--class small --model m=%s", g_enc);
    expect(a, 0, "no Kafka bootstrap servers", NULL);
    snprintf(a, sizeof a, "--bootstrap 127.0.0.1:1 --class small --model m=%s --kafka no.such.prop=1", g_enc);
    expect(a, 0, "no.such.prop", NULL);
    snprintf(a, sizeof a, "--bootstrap 127.0.0.1:1 --class small --model m=%s/missing.gguf --check", g_dir);
    expect(a, 0, "missing.gguf", NULL);
    /* a plaintext model is refused: the worker never handles plaintext */
    snprintf(a, sizeof a, "--bootstrap 127.0.0.1:1 --class small --model m=%s --check", g_plain);
    expect(a, 0, "is not an encrypted model", NULL);
    /* config file errors carry file:line */
    char cfg[600];
    snprintf(cfg, sizeof cfg, "%s/w.ini", g_dir);
    FILE *f = fopen(cfg, "w");
    fprintf(f, "[worker]\nclasses = small\nthreads = two\n");
    fclose(f);
    snprintf(a, sizeof a, "--config %s", cfg);
    expect(a, 0, "w.ini:3: [worker] threads: 'two' is not an integer", NULL);
}
END_TEST

START_TEST(check_accepts_good_config) {
    char cfg[600], a[2048];
    snprintf(cfg, sizeof cfg, "%s/good.ini", g_dir);
    FILE *f = fopen(cfg, "w");
    fprintf(f, "[worker]\nclasses = small, large\nthreads = 1\n[model tiny]\npath = %s\n"
               "[kafka]\nbootstrap.servers = 127.0.0.1:1\n", g_enc);
    fclose(f);
    snprintf(a, sizeof a, "--config %s --check", cfg);
    expect(a, 1, "ok: 1 model(s), 2 class(es)", NULL);
    /* flags override the file */
    snprintf(a, sizeof a, "--config %s --class small --check", cfg);
    expect(a, 1, "ok: 1 model(s), 1 class(es)", NULL);
}
END_TEST

Suite *suite_consumer_cli(void) {
    Suite *s = suite_create("consumer_cli");
    TCase *tc = tcase_create("consumer_cli");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, refusals_name_the_problem);
    tcase_add_test(tc, check_accepts_good_config);
    suite_add_tcase(s, tc);
    return s;
}
