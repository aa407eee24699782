/* Equivariant Encryption of an eecnn image classifier (ee-cnn-v1). Proofs:
 * docs/EE.md "The CNN transform set".
 *
 * The transforms (secrets in ee_cnn_cipher.h; block l has c_out channels):
 *   conv l   new output channel j = old channel perm_l[j] times s_l[j] > 0:
 *              W'[j][i][ky][kx] = s_l[j] W[perm_l[j]][perm_{l-1}[i]][ky][kx] / s_{l-1}[i]
 *              b'[j]            = s_l[j] b[perm_l[j]]
 *            ReLU and max-pooling commute with a positive per-channel
 *            scale and act per channel, so block l's output is the
 *            plaintext one permuted and scaled; the next conv reads input
 *            channel i with the inverse scale, so its sum is the
 *            plaintext sum reordered
 *   head     input (j, y, x) is old (perm_L[j], y, x) times s_L[j]: the
 *            column gets 1 / s_L[j]; rows permuted by the class
 *            permutation, so scores come out permuted
 *   stem     not written: block 0's weights would give a worker the map
 *            from pixels to the feature map it receives. The client runs
 *            the plaintext stem and applies perm_0 / s_0 (ee_cnn_cipher).
 * The file keeps the public shape (eecnn.* sizes), drops the class labels
 * and training notes, and marks eecnn.client_blocks = 1. */
#include "ee_encrypt.h"

#include "ee_arch.h"
#include "ee_clock.h"
#include "ee_cnn.h"
#include "ee_cnn_cipher.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct walk {
    const ee_cnn_model *m;
    const ee_cnn_secrets *s;
    ee_gguf_writer *w;
    ee_err *err;
} walk;

static int emit(const walk *k, const char *name, const double *v, uint32_t n_dims,
                const uint64_t *ne) {
    uint64_t n = 1;
    for (uint32_t i = 0; i < n_dims; i++) n *= ne[i];
    float *out = malloc(sizeof(float) * n);
    if (!out) return ee_err_set(k->err, "out of memory writing '%s'", name);
    for (uint64_t i = 0; i < n; i++) out[i] = (float)v[i];
    int rc = ee_gguf_writer_add_tensor(k->w, name, n_dims, ne, EE_DT_F32, out, true, k->err);
    free(out);
    return rc;
}

/* Block l >= 1: output channels permuted and scaled, input channels read
 * through block l-1's map. */
static int do_conv(const walk *k, int l) {
    const ee_cnn_block *b = &k->m->blocks[l];
    const uint32_t *po = k->s->perm[l], *pi = k->s->perm[l - 1];
    const double *so = k->s->scale[l], *si = k->s->scale[l - 1];
    const size_t kk = (size_t)b->k * b->k;
    double *W = malloc(sizeof(double) * (size_t)b->c_out * b->c_in * kk);
    double *B = malloc(sizeof(double) * (size_t)b->c_out);
    int rc = -1;
    if (!W || !B) {
        ee_err_set(k->err, "out of memory transforming block %d", l);
        goto done;
    }
    for (int j = 0; j < b->c_out; j++) {
        for (int i = 0; i < b->c_in; i++) {
            const float *src = b->weight + ((size_t)po[j] * b->c_in + pi[i]) * kk;
            double *dst = W + ((size_t)j * b->c_in + i) * kk;
            for (size_t q = 0; q < kk; q++) dst[q] = so[j] * (double)src[q] / si[i];
        }
        B[j] = so[j] * (double)b->bias[po[j]];
    }
    char name[64];
    const uint64_t ne[4] = {(uint64_t)b->k, (uint64_t)b->k, (uint64_t)b->c_in, (uint64_t)b->c_out};
    const uint64_t nb[1] = {(uint64_t)b->c_out};
    rc = emit(k, ee_tensor_name(name, sizeof name, EE_T_CONV, l, "weight"), W, 4, ne) ||
                 emit(k, ee_tensor_name(name, sizeof name, EE_T_CONV, l, "bias"), B, 1, nb)
             ? -1
             : 0;
done:
    free(W);
    free(B);
    return rc;
}

static int do_head(const walk *k) {
    const ee_cnn_model *m = k->m;
    const int L = m->hp.n_block - 1, C = m->blocks[L].c_out, nc = m->hp.n_class;
    const int S = m->n_feat / C; /* pooled positions per channel */
    const uint32_t *pc = k->s->perm[L], *cp = k->s->class_perm;
    const double *sc = k->s->scale[L];
    double *W = malloc(sizeof(double) * (size_t)nc * m->n_feat);
    double *B = malloc(sizeof(double) * (size_t)nc);
    int rc = -1;
    if (!W || !B) {
        ee_err_set(k->err, "out of memory transforming the head");
        goto done;
    }
    for (int r = 0; r < nc; r++) {
        const float *src = m->head_w + (size_t)cp[r] * m->n_feat;
        double *dst = W + (size_t)r * m->n_feat;
        for (int j = 0; j < C; j++)
            for (int q = 0; q < S; q++) dst[(size_t)j * S + q] = (double)src[(size_t)pc[j] * S + q] / sc[j];
        B[r] = m->head_b[cp[r]];
    }
    char name[64];
    const uint64_t ne[2] = {(uint64_t)m->n_feat, (uint64_t)nc}, nb[1] = {(uint64_t)nc};
    rc = emit(k, ee_tensor_name(name, sizeof name, EE_T_OUTPUT, 0, "weight"), W, 2, ne) ||
                 emit(k, ee_tensor_name(name, sizeof name, EE_T_OUTPUT, 0, "bias"), B, 1, nb)
             ? -1
             : 0;
done:
    free(W);
    free(B);
    return rc;
}

