/* libFuzzer target: the GGUF reader on arbitrary bytes (model files come
 * from disks and downloads). An accepted file's every tensor must lie inside
 * the buffer, and walking its metadata must be safe. */
#include "ee_gguf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ee_err err;
    ee_gguf *g = ee_gguf_open_buffer(data, size, &err);
    if (!g) {
        if (!err.msg[0]) abort();
        return 0;
    }
    volatile uint64_t sink = 0;
    for (uint64_t i = 0; i < ee_gguf_n_tensors(g); i++) {
        const ee_gguf_tensor *t = ee_gguf_tensor_at(g, i);
        const uint8_t *p = t->data;
        if (p < data || p + t->nbytes > data + size) abort();
        if (t->nbytes) sink += p[0] + p[t->nbytes - 1]; /* ASan checks the ends */
        if (ee_gguf_find_tensor(g, t->name) == NULL) abort();
    }
    for (uint64_t i = 0; i < ee_gguf_n_kv(g); i++) {
        const ee_gguf_kv *kv = ee_gguf_kv_at(g, i);
        if (kv->type == EE_GGUF_STRING) sink += strlen(kv->str);
        if (ee_gguf_find_kv(g, kv->key) == NULL) abort();
    }
    (void)sink;
    ee_gguf_close(g);
    return 0;
}
