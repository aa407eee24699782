/* ee-model generate: run the model on a prompt (text or ids). */
#include "cli_args.h"
#include "cmd_common.h"
#include "cmds.h"
#include "ee_generate.h"
#include "ee_llama.h"
#include "ee_platform.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *USAGE =
    "usage: ee-model generate --model M.gguf (--prompt TEXT | --tokens ID,ID,...)\n"
    "         [--chat] [--max-tokens N] [--temperature T] [--top-k K] [--top-p P]\n"
    "         [--seed S] [--threads N] [--ignore-eos] [--f32-weights] [--warmup] [--json]\n"
    "  Greedy when temperature is 0 (the default). --chat wraps the prompt in the\n"
    "  model's chat template. Weights stay in the file's blocks and are multiplied\n"
    "  in f32; --f32-weights dequantizes them to f32 copies first (more memory,\n"
    "  same results). --ignore-eos always generates --max-tokens tokens.\n"
    "  --warmup runs one untimed forward first (as llama-bench does).\n";

typedef struct stream_state {
    const ee_tokenizer *tok;
} stream_state;

static int print_piece(void *user, int32_t token, int index) {
    (void)index;
    stream_state *st = user;
    char buf[256];
    int n = ee_tokenizer_piece(st->tok, token, false, buf, sizeof buf);
    if (n > 0) fwrite(buf, 1, (size_t)n < sizeof buf ? (size_t)n : sizeof buf, stdout);
    fflush(stdout);
    return 0;
}

int cmd_generate(int argc, char **argv) {
    enum { MODEL, PROMPT, TOKENS, CHAT, MAXT, TEMP, TOPK, TOPP, SEED, THREADS, JSON,
           IGNORE_EOS, F32W, WARMUP, HELP, NF };
    cli_flag f[NF] = {
        [MODEL] = {"--model", true},      [PROMPT] = {"--prompt", true},
        [TOKENS] = {"--tokens", true},    [CHAT] = {"--chat", false},
        [MAXT] = {"--max-tokens", true},  [TEMP] = {"--temperature", true},
        [TOPK] = {"--top-k", true},       [TOPP] = {"--top-p", true},
        [SEED] = {"--seed", true},        [THREADS] = {"--threads", true},
        [JSON] = {"--json", false},       [IGNORE_EOS] = {"--ignore-eos", false},
        [F32W] = {"--f32-weights", false}, [WARMUP] = {"--warmup", false}, [HELP] = {"--help", false},
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
    ee_platform_set_threads((int)threads);

    int rc = 1;
    cmd_model cm;
    ee_llama_model *m = NULL;
    ee_llama_ctx *ctx = NULL;
    int32_t *prompt = NULL;
    size_t n_prompt = 0;
    ee_gen_result res = {0};
    double t_load = ee_now_ms();
    if (cmd_model_open(&cm, f[MODEL].value, f[PROMPT].present, &err)) {
        return cmd_fail("generate", err.msg);
    }
    ee_llama_load_opts lo = {.f32_weights = f[F32W].present};
    m = ee_llama_load(cm.gguf, &lo, &err);
    if (!m) {
        ee_err_wrap(&err, "%s", f[MODEL].value);
        goto done;
    }
    t_load = ee_now_ms() - t_load;
    if (f[PROMPT].present) {
        if (cmd_encode_prompt(cm.tok, f[PROMPT].value, f[CHAT].present, &prompt, &n_prompt, &err))
            goto done;
    } else if (cli_token_list("--tokens", f[TOKENS].value, m->hp.n_vocab, &prompt, &n_prompt,
                              &err)) {
        goto done;
    }
    if (n_prompt == 0) {
        ee_err_set(&err, "the prompt encodes to no tokens");
        goto done;
    }
    int32_t stop[16];
    int n_stop = cm.tok ? ee_tokenizer_eog_ids(cm.tok, stop, 16) : 0;
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
    stream_state st = {.tok = cm.tok};
    bool stream = !f[JSON].present && cm.tok;
    if (ee_generate(m, ctx, prompt, (int)n_prompt, &gp, stream ? print_piece : NULL, &st, &res,
                    &err))
        goto done;

    double pf_tps = res.prefill_ms > 0 ? n_prompt / (res.prefill_ms / 1e3) : 0;
    double dc_tps = res.decode_ms > 0 ? res.n_decode / (res.decode_ms / 1e3) : 0;
    if (f[JSON].present) {
        json_t *o = json_object(), *pt = json_array(), *gt = json_array();
        for (size_t i = 0; i < n_prompt; i++) json_array_append_new(pt, json_integer(prompt[i]));
        for (int i = 0; i < res.n_tokens; i++) json_array_append_new(gt, json_integer(res.tokens[i]));
        json_object_set_new(o, "prompt_tokens", pt);
        json_object_set_new(o, "tokens", gt);
        if (cm.tok) {
            char *text = NULL;
            size_t tl = 0;
            /* Byte tokens can split characters: lossy keeps JSON valid. */
            if (ee_tokenizer_decode_lossy(cm.tok, res.tokens, (size_t)res.n_tokens, false, &text,
                                          &tl, &err) == 0) {
                json_object_set_new(o, "text", json_stringn(text, tl));
                free(text);
            }
        } else {
            json_object_set_new(o, "text", json_null());
        }
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
        json_object_set_new(o, "blas_core", json_string(ee_platform_blas_core()));
        json_object_set_new(o, "weights", json_string(f[F32W].present ? "f32" : "stored"));
        char *s = json_dumps(o, JSON_COMPACT);
        puts(s);
        free(s);
        json_decref(o);
    } else {
        if (!cm.tok) {
            for (int i = 0; i < res.n_tokens; i++) printf("%s%d", i ? "," : "", res.tokens[i]);
        }
        printf("\n");
        fflush(stdout); /* the stats line on stderr must follow the text */
        fprintf(stderr,
                "[%zu prompt tokens, %d generated, finish=%s; prefill %.1f ms (%.1f tok/s), "
                "decode %.1f ms (%.1f tok/s), %ld threads, BLAS %s]\n",
                n_prompt, res.n_tokens, ee_finish_name(res.finish), res.prefill_ms, pf_tps,
                res.decode_ms, dc_tps, threads, ee_platform_blas_core());
    }
    rc = 0;
done:
    if (rc) cmd_fail("generate", err.msg);
    ee_gen_result_free(&res);
    free(prompt);
    ee_llama_ctx_free(ctx);
    ee_llama_free(m);
    cmd_model_close(&cm);
    return rc;
}
