/* Unit tests for the GGUF reader and writer.
 *
 * - Round trip: every kv type and a tensor of every type, written by our
 *   writer and read back by our reader and by the independent Python
 *   `gguf` package (GGUFReader); files written by Python's GGUFWriter read
 *   by us. Both sides print the same canonical dump, compared as text.
 * - Corruption (runs under ASan/UBSan): truncation at every byte up to the
 *   end of the last tensor, targeted mutations of every header field, and
 *   a seeded random-corruption fuzz loop. Buffers are malloc'd at their
 *   exact size so any read past the end is caught.
 * - Writer failure paths never leave PATH or PATH.tmp behind. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ee_gguf.h"
#include "ee_quant.h"
#include "ee_testmodel.h"

/* ---- helpers -------------------------------------------------------------- */

static uint64_t rng_state;
static uint64_t rnd(void) { return ee_test_splitmix64(&rng_state); } /* deterministic across runs */

static char *tmpdir; /* the current test's directory (ee_test_mkdtemp) */
static void mk_tmpdir(void) { tmpdir = ee_test_mkdtemp("gguf"); }
static void rm_tmpdir(void) {
    ee_test_rmtree(tmpdir);
    free(tmpdir);
    tmpdir = NULL;
}
static const char *tpath(const char *name) { /* path inside tmpdir (rotating buffers) */
    static char bufs[4][1024];
    static int k;
    char *b = bufs[k++ & 3];
    snprintf(b, 1024, "%s/%s", tmpdir, name);
    return b;
}

static bool exists(const char *path) {
    struct stat st;
    return lstat(path, &st) == 0;
}

static uint8_t *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "fopen %s: %s", path, strerror(errno));
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *p = malloc(sz > 0 ? (size_t)sz : 1);
    ck_assert_uint_eq(fread(p, 1, (size_t)sz, f), (size_t)sz);
    fclose(f);
    *n = (size_t)sz;
    return p;
}

static void run_py(const char *script, const char *args) {
    char cmd[4096];
    int rc = ee_test_python_script(tmpdir, script, args, cmd, sizeof cmd);
    ck_assert_msg(rc == 0, "python failed (rc %d): %s", rc, cmd);
}

