/* ee_key: the key holder's secret and everything derived from it.
 *
 * A key is 32 bytes from libsodium's CSPRNG. Its id (safe to publish) is a
 * keyed BLAKE2b fingerprint. Every secret transform is derived
 * deterministically from the key with domain separation: a libsodium KDF
 * subkey per (purpose, index), expanded by ChaCha20 into a stream of
 * uniform bits. Same key + same model => byte-identical outputs.
 *
 * Key file (binary, 0600, never overwritten):
 *   "EEKEY001"           8-byte magic + version
 *   secret               32 bytes
 *   check                16 bytes: BLAKE2b-128(secret, key="eeinfer.keyfile")
 * A file with other permissions than owner-only, another size, a wrong
 * magic or a failing check is refused with a message saying which. */
#ifndef EE_KEY_H
#define EE_KEY_H

#include "ee_error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EE_KEY_BYTES 32
#define EE_KEY_ID_BYTES 16
#define EE_KEY_ID_HEX (EE_KEY_ID_BYTES * 2 + 1)

typedef struct ee_key {
    uint8_t secret[EE_KEY_BYTES];
    char id[EE_KEY_ID_HEX]; /* lowercase hex of the fingerprint */
} ee_key;

/* libsodium init (idempotent); -1 if it cannot initialise. */
int ee_sodium_init(ee_err *err);

/* New random key (id filled). */
int ee_key_generate(ee_key *k, ee_err *err);
/* Key from given bytes (tests, derivation). */
void ee_key_from_bytes(ee_key *k, const uint8_t secret[EE_KEY_BYTES]);
/* Write to path with mode 0600; refuses to overwrite an existing file;
 * atomic (tmp + rename); never leaves a partial file. */
int ee_key_save(const ee_key *k, const char *path, ee_err *err);
/* Read and verify (permissions, size, magic, check). */
int ee_key_load(ee_key *k, const char *path, ee_err *err);
/* The same file rules for any 32-byte secret, told apart by an 8-byte
 * magic: EE keys ("EEKEY001"), worker-pool sealing keys and client
 * signing keys (ee_seal.h). Loading a file of another kind names both. */
#define EE_KEYFILE_POOL "EEPOOL01"
#define EE_KEYFILE_CLIENT "EESIGN01"
int ee_keyfile_save(const char *path, const char *magic, const uint8_t secret[EE_KEY_BYTES],
                    ee_err *err);
int ee_keyfile_load(const char *path, const char *magic, uint8_t secret[EE_KEY_BYTES],
                    ee_err *err);
/* Wipe the secret (sodium_memzero). */
void ee_key_wipe(ee_key *k);

/* Model binding (scheme ee-llama-v2 and later): the key whose streams
 * derive a model's transforms is
 *   secret' = BLAKE2b-256(key = secret, "eeinfer.model-bind.v2" || fp)
 * with fp the plaintext model's fingerprint (ee_model_fingerprint), and its
 * id is the id of secret'. One key on two different models therefore gives
 * unrelated transforms and unlinkable key ids; the same key and model give
 * the same ones. */
#define EE_MODEL_FP_BYTES 32
void ee_key_bind(const ee_key *master, const uint8_t fp[EE_MODEL_FP_BYTES], ee_key *bound);

/* Constant-time comparison of two key ids (hex strings of equal length). */
bool ee_key_id_equal(const char *a, const char *b);

/* ---- deterministic streams ------------------------------------------------ */

/* Purposes for domain separation; index distinguishes layers/heads. */
typedef enum ee_purpose {
    EE_P_VOCAB_PERM = 1,   /* token permutation */
    EE_P_RESID_ROT = 2,    /* residual-stream rotation */
    EE_P_HEAD_PERM = 3,    /* attention head permutation, per layer */
    EE_P_QK_PAIR = 4,      /* per-pair rotation angle and scale of q/k, per layer */
    EE_P_V_ROT = 5,        /* per-kv-head rotation of v, per layer */
    EE_P_FFN_PERM = 6,     /* MLP channel permutation, per layer */
    EE_P_FFN_SCALE = 7,    /* MLP up-projection scales, per layer */
    EE_P_RESID_PERM = 8,   /* residual-stream permutation (post-LN encoders) */
    EE_P_QK_ROT = 9,       /* per-head orthogonal q/k map and scale, per layer */
    EE_P_CONV_PERM = 10,   /* conv output-channel permutation, per block (eecnn) */
    EE_P_CONV_SCALE = 11,  /* conv output-channel scales, per block (eecnn) */
    EE_P_CLASS_PERM = 12,  /* class permutation of a classifier's head */
    EE_P_TEST = 63,        /* tests only */
} ee_purpose;

typedef struct ee_stream {
    uint8_t subkey[32];
    uint64_t block;      /* next ChaCha20 block */
    uint8_t buf[64];
    unsigned pos;        /* bytes of buf consumed (64 = empty) */
} ee_stream;

/* Stream for (purpose, index) under key k. Wipe with ee_stream_wipe. */
void ee_stream_init(ee_stream *s, const ee_key *k, ee_purpose purpose, uint32_t index);
void ee_stream_wipe(ee_stream *s);
uint64_t ee_stream_u64(ee_stream *s);
/* Uniform integer in [0, n) without modulo bias (rejection sampling). */
uint64_t ee_stream_uniform(ee_stream *s, uint64_t n);
/* Uniform double in [0, 1) with 53 random bits. */
double ee_stream_unit(ee_stream *s);
/* Standard normal (Box-Muller on two uniforms). */
double ee_stream_gauss(ee_stream *s);

/* ---- transforms ---------------------------------------------------------------- */

/* Uniform random permutation of 0..n-1 (Fisher-Yates). perm[i] = image of i. */
void ee_random_permutation(ee_stream *s, uint32_t *perm, uint32_t n);
/* inv[perm[i]] = i. */
void ee_permutation_invert(const uint32_t *perm, uint32_t *inv, uint32_t n);
/* Haar-random orthogonal n x n matrix, row-major, in double (QR of a
 * Gaussian matrix by Householder reflections with the sign fix of
 * Mezzadri 2007). Returns -1 only on allocation failure. */
int ee_random_orthogonal(ee_stream *s, double *q, int n, ee_err *err);
/* Positive scale log-uniform in [1/r, r]. */
double ee_random_scale(ee_stream *s, double r);

#endif
