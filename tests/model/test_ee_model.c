/* Equivariant encryption on the real SmolLM2-135M-Instruct: the encrypted
 * f32 model, run on encrypted ids, reproduces the plaintext model token for
 * token, and the file leaks no plaintext vocabulary. The key and encrypted
 * model are made once per run (unchecked fixture, in the parent process). */
#include "ee_generate.h"
#include "ee_gguf.h"
#include "ee_key.h"
#include "ee_llama.h"
#include "ee_clock.h"
#include "ee_compute.h"
#include "ee_scheme.h"
#include "ee_testmodel.h"
#include "ee_chat.h"
#include "ee_tokenizer.h"

#include <check.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char g_dir[256], g_key[300], g_key2[300], g_enc[300];
static const char *plain_path(void) {
    const char *p = getenv("EE_MODEL");
    return p ? p : ".cache/models/SmolLM2-135M-Instruct.Q4_1.gguf";
}

/* Runs in Check's parent process before the forked tests. It must not start
 * an OpenMP team here: libgomp's threads do not survive fork(), and the
 * first parallel region in a forked test would wait for them forever. So the
 * key and the encrypted model are made by the CLI, in a child process. */
static void make_encrypted(void) {
    ee_err err = {{0}};
    (void)err;
    char *dir = ee_test_mkdtemp("ee-model");
    snprintf(g_dir, sizeof g_dir, "%s", dir);
    free(dir);
    snprintf(g_key, sizeof g_key, "%s/k1.eekey", g_dir);
    snprintf(g_key2, sizeof g_key2, "%s/k2.eekey", g_dir);
    snprintf(g_enc, sizeof g_enc, "%s/enc.gguf", g_dir);
    char cmd[2048], *out = NULL, *errs = NULL;
    const char *bin = ee_test_bindir();
    snprintf(cmd, sizeof cmd, "%s/ee-model keygen --out %s && %s/ee-model keygen --out %s", bin,
             g_key, bin, g_key2);
    ck_assert_msg(ee_test_run(cmd, &out, &errs) == 0, "keygen: %s", errs);
    free(out);
    free(errs);
    snprintf(cmd, sizeof cmd, "%s/ee-model encrypt --model %s --key %s --out %s --type f32", bin,
             plain_path(), g_key, g_enc);
    ck_assert_msg(ee_test_run(cmd, NULL, &errs) == 0, "encrypt: %s", errs);
    fprintf(stderr, "[ee] %s", errs); /* the CLI's timing line */
    free(errs);
}

static void remove_encrypted(void) { ee_test_rmtree(g_dir); }

/* Twenty chat prompts of different kinds. */
static const char *PROMPTS[] = {
    "What is the capital of France?",
    "Write a haiku about autumn leaves.",
    "Explain photosynthesis to a ten-year-old.",
    "List five prime numbers greater than 50.",
    "How do I reverse a list in Python?",
    "Translate 'thank you very much' into German.",
    "What causes the seasons on Earth?",
    "Give me three tips for a job interview.",
    "Summarize the plot of Romeo and Juliet in two sentences.",
    "What is 17 times 23?",
    "Describe the smell of rain.",
    "Why is the sky blue?",
    "Write a SQL query that counts rows in a table named users.",
    "What are the benefits of regular exercise?",
    "Tell me a short joke about computers.",
    "How does a bicycle stay upright?",
    "Name the planets of the solar system in order.",
    "What is the difference between weather and climate?",
    "Suggest a name for a friendly robot.",
    "Explain what a hash function is in one paragraph.",
};
#define N_PROMPTS (int)(sizeof PROMPTS / sizeof PROMPTS[0])
#define N_GEN 64

typedef struct side {
    ee_gguf *g;
    ee_llama_model *m;
    ee_llama_ctx *ctx;
} side;

static void side_open(side *s, const char *path) {
    ee_err err = {{0}};
    s->g = ee_gguf_open(path, &err);
    ck_assert_msg(s->g != NULL, "%s", err.msg);
    s->m = ee_llama_load(s->g, NULL, &err);
    ck_assert_msg(s->m != NULL, "%s", err.msg);
    s->ctx = ee_llama_ctx_new(s->m, &err);
}

