/* ee_audit: the weight-alignment attack on synthetic models. A model
 * encrypted from public weights is broken (>= 99% of the vocabulary,
 * checked against the key, and a prompt decrypted); the recovered fraction
 * falls as the public weights drift from the private ones (simulated
 * fine-tune noise) and never claims matches that are wrong; bad inputs are
 * refused by name. Also the assignment solver against brute force. */
#include "ee_audit.h"
#include "ee_gguf.h"
#include "ee_key.h"
#include "ee_lap.h"
#include "ee_encrypt.h"
#include "ee_scheme.h"
#include "ee_testmodel.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void key_n(ee_key *k, uint8_t n) {
    uint8_t b[EE_KEY_BYTES];
    for (int i = 0; i < EE_KEY_BYTES; i++) b[i] = (uint8_t)(n * 17 + i);
    ee_key_from_bytes(k, b);
}

/* A synthetic model a little wider than the default, so that each stage
 * has more than a handful of vectors to align. */
static ee_testmodel_cfg audit_cfg(void) {
    ee_testmodel_cfg c = ee_testmodel_default();
    c.n_embd = 96;
    c.n_head = 6;
    c.n_head_kv = 2;
    c.n_ff = 256;
    c.n_layer = 3;
    c.seed = 77;
    return c;
}

typedef struct pair {
    char *plain, *enc;
    ee_gguf *gp, *ge;
    ee_key k; /* the scheme key: bound to the plaintext model */
} pair;

static void pair_open(pair *p, ee_testmodel_cfg c, ee_dtype type) {
    ee_err err = {{0}};
    ee_key master;
    key_n(&master, 5);
    p->plain = ee_test_tmpfile(".gguf");
    p->enc = ee_test_tmpfile(".gguf");
    ck_assert_msg(ee_testmodel_write(p->plain, &c, &err) == 0, "%s", err.msg);
    p->gp = ee_gguf_open(p->plain, &err);
    ck_assert_msg(p->gp != NULL, "%s", err.msg);
    ee_encrypt_opts o = {.out_type = type};
    ck_assert_msg(ee_encrypt_model(p->gp, &master, &o, p->enc, NULL, &err) == 0, "%s", err.msg);
    ck_assert_msg(ee_scheme_key(&master, p->gp, NULL, &p->k, &err) == 0, "%s", err.msg);
    p->ge = ee_gguf_open(p->enc, &err);
    ck_assert_msg(p->ge != NULL, "%s", err.msg);
}

static void pair_close(pair *p) {
    ee_gguf_close(p->gp);
    ee_gguf_close(p->ge);
    unlink(p->plain);
    unlink(p->enc);
    free(p->plain);
    free(p->enc);
}

/* Fraction of encrypted ids mapped to their true plaintext id, and the
 * precision of the matches the audit called unambiguous. */
static void score(const ee_audit_result *r, const ee_key *k, double *correct, double *precision) {
    ee_err err = {{0}};
    ee_vocab_cipher vc;
    ck_assert_int_eq(ee_vocab_cipher_init(&vc, k, (uint32_t)r->n_vocab, &err), 0);
    int ok = 0, sure = 0, sure_ok = 0;
    for (int e = 0; e < r->n_vocab; e++) {
        int good = r->vocab_map[e] == (int32_t)vc.inv[e];
        ok += good;
        sure += r->vocab_sure[e];
        sure_ok += r->vocab_sure[e] && good;
    }
    *correct = (double)ok / r->n_vocab;
    *precision = sure ? (double)sure_ok / sure : 1.0;
    ee_vocab_cipher_free(&vc);
}

