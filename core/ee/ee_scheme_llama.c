/* Equivariant Encryption of a Llama GGUF (the ee-llama-v1/v2 schemes).
 * Sections:
 *   1. secrets: every transform derived from the key (deterministic)
 *   2. tensors in double: load, per-row/column transforms, emit
 *   3. the model walk: embedding, layers, LM head, metadata
 * Proofs of exactness: docs/EE.md. */
#include "ee_encrypt.h"

#include "ee_clock.h"
#include "ee_dmat.h"
#include "ee_tensor_io.h"
#include "ee_llama.h"
#include "ee_quant.h"
#include "ee_tokenizer.h"

#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QK_SCALE_RANGE 2.0  /* q/k pair scales log-uniform in [1/2, 2] */
#define FFN_SCALE_RANGE 2.0 /* up-projection scales log-uniform in [1/2, 2] */

/* ---- 1. secrets ------------------------------------------------------------ */

typedef struct secrets {
    int d, L, nh, nkv, hd, ff, group;
    uint32_t V;
    uint32_t *vperm;  /* [V] pi */
    double *Q;        /* [d][d] residual rotation */
    double *Qt;       /* [d][d] its transpose */
    uint32_t *qpos;   /* [L][nh] new position of each original q head */
    uint32_t *kvpos;  /* [L][nkv] new position of each original kv head */
    double *pair_cs;  /* [L][nkv][hd/2][2] cos, sin of each pair's angle */
    double *pair_s;   /* [L][nkv][hd/2] each pair's scale (q: s, k: 1/s) */
    double *U;        /* [L][nkv][hd][hd] v rotations */
    uint32_t *fperm;  /* [L][ff] MLP channel permutation */
    double *fscale;   /* [L][ff] up-projection scales */
} secrets;

static void secrets_free(secrets *s) {
    /* Everything here is key material: wipe before freeing. */
#define WIPE(p, n) do { if (p) { sodium_memzero((p), (n)); free(p); } } while (0)
    size_t L = (size_t)s->L;
    WIPE(s->vperm, sizeof(uint32_t) * s->V);
    WIPE(s->Q, sizeof(double) * s->d * s->d);
    WIPE(s->Qt, sizeof(double) * s->d * s->d);
    WIPE(s->qpos, sizeof(uint32_t) * L * s->nh);
    WIPE(s->kvpos, sizeof(uint32_t) * L * s->nkv);
    WIPE(s->pair_cs, sizeof(double) * L * s->nkv * s->hd);
    WIPE(s->pair_s, sizeof(double) * L * s->nkv * (s->hd / 2));
    WIPE(s->U, sizeof(double) * L * s->nkv * s->hd * s->hd);
    WIPE(s->fperm, sizeof(uint32_t) * L * s->ff);
    WIPE(s->fscale, sizeof(double) * L * s->ff);
#undef WIPE
    memset(s, 0, sizeof *s);
}

