/* GGUF v2/v3 reader. Modelled on ggml's gguf.cpp: every count, length, type
 * and offset is checked against the bytes actually present before it is
 * used, so any input (truncated, corrupted, hostile) yields either a valid
 * handle or NULL with a one-line message naming the field and its byte
 * offset. Metadata is copied out; tensor data stays in the mapping. */
#include "ee_gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "GGUF fields are read in host order: little-endian hosts only");

/* Smallest possible encodings, used to reject absurd counts before
 * allocating anything: a kv is at least key length (8) + one key byte +
 * type (4) + a one-byte value; a tensor info at least name length (8) +
 * one name byte + n_dims (4) + one ne (8) + type (4) + offset (8). */
#define MIN_KV_BYTES 14u
#define MIN_TI_BYTES 33u
#define HEADER_BYTES 24u
/* ggml's GGML_MAX_NAME: names must fit in 64 bytes with the NUL. */
#define MAX_TENSOR_NAME 63u

struct ee_gguf {
    const uint8_t *base;
    size_t size;
    void *map; /* non-NULL when we own an mmap of `size` bytes */
    char *path;
    uint32_t version;
    uint64_t alignment;
    uint64_t data_offset;
    uint64_t n_kv;
    ee_gguf_kv *kvs;
    size_t *kv_pos;               /* byte offset of each kv, for messages */
    const ee_gguf_kv **kv_sorted; /* by key, for lookup */
    uint64_t n_tensors;
    ee_gguf_tensor *tensors;
    size_t *ti_pos;
    const ee_gguf_tensor **ti_sorted; /* by name */
};

/* ---- value types -------------------------------------------------------- */

