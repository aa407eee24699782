/* ee-model command line: bad input gets a non-zero exit and one line naming
 * the problem; good input on a synthetic model gives the documented JSON. */
#include "ee_testmodel.h"

#include <check.h>
#include <math.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *g_model;

static void setup(void) {
    ee_err err = {{0}};
    ee_testmodel_cfg c = ee_testmodel_default();
    g_model = ee_test_tmpfile(".gguf");
    ck_assert_msg(ee_testmodel_write(g_model, &c, &err) == 0, "%s", err.msg);
}

static void teardown(void) {
    unlink(g_model);
    free(g_model);
}

/* Run `ee-model ARGS`; expect failure whose single stderr line contains
 * every needle. */
static void expect_error(const char *args, const char *needle1, const char *needle2) {
    char cmd[2048], *out = NULL, *err = NULL;
    snprintf(cmd, sizeof cmd, "%s/ee-model %s", ee_test_bindir(), args);
    int st = ee_test_run(cmd, &out, &err);
    ck_assert_msg(st != 0, "'%s' should fail", args);
    ck_assert_msg(strstr(err, needle1) != NULL, "'%s': stderr '%s' lacks '%s'", args, err, needle1);
    if (needle2) ck_assert_msg(strstr(err, needle2) != NULL, "'%s': stderr '%s' lacks '%s'", args, err, needle2);
    char *nl = strchr(err, '\n');
    ck_assert_msg(nl && nl[1] == 0, "'%s': error is not one line: '%s'", args, err);
    free(out);
    free(err);
}

START_TEST(bad_input_is_named) {
    char a[1024];
    expect_error("frobnicate", "unknown command", "frobnicate");
    expect_error("generate --prompt hi", "--model", NULL);
    expect_error("generate --model /nonexistent/m.gguf --prompt hi", "/nonexistent/m.gguf", NULL);
    snprintf(a, sizeof a, "generate --model %s --prompt hi --bogus", g_model);
    expect_error(a, "unknown flag", "--bogus");
    snprintf(a, sizeof a, "generate --model %s --prompt hi --max-tokens 12x", g_model);
    expect_error(a, "--max-tokens", "12x");
    snprintf(a, sizeof a, "generate --model %s --prompt hi --temperature -1", g_model);
    expect_error(a, "--temperature", NULL);
    snprintf(a, sizeof a, "generate --model %s --prompt hi --top-p 1.5", g_model);
    expect_error(a, "--top-p", NULL);
    snprintf(a, sizeof a, "generate --model %s --tokens 1,2,999999", g_model);
    expect_error(a, "999999", "out of range");
    snprintf(a, sizeof a, "generate --model %s --tokens 1,,2", g_model);
    expect_error(a, "--tokens", NULL);
    snprintf(a, sizeof a, "generate --model %s --prompt a --tokens 1", g_model);
    expect_error(a, "exactly one", NULL);
    snprintf(a, sizeof a, "generate --model %s --tokens 1 --max-tokens", g_model);
    expect_error(a, "needs a value", NULL);
    snprintf(a, sizeof a, "detokenize --model %s --tokens -3", g_model);
    expect_error(a, "out of range", NULL);
    snprintf(a, sizeof a, "convert --model %s --type q9_9 --out /tmp/x.gguf", g_model);
    expect_error(a, "q9_9", NULL);
    /* EE_ISA naming an unknown kernel set stops the command. */
    snprintf(a, sizeof a, "EE_ISA=neon %s/ee-model info --model %s", ee_test_bindir(), g_model);
    char *o = NULL, *e = NULL;
    ck_assert_int_ne(ee_test_run(a, &o, &e), 0);
    ck_assert_msg(strstr(e, "EE_ISA=neon") && strstr(e, "unknown kernel set"), "%s", e);
    free(o);
    free(e);
    /* A file that is not GGUF. */
    char *junk = ee_test_tmpfile(".gguf");
    FILE *f = fopen(junk, "w");
    fputs("definitely not a model file, but long enough to read a header from", f);
    fclose(f);
    snprintf(a, sizeof a, "info --model %s", junk);
    expect_error(a, "GGUF", NULL);
    unlink(junk);
    free(junk);
}
END_TEST

