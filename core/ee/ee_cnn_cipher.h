/* ee_cnn_cipher: the secrets of ee-cnn-v1 and the client's side of it.
 *
 * Per conv block l (docs/EE.md "The CNN transform set"): new output
 * channel j holds old channel perm_l[j] times scale_l[j] > 0 (streams
 * EE_P_CONV_PERM / EE_P_CONV_SCALE, index l); the head's new class r is
 * old class class_perm[r] (EE_P_CLASS_PERM). The encrypted file has no
 * stem, so the client runs block 0's conv + ReLU on the plaintext image
 * (ee_cnn_stem on the plaintext model) and encrypts that feature map with
 * block 0's permutation and scales: exactly what the encrypted stem would
 * have produced, without the stem ever reaching a worker.
 *
 * What a worker learns from that feature map is measured, not assumed:
 * docs/SECURITY.md row 5 (`ee-model audit` on an eecnn file). */
#ifndef EE_CNN_CIPHER_H
#define EE_CNN_CIPHER_H

#include "ee_cnn.h"
#include "ee_key.h"
#include "ee_scheme.h"

#include <stdint.h>

#define EE_CNN_SCALE_RANGE 4.0 /* channel scales log-uniform in [1/4, 4] */

typedef struct ee_cnn_secrets {
    int n_block;
    int c_out[EE_CNN_MAX_BLOCKS];
    uint32_t *perm[EE_CNN_MAX_BLOCKS];  /* [c_out] new channel j holds old perm[j] */
    double *scale[EE_CNN_MAX_BLOCKS];   /* [c_out] and is scaled by scale[j] */
    int n_class;
    uint32_t *class_perm;               /* [n_class] new class r is old class_perm[r] */
} ee_cnn_secrets;

/* The transforms of a network with n_block blocks of c_out[l] channels and
 * n_class classes, under the scheme key. Wiped by ee_cnn_secrets_free. */
int ee_cnn_secrets_derive(ee_cnn_secrets *s, const ee_key *key, int n_block, const int *c_out,
                          int n_class, ee_err *err);
void ee_cnn_secrets_free(ee_cnn_secrets *s);

/* The client: the stem's channel map and the class permutation only. */
typedef struct ee_cnn_cipher {
    int channels, hw, n_class;
    uint32_t *perm;       /* [channels] */
    float *scale;         /* [channels] */
    uint32_t *class_perm; /* [n_class] */
} ee_cnn_cipher;

int ee_cnn_cipher_init(ee_cnn_cipher *c, const ee_key *key, int channels, int hw, int n_class,
                       ee_err *err);
/* Load the key file, bind it to the plaintext model (as the key holder did
 * when encrypting), build the cipher for that model's stem and classes,
 * copy the scheme key's id out (key_id may be NULL) and wipe the key. */
int ee_cnn_cipher_load(ee_cnn_cipher *c, const char *key_path, const ee_gguf *plain,
                       const ee_cnn_model *m, char key_id[EE_KEY_ID_HEX], ee_err *err);
void ee_cnn_cipher_free(ee_cnn_cipher *c); /* wipes the tables */
/* One stem feature map [channels][hw] -> encrypted; in and out must not
 * alias. */
void ee_cnn_fmap_encrypt(const ee_cnn_cipher *c, const float *in, float *out);
/* The inverse (tests and the audit's ground truth). */
void ee_cnn_fmap_decrypt(const ee_cnn_cipher *c, const float *in, float *out);
/* Encrypted class scores [n_class] -> plaintext order; no aliasing. */
void ee_cnn_scores_decrypt(const ee_cnn_cipher *c, const float *in, float *out);

#endif
