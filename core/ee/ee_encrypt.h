/* ee_encrypt: Equivariant Encryption of a plaintext GGUF, done once by the
 * model owner on a trusted machine. Dispatches on general.architecture to
 * that architecture's scheme (table in ee_encrypt.c; docs/EE.md). */
#ifndef EE_ENCRYPT_H
#define EE_ENCRYPT_H

#include "ee_scheme.h"

typedef struct ee_encrypt_opts {
    ee_dtype out_type;  /* file type: EE_DT_F32 (exact), F16, BF16, Q8_0, Q4_0 or
                         * Q4_1 (transformed in double, then rounded per tensor
                         * as ee_llama_tensor_type says) */
    const char *scheme; /* NULL: EE_SCHEME_ID; EE_SCHEME_LEGACY_V1 for old clients */
    bool ref_quantizer; /* round blocks as ggml's reference does (default: search
                         * each block's scale for the least error) */
    bool keep_ffn_scales; /* block-quantized files drop the MLP channel scales
                           * (they cost quality; docs/EE.md); true keeps them */
} ee_encrypt_opts;

typedef struct ee_encrypt_stats {
    double derive_ms;    /* deriving the secret transforms */
    double transform_ms; /* transforming the weights */
    double write_ms;     /* writing the file */
    uint64_t out_bytes;
    char key_id[EE_KEY_ID_HEX]; /* ee.key_id written (the scheme key's id) */
    const char *scheme;         /* ee.scheme written (static string) */
} ee_encrypt_stats;

/* Encrypt plain under key into out_path (atomic). Refuses an already
 * encrypted model, an architecture without a scheme, and shapes the scheme
 * cannot transform. stats may be NULL. */
int ee_encrypt_model(const ee_gguf *plain, const ee_key *key, const ee_encrypt_opts *opts,
                     const char *out_path, ee_encrypt_stats *stats, ee_err *err);

/* The last step of every scheme: write w to out_path (atomic) and record
 * the write time and the file's size in st. */
int ee_encrypt_write(ee_gguf_writer *w, const char *out_path, ee_encrypt_stats *st, ee_err *err);

/* One architecture's encryption, called by ee_encrypt_model after the
 * common checks (scheme known and for this architecture, not encrypted). */
typedef int (*ee_encrypt_arch_fn)(const ee_gguf *plain, const ee_key *key, const char *scheme,
                                  const ee_encrypt_opts *opts, const char *out_path,
                                  ee_encrypt_stats *stats, ee_err *err);
int ee_encrypt_llama(const ee_gguf *plain, const ee_key *key, const char *scheme,
                     const ee_encrypt_opts *opts, const char *out_path, ee_encrypt_stats *stats,
                     ee_err *err);

int ee_encrypt_cnn(const ee_gguf *plain, const ee_key *key, const char *scheme,
                   const ee_encrypt_opts *opts, const char *out_path, ee_encrypt_stats *stats,
                   ee_err *err);

int ee_encrypt_bert(const ee_gguf *plain, const ee_key *key, const char *scheme,
                    const ee_encrypt_opts *opts, const char *out_path, ee_encrypt_stats *stats,
                    ee_err *err);

#endif