static uint64_t fnv1a(const void *p, uint64_t n) {
    const uint8_t *b = p;
    uint64_t h = 0xcbf29ce484222325ull;
    for (uint64_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

/* ---- canonical dump (same format from C and from Python) ----------------- */

static void dump_value(FILE *f, uint32_t type, const void *p, const char *str, uint64_t len) {
    uint8_t u8; int8_t i8; uint16_t u16; int16_t i16; uint32_t u32; int32_t i32;
    uint64_t u64; int64_t i64;
    switch (type) {
    case EE_GGUF_U8: case EE_GGUF_BOOL: memcpy(&u8, p, 1); fprintf(f, "%u", u8); break;
    case EE_GGUF_I8: memcpy(&i8, p, 1); fprintf(f, "%d", i8); break;
    case EE_GGUF_U16: memcpy(&u16, p, 2); fprintf(f, "%u", u16); break;
    case EE_GGUF_I16: memcpy(&i16, p, 2); fprintf(f, "%d", i16); break;
    case EE_GGUF_U32: memcpy(&u32, p, 4); fprintf(f, "%" PRIu32, u32); break;
    case EE_GGUF_I32: memcpy(&i32, p, 4); fprintf(f, "%" PRId32, i32); break;
    case EE_GGUF_F32: memcpy(&u32, p, 4); fprintf(f, "%08" PRIx32, u32); break;
    case EE_GGUF_U64: memcpy(&u64, p, 8); fprintf(f, "%" PRIu64, u64); break;
    case EE_GGUF_I64: memcpy(&i64, p, 8); fprintf(f, "%" PRId64, i64); break;
    case EE_GGUF_F64: memcpy(&u64, p, 8); fprintf(f, "%016" PRIx64, u64); break;
    case EE_GGUF_STRING:
        fputc('s', f);
        for (uint64_t i = 0; i < len; i++) fprintf(f, "%02x", (uint8_t)str[i]);
        break;
    }
}

/* Scalars are re-encoded from the widened fields, which also checks them. */
static void dump_scalar(FILE *f, const ee_gguf_kv *kv) {
    union { uint8_t u8; int8_t i8; uint16_t u16; int16_t i16; uint32_t u32; int32_t i32;
            uint64_t u64; int64_t i64; float f32; double f64; } v;
    switch (kv->type) {
    case EE_GGUF_U8: case EE_GGUF_BOOL: v.u8 = (uint8_t)kv->u; break;
    case EE_GGUF_I8: v.i8 = (int8_t)kv->i; break;
    case EE_GGUF_U16: v.u16 = (uint16_t)kv->u; break;
    case EE_GGUF_I16: v.i16 = (int16_t)kv->i; break;
    case EE_GGUF_U32: v.u32 = (uint32_t)kv->u; break;
    case EE_GGUF_I32: v.i32 = (int32_t)kv->i; break;
    case EE_GGUF_U64: v.u64 = kv->u; break;
    case EE_GGUF_I64: v.i64 = kv->i; break;
    case EE_GGUF_F32: v.f32 = (float)kv->f; break;
    case EE_GGUF_F64: v.f64 = kv->f; break;
    default: break;
    }
    dump_value(f, kv->type, &v, kv->str, kv->str_len);
}

static char *dump_c(const ee_gguf *g) {
    char *out = NULL;
    size_t outlen = 0;
    FILE *f = open_memstream(&out, &outlen);
    fprintf(f, "h %" PRIu32 " %" PRIu64 " %" PRIu64 " %" PRIu64 "\n", ee_gguf_version(g),
            ee_gguf_n_tensors(g), ee_gguf_n_kv(g), ee_gguf_alignment(g));
    for (uint64_t i = 0; i < ee_gguf_n_kv(g); i++) {
        const ee_gguf_kv *kv = ee_gguf_kv_at(g, i);
        if (kv->type == EE_GGUF_ARRAY) {
            fprintf(f, "kv %s array:%s n=%" PRIu64 " [", kv->key, ee_gguf_vtype_name(kv->arr_type), kv->n);
            size_t es = ee_gguf_vtype_size(kv->arr_type);
            for (uint64_t j = 0; j < kv->n; j++) {
                if (j) fputc(',', f);
                if (kv->arr_type == EE_GGUF_STRING)
                    dump_value(f, EE_GGUF_STRING, NULL, kv->strs[j], kv->str_lens[j]);
                else
                    dump_value(f, kv->arr_type, (const uint8_t *)kv->arr + j * es, NULL, 0);
            }
            fprintf(f, "]\n");
        } else {
            fprintf(f, "kv %s %s n=1 [", kv->key, ee_gguf_vtype_name(kv->type));
            dump_scalar(f, kv);
            fprintf(f, "]\n");
        }
    }
    for (uint64_t i = 0; i < ee_gguf_n_tensors(g); i++) {
        const ee_gguf_tensor *t = ee_gguf_tensor_at(g, i);
        fprintf(f, "t %s %d ", t->name, (int)t->type);
        for (uint32_t d = 0; d < t->n_dims; d++) fprintf(f, d ? "x%" PRIu64 : "%" PRIu64, t->ne[d]);
        fprintf(f, " %" PRIu64 " %" PRIu64 " %016" PRIx64 "\n", t->offset, t->nbytes,
                fnv1a(t->data, t->nbytes));
    }
    fclose(f);
    return out;
}

static const char *PY_DUMP =
    "import sys, numpy as np\n"
    "from gguf import GGUFReader, GGUFValueType as VT\n"
    "names = {0:'u8',1:'i8',2:'u16',3:'i16',4:'u32',5:'i32',6:'f32',7:'bool',8:'string',\n"
    "         9:'array',10:'u64',11:'i64',12:'f64'}\n"
    "def val(t, part):\n"
    "    if t == VT.STRING: return 's' + bytes(part).hex()\n"
    "    if t == VT.FLOAT32: return '%08x' % int(part.view(np.uint32)[0])\n"
    "    if t == VT.FLOAT64: return '%016x' % int(part.view(np.uint64)[0])\n"
    "    return str(int(part[0]))\n"
    "def fnv(b):\n"
    "    h = 0xcbf29ce484222325\n"
    "    for x in b: h = ((h ^ x) * 0x100000001b3) & 0xffffffffffffffff\n"
    "    return h\n"
    "r = GGUFReader(sys.argv[1])\n"
    "fields = [f for f in r.fields.values() if not f.name.startswith('GGUF.')]\n"
    "out = ['h %d %d %d %d' % (int(r.fields['GGUF.version'].parts[0][0]), len(r.tensors),\n"
    "       len(fields), r.alignment)]\n"
    "for f in fields:\n"
    "    t = f.types[0]\n"
    "    if t == VT.ARRAY:\n"
    "        et = int(f.parts[3][0]); n = int(f.parts[4][0])\n"
    "        vals = [val(VT(et), f.parts[i]) for i in f.data]\n"
    "        out.append('kv %s array:%s n=%d [%s]' % (f.name, names[et], n, ','.join(vals)))\n"
    "    else:\n"
    "        out.append('kv %s %s n=1 [%s]' % (f.name, names[int(t)], val(t, f.parts[f.data[0]])))\n"
    "for t in r.tensors:\n"
    "    b = bytes(r.data[t.data_offset:t.data_offset + t.n_bytes])\n"
    "    assert len(b) == t.n_bytes\n"
    "    out.append('t %s %d %s %d %d %016x' % (t.name, int(t.tensor_type),\n"
    "        'x'.join(str(int(d)) for d in t.shape), t.data_offset - r.data_offset, t.n_bytes, fnv(b)))\n"
    "open(sys.argv[2], 'w').write('\\n'.join(out) + '\\n')\n";

/* Python's view of `path` must equal ours, line for line. */
static void compare_with_python(const char *path, const ee_gguf *g) {
    char args[600];
    const char *out = tpath("py-dump.txt");
    snprintf(args, sizeof args, "'%s' '%s'", path, out);
    run_py(PY_DUMP, args);
    size_t n;
    char *py = (char *)slurp(out, &n);
    py = realloc(py, n + 1);
    py[n] = '\0';
    char *mine = dump_c(g);
    if (strcmp(py, mine) != 0) {
        /* report the first differing line */
        const char *a = py, *b = mine;
        while (*a && *a == *b) a++, b++;
        while (a > py && a[-1] != '\n') a--, b--;
        char la[200] = {0}, lb[200] = {0};
        sscanf(a, "%199[^\n]", la);
        sscanf(b, "%199[^\n]", lb);
        ck_abort_msg("%s: Python gguf and ee_gguf disagree:\n  python: %s\n  ours:   %s", path, la, lb);
    }
    free(py);
    free(mine);
}

/* ---- the sample file ---------------------------------------------------- */

typedef struct sample_tensor {
    const char *name;
    ee_dtype type;
    uint32_t n_dims;
    uint64_t ne[4];
} sample_tensor;

/* Names t.q4_0/t.q4_1 have equal length: the duplicate-name mutation
 * renames one into the other. The f32 tensor's ne[0] = 7 is not a multiple
 * of 32: the type mutation to q8_0 must then fail. */
static const sample_tensor k_tensors[] = {
    {"t.f32", EE_DT_F32, 2, {7, 3}},
    {"t.f16", EE_DT_F16, 1, {5}},
    {"t.bf16", EE_DT_BF16, 3, {3, 2, 2}},
    {"t.q8_0", EE_DT_Q8_0, 2, {64, 3}},
    {"t.q4_0", EE_DT_Q4_0, 4, {32, 2, 1, 2}},
    {"t.q4_1", EE_DT_Q4_1, 1, {96}},
    {"t.q4_k", EE_DT_Q4_K, 2, {256, 2}},
    {"t.q6_k", EE_DT_Q6_K, 1, {256}},
};
#define N_SAMPLE_TENSORS (sizeof k_tensors / sizeof k_tensors[0])

static size_t sample_nbytes(const sample_tensor *t) {
    size_t n = ee_dtype_row_bytes(t->type, t->ne[0]);
    for (uint32_t d = 1; d < t->n_dims; d++) n *= t->ne[d];
    return n;
}

/* Tensor payloads, owned by the test (the writer borrows some). */
static uint8_t *sample_data[N_SAMPLE_TENSORS];

static void sample_data_free(void) {
    for (size_t i = 0; i < N_SAMPLE_TENSORS; i++) {
        free(sample_data[i]);
        sample_data[i] = NULL;
    }
}

static const uint8_t a_u8[] = {0, 1, 255};
static const int8_t a_i8[] = {-128, 0, 127};
static const uint16_t a_u16[] = {0, 65535, 1234};
static const int16_t a_i16[] = {-32768, 32767, -1};
static const uint32_t a_u32[] = {0, 4294967295u, 7};
static const int32_t a_i32[] = {INT32_MIN, INT32_MAX, -5};
static const float a_f32[] = {1.5f, -0.0f, 3.4e38f};
static const uint8_t a_bool[] = {1, 0, 1};
static const uint64_t a_u64[] = {0, UINT64_MAX, 1ull << 40};
static const int64_t a_i64[] = {INT64_MIN, INT64_MAX, -9};
static const double a_f64[] = {0.1, -1e300, 5e-324};
static const char *const a_str[] = {"a", "", "h\xc3\xa9llo", "tab\there"};

/* alignment 0 = leave general.alignment unset (default 32). */
static ee_gguf_writer *sample_writer(uint32_t alignment) {
    ee_err err = {{0}};
    ee_gguf_writer *w = ee_gguf_writer_new(&err);
    ck_assert_ptr_nonnull(w);
#define OK(call) ck_assert_msg((call) == 0, "%s: %s", #call, err.msg)
    OK(ee_gguf_writer_set_str(w, "general.architecture", "llama", &err));
    OK(ee_gguf_writer_set_str(w, "general.name", "t\xc3\xa9st model", &err));
    OK(ee_gguf_writer_set_str(w, "s.empty", "", &err));
    OK(ee_gguf_writer_set_u32(w, "v.u32", 1, &err)); /* replaced below */
    uint8_t u8 = 200; int8_t i8 = -100; uint16_t u16 = 60000; int16_t i16 = -30000;
    uint64_t u64 = (1ull << 63) + 5; int64_t i64 = -(1ll << 62) - 7; double f64 = -1.0 / 3;
    OK(ee_gguf_writer_set_scalar(w, "v.u8", EE_GGUF_U8, &u8, &err));
    OK(ee_gguf_writer_set_scalar(w, "v.i8", EE_GGUF_I8, &i8, &err));
    OK(ee_gguf_writer_set_scalar(w, "v.u16", EE_GGUF_U16, &u16, &err));
    OK(ee_gguf_writer_set_scalar(w, "v.i16", EE_GGUF_I16, &i16, &err));
    OK(ee_gguf_writer_set_u32(w, "v.u32", 4000000000u, &err));
    OK(ee_gguf_writer_set_i32(w, "v.i32", -2000000000, &err));
    OK(ee_gguf_writer_set_f32(w, "v.f32", 3.25f, &err));
    OK(ee_gguf_writer_set_bool(w, "v.bool", true, &err));
    OK(ee_gguf_writer_set_bool(w, "v.false", false, &err));
    OK(ee_gguf_writer_set_scalar(w, "v.u64", EE_GGUF_U64, &u64, &err));
    OK(ee_gguf_writer_set_scalar(w, "v.i64", EE_GGUF_I64, &i64, &err));
    OK(ee_gguf_writer_set_scalar(w, "v.f64", EE_GGUF_F64, &f64, &err));
    OK(ee_gguf_writer_set_str(w, "gone", "removed before writing", &err));
    OK(ee_gguf_writer_set_arr(w, "a.u8", EE_GGUF_U8, a_u8, 3, &err));
    OK(ee_gguf_writer_set_arr(w, "a.i8", EE_GGUF_I8, a_i8, 3, &err));
    OK(ee_gguf_writer_set_arr(w, "a.u16", EE_GGUF_U16, a_u16, 3, &err));
    OK(ee_gguf_writer_set_arr(w, "a.i16", EE_GGUF_I16, a_i16, 3, &err));
    OK(ee_gguf_writer_set_arr(w, "a.u32", EE_GGUF_U32, a_u32, 3, &err));
    OK(ee_gguf_writer_set_arr(w, "a.i32", EE_GGUF_I32, a_i32, 3, &err));
    OK(ee_gguf_writer_set_arr(w, "a.f32", EE_GGUF_F32, a_f32, 3, &err));
    OK(ee_gguf_writer_set_arr(w, "a.bool", EE_GGUF_BOOL, a_bool, 3, &err));
    OK(ee_gguf_writer_set_arr(w, "a.u64", EE_GGUF_U64, a_u64, 3, &err));
    OK(ee_gguf_writer_set_arr(w, "a.i64", EE_GGUF_I64, a_i64, 3, &err));
    OK(ee_gguf_writer_set_arr(w, "a.f64", EE_GGUF_F64, a_f64, 3, &err));
    OK(ee_gguf_writer_set_str_arr(w, "a.str", a_str, 4, &err));
    OK(ee_gguf_writer_set_arr(w, "a.empty", EE_GGUF_U32, NULL, 0, &err));
    OK(ee_gguf_writer_set_str_arr(w, "a.empty_str", NULL, 0, &err));
    OK(ee_gguf_writer_set_u32(w, "dup.k1", 1, &err));
    OK(ee_gguf_writer_set_u32(w, "dup.k2", 2, &err));
    ee_gguf_writer_remove_kv(w, "gone");
    ee_gguf_writer_remove_kv(w, "never.set"); /* no-op */
    if (alignment) OK(ee_gguf_writer_set_u32(w, "general.alignment", alignment, &err));
    for (size_t i = 0; i < N_SAMPLE_TENSORS; i++) {
        const sample_tensor *t = &k_tensors[i];
        size_t n = sample_nbytes(t);
        free(sample_data[i]);
        sample_data[i] = malloc(n);
        for (size_t j = 0; j < n; j++) sample_data[i][j] = (uint8_t)rnd();
        /* alternate borrowed and copied data */
        OK(ee_gguf_writer_add_tensor(w, t->name, t->n_dims, t->ne, t->type, sample_data[i],
                                     i % 2 == 0, &err));
    }
#undef OK
    return w;
}

/* Writes the sample to tmpdir/name and returns its bytes (caller frees). */
static uint8_t *sample_file(const char *name, uint32_t alignment, size_t *size) {
    ee_err err = {{0}};
    ee_gguf_writer *w = sample_writer(alignment);
    ck_assert_msg(ee_gguf_writer_write(w, tpath(name), &err) == 0, "%s", err.msg);
    ee_gguf_writer_free(w);
    return slurp(tpath(name), size);
}

/* ---- round trip ----------------------------------------------------------- */

static void check_sample_contents(const ee_gguf *g, uint32_t alignment) {
    ee_err err = {{0}};
    ck_assert_uint_eq(ee_gguf_version(g), 3);
    ck_assert_uint_eq(ee_gguf_alignment(g), alignment ? alignment : 32);
    ck_assert_uint_eq(ee_gguf_data_offset(g) % ee_gguf_alignment(g), 0);
    ck_assert_uint_eq(ee_gguf_n_kv(g), 31 + (alignment ? 1 : 0));
    ck_assert_ptr_null(ee_gguf_find_kv(g, "gone"));
    ck_assert_str_eq(ee_gguf_get_str(g, "general.architecture", &err), "llama");
    ck_assert_str_eq(ee_gguf_get_str(g, "general.name", &err), "t\xc3\xa9st model");
    ck_assert_str_eq(ee_gguf_get_str(g, "s.empty", &err), "");

    const ee_gguf_kv *kv;
    kv = ee_gguf_find_kv(g, "v.u8");  ck_assert(kv && kv->type == EE_GGUF_U8 && kv->u == 200);
    kv = ee_gguf_find_kv(g, "v.i8");  ck_assert(kv && kv->type == EE_GGUF_I8 && kv->i == -100);
    kv = ee_gguf_find_kv(g, "v.u16"); ck_assert(kv && kv->type == EE_GGUF_U16 && kv->u == 60000);
    kv = ee_gguf_find_kv(g, "v.i16"); ck_assert(kv && kv->type == EE_GGUF_I16 && kv->i == -30000);
    kv = ee_gguf_find_kv(g, "v.u32"); ck_assert(kv && kv->type == EE_GGUF_U32 && kv->u == 4000000000u);
    kv = ee_gguf_find_kv(g, "v.i32"); ck_assert(kv && kv->type == EE_GGUF_I32 && kv->i == -2000000000);
    kv = ee_gguf_find_kv(g, "v.f32"); ck_assert(kv && kv->type == EE_GGUF_F32 && kv->f == 3.25);
    kv = ee_gguf_find_kv(g, "v.bool"); ck_assert(kv && kv->type == EE_GGUF_BOOL && kv->i == 1);
    kv = ee_gguf_find_kv(g, "v.u64"); ck_assert(kv && kv->type == EE_GGUF_U64 && kv->u == (1ull << 63) + 5);
    kv = ee_gguf_find_kv(g, "v.i64"); ck_assert(kv && kv->type == EE_GGUF_I64 && kv->i == -(1ll << 62) - 7);
    kv = ee_gguf_find_kv(g, "v.f64"); ck_assert(kv && kv->type == EE_GGUF_F64 && kv->f == -1.0 / 3);

    struct { const char *key; ee_gguf_vtype t; const void *want; size_t bytes; } arrs[] = {
        {"a.u8", EE_GGUF_U8, a_u8, sizeof a_u8},     {"a.i8", EE_GGUF_I8, a_i8, sizeof a_i8},
        {"a.u16", EE_GGUF_U16, a_u16, sizeof a_u16}, {"a.i16", EE_GGUF_I16, a_i16, sizeof a_i16},
        {"a.u32", EE_GGUF_U32, a_u32, sizeof a_u32}, {"a.i32", EE_GGUF_I32, a_i32, sizeof a_i32},
        {"a.f32", EE_GGUF_F32, a_f32, sizeof a_f32}, {"a.bool", EE_GGUF_BOOL, a_bool, sizeof a_bool},
        {"a.u64", EE_GGUF_U64, a_u64, sizeof a_u64}, {"a.i64", EE_GGUF_I64, a_i64, sizeof a_i64},
        {"a.f64", EE_GGUF_F64, a_f64, sizeof a_f64},
    };
    for (size_t i = 0; i < sizeof arrs / sizeof arrs[0]; i++) {
        kv = ee_gguf_get_arr(g, arrs[i].key, arrs[i].t, &err);
        ck_assert_msg(kv != NULL, "%s", err.msg);
        ck_assert_uint_eq(kv->n, 3);
        ck_assert_msg(memcmp(kv->arr, arrs[i].want, arrs[i].bytes) == 0, "%s differs", arrs[i].key);
    }
    kv = ee_gguf_get_arr(g, "a.str", EE_GGUF_STRING, &err);
    ck_assert_msg(kv != NULL, "%s", err.msg);
    ck_assert_uint_eq(kv->n, 4);
    for (int i = 0; i < 4; i++) {
        ck_assert_str_eq(kv->strs[i], a_str[i]);
        ck_assert_uint_eq(kv->str_lens[i], strlen(a_str[i]));
    }
    kv = ee_gguf_get_arr(g, "a.empty", EE_GGUF_U32, &err);
    ck_assert(kv && kv->n == 0);
    kv = ee_gguf_get_arr(g, "a.empty_str", EE_GGUF_STRING, &err);
    ck_assert(kv && kv->n == 0);

    ck_assert_uint_eq(ee_gguf_n_tensors(g), N_SAMPLE_TENSORS);
    uint64_t prev_end = 0;
    for (size_t i = 0; i < N_SAMPLE_TENSORS; i++) {
        const sample_tensor *s = &k_tensors[i];
        const ee_gguf_tensor *t = ee_gguf_tensor_at(g, i);
        ck_assert_ptr_eq(t, ee_gguf_find_tensor(g, s->name));
        ck_assert_str_eq(t->name, s->name);
        ck_assert_int_eq(t->type, s->type);
        ck_assert_uint_eq(t->n_dims, s->n_dims);
        uint64_t nel = 1;
        for (int d = 0; d < 4; d++) {
            ck_assert_uint_eq(t->ne[d], (uint32_t)d < s->n_dims ? s->ne[d] : 1);
            nel *= t->ne[d];
        }
        ck_assert_uint_eq(ee_gguf_tensor_nelements(t), nel);
        ck_assert_uint_eq(t->nbytes, sample_nbytes(s));
        ck_assert_uint_eq(t->offset % ee_gguf_alignment(g), 0);
        ck_assert_uint_ge(t->offset, prev_end);
        prev_end = t->offset + t->nbytes;
        ck_assert(memcmp(t->data, sample_data[i], t->nbytes) == 0);
    }
    ck_assert_ptr_null(ee_gguf_find_tensor(g, "missing"));
    ck_assert_ptr_null(ee_gguf_tensor_at(g, N_SAMPLE_TENSORS));
    ck_assert_ptr_null(ee_gguf_kv_at(g, ee_gguf_n_kv(g)));
    /* The file ends padded to the alignment. */
    ck_assert_uint_eq(ee_gguf_file_size(g) % ee_gguf_alignment(g), 0);
}

START_TEST(test_roundtrip) {
    mk_tmpdir();
    rng_state = 1;
    uint32_t aligns[] = {0, 64, 8};
    for (size_t a = 0; a < 3; a++) {
        ee_err err = {{0}};
        ee_gguf_writer *w = sample_writer(aligns[a]);
        const char *path = tpath("rt.gguf");
        ck_assert_msg(ee_gguf_writer_write(w, path, &err) == 0, "%s", err.msg);
        ee_gguf_writer_free(w);
        ck_assert(!exists(tpath("rt.gguf.tmp")));
        ee_gguf *g = ee_gguf_open(path, &err);
        ck_assert_msg(g != NULL, "%s", err.msg);
        ck_assert_str_eq(ee_gguf_path(g), path);
        check_sample_contents(g, aligns[a]);
        compare_with_python(path, g);

        /* The same bytes through the buffer API. */
        size_t n;
        uint8_t *buf = slurp(path, &n);
        ee_gguf *gb = ee_gguf_open_buffer(buf, n, &err);
        ck_assert_msg(gb != NULL, "%s", err.msg);
        ck_assert_str_eq(ee_gguf_path(gb), "");
        check_sample_contents(gb, aligns[a]);
        char *d1 = dump_c(g), *d2 = dump_c(gb);
        ck_assert_str_eq(d1, d2);
        free(d1);
        free(d2);
        ee_gguf_close(gb);
        free(buf);
        ee_gguf_close(g);
    }
    sample_data_free();
    rm_tmpdir();
}
END_TEST

/* copy_kv + borrowed tensor data from a reader reproduce the same file. */
START_TEST(test_copy_roundtrip) {
    mk_tmpdir();
    rng_state = 2;
    size_t n;
    uint8_t *orig = sample_file("a.gguf", 64, &n);
    ee_err err = {{0}};
    ee_gguf *g = ee_gguf_open(tpath("a.gguf"), &err);
    ck_assert_msg(g != NULL, "%s", err.msg);
    ee_gguf_writer *w = ee_gguf_writer_new(&err);
    for (uint64_t i = 0; i < ee_gguf_n_kv(g); i++)
        ck_assert_msg(ee_gguf_writer_copy_kv(w, ee_gguf_kv_at(g, i), &err) == 0, "%s", err.msg);
    for (uint64_t i = 0; i < ee_gguf_n_tensors(g); i++) {
        const ee_gguf_tensor *t = ee_gguf_tensor_at(g, i);
        ck_assert_msg(ee_gguf_writer_add_tensor(w, t->name, t->n_dims, t->ne, t->type, t->data,
                                                false, &err) == 0, "%s", err.msg);
    }
    ck_assert_msg(ee_gguf_writer_write(w, tpath("b.gguf"), &err) == 0, "%s", err.msg);
    ee_gguf_writer_free(w);
    ee_gguf_close(g);
    size_t n2;
    uint8_t *copy = slurp(tpath("b.gguf"), &n2);
    ck_assert_uint_eq(n, n2);
    ck_assert(memcmp(orig, copy, n) == 0);
    free(orig);
    free(copy);
    sample_data_free();
    rm_tmpdir();
}
END_TEST

/* A file with metadata only (no tensors). */
START_TEST(test_no_tensors) {
    mk_tmpdir();
    ee_err err = {{0}};
    ee_gguf_writer *w = ee_gguf_writer_new(&err);
    ck_assert_int_eq(ee_gguf_writer_set_str(w, "general.architecture", "llama", &err), 0);
    ck_assert_int_eq(ee_gguf_writer_write(w, tpath("k.gguf"), &err), 0);
    ee_gguf_writer_free(w);
    ee_gguf *g = ee_gguf_open(tpath("k.gguf"), &err);
    ck_assert_msg(g != NULL, "%s", err.msg);
    ck_assert_uint_eq(ee_gguf_n_tensors(g), 0);
    ck_assert_uint_eq(ee_gguf_n_kv(g), 1);
    compare_with_python(tpath("k.gguf"), g);
    ee_gguf_close(g);
    /* And an empty writer: header only. */
    w = ee_gguf_writer_new(&err);
    ck_assert_int_eq(ee_gguf_writer_write(w, tpath("e.gguf"), &err), 0);
    ee_gguf_writer_free(w);
    g = ee_gguf_open(tpath("e.gguf"), &err);
    ck_assert_msg(g != NULL, "%s", err.msg);
    ck_assert_uint_eq(ee_gguf_n_kv(g) + ee_gguf_n_tensors(g), 0);
    ee_gguf_close(g);
    rm_tmpdir();
}
END_TEST

/* A file written by Python's GGUFWriter (independent implementation). */
static const char *PY_WRITE =
    "import sys, numpy as np, gguf\n"
    "from gguf import GGUFValueType as VT, GGMLQuantizationType as T\n"
    "from gguf.quants import quantize\n"
    "w = gguf.GGUFWriter(sys.argv[1], 'llama')\n"
    "w.add_custom_alignment(int(sys.argv[2]))\n"
    "w.add_uint8('p.u8', 7); w.add_int8('p.i8', -7); w.add_uint16('p.u16', 65535)\n"
    "w.add_int16('p.i16', -2); w.add_uint32('p.u32', 123456); w.add_int32('p.i32', -123456)\n"
    "w.add_float32('p.f32', 0.1); w.add_bool('p.bool', True); w.add_string('p.str', 'hi \\u00e9')\n"
    "w.add_uint64('p.u64', 2**64 - 1); w.add_int64('p.i64', -2**63); w.add_float64('p.f64', 2.5e-300)\n"
    "w.add_array('p.arr_i32', [1, -2, 3]); w.add_array('p.arr_str', ['x', 'yy', ''])\n"
    "w.add_key_value('p.arr_f32', [0.5, 1.5], VT.ARRAY, sub_type=VT.FLOAT32)\n"
    "w.add_key_value('p.arr_bool', [True, False], VT.ARRAY, sub_type=VT.BOOL)\n"
    "rng = np.random.default_rng(5)\n"
    "w.add_tensor('w.f32', rng.standard_normal((3, 7)).astype(np.float32))\n"
    "w.add_tensor('w.f16', rng.standard_normal((2, 5)).astype(np.float16))\n"
    "for name, qt in [('w.q8_0', T.Q8_0), ('w.q4_0', T.Q4_0), ('w.q4_1', T.Q4_1), ('w.bf16', T.BF16)]:\n"
    "    x = rng.standard_normal((4, 64)).astype(np.float32)\n"
    "    w.add_tensor(name, quantize(x, qt), raw_dtype=qt)\n"
    "w.add_tensor('w.q6_k', rng.integers(0, 255, (1, 210), dtype=np.uint8), raw_dtype=T.Q6_K)\n"
    "w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()\n";

START_TEST(test_read_python_written) {
    mk_tmpdir();
    const char *aligns[] = {"32", "128"};
    for (int a = 0; a < 2; a++) {
        char args[300];
        snprintf(args, sizeof args, "'%s' %s", tpath("py.gguf"), aligns[a]);
        run_py(PY_WRITE, args);
        ee_err err = {{0}};
        ee_gguf *g = ee_gguf_open(tpath("py.gguf"), &err);
        ck_assert_msg(g != NULL, "%s", err.msg);
        ck_assert_uint_eq(ee_gguf_alignment(g), (uint64_t)atoi(aligns[a]));
        ck_assert_uint_eq(ee_gguf_n_tensors(g), 7);
        const ee_gguf_tensor *t = ee_gguf_find_tensor(g, "w.q4_1");
        ck_assert(t && t->type == EE_DT_Q4_1 && t->ne[0] == 64 && t->ne[1] == 4);
        t = ee_gguf_find_tensor(g, "w.f32");
        ck_assert(t && t->type == EE_DT_F32 && t->ne[0] == 7 && t->ne[1] == 3);
        uint32_t u32;
        ck_assert_int_eq(ee_gguf_get_u32(g, "p.u32", &u32, &err), 0);
        ck_assert_uint_eq(u32, 123456);
        ck_assert_str_eq(ee_gguf_get_str(g, "p.str", &err), "hi \xc3\xa9");
        compare_with_python(tpath("py.gguf"), g);
        ee_gguf_close(g);
    }
    rm_tmpdir();
}
END_TEST

/* ---- typed getters -------------------------------------------------------- */

START_TEST(test_getters) {
    mk_tmpdir();
    rng_state = 3;
    size_t n;
    uint8_t *buf = sample_file("g.gguf", 0, &n);
    ee_err err = {{0}};
    ee_gguf *g = ee_gguf_open_buffer(buf, n, &err);
    ck_assert_msg(g != NULL, "%s", err.msg);
    uint32_t u32;
    int32_t i32;
    float f;
    bool b;
    ck_assert_int_eq(ee_gguf_get_u32(g, "v.u32", &u32, &err), 0);
    ck_assert_uint_eq(u32, 4000000000u);
    ck_assert_int_eq(ee_gguf_get_u32(g, "v.u8", &u32, &err), 0);     /* widening */
    ck_assert_uint_eq(u32, 200);
    ck_assert_int_eq(ee_gguf_get_u32(g, "v.u16", &u32, &err), 0);
    ck_assert_uint_eq(u32, 60000);
    ck_assert_int_eq(ee_gguf_get_u32(g, "v.i8", &u32, &err), -1);    /* negative */
    ck_assert_ptr_nonnull(strstr(err.msg, "v.i8"));
    ck_assert_int_eq(ee_gguf_get_u32(g, "v.u64", &u32, &err), -1);   /* too big */
    ck_assert_ptr_nonnull(strstr(err.msg, "does not fit"));
    ck_assert_int_eq(ee_gguf_get_i32(g, "v.i32", &i32, &err), 0);
    ck_assert_int_eq(i32, -2000000000);
    ck_assert_int_eq(ee_gguf_get_i32(g, "v.i16", &i32, &err), 0);
    ck_assert_int_eq(i32, -30000);
    ck_assert_int_eq(ee_gguf_get_i32(g, "v.u32", &i32, &err), -1);   /* > INT32_MAX */
    ck_assert_int_eq(ee_gguf_get_i32(g, "v.i64", &i32, &err), -1);
    ck_assert_int_eq(ee_gguf_get_i32(g, "v.f32", &i32, &err), -1);   /* not an integer */
    ck_assert_ptr_nonnull(strstr(err.msg, "f32"));
    ck_assert_int_eq(ee_gguf_get_u32(g, "v.bool", &u32, &err), -1);  /* bool is not an integer */
    ck_assert_int_eq(ee_gguf_get_f32(g, "v.f32", &f, &err), 0);
    ck_assert(f == 3.25f);
    ck_assert_int_eq(ee_gguf_get_f32(g, "v.f64", &f, &err), 0);
    ck_assert(f == (float)(-1.0 / 3));
    ck_assert_int_eq(ee_gguf_get_f32(g, "v.u16", &f, &err), 0);
    ck_assert(f == 60000.0f);
    ck_assert_int_eq(ee_gguf_get_f32(g, "general.name", &f, &err), -1);
    ck_assert_int_eq(ee_gguf_get_bool(g, "v.bool", &b, &err), 0);
    ck_assert(b);
    ck_assert_int_eq(ee_gguf_get_bool(g, "v.false", &b, &err), 0);
    ck_assert(!b);
    ck_assert_int_eq(ee_gguf_get_bool(g, "v.u8", &b, &err), -1);
    ck_assert_ptr_null(ee_gguf_get_str(g, "v.u8", &err));
    ck_assert_ptr_nonnull(strstr(err.msg, "'v.u8'"));
    ck_assert_ptr_nonnull(strstr(err.msg, "expected string"));
    ck_assert_ptr_null(ee_gguf_get_str(g, "no.such.key", &err));
    ck_assert_ptr_nonnull(strstr(err.msg, "no.such.key"));
    ck_assert_ptr_nonnull(strstr(err.msg, "not found"));
    ck_assert_int_eq(ee_gguf_get_u32(g, "no.such.key", &u32, NULL), -1); /* NULL err ok */
    ck_assert_ptr_null(ee_gguf_get_arr(g, "a.u32", EE_GGUF_I32, &err));
    ck_assert_ptr_nonnull(strstr(err.msg, "array of u32"));
    ck_assert_ptr_null(ee_gguf_get_arr(g, "v.u32", EE_GGUF_U32, &err));
    ck_assert_ptr_null(ee_gguf_get_str(g, "a.str", &err));
    ee_gguf_close(g);
    free(buf);
    sample_data_free();
    rm_tmpdir();
}
END_TEST

/* ---- writer argument checks and failure paths ----------------------------- */

START_TEST(test_writer_rejects) {
    ee_err err = {{0}};
    ee_gguf_writer *w = ee_gguf_writer_new(&err);
    float data[64] = {0};
    uint64_t ne[4] = {32, 2, 1, 1};
    ck_assert_int_eq(ee_gguf_writer_add_tensor(w, "x", 0, ne, EE_DT_F32, data, true, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "n_dims"));
    ck_assert_int_eq(ee_gguf_writer_add_tensor(w, "x", 5, ne, EE_DT_F32, data, true, &err), -1);
    uint64_t bad0[2] = {0, 1};
    ck_assert_int_eq(ee_gguf_writer_add_tensor(w, "x", 2, bad0, EE_DT_F32, data, true, &err), -1);
    uint64_t bad1[1] = {33};
    ck_assert_int_eq(ee_gguf_writer_add_tensor(w, "x", 1, bad1, EE_DT_Q8_0, data, true, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "multiple"));
    uint64_t huge[4] = {1ull << 32, 1ull << 32, 1, 1};
    ck_assert_int_eq(ee_gguf_writer_add_tensor(w, "x", 2, huge, EE_DT_F32, data, false, &err), -1);
    ck_assert_int_eq(ee_gguf_writer_add_tensor(w, "x", 1, ne, (ee_dtype)7, data, true, &err), -1);
    ck_assert_int_eq(ee_gguf_writer_add_tensor(w, "", 1, ne, EE_DT_F32, data, true, &err), -1);
    char longname[80];
    memset(longname, 'n', 64);
    longname[64] = '\0';
    ck_assert_int_eq(ee_gguf_writer_add_tensor(w, longname, 1, ne, EE_DT_F32, data, true, &err), -1);
    longname[63] = '\0';
    ck_assert_int_eq(ee_gguf_writer_add_tensor(w, longname, 1, ne, EE_DT_F32, data, true, &err), 0);
    ck_assert_int_eq(ee_gguf_writer_add_tensor(w, "x", 2, ne, EE_DT_F32, data, true, &err), 0);
    ck_assert_int_eq(ee_gguf_writer_add_tensor(w, "x", 2, ne, EE_DT_F32, data, true, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "twice"));
    ck_assert_int_eq(ee_gguf_writer_add_tensor(w, "y", 1, ne, EE_DT_F32, NULL, true, &err), -1);
    uint8_t two = 2;
    ck_assert_int_eq(ee_gguf_writer_set_scalar(w, "b", EE_GGUF_BOOL, &two, &err), -1);
    ck_assert_int_eq(ee_gguf_writer_set_arr(w, "b", EE_GGUF_BOOL, &two, 1, &err), -1);
    ck_assert_int_eq(ee_gguf_writer_set_scalar(w, "b", EE_GGUF_STRING, &two, &err), -1);
    ck_assert_int_eq(ee_gguf_writer_set_arr(w, "b", EE_GGUF_ARRAY, &two, 1, &err), -1);
    ck_assert_int_eq(ee_gguf_writer_set_arr(w, "b", EE_GGUF_STRING, &two, 1, &err), -1);
    ck_assert_int_eq(ee_gguf_writer_set_u32(w, "", 1, &err), -1);
    ck_assert_int_eq(ee_gguf_writer_set_u32(w, NULL, 1, &err), -1);
    ck_assert_int_eq(ee_gguf_writer_set_str(w, "s", NULL, &err), -1);
    const char *strs[] = {"a", NULL};
    ck_assert_int_eq(ee_gguf_writer_set_str_arr(w, "s", strs, 2, &err), -1);
    ee_gguf_writer_free(w);
    ee_gguf_writer_free(NULL);
}
END_TEST

static void check_no_output(const char *path) {
    char tmp[300];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    ck_assert_msg(!exists(tmp), "%s left behind", tmp);
}

START_TEST(test_writer_failures) {
    mk_tmpdir();
    rng_state = 4;
    ee_err err = {{0}};

    /* Directory does not exist. */
    ee_gguf_writer *w = sample_writer(0);
    const char *p = tpath("no/such/dir/x.gguf");
    ck_assert_int_eq(ee_gguf_writer_write(w, p, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "x.gguf.tmp"));
    ck_assert(!exists(p));
    check_no_output(p);

    /* Read-only directory (only meaningful when not root: root ignores modes). */
    if (geteuid() != 0) {
        const char *ro = tpath("ro");
        ck_assert_int_eq(mkdir(ro, 0555), 0);
        p = tpath("ro/x.gguf");
        ck_assert_int_eq(ee_gguf_writer_write(w, p, &err), -1);
        ck_assert(!exists(p));
        check_no_output(p);
    }

    /* Bad alignment: rejected before any file is created. */
    /* (a separate small writer: sample_writer would replace the data `w` borrows) */
    ee_gguf_writer *wa = ee_gguf_writer_new(&err);
    float one[32] = {1};
    ck_assert_int_eq(ee_gguf_writer_add_tensor(wa, "x", 1, (uint64_t[]){32}, EE_DT_F32, one, true, &err), 0);
    ck_assert_int_eq(ee_gguf_writer_set_u32(wa, "general.alignment", 48, &err), 0);
    p = tpath("align.gguf");
    ck_assert_int_eq(ee_gguf_writer_write(wa, p, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "alignment"));
    ck_assert(!exists(p));
    check_no_output(p);
    uint32_t zero = 0;
    ck_assert_int_eq(ee_gguf_writer_set_scalar(wa, "general.alignment", EE_GGUF_U32, &zero, &err), 0);
    ck_assert_int_eq(ee_gguf_writer_write(wa, p, &err), -1);
    ck_assert_int_eq(ee_gguf_writer_set_i32(wa, "general.alignment", 32, &err), 0);
    ck_assert_int_eq(ee_gguf_writer_write(wa, p, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "u32"));
    ck_assert(!exists(p));
    check_no_output(p);
    ee_gguf_writer_free(wa);

    /* PATH is a directory: the rename fails, PATH.tmp must be gone. */
    p = tpath("isdir.gguf");
    ck_assert_int_eq(mkdir(p, 0755), 0);
    ck_assert_int_eq(ee_gguf_writer_write(w, p, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "rename"));
    check_no_output(p);

    /* A stale PATH.tmp from a crashed writer is replaced; success removes it. */
    p = tpath("stale.gguf");
    ee_test_write_file(tpath("stale.gguf.tmp"), "junk", 4);
    ee_test_write_file(p, "old", 3);
    ck_assert_msg(ee_gguf_writer_write(w, p, &err) == 0, "%s", err.msg);
    check_no_output(p);
    ee_gguf *g = ee_gguf_open(p, &err);
    ck_assert_msg(g != NULL, "%s", err.msg);
    ee_gguf_close(g);

    /* Failure in the middle of writing (file size limit): the old PATH is
     * untouched and no PATH.tmp remains. Check runs each test in its own
     * process, and the limit is restored anyway. */
    p = tpath("big.gguf");
    ee_test_write_file(p, "old", 3);
    struct rlimit old, lim;
    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    lim = old;
    lim.rlim_cur = 1000; /* inside the metadata */
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    int rc = ee_gguf_writer_write(w, p, &err);
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, prev);
    ck_assert_int_eq(rc, -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "write"));
    check_no_output(p);
    size_t n;
    uint8_t *b = slurp(p, &n);
    ck_assert(n == 3 && memcmp(b, "old", 3) == 0);
    free(b);

    /* Empty path. */
    ck_assert_int_eq(ee_gguf_writer_write(w, "", &err), -1);
    ee_gguf_writer_free(w);
    sample_data_free();
    rm_tmpdir();
}
END_TEST