START_TEST(generate_json_contract) {
    char cmd[2048], *out = NULL, *err = NULL;
    snprintf(cmd, sizeof cmd,
             "%s/ee-model generate --model %s --tokens 5,6,7,8 --max-tokens 9 --ignore-eos "
             "--threads 1 --json",
             ee_test_bindir(), g_model);
    int st = ee_test_run(cmd, &out, &err);
    ck_assert_msg(st == 0, "exit %d: %s", st, err);
    json_error_t je;
    json_t *o = json_loads(out, 0, &je);
    ck_assert_msg(o != NULL, "not JSON: %s", out);
    ck_assert_int_eq(json_array_size(json_object_get(o, "prompt_tokens")), 4);
    ck_assert_int_eq(json_array_size(json_object_get(o, "tokens")), 9);
    ck_assert_str_eq(json_string_value(json_object_get(o, "finish_reason")), "length");
    ck_assert(json_is_string(json_object_get(o, "text")));
    json_t *t = json_object_get(o, "timings");
    ck_assert(json_is_number(json_object_get(t, "prefill_ms")));
    ck_assert(json_is_number(json_object_get(t, "decode_tok_s")));
    /* The kernel set chosen at run time. */
    const char *isa = json_string_value(json_object_get(o, "isa"));
    ck_assert_msg(isa && (!strcmp(isa, "avx512") || !strcmp(isa, "avx2") || !strcmp(isa, "scalar")),
                  "isa %s", isa ? isa : "(missing)");
    /* Same call again: greedy is deterministic. */
    char *out2 = NULL;
    ck_assert_int_eq(ee_test_run(cmd, &out2, NULL), 0);
    json_t *o2 = json_loads(out2, 0, &je);
    ck_assert(json_equal(json_object_get(o, "tokens"), json_object_get(o2, "tokens")));
    /* EE_ISA=scalar is honoured and reported. */
    char cmd2[2100], *out3 = NULL;
    snprintf(cmd2, sizeof cmd2, "EE_ISA=scalar %s", cmd);
    ck_assert_int_eq(ee_test_run(cmd2, &out3, NULL), 0);
    json_t *o3 = json_loads(out3, 0, &je);
    ck_assert(o3 != NULL);
    ck_assert_str_eq(json_string_value(json_object_get(o3, "isa")), "scalar");
    json_decref(o3);
    free(out3);
    json_decref(o);
    json_decref(o2);
    free(out);
    free(out2);
    free(err);
}
END_TEST

START_TEST(tokenize_detokenize_round_trip) {
    char cmd[2048], *ids = NULL, *text = NULL;
    snprintf(cmd, sizeof cmd, "%s/ee-model tokenize --model %s --prompt 'the in then'",
             ee_test_bindir(), g_model);
    ck_assert_int_eq(ee_test_run(cmd, &ids, NULL), 0);
    ids[strcspn(ids, "\n")] = 0;
    /* "the" has no leading space: t,he; " in" and " the"+"n" use merges. */
    ck_assert_str_eq(ids, "116,260,263,261,110");
    snprintf(cmd, sizeof cmd, "%s/ee-model detokenize --model %s --tokens %s", ee_test_bindir(),
             g_model, ids);
    ck_assert_int_eq(ee_test_run(cmd, &text, NULL), 0);
    ck_assert_str_eq(text, "the in then\n");
    free(ids);
    free(text);
}
END_TEST

START_TEST(convert_round_trip_types) {
    const char *types[] = {"f32", "f16", "bf16", "q8_0", "q4_0", "q4_1"};
    for (size_t i = 0; i < 6; i++) {
        char *out = ee_test_tmpfile(".gguf");
        char cmd[2048], *o = NULL, *e = NULL;
        snprintf(cmd, sizeof cmd, "%s/ee-model convert --model %s --type %s --out %s",
                 ee_test_bindir(), g_model, types[i], out);
        ck_assert_msg(ee_test_run(cmd, NULL, &e) == 0, "%s: %s", types[i], e);
        free(e);
        snprintf(cmd, sizeof cmd, "%s/ee-model info --model %s --json", ee_test_bindir(), out);
        ck_assert_int_eq(ee_test_run(cmd, &o, NULL), 0);
        json_error_t je;
        json_t *j = json_loads(o, 0, &je);
        ck_assert_ptr_nonnull(j);
        json_t *tt = json_object_get(j, "tensor_types");
        ck_assert_msg(json_object_get(tt, types[i]) != NULL, "%s: %s", types[i], o);
        json_decref(j);
        free(o);
        unlink(out);
        free(out);
    }
}
END_TEST

/* The audit's command-line contract (external checks rely on it): --json
 * with vocab_recovered in 0..1, seconds and, with --tokens, the text
 * decrypted without the key; exit 0 whatever it finds; key-id matches the
 * encrypted file's ee.key_id; bad and swapped inputs are named. */
