/* Llama forward pass. Read section by section:
 *   1. hyperparameters and weight loading (validated against the file)
 *   2. KV cache
 *   3. scratch buffers
 *   4. forward: embed -> layers (norm, qkv, rope, attention, out, norm, MLP)
 *      -> final norm -> LM head */
#include "ee_llama.h"

#include "ee_arch.h"

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

ee_dtype ee_llama_tensor_type(ee_dtype file_type, const char *name, int n_dims) {
    if (n_dims < 2) return EE_DT_F32;
    bool four_bit = file_type == EE_DT_Q4_0 || file_type == EE_DT_Q4_1;
    if (four_bit && (!strcmp(name, "token_embd.weight") || !strcmp(name, "output.weight")))
        return EE_DT_Q8_0;
    return file_type;
}

int ee_llama_file_type_id(ee_dtype file_type) {
    static const struct { ee_dtype t; int id; } table[] = {
        {EE_DT_F32, 0}, {EE_DT_F16, 1}, {EE_DT_Q4_0, 2}, {EE_DT_Q4_1, 3},
        {EE_DT_Q8_0, 7}, {EE_DT_BF16, 32},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (table[i].t == file_type) return table[i].id;
    return -1;
}

int ee_llama_read_hparams(const ee_gguf *g, ee_llama_hparams *hp, ee_err *err) {
    memset(hp, 0, sizeof *hp);
    const char *arch = ee_gguf_get_str(g, "general.architecture", err);
    if (!arch) return -1;
    if (strcmp(arch, "llama") != 0)
        return ee_err_set(err, "unsupported architecture '%s' (this engine runs 'llama')",
                          arch);
    if (get_pos_u32(g, "llama.embedding_length", &hp->n_embd, err) ||
        get_pos_u32(g, "llama.block_count", &hp->n_layer, err) ||
        get_pos_u32(g, "llama.attention.head_count", &hp->n_head, err) ||
        get_pos_u32(g, "llama.feed_forward_length", &hp->n_ff, err) ||
        get_pos_u32(g, "llama.context_length", &hp->n_ctx_train, err))
        return -1;
    hp->n_head_kv = hp->n_head;
    if (ee_gguf_find_kv(g, "llama.attention.head_count_kv") &&
        get_pos_u32(g, "llama.attention.head_count_kv", &hp->n_head_kv, err))
        return -1;
    if (hp->n_embd % hp->n_head != 0)
        return ee_err_set(err, "embedding_length %d is not a multiple of head_count %d",
                          hp->n_embd, hp->n_head);
    if (hp->n_head % hp->n_head_kv != 0)
        return ee_err_set(err, "head_count %d is not a multiple of head_count_kv %d",
                          hp->n_head, hp->n_head_kv);
    hp->head_dim = hp->n_embd / hp->n_head;
    hp->n_rot = hp->head_dim;
    if (ee_gguf_find_kv(g, "llama.rope.dimension_count") &&
        get_pos_u32(g, "llama.rope.dimension_count", &hp->n_rot, err))
        return -1;
    if (hp->head_dim > 512)
        return ee_err_set(err, "head dimension %d is larger than 512", hp->head_dim);
    if (hp->n_rot > hp->head_dim || hp->n_rot % 2 != 0)
        return ee_err_set(err, "rope.dimension_count %d invalid for head dim %d",
                          hp->n_rot, hp->head_dim);
    hp->rope_theta = 10000.0f;
    if (ee_gguf_find_kv(g, "llama.rope.freq_base") &&
        ee_gguf_get_f32(g, "llama.rope.freq_base", &hp->rope_theta, err))
        return -1;
    if (!(hp->rope_theta > 1.0f))
        return ee_err_set(err, "rope.freq_base %g is invalid", hp->rope_theta);
    if (ee_gguf_get_f32(g, "llama.attention.layer_norm_rms_epsilon", &hp->norm_eps, err))
        return -1;
    if (!(hp->norm_eps > 0.0f && hp->norm_eps < 1.0f))
        return ee_err_set(err, "layer_norm_rms_epsilon %g is invalid", hp->norm_eps);
    const ee_gguf_tensor *te = ee_gguf_find_tensor(g, "token_embd.weight");
    if (!te) return ee_err_set(err, "tensor 'token_embd.weight' is missing");
    if (te->n_dims != 2 || te->ne[1] > (1u << 24))
        return ee_err_set(err, "tensor 'token_embd.weight' has an invalid shape");
    hp->n_vocab = (int)te->ne[1];
    return 0;
}

ee_llama_model *ee_llama_load(const ee_gguf *g, const ee_llama_load_opts *opts,
                              ee_err *err) {
    bool to_f32 = opts && opts->f32_weights;
    ee_llama_model *m = calloc(1, sizeof *m);
    if (!m) {
        ee_err_set(err, "out of memory");
        return NULL;
    }
    if (ee_llama_read_hparams(g, &m->hp, err) != 0) goto fail;
    const ee_llama_hparams *hp = &m->hp;
    const int d = hp->n_embd, qd = hp->n_head * hp->head_dim,
              kvd = hp->n_head_kv * hp->head_dim;
    if (ee_mat_load(&m->tok_embd, g, "token_embd.weight", d, hp->n_vocab, to_f32, err))
        goto fail;
    m->layers = calloc((size_t)hp->n_layer, sizeof *m->layers);
    if (!m->layers) {
        ee_err_set(err, "out of memory");
        goto fail;
    }
    for (int l = 0; l < hp->n_layer; l++) {
        ee_llama_layer *L = &m->layers[l];
        char name[96];
#define LOAD_MAT(field, role, cols, rows)                                         \
    ee_tensor_name(name, sizeof name, role, l, "weight");                         \
    if (ee_mat_load(&L->field, g, name, cols, rows, to_f32, err)) goto fail;
#define LOAD_VEC(field, role)                                                     \
    ee_tensor_name(name, sizeof name, role, l, "weight");                         \
    if (ee_vec_load(&L->field, g, name, d, err)) goto fail;
        LOAD_VEC(attn_norm, EE_T_ATTN_NORM);          /* [d] */
        LOAD_MAT(wq, EE_T_ATTN_Q, d, qd);             /* [d -> n_head * head_dim] */
        LOAD_MAT(wk, EE_T_ATTN_K, d, kvd);            /* [d -> n_head_kv * head_dim] */
        LOAD_MAT(wv, EE_T_ATTN_V, d, kvd);            /* [d -> n_head_kv * head_dim] */
        LOAD_MAT(wo, EE_T_ATTN_OUT, qd, d);           /* [n_head * head_dim -> d] */
        LOAD_VEC(ffn_norm, EE_T_FFN_NORM);            /* [d] */
        LOAD_MAT(w_gate, EE_T_FFN_GATE, d, hp->n_ff); /* [d -> n_ff] */
        LOAD_MAT(w_up, EE_T_FFN_UP, d, hp->n_ff);     /* [d -> n_ff] */
        LOAD_MAT(w_down, EE_T_FFN_DOWN, hp->n_ff, d); /* [n_ff -> d] */
#undef LOAD_MAT
#undef LOAD_VEC
    }
    if (ee_vec_load(&m->out_norm, g, "output_norm.weight", d, err)) goto fail;
    if (ee_gguf_find_tensor(g, "output.weight")) {
        if (ee_mat_load(&m->output, g, "output.weight", d, hp->n_vocab, to_f32, err))
            goto fail;
        m->tied = false;
    } else {
        m->output = m->tok_embd;
        m->output.owned = false; /* the view never frees tok_embd's buffer */
        m->tied = true;
    }
    return m;
fail:
    ee_llama_free(m);
    return NULL;
}

void ee_llama_free(ee_llama_model *m) {
    if (!m) return;
    if (m->layers) {
        for (int l = 0; l < m->hp.n_layer; l++) {
            ee_llama_layer *L = &m->layers[l];
            free(L->attn_norm);
            free(L->ffn_norm);
            ee_mat_free(&L->wq);
            ee_mat_free(&L->wk);
            ee_mat_free(&L->wv);
            ee_mat_free(&L->wo);
            ee_mat_free(&L->w_gate);
            ee_mat_free(&L->w_up);
            ee_mat_free(&L->w_down);
        }
        free(m->layers);
    }
    if (!m->tied) ee_mat_free(&m->output);
    ee_mat_free(&m->tok_embd);
    free(m->out_norm);
    free(m);
}

/* ---- 2. KV cache ---------------------------------------------------------- */

ee_kv_cache *ee_kv_cache_new(const ee_llama_model *m, int n_ctx, ee_err *err) {
    if (n_ctx <= 0 || n_ctx > m->hp.n_ctx_train) {
        ee_err_set(err, "context size %d is out of range (1..%d)", n_ctx,
                   m->hp.n_ctx_train);
        return NULL;
    }
    ee_kv_cache *c = calloc(1, sizeof *c);
    if (!c) goto oom;
    c->n_ctx = n_ctx;
    c->n_layer = m->hp.n_layer;
    c->kv_dim = m->hp.n_head_kv * m->hp.head_dim;
    size_t n = (size_t)c->n_layer * n_ctx * c->kv_dim;
    c->k = malloc(n * sizeof(float));
    c->v = malloc(n * sizeof(float));
    if (!c->k || !c->v) goto oom;
    return c;
oom:
    ee_kv_cache_free(c);
    ee_err_set(err, "out of memory for a KV cache of %d positions", n_ctx);
    return NULL;
}

void ee_kv_cache_free(ee_kv_cache *c) {
    if (!c) return;
    free(c->k);
    free(c->v);
    free(c);
}

void ee_kv_cache_truncate(ee_kv_cache *c, int n) {
    if (n >= 0 && n < c->n) c->n = n;
}

/* ---- 3. scratch ------------------------------------------------------------ */

struct ee_llama_ctx {
    const ee_llama_model *m;
    int cap_tokens;   /* rows the per-token buffers hold */
    float *x;         /* [T][n_embd] residual stream */
    float *xn;        /* [T][n_embd] normed input of the current block */
    float *q;         /* [T][n_head*head_dim] */
    float *k;         /* [T][kv_dim] */
    float *v;         /* [T][kv_dim] */
    float *att;       /* [T][n_head*head_dim] attention output */
    float *gate;      /* [T][n_ff] */
    float *up;        /* [T][n_ff] */
    int *pos;         /* [T] position of each token */
    float *rope;      /* [T][n_rot] cos/sin per token, shared by all layers */
    size_t cap_scores;
    float *scores;    /* [n_new][n_ctx] attention scores of one head */
    int cap_out;      /* rows in the logits staging buffers */
    float *out_x;     /* [R][n_embd] rows that need logits */
    float *out_logits;/* [R][n_vocab] */
};

ee_llama_ctx *ee_llama_ctx_new(const ee_llama_model *m, ee_err *err) {
    ee_llama_ctx *c = calloc(1, sizeof *c);
    if (!c) {
        ee_err_set(err, "out of memory");
        return NULL;
    }
    c->m = m;
    return c;
}

void ee_llama_ctx_free(ee_llama_ctx *c) {
    if (!c) return;
    free(c->x);
    free(c->xn);
    free(c->q);
    free(c->k);
    free(c->v);
    free(c->att);
    free(c->gate);
    free(c->up);
    free(c->pos);
    free(c->rope);
    free(c->scores);
    free(c->out_x);
    free(c->out_logits);
    free(c);
}

static int grow(float **p, size_t n) {
    float *q = realloc(*p, n * sizeof(float));
    if (!q) return -1;
    *p = q;
    return 0;
}

static int ctx_reserve(ee_llama_ctx *c, int T, int R, size_t scores, ee_err *err) {
    const ee_llama_hparams *hp = &c->m->hp;
    if (T > c->cap_tokens) {
        size_t t = (size_t)T;
        size_t qd = (size_t)hp->n_head * hp->head_dim,
               kvd = (size_t)hp->n_head_kv * hp->head_dim;
        int *pos = realloc(c->pos, t * sizeof(int));
        if (!pos) goto oom;
        c->pos = pos;
        if (grow(&c->x, t * hp->n_embd) || grow(&c->xn, t * hp->n_embd) ||
            grow(&c->q, t * qd) || grow(&c->k, t * kvd) || grow(&c->v, t * kvd) ||
            grow(&c->att, t * qd) || grow(&c->gate, t * hp->n_ff) ||
            grow(&c->up, t * hp->n_ff) || grow(&c->rope, t * hp->n_rot))
            goto oom;
        c->cap_tokens = T;
    }
    if (R > c->cap_out) {
        if (grow(&c->out_x, (size_t)R * hp->n_embd) ||
            grow(&c->out_logits, (size_t)R * hp->n_vocab))
            goto oom;
        c->cap_out = R;
    }
    if (scores > c->cap_scores) {
        if (grow(&c->scores, scores)) goto oom;
        c->cap_scores = scores;
    }
    return 0;
oom:
    return ee_err_set(err, "out of memory for a batch of %d tokens", T);
}

/* ---- 4. forward -------------------------------------------------------------- */

/* Query rows per attention task in prefill: small enough to balance the
 * triangle across threads, large enough for sgemm to be efficient. */
#define ATT_CHUNK 64

/* Causal attention of new tokens i0..i1-1 of one sequence (its rows start
 * at r0 in q/att; the first new token sits at position p0) for head h,
 * against a cache that already holds their k/v. S: [i1-i0][p0+i1]. Only
 * the columns a row can see are computed (the chunk's triangle bound). */
static void attend_task(ee_llama_ctx *c, const ee_kv_cache *kv, int layer, int r0, int p0,
                        int h, int i0, int i1, float *S) {
    const ee_llama_hparams *hp = &c->m->hp;
    const int hd = hp->head_dim, qd = hp->n_head * hd, kvd = kv->kv_dim;
    const int kh = h / (hp->n_head / hp->n_head_kv), n = i1 - i0, P = p0 + i1;
    const float scale = 1.0f / sqrtf((float)hd);
    const float *K = kv->k + (size_t)layer * kv->n_ctx * kvd + (size_t)kh * hd;
    const float *V = kv->v + (size_t)layer * kv->n_ctx * kvd + (size_t)kh * hd;
    const float *Q = c->q + (size_t)(r0 + i0) * qd + (size_t)h * hd;
    float *O = c->att + (size_t)(r0 + i0) * qd + (size_t)h * hd;
    if (n == 1) {
        /* Decode: plain loops; a BLAS call costs more than the arithmetic. */
        for (int j = 0; j < P; j++) S[j] = ee_dot(Q, K + (size_t)j * kvd, hd) * scale;
        ee_softmax(S, P);
        for (int e = 0; e < hd; e++) O[e] = 0.0f;
        for (int j = 0; j < P; j++) {
            const float *vr = V + (size_t)j * kvd;
            const float p = S[j];
            for (int e = 0; e < hd; e++) O[e] += p * vr[e];
        }
        return;
    }
    /* S[n][P] = scale * Q K^T */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, P, hd, scale, Q, qd, K, kvd, 0.0f,
                S, P);
    /* Causal mask and softmax: new token i sees positions 0..p0+i. */
    for (int i = 0; i < n; i++) {
        float *row = S + (size_t)i * P;
        int seen = p0 + i0 + i + 1;
        ee_softmax(row, seen);
        for (int j = seen; j < P; j++) row[j] = 0.0f;
    }
    /* O[n][hd] = S V */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, hd, P, 1.0f, S, P, V, kvd, 0.0f, O,
                qd);
}

