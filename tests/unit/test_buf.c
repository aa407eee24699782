/* ee_buf: the growable buffer every tier uses (base layer). */
#include "ee_buf.h"

#include "ee_testmodel.h"

#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

START_TEST(bytes_append_print_consume_detach) {
    ee_err err = {{0}};
    ee_buf b = {0};
    ck_assert_str_eq(ee_buf_cstr(&b), "");
    for (int i = 0; i < 1000; i++) ck_assert_int_eq(ee_buf_printf(&b, &err, "%d,", i), 0);
    ck_assert_uint_eq(b.len, strlen(b.p));
    ck_assert(b.cap > b.len);
    ck_assert(strncmp(b.p, "0,1,2,", 6) == 0);
    ck_assert(strcmp(b.p + b.len - 4, "999,") == 0);
    /* a long format goes through the second vsnprintf */
    char big[1000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    size_t before = b.len;
    ck_assert_int_eq(ee_buf_printf(&b, &err, "[%s]", big), 0);
    ck_assert_uint_eq(b.len, before + 1001);
    ck_assert_int_eq(b.p[b.len - 1], ']');
    ee_buf_consume(&b, before);
    ck_assert_uint_eq(b.len, 1001);
    ck_assert_int_eq(b.p[0], '[');
    ck_assert_int_eq(ee_buf_append(&b, "\0z", 2, &err), 0); /* binary-safe */
    ck_assert_uint_eq(b.len, 1003);
    ck_assert_int_eq(b.p[1001], 0);
    ck_assert_int_eq(b.p[1002], 'z');
    size_t n = 0;
    char *p = ee_buf_detach(&b, &n);
    ck_assert_uint_eq(n, 1003);
    ck_assert_ptr_null(b.p);
    ck_assert_uint_eq(b.len, 0);
    free(p);
    ee_buf_consume(&b, 5); /* empty: no-op */
    ck_assert_int_eq(ee_buf_putc(&b, 'a', &err), 0);
    ee_buf_clear(&b);
    ck_assert_str_eq(ee_buf_cstr(&b), "");
    ee_buf_free(&b);
}
END_TEST

START_TEST(overflow_is_an_error_not_a_wrap) {
    ee_err err = {{0}};
    ee_buf b = {0};
    ck_assert_int_eq(ee_buf_reserve(&b, SIZE_MAX - 1, &err), -1);
    ck_assert_msg(strstr(err.msg, "out of memory"), "%s", err.msg);
    int *v = NULL;
    size_t cap = 0;
    ck_assert_int_eq(ee_array_reserve(&v, &cap, SIZE_MAX / 2, sizeof *v, &err), -1);
    ck_assert_ptr_null(v);
    ck_assert_uint_eq(cap, 0);
}
END_TEST

START_TEST(arrays_grow_and_keep_contents) {
    ee_err err = {{0}};
    ee_ids ids = {0};
    for (int32_t i = 0; i < 5000; i++) ck_assert_int_eq(ee_ids_push(&ids, i * 3, &err), 0);
    int32_t tail[3] = {-1, -2, -3};
    ck_assert_int_eq(ee_ids_append(&ids, tail, 3, &err), 0);
    ck_assert_uint_eq(ids.n, 5003);
    for (int32_t i = 0; i < 5000; i++) ck_assert_int_eq(ids.v[i], i * 3);
    ck_assert_int_eq(ids.v[5002], -3);
    ee_ids_free(&ids);
    ck_assert_ptr_null(ids.v);
    /* the macro on a struct array */
    struct pair { int a; double b; } *ps = NULL;
    size_t n = 0, cap = 0;
    for (int i = 0; i < 100; i++)
        ck_assert_int_eq(EE_ARRAY_PUSH(ps, n, cap, ((struct pair){i, i / 2.0}), &err), 0);
    ck_assert_uint_eq(n, 100);
    ck_assert(ps[99].a == 99 && ps[99].b == 49.5);
    free(ps);
}
END_TEST

START_TEST(read_file_and_its_limit) {
    ee_err err = {{0}};
    char *path = ee_test_tmpfile(".bin");
    size_t big = 200000;
    char *data = malloc(big);
    for (size_t i = 0; i < big; i++) data[i] = (char)(i * 7);
    ee_test_write_file(path, data, big);
    FILE *f = fopen(path, "rb");
    ee_buf b = {0};
    ck_assert_int_eq(ee_buf_read_file(&b, f, 0, "x", &err), 0);
    fclose(f);
    ck_assert_uint_eq(b.len, big);
    ck_assert(memcmp(b.p, data, big) == 0);
    ee_buf_free(&b);
    f = fopen(path, "rb");
    ck_assert_int_eq(ee_buf_read_file(&b, f, 100000, "--in t.bin", &err), -1);
    fclose(f);
    ck_assert_msg(strstr(err.msg, "--in t.bin") && strstr(err.msg, "100000"), "%s", err.msg);
    ee_buf_free(&b);
    unlink(path);
    free(path);
    free(data);
}
END_TEST

Suite *suite_buf(void) {
    Suite *s = suite_create("buf");
    TCase *tc = tcase_create("buf");
    tcase_add_test(tc, bytes_append_print_consume_detach);
    tcase_add_test(tc, overflow_is_an_error_not_a_wrap);
    tcase_add_test(tc, arrays_grow_and_keep_contents);
    tcase_add_test(tc, read_file_and_its_limit);
    suite_add_tcase(s, tc);
    return s;
}
