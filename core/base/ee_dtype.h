/* ee_dtype: tensor element types (ids match ggml/GGUF) and their block
 * layouts. Quantized types store fixed-size blocks of `block_elems` values
 * in `block_bytes` bytes along the contiguous dimension (ne[0]). */
#ifndef EE_DTYPE_H
#define EE_DTYPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum ee_dtype {
    EE_DT_F32 = 0,
    EE_DT_F16 = 1,
    EE_DT_Q4_0 = 2,
    EE_DT_Q4_1 = 3,
    EE_DT_Q8_0 = 8,
    EE_DT_Q4_K = 12,
    EE_DT_Q6_K = 14,
    EE_DT_BF16 = 30,
} ee_dtype;

typedef struct ee_dtype_info {
    const char *name;     /* "f32", "q4_1", ... as ggml names them */
    uint32_t block_elems; /* values per block (1 for float types) */
    uint32_t block_bytes; /* bytes per block */
} ee_dtype_info;

/* Info for a type id, or NULL if the id is not one we can read. */
const ee_dtype_info *ee_dtype_get(uint32_t type_id);

/* Parse "f32", "f16", "bf16", "q8_0", "q4_0", "q4_1" (case-insensitive).
 * Returns 0 and sets *out, or -1 for an unknown name. */
int ee_dtype_from_name(const char *name, ee_dtype *out);

/* Bytes for a row of n elements; 0 if n is not a multiple of the block. */
size_t ee_dtype_row_bytes(ee_dtype t, uint64_t n);

#endif