START_TEST(breaks_model_encrypted_from_public_weights) {
    ee_dtype types[] = {EE_DT_F32, EE_DT_F16};
    for (int t = 0; t < 2; t++) {
        pair p;
        pair_open(&p, audit_cfg(), types[t]);
        ee_err err = {{0}};
        ee_audit_result r;
        ee_audit_opts o = {.seed = 1};
        ck_assert_msg(ee_audit_run(p.ge, p.gp, &o, &r, &err) == 0, "%s", err.msg);
        double correct, precision;
        score(&r, &p.k, &correct, &precision);
        ck_assert_msg(r.vocab_recovered >= 0.99 && correct >= 0.99 && precision == 1.0,
                      "type %d: recovered %.4f correct %.4f precision %.4f", t, r.vocab_recovered,
                      correct, precision);
        ck_assert_msg(r.rot_residual < 1e-3, "rotation residual %g", r.rot_residual);
        ck_assert_msg(r.mlp_perm_recovered == 1.0 && r.mlp_layers_full == 3, "mlp %.3f %d",
                      r.mlp_perm_recovered, r.mlp_layers_full);
        ck_assert_msg(r.heads_q == 1.0 && r.heads_k == 1.0 && r.heads_v == 1.0,
                      "heads q %.2f k %.2f v %.2f", r.heads_q, r.heads_k, r.heads_v);
        ck_assert_msg(r.mlp_scale_spread < 1e-2, "scale spread %g", r.mlp_scale_spread);
        ck_assert(r.seconds >= 0 && r.seconds < 60);

        /* A secret prompt, encrypted by the client, decrypted without the
         * key through the recovered permutation. */
        ee_vocab_cipher vc;
        ck_assert_int_eq(ee_vocab_cipher_init(&vc, &p.k, EE_TESTMODEL_VOCAB, &err), 0);
        int32_t prompt[] = {257, 'H', 'e', 'l', 'l', 'o', 259, 260, 258, 'x', 263, 256};
        enum { N = sizeof prompt / sizeof prompt[0] };
        int32_t enc[N];
        ck_assert_int_eq(ee_vocab_encrypt(&vc, prompt, enc, N, &err), 0);
        for (int i = 0; i < N; i++)
            ck_assert_msg(r.vocab_map[enc[i]] == prompt[i], "token %d: %d != %d", i,
                          r.vocab_map[enc[i]], prompt[i]);
        ee_vocab_cipher_free(&vc);
        ee_audit_result_free(&r);
        pair_close(&p);
    }
}
END_TEST

/* Simulated private fine-tune: the fraction recovered falls with the noise
 * (documented in docs/SECURITY.md for the real model), and whatever the
 * noise, what the audit calls unambiguous is right. */
START_TEST(degrades_with_perturbation_without_overclaiming) {
    pair p;
    pair_open(&p, audit_cfg(), EE_DT_F32);
    enum { NE = 7 };
    const double eps[NE] = {0.0, 0.02, 0.1, 0.3, 0.6, 1.0, 4.0};
    double rec[NE];
    for (int i = 0; i < NE; i++) {
        ee_err err = {{0}};
        ee_audit_result r;
        ee_audit_opts o = {.perturb = eps[i], .seed = 3};
        ck_assert_msg(ee_audit_run(p.ge, p.gp, &o, &r, &err) == 0, "%s", err.msg);
        double correct, precision;
        score(&r, &p.k, &correct, &precision);
        fprintf(stderr, "audit synthetic: eps %.2f recovered %.4f correct %.4f precision %.4f "
                "(start %s, %d rounds)\n", eps[i], r.vocab_recovered, correct, precision,
                r.rot_start, r.rounds);
        ck_assert_msg(precision >= 0.95, "eps %.2f: precision %.3f", eps[i], precision);
        ck_assert_msg(r.vocab_recovered <= correct + 0.05, "eps %.2f: claims %.3f, right %.3f",
                      eps[i], r.vocab_recovered, correct);
        rec[i] = r.vocab_recovered;
        ee_audit_result_free(&r);
    }
    ck_assert_msg(rec[0] >= 0.99 && rec[1] >= 0.99, "small noise: %.3f %.3f", rec[0], rec[1]);
    /* eps 0.3 defeats the layer-0 start; the invariants start still wins. */
    ck_assert_msg(rec[3] >= 0.99, "eps 0.3: %.3f", rec[3]);
    ck_assert_msg(rec[NE - 1] < 0.5, "eps 4: still %.3f recovered", rec[NE - 1]);
    for (int i = 1; i < NE; i++) ck_assert_msg(rec[i] <= rec[i - 1] + 0.02, "not decreasing at %d", i);
    pair_close(&p);
}
END_TEST

