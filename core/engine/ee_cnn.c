/* The eecnn classifier: loading (shapes checked against eecnn.*) and the
 * client's stem, a direct convolution (ee_conv2d, double accumulation) on
 * one image: no BLAS, no threads, so a client links little. The worker's
 * part, batched over jobs, is ee_cnn_forward.c. */
#include "ee_cnn.h"

#include "ee_arch.h"
#include "ee_conv.h"
#include "ee_quant.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DIM_MAX 4096

/* ---- 1. hyperparameters ------------------------------------------------- */

static int read_u32(const ee_gguf *g, const char *key, int lo, int hi, int *out, ee_err *err) {
    uint32_t v;
    if (ee_gguf_get_u32(g, key, &v, err)) return -1;
    if ((int64_t)v < lo || (int64_t)v > hi)
        return ee_err_set(err, "%s = %u is out of range [%d, %d]", key, v, lo, hi);
    *out = (int)v;
    return 0;
}

int ee_cnn_read_hparams(const ee_gguf *g, ee_cnn_hparams *hp, ee_err *err) {
    memset(hp, 0, sizeof *hp);
    const char *arch = ee_gguf_get_str(g, "general.architecture", NULL);
    if (!arch || strcmp(arch, "eecnn") != 0)
        return ee_err_set(err, "not an eecnn model (general.architecture is '%.64s')",
                          arch ? arch : "(missing)");
    if (read_u32(g, "eecnn.block_count", 1, EE_CNN_MAX_BLOCKS, &hp->n_block, err) ||
        read_u32(g, "eecnn.image.channels", 1, 64, &hp->in_c, err) ||
        read_u32(g, "eecnn.image.height", 1, DIM_MAX, &hp->in_h, err) ||
        read_u32(g, "eecnn.image.width", 1, DIM_MAX, &hp->in_w, err) ||
        read_u32(g, "eecnn.pool_size", 1, 16, &hp->pool, err) ||
        read_u32(g, "eecnn.class_count", 2, 1 << 16, &hp->n_class, err))
        return -1;
    if (ee_gguf_find_kv(g, "eecnn.client_blocks") &&
        read_u32(g, "eecnn.client_blocks", 0, 1, &hp->client_blocks, err))
        return -1;
    if (hp->client_blocks >= hp->n_block)
        return ee_err_set(err, "eecnn.client_blocks = %d leaves no block to run (block_count %d)",
                          hp->client_blocks, hp->n_block);
    return 0;
}

/* ---- 2. loading ------------------------------------------------------------ */

/* Tensor `name` with exactly the dims ne[0..n_dims) (trailing 1s of the
 * file ignored), as a malloc'd f32 copy. */
static float *load_tensor(const ee_gguf *g, const char *name, int n_dims, const int64_t *ne,
                          ee_err *err) {
    const ee_gguf_tensor *t = ee_gguf_find_tensor(g, name);
    if (!t) {
        ee_err_set(err, "tensor '%s' is missing", name);
        return NULL;
    }
    uint64_t n = 1;
    for (int i = 0; i < EE_GGUF_MAX_DIMS; i++) {
        uint64_t want = i < n_dims ? (uint64_t)ne[i] : 1;
        uint64_t have = i < (int)t->n_dims ? t->ne[i] : 1;
        if (want != have) {
            ee_err_set(err, "tensor '%s' has ne[%d] = %llu, expected %llu", name, i,
                       (unsigned long long)have, (unsigned long long)want);
            return NULL;
        }
        n *= want;
    }
    if (t->type != EE_DT_F32 && t->type != EE_DT_F16) {
        const ee_dtype_info *di = ee_dtype_get(t->type);
        ee_err_set(err, "tensor '%s' is %s; eecnn files are f32 or f16", name,
                   di ? di->name : "of an unknown type");
        return NULL;
    }
    float *v = malloc(sizeof(float) * n);
    if (!v) {
        ee_err_set(err, "out of memory loading '%s'", name);
        return NULL;
    }
    if (t->type == EE_DT_F32)
        memcpy(v, t->data, sizeof(float) * n);
    else
        ee_dequantize_row(t->type, t->data, v, n, NULL);
    return v;
}

static int out_size(int n, int pool) { return pool > 1 ? n / pool : n; }

