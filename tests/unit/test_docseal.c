/* ee_docseal: documents sealed by the key holder for a blind index. */
#include "ee_docseal.h"

#include "ee_testmodel.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void key_n(ee_key *k, uint8_t n) {
    uint8_t b[EE_KEY_BYTES];
    for (int i = 0; i < EE_KEY_BYTES; i++) b[i] = (uint8_t)(n + 3 * i);
    ee_key_from_bytes(k, b);
}

START_TEST(round_trip_and_refusals) {
    ee_key k1, k2;
    key_n(&k1, 1);
    key_n(&k2, 2);
    uint8_t d1[EE_DOC_KEY_BYTES], d2[EE_DOC_KEY_BYTES];
    ee_doc_key_derive(&k1, d1);
    ee_doc_key_derive(&k2, d2);
    ck_assert(memcmp(d1, d2, sizeof d1) != 0);
    ck_assert(memcmp(d1, k1.secret, sizeof d1) != 0); /* not the EE secret itself */
    ee_err err = {{0}};
    const char *doc = "Kafka stores the sealed bytes; only the key holder reads them. \xc3\xa4\xe6\x97\xa5";
    char *s = ee_doc_seal(d1, "doc-1", doc, strlen(doc), &err);
    ck_assert_msg(s != NULL, "%s", err.msg);
    ck_assert_ptr_null(strstr(s, "Kafka")); /* nothing in the clear */
    char *s2 = ee_doc_seal(d1, "doc-1", doc, strlen(doc), &err);
    ck_assert_str_ne(s, s2); /* random nonce */
    char *t;
    size_t n;
    ck_assert_int_eq(ee_doc_open(d1, "doc-1", s, &t, &n, &err), 0);
    ck_assert_uint_eq(n, strlen(doc));
    ck_assert_str_eq(t, doc);
    free(t);
    /* another key, another id, a changed character, not base64, too short */
    ck_assert_int_eq(ee_doc_open(d2, "doc-1", s, &t, &n, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "does not open"));
    ck_assert_int_eq(ee_doc_open(d1, "doc-2", s, &t, &n, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "doc-2"));
    s[strlen(s) / 2] = s[strlen(s) / 2] == 'A' ? 'B' : 'A';
    ck_assert_int_eq(ee_doc_open(d1, "doc-1", s, &t, &n, &err), -1);
    ck_assert_int_eq(ee_doc_open(d1, "doc-1", "not base64!", &t, &n, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "base64"));
    ck_assert_int_eq(ee_doc_open(d1, "doc-1", "AAAA", &t, &n, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "fewer"));
    ck_assert_ptr_null(t);
    /* empty documents are fine; empty ids and oversized documents are not */
    char *e = ee_doc_seal(d1, "doc-e", "", 0, &err);
    ck_assert_int_eq(ee_doc_open(d1, "doc-e", e, &t, &n, &err), 0);
    ck_assert_uint_eq(n, 0);
    free(t);
    ck_assert_ptr_null(ee_doc_seal(d1, "", "x", 1, &err));
    ck_assert_ptr_null(ee_doc_seal(d1, "big", "x", EE_DOC_MAX_BYTES + 1, &err));
    ck_assert_ptr_nonnull(strstr(err.msg, "over the limit"));
    free(s), free(s2), free(e);
}
END_TEST

/* The wire form against PyNaCl: it opens ours, we open its. */
static const char *PY_DOC =
    "import sys, base64, nacl.bindings as b\n"
    "d = sys.argv[1]\n"
    "rd = lambda n: open(f'{d}/{n}', 'rb').read()\n"
    "key = rd('key'); s = rd('sealed').decode()\n"
    "raw = base64.urlsafe_b64decode(s + '=' * (-len(s) % 4))\n"
    "m = b.crypto_aead_xchacha20poly1305_ietf_decrypt(raw[24:], b'doc-7', raw[:24], key)\n"
    "assert m == rd('msg'), m\n"
    "nonce = bytes(range(24))\n"
    "c = b.crypto_aead_xchacha20poly1305_ietf_encrypt(b'from python', b'doc-8', nonce, key)\n"
    "open(f'{d}/py', 'w').write(base64.urlsafe_b64encode(nonce + c).decode().rstrip('='))\n";

START_TEST(wire_format_matches_pynacl) {
    char *dir = ee_test_mkdtemp("docseal-py");
    char path[600], cmd[2048], args[700];
    ee_err err = {{0}};
    ee_key k;
    key_n(&k, 9);
    uint8_t dk[EE_DOC_KEY_BYTES];
    ee_doc_key_derive(&k, dk);
    const char *msg = "a document";
    char *s = ee_doc_seal(dk, "doc-7", msg, strlen(msg), &err);
    ck_assert_ptr_nonnull(s);
    struct { const char *name; const void *p; size_t n; } files[] = {
        {"key", dk, sizeof dk}, {"sealed", s, strlen(s)}, {"msg", msg, strlen(msg)}};
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i].name);
        ee_test_write_file(path, files[i].p, files[i].n);
    }
    snprintf(args, sizeof args, "'%s'", dir);
    int rc = ee_test_python_script(dir, PY_DOC, args, cmd, sizeof cmd);
    ck_assert_msg(rc == 0, "PyNaCl oracle failed (rc %d): %s", rc, cmd);
    snprintf(path, sizeof path, "%s/py", dir);
    FILE *fp = fopen(path, "r");
    ck_assert_ptr_nonnull(fp);
    char buf[256] = {0};
    size_t got = fread(buf, 1, sizeof buf - 1, fp);
    fclose(fp);
    buf[got] = 0;
    char *t;
    size_t n;
    ck_assert_msg(ee_doc_open(dk, "doc-8", buf, &t, &n, &err) == 0, "%s", err.msg);
    ck_assert_str_eq(t, "from python");
    free(t);
    free(s);
    ee_test_rmtree(dir);
    free(dir);
}
END_TEST

Suite *suite_docseal(void) {
    Suite *s = suite_create("docseal");
    TCase *tc = tcase_create("docseal");
    tcase_add_test(tc, round_trip_and_refusals);
    tcase_add_test(tc, wire_format_matches_pynacl);
    suite_add_tcase(s, tc);
    return s;
}
