/* ee_chat_tmpl: recognising the model's chat template, without a Jinja
 * interpreter. Knows nothing of tokenizers (ee_chat.c renders and encodes).
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
#include "ee_chat_tmpl.h"

#include <stdbool.h>
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

int ee_chat_tmpl_parse(ee_chat_tmpl *c, const char *tmpl, ee_err *err) {
    memset(c, 0, sizeof *c);
    if (!tmpl) return 0;
    c->text = strdup(tmpl);
    if (!c->text) return ee_err_set(err, "tokenizer: out of memory");
    if (!strstr(tmpl, IM_START) || !strstr(tmpl, IM_END)) return 0;
    c->kind = EE_CHAT_CHATML;

    static const char SYS[] = "<|im_start|>system";
    for (const char *p = strstr(tmpl, SYS); p; p = strstr(p + 1, SYS)) {
        char quote = 0;
        if (p > tmpl && (p[-1] == '\'' || p[-1] == '"')) quote = p[-1];
        bool oom = false;
        char *sys = literal_system(p + sizeof SYS - 1, quote, &oom);
        if (oom) {
            ee_chat_tmpl_free(c);
            return ee_err_set(err, "tokenizer: out of memory");
        }
        if (sys) {
            c->default_system = sys;
            break;
        }
    }
    return 0;
}

void ee_chat_tmpl_free(ee_chat_tmpl *c) {
    free(c->text);
    free(c->default_system);
    memset(c, 0, sizeof *c);
}
