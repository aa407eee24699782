/* The client's ciphers: token ids (the vocabulary permutation of a scheme
 * key, as two tables) and an encoder's embedding space (the residual
 * permutation). What ee-producer and every client links (no engine). */
#include "ee_scheme.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

/* ---- 5. client token-id cipher ----------------------------------------------------------- */

int ee_vocab_cipher_load(ee_vocab_cipher *c, const char *key_path, const ee_gguf *plain,
                         const char *scheme, uint32_t n_vocab, char key_id[EE_KEY_ID_HEX],
                         ee_err *err) {
    ee_key k, sk;
    memset(c, 0, sizeof *c);
    if (ee_key_load(&k, key_path, err)) return -1;
    int rc = ee_scheme_key(&k, plain, scheme, &sk, err);
    ee_key_wipe(&k);
    if (rc) return -1;
    rc = ee_vocab_cipher_init(c, &sk, n_vocab, err);
    if (key_id) memcpy(key_id, sk.id, EE_KEY_ID_HEX);
    ee_key_wipe(&sk);
    return rc;
}

int ee_vocab_cipher_init(ee_vocab_cipher *c, const ee_key *key, uint32_t n_vocab, ee_err *err) {
    memset(c, 0, sizeof *c);
    if (n_vocab == 0) return ee_err_set(err, "empty vocabulary");
    c->fwd = malloc(sizeof(uint32_t) * n_vocab);
    c->inv = malloc(sizeof(uint32_t) * n_vocab);
    if (!c->fwd || !c->inv) {
        ee_vocab_cipher_free(c);
        return ee_err_set(err, "out of memory");
    }
    c->n = n_vocab;
    ee_stream st;
    ee_stream_init(&st, key, EE_P_VOCAB_PERM, 0);
    ee_random_permutation(&st, c->fwd, n_vocab);
    ee_stream_wipe(&st);
    ee_permutation_invert(c->fwd, c->inv, n_vocab);
    return 0;
}

void ee_vocab_cipher_free(ee_vocab_cipher *c) {
    if (c->fwd) sodium_memzero(c->fwd, sizeof(uint32_t) * c->n);
    if (c->inv) sodium_memzero(c->inv, sizeof(uint32_t) * c->n);
    free(c->fwd);
    free(c->inv);
    memset(c, 0, sizeof *c);
}

static int map_ids(const uint32_t *table, uint32_t n, const int32_t *in, int32_t *out, size_t cnt,
                   const char *what, ee_err *err) {
    for (size_t i = 0; i < cnt; i++)
        if (in[i] < 0 || (uint32_t)in[i] >= n)
            return ee_err_set(err, "%s token id %d at index %zu is out of range [0, %u)", what,
                              in[i], i, n);
    for (size_t i = 0; i < cnt; i++) out[i] = (int32_t)table[in[i]];
    return 0;
}

int ee_vocab_encrypt(const ee_vocab_cipher *c, const int32_t *in, int32_t *out, size_t n,
                     ee_err *err) {
    return map_ids(c->fwd, c->n, in, out, n, "plaintext", err);
}

int ee_vocab_decrypt(const ee_vocab_cipher *c, const int32_t *in, int32_t *out, size_t n,
                     ee_err *err) {
    return map_ids(c->inv, c->n, in, out, n, "encrypted", err);
}


/* ---- embedding-space cipher (encoder schemes) ---- */

int ee_vec_cipher_init(ee_vec_cipher *c, const ee_key *key, int dim, ee_err *err) {
    memset(c, 0, sizeof *c);
    if (dim <= 0) return ee_err_set(err, "embedding dimension %d is invalid", dim);
    c->rp = malloc(sizeof(uint32_t) * (size_t)dim);
    if (!c->rp) return ee_err_set(err, "out of memory");
    c->dim = dim;
    /* The stream ee_scheme_bert.c permutes the residual stream with. */
    ee_stream st;
    ee_stream_init(&st, key, EE_P_RESID_PERM, 0);
    ee_random_permutation(&st, c->rp, (uint32_t)dim);
    ee_stream_wipe(&st);
    return 0;
}

void ee_vec_cipher_free(ee_vec_cipher *c) {
    if (c->rp) sodium_memzero(c->rp, sizeof(uint32_t) * (size_t)c->dim);
    free(c->rp);
    memset(c, 0, sizeof *c);
}

void ee_vec_encrypt(const ee_vec_cipher *c, const float *in, float *out) {
    for (int j = 0; j < c->dim; j++) out[j] = in[c->rp[j]];
}

void ee_vec_decrypt(const ee_vec_cipher *c, const float *in, float *out) {
    for (int j = 0; j < c->dim; j++) out[c->rp[j]] = in[j];
}
