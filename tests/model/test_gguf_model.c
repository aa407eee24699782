/* Model tier: the real SmolLM2-135M-Instruct Q4_1 file ($EE_MODEL).
 * Checks the structure we rely on, then dequantizes every tensor with our
 * kernels and compares against the independent Python `gguf` package:
 * a SHA-256 of each whole dequantized tensor for all 272 tensors, and an
 * element-by-element comparison (first mismatch reported) for a sample
 * that covers every type in the file. */
#include <check.h>
#include <inttypes.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ee_gguf.h"
#include "ee_quant.h"
#include "ee_testmodel.h"

static ee_gguf *open_model(void) {
    ee_err err = {{0}};
    ee_gguf *g = ee_gguf_open(ee_test_model_path(), &err);
    ck_assert_msg(g != NULL, "cannot open the model (set EE_MODEL): %s", err.msg);
    return g;
}

static void check_tensor(const ee_gguf *g, const char *name, ee_dtype type, uint32_t n_dims,
                         uint64_t ne0, uint64_t ne1) {
    const ee_gguf_tensor *t = ee_gguf_find_tensor(g, name);
    ck_assert_msg(t != NULL, "tensor %s missing", name);
    ck_assert_msg(t->type == type, "%s: type %d, want %d", name, (int)t->type, (int)type);
    ck_assert_uint_eq(t->n_dims, n_dims);
    ck_assert_uint_eq(t->ne[0], ne0);
    ck_assert_uint_eq(t->ne[1], ne1);
}

START_TEST(test_model_structure) {
    ee_gguf *g = open_model();
    ee_err err = {{0}};
    ck_assert_uint_eq(ee_gguf_version(g), 3);
    ck_assert_uint_eq(ee_gguf_alignment(g), 32);
    ck_assert_uint_eq(ee_gguf_n_tensors(g), 272);
    ck_assert_uint_eq(ee_gguf_n_kv(g), 33);
    const char *arch = ee_gguf_get_str(g, "general.architecture", &err);
    ck_assert_msg(arch != NULL, "%s", err.msg);
    ck_assert_str_eq(arch, "llama");
    uint32_t v;
    ck_assert_int_eq(ee_gguf_get_u32(g, "llama.block_count", &v, &err), 0);
    ck_assert_uint_eq(v, 30);
    ck_assert_int_eq(ee_gguf_get_u32(g, "llama.embedding_length", &v, &err), 0);
    ck_assert_uint_eq(v, 576);
    ck_assert_int_eq(ee_gguf_get_u32(g, "llama.attention.head_count_kv", &v, &err), 0);
    ck_assert_uint_eq(v, 3);
    float eps, theta;
    ck_assert_int_eq(ee_gguf_get_f32(g, "llama.attention.layer_norm_rms_epsilon", &eps, &err), 0);
    ck_assert(fabsf(eps - 1e-5f) < 1e-9f);
    ck_assert_int_eq(ee_gguf_get_f32(g, "llama.rope.freq_base", &theta, &err), 0);
    ck_assert(theta == 100000.0f);
    const ee_gguf_kv *tok = ee_gguf_get_arr(g, "tokenizer.ggml.tokens", EE_GGUF_STRING, &err);
    ck_assert_msg(tok != NULL, "%s", err.msg);
    ck_assert_uint_eq(tok->n, 49152);
    ck_assert_str_eq(tok->strs[1], "<|im_start|>");
    ck_assert_str_eq(tok->strs[2], "<|im_end|>");
    const ee_gguf_kv *merges = ee_gguf_get_arr(g, "tokenizer.ggml.merges", EE_GGUF_STRING, &err);
    ck_assert_msg(merges != NULL, "%s", err.msg);
    ck_assert_uint_eq(merges->n, 48900);
    ck_assert_ptr_nonnull(ee_gguf_get_arr(g, "tokenizer.ggml.token_type", EE_GGUF_I32, &err));
    ck_assert_ptr_nonnull(ee_gguf_get_str(g, "tokenizer.chat_template", &err));

    check_tensor(g, "token_embd.weight", EE_DT_Q8_0, 2, 576, 49152);
    check_tensor(g, "blk.0.attn_q.weight", EE_DT_Q4_1, 2, 576, 576);
    check_tensor(g, "blk.0.attn_k.weight", EE_DT_Q4_1, 2, 576, 192);
    check_tensor(g, "blk.29.ffn_down.weight", EE_DT_Q4_1, 2, 1536, 576);
    check_tensor(g, "blk.0.attn_norm.weight", EE_DT_F32, 1, 576, 1);
    check_tensor(g, "output_norm.weight", EE_DT_F32, 1, 576, 1);
    ck_assert_ptr_null(ee_gguf_find_tensor(g, "output.weight")); /* tied embeddings */
    ee_gguf_close(g);
}
END_TEST

