/* ee_wordpiece: the BERT WordPiece tokenizer (uncased: BertNormalizer with
 * lowercase and accent stripping, BertPreTokenizer, WordPiece with "##"
 * continuations, [CLS] text [SEP]), as for all-MiniLM-L6-v2.
 *
 * Exactness target: HF `tokenizers` loading the model's tokenizer.json
 * with truncation and padding disabled (truncation is the model's
 * business): the ids are identical, which the model tier checks over
 * tests/data/wp_corpus.txt (tests/model/test_wordpiece_model.c).
 *
 *  - Special tokens typed in the text ("[CLS]", "[SEP]", "[MASK]", ...: the
 *    CONTROL tokens) become their ids, as tokenizers' encode does (its
 *    added tokens are special and not normalized, so they match the raw
 *    text exactly, leftmost-longest; "[cls]" is plain text). parse_special
 *    = false in ee_wordpiece_encode_opts reads them as plain text, as
 *    tokenizers does with encode_special_tokens = True.
 *  - Words (after normalization and pre-tokenization) longer than 100
 *    characters, and words no sequence of vocabulary pieces spells, are
 *    one [UNK] each.
 *  - Invalid UTF-8 never fails: each ill-formed byte reads as U+FFFD, as
 *    Python's bytes.decode(errors="replace") or Rust's from_utf8_lossy
 *    give it to tokenizers, and the normalizer's clean_text drops U+FFFD.
 *    (The byte-level BPE tokenizer likewise never fails on bytes.) So the
 *    ids of any bytes b are tokenizers' ids of b.decode("utf-8", "replace").
 *
 * Vocabulary in GGUF, as llama.cpp's convert_hf_to_gguf.py BertModel
 * writes it: tokenizer.ggml.model = "bert"; tokenizer.ggml.tokens in its
 * "phantom space" form: a continuation "##xy" is stored as "xy", any other
 * token as "\u2581" + token, CONTROL tokens (token_type 3: the added
 * special tokens [PAD] [UNK] [CLS] [SEP] [MASK]) as they are; older
 * converters kept every "[...]" token as it is, which is read the same
 * way. tokenizer.ggml.{unknown,cls,seperator (sic),padding,mask}_token_id
 * name the special ids (cls and sep fall back to bos/eos_token_id, then
 * to the tokens "[CLS]"/"[SEP]"; unk to "[UNK]"). tokenizer.ggml.pre is
 * not read. The model is taken as uncased (lowercase and strip accents,
 * what llama.cpp's WPM tokenizer also assumes); a cased BERT would need a
 * key to say so.
 *
 * An opened tokenizer is immutable and encode allocates nothing, so any
 * number of threads may use one at once. */
#ifndef EE_WORDPIECE_H
#define EE_WORDPIECE_H

#include "ee_error.h"
#include "ee_gguf.h"
#include "ee_tokenizer.h" /* EE_TOKTYPE_* */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ee_wordpiece ee_wordpiece;

/* Build from a GGUF file's tokenizer.ggml.* keys (see above). Errors name
 * the key, not the file: callers prefix the path. */
int ee_wordpiece_open_gguf(ee_wordpiece **out, const ee_gguf *g, ee_err *err);

/* Everything ee_wordpiece_open_arrays needs. Nothing is retained. */
typedef struct ee_wordpiece_arrays {
    int32_t n_vocab;
    const char *const *tokens;  /* WordPiece form: "##xy" for continuations,
                                   as in tokenizer.json and vocab.txt */
    const uint64_t *token_lens; /* NULL: NUL-terminated */
    const int32_t *types;       /* EE_TOKTYPE_*; NULL: all normal. CONTROL
                                   tokens are the special tokens */
    /* Ids, -1 for none. unk, cls and sep are required. */
    int32_t unk_id, cls_id, sep_id, pad_id, mask_id;
} ee_wordpiece_arrays;

/* Build from arrays (unit tests, key holders). Of duplicate token strings
 * the highest id wins, as in tokenizers' vocabulary map. */
int ee_wordpiece_open_arrays(ee_wordpiece **out, const ee_wordpiece_arrays *a, ee_err *err);

void ee_wordpiece_close(ee_wordpiece *t);

/* [CLS] text [SEP], special tokens in the text parsed. Writes up to cap
 * ids; *n_out is the number of ids the text needs (also on failure).
 * Returns -1 with err if cap is too small (ids then holds the first cap),
 * or for invalid arguments. ids may be NULL when cap is 0 (a size query). */
int ee_wordpiece_encode(const ee_wordpiece *t, const char *text, size_t len,
                        int32_t *ids, size_t cap, size_t *n_out, ee_err *err);

/* The same into a malloc'd array of exactly the ids needed (*ids, *n_out). */
int ee_wordpiece_encode_alloc(const ee_wordpiece *t, const char *text, size_t len, int32_t **ids,
                              size_t *n_out, ee_err *err);

typedef struct ee_wordpiece_opts {
    bool add_cls_sep;   /* [CLS] ... [SEP] (tokenizers' add_special_tokens) */
    bool parse_special; /* special-token strings in the text become their ids */
} ee_wordpiece_opts;

/* ee_wordpiece_encode with options (NULL: both true, the defaults). */
int ee_wordpiece_encode_opts(const ee_wordpiece *t, const char *text, size_t len,
                             const ee_wordpiece_opts *opts, int32_t *ids, size_t cap,
                             size_t *n_out, ee_err *err);

int32_t ee_wordpiece_n_vocab(const ee_wordpiece *t);
/* The token's text in WordPiece form ("##xy" for continuations), for
 * decoding and display; NULL for an id out of range. */
const char *ee_wordpiece_token(const ee_wordpiece *t, int32_t id);
/* Id of the token whose WordPiece form is str[0..len), or -1. */
int32_t ee_wordpiece_token_id(const ee_wordpiece *t, const char *str, size_t len);
/* Whether id is a special (CONTROL) token. */
bool ee_wordpiece_is_special(const ee_wordpiece *t, int32_t id);

int32_t ee_wordpiece_unk(const ee_wordpiece *t);
int32_t ee_wordpiece_cls(const ee_wordpiece *t);
int32_t ee_wordpiece_sep(const ee_wordpiece *t);
int32_t ee_wordpiece_pad(const ee_wordpiece *t);  /* -1 if none */
int32_t ee_wordpiece_mask(const ee_wordpiece *t); /* -1 if none */

/* Ids back to text as tokenizers' WordPiece decoder (cleanup on) does:
 * continuations join the previous piece, other pieces follow a space, and
 * " ." " ?" " !" " ," " ' " " n't" " 'm" " 's" " 've" " 're" lose their space
 * (" do not" becomes " don't"). skip_special leaves out the special tokens
 * (tokenizers' decode default). The text is lowercased and accent-stripped:
 * decoding does not give the input back. *text is malloc'd, NUL-terminated;
 * err names the index of an id out of range. */
int ee_wordpiece_decode(const ee_wordpiece *t, const int32_t *ids, size_t n, bool skip_special,
                        char **text, size_t *len, ee_err *err);

#endif
