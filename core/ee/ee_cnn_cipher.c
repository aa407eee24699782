/* ee-cnn-v1 secrets and the client's feature-map / score cipher. The
 * encryption of the weights (ee_scheme_cnn.c) and the client derive the
 * same streams here, so the two cannot drift apart. */
#include "ee_cnn_cipher.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

static void derive_block(const ee_key *key, int l, int n, uint32_t *perm, double *scale) {
    ee_stream st;
    ee_stream_init(&st, key, EE_P_CONV_PERM, (uint32_t)l);
    ee_random_permutation(&st, perm, (uint32_t)n);
    ee_stream_init(&st, key, EE_P_CONV_SCALE, (uint32_t)l);
    for (int j = 0; j < n; j++) scale[j] = ee_random_scale(&st, EE_CNN_SCALE_RANGE);
    ee_stream_wipe(&st);
}

static void derive_classes(const ee_key *key, int n, uint32_t *perm) {
    ee_stream st;
    ee_stream_init(&st, key, EE_P_CLASS_PERM, 0);
    ee_random_permutation(&st, perm, (uint32_t)n);
    ee_stream_wipe(&st);
}

int ee_cnn_secrets_derive(ee_cnn_secrets *s, const ee_key *key, int n_block, const int *c_out,
                          int n_class, ee_err *err) {
    memset(s, 0, sizeof *s);
    if (n_block < 1 || n_block > EE_CNN_MAX_BLOCKS || n_class < 1)
        return ee_err_set(err, "invalid network shape (%d blocks, %d classes)", n_block, n_class);
    s->n_block = n_block;
    s->n_class = n_class;
    s->class_perm = malloc(sizeof(uint32_t) * (size_t)n_class);
    if (!s->class_perm) goto oom;
    derive_classes(key, n_class, s->class_perm);
    for (int l = 0; l < n_block; l++) {
        s->c_out[l] = c_out[l];
        s->perm[l] = malloc(sizeof(uint32_t) * (size_t)c_out[l]);
        s->scale[l] = malloc(sizeof(double) * (size_t)c_out[l]);
        if (!s->perm[l] || !s->scale[l]) goto oom;
        derive_block(key, l, c_out[l], s->perm[l], s->scale[l]);
    }
    return 0;
oom:
    ee_cnn_secrets_free(s);
    return ee_err_set(err, "out of memory deriving the transforms");
}

void ee_cnn_secrets_free(ee_cnn_secrets *s) {
    for (int l = 0; l < s->n_block; l++) {
        if (s->perm[l]) sodium_memzero(s->perm[l], sizeof(uint32_t) * (size_t)s->c_out[l]);
        if (s->scale[l]) sodium_memzero(s->scale[l], sizeof(double) * (size_t)s->c_out[l]);
        free(s->perm[l]);
        free(s->scale[l]);
    }
    if (s->class_perm) sodium_memzero(s->class_perm, sizeof(uint32_t) * (size_t)s->n_class);
    free(s->class_perm);
    memset(s, 0, sizeof *s);
}

int ee_cnn_cipher_init(ee_cnn_cipher *c, const ee_key *key, int channels, int hw, int n_class,
                       ee_err *err) {
    memset(c, 0, sizeof *c);
    if (channels < 1 || hw < 1 || n_class < 1)
        return ee_err_set(err, "invalid feature map (%d channels of %d) or %d classes", channels,
                          hw, n_class);
    c->perm = malloc(sizeof(uint32_t) * (size_t)channels);
    c->scale = malloc(sizeof(float) * (size_t)channels);
    c->class_perm = malloc(sizeof(uint32_t) * (size_t)n_class);
    double *sc = malloc(sizeof(double) * (size_t)channels);
    if (!c->perm || !c->scale || !c->class_perm || !sc) {
        free(sc);
        ee_cnn_cipher_free(c);
        return ee_err_set(err, "out of memory");
    }
    c->channels = channels;
    c->hw = hw;
    c->n_class = n_class;
    derive_block(key, 0, channels, c->perm, sc);
    for (int j = 0; j < channels; j++) c->scale[j] = (float)sc[j];
    sodium_memzero(sc, sizeof(double) * (size_t)channels);
    free(sc);
    derive_classes(key, n_class, c->class_perm);
    return 0;
}

int ee_cnn_cipher_load(ee_cnn_cipher *c, const char *key_path, const ee_gguf *plain,
                       const ee_cnn_model *m, char key_id[EE_KEY_ID_HEX], ee_err *err) {
    ee_key k, sk;
    memset(c, 0, sizeof *c);
    if (ee_key_load(&k, key_path, err)) return -1;
    int rc = ee_scheme_key(&k, plain, EE_SCHEME_CNN, &sk, err);
    ee_key_wipe(&k);
    if (rc) return -1;
    rc = ee_cnn_cipher_init(c, &sk, ee_cnn_fmap_channels(m), m->hp.in_h * m->hp.in_w,
                            m->hp.n_class, err);
    if (key_id) memcpy(key_id, sk.id, EE_KEY_ID_HEX);
    ee_key_wipe(&sk);
    return rc;
}

void ee_cnn_cipher_free(ee_cnn_cipher *c) {
    if (c->perm) sodium_memzero(c->perm, sizeof(uint32_t) * (size_t)c->channels);
    if (c->scale) sodium_memzero(c->scale, sizeof(float) * (size_t)c->channels);
    if (c->class_perm) sodium_memzero(c->class_perm, sizeof(uint32_t) * (size_t)c->n_class);
    free(c->perm);
    free(c->scale);
    free(c->class_perm);
    memset(c, 0, sizeof *c);
}

void ee_cnn_fmap_encrypt(const ee_cnn_cipher *c, const float *in, float *out) {
    for (int j = 0; j < c->channels; j++) {
        const float *src = in + (size_t)c->perm[j] * c->hw;
        float *dst = out + (size_t)j * c->hw;
        for (int i = 0; i < c->hw; i++) dst[i] = c->scale[j] * src[i];
    }
}

void ee_cnn_fmap_decrypt(const ee_cnn_cipher *c, const float *in, float *out) {
    for (int j = 0; j < c->channels; j++) {
        const float *src = in + (size_t)j * c->hw;
        float *dst = out + (size_t)c->perm[j] * c->hw;
        for (int i = 0; i < c->hw; i++) dst[i] = src[i] / c->scale[j];
    }
}

void ee_cnn_scores_decrypt(const ee_cnn_cipher *c, const float *in, float *out) {
    for (int r = 0; r < c->n_class; r++) out[c->class_perm[r]] = in[r];
}
