/* EE on the real all-MiniLM-L6-v2 (ee-bert-v1): the key holder's path
 * (WordPiece ids encrypted, the encrypted model run, the embedding
 * decrypted) equals the plaintext model's embedding, and cosines between
 * encrypted embeddings equal the plaintext ones, on tests/data's sentences.
 * Negative controls: the encrypted embedding itself is not the plaintext
 * one, and another key's cipher does not decrypt it. */
#include "ee_bert.h"
#include "ee_encrypt.h"
#include "ee_gguf.h"
#include "ee_key.h"
#include "ee_scheme.h"
#include "ee_testmodel.h"
#include "ee_wordpiece.h"

#include <check.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TOL 1e-5

static const char *minilm(void) {
    const char *p = getenv("EE_MINILM");
    return p && *p ? p : ".cache/models/all-MiniLM-L6-v2.gguf";
}

static void fixed_key(ee_key *k, uint8_t n) {
    uint8_t b[EE_KEY_BYTES];
    for (int i = 0; i < EE_KEY_BYTES; i++) b[i] = (uint8_t)(n * 29 + i * 7);
    ee_key_from_bytes(k, b);
}

/* Sentences of tests/data/bert_sentences.json tokenized by the plain model. */
typedef struct sents {
    int n;
    int32_t **ids;
    size_t *len;
} sents;

static void load_sentences(const ee_gguf *plain, sents *s) {
    json_error_t je;
    json_t *j = json_load_file("tests/data/bert_sentences.json", 0, &je);
    ck_assert_msg(j != NULL, "bert_sentences.json: %s", je.text);
    json_t *arr = json_is_array(j) ? j : json_object_get(j, "sentences");
    ck_assert(json_is_array(arr));
    ee_err err = {{0}};
    ee_wordpiece *wp = NULL;
    ck_assert_msg(ee_wordpiece_open_gguf(&wp, plain, &err) == 0, "%s", err.msg);
    s->n = (int)json_array_size(arr);
    s->ids = calloc((size_t)s->n, sizeof *s->ids);
    s->len = calloc((size_t)s->n, sizeof *s->len);
    for (int i = 0; i < s->n; i++) {
        const char *t = json_string_value(json_array_get(arr, (size_t)i));
        ck_assert_ptr_nonnull(t);
        size_t cap = strlen(t) + 8, need = 0;
        s->ids[i] = malloc(cap * sizeof(int32_t));
        ck_assert_msg(ee_wordpiece_encode(wp, t, strlen(t), s->ids[i], cap, &need, &err) == 0,
                      "%s", err.msg);
        s->len[i] = need;
    }
    ee_wordpiece_close(wp);
    json_decref(j);
}

static float *embed_all(const ee_bert_model *m, const sents *s) {
    const int d = m->hp.n_embd;
    float *out = malloc(sizeof(float) * (size_t)s->n * d);
    ee_err err = {{0}};
    ck_assert_msg(ee_bert_embed(m, (const int32_t *const *)s->ids, s->len, s->n, out, &err) == 0,
                  "%s", err.msg);
    return out;
}

static double cosine(const float *a, const float *b, int d) {
    double ab = 0, aa = 0, bb = 0;
    for (int i = 0; i < d; i++) ab += (double)a[i] * b[i], aa += (double)a[i] * a[i], bb += (double)b[i] * b[i];
    return ab / sqrt(aa * bb);
}