static int secrets_derive(secrets *s, const ee_key *key, const ee_llama_hparams *hp, ee_err *err) {
    memset(s, 0, sizeof *s);
    s->d = hp->n_embd;
    s->L = hp->n_layer;
    s->nh = hp->n_head;
    s->nkv = hp->n_head_kv;
    s->hd = hp->head_dim;
    s->ff = hp->n_ff;
    s->V = (uint32_t)hp->n_vocab;
    s->group = s->nh / s->nkv;
    size_t L = (size_t)s->L;
    s->vperm = malloc(sizeof(uint32_t) * s->V);
    s->Q = malloc(sizeof(double) * s->d * s->d);
    s->Qt = malloc(sizeof(double) * s->d * s->d);
    s->qpos = malloc(sizeof(uint32_t) * L * s->nh);
    s->kvpos = malloc(sizeof(uint32_t) * L * s->nkv);
    s->pair_cs = malloc(sizeof(double) * L * s->nkv * s->hd);
    s->pair_s = malloc(sizeof(double) * L * s->nkv * (s->hd / 2));
    s->U = malloc(sizeof(double) * L * s->nkv * s->hd * s->hd);
    s->fperm = malloc(sizeof(uint32_t) * L * s->ff);
    s->fscale = malloc(sizeof(double) * L * s->ff);
    uint32_t *tmp = malloc(sizeof(uint32_t) * (s->nh > s->nkv ? s->nh : s->nkv));
    if (!s->vperm || !s->Q || !s->Qt || !s->qpos || !s->kvpos || !s->pair_cs || !s->pair_s ||
        !s->U || !s->fperm || !s->fscale || !tmp) {
        free(tmp);
        secrets_free(s);
        return ee_err_set(err, "out of memory deriving transforms");
    }
    ee_stream st;
    ee_stream_init(&st, key, EE_P_VOCAB_PERM, 0);
    ee_random_permutation(&st, s->vperm, s->V);
    ee_stream_init(&st, key, EE_P_RESID_ROT, 0);
    int rc = ee_random_orthogonal(&st, s->Q, s->d, err);
    if (rc == 0) ee_dtranspose(s->Q, s->Qt, s->d, s->d);
    for (int l = 0; l < s->L && rc == 0; l++) {
        /* Heads: kv heads permuted; q heads move with their kv head and are
         * permuted within the group, so GQA's head -> kv head map holds. */
        ee_stream_init(&st, key, EE_P_HEAD_PERM, (uint32_t)l);
        uint32_t *kvp = s->kvpos + (size_t)l * s->nkv, *qp = s->qpos + (size_t)l * s->nh;
        ee_random_permutation(&st, kvp, (uint32_t)s->nkv);
        for (int g = 0; g < s->nkv; g++) {
            ee_random_permutation(&st, tmp, (uint32_t)s->group);
            for (int j = 0; j < s->group; j++)
                qp[g * s->group + j] = kvp[g] * (uint32_t)s->group + tmp[j];
        }
        /* q/k pair maps, per original kv head and pair. */
        ee_stream_init(&st, key, EE_P_QK_PAIR, (uint32_t)l);
        for (int kh = 0; kh < s->nkv; kh++)
            for (int i = 0; i < s->hd / 2; i++) {
                size_t o = ((size_t)l * s->nkv + kh) * (s->hd / 2) + i;
                /* A uniformly random angle as a normalised Gaussian pair:
                 * only sqrt and division, which IEEE rounds exactly, so the
                 * bits are the same on every machine (libm's cos/sin are
                 * not guaranteed to be). */
                double gx, gy, r;
                do {
                    gx = ee_stream_gauss(&st);
                    gy = ee_stream_gauss(&st);
                    r = sqrt(gx * gx + gy * gy);
                } while (r < 1e-300);
                s->pair_cs[2 * o] = gx / r;
                s->pair_cs[2 * o + 1] = gy / r;
                s->pair_s[o] = ee_random_scale(&st, QK_SCALE_RANGE);
            }
        /* v rotations, per original kv head. */
        for (int kh = 0; kh < s->nkv && rc == 0; kh++) {
            ee_stream_init(&st, key, EE_P_V_ROT, (uint32_t)(l * s->nkv + kh));
            rc = ee_random_orthogonal(&st, s->U + ((size_t)l * s->nkv + kh) * s->hd * s->hd, s->hd,
                                      err);
        }
        ee_stream_init(&st, key, EE_P_FFN_PERM, (uint32_t)l);
        ee_random_permutation(&st, s->fperm + (size_t)l * s->ff, (uint32_t)s->ff);
        ee_stream_init(&st, key, EE_P_FFN_SCALE, (uint32_t)l);
        for (int j = 0; j < s->ff; j++)
            s->fscale[(size_t)l * s->ff + j] = ee_random_scale(&st, FFN_SCALE_RANGE);
    }
    ee_stream_wipe(&st);
    free(tmp);
    if (rc != 0) secrets_free(s);
    return rc;
}

/* ---- 2. tensors in double ------------------------------------------------------ */

