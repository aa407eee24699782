/* ee_audit_cnn: inverting the encrypted feature map of an eecnn classifier
 * (issue 13) on a small random model. With the public weights, attack B
 * recovers the stem's permutation (checked against the key) and the
 * images to float precision; with other public weights of the same shape
 * it recovers neither, and its own fit statistics show it (the attacker
 * can tell). Attack A, bad inputs, and the least-squares helper. */
#include "ee_arch.h"
#include "ee_audit_cnn.h"
#include "ee_cnn.h"
#include "ee_cnn_cipher.h"
#include "ee_encrypt.h"
#include "ee_gguf.h"
#include "ee_key.h"
#include "ee_linalg.h"
#include "ee_scheme.h"
#include "ee_testmodel.h"

#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { IMG = 8, C0 = 16, C1 = 32, NCLASS = 10, NIMG = 24 };

static double unif(uint64_t *s) { return (double)(ee_test_splitmix64(s) >> 11) / 9007199254740992.0; }

static void add(ee_gguf_writer *w, ee_tensor role, int l, const char *suffix, int nd,
                const uint64_t *ne, uint64_t *rng, double amp) {
    uint64_t n = 1;
    for (int i = 0; i < nd; i++) n *= ne[i];
    float *v = malloc(sizeof(float) * n);
    ck_assert_ptr_nonnull(v);
    for (uint64_t i = 0; i < n; i++) v[i] = (float)(amp * (2 * unif(rng) - 1));
    char name[64];
    ee_err err = {{0}};
    ck_assert_msg(ee_gguf_writer_add_tensor(w, ee_tensor_name(name, sizeof name, role, l, suffix),
                                            (uint32_t)nd, ne, EE_DT_F32, v, true, &err) == 0,
                  "%s", err.msg);
    free(v);
}

/* A plaintext eecnn shaped as the digits CNN (1 -> 16 -> 32 channels, 8x8,
 * pool 2, 10 classes), random weights from seed. */
static char *write_cnn(uint64_t seed) {
    ee_err err = {{0}};
    ee_gguf_writer *w = ee_gguf_writer_new(&err);
    ck_assert_ptr_nonnull(w);
    ck_assert(ee_gguf_writer_set_str(w, "general.architecture", "eecnn", &err) == 0 &&
              ee_gguf_writer_set_u32(w, "eecnn.block_count", 2, &err) == 0 &&
              ee_gguf_writer_set_u32(w, "eecnn.image.channels", 1, &err) == 0 &&
              ee_gguf_writer_set_u32(w, "eecnn.image.height", IMG, &err) == 0 &&
              ee_gguf_writer_set_u32(w, "eecnn.image.width", IMG, &err) == 0 &&
              ee_gguf_writer_set_u32(w, "eecnn.pool_size", 2, &err) == 0 &&
              ee_gguf_writer_set_u32(w, "eecnn.class_count", NCLASS, &err) == 0);
    uint64_t rng = seed;
    const uint64_t w0[4] = {3, 3, 1, C0}, b0[1] = {C0}, w1[4] = {3, 3, C0, C1}, b1[1] = {C1};
    const uint64_t hw[2] = {C1 * 2 * 2, NCLASS}, hb[1] = {NCLASS};
    add(w, EE_T_CONV, 0, "weight", 4, w0, &rng, 0.6);
    add(w, EE_T_CONV, 0, "bias", 1, b0, &rng, 0.3);
    add(w, EE_T_CONV, 1, "weight", 4, w1, &rng, 0.2);
    add(w, EE_T_CONV, 1, "bias", 1, b1, &rng, 0.1);
    add(w, EE_T_OUTPUT, 0, "weight", 2, hw, &rng, 0.2);
    add(w, EE_T_OUTPUT, 0, "bias", 1, hb, &rng, 0.1);
    char *path = ee_test_tmpfile(".gguf");
    ck_assert_msg(ee_gguf_writer_write(w, path, &err) == 0, "%s", err.msg);
    ee_gguf_writer_free(w);
    return path;
}

