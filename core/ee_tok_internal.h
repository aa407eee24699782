/* Internals shared by ee_tokenizer.c and ee_chat.c. Not a public header. */
#ifndef EE_TOK_INTERNAL_H
#define EE_TOK_INTERNAL_H

#include "ee_tokenizer.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct ee_tok_merge {
    int32_t a, b;     /* pair of ids; a == -1 marks an empty slot */
    int32_t rank;     /* index in the merges list */
    int32_t result;   /* id of the merged token */
} ee_tok_merge;

enum { EE_CHAT_NONE = 0, EE_CHAT_CHATML = 1 };

struct ee_tokenizer {
    int32_t n_vocab;
    /* Token strings (as stored) in one arena, NUL after each. */
    char *str_arena;
    uint32_t *str_off, *str_len;
    /* Decoded bytes of each token (the ByteLevel decoder's output). */
    char *piece_arena;
    uint32_t *piece_off, *piece_len;
    uint8_t *type;

    /* string -> id, open addressing, -1 empty. */
    int32_t *vocab_slots;
    uint32_t vocab_mask;
    /* (a, b) -> merge, open addressing. */
    ee_tok_merge *merge_slots;
    uint32_t merge_mask;
    /* Token of each byte's byte-level character, -1 if absent. */
    int32_t byte_tok[256];

    /* Control and user-defined tokens, longest first, for parse_special. */
    int32_t *special;
    int n_special;
    uint8_t special_first[256];  /* 1 if some special token starts with it */

    int32_t bos, eos;
    bool add_bos;
    int32_t eog[16];
    int n_eog;

    int chat_kind;
    char *chat_template;        /* copy, or NULL */
    char *chat_default_system;  /* unescaped default system line, or NULL */
    int32_t im_start, im_end;   /* ChatML markers' ids, or -1 */
};

/* ee_chat.c: recognise the template and fill chat_kind/default system.
 * Never fails on an unknown template (only rendering does); -1 on OOM. */
int ee_chat_init(ee_tokenizer *t, const char *tmpl, ee_err *err);

/* ee_tokenizer.c: encode text without special parsing, appending to a
 * growable id buffer. */
typedef struct ee_tok_ids {
    int32_t *v;
    size_t n, cap;
} ee_tok_ids;

int ee_tok_ids_push(ee_tok_ids *b, int32_t id, ee_err *err);
int ee_tok_encode_plain(const ee_tokenizer *t, const char *text, size_t len,
                        ee_tok_ids *out, ee_err *err);

#endif
