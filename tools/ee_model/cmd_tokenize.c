/* ee-model tokenize / detokenize. */
#include "cli_args.h"
#include "cmd_common.h"
#include "cmds.h"

#include <stdio.h>
#include <stdlib.h>

int cmd_tokenize(int argc, char **argv) {
    enum { MODEL, PROMPT, CHAT, JSON, KEY, SCHEME, HELP, NF };
    cli_flag f[NF] = {[MODEL] = {"--model", true}, [PROMPT] = {"--prompt", true},
                      [CHAT] = {"--chat", false},  [JSON] = {"--json", false},
                      [KEY] = {"--key", true},     [SCHEME] = {"--scheme", true},
                      [HELP] = {"--help", false}};
    ee_err err = {{0}};
    if (cli_parse(argc, argv, f, NF, &err)) return cmd_fail("tokenize", err.msg);
    if (f[HELP].present) {
        printf("usage: ee-model tokenize --model M.gguf --prompt TEXT [--chat] [--json]\n"
               "         [--key K.eekey]\n"
               "  Prints the token ids, comma-separated (or a JSON array). With --key, M is\n"
               "  the plaintext model and the ids printed are encrypted under K bound to M\n"
               "  (--scheme ee-llama-v1: the legacy unbound form, for older encrypted models).\n");
        return 0;
    }
    if (!f[MODEL].present) return cmd_fail("tokenize", "--model is required");
    if (!f[PROMPT].present) return cmd_fail("tokenize", "--prompt is required");
    if (f[SCHEME].present && !f[KEY].present) return cmd_fail("tokenize", "--scheme goes with --key");
    cmd_model cm;
    if (cmd_model_open(&cm, f[MODEL].value, true, &err)) return cmd_fail("tokenize", err.msg);
    int32_t *ids = NULL;
    size_t n = 0;
    int rc = ee_prompt_encode(cm.tok, f[PROMPT].value, f[CHAT].present, &ids, &n, &err);
    if (rc == 0 && f[KEY].present) {
        ee_vocab_cipher vc = {0};
        rc = ee_vocab_cipher_load(&vc, f[KEY].value, cm.gguf, f[SCHEME].value,
                                  (uint32_t)ee_tokenizer_n_vocab(cm.tok), NULL,
                                  &err);
        if (rc == 0) rc = ee_vocab_encrypt(&vc, ids, ids, n, &err);
        ee_vocab_cipher_free(&vc);
    }
    if (rc == 0) {
        if (f[JSON].present) putchar('[');
        for (size_t i = 0; i < n; i++) printf("%s%d", i ? (f[JSON].present ? ", " : ",") : "", ids[i]);
        if (f[JSON].present) putchar(']');
        putchar('\n');
    }
    free(ids);
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
               "  Prints the text. --special renders control tokens such as <|im_end|>.\n"
               "  With --key, the ids are encrypted ones: they are decrypted first (K bound to\n"
               "  M; --scheme ee-llama-v1 for older encrypted models).\n");
        return 0;
    }
    if (!f[MODEL].present) return cmd_fail("detokenize", "--model is required");
    if (!f[TOKENS].present) return cmd_fail("detokenize", "--tokens is required");
    cmd_model cm;
    if (cmd_model_open(&cm, f[MODEL].value, true, &err)) return cmd_fail("detokenize", err.msg);
    int32_t *ids = NULL;
    size_t n = 0;
    char *text = NULL;
    size_t len = 0;
    int rc = cli_token_list("--tokens", f[TOKENS].value, ee_tokenizer_n_vocab(cm.tok), &ids, &n,
                            &err);
    if (rc == 0 && f[KEY].present) {
        ee_vocab_cipher vc = {0};
        rc = ee_vocab_cipher_load(&vc, f[KEY].value, cm.gguf, f[SCHEME].value,
                                  (uint32_t)ee_tokenizer_n_vocab(cm.tok), NULL,
                                  &err);
        if (rc == 0) rc = ee_vocab_decrypt(&vc, ids, ids, n, &err);
        ee_vocab_cipher_free(&vc);
    }
    if (rc == 0) rc = ee_tokenizer_decode(cm.tok, ids, n, f[SPECIAL].present, &text, &len, &err);
    if (rc == 0) {
        fwrite(text, 1, len, stdout);
        putchar('\n');
    }
    free(text);
    free(ids);
    cmd_model_close(&cm);
    return rc ? cmd_fail("detokenize", err.msg) : 0;
}