/* One encryption's state as it walks the model's tensors. */
typedef struct walk {
    const ee_gguf *g;
    const secrets *s;
    ee_gguf_writer *w;
    ee_dtype type;       /* file type */
    bool ref_quantizer; /* ggml's reference rounding instead of the search */
    ee_err *err;
} walk;

/* Round v [rows][cols] to its type in a file of type k->type (the rule is
 * ee_llama_tensor_type's) and add it to the writer as tensor `name`. */
static int emit(const walk *k, const char *name, const double *v, int64_t cols, int64_t rows) {
    ee_gguf_writer *w = k->w;
    ee_err *err = k->err;
    const ee_dtype type = ee_llama_tensor_type(k->type, name, rows == 1 ? 1 : 2);
    size_t rb = ee_dtype_row_bytes(type, (uint64_t)cols);
    uint8_t *out = malloc(rb * rows);
    float *row = malloc(sizeof(float) * cols);
    int rc = -1;
    if (!out || !row) {
        ee_err_set(err, "out of memory writing '%s'", name);
        goto done;
    }
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t c = 0; c < cols; c++) row[c] = (float)v[r * cols + c];
        int q = k->ref_quantizer
                    ? ee_quantize_row(type, row, out + r * rb, (uint64_t)cols, err)
                    : ee_quantize_row_search(type, row, out + r * rb, (uint64_t)cols, err);
        if (q) {
            ee_err_wrap(err, "tensor '%s' row %lld", name, (long long)r);
            goto done;
        }
    }
    uint64_t ne[2] = {(uint64_t)cols, (uint64_t)rows};
    rc = ee_gguf_writer_add_tensor(w, name, rows == 1 ? 1 : 2, ne, type, out, true, err);
done:
    free(out);
    free(row);
    return rc;
}

static int emit_ones(ee_gguf_writer *w, const char *name, int64_t n, ee_err *err) {
    float *v = malloc(sizeof(float) * n);
    if (!v) return ee_err_set(err, "out of memory");
    for (int64_t i = 0; i < n; i++) v[i] = 1.0f;
    uint64_t ne[1] = {(uint64_t)n};
    int rc = ee_gguf_writer_add_tensor(w, name, 1, ne, EE_DT_F32, v, true, err);
    free(v);
    return rc;
}

/* X[rows][d] -> (X diag(g)) Q^T: the input side of a layer fed by a normed,
 * rotated residual stream (gain folded in, rotation undone). */
static double *fold_gain_unrotate(const secrets *s, double *X, int64_t rows, const double *g) {
    const int d = s->d;
    if (g)
        for (int64_t r = 0; r < rows; r++)
            for (int c = 0; c < d; c++) X[r * d + c] *= g[c];
    double *Y = malloc(sizeof(double) * rows * d);
    if (Y) ee_dgemm(X, s->Qt, Y, rows, d, d);
    return Y;
}

/* W[d][cols] -> Q W: the output side of a layer writing the residual stream. */
static double *rotate_out(const secrets *s, const double *W, int64_t cols) {
    double *Y = malloc(sizeof(double) * s->d * cols);
    if (Y) ee_dgemm(s->Q, W, Y, s->d, s->d, cols);
    return Y;
}

/* ---- 3. the model walk ------------------------------------------------------------- */


/* Row i of T (a [V][d] matrix over plaintext ids) is written at row pi(i):
 * the encrypted id's row. */
static int emit_vocab_rows(walk *k, const char *name, const double *T) {
    const secrets *s = k->s;
    double *P = malloc(sizeof(double) * s->V * s->d);
    if (!P) return ee_err_set(k->err, "out of memory writing %s", name);
    for (uint32_t i = 0; i < s->V; i++)
        memcpy(P + (size_t)s->vperm[i] * s->d, T + (size_t)i * s->d, sizeof(double) * s->d);
    int rc = emit(k, name, P, s->d, s->V);
    free(P);
    return rc;
}

