/* BERT encoder forward pass. Read section by section:
 *   1. hyperparameters and weight loading (validated against the file)
 *   2. scratch buffers of one call
 *   3. forward: embeddings -> layers (q/k/v, attention per sentence,
 *      output + residual + LayerNorm, FFN + residual + LayerNorm) ->
 *      pooling -> L2 normalisation */
#include "ee_bert.h"

#include "ee_arch.h"

#include "ee_bert_import.h"
#include "ee_kernels.h"
#include "ee_ops.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- 1. hyperparameters and weights ------------------------------------ */

static int get_pos_u32(const ee_gguf *g, const char *key, int *out, ee_err *err) {
    uint32_t v;
    if (ee_gguf_get_u32(g, key, &v, err) != 0) return -1;
    if (v == 0 || v > (1u << 24))
        return ee_err_set(err, "metadata %s = %u is out of range", key, v);
    *out = (int)v;
    return 0;
}

/* Rows of a 2-D tensor [n_embd, rows] (0 if absent when optional). */
static int tensor_rows(const ee_gguf *g, const char *name, int n_embd, bool optional, int *rows,
                       ee_err *err) {
    const ee_gguf_tensor *t = ee_gguf_find_tensor(g, name);
    *rows = 0;
    if (!t) return optional ? 0 : ee_err_set(err, "tensor '%s' is missing", name);
    if (t->n_dims != 2 || (int64_t)t->ne[0] != n_embd || t->ne[1] == 0 || t->ne[1] > (1u << 24))
        return ee_err_set(err, "tensor '%s' has shape [%llu, %llu] (%u dims), expected [%d, rows]",
                          name, (unsigned long long)t->ne[0],
                          (unsigned long long)(t->n_dims > 1 ? t->ne[1] : 1), t->n_dims, n_embd);
    *rows = (int)t->ne[1];
    return 0;
}

int ee_bert_read_hparams(const ee_gguf *g, ee_bert_hparams *hp, ee_err *err) {
    memset(hp, 0, sizeof *hp);
    const char *arch = ee_gguf_get_str(g, "general.architecture", err);
    if (!arch) return -1;
    if (strcmp(arch, "bert") != 0)
        return ee_err_set(err, "unsupported architecture '%s' (the encoder runs 'bert')", arch);
    if (get_pos_u32(g, "bert.embedding_length", &hp->n_embd, err) ||
        get_pos_u32(g, "bert.block_count", &hp->n_layer, err) ||
        get_pos_u32(g, "bert.attention.head_count", &hp->n_head, err) ||
        get_pos_u32(g, "bert.feed_forward_length", &hp->n_ff, err) ||
        get_pos_u32(g, "bert.context_length", &hp->n_pos, err))
        return -1;
    if (hp->n_embd % hp->n_head != 0)
        return ee_err_set(err, "embedding_length %d is not a multiple of head_count %d",
                          hp->n_embd, hp->n_head);
    hp->head_dim = hp->n_embd / hp->n_head;
    if (ee_gguf_get_f32(g, "bert.attention.layer_norm_epsilon", &hp->norm_eps, err)) return -1;
    if (!(hp->norm_eps > 0.0f && hp->norm_eps < 1.0f))
        return ee_err_set(err, "bert.attention.layer_norm_epsilon %g is invalid",
                          (double)hp->norm_eps);
    if (ee_gguf_find_kv(g, "bert.attention.causal")) {
        bool causal;
        if (ee_gguf_get_bool(g, "bert.attention.causal", &causal, err)) return -1;
        if (causal) return ee_err_set(err, "bert.attention.causal is true (an encoder attends "
                                           "both ways)");
    }
    hp->pooling = EE_BERT_POOL_MEAN;
    if (ee_gguf_find_kv(g, "bert.pooling_type")) {
        uint32_t p;
        if (ee_gguf_get_u32(g, "bert.pooling_type", &p, err)) return -1;
        if (p < EE_BERT_POOL_MEAN || p > EE_BERT_POOL_LAST)
            return ee_err_set(err, "bert.pooling_type %u is not mean (1), cls (2) or last (3)", p);
        hp->pooling = (ee_bert_pooling)p;
    }
    hp->max_seq = hp->n_pos;
    if (ee_gguf_find_kv(g, EE_BERT_KEY_MAX_SEQ)) {
        if (get_pos_u32(g, EE_BERT_KEY_MAX_SEQ, &hp->max_seq, err)) return -1;
        if (hp->max_seq > hp->n_pos)
            return ee_err_set(err, "%s %d exceeds the %d positions", EE_BERT_KEY_MAX_SEQ,
                              hp->max_seq, hp->n_pos);
    }
    hp->normalize = true;
    if (ee_gguf_find_kv(g, EE_BERT_KEY_NORMALIZE) &&
        ee_gguf_get_bool(g, EE_BERT_KEY_NORMALIZE, &hp->normalize, err))
        return -1;
    hp->sep_id = -1;
    if (ee_gguf_find_kv(g, "tokenizer.ggml.seperator_token_id") &&
        ee_gguf_get_i32(g, "tokenizer.ggml.seperator_token_id", &hp->sep_id, err))
        return -1;
    if (tensor_rows(g, "token_embd.weight", hp->n_embd, false, &hp->n_vocab, err) ||
        tensor_rows(g, "token_types.weight", hp->n_embd, true, &hp->n_types, err))
        return -1;
    return 0;
}