START_TEST(audit_contract_and_key_id) {
    const char *bin = ee_test_bindir();
    char *dir = ee_test_mkdtemp("cli-audit");
    char key[512], enc[512], cmd[4096], *out = NULL, *err = NULL, *ids = NULL, *kid = NULL;
    snprintf(key, sizeof key, "%s/k.eekey", dir);
    snprintf(enc, sizeof enc, "%s/enc.gguf", dir);
    snprintf(cmd, sizeof cmd, "%s/ee-model keygen --out %s >/dev/null && %s/ee-model encrypt "
             "--model %s --key %s --out %s", bin, key, bin, g_model, key, enc);
    ck_assert_msg(ee_test_run(cmd, NULL, &err) == 0, "%s", err);
    free(err), err = NULL;
    snprintf(cmd, sizeof cmd, "%s/ee-model tokenize --model %s --key %s --prompt 'the in then'",
             bin, g_model, key);
    ck_assert_int_eq(ee_test_run(cmd, &ids, NULL), 0);
    ids[strcspn(ids, "\n")] = 0;
    snprintf(cmd, sizeof cmd, "%s/ee-model audit --model %s --public %s --tokens %s --json", bin,
             enc, g_model, ids);
    ck_assert_msg(ee_test_run(cmd, &out, &err) == 0, "%s", err);
    json_error_t je;
    json_t *j = json_loads(out, 0, &je);
    ck_assert_msg(j && json_is_object(j), "not one JSON object: '%s'", out);
    double v = json_real_value(json_object_get(j, "vocab_recovered"));
    ck_assert_msg(v >= 0.99 && v <= 1.0, "vocab_recovered %g", v);
    ck_assert(json_is_real(json_object_get(j, "seconds")));
    ck_assert_str_eq(json_string_value(json_object_get(j, "text")), "the in then");
    json_decref(j);
    free(out), free(err), out = err = NULL;
    /* Human output names the adversary and the verdict. */
    snprintf(cmd, sizeof cmd, "%s/ee-model audit --model %s --public %s", bin, enc, g_model);
    ck_assert_int_eq(ee_test_run(cmd, &out, NULL), 0);
    ck_assert_msg(strstr(out, "public") && strstr(out, "no key") && strstr(out, "EXPOSED"), "%s", out);
    free(out), out = NULL;
    /* key-id = ee.key_id of the file; the legacy id is keygen's. */
    snprintf(cmd, sizeof cmd, "%s/ee-model key-id --key %s --model %s", bin, key, g_model);
    ck_assert_int_eq(ee_test_run(cmd, &kid, NULL), 0);
    kid[strcspn(kid, "\n")] = 0;
    snprintf(cmd, sizeof cmd, "%s/ee-model info --model %s --json", bin, enc);
    ck_assert_int_eq(ee_test_run(cmd, &out, NULL), 0);
    j = json_loads(out, 0, &je);
    ck_assert_str_eq(json_string_value(json_object_get(j, "key_id")), kid);
    ck_assert_str_eq(json_string_value(json_object_get(j, "scheme_status")), "current");
    json_decref(j);
    free(out), out = NULL;
    char a[2048];
    snprintf(a, sizeof a, "audit --model %s --public %s", g_model, enc);
    expect_error(a, "--model is not an encrypted model", NULL);
    snprintf(a, sizeof a, "audit --model %s", enc);
    expect_error(a, "--public", "required");
    snprintf(a, sizeof a, "audit --model %s --public %s --perturb lots", enc, g_model);
    expect_error(a, "--perturb", "lots");
    snprintf(a, sizeof a, "audit --model %s --public /nonexistent.gguf", enc);
    expect_error(a, "--public", "/nonexistent.gguf");
    snprintf(a, sizeof a, "audit --model %s --public %s --tokens 1,99999", enc, g_model);
    expect_error(a, "99999", NULL);
    snprintf(a, sizeof a, "key-id --key %s --model %s --scheme v7", key, g_model);
    expect_error(a, "--scheme", "v7");
    free(ids), free(kid);
    ee_test_rmtree(dir);
    free(dir);
}
END_TEST

/* ee-model perplexity: a model against itself scores KLD 0 and the same
 * top token everywhere; the encrypted f32 file, read through the key,
 * scores the plaintext's perplexity with a KLD at float-rounding level;
 * the chunk ids written by --tokens-out are the text's; bad input named. */