static int do_embedding(walk *k) {
    const secrets *s = k->s;
    double *E = ee_tensor_load_d(k->g, "token_embd.weight", s->d, s->V, k->err);
    if (!E) return -1;
    double *T = fold_gain_unrotate(s, E, s->V, NULL); /* rows e_i^T Q^T = (Q e_i)^T */
    int rc = T ? emit_vocab_rows(k, "token_embd.weight", T)
               : ee_err_set(k->err, "out of memory transforming token_embd.weight");
    free(T);
    free(E);
    return rc;
}

static int do_head(walk *k) {
    const secrets *s = k->s;
    const char *src = ee_gguf_find_tensor(k->g, "output.weight") ? "output.weight" : "token_embd.weight";
    double *W = ee_tensor_load_d(k->g, src, s->d, s->V, k->err);
    double *gn = W ? ee_tensor_load_d(k->g, "output_norm.weight", s->d, 1, k->err) : NULL;
    if (!W || !gn) {
        free(W);
        return -1;
    }
    /* logits_i = W_i (g o n(h)) = (W_i diag(g) Q^T) n(Q h): untied, because
     * the gain cannot be folded into the embedding rows as well. */
    double *T = fold_gain_unrotate(s, W, s->V, gn);
    int rc = T ? emit_vocab_rows(k, "output.weight", T)
               : ee_err_set(k->err, "out of memory transforming %s", src);
    if (rc == 0) rc = emit_ones(k->w, "output_norm.weight", s->d, k->err);
    free(T);
    free(gn);
    free(W);
    return rc;
}

/* Rows of one head (hd rows of `cols`) mixed pairwise by scale*Rot(phi). */
static void pair_mix(const double *in, double *out, int hd, int64_t cols, const double *cs,
                     const double *sc, bool inverse_scale) {
    for (int i = 0; i < hd / 2; i++) {
        const double c = cs[2 * i], sn = cs[2 * i + 1];
        const double a = inverse_scale ? 1.0 / sc[i] : sc[i];
        const double *r0 = in + (size_t)(2 * i) * cols, *r1 = r0 + cols;
        double *o0 = out + (size_t)(2 * i) * cols, *o1 = o0 + cols;
        for (int64_t j = 0; j < cols; j++) {
            o0[j] = a * (c * r0[j] - sn * r1[j]);
            o1[j] = a * (sn * r0[j] + c * r1[j]);
        }
    }
}

