/* ee-model convert: rewrite a GGUF with its 2-D weights in another type, so
 * plaintext and encrypted models can be compared at equal precision.
 * Which type each tensor takes is ee_llama_tensor_type's rule (1-D tensors
 * stay f32; 4-bit files keep the vocabulary tensors at Q8_0), the same rule
 * `ee-model encrypt --type` follows. */
#include "cli_args.h"
#include "cmd_common.h"
#include "cmds.h"
#include "ee_llama.h"
#include "ee_quant.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cmd_convert(int argc, char **argv) {
    enum { MODEL, TYPE, OUT, QUANTIZER, HELP, NF };
    cli_flag f[NF] = {[MODEL] = {"--model", true}, [TYPE] = {"--type", true},
                      [QUANTIZER] = {"--quantizer", true},
                      [OUT] = {"--out", true}, [HELP] = {"--help", false}};
    ee_err err = {{0}};
    if (cli_parse(argc, argv, f, NF, &err)) return cmd_fail("convert", err.msg);
    if (f[HELP].present) {
        printf("usage: ee-model convert --model M.gguf --type f32|f16|bf16|q8_0|q4_0|q4_1 "
               "--out OUT.gguf\n"
               "         [--quantizer ref|search]\n"
               "  2-D weights become the type (4-bit types keep token_embd/output at q8_0,\n"
               "  as llama.cpp does); norm gains stay f32. Values are requantized from the\n"
               "  stored ones, so converting a Q4_1 file to f32 is exact. --quantizer ref\n"
               "  (default) rounds as ggml's reference quantizer (llama.cpp's quantize without\n"
               "  an imatrix); search picks each block's scale for the least error.\n");
        return 0;
    }
    if (!f[MODEL].present || !f[TYPE].present || !f[OUT].present)
        return cmd_fail("convert", "--model, --type and --out are required");
    ee_dtype to;
    if (ee_dtype_from_name(f[TYPE].value, &to) != 0 || ee_llama_file_type_id(to) < 0) {
        snprintf(err.msg, sizeof err.msg,
                 "--type: unknown type '%s' (use f32, f16, bf16, q8_0, q4_0 or q4_1)",
                 f[TYPE].value);
        return cmd_fail("convert", err.msg);
    }
    bool search = false;
    if (f[QUANTIZER].present) {
        if (!strcmp(f[QUANTIZER].value, "search")) search = true;
        else if (strcmp(f[QUANTIZER].value, "ref")) {
            snprintf(err.msg, sizeof err.msg, "--quantizer: '%s' is not ref or search",
                     f[QUANTIZER].value);
            return cmd_fail("convert", err.msg);
        }
    }
    ee_gguf *g = ee_gguf_open(f[MODEL].value, &err);
    if (!g) return cmd_fail("convert", err.msg);
    int rc = 1;
    ee_gguf_writer *w = ee_gguf_writer_new(&err);
    float *row = NULL;
    if (!w) goto done;
    for (uint64_t i = 0; i < ee_gguf_n_kv(g); i++)
        if (ee_gguf_writer_copy_kv(w, ee_gguf_kv_at(g, i), &err)) goto done;
    if (ee_gguf_writer_set_u32(w, "general.file_type", (uint32_t)ee_llama_file_type_id(to), &err)) goto done;
    for (uint64_t i = 0; i < ee_gguf_n_tensors(g); i++) {
        const ee_gguf_tensor *t = ee_gguf_tensor_at(g, i);
        ee_dtype dst = ee_llama_tensor_type(to, t->name, (int)t->n_dims);
        if (dst == t->type) {
            if (ee_gguf_writer_add_tensor(w, t->name, t->n_dims, t->ne, t->type, t->data, false,
                                          &err))
                goto done;
            continue;
        }
        const ee_dtype_info *di = ee_dtype_get(dst);
        if (t->ne[0] % di->block_elems != 0) {
            ee_err_set(&err, "tensor '%s': row of %llu values is not a multiple of %s's block "
                             "of %u",
                       t->name, (unsigned long long)t->ne[0], di->name, di->block_elems);
            goto done;
        }
        uint64_t n_rows = ee_gguf_tensor_nelements(t) / t->ne[0];
        size_t src_rb = ee_dtype_row_bytes(t->type, t->ne[0]);
        size_t dst_rb = ee_dtype_row_bytes(dst, t->ne[0]);
        uint8_t *out = malloc(n_rows * dst_rb);
        free(row);
        row = malloc(t->ne[0] * sizeof(float));
        if (!out || !row) {
            free(out);
            ee_err_set(&err, "out of memory converting '%s'", t->name);
            goto done;
        }
        for (uint64_t r = 0; r < n_rows; r++) {
            if (ee_dequantize_row(t->type, (const uint8_t *)t->data + r * src_rb, row, t->ne[0],
                                  &err) ||
                (search ? ee_quantize_row_search(dst, row, out + r * dst_rb, t->ne[0], &err)
                        : ee_quantize_row(dst, row, out + r * dst_rb, t->ne[0], &err))) {
                free(out);
                ee_err_wrap(&err, "tensor '%s'", t->name);
                goto done;
            }
        }
        int arc = ee_gguf_writer_add_tensor(w, t->name, t->n_dims, t->ne, dst, out, true, &err);
        free(out);
        if (arc) goto done;
    }
    if (ee_gguf_writer_write(w, f[OUT].value, &err)) goto done;
    rc = 0;
done:
    if (rc) cmd_fail("convert", err.msg);
    free(row);
    ee_gguf_writer_free(w);
    ee_gguf_close(g);
    return rc;
}
