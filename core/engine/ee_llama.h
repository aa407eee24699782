/* ee_llama: the Llama decoder (SmolLM2, Llama 2/3 family) over GGUF weights.
 *
 * The forward pass takes a batch of independent sequences, each with its own
 * KV cache and position, and runs every token of every sequence through the
 * matrix products together (one sgemm per weight per layer), then attention
 * per sequence against its own cache. Prefill (many tokens, one sequence),
 * decode (one token, one sequence) and continuous batching (one or more
 * tokens for each of many sequences) are the same call.
 *
 * Weights stay in their stored type by default; every product accumulates
 * in f32 against f32 activations, so the engine computes what an f32
 * reference computes on the dequantized weights (see ee_kernels.h). */
#ifndef EE_LLAMA_H
#define EE_LLAMA_H

#include "ee_error.h"
#include "ee_gguf.h"
#include "ee_mat.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct ee_llama_hparams {
    int n_vocab;      /* token_embd rows */
    int n_embd;       /* residual width d */
    int n_layer;
    int n_head;       /* query heads */
    int n_head_kv;    /* key/value heads (GQA: n_head % n_head_kv == 0) */
    int head_dim;     /* n_embd / n_head */
    int n_rot;        /* rotated dims per head (rope.dimension_count) */
    int n_ff;         /* MLP intermediate width */
    int n_ctx_train;  /* context length the model was trained for */
    float rope_theta; /* rope.freq_base */
    float norm_eps;   /* RMSNorm epsilon */
} ee_llama_hparams;

typedef struct ee_llama_layer {
    float *attn_norm; /* [n_embd] */
    ee_mat wq;        /* [n_head*head_dim][n_embd] */
    ee_mat wk;        /* [n_head_kv*head_dim][n_embd] */
    ee_mat wv;        /* [n_head_kv*head_dim][n_embd] */
    ee_mat wo;        /* [n_embd][n_head*head_dim] */
    float *ffn_norm;  /* [n_embd] */
    ee_mat w_gate;    /* [n_ff][n_embd] */
    ee_mat w_up;      /* [n_ff][n_embd] */
    ee_mat w_down;    /* [n_embd][n_ff] */
} ee_llama_layer;

typedef struct ee_llama_model {
    ee_llama_hparams hp;
    ee_mat tok_embd;        /* [n_vocab][n_embd] */
    ee_llama_layer *layers; /* [n_layer] */
    float *out_norm;        /* [n_embd] */
    ee_mat output;          /* [n_vocab][n_embd]; a copy of tok_embd's view when tied */
    bool tied;              /* no output.weight: LM head is token_embd */
} ee_llama_model;

typedef struct ee_llama_load_opts {
    /* Default (false): weights stay in the file's blocks (mapped, no copy)
     * and the fused kernels multiply them with f32 activations. true:
     * dequantize once into f32 copies (4-8x the memory, slower decode; the
     * same results up to summation order). */
    bool f32_weights;
} ee_llama_load_opts;

/* File types. A file "of type T" (ee-model convert/encrypt --type T)
 * stores its 2-D weights as T, except that with a 4-bit T the vocabulary
 * tensors (token_embd, output) are Q8_0, as in llama.cpp's legacy 4-bit
 * mixes and SmolLM2's published Q4_1 file: the head is a fifth of the
 * weights and its rows are what greedy decoding ranks. 1-D tensors (norm
 * gains) stay f32. Convert and encrypt share this rule, so a plaintext and
 * an encrypted file of one type compare like for like. */
ee_dtype ee_llama_tensor_type(ee_dtype file_type, const char *name, int n_dims);
/* llama.cpp's general.file_type (LLAMA_FTYPE_*) for a file type, or -1 for
 * a type files are not written in. */
int ee_llama_file_type_id(ee_dtype file_type);

/* Read hyperparameters from GGUF metadata, validating them. */
int ee_llama_read_hparams(const ee_gguf *g, ee_llama_hparams *hp, ee_err *err);
/* Load a model; g must stay open while the model is used (weights may point
 * into its mapping). opts may be NULL. */
ee_llama_model *ee_llama_load(const ee_gguf *g, const ee_llama_load_opts *opts,
                              ee_err *err);
void ee_llama_free(ee_llama_model *m);

/* ---- KV cache: one per sequence ---- */
typedef struct ee_kv_cache {
    int n_ctx;    /* capacity in positions */
    int n;        /* positions filled (next token's position) */
    int n_layer;
    int kv_dim;   /* n_head_kv * head_dim */
    float *k;     /* [n_layer][n_ctx][kv_dim] */
    float *v;     /* [n_layer][n_ctx][kv_dim] */
} ee_kv_cache;

ee_kv_cache *ee_kv_cache_new(const ee_llama_model *m, int n_ctx, ee_err *err);
void ee_kv_cache_free(ee_kv_cache *c);
/* Forget positions >= n (n <= c->n), e.g. to reuse a cached prefix. */
void ee_kv_cache_truncate(ee_kv_cache *c, int n);

/* ---- Forward ---- */
typedef struct ee_llama_ctx ee_llama_ctx; /* reusable scratch buffers */

ee_llama_ctx *ee_llama_ctx_new(const ee_llama_model *m, ee_err *err);
void ee_llama_ctx_free(ee_llama_ctx *ctx);

typedef struct ee_llama_seq {
    const int32_t *tokens; /* n_tokens ids, appended at positions cache->n.. */
    int n_tokens;
    ee_kv_cache *cache;    /* advanced by n_tokens on success */
    float *logits;         /* out: [n_vocab] for the last token, or
                              [n_tokens][n_vocab] when all_logits; may be NULL */
    bool all_logits;
} ee_llama_seq;

/* Run the batch. Validates every token id and cache capacity before any
 * work; on error nothing is changed. */
int ee_llama_forward(ee_llama_ctx *ctx, ee_llama_seq *seqs, int n_seqs,
                     ee_err *err);

/* Run one throwaway forward of n_tokens (e.g. EE_PREFILL_CHUNK) so scratch
 * buffers, BLAS per-thread buffers and the thread team exist and are
 * faulted in before the first real request. */
int ee_llama_warmup(ee_llama_ctx *ctx, int n_tokens, ee_err *err);

#endif
