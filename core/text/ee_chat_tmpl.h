/* ee_chat_tmpl: what kind of chat template a model ships, and its default
 * system line. The tokenizer keeps one (from tokenizer.chat_template);
 * rendering and encoding a conversation is ee_chat.h, above the tokenizer. */
#ifndef EE_CHAT_TMPL_H
#define EE_CHAT_TMPL_H

#include "ee_error.h"

typedef enum ee_chat_kind {
    EE_CHAT_NONE = 0,   /* no template, or one we do not recognise */
    EE_CHAT_CHATML = 1, /* <|im_start|>role\ncontent<|im_end|> */
} ee_chat_kind;

typedef struct ee_chat_tmpl {
    ee_chat_kind kind;
    char *text;           /* the template as shipped, or NULL */
    char *default_system; /* unescaped default system line, or NULL */
} ee_chat_tmpl;

/* Recognise tmpl (NULL: the model has none). Never fails on an unknown
 * template (only rendering does); -1 on out of memory. */
int ee_chat_tmpl_parse(ee_chat_tmpl *c, const char *tmpl, ee_err *err);
void ee_chat_tmpl_free(ee_chat_tmpl *c);

#endif
