/* The trained digits CNN (`make cnn`: $EE_CNN, test set $EE_CNN_TEST, by
 * tools/train_cnn.py) on its 360 held-out images.
 *
 *  (a) our forward pass vs the float64 reference logits of train_cnn.py
 *      (an independent numpy implementation): max abs difference < 1e-5,
 *      the same prediction on every image, the same accuracy;
 *  (b) ee-cnn-v1 under a fixed key: the client's path (plaintext stem,
 *      feature map encrypted, the encrypted file's worker pass, scores
 *      decrypted) gives the plaintext predictions on every image, logits
 *      within 1e-5; controls: another key's client, and the worker's raw
 *      scores, disagree with the plaintext predictions on most images;
 *  (c) the same key encrypts to the same bytes, another key to others.
 *
 * The measured figures are printed (stderr) for docs/EE.md. */
#include "ee_cnn.h"
#include "ee_cnn_cipher.h"
#include "ee_encrypt.h"
#include "ee_gguf.h"
#include "ee_key.h"
#include "ee_scheme.h"
#include "ee_testmodel.h"

#include <check.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TOL 1e-5
#define N_TEST 360

/* Like test_ee_bert_model.c's EE_MINILM: the variable set by `make
 * test-model`, else the cache path; a missing file fails the test and says
 * how to make it. */
static const char *env_path(const char *var, const char *fallback) {
    const char *p = getenv(var);
    return p && *p ? p : fallback;
}
static const char *cnn_path(void) { return env_path("EE_CNN", ".cache/models/eecnn-digits.gguf"); }
static const char *cnn_test_path(void) {
    return env_path("EE_CNN_TEST", ".cache/models/eecnn-digits-test.gguf");
}

static ee_gguf *open_or_fail(const char *path, const char *var) {
    ee_err err = {{0}};
    ee_gguf *g = ee_gguf_open(path, &err);
    ck_assert_msg(g != NULL, "%s (set %s, or run `make cnn`)", err.msg, var);
    return g;
}

static void fixed_key(ee_key *k, uint8_t n) {
    uint8_t b[EE_KEY_BYTES];
    for (int i = 0; i < EE_KEY_BYTES; i++) b[i] = (uint8_t)(n * 37 + i * 11 + 5);
    ee_key_from_bytes(k, b);
}

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    ck_assert_ptr_nonnull(p);
    return p;
}

/* An f32 tensor of the test set with exactly the dims ne (GGUF order). */
static const float *test_tensor(const ee_gguf *g, const char *name, int n_dims, const uint64_t *ne) {
    const ee_gguf_tensor *t = ee_gguf_find_tensor(g, name);
    ck_assert_msg(t != NULL, "%s: no tensor '%s'", cnn_test_path(), name);
    ck_assert_msg(t->type == EE_DT_F32, "'%s' is not f32", name);
    for (int i = 0; i < EE_GGUF_MAX_DIMS; i++)
        ck_assert_msg(t->ne[i] == (i < n_dims ? ne[i] : 1), "'%s' ne[%d] = %llu", name, i,
                      (unsigned long long)t->ne[i]);
    return t->data;
}

/* The test set and the plaintext model. */
typedef struct digits {
    ee_gguf *pg, *tg;
    ee_cnn_model *pm;
    const float *images, *labels, *ref; /* [360][1][8][8], [360], [360][10] */
    int n_class;
    size_t img_len;
} digits;

