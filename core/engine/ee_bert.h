/* ee_bert: a BERT sentence encoder (all-MiniLM-L6-v2 and other
 * sentence-transformers BERT models) over GGUF weights, computing what
 * sentence-transformers computes: embeddings (word + position + token
 * type 0, LayerNorm), post-LN encoder layers (bidirectional self-attention;
 * GELU, erf form), mean pooling over the sentence's tokens, L2
 * normalisation.
 *
 * Files: the ones `ee-model import` writes (docs/ENCODER.md), and the
 * ones llama.cpp's converter writes for a BertModel (same names; f16
 * weights are dequantized at load). Keys only we write ("eeinfer.*") have
 * defaults for llama.cpp's files: max_seq_length = context_length,
 * normalize = true (what llama.cpp's embedding tools do).
 *
 * ee_bert_embed takes a batch of sentences (token ids, [CLS] ... [SEP] as
 * the tokenizer gives them), runs every token of every sentence through
 * each linear layer as one sgemm, and attention per sentence (a sentence
 * attends only to its own tokens). */
#ifndef EE_BERT_H
#define EE_BERT_H

#include "ee_error.h"
#include "ee_gguf.h"
#include "ee_mat.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* llama.cpp's pooling types (bert.pooling_type). */
typedef enum ee_bert_pooling {
    EE_BERT_POOL_MEAN = 1,
    EE_BERT_POOL_CLS = 2,
    EE_BERT_POOL_LAST = 3,
} ee_bert_pooling;

typedef struct ee_bert_hparams {
    int n_vocab;             /* token_embd rows */
    int n_embd;              /* hidden width d */
    int n_layer;
    int n_head;
    int head_dim;            /* n_embd / n_head */
    int n_ff;                /* FFN intermediate width */
    int n_pos;               /* position_embd rows (bert.context_length) */
    int n_types;             /* token_types rows (0: the file has none) */
    float norm_eps;          /* LayerNorm epsilon */
    int max_seq;             /* eeinfer.max_seq_length: tokens kept per sentence */
    bool normalize;          /* eeinfer.normalize: L2-normalise the pooled vector */
    ee_bert_pooling pooling; /* bert.pooling_type (default mean) */
    int32_t sep_id;          /* tokenizer.ggml.seperator_token_id, -1 if absent */
} ee_bert_hparams;

typedef struct ee_bert_layer {
    ee_mat wq;           /* [n_embd][n_embd]  attn_q */
    float *bq;           /* [n_embd] */
    ee_mat wk;           /* [n_embd][n_embd]  attn_k */
    float *bk;           /* [n_embd] */
    ee_mat wv;           /* [n_embd][n_embd]  attn_v */
    float *bv;           /* [n_embd] */
    ee_mat wo;           /* [n_embd][n_embd]  attn_output */
    float *bo;           /* [n_embd] */
    float *attn_norm_g;  /* [n_embd]  attn_output_norm.weight */
    float *attn_norm_b;  /* [n_embd]  attn_output_norm.bias */
    ee_mat w_up;         /* [n_ff][n_embd]    ffn_up */
    float *b_up;         /* [n_ff] */
    ee_mat w_down;       /* [n_embd][n_ff]    ffn_down */
    float *b_down;       /* [n_embd] */
    float *out_norm_g;   /* [n_embd]  layer_output_norm.weight */
    float *out_norm_b;   /* [n_embd]  layer_output_norm.bias */
} ee_bert_layer;

typedef struct ee_bert_model {
    ee_bert_hparams hp;
    ee_mat tok_embd;       /* [n_vocab][n_embd] */
    ee_mat pos_embd;       /* [n_pos][n_embd] */
    ee_mat type_embd;      /* [n_types][n_embd]; rows == 0 when absent */
    float *embd_norm_g;    /* [n_embd]  token_embd_norm.weight */
    float *embd_norm_b;    /* [n_embd]  token_embd_norm.bias */
    ee_bert_layer *layers; /* [n_layer] */
} ee_bert_model;

typedef struct ee_bert_load_opts {
    /* Default (false): 2-D weights are dequantized once into f32 copies
     * (f32 files are used in place), so every product is one sgemm. true:
     * keep the stored type (less memory; ee_mat_mul dequantizes per call). */
    bool stored_weights;
} ee_bert_load_opts;

/* Read and validate hyperparameters (architecture "bert"). */
int ee_bert_read_hparams(const ee_gguf *g, ee_bert_hparams *hp, ee_err *err);
/* Load a model, checking every tensor's presence and shape; g must stay
 * open while the model is used. opts may be NULL. */
ee_bert_model *ee_bert_load(const ee_gguf *g, const ee_bert_load_opts *opts, ee_err *err);
void ee_bert_free(ee_bert_model *m);

/* Tokens of a sentence of n ids that the model reads: n, or max_seq when
 * longer (see ee_bert_embed). */
size_t ee_bert_kept(const ee_bert_model *m, size_t n);

typedef struct ee_bert_embed_opts {
    bool raw;        /* skip L2 normalisation (whatever the model says) */
    float *hidden;   /* optional out: final hidden states of every kept token,
                        [sum of kept lengths][n_embd], sentence after sentence */
    size_t hidden_rows; /* rows `hidden` holds (checked) */
} ee_bert_embed_opts;

/* Embed n_seq sentences: ids[s] holds n[s] >= 1 token ids (as the
 * tokenizer gives them: [CLS] ... [SEP]); out receives n_seq rows of
 * n_embd floats. A sentence longer than max_seq is cut as
 * sentence-transformers cuts it: the first max_seq - 1 ids and, when the
 * last id is [SEP], that [SEP]; otherwise the first max_seq ids. Token
 * type ids are 0, positions 0..n-1. Every id is checked before any work. */
int ee_bert_embed(const ee_bert_model *m, const int32_t *const *ids, const size_t *n,
                  int n_seq, float *out, ee_err *err);
/* The same with options (NULL: defaults). */
int ee_bert_embed_ex(const ee_bert_model *m, const int32_t *const *ids, const size_t *n,
                     int n_seq, const ee_bert_embed_opts *opts, float *out, ee_err *err);

#endif
