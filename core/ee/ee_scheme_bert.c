/* Equivariant Encryption of a BERT encoder GGUF (ee-bert-v1), e.g.
 * all-MiniLM-L6-v2. Post-LayerNorm, GELU, no RoPE; the output is the mean
 * of the last hidden states, L2-normalised. Proofs: docs/EE.md "The
 * encoder transform set".
 *
 * The transforms (GGUF weights W[out][in], y = W x):
 *   vocabulary   token i -> vperm[i]
 *   residual     a permutation: new coordinate j holds old coordinate
 *                rp[j]. Post-LN leaves the gains and biases ON the stream
 *                (h = g * norm(x) + b is what the next layer adds to), so
 *                a map M of the stream must satisfy LN(x M) = LN(x) M for
 *                every gain: M must keep the mean (M 1 = 1), the norm
 *                (orthogonal) and commute with every diagonal: a
 *                permutation. Pre-LN Llama folds its gains into the next
 *                linear layer instead, which is why it can rotate.
 *   q / k        per head: q -> s R q, k -> (1/s) R k with R a random
 *                orthogonal head_dim x head_dim map and s > 0 (no RoPE,
 *                so the whole head rotates); q.k is unchanged
 *   v / out      per head: v -> U v (U orthogonal), undone in attn_output
 *   heads        permuted per layer (q, k, v and attn_output together)
 *   MLP          channels permuted per layer (up rows, down columns);
 *                scales do not commute with GELU, so there are none
 *   embeddings   position and token-type rows get the residual permutation
 *                like every vector written to the stream
 * The encrypted embedding is the plaintext one with its coordinates
 * permuted (y'[j] = y[rp[j]]): cosines and inner products are unchanged,
 * so an index of encrypted vectors answers exactly what the plaintext
 * index would. */
#include "ee_encrypt.h"

#include "ee_arch.h"
#include "ee_clock.h"
#include "ee_dmat.h"
#include "ee_quant.h"
#include "ee_tensor_io.h"

#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QK_SCALE_RANGE 2.0 /* per-head q scales log-uniform in [1/2, 2] */

/* ---- 1. shapes and secrets ----------------------------------------------- */

typedef struct bert_shape {
    int d, L, nh, hd, ff, n_ctx, n_types;
    uint32_t V;
} bert_shape;

static int read_dim(const ee_gguf *g, const char *key, int *out, ee_err *err) {
    uint32_t v;
    if (ee_gguf_get_u32(g, key, &v, err)) return -1;
    if (v == 0 || v > (1u << 20)) return ee_err_set(err, "%s = %u is out of range", key, v);
    *out = (int)v;
    return 0;
}

static int tensor_rows(const ee_gguf *g, const char *name, int cols, int *rows, ee_err *err) {
    const ee_gguf_tensor *t = ee_gguf_find_tensor(g, name);
    if (!t) return ee_err_set(err, "tensor '%s' is missing", name);
    if (t->n_dims != 2 || (int64_t)t->ne[0] != cols || t->ne[1] == 0 || t->ne[1] > (1u << 24))
        return ee_err_set(err, "tensor '%s' has an unexpected shape (want [%d, rows])", name, cols);
    *rows = (int)t->ne[1];
    return 0;
}

static int read_shape(const ee_gguf *g, bert_shape *b, ee_err *err) {
    memset(b, 0, sizeof *b);
    int V = 0;
    if (read_dim(g, "bert.embedding_length", &b->d, err) ||
        read_dim(g, "bert.block_count", &b->L, err) ||
        read_dim(g, "bert.attention.head_count", &b->nh, err) ||
        read_dim(g, "bert.feed_forward_length", &b->ff, err))
        return -1;
    if (b->d % b->nh != 0)
        return ee_err_set(err, "embedding length %d is not a multiple of %d heads", b->d, b->nh);
    b->hd = b->d / b->nh;
    char n1[64], n2[64], n3[64];
    if (tensor_rows(g, ee_tensor_name(n1, sizeof n1, EE_T_TOKEN_EMBD, 0, "weight"), b->d, &V, err) ||
        tensor_rows(g, ee_tensor_name(n2, sizeof n2, EE_T_POS_EMBD, 0, "weight"), b->d, &b->n_ctx,
                    err) ||
        tensor_rows(g, ee_tensor_name(n3, sizeof n3, EE_T_TOKEN_TYPES, 0, "weight"), b->d,
                    &b->n_types, err))
        return -1;
    b->V = (uint32_t)V;
    return 0;
}

