/* GGUF v3 writer. Metadata values are serialized when set (so the writer
 * owns copies and the later set of a key simply replaces the bytes);
 * tensors are checked when added with the same rules the reader enforces,
 * so every file written here reads back. The file goes to PATH.tmp, is
 * fsynced and renamed over PATH: readers see the old file or the complete
 * new one, and a failure removes PATH.tmp and leaves PATH untouched. */
#include "ee_gguf.h"

#include "ee_buf.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "GGUF fields are written in host order: little-endian hosts only");

#define MAX_TENSOR_NAME 63u /* ggml's GGML_MAX_NAME - 1, as the reader enforces */

typedef struct wkv {
    char *key;
    uint8_t *val; /* u32 type followed by the value, exactly as in the file */
    size_t val_len;
} wkv;

typedef struct wtensor {
    char *name;
    uint32_t n_dims;
    uint64_t ne[EE_GGUF_MAX_DIMS];
    ee_dtype type;
    uint64_t nbytes;
    const void *data;
    void *owned; /* our copy when added with copy=true */
} wtensor;

struct ee_gguf_writer {
    wkv *kvs;
    size_t n_kv, cap_kv;
    wtensor *ts;
    size_t n_ts, cap_ts;
};

/* ---- growable byte buffer ----------------------------------------------- */

/* ee_buf with a sticky out-of-memory flag, so a run of puts is checked
 * once at the end. */
typedef struct buf {
    ee_buf eb;
    bool oom;
} buf;

static void buf_put(buf *b, const void *src, size_t n) {
    if (!b->oom && ee_buf_append(&b->eb, src, n, NULL)) b->oom = true;
}

static void buf_u32(buf *b, uint32_t v) { buf_put(b, &v, 4); }
static void buf_u64(buf *b, uint64_t v) { buf_put(b, &v, 8); }
static void buf_str(buf *b, const char *s, uint64_t len) {
    buf_u64(b, len);
    buf_put(b, s, (size_t)len);
}

/* ---- lifecycle ---------------------------------------------------------- */

ee_gguf_writer *ee_gguf_writer_new(ee_err *err) {
    ee_gguf_writer *w = calloc(1, sizeof *w);
    if (!w) ee_err_set(err, "GGUF writer: out of memory");
    return w;
}

void ee_gguf_writer_free(ee_gguf_writer *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n_kv; i++) {
        free(w->kvs[i].key);
        free(w->kvs[i].val);
    }
    free(w->kvs);
    for (size_t i = 0; i < w->n_ts; i++) {
        free(w->ts[i].name);
        free(w->ts[i].owned);
    }
    free(w->ts);
    free(w);
}

/* ---- metadata ----------------------------------------------------------- */

/* Takes ownership of b's bytes (also on failure). */
static int put_kv(ee_gguf_writer *w, const char *key, buf *b, ee_err *err) {
    if (b->oom) {
        free(b->eb.p);
        return ee_err_set(err, "GGUF writer: key '%s': out of memory", key);
    }
    for (size_t i = 0; i < w->n_kv; i++) {
        if (strcmp(w->kvs[i].key, key) == 0) {
            free(w->kvs[i].val);
            w->kvs[i].val = (uint8_t *)b->eb.p;
            w->kvs[i].val_len = b->eb.len;
            return 0;
        }
    }
    if (ee_array_reserve(&w->kvs, &w->cap_kv, w->n_kv + 1, sizeof *w->kvs, NULL)) {
        free(b->eb.p);
        return ee_err_set(err, "GGUF writer: key '%s': out of memory", key);
    }
    char *k = strdup(key);
    if (!k) {
        free(b->eb.p);
        return ee_err_set(err, "GGUF writer: key '%s': out of memory", key);
    }
    w->kvs[w->n_kv++] = (wkv){.key = k, .val = (uint8_t *)b->eb.p, .val_len = b->eb.len};
    return 0;
}

static int check_key(ee_gguf_writer *w, const char *key, ee_err *err) {
    if (!w) return ee_err_set(err, "GGUF writer: NULL writer");
    if (!key || !*key) return ee_err_set(err, "GGUF writer: empty or NULL key");
    return 0;
}

static bool scalar_type(uint32_t t) {
    return t <= EE_GGUF_F64 && t != EE_GGUF_STRING && t != EE_GGUF_ARRAY;
}

