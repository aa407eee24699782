/* ee-model embed: sentence embeddings from a BERT encoder GGUF (ee_bert.h).
 * One sentence (--text, --tokens) or many (--tokens-file, one sentence's
 * ids per line), run --batch sentences per forward call. Floats are
 * printed with 9 significant digits, so they round-trip. */
#include "cli_args.h"
#include "cmds.h"
#include "ee_bert.h"
#include "ee_key.h"
#include "ee_scheme.h"
#include "ee_wordpiece.h"
#include "ee_gguf.h"
#include "ee_kernels.h"
#include "ee_clock.h"
#include "ee_compute.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int text_to_ids(const ee_gguf *g, const char *text, int32_t **ids, size_t *n,
                       ee_err *err) {
    ee_wordpiece *wp = NULL;
    if (ee_wordpiece_open_gguf(&wp, g, err)) return -1;
    int rc = ee_wordpiece_encode_alloc(wp, text, strlen(text), ids, n, err);
    ee_wordpiece_close(wp);
    return rc;
}

/* ---- inputs ---------------------------------------------------------------- */

typedef struct sentences {
    int32_t **ids;
    size_t *n;
    int count, cap;
} sentences;

static int sentences_add(sentences *s, int32_t *ids, size_t n, ee_err *err) {
    if (s->count == s->cap) {
        int cap = s->cap ? 2 * s->cap : 16;
        int32_t **a = realloc(s->ids, (size_t)cap * sizeof *a);
        if (a) s->ids = a;
        size_t *b = a ? realloc(s->n, (size_t)cap * sizeof *b) : NULL;
        if (!b) return ee_err_set(err, "out of memory");
        s->n = b;
        s->cap = cap;
    }
    s->ids[s->count] = ids;
    s->n[s->count++] = n;
    return 0;
}

static void sentences_free(sentences *s) {
    for (int i = 0; i < s->count; i++) free(s->ids[i]);
    free(s->ids);
    free(s->n);
}

static int read_tokens_file(const char *path, int n_vocab, sentences *s, ee_err *err) {
    FILE *in = strcmp(path, "-") ? fopen(path, "r") : stdin;
    if (!in) return ee_err_set(err, "--tokens-file %s: %s", path, strerror(errno));
    char *line = NULL;
    size_t lcap = 0;
    ssize_t len;
    int rc = 0, lineno = 0;
    while (rc == 0 && (len = getline(&line, &lcap, in)) >= 0) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
        char flag[64];
        snprintf(flag, sizeof flag, "--tokens-file line %d", lineno);
        int32_t *ids = NULL;
        size_t n = 0;
        rc = cli_token_list(flag, line, n_vocab, &ids, &n, err);
        if (rc == 0 && sentences_add(s, ids, n, err)) {
            free(ids);
            rc = -1;
        }
    }
    free(line);
    if (in != stdin) fclose(in);
    if (rc == 0 && s->count == 0) rc = ee_err_set(err, "--tokens-file %s has no lines", path);
    return rc;
}

/* ---- output ------------------------------------------------------------------ */

static json_t *vec_json(const float *v, int n) {
    json_t *a = json_array();
    for (int i = 0; i < n; i++) json_array_append_new(a, json_real((double)v[i]));
    return a;
}

static const char *pooling_name(ee_bert_pooling p) {
    return p == EE_BERT_POOL_MEAN ? "mean" : p == EE_BERT_POOL_CLS ? "cls" : "last";
}

