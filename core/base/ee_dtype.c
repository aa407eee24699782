#include "ee_dtype.h"

#include <strings.h>

/* Block layouts as ggml defines them (ggml-common.h). K-quants use
 * super-blocks of 256 values. */
static const ee_dtype_info k_f32 = {"f32", 1, 4};
static const ee_dtype_info k_f16 = {"f16", 1, 2};
static const ee_dtype_info k_bf16 = {"bf16", 1, 2};
static const ee_dtype_info k_q4_0 = {"q4_0", 32, 18};
static const ee_dtype_info k_q4_1 = {"q4_1", 32, 20};
static const ee_dtype_info k_q8_0 = {"q8_0", 32, 34};
static const ee_dtype_info k_q4_k = {"q4_K", 256, 144};
static const ee_dtype_info k_q6_k = {"q6_K", 256, 210};

const ee_dtype_info *ee_dtype_get(uint32_t type_id) {
    switch (type_id) {
    case EE_DT_F32: return &k_f32;
    case EE_DT_F16: return &k_f16;
    case EE_DT_BF16: return &k_bf16;
    case EE_DT_Q4_0: return &k_q4_0;
    case EE_DT_Q4_1: return &k_q4_1;
    case EE_DT_Q8_0: return &k_q8_0;
    case EE_DT_Q4_K: return &k_q4_k;
    case EE_DT_Q6_K: return &k_q6_k;
    default: return NULL;
    }
}

int ee_dtype_from_name(const char *name, ee_dtype *out) {
    static const struct { const char *name; ee_dtype t; } names[] = {
        {"f32", EE_DT_F32},   {"f16", EE_DT_F16},   {"bf16", EE_DT_BF16},
        {"q8_0", EE_DT_Q8_0}, {"q4_0", EE_DT_Q4_0}, {"q4_1", EE_DT_Q4_1},
        {"q4_k", EE_DT_Q4_K}, {"q6_k", EE_DT_Q6_K},
    };
    if (!name) return -1;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strcasecmp(name, names[i].name) == 0) {
            if (out) *out = names[i].t;
            return 0;
        }
    }
    return -1;
}

size_t ee_dtype_row_bytes(ee_dtype t, uint64_t n) {
    const ee_dtype_info *info = ee_dtype_get((uint32_t)t);
    if (!info || n % info->block_elems != 0) return 0;
    uint64_t blocks = n / info->block_elems;
    /* 0 also signals overflow: no caller can allocate such a row anyway. */
    if (blocks > SIZE_MAX / info->block_bytes) return 0;
    return (size_t)(blocks * info->block_bytes);
}
