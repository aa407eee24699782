/* ee-model tokenize / detokenize. A BERT model (tokenizer.ggml.model
 * "bert") goes through the WordPiece tokenizer: [CLS] text [SEP]. */
#include "cli_args.h"
#include "cmd_common.h"
#include "cmds.h"
#include "ee_chat.h"
#include "ee_wordpiece.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void print_ids(const int32_t *ids, size_t n, bool json) {
    if (json) putchar('[');
    for (size_t i = 0; i < n; i++) printf("%s%d", i ? (json ? ", " : ",") : "", ids[i]);
    if (json) putchar(']');
    putchar('\n');
}

/* The model's WordPiece tokenizer when it has no BPE one; fails with the
 * BPE tokenizer's reason for a model that is not BERT either. */
static int open_wordpiece(const char *path, const cmd_model *cm, bool chat_or_key, ee_wordpiece **wp,
                          ee_err *err) {
    *wp = NULL;
    if (cm->tok) return 0;
    const ee_gguf_kv *m = ee_gguf_find_kv(cm->gguf, "tokenizer.ggml.model");
    if (!m || m->type != EE_GGUF_STRING || strcmp(m->str, "bert") != 0)
        return ee_err_set(err, "%s: %s", path, cm->tok_err.msg);
    if (chat_or_key) return ee_err_set(err, "%s: a BERT model has no chat template or token cipher", path);
    if (ee_wordpiece_open_gguf(wp, cm->gguf, err)) return ee_err_wrap(err, "%s", path);
    return 0;
}

/* One prompt -> ids, encrypted when vc is given. */
static int tokenize_one(const cmd_model *cm, const ee_wordpiece *wp, const ee_vocab_cipher *vc,
                        const char *prompt, bool chat, bool json, ee_err *err) {
    int32_t *ids = NULL;
    size_t n = 0;
    int rc;
    if (wp) {
        rc = ee_wordpiece_encode_alloc(wp, prompt, strlen(prompt), &ids, &n, err);
    } else {
        rc = ee_prompt_encode(cm->tok, prompt, chat, &ids, &n, err);
    }
    if (rc == 0 && vc) rc = ee_vocab_encrypt(vc, ids, ids, n, err);
    if (rc == 0) print_ids(ids, n, json);
    free(ids);
    return rc;
}

int cmd_tokenize(int argc, char **argv) {
    enum { MODEL, PROMPT, PFILE, CHAT, JSON, KEY, SCHEME, HELP, NF };
    cli_flag f[NF] = {[MODEL] = {"--model", true}, [PROMPT] = {"--prompt", true},
                      [PFILE] = {"--prompts-file", true},
                      [CHAT] = {"--chat", false},  [JSON] = {"--json", false},
                      [KEY] = {"--key", true},     [SCHEME] = {"--scheme", true},
                      [HELP] = {"--help", false}};
    ee_err err = {{0}};
    if (cli_parse(argc, argv, f, NF, &err)) return cmd_fail("tokenize", err.msg);
    if (f[HELP].present) {
        printf("usage: ee-model tokenize --model M.gguf (--prompt TEXT | --prompts-file FILE|-)\n"
               "         [--chat] [--json] [--key K.eekey [--scheme S]]\n"
               "  Prints the token ids, comma-separated (or a JSON array); a prompts file\n"
               "  holds one prompt per line and gives one line of ids per line (an empty\n"
               "  line gives an empty one). A BERT model (WordPiece) gives [CLS] TEXT [SEP].\n"
               "  With --key, M is the plaintext model and the ids\n"
               "  printed are encrypted under K bound to M (--scheme ee-llama-v1: the\n"
               "  legacy unbound form, for older encrypted models).\n");
        return 0;
    }
    if (!f[MODEL].present) return cmd_fail("tokenize", "--model is required");
    if (f[PROMPT].present == f[PFILE].present)
        return cmd_fail("tokenize", "give one of --prompt and --prompts-file");
    if (f[SCHEME].present && !f[KEY].present) return cmd_fail("tokenize", "--scheme goes with --key");
    if (f[SCHEME].present && !ee_scheme_parse("--scheme", f[SCHEME].value, &err))
        return cmd_fail("tokenize", err.msg);
    FILE *in = NULL;
    if (f[PFILE].present) {
        in = strcmp(f[PFILE].value, "-") ? fopen(f[PFILE].value, "r") : stdin;
        if (!in) {
            ee_err_set(&err, "--prompts-file %s: %s", f[PFILE].value, strerror(errno));
            return cmd_fail("tokenize", err.msg);
        }
    }
    cmd_model cm;
    ee_wordpiece *wp = NULL;
    if (cmd_model_open(&cm, f[MODEL].value, false, &err)) {
        if (in && in != stdin) fclose(in);
        return cmd_fail("tokenize", err.msg);
    }
    if (open_wordpiece(f[MODEL].value, &cm, f[CHAT].present || f[KEY].present, &wp, &err)) {
        cmd_model_close(&cm);
        if (in && in != stdin) fclose(in);
        return cmd_fail("tokenize", err.msg);
    }
    ee_vocab_cipher vc = {0};
    int rc = 0;
    if (f[KEY].present)
        rc = ee_vocab_cipher_load(&vc, f[KEY].value, cm.gguf, f[SCHEME].value,
                                  (uint32_t)ee_tokenizer_n_vocab(cm.tok), NULL, &err);
    const ee_vocab_cipher *cipher = f[KEY].present ? &vc : NULL;
    if (rc == 0 && !in) {
        rc = tokenize_one(&cm, wp, cipher, f[PROMPT].value, f[CHAT].present, f[JSON].present, &err);
    } else if (rc == 0) {
        char *line = NULL;
        size_t cap = 0;
        ssize_t len;
        long lineno = 0;
        while (rc == 0 && (len = getline(&line, &cap, in)) >= 0) {
            lineno++;
            if (len > 0 && line[len - 1] == '\n') line[--len] = 0;
            if (len == 0) {
                putchar('\n');
                continue;
            }
            if ((size_t)len != strlen(line)) {
                ee_err_set(&err, "--prompts-file line %ld holds a NUL byte", lineno);
                rc = -1;
                break;
            }
            if ((rc = tokenize_one(&cm, wp, cipher, line, f[CHAT].present, f[JSON].present, &err)))
                ee_err_wrap(&err, "--prompts-file line %ld", lineno);
        }
        if (rc == 0 && ferror(in)) rc = ee_err_set(&err, "--prompts-file: read error");
        free(line);
    }
    if (in && in != stdin) fclose(in);
    ee_vocab_cipher_free(&vc);
    ee_wordpiece_close(wp);
    cmd_model_close(&cm);
    return rc ? cmd_fail("tokenize", err.msg) : 0;
}

