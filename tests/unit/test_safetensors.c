/* Unit tests for the safetensors reader: files built here byte by byte.
 *
 * - A good file (F32, F16, BF16, I64, a scalar, an empty tensor, metadata)
 *   read from disk and from a buffer: shapes, offsets, values as f32.
 * - Every validation rule broken once, each error checked to name what is
 *   wrong (the tensor, the field).
 * - Every truncation and a seeded random-mutation loop over a good file
 *   (runs under ASan/UBSan, buffers malloc'd at their exact size): never a
 *   crash, always a clean accept or error. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ee_quant.h"
#include "ee_safetensors.h"
#include "ee_testmodel.h"

/* 8-byte LE length + header + data, malloc'd at its exact size. */
static uint8_t *build(const char *header, const void *data, size_t data_len, size_t *n) {
    size_t hn = strlen(header);
    *n = 8 + hn + data_len;
    uint8_t *b = malloc(*n ? *n : 1);
    ck_assert_ptr_nonnull(b);
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)((uint64_t)hn >> (8 * i));
    memcpy(b + 8, header, hn);
    if (data_len) memcpy(b + 8 + hn, data, data_len);
    return b;
}

/* Data of the good file: a [2,3] F32, a [4] F16, a [2] BF16, a [1,2] I64,
 * a scalar F32, an empty [0,5] F32. */
static const float A[6] = {1.0f, -2.5f, 3.25f, 0.0f, 1e-3f, -7.0f};
static const float B[4] = {0.5f, -1.0f, 65504.0f, 2.0f};
static const float C[2] = {1.5f, -3.0f};

static uint8_t good_data[24 + 8 + 4 + 16 + 4];
static const char *GOOD_HEADER =
    "{\"__metadata__\":{\"format\":\"pt\"},"
    "\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
    "\"b\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[24,32]},"
    "\"c\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[32,36]},"
    "\"ids\":{\"dtype\":\"I64\",\"shape\":[1,2],\"data_offsets\":[36,52]},"
    "\"empty\":{\"dtype\":\"F32\",\"shape\":[0,5],\"data_offsets\":[52,52]},"
    "\"s\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[52,56]}}  ";

static void fill_good_data(void) {
    memcpy(good_data, A, 24);
    for (int i = 0; i < 4; i++) {
        uint16_t h = ee_fp32_to_fp16(B[i]);
        memcpy(good_data + 24 + 2 * i, &h, 2);
    }
    for (int i = 0; i < 2; i++) {
        uint16_t h = ee_fp32_to_bf16(C[i]);
        memcpy(good_data + 32 + 2 * i, &h, 2);
    }
    int64_t ids[2] = {7, -1};
    memcpy(good_data + 36, ids, 16);
    float s = 42.0f;
    memcpy(good_data + 52, &s, 4);
}