typedef struct bert_secrets {
    bert_shape sh;
    uint32_t *vperm; /* [V] plaintext id -> encrypted id */
    uint32_t *rp;    /* [d] new residual coordinate j holds old coordinate rp[j] */
    uint32_t *hp;    /* [L][nh] new head h holds old head hp[h] */
    double *R;       /* [L][nh][hd][hd] q/k map of the head at new position h */
    double *qs;      /* [L][nh] its q scale (k gets 1/qs) */
    double *U;       /* [L][nh][hd][hd] v map of the head at new position h */
    uint32_t *fp;    /* [L][ff] new MLP channel i holds old channel fp[i] */
} bert_secrets;

static void secrets_free(bert_secrets *s) {
    /* Key material: wiped before freeing. */
#define WIPE(p, n) do { if (p) { sodium_memzero((p), (n)); free(p); } } while (0)
    const bert_shape *b = &s->sh;
    size_t heads = (size_t)b->L * b->nh, hh = (size_t)b->hd * b->hd;
    WIPE(s->vperm, sizeof(uint32_t) * b->V);
    WIPE(s->rp, sizeof(uint32_t) * b->d);
    WIPE(s->hp, sizeof(uint32_t) * heads);
    WIPE(s->R, sizeof(double) * heads * hh);
    WIPE(s->qs, sizeof(double) * heads);
    WIPE(s->U, sizeof(double) * heads * hh);
    WIPE(s->fp, sizeof(uint32_t) * b->L * b->ff);
#undef WIPE
    memset(s, 0, sizeof *s);
}

static int secrets_derive(bert_secrets *s, const ee_key *key, const bert_shape *b, ee_err *err) {
    memset(s, 0, sizeof *s);
    s->sh = *b;
    size_t heads = (size_t)b->L * b->nh, hh = (size_t)b->hd * b->hd;
    s->vperm = malloc(sizeof(uint32_t) * b->V);
    s->rp = malloc(sizeof(uint32_t) * b->d);
    s->hp = malloc(sizeof(uint32_t) * heads);
    s->R = malloc(sizeof(double) * heads * hh);
    s->qs = malloc(sizeof(double) * heads);
    s->U = malloc(sizeof(double) * heads * hh);
    s->fp = malloc(sizeof(uint32_t) * b->L * b->ff);
    if (!s->vperm || !s->rp || !s->hp || !s->R || !s->qs || !s->U || !s->fp) {
        secrets_free(s);
        return ee_err_set(err, "out of memory deriving the transforms");
    }
    ee_stream st;
    /* The same stream as the client's token cipher (ee_vocab_cipher_init). */
    ee_stream_init(&st, key, EE_P_VOCAB_PERM, 0);
    ee_random_permutation(&st, s->vperm, b->V);
    ee_stream_init(&st, key, EE_P_RESID_PERM, 0);
    ee_random_permutation(&st, s->rp, (uint32_t)b->d);
    int rc = 0;
    for (int l = 0; l < b->L && rc == 0; l++) {
        size_t h0 = (size_t)l * b->nh;
        ee_stream_init(&st, key, EE_P_HEAD_PERM, (uint32_t)l);
        ee_random_permutation(&st, s->hp + h0, (uint32_t)b->nh);
        ee_stream_init(&st, key, EE_P_QK_ROT, (uint32_t)l);
        for (int h = 0; h < b->nh && rc == 0; h++) {
            rc = ee_random_orthogonal(&st, s->R + (h0 + h) * hh, b->hd, err);
            s->qs[h0 + h] = ee_random_scale(&st, QK_SCALE_RANGE);
        }
        ee_stream_init(&st, key, EE_P_V_ROT, (uint32_t)l);
        for (int h = 0; h < b->nh && rc == 0; h++)
            rc = ee_random_orthogonal(&st, s->U + (h0 + h) * hh, b->hd, err);
        ee_stream_init(&st, key, EE_P_FFN_PERM, (uint32_t)l);
        ee_random_permutation(&st, s->fp + (size_t)l * b->ff, (uint32_t)b->ff);
    }
    ee_stream_wipe(&st);
    if (rc) secrets_free(s);
    return rc;
}