static const char *const vtype_names[] = {
    "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64",
};
static const uint8_t vtype_sizes[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

const char *ee_gguf_vtype_name(uint32_t type) {
    return type < sizeof vtype_names / sizeof vtype_names[0] ? vtype_names[type] : "?";
}

size_t ee_gguf_vtype_size(uint32_t type) {
    return type < sizeof vtype_sizes ? vtype_sizes[type] : 0;
}

static bool vtype_valid(uint32_t t) { return t <= EE_GGUF_F64; }

static bool vtype_is_int(uint32_t t) {
    switch (t) {
    case EE_GGUF_U8: case EE_GGUF_I8: case EE_GGUF_U16: case EE_GGUF_I16:
    case EE_GGUF_U32: case EE_GGUF_I32: case EE_GGUF_U64: case EE_GGUF_I64:
        return true;
    default:
        return false;
    }
}

static bool vtype_is_signed(uint32_t t) {
    return t == EE_GGUF_I8 || t == EE_GGUF_I16 || t == EE_GGUF_I32 || t == EE_GGUF_I64;
}

/* ---- bounded cursor ----------------------------------------------------- */

typedef struct rd {
    const uint8_t *p;
    size_t size;
    size_t pos;
    ee_err *err;
    char ctx[200]; /* what is being parsed, e.g. "kv #3 'general.name' (at byte 120)" */
} rd;

static void ctx_set(rd *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void ctx_set(rd *r, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->ctx, sizeof r->ctx, fmt, ap);
    va_end(ap);
}

static int fail(rd *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(rd *r, const char *fmt, ...) {
    char detail[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    return ee_err_set(r->err, "GGUF %s: %s", r->ctx, detail);
}

static size_t remaining(const rd *r) { return r->size - r->pos; }

static int need(rd *r, uint64_t n, const char *field) {
    if (n > remaining(r))
        return fail(r, "%s at byte %zu needs %" PRIu64 " bytes but the file ends at byte %zu "
                       "(truncated?)", field, r->pos, n, r->size);
    return 0;
}

static int rd_u32(rd *r, uint32_t *v, const char *field) {
    if (need(r, 4, field) < 0) return -1;
    memcpy(v, r->p + r->pos, 4);
    r->pos += 4;
    return 0;
}

static int rd_u64(rd *r, uint64_t *v, const char *field) {
    if (need(r, 8, field) < 0) return -1;
    memcpy(v, r->p + r->pos, 8);
    r->pos += 8;
    return 0;
}

/* Length-prefixed string. The length is checked against the bytes left
 * before anything is allocated; *out gets a NUL-terminated copy. */
static int rd_str(rd *r, const char *field, char **out, uint64_t *len_out) {
    size_t at = r->pos;
    uint64_t len;
    if (rd_u64(r, &len, field) < 0) return -1;
    if (len > remaining(r))
        return fail(r, "%s length %" PRIu64 " (at byte %zu) runs past the end of the file "
                       "(%zu bytes left)", field, len, at, remaining(r));
    char *s = malloc((size_t)len + 1);
    if (!s) return fail(r, "%s: out of memory for %" PRIu64 " bytes", field, len);
    memcpy(s, r->p + r->pos, (size_t)len);
    s[len] = '\0';
    r->pos += (size_t)len;
    *out = s;
    *len_out = len;
    return 0;
}

/* ---- kv parsing --------------------------------------------------------- */

static void kv_free(ee_gguf_kv *kv) {
    free(kv->key);
    free(kv->str);
    free(kv->arr);
    if (kv->strs) free(kv->strs[0]); /* all strings share one blob */
    free(kv->strs);
    free(kv->str_lens);
    memset(kv, 0, sizeof *kv);
}

static void scalar_decode(ee_gguf_kv *kv, uint32_t type, const uint8_t *b) {
    uint8_t u8; int8_t i8; uint16_t u16; int16_t i16; uint32_t u32; int32_t i32;
    uint64_t u64; int64_t i64; float f32; double f64;
    switch (type) {
    case EE_GGUF_U8: memcpy(&u8, b, 1); kv->u = u8; kv->i = u8; kv->f = u8; break;
    case EE_GGUF_BOOL: memcpy(&u8, b, 1); kv->u = u8; kv->i = u8; kv->f = u8; break;
    case EE_GGUF_I8: memcpy(&i8, b, 1); kv->i = i8; kv->u = i8 >= 0 ? (uint64_t)i8 : 0; kv->f = i8; break;
    case EE_GGUF_U16: memcpy(&u16, b, 2); kv->u = u16; kv->i = u16; kv->f = u16; break;
    case EE_GGUF_I16: memcpy(&i16, b, 2); kv->i = i16; kv->u = i16 >= 0 ? (uint64_t)i16 : 0; kv->f = i16; break;
    case EE_GGUF_U32: memcpy(&u32, b, 4); kv->u = u32; kv->i = u32; kv->f = u32; break;
    case EE_GGUF_I32: memcpy(&i32, b, 4); kv->i = i32; kv->u = i32 >= 0 ? (uint64_t)i32 : 0; kv->f = i32; break;
    case EE_GGUF_U64:
        memcpy(&u64, b, 8);
        kv->u = u64;
        kv->i = u64 <= (uint64_t)INT64_MAX ? (int64_t)u64 : 0; /* does not fit: getters use u */
        kv->f = (double)u64;
        break;
    case EE_GGUF_I64: memcpy(&i64, b, 8); kv->i = i64; kv->u = i64 >= 0 ? (uint64_t)i64 : 0; kv->f = (double)i64; break;
    case EE_GGUF_F32: memcpy(&f32, b, 4); kv->f = f32; break;
    case EE_GGUF_F64: memcpy(&f64, b, 8); kv->f = f64; break;
    default: break;
    }
}

static int parse_array(rd *r, ee_gguf_kv *kv) {
    size_t at = r->pos;
    uint32_t et;
    uint64_t n;
    if (rd_u32(r, &et, "array element type") < 0) return -1;
    if (!vtype_valid(et))
        return fail(r, "array element type %" PRIu32 " (at byte %zu) is not a GGUF value type",
                    et, at);
    if (et == EE_GGUF_ARRAY)
        return fail(r, "nested arrays (at byte %zu) are not supported", at);
    at = r->pos;
    if (rd_u64(r, &n, "array count") < 0) return -1;
    kv->arr_type = (ee_gguf_vtype)et;
    /* Each element takes at least esize bytes (8 for a string's length), so
     * the count is bounded by the bytes left; dividing avoids overflow. */
    size_t esize = et == EE_GGUF_STRING ? 8 : ee_gguf_vtype_size(et);
    if (n > remaining(r) / esize)
        return fail(r, "array count %" PRIu64 " of %s (at byte %zu) needs more than the %zu "
                       "bytes left in the file", n, ee_gguf_vtype_name(et), at, remaining(r));
    kv->n = n;
    if (et != EE_GGUF_STRING) {
        size_t bytes = (size_t)n * esize;
        kv->arr = malloc(bytes ? bytes : 1);
        if (!kv->arr) return fail(r, "out of memory for an array of %" PRIu64 " elements", n);
        memcpy(kv->arr, r->p + r->pos, bytes);
        if (et == EE_GGUF_BOOL) {
            const uint8_t *bv = kv->arr;
            for (uint64_t i = 0; i < n; i++)
                if (bv[i] > 1)
                    return fail(r, "bool array element %" PRIu64 " (at byte %zu) is %u, not 0 or 1",
                                i, r->pos + (size_t)i, bv[i]);
        }
        r->pos += bytes;
        return 0;
    }
    /* String arrays: a first pass checks every length and sizes one blob
     * for all the copies (a 49152-token vocabulary would otherwise cost
     * 49152 mallocs). */
    size_t scan = r->pos, blob = 0;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t len;
        if (r->size - scan < 8)
            return fail(r, "string #%" PRIu64 " length at byte %zu needs 8 bytes but the file "
                           "ends at byte %zu (truncated?)", i, scan, r->size);
        memcpy(&len, r->p + scan, 8);
        scan += 8;
        if (len > r->size - scan)
            return fail(r, "string #%" PRIu64 " length %" PRIu64 " (at byte %zu) runs past the "
                           "end of the file (%zu bytes left)", i, len, scan - 8, r->size - scan);
        scan += (size_t)len;
        blob += (size_t)len + 1; /* <= file size + n: cannot overflow */
    }
    kv->strs = calloc(n ? (size_t)n : 1, sizeof *kv->strs);
    kv->str_lens = calloc(n ? (size_t)n : 1, sizeof *kv->str_lens);
    char *b = malloc(blob ? blob : 1);
    if (!kv->strs || !kv->str_lens || !b) {
        free(b);
        return fail(r, "out of memory for %" PRIu64 " strings", n);
    }
    kv->strs[0] = b; /* set before the loop so kv_free finds the blob even if n == 0 */
    for (uint64_t i = 0; i < n; i++) {
        uint64_t len;
        memcpy(&len, r->p + r->pos, 8);
        r->pos += 8;
        memcpy(b, r->p + r->pos, (size_t)len);
        b[len] = '\0';
        kv->strs[i] = b;
        kv->str_lens[i] = len;
        b += len + 1;
        r->pos += (size_t)len;
    }
    return 0;
}

static int parse_kv(rd *r, uint64_t idx, ee_gguf_kv *kv) {
    size_t start = r->pos;
    ctx_set(r, "kv #%" PRIu64 " (at byte %zu)", idx, start);
    uint64_t klen;
    if (rd_str(r, "key", &kv->key, &klen) < 0) return -1;
    if (klen == 0) return fail(r, "key is empty");
    if (strlen(kv->key) != klen) return fail(r, "key contains a NUL byte");
    ctx_set(r, "kv #%" PRIu64 " '%.100s' (at byte %zu)", idx, kv->key, start);

    size_t at = r->pos;
    uint32_t t;
    if (rd_u32(r, &t, "value type") < 0) return -1;
    if (!vtype_valid(t))
        return fail(r, "value type %" PRIu32 " (at byte %zu) is not a GGUF value type", t, at);
    kv->type = (ee_gguf_vtype)t;
    kv->n = 1;
    if (t == EE_GGUF_ARRAY) return parse_array(r, kv);
    if (t == EE_GGUF_STRING) return rd_str(r, "string value", &kv->str, &kv->str_len);
    size_t sz = ee_gguf_vtype_size(t);
    if (need(r, sz, "value") < 0) return -1;
    if (t == EE_GGUF_BOOL && r->p[r->pos] > 1)
        return fail(r, "bool value %u (at byte %zu) is not 0 or 1", r->p[r->pos], r->pos);
    scalar_decode(kv, t, r->p + r->pos);
    r->pos += sz;
    return 0;
}

/* ---- tensor infos ------------------------------------------------------- */

static int parse_tensor_info(rd *r, uint64_t idx, ee_gguf_tensor *t, uint64_t alignment) {
    size_t start = r->pos;
    ctx_set(r, "tensor #%" PRIu64 " (info at byte %zu)", idx, start);
    uint64_t nlen;
    if (rd_str(r, "name", &t->name, &nlen) < 0) return -1;
    if (nlen == 0) return fail(r, "name is empty");
    if (strlen(t->name) != nlen) return fail(r, "name contains a NUL byte");
    if (nlen > MAX_TENSOR_NAME)
        return fail(r, "name is %" PRIu64 " bytes, more than the %u ggml allows", nlen,
                    MAX_TENSOR_NAME);
    ctx_set(r, "tensor '%.80s' (#%" PRIu64 ", info at byte %zu)", t->name, idx, start);

    size_t at = r->pos;
    if (rd_u32(r, &t->n_dims, "n_dims") < 0) return -1;
    if (t->n_dims < 1 || t->n_dims > EE_GGUF_MAX_DIMS)
        return fail(r, "n_dims %" PRIu32 " (at byte %zu) is not in 1..%d", t->n_dims, at,
                    EE_GGUF_MAX_DIMS);
    for (int d = 0; d < EE_GGUF_MAX_DIMS; d++) t->ne[d] = 1;
    uint64_t nel = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) {
        at = r->pos;
        if (rd_u64(r, &t->ne[d], "ne") < 0) return -1;
        if (t->ne[d] == 0)
            return fail(r, "ne[%" PRIu32 "] (at byte %zu) is 0", d, at);
        /* ggml keeps element counts in int64_t: the product must stay < 2^63. */
        if (t->ne[d] > (uint64_t)INT64_MAX / nel)
            return fail(r, "ne[%" PRIu32 "] = %" PRIu64 " (at byte %zu) makes the element count "
                           "overflow 2^63", d, t->ne[d], at);
        nel *= t->ne[d];
    }
    at = r->pos;
    uint32_t type;
    if (rd_u32(r, &type, "type") < 0) return -1;
    const ee_dtype_info *info = ee_dtype_get(type);
    if (!info) return fail(r, "type %" PRIu32 " (at byte %zu) is not a supported tensor type", type, at);
    t->type = (ee_dtype)type;
    if (t->ne[0] % info->block_elems != 0)
        return fail(r, "ne[0] = %" PRIu64 " is not a multiple of the %s block size %u",
                    t->ne[0], info->name, info->block_elems);
    /* nbytes = (ne0 / block) * block_bytes * ne1 * ne2 * ne3, checked. */
    uint64_t nb = t->ne[0] / info->block_elems;
    if (nb > UINT64_MAX / info->block_bytes) return fail(r, "tensor byte size overflows");
    nb *= info->block_bytes;
    for (int d = 1; d < EE_GGUF_MAX_DIMS; d++) {
        if (nb > UINT64_MAX / t->ne[d]) return fail(r, "tensor byte size overflows");
        nb *= t->ne[d];
    }
    t->nbytes = nb;
    at = r->pos;
    if (rd_u64(r, &t->offset, "offset") < 0) return -1;
    if (t->offset % alignment != 0)
        return fail(r, "offset %" PRIu64 " (at byte %zu) is not a multiple of alignment %" PRIu64,
                    t->offset, at, alignment);
    return 0;
}

/* ---- sorting and lookup ------------------------------------------------- */

static int cmp_kv_key(const void *a, const void *b) {
    const ee_gguf_kv *x = *(const ee_gguf_kv *const *)a, *y = *(const ee_gguf_kv *const *)b;
    int c = strcmp(x->key, y->key);
    return c ? c : (x < y ? -1 : x > y); /* stable: file order on ties */
}

static int cmp_ti_name(const void *a, const void *b) {
    const ee_gguf_tensor *x = *(const ee_gguf_tensor *const *)a;
    const ee_gguf_tensor *y = *(const ee_gguf_tensor *const *)b;
    int c = strcmp(x->name, y->name);
    return c ? c : (x < y ? -1 : x > y);
}

static int cmp_ti_offset(const void *a, const void *b) {
    const ee_gguf_tensor *x = *(const ee_gguf_tensor *const *)a;
    const ee_gguf_tensor *y = *(const ee_gguf_tensor *const *)b;
    if (x->offset != y->offset) return x->offset < y->offset ? -1 : 1;
    return x < y ? -1 : x > y;
}

/* ---- open --------------------------------------------------------------- */

void ee_gguf_close(ee_gguf *g) {
    if (!g) return;
    if (g->kvs)
        for (uint64_t i = 0; i < g->n_kv; i++) kv_free(&g->kvs[i]);
    free(g->kvs);
    free(g->kv_pos);
    free(g->kv_sorted);
    if (g->tensors)
        for (uint64_t i = 0; i < g->n_tensors; i++) free(g->tensors[i].name);
    free(g->tensors);
    free(g->ti_pos);
    free(g->ti_sorted);
    if (g->map) munmap(g->map, g->size);
    free(g->path);
    free(g);
}

static int parse(ee_gguf *g, ee_err *err) {
    rd r = {.p = g->base, .size = g->size, .err = err};
    ctx_set(&r, "header");
    uint32_t magic;
    if (rd_u32(&r, &magic, "magic") < 0) return -1;
    if (memcmp(&magic, "GGUF", 4) != 0)
        return fail(&r, "bad magic %02x %02x %02x %02x at byte 0 (expected \"GGUF\"): not a GGUF file",
                    g->base[0], g->base[1], g->base[2], g->base[3]);
    if (rd_u32(&r, &g->version, "version") < 0) return -1;
    if (g->version == 1)
        return fail(&r, "version 1 (at byte 4) is not supported (GGUF v1 used u32 counts; "
                        "re-convert the model to v3)");
    if ((g->version & 0xffff) == 0)
        return fail(&r, "version 0x%08" PRIx32 " (at byte 4) looks byte-swapped: big-endian "
                        "files are not supported", g->version);
    if (g->version != 2 && g->version != 3)
        return fail(&r, "version %" PRIu32 " (at byte 4) is not supported (2 or 3)", g->version);
    uint64_t n_tensors, n_kv;
    if (rd_u64(&r, &n_tensors, "n_tensors") < 0) return -1;
    if (rd_u64(&r, &n_kv, "n_kv") < 0) return -1;
    /* Reject absurd counts before allocating for them. */
    size_t body = g->size - HEADER_BYTES;
    if (n_tensors > body / MIN_TI_BYTES)
        return fail(&r, "n_tensors %" PRIu64 " (at byte 8) is impossible for a %zu-byte file "
                        "(each tensor info takes at least %u bytes)", n_tensors, g->size,
                    MIN_TI_BYTES);
    if (n_kv > (body - n_tensors * MIN_TI_BYTES) / MIN_KV_BYTES)
        return fail(&r, "n_kv %" PRIu64 " (at byte 16) is impossible for a %zu-byte file with "
                        "%" PRIu64 " tensors (each kv takes at least %u bytes)", n_kv, g->size,
                    n_tensors, MIN_KV_BYTES);

    g->kvs = calloc(n_kv ? (size_t)n_kv : 1, sizeof *g->kvs);
    g->kv_pos = calloc(n_kv ? (size_t)n_kv : 1, sizeof *g->kv_pos);
    g->kv_sorted = calloc(n_kv ? (size_t)n_kv : 1, sizeof *g->kv_sorted);
    g->tensors = calloc(n_tensors ? (size_t)n_tensors : 1, sizeof *g->tensors);
    g->ti_pos = calloc(n_tensors ? (size_t)n_tensors : 1, sizeof *g->ti_pos);
    g->ti_sorted = calloc(n_tensors ? (size_t)n_tensors : 1, sizeof *g->ti_sorted);
    if (!g->kvs || !g->kv_pos || !g->kv_sorted || !g->tensors || !g->ti_pos || !g->ti_sorted)
        return fail(&r, "out of memory for %" PRIu64 " kvs and %" PRIu64 " tensors", n_kv, n_tensors);
    /* Counts are set only now so close() frees exactly what was allocated
     * (calloc'd entries are safe to free even if parsing stops early). */
    g->n_kv = n_kv;
    g->n_tensors = n_tensors;

    for (uint64_t i = 0; i < n_kv; i++) {
        g->kv_pos[i] = r.pos;
        if (parse_kv(&r, i, &g->kvs[i]) < 0) return -1;
        g->kv_sorted[i] = &g->kvs[i];
    }
    qsort(g->kv_sorted, (size_t)n_kv, sizeof *g->kv_sorted, cmp_kv_key);
    for (uint64_t i = 1; i < n_kv; i++) {
        const ee_gguf_kv *a = g->kv_sorted[i - 1], *b = g->kv_sorted[i];
        if (strcmp(a->key, b->key) == 0) {
            size_t ia = (size_t)(a - g->kvs), ib = (size_t)(b - g->kvs);
            ctx_set(&r, "kv #%zu '%.100s' (at byte %zu)", ib, b->key, g->kv_pos[ib]);
            return fail(&r, "duplicate key (first defined by kv #%zu at byte %zu)", ia, g->kv_pos[ia]);
        }
    }

    g->alignment = EE_GGUF_DEFAULT_ALIGNMENT;
    const ee_gguf_kv *al = ee_gguf_find_kv(g, "general.alignment");
    if (al) {
        size_t ia = (size_t)(al - g->kvs);
        ctx_set(&r, "kv #%zu 'general.alignment' (at byte %zu)", ia, g->kv_pos[ia]);
        if (al->type != EE_GGUF_U32)
            return fail(&r, "type is %s, must be u32", ee_gguf_vtype_name(al->type));
        if (al->u == 0 || (al->u & (al->u - 1)) != 0)
            return fail(&r, "alignment %" PRIu64 " is not a power of two", al->u);
        g->alignment = al->u;
    }

    for (uint64_t i = 0; i < n_tensors; i++) {
        g->ti_pos[i] = r.pos;
        if (parse_tensor_info(&r, i, &g->tensors[i], g->alignment) < 0) return -1;
        g->ti_sorted[i] = &g->tensors[i];
    }
    qsort(g->ti_sorted, (size_t)n_tensors, sizeof *g->ti_sorted, cmp_ti_name);
    for (uint64_t i = 1; i < n_tensors; i++) {
        const ee_gguf_tensor *a = g->ti_sorted[i - 1], *b = g->ti_sorted[i];
        if (strcmp(a->name, b->name) == 0) {
            size_t ia = (size_t)(a - g->tensors), ib = (size_t)(b - g->tensors);
            ctx_set(&r, "tensor '%.80s' (#%zu, info at byte %zu)", b->name, ib, g->ti_pos[ib]);
            return fail(&r, "duplicate tensor name (first defined by tensor #%zu at byte %zu)", ia,
                        g->ti_pos[ia]);
        }
    }

    /* The data section starts at the next alignment boundary after the
     * tensor infos (pos <= size and alignment <= 2^32: no overflow). */
    g->data_offset = ((uint64_t)r.pos + g->alignment - 1) / g->alignment * g->alignment;
    if (n_tensors == 0) return 0;
    if (g->data_offset > g->size) {
        ctx_set(&r, "data section");
        return fail(&r, "tensor infos end at byte %zu; the data section would start at byte "
                        "%" PRIu64 " (alignment %" PRIu64 ") but the file ends at byte %zu "
                        "(truncated?)", r.pos, g->data_offset, g->alignment, g->size);
    }
    uint64_t data_size = g->size - g->data_offset;
    for (uint64_t i = 0; i < n_tensors; i++) {
        ee_gguf_tensor *t = &g->tensors[i];
        if (t->offset > data_size || t->nbytes > data_size - t->offset) {
            ctx_set(&r, "tensor '%.80s' (#%" PRIu64 ", info at byte %zu)", t->name, i, g->ti_pos[i]);
            return fail(&r, "data [%" PRIu64 ", +%" PRIu64 ") runs past the end of the %" PRIu64
                            "-byte data section at byte %" PRIu64 " (truncated?)",
                        t->offset, t->nbytes, data_size, g->data_offset);
        }
        t->data = g->base + g->data_offset + t->offset;
    }
    /* Overlap check on a by-offset order (tensor order in the file is free). */
    const ee_gguf_tensor **by_off = malloc((size_t)n_tensors * sizeof *by_off);
    if (!by_off) return fail(&r, "out of memory");
    for (uint64_t i = 0; i < n_tensors; i++) by_off[i] = &g->tensors[i];
    qsort(by_off, (size_t)n_tensors, sizeof *by_off, cmp_ti_offset);
    for (uint64_t i = 1; i < n_tensors; i++) {
        const ee_gguf_tensor *a = by_off[i - 1], *b = by_off[i];
        if (a->offset + a->nbytes > b->offset) {
            size_t ia = (size_t)(a - g->tensors), ib = (size_t)(b - g->tensors);
            ctx_set(&r, "tensor '%.80s' (#%zu, info at byte %zu)", b->name, ib, g->ti_pos[ib]);
            fail(&r, "data at offset %" PRIu64 " overlaps tensor '%.80s' (#%zu) at [%" PRIu64
                     ", %" PRIu64 ")", b->offset, a->name, ia, a->offset, a->offset + a->nbytes);
            free(by_off);
            return -1;
        }
    }
    free(by_off);
    return 0;
}

ee_gguf *ee_gguf_open_buffer(const void *buf, size_t size, ee_err *err) {
    static const uint8_t empty[1];
    if (!buf && size > 0) {
        ee_err_set(err, "GGUF buffer: NULL pointer with size %zu", size);
        return NULL;
    }
    ee_gguf *g = calloc(1, sizeof *g);
    if (!g) {
        ee_err_set(err, "GGUF: out of memory");
        return NULL;
    }
    g->base = buf ? buf : empty;
    g->size = size;
    if (parse(g, err) < 0) {
        ee_gguf_close(g);
        return NULL;
    }
    return g;
}

ee_gguf *ee_gguf_open(const char *path, ee_err *err) {
    if (!path) {
        ee_err_set(err, "GGUF open: NULL path");
        return NULL;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        ee_err_set(err, "%s: cannot open GGUF file: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        ee_err_set(err, "%s: cannot stat GGUF file: %s", path, strerror(errno));
        close(fd);
        return NULL;
    }
    if (!S_ISREG(st.st_mode)) {
        ee_err_set(err, "%s: not a regular file, cannot read as GGUF", path);
        close(fd);
        return NULL;
    }
    ee_gguf *g = calloc(1, sizeof *g);
    char *p = strdup(path);
    if (!g || !p) {
        free(g);
        free(p);
        close(fd);
        ee_err_set(err, "%s: out of memory", path);
        return NULL;
    }
    g->path = p;
    g->size = (size_t)st.st_size;
    if (g->size > 0) {
        /* MAP_POPULATE: fault the whole file in now, at open, rather than
         * page by page inside the first inference (a server wants the cost
         * at startup, and the first request as fast as the rest). */
        void *m = mmap(NULL, g->size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
        if (m == MAP_FAILED) {
            ee_err_set(err, "%s: cannot mmap GGUF file (%zu bytes): %s", path, g->size,
                       strerror(errno));
            close(fd);
            ee_gguf_close(g);
            return NULL;
        }
        g->map = m;
        g->base = m;
    } else {
        static const uint8_t empty[1];
        g->base = empty; /* parse reports the truncated header */
    }
    close(fd); /* the mapping keeps the file alive */
    if (parse(g, err) < 0) {
        ee_err_wrap(err, "%s", path);
        ee_gguf_close(g);
        return NULL;
    }
    return g;
}

/* ---- accessors ---------------------------------------------------------- */

uint32_t ee_gguf_version(const ee_gguf *g) { return g->version; }
uint64_t ee_gguf_alignment(const ee_gguf *g) { return g->alignment; }
const char *ee_gguf_path(const ee_gguf *g) { return g->path ? g->path : ""; }
uint64_t ee_gguf_file_size(const ee_gguf *g) { return g->size; }
uint64_t ee_gguf_data_offset(const ee_gguf *g) { return g->data_offset; }
uint64_t ee_gguf_n_kv(const ee_gguf *g) { return g->n_kv; }
uint64_t ee_gguf_n_tensors(const ee_gguf *g) { return g->n_tensors; }

const ee_gguf_kv *ee_gguf_kv_at(const ee_gguf *g, uint64_t i) {
    return i < g->n_kv ? &g->kvs[i] : NULL;
}

const ee_gguf_tensor *ee_gguf_tensor_at(const ee_gguf *g, uint64_t i) {
    return i < g->n_tensors ? &g->tensors[i] : NULL;
}

const ee_gguf_kv *ee_gguf_find_kv(const ee_gguf *g, const char *key) {
    if (!key) return NULL;
    size_t lo = 0, hi = (size_t)g->n_kv;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(g->kv_sorted[mid]->key, key);
        if (c == 0) return g->kv_sorted[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

const ee_gguf_tensor *ee_gguf_find_tensor(const ee_gguf *g, const char *name) {
    if (!name) return NULL;
    size_t lo = 0, hi = (size_t)g->n_tensors;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(g->ti_sorted[mid]->name, name);
        if (c == 0) return g->ti_sorted[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

uint64_t ee_gguf_tensor_nelements(const ee_gguf_tensor *t) {
    return t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3]; /* < 2^63, checked at open */
}

/* ---- typed getters ------------------------------------------------------ */

static const ee_gguf_kv *find_typed(const ee_gguf *g, const char *key, ee_err *err) {
    const ee_gguf_kv *kv = ee_gguf_find_kv(g, key);
    if (!kv) ee_err_set(err, "GGUF key '%s' not found", key ? key : "(null)");
    return kv;
}

static int wrong_type(const ee_gguf_kv *kv, const char *want, ee_err *err) {
    if (kv->type == EE_GGUF_ARRAY)
        return ee_err_set(err, "GGUF key '%s' is an array of %s, expected %s", kv->key,
                          ee_gguf_vtype_name(kv->arr_type), want);
    return ee_err_set(err, "GGUF key '%s' has type %s, expected %s", kv->key,
                      ee_gguf_vtype_name(kv->type), want);
}

/* Any integer kv as a signed/unsigned pair, range-checked by the caller. */
static int int_range(const ee_gguf_kv *kv, int64_t lo, uint64_t hi, const char *want,
                     ee_err *err) {
    if (!vtype_is_int(kv->type)) return wrong_type(kv, want, err);
    bool ok = vtype_is_signed(kv->type) ? (kv->i >= lo && (kv->i < 0 || (uint64_t)kv->i <= hi))
                                        : kv->u <= hi;
    if (!ok) {
        if (vtype_is_signed(kv->type))
            return ee_err_set(err, "GGUF key '%s' value %" PRId64 " does not fit in %s", kv->key,
                              kv->i, want);
        return ee_err_set(err, "GGUF key '%s' value %" PRIu64 " does not fit in %s", kv->key,
                          kv->u, want);
    }
    return 0;
}

int ee_gguf_get_u32(const ee_gguf *g, const char *key, uint32_t *out, ee_err *err) {
    const ee_gguf_kv *kv = find_typed(g, key, err);
    if (!kv || int_range(kv, 0, UINT32_MAX, "u32", err) < 0) return -1;
    *out = vtype_is_signed(kv->type) ? (uint32_t)kv->i : (uint32_t)kv->u;
    return 0;
}

int ee_gguf_get_i32(const ee_gguf *g, const char *key, int32_t *out, ee_err *err) {
    const ee_gguf_kv *kv = find_typed(g, key, err);
    if (!kv || int_range(kv, INT32_MIN, INT32_MAX, "i32", err) < 0) return -1;
    *out = vtype_is_signed(kv->type) ? (int32_t)kv->i : (int32_t)kv->u;
    return 0;
}

int ee_gguf_get_f32(const ee_gguf *g, const char *key, float *out, ee_err *err) {
    const ee_gguf_kv *kv = find_typed(g, key, err);
    if (!kv) return -1;
    if (kv->type == EE_GGUF_F32) {
        *out = (float)kv->f;
        return 0;
    }
    if (kv->type == EE_GGUF_F64) {
        if (kv->f == kv->f && (kv->f > FLT_MAX || kv->f < -FLT_MAX) && kv->f - kv->f == 0)
            return ee_err_set(err, "GGUF key '%s' value %g does not fit in f32", key, kv->f);
        *out = (float)kv->f;
        return 0;
    }
    if (vtype_is_int(kv->type)) {
        *out = vtype_is_signed(kv->type) ? (float)kv->i : (float)kv->u;
        return 0;
    }
    return wrong_type(kv, "f32", err);
}

int ee_gguf_get_bool(const ee_gguf *g, const char *key, bool *out, ee_err *err) {
    const ee_gguf_kv *kv = find_typed(g, key, err);
    if (!kv) return -1;
    if (kv->type != EE_GGUF_BOOL) return wrong_type(kv, "bool", err);
    *out = kv->u != 0;
    return 0;
}

const char *ee_gguf_get_str(const ee_gguf *g, const char *key, ee_err *err) {
    const ee_gguf_kv *kv = find_typed(g, key, err);
    if (!kv) return NULL;
    if (kv->type != EE_GGUF_STRING) {
        wrong_type(kv, "string", err);
        return NULL;
    }
    return kv->str;
}

const ee_gguf_kv *ee_gguf_get_arr(const ee_gguf *g, const char *key, ee_gguf_vtype elem_type,
                                  ee_err *err) {
    const ee_gguf_kv *kv = find_typed(g, key, err);
    if (!kv) return NULL;
    if (kv->type != EE_GGUF_ARRAY || kv->arr_type != elem_type) {
        char want[32];
        snprintf(want, sizeof want, "array of %s", ee_gguf_vtype_name(elem_type));
        wrong_type(kv, want, err);
        return NULL;
    }
    return kv;
}