/* ---- reader failure modes -------------------------------------------------- */

/* Opens an exact-size heap copy of buf[0..n) so ASan sees any overread. */
static ee_gguf *open_copy(const uint8_t *buf, size_t n, ee_err *err) {
    uint8_t *c = malloc(n ? n : 1);
    memcpy(c, buf, n);
    ee_gguf *g = ee_gguf_open_buffer(c, n, err);
    if (g) {
        /* touch everything the handle exposes */
        volatile uint64_t sink = 0;
        for (uint64_t i = 0; i < ee_gguf_n_kv(g); i++) {
            const ee_gguf_kv *kv = ee_gguf_kv_at(g, i);
            sink += strlen(kv->key);
            if (kv->type == EE_GGUF_ARRAY && kv->arr_type == EE_GGUF_STRING)
                for (uint64_t j = 0; j < kv->n; j++) sink += kv->str_lens[j] + (uint8_t)kv->strs[j][0];
            else if (kv->type == EE_GGUF_ARRAY && kv->n)
                sink += ((const uint8_t *)kv->arr)[kv->n * ee_gguf_vtype_size(kv->arr_type) - 1];
            else if (kv->type == EE_GGUF_STRING)
                sink += kv->str_len + (uint8_t)kv->str[0];
        }
        for (uint64_t i = 0; i < ee_gguf_n_tensors(g); i++) {
            const ee_gguf_tensor *t = ee_gguf_tensor_at(g, i);
            const uint8_t *d = t->data;
            sink += d[0] + d[t->nbytes - 1] + strlen(t->name);
            ck_assert_ptr_eq(ee_gguf_find_tensor(g, t->name), t);
        }
        (void)sink;
        ee_gguf_close(g);
        g = (ee_gguf *)1; /* "opened"; the handle is already closed */
    }
    free(c);
    return g;
}

