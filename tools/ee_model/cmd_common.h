/* Helpers shared by the subcommands: opening a model file with its
 * tokenizer. (--prompt/--chat -> ids: ee_prompt_encode; --key -> cipher:
 * ee_vocab_cipher_load.) */
#ifndef EE_CMD_COMMON_H
#define EE_CMD_COMMON_H

#include "ee_error.h"
#include "ee_gguf.h"
#include "ee_key.h"
#include "ee_scheme.h"
#include "ee_tokenizer.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct cmd_model {
    ee_gguf *gguf;
    ee_tokenizer *tok; /* NULL if the file has no usable tokenizer */
    ee_err tok_err;    /* why tok is NULL */
} cmd_model;

int cmd_model_open(cmd_model *cm, const char *path, bool need_tokenizer, ee_err *err);
void cmd_model_close(cmd_model *cm);

#endif