ee_bert_model *ee_bert_load(const ee_gguf *g, const ee_bert_load_opts *opts, ee_err *err) {
    bool to_f32 = !(opts && opts->stored_weights);
    ee_bert_model *m = calloc(1, sizeof *m);
    if (!m) {
        ee_err_set(err, "out of memory");
        return NULL;
    }
    if (ee_bert_read_hparams(g, &m->hp, err)) goto fail;
    const ee_bert_hparams *hp = &m->hp;
    const int d = hp->n_embd, ff = hp->n_ff;
    if (ee_mat_load(&m->tok_embd, g, "token_embd.weight", d, hp->n_vocab, to_f32, err) ||
        ee_mat_load(&m->pos_embd, g, "position_embd.weight", d, hp->n_pos, to_f32, err) ||
        (hp->n_types &&
         ee_mat_load(&m->type_embd, g, "token_types.weight", d, hp->n_types, to_f32, err)) ||
        ee_vec_load(&m->embd_norm_g, g, "token_embd_norm.weight", d, err) ||
        ee_vec_load(&m->embd_norm_b, g, "token_embd_norm.bias", d, err))
        goto fail;
    m->layers = calloc((size_t)hp->n_layer, sizeof *m->layers);
    if (!m->layers) {
        ee_err_set(err, "out of memory");
        goto fail;
    }
    for (int l = 0; l < hp->n_layer; l++) {
        ee_bert_layer *L = &m->layers[l];
        char name[96];
#define LOAD_MAT(field, role, cols, rows)                                         \
    ee_tensor_name(name, sizeof name, role, l, "weight");                         \
    if (ee_mat_load(&L->field, g, name, cols, rows, to_f32, err)) goto fail;
#define LOAD_VEC(field, role, kind, n)                                            \
    ee_tensor_name(name, sizeof name, role, l, kind);                             \
    if (ee_vec_load(&L->field, g, name, n, err)) goto fail;
        LOAD_MAT(wq, EE_T_ATTN_Q, d, d);
        LOAD_VEC(bq, EE_T_ATTN_Q, "bias", d);
        LOAD_MAT(wk, EE_T_ATTN_K, d, d);
        LOAD_VEC(bk, EE_T_ATTN_K, "bias", d);
        LOAD_MAT(wv, EE_T_ATTN_V, d, d);
        LOAD_VEC(bv, EE_T_ATTN_V, "bias", d);
        LOAD_MAT(wo, EE_T_ATTN_OUT, d, d);
        LOAD_VEC(bo, EE_T_ATTN_OUT, "bias", d);
        LOAD_VEC(attn_norm_g, EE_T_ATTN_OUT_NORM, "weight", d);
        LOAD_VEC(attn_norm_b, EE_T_ATTN_OUT_NORM, "bias", d);
        LOAD_MAT(w_up, EE_T_FFN_UP, d, ff);
        LOAD_VEC(b_up, EE_T_FFN_UP, "bias", ff);
        LOAD_MAT(w_down, EE_T_FFN_DOWN, ff, d);
        LOAD_VEC(b_down, EE_T_FFN_DOWN, "bias", d);
        LOAD_VEC(out_norm_g, EE_T_LAYER_OUT_NORM, "weight", d);
        LOAD_VEC(out_norm_b, EE_T_LAYER_OUT_NORM, "bias", d);
#undef LOAD_MAT
#undef LOAD_VEC
    }
    return m;
fail:
    ee_bert_free(m);
    return NULL;
}