/* ---- 2. the model walk ------------------------------------------------------ */

typedef struct walk {
    const ee_gguf *g;
    const bert_secrets *s;
    ee_gguf_writer *w;
    ee_dtype type; /* F32 or F16 (matrices; vectors stay F32) */
    ee_err *err;
} walk;

static int emit(const walk *k, const char *name, const double *v, int64_t cols, int64_t rows) {
    const ee_dtype type = rows == 1 ? EE_DT_F32 : k->type;
    size_t rb = ee_dtype_row_bytes(type, (uint64_t)cols);
    uint8_t *out = malloc(rb * rows);
    float *row = malloc(sizeof(float) * cols);
    int rc = -1;
    if (!out || !row) {
        ee_err_set(k->err, "out of memory writing '%s'", name);
        goto done;
    }
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t c = 0; c < cols; c++) row[c] = (float)v[r * cols + c];
        if (ee_quantize_row(type, row, out + r * rb, (uint64_t)cols, k->err)) {
            ee_err_wrap(k->err, "tensor '%s' row %lld", name, (long long)r);
            goto done;
        }
    }
    uint64_t ne[2] = {(uint64_t)cols, (uint64_t)rows};
    rc = ee_gguf_writer_add_tensor(k->w, name, rows == 1 ? 1 : 2, ne, type, out, true, k->err);
done:
    free(out);
    free(row);
    return rc;
}

/* A vector on the residual stream (norm gains and biases, output biases):
 * v'[j] = v[rp[j]]. */
static int do_stream_vec(walk *k, ee_tensor role, int l, const char *suffix) {
    const int d = k->s->sh.d;
    char name[96];
    ee_tensor_name(name, sizeof name, role, l, suffix);
    double *v = ee_tensor_load_d(k->g, name, d, 1, k->err);
    double *o = malloc(sizeof(double) * d);
    int rc = -1;
    if (v && o) {
        for (int j = 0; j < d; j++) o[j] = v[k->s->rp[j]];
        rc = emit(k, name, o, d, 1);
    } else if (v) {
        ee_err_set(k->err, "out of memory");
    }
    free(v);
    free(o);
    return rc;
}

/* Rows written to the stream, one per table entry (token, position, token
 * type): columns permuted; rows reordered by row_perm (NULL: kept). */
static int do_embedding_table(walk *k, ee_tensor role, int rows, const uint32_t *row_perm) {
    const int d = k->s->sh.d;
    char name[96];
    ee_tensor_name(name, sizeof name, role, 0, "weight");
    double *E = ee_tensor_load_d(k->g, name, d, rows, k->err);
    double *O = E ? malloc(sizeof(double) * (size_t)rows * d) : NULL;
    int rc = -1;
    if (E && O) {
        for (int64_t i = 0; i < rows; i++) {
            double *dst = O + (size_t)(row_perm ? row_perm[i] : (uint32_t)i) * d;
            for (int j = 0; j < d; j++) dst[j] = E[(size_t)i * d + k->s->rp[j]];
        }
        rc = emit(k, name, O, d, rows);
    } else if (E) {
        ee_err_set(k->err, "out of memory");
    }
    free(E);
    free(O);
    return rc;
}

/* q, k or v of layer l: W [d][d] (rows = heads x head_dim), b [d].
 * New head h (old head hp[h]) gets rows  scale * M_h W_old_head,  input
 * columns permuted by rp; M_h is R_h (q: scale s, k: 1/s) or U_h (v). */
