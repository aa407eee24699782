/* ee-model keygen / encrypt: the model owner's side of EE. */
#include "cli_args.h"
#include "cmds.h"
#include "ee_gguf.h"
#include "ee_key.h"
#include "ee_llama.h"
#include "ee_clock.h"
#include "ee_compute.h"
#include "ee_encrypt.h"
#include "ee_scheme.h"

#include <stdio.h>
#include <string.h>

int cmd_keygen(int argc, char **argv) {
    enum { OUT, HELP, NF };
    cli_flag f[NF] = {[OUT] = {"--out", true}, [HELP] = {"--help", false}};
    ee_err err = {{0}};
    if (cli_parse(argc, argv, f, NF, &err)) return cmd_fail("keygen", err.msg);
    if (f[HELP].present) {
        printf("usage: ee-model keygen --out K.eekey\n"
               "  Writes a new 32-byte secret (mode 0600; never overwrites) and prints its\n"
               "  key id, which is safe to publish.\n");
        return 0;
    }
    if (!f[OUT].present) return cmd_fail("keygen", "--out is required");
    ee_key k;
    if (ee_key_generate(&k, &err) || ee_key_save(&k, f[OUT].value, &err)) {
        ee_key_wipe(&k);
        return cmd_fail("keygen", err.msg);
    }
    printf("%s\n", k.id);
    ee_key_wipe(&k);
    return 0;
}

int cmd_encrypt(int argc, char **argv) {
    enum { MODEL, KEY, OUT, TYPE, SCHEME, QUANTIZER, KEEPSC, THREADS, HELP, NF };
    cli_flag f[NF] = {[MODEL] = {"--model", true}, [KEY] = {"--key", true},
                      [OUT] = {"--out", true},     [TYPE] = {"--type", true},
                      [SCHEME] = {"--scheme", true}, [QUANTIZER] = {"--quantizer", true},
                      [KEEPSC] = {"--keep-ffn-scales", false},
                      [THREADS] = {"--threads", true}, [HELP] = {"--help", false}};
    ee_err err = {{0}};
    if (cli_parse(argc, argv, f, NF, &err)) return cmd_fail("encrypt", err.msg);
    if (f[HELP].present) {
        printf("usage: ee-model encrypt --model PLAIN.gguf --key K.eekey --out ENC.gguf\n"
               "         [--type f32|f16|bf16|q8_0|q4_0|q4_1] [--scheme ee-llama-v2|ee-llama-v1|ee-bert-v1]\n"
               "         [--quantizer search|ref] [--keep-ffn-scales] [--threads N]\n"
               "  Applies the key's equivariant transforms to the weights once and writes a\n"
               "  standard GGUF that workers run without the key (docs/EE.md). The transforms\n"
               "  come from the key bound to PLAIN's fingerprint (ee-llama-v2): one key on two\n"
               "  models gives unrelated transforms. ee-llama-v1 is the legacy unbound form.\n"
               "\n"
               "  --type f32 (default) is exact: the worker's logits equal the plaintext\n"
               "  model's up to float rounding. q8_0/q4_0/q4_1 round the transformed weights\n"
               "  (4-bit types keep token_embd/output at q8_0) for plaintext-Qx speed and\n"
               "  memory; their quality against plaintext Qx is in docs/BENCHMARKS.md\n"
               "  (make bench-quality). --quantizer search (default) picks each block's scale\n"
               "  for the least error; ref rounds as ggml's reference quantizer does.\n"
               "  Quantized types leave the MLP channels unscaled (the scales put outliers\n"
               "  in ffn_down's blocks); --keep-ffn-scales keeps them, to measure that.\n"
               "\n"
               "  What this protects, and against whom, is measured (docs/SECURITY.md): a\n"
               "  worker holding PLAIN's public weights recovers every transform and reads\n"
               "  every prompt (100%% of SmolLM2's vocabulary in about 20 s on 2 cores:\n"
               "  make security-report). Run 'ee-model audit --model ENC.gguf --public\n"
               "  PUBLIC.gguf' against every public model PLAIN may derive from.\n");
        return 0;
    }
    if (!f[MODEL].present || !f[KEY].present || !f[OUT].present)
        return cmd_fail("encrypt", "--model, --key and --out are required");
    ee_encrypt_opts o = {.out_type = EE_DT_F32};
    if (f[TYPE].present) {
        if (ee_dtype_from_name(f[TYPE].value, &o.out_type) ||
            ee_llama_file_type_id(o.out_type) < 0) {
            snprintf(err.msg, sizeof err.msg,
                     "--type: unknown type '%s' (use f32, f16, bf16, q8_0, q4_0 or q4_1)",
                     f[TYPE].value);
            return cmd_fail("encrypt", err.msg);
        }
    }
    o.keep_ffn_scales = f[KEEPSC].present;
    if (f[QUANTIZER].present) {
        if (!strcmp(f[QUANTIZER].value, "ref")) o.ref_quantizer = true;
        else if (strcmp(f[QUANTIZER].value, "search")) {
            snprintf(err.msg, sizeof err.msg, "--quantizer: '%s' is not search or ref",
                     f[QUANTIZER].value);
            return cmd_fail("encrypt", err.msg);
        }
    }
    if (f[SCHEME].present) {
        const ee_scheme_info *si = ee_scheme_parse("--scheme", f[SCHEME].value, &err);
        if (!si) return cmd_fail("encrypt", err.msg);
        o.scheme = si->id;
    }
    long threads = 2;
    if (f[THREADS].present && cli_int("--threads", f[THREADS].value, 1, 256, &threads, &err))
        return cmd_fail("encrypt", err.msg);
    ee_compute_set_threads((int)threads);
    ee_key k;
    if (ee_key_load(&k, f[KEY].value, &err)) return cmd_fail("encrypt", err.msg);
    ee_gguf *g = ee_gguf_open(f[MODEL].value, &err);
    if (!g) {
        ee_key_wipe(&k);
        return cmd_fail("encrypt", err.msg);
    }
    ee_encrypt_stats st;
    int rc = ee_encrypt_model(g, &k, &o, f[OUT].value, &st, &err);
    if (rc == 0)
        fprintf(stderr,
                "encrypted %s -> %s (%s, key id %s, %s): derive %.0f ms, transform %.0f ms, write %.0f "
                "ms, %.1f MB\n",
                f[MODEL].value, f[OUT].value, st.scheme, st.key_id, ee_dtype_get(o.out_type)->name,
                st.derive_ms, st.transform_ms, st.write_ms, st.out_bytes / 1e6);
    ee_key_wipe(&k);
    ee_gguf_close(g);
    return rc ? cmd_fail("encrypt", err.msg) : 0;
}