void ee_bert_free(ee_bert_model *m) {
    if (!m) return;
    if (m->layers) {
        for (int l = 0; l < m->hp.n_layer; l++) {
            ee_bert_layer *L = &m->layers[l];
            ee_mat_free(&L->wq);
            ee_mat_free(&L->wk);
            ee_mat_free(&L->wv);
            ee_mat_free(&L->wo);
            ee_mat_free(&L->w_up);
            ee_mat_free(&L->w_down);
            free(L->bq);
            free(L->bk);
            free(L->bv);
            free(L->bo);
            free(L->attn_norm_g);
            free(L->attn_norm_b);
            free(L->b_up);
            free(L->b_down);
            free(L->out_norm_g);
            free(L->out_norm_b);
        }
        free(m->layers);
    }
    ee_mat_free(&m->tok_embd);
    ee_mat_free(&m->pos_embd);
    ee_mat_free(&m->type_embd);
    free(m->embd_norm_g);
    free(m->embd_norm_b);
    free(m);
}

size_t ee_bert_kept(const ee_bert_model *m, size_t n) {
    return n > (size_t)m->hp.max_seq ? (size_t)m->hp.max_seq : n;
}

/* ---- 2. scratch ------------------------------------------------------------ */

typedef struct bert_run {
    int T;          /* tokens in the batch (after truncation) */
    int *start;     /* [n_seq] first row of each sentence */
    int *len;       /* [n_seq] kept tokens of each sentence */
    float *x;       /* [T][n_embd] hidden states (the residual stream) */
    float *q;       /* [T][n_embd] */
    float *k;       /* [T][n_embd] */
    float *v;       /* [T][n_embd] */
    float *att;     /* [T][n_embd] attention output, heads side by side */
    float *up;      /* [T][n_ff] FFN intermediate */
    float *scores;  /* [threads][max_len][max_len] one head's attention matrix */
    int max_len;
} bert_run;

static void run_free(bert_run *r) {
    free(r->start);
    free(r->len);
    free(r->x);
    free(r->q);
    free(r->k);
    free(r->v);
    free(r->att);
    free(r->up);
    free(r->scores);
}

/* ---- 3. forward -------------------------------------------------------------- */

/* y[r][:] += b for each of T rows of n values. */
static void add_bias(float *y, const float *b, int T, int n) {
    const int nt = ee_kernels_threads();
#pragma omp parallel for num_threads(nt) if (nt > 1 && (long)T * n >= 65536)
    for (int r = 0; r < T; r++) {
        float *row = y + (size_t)r * n;
        for (int i = 0; i < n; i++) row[i] += b[i];
    }
}

/* x[r] = LayerNorm(x[r]) * g + b, in place, each of T rows. */
static void layernorm_rows(float *x, const float *g, const float *b, int T, int d, float eps) {
    const int nt = ee_kernels_threads();
#pragma omp parallel for num_threads(nt) if (nt > 1 && T >= 64)
    for (int r = 0; r < T; r++) ee_layernorm(x + (size_t)r * d, x + (size_t)r * d, g, b, d, eps);
}

static void gelu_rows(float *x, int T, int n) {
    const int nt = ee_kernels_threads();
#pragma omp parallel for num_threads(nt) if (nt > 1 && (long)T * n >= 65536)
    for (int r = 0; r < T; r++) ee_gelu(x + (size_t)r * n, (size_t)n);
}

/* Self-attention of head h of one sentence (rows r0..r0+n-1), no mask:
 * S[n][n] = scale * Q K^T, softmax by row, O = S V. */
static void attend_head(const ee_bert_hparams *hp, bert_run *r, int r0, int n, int h, float *S) {
    const int d = hp->n_embd, hd = hp->head_dim;
    const float scale = 1.0f / sqrtf((float)hd);
    const float *Q = r->q + (size_t)r0 * d + (size_t)h * hd;
    const float *K = r->k + (size_t)r0 * d + (size_t)h * hd;
    const float *V = r->v + (size_t)r0 * d + (size_t)h * hd;
    float *O = r->att + (size_t)r0 * d + (size_t)h * hd;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, hd, scale, Q, d, K, d, 0.0f, S, n);
    for (int i = 0; i < n; i++) ee_softmax(S + (size_t)i * n, n);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, hd, n, 1.0f, S, n, V, d, 0.0f, O, d);
}

