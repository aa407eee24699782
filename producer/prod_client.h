/* prod_client: the key holder's side of a job. Opens the PLAINTEXT model
 * only for its tokenizer, loads the key into the token-id cipher (the
 * secret itself is wiped at once; only the permutation tables stay in
 * memory), tokenizes and encrypts prompts, decrypts output ids.
 * Nothing here talks to Kafka or prints. */
#ifndef PROD_CLIENT_H
#define PROD_CLIENT_H

#include "ee_error.h"
#include "ee_gguf.h"
#include "ee_key.h"
#include "ee_scheme.h"
#include "ee_tokenizer.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct prod_client {
    ee_gguf *gguf;
    ee_tokenizer *tok;
    ee_vocab_cipher vc;
    char key_id[EE_KEY_ID_HEX]; /* public fingerprint, goes into requests */
} prod_client;

/* Messages name the flag and the file (--plain-model X: ..., --key Y: ...). */
int prod_client_open(prod_client *c, const char *plain_path, const char *key_path,
                     const char *scheme, ee_err *err);
void prod_client_close(prod_client *c);

/* Prompt text -> ENCRYPTED ids (malloc'd), as-is or wrapped in the chat
 * template. Fails for a prompt that encodes to no tokens. */
int prod_client_encode(const prod_client *c, const char *prompt, bool chat, int32_t **ids,
                       size_t *n, ee_err *err);

/* Encrypted output ids -> plaintext ids (out holds n); fails naming the
 * index of an id outside the vocabulary. */
int prod_client_decrypt(const prod_client *c, const int32_t *enc, int32_t *out, size_t n,
                        ee_err *err);

#endif