static void check_good(ee_safetensors *st) {
    ee_err err = {{0}};
    ck_assert_uint_eq(ee_safetensors_n_tensors(st), 6);
    /* data order */
    const char *order[6] = {"a", "b", "c", "ids", "empty", "s"};
    for (size_t i = 0; i < 6; i++)
        ck_assert_str_eq(ee_safetensors_tensor_at(st, i)->name, order[i]);
    ck_assert_ptr_null(ee_safetensors_tensor_at(st, 6));
    ck_assert_ptr_null(ee_safetensors_find(st, "nope"));
    ck_assert_str_eq(ee_safetensors_meta(st, "format"), "pt");
    ck_assert_ptr_null(ee_safetensors_meta(st, "other"));

    const ee_st_tensor *a = ee_safetensors_find(st, "a");
    ck_assert_ptr_nonnull(a);
    ck_assert_int_eq(a->dtype, EE_ST_F32);
    ck_assert_uint_eq(a->n_dims, 2);
    ck_assert_uint_eq(a->shape[0], 2);
    ck_assert_uint_eq(a->shape[1], 3);
    ck_assert_uint_eq(a->n_elements, 6);
    ck_assert_uint_eq(a->nbytes, 24);
    float out[6];
    ck_assert_int_eq(ee_safetensors_read_f32(a, out, &err), 0);
    ck_assert_mem_eq(out, A, sizeof A);

    const ee_st_tensor *b = ee_safetensors_find(st, "b");
    ck_assert_int_eq(b->dtype, EE_ST_F16);
    ck_assert_int_eq(ee_safetensors_read_f32(b, out, &err), 0);
    for (int i = 0; i < 4; i++) ck_assert_float_eq(out[i], B[i]);

    const ee_st_tensor *c = ee_safetensors_find(st, "c");
    ck_assert_int_eq(c->dtype, EE_ST_BF16);
    ck_assert_int_eq(ee_safetensors_read_f32(c, out, &err), 0);
    for (int i = 0; i < 2; i++) ck_assert_float_eq(out[i], C[i]);

    const ee_st_tensor *ids = ee_safetensors_find(st, "ids");
    ck_assert_int_eq(ids->dtype, EE_ST_I64);
    ck_assert_int_eq(ee_safetensors_read_f32(ids, out, &err), -1);
    ck_assert_msg(strstr(err.msg, "'ids'") && strstr(err.msg, "I64"), "%s", err.msg);

    const ee_st_tensor *e = ee_safetensors_find(st, "empty");
    ck_assert_uint_eq(e->n_elements, 0);
    ck_assert_uint_eq(e->nbytes, 0);
    const ee_st_tensor *s = ee_safetensors_find(st, "s");
    ck_assert_uint_eq(s->n_dims, 0);
    ck_assert_uint_eq(s->n_elements, 1);
    ck_assert_int_eq(ee_safetensors_read_f32(s, out, &err), 0);
    ck_assert_float_eq(out[0], 42.0f);
}

START_TEST(test_good_file) {
    fill_good_data();
    size_t n;
    uint8_t *buf = build(GOOD_HEADER, good_data, sizeof good_data, &n);
    ee_err err = {{0}};
    ee_safetensors *st = ee_safetensors_open_buffer(buf, n, &err);
    ck_assert_msg(st != NULL, "%s", err.msg);
    check_good(st);
    ck_assert_str_eq(ee_safetensors_path(st), "");
    ee_safetensors_close(st);

    char *path = ee_test_tmpfile(".safetensors");
    ee_test_write_file(path, buf, n);
    st = ee_safetensors_open(path, &err);
    ck_assert_msg(st != NULL, "%s", err.msg);
    check_good(st);
    ck_assert_str_eq(ee_safetensors_path(st), path);
    ee_safetensors_close(st);
    unlink(path);
    free(path);
    free(buf);

    /* Smallest valid file: no tensors. */
    buf = build("{}", NULL, 0, &n);
    st = ee_safetensors_open_buffer(buf, n, &err);
    ck_assert_msg(st != NULL, "%s", err.msg);
    ck_assert_uint_eq(ee_safetensors_n_tensors(st), 0);
    ee_safetensors_close(st);
    free(buf);
}
END_TEST

/* header + data_len zero bytes must fail with a message containing want. */
static void expect_fail(const char *header, size_t data_len, const char *want) {
    uint8_t *data = calloc(data_len ? data_len : 1, 1);
    size_t n;
    uint8_t *buf = build(header, data, data_len, &n);
    ee_err err = {{0}};
    ee_safetensors *st = ee_safetensors_open_buffer(buf, n, &err);
    ck_assert_msg(st == NULL, "accepted: %s", header);
    ck_assert_msg(strstr(err.msg, want) != NULL, "header %s: error '%s' lacks '%s'", header,
                  err.msg, want);
    free(buf);
    free(data);
}

#define T1(fields) "{\"w\":{" fields "}}"