START_TEST(refuses_bad_inputs_by_name) {
    pair p;
    pair_open(&p, audit_cfg(), EE_DT_F32);
    ee_err err = {{0}};
    ee_audit_result r;
    /* arguments swapped */
    ck_assert_int_eq(ee_audit_run(p.gp, p.gp, NULL, &r, &err), -1);
    ck_assert_msg(strstr(err.msg, "--model is not an encrypted model"), "%s", err.msg);
    ck_assert_int_eq(ee_audit_run(p.ge, p.ge, NULL, &r, &err), -1);
    ck_assert_msg(strstr(err.msg, "--public is an encrypted model"), "%s", err.msg);
    /* another shape */
    ee_testmodel_cfg c = audit_cfg();
    c.n_ff = 320;
    char *other = ee_test_tmpfile(".gguf");
    ck_assert_int_eq(ee_testmodel_write(other, &c, &err), 0);
    ee_gguf *go = ee_gguf_open(other, &err);
    ck_assert_int_eq(ee_audit_run(p.ge, go, NULL, &r, &err), -1);
    ck_assert_msg(strstr(err.msg, "shape mismatch: n_ff is 256") && strstr(err.msg, "320"), "%s",
                  err.msg);
    ee_gguf_close(go);
    /* another architecture */
    char *bert = ee_test_gguf_rewrite(p.plain, "bert", NULL);
    go = ee_gguf_open(bert, &err);
    ck_assert_int_eq(ee_audit_run(p.ge, go, NULL, &r, &err), -1);
    ck_assert_msg(strstr(err.msg, "--public") && strstr(err.msg, "bert"), "%s", err.msg);
    ee_gguf_close(go);
    /* a bad option */
    ee_audit_opts o = {.perturb = -1};
    ck_assert_int_eq(ee_audit_run(p.ge, p.gp, &o, &r, &err), -1);
    ck_assert_msg(strstr(err.msg, "perturbation"), "%s", err.msg);
    unlink(other), unlink(bert);
    free(other), free(bert);
    pair_close(&p);
}
END_TEST

/* The assignment solver is optimal: brute force over all permutations of
 * small random matrices (ties included). */
static double best_brute(const double *c, int n, int *perm, int k, char *used) {
    if (k == n) return 0;
    double best = INFINITY;
    for (int j = 0; j < n; j++) {
        if (used[j]) continue;
        used[j] = 1;
        double v = c[k * n + j] + best_brute(c, n, perm, k + 1, used);
        used[j] = 0;
        if (v < best) best = v;
    }
    return best;
}

START_TEST(assignment_is_optimal) {
    uint64_t s = 11;
    ee_err err = {{0}};
    for (int trial = 0; trial < 300; trial++) {
        int n = 1 + (int)(ee_test_splitmix64(&s) % 7);
        double c[49];
        for (int i = 0; i < n * n; i++)
            c[i] = (double)(ee_test_splitmix64(&s) % (trial % 2 ? 5 : 1000)) - 100;
        int m[7];
        char used[7] = {0};
        ck_assert_int_eq(ee_lap_solve(c, n, m, &err), 0);
        double got = 0;
        int seen[7] = {0};
        for (int i = 0; i < n; i++) {
            ck_assert(m[i] >= 0 && m[i] < n && !seen[m[i]]);
            seen[m[i]] = 1;
            got += c[i * n + m[i]];
        }
        double want = best_brute(c, n, NULL, 0, used);
        ck_assert_msg(fabs(got - want) < 1e-9, "trial %d n %d: %g != %g", trial, n, got, want);
    }
    double bad[4] = {0, NAN, 1, 2};
    int m[2];
    ck_assert_int_eq(ee_lap_solve(bad, 2, m, &err), -1);
    ck_assert_msg(strstr(err.msg, "not finite"), "%s", err.msg);
}
END_TEST

Suite *suite_audit(void) {
    Suite *s = suite_create("audit");
    TCase *tc = tcase_create("attack");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, breaks_model_encrypted_from_public_weights);
    tcase_add_test(tc, degrades_with_perturbation_without_overclaiming);
    tcase_add_test(tc, refuses_bad_inputs_by_name);
    tcase_add_test(tc, assignment_is_optimal);
    suite_add_tcase(s, tc);
    return s;
}
