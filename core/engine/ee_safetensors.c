/* safetensors reader: map, parse the JSON header with jansson, validate,
 * index. See ee_safetensors.h for what is checked. */
#include "ee_safetensors.h"

#include "ee_quant.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct ee_safetensors {
    char *path;             /* NULL for buffers */
    void *map;              /* owned mapping of `size` bytes, or NULL */
    size_t size;
    const uint8_t *base;
    const uint8_t *data;    /* data section */
    uint64_t data_size;
    ee_st_tensor *tensors;  /* [n], ascending offsets */
    size_t n;
    ee_st_tensor **by_name; /* [n], sorted by name */
    char **meta_keys;       /* [n_meta] */
    char **meta_vals;
    size_t n_meta;
};

static const struct {
    const char *name;
    size_t size;
} dtypes[EE_ST_N_DTYPES] = {
    [EE_ST_BOOL] = {"BOOL", 1},    [EE_ST_U8] = {"U8", 1},
    [EE_ST_I8] = {"I8", 1},        [EE_ST_F8_E5M2] = {"F8_E5M2", 1},
    [EE_ST_F8_E4M3] = {"F8_E4M3", 1}, [EE_ST_I16] = {"I16", 2},
    [EE_ST_U16] = {"U16", 2},      [EE_ST_F16] = {"F16", 2},
    [EE_ST_BF16] = {"BF16", 2},    [EE_ST_I32] = {"I32", 4},
    [EE_ST_U32] = {"U32", 4},      [EE_ST_F32] = {"F32", 4},
    [EE_ST_F64] = {"F64", 8},      [EE_ST_I64] = {"I64", 8},
    [EE_ST_U64] = {"U64", 8},
};

const char *ee_st_dtype_name(ee_st_dtype t) {
    return (unsigned)t < EE_ST_N_DTYPES ? dtypes[t].name : "?";
}

size_t ee_st_dtype_size(ee_st_dtype t) {
    return (unsigned)t < EE_ST_N_DTYPES ? dtypes[t].size : 0;
}

bool ee_st_dtype_is_float(ee_st_dtype t) {
    return t == EE_ST_F32 || t == EE_ST_F16 || t == EE_ST_BF16;
}

/* ---- header parsing ------------------------------------------------------ */

/* A non-negative JSON integer. */
static int json_u64(const json_t *v, uint64_t *out) {
    if (!json_is_integer(v) || json_integer_value(v) < 0) return -1;
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

static int parse_entry(ee_safetensors *st, const char *name, const json_t *v,
                       ee_st_tensor *t, ee_err *err) {
    if (!json_is_object(v))
        return ee_err_set(err, "tensor '%s': entry is not a JSON object", name);
    const char *field;
    json_t *fv;
    json_object_foreach((json_t *)v, field, fv) {
        if (strcmp(field, "dtype") && strcmp(field, "shape") && strcmp(field, "data_offsets"))
            return ee_err_set(err, "tensor '%s': unexpected field '%s'", name, field);
    }
    const json_t *jd = json_object_get(v, "dtype"), *js = json_object_get(v, "shape"),
                 *jo = json_object_get(v, "data_offsets");
    if (!jd || !js || !jo)
        return ee_err_set(err, "tensor '%s': missing field '%s'", name,
                          !jd ? "dtype" : !js ? "shape" : "data_offsets");
    if (!json_is_string(jd))
        return ee_err_set(err, "tensor '%s': dtype is not a string", name);
    const char *dn = json_string_value(jd);
    int dt = -1;
    for (int i = 0; i < EE_ST_N_DTYPES; i++)
        if (!strcmp(dn, dtypes[i].name)) dt = i;
    if (dt < 0) return ee_err_set(err, "tensor '%s': unknown dtype '%s'", name, dn);
    t->dtype = (ee_st_dtype)dt;

    if (!json_is_array(js))
        return ee_err_set(err, "tensor '%s': shape is not an array", name);
    size_t nd = json_array_size(js);
    if (nd > EE_ST_MAX_DIMS)
        return ee_err_set(err, "tensor '%s': %zu dimensions (at most %d)", name, nd,
                          EE_ST_MAX_DIMS);
    t->n_dims = (uint32_t)nd;
    uint64_t n = 1;
    for (size_t i = 0; i < nd; i++) {
        if (json_u64(json_array_get(js, i), &t->shape[i]))
            return ee_err_set(err, "tensor '%s': shape[%zu] is not a non-negative integer",
                              name, i);
        if (__builtin_mul_overflow(n, t->shape[i], &n))
            return ee_err_set(err, "tensor '%s': element count overflows", name);
    }
    for (size_t i = nd; i < EE_ST_MAX_DIMS; i++) t->shape[i] = 1;
    t->n_elements = n;
    uint64_t bytes;
    if (__builtin_mul_overflow(n, (uint64_t)dtypes[dt].size, &bytes))
        return ee_err_set(err, "tensor '%s': byte size overflows", name);

    uint64_t b, e;
    if (!json_is_array(jo) || json_array_size(jo) != 2 || json_u64(json_array_get(jo, 0), &b) ||
        json_u64(json_array_get(jo, 1), &e))
        return ee_err_set(err, "tensor '%s': data_offsets is not [begin, end] of non-negative "
                               "integers",
                          name);
    if (b > e)
        return ee_err_set(err, "tensor '%s': data_offsets [%llu, %llu] end before they begin",
                          name, (unsigned long long)b, (unsigned long long)e);
    if (e > st->data_size)
        return ee_err_set(err,
                          "tensor '%s': data_offsets [%llu, %llu] run past the data section "
                          "(%llu bytes)",
                          name, (unsigned long long)b, (unsigned long long)e,
                          (unsigned long long)st->data_size);
    if (e - b != bytes)
        return ee_err_set(err,
                          "tensor '%s': %llu elements of %s are %llu bytes, data_offsets "
                          "[%llu, %llu] hold %llu",
                          name, (unsigned long long)n, dtypes[dt].name,
                          (unsigned long long)bytes, (unsigned long long)b,
                          (unsigned long long)e, (unsigned long long)(e - b));
    t->offset = b;
    t->nbytes = bytes;
    t->data = st->data + b;
    t->name = strdup(name);
    if (!t->name) return ee_err_set(err, "out of memory");
    return 0;
}

static int parse_metadata(ee_safetensors *st, const json_t *m, ee_err *err) {
    if (!json_is_object(m)) return ee_err_set(err, "__metadata__ is not a JSON object");
    size_t n = json_object_size(m);
    st->meta_keys = calloc(n ? n : 1, sizeof *st->meta_keys);
    st->meta_vals = calloc(n ? n : 1, sizeof *st->meta_vals);
    if (!st->meta_keys || !st->meta_vals) return ee_err_set(err, "out of memory");
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)m, k, v) {
        if (!json_is_string(v))
            return ee_err_set(err, "__metadata__ value of '%s' is not a string", k);
        st->meta_keys[st->n_meta] = strdup(k);
        st->meta_vals[st->n_meta] = strdup(json_string_value(v));
        st->n_meta++;
        if (!st->meta_keys[st->n_meta - 1] || !st->meta_vals[st->n_meta - 1])
            return ee_err_set(err, "out of memory");
    }
    return 0;
}