static int do_qkv(walk *k, int l, ee_tensor role) {
    const bert_secrets *s = k->s;
    const int d = s->sh.d, nh = s->sh.nh, hd = s->sh.hd;
    const size_t hh = (size_t)hd * hd, h0 = (size_t)l * nh;
    char wn[96], bn[96];
    ee_tensor_name(wn, sizeof wn, role, l, "weight");
    ee_tensor_name(bn, sizeof bn, role, l, "bias");
    double *W = ee_tensor_load_d(k->g, wn, d, d, k->err);
    double *B = W ? ee_tensor_load_d(k->g, bn, d, 1, k->err) : NULL;
    double *OW = B ? malloc(sizeof(double) * d * d) : NULL;
    double *OB = OW ? malloc(sizeof(double) * d) : NULL;
    double *X = OB ? malloc(sizeof(double) * hd * d) : NULL;
    int rc = -1;
    if (!X) {
        if (B) ee_err_set(k->err, "out of memory");
        goto done;
    }
    for (int h = 0; h < nh; h++) {
        const int old = (int)s->hp[h0 + h];
        const double *M = (role == EE_T_ATTN_V ? s->U : s->R) + (h0 + h) * hh;
        const double sc = role == EE_T_ATTN_Q ? s->qs[h0 + h]
                        : role == EE_T_ATTN_K ? 1.0 / s->qs[h0 + h] : 1.0;
        /* X = the old head's rows with input columns permuted: [hd][d] */
        for (int a = 0; a < hd; a++)
            for (int j = 0; j < d; j++) X[(size_t)a * d + j] = W[(size_t)(old * hd + a) * d + s->rp[j]];
        /* new rows = sc * M X;  new bias = sc * M b_old */
        ee_dgemm(M, X, OW + (size_t)h * hd * d, hd, hd, d);
        for (int a = 0; a < hd; a++) {
            double acc = 0.0;
            for (int c = 0; c < hd; c++) acc += M[(size_t)a * hd + c] * B[old * hd + c];
            OB[h * hd + a] = sc * acc;
            for (int j = 0; j < d; j++) OW[(size_t)(h * hd + a) * d + j] *= sc;
        }
    }
    rc = emit(k, wn, OW, d, d) || emit(k, bn, OB, d, 1) ? -1 : 0;
done:
    free(W);
    free(B);
    free(OW);
    free(OB);
    free(X);
    return rc;
}

/* attn_output W [d][d]: output rows permuted by rp; the input columns of new
 * head h are the old head's columns times U_h^T (undoing v -> U v). */
static int do_attn_out(walk *k, int l) {
    const bert_secrets *s = k->s;
    const int d = s->sh.d, nh = s->sh.nh, hd = s->sh.hd;
    const size_t hh = (size_t)hd * hd, h0 = (size_t)l * nh;
    char wn[96];
    ee_tensor_name(wn, sizeof wn, EE_T_ATTN_OUT, l, "weight");
    double *W = ee_tensor_load_d(k->g, wn, d, d, k->err);
    double *O = W ? malloc(sizeof(double) * d * d) : NULL;
    int rc = -1;
    if (!O) {
        if (W) ee_err_set(k->err, "out of memory");
        goto done;
    }
    for (int j = 0; j < d; j++) {
        const double *src = W + (size_t)s->rp[j] * d;
        double *dst = O + (size_t)j * d;
        for (int h = 0; h < nh; h++) {
            const int old = (int)s->hp[h0 + h];
            const double *U = s->U + (h0 + h) * hh;
            for (int a = 0; a < hd; a++) {
                double acc = 0.0; /* sum_b W[rp j][old, b] U[a][b] */
                for (int b = 0; b < hd; b++) acc += src[old * hd + b] * U[(size_t)a * hd + b];
                dst[h * hd + a] = acc;
            }
        }
    }
    rc = emit(k, wn, O, d, d) || do_stream_vec(k, EE_T_ATTN_OUT, l, "bias");
done:
    free(W);
    free(O);
    return rc;
}

/* ffn_up W [ff][d], b [ff]: rows by fp, columns by rp. ffn_down W [d][ff],
 * b [d]: rows by rp, columns by fp. */