static int do_layer(walk *k, int l) {
    const secrets *s = k->s;
    const int d = s->d, hd = s->hd, qd = s->nh * hd, kvd = s->nkv * hd, ff = s->ff;
    const uint32_t *qpos = s->qpos + (size_t)l * s->nh, *kvpos = s->kvpos + (size_t)l * s->nkv;
    const double *cs = s->pair_cs + (size_t)l * s->nkv * hd;
    const double *ps = s->pair_s + (size_t)l * s->nkv * (hd / 2);
    const double *U = s->U + (size_t)l * s->nkv * hd * hd;
    const uint32_t *fp = s->fperm + (size_t)l * ff;
    const double *fc = s->fscale + (size_t)l * ff;
    char name[96];
    int rc = -1;
    double *ga = NULL, *gf = NULL, *W = NULL, *X = NULL, *O = NULL;
#define NAME(suffix) (snprintf(name, sizeof name, "blk.%d.%s.weight", l, suffix), name)
#define LOAD(var, suffix, cols, rows)                                          \
    do {                                                                       \
        free(var);                                                             \
        if (!(var = ee_tensor_load_d(k->g, NAME(suffix), cols, rows, k->err))) goto done; \
    } while (0)
#define NEED(p) do { if (!(p)) { ee_err_set(k->err, "out of memory (layer %d)", l); goto done; } } while (0)

    LOAD(ga, "attn_norm", d, 1);
    LOAD(gf, "ffn_norm", d, 1);

    /* Wq [qd][d]: gain folded, rotation undone, each head's pairs mixed by
     * s Rot(phi) of its kv head, head moved to its new position. */
    LOAD(W, "attn_q", d, qd);
    free(X);
    NEED(X = fold_gain_unrotate(s, W, qd, ga));
    free(O);
    NEED(O = malloc(sizeof(double) * qd * d));
    for (int h = 0; h < s->nh; h++) {
        int kh = h / s->group;
        pair_mix(X + (size_t)h * hd * d, O + (size_t)qpos[h] * hd * d, hd, d,
                 cs + (size_t)kh * hd, ps + (size_t)kh * (hd / 2), false);
    }
    if (emit(k, NAME("attn_q"), O, d, qd)) goto done;

    /* Wk [kvd][d]: same pair rotations with scale 1/s: q.k is unchanged. */
    LOAD(W, "attn_k", d, kvd);
    free(X);
    NEED(X = fold_gain_unrotate(s, W, kvd, ga));
    for (int kh = 0; kh < s->nkv; kh++)
        pair_mix(X + (size_t)kh * hd * d, O + (size_t)kvpos[kh] * hd * d, hd, d,
                 cs + (size_t)kh * hd, ps + (size_t)kh * (hd / 2), true);
    if (emit(k, NAME("attn_k"), O, d, kvd)) goto done;

    /* Wv [kvd][d]: each kv head's rows multiplied by its U. */
    LOAD(W, "attn_v", d, kvd);
    free(X);
    NEED(X = fold_gain_unrotate(s, W, kvd, ga));
    for (int kh = 0; kh < s->nkv; kh++)
        ee_dgemm(U + (size_t)kh * hd * hd, X + (size_t)kh * hd * d, O + (size_t)kvpos[kh] * hd * d,
                 hd, hd, d);
    if (emit(k, NAME("attn_v"), O, d, kvd)) goto done;

    /* Wo [d][qd]: Q Wo, then head h's column block (now at qpos[h]) times
     * U^T of its kv head, undoing the v rotation. */
    LOAD(W, "attn_output", qd, d);
    free(X);
    NEED(X = rotate_out(s, W, qd));
    for (int h = 0; h < s->nh; h++) {
        const double *Uk = U + (size_t)(h / s->group) * hd * hd;
        for (int r = 0; r < d; r++) {
            const double *src = X + (size_t)r * qd + (size_t)h * hd;
            double *dst = O + (size_t)r * qd + (size_t)qpos[h] * hd;
            for (int a = 0; a < hd; a++) {
                double acc = 0.0;
                for (int b = 0; b < hd; b++) acc += src[b] * Uk[(size_t)a * hd + b];
                dst[a] = acc;
            }
        }
    }
    if (emit(k, NAME("attn_output"), O, qd, d)) goto done;

    /* MLP: gate rows permuted; up rows permuted and scaled by c; down
     * rotated on the output side, columns permuted and scaled by 1/c. */
    free(O);
    NEED(O = malloc(sizeof(double) * ff * d));
    LOAD(W, "ffn_gate", d, ff);
    free(X);
    NEED(X = fold_gain_unrotate(s, W, ff, gf));
    for (int j = 0; j < ff; j++)
        memcpy(O + (size_t)fp[j] * d, X + (size_t)j * d, sizeof(double) * d);
    if (emit(k, NAME("ffn_gate"), O, d, ff)) goto done;

    LOAD(W, "ffn_up", d, ff);
    free(X);
    NEED(X = fold_gain_unrotate(s, W, ff, gf));
    for (int j = 0; j < ff; j++)
        for (int c = 0; c < d; c++) O[(size_t)fp[j] * d + c] = fc[j] * X[(size_t)j * d + c];
    if (emit(k, NAME("ffn_up"), O, d, ff)) goto done;

    LOAD(W, "ffn_down", ff, d);
    free(X);
    NEED(X = rotate_out(s, W, ff));
    for (int r = 0; r < d; r++)
        for (int j = 0; j < ff; j++) O[(size_t)r * ff + fp[j]] = X[(size_t)r * ff + j] / fc[j];
    if (emit(k, NAME("ffn_down"), O, ff, d)) goto done;

    if (emit_ones(k->w, NAME("attn_norm"), d, k->err)) goto done;
    if (emit_ones(k->w, NAME("ffn_norm"), d, k->err)) goto done;
    rc = 0;
done:
#undef NAME
#undef LOAD
#undef NEED
    free(ga);
    free(gf);
    free(W);
    free(X);
    free(O);
    return rc;
}

