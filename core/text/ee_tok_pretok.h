/* ee_tok_pretok: the "smollm" pre-tokenizer (llama.cpp's name), i.e. HF's
 * Sequence[Digits(individual_digits=True), ByteLevel(use_regex=True)]:
 *
 *   1. every \p{N} code point becomes its own piece;
 *   2. each stretch between them is split by GPT-2's pattern
 *      's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 *      with the stretch's end acting as end of text (so "a  1" gives
 *      "a", "  ", "1": the spaces cannot lend one to the digit).
 *
 * Works on raw bytes: a byte that does not start well-formed UTF-8 counts as
 * one "other" character, so every input byte lands in exactly one piece and
 * the pieces concatenate back to the input. Internal to the tokenizer;
 * exposed for unit tests. */
#ifndef EE_TOK_PRETOK_H
#define EE_TOK_PRETOK_H

#include <stddef.h>

/* Called for each piece in order; a non-zero return stops the split and is
 * returned by ee_tok_pretokenize. */
typedef int (*ee_tok_piece_fn)(const char *piece, size_t len, void *ctx);

int ee_tok_pretokenize(const char *text, size_t len, ee_tok_piece_fn fn, void *ctx);

#endif