static void side_close(side *s) {
    ee_llama_ctx_free(s->ctx);
    ee_llama_free(s->m);
    ee_gguf_close(s->g);
}

/* Lockstep greedy: both models follow the plaintext model's greedy path;
 * at every step the encrypted logits, decrypted (permuted back), must equal
 * the plaintext logits within 1e-3 and give the same argmax. */
START_TEST(encrypted_generation_equals_plaintext) {
    ee_err err = {{0}};
    ee_compute_set_threads(2);
    side P, E;
    side_open(&P, plain_path());
    side_open(&E, g_enc);
    ee_tokenizer *tok = ee_tokenizer_open_gguf(P.g, &err);
    ck_assert_ptr_nonnull(tok);
    ee_key master, k;
    ck_assert_int_eq(ee_key_load(&master, g_key, &err), 0);
    ck_assert_msg(ee_scheme_key(&master, P.g, NULL, &k, &err) == 0, "%s", err.msg);
    ee_key_wipe(&master);
    ee_vocab_cipher vc;
    ck_assert_int_eq(ee_vocab_cipher_init(&vc, &k, (uint32_t)P.m->hp.n_vocab, &err), 0);
    ck_assert_int_eq(ee_model_check_key(E.g, &k, &err), 0);
    ee_key_wipe(&k);
    const int V = P.m->hp.n_vocab;
    float *lp = malloc(sizeof(float) * V), *le = malloc(sizeof(float) * V);
    float worst = 0.0f, min_margin = 1e30f;
    long tokens = 0, ids_total = 0, ids_same = 0;
    for (int p = 0; p < N_PROMPTS; p++) {
        int32_t *ids = NULL;
        size_t n = 0;
        ck_assert_int_eq(ee_chat_encode(tok, NULL, PROMPTS[p], true, &ids, &n, &err), 0);
        int32_t *eids = malloc(sizeof(int32_t) * n);
        ck_assert_int_eq(ee_vocab_encrypt(&vc, ids, eids, n, &err), 0);
        for (size_t i = 0; i < n; i++) ids_same += eids[i] == ids[i];
        ids_total += (long)n;
        ee_kv_cache *kp = ee_kv_cache_new(P.m, (int)n + N_GEN, &err);
        ee_kv_cache *ke = ee_kv_cache_new(E.m, (int)n + N_GEN, &err);
        ee_llama_seq sp = {.tokens = ids, .n_tokens = (int)n, .cache = kp, .logits = lp};
        ee_llama_seq se = {.tokens = eids, .n_tokens = (int)n, .cache = ke, .logits = le};
        ck_assert_int_eq(ee_llama_forward(P.ctx, &sp, 1, &err), 0);
        ck_assert_int_eq(ee_llama_forward(E.ctx, &se, 1, &err), 0);
        for (int step = 0; step < N_GEN; step++) {
            int a = 0, b = 0, second = -1;
            float d = 0.0f;
            for (int i = 0; i < V; i++) {
                float x = lp[i], y = le[vc.fwd[i]];
                if (fabsf(x - y) > d) d = fabsf(x - y);
                if (x > lp[a]) a = i;
                if (le[i] > le[b]) b = i;
            }
            for (int i = 0; i < V; i++)
                if (i != a && (second < 0 || lp[i] > lp[second])) second = i;
            float margin = lp[a] - lp[second];
            if (margin < min_margin) min_margin = margin;
            if (d > worst) worst = d;
            ck_assert_msg((int)vc.inv[b] == a,
                          "prompt %d diverges at generated token %d: plaintext %d, encrypted "
                          "decrypts to %d (plaintext top1-top2 margin %.6g, max logit diff %.3g)",
                          p, step, a, (int)vc.inv[b], margin, d);
            ck_assert_msg(d <= 1e-3f, "prompt %d step %d: max |logit diff| %g > 1e-3", p, step, d);
            int32_t tp = a, te = (int32_t)vc.fwd[a];
            sp = (ee_llama_seq){.tokens = &tp, .n_tokens = 1, .cache = kp, .logits = lp};
            se = (ee_llama_seq){.tokens = &te, .n_tokens = 1, .cache = ke, .logits = le};
            ck_assert_int_eq(ee_llama_forward(P.ctx, &sp, 1, &err), 0);
            ck_assert_int_eq(ee_llama_forward(E.ctx, &se, 1, &err), 0);
            tokens++;
        }
        ee_kv_cache_free(kp);
        ee_kv_cache_free(ke);
        free(ids);
        free(eids);
    }
    fprintf(stderr,
            "[ee] %d prompts x %d tokens: %ld/%ld greedy tokens identical; max |logit diff| "
            "after decryption %.3g; smallest plaintext top1-top2 margin met %.3g\n",
            N_PROMPTS, N_GEN, tokens, (long)N_PROMPTS * N_GEN, worst, min_margin);
    fprintf(stderr, "[ee] encrypted prompt ids equal to plaintext ids: %ld of %ld\n", ids_same,
            ids_total);
    ck_assert_msg(ids_same * 100 <= ids_total, "%ld of %ld encrypted ids unchanged", ids_same,
                  ids_total);
    free(lp);
    free(le);
    ee_vocab_cipher_free(&vc);
    ee_tokenizer_close(tok);
    side_close(&P);
    side_close(&E);
}
END_TEST