static const char *PY_DEQ =
    "import sys, hashlib, numpy as np\n"
    "from gguf import GGUFReader\n"
    "from gguf.quants import dequantize\n"
    "r = GGUFReader(sys.argv[1])\n"
    "outdir = sys.argv[2]; full = set(sys.argv[3].split(','))\n"
    "with open(outdir + '/hashes.txt', 'w') as f:\n"
    "    for t in r.tensors:\n"
    "        x = np.ascontiguousarray(dequantize(t.data, t.tensor_type), dtype=np.float32).reshape(-1)\n"
    "        f.write('%s %d %s\\n' % (t.name, x.size, hashlib.sha256(x.tobytes()).hexdigest()))\n"
    "        if t.name in full: x.tofile(outdir + '/' + t.name + '.f32')\n";

/* Tensors compared element by element: every type in the file (Q8_0,
 * Q4_1, F32), first/middle/last layers, every weight shape. */
static const char *const k_full[] = {
    "token_embd.weight",     "blk.0.attn_q.weight",  "blk.0.attn_norm.weight",
    "blk.0.ffn_down.weight", "blk.15.attn_k.weight", "blk.7.attn_v.weight",
    "blk.29.ffn_up.weight",  "blk.29.ffn_gate.weight", "output_norm.weight",
};

static float *dequant_tensor(const ee_gguf_tensor *t) {
    uint64_t nel = ee_gguf_tensor_nelements(t);
    uint64_t rows = nel / t->ne[0];
    size_t row_bytes = ee_dtype_row_bytes(t->type, t->ne[0]);
    float *y = malloc(nel * sizeof *y);
    ck_assert_ptr_nonnull(y);
    ee_err err = {{0}};
    for (uint64_t r = 0; r < rows; r++)
        ck_assert_msg(ee_dequantize_row(t->type, (const uint8_t *)t->data + r * row_bytes,
                                        y + r * t->ne[0], t->ne[0], &err) == 0, "%s", err.msg);
    return y;
}

START_TEST(test_model_dequant_vs_python) {
    ck_assert_int_ge(sodium_init(), 0);
    char *tmpdir = ee_test_mkdtemp("model");
    char full[512] = "", args[4096], cmd[8192];
    for (size_t i = 0; i < sizeof k_full / sizeof k_full[0]; i++) {
        if (i) strcat(full, ",");
        strcat(full, k_full[i]);
    }
    snprintf(args, sizeof args, "'%s' '%s' '%s'", ee_test_model_path(), tmpdir, full);
    ck_assert_msg(ee_test_python_script(tmpdir, PY_DEQ, args, cmd, sizeof cmd) == 0, "python failed: %s", cmd);

    ee_gguf *g = open_model();
    char hpath[1024];
    snprintf(hpath, sizeof hpath, "%s/hashes.txt", tmpdir);
    FILE *hf = fopen(hpath, "r");
    ck_assert_ptr_nonnull(hf);
    char name[128], hex[80];
    uint64_t count;
    uint64_t seen = 0;
    while (fscanf(hf, "%127s %" SCNu64 " %79s", name, &count, hex) == 3) {
        const ee_gguf_tensor *t = ee_gguf_find_tensor(g, name);
        ck_assert_msg(t != NULL, "python lists %s, we do not", name);
        ck_assert_uint_eq(ee_gguf_tensor_nelements(t), count);
        float *y = dequant_tensor(t);
        unsigned char h[crypto_hash_sha256_BYTES];
        crypto_hash_sha256(h, (const unsigned char *)y, count * sizeof *y);
        char mine[2 * crypto_hash_sha256_BYTES + 1];
        sodium_bin2hex(mine, sizeof mine, h, sizeof h);

        bool is_full = false;
        for (size_t i = 0; i < sizeof k_full / sizeof k_full[0]; i++) is_full |= strcmp(name, k_full[i]) == 0;
        if (is_full) {
            char fpath[1024];
            snprintf(fpath, sizeof fpath, "%s/%s.f32", tmpdir, name);
            FILE *ff = fopen(fpath, "rb");
            ck_assert_msg(ff != NULL, "%s missing", fpath);
            float *ref = malloc(count * sizeof *ref);
            ck_assert_uint_eq(fread(ref, sizeof *ref, count, ff), count);
            fclose(ff);
            for (uint64_t i = 0; i < count; i++) {
                if (memcmp(&y[i], &ref[i], 4) != 0)
                    ck_abort_msg("%s [%" PRIu64 "] (row %" PRIu64 ", col %" PRIu64 "): ours %a, gguf %a",
                                 name, i, i / t->ne[0], i % t->ne[0], y[i], ref[i]);
            }
            free(ref);
        }
        free(y);
        ck_assert_msg(strcmp(mine, hex) == 0, "%s: dequantized bytes differ from gguf (sha256 %s vs %s)",
                      name, mine, hex);
        seen++;
    }
    fclose(hf);
    ck_assert_uint_eq(seen, ee_gguf_n_tensors(g));
    ee_gguf_close(g);
    ee_test_rmtree(tmpdir);
    free(tmpdir);
}
END_TEST

Suite *suite_gguf_model(void) {
    Suite *s = suite_create("gguf_model");
    TCase *tc = tcase_create("model");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_model_structure);
    tcase_add_test(tc, test_model_dequant_vs_python);
    suite_add_tcase(s, tc);
    return s;
}
