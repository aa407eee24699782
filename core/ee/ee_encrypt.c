#include "ee_encrypt.h"

#include "ee_clock.h"

#include <string.h>

/* Architectures with a scheme: general.architecture -> its encryption. */
static const struct {
    const char *arch;
    ee_encrypt_arch_fn encrypt;
} ARCHS[] = {
    {"llama", ee_encrypt_llama},
    {"bert", ee_encrypt_bert},
    {"eecnn", ee_encrypt_cnn},
};

int ee_encrypt_model(const ee_gguf *plain, const ee_key *key, const ee_encrypt_opts *opts,
                     const char *out_path, ee_encrypt_stats *stats, ee_err *err) {
    const char *arch = ee_gguf_get_str(plain, "general.architecture", NULL);
    const ee_scheme_info *def = ee_scheme_for_arch(arch);
    const char *scheme = opts && opts->scheme ? opts->scheme : def ? def->id : EE_SCHEME_ID;
    const ee_scheme_info *si = ee_scheme_find(scheme);
    if (!si)
        return ee_err_set(err, "unknown encryption scheme '%s' (known: %s, %s, %s, legacy %s)",
                          scheme, EE_SCHEME_ID, EE_SCHEME_BERT, EE_SCHEME_CNN, EE_SCHEME_LEGACY_V1);
    if (ee_model_is_encrypted(plain))
        return ee_err_set(err, "the model is already encrypted (ee.scheme is set); encrypt the "
                               "plaintext model instead");
    for (size_t i = 0; arch && i < sizeof ARCHS / sizeof ARCHS[0]; i++) {
        if (strcmp(ARCHS[i].arch, arch) != 0) continue;
        if (strcmp(si->arch, arch) != 0)
            return ee_err_set(err, "scheme '%s' encrypts %s models, not %s", si->id, si->arch,
                              arch);
        int rc = ARCHS[i].encrypt(plain, key, si->id, opts, out_path, stats, err);
        if (rc == 0 && stats) stats->scheme = si->id;
        return rc;
    }
    return ee_err_set(err, "no encryption scheme for architecture '%.64s' (supported: llama, bert, eecnn)",
                      arch ? arch : "(general.architecture missing)");
}

int ee_encrypt_write(ee_gguf_writer *w, const char *out_path, ee_encrypt_stats *st, ee_err *err) {
    double t0 = ee_now_ms();
    if (ee_gguf_writer_write(w, out_path, err)) return -1;
    st->write_ms = ee_now_ms() - t0;
    ee_gguf *check = ee_gguf_open(out_path, NULL);
    if (check) {
        st->out_bytes = ee_gguf_file_size(check);
        ee_gguf_close(check);
    }
    return 0;
}