typedef struct fixture {
    char *plain_path, *enc_path, *other_path;
    ee_gguf *gp, *ge, *go;
    ee_cnn_model *plain, *enc, *other; /* other: random public weights of the same shape */
    ee_key sk;                         /* the scheme key bound to plain */
    float images[NIMG * IMG * IMG], labels[NIMG];
} fixture;

static void fx_open(fixture *fx) {
    memset(fx, 0, sizeof *fx);
    ee_err err = {{0}};
    fx->plain_path = write_cnn(101);
    fx->other_path = write_cnn(202);
    fx->enc_path = ee_test_tmpfile(".gguf");
    ck_assert_ptr_nonnull(fx->gp = ee_gguf_open(fx->plain_path, &err));
    ck_assert_ptr_nonnull(fx->go = ee_gguf_open(fx->other_path, &err));
    uint8_t secret[EE_KEY_BYTES];
    for (int i = 0; i < EE_KEY_BYTES; i++) secret[i] = (uint8_t)(7 * i + 3);
    ee_key master;
    ee_key_from_bytes(&master, secret);
    ee_encrypt_opts o = {.out_type = EE_DT_F32};
    ck_assert_msg(ee_encrypt_model(fx->gp, &master, &o, fx->enc_path, NULL, &err) == 0, "%s", err.msg);
    ck_assert_msg(ee_scheme_key(&master, fx->gp, EE_SCHEME_CNN, &fx->sk, &err) == 0, "%s", err.msg);
    ee_key_wipe(&master);
    ck_assert_ptr_nonnull(fx->ge = ee_gguf_open(fx->enc_path, &err));
    ck_assert_msg((fx->plain = ee_cnn_load(fx->gp, &err)) != NULL, "%s", err.msg);
    ck_assert_msg((fx->other = ee_cnn_load(fx->go, &err)) != NULL, "%s", err.msg);
    ck_assert_msg((fx->enc = ee_cnn_load(fx->ge, &err)) != NULL, "%s", err.msg);
    ck_assert_int_eq(fx->enc->hp.client_blocks, 1);
    /* Digit-like test images: a bright stroke pattern on a dark ground;
     * labels are the plaintext model's own predictions. */
    uint64_t rng = 9;
    for (int i = 0; i < NIMG * IMG * IMG; i++) {
        double u = unif(&rng);
        fx->images[i] = u < 0.55 ? 0.0f : (float)unif(&rng);
    }
    float logits[NIMG * NCLASS];
    ck_assert(ee_cnn_classify_images(fx->plain, fx->images, NIMG, logits, &err) == 0);
    for (int i = 0; i < NIMG; i++) fx->labels[i] = (float)ee_cnn_argmax(logits + i * NCLASS, NCLASS);
}

static void fx_close(fixture *fx) {
    ee_cnn_free(fx->plain);
    ee_cnn_free(fx->enc);
    ee_cnn_free(fx->other);
    ee_gguf_close(fx->gp);
    ee_gguf_close(fx->ge);
    ee_gguf_close(fx->go);
    unlink(fx->plain_path);
    unlink(fx->enc_path);
    unlink(fx->other_path);
    free(fx->plain_path);
    free(fx->enc_path);
    free(fx->other_path);
    ee_key_wipe(&fx->sk);
}