int cmd_embed(int argc, char **argv) {
    enum { MODEL, TEXT, TOKENS, TFILE, BATCH, JSON, THREADS, RAW, STORED, KEY, PLAIN, SHOWC,
           HELP, NF };
    cli_flag f[NF] = {[MODEL] = {"--model", true},       [TEXT] = {"--text", true},
                      [KEY] = {"--key", true},           [PLAIN] = {"--plain-model", true},
                      [SHOWC] = {"--show-ciphertext", false},
                      [TOKENS] = {"--tokens", true},     [TFILE] = {"--tokens-file", true},
                      [BATCH] = {"--batch", true},       [JSON] = {"--json", false},
                      [THREADS] = {"--threads", true},   [RAW] = {"--raw", false},
                      [STORED] = {"--stored-weights", false}, [HELP] = {"--help", false}};
    ee_err err = {{0}};
    if (cli_parse(argc, argv, f, NF, &err)) return cmd_fail("embed", err.msg);
    if (f[HELP].present) {
        printf("usage: ee-model embed --model M.gguf (--text TEXT | --tokens ID,ID,... |\n"
               "         --tokens-file FILE|-) [--batch N] [--json] [--threads N] [--raw]\n"
               "         [--stored-weights]\n"
               "  Sentence embedding(s) of a BERT encoder (ee-model import; docs/ENCODER.md):\n"
               "  one line of n_embd floats per sentence, or JSON. --tokens takes the ids\n"
               "  the tokenizer gives ([CLS] ... [SEP]); a tokens file holds one sentence's\n"
               "  ids per line, run --batch sentences per forward pass (default 64).\n"
               "  Longer than the model's max_seq_length: cut as sentence-transformers\n"
               "  does. --raw: skip the L2 normalisation. --stored-weights: keep f16 weights\n"
               "  as stored instead of f32 copies. The JSON reports the time spent embedding\n"
               "  (ms, sentences_per_s).\n"
               "\n"
               "  Encrypted encoders (ee-model encrypt; docs/EE.md):\n"
               "    --model ENC.gguf --tokens ENC_IDS      what a worker runs: encrypted ids in,\n"
               "                                           the encrypted embedding out (no key)\n"
               "    --model ENC.gguf --key K.eekey --plain-model PLAIN.gguf (--text T | --tokens IDS)\n"
               "                                           the key holder: tokenize with the plain\n"
               "                                           model, encrypt the ids, run the encrypted\n"
               "                                           model, decrypt the embedding\n"
               "    --show-ciphertext                      also print the encrypted ids and vector\n");
        return 0;
    }
    if (!f[MODEL].present) return cmd_fail("embed", "--model is required");
    if (f[TEXT].present + f[TOKENS].present + f[TFILE].present != 1)
        return cmd_fail("embed", "give one of --text, --tokens and --tokens-file");
    long threads = sysconf(_SC_NPROCESSORS_ONLN), batch = 0;
    if (threads < 1) threads = 1;
    if ((f[THREADS].present && cli_int("--threads", f[THREADS].value, 1, 256, &threads, &err)) ||
        (f[BATCH].present && cli_int("--batch", f[BATCH].value, 1, 1 << 20, &batch, &err)))
        return cmd_fail("embed", err.msg);
    ee_compute_set_threads((int)threads);
    if (f[KEY].present != f[PLAIN].present)
        return cmd_fail("embed", "--key and --plain-model go together (the key is bound to the "
                                 "plain model; its tokenizer makes the ids)");
    if (f[KEY].present && f[TFILE].present)
        return cmd_fail("embed", "--key takes --text or --tokens (one sentence)");

    int rc = 1;
    ee_gguf *pg = NULL; /* the plain model (key holder) */
    ee_vocab_cipher vc = {0};
    ee_vec_cipher ec = {0};
    int32_t *enc_ids = NULL, *plain_ids = NULL;
    float *enc_vec = NULL;
    ee_bert_model *m = NULL;
    sentences s = {0};
    float *out = NULL;
    json_t *o = NULL;
    double t0 = ee_now_ms();
    ee_gguf *g = ee_gguf_open(f[MODEL].value, &err);
    if (!g) goto done;
    ee_bert_load_opts lo = {.stored_weights = f[STORED].present};
    if (!(m = ee_bert_load(g, &lo, &err))) goto done;
    double load_ms = ee_now_ms() - t0;
    const int d = m->hp.n_embd;
    const bool encrypted = ee_model_is_encrypted(g);
    if (f[KEY].present) {
        if (!encrypted) {
            ee_err_set(&err, "--key: --model is not encrypted (give the file ee-model encrypt made)");
            goto done;
        }
        if (!(pg = ee_gguf_open(f[PLAIN].value, &err))) {
            ee_err_wrap(&err, "--plain-model");
            goto done;
        }
        if (ee_model_is_encrypted(pg)) {
            ee_err_set(&err, "--plain-model %s is itself encrypted", f[PLAIN].value);
            goto done;
        }
        ee_key k, sk;
        if (ee_key_load(&k, f[KEY].value, &err)) goto done;
        int krc = ee_scheme_key(&k, pg, ee_model_scheme(g), &sk, &err);
        ee_key_wipe(&k);
        if (krc == 0) krc = ee_model_check_key(g, &sk, &err);
        if (krc == 0) krc = ee_vocab_cipher_init(&vc, &sk, (uint32_t)m->hp.n_vocab, &err);
        if (krc == 0) krc = ee_vec_cipher_init(&ec, &sk, d, &err);
        ee_key_wipe(&sk);
        if (krc) goto done;
    } else if (encrypted && f[TEXT].present) {
        ee_err_set(&err, "--text: an encrypted model has no tokenizer; give --tokens (encrypted "
                         "ids), or --key and --plain-model to encrypt the text");
        goto done;
    }
    if (f[TEXT].present || f[TOKENS].present) {
        int32_t *ids = NULL;
        size_t n = 0;
        if (f[TEXT].present ? text_to_ids(pg ? pg : g, f[TEXT].value, &ids, &n, &err)
                            : cli_token_list("--tokens", f[TOKENS].value, m->hp.n_vocab, &ids,
                                             &n, &err))
            goto done;
        if (vc.n) { /* key holder: encrypt the ids */
            enc_ids = malloc(n * sizeof *enc_ids);
            if (!enc_ids || ee_vocab_encrypt(&vc, ids, enc_ids, n, &err)) {
                if (!enc_ids) ee_err_set(&err, "out of memory");
                free(ids);
                goto done;
            }
            plain_ids = ids; /* kept for the output; the model gets the encrypted ones */
            ids = malloc(n * sizeof *ids);
            if (!ids) {
                ee_err_set(&err, "out of memory");
                goto done;
            }
            memcpy(ids, enc_ids, n * sizeof *ids);
        }
        if (sentences_add(&s, ids, n, &err)) {
            free(ids);
            goto done;
        }
    } else if (read_tokens_file(f[TFILE].value, m->hp.n_vocab, &s, &err)) {
        goto done;
    }
    /* 64 sentences per call: batching's gain is there by then (docs/ENCODER.md)
     * and the scratch stays small (T x 1536 floats for the FFN). */
    if (batch == 0) batch = 64;
    if (batch > s.count) batch = s.count;
    out = malloc((size_t)s.count * d * sizeof(float));
    if (!out) {
        ee_err_set(&err, "out of memory");
        goto done;
    }
    ee_bert_embed_opts eo = {.raw = f[RAW].present};
    size_t n_tokens = 0;
    for (int i = 0; i < s.count; i++) n_tokens += ee_bert_kept(m, s.n[i]);
    t0 = ee_now_ms();
    for (int i = 0; i < s.count; i += (int)batch) {
        int k = s.count - i < batch ? s.count - i : (int)batch;
        if (ee_bert_embed_ex(m, (const int32_t *const *)s.ids + i, s.n + i, k, &eo,
                             out + (size_t)i * d, &err))
            goto done;
    }
    double ms = ee_now_ms() - t0;
    if (ec.dim) { /* key holder: decrypt the embedding */
        if (!(enc_vec = malloc((size_t)d * sizeof *enc_vec))) {
            ee_err_set(&err, "out of memory");
            goto done;
        }
        memcpy(enc_vec, out, (size_t)d * sizeof *enc_vec);
        ee_vec_decrypt(&ec, enc_vec, out);
    }
    double sps = ms > 0 ? s.count / (ms / 1000.0) : 0.0;
    bool normalized = m->hp.normalize && !f[RAW].present;

    if (f[JSON].present) {
        o = json_object();
        json_object_set_new(o, "model", json_string(f[MODEL].value));
        json_object_set_new(o, "n_embd", json_integer(d));
        if (!f[TFILE].present) {
            json_object_set_new(o, "embedding", vec_json(out, d));
            json_object_set_new(o, "n_tokens", json_integer((json_int_t)ee_bert_kept(m, s.n[0])));
            json_object_set_new(o, "n_input_tokens", json_integer((json_int_t)s.n[0]));
            json_t *ids = json_array();
            for (size_t i = 0; i < s.n[0]; i++)
                json_array_append_new(ids, json_integer(plain_ids ? plain_ids[i] : s.ids[0][i]));
            json_object_set_new(o, "tokens", ids);
            if (f[SHOWC].present && enc_vec) {
                json_object_set_new(o, "encrypted_embedding", vec_json(enc_vec, d));
                json_t *ei = json_array();
                for (size_t i = 0; i < s.n[0]; i++) json_array_append_new(ei, json_integer(enc_ids[i]));
                json_object_set_new(o, "encrypted_tokens", ei);
            }
            json_object_set_new(o, "encrypted_model", json_boolean(encrypted));
            json_object_set_new(o, "decrypted", json_boolean(enc_vec != NULL));
        } else {
            json_t *e = json_array(), *nt = json_array();
            for (int i = 0; i < s.count; i++) {
                json_array_append_new(e, vec_json(out + (size_t)i * d, d));
                json_array_append_new(nt, json_integer((json_int_t)ee_bert_kept(m, s.n[i])));
            }
            json_object_set_new(o, "embeddings", e);
            json_object_set_new(o, "n_tokens", nt);
            json_object_set_new(o, "sentences", json_integer(s.count));
            json_object_set_new(o, "batch", json_integer(batch));
        }
        json_object_set_new(o, "max_seq_length", json_integer(m->hp.max_seq));
        json_object_set_new(o, "pooling", json_string(pooling_name(m->hp.pooling)));
        json_object_set_new(o, "normalized", json_boolean(normalized));
        json_object_set_new(o, "threads", json_integer(threads));
        json_object_set_new(o, "load_ms", json_real(load_ms));
        json_object_set_new(o, "ms", json_real(ms));
        json_object_set_new(o, "sentences_per_s", json_real(sps));
        json_object_set_new(o, "kernels", json_string(ee_kernels_isa()));
        json_object_set_new(o, "blas_core", json_string(ee_compute_blas_core()));
        char *js = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(9));
        if (!js) {
            ee_err_set(&err, "cannot format the JSON output (non-finite value?)");
            goto done;
        }
        puts(js);
        free(js);
    } else {
        if (f[SHOWC].present && enc_vec) {
            fputs("encrypted ids:", stdout);
            for (size_t i = 0; i < s.n[0]; i++) printf("%s%d", i ? "," : " ", enc_ids[i]);
            fputs("\nencrypted embedding:", stdout);
            for (int e = 0; e < d; e++) printf(" %.9g", enc_vec[e]);
            fputs("\ndecrypted embedding:\n", stdout);
        }
        for (int i = 0; i < s.count; i++) {
            for (int e = 0; e < d; e++) printf("%s%.9g", e ? " " : "", out[(size_t)i * d + e]);
            putchar('\n');
        }
        fprintf(stderr, "[embed: %d sentence(s), %zu tokens, batch %ld, %.1f ms, %.1f "
                        "sentences/s, %ld threads]\n",
                s.count, n_tokens, batch, ms, sps, threads);
    }
    rc = 0;
done:
    if (rc) cmd_fail("embed", err.msg);
    json_decref(o);
    free(out);
    sentences_free(&s);
    ee_bert_free(m);
    ee_gguf_close(g);
    ee_gguf_close(pg);
    ee_vocab_cipher_free(&vc);
    ee_vec_cipher_free(&ec);
    free(enc_ids);
    free(plain_ids);
    free(enc_vec);
    return rc;
}