static void attend(ee_llama_ctx *c, const ee_kv_cache *kv, int layer, int r0, int n, int p0) {
    const int n_head = c->m->hp.n_head, n_chunks = (n + ATT_CHUNK - 1) / ATT_CHUNK;
    const int n_tasks = n_head * n_chunks;
    const int nt = ee_kernels_threads();
    const size_t per_thread = (size_t)(n < ATT_CHUNK ? n : ATT_CHUNK) * (p0 + n);
    /* Largest tasks (last chunks: most columns) first, handed out
     * dynamically, so the triangle balances across threads. */
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt) \
    if (nt > 1 && (long)n * (p0 + n) * c->m->hp.head_dim >= 32768)
    for (int t = 0; t < n_tasks; t++) {
        const int chunk = n_chunks - 1 - t / n_head, h = t % n_head;
        const int i0 = chunk * ATT_CHUNK, i1 = i0 + ATT_CHUNK < n ? i0 + ATT_CHUNK : n;
        attend_task(c, kv, layer, r0, p0, h, i0, i1,
                    c->scores + (size_t)omp_get_thread_num() * per_thread);
    }
}

/* SwiGLU over T rows, rows split across the team for prefill. */
static void swiglu_rows(float *g, const float *u, int T, int ff) {
    const int nt = ee_kernels_threads();
#pragma omp parallel for num_threads(nt) if (nt > 1 && (long)T * ff >= 65536)
    for (int r = 0; r < T; r++) ee_swiglu(g + (size_t)r * ff, u + (size_t)r * ff, (size_t)ff);
}

