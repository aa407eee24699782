/* ee_chat: a single-turn conversation in the model's chat template,
 * rendered as text or encoded to ids. Above the tokenizer: it uses only its
 * public API (ee_chat_tmpl.c recognises the template). */
#include "ee_chat.h"

#include <stdlib.h>
#include <string.h>

static const char IM_START[] = "<|im_start|>";
static const char IM_END[] = "<|im_end|>";

bool ee_chat_supported(const ee_tokenizer *t) { return t && ee_tokenizer_chat_tmpl(t)->kind == EE_CHAT_CHATML; }

const char *ee_chat_default_system(const ee_tokenizer *t) {
    return t ? ee_tokenizer_chat_tmpl(t)->default_system : NULL;
}

static int check_chat(const ee_tokenizer *t, const char *user, ee_err *err) {
    if (!t || !user) return ee_err_set(err, "chat: invalid arguments");
    const ee_chat_tmpl *c = ee_tokenizer_chat_tmpl(t);
    if (!c->text) return ee_err_set(err, "chat: the model has no chat template (tokenizer.chat_template)");
    if (c->kind != EE_CHAT_CHATML)
        return ee_err_set(err, "chat: unsupported chat template (only ChatML with <|im_start|>/<|im_end|> "
                               "is recognised): %.80s...",
                          c->text);
    return 0;
}

int ee_chat_render(const ee_tokenizer *t, const char *system, const char *user, char **out, ee_err *err) {
    if (!out) return ee_err_set(err, "chat: invalid arguments");
    *out = NULL;
    if (check_chat(t, user, err)) return -1;
    const char *sys = system ? system : ee_chat_default_system(t);
    size_t n = strlen(user) + 3 * strlen(IM_START) + 2 * strlen(IM_END) + 64 + (sys ? strlen(sys) + 32 : 0);
    char *s = malloc(n);
    if (!s) return ee_err_set(err, "chat: out of memory");
    size_t o = 0;
#define PUT(str)                               \
    do {                                       \
        size_t l_ = strlen(str);               \
        memcpy(s + o, (str), l_);              \
        o += l_;                               \
    } while (0)
    if (sys) {
        PUT(IM_START);
        PUT("system\n");
        PUT(sys);
        PUT(IM_END);
        PUT("\n");
    }
    PUT(IM_START);
    PUT("user\n");
    PUT(user);
    PUT(IM_END);
    PUT("\n");
    PUT(IM_START);
    PUT("assistant\n");
#undef PUT
    s[o] = '\0';
    *out = s;
    return 0;
}

/* Encode "role\ncontent" (the text between two template markers) as plain
 * text: one fragment, exactly as the special-token split of the rendered
 * prompt would hand it to the pre-tokenizer. */
static int encode_frag(const ee_tokenizer *t, const char *a, const char *b, ee_ids *ids, ee_err *err) {
    size_t la = strlen(a), lb = b ? strlen(b) : 0;
    char *s = malloc(la + lb + 1);
    if (!s) return ee_err_set(err, "chat: out of memory");
    memcpy(s, a, la);
    if (lb) memcpy(s + la, b, lb);
    int rc = ee_tokenizer_encode_append(t, s, la + lb, ids, err);
    free(s);
    return rc;
}

int ee_chat_encode(const ee_tokenizer *t, const char *system, const char *user, bool add_bos, int32_t **ids,
                   size_t *n_ids, ee_err *err) {
    if (!ids || !n_ids) return ee_err_set(err, "chat: invalid arguments");
    *ids = NULL;
    *n_ids = 0;
    if (check_chat(t, user, err)) return -1;
    const int32_t im_start = ee_tokenizer_token_id(t, IM_START, sizeof IM_START - 1);
    const int32_t im_end = ee_tokenizer_token_id(t, IM_END, sizeof IM_END - 1);
    if (im_start < 0 || im_end < 0)
        return ee_err_set(err, "chat: ChatML template but the vocabulary lacks <|im_start|> or <|im_end|>");
    const char *sys = system ? system : ee_chat_default_system(t);
    ee_ids b = {0};
    if (add_bos && ee_tokenizer_add_bos(t) && ee_tokenizer_bos(t) >= 0 && ee_ids_push(&b, ee_tokenizer_bos(t), err))
        goto fail;
    if (sys) {
        if (ee_ids_push(&b, im_start, err) || encode_frag(t, "system\n", sys, &b, err) ||
            ee_ids_push(&b, im_end, err) || encode_frag(t, "\n", NULL, &b, err))
            goto fail;
    }
    if (ee_ids_push(&b, im_start, err) || encode_frag(t, "user\n", user, &b, err) ||
        ee_ids_push(&b, im_end, err) || encode_frag(t, "\n", NULL, &b, err) ||
        ee_ids_push(&b, im_start, err) || encode_frag(t, "assistant\n", NULL, &b, err))
        goto fail;
    *ids = b.v;
    *n_ids = b.n;
    return 0;
fail:
    free(b.v);
    return -1;
}

int ee_prompt_encode(const ee_tokenizer *t, const char *prompt, bool chat, int32_t **ids,
                     size_t *n_ids, ee_err *err) {
    if (!chat) return ee_tokenizer_encode(t, prompt, strlen(prompt), true, false, ids, n_ids, err);
    /* Only the template's own markers become control ids; a prompt that
     * contains "<|im_end|>" is text, not a turn boundary. */
    return ee_chat_encode(t, NULL, prompt, true, ids, n_ids, err);
}
