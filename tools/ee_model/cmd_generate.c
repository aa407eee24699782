/* ee-model generate: run a model on a prompt.
 *
 * Three ways:
 *   plaintext   --model PLAIN (--prompt | --tokens)
 *   worker      --model ENC --tokens ENC_IDS: no key; stops on the file's
 *               encrypted stop ids; prints encrypted ids (what a worker does)
 *   client      --model ENC --key K --plain-model PLAIN (--prompt | --tokens):
 *               tokenize with PLAIN's tokenizer, encrypt the ids, run ENC
 *               blind, decrypt the output; --show-ciphertext prints what the
 *               worker saw and returned. */
#include "cli_args.h"
#include "cmd_common.h"
#include "cmds.h"
#include "ee_chat.h"
#include "ee_generate.h"
#include "ee_llama.h"
#include "ee_kernels.h"
#include "ee_clock.h"
#include "ee_compute.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *USAGE =
    "usage: ee-model generate --model M.gguf (--prompt TEXT | --tokens ID,ID,...)\n"
    "         [--chat] [--max-tokens N] [--temperature T] [--top-k K] [--top-p P]\n"
    "         [--seed S] [--threads N] [--ignore-eos] [--f32-weights] [--warmup] [--json]\n"
    "         [--key K.eekey --plain-model PLAIN.gguf [--show-ciphertext]]\n"
    "  Greedy when temperature is 0 (the default). --chat wraps the prompt in the\n"
    "  model's chat template. Weights stay in the file's blocks and are multiplied\n"
    "  in f32; --f32-weights dequantizes them to f32 copies first (more memory,\n"
    "  same results). --ignore-eos always generates --max-tokens tokens.\n"
    "  --warmup runs one untimed forward first (as llama-bench does).\n"
    "  Encrypted model M: without --key, --tokens are encrypted ids and the output\n"
    "  is encrypted ids (the worker's view). With --key and --plain-model, the\n"
    "  prompt is tokenized with PLAIN's tokenizer and encrypted, M runs blind, and\n"
    "  the output is decrypted; --show-ciphertext shows what the worker saw.\n";

typedef struct stream_state {
    const ee_tokenizer *tok;
    const ee_vocab_cipher *vc; /* decrypt before printing (client mode) */
} stream_state;

static int print_piece(void *user, int32_t token, int index) {
    (void)index;
    stream_state *st = user;
    if (st->vc) ee_vocab_decrypt(st->vc, &token, &token, 1, NULL);
    char buf[256];
    int n = ee_tokenizer_piece(st->tok, token, false, buf, sizeof buf);
    if (n > 0) fwrite(buf, 1, (size_t)n < sizeof buf ? (size_t)n : sizeof buf, stdout);
    fflush(stdout);
    return 0;
}

static json_t *ids_json(const int32_t *v, size_t n) {
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) json_array_append_new(a, json_integer(v[i]));
    return a;
}

static void print_ids(FILE *f, const char *label, const int32_t *v, size_t n) {
    fprintf(f, "%s", label);
    for (size_t i = 0; i < n; i++) fprintf(f, "%s%d", i ? "," : "", v[i]);
    fprintf(f, "\n");
}