START_TEST(encrypted_encoder_equals_plaintext) {
    ee_err err = {{0}};
    ee_gguf *pg = ee_gguf_open(minilm(), &err);
    ck_assert_msg(pg != NULL, "%s (make minilm)", err.msg);
    ee_key k, sk, other, osk;
    fixed_key(&k, 1);
    fixed_key(&other, 2);
    char *enc_path = ee_test_tmpfile(".gguf");
    ee_encrypt_opts o = {.out_type = EE_DT_F32};
    ee_encrypt_stats st;
    ck_assert_msg(ee_encrypt_model(pg, &k, &o, enc_path, &st, &err) == 0, "%s", err.msg);
    ck_assert_str_eq(st.scheme, EE_SCHEME_BERT);
    ee_gguf *eg = ee_gguf_open(enc_path, &err);
    ck_assert_msg(eg != NULL, "%s", err.msg);
    ck_assert_int_eq(ee_scheme_key(&k, pg, ee_model_scheme(eg), &sk, &err), 0);
    ck_assert_int_eq(ee_model_check_key(eg, &sk, &err), 0);
    ck_assert_int_eq(ee_scheme_key(&other, pg, ee_model_scheme(eg), &osk, &err), 0);
    ck_assert_int_eq(ee_model_check_key(eg, &osk, &err), -1);

    ee_bert_model *pm = ee_bert_load(pg, NULL, &err), *em = ee_bert_load(eg, NULL, &err);
    ck_assert_msg(pm && em, "%s", err.msg);
    const int d = pm->hp.n_embd;
    sents s = {0};
    load_sentences(pg, &s);
    ck_assert_int_ge(s.n, 50);
    float *plain = embed_all(pm, &s);

    /* the client's side: encrypt ids, run the encrypted model, decrypt */
    ee_vocab_cipher vc;
    ee_vec_cipher vec, ovec;
    ck_assert_int_eq(ee_vocab_cipher_init(&vc, &sk, (uint32_t)pm->hp.n_vocab, &err), 0);
    ck_assert_int_eq(ee_vec_cipher_init(&vec, &sk, d, &err), 0);
    ck_assert_int_eq(ee_vec_cipher_init(&ovec, &osk, d, &err), 0);
    for (int i = 0; i < s.n; i++)
        ck_assert_int_eq(ee_vocab_encrypt(&vc, s.ids[i], s.ids[i], s.len[i], &err), 0);
    float *enc = embed_all(em, &s); /* the worker's view: encrypted in, encrypted out */
    float *dec = malloc(sizeof(float) * (size_t)s.n * d), *wrong = malloc(sizeof(float) * d);
    double worst = 0, worst_cos = 0, min_enc_gap = 1e9, min_wrong_gap = 1e9;
    for (int i = 0; i < s.n; i++) {
        const float *e = enc + (size_t)i * d, *p = plain + (size_t)i * d;
        float *x = dec + (size_t)i * d;
        ee_vec_decrypt(&vec, e, x);
        ee_vec_decrypt(&ovec, e, wrong);
        double gap = 0, wgap = 0;
        for (int c = 0; c < d; c++) {
            worst = fmax(worst, fabs((double)x[c] - p[c]));
            gap = fmax(gap, fabs((double)e[c] - p[c]));
            wgap = fmax(wgap, fabs((double)wrong[c] - p[c]));
        }
        min_enc_gap = fmin(min_enc_gap, gap);
        min_wrong_gap = fmin(min_wrong_gap, wgap);
    }
    /* cosines between encrypted embeddings = between plaintext ones */
    for (int i = 0; i < s.n; i++)
        for (int j = i + 1; j < s.n; j++)
            worst_cos = fmax(worst_cos, fabs(cosine(enc + (size_t)i * d, enc + (size_t)j * d, d) -
                                             cosine(plain + (size_t)i * d, plain + (size_t)j * d, d)));
    fprintf(stderr, "[ee-bert] %d sentences: decrypted vs plaintext max abs %.3g; encrypted-space "
                    "cosines vs plaintext max abs %.3g; controls: encrypted vs plaintext >= %.3g, "
                    "another key's decryption >= %.3g\n",
            s.n, worst, worst_cos, min_enc_gap, min_wrong_gap);
    ck_assert_msg(worst <= TOL, "decrypted embedding differs by %.3g", worst);
    ck_assert_msg(worst_cos <= TOL, "encrypted cosines differ by %.3g", worst_cos);
    ck_assert_msg(min_enc_gap > 1e-2, "an encrypted embedding equals the plaintext one (%.3g)", min_enc_gap);
    ck_assert_msg(min_wrong_gap > 1e-2, "another key decrypts an embedding (%.3g)", min_wrong_gap);

    ee_vocab_cipher_free(&vc);
    ee_vec_cipher_free(&vec);
    ee_vec_cipher_free(&ovec);
    for (int i = 0; i < s.n; i++) free(s.ids[i]);
    free(s.ids), free(s.len), free(plain), free(enc), free(dec), free(wrong);
    ee_bert_free(pm);
    ee_bert_free(em);
    ee_gguf_close(pg);
    ee_gguf_close(eg);
    unlink(enc_path);
    free(enc_path);
    ee_key_wipe(&k), ee_key_wipe(&sk), ee_key_wipe(&other), ee_key_wipe(&osk);
}
END_TEST

Suite *suite_ee_bert_model(void) {
    Suite *s = suite_create("ee_bert_model");
    TCase *tc = tcase_create("minilm");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, encrypted_encoder_equals_plaintext);
    suite_add_tcase(s, tc);
    return s;
}
