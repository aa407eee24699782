#include "prod_client.h"

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

void prod_client_close(prod_client *c) {
    ee_vocab_cipher_free(&c->vc);
    ee_tokenizer_close(c->tok);
    ee_gguf_close(c->gguf);
    memset(c, 0, sizeof *c);
}

int prod_client_encode(const prod_client *c, const char *prompt, bool chat, int32_t **ids,
                       size_t *n, ee_err *err) {
    *ids = NULL;
    *n = 0;
    if (ee_prompt_encode(c->tok, prompt, chat, ids, n, err)) return -1;
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