static int do_ffn(walk *k, int l) {
    const bert_secrets *s = k->s;
    const int d = s->sh.d, ff = s->sh.ff;
    const uint32_t *fp = s->fp + (size_t)l * ff;
    char un[96], ub[96], dn[96];
    ee_tensor_name(un, sizeof un, EE_T_FFN_UP, l, "weight");
    ee_tensor_name(ub, sizeof ub, EE_T_FFN_UP, l, "bias");
    ee_tensor_name(dn, sizeof dn, EE_T_FFN_DOWN, l, "weight");
    double *Wu = ee_tensor_load_d(k->g, un, d, ff, k->err);
    double *Bu = Wu ? ee_tensor_load_d(k->g, ub, ff, 1, k->err) : NULL;
    double *Wd = Bu ? ee_tensor_load_d(k->g, dn, ff, d, k->err) : NULL;
    double *O = Wd ? malloc(sizeof(double) * (size_t)d * ff) : NULL;
    double *OB = O ? malloc(sizeof(double) * ff) : NULL;
    int rc = -1;
    if (!OB) {
        if (Wd) ee_err_set(k->err, "out of memory");
        goto done;
    }
    for (int i = 0; i < ff; i++) {
        for (int j = 0; j < d; j++) O[(size_t)i * d + j] = Wu[(size_t)fp[i] * d + s->rp[j]];
        OB[i] = Bu[fp[i]];
    }
    if (emit(k, un, O, d, ff) || emit(k, ub, OB, ff, 1)) goto done;
    for (int j = 0; j < d; j++)
        for (int i = 0; i < ff; i++) O[(size_t)j * ff + i] = Wd[(size_t)s->rp[j] * ff + fp[i]];
    rc = emit(k, dn, O, ff, d) || do_stream_vec(k, EE_T_FFN_DOWN, l, "bias");
done:
    free(Wu);
    free(Bu);
    free(Wd);
    free(O);
    free(OB);
    return rc;
}

static int do_layer(walk *k, int l) {
    return do_qkv(k, l, EE_T_ATTN_Q) || do_qkv(k, l, EE_T_ATTN_K) || do_qkv(k, l, EE_T_ATTN_V) ||
                   do_attn_out(k, l) || do_stream_vec(k, EE_T_ATTN_OUT_NORM, l, "weight") ||
                   do_stream_vec(k, EE_T_ATTN_OUT_NORM, l, "bias") || do_ffn(k, l) ||
                   do_stream_vec(k, EE_T_LAYER_OUT_NORM, l, "weight") ||
                   do_stream_vec(k, EE_T_LAYER_OUT_NORM, l, "bias")
               ? -1
               : 0;
}

/* Metadata: the architecture's hyperparameters and sentence-transformers
 * settings (eeinfer.*) kept, the plaintext vocabulary replaced by opaque
 * placeholders, special ids encrypted, and the ee.* keys. */
