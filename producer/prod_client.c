#include "prod_client.h"

#include "ee_chat.h"
#include "ee_docseal.h"
#include "ee_image.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int prod_client_open(prod_client *c, const char *plain_path, const char *key_path,
                     const char *scheme, ee_err *err) {
    memset(c, 0, sizeof *c);
    c->gguf = ee_gguf_open(plain_path, err);
    if (!c->gguf) return ee_err_wrap(err, "--plain-model");
    if (ee_model_is_encrypted(c->gguf)) {
        ee_err_set(err, "--plain-model %s is an encrypted model; the client needs the "
                        "plaintext model for its tokenizer", plain_path);
        goto fail;
    }
    const char *arch = ee_gguf_get_str(c->gguf, "general.architecture", NULL);
    if (arch && strcmp(arch, "eecnn") == 0) { /* an image classifier: its stem and the cipher */
        char kid[EE_KEY_ID_HEX];
        if (!(c->cnn = ee_cnn_load(c->gguf, err))) {
            ee_err_wrap(err, "--plain-model %s", plain_path);
            goto fail;
        }
        if (ee_cnn_cipher_load(&c->cc, key_path, c->gguf, c->cnn, kid, err)) {
            ee_err_wrap(err, "--key");
            goto fail;
        }
        memcpy(c->key_id, kid, sizeof c->key_id);
        return 0;
    }
    const char *tm = ee_gguf_get_str(c->gguf, "tokenizer.ggml.model", NULL);
    if (tm && strcmp(tm, "bert") == 0) { /* an encoder: WordPiece, and the vector cipher */
        if (ee_wordpiece_open_gguf(&c->wp, c->gguf, err)) {
            ee_err_wrap(err, "--plain-model %s", plain_path);
            goto fail;
        }
        uint32_t dim = 0;
        if (ee_gguf_get_u32(c->gguf, "bert.embedding_length", &dim, err)) {
            ee_err_wrap(err, "--plain-model %s", plain_path);
            goto fail;
        }
        ee_key k, sk;
        if (ee_key_load(&k, key_path, err)) {
            ee_err_wrap(err, "--key");
            goto fail;
        }
        ee_doc_key_derive(&k, c->doc_key);
        int rc = ee_scheme_key(&k, c->gguf, scheme ? scheme : EE_SCHEME_BERT, &sk, err);
        ee_key_wipe(&k);
        if (rc == 0) rc = ee_vocab_cipher_init(&c->vc, &sk, (uint32_t)ee_wordpiece_n_vocab(c->wp), err);
        if (rc == 0) rc = ee_vec_cipher_init(&c->vec, &sk, (int)dim, err);
        memcpy(c->key_id, sk.id, sizeof c->key_id);
        ee_key_wipe(&sk);
        if (rc) {
            ee_err_wrap(err, "--key");
            goto fail;
        }
        return 0;
    }
    c->tok = ee_tokenizer_open_gguf(c->gguf, err);
    if (!c->tok) {
        ee_err_wrap(err, "--plain-model %s", plain_path);
        goto fail;
    }
    /* The permutation tables are all a client needs: the secret is wiped.
     * The key is bound to the plain model (unless --scheme is legacy v1). */
    if (ee_vocab_cipher_load(&c->vc, key_path, c->gguf, scheme,
                             (uint32_t)ee_tokenizer_n_vocab(c->tok), c->key_id, err)) {
        ee_err_wrap(err, "--key");
        goto fail;
    }
    return 0;
fail:
    prod_client_close(c);
    return -1;
}

int prod_client_secure(prod_client *c, const char *pool_pk_hex, const char *client_key_path,
                       const char *tenant, ee_err *err) {
    if (pool_pk_hex) {
        if (ee_seal_pk_parse(pool_pk_hex, c->pool_pk, err)) return ee_err_wrap(err, "--pool-pk");
        c->seal = true;
    }
    if (client_key_path) {
        if (ee_client_key_load(&c->ck, client_key_path, err)) return ee_err_wrap(err, "--client-key");
        c->have_ck = true;
    }
    c->tenant = tenant;
    return 0;
}