/* A matrix product of the forward pass; a failed scratch allocation ends
 * the pass with an error (the caches' lengths are not advanced). */
#define MUL(...)                                                                        \
    do {                                                                                \
        if (ee_mat_mul(__VA_ARGS__))                                                    \
            return ee_err_set(err, "out of memory for the dequantization scratch of a " \
                                   "matrix product");                                   \
    } while (0)

int ee_llama_forward(ee_llama_ctx *c, ee_llama_seq *seqs, int n_seqs, ee_err *err) {
    const ee_llama_model *m = c->m;
    const ee_llama_hparams *hp = &m->hp;
    const int d = hp->n_embd, hd = hp->head_dim, qd = hp->n_head * hd,
              kvd = hp->n_head_kv * hd, ff = hp->n_ff;

    /* Validate everything before touching any state. */
    if (n_seqs <= 0) return ee_err_set(err, "empty batch");
    int T = 0, R = 0;
    size_t max_scores = 0;
    for (int s = 0; s < n_seqs; s++) {
        const ee_llama_seq *sq = &seqs[s];
        if (!sq->cache || sq->n_tokens <= 0)
            return ee_err_set(err, "sequence %d: no tokens or no cache", s);
        if (sq->cache->n_layer != hp->n_layer || sq->cache->kv_dim != kvd)
            return ee_err_set(err, "sequence %d: KV cache belongs to another model", s);
        if (sq->n_tokens > sq->cache->n_ctx - sq->cache->n)
            return ee_err_set(err,
                              "sequence %d: %d tokens at position %d exceed the context "
                              "size %d",
                              s, sq->n_tokens, sq->cache->n, sq->cache->n_ctx);
        for (int i = 0; i < sq->n_tokens; i++) {
            if (sq->tokens[i] < 0 || sq->tokens[i] >= hp->n_vocab)
                return ee_err_set(err,
                                  "sequence %d: token %d at index %d is out of range "
                                  "(vocabulary size %d)",
                                  s, sq->tokens[i], i, hp->n_vocab);
        }
        for (int t = 0; t < s; t++)
            if (seqs[t].cache == sq->cache)
                return ee_err_set(err, "sequences %d and %d share a KV cache", t, s);
        T += sq->n_tokens;
        if (sq->logits) R += sq->all_logits ? sq->n_tokens : 1;
        size_t sc = (size_t)(sq->n_tokens < ATT_CHUNK ? sq->n_tokens : ATT_CHUNK) *
                    (sq->cache->n + sq->n_tokens) * (size_t)ee_kernels_threads();
        if (sc > max_scores) max_scores = sc;
    }
    if (ctx_reserve(c, T, R, max_scores, err) != 0) return -1;

    /* Embeddings and positions. */
    for (int s = 0, r = 0; s < n_seqs; s++) {
        for (int i = 0; i < seqs[s].n_tokens; i++, r++) {
            ee_mat_row(&m->tok_embd, seqs[s].tokens[i], c->x + (size_t)r * d);
            c->pos[r] = seqs[s].cache->n + i;
            ee_rope_table(c->rope + (size_t)r * hp->n_rot, hp->n_rot, c->pos[r], hp->rope_theta);
        }
    }

    for (int l = 0; l < hp->n_layer; l++) {
        const ee_llama_layer *L = &m->layers[l];
        /* Attention block. */
        for (int r = 0; r < T; r++)
            ee_rmsnorm(c->xn + (size_t)r * d, c->x + (size_t)r * d, L->attn_norm, d,
                       hp->norm_eps);
        MUL(&L->wq, c->xn, d, T, c->q, qd, 0.0f);
        MUL(&L->wk, c->xn, d, T, c->k, kvd, 0.0f);
        MUL(&L->wv, c->xn, d, T, c->v, kvd, 0.0f);
        for (int r = 0; r < T; r++) {
            const float *cs = c->rope + (size_t)r * hp->n_rot;
            ee_rope_apply(c->q + (size_t)r * qd, hp->n_head, hd, hp->n_rot, cs);
            ee_rope_apply(c->k + (size_t)r * kvd, hp->n_head_kv, hd, hp->n_rot, cs);
        }
        for (int s = 0, r0 = 0; s < n_seqs; s++) {
            ee_kv_cache *kv = seqs[s].cache;
            const int n = seqs[s].n_tokens, p0 = kv->n;
            float *Kc = kv->k + ((size_t)l * kv->n_ctx + p0) * kvd;
            float *Vc = kv->v + ((size_t)l * kv->n_ctx + p0) * kvd;
            memcpy(Kc, c->k + (size_t)r0 * kvd, (size_t)n * kvd * sizeof(float));
            memcpy(Vc, c->v + (size_t)r0 * kvd, (size_t)n * kvd * sizeof(float));
            attend(c, kv, l, r0, n, p0);
            r0 += n;
        }
        MUL(&L->wo, c->att, qd, T, c->x, d, 1.0f); /* x += att Wo^T */

        /* MLP block (SwiGLU). */
        for (int r = 0; r < T; r++)
            ee_rmsnorm(c->xn + (size_t)r * d, c->x + (size_t)r * d, L->ffn_norm, d,
                       hp->norm_eps);
        MUL(&L->w_gate, c->xn, d, T, c->gate, ff, 0.0f);
        MUL(&L->w_up, c->xn, d, T, c->up, ff, 0.0f);
        swiglu_rows(c->gate, c->up, T, ff);
        MUL(&L->w_down, c->gate, ff, T, c->x, d, 1.0f); /* x += h Wd^T */
    }

    /* Final norm and LM head only for the rows that need logits. */
    if (R > 0) {
        int o = 0;
        for (int s = 0, r0 = 0; s < n_seqs; s++) {
            const ee_llama_seq *sq = &seqs[s];
            if (sq->logits) {
                int first = sq->all_logits ? 0 : sq->n_tokens - 1;
                for (int i = first; i < sq->n_tokens; i++, o++)
                    ee_rmsnorm(c->out_x + (size_t)o * d, c->x + (size_t)(r0 + i) * d,
                               m->out_norm, d, hp->norm_eps);
            }
            r0 += sq->n_tokens;
        }
        MUL(&m->output, c->out_x, d, R, c->out_logits, hp->n_vocab, 0.0f);
        o = 0;
        for (int s = 0; s < n_seqs; s++) {
            const ee_llama_seq *sq = &seqs[s];
            if (!sq->logits) continue;
            int rows = sq->all_logits ? sq->n_tokens : 1;
            memcpy(sq->logits, c->out_logits + (size_t)o * hp->n_vocab,
                   (size_t)rows * hp->n_vocab * sizeof(float));
            o += rows;
        }
    }
    for (int s = 0; s < n_seqs; s++) seqs[s].cache->n += seqs[s].n_tokens;
    return 0;
}

int ee_llama_warmup(ee_llama_ctx *c, int n_tokens, ee_err *err) {
    const ee_llama_model *m = c->m;
    if (n_tokens > m->hp.n_ctx_train) n_tokens = m->hp.n_ctx_train;
    ee_kv_cache *kv = ee_kv_cache_new(m, n_tokens, err);
    int32_t *tok = calloc((size_t)n_tokens, sizeof *tok);
    float *lg = malloc((size_t)m->hp.n_vocab * sizeof(float));
    int rc = -1;
    if (kv && tok && lg) {
        ee_llama_seq s = {.tokens = tok, .n_tokens = n_tokens, .cache = kv, .logits = lg};
        rc = ee_llama_forward(c, &s, 1, err);
        if (rc == 0) { /* and the decode path */
            ee_kv_cache_truncate(kv, 0);
            s.n_tokens = 1;
            rc = ee_llama_forward(c, &s, 1, err);
        }
    } else if (kv) {
        ee_err_set(err, "out of memory");
    }
    free(lg);
    free(tok);
    ee_kv_cache_free(kv);
    return rc;
}
