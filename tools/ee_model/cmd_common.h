/* Helpers shared by the subcommands: opening a model file with its
 * tokenizer, and turning --prompt/--chat into token ids. */
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

/* Tokenize a user prompt, as-is or wrapped in the chat template. */
int cmd_encode_prompt(const ee_tokenizer *tok, const char *prompt, bool chat,
                      int32_t **ids, size_t *n, ee_err *err);

/* Load a key and build the token-id cipher for a plaintext tokenizer's
 * vocabulary. The key is wiped before returning; only the tables remain. */
int cmd_load_cipher(const char *key_path, const ee_tokenizer *tok, ee_vocab_cipher *c,
                    char key_id[EE_KEY_ID_HEX], ee_err *err);

#endif
