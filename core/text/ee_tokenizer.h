/* ee_tokenizer: GPT-2 byte-level BPE as stored in GGUF metadata
 * (tokenizer.ggml.model = "gpt2"), with llama.cpp's "smollm" pre-tokenizer
 * (each digit its own piece, then GPT-2 splitting rules), special-token
 * parsing, and the model's ChatML chat template.
 *
 * Built from plain arrays so that it does not depend on where the vocabulary
 * came from (a GGUF file, or a key holder's plaintext copy).
 *
 * Exactness target: HF `tokenizers` as configured in tests/ref/hf_tok.py
 * (checked over tests/data/tok_corpus.txt by the model tier). An opened
 * tokenizer is immutable (no caches), so all const functions may be called
 * from many threads at once. */
#ifndef EE_TOKENIZER_H
#define EE_TOKENIZER_H

#include "ee_error.h"
#include "ee_buf.h"
#include "ee_chat_tmpl.h"
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
 * Fails with a clear message for a tokenizer model other than gpt2 or a
 * pre-tokenizer other than smollm. Messages name the key, not the file:
 * callers prefix the path. */
ee_tokenizer *ee_tokenizer_open_gguf(const ee_gguf *g, ee_err *err);
void ee_tokenizer_close(ee_tokenizer *t);

/* Everything ee_tokenizer_open_arrays needs, as plain arrays (what the GGUF
 * keys hold). Nothing is retained: the tokenizer copies what it keeps. */
typedef struct ee_tokenizer_arrays {
    int32_t n_vocab;
    const char *const *tokens;     /* n_vocab token strings, byte-level form */
    const uint64_t *token_lens;    /* their lengths; NULL: NUL-terminated */
    const int32_t *types;          /* n_vocab EE_TOKTYPE_*; NULL: all normal */
    int32_t n_merges;
    const char *const *merges;     /* "A B" (split at the first space);
                                      rank = index; NUL-terminated */
    /* Ids, or -1 for none (note: 0 is a valid id, so set these). */
    int32_t bos_id, eos_id, eot_id, eom_id;
    bool add_bos;
    const char *pre;               /* pre-tokenizer; NULL means "smollm" */
    const char *chat_template;     /* NULL: none (ee_chat_render fails) */
} ee_tokenizer_arrays;

/* Build from arrays (unit tests, key holders). Validates everything: token
 * types in range, ids in range, every merge "A B" well-formed with A, B and
 * AB in the vocabulary (the first of duplicate merges wins; for duplicate
 * token strings the highest id wins, as in HF and llama.cpp). */
ee_tokenizer *ee_tokenizer_open_arrays(const ee_tokenizer_arrays *a, ee_err *err);

/* Id of the token whose stored string is exactly str[0..len), or -1. */
int32_t ee_tokenizer_token_id(const ee_tokenizer *t, const char *str, size_t len);
int32_t ee_tokenizer_token_type(const ee_tokenizer *t, int32_t id);  /* -1 if out of range */

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
 * tokenized byte by byte (never an error). A byte whose byte-level token is
 * missing from the vocabulary is dropped, as HF and llama.cpp do (SmolLM2
 * has no token for 0x04 0x06 0x13 0x14 0x16 0x1D 0xC0 0xC1 0xF1 0xF2
 * 0xF5..0xFF), so decode(encode(x)) == x only for text without them. */
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

/* Like ee_tokenizer_decode, but the text is always valid UTF-8 (for JSON
 * and other text channels): each maximal ill-formed subpart, e.g. a
 * multi-byte character cut by max_tokens, becomes U+FFFD, exactly as HF's
 * decode does. The plain decode returns the raw bytes instead (use it, or
 * ee_tokenizer_piece, to stream and reassemble characters across tokens). */
int ee_tokenizer_decode_lossy(const ee_tokenizer *t, const int32_t *ids,
                              size_t n, bool render_special, char **text,
                              size_t *len, ee_err *err);

/* The chat template the model ships (kind NONE and text NULL if none);
 * rendering and encoding with it is ee_chat.h. */
const ee_chat_tmpl *ee_tokenizer_chat_tmpl(const ee_tokenizer *t);

/* Encode text without parsing special tokens and without BOS, appending
 * to out (ee_chat encodes each turn's text this way). */
int ee_tokenizer_encode_append(const ee_tokenizer *t, const char *text, size_t len, ee_ids *out,
                               ee_err *err);

#endif
