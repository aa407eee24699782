/* ee-model: the model owner's and key holder's tool. Inspect, run, tokenize
 * and convert GGUF models. */
#include "cmds.h"
#include "ee_kernels.h"
#include "ee_clock.h"
#include "ee_compute.h"

#include <stdio.h>
#include <string.h>

static void usage(FILE *f) {
    fprintf(f,
            "usage: ee-model COMMAND [flags]\n"
            "\n"
            "commands:\n"
            "  info        --model M.gguf [--tensors] [--json]\n"
            "  generate    --model M.gguf (--prompt TEXT | --tokens ID,ID,...) [--chat]\n"
            "              [--max-tokens N] [--temperature T] [--top-k K] [--top-p P]\n"
            "              [--seed S] [--threads N] [--ignore-eos] [--f32-weights] [--warmup]\n"
            "              [--json]\n"
            "  tokenize    --model M.gguf --prompt TEXT [--chat] [--json]\n"
            "  detokenize  --model M.gguf --tokens ID,ID,... [--special]\n"
            "  convert     --model M.gguf --type f32|f16|bf16|q8_0|q4_0|q4_1 --out OUT.gguf\n"
            "  perplexity  --model M.gguf --text-file F [--ref REF.gguf] [--json]\n"
            "              (quality against a reference: KLD, same top token, PPL)\n"
            "\n"
            "sentence encoders (BERT, e.g. all-MiniLM-L6-v2; docs/ENCODER.md):\n"
            "  import      --from DIR --out M.gguf [--type f32|f16]   (safetensors -> GGUF)\n"
            "  embed       --model M.gguf (--text TEXT | --tokens ID,ID,... | --tokens-file F)\n"
            "              [--batch N] [--json] [--threads N] [--raw]\n"
            "\n"
            "image classifiers (eecnn, e.g. the digits CNN; docs/VISION.md):\n"
            "  classify    --model M.gguf (--image FILE ... | --test-set T.gguf) [--invert] [--json]\n"
            "\n"
            "equivariant encryption (docs/EE.md):\n"
            "  keygen      --out K.eekey\n"
            "  encrypt     --model PLAIN.gguf --key K.eekey --out ENC.gguf\n"
            "              [--type f32|f16|bf16|q8_0|q4_0|q4_1]\n"
            "  key-id      --key K.eekey --model PLAIN.gguf   (the key_id requests carry)\n"
            "  tokenize    --model PLAIN.gguf --key K.eekey --prompt TEXT [--chat]   (encrypted ids)\n"
            "  detokenize  --model PLAIN.gguf --key K.eekey --tokens ENC_IDS        (decrypts)\n"
            "  classify    --model ENC.gguf --key K.eekey --plain-model PLAIN.gguf --image F\n"
            "              (client: plaintext stem, encrypted feature map, decrypted scores)\n"
            "  generate    --model ENC.gguf --key K.eekey --plain-model PLAIN.gguf --prompt TEXT\n"
            "              [--show-ciphertext] ...   (client: encrypt, run blind, decrypt)\n"
            "  audit       --model ENC.gguf --public PLAIN.gguf [--tokens ENC_IDS] [--json]\n"
            "              (the attack of a worker holding public weights; docs/SECURITY.md)\n"
            "  audit       --model ENC.gguf [--public PLAIN.gguf] --key K.eekey --test-set T.gguf\n"
            "              (eecnn: inverting the encrypted feature map to the image)\n"
            "  generate    --model ENC.gguf --tokens ENC_IDS ...   (what a worker runs: no key)\n"
            "\n"
            "Run 'ee-model COMMAND --help' for details.\n");
}

int main(int argc, char **argv) {
    ee_compute_init(argc, argv);
    /* A bad EE_ISA stops every command: a benchmark or test that asked for
     * a kernel set must not silently measure another. */
    ee_err kerr = {{0}};
    if (ee_kernels_init(&kerr)) {
        fprintf(stderr, "ee-model: %s\n", kerr.msg);
        return 2;
    }
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
        usage(stdout);
        return 0;
    }
    struct {
        const char *name;
        int (*fn)(int, char **);
    } cmds[] = {
        {"info", cmd_info},         {"generate", cmd_generate},
        {"tokenize", cmd_tokenize}, {"detokenize", cmd_detokenize},
        {"convert", cmd_convert},   {"keygen", cmd_keygen},
        {"encrypt", cmd_encrypt},   {"audit", cmd_audit},
        {"key-id", cmd_keyid},      {"perplexity", cmd_perplexity},
        {"import", cmd_import},     {"embed", cmd_embed},
        {"classify", cmd_classify},
    };
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        if (!strcmp(cmd, cmds[i].name)) return cmds[i].fn(argc - 2, argv + 2);
    fprintf(stderr, "ee-model: unknown command '%s' (try 'ee-model --help')\n", cmd);
    return 2;
}
