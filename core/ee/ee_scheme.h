/* ee_scheme: the EE scheme versions, keys bound to a model, what readers of
 * an encrypted file need, and the client-side token-id cipher. Encrypting
 * a model is ee_encrypt.h; each architecture's transforms are one file
 * (ee_scheme_llama.c).
 *
 * The Llama scheme (ee-llama-v2). The transforms and their exactness proofs are in
 * docs/EE.md; in short (column vectors, y = W x):
 *
 *   vocabulary   token i -> pi(i), a permutation of every id (specials too)
 *   residual     h -> Q h, Q a Haar-random orthogonal d x d; RMSNorm gains
 *                folded into the next linear layer, so the norm commutes
 *   q / k        per kv head and RoPE pair: q pair -> s Rot(phi) q pair,
 *                k pair -> (1/s) Rot(phi) k pair (commutes with RoPE, keeps
 *                q.k); kv heads permuted, q heads permuted within their group
 *   v / out      per kv head v -> U v (U orthogonal), undone in Wo
 *   MLP          channels permuted by P; up scaled by c, undone in down
 *
 * The encrypted file is a standard GGUF: transformed weights, an untied
 * output.weight (the final norm gain is folded into it), all norm gains 1,
 * the tokenizer replaced by opaque placeholders, and metadata ee.scheme,
 * ee.key_id, ee.stop_ids (encrypted end-of-generation ids). */
#ifndef EE_SCHEME_H
#define EE_SCHEME_H

#include "ee_dtype.h"
#include "ee_error.h"
#include "ee_gguf.h"
#include "ee_key.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Scheme versions (table in ee_scheme.c). Both are readable; v2 is written.
 *   ee-llama-v1  legacy: transforms derived from the key alone, so one key
 *                gives the same vocabulary permutation on every model, and
 *                breaking one model (ee-model audit) breaks all of them
 *   ee-llama-v2  the same transform set, derived from the key bound to the
 *                plaintext model's fingerprint (ee_key_bind); ee.key_id is
 *                the bound key's id */
#define EE_SCHEME_ID "ee-llama-v2"
#define EE_SCHEME_LEGACY_V1 "ee-llama-v1"
/* BERT encoders (ee_scheme_bert.c): vocabulary and residual permutations,
 * per-head q/k and v maps, head and MLP permutations; bound to the model. */
#define EE_SCHEME_BERT "ee-bert-v1"
/* eecnn image classifiers (ee_scheme_cnn.c, ee_cnn_cipher.h): conv channel
 * permutations and positive scales, class permutation; the stem is left
 * out of the file (the client runs it); bound to the model. */
#define EE_SCHEME_CNN "ee-cnn-v1"

typedef struct ee_scheme_info {
    const char *id;
    const char *arch; /* general.architecture it transforms */
    bool model_bound; /* transforms come from the key bound to the model */
    bool legacy;      /* read, but written only on request */
} ee_scheme_info;

/* The scheme written for an architecture (NULL: none). */
const ee_scheme_info *ee_scheme_for_arch(const char *arch);
/* The table entry for id, or NULL for an unknown scheme. */
const ee_scheme_info *ee_scheme_find(const char *id);
/* The same for a user-given name: NULL with err naming flag, the value
 * and the known schemes. */
const ee_scheme_info *ee_scheme_parse(const char *flag, const char *id, ee_err *err);

/* BLAKE2b-256 over every tensor of the plaintext model in file order
 * (name, dims, type, data): the model identity keys are bound to. The key
 * holder computes it when encrypting, the client from the plain model it
 * already holds. Requantizing a model changes it. */
int ee_model_fingerprint(const ee_gguf *plain, uint8_t fp[EE_MODEL_FP_BYTES], ee_err *err);

/* The key whose streams derive `scheme`'s transforms of this plaintext
 * model: master itself for legacy v1, master bound to the model's
 * fingerprint otherwise. scheme NULL = EE_SCHEME_ID. */
int ee_scheme_key(const ee_key *master, const ee_gguf *plain, const char *scheme, ee_key *out,
                  ee_err *err);

/* ---- what a worker / client can read from an encrypted file ---- */
bool ee_model_is_encrypted(const ee_gguf *g);
/* ee.scheme of an encrypted file (NULL if absent). */
const char *ee_model_scheme(const ee_gguf *g);
/* Fails (naming both ids) if the file's ee.key_id differs from key's, or
 * the scheme is unknown. key is the scheme key (ee_scheme_key). */
int ee_model_check_key(const ee_gguf *enc, const ee_key *key, ee_err *err);
/* Encrypted end-of-generation ids from ee.stop_ids; returns the count
 * (fills up to cap), -1 with err if missing/invalid. */
int ee_model_stop_ids(const ee_gguf *enc, int32_t *out, int cap, ee_err *err);

/* ---- client side: token-id cipher ---- */
typedef struct ee_vocab_cipher {
    uint32_t n;
    uint32_t *fwd; /* plaintext id -> encrypted id */
    uint32_t *inv; /* encrypted id -> plaintext id */
} ee_vocab_cipher;

int ee_vocab_cipher_init(ee_vocab_cipher *c, const ee_key *key, uint32_t n_vocab, ee_err *err);
void ee_vocab_cipher_free(ee_vocab_cipher *c); /* wipes the tables */
/* The client's usual path: load the key file, derive the scheme key for
 * the plaintext model it holds (scheme NULL = EE_SCHEME_ID), build the
 * cipher for a vocabulary of n_vocab ids, copy the scheme key's id out
 * (what ee.key_id and requests carry; key_id may be NULL) and wipe the
 * secrets before returning: only the tables stay in memory. */
int ee_vocab_cipher_load(ee_vocab_cipher *c, const char *key_path, const ee_gguf *plain,
                         const char *scheme, uint32_t n_vocab, char key_id[EE_KEY_ID_HEX],
                         ee_err *err);
/* out[i] = pi(in[i]); fails naming the index of an id out of range. in and
 * out may alias. */
int ee_vocab_encrypt(const ee_vocab_cipher *c, const int32_t *in, int32_t *out, size_t n,
                     ee_err *err);
int ee_vocab_decrypt(const ee_vocab_cipher *c, const int32_t *in, int32_t *out, size_t n,
                     ee_err *err);

/* ---- client side: an encoder's embedding space ---- */
/* An encrypted embedding is the plaintext one with coordinates permuted:
 * enc[j] = plain[rp[j]]. in and out must not alias. */
typedef struct ee_vec_cipher {
    int dim;
    uint32_t *rp;
} ee_vec_cipher;

int ee_vec_cipher_init(ee_vec_cipher *c, const ee_key *key, int dim, ee_err *err);
void ee_vec_cipher_free(ee_vec_cipher *c); /* wipes the table */
void ee_vec_encrypt(const ee_vec_cipher *c, const float *in, float *out);
void ee_vec_decrypt(const ee_vec_cipher *c, const float *in, float *out);

#endif