int ee_gguf_writer_set_scalar(ee_gguf_writer *w, const char *key, ee_gguf_vtype type,
                              const void *v, ee_err *err) {
    if (check_key(w, key, err) < 0) return -1;
    if (!scalar_type(type))
        return ee_err_set(err, "GGUF writer: key '%s': %s is not a scalar type", key,
                          ee_gguf_vtype_name(type));
    if (!v) return ee_err_set(err, "GGUF writer: key '%s': NULL value", key);
    if (type == EE_GGUF_BOOL && *(const uint8_t *)v > 1)
        return ee_err_set(err, "GGUF writer: key '%s': bool value %u is not 0 or 1", key,
                          *(const uint8_t *)v);
    buf b = {0};
    buf_u32(&b, type);
    buf_put(&b, v, ee_gguf_vtype_size(type));
    return put_kv(w, key, &b, err);
}

int ee_gguf_writer_set_u32(ee_gguf_writer *w, const char *key, uint32_t v, ee_err *err) {
    return ee_gguf_writer_set_scalar(w, key, EE_GGUF_U32, &v, err);
}

int ee_gguf_writer_set_i32(ee_gguf_writer *w, const char *key, int32_t v, ee_err *err) {
    return ee_gguf_writer_set_scalar(w, key, EE_GGUF_I32, &v, err);
}

int ee_gguf_writer_set_f32(ee_gguf_writer *w, const char *key, float v, ee_err *err) {
    return ee_gguf_writer_set_scalar(w, key, EE_GGUF_F32, &v, err);
}

int ee_gguf_writer_set_bool(ee_gguf_writer *w, const char *key, bool v, ee_err *err) {
    uint8_t b = v ? 1 : 0;
    return ee_gguf_writer_set_scalar(w, key, EE_GGUF_BOOL, &b, err);
}

static int set_str_n(ee_gguf_writer *w, const char *key, const char *v, uint64_t len,
                     ee_err *err) {
    if (check_key(w, key, err) < 0) return -1;
    if (!v && len) return ee_err_set(err, "GGUF writer: key '%s': NULL string", key);
    buf b = {0};
    buf_u32(&b, EE_GGUF_STRING);
    buf_str(&b, v ? v : "", len);
    return put_kv(w, key, &b, err);
}

int ee_gguf_writer_set_str(ee_gguf_writer *w, const char *key, const char *v, ee_err *err) {
    if (!v) return ee_err_set(err, "GGUF writer: key '%s': NULL string", key ? key : "(null)");
    return set_str_n(w, key, v, strlen(v), err);
}

int ee_gguf_writer_set_arr(ee_gguf_writer *w, const char *key, ee_gguf_vtype elem_type,
                           const void *elems, uint64_t n, ee_err *err) {
    if (check_key(w, key, err) < 0) return -1;
    if (!scalar_type(elem_type))
        return ee_err_set(err, "GGUF writer: key '%s': array elements of type %s are not "
                               "supported here (strings: use set_str_arr)", key,
                          ee_gguf_vtype_name(elem_type));
    if (n && !elems) return ee_err_set(err, "GGUF writer: key '%s': NULL array", key);
    size_t es = ee_gguf_vtype_size(elem_type);
    if (n > SIZE_MAX / es) return ee_err_set(err, "GGUF writer: key '%s': array too large", key);
    if (elem_type == EE_GGUF_BOOL) {
        const uint8_t *bv = elems;
        for (uint64_t i = 0; i < n; i++)
            if (bv[i] > 1)
                return ee_err_set(err, "GGUF writer: key '%s': bool element %" PRIu64
                                       " is %u, not 0 or 1", key, i, bv[i]);
    }
    buf b = {0};
    buf_u32(&b, EE_GGUF_ARRAY);
    buf_u32(&b, elem_type);
    buf_u64(&b, n);
    buf_put(&b, elems, (size_t)n * es);
    return put_kv(w, key, &b, err);
}

