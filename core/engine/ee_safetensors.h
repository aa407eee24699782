/* ee_safetensors: reader for Hugging Face's safetensors files (memory-mapped,
 * validating).
 *
 * Format: an 8-byte little-endian header length N, N bytes of JSON (an
 * object: tensor name -> {"dtype", "shape", "data_offsets": [begin, end]},
 * plus an optional "__metadata__" object of string values), then the data
 * section; offsets are relative to its start, tensors are row-major
 * (PyTorch order: the last dimension is contiguous), little-endian.
 *
 * Open validates everything before trusting it: the header length against
 * the file size and the format's 100 MB limit, the JSON (one object, no
 * duplicate keys), each entry's fields and types, dtype among the format's
 * own names, at most EE_ST_MAX_DIMS dimensions, shape product x dtype size
 * == end - begin (without overflow), offsets inside the data section, and
 * that the tensors tile the data section exactly: no two overlap, no gap,
 * nothing after the last one (what the reference implementation requires).
 * A failure returns NULL with an ee_err naming the file and the tensor.
 *
 * Every standard dtype is accepted at open (real checkpoints carry I64
 * buffers such as BERT's embeddings.position_ids); only F32, F16 and BF16
 * can be read as floats (ee_safetensors_read_f32). */
#ifndef EE_SAFETENSORS_H
#define EE_SAFETENSORS_H

#include "ee_error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EE_ST_MAX_DIMS 8
/* The format's own bound on the JSON header (the reference rejects more). */
#define EE_ST_MAX_HEADER ((uint64_t)100 << 20)

typedef enum ee_st_dtype {
    EE_ST_BOOL,
    EE_ST_U8,
    EE_ST_I8,
    EE_ST_F8_E5M2,
    EE_ST_F8_E4M3,
    EE_ST_I16,
    EE_ST_U16,
    EE_ST_F16,
    EE_ST_BF16,
    EE_ST_I32,
    EE_ST_U32,
    EE_ST_F32,
    EE_ST_F64,
    EE_ST_I64,
    EE_ST_U64,
    EE_ST_N_DTYPES
} ee_st_dtype;

typedef struct ee_st_tensor {
    char *name;                      /* NUL-terminated */
    ee_st_dtype dtype;
    uint32_t n_dims;                 /* 0 for a scalar */
    uint64_t shape[EE_ST_MAX_DIMS];  /* PyTorch order: shape[n_dims-1] contiguous */
    uint64_t n_elements;             /* product of shape (1 for a scalar) */
    uint64_t offset;                 /* begin, relative to the data section */
    uint64_t nbytes;                 /* end - begin */
    const void *data;                /* into the mapping; not aligned in general */
} ee_st_tensor;

typedef struct ee_safetensors ee_safetensors;

ee_safetensors *ee_safetensors_open(const char *path, ee_err *err);
/* The same validation over a buffer the caller owns (must outlive the
 * handle). */
ee_safetensors *ee_safetensors_open_buffer(const void *buf, size_t size, ee_err *err);
void ee_safetensors_close(ee_safetensors *st);

/* Tensors in data order (ascending offsets). */
size_t ee_safetensors_n_tensors(const ee_safetensors *st);
const ee_st_tensor *ee_safetensors_tensor_at(const ee_safetensors *st, size_t i);
const ee_st_tensor *ee_safetensors_find(const ee_safetensors *st, const char *name);
/* A "__metadata__" value, or NULL if absent. */
const char *ee_safetensors_meta(const ee_safetensors *st, const char *key);
const char *ee_safetensors_path(const ee_safetensors *st); /* "" for buffers */

/* "F32", "BF16", ... as the format spells them. */
const char *ee_st_dtype_name(ee_st_dtype t);
/* Bytes per element. */
size_t ee_st_dtype_size(ee_st_dtype t);
/* F32, F16 and BF16: the dtypes ee_safetensors_read_f32 converts. */
bool ee_st_dtype_is_float(ee_st_dtype t);

/* Copy the tensor's n_elements values into out as f32 (row-major, as
 * stored). -1 with err naming the tensor for a dtype that is not a float
 * type we read. */
int ee_safetensors_read_f32(const ee_st_tensor *t, float *out, ee_err *err);

#endif