static int cmp_offset(const void *a, const void *b) {
    const ee_st_tensor *x = a, *y = b;
    if (x->offset != y->offset) return x->offset < y->offset ? -1 : 1;
    if (x->nbytes != y->nbytes) return x->nbytes < y->nbytes ? -1 : 1;
    return strcmp(x->name, y->name);
}

static int cmp_name(const void *a, const void *b) {
    return strcmp((*(ee_st_tensor *const *)a)->name, (*(ee_st_tensor *const *)b)->name);
}

static int parse(ee_safetensors *st, ee_err *err) {
    if (st->size < 8)
        return ee_err_set(err, "file is %zu bytes, shorter than the 8-byte header length",
                          st->size);
    uint64_t hn = 0;
    for (int i = 7; i >= 0; i--) hn = hn << 8 | st->base[i];
    if (hn > EE_ST_MAX_HEADER)
        return ee_err_set(err, "header length %llu exceeds the format's limit of %llu bytes",
                          (unsigned long long)hn, (unsigned long long)EE_ST_MAX_HEADER);
    if (hn < 2 || hn > st->size - 8)
        return ee_err_set(err, "header length %llu does not fit the file (%zu bytes after the "
                               "length field)",
                          (unsigned long long)hn, st->size - 8);
    const char *hdr = (const char *)st->base + 8;
    if (hdr[0] != '{') return ee_err_set(err, "header does not start with '{'");
    st->data = st->base + 8 + hn;
    st->data_size = st->size - 8 - hn;

    json_error_t je;
    json_t *root = json_loadb(hdr, (size_t)hn, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return ee_err_set(err, "header: invalid JSON at byte %d: %s", je.position, je.text);
    int rc = -1;
    if (!json_is_object(root)) {
        ee_err_set(err, "header is not a JSON object");
        goto done;
    }
    size_t n = json_object_size(root);
    if (json_object_get(root, "__metadata__")) n--;
    st->tensors = calloc(n ? n : 1, sizeof *st->tensors);
    st->by_name = calloc(n ? n : 1, sizeof *st->by_name);
    if (!st->tensors || !st->by_name) {
        ee_err_set(err, "out of memory");
        goto done;
    }
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) {
        if (!strcmp(key, "__metadata__")) {
            if (parse_metadata(st, val, err)) goto done;
            continue;
        }
        if (parse_entry(st, key, val, &st->tensors[st->n], err)) goto done;
        st->n++;
    }
    /* The tensors must tile the data section: sorted by offset, each one
     * starts where the previous one ended and the last ends at the end. */
    qsort(st->tensors, st->n, sizeof *st->tensors, cmp_offset);
    uint64_t expect = 0;
    for (size_t i = 0; i < st->n; i++) {
        const ee_st_tensor *t = &st->tensors[i];
        if (t->offset < expect) {
            ee_err_set(err, "tensor '%s' (bytes %llu..%llu) overlaps tensor '%s' (ends at %llu)",
                       t->name, (unsigned long long)t->offset,
                       (unsigned long long)(t->offset + t->nbytes), st->tensors[i - 1].name,
                       (unsigned long long)expect);
            goto done;
        }
        if (t->offset > expect) {
            ee_err_set(err,
                       "bytes %llu..%llu of the data section belong to no tensor (before "
                       "'%s')",
                       (unsigned long long)expect, (unsigned long long)t->offset, t->name);
            goto done;
        }
        expect = t->offset + t->nbytes;
    }
    if (expect != st->data_size) {
        ee_err_set(err, "data section is %llu bytes but its tensors end at %llu",
                   (unsigned long long)st->data_size, (unsigned long long)expect);
        goto done;
    }
    for (size_t i = 0; i < st->n; i++) st->by_name[i] = &st->tensors[i];
    qsort(st->by_name, st->n, sizeof *st->by_name, cmp_name);
    rc = 0;
done:
    json_decref(root);
    return rc;
}

