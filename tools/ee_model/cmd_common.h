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

/* The key holder's side of an encrypted model `enc`: open the plaintext
 * model (with its tokenizer; an encrypted one is refused), load the key
 * bound to it as enc's scheme says, build the token-id cipher and check the
 * key is enc's. key_id (may be NULL) receives the scheme key's id. On
 * failure pm is closed and vc freed. */
int cmd_client_open(const cmd_model *enc, const char *plain_path, const char *key_path,
                    cmd_model *pm, ee_vocab_cipher *vc, char key_id[EE_KEY_ID_HEX],
                    ee_err *err);

#endif
