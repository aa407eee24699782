#include "cmd_common.h"
#include "cmds.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cmd_fail(const char *cmd, const char *msg) {
    fprintf(stderr, "ee-model %s: %s\n", cmd, msg);
    return 1;
}

int cmd_model_open(cmd_model *cm, const char *path, bool need_tokenizer, ee_err *err) {
    memset(cm, 0, sizeof *cm);
    cm->gguf = ee_gguf_open(path, err);
    if (!cm->gguf) return -1;
    cm->tok = ee_tokenizer_open_gguf(cm->gguf, &cm->tok_err);
    if (!cm->tok && need_tokenizer) {
        ee_err_set(err, "%s: %s", path, cm->tok_err.msg);
        cmd_model_close(cm);
        return -1;
    }
    return 0;
}

void cmd_model_close(cmd_model *cm) {
    ee_tokenizer_close(cm->tok);
    ee_gguf_close(cm->gguf);
    memset(cm, 0, sizeof *cm);
}

int cmd_client_open(const cmd_model *enc, const char *plain_path, const char *key_path,
                    cmd_model *pm, ee_vocab_cipher *vc, char key_id[EE_KEY_ID_HEX],
                    ee_err *err) {
    if (cmd_model_open(pm, plain_path, false, err)) return -1;
    if (ee_model_is_encrypted(pm->gguf) || !pm->tok) {
        if (ee_model_is_encrypted(pm->gguf))
            ee_err_set(err, "--plain-model %s is itself encrypted", plain_path);
        else
            ee_err_set(err, "--plain-model %s: %s", plain_path, pm->tok_err.msg);
        cmd_model_close(pm);
        return -1;
    }
    char id[EE_KEY_ID_HEX];
    ee_key kid; /* id-only view for the check; the secret was wiped */
    memset(&kid, 0, sizeof kid);
    if (ee_vocab_cipher_load(vc, key_path, pm->gguf, ee_model_scheme(enc->gguf),
                             (uint32_t)ee_tokenizer_n_vocab(pm->tok), id, err))
        goto fail;
    memcpy(kid.id, id, sizeof kid.id);
    if (ee_model_check_key(enc->gguf, &kid, err)) goto fail;
    if (key_id) memcpy(key_id, id, EE_KEY_ID_HEX);
    return 0;
fail:
    ee_vocab_cipher_free(vc);
    cmd_model_close(pm);
    return -1;
}
