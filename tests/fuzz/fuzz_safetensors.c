/* libFuzzer target: the safetensors reader on arbitrary bytes (checkpoints
 * come from downloads). An accepted file's tensors must lie inside the
 * buffer and tile its data section; every name must be found again; float
 * tensors must read as f32. */
#include "ee_safetensors.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ee_err err;
    err.msg[0] = 0;
    ee_safetensors *st = ee_safetensors_open_buffer(data, size, &err);
    if (!st) {
        if (!err.msg[0]) abort();
        return 0;
    }
    volatile float sink = 0;
    uint64_t end = 0;
    for (size_t i = 0; i < ee_safetensors_n_tensors(st); i++) {
        const ee_st_tensor *t = ee_safetensors_tensor_at(st, i);
        const uint8_t *p = t->data;
        if (p < data || p + t->nbytes > data + size) abort();
        if (i > 0 && t->offset != end) abort(); /* tiles: no gap, no overlap */
        end = t->offset + t->nbytes;
        if (ee_safetensors_find(st, t->name) == NULL) abort();
        if (ee_st_dtype_is_float(t->dtype) && t->n_elements <= (1u << 16)) {
            float *v = malloc((size_t)(t->n_elements ? t->n_elements : 1) * sizeof(float));
            if (!v) abort();
            if (ee_safetensors_read_f32(t, v, &err) != 0) abort();
            if (t->n_elements) sink += v[0] + v[t->n_elements - 1];
            free(v);
        }
    }
    (void)sink;
    ee_safetensors_close(st);
    return 0;
}