START_TEST(b_inverts_with_public_weights) {
    fixture fx;
    fx_open(&fx);
    ee_err err = {{0}};
    ee_audit_cnn_result r;
    ck_assert_msg(ee_audit_cnn_run(fx.enc, fx.plain, fx.plain, &fx.sk, fx.images, fx.labels, NIMG,
                                   &r, &err) == 0, "%s", err.msg);
    ck_assert_double_eq(r.acc_true, 1.0);
    ck_assert_msg(r.perm0_correct == 1.0 && r.perm1_correct == 1.0, "perm0 %.3f perm1 %.3f",
                  r.perm0_correct, r.perm1_correct);
    ck_assert_msg(r.rec.perm0_sure == 1.0 && r.rec.perm1_sure == 1.0, "sure %.3f %.3f",
                  r.rec.perm0_sure, r.rec.perm1_sure);
    ck_assert_msg(r.rec.perm0_cost < 1e-9 && r.rec.scale_rms < 1e-5, "cost %g rms %g",
                  r.rec.perm0_cost, r.rec.scale_rms);
    ck_assert_msg(r.scale0_err < 1e-5, "s0 error %g", r.scale0_err);
    ck_assert_int_eq(r.rank_deficient, 0);
    ck_assert_msg(r.b.ran && r.b.max_abs_err < 1e-4 && r.b.corr_p10 > 0.9999,
                  "max err %g corr p10 %g", r.b.max_abs_err, r.b.corr_p10);
    ck_assert_double_eq(r.b.accuracy, 1.0);
    ck_assert(r.a_mean.ran && r.a_max.ran);
    ck_assert(isfinite(r.a_mean.corr_median) && r.a_mean.accuracy >= 0 && r.a_mean.accuracy <= 1);
    ee_audit_cnn_result_free(&r);

    /* The same through the adversary's own calls: no key anywhere. */
    float fm[C0 * IMG * IMG], efm[C0 * IMG * IMG], x[IMG * IMG];
    ee_cnn_cipher cc;
    ck_assert(ee_cnn_stem(fx.plain, fx.images, 1, fm, &err) == 0);
    ck_assert(ee_cnn_cipher_init(&cc, &fx.sk, C0, IMG * IMG, NCLASS, &err) == 0);
    ee_cnn_fmap_encrypt(&cc, fm, efm);
    ee_cnn_recovered rec;
    ck_assert_msg(ee_cnn_recover(fx.enc, fx.plain, &rec, &err) == 0, "%s", err.msg);
    for (int i = 0; i < C0; i++) ck_assert_int_eq(rec.perm0[i], (int)cc.perm[i]);
    int rank = 0;
    ck_assert(ee_cnn_invert_b(fx.plain, &rec, efm, 1, x, &rank, &err) == 0);
    ck_assert_int_eq(rank, IMG * IMG + 1);
    for (int p = 0; p < IMG * IMG; p++) ck_assert_float_eq_tol(x[p], fx.images[p], 1e-4);
    ee_cnn_recovered_free(&rec);
    ee_cnn_cipher_free(&cc);
    fx_close(&fx);
}
END_TEST

/* Negative control: public weights of the same shape but not the ones the
 * model was encrypted from. B must not recover, and must not look as if it
 * did. */
START_TEST(b_fails_with_other_weights) {
    fixture fx;
    fx_open(&fx);
    ee_err err = {{0}};
    ee_audit_cnn_result r;
    ck_assert_msg(ee_audit_cnn_run(fx.enc, fx.other, fx.plain, &fx.sk, fx.images, fx.labels, NIMG,
                                   &r, &err) == 0, "%s", err.msg);
    ck_assert_msg(r.perm0_correct <= 0.25 && r.perm1_correct <= 0.25, "perm0 %.3f perm1 %.3f",
                  r.perm0_correct, r.perm1_correct);
    /* what the attacker sees without the key: no unambiguous match, bad fits */
    ck_assert_msg(r.rec.perm0_sure < 0.5 && r.rec.perm0_cost > 0.1 && r.rec.scale_rms > 0.1,
                  "sure %.3f cost %g rms %g", r.rec.perm0_sure, r.rec.perm0_cost, r.rec.scale_rms);
    ck_assert_msg(r.b.corr_median < 0.5 && r.b.max_abs_err > 0.5, "corr %g max err %g",
                  r.b.corr_median, r.b.max_abs_err);
    ee_audit_cnn_result_free(&r);
    fx_close(&fx);
}
END_TEST

