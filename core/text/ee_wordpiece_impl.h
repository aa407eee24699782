/* Internals shared by ee_wordpiece.c, ee_wp_gguf.c and ee_wp_decode.c.
 * Not a public header. */
#ifndef EE_WORDPIECE_IMPL_H
#define EE_WORDPIECE_IMPL_H

#include "ee_wordpiece.h"

#include <stdint.h>

struct ee_wordpiece {
    int32_t n_vocab;
    /* Token strings in WordPiece form, one arena, NUL after each. */
    char *arena;
    uint32_t *off, *len;
    uint8_t *type;
    /* WordPiece form -> id, open addressing: id (-1 empty) and the high
     * half of the key's hash, which settles most misses without touching
     * the strings. */
    struct ee_wp_slot {
        int32_t id;
        uint32_t tag;
    } *slots;
    uint32_t mask;
    /* Longest word-initial token, longest continuation without "##"
     * (bytes): no longer piece can match. */
    uint32_t max_first, max_cont;
    int32_t unk, cls, sep, pad, mask_id;
    /* CONTROL tokens, longest first, for parsing them in text. */
    int32_t *special;
    int n_special;
    uint8_t special_first[256];  /* 1 if some special token starts with it */
};

#endif