static void expect_fail(const uint8_t *buf, size_t n, const char *needle, const char *what) {
    ee_err err = {{0}};
    ee_gguf *g = open_copy(buf, n, &err);
    REQUIRE(g == NULL, "%s: expected failure, file was accepted", what);
    REQUIRE(strncmp(err.msg, "GGUF", 4) == 0, "%s: message '%s' does not start with GGUF", what, err.msg);
    REQUIRE(!needle || strstr(err.msg, needle), "%s: message '%s' does not mention '%s'", what,
            err.msg, needle);
}

/* Walks a valid file (ours) and records where each field is, so the
 * mutation test can aim at every header field. */
enum fkind { F_MAGIC, F_VERSION, F_NTENS, F_NKV, F_KEYLEN, F_VTYPE, F_ETYPE, F_COUNT,
             F_STRLEN, F_BOOL, F_TNAMELEN, F_NDIMS, F_NE, F_TTYPE, F_TOFF, F_ALIGNVAL, F_NKINDS };
static const char *const fkind_names[] = {"magic", "version", "n_tensors", "n_kv", "key length",
    "value type", "array type", "array count", "string length", "bool", "tensor name length",
    "n_dims", "ne", "tensor type", "tensor offset", "alignment value"};
typedef struct field { size_t pos; enum fkind kind; int width; } field;

