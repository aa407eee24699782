#include "ee_tensor_io.h"

#include "ee_quant.h"

#include <stdbool.h>
#include <stdlib.h>

double *ee_tensor_load_d(const ee_gguf *g, const char *name, int64_t cols, int64_t rows, ee_err *err) {
    const ee_gguf_tensor *t = ee_gguf_find_tensor(g, name);
    if (!t) {
        ee_err_set(err, "tensor '%s' is missing", name);
        return NULL;
    }
    bool ok = (rows == 1 && t->n_dims == 1 && (int64_t)t->ne[0] == cols) ||
              (t->n_dims == 2 && (int64_t)t->ne[0] == cols && (int64_t)t->ne[1] == rows);
    if (!ok) {
        ee_err_set(err, "tensor '%s' has an unexpected shape (want [%lld, %lld])", name,
                   (long long)cols, (long long)rows);
        return NULL;
    }
    double *out = malloc(sizeof(double) * rows * cols);
    float *row = malloc(sizeof(float) * cols);
    if (!out || !row) {
        free(out);
        free(row);
        ee_err_set(err, "out of memory loading '%s'", name);
        return NULL;
    }
    size_t rb = ee_dtype_row_bytes(t->type, (uint64_t)cols);
    for (int64_t r = 0; r < rows; r++) {
        if (ee_dequantize_row(t->type, (const uint8_t *)t->data + r * rb, row, (uint64_t)cols, err)) {
            free(out);
            free(row);
            ee_err_wrap(err, "tensor '%s'", name);
            return NULL;
        }
        for (int64_t c = 0; c < cols; c++) out[r * cols + c] = row[c];
    }
    free(row);
    return out;
}

