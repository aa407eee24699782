/* ee_gguf: GGUF v2/v3 reader (memory-mapped, validating) and writer.
 *
 * Reader: ee_gguf_open maps the file read-only and validates every field
 * before trusting it: magic, version, counts against the file size, string
 * lengths, value types, array sizes, tensor dims (1..4, each > 0, product
 * without overflow), tensor types, ne[0] a multiple of the block size,
 * alignment (power of two), every tensor offset aligned, in bounds and not
 * overlapping another. Any failure returns NULL with an ee_err naming the
 * field and its byte offset in the file. Metadata values are copied out at
 * open (strings NUL-terminated); tensor data stays in the mapping.
 *
 * Writer: ee_gguf_writer_* collects metadata and tensors, then writes a
 * GGUF v3 file to PATH.tmp and renames it over PATH only when everything
 * was written and fsynced, so a failure never leaves a half-written file. */
#ifndef EE_GGUF_H
#define EE_GGUF_H

#include "ee_dtype.h"
#include "ee_error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum ee_gguf_vtype {
    EE_GGUF_U8 = 0,
    EE_GGUF_I8 = 1,
    EE_GGUF_U16 = 2,
    EE_GGUF_I16 = 3,
    EE_GGUF_U32 = 4,
    EE_GGUF_I32 = 5,
    EE_GGUF_F32 = 6,
    EE_GGUF_BOOL = 7,
    EE_GGUF_STRING = 8,
    EE_GGUF_ARRAY = 9,
    EE_GGUF_U64 = 10,
    EE_GGUF_I64 = 11,
    EE_GGUF_F64 = 12,
} ee_gguf_vtype;

#define EE_GGUF_MAX_DIMS 4
#define EE_GGUF_DEFAULT_ALIGNMENT 32

/* One metadata key/value, copied out of the file. */
typedef struct ee_gguf_kv {
    char *key;               /* NUL-terminated */
    ee_gguf_vtype type;      /* value type; EE_GGUF_ARRAY for arrays */
    ee_gguf_vtype arr_type;  /* element type when type == EE_GGUF_ARRAY */
    uint64_t n;              /* element count for arrays, 1 for scalars */
    /* Scalars (numeric and bool) widened: */
    int64_t i;               /* integer types and bool */
    uint64_t u;              /* unsigned integer types */
    double f;                /* f32/f64 (and integers converted) */
    /* Strings: */
    char *str;               /* NUL-terminated copy (may contain NULs) */
    uint64_t str_len;
    /* Arrays: */
    void *arr;               /* numeric: n elements, little-endian as stored */
    char **strs;             /* string arrays: n NUL-terminated copies */
    uint64_t *str_lens;      /* string arrays: their lengths */
} ee_gguf_kv;

typedef struct ee_gguf_tensor {
    char *name;                       /* NUL-terminated */
    uint32_t n_dims;
    uint64_t ne[EE_GGUF_MAX_DIMS];    /* ne[0] contiguous; unused dims = 1 */
    ee_dtype type;
    uint64_t offset;                  /* relative to the data section */
    uint64_t nbytes;
    const void *data;                 /* into the mapping */
} ee_gguf_tensor;

typedef struct ee_gguf ee_gguf;

ee_gguf *ee_gguf_open(const char *path, ee_err *err);
/* Same validation over a buffer the caller owns (must outlive the handle). */
ee_gguf *ee_gguf_open_buffer(const void *buf, size_t size, ee_err *err);
void ee_gguf_close(ee_gguf *g);

uint32_t ee_gguf_version(const ee_gguf *g);
uint64_t ee_gguf_alignment(const ee_gguf *g);
const char *ee_gguf_path(const ee_gguf *g);  /* "" for buffers */
uint64_t ee_gguf_file_size(const ee_gguf *g);

/* Metadata. */
uint64_t ee_gguf_n_kv(const ee_gguf *g);
const ee_gguf_kv *ee_gguf_kv_at(const ee_gguf *g, uint64_t i);
const ee_gguf_kv *ee_gguf_find_kv(const ee_gguf *g, const char *key);

/* Typed getters. Return 0 on success; -1 with err naming the key when the
 * key is missing, has the wrong type, or its value is out of range.
 * Integer getters accept any integer type whose value fits. */