static size_t walk(const uint8_t *b, field *out, size_t max) {
    size_t n = 0, pos = 0;
#define ADD(k, w) do { if (n < max) out[n++] = (field){pos, (k), (w)}; pos += (w); } while (0)
    uint64_t nt, nkv, len;
    uint32_t t;
    ADD(F_MAGIC, 4);
    ADD(F_VERSION, 4);
    memcpy(&nt, b + pos, 8); ADD(F_NTENS, 8);
    memcpy(&nkv, b + pos, 8); ADD(F_NKV, 8);
    for (uint64_t i = 0; i < nkv; i++) {
        memcpy(&len, b + pos, 8);
        bool is_align = len == 17 && memcmp(b + pos + 8, "general.alignment", 17) == 0;
        ADD(F_KEYLEN, 8);
        pos += len;
        memcpy(&t, b + pos, 4); ADD(F_VTYPE, 4);
        if (t == EE_GGUF_ARRAY) {
            uint32_t et;
            memcpy(&et, b + pos, 4); ADD(F_ETYPE, 4);
            uint64_t cnt;
            memcpy(&cnt, b + pos, 8); ADD(F_COUNT, 8);
            for (uint64_t j = 0; j < cnt; j++) {
                if (et == EE_GGUF_STRING) { memcpy(&len, b + pos, 8); ADD(F_STRLEN, 8); pos += len; }
                else if (et == EE_GGUF_BOOL) ADD(F_BOOL, 1);
                else pos += ee_gguf_vtype_size(et);
            }
        } else if (t == EE_GGUF_STRING) {
            memcpy(&len, b + pos, 8); ADD(F_STRLEN, 8); pos += len;
        } else if (t == EE_GGUF_BOOL) {
            ADD(F_BOOL, 1);
        } else if (is_align) {
            ADD(F_ALIGNVAL, 4);
        } else {
            pos += ee_gguf_vtype_size(t);
        }
    }
    for (uint64_t i = 0; i < nt; i++) {
        memcpy(&len, b + pos, 8); ADD(F_TNAMELEN, 8); pos += len;
        uint32_t nd;
        memcpy(&nd, b + pos, 4); ADD(F_NDIMS, 4);
        for (uint32_t d = 0; d < nd; d++) ADD(F_NE, 8);
        ADD(F_TTYPE, 4);
        ADD(F_TOFF, 8);
    }
#undef ADD
    return n;
}