static void digits_open(digits *d) {
    ee_err err = {{0}};
    d->pg = open_or_fail(cnn_path(), "EE_CNN");
    d->tg = open_or_fail(cnn_test_path(), "EE_CNN_TEST");
    d->pm = ee_cnn_load(d->pg, &err);
    ck_assert_msg(d->pm != NULL, "%s: %s", cnn_path(), err.msg);
    d->n_class = d->pm->hp.n_class;
    ck_assert_int_eq(d->n_class, 10);
    d->img_len = ee_cnn_image_len(d->pm);
    ck_assert_uint_eq(d->img_len, 64);
    uint32_t count = 0;
    ck_assert_msg(ee_gguf_get_u32(d->tg, "eecnn.test.count", &count, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(count, N_TEST);
    d->images = test_tensor(d->tg, "test.images", 4, (const uint64_t[]){8, 8, 1, N_TEST});
    d->labels = test_tensor(d->tg, "test.labels", 1, (const uint64_t[]){N_TEST});
    d->ref = test_tensor(d->tg, "test.logits", 2, (const uint64_t[]){10, N_TEST});
}

static void digits_close(digits *d) {
    ee_cnn_free(d->pm);
    ee_gguf_close(d->pg);
    ee_gguf_close(d->tg);
}

static float *plain_logits(const digits *d) {
    ee_err err = {{0}};
    float *l = xmalloc(sizeof(float) * N_TEST * d->n_class);
    ck_assert_msg(ee_cnn_classify_images(d->pm, d->images, N_TEST, l, &err) == 0, "%s", err.msg);
    return l;
}

static int correct(const digits *d, const float *logits) {
    int n = 0;
    for (int i = 0; i < N_TEST; i++)
        n += ee_cnn_argmax(logits + (size_t)i * d->n_class, d->n_class) == (int)d->labels[i];
    return n;
}

START_TEST(forward_matches_float64_reference) {
    digits d;
    digits_open(&d);
    float *l = plain_logits(&d);
    double worst = 0, min_margin = INFINITY;
    int same = 0;
    for (int i = 0; i < N_TEST; i++) {
        const float *a = l + (size_t)i * d.n_class, *r = d.ref + (size_t)i * d.n_class;
        const int pr = ee_cnn_argmax(r, d.n_class);
        same += ee_cnn_argmax(a, d.n_class) == pr;
        double second = -INFINITY;
        for (int c = 0; c < d.n_class; c++) {
            worst = fmax(worst, fabs((double)a[c] - r[c]));
            if (c != pr) second = fmax(second, r[c]);
        }
        min_margin = fmin(min_margin, r[pr] - second);
    }
    const int ours = correct(&d, l), theirs = correct(&d, d.ref);
    float acc = 0;
    ee_err err = {{0}};
    ck_assert_msg(ee_gguf_get_f32(d.tg, "eecnn.test.accuracy", &acc, &err) == 0, "%s", err.msg);
    fprintf(stderr, "[cnn] %d test images: max |logit - float64 reference| %.3g; %d/%d predictions "
                    "as the reference (smallest reference top-2 margin %.3g); correct: ours %d, "
                    "reference %d (recorded accuracy %.4f)\n",
            N_TEST, worst, same, N_TEST, min_margin, ours, theirs, acc);
    ck_assert_msg(worst < TOL, "logits differ from the reference by %.3g", worst);
    ck_assert_int_eq(same, N_TEST);
    ck_assert_int_eq(ours, theirs);
    ck_assert_int_eq(ours, (int)lround(acc * N_TEST));
    free(l);
    digits_close(&d);
}
END_TEST

/* ---- encrypted ------------------------------------------------------------------ */

static char *encrypt_to_tmp(const ee_gguf *pg, const ee_key *k) {
    ee_err err = {{0}};
    char *path = ee_test_tmpfile(".gguf");
    ck_assert_ptr_nonnull(path);
    ee_encrypt_opts o = {.out_type = EE_DT_F32};
    ee_encrypt_stats st;
    if (ee_encrypt_model(pg, k, &o, path, &st, &err) != 0) {
        unlink(path);
        ck_abort_msg("%s", err.msg);
    }
    ck_assert_str_eq(st.scheme, EE_SCHEME_CNN);
    return path;
}

/* The key holder's client from a key file, as `ee-model classify --key`. */
static void client_cipher(ee_cnn_cipher *c, const char *dir, const char *name, const ee_key *k,
                          const digits *d, char id[EE_KEY_ID_HEX]) {
    ee_err err = {{0}};
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    ck_assert_msg(ee_key_save(k, path, &err) == 0, "%s", err.msg);
    ck_assert_msg(ee_cnn_cipher_load(c, path, d->pg, d->pm, id, &err) == 0, "%s", err.msg);
}

/* All 360 images through the client's path; raw gets the worker's
 * (encrypted) scores when non-NULL. */
static float *client_logits(const digits *d, const ee_cnn_model *em, const ee_cnn_cipher *c,
                            float *raw) {
    ee_err err = {{0}};
    const size_t fl = ee_cnn_fmap_len(d->pm), nl = (size_t)N_TEST * d->n_class;
    float *fm = xmalloc(sizeof(float) * fl * N_TEST), *fe = xmalloc(sizeof(float) * fl * N_TEST);
    float *le = xmalloc(sizeof(float) * nl), *dec = xmalloc(sizeof(float) * nl);
    ck_assert_msg(ee_cnn_stem(d->pm, d->images, N_TEST, fm, &err) == 0, "%s", err.msg);
    for (int i = 0; i < N_TEST; i++) ee_cnn_fmap_encrypt(c, fm + fl * i, fe + fl * i);
    ck_assert_msg(ee_cnn_classify_fmaps(em, fe, N_TEST, le, &err) == 0, "%s", err.msg);
    for (int i = 0; i < N_TEST; i++)
        ee_cnn_scores_decrypt(c, le + (size_t)i * d->n_class, dec + (size_t)i * d->n_class);
    if (raw) memcpy(raw, le, sizeof(float) * nl);
    free(fm), free(fe), free(le);
    return dec;
}

/* Images whose prediction from logits a equals the one from b. */
static int agree(const digits *d, const float *a, const float *b) {
    int n = 0;
    for (int i = 0; i < N_TEST; i++)
        n += ee_cnn_argmax(a + (size_t)i * d->n_class, d->n_class) ==
             ee_cnn_argmax(b + (size_t)i * d->n_class, d->n_class);
    return n;
}

START_TEST(encrypted_classifier_equals_plaintext) {
    ee_err err = {{0}};
    digits d;
    digits_open(&d);
    ee_key k, other;
    fixed_key(&k, 1);
    fixed_key(&other, 2);
    char *enc = encrypt_to_tmp(d.pg, &k);
    ee_gguf *eg = ee_gguf_open(enc, &err);
    unlink(enc); /* the mapping stays valid; a failed assertion leaves no file */
    free(enc);
    ck_assert_msg(eg != NULL, "%s", err.msg);
    ck_assert_ptr_null(ee_gguf_find_tensor(eg, "blk.0.conv.weight"));
    ee_cnn_model *em = ee_cnn_load(eg, &err);
    ck_assert_msg(em != NULL, "%s", err.msg);
    ck_assert_int_eq(em->hp.client_blocks, 1);

    char *dir = ee_test_mkdtemp("cnnmodel"), id[EE_KEY_ID_HEX], oid[EE_KEY_ID_HEX];
    ee_cnn_cipher c, oc;
    client_cipher(&c, dir, "k.eekey", &k, &d, id);
    client_cipher(&oc, dir, "other.eekey", &other, &d, oid);
    ee_test_rmtree(dir); /* the ciphers hold what they need */
    free(dir);
    ck_assert_str_eq(ee_gguf_get_str(eg, "ee.key_id", &err), id);
    ck_assert_str_ne(id, oid);

    const size_t nl = (size_t)N_TEST * d.n_class;
    float *plain = plain_logits(&d), *raw = xmalloc(sizeof(float) * nl);
    float *dec = client_logits(&d, em, &c, raw), *wrong = client_logits(&d, em, &oc, NULL);
    double worst = 0, worst_ref = 0;
    for (size_t i = 0; i < nl; i++) {
        worst = fmax(worst, fabs((double)dec[i] - plain[i]));
        worst_ref = fmax(worst_ref, fabs((double)dec[i] - d.ref[i]));
    }
    const int same = agree(&d, dec, plain), same_wrong = agree(&d, wrong, plain);
    const int same_raw = agree(&d, raw, plain);
    fprintf(stderr, "[cnn] encrypted (%s): %d/%d predictions as plaintext, max |logit diff| %.3g "
                    "(vs float64 reference %.3g), correct %d; controls: another key's client "
                    "agrees on %d/%d, the worker's raw argmax on %d/%d\n",
            EE_SCHEME_CNN, same, N_TEST, worst, worst_ref, correct(&d, dec), same_wrong, N_TEST,
            same_raw, N_TEST);
    ck_assert_int_eq(same, N_TEST);
    ck_assert_msg(worst < TOL, "decrypted logits differ by %.3g", worst);
    ck_assert_msg(same_wrong < N_TEST / 2, "another key's client agrees on %d/%d images",
                  same_wrong, N_TEST);
    ck_assert_msg(same_raw < N_TEST / 2, "the worker's raw scores agree on %d/%d images", same_raw,
                  N_TEST);

    ee_cnn_cipher_free(&c), ee_cnn_cipher_free(&oc);
    ee_cnn_free(em);
    ee_gguf_close(eg);
    free(plain), free(raw), free(dec), free(wrong);
    ee_key_wipe(&k), ee_key_wipe(&other);
    digits_close(&d);
}
END_TEST

static void file_sha256(const char *path, unsigned char out[crypto_hash_sha256_BYTES],
                        char hex[2 * crypto_hash_sha256_BYTES + 1]) {
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "%s", path);
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    unsigned char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) crypto_hash_sha256_update(&st, buf, n);
    fclose(f);
    crypto_hash_sha256_final(&st, out);
    sodium_bin2hex(hex, 2 * crypto_hash_sha256_BYTES + 1, out, crypto_hash_sha256_BYTES);
}

