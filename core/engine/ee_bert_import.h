/* ee_bert_import: a Hugging Face BERT checkpoint (a sentence-transformers
 * directory: config.json, model.safetensors, tokenizer.json, optionally
 * modules.json, 1_Pooling/config.json, sentence_bert_config.json,
 * tokenizer_config.json) to GGUF, written the way llama.cpp's
 * convert_hf_to_gguf.py writes a BertModel so llama.cpp loads the file, plus
 * the sentence-transformers facts llama.cpp has no key for under
 * "eeinfer." (docs/ENCODER.md lists every key).
 *
 * Architecture "bert"; tensors token_embd, token_types, position_embd,
 * token_embd_norm and per block blk.N.{attn_q, attn_k, attn_v, attn_output,
 * attn_output_norm, ffn_up, ffn_down, layer_output_norm}, each .weight and
 * .bias; weights stored f32, or f16 (as llama.cpp's --outtype f16: 2-D
 * .weight tensors f16 except position_embd and token_types; norms and
 * biases f32). The vocabulary is written in llama.cpp's "phantom space"
 * form (see ee_bert_phantom_token). */
#ifndef EE_BERT_IMPORT_H
#define EE_BERT_IMPORT_H

#include "ee_dtype.h"
#include "ee_error.h"

#include <stddef.h>

/* Metadata keys of our own (llama.cpp has none for these). */
#define EE_BERT_KEY_MAX_SEQ "eeinfer.max_seq_length"          /* u32: tokens kept, [CLS]/[SEP] included */
#define EE_BERT_KEY_NORMALIZE "eeinfer.normalize"             /* bool: L2-normalise the pooled vector */
#define EE_BERT_KEY_LOWERCASE "eeinfer.lowercase"             /* bool: tokenizer lowercases */
#define EE_BERT_KEY_STRIP_ACCENTS "eeinfer.strip_accents"     /* bool: tokenizer strips accents (NFD, drop Mn) */
#define EE_BERT_KEY_CLEAN_TEXT "eeinfer.clean_text"           /* bool: drop control chars, whitespace -> ' ' */
#define EE_BERT_KEY_CHINESE "eeinfer.handle_chinese_chars"    /* bool: space around CJK ideographs */
#define EE_BERT_KEY_MAX_WORD "eeinfer.max_input_chars_per_word" /* u32: longer words -> [UNK] */

typedef struct ee_bert_import_opts {
    ee_dtype wtype;   /* EE_DT_F32 (default when opts is NULL) or EE_DT_F16 */
    const char *name; /* general.name; NULL: the directory's last component */
} ee_bert_import_opts;

/* Convert DIR to a GGUF at out_path (written to out_path.tmp, renamed when
 * complete). Every input is validated: config values, each tensor's
 * presence, dtype (F32/F16/BF16) and shape, vocabulary ids; a tensor the
 * converter does not know is an error (as in llama.cpp), except the ones
 * llama.cpp drops too (embeddings.position_ids, pooler.*, cls.*). */
int ee_bert_import(const char *dir, const char *out_path, const ee_bert_import_opts *opts,
                   ee_err *err);

/* llama.cpp's phantom-space form of a WordPiece token: control tokens
 * ([CLS], [SEP]... marked special in tokenizer.json) unchanged, "##x" ->
 * "x", any other token gets U+2581 prepended. Writes at most cap bytes
 * (NUL included); returns the length, or -1 if cap is too small. */
int ee_bert_phantom_token(const char *tok, int is_control, char *out, size_t cap);

#endif
