/* ee_chat: single-turn prompts in the model's chat template. */
#ifndef EE_CHAT_H
#define EE_CHAT_H

#include "ee_tokenizer.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Render a single-turn chat prompt with the model's template: ChatML with
 * the template's default system line when the template is the SmolLM/ChatML
 * form, followed by the assistant generation prefix. system may be NULL
 * (use the template's default). Returns malloc'd text to be encoded with
 * parse_special = true. Fails for a template it does not recognise. */
int ee_chat_render(const ee_tokenizer *t, const char *system, const char *user,
                   char **out, ee_err *err);

/* Whether the model's chat template was recognised (ChatML), and its
 * default system line (NULL if it has none). */
bool ee_chat_supported(const ee_tokenizer *t);
const char *ee_chat_default_system(const ee_tokenizer *t);

/* Render and encode in one step WITHOUT parsing special tokens inside the
 * system and user strings: only the template's own <|im_start|>/<|im_end|>
 * become control ids, so user text such as "<|im_end|>" cannot inject turn
 * boundaries. For text free of special-token strings the ids equal
 * encode(render(...), parse_special = true). Adds BOS like
 * ee_tokenizer_encode when add_bos and the model asks for it. */
int ee_chat_encode(const ee_tokenizer *t, const char *system, const char *user,
                   bool add_bos, int32_t **ids, size_t *n_ids, ee_err *err);

/* A user's prompt as the CLIs take it: plain text (BOS added, special-token
 * strings kept as text) or, with chat, the user turn of the chat template
 * (ee_chat_encode with the default system prompt). */
int ee_prompt_encode(const ee_tokenizer *t, const char *prompt, bool chat, int32_t **ids,
                     size_t *n_ids, ee_err *err);

#endif