static bool file_contains(const unsigned char *data, size_t n, const char *s) {
    return memmem(data, n, s, strlen(s)) != NULL;
}

/* Many needles (each >= 8 bytes) in one pass over a large buffer: an
 * open-addressing set of the needles' first 8 bytes, probed at every
 * offset; a probe hit is confirmed with memcmp. Returns the index of a
 * needle found, or -1. */
typedef struct { uint64_t key; int32_t idx; } slot;

static uint64_t mix64(uint64_t x) {
    x ^= x >> 33; x *= 0xff51afd7ed558ccdULL; x ^= x >> 33; x *= 0xc4ceb9fe1a85ec53ULL;
    return x ^ (x >> 33);
}

static long find_any(const unsigned char *data, size_t n, char *const *needles,
                     const uint64_t *lens, size_t count) {
    size_t cap = 1;
    while (cap < count * 4) cap <<= 1;
    slot *tab = calloc(cap, sizeof *tab);
    for (size_t i = 0; i < cap; i++) tab[i].idx = -1;
    for (size_t i = 0; i < count; i++) {
        uint64_t k;
        memcpy(&k, needles[i], 8);
        /* Linear probing; needles sharing a prefix take successive slots
         * and the lookup walks the whole chain. */
        size_t h = mix64(k) & (cap - 1);
        while (tab[h].idx >= 0) h = (h + 1) & (cap - 1);
        tab[h].key = k;
        tab[h].idx = (int32_t)i;
    }
    long found = -1;
    for (size_t off = 0; off + 8 <= n && found < 0; off++) {
        uint64_t k;
        memcpy(&k, data + off, 8);
        for (size_t h = mix64(k) & (cap - 1); tab[h].idx >= 0; h = (h + 1) & (cap - 1)) {
            if (tab[h].key != k) continue;
            size_t i = (size_t)tab[h].idx;
            if (off + lens[i] <= n && memcmp(data + off, needles[i], lens[i]) == 0) {
                found = (long)i;
                break;
            }
        }
    }
    free(tab);
    return found;
}

