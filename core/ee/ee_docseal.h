/* ee_docseal: documents at rest in a blind index (docs/RAG.md). The key
 * holder seals each document before it leaves; workers and brokers store
 * and return the sealed bytes and never hold the key.
 *
 * Key: 32 bytes derived from the EE master key, keyed BLAKE2b with the
 * domain "eeinfer.docs.v1" (a separate key from every EE transform).
 * Cipher: libsodium's XChaCha20-Poly1305 (the AEAD form of secretbox's
 * cipher) with the document id as associated data, so a sealed document
 * moved under another id does not open. Wire form: base64 (URL-safe, no
 * padding) of a 24-byte random nonce followed by the ciphertext and tag. */
#ifndef EE_DOCSEAL_H
#define EE_DOCSEAL_H

#include "ee_error.h"
#include "ee_key.h"

#include <stddef.h>
#include <stdint.h>

#define EE_DOC_KEY_BYTES 32
#define EE_DOC_MAX_BYTES (1u << 20) /* one document, plaintext */

void ee_doc_key_derive(const ee_key *master, uint8_t out[EE_DOC_KEY_BYTES]);
/* text (n bytes) sealed under key for doc_id: a malloc'd NUL-terminated
 * base64 string. */
char *ee_doc_seal(const uint8_t key[EE_DOC_KEY_BYTES], const char *doc_id, const void *text,
                  size_t n, ee_err *err);
/* Opens what ee_doc_seal made for doc_id: *text malloc'd (NUL after it).
 * Fails naming the cause: not base64, too short, or not sealed under this
 * key for this id (tampered, another key, another id). */
int ee_doc_open(const uint8_t key[EE_DOC_KEY_BYTES], const char *doc_id, const char *sealed,
                char **text, size_t *n, ee_err *err);

#endif
