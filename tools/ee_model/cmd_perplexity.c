/* ee-model perplexity: a model's quality on a text, by llama.cpp's
 * `perplexity --kl-divergence` method, against a reference model on the
 * same tokens (ee_quality.h).
 *
 * The text is tokenized once (no BOS: SmolLM2 does not add one) and cut
 * into chunks of --ctx tokens; each chunk runs from an empty cache, and the
 * positions of its second half are scored (the first half is context), as
 * llama.cpp does. An encrypted --model needs --key and --plain-model: the
 * chunk's ids are encrypted before the model runs and its logit columns
 * are read through the same permutation, so the comparison is with the
 * plaintext reference token by token. This is the key holder's check of
 * an encrypted file (e.g. one quantized with `encrypt --type q4_1`); a
 * worker cannot run it. */
#include "cli_args.h"
#include "cmd_common.h"
#include "cmds.h"
#include "ee_buf.h"
#include "ee_llama.h"
#include "ee_clock.h"
#include "ee_compute.h"
#include "ee_quality.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *USAGE =
    "usage: ee-model perplexity --model M.gguf --text-file F [--ref REF.gguf]\n"
    "         [--key K.eekey --plain-model PLAIN.gguf] [--ctx N] [--chunks N]\n"
    "         [--threads N] [--tokens-out FILE] [--json]\n"
    "  Perplexity of M on the text in F and, with --ref, llama.cpp's\n"
    "  --kl-divergence statistics of M against REF on the same tokens: mean\n"
    "  KL(REF || M) with its standard error, median/99th/max KLD, how often the\n"
    "  two top tokens agree, ln(PPL(M)/PPL(REF)) and the mean change of the true\n"
    "  token's probability. F is cut into chunks of --ctx tokens (default 512);\n"
    "  the second half of each chunk is scored. --chunks caps how many (default:\n"
    "  all). Encrypted M: give --key and --plain-model; ids are encrypted and the\n"
    "  logits read back through the key (the key holder's check of a file).\n"
    "  --tokens-out writes the scored chunks' token ids (JSON) for an external\n"
    "  evaluator to run on the same tokens.\n";

typedef struct runner {
    ee_llama_model *m;
    ee_llama_ctx *ctx;
    ee_kv_cache *kv;
    float *logits; /* [ctx][n_vocab] */
} runner;

static int runner_open(runner *r, const ee_gguf *g, const char *path, int n_ctx, ee_err *err) {
    memset(r, 0, sizeof *r);
    r->m = ee_llama_load(g, NULL, err);
    if (!r->m) return ee_err_wrap(err, "%s", path);
    r->ctx = ee_llama_ctx_new(r->m, err);
    if (!r->ctx) return -1;
    r->kv = ee_kv_cache_new(r->m, n_ctx, err);
    if (!r->kv) return -1;
    r->logits = malloc((size_t)n_ctx * r->m->hp.n_vocab * sizeof(float));
    if (!r->logits) return ee_err_set(err, "out of memory for %d x %d logits", n_ctx, r->m->hp.n_vocab);
    return 0;
}

static void runner_close(runner *r) {
    free(r->logits);
    if (r->kv) ee_kv_cache_free(r->kv);
    if (r->ctx) ee_llama_ctx_free(r->ctx);
    if (r->m) ee_llama_free(r->m);
    memset(r, 0, sizeof *r);
}

/* All logits of one chunk from an empty cache. */
static int runner_chunk(runner *r, const int32_t *ids, int n, ee_err *err) {
    ee_kv_cache_truncate(r->kv, 0);
    ee_llama_seq s = {.tokens = ids, .n_tokens = n, .cache = r->kv, .logits = r->logits,
                      .all_logits = true};
    return ee_llama_forward(r->ctx, &s, 1, err);
}

static char *read_text(const char *path, size_t *len, ee_err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        ee_err_set(err, "--text-file %s: cannot open", path);
        return NULL;
    }
    char what[64 + 16];
    snprintf(what, sizeof what, "--text-file %.64s", path);
    ee_buf b = {0};
    int rc = ee_buf_read_file(&b, f, 0, what, err);
    fclose(f);
    if (rc) {
        ee_buf_free(&b);
        return NULL;
    }
    return ee_buf_detach(&b, len);
}

static int write_tokens(const char *path, const int32_t *ids, int n_chunks, int n_ctx,
                        ee_err *err) {
    json_t *a = json_array();
    for (int c = 0; c < n_chunks; c++) {
        json_t *row = json_array();
        for (int j = 0; j < n_ctx; j++)
            json_array_append_new(row, json_integer(ids[(size_t)c * n_ctx + j]));
        json_array_append_new(a, row);
    }
    json_t *o = json_pack("{s:i, s:o}", "ctx", n_ctx, "chunks", a);
    /* Write beside, then rename: never a half-written file. */
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int rc = json_dump_file(o, tmp, JSON_COMPACT);
    json_decref(o);
    if (rc || rename(tmp, path)) {
        unlink(tmp);
        return ee_err_set(err, "--tokens-out %s: cannot write", path);
    }
    return 0;
}