static void put_le(uint8_t *b, int width, uint64_t v) { memcpy(b, &v, (size_t)width); }
static uint64_t get_le(const uint8_t *b, int width) {
    uint64_t v = 0;
    memcpy(&v, b, (size_t)width);
    return v;
}

START_TEST(test_truncation) {
    mk_tmpdir();
    rng_state = 5;
    size_t n;
    uint8_t *buf = sample_file("t.gguf", 0, &n);
    ee_err err = {{0}};
    ee_gguf *g = ee_gguf_open_buffer(buf, n, &err);
    ck_assert_msg(g != NULL, "%s", err.msg);
    uint64_t data_end = 0, data_off = ee_gguf_data_offset(g);
    for (uint64_t i = 0; i < ee_gguf_n_tensors(g); i++) {
        const ee_gguf_tensor *t = ee_gguf_tensor_at(g, i);
        if (t->offset + t->nbytes > data_end) data_end = t->offset + t->nbytes;
    }
    ee_gguf_close(g);
    data_end += data_off;
    ck_assert_uint_le(data_end, n);
    /* Every cut before the end of the last tensor's bytes must fail: the
     * header/metadata region byte by byte, and the data region too. */
    for (size_t len = 0; len < data_end; len++) {
        char what[64];
        snprintf(what, sizeof what, "truncated to %zu of %zu bytes", len, n);
        expect_fail(buf, len, NULL, what);
        if (len < 24) expect_fail(buf, len, "header", what);
    }
    /* Cutting only trailing padding leaves a complete file. */
    for (size_t len = data_end; len <= n; len++) {
        ee_gguf *ok = open_copy(buf, len, &err);
        REQUIRE(ok != NULL, "cut at %zu (after the last tensor) rejected: %s", len, err.msg);
    }
    /* A few cuts through ee_gguf_open on real files, incl. an empty file. */
    size_t cuts[] = {0, 3, 8, 23, 24, 100, (size_t)data_off - 1, (size_t)data_off + 5, (size_t)data_end - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        const char *p = tpath("cut.gguf");
        ee_test_write_file(p, buf, cuts[i]);
        ee_gguf *c = ee_gguf_open(p, &err);
        ck_assert_msg(c == NULL, "cut %zu accepted", cuts[i]);
        ck_assert_msg(strstr(err.msg, p) && strstr(err.msg, "GGUF"), "message: %s", err.msg);
        ck_assert_msg(strstr(err.msg, "truncated") || strstr(err.msg, "impossible") ||
                      strstr(err.msg, "past the end"), "cut %zu: message: %s", cuts[i], err.msg);
    }
    /* Not a file / missing file. */
    ck_assert_ptr_null(ee_gguf_open(tmpdir, &err));
    ck_assert_ptr_nonnull(strstr(err.msg, "not a regular file"));
    ck_assert_ptr_null(ee_gguf_open(tpath("missing.gguf"), &err));
    ck_assert_ptr_nonnull(strstr(err.msg, "missing.gguf"));
    ck_assert_ptr_null(ee_gguf_open_buffer(NULL, 10, &err));
    free(buf);
    sample_data_free();
    rm_tmpdir();
}
END_TEST