/* The public shape only: sizes kept, labels replaced by placeholders (the
 * client reads them from its plaintext file), training notes dropped. */
static int write_metadata(const walk *k, const ee_gguf *plain, const ee_key *key,
                          const char *scheme) {
    static const char *const keep[] = {
        "general.architecture", "general.alignment", "eecnn.block_count", "eecnn.image.channels",
        "eecnn.image.height",   "eecnn.image.width", "eecnn.pool_size",   "eecnn.class_count",
    };
    ee_err *err = k->err;
    for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++) {
        const ee_gguf_kv *kv = ee_gguf_find_kv(plain, keep[i]);
        if (kv && ee_gguf_writer_copy_kv(k->w, kv, err)) return -1;
    }
    const int nc = k->m->hp.n_class;
    char *pool = malloc((size_t)nc * 24);
    const char **names = malloc(sizeof(char *) * (size_t)nc);
    int rc = -1;
    if (!pool || !names) {
        ee_err_set(err, "out of memory");
        goto done;
    }
    for (int r = 0; r < nc; r++) {
        names[r] = pool + (size_t)r * 24;
        snprintf(pool + (size_t)r * 24, 24, "<ee_%d>", r);
    }
    rc = ee_gguf_writer_set_u32(k->w, "eecnn.client_blocks", 1, err) ||
                 ee_gguf_writer_set_str_arr(k->w, "eecnn.class_labels", names, (uint64_t)nc, err) ||
                 ee_gguf_writer_set_u32(k->w, "general.file_type", 0, err) ||
                 ee_gguf_writer_set_str(k->w, "general.name", "eeinfer encrypted classifier", err) ||
                 ee_gguf_writer_set_str(k->w, "ee.scheme", scheme, err) ||
                 ee_gguf_writer_set_str(k->w, "ee.key_id", key->id, err)
             ? -1
             : 0;
done:
    free(pool);
    free(names);
    return rc;
}

int ee_encrypt_cnn(const ee_gguf *plain, const ee_key *key, const char *scheme,
                   const ee_encrypt_opts *opts, const char *out_path, ee_encrypt_stats *stats,
                   ee_err *err) {
    ee_encrypt_stats st = {0};
    if (opts && opts->out_type != EE_DT_F32) {
        const ee_dtype_info *di = ee_dtype_get(opts->out_type);
        return ee_err_set(err, "encrypted classifiers are written as f32 (asked for %s)",
                          di ? di->name : "?");
    }
    ee_cnn_model *m = ee_cnn_load(plain, err);
    if (!m) return ee_err_wrap(err, "reading the plaintext classifier");
    if (m->hp.client_blocks != 0) {
        ee_cnn_free(m);
        return ee_err_set(err, "the classifier has no stem (eecnn.client_blocks is set): "
                               "encrypt the plaintext model");
    }
    if (m->hp.n_block < 2) {
        const int n_block = m->hp.n_block; /* read before m is freed */
        ee_cnn_free(m);
        return ee_err_set(err, "an encrypted classifier needs 2 or more blocks (the stem runs "
                               "at the client; this one has %d)", n_block);
    }
    double t0 = ee_now_ms();
    int c_out[EE_CNN_MAX_BLOCKS];
    for (int l = 0; l < m->hp.n_block; l++) c_out[l] = m->blocks[l].c_out;
    ee_key skey;
    ee_cnn_secrets s;
    memset(&s, 0, sizeof s);
    int rc = -1;
    ee_gguf_writer *w = NULL;
    if (ee_scheme_key(key, plain, scheme, &skey, err)) goto done_nokey;
    if (ee_cnn_secrets_derive(&s, &skey, m->hp.n_block, c_out, m->hp.n_class, err)) goto done;
    st.derive_ms = ee_now_ms() - t0;
    memcpy(st.key_id, skey.id, sizeof st.key_id);
    w = ee_gguf_writer_new(err);
    if (!w) goto done;
    walk k = {.m = m, .s = &s, .w = w, .err = err};
    t0 = ee_now_ms();
    if (write_metadata(&k, plain, &skey, scheme)) goto done;
    for (int l = 1; l < m->hp.n_block; l++)
        if (do_conv(&k, l)) goto done;
    if (do_head(&k)) goto done;
    st.transform_ms = ee_now_ms() - t0;
    if (ee_encrypt_write(w, out_path, &st, err)) goto done;
    rc = 0;
done:
    ee_key_wipe(&skey);
done_nokey:
    ee_gguf_writer_free(w);
    ee_cnn_secrets_free(&s);
    ee_cnn_free(m);
    if (rc == 0 && stats) *stats = st;
    return rc;
}