int cmd_perplexity(int argc, char **argv) {
    enum { MODEL, REF, TEXT, KEY, PLAIN, CTX, CHUNKS, THREADS, TOKOUT, JSON, HELP, NF };
    cli_flag f[NF] = {
        [MODEL] = {"--model", true},        [REF] = {"--ref", true},
        [TEXT] = {"--text-file", true},     [KEY] = {"--key", true},
        [PLAIN] = {"--plain-model", true},  [CTX] = {"--ctx", true},
        [CHUNKS] = {"--chunks", true},      [THREADS] = {"--threads", true},
        [TOKOUT] = {"--tokens-out", true},  [JSON] = {"--json", false},
        [HELP] = {"--help", false},
    };
    ee_err err = {{0}};
    if (cli_parse(argc, argv, f, NF, &err)) return cmd_fail("perplexity", err.msg);
    if (f[HELP].present) {
        fputs(USAGE, stdout);
        return 0;
    }
    if (!f[MODEL].present || !f[TEXT].present)
        return cmd_fail("perplexity", "--model and --text-file are required");
    if (f[KEY].present != f[PLAIN].present)
        return cmd_fail("perplexity", "--key and --plain-model go together");
    long n_ctx = 512, max_chunks = 1 << 20, threads = sysconf(_SC_NPROCESSORS_ONLN);
    if (threads < 1) threads = 1;
    if ((f[CTX].present && cli_int("--ctx", f[CTX].value, 16, 8192, &n_ctx, &err)) ||
        (f[CHUNKS].present && cli_int("--chunks", f[CHUNKS].value, 1, 1 << 20, &max_chunks, &err)) ||
        (f[THREADS].present && cli_int("--threads", f[THREADS].value, 1, 256, &threads, &err)))
        return cmd_fail("perplexity", err.msg);
    ee_compute_set_threads((int)threads);

    int rc = 1;
    cmd_model cm = {0}, rm = {0}, pm = {0};
    runner run = {0}, ref = {0};
    ee_vocab_cipher vc = {0};
    ee_quality q;
    ee_quality_init(&q);
    char *text = NULL;
    int32_t *ids = NULL, *enc = NULL;
    size_t n_ids = 0;
    double t0 = ee_now_ms();

    if (cmd_model_open(&cm, f[MODEL].value, false, &err)) return cmd_fail("perplexity", err.msg);
    const bool encrypted = ee_model_is_encrypted(cm.gguf);
    const ee_tokenizer *tok = cm.tok;
    if (encrypted != f[KEY].present) {
        ee_err_set(&err, encrypted ? "%s is encrypted: give --key and --plain-model (the key "
                                     "holder's check)"
                                   : "%s is not encrypted; --key is for encrypted models",
                   f[MODEL].value);
        goto done;
    }
    if (encrypted) {
        if (cmd_client_open(&cm, f[PLAIN].value, f[KEY].value, &pm, &vc, NULL, &err))
            goto done;
        tok = pm.tok;
    } else if (!tok) {
        ee_err_set(&err, "%s: %s", f[MODEL].value, cm.tok_err.msg);
        goto done;
    }
    if (f[REF].present) {
        if (cmd_model_open(&rm, f[REF].value, false, &err)) goto done;
        if (ee_model_is_encrypted(rm.gguf)) {
            ee_err_set(&err, "--ref %s is encrypted; the reference is a plaintext model",
                       f[REF].value);
            goto done;
        }
    }
    size_t len = 0;
    if (!(text = read_text(f[TEXT].value, &len, &err))) goto done;
    if (ee_tokenizer_encode(tok, text, len, false, false, &ids, &n_ids, &err)) goto done;
    int n_chunks = (int)(n_ids / (size_t)n_ctx);
    if (n_chunks > max_chunks) n_chunks = (int)max_chunks;
    if (n_chunks < 1) {
        ee_err_set(&err, "--text-file %s has %zu tokens, fewer than one chunk of --ctx %ld",
                   f[TEXT].value, n_ids, n_ctx);
        goto done;
    }
    if (f[TOKOUT].present &&
        write_tokens(f[TOKOUT].value, ids, n_chunks, (int)n_ctx, &err))
        goto done;
    if (runner_open(&run, cm.gguf, f[MODEL].value, (int)n_ctx, &err)) goto done;
    const int V = run.m->hp.n_vocab;
    if (V != ee_tokenizer_n_vocab(tok)) {
        ee_err_set(&err, "the tokenizer has %d tokens but %s has %d", ee_tokenizer_n_vocab(tok),
                   f[MODEL].value, V);
        goto done;
    }
    if (f[REF].present) {
        if (runner_open(&ref, rm.gguf, f[REF].value, (int)n_ctx, &err)) goto done;
        if (ref.m->hp.n_vocab != V) {
            ee_err_set(&err, "--ref has %d tokens, the model %d", ref.m->hp.n_vocab, V);
            goto done;
        }
    }
    if (!(enc = malloc((size_t)n_ctx * sizeof *enc))) {
        ee_err_set(&err, "out of memory");
        goto done;
    }
    double t_load = ee_now_ms() - t0, t_run = ee_now_ms();
    const int first = (int)n_ctx / 2;
    int64_t n_scored = 0;
    for (int c = 0; c < n_chunks; c++) {
        const int32_t *chunk = ids + (size_t)c * n_ctx;
        const int32_t *run_ids = chunk;
        if (encrypted) {
            if (ee_vocab_encrypt(&vc, chunk, enc, (size_t)n_ctx, &err)) goto done;
            run_ids = enc;
        }
        if (runner_chunk(&run, run_ids, (int)n_ctx, &err) ||
            (f[REF].present && runner_chunk(&ref, chunk, (int)n_ctx, &err)))
            goto done;
        const uint32_t *map = encrypted ? vc.fwd : NULL;
        for (int j = first; j < n_ctx - 1; j++) {
            const float *lt = run.logits + (size_t)j * V;
            const int32_t target = chunk[j + 1];
            if (f[REF].present) {
                if (ee_quality_add(&q, ref.logits + (size_t)j * V, lt, map, V, target, &err)) {
                    ee_err_wrap(&err, "chunk %d position %d", c, j);
                    goto done;
                }
            } else {
                /* Perplexity alone: the reference is the model itself. */
                if (ee_quality_add(&q, lt, lt, NULL, V, map ? (int32_t)map[target] : target,
                                   &err))
                    goto done;
            }
            n_scored++;
        }
        if (!f[JSON].present && isatty(STDERR_FILENO)) {
            ee_quality_summary s;
            ee_quality_summarize(&q, &s);
            fprintf(stderr, "\rchunk %d/%d  ppl %.4f", c + 1, n_chunks, s.ppl);
        }
    }
    t_run = ee_now_ms() - t_run;
    ee_quality_summary s;
    ee_quality_summarize(&q, &s);
    if (!f[JSON].present && isatty(STDERR_FILENO)) fputc('\n', stderr);
    if (f[JSON].present) {
        json_t *o = json_pack("{s:s, s:i, s:i, s:I, s:f, s:f}", "model", f[MODEL].value, "ctx",
                              (int)n_ctx, "chunks", n_chunks, "scored", (json_int_t)n_scored,
                              "ppl", s.ppl, "seconds", (t_load + t_run) / 1000.0);
        if (f[REF].present) {
            json_object_set_new(o, "ref", json_string(f[REF].value));
            json_object_set_new(o, "ppl_ref", json_real(s.ppl_ref));
            json_object_set_new(o, "ln_ppl_ratio", json_real(s.ln_ppl_ratio));
            json_object_set_new(o, "kld_mean", json_real(s.kld_mean));
            json_object_set_new(o, "kld_stderr", json_real(s.kld_stderr));
            json_object_set_new(o, "kld_median", json_real(s.kld_median));
            json_object_set_new(o, "kld_p99", json_real(s.kld_p99));
            json_object_set_new(o, "kld_max", json_real(s.kld_max));
            json_object_set_new(o, "same_top", json_real(s.same_top));
            json_object_set_new(o, "delta_p", json_real(s.delta_p));
        }
        char *out = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        if (!out) {
            ee_err_set(&err, "out of memory");
            goto done;
        }
        puts(out);
        free(out);
    } else {
        printf("%s: %d chunks of %ld tokens, %lld scored, %.1f s\n", f[MODEL].value, n_chunks,
               n_ctx, (long long)n_scored, (t_load + t_run) / 1000.0);
        printf("  perplexity      %.4f\n", s.ppl);
        if (f[REF].present) {
            printf("  ref perplexity  %.4f   ln(PPL/PPL_ref) %+.5f\n", s.ppl_ref, s.ln_ppl_ratio);
            printf("  KLD mean        %.6f +/- %.6f  (median %.6f, 99%% %.6f, max %.6f)\n",
                   s.kld_mean, s.kld_stderr, s.kld_median, s.kld_p99, s.kld_max);
            printf("  same top token  %.2f%%\n", 100.0 * s.same_top);
            printf("  mean delta p    %+.4f%%\n", 100.0 * s.delta_p);
        }
    }
    rc = 0;
done:
    if (rc) cmd_fail("perplexity", err.msg);
    ee_quality_free(&q);
    ee_vocab_cipher_free(&vc);
    runner_close(&run);
    runner_close(&ref);
    free(ids);
    free(enc);
    free(text);
    cmd_model_close(&cm);
    cmd_model_close(&rm);
    cmd_model_close(&pm);
    return rc;
}
