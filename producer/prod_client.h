/* prod_client: the key holder's side of a job. Opens the PLAINTEXT model
 * for its tokenizer (or, for an image classifier, its stem), loads the key into the token-id cipher (the
 * secret itself is wiped at once; only the permutation tables stay in
 * memory), tokenizes and encrypts prompts, decrypts output ids.
 * Nothing here talks to Kafka or prints. */
#ifndef PROD_CLIENT_H
#define PROD_CLIENT_H

#include "ee_error.h"
#include "ee_cnn.h"
#include "ee_cnn_cipher.h"
#include "ee_gguf.h"
#include "ee_key.h"
#include "ee_scheme.h"
#include "ee_seal.h"
#include "ee_tokenizer.h"
#include "ee_wordpiece.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct prod_client {
    ee_gguf *gguf;
    ee_tokenizer *tok;          /* decoders (byte-level BPE) */
    ee_wordpiece *wp;           /* encoders (WordPiece); then tok is NULL */
    ee_vocab_cipher vc;
    ee_vec_cipher vec;          /* encoders: the embedding-space cipher */
    uint8_t doc_key[32];        /* encoders: seals documents of a blind index (ee_docseal) */
    ee_cnn_model *cnn;          /* classifiers: the plaintext model, for its stem */
    ee_cnn_cipher cc;           /* classifiers: feature-map and score cipher */
    char key_id[EE_KEY_ID_HEX]; /* public fingerprint, goes into requests */
    /* sealed and signed jobs (docs/PROTOCOL.md) */
    bool seal;                  /* seal request bodies to pool_pk */
    uint8_t pool_pk[EE_SEAL_PK_BYTES];
    bool have_ck;               /* client key loaded: sign, open sealed replies */
    ee_client_key ck;
    const char *tenant;         /* signs as; NULL: unsigned */
} prod_client;

/* Messages name the flag and the file (--plain-model X: ..., --key Y: ...). */
int prod_client_open(prod_client *c, const char *plain_path, const char *key_path,
                     const char *scheme, ee_err *err);
void prod_client_close(prod_client *c);
/* Sealing and signing from --pool-pk, --client-key, --tenant (any may be
 * NULL). Messages name the flag. */
int prod_client_secure(prod_client *c, const char *pool_pk_hex, const char *client_key_path,
                       const char *tenant, ee_err *err);
/* A sealed reply value -> its JSON (malloc'd), with the reply key of job
 * id; -1 with err if there is no client key or it does not open. */
int prod_client_open_reply(const prod_client *c, const char *id, const void *value, size_t n,
                           char **json, size_t *len, ee_err *err);

/* Prompt text -> ENCRYPTED ids (malloc'd), as-is or wrapped in the chat
 * template. Fails for a prompt that encodes to no tokens. */
int prod_client_encode(const prod_client *c, const char *prompt, bool chat, int32_t **ids,
                       size_t *n, ee_err *err);

/* An encrypted embedding -> the plaintext one (out holds dim floats);
 * fails when the model is not an encoder or the sizes differ. */
int prod_client_decrypt_vec(const prod_client *c, const float *enc, size_t dim, float *out,
                            ee_err *err);

/* Classifiers: an image file (PNG, PGM, ...; ee_image.h) -> the stem's
 * feature map on the plaintext model, encrypted (malloc'd, *n floats).
 * invert: dark ink on a light page. */
int prod_client_image_fmap(const prod_client *c, const char *path, bool invert, float **fmap,
                           size_t *n, ee_err *err);
/* Encrypted class scores -> plaintext order (out holds n). */
int prod_client_decrypt_scores(const prod_client *c, const float *enc, size_t n, float *out,
                               ee_err *err);

/* Encrypted output ids -> plaintext ids (out holds n); fails naming the
 * index of an id outside the vocabulary. */
int prod_client_decrypt(const prod_client *c, const int32_t *enc, int32_t *out, size_t n,
                        ee_err *err);

#endif