/* SHA-256 of the file pg encrypts to under k (the file is removed). */
static void encrypted_sha256(const ee_gguf *pg, const ee_key *k,
                             unsigned char out[crypto_hash_sha256_BYTES],
                             char hex[2 * crypto_hash_sha256_BYTES + 1]) {
    char *path = encrypt_to_tmp(pg, k);
    file_sha256(path, out, hex);
    unlink(path);
    free(path);
}

START_TEST(same_key_same_bytes) {
    ee_err err = {{0}};
    ck_assert_int_eq(ee_sodium_init(&err), 0);
    digits d;
    digits_open(&d);
    ee_key k, other;
    fixed_key(&k, 1);
    fixed_key(&other, 2);
    unsigned char ha[32], hb[32], ho[32];
    char xa[65], xb[65], xo[65];
    encrypted_sha256(d.pg, &k, ha, xa);
    encrypted_sha256(d.pg, &k, hb, xb);
    encrypted_sha256(d.pg, &other, ho, xo);
    fprintf(stderr, "[cnn] encrypted file sha256: key 1 %s, again %s; key 2 %s\n", xa, xb, xo);
    ck_assert_msg(memcmp(ha, hb, 32) == 0, "same key and model gave different files");
    ck_assert_msg(memcmp(ha, ho, 32) != 0, "different keys gave the same file");
    ee_key_wipe(&k), ee_key_wipe(&other);
    digits_close(&d);
}
END_TEST

Suite *suite_cnn_model(void) {
    Suite *s = suite_create("cnn_model");
    TCase *tc = tcase_create("digits");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, forward_matches_float64_reference);
    tcase_add_test(tc, encrypted_classifier_equals_plaintext);
    tcase_add_test(tc, same_key_same_bytes);
    suite_add_tcase(s, tc);
    return s;
}