static int set_str_arr_n(ee_gguf_writer *w, const char *key, const char *const *strs,
                         const uint64_t *lens, uint64_t n, ee_err *err) {
    if (check_key(w, key, err) < 0) return -1;
    if (n && !strs) return ee_err_set(err, "GGUF writer: key '%s': NULL array", key);
    buf b = {0};
    buf_u32(&b, EE_GGUF_ARRAY);
    buf_u32(&b, EE_GGUF_STRING);
    buf_u64(&b, n);
    for (uint64_t i = 0; i < n; i++) {
        if (!strs[i]) {
            free(b.eb.p);
            return ee_err_set(err, "GGUF writer: key '%s': string #%" PRIu64 " is NULL", key, i);
        }
        buf_str(&b, strs[i], lens ? lens[i] : strlen(strs[i]));
    }
    return put_kv(w, key, &b, err);
}

int ee_gguf_writer_set_str_arr(ee_gguf_writer *w, const char *key, const char *const *strs,
                               uint64_t n, ee_err *err) {
    return set_str_arr_n(w, key, strs, NULL, n, err);
}

int ee_gguf_writer_copy_kv(ee_gguf_writer *w, const ee_gguf_kv *kv, ee_err *err) {
    if (!kv) return ee_err_set(err, "GGUF writer: NULL kv");
    const char *key = kv->key;
    if (kv->type == EE_GGUF_STRING) return set_str_n(w, key, kv->str, kv->str_len, err);
    if (kv->type == EE_GGUF_ARRAY) {
        if (kv->arr_type == EE_GGUF_STRING)
            return set_str_arr_n(w, key, (const char *const *)kv->strs, kv->str_lens, kv->n, err);
        return ee_gguf_writer_set_arr(w, key, kv->arr_type, kv->arr, kv->n, err);
    }
    /* Scalars: rebuild the stored bytes from the widened fields. */
    union {
        uint8_t u8; int8_t i8; uint16_t u16; int16_t i16; uint32_t u32; int32_t i32;
        uint64_t u64; int64_t i64; float f32; double f64;
    } v;
    switch (kv->type) {
    case EE_GGUF_U8: v.u8 = (uint8_t)kv->u; break;
    case EE_GGUF_BOOL: v.u8 = kv->u ? 1 : 0; break;
    case EE_GGUF_I8: v.i8 = (int8_t)kv->i; break;
    case EE_GGUF_U16: v.u16 = (uint16_t)kv->u; break;
    case EE_GGUF_I16: v.i16 = (int16_t)kv->i; break;
    case EE_GGUF_U32: v.u32 = (uint32_t)kv->u; break;
    case EE_GGUF_I32: v.i32 = (int32_t)kv->i; break;
    case EE_GGUF_U64: v.u64 = kv->u; break;
    case EE_GGUF_I64: v.i64 = kv->i; break;
    case EE_GGUF_F32: v.f32 = (float)kv->f; break; /* exact: f came from an f32 */
    case EE_GGUF_F64: v.f64 = kv->f; break;
    default:
        return ee_err_set(err, "GGUF writer: key '%s': invalid value type %u",
                          key ? key : "(null)", (unsigned)kv->type);
    }
    return ee_gguf_writer_set_scalar(w, key, kv->type, &v, err);
}

void ee_gguf_writer_remove_kv(ee_gguf_writer *w, const char *key) {
    if (!w || !key) return;
    for (size_t i = 0; i < w->n_kv; i++) {
        if (strcmp(w->kvs[i].key, key) == 0) {
            free(w->kvs[i].key);
            free(w->kvs[i].val);
            /* keep insertion order of the rest */
            memmove(&w->kvs[i], &w->kvs[i + 1], (w->n_kv - i - 1) * sizeof *w->kvs);
            w->n_kv--;
            return;
        }
    }
}

/* ---- tensors ------------------------------------------------------------ */