int cmd_generate(int argc, char **argv) {
    enum { MODEL, PROMPT, TOKENS, CHAT, MAXT, TEMP, TOPK, TOPP, SEED, THREADS, JSON,
           IGNORE_EOS, F32W, WARMUP, KEY, PLAIN, SHOWCT, HELP, NF };
    cli_flag f[NF] = {
        [MODEL] = {"--model", true},      [PROMPT] = {"--prompt", true},
        [TOKENS] = {"--tokens", true},    [CHAT] = {"--chat", false},
        [MAXT] = {"--max-tokens", true},  [TEMP] = {"--temperature", true},
        [TOPK] = {"--top-k", true},       [TOPP] = {"--top-p", true},
        [SEED] = {"--seed", true},        [THREADS] = {"--threads", true},
        [JSON] = {"--json", false},       [IGNORE_EOS] = {"--ignore-eos", false},
        [F32W] = {"--f32-weights", false}, [WARMUP] = {"--warmup", false},
        [KEY] = {"--key", true},          [PLAIN] = {"--plain-model", true},
        [SHOWCT] = {"--show-ciphertext", false}, [HELP] = {"--help", false},
    };
    ee_err err = {{0}};
    if (cli_parse(argc, argv, f, NF, &err)) return cmd_fail("generate", err.msg);
    if (f[HELP].present) {
        fputs(USAGE, stdout);
        return 0;
    }
    if (!f[MODEL].present) return cmd_fail("generate", "--model is required");
    if (f[PROMPT].present == f[TOKENS].present)
        return cmd_fail("generate", "give exactly one of --prompt or --tokens");
    if (f[CHAT].present && !f[PROMPT].present)
        return cmd_fail("generate", "--chat needs --prompt");
    if (f[KEY].present != f[PLAIN].present)
        return cmd_fail("generate", "--key and --plain-model go together (the client needs the "
                                    "key and the plaintext tokenizer)");
    if (f[SHOWCT].present && !f[KEY].present)
        return cmd_fail("generate", "--show-ciphertext needs --key and --plain-model");

    long max_tokens = 128, top_k = 0, threads = sysconf(_SC_NPROCESSORS_ONLN);
    double temp = 0.0, top_p = 1.0;
    uint64_t seed = 0;
    if (threads < 1) threads = 1;
    if ((f[MAXT].present && cli_int("--max-tokens", f[MAXT].value, 1, 1 << 20, &max_tokens, &err)) ||
        (f[TEMP].present && cli_float("--temperature", f[TEMP].value, 0.0, 100.0, &temp, &err)) ||
        (f[TOPK].present && cli_int("--top-k", f[TOPK].value, 0, 1 << 24, &top_k, &err)) ||
        (f[TOPP].present && cli_float("--top-p", f[TOPP].value, 1e-6, 1.0, &top_p, &err)) ||
        (f[SEED].present && cli_u64("--seed", f[SEED].value, &seed, &err)) ||
        (f[THREADS].present && cli_int("--threads", f[THREADS].value, 1, 256, &threads, &err)))
        return cmd_fail("generate", err.msg);
    ee_compute_set_threads((int)threads);

    int rc = 1;
    const bool client = f[KEY].present;
    cmd_model cm = {0}, pm = {0};
    ee_llama_model *m = NULL;
    ee_llama_ctx *ctx = NULL;
    int32_t *prompt = NULL, *enc_prompt = NULL, *out_plain = NULL;
    size_t n_prompt = 0;
    ee_gen_result res = {0};
    ee_vocab_cipher vc = {0};
    char key_id[EE_KEY_ID_HEX] = "";
    double t_load = ee_now_ms();
    if (cmd_model_open(&cm, f[MODEL].value, false, &err)) return cmd_fail("generate", err.msg);
    const bool encrypted = ee_model_is_encrypted(cm.gguf);
    const ee_tokenizer *tok = encrypted ? NULL : cm.tok; /* plaintext text side */
    if (client) {
        if (!encrypted) {
            ee_err_set(&err, "%s is not an encrypted model; --key is for running an encrypted "
                             "model from the client side", f[MODEL].value);
            goto done;
        }
        if (cmd_client_open(&cm, f[PLAIN].value, f[KEY].value, &pm, &vc, key_id, &err))
            goto done;
        tok = pm.tok;
    } else if (encrypted && f[PROMPT].present) {
        ee_err_set(&err, "%s is encrypted: give encrypted --tokens (worker view), or --key and "
                         "--plain-model to encrypt a --prompt (client view)", f[MODEL].value);
        goto done;
    } else if (!encrypted && !cm.tok && f[PROMPT].present) {
        ee_err_set(&err, "%s: %s", f[MODEL].value, cm.tok_err.msg);
        goto done;
    }

    ee_llama_load_opts lo = {.f32_weights = f[F32W].present};
    m = ee_llama_load(cm.gguf, &lo, &err);
    if (!m) {
        ee_err_wrap(&err, "%s", f[MODEL].value);
        goto done;
    }
    if (client && ee_tokenizer_n_vocab(tok) != m->hp.n_vocab) {
        ee_err_set(&err, "--plain-model has %d tokens but the encrypted model has %d",
                   ee_tokenizer_n_vocab(tok), m->hp.n_vocab);
        goto done;
    }
    t_load = ee_now_ms() - t_load;
    if (f[PROMPT].present) {
        if (ee_prompt_encode(tok, f[PROMPT].value, f[CHAT].present, &prompt, &n_prompt, &err))
            goto done;
    } else if (cli_token_list("--tokens", f[TOKENS].value, m->hp.n_vocab, &prompt, &n_prompt,
                              &err)) {
        goto done;
    }
    if (n_prompt == 0) {
        ee_err_set(&err, "the prompt encodes to no tokens");
        goto done;
    }
    /* The ids the model runs on: encrypted in client mode. */
    const int32_t *run_ids = prompt;
    if (client) {
        enc_prompt = malloc(n_prompt * sizeof *enc_prompt);
        if (!enc_prompt || ee_vocab_encrypt(&vc, prompt, enc_prompt, n_prompt, &err)) goto done;
        run_ids = enc_prompt;
    }
    int32_t stop[16];
    int n_stop = 0;
    if (encrypted) {
        n_stop = ee_model_stop_ids(cm.gguf, stop, 16, &err);
        if (n_stop < 0) goto done;
    } else if (cm.tok) {
        n_stop = ee_tokenizer_eog_ids(cm.tok, stop, 16);
    }
    if (n_stop > 16) n_stop = 16;
    ee_gen_params gp = {
        .max_tokens = (int)max_tokens,
        .sample = {.temperature = (float)temp, .top_k = (int)top_k, .top_p = (float)top_p,
                   .seed = seed},
        .stop_ids = stop,
        .n_stop = n_stop,
        .ignore_stop = f[IGNORE_EOS].present,
    };
    ctx = ee_llama_ctx_new(m, &err);
    if (!ctx) goto done;
    if (f[WARMUP].present) {
        int wn = n_prompt < EE_PREFILL_CHUNK ? (int)n_prompt : EE_PREFILL_CHUNK;
        if (ee_llama_warmup(ctx, wn, &err)) goto done;
    }
    if (f[SHOWCT].present && !f[JSON].present)
        print_ids(stderr, "[worker receives] ", run_ids, n_prompt);
    stream_state st = {.tok = tok, .vc = client ? &vc : NULL};
    bool stream = !f[JSON].present && tok;
    if (ee_generate(m, ctx, run_ids, (int)n_prompt, &gp, stream ? print_piece : NULL, &st, &res,
                    &err))
        goto done;
    /* Output ids in plaintext (client) or as produced (plain / worker). */
    const int32_t *shown = res.tokens;
    if (client) {
        out_plain = malloc(((size_t)res.n_tokens + 1) * sizeof *out_plain);
        if (!out_plain ||
            ee_vocab_decrypt(&vc, res.tokens, out_plain, (size_t)res.n_tokens, &err))
            goto done;
        shown = out_plain;
    }

    double pf_tps = res.prefill_ms > 0 ? n_prompt / (res.prefill_ms / 1e3) : 0;
    double dc_tps = res.decode_ms > 0 ? res.n_decode / (res.decode_ms / 1e3) : 0;
    if (f[JSON].present) {
        json_t *o = json_object();
        json_object_set_new(o, "prompt_tokens", ids_json(prompt, n_prompt));
        json_object_set_new(o, "tokens", ids_json(shown, (size_t)res.n_tokens));
        if (tok) {
            char *text = NULL;
            size_t tl = 0;
            /* Byte tokens can split characters: lossy keeps JSON valid. */
            if (ee_tokenizer_decode_lossy(tok, shown, (size_t)res.n_tokens, false, &text, &tl,
                                          &err) == 0) {
                json_object_set_new(o, "text", json_stringn(text, tl));
                free(text);
            }
        } else {
            json_object_set_new(o, "text", json_null());
        }
        if (client) {
            json_t *ct = json_object();
            json_object_set_new(ct, "prompt_tokens", ids_json(enc_prompt, n_prompt));
            json_object_set_new(ct, "tokens", ids_json(res.tokens, (size_t)res.n_tokens));
            json_object_set_new(ct, "key_id", json_string(key_id));
            json_object_set_new(o, "ciphertext", ct);
        }
        json_object_set_new(o, "encrypted_model", json_boolean(encrypted));
        json_object_set_new(o, "finish_reason", json_string(ee_finish_name(res.finish)));
        json_t *tm = json_object();
        json_object_set_new(tm, "load_ms", json_real(t_load));
        json_object_set_new(tm, "prefill_ms", json_real(res.prefill_ms));
        json_object_set_new(tm, "decode_ms", json_real(res.decode_ms));
        json_object_set_new(tm, "prefill_tok_s", json_real(pf_tps));
        json_object_set_new(tm, "decode_tok_s", json_real(dc_tps));
        json_object_set_new(tm, "n_decode", json_integer(res.n_decode));
        json_object_set_new(o, "timings", tm);
        json_object_set_new(o, "threads", json_integer(threads));
        json_object_set_new(o, "blas_core", json_string(ee_compute_blas_core()));
        json_object_set_new(o, "isa", json_string(ee_kernels_isa()));
        json_object_set_new(o, "weights", json_string(f[F32W].present ? "f32" : "stored"));
        char *s = json_dumps(o, JSON_COMPACT);
        puts(s);
        free(s);
        json_decref(o);
    } else {
        if (!tok) print_ids(stdout, "", res.tokens, (size_t)res.n_tokens);
        else printf("\n");
        fflush(stdout); /* the stats line on stderr must follow the text */
        if (f[SHOWCT].present) print_ids(stderr, "[worker returns]  ", res.tokens, (size_t)res.n_tokens);
        fprintf(stderr,
                "[%zu prompt tokens, %d generated, finish=%s; prefill %.1f ms (%.1f tok/s), "
                "decode %.1f ms (%.1f tok/s), %ld threads, kernels %s, BLAS %s]\n",
                n_prompt, res.n_tokens, ee_finish_name(res.finish), res.prefill_ms, pf_tps,
                res.decode_ms, dc_tps, threads, ee_kernels_isa(), ee_compute_blas_core());
    }
    rc = 0;
done:
    if (rc) cmd_fail("generate", err.msg);
    ee_gen_result_free(&res);
    free(prompt);
    free(enc_prompt);
    free(out_plain);
    ee_vocab_cipher_free(&vc);
    ee_llama_ctx_free(ctx);
    ee_llama_free(m);
    cmd_model_close(&pm);
    cmd_model_close(&cm);
    return rc;
}