static int write_metadata(walk *k, const ee_key *key, const char *scheme) {
    const bert_secrets *s = k->s;
    ee_gguf_writer *w = k->w;
    ee_err *err = k->err;
    for (uint64_t i = 0; i < ee_gguf_n_kv(k->g); i++) {
        const ee_gguf_kv *kv = ee_gguf_kv_at(k->g, i);
        bool keep = strncmp(kv->key, "bert.", 5) == 0 || strncmp(kv->key, "eeinfer.", 8) == 0 ||
                    strcmp(kv->key, "general.architecture") == 0 ||
                    strcmp(kv->key, "general.alignment") == 0;
        if (keep && ee_gguf_writer_copy_kv(w, kv, err)) return -1;
    }
    if (ee_gguf_writer_set_u32(w, "general.file_type", k->type == EE_DT_F16 ? 1 : 0, err) ||
        ee_gguf_writer_set_str(w, "general.name", "eeinfer encrypted encoder", err))
        return -1;
    const uint32_t V = s->sh.V;
    char **names = malloc(sizeof(char *) * V);
    int32_t *types = malloc(sizeof(int32_t) * V);
    char *pool = malloc((size_t)V * 16);
    int rc = -1;
    if (!names || !types || !pool) {
        ee_err_set(err, "out of memory");
        goto done;
    }
    for (uint32_t i = 0; i < V; i++) {
        names[i] = pool + (size_t)i * 16;
        snprintf(names[i], 16, "<ee_%u>", i);
        types[i] = 1; /* normal */
    }
    if (ee_gguf_writer_set_str(w, "tokenizer.ggml.model", "bert", err) ||
        ee_gguf_writer_set_str_arr(w, "tokenizer.ggml.tokens", (const char *const *)names, V, err) ||
        ee_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", EE_GGUF_I32, types, V, err))
        goto done;
    /* Special ids a runtime may look up (pad/cls/sep...), encrypted. */
    static const char *const special[] = {
        "tokenizer.ggml.cls_token_id",     "tokenizer.ggml.seperator_token_id",
        "tokenizer.ggml.padding_token_id", "tokenizer.ggml.unknown_token_id",
        "tokenizer.ggml.mask_token_id",
    };
    for (size_t i = 0; i < sizeof special / sizeof special[0]; i++) {
        uint32_t id;
        if (!ee_gguf_find_kv(k->g, special[i]) || ee_gguf_get_u32(k->g, special[i], &id, NULL))
            continue;
        if (id < V && ee_gguf_writer_set_u32(w, special[i], s->vperm[id], err)) goto done;
    }
    if (ee_gguf_writer_set_str(w, "ee.scheme", scheme, err) ||
        ee_gguf_writer_set_str(w, "ee.key_id", key->id, err) ||
        ee_gguf_writer_set_u32(w, "ee.vocab_size", V, err))
        goto done;
    rc = 0;
done:
    free(names);
    free(types);
    free(pool);
    return rc;
}

int ee_encrypt_bert(const ee_gguf *plain, const ee_key *key, const char *scheme,
                    const ee_encrypt_opts *opts, const char *out_path, ee_encrypt_stats *stats,
                    ee_err *err) {
    ee_encrypt_stats st = {0};
    ee_dtype type = opts ? opts->out_type : EE_DT_F32;
    if (type != EE_DT_F32 && type != EE_DT_F16)
        return ee_err_set(err, "encrypted encoders are written as f32 or f16 (asked for %s)",
                          ee_dtype_get(type) ? ee_dtype_get(type)->name : "?");
    bert_shape b;
    if (read_shape(plain, &b, err)) return -1;
    double t0 = ee_now_ms();
    ee_key skey;
    bert_secrets s;
    if (ee_scheme_key(key, plain, scheme, &skey, err) || secrets_derive(&s, &skey, &b, err)) {
        ee_key_wipe(&skey);
        return -1;
    }
    st.derive_ms = ee_now_ms() - t0;
    memcpy(st.key_id, skey.id, sizeof st.key_id);
    int rc = -1;
    ee_gguf_writer *w = ee_gguf_writer_new(err);
    if (!w) goto done;
    walk k = {.g = plain, .s = &s, .w = w, .type = type, .err = err};
    t0 = ee_now_ms();
    if (write_metadata(&k, &skey, scheme) ||
        do_embedding_table(&k, EE_T_TOKEN_EMBD, (int)b.V, s.vperm) ||
        do_embedding_table(&k, EE_T_POS_EMBD, b.n_ctx, NULL) ||
        do_embedding_table(&k, EE_T_TOKEN_TYPES, b.n_types, NULL) ||
        do_stream_vec(&k, EE_T_TOKEN_EMBD_NORM, 0, "weight") ||
        do_stream_vec(&k, EE_T_TOKEN_EMBD_NORM, 0, "bias"))
        goto done;
    for (int l = 0; l < b.L; l++)
        if (do_layer(&k, l)) goto done;
    st.transform_ms = ee_now_ms() - t0;
    if (ee_encrypt_write(w, out_path, &st, err)) goto done;
    rc = 0;
done:
    ee_gguf_writer_free(w);
    secrets_free(&s);
    ee_key_wipe(&skey);
    if (rc == 0 && stats) *stats = st;
    return rc;
}
