#include "ee_docseal.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define NONCE crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define TAG crypto_aead_xchacha20poly1305_ietf_ABYTES
#define B64 sodium_base64_VARIANT_URLSAFE_NO_PADDING

void ee_doc_key_derive(const ee_key *master, uint8_t out[EE_DOC_KEY_BYTES]) {
    static const char domain[] = "eeinfer.docs.v1";
    crypto_generichash(out, EE_DOC_KEY_BYTES, (const uint8_t *)domain, sizeof domain - 1,
                       master->secret, EE_KEY_BYTES);
}

char *ee_doc_seal(const uint8_t key[EE_DOC_KEY_BYTES], const char *doc_id, const void *text,
                  size_t n, ee_err *err) {
    if (sodium_init() < 0) return ee_err_set(err, "libsodium failed to initialise"), NULL;
    if (!doc_id || !*doc_id) return ee_err_set(err, "document id is empty"), NULL;
    if (n > EE_DOC_MAX_BYTES)
        return ee_err_set(err, "document %s is %zu bytes, over the limit of %u", doc_id, n,
                          EE_DOC_MAX_BYTES), NULL;
    size_t blen = NONCE + n + TAG;
    uint8_t *b = malloc(blen);
    char *out = b ? malloc(sodium_base64_ENCODED_LEN(blen, B64)) : NULL;
    if (!out) {
        free(b);
        return ee_err_set(err, "out of memory"), NULL;
    }
    randombytes_buf(b, NONCE);
    unsigned long long clen = 0;
    crypto_aead_xchacha20poly1305_ietf_encrypt(b + NONCE, &clen, text, n, (const uint8_t *)doc_id,
                                               strlen(doc_id), NULL, b, key);
    sodium_bin2base64(out, sodium_base64_ENCODED_LEN(blen, B64), b, blen, B64);
    free(b);
    return out;
}

int ee_doc_open(const uint8_t key[EE_DOC_KEY_BYTES], const char *doc_id, const char *sealed,
                char **text, size_t *n, ee_err *err) {
    *text = NULL;
    *n = 0;
    if (sodium_init() < 0) return ee_err_set(err, "libsodium failed to initialise");
    size_t slen = sealed ? strlen(sealed) : 0, cap = slen / 4 * 3 + 3, blen = 0;
    uint8_t *b = malloc(cap ? cap : 1);
    if (!b) return ee_err_set(err, "out of memory");
    if (sodium_base642bin(b, cap, sealed ? sealed : "", slen, NULL, &blen, NULL, B64) != 0) {
        free(b);
        return ee_err_set(err, "document %s: the sealed text is not URL-safe base64", doc_id);
    }
    if (blen < NONCE + TAG) {
        free(b);
        return ee_err_set(err, "document %s: %zu sealed bytes, fewer than nonce and tag", doc_id, blen);
    }
    char *m = malloc(blen - NONCE - TAG + 1);
    unsigned long long mlen = 0;
    if (!m) {
        free(b);
        return ee_err_set(err, "out of memory");
    }
    if (crypto_aead_xchacha20poly1305_ietf_decrypt((uint8_t *)m, &mlen, NULL, b + NONCE, blen - NONCE,
                                                   (const uint8_t *)doc_id, strlen(doc_id), b, key) != 0) {
        free(b);
        free(m);
        return ee_err_set(err, "document %s does not open: tampered, sealed under another key, "
                               "or for another id", doc_id);
    }
    free(b);
    m[mlen] = '\0';
    *text = m;
    *n = (size_t)mlen;
    return 0;
}