/* Metadata: hyperparameters kept (a worker needs them), identity and the
 * plaintext tokenizer dropped, opaque placeholders so any GGUF runtime can
 * load the file, and the ee.* keys. */
static int write_metadata(walk *k, const ee_key *key, const char *scheme, const ee_tokenizer *tok) {
    const secrets *s = k->s;
    ee_gguf_writer *w = k->w;
    ee_err *err = k->err;
    for (uint64_t i = 0; i < ee_gguf_n_kv(k->g); i++) {
        const ee_gguf_kv *kv = ee_gguf_kv_at(k->g, i);
        bool keep = strncmp(kv->key, "llama.", 6) == 0 ||
                    strcmp(kv->key, "general.architecture") == 0 ||
                    strcmp(kv->key, "general.alignment") == 0 ||
                    strcmp(kv->key, "general.quantization_version") == 0;
        if (keep && ee_gguf_writer_copy_kv(w, kv, err)) return -1;
    }
    int ftype = ee_llama_file_type_id(k->type);
    if (ee_gguf_writer_set_u32(w, "general.file_type", (uint32_t)ftype, err) ||
        ee_gguf_writer_set_str(w, "general.name", "eeinfer encrypted model", err))
        return -1;
    /* Placeholders "<ee_N>" for encrypted id N: a vocabulary shape any GGUF
     * runtime accepts, carrying nothing about the plaintext tokens. */
    char **names = malloc(sizeof(char *) * s->V);
    int32_t *types = malloc(sizeof(int32_t) * s->V);
    char *pool = malloc((size_t)s->V * 16);
    if (!names || !types || !pool) {
        free(names);
        free(types);
        free(pool);
        return ee_err_set(err, "out of memory");
    }
    for (uint32_t i = 0; i < s->V; i++) {
        names[i] = pool + (size_t)i * 16;
        snprintf(names[i], 16, "<ee_%u>", i);
        types[i] = EE_TOKTYPE_NORMAL;
    }
    int rc = ee_gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2", err) ||
             ee_gguf_writer_set_str(w, "tokenizer.ggml.pre", "default", err) ||
             ee_gguf_writer_set_str_arr(w, "tokenizer.ggml.tokens", (const char *const *)names,
                                        s->V, err) ||
             ee_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", EE_GGUF_I32, types, s->V, err) ||
             ee_gguf_writer_set_str_arr(w, "tokenizer.ggml.merges", NULL, 0, err) ||
             ee_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", false, err);
    free(names);
    free(types);
    free(pool);
    if (rc) return -1;
    int32_t eog[16], enc[16];
    int n = ee_tokenizer_eog_ids(tok, eog, 16);
    if (n > 16) n = 16;
    for (int i = 0; i < n; i++) enc[i] = (int32_t)s->vperm[eog[i]];
    int32_t eos = ee_tokenizer_eos(tok);
    if (ee_gguf_writer_set_str(w, "ee.scheme", scheme, err) ||
        ee_gguf_writer_set_str(w, "ee.key_id", key->id, err) ||
        ee_gguf_writer_set_arr(w, "ee.stop_ids", EE_GGUF_I32, enc, (uint64_t)n, err) ||
        ee_gguf_writer_set_u32(w, "ee.vocab_size", s->V, err))
        return -1;
    if (eos >= 0 && (uint32_t)eos < s->V &&
        ee_gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", s->vperm[eos], err))
        return -1;
    /* Stock runtimes (llama.cpp) find end-of-generation ids by metadata or
     * by token text; the placeholders have no telling text, so publish the
     * other stop id as end-of-turn too (it is in ee.stop_ids anyway). */
    for (int i = 0; i < n; i++) {
        if (eog[i] == eos) continue;
        if (ee_gguf_writer_set_u32(w, "tokenizer.ggml.eot_token_id", (uint32_t)enc[i], err))
            return -1;
        break;
    }
    return 0;
}

int ee_encrypt_llama(const ee_gguf *plain, const ee_key *key, const char *scheme,
                     const ee_encrypt_opts *opts, const char *out_path, ee_encrypt_stats *stats,
                     ee_err *err) {
    ee_encrypt_stats st = {0};
    ee_dtype type = opts ? opts->out_type : EE_DT_F32;
    if (ee_llama_file_type_id(type) < 0)
        return ee_err_set(err, "encrypted models are written as f32, f16, bf16, q8_0, q4_0 or "
                               "q4_1 (asked for %s)",
                          ee_dtype_get(type) ? ee_dtype_get(type)->name : "?");
    ee_llama_hparams hp;
    if (ee_llama_read_hparams(plain, &hp, err)) return -1;
    if (hp.head_dim % 2 != 0) return ee_err_set(err, "head dimension %d is odd", hp.head_dim);
    ee_tokenizer *tok = ee_tokenizer_open_gguf(plain, err);
    if (!tok) return ee_err_wrap(err, "plaintext tokenizer");
    if (ee_tokenizer_n_vocab(tok) != hp.n_vocab) {
        ee_tokenizer_close(tok);
        return ee_err_set(err, "tokenizer has %d tokens but token_embd has %d rows",
                          ee_tokenizer_n_vocab(tok), hp.n_vocab);
    }
    double t0 = ee_now_ms();
    ee_key skey; /* the scheme key: bound to this model unless legacy */
    secrets s;
    if (ee_scheme_key(key, plain, scheme, &skey, err) || secrets_derive(&s, &skey, &hp, err)) {
        ee_key_wipe(&skey);
        ee_tokenizer_close(tok);
        return -1;
    }
    st.derive_ms = ee_now_ms() - t0;
    /* Block-quantized files leave the MLP channels unscaled: ffn_down's
     * columns carry 1/c, so scales in [1/2, 2] put up to 4x outliers inside
     * its 32-value blocks, and rounding them costs measured quality (Q8_0
     * KLD +40%, Q4_1 +35%: docs/BENCHMARKS.md, "Quantized encrypted
     * models"). The audit recovers these scales anyway (they cancel in its
     * MLP invariants), so against a worker with public weights nothing is
     * lost; against the other classes the permutation still hides the
     * channel order. The scale stream is still drawn, so every other
     * transform is the one the f32 file of the same key has.
     * keep_ffn_scales keeps them (to measure the above). */
    if (ee_dtype_get(type)->block_elems > 1 && !(opts && opts->keep_ffn_scales))
        for (size_t i = 0; i < (size_t)s.L * s.ff; i++) s.fscale[i] = 1.0;
    memcpy(st.key_id, skey.id, sizeof st.key_id);
    int rc = -1;
    ee_gguf_writer *w = ee_gguf_writer_new(err);
    if (!w) goto done;
    walk k = {.g = plain, .s = &s, .w = w, .type = type,
              .ref_quantizer = opts && opts->ref_quantizer, .err = err};
    t0 = ee_now_ms();
    if (write_metadata(&k, &skey, scheme, tok) || do_embedding(&k)) goto done;
    for (int l = 0; l < hp.n_layer; l++)
        if (do_layer(&k, l)) goto done;
    if (do_head(&k)) goto done;
    st.transform_ms = ee_now_ms() - t0;
    if (ee_encrypt_write(w, out_path, &st, err)) goto done;
    rc = 0;
done:
    ee_gguf_writer_free(w);
    secrets_free(&s);
    ee_key_wipe(&skey);
    ee_tokenizer_close(tok);
    if (rc == 0 && stats) *stats = st;
    return rc;
}