int ee_gguf_get_u32(const ee_gguf *g, const char *key, uint32_t *out, ee_err *err);
int ee_gguf_get_i32(const ee_gguf *g, const char *key, int32_t *out, ee_err *err);
int ee_gguf_get_f32(const ee_gguf *g, const char *key, float *out, ee_err *err);
int ee_gguf_get_bool(const ee_gguf *g, const char *key, bool *out, ee_err *err);
/* Returns the NUL-terminated string or NULL (err set). */
const char *ee_gguf_get_str(const ee_gguf *g, const char *key, ee_err *err);
/* Array of a given element type; returns the kv or NULL (err set). */
const ee_gguf_kv *ee_gguf_get_arr(const ee_gguf *g, const char *key,
                                  ee_gguf_vtype elem_type, ee_err *err);

/* Name of a value type ("u32", "string", ...; "?" if invalid) and the size
 * of one stored element (0 for string, array and invalid types). */
const char *ee_gguf_vtype_name(uint32_t type);
size_t ee_gguf_vtype_size(uint32_t type);

/* Offset of the data section (tensor offsets are relative to it). */
uint64_t ee_gguf_data_offset(const ee_gguf *g);

/* Tensors. */
uint64_t ee_gguf_n_tensors(const ee_gguf *g);
const ee_gguf_tensor *ee_gguf_tensor_at(const ee_gguf *g, uint64_t i);
const ee_gguf_tensor *ee_gguf_find_tensor(const ee_gguf *g, const char *name);
uint64_t ee_gguf_tensor_nelements(const ee_gguf_tensor *t);

/* ---- Writer ---- */
typedef struct ee_gguf_writer ee_gguf_writer;

ee_gguf_writer *ee_gguf_writer_new(ee_err *err);
void ee_gguf_writer_free(ee_gguf_writer *w);

/* Metadata setters. Keys must be unique; the later call replaces an
 * earlier one with the same key. Values are copied. */
int ee_gguf_writer_set_u32(ee_gguf_writer *w, const char *key, uint32_t v, ee_err *err);
int ee_gguf_writer_set_i32(ee_gguf_writer *w, const char *key, int32_t v, ee_err *err);
int ee_gguf_writer_set_f32(ee_gguf_writer *w, const char *key, float v, ee_err *err);
int ee_gguf_writer_set_bool(ee_gguf_writer *w, const char *key, bool v, ee_err *err);
int ee_gguf_writer_set_str(ee_gguf_writer *w, const char *key, const char *v, ee_err *err);
int ee_gguf_writer_set_arr(ee_gguf_writer *w, const char *key, ee_gguf_vtype elem_type,
                           const void *elems, uint64_t n, ee_err *err);
int ee_gguf_writer_set_str_arr(ee_gguf_writer *w, const char *key,
                               const char *const *strs, uint64_t n, ee_err *err);
/* Any scalar type (numeric or bool, not string/array): `v` points to
 * ee_gguf_vtype_size(type) bytes of the value as stored (little-endian);
 * bools are one byte, 0 or 1. */
int ee_gguf_writer_set_scalar(ee_gguf_writer *w, const char *key, ee_gguf_vtype type,
                              const void *v, ee_err *err);
/* Copy a key/value read from another file. */
int ee_gguf_writer_copy_kv(ee_gguf_writer *w, const ee_gguf_kv *kv, ee_err *err);
/* Remove a key if present. */
void ee_gguf_writer_remove_kv(ee_gguf_writer *w, const char *key);

/* Add a tensor. `data` holds ee_dtype_row_bytes(type, ne[0]) * ne[1..]
 * bytes; if `copy` is false it must stay valid until writer_write returns. */
int ee_gguf_writer_add_tensor(ee_gguf_writer *w, const char *name, uint32_t n_dims,
                              const uint64_t *ne, ee_dtype type, const void *data,
                              bool copy, ee_err *err);

/* Write the file atomically (PATH.tmp, fsync, rename). The alignment is
 * general.alignment if set, else 32. */
int ee_gguf_writer_write(ee_gguf_writer *w, const char *path, ee_err *err);

#endif
