/* bench-batch: the worker's engine path without Kafka. For one model and
 * thread count it measures, in one process:
 *   generate   ee_generate on one prompt (what `ee-model generate` runs)
 *   batch 1    the same job through ee_batch (what the worker runs)
 *   batch N    N jobs started together through ee_batch (--jobs)
 * Each line: generated tokens per second over the whole run (prefill
 * included) and decode-only tokens per second. Prompts are distinct
 * (token ids offset per job) and greedy with stops ignored, so every job
 * generates exactly --tokens tokens.
 *
 *   bench-batch --model M.gguf [--threads 2] [--jobs 8] [--prompt-len 42]
 *               [--tokens 64] [--reps 3] */
#include "ee_batch.h"
#include "ee_generate.h"
#include "ee_gguf.h"
#include "ee_kernels.h"
#include "ee_llama.h"
#include "ee_clock.h"
#include "ee_compute.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct done_state {
    int done;
    double decode_ms_sum;
    int n_decode_sum;
} done_state;

static done_state g_done;

static void on_done(void *job, int rc, ee_gen_result *res, const ee_err *err) {
    (void)job;
    if (rc != 0) fprintf(stderr, "bench-batch: job failed: %s\n", err ? err->msg : "?");
    g_done.done++;
    g_done.decode_ms_sum += res->decode_ms;
    g_done.n_decode_sum += res->n_decode;
    ee_gen_result_free(res);
}

static void make_prompt(int32_t *p, int n, int job, int n_vocab) {
    for (int i = 0; i < n; i++) p[i] = (int32_t)((1000 + 37 * i + 7919 * job) % n_vocab);
}

int main(int argc, char **argv) {
    const char *model = NULL;
    int threads = 2, jobs = 8, plen = 42, tokens = 64, reps = 3;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--model")) model = argv[i + 1];
        else if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--jobs")) jobs = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--prompt-len")) plen = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--tokens")) tokens = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--reps")) reps = atoi(argv[i + 1]);
        else {
            fprintf(stderr, "bench-batch: unknown flag %s\n", argv[i]);
            return 2;
        }
    }
    if (!model || threads < 1 || jobs < 1 || jobs > EE_BATCH_MAX_SEQS || plen < 1 || tokens < 2 ||
        reps < 1) {
        fprintf(stderr, "usage: bench-batch --model M.gguf [--threads N] [--jobs N] "
                        "[--prompt-len N] [--tokens N] [--reps N]\n");
        return 2;
    }
    ee_compute_init(argc, argv);
    ee_compute_set_threads(threads);
    ee_err err = {{0}};
    if (ee_kernels_init(&err)) {
        fprintf(stderr, "bench-batch: %s\n", err.msg);
        return 2;
    }
    ee_gguf *g = ee_gguf_open(model, &err);
    ee_llama_model *m = g ? ee_llama_load(g, NULL, &err) : NULL;
    ee_llama_ctx *ctx = m ? ee_llama_ctx_new(m, &err) : NULL;
    if (!ctx || ee_llama_warmup(ctx, 64, &err)) {
        fprintf(stderr, "bench-batch: %s\n", err.msg);
        return 1;
    }
    const int V = m->hp.n_vocab;
    int32_t *prompt = malloc(sizeof(int32_t) * plen);
    ee_gen_params gp = {.max_tokens = tokens, .ignore_stop = true, .sample = {.top_p = 1.0f}};
    printf("model %s, %d threads, prompt %d tokens, %d generated per job, kernels %s\n", model,
           threads, plen, tokens, ee_kernels_isa());
    printf("%-10s %6s %12s %12s %10s\n", "path", "jobs", "gen tok/s", "decode tok/s", "wall ms");
    for (int r = 0; r < reps; r++) {
        /* generate */
        make_prompt(prompt, plen, 0, V);
        ee_gen_result res = {0};
        double t0 = ee_now_ms();
        if (ee_generate(m, ctx, prompt, plen, &gp, NULL, NULL, &res, &err)) {
            fprintf(stderr, "bench-batch: %s\n", err.msg);
            return 1;
        }
        double wall = ee_now_ms() - t0;
        printf("%-10s %6d %12.1f %12.1f %10.1f\n", "generate", 1, res.n_tokens * 1e3 / wall,
               res.n_decode * 1e3 / res.decode_ms, wall);
        ee_gen_result_free(&res);
        /* batch 1 and batch N */
        int sizes[2] = {1, jobs};
        for (int k = 0; k < (jobs > 1 ? 2 : 1); k++) {
            int n = sizes[k];
            ee_batch_callbacks cb = {.on_done = on_done};
            ee_batch *b = ee_batch_new(m, ctx, n, &cb, &err);
            if (!b) {
                fprintf(stderr, "bench-batch: %s\n", err.msg);
                return 1;
            }
            memset(&g_done, 0, sizeof g_done);
            t0 = ee_now_ms();
            for (int j = 0; j < n; j++) {
                make_prompt(prompt, plen, j, V);
                if (ee_batch_add(b, prompt, plen, &gp, NULL, &err)) {
                    fprintf(stderr, "bench-batch: %s\n", err.msg);
                    return 1;
                }
            }
            while (ee_batch_active(b) > 0)
                if (ee_batch_step(b, &err) < 0) {
                    fprintf(stderr, "bench-batch: %s\n", err.msg);
                    return 1;
                }
            wall = ee_now_ms() - t0;
            printf("%-10s %6d %12.1f %12.1f %10.1f\n", "batch", n, n * tokens * 1e3 / wall,
                   g_done.n_decode_sum * 1e3 / (g_done.decode_ms_sum / n), wall);
            ee_batch_free(b);
        }
    }
    free(prompt);
    ee_llama_ctx_free(ctx);
    ee_llama_free(m);
    ee_gguf_close(g);
    return 0;
}