START_TEST(refuses_bad_inputs) {
    fixture fx;
    fx_open(&fx);
    ee_err err = {{0}};
    ee_audit_cnn_result r;
    ee_cnn_recovered rec;
    /* a plaintext file as the encrypted one; the encrypted one as public */
    ck_assert(ee_cnn_recover(fx.plain, fx.plain, &rec, &err) != 0);
    ck_assert_ptr_nonnull(strstr(err.msg, "not an encrypted"));
    ck_assert(ee_cnn_recover(fx.enc, fx.enc, &rec, &err) != 0);
    ck_assert_ptr_nonnull(strstr(err.msg, "no stem"));
    ck_assert(ee_audit_cnn_run(fx.plain, fx.plain, fx.plain, &fx.sk, fx.images, fx.labels, NIMG, &r,
                               &err) != 0);
    ck_assert(ee_audit_cnn_run(fx.enc, NULL, fx.plain, &fx.sk, fx.images, fx.labels, 0, &r, &err) != 0);
    float bad[NIMG];
    memcpy(bad, fx.labels, sizeof bad);
    bad[3] = NCLASS;
    ck_assert(ee_audit_cnn_run(fx.enc, NULL, fx.plain, &fx.sk, fx.images, bad, NIMG, &r, &err) != 0);
    ck_assert_ptr_nonnull(strstr(err.msg, "label"));
    /* Without public weights only A runs. */
    ck_assert_msg(ee_audit_cnn_run(fx.enc, NULL, fx.plain, &fx.sk, fx.images, fx.labels, NIMG, &r,
                                   &err) == 0, "%s", err.msg);
    ck_assert(r.a_mean.ran && !r.b.ran && r.recon_b == NULL);
    ee_audit_cnn_result_free(&r);
    fx_close(&fx);
}
END_TEST

/* Attack A on a hand-made map: scales removed per channel, zero channels
 * ignored. */
START_TEST(a_normalises_channels) {
    ee_cnn_model m;
    memset(&m, 0, sizeof m);
    m.hp.in_h = 1, m.hp.in_w = 2, m.hp.client_blocks = 1;
    m.blocks[0].c_out = 3;
    const float e[6] = {2, 4, 0, 0, 0.5f, 0.25f}; /* channels: (2,4), (0,0), (0.5,0.25) */
    float out[2];
    ee_err err = {{0}};
    ck_assert(ee_cnn_invert_a(&m, e, 1, EE_CNN_INV_A_MEAN, out, &err) == 0);
    ck_assert_float_eq_tol(out[0], (0.5f + 1.0f) / 3, 1e-6);
    ck_assert_float_eq_tol(out[1], (1.0f + 0.5f) / 3, 1e-6);
    ck_assert(ee_cnn_invert_a(&m, e, 1, EE_CNN_INV_A_MAX, out, &err) == 0);
    ck_assert_float_eq_tol(out[0], 1.0f, 1e-6);
    ck_assert_float_eq_tol(out[1], 1.0f, 1e-6);
}
END_TEST

/* The aligned mean on a hand-made map whose inverted channels outweigh the
 * rest: picture P; three channels 10 + P (a bright background, little
 * contrast after dividing by the maximum), two 1 - P at full contrast, a
 * flat one and an all-zero one. The channel mean comes out inverted
 * (correlation -1); the aligned mean flips the two and returns P itself. */
START_TEST(a_aligned_flips_inverted_channels) {
    ee_cnn_model m;
    memset(&m, 0, sizeof m);
    m.hp.in_h = 1, m.hp.in_w = 4, m.hp.client_blocks = 1;
    m.blocks[0].c_out = 7;
    const float P[4] = {0, 0.2f, 0.5f, 1};
    const float gain[7] = {1, 2, 0.5f, 3, 0.25f, 5, 0};
    float e[7 * 4], mean[4], al[4];
    for (int j = 0; j < 7; j++)
        for (int p = 0; p < 4; p++)
            e[j * 4 + p] = gain[j] * (j < 3 ? 10 + P[p] : j < 5 ? 1 - P[p] : 1);
    ee_err err = {{0}};
    ck_assert(ee_cnn_invert_a(&m, e, 1, EE_CNN_INV_A_MEAN, mean, &err) == 0);
    ck_assert(ee_cnn_invert_a(&m, e, 1, EE_CNN_INV_A_ALIGNED, al, &err) == 0);
    double mp = 0, mm = 0, cov = 0, vp = 0, vm = 0;
    for (int p = 0; p < 4; p++) mp += P[p] / 4, mm += mean[p] / 4;
    for (int p = 0; p < 4; p++)
        cov += (P[p] - mp) * (mean[p] - mm), vp += (P[p] - mp) * (P[p] - mp),
            vm += (mean[p] - mm) * (mean[p] - mm);
    ck_assert_msg(cov / sqrt(vp * vm) < -0.99, "channel mean correlation %g", cov / sqrt(vp * vm));
    for (int p = 0; p < 4; p++) ck_assert_float_eq_tol(al[p], P[p], 1e-6);
    /* an all-zero map: all-zero picture */
    float z[7 * 4] = {0};
    ck_assert(ee_cnn_invert_a(&m, z, 1, EE_CNN_INV_A_ALIGNED, al, &err) == 0);
    for (int p = 0; p < 4; p++) ck_assert_float_eq(al[p], 0);
}
END_TEST

