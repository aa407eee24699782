/* ee_scheme: the scheme versions, keys bound to a model, and what readers
 * of an encrypted file need (key check, stop ids). The transforms of each
 * architecture are in their own file (ee_scheme_llama.c); encryption
 * dispatches to them (ee_encrypt.c). Proofs of exactness: docs/EE.md. */
#include "ee_scheme.h"

#include <sodium.h>
#include <string.h>

/* ---- 0. scheme versions and model binding ---------------------------------- */

/* Every scheme this build reads; the one written for an architecture is
 * its entry that is not legacy. */
static const ee_scheme_info SCHEMES[] = {
    /* id                   arch     model_bound legacy */
    {EE_SCHEME_LEGACY_V1, "llama", false, true},
    {EE_SCHEME_ID,        "llama", true,  false},
    {EE_SCHEME_BERT,      "bert",  true,  false},
    {EE_SCHEME_CNN,       "eecnn", true,  false},
};

const ee_scheme_info *ee_scheme_for_arch(const char *arch) {
    for (size_t i = 0; arch && i < sizeof SCHEMES / sizeof SCHEMES[0]; i++)
        if (!SCHEMES[i].legacy && strcmp(SCHEMES[i].arch, arch) == 0) return &SCHEMES[i];
    return NULL;
}

const ee_scheme_info *ee_scheme_find(const char *id) {
    for (size_t i = 0; id && i < sizeof SCHEMES / sizeof SCHEMES[0]; i++)
        if (strcmp(SCHEMES[i].id, id) == 0) return &SCHEMES[i];
    return NULL;
}

const ee_scheme_info *ee_scheme_parse(const char *flag, const char *id, ee_err *err) {
    const ee_scheme_info *si = ee_scheme_find(id);
    if (!si)
        ee_err_set(err, "%s: '%.64s' is not %s, %s or the legacy %s", flag, id ? id : "",
                   EE_SCHEME_ID, EE_SCHEME_BERT, EE_SCHEME_LEGACY_V1);
    return si;
}

int ee_model_fingerprint(const ee_gguf *plain, uint8_t fp[EE_MODEL_FP_BYTES], ee_err *err) {
    if (ee_sodium_init(err)) return -1;
    if (ee_model_is_encrypted(plain))
        return ee_err_set(err, "the model is encrypted; keys are bound to the plaintext model");
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, EE_MODEL_FP_BYTES);
    static const char domain[] = "eeinfer.model-fingerprint.v1";
    crypto_generichash_update(&st, (const uint8_t *)domain, sizeof domain);
    for (uint64_t i = 0; i < ee_gguf_n_tensors(plain); i++) {
        const ee_gguf_tensor *t = ee_gguf_tensor_at(plain, i);
        uint64_t hdr[2 + EE_GGUF_MAX_DIMS] = {t->n_dims, (uint64_t)t->type};
        for (int k = 0; k < EE_GGUF_MAX_DIMS; k++) hdr[2 + k] = t->ne[k];
        crypto_generichash_update(&st, (const uint8_t *)t->name, strlen(t->name) + 1);
        crypto_generichash_update(&st, (const uint8_t *)hdr, sizeof hdr);
        crypto_generichash_update(&st, t->data, t->nbytes);
    }
    crypto_generichash_final(&st, fp, EE_MODEL_FP_BYTES);
    return 0;
}

int ee_scheme_key(const ee_key *master, const ee_gguf *plain, const char *scheme, ee_key *out,
                  ee_err *err) {
    const ee_scheme_info *si = ee_scheme_find(scheme ? scheme : EE_SCHEME_ID);
    if (!si) return ee_err_set(err, "unknown encryption scheme '%s'", scheme);
    if (!si->model_bound) {
        *out = *master;
        return 0;
    }
    uint8_t fp[EE_MODEL_FP_BYTES];
    if (ee_model_fingerprint(plain, fp, err)) return -1;
    ee_key_bind(master, fp, out);
    sodium_memzero(fp, sizeof fp);
    return 0;
}

/* ---- 4. reading an encrypted file --------------------------------------------------- */

bool ee_model_is_encrypted(const ee_gguf *g) { return ee_gguf_find_kv(g, "ee.scheme") != NULL; }

const char *ee_model_scheme(const ee_gguf *g) { return ee_gguf_get_str(g, "ee.scheme", NULL); }

int ee_model_check_key(const ee_gguf *enc, const ee_key *key, ee_err *err) {
    const char *scheme = ee_model_scheme(enc);
    if (!scheme) return ee_err_set(err, "the model is not encrypted (no ee.scheme)");
    const ee_scheme_info *si = ee_scheme_find(scheme);
    if (!si)
        return ee_err_set(err, "unsupported encryption scheme '%.64s' (this build knows '%s' and "
                               "legacy '%s')", scheme, EE_SCHEME_ID, EE_SCHEME_LEGACY_V1);
    const char *id = ee_gguf_get_str(enc, "ee.key_id", NULL);
    if (!id) return ee_err_set(err, "the model has no ee.key_id");
    if (strlen(id) != strlen(key->id) || !ee_key_id_equal(id, key->id))
        return ee_err_set(err, "key mismatch: the model was encrypted with key id %.64s, this key "
                               "has id %s%s", id, key->id,
                          si->model_bound ? " for this plain model (a different key, or not the "
                                            "plain model the file was encrypted from)" : "");
    return 0;
}

int ee_model_stop_ids(const ee_gguf *enc, int32_t *out, int cap, ee_err *err) {
    const ee_gguf_kv *kv = ee_gguf_get_arr(enc, "ee.stop_ids", EE_GGUF_I32, err);
    if (!kv) return -1;
    const int32_t *v = kv->arr;
    for (uint64_t i = 0; i < kv->n && (int)i < cap; i++) out[i] = v[i];
    return (int)kv->n;
}