int ee_gguf_writer_add_tensor(ee_gguf_writer *w, const char *name, uint32_t n_dims,
                              const uint64_t *ne, ee_dtype type, const void *data, bool copy,
                              ee_err *err) {
    if (!w) return ee_err_set(err, "GGUF writer: NULL writer");
    if (!name || !*name) return ee_err_set(err, "GGUF writer: tensor with an empty name");
    size_t nlen = strlen(name);
    if (nlen > MAX_TENSOR_NAME)
        return ee_err_set(err, "GGUF writer: tensor '%s': name is %zu bytes, more than %u", name,
                          nlen, MAX_TENSOR_NAME);
    for (size_t i = 0; i < w->n_ts; i++)
        if (strcmp(w->ts[i].name, name) == 0)
            return ee_err_set(err, "GGUF writer: tensor '%s' added twice", name);
    if (n_dims < 1 || n_dims > EE_GGUF_MAX_DIMS || !ne)
        return ee_err_set(err, "GGUF writer: tensor '%s': n_dims %" PRIu32 " is not in 1..%d",
                          name, n_dims, EE_GGUF_MAX_DIMS);
    const ee_dtype_info *info = ee_dtype_get((uint32_t)type);
    if (!info)
        return ee_err_set(err, "GGUF writer: tensor '%s': unknown type %u", name, (unsigned)type);
    wtensor t = {.n_dims = n_dims, .type = type};
    uint64_t nel = 1;
    for (int d = 0; d < EE_GGUF_MAX_DIMS; d++) {
        t.ne[d] = (uint32_t)d < n_dims ? ne[d] : 1;
        if (t.ne[d] == 0)
            return ee_err_set(err, "GGUF writer: tensor '%s': ne[%d] is 0", name, d);
        if (t.ne[d] > (uint64_t)INT64_MAX / nel)
            return ee_err_set(err, "GGUF writer: tensor '%s': element count overflows 2^63", name);
        nel *= t.ne[d];
    }
    if (t.ne[0] % info->block_elems != 0)
        return ee_err_set(err, "GGUF writer: tensor '%s': ne[0] = %" PRIu64 " is not a multiple "
                               "of the %s block size %u", name, t.ne[0], info->name,
                          info->block_elems);
    uint64_t nb = t.ne[0] / info->block_elems;
    if (nb > UINT64_MAX / info->block_bytes)
        return ee_err_set(err, "GGUF writer: tensor '%s': byte size overflows", name);
    nb *= info->block_bytes;
    for (int d = 1; d < EE_GGUF_MAX_DIMS; d++) {
        if (nb > UINT64_MAX / t.ne[d])
            return ee_err_set(err, "GGUF writer: tensor '%s': byte size overflows", name);
        nb *= t.ne[d];
    }
    if (nb > SIZE_MAX) return ee_err_set(err, "GGUF writer: tensor '%s': too large", name);
    t.nbytes = nb;
    if (!data) return ee_err_set(err, "GGUF writer: tensor '%s': NULL data", name);

    if (ee_array_reserve(&w->ts, &w->cap_ts, w->n_ts + 1, sizeof *w->ts, NULL))
        return ee_err_set(err, "GGUF writer: tensor '%s': out of memory", name);
    t.name = strdup(name);
    if (!t.name) return ee_err_set(err, "GGUF writer: tensor '%s': out of memory", name);
    if (copy) {
        t.owned = malloc((size_t)nb);
        if (!t.owned) {
            free(t.name);
            return ee_err_set(err, "GGUF writer: tensor '%s': out of memory for %" PRIu64
                                   " bytes", name, nb);
        }
        memcpy(t.owned, data, (size_t)nb);
        t.data = t.owned;
    } else {
        t.data = data;
    }
    w->ts[w->n_ts++] = t;
    return 0;
}

/* ---- write -------------------------------------------------------------- */