START_TEST(test_field_mutations) {
    mk_tmpdir();
    rng_state = 6;
    size_t n;
    uint8_t *orig = sample_file("m.gguf", 64, &n);
    uint8_t *b = malloc(n);
    field fields[512];
    size_t nf = walk(orig, fields, 512);
    ck_assert_uint_lt(nf, 512);
    int seen[F_NKINDS] = {0};

    /* 1. Generic mutations of every field: never crash; if rejected, a GGUF
     *    message. */
    for (size_t i = 0; i < nf; i++) {
        const field *f = &fields[i];
        seen[f->kind]++;
        uint64_t v0 = get_le(orig + f->pos, f->width);
        uint64_t mask = f->width == 8 ? UINT64_MAX : (1ull << (8 * f->width)) - 1;
        uint64_t vals[] = {0, 1, 2, 3, 4, 5, 9, 12, 13, 30, 31, 64, 255, v0 + 1, v0 - 1, v0 * 2,
                           v0 + 32, v0 + 64, v0 ^ 0x80, mask, mask / 2, mask / 2 + 1, 1ull << 31,
                           1ull << 40, 1ull << 62, n, n - f->pos, n - f->pos - f->width};
        for (size_t k = 0; k < sizeof vals / sizeof vals[0]; k++) {
            memcpy(b, orig, n);
            put_le(b + f->pos, f->width, vals[k] & mask);
            ee_err err = {{0}};
            ee_gguf *g = open_copy(b, n, &err);
            REQUIRE(g != NULL || strncmp(err.msg, "GGUF", 4) == 0, "%s at %zu = %" PRIu64 ": bad message '%s'",
                    fkind_names[f->kind], f->pos, vals[k] & mask, err.msg);
        }
    }
    for (int k = 0; k < F_NKINDS; k++) ck_assert_msg(seen[k] > 0, "no %s field in the sample", fkind_names[k]);

    /* 2. Mutations that must be rejected, with the field named. */
    struct { enum fkind kind; uint64_t v; const char *needle; } must[] = {
        {F_VERSION, 1, "version 1"}, {F_VERSION, 0, "version"}, {F_VERSION, 4, "version"},
        {F_VERSION, 0x03000000, "byte-swapped"}, {F_VERSION, UINT32_MAX, "version"},
        {F_NTENS, UINT64_MAX, "n_tensors"}, {F_NTENS, 1ull << 40, "n_tensors"}, {F_NTENS, n, "n_tensors"},
        {F_NKV, UINT64_MAX, "n_kv"}, {F_NKV, 1ull << 40, "n_kv"}, {F_NKV, n, "n_kv"},
        {F_KEYLEN, UINT64_MAX, "key length"}, {F_KEYLEN, n, "key length"}, {F_KEYLEN, 0, "key is empty"},
        {F_VTYPE, 13, "value type 13"}, {F_VTYPE, UINT32_MAX, "value type"},
        {F_ETYPE, 9, "nested"}, {F_ETYPE, 13, "element type"}, {F_ETYPE, UINT32_MAX, "element type"},
        {F_COUNT, UINT64_MAX, "count"}, {F_COUNT, 1ull << 61, "count"}, {F_COUNT, n, "count"},
        {F_STRLEN, UINT64_MAX, "length"}, {F_STRLEN, n, "length"},
        {F_BOOL, 2, "bool"}, {F_BOOL, 255, "bool"},
        {F_TNAMELEN, UINT64_MAX, "name length"}, {F_TNAMELEN, 0, "name is empty"},
        {F_NDIMS, 0, "n_dims"}, {F_NDIMS, 5, "n_dims"}, {F_NDIMS, UINT32_MAX, "n_dims"},
        {F_NE, 0, "is 0"}, {F_NE, UINT64_MAX, NULL}, {F_NE, 1ull << 62, NULL}, {F_NE, 1ull << 40, NULL},
        {F_TTYPE, 4, "type 4"}, {F_TTYPE, 99, "type 99"}, {F_TTYPE, UINT32_MAX, "type"},
        {F_TOFF, UINT64_MAX - 63, "past the end"}, {F_TOFF, 1ull << 40, "past the end"},
        {F_ALIGNVAL, 0, "power of two"}, {F_ALIGNVAL, 3, "power of two"}, {F_ALIGNVAL, 48, "power of two"},
    };
    for (size_t m = 0; m < sizeof must / sizeof must[0]; m++) {
        for (size_t i = 0; i < nf; i++) {
            const field *f = &fields[i];
            if (f->kind != must[m].kind) continue;
            uint64_t mask = f->width == 8 ? UINT64_MAX : (1ull << (8 * f->width)) - 1;
            memcpy(b, orig, n);
            put_le(b + f->pos, f->width, must[m].v & mask);
            char what[128];
            snprintf(what, sizeof what, "%s at byte %zu set to %" PRIu64, fkind_names[f->kind], f->pos,
                     must[m].v & mask);
            expect_fail(b, n, must[m].needle, what);
        }
    }
    /* Magic: any byte changed. */
    for (int i = 0; i < 4; i++) {
        memcpy(b, orig, n);
        b[i] ^= 0x20;
        expect_fail(b, n, "magic", "magic byte");
    }
    /* Tensor offsets off the alignment, and onto another tensor's bytes. */
    size_t toff[N_SAMPLE_TENSORS], tt[N_SAMPLE_TENSORS], nt = 0, na = 0;
    for (size_t i = 0; i < nf; i++) if (fields[i].kind == F_TOFF) toff[nt++] = fields[i].pos;
    for (size_t i = 0; i < nf; i++) if (fields[i].kind == F_TTYPE) tt[na++] = fields[i].pos;
    ck_assert_uint_eq(nt, N_SAMPLE_TENSORS);
    for (size_t i = 0; i < nt; i++) {
        memcpy(b, orig, n);
        put_le(b + toff[i], 8, get_le(orig + toff[i], 8) + 1);
        expect_fail(b, n, "not a multiple of alignment 64", "offset + 1");
        memcpy(b, orig, n);
        put_le(b + toff[i], 8, get_le(orig + toff[i], 8) + 32);
        expect_fail(b, n, "alignment", "offset + 32");
    }
    memcpy(b, orig, n);
    put_le(b + toff[3], 8, get_le(orig + toff[2], 8));
    expect_fail(b, n, "overlaps", "offset onto another tensor");
    /* The f32 tensor (ne0 = 7) retyped as q8_0: ne0 not a block multiple. */
    memcpy(b, orig, n);
    put_le(b + tt[0], 4, EE_DT_Q8_0);
    expect_fail(b, n, "multiple of the q8_0 block size", "f32 -> q8_0");
    /* general.alignment stored as i32 instead of u32. */
    for (size_t i = 0; i < nf; i++) {
        if (fields[i].kind != F_ALIGNVAL) continue;
        memcpy(b, orig, n);
        put_le(b + fields[i].pos - 4, 4, EE_GGUF_I32);
        expect_fail(b, n, "must be u32", "alignment as i32");
    }
    /* Duplicate key and duplicate tensor name. */
    uint8_t *k = memmem(orig, n, "dup.k2", 6);
    ck_assert_ptr_nonnull(k);
    memcpy(b, orig, n);
    b[k - orig + 5] = '1';
    expect_fail(b, n, "duplicate key", "duplicate key");
    k = memmem(orig, n, "t.q4_1", 6);
    ck_assert_ptr_nonnull(k);
    memcpy(b, orig, n);
    b[k - orig + 5] = '0';
    expect_fail(b, n, "duplicate tensor name", "duplicate tensor");
    /* NUL inside a key. */
    memcpy(b, orig, n);
    b[k - orig + 1] = '\0';
    expect_fail(b, n, "NUL", "NUL in tensor name");

    /* Version 2 has the same layout and is accepted. */
    memcpy(b, orig, n);
    put_le(b + 4, 4, 2);
    ee_err err = {{0}};
    ee_gguf *g = ee_gguf_open_buffer(b, n, &err);
    ck_assert_msg(g != NULL, "v2: %s", err.msg);
    ck_assert_uint_eq(ee_gguf_version(g), 2);
    ee_gguf_close(g);

    /* The message names the field and its byte offset. */
    memcpy(b, orig, n);
    put_le(b + toff[5], 8, get_le(orig + toff[5], 8) + 8);
    g = ee_gguf_open_buffer(b, n, &err);
    ck_assert_ptr_null(g);
    char want[160];
    snprintf(want, sizeof want, "GGUF tensor 't.q4_1' (#5, info at byte ");
    ck_assert_msg(strncmp(err.msg, want, strlen(want)) == 0, "message: %s", err.msg);
    snprintf(want, sizeof want, "(at byte %zu) is not a multiple of alignment 64", toff[5]);
    ck_assert_msg(strstr(err.msg, want) != NULL, "message: %s", err.msg);

    free(b);
    free(orig);
    sample_data_free();
    rm_tmpdir();
}
END_TEST

