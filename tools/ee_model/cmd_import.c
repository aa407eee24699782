/* ee-model import: a Hugging Face BERT sentence encoder directory (e.g.
 * all-MiniLM-L6-v2) to GGUF, as llama.cpp's converter writes it plus our
 * eeinfer.* keys (ee_bert_import.h, docs/ENCODER.md). */
#include "cli_args.h"
#include "cmds.h"
#include "ee_bert_import.h"
#include "ee_gguf.h"

#include <stdio.h>
#include <string.h>

int cmd_import(int argc, char **argv) {
    enum { FROM, OUT, TYPE, NAME, HELP, NF };
    cli_flag f[NF] = {[FROM] = {"--from", true}, [OUT] = {"--out", true},
                      [TYPE] = {"--type", true}, [NAME] = {"--name", true},
                      [HELP] = {"--help", false}};
    ee_err err = {{0}};
    if (cli_wants_help(argc, argv)) {
        printf("usage: ee-model import --from DIR --out M.gguf [--type f32|f16] [--name NAME]\n"
               "  DIR holds a BERT sentence encoder as Hugging Face / sentence-transformers\n"
               "  publish it: config.json, model.safetensors, tokenizer.json (and, when\n"
               "  present, modules.json, 1_Pooling/config.json, sentence_bert_config.json,\n"
               "  tokenizer_config.json). The GGUF uses llama.cpp's BERT names and keys;\n"
               "  --type f16 stores 2-D weights as f16 as llama.cpp's --outtype f16 does\n"
               "  (norms, biases, position and token-type embeddings stay f32). The file is\n"
               "  written to M.gguf.tmp and renamed when complete.\n");
        return 0;
    }
    if (cli_parse(argc, argv, f, NF, &err)) return cmd_fail("import", err.msg);
    if (!f[FROM].present || !f[OUT].present)
        return cmd_fail("import", "--from and --out are required");
    ee_bert_import_opts o = {.wtype = EE_DT_F32, .name = f[NAME].present ? f[NAME].value : NULL};
    if (f[TYPE].present) {
        if (!strcmp(f[TYPE].value, "f16")) o.wtype = EE_DT_F16;
        else if (strcmp(f[TYPE].value, "f32")) {
            snprintf(err.msg, sizeof err.msg, "--type: '%s' is not f32 or f16", f[TYPE].value);
            return cmd_fail("import", err.msg);
        }
    }
    if (ee_bert_import(f[FROM].value, f[OUT].value, &o, &err)) return cmd_fail("import", err.msg);
    ee_gguf *g = ee_gguf_open(f[OUT].value, &err);
    if (!g) return cmd_fail("import", err.msg);
    printf("import: %s -> %s (%s weights, %llu tensors, %llu bytes)\n", f[FROM].value,
           f[OUT].value, o.wtype == EE_DT_F16 ? "f16" : "f32",
           (unsigned long long)ee_gguf_n_tensors(g), (unsigned long long)ee_gguf_file_size(g));
    ee_gguf_close(g);
    return 0;
}
