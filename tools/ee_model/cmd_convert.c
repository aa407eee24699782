/* ee-model convert: rewrite a GGUF with its 2-D weights in another type, so
 * plaintext and encrypted models can be compared at equal precision.
 * 1-D tensors (norm gains, biases) stay f32, as llama.cpp keeps them. */
#include "cli_args.h"
#include "cmd_common.h"
#include "cmds.h"
#include "ee_quant.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* llama.cpp's general.file_type values (LLAMA_FTYPE_*). */
static int ftype_for(ee_dtype t) {
    switch (t) {
    case EE_DT_F32: return 0;
    case EE_DT_F16: return 1;
    case EE_DT_Q4_0: return 2;
    case EE_DT_Q4_1: return 3;
    case EE_DT_Q8_0: return 7;
    case EE_DT_BF16: return 32;
    default: return -1;
    }
}

int cmd_convert(int argc, char **argv) {
    enum { MODEL, TYPE, OUT, HELP, NF };
    cli_flag f[NF] = {[MODEL] = {"--model", true}, [TYPE] = {"--type", true},
                      [OUT] = {"--out", true}, [HELP] = {"--help", false}};
    ee_err err = {{0}};
    if (cli_parse(argc, argv, f, NF, &err)) return cmd_fail("convert", err.msg);
    if (f[HELP].present) {
        printf("usage: ee-model convert --model M.gguf --type f32|f16|bf16|q8_0|q4_0|q4_1 "
               "--out OUT.gguf\n");
        return 0;
    }
    if (!f[MODEL].present || !f[TYPE].present || !f[OUT].present)
        return cmd_fail("convert", "--model, --type and --out are required");
    ee_dtype to;
    if (ee_dtype_from_name(f[TYPE].value, &to) != 0 || ftype_for(to) < 0) {
        snprintf(err.msg, sizeof err.msg,
                 "--type: unknown type '%s' (use f32, f16, bf16, q8_0, q4_0 or q4_1)",
                 f[TYPE].value);
        return cmd_fail("convert", err.msg);
    }
    ee_gguf *g = ee_gguf_open(f[MODEL].value, &err);
    if (!g) return cmd_fail("convert", err.msg);
    int rc = 1;
    ee_gguf_writer *w = ee_gguf_writer_new(&err);
    float *row = NULL;
    if (!w) goto done;
    for (uint64_t i = 0; i < ee_gguf_n_kv(g); i++)
        if (ee_gguf_writer_copy_kv(w, ee_gguf_kv_at(g, i), &err)) goto done;
    if (ee_gguf_writer_set_u32(w, "general.file_type", (uint32_t)ftype_for(to), &err)) goto done;
    for (uint64_t i = 0; i < ee_gguf_n_tensors(g); i++) {
        const ee_gguf_tensor *t = ee_gguf_tensor_at(g, i);
        ee_dtype dst = t->n_dims >= 2 ? to : EE_DT_F32;
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
                ee_quantize_row(dst, row, out + r * dst_rb, t->ne[0], &err)) {
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
