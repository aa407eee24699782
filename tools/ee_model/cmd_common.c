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

int cmd_encode_prompt(const ee_tokenizer *tok, const char *prompt, bool chat,
                      int32_t **ids, size_t *n, ee_err *err) {
    if (!chat)
        return ee_tokenizer_encode(tok, prompt, strlen(prompt), true, false, ids, n, err);
    /* Only the template's own markers become control ids; a prompt that
     * contains "<|im_end|>" is text, not a turn boundary. */
    return ee_chat_encode(tok, NULL, prompt, true, ids, n, err);
}

int cmd_load_cipher(const char *key_path, const ee_tokenizer *tok, ee_vocab_cipher *c,
                    char key_id[EE_KEY_ID_HEX], ee_err *err) {
    ee_key k;
    if (ee_key_load(&k, key_path, err)) return -1;
    int rc = ee_vocab_cipher_init(c, &k, (uint32_t)ee_tokenizer_n_vocab(tok), err);
    if (key_id) memcpy(key_id, k.id, EE_KEY_ID_HEX);
    ee_key_wipe(&k);
    return rc;
}