int cmd_detokenize(int argc, char **argv) {
    enum { MODEL, TOKENS, SPECIAL, KEY, SCHEME, HELP, NF };
    cli_flag f[NF] = {[MODEL] = {"--model", true}, [TOKENS] = {"--tokens", true},
                      [SPECIAL] = {"--special", false}, [KEY] = {"--key", true},
                      [SCHEME] = {"--scheme", true},
                      [HELP] = {"--help", false}};
    ee_err err = {{0}};
    if (cli_parse(argc, argv, f, NF, &err)) return cmd_fail("detokenize", err.msg);
    if (f[HELP].present) {
        printf("usage: ee-model detokenize --model M.gguf --tokens ID,ID,... [--special]\n"
               "         [--key K.eekey]\n"
               "  Prints the text. --special renders control tokens such as <|im_end|>\n"
               "  (or a BERT model's [CLS] and [SEP]).\n"
               "  With --key, the ids are encrypted ones: they are decrypted first (K bound to\n"
               "  M; --scheme ee-llama-v1 for older encrypted models).\n");
        return 0;
    }
    if (!f[MODEL].present) return cmd_fail("detokenize", "--model is required");
    if (!f[TOKENS].present) return cmd_fail("detokenize", "--tokens is required");
    cmd_model cm;
    ee_wordpiece *wp = NULL;
    if (cmd_model_open(&cm, f[MODEL].value, false, &err)) return cmd_fail("detokenize", err.msg);
    if (open_wordpiece(f[MODEL].value, &cm, f[KEY].present, &wp, &err)) {
        cmd_model_close(&cm);
        return cmd_fail("detokenize", err.msg);
    }
    int32_t *ids = NULL;
    size_t n = 0;
    char *text = NULL;
    size_t len = 0;
    int rc = cli_token_list("--tokens", f[TOKENS].value,
                            wp ? ee_wordpiece_n_vocab(wp) : ee_tokenizer_n_vocab(cm.tok), &ids, &n, &err);
    if (rc == 0 && f[KEY].present) {
        ee_vocab_cipher vc = {0};
        rc = ee_vocab_cipher_load(&vc, f[KEY].value, cm.gguf, f[SCHEME].value,
                                  (uint32_t)ee_tokenizer_n_vocab(cm.tok), NULL,
                                  &err);
        if (rc == 0) rc = ee_vocab_decrypt(&vc, ids, ids, n, &err);
        ee_vocab_cipher_free(&vc);
    }
    if (rc == 0 && wp) rc = ee_wordpiece_decode(wp, ids, n, !f[SPECIAL].present, &text, &len, &err);
    else if (rc == 0) rc = ee_tokenizer_decode(cm.tok, ids, n, f[SPECIAL].present, &text, &len, &err);
    if (rc == 0) {
        fwrite(text, 1, len, stdout);
        putchar('\n');
    }
    free(text);
    free(ids);
    ee_wordpiece_close(wp);
    cmd_model_close(&cm);
    return rc ? cmd_fail("detokenize", err.msg) : 0;
}