/* The stronger A variants on the random model and its noise-like images,
 * without the weights: the aligned mean beats the channel mean; the
 * deconvolution of all 24 maps together reconstructs the images. */
START_TEST(a_stronger_variants) {
    fixture fx;
    fx_open(&fx);
    ee_err err = {{0}};
    ee_audit_cnn_result r;
    ck_assert_msg(ee_audit_cnn_run(fx.enc, NULL, fx.plain, &fx.sk, fx.images, fx.labels, NIMG, &r,
                                   &err) == 0, "%s", err.msg);
    ck_assert(r.a_aligned.ran && r.a_deconv1.ran && r.a_pc.ran && r.a_deconvn.ran);
    ck_assert_msg(r.a_aligned.corr_median > r.a_mean.corr_median + 0.05, "aligned %.4f mean %.4f",
                  r.a_aligned.corr_median, r.a_mean.corr_median);
    ck_assert_msg(r.a_deconvn.corr_median > 0.97 && r.a_deconvn.corr_p10 > 0.95,
                  "deconv from %d maps: median %.4f p10 %.4f", NIMG, r.a_deconvn.corr_median,
                  r.a_deconvn.corr_p10);
    ck_assert_msg(r.a_deconvn.accuracy >= 0.75, "read %.3f", r.a_deconvn.accuracy);
    ck_assert_msg(r.a_pc.corr_median < r.a_deconvn.corr_median &&
                      r.a_deconv1.corr_median < r.a_deconvn.corr_median,
                  "pc %.4f one map %.4f", r.a_pc.corr_median, r.a_deconv1.corr_median);
    ck_assert_msg(r.deconvn.iterations >= 1 && r.deconvn.resid < 0.5 && r.deconvn.resid_max == r.deconvn.resid,
                  "fit %d rounds misfit %g", r.deconvn.iterations, r.deconvn.resid);
    ck_assert(r.deconv1.iterations >= 1 && isfinite(r.deconv1.resid));
    for (int q = 0; q < NIMG * IMG * IMG; q++)
        ck_assert(r.recon_a_deconvn[q] >= 0 && r.recon_a_deconvn[q] <= 1);
    ee_audit_cnn_result_free(&r);
    fx_close(&fx);
}
END_TEST

/* The deconvolution cannot depend on the key: the maps of the same images
 * under another key (other permutation, other scales) give the same
 * pictures. */