static int write_all(int fd, const void *p, size_t n) {
    const uint8_t *b = p;
    while (n) {
        ssize_t k = write(fd, b, n > (1u << 30) ? (1u << 30) : n);
        if (k < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        b += k;
        n -= (size_t)k;
    }
    return 0;
}

static int write_zeros(int fd, size_t n) {
    static const uint8_t zeros[256];
    while (n) {
        size_t k = n < sizeof zeros ? n : sizeof zeros;
        if (write_all(fd, zeros, k) < 0) return -1;
        n -= k;
    }
    return 0;
}

static uint64_t pad_to(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

/* The alignment the file will use: general.alignment if set (must be a
 * u32 power of two, as the reader requires), else 32. */
static int writer_alignment(const ee_gguf_writer *w, uint64_t *out, ee_err *err) {
    *out = EE_GGUF_DEFAULT_ALIGNMENT;
    for (size_t i = 0; i < w->n_kv; i++) {
        if (strcmp(w->kvs[i].key, "general.alignment") != 0) continue;
        uint32_t type, v;
        memcpy(&type, w->kvs[i].val, 4);
        if (type != EE_GGUF_U32)
            return ee_err_set(err, "GGUF writer: general.alignment has type %s, must be u32",
                              ee_gguf_vtype_name(type));
        memcpy(&v, w->kvs[i].val + 4, 4);
        if (v == 0 || (v & (v - 1)) != 0)
            return ee_err_set(err, "GGUF writer: general.alignment %" PRIu32
                                   " is not a power of two", v);
        *out = v;
    }
    return 0;
}

/* fsync the directory so the rename itself survives a crash. Best effort:
 * some filesystems refuse fsync on directories. */
static void fsync_dir(const char *path) {
    char *copy = strdup(path);
    if (!copy) return;
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(copy);
    if (fd < 0) return;
    (void)fsync(fd);
    close(fd);
}

int ee_gguf_writer_write(ee_gguf_writer *w, const char *path, ee_err *err) {
    if (!w) return ee_err_set(err, "GGUF writer: NULL writer");
    if (!path || !*path) return ee_err_set(err, "GGUF writer: empty path");
    uint64_t align;
    if (writer_alignment(w, &align, err) < 0) return -1;

    /* Header and tensor infos, in memory (metadata is small next to data). */
    buf h = {0};
    buf_u32(&h, 0x46554747u); /* "GGUF" */
    buf_u32(&h, 3);
    buf_u64(&h, w->n_ts);
    buf_u64(&h, w->n_kv);
    for (size_t i = 0; i < w->n_kv; i++) {
        buf_str(&h, w->kvs[i].key, strlen(w->kvs[i].key));
        buf_put(&h, w->kvs[i].val, w->kvs[i].val_len);
    }
    uint64_t off = 0;
    for (size_t i = 0; i < w->n_ts; i++) {
        const wtensor *t = &w->ts[i];
        buf_str(&h, t->name, strlen(t->name));
        buf_u32(&h, t->n_dims);
        for (uint32_t d = 0; d < t->n_dims; d++) buf_u64(&h, t->ne[d]);
        buf_u32(&h, (uint32_t)t->type);
        buf_u64(&h, off);
        if (t->nbytes > UINT64_MAX - align - off) {
            free(h.eb.p);
            return ee_err_set(err, "GGUF writer: %s: data section size overflows", path);
        }
        off = pad_to(off + t->nbytes, align);
    }
    if (h.oom) {
        free(h.eb.p);
        return ee_err_set(err, "GGUF writer: %s: out of memory for the header", path);
    }

    size_t plen = strlen(path);
    char *tmp = malloc(plen + 5);
    if (!tmp) {
        free(h.eb.p);
        return ee_err_set(err, "GGUF writer: %s: out of memory", path);
    }
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);

    /* A stale PATH.tmp (crashed earlier writer) is removed, then the new one
     * is created exclusively so we never write through a symlink or into a
     * file someone else just created. */
    if (unlink(tmp) < 0 && errno != ENOENT) {
        ee_err_set(err, "GGUF writer: cannot remove stale %s: %s", tmp, strerror(errno));
        free(tmp);
        free(h.eb.p);
        return -1;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        ee_err_set(err, "GGUF writer: cannot create %s: %s", tmp, strerror(errno));
        free(tmp);
        free(h.eb.p);
        return -1;
    }
    const char *step = "write header";
    int rc = write_all(fd, h.eb.p, h.eb.len);
    if (rc == 0) rc = write_zeros(fd, (size_t)(pad_to(h.eb.len, align) - h.eb.len));
    for (size_t i = 0; rc == 0 && i < w->n_ts; i++) {
        const wtensor *t = &w->ts[i];
        step = "write tensor data";
        rc = write_all(fd, t->data, (size_t)t->nbytes);
        if (rc == 0) rc = write_zeros(fd, (size_t)(pad_to(t->nbytes, align) - t->nbytes));
    }
    if (rc == 0) {
        step = "fsync";
        rc = fsync(fd);
    }
    int saved = errno;
    if (close(fd) < 0 && rc == 0) {
        step = "close";
        saved = errno;
        rc = -1;
    }
    if (rc == 0 && rename(tmp, path) < 0) {
        step = "rename into place";
        saved = errno;
        rc = -1;
    }
    if (rc < 0) {
        ee_err_set(err, "GGUF writer: %s: %s failed: %s", path, step, strerror(saved));
        unlink(tmp);
    } else {
        fsync_dir(path);
    }
    free(tmp);
    free(h.eb.p);
    return rc;
}
