/* ee_tokenizer: GPT-2 byte-level BPE as stored in GGUF metadata
 * (tokenizer.ggml.model = "gpt2"), with llama.cpp's "smollm" pre-tokenizer
 * (each digit its own piece, then GPT-2 splitting rules), special-token
 * parsing, and the model's ChatML chat template.
 *
 * Built from plain arrays so that it does not depend on where the vocabulary
 * came from (a GGUF file, or a key holder's plaintext copy). */
#ifndef EE_TOKENIZER_H
#define EE_TOKENIZER_H

#include "ee_error.h"
#include "ee_gguf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Token types as in tokenizer.ggml.token_type (llama.cpp's values). */
enum {
    EE_TOKTYPE_UNDEFINED = 0,
    EE_TOKTYPE_NORMAL = 1,
    EE_TOKTYPE_UNKNOWN = 2,
    EE_TOKTYPE_CONTROL = 3,
    EE_TOKTYPE_USER_DEFINED = 4,
    EE_TOKTYPE_UNUSED = 5,
    EE_TOKTYPE_BYTE = 6,
};

typedef struct ee_tokenizer ee_tokenizer;

/* Build from GGUF metadata: tokenizer.ggml.{model,pre,tokens,token_type,
 * merges,bos_token_id,eos_token_id,add_bos_token}, tokenizer.chat_template.
 * Fails with a clear message for a tokenizer model other than gpt2. */
ee_tokenizer *ee_tokenizer_open_gguf(const ee_gguf *g, ee_err *err);
void ee_tokenizer_close(ee_tokenizer *t);

int32_t ee_tokenizer_n_vocab(const ee_tokenizer *t);
int32_t ee_tokenizer_bos(const ee_tokenizer *t);   /* -1 if none */
int32_t ee_tokenizer_eos(const ee_tokenizer *t);   /* -1 if none */
bool ee_tokenizer_add_bos(const ee_tokenizer *t);
/* End-of-generation ids: eos, <|endoftext|>, <|im_end|>, <|eot_id|>... as
 * present in the vocabulary. Returns the count, fills up to cap. */
int ee_tokenizer_eog_ids(const ee_tokenizer *t, int32_t *out, int cap);
bool ee_tokenizer_is_eog(const ee_tokenizer *t, int32_t id);
bool ee_tokenizer_is_control(const ee_tokenizer *t, int32_t id);
/* The stored token string (byte-level form, e.g. "Ġthe"). */
const char *ee_tokenizer_token_str(const ee_tokenizer *t, int32_t id);

/* Encode UTF-8 text. If parse_special, control/user-defined token strings
 * in the text (e.g. "<|im_start|>") become their ids (longest match first);
 * otherwise they are tokenized as plain text. Adds BOS if the model asks for
 * it and add_bos is true. *ids is malloc'd; caller frees. Invalid UTF-8 is
 * tokenized byte by byte (never an error). */
int ee_tokenizer_encode(const ee_tokenizer *t, const char *text, size_t len,
                        bool add_bos, bool parse_special, int32_t **ids,
                        size_t *n_ids, ee_err *err);

/* Bytes of one token's text (control tokens: their literal text if
 * render_special, else empty). Writes at most cap bytes; returns the full
 * length, or -1 for an id out of range. */
int ee_tokenizer_piece(const ee_tokenizer *t, int32_t id, bool render_special,
                       char *buf, size_t cap);

/* Decode ids to a malloc'd NUL-terminated string. Fails (err names the
 * index and id) for an id out of range. */
int ee_tokenizer_decode(const ee_tokenizer *t, const int32_t *ids, size_t n,
                        bool render_special, char **text, size_t *len,
                        ee_err *err);

/* Render a single-turn chat prompt with the model's template: ChatML with
 * the template's default system line when the template is the SmolLM/ChatML
 * form, followed by the assistant generation prefix. system may be NULL
 * (use the template's default). Returns malloc'd text to be encoded with
 * parse_special = true. Fails for a template it does not recognise. */
int ee_chat_render(const ee_tokenizer *t, const char *system, const char *user,
                   char **out, ee_err *err);

#endif