START_TEST(a_deconv_ignores_the_key) {
    fixture fx;
    fx_open(&fx);
    ee_err err = {{0}};
    enum { FL = C0 * IMG * IMG, HW = IMG * IMG };
    static float fm[NIMG * FL], e1[NIMG * FL], e2[NIMG * FL];
    static float s1[NIMG * HW], s2[NIMG * HW], d1[NIMG * HW], d2[NIMG * HW];
    uint8_t secret[EE_KEY_BYTES];
    for (int i = 0; i < EE_KEY_BYTES; i++) secret[i] = (uint8_t)(31 * i + 5);
    ee_key master, other;
    ee_key_from_bytes(&master, secret);
    ck_assert_msg(ee_scheme_key(&master, fx.gp, EE_SCHEME_CNN, &other, &err) == 0, "%s", err.msg);
    ee_cnn_cipher c1, c2;
    ck_assert(ee_cnn_stem(fx.plain, fx.images, NIMG, fm, &err) == 0);
    ck_assert(ee_cnn_cipher_init(&c1, &fx.sk, C0, HW, NCLASS, &err) == 0);
    ck_assert(ee_cnn_cipher_init(&c2, &other, C0, HW, NCLASS, &err) == 0);
    int moved = 0;
    for (int i = 0; i < C0; i++) moved += c1.perm[i] != c2.perm[i];
    ck_assert_int_gt(moved, 0);
    for (int i = 0; i < NIMG; i++) {
        ee_cnn_fmap_encrypt(&c1, fm + (size_t)i * FL, e1 + (size_t)i * FL);
        ee_cnn_fmap_encrypt(&c2, fm + (size_t)i * FL, e2 + (size_t)i * FL);
    }
    ee_cnn_deconv_info i1, i2;
    ck_assert(ee_cnn_invert_a_pc(fx.enc, e1, NIMG, s1, &err) == 0);
    ck_assert(ee_cnn_invert_a_pc(fx.enc, e2, NIMG, s2, &err) == 0);
    ck_assert(ee_cnn_invert_a_deconv(fx.enc, e1, NIMG, s1, true, d1, &i1, &err) == 0);
    ck_assert(ee_cnn_invert_a_deconv(fx.enc, e2, NIMG, s2, true, d2, &i2, &err) == 0);
    double worst = 0;
    for (int q = 0; q < NIMG * HW; q++) worst = fmax(worst, fabs((double)d1[q] - d2[q]));
    ck_assert_msg(worst < 1e-3, "pictures differ by %g between keys", worst);
    ck_assert_double_eq_tol(i1.resid, i2.resid, 1e-6);
    /* no maps: nothing to do */
    ck_assert(ee_cnn_invert_a_deconv(fx.enc, e1, 0, s1, true, d1, &i1, &err) == 0);
    ck_assert_int_eq(i1.iterations, 0);
    ee_cnn_cipher_free(&c1);
    ee_cnn_cipher_free(&c2);
    ee_key_wipe(&master);
    ee_key_wipe(&other);
    fx_close(&fx);
}
END_TEST

START_TEST(lstsq_solves_and_reports_rank) {
    /* Overdetermined, consistent: x = (1, -2). */
    const double A[8] = {1, 0, 0, 1, 1, 1, 2, -1};
    const double b[4] = {1, -2, -1, 4};
    double x[2];
    int rank = 0;
    ee_err err = {{0}};
    ck_assert(ee_lstsq(A, 4, 2, b, 1e-12, x, &rank, &err) == 0);
    ck_assert_int_eq(rank, 2);
    ck_assert_double_eq_tol(x[0], 1, 1e-12);
    ck_assert_double_eq_tol(x[1], -2, 1e-12);
    /* Rank 1 (second column twice the first): the minimum-norm solution. */
    const double D[4] = {1, 2, 2, 4};
    const double d[2] = {5, 10};
    ck_assert(ee_lstsq(D, 2, 2, d, 1e-12, x, &rank, &err) == 0);
    ck_assert_int_eq(rank, 1);
    ck_assert_double_eq_tol(x[0], 1, 1e-9);
    ck_assert_double_eq_tol(x[1], 2, 1e-9);
    /* Fewer equations than unknowns. */
    const double E[2] = {3, 4};
    const double e[1] = {25};
    ck_assert(ee_lstsq(E, 1, 2, e, 1e-12, x, &rank, &err) == 0);
    ck_assert_double_eq_tol(x[0], 3, 1e-9);
    ck_assert_double_eq_tol(x[1], 4, 1e-9);
}
END_TEST

Suite *suite_audit_cnn(void) {
    Suite *s = suite_create("audit_cnn");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, b_inverts_with_public_weights);
    tcase_add_test(tc, b_fails_with_other_weights);
    tcase_add_test(tc, refuses_bad_inputs);
    tcase_add_test(tc, a_normalises_channels);
    tcase_add_test(tc, a_aligned_flips_inverted_channels);
    tcase_add_test(tc, a_stronger_variants);
    tcase_add_test(tc, a_deconv_ignores_the_key);
    tcase_add_test(tc, lstsq_solves_and_reports_rank);
    suite_add_tcase(s, tc);
    return s;
}