static json_t *run_json(const char *cmd) {
    char *out = NULL, *err = NULL;
    ck_assert_msg(ee_test_run(cmd, &out, &err) == 0, "'%s': %s", cmd, err);
    json_error_t je;
    json_t *j = json_loads(out, 0, &je);
    ck_assert_msg(j && json_is_object(j), "not one JSON object: '%s'", out);
    free(out);
    free(err);
    return j;
}

START_TEST(perplexity_contract) {
    const char *bin = ee_test_bindir();
    char *dir = ee_test_mkdtemp("cli-ppl");
    char key[512], enc[512], text[512], toks[512], cmd[4096], a[2048];
    snprintf(key, sizeof key, "%s/k.eekey", dir);
    snprintf(enc, sizeof enc, "%s/enc.gguf", dir);
    snprintf(text, sizeof text, "%s/text.txt", dir);
    snprintf(toks, sizeof toks, "%s/chunks.json", dir);
    FILE *f = fopen(text, "w");
    for (int i = 0; i < 40; i++) fprintf(f, "the in then %d, in the then.\n", i);
    fclose(f);
    snprintf(cmd, sizeof cmd, "%s/ee-model keygen --out %s >/dev/null && %s/ee-model encrypt "
             "--model %s --key %s --out %s 2>/dev/null", bin, key, bin, g_model, key, enc);
    ck_assert_int_eq(ee_test_run(cmd, NULL, NULL), 0);
    snprintf(cmd, sizeof cmd, "%s/ee-model perplexity --model %s --ref %s --text-file %s --ctx 64 "
             "--chunks 3 --tokens-out %s --json", bin, g_model, g_model, text, toks);
    json_t *j = run_json(cmd);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "chunks")), 3);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "scored")), 3 * 31);
    ck_assert(json_real_value(json_object_get(j, "kld_mean")) == 0.0);
    ck_assert(json_real_value(json_object_get(j, "same_top")) == 1.0);
    const double ppl = json_real_value(json_object_get(j, "ppl"));
    ck_assert(ppl > 1.0 && ppl == json_real_value(json_object_get(j, "ppl_ref")));
    json_decref(j);
    json_error_t je;
    json_t *t = json_load_file(toks, 0, &je);
    ck_assert_msg(t != NULL, "%s", je.text);
    ck_assert_int_eq(json_integer_value(json_object_get(t, "ctx")), 64);
    json_t *c0 = json_array_get(json_object_get(t, "chunks"), 0);
    ck_assert_int_eq(json_array_size(c0), 64);
    /* "the" is t + he: the first ids of the text. */
    ck_assert_int_eq(json_integer_value(json_array_get(c0, 0)), 116);
    ck_assert_int_eq(json_integer_value(json_array_get(c0, 1)), 260);
    json_decref(t);
    snprintf(cmd, sizeof cmd, "%s/ee-model perplexity --model %s --key %s --plain-model %s --ref "
             "%s --text-file %s --ctx 64 --chunks 3 --json", bin, enc, key, g_model, g_model, text);
    j = run_json(cmd);
    const double kld = json_real_value(json_object_get(j, "kld_mean"));
    ck_assert_msg(kld < 1e-6, "encrypted f32 KLD %g", kld);
    ck_assert(json_real_value(json_object_get(j, "same_top")) >= 0.98);
    ck_assert(fabs(json_real_value(json_object_get(j, "ppl")) / ppl - 1.0) < 1e-4);
    json_decref(j);
    snprintf(a, sizeof a, "perplexity --model %s --text-file %s", enc, text);
    expect_error(a, "encrypted", "--key");
    snprintf(a, sizeof a, "perplexity --model %s --text-file %s --ctx 4096", g_model, text);
    expect_error(a, "fewer than one chunk", NULL);
    snprintf(a, sizeof a, "perplexity --model %s --text-file %s/missing.txt", g_model, dir);
    expect_error(a, "--text-file", "missing.txt");
    snprintf(a, sizeof a, "perplexity --model %s --ref %s --text-file %s", g_model, enc, text);
    expect_error(a, "--ref", "encrypted");
    snprintf(a, sizeof a, "perplexity --model %s", g_model);
    expect_error(a, "--text-file", "required");
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
    free(dir);
}
END_TEST

Suite *suite_cli(void) {
    Suite *s = suite_create("cli");
    TCase *tc = tcase_create("ee-model");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, bad_input_is_named);
    tcase_add_test(tc, generate_json_contract);
    tcase_add_test(tc, tokenize_detokenize_round_trip);
    tcase_add_test(tc, convert_round_trip_types);
    tcase_add_test(tc, audit_contract_and_key_id);
    tcase_add_test(tc, perplexity_contract);
    suite_add_tcase(s, tc);
    return s;
}
