/* ee_chat: the model's chat template, without a Jinja interpreter.
 *
 * We recognise ChatML (the template mentions both <|im_start|> and
 * <|im_end|>), which is what SmolLM2 ships:
 *
 *   {% for message in messages %}{% if loop.first and messages[0]['role'] !=
 *   'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named
 *   SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>'
 *   + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}
 *   {% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}
 *   {% endif %}
 *
 * and take the default system line from the first literal
 * "<|im_start|>system\n...<|im_end|>" in it. Any other template is refused
 * at render time with a clear error rather than rendered approximately. */
#include "ee_tok_internal.h"

#include <stdlib.h>
#include <string.h>

static const char IM_START[] = "<|im_start|>";
static const char IM_END[] = "<|im_end|>";

/* Try to read a literal default system line starting at p (just after
 * "<|im_start|>system"). quote is the Jinja string delimiter the literal
 * sits in (' or "), or 0 if it is raw template text. On success returns a
 * malloc'd unescaped copy; NULL if this occurrence is not a plain literal
 * (e.g. "'<|im_start|>system\n' + messages[0]['content']") or on OOM
 * (*oom set). */
static char *literal_system(const char *p, char quote, bool *oom) {
    /* The role line ends with a newline, written raw or as a Jinja escape. */
    if (*p == '\n') {
        p++;
    } else if (quote && p[0] == '\\' && p[1] == 'n') {
        p += 2;
    } else {
        return NULL;
    }
    const char *end = strstr(p, IM_END);
    if (!end) return NULL;
    char *out = malloc((size_t)(end - p) + 1);
    if (!out) {
        *oom = true;
        return NULL;
    }
    size_t n = 0;
    for (const char *s = p; s < end; s++) {
        char c = *s;
        if ((c == '{' && (s[1] == '{' || s[1] == '%')) || (c == '}' && s[1] == '}') ||
            (c == '%' && s[1] == '}'))
            goto not_literal;  /* Jinja code inside: not a fixed line */
        if (quote) {
            if (c == quote) goto not_literal;  /* the literal ends before <|im_end|> */
            if (c == '\\' && s + 1 < end) {
                char e = *++s;
                switch (e) {
                case 'n': c = '\n'; break;
                case 't': c = '\t'; break;
                case 'r': c = '\r'; break;
                case '\\': case '\'': case '"': c = e; break;
                default: out[n++] = '\\'; c = e; break;  /* Python keeps unknown escapes */
                }
            }
        }
        out[n++] = c;
    }
    out[n] = '\0';
    return out;
not_literal:
    free(out);
    return NULL;
}

int ee_chat_init(ee_tokenizer *t, const char *tmpl, ee_err *err) {
    t->chat_kind = EE_CHAT_NONE;
    t->im_start = ee_tokenizer_token_id(t, IM_START, sizeof IM_START - 1);
    t->im_end = ee_tokenizer_token_id(t, IM_END, sizeof IM_END - 1);
    if (!tmpl) return 0;
    t->chat_template = strdup(tmpl);
    if (!t->chat_template) return ee_err_set(err, "tokenizer: out of memory");
    if (!strstr(tmpl, IM_START) || !strstr(tmpl, IM_END)) return 0;
    t->chat_kind = EE_CHAT_CHATML;

    static const char SYS[] = "<|im_start|>system";
    for (const char *p = strstr(tmpl, SYS); p; p = strstr(p + 1, SYS)) {
        char quote = 0;
        if (p > tmpl && (p[-1] == '\'' || p[-1] == '"')) quote = p[-1];
        bool oom = false;
        char *sys = literal_system(p + sizeof SYS - 1, quote, &oom);
        if (oom) return ee_err_set(err, "tokenizer: out of memory");
        if (sys) {
            t->chat_default_system = sys;
            break;
        }
    }
    return 0;
}

bool ee_chat_supported(const ee_tokenizer *t) { return t && t->chat_kind == EE_CHAT_CHATML; }

const char *ee_chat_default_system(const ee_tokenizer *t) { return t ? t->chat_default_system : NULL; }

static int check_chat(const ee_tokenizer *t, const char *user, ee_err *err) {
    if (!t || !user) return ee_err_set(err, "chat: invalid arguments");
    if (!t->chat_template) return ee_err_set(err, "chat: the model has no chat template (tokenizer.chat_template)");
    if (t->chat_kind != EE_CHAT_CHATML)
        return ee_err_set(err, "chat: unsupported chat template (only ChatML with <|im_start|>/<|im_end|> "
                               "is recognised): %.80s...",
                          t->chat_template);
    return 0;
}

int ee_chat_render(const ee_tokenizer *t, const char *system, const char *user, char **out, ee_err *err) {
    if (!out) return ee_err_set(err, "chat: invalid arguments");
    *out = NULL;
    if (check_chat(t, user, err)) return -1;
    const char *sys = system ? system : t->chat_default_system;
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
static int encode_frag(const ee_tokenizer *t, const char *a, const char *b, ee_tok_ids *ids, ee_err *err) {
    size_t la = strlen(a), lb = b ? strlen(b) : 0;
    char *s = malloc(la + lb + 1);
    if (!s) return ee_err_set(err, "chat: out of memory");
    memcpy(s, a, la);
    if (lb) memcpy(s + la, b, lb);
    int rc = ee_tok_encode_plain(t, s, la + lb, ids, err);
    free(s);
    return rc;
}

int ee_chat_encode(const ee_tokenizer *t, const char *system, const char *user, bool add_bos, int32_t **ids,
                   size_t *n_ids, ee_err *err) {
    if (!ids || !n_ids) return ee_err_set(err, "chat: invalid arguments");
    *ids = NULL;
    *n_ids = 0;
    if (check_chat(t, user, err)) return -1;
    if (t->im_start < 0 || t->im_end < 0)
        return ee_err_set(err, "chat: ChatML template but the vocabulary lacks <|im_start|> or <|im_end|>");
    const char *sys = system ? system : t->chat_default_system;
    ee_tok_ids b = {0};
    if (add_bos && t->add_bos && t->bos >= 0 && ee_tok_ids_push(&b, t->bos, err)) goto fail;
    if (sys) {
        if (ee_tok_ids_push(&b, t->im_start, err) || encode_frag(t, "system\n", sys, &b, err) ||
            ee_tok_ids_push(&b, t->im_end, err) || encode_frag(t, "\n", NULL, &b, err))
            goto fail;
    }
    if (ee_tok_ids_push(&b, t->im_start, err) || encode_frag(t, "user\n", user, &b, err) ||
        ee_tok_ids_push(&b, t->im_end, err) || encode_frag(t, "\n", NULL, &b, err) ||
        ee_tok_ids_push(&b, t->im_start, err) || encode_frag(t, "assistant\n", NULL, &b, err))
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