int prod_client_open_reply(const prod_client *c, const char *id, const void *value, size_t n,
                           char **json, size_t *len, ee_err *err) {
    if (!c->have_ck) return ee_err_set(err, "the reply is sealed: give --client-key to open it");
    uint8_t pk[32], sk[32];
    ee_reply_keypair(&c->ck, id, pk, sk);
    uint8_t *m = NULL;
    int rc = ee_unseal(pk, sk, value, n, &m, len, err);
    ee_seal_wipe(sk, sizeof sk);
    *json = (char *)m;
    return rc;
}

void prod_client_close(prod_client *c) {
    ee_seal_wipe(&c->ck, sizeof c->ck);
    ee_seal_wipe(c->doc_key, sizeof c->doc_key);
    ee_vocab_cipher_free(&c->vc);
    ee_vec_cipher_free(&c->vec);
    ee_cnn_cipher_free(&c->cc);
    ee_cnn_free(c->cnn);
    ee_tokenizer_close(c->tok);
    ee_wordpiece_close(c->wp);
    ee_gguf_close(c->gguf);
    memset(c, 0, sizeof *c);
}

int prod_client_encode(const prod_client *c, const char *prompt, bool chat, int32_t **ids,
                       size_t *n, ee_err *err) {
    *ids = NULL;
    *n = 0;
    if (c->cnn) return ee_err_set(err, "the model is an image classifier: it takes images, not text");
    if (c->wp) { /* an encoder's text: [CLS] ... [SEP] */
        if (chat) return ee_err_set(err, "--chat: the model is an encoder (no chat template)");
        if (ee_wordpiece_encode_alloc(c->wp, prompt, strlen(prompt), ids, n, err)) return -1;
    } else if (ee_prompt_encode(c->tok, prompt, chat, ids, n, err)) {
        return -1;
    }
    if (*n == 0) {
        free(*ids);
        *ids = NULL;
        return ee_err_set(err, "the prompt encodes to no tokens");
    }
    if (ee_vocab_encrypt(&c->vc, *ids, *ids, *n, err)) {
        free(*ids);
        *ids = NULL;
        *n = 0;
        return -1;
    }
    return 0;
}

int prod_client_decrypt(const prod_client *c, const int32_t *enc, int32_t *out, size_t n,
                        ee_err *err) {
    return ee_vocab_decrypt(&c->vc, enc, out, n, err);
}

int prod_client_decrypt_vec(const prod_client *c, const float *enc, size_t dim, float *out,
                            ee_err *err) {
    if (!c->vec.dim) return ee_err_set(err, "an embedding came back, but the model is not an encoder");
    if (dim != (size_t)c->vec.dim)
        return ee_err_set(err, "the embedding has %zu values; the model's have %d", dim, c->vec.dim);
    ee_vec_decrypt(&c->vec, enc, out);
    return 0;
}

int prod_client_image_fmap(const prod_client *c, const char *path, bool invert, float **fmap,
                           size_t *n, ee_err *err) {
    *fmap = NULL;
    *n = 0;
    if (!c->cnn) return ee_err_set(err, "--plain-model is not an image classifier (eecnn)");
    const ee_cnn_model *m = c->cnn;
    if (m->hp.in_c != 1)
        return ee_err_set(err, "the model takes %d-channel images; files are read as grey",
                          m->hp.in_c);
    const size_t fl = ee_cnn_fmap_len(m);
    float *img = malloc(sizeof(float) * ee_cnn_image_len(m));
    float *plain = malloc(sizeof(float) * fl), *enc = malloc(sizeof(float) * fl);
    int rc = -1;
    if (!img || !plain || !enc) {
        ee_err_set(err, "out of memory");
    } else if (ee_image_load_grey(path, m->hp.in_h, m->hp.in_w, invert, img, NULL, err) == 0 &&
               ee_cnn_stem(m, img, 1, plain, err) == 0) {
        ee_cnn_fmap_encrypt(&c->cc, plain, enc);
        *fmap = enc;
        *n = fl;
        enc = NULL;
        rc = 0;
    }
    free(img);
    free(plain);
    free(enc);
    return rc;
}

int prod_client_decrypt_scores(const prod_client *c, const float *enc, size_t n, float *out,
                               ee_err *err) {
    if (!c->cnn) return ee_err_set(err, "class scores came back, but the model is not a classifier");
    if (n != (size_t)c->cc.n_class)
        return ee_err_set(err, "%zu class scores; the model has %d classes", n, c->cc.n_class);
    ee_cnn_scores_decrypt(&c->cc, enc, out);
    return 0;
}