/* Seeded random corruption: bytes flipped, interesting values planted,
 * files cut. Must never crash (ASan/UBSan) or accept garbage silently in a
 * way that would read out of bounds (open_copy touches every byte range). */
START_TEST(test_fuzz) {
    mk_tmpdir();
    rng_state = 7;
    size_t n;
    uint8_t *orig = sample_file("f.gguf", 0, &n);
    ee_err err = {{0}};
    ee_gguf *g = ee_gguf_open_buffer(orig, n, &err);
    ck_assert_ptr_nonnull(g);
    size_t meta = (size_t)ee_gguf_data_offset(g);
    ee_gguf_close(g);
    uint8_t *b = malloc(n);
    rng_state = 0x5eed;
    int accepted = 0, rejected = 0;
    static const uint64_t interesting[] = {0, 1, 0x7f, 0x80, 0xff, 0xffff, 0x7fffffff, 0x80000000u,
                                           0xffffffffu, 1ull << 32, 1ull << 63, UINT64_MAX};
    for (int it = 0; it < 4000; it++) {
        memcpy(b, orig, n);
        size_t len = n;
        int nmut = 1 + (int)(rnd() % 8);
        for (int m = 0; m < nmut; m++) {
            /* 85% of hits in the header/metadata, where parsing happens */
            size_t region = rnd() % 100 < 85 ? meta : n;
            size_t pos = (size_t)(rnd() % region);
            switch (rnd() % 4) {
            case 0: b[pos] ^= (uint8_t)(1u << (rnd() % 8)); break;
            case 1: b[pos] = (uint8_t)rnd(); break;
            case 2: {
                int w = (rnd() % 2) ? 4 : 8;
                if (pos + (size_t)w <= n) put_le(b + pos, w, interesting[rnd() % 12]);
                break;
            }
            case 3: b[pos] = 0; break;
            }
        }
        if (rnd() % 10 == 0) len = (size_t)(rnd() % n);
        ee_gguf *r = open_copy(b, len, &err);
        if (r) accepted++;
        else {
            rejected++;
            REQUIRE(strncmp(err.msg, "GGUF", 4) == 0 && strlen(err.msg) > 20,
                    "iteration %d: bad message '%s'", it, err.msg);
        }
    }
    ck_assert_int_gt(rejected, 1000); /* the fuzzer does reach the checks */
    ck_assert_int_gt(accepted, 0);    /* and harmless changes (data bytes) pass */
    free(b);
    free(orig);
    sample_data_free();
    rm_tmpdir();
}
END_TEST

Suite *suite_gguf(void) {
    Suite *s = suite_create("gguf");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_getters);
    tcase_add_test(tc, test_copy_roundtrip);
    tcase_add_test(tc, test_writer_rejects);
    tcase_add_test(tc, test_writer_failures);
    tcase_add_test(tc, test_truncation);
    tcase_add_test(tc, test_field_mutations);
    tcase_add_test(tc, test_fuzz);
    suite_add_tcase(s, tc);
    TCase *py = tcase_create("python");
    tcase_set_timeout(py, 300);
    tcase_add_test(py, test_roundtrip);
    tcase_add_test(py, test_no_tensors);
    tcase_add_test(py, test_read_python_written);
    suite_add_tcase(s, py);
    return s;
}