/* Every (sentence, head) pair is one task; the longest sentences first so
 * the team balances. */
static void attention(const ee_bert_hparams *hp, bert_run *r, int n_seq, const int *order) {
    const int nt = ee_kernels_threads(), n_tasks = n_seq * hp->n_head;
    const size_t per_thread = (size_t)r->max_len * r->max_len;
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt) if (nt > 1 && r->T >= 8)
    for (int t = 0; t < n_tasks; t++) {
        const int s = order[t / hp->n_head], h = t % hp->n_head;
        attend_head(hp, r, r->start[s], r->len[s], h,
                    r->scores + (size_t)omp_get_thread_num() * per_thread);
    }
}

#define MUL(...)                                                                        \
    do {                                                                                \
        if (ee_mat_mul(__VA_ARGS__)) {                                                  \
            ee_err_set(err, "out of memory for the dequantization scratch of a matrix " \
                            "product");                                                 \
            goto done;                                                                  \
        }                                                                               \
    } while (0)

int ee_bert_embed(const ee_bert_model *m, const int32_t *const *ids, const size_t *n,
                  int n_seq, float *out, ee_err *err) {
    return ee_bert_embed_ex(m, ids, n, n_seq, NULL, out, err);
}

int ee_bert_embed_ex(const ee_bert_model *m, const int32_t *const *ids, const size_t *n,
                     int n_seq, const ee_bert_embed_opts *opts, float *out, ee_err *err) {
    const ee_bert_hparams *hp = &m->hp;
    const int d = hp->n_embd, ff = hp->n_ff;

    /* Validate everything before any work. */
    if (n_seq <= 0) return ee_err_set(err, "empty batch");
    if (!ids || !n || !out) return ee_err_set(err, "no ids or no output buffer");
    size_t T = 0;
    for (int s = 0; s < n_seq; s++) {
        if (n[s] == 0 || !ids[s])
            return ee_err_set(err, "sentence %d has no tokens (the tokenizer gives at least "
                                   "[CLS] [SEP])",
                              s);
        for (size_t i = 0; i < n[s]; i++) {
            if (ids[s][i] < 0 || ids[s][i] >= hp->n_vocab)
                return ee_err_set(err,
                                  "sentence %d: token %d at index %zu is out of range "
                                  "(vocabulary size %d)",
                                  s, ids[s][i], i, hp->n_vocab);
        }
        T += ee_bert_kept(m, n[s]);
        if (T > (size_t)1 << 28) return ee_err_set(err, "batch of more than 2^28 tokens");
    }
    if (opts && opts->hidden && opts->hidden_rows < T)
        return ee_err_set(err, "hidden-state buffer holds %zu rows, the batch has %zu tokens",
                          opts->hidden_rows, T);

    bert_run r = {.T = (int)T};
    int rc = -1, *order = NULL;
    const size_t Td = T * (size_t)d;
    r.start = malloc((size_t)n_seq * sizeof(int));
    r.len = malloc((size_t)n_seq * sizeof(int));
    order = malloc((size_t)n_seq * sizeof(int));
    for (int s = 0, row = 0; r.start && r.len && s < n_seq; s++) {
        r.start[s] = row;
        r.len[s] = (int)ee_bert_kept(m, n[s]);
        row += r.len[s];
        if (r.len[s] > r.max_len) r.max_len = r.len[s];
    }
    const int nt = ee_kernels_threads();
    r.x = malloc(Td * sizeof(float));
    r.q = malloc(Td * sizeof(float));
    r.k = malloc(Td * sizeof(float));
    r.v = malloc(Td * sizeof(float));
    r.att = malloc(Td * sizeof(float));
    r.up = malloc(T * (size_t)ff * sizeof(float));
    r.scores = malloc((size_t)nt * r.max_len * r.max_len * sizeof(float));
    if (!r.start || !r.len || !order || !r.x || !r.q || !r.k || !r.v || !r.att || !r.up ||
        !r.scores) {
        ee_err_set(err, "out of memory for a batch of %zu tokens", T);
        goto done;
    }
    /* Attention tasks: sentences longest first. */
    for (int s = 0; s < n_seq; s++) order[s] = s;
    for (int i = 1; i < n_seq; i++) /* insertion sort, stable */
        for (int j = i; j > 0 && r.len[order[j]] > r.len[order[j - 1]]; j--) {
            int tmp = order[j];
            order[j] = order[j - 1];
            order[j - 1] = tmp;
        }

    /* Embeddings: word + position + token type 0, then LayerNorm. A cut
     * sentence keeps its first len-1 ids and its final [SEP]. */
    {
        float *tmp = malloc((size_t)d * sizeof(float));
        if (!tmp) {
            ee_err_set(err, "out of memory");
            goto done;
        }
        for (int s = 0; s < n_seq; s++) {
            const int L = r.len[s];
            const bool cut = (size_t)L < n[s];
            for (int i = 0; i < L; i++) {
                int32_t id = ids[s][i];
                if (cut && i == L - 1 && ids[s][n[s] - 1] == hp->sep_id) id = hp->sep_id;
                float *x = r.x + (size_t)(r.start[s] + i) * d;
                ee_mat_row(&m->tok_embd, id, x);
                ee_mat_row(&m->pos_embd, i, tmp);
                ee_add(x, tmp, (size_t)d);
                if (hp->n_types) {
                    ee_mat_row(&m->type_embd, 0, tmp);
                    ee_add(x, tmp, (size_t)d);
                }
            }
        }
        free(tmp);
    }
    layernorm_rows(r.x, m->embd_norm_g, m->embd_norm_b, (int)T, d, hp->norm_eps);

    for (int l = 0; l < hp->n_layer; l++) {
        const ee_bert_layer *L = &m->layers[l];
        /* Self-attention block (post-LN): x = LN(x + Wo att(x) + bo). */
        MUL(&L->wq, r.x, d, T, r.q, d, 0.0f);
        add_bias(r.q, L->bq, (int)T, d);
        MUL(&L->wk, r.x, d, T, r.k, d, 0.0f);
        add_bias(r.k, L->bk, (int)T, d);
        MUL(&L->wv, r.x, d, T, r.v, d, 0.0f);
        add_bias(r.v, L->bv, (int)T, d);
        attention(hp, &r, n_seq, order);
        MUL(&L->wo, r.att, d, T, r.x, d, 1.0f); /* x += att Wo^T */
        add_bias(r.x, L->bo, (int)T, d);
        layernorm_rows(r.x, L->attn_norm_g, L->attn_norm_b, (int)T, d, hp->norm_eps);

        /* FFN block (post-LN): x = LN(x + Wdown gelu(Wup x + b_up) + b_down). */
        MUL(&L->w_up, r.x, d, T, r.up, ff, 0.0f);
        add_bias(r.up, L->b_up, (int)T, ff);
        gelu_rows(r.up, (int)T, ff);
        MUL(&L->w_down, r.up, ff, T, r.x, d, 1.0f); /* x += h Wdown^T */
        add_bias(r.x, L->b_down, (int)T, d);
        layernorm_rows(r.x, L->out_norm_g, L->out_norm_b, (int)T, d, hp->norm_eps);
    }
    if (opts && opts->hidden) memcpy(opts->hidden, r.x, Td * sizeof(float));

    /* Pooling, then L2 normalisation (sentence-transformers' Normalize:
     * x / max(|x|, 1e-12)). Sums in double. */
    const bool normalize = hp->normalize && !(opts && opts->raw);
    for (int s = 0; s < n_seq; s++) {
        const float *X = r.x + (size_t)r.start[s] * d;
        const int L = r.len[s];
        float *o = out + (size_t)s * d;
        if (hp->pooling == EE_BERT_POOL_MEAN) {
            for (int e = 0; e < d; e++) {
                double acc = 0.0;
                for (int i = 0; i < L; i++) acc += X[(size_t)i * d + e];
                o[e] = (float)(acc / L);
            }
        } else {
            memcpy(o, X + (size_t)(hp->pooling == EE_BERT_POOL_CLS ? 0 : L - 1) * d,
                   (size_t)d * sizeof(float));
        }
        if (normalize) {
            double ss = 0.0;
            for (int e = 0; e < d; e++) ss += (double)o[e] * o[e];
            double norm = sqrt(ss);
            float inv = (float)(1.0 / (norm > 1e-12 ? norm : 1e-12));
            for (int e = 0; e < d; e++) o[e] *= inv;
        }
    }
    rc = 0;
done:
    free(order);
    run_free(&r);
    return rc;
}