/* ---- open / close ---------------------------------------------------------- */

ee_safetensors *ee_safetensors_open_buffer(const void *buf, size_t size, ee_err *err) {
    ee_safetensors *st = calloc(1, sizeof *st);
    if (!st) {
        ee_err_set(err, "out of memory");
        return NULL;
    }
    static const uint8_t empty[1];
    st->base = buf ? buf : empty;
    st->size = buf ? size : 0;
    if (parse(st, err)) {
        ee_safetensors_close(st);
        return NULL;
    }
    return st;
}

ee_safetensors *ee_safetensors_open(const char *path, ee_err *err) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        ee_err_set(err, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        ee_err_set(err, "%s: not a regular file", path);
        close(fd);
        return NULL;
    }
    ee_safetensors *st = calloc(1, sizeof *st);
    if (!st || !(st->path = strdup(path))) {
        free(st);
        close(fd);
        ee_err_set(err, "%s: out of memory", path);
        return NULL;
    }
    st->size = (size_t)sb.st_size;
    static const uint8_t empty[1];
    st->base = empty;
    if (st->size > 0) {
        void *m = mmap(NULL, st->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            ee_err_set(err, "%s: cannot mmap (%zu bytes): %s", path, st->size, strerror(errno));
            close(fd);
            ee_safetensors_close(st);
            return NULL;
        }
        st->map = m;
        st->base = m;
    }
    close(fd);
    if (parse(st, err)) {
        ee_err_wrap(err, "%s", path);
        ee_safetensors_close(st);
        return NULL;
    }
    return st;
}

void ee_safetensors_close(ee_safetensors *st) {
    if (!st) return;
    for (size_t i = 0; i < st->n; i++) free(st->tensors[i].name);
    free(st->tensors);
    free(st->by_name);
    for (size_t i = 0; i < st->n_meta; i++) {
        free(st->meta_keys[i]);
        free(st->meta_vals[i]);
    }
    free(st->meta_keys);
    free(st->meta_vals);
    if (st->map) munmap(st->map, st->size);
    free(st->path);
    free(st);
}

/* ---- accessors ------------------------------------------------------------- */

size_t ee_safetensors_n_tensors(const ee_safetensors *st) { return st->n; }

const ee_st_tensor *ee_safetensors_tensor_at(const ee_safetensors *st, size_t i) {
    return i < st->n ? &st->tensors[i] : NULL;
}

const ee_st_tensor *ee_safetensors_find(const ee_safetensors *st, const char *name) {
    size_t lo = 0, hi = st->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(st->by_name[mid]->name, name);
        if (c == 0) return st->by_name[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

const char *ee_safetensors_meta(const ee_safetensors *st, const char *key) {
    for (size_t i = 0; i < st->n_meta; i++)
        if (!strcmp(st->meta_keys[i], key)) return st->meta_vals[i];
    return NULL;
}

const char *ee_safetensors_path(const ee_safetensors *st) { return st->path ? st->path : ""; }

int ee_safetensors_read_f32(const ee_st_tensor *t, float *out, ee_err *err) {
    const uint8_t *p = t->data;
    switch (t->dtype) {
    case EE_ST_F32:
        memcpy(out, p, (size_t)t->nbytes);
        return 0;
    case EE_ST_F16:
    case EE_ST_BF16:
        for (uint64_t i = 0; i < t->n_elements; i++) {
            uint16_t h = (uint16_t)(p[2 * i] | p[2 * i + 1] << 8);
            out[i] = t->dtype == EE_ST_F16 ? ee_fp16_to_fp32(h) : ee_bf16_to_fp32(h);
        }
        return 0;
    default:
        return ee_err_set(err, "tensor '%s': dtype %s is not a float type (F32, F16, BF16)",
                          t->name, ee_st_dtype_name(t->dtype));
    }
}