ee_cnn_model *ee_cnn_load(const ee_gguf *g, ee_err *err) {
    ee_cnn_model *m = calloc(1, sizeof *m);
    if (!m) {
        ee_err_set(err, "out of memory");
        return NULL;
    }
    if (ee_cnn_read_hparams(g, &m->hp, err)) goto fail;
    const ee_cnn_hparams *hp = &m->hp;
    char name[64];
    int c = hp->in_c, h = hp->in_h, w = hp->in_w;
    for (int l = 0; l < hp->n_block; l++) {
        ee_cnn_block *b = &m->blocks[l];
        /* The shape comes from the weight (c_out, k), checked against the
         * previous block; a client block's tensors are absent, so its
         * width is read from the next block's input channels. */
        const ee_gguf_tensor *t =
            ee_gguf_find_tensor(g, ee_tensor_name(name, sizeof name, EE_T_CONV, l + (l < hp->client_blocks), "weight"));
        if (!t || t->n_dims != 4) {
            ee_err_set(err, "tensor '%s' is %s", name, t ? "not 4-dimensional" : "missing");
            goto fail;
        }
        b->c_in = c;
        b->h = h;
        b->w = w;
        if (l < hp->client_blocks) {
            b->c_out = (int)t->ne[2];
            b->k = 0;
        } else {
            b->c_out = (int)t->ne[3];
            b->k = (int)t->ne[0];
            if (b->k < 1 || b->k % 2 == 0 || b->k > 15 || t->ne[1] != t->ne[0]) {
                ee_err_set(err, "tensor '%s' has a %llux%llu kernel; eecnn kernels are square and odd",
                           name, (unsigned long long)t->ne[1], (unsigned long long)t->ne[0]);
                goto fail;
            }
            if (b->c_out < 1 || b->c_out > DIM_MAX) {
                ee_err_set(err, "tensor '%s' has %d output channels", name, b->c_out);
                goto fail;
            }
            const int64_t ne[4] = {b->k, b->k, c, b->c_out};
            b->weight = load_tensor(g, name, 4, ne, err);
            const int64_t nb[1] = {b->c_out};
            b->bias = b->weight ? load_tensor(g, ee_tensor_name(name, sizeof name, EE_T_CONV, l, "bias"), 1, nb, err)
                                : NULL;
            if (!b->bias) goto fail;
        }
        c = b->c_out;
        h = out_size(h, hp->pool);
        w = out_size(w, hp->pool);
        if (h < 1 || w < 1) {
            ee_err_set(err, "block %d pools the image to nothing (%dx%d input, pool %d)", l, b->h,
                       b->w, hp->pool);
            goto fail;
        }
    }
    m->n_feat = c * h * w;
    const int64_t nw[2] = {m->n_feat, hp->n_class}, nb[1] = {hp->n_class};
    m->head_w = load_tensor(g, ee_tensor_name(name, sizeof name, EE_T_OUTPUT, 0, "weight"), 2, nw, err);
    m->head_b = m->head_w ? load_tensor(g, ee_tensor_name(name, sizeof name, EE_T_OUTPUT, 0, "bias"), 1, nb, err)
                          : NULL;
    if (!m->head_b) goto fail;
    return m;
fail:
    ee_cnn_free(m);
    return NULL;
}

void ee_cnn_free(ee_cnn_model *m) {
    if (!m) return;
    for (int l = 0; l < EE_CNN_MAX_BLOCKS; l++) {
        free(m->blocks[l].weight);
        free(m->blocks[l].bias);
    }
    free(m->head_w);
    free(m->head_b);
    free(m);
}

size_t ee_cnn_image_len(const ee_cnn_model *m) {
    return (size_t)m->hp.in_c * m->hp.in_h * m->hp.in_w;
}

int ee_cnn_fmap_channels(const ee_cnn_model *m) { return m->blocks[0].c_out; }

size_t ee_cnn_fmap_len(const ee_cnn_model *m) {
    return (size_t)m->blocks[0].c_out * m->hp.in_h * m->hp.in_w;
}

/* ---- 3. forward ------------------------------------------------------------ */

static void relu(float *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!(x[i] > 0.0f)) x[i] = 0.0f;
}

static void conv_relu(const ee_cnn_block *b, const float *in, float *out) {
    int oh, ow;
    ee_conv2d(out, in, b->weight, b->bias, b->c_in, b->h, b->w, b->c_out, b->k, b->k, 1, b->k / 2,
              &oh, &ow);
    relu(out, (size_t)b->c_out * b->h * b->w);
}

int ee_cnn_stem(const ee_cnn_model *m, const float *images, int n, float *fmaps, ee_err *err) {
    if (m->hp.client_blocks > 0 || !m->blocks[0].weight)
        return ee_err_set(err, "this file has no stem (an encrypted model: the client runs the "
                               "stem from the plaintext model)");
    size_t in = ee_cnn_image_len(m), out = ee_cnn_fmap_len(m);
    for (int i = 0; i < n; i++) conv_relu(&m->blocks[0], images + (size_t)i * in, fmaps + (size_t)i * out);
    return 0;
}

int ee_cnn_argmax(const float *scores, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (scores[i] > scores[best]) best = i;
    return best;
}

const char *ee_cnn_class_label(const ee_gguf *g, int k, char buf[16]) {
    const ee_gguf_kv *kv = ee_gguf_get_arr(g, "eecnn.class_labels", EE_GGUF_STRING, NULL);
    if (kv && k >= 0 && (uint64_t)k < kv->n) return kv->strs[k];
    snprintf(buf, 16, "%d", k);
    return buf;
}
