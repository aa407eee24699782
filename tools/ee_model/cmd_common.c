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