/* The id requests carry for (key, plain model): the scheme key's id, which
 * is the encrypted model's ee.key_id. For hand-built requests (kcat). */
int cmd_keyid(int argc, char **argv) {
    enum { MODEL, KEY, SCHEME, HELP, NF };
    cli_flag f[NF] = {[MODEL] = {"--model", true}, [KEY] = {"--key", true},
                      [SCHEME] = {"--scheme", true}, [HELP] = {"--help", false}};
    ee_err err = {{0}};
    if (cli_parse(argc, argv, f, NF, &err)) return cmd_fail("key-id", err.msg);
    if (f[HELP].present) {
        printf("usage: ee-model key-id --key K.eekey --model PLAIN.gguf [--scheme S]\n"
               "  Prints the key id that requests carry for K on this plaintext model: K\n"
               "  bound to PLAIN's fingerprint (ee-llama-v2), i.e. the ee.key_id of the\n"
               "  model 'ee-model encrypt' makes from PLAIN with K. --scheme ee-llama-v1:\n"
               "  the legacy unbound id (what keygen prints).\n");
        return 0;
    }
    if (!f[MODEL].present || !f[KEY].present)
        return cmd_fail("key-id", "--key and --model (the plaintext model) are required");
    if (f[SCHEME].present && !ee_scheme_parse("--scheme", f[SCHEME].value, &err))
        return cmd_fail("key-id", err.msg);
    ee_key k, sk;
    if (ee_key_load(&k, f[KEY].value, &err)) return cmd_fail("key-id", err.msg);
    ee_gguf *g = ee_gguf_open(f[MODEL].value, &err);
    int rc = g ? ee_scheme_key(&k, g, f[SCHEME].value, &sk, &err) : -1;
    ee_key_wipe(&k);
    ee_gguf_close(g);
    if (rc) return cmd_fail("key-id", err.msg);
    printf("%s\n", sk.id);
    ee_key_wipe(&sk);
    return 0;
}