START_TEST(encrypted_file_leaks_no_plaintext_vocabulary) {
    ee_err err = {{0}};
    ee_gguf *gp = ee_gguf_open(plain_path(), &err);
    FILE *f = fopen(g_enc, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    size_t n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *data = malloc(n);
    ck_assert_uint_eq(fread(data, 1, n, f), n);
    fclose(f);
    /* Metadata key names ("general.architecture", "llama.block_count") are
     * GGUF schema, identical in every llama file, and contain vocabulary
     * words by coincidence ("itecture"): blank them before searching. */
    ee_gguf *ge0 = ee_gguf_open(g_enc, &err);
    ck_assert_ptr_nonnull(ge0);
    size_t hdr = (size_t)ee_gguf_data_offset(ge0);
    for (uint64_t i = 0; i < ee_gguf_n_kv(ge0); i++) {
        const char *key = ee_gguf_kv_at(ge0, i)->key;
        size_t kl = strlen(key);
        for (unsigned char *q = data; (q = memmem(q, hdr - (size_t)(q - data), key, kl)) != NULL;)
            memset(q, 0, kl);
    }
    ee_gguf_close(ge0);
    /* The chat template, its system line and the special-token strings. */
    const char *tmpl = ee_gguf_get_str(gp, "tokenizer.chat_template", &err);
    ck_assert_ptr_nonnull(tmpl);
    ck_assert(!file_contains(data, n, tmpl));
    const char *needles[] = {"<|im_start|>", "<|im_end|>", "<|endoftext|>", "SmolLM",
                             "Hugging Face", "chat_template", "Smollm2"};
    for (size_t i = 0; i < sizeof needles / sizeof needles[0]; i++)
        ck_assert_msg(!file_contains(data, n, needles[i]), "'%s' found in the encrypted file",
                      needles[i]);
    /* Every plaintext token and merge rule of 8+ bytes (chance matches in
     * 650 MB of binary are ~1e-10 at that length). */
    const ee_gguf_kv *toks = ee_gguf_find_kv(gp, "tokenizer.ggml.tokens");
    const ee_gguf_kv *merges = ee_gguf_find_kv(gp, "tokenizer.ggml.merges");
    size_t cap = toks->n + merges->n, cnt = 0, n_tok = 0;
    char **words = malloc(sizeof(char *) * cap);
    uint64_t *lens = malloc(sizeof(uint64_t) * cap);
    for (uint64_t i = 0; i < toks->n; i++) {
        if (toks->str_lens[i] < 8) continue;
        words[cnt] = toks->strs[i];
        lens[cnt++] = toks->str_lens[i];
    }
    n_tok = cnt;
    for (uint64_t i = 0; i < merges->n; i++) {
        if (merges->str_lens[i] < 8) continue;
        words[cnt] = merges->strs[i];
        lens[cnt++] = merges->str_lens[i];
    }
    long hit = find_any(data, n, words, lens, cnt);
    ck_assert_msg(hit < 0, "plaintext %s '%s' found in the encrypted file",
                  hit < (long)n_tok ? "token" : "merge", hit >= 0 ? words[hit] : "");
    fprintf(stderr, "[ee] leakage: %zu plaintext tokens and %zu merges of 8+ bytes searched in %zu "
                    "bytes: none found\n",
            n_tok, cnt - n_tok, n);
    ck_assert_uint_gt(n_tok, 1000);
    free(words);
    free(lens);
    /* The short tokens: the vocabulary array holds only placeholders. */
    ee_gguf *ge = ee_gguf_open(g_enc, &err);
    const ee_gguf_kv *et = ee_gguf_find_kv(ge, "tokenizer.ggml.tokens");
    for (uint64_t i = 0; i < et->n; i++) {
        char want[32];
        snprintf(want, sizeof want, "<ee_%llu>", (unsigned long long)i);
        ck_assert_str_eq(et->strs[i], want);
    }
    ee_gguf_close(ge);
    free(data);
    ee_gguf_close(gp);
}
END_TEST

/* The CLI round trip a client does by hand: tokenize --key (encrypt ids),
 * a keyless worker run on those ids, detokenize --key (decrypt); the text
 * equals plaintext generation. A different key is refused. */
START_TEST(cli_client_worker_round_trip_and_wrong_key) {
    const char *bin = ee_test_bindir(), *pm = plain_path();
    const char *q = "Name three colors of the rainbow.";
    char cmd[4096], *enc_ids = NULL, *worker = NULL, *text = NULL, *plain = NULL, *err = NULL;
    snprintf(cmd, sizeof cmd, "%s/ee-model tokenize --model %s --key %s --chat --prompt '%s'", bin,
             pm, g_key, q);
    ck_assert_int_eq(ee_test_run(cmd, &enc_ids, NULL), 0);
    enc_ids[strcspn(enc_ids, "\n")] = 0;
    snprintf(cmd, sizeof cmd, "%s/ee-model generate --model %s --tokens %s --max-tokens 48", bin,
             g_enc, enc_ids);
    ck_assert_int_eq(ee_test_run(cmd, &worker, NULL), 0);
    worker[strcspn(worker, "\n")] = 0;
    snprintf(cmd, sizeof cmd, "%s/ee-model detokenize --model %s --key %s --tokens %s", bin, pm,
             g_key, worker);
    ck_assert_int_eq(ee_test_run(cmd, &text, NULL), 0);
    snprintf(cmd, sizeof cmd, "%s/ee-model generate --model %s --chat --prompt '%s' --max-tokens 48",
             bin, pm, q);
    ck_assert_int_eq(ee_test_run(cmd, &plain, NULL), 0);
    ck_assert_msg(strcmp(text, plain) == 0, "decrypted worker output '%s' != plaintext '%s'", text,
                  plain);
    ck_assert_msg(strlen(plain) > 10, "suspiciously short answer '%s'", plain);
    /* Wrong key: refused with both ids named. */
    snprintf(cmd, sizeof cmd,
             "%s/ee-model generate --model %s --key %s --plain-model %s --prompt hi --max-tokens 4",
             bin, g_enc, g_key2, pm);
    ck_assert_int_ne(ee_test_run(cmd, NULL, &err), 0);
    ck_assert_msg(strstr(err, "key mismatch"), "%s", err);
    free(err);
    /* Encrypting the encrypted model: refused. */
    snprintf(cmd, sizeof cmd, "%s/ee-model encrypt --model %s --key %s --out %s/again.gguf", bin,
             g_enc, g_key, g_dir);
    ck_assert_int_ne(ee_test_run(cmd, NULL, &err), 0);
    ck_assert_msg(strstr(err, "already encrypted"), "%s", err);
    free(enc_ids);
    free(worker);
    free(text);
    free(plain);
    free(err);
}
END_TEST

/* The audit on the real model: a worker holding the public SmolLM2 weights
 * recovers the vocabulary from the encrypted file alone and reads a secret
 * prompt, as docs/SECURITY.md states; checked against the key. */
START_TEST(audit_recovers_real_model_from_public_weights) {
    const char *bin = ee_test_bindir(), *pm = plain_path();
    const char *q = "My account number is 4417 and my doctor is Dr. Alvarez.";
    char cmd[4096], *enc_ids = NULL, *out = NULL, *errs = NULL;
    snprintf(cmd, sizeof cmd, "%s/ee-model tokenize --model %s --key %s --prompt '%s'", bin, pm,
             g_key, q);
    ck_assert_int_eq(ee_test_run(cmd, &enc_ids, NULL), 0);
    enc_ids[strcspn(enc_ids, "\n")] = 0;
    snprintf(cmd, sizeof cmd,
             "%s/ee-model audit --model %s --public %s --tokens %s --key %s --json --threads 2",
             bin, g_enc, pm, enc_ids, g_key);
    ck_assert_msg(ee_test_run(cmd, &out, &errs) == 0, "audit: %s", errs);
    json_error_t je;
    json_t *j = json_loads(out, 0, &je);
    ck_assert_msg(j != NULL, "audit --json printed '%s'", out);
    double rec = json_real_value(json_object_get(j, "vocab_recovered"));
    double ok = json_real_value(json_object_get(j, "vocab_correct"));
    double secs = json_real_value(json_object_get(j, "seconds"));
    const char *text = json_string_value(json_object_get(j, "text"));
    fprintf(stderr, "[audit] SmolLM2: vocab recovered %.4f, correct %.4f, %.1f s\n", rec, ok, secs);
    ck_assert_msg(rec >= 0.99 && ok >= 0.99, "recovered %.4f correct %.4f", rec, ok);
    ck_assert_msg(rec <= ok + 0.001, "claims %.4f, right %.4f", rec, ok);
    ck_assert_msg(text && strcmp(text, q) == 0, "decrypted '%s'", text ? text : "(none)");
    ck_assert(secs > 0);
    ck_assert_double_eq(json_real_value(json_object_get(j, "mlp_perm_recovered")), 1.0);
    ck_assert_double_eq(json_real_value(json_object_get(j, "heads_v_recovered")), 1.0);
    json_decref(j);
    free(out), free(errs), out = NULL, errs = NULL;
    /* Mismatched inputs: refused by name, nothing printed on stdout. */
    snprintf(cmd, sizeof cmd, "%s/ee-model audit --model %s --public %s", bin, pm, g_enc);
    ck_assert_int_ne(ee_test_run(cmd, &out, &errs), 0);
    ck_assert_msg(strstr(errs, "--model is not an encrypted model") && !*out, "%s", errs);
    free(out), free(errs), out = NULL, errs = NULL;
    snprintf(cmd, sizeof cmd, "%s/ee-model audit --model %s --public %s --key %s", bin, g_enc, pm,
             g_key2);
    ck_assert_int_ne(ee_test_run(cmd, &out, &errs), 0);
    ck_assert_msg(strstr(errs, "did not encrypt this model"), "%s", errs);
    free(out), free(errs), free(enc_ids);
}
END_TEST

/* A quantized encrypted file of the real model (the demo's default, Q8_0),
 * read from the key holder's side on held-out text (Debian fortunes, not
 * the bench corpus): close to the exact model by llama.cpp's KLD method.
 * Measured on news prose: KLD 0.0020, 96.8% same top token
 * (docs/BENCHMARKS.md, "Quantized encrypted models"). */
START_TEST(quantized_q8_0_close_to_exact_model) {
    const char *bin = ee_test_bindir(), *text = "/usr/share/games/fortunes/computers";
    char enc[320], ref[320], cmd[4096], *out = NULL, *errs = NULL;
    snprintf(enc, sizeof enc, "%s/enc-q8_0.gguf", g_dir);
    snprintf(ref, sizeof ref, "%s/plain-f32.gguf", g_dir);
    snprintf(cmd, sizeof cmd, "%s/ee-model encrypt --model %s --key %s --out %s --type q8_0 && "
             "%s/ee-model convert --model %s --type f32 --out %s", bin, plain_path(), g_key, enc,
             bin, plain_path(), ref);
    ck_assert_msg(ee_test_run(cmd, NULL, &errs) == 0, "encrypt/convert: %s", errs);
    free(errs), errs = NULL;
    snprintf(cmd, sizeof cmd, "%s/ee-model perplexity --model %s --key %s --plain-model %s --ref %s "
             "--text-file %s --ctx 512 --chunks 3 --threads 2 --json", bin, enc, g_key,
             plain_path(), ref, text);
    ck_assert_msg(ee_test_run(cmd, &out, &errs) == 0, "perplexity: %s", errs);
    json_error_t je;
    json_t *j = json_loads(out, 0, &je);
    ck_assert_msg(j != NULL, "not JSON: %s", out);
    double kld = json_real_value(json_object_get(j, "kld_mean"));
    double same = json_real_value(json_object_get(j, "same_top"));
    double ratio = json_real_value(json_object_get(j, "ln_ppl_ratio"));
    fprintf(stderr, "[ee] q8_0 encrypted vs exact: KLD %.5f, same top %.3f, ln PPL ratio %+.4f\n",
            kld, same, ratio);
    ck_assert_msg(kld > 0 && kld < 0.01, "KLD %g", kld);
    ck_assert_msg(same > 0.93, "same top token %g", same);
    ck_assert_msg(fabs(ratio) < 0.02, "ln PPL ratio %g", ratio);
    json_decref(j);
    free(out), free(errs);
    unlink(enc);
    unlink(ref);
}
END_TEST

Suite *suite_ee_model(void) {
    Suite *s = suite_create("ee_model");
    TCase *tc = tcase_create("smollm2_encrypted");
    tcase_add_unchecked_fixture(tc, make_encrypted, remove_encrypted);
    tcase_set_timeout(tc, 900);
    tcase_add_test(tc, encrypted_generation_equals_plaintext);
    tcase_add_test(tc, encrypted_file_leaks_no_plaintext_vocabulary);
    tcase_add_test(tc, cli_client_worker_round_trip_and_wrong_key);
    tcase_add_test(tc, audit_recovers_real_model_from_public_weights);
    tcase_add_test(tc, quantized_q8_0_close_to_exact_model);
    suite_add_tcase(s, tc);
    return s;
}