START_TEST(test_rejects) {
    ee_err err = {{0}};
    /* Too short for the length field. */
    uint8_t tiny[5] = {1, 0, 0, 0, 0};
    uint8_t *b5 = malloc(5);
    memcpy(b5, tiny, 5);
    ck_assert_ptr_null(ee_safetensors_open_buffer(b5, 5, &err));
    ck_assert_msg(strstr(err.msg, "shorter than the 8-byte"), "%s", err.msg);
    free(b5);
    ck_assert_ptr_null(ee_safetensors_open_buffer(NULL, 0, &err));

    /* Header length past the end of the file, and over the 100 MB limit. */
    size_t n;
    uint8_t *buf = build("{}", NULL, 0, &n);
    buf[0] = 3;
    ck_assert_ptr_null(ee_safetensors_open_buffer(buf, n, &err));
    ck_assert_msg(strstr(err.msg, "header length 3 does not fit"), "%s", err.msg);
    buf[0] = 0;
    buf[4] = 1; /* 2^32 */
    ck_assert_ptr_null(ee_safetensors_open_buffer(buf, n, &err));
    ck_assert_msg(strstr(err.msg, "limit"), "%s", err.msg);
    free(buf);

    expect_fail("[1,2]", 0, "does not start with '{'");
    expect_fail("{\"w\":", 0, "invalid JSON");
    expect_fail("{\"a\":1} x", 0, "invalid JSON");
    expect_fail("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                "\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                8, "invalid JSON"); /* duplicate key */
    expect_fail("{\"w\":[]}", 0, "tensor 'w': entry is not a JSON object");
    expect_fail(T1("\"shape\":[1],\"data_offsets\":[0,4]"), 4, "tensor 'w': missing field 'dtype'");
    expect_fail(T1("\"dtype\":\"F32\",\"data_offsets\":[0,4]"), 4, "missing field 'shape'");
    expect_fail(T1("\"dtype\":\"F32\",\"shape\":[1]"), 4, "missing field 'data_offsets'");
    expect_fail(T1("\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":1"), 4,
                "tensor 'w': unexpected field 'x'");
    expect_fail(T1("\"dtype\":\"F33\",\"shape\":[1],\"data_offsets\":[0,4]"), 4,
                "tensor 'w': unknown dtype 'F33'");
    expect_fail(T1("\"dtype\":7,\"shape\":[1],\"data_offsets\":[0,4]"), 4, "dtype is not a string");
    expect_fail(T1("\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]"), 4,
                "tensor 'w': shape[0] is not a non-negative integer");
    expect_fail(T1("\"dtype\":\"F32\",\"shape\":[1.0],\"data_offsets\":[0,4]"), 4,
                "shape[0] is not a non-negative integer");
    expect_fail(T1("\"dtype\":\"F32\",\"shape\":{},\"data_offsets\":[0,4]"), 4,
                "shape is not an array");
    expect_fail(T1("\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]"), 4,
                "9 dimensions");
    expect_fail(T1("\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,4]"), 4,
                "element count overflows");
    expect_fail(T1("\"dtype\":\"F64\",\"shape\":[4294967296,1073741824],\"data_offsets\":[0,4]"), 4,
                "byte size overflows");
    expect_fail(T1("\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]"), 4,
                "end before they begin");
    expect_fail(T1("\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]"), 4,
                "data_offsets is not [begin, end]");
    expect_fail(T1("\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,-4]"), 4,
                "data_offsets is not [begin, end]");
    expect_fail(T1("\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]"), 4,
                "tensor 'w': data_offsets [0, 8] run past the data section (4 bytes)");
    expect_fail(T1("\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,16]"), 16,
                "tensor 'w': 6 elements of F32 are 24 bytes, data_offsets [0, 16] hold 16");
    expect_fail(T1("\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[0,4]"), 4,
                "3 elements of BF16 are 6 bytes");
    /* Overlap, gap, trailing bytes. */
    expect_fail("{\"p\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                "\"q\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                8, "tensor 'q' (bytes 4..8) overlaps tensor 'p'");
    expect_fail("{\"p\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                "\"q\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
                12, "bytes 4..8 of the data section belong to no tensor (before 'q')");
    expect_fail(T1("\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]"), 8,
                "data section is 8 bytes but its tensors end at 4");
    expect_fail("{\"__metadata__\":{\"k\":1}}", 0, "__metadata__ value of 'k' is not a string");
    expect_fail("{\"__metadata__\":[]}", 0, "__metadata__ is not a JSON object");
    expect_fail("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"v\\u0000x\":{}}",
                4, "invalid JSON"); /* NUL in a name */

    /* Files: missing, a directory, the path named in the error. */
    ck_assert_ptr_null(ee_safetensors_open("/nonexistent/x.safetensors", &err));
    ck_assert_msg(strstr(err.msg, "/nonexistent/x.safetensors: cannot open"), "%s", err.msg);
    ck_assert_ptr_null(ee_safetensors_open("/tmp", &err));
    ck_assert_msg(strstr(err.msg, "not a regular file"), "%s", err.msg);
    char *path = ee_test_tmpfile(".safetensors");
    buf = build(T1("\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]"), "abcd", 4, &n);
    ee_test_write_file(path, buf, n);
    ck_assert_ptr_null(ee_safetensors_open(path, &err));
    ck_assert_msg(strstr(err.msg, path) && strstr(err.msg, "tensor 'w'"), "%s", err.msg);
    unlink(path);
    free(path);
    free(buf);
}
END_TEST

/* Every prefix of a good file, and random byte mutations: clean errors or
 * valid files, never a crash or an out-of-bounds read (ASan). */
START_TEST(test_truncation_and_fuzz) {
    fill_good_data();
    size_t n;
    uint8_t *good = build(GOOD_HEADER, good_data, sizeof good_data, &n);
    ee_err err = {{0}};
    for (size_t k = 0; k < n; k++) {
        uint8_t *b = malloc(k ? k : 1);
        memcpy(b, good, k);
        ee_safetensors *st = ee_safetensors_open_buffer(b, k, &err);
        /* Only the full file is valid: cutting anything leaves too little
         * data (or too little header). */
        ck_assert_msg(st == NULL, "prefix of %zu bytes accepted", k);
        ck_assert_msg(err.msg[0] != 0, "prefix %zu: empty error", k);
        free(b);
    }
    uint64_t rng = 12345;
    int accepted = 0;
    for (int it = 0; it < 3000; it++) {
        uint8_t *b = malloc(n);
        memcpy(b, good, n);
        int flips = 1 + (int)(ee_test_splitmix64(&rng) % 4);
        for (int f = 0; f < flips; f++) {
            size_t at = ee_test_splitmix64(&rng) % n;
            b[at] = (uint8_t)ee_test_splitmix64(&rng);
        }
        ee_safetensors *st = ee_safetensors_open_buffer(b, n, &err);
        if (st) {
            accepted++;
            float out[8];
            for (size_t i = 0; i < ee_safetensors_n_tensors(st); i++) {
                const ee_st_tensor *t = ee_safetensors_tensor_at(st, i);
                ck_assert(t->offset + t->nbytes <= n);
                if (ee_st_dtype_is_float(t->dtype) && t->n_elements <= 8)
                    ee_safetensors_read_f32(t, out, &err);
            }
            ee_safetensors_close(st);
        }
        free(b);
    }
    ck_assert_int_gt(accepted, 0); /* mutations inside data bytes stay valid */
    free(good);
}
END_TEST

Suite *suite_safetensors(void) {
    Suite *s = suite_create("safetensors");
    TCase *tc = tcase_create("reader");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_good_file);
    tcase_add_test(tc, test_rejects);
    tcase_add_test(tc, test_truncation_and_fuzz);
    suite_add_tcase(s, tc);
    return s;
}
