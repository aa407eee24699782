/* ee-model audit on an encrypted eecnn classifier: what a worker learns
 * about the image from the encrypted feature map (core/ee/ee_audit_cnn.h,
 * issue 13). The model owner runs it with its key and a test set: the key
 * and the images only make the maps a client would send and score what the
 * attacks get back; the attacks see the encrypted model, the public
 * weights (attack B) and the maps. Exit 0 whatever the attacks find; 1 for
 * bad input. */
#include "cli_args.h"
#include "cmds.h"
#include "ee_audit_cnn.h"
#include "ee_cnn.h"
#include "ee_gguf.h"
#include "ee_key.h"
#include "ee_scheme.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define A_ADVERSARY "worker without the public weights (private weights), or anyone who sees the traffic"
#define B_ADVERSARY "worker holding the public plaintext weights, the stem included"

static json_t *jnum(double v) { return isfinite(v) ? json_real(v) : json_null(); }

/* test.images [n][image len] and test.labels [n] (f32) of tools/train_cnn.py. */
static int read_test_set(const char *path, const ee_cnn_model *m, float **images, float **labels,
                         int *n, ee_err *err) {
    ee_gguf *g = ee_gguf_open(path, err);
    if (!g) return ee_err_wrap(err, "--test-set");
    const ee_gguf_tensor *ti = ee_gguf_find_tensor(g, "test.images");
    const ee_gguf_tensor *tl = ee_gguf_find_tensor(g, "test.labels");
    const size_t il = ee_cnn_image_len(m);
    int rc = -1;
    if (!ti || !tl || ti->type != EE_DT_F32 || tl->type != EE_DT_F32) {
        ee_err_set(err, "--test-set %s: want f32 test.images and test.labels", path);
        goto done;
    }
    const uint64_t k = tl->ne[0];
    if (k == 0 || k > (1u << 20) || ee_gguf_tensor_nelements(tl) != k ||
        ee_gguf_tensor_nelements(ti) != k * il) {
        ee_err_set(err, "--test-set %s: shapes do not fit the model (%zu floats an image)", path, il);
        goto done;
    }
    *images = malloc(sizeof(float) * k * il);
    *labels = malloc(sizeof(float) * k);
    if (!*images || !*labels) {
        ee_err_set(err, "out of memory");
        goto done;
    }
    memcpy(*images, ti->data, sizeof(float) * k * il);
    memcpy(*labels, tl->data, sizeof(float) * k);
    *n = (int)k;
    rc = 0;
done:
    ee_gguf_close(g);
    return rc;
}

/* ---- pictures for a human: 8-bit PGM, each pixel an 8x8 block ------------- */

#define PGM_ZOOM 8

/* pic [h][w] shown as round(255 * clamp(v * gain, 0, 1)). */
static int write_pgm(const char *dir, const char *name, const float *pic, int h, int w,
                     double gain, ee_err *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) return ee_err_set(err, "--dump-pgm: cannot write %s: %s", path, strerror(errno));
    fprintf(f, "P5\n%d %d\n255\n", w * PGM_ZOOM, h * PGM_ZOOM);
    for (int y = 0; y < h * PGM_ZOOM; y++)
        for (int x = 0; x < w * PGM_ZOOM; x++) {
            double v = pic[(y / PGM_ZOOM) * w + x / PGM_ZOOM] * gain;
            v = isfinite(v) ? fmin(fmax(v, 0), 1) : 0;
            fputc((int)lround(255 * v), f);
        }
    if (fclose(f) != 0) return ee_err_set(err, "--dump-pgm: writing %s failed", path);
    return 0;
}

/* Attack A's pictures for dump_pgm: file tag and [n][h * w]. */
typedef struct a_pics {
    const char *tag;
    const float *pics;
} a_pics;

/* The first (up to) 8 images: NN_label_original.pgm (pixels as they are),
 * NN_label_b.pgm (attack B's raw output, clamped to [0, 1] for display)
 * and attack A's pictures, each scaled by its maximum: NN_label_a.pgm (the
 * better channel mode, as before), one file for each of the a[na] and
 * NN_label_a_best.pgm (the best A variant, best). */
static int dump_pgm(const char *dir, const ee_audit_cnn_result *r, const a_pics *a, int na,
                    const float *best, const float *labels, ee_err *err) {
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return ee_err_set(err, "--dump-pgm: cannot create %s: %s", dir, strerror(errno));
    const int hw = r->h * r->w, in_c = r->image_len / hw;
    float *grey = malloc(sizeof(float) * hw);
    if (!grey) return ee_err_set(err, "out of memory");
    int rc = 0;
    for (int i = 0; i < r->n && i < 8 && !rc; i++) {
        char name[64];
        const float *srcs[2] = {r->images, r->recon_b};
        const char *tags[2] = {"original", "b"};
        for (int s = 0; s < 2 && !rc; s++) {
            if (!srcs[s]) continue;
            for (int p = 0; p < hw; p++) {
                double v = 0;
                for (int q = 0; q < in_c; q++) v += srcs[s][(size_t)i * r->image_len + (size_t)q * hw + p];
                grey[p] = (float)(v / in_c);
            }
            snprintf(name, sizeof name, "%02d_label%d_%s.pgm", i, (int)labels[i], tags[s]);
            rc = write_pgm(dir, name, grey, r->h, r->w, 1.0, err);
        }
        for (int k = 0; k <= na && !rc; k++) {
            const float *pa = (k < na ? a[k].pics : best) + (size_t)i * hw;
            float mx = 0;
            for (int p = 0; p < hw; p++) mx = pa[p] > mx ? pa[p] : mx;
            snprintf(name, sizeof name, "%02d_label%d_%s.pgm", i, (int)labels[i],
                     k < na ? a[k].tag : "a_best");
            rc = write_pgm(dir, name, pa, r->h, r->w, mx > 0 ? 1.0 / mx : 0, err);
        }
    }
    free(grey);
    return rc;
}

/* ---- verdicts ---------------------------------------------------------------- */

/* One attack-A variant as the report names it. */
typedef struct a_variant {
    const char *key;   /* JSON field */
    const char *label; /* text */
    const char *what;  /* for the verdict: "the channel mean of each encrypted map" */
    bool many;         /* needs all the intercepted maps, not one */
    const ee_audit_cnn_score *sc;
    const float *pics; /* [n][h * w] */
} a_variant;

static void verdict_a(const ee_audit_cnn_result *r, const a_variant *best, const a_variant *one,
                      char *out, size_t cap) {
    const double base = fmax(r->acc_chance, r->acc_majority);
    const ee_audit_cnn_score *a = best->sc;
    const char *what = a->accuracy >= 0.9 * r->acc_true ? "the digit is readable"
                       : a->accuracy >= 2 * base        ? "the digit is partly readable"
                                                        : "the digit is not readable by this attack";
    int k = snprintf(out, cap,
                     "worker without the public weights: %s from %s (the plaintext model reads "
                     "%.1f%% of the pictures, %.1f%% of the true images, chance %.1f%%; median "
                     "correlation with the image %.2f)",
                     what, best->what, 100 * a->accuracy, 100 * r->acc_true, 100 * base,
                     a->corr_median);
    if (best != one && k > 0 && (size_t)k < cap)
        snprintf(out + k, cap - (size_t)k,
                 "; from one map alone, %s: %.1f%% read, median correlation %.2f", one->label,
                 100 * one->sc->accuracy, one->sc->corr_median);
}

static void verdict_b(const ee_audit_cnn_result *r, char *out, size_t cap) {
    const ee_audit_cnn_score *b = &r->b;
    if (b->max_abs_err < 1e-3 && r->rank_deficient == 0)
        snprintf(out, cap, "worker with the public weights: reconstructs every image (max abs "
                           "pixel error %.2g)", b->max_abs_err);
    else if (b->corr_p10 >= 0.9)
        snprintf(out, cap, "worker with the public weights: reconstructs at least 90%% of the "
                           "images closely (10th percentile correlation %.3f, max abs pixel "
                           "error %.2g, %d systems rank deficient)",
                 b->corr_p10, b->max_abs_err, r->rank_deficient);
    else if (b->accuracy >= 0.9 * r->acc_true)
        snprintf(out, cap, "worker with the public weights: the digits are readable from the "
                           "reconstructions (plaintext model reads %.1f%%; median correlation "
                           "%.2f)", 100 * b->accuracy, b->corr_median);
    else
        snprintf(out, cap, "worker with the public weights: NOT reconstructed by this attack "
                           "(median correlation %.2f, plaintext model reads %.1f%%, perm0 %.0f%% "
                           "correct); stronger attacks may exist",
                 b->corr_median, 100 * b->accuracy, 100 * r->perm0_correct);
}

static json_t *score_json(const ee_audit_cnn_score *s) {
    json_t *o = json_object();
    json_object_set_new(o, "corr_median", jnum(s->corr_median));
    json_object_set_new(o, "corr_p10", jnum(s->corr_p10));
    json_object_set_new(o, "max_abs_err", jnum(s->max_abs_err));
    json_object_set_new(o, "accuracy", jnum(s->accuracy));
    json_object_set_new(o, "seconds", jnum(s->seconds));
    return o;
}

static void print_score(const char *name, const ee_audit_cnn_score *s, const char *err_note) {
    printf("  %-18s correlation with the image: median %.4f, 10th percentile %.4f\n", name,
           s->corr_median, s->corr_p10);
    printf("  %-18s plaintext model reads %.1f%% of the reconstructions; max abs pixel error "
           "%.3g%s; %.4f s\n", "", 100 * s->accuracy, s->max_abs_err, err_note, s->seconds);
}

static json_t *deconv_json(const ee_cnn_deconv_info *d) {
    json_t *o = json_object();
    json_object_set_new(o, "iterations_max", json_integer(d->iterations));
    json_object_set_new(o, "misfit_median", jnum(d->resid));
    json_object_set_new(o, "misfit_max", jnum(d->resid_max));
    return o;
}

/* ---- the command --------------------------------------------------------------- */

int cmd_audit_cnn(int argc, char **argv) {
    enum { MODEL, PUBLIC, PLAIN, KEY, TEST, JSON, DUMP, HELP, NF };
    cli_flag f[NF] = {[MODEL] = {"--model", true},       [PUBLIC] = {"--public", true},
                      [PLAIN] = {"--plain-model", true}, [KEY] = {"--key", true},
                      [TEST] = {"--test-set", true},     [JSON] = {"--json", false},
                      [DUMP] = {"--dump-pgm", true},     [HELP] = {"--help", false}};
    ee_err err = {{0}};
    if (cli_parse(argc, argv, f, NF, &err)) return cmd_fail("audit", err.msg);
    if (!f[MODEL].present || !f[KEY].present || !f[TEST].present)
        return cmd_fail("audit", "an eecnn audit needs --model ENC.gguf, --key K.eekey and "
                                 "--test-set T.gguf (the key and the test set make and score the "
                                 "feature maps; the attacks never see them)");
    if (!f[PUBLIC].present && !f[PLAIN].present)
        return cmd_fail("audit", "give --public PLAIN.gguf (the public weights: attacks A and B), "
                                 "or --plain-model PLAIN.gguf (the model ENC was encrypted from, "
                                 "for the harness only: attack A alone)");
    const char *plain_path = f[PLAIN].present ? f[PLAIN].value : f[PUBLIC].value;
    ee_gguf *ge = NULL, *gp = NULL, *gs = NULL;
    ee_cnn_model *enc = NULL, *pub = NULL, *plain = NULL;
    float *images = NULL, *labels = NULL;
    int n = 0, rc = -1;
    ee_key master, sk;
    memset(&master, 0, sizeof master);
    memset(&sk, 0, sizeof sk);
    ee_audit_cnn_result r;
    memset(&r, 0, sizeof r);
    if (!(ge = ee_gguf_open(f[MODEL].value, &err)) || !(enc = ee_cnn_load(ge, &err))) {
        ee_err_wrap(&err, "--model %s", f[MODEL].value);
        goto done;
    }
    const char *scheme = ee_model_scheme(ge);
    if (!ee_model_is_encrypted(ge) || !scheme || strcmp(scheme, EE_SCHEME_CNN) != 0) {
        ee_err_set(&err, "--model %s is not an encrypted classifier (ee.scheme %s)", f[MODEL].value,
                   scheme ? scheme : "absent");
        goto done;
    }
    if (!(gs = ee_gguf_open(plain_path, &err)) || !(plain = ee_cnn_load(gs, &err))) {
        ee_err_wrap(&err, "%s %s", f[PLAIN].present ? "--plain-model" : "--public", plain_path);
        goto done;
    }
    if (ee_model_is_encrypted(gs)) {
        ee_err_set(&err, "%s %s is encrypted: give the plaintext model",
                   f[PLAIN].present ? "--plain-model" : "--public", plain_path);
        goto done;
    }
    if (f[PUBLIC].present) {
        if (!(gp = ee_gguf_open(f[PUBLIC].value, &err)) || !(pub = ee_cnn_load(gp, &err))) {
            ee_err_wrap(&err, "--public %s", f[PUBLIC].value);
            goto done;
        }
        if (ee_model_is_encrypted(gp)) {
            ee_err_set(&err, "--public %s is encrypted: give the public plaintext weights",
                       f[PUBLIC].value);
            goto done;
        }
    }
    /* The key bound to the model the file was encrypted from, checked
     * against the file: the harness's maps must be the client's. */
    if (ee_key_load(&master, f[KEY].value, &err) ||
        ee_scheme_key(&master, gs, EE_SCHEME_CNN, &sk, &err))
        goto done;
    if (ee_model_check_key(ge, &sk, &err)) {
        ee_err_wrap(&err, "--key (bound to %s)", plain_path);
        goto done;
    }
    if (read_test_set(f[TEST].value, plain, &images, &labels, &n, &err)) goto done;
    if (ee_audit_cnn_run(enc, pub, plain, &sk, images, labels, n, &r, &err)) goto done;

    const bool a_max = r.a_max.corr_median > r.a_mean.corr_median;
    char many_what[2][160], many_label[2][64];
    snprintf(many_what[0], sizeof many_what[0],
             "the first principal component of all %d intercepted maps together", r.n);
    snprintf(many_what[1], sizeof many_what[1],
             "a blind deconvolution of all %d intercepted maps together (shared filters)", r.n);
    snprintf(many_label[0], sizeof many_label[0], "pooled PC (%d maps)", r.n);
    snprintf(many_label[1], sizeof many_label[1], "deconv (%d maps)", r.n);
    const a_variant av[] = {
        {"channel_mean", "channel mean", "the channel mean of each encrypted map", false,
         &r.a_mean, r.recon_a_mean},
        {"channel_max", "channel max", "the channel max of each encrypted map", false, &r.a_max,
         r.recon_a_max},
        {"aligned_mean", "aligned mean", "the polarity-aligned channel mean of each encrypted map",
         false, &r.a_aligned, r.recon_a_aligned},
        {"deconv_one_map", "deconv (1 map)", "a blind deconvolution of each encrypted map alone",
         false, &r.a_deconv1, r.recon_a_deconv1},
        {"pooled_pc", many_label[0], many_what[0], true, &r.a_pc, r.recon_a_pc},
        {"deconv_pooled", many_label[1], many_what[1], true, &r.a_deconvn, r.recon_a_deconvn},
    };
    const int nav = (int)(sizeof av / sizeof av[0]);
    /* The best by median correlation, overall and from one map alone. */
    const a_variant *best = &av[0], *best1 = &av[0];
    for (int k = 1; k < nav; k++) {
        if (av[k].sc->corr_median > best->sc->corr_median) best = &av[k];
        if (!av[k].many && av[k].sc->corr_median > best1->sc->corr_median) best1 = &av[k];
    }
    char va[768], vb[512] = "";
    verdict_a(&r, best, best1, va, sizeof va);
    if (pub) verdict_b(&r, vb, sizeof vb);
    const a_pics dump_a[] = {{"a", a_max ? r.recon_a_max : r.recon_a_mean},
                             {"a_aligned", r.recon_a_aligned},
                             {"a_deconv1", r.recon_a_deconv1},
                             {"a_pc", r.recon_a_pc},
                             {"a_deconvn", r.recon_a_deconvn}};
    if (f[DUMP].present && dump_pgm(f[DUMP].value, &r, dump_a, 5, best->pics, labels, &err))
        goto done;

    if (f[JSON].present) {
        json_t *j = json_object();
        json_object_set_new(j, "model", json_string(f[MODEL].value));
        json_object_set_new(j, "architecture", json_string("eecnn"));
        json_object_set_new(j, "public", pub ? json_string(f[PUBLIC].value) : json_null());
        json_object_set_new(j, "plain_model", json_string(plain_path));
        json_object_set_new(j, "test_set", json_string(f[TEST].value));
        json_object_set_new(j, "count", json_integer(r.n));
        json_object_set_new(j, "fmap_shape", json_pack("[iii]", r.c0, r.h, r.w));
        json_object_set_new(j, "accuracy_true_images", jnum(r.acc_true));
        json_object_set_new(j, "accuracy_chance", jnum(r.acc_chance));
        json_object_set_new(j, "accuracy_majority", jnum(r.acc_majority));
        json_t *a = json_object();
        json_object_set_new(a, "adversary", json_string(A_ADVERSARY));
        for (int k = 0; k < nav; k++) {
            json_t *v = score_json(av[k].sc);
            if (k >= 2) { /* the newer variants say how many maps each picture used */
                json_object_set_new(v, "maps", json_integer(av[k].many ? r.n : 1));
                json_object_set_new(v, "label", json_string(av[k].label));
            }
            if (av[k].sc == &r.a_deconv1) json_object_set_new(v, "fit", deconv_json(&r.deconv1));
            if (av[k].sc == &r.a_deconvn) json_object_set_new(v, "fit", deconv_json(&r.deconvn));
            json_object_set_new(a, av[k].key, v);
        }
        json_object_set_new(a, "best", json_string(best->key));
        json_object_set_new(a, "best_one_map", json_string(best1->key));
        json_object_set_new(a, "verdict", json_string(va));
        json_object_set_new(j, "attack_a", a);
        if (pub) {
            json_t *b = score_json(&r.b);
            json_object_set_new(b, "adversary", json_string(B_ADVERSARY));
            json_object_set_new(b, "perm0_correct", jnum(r.perm0_correct));
            json_object_set_new(b, "perm1_correct", jnum(r.perm1_correct));
            json_object_set_new(b, "perm0_unambiguous", jnum(r.rec.perm0_sure));
            json_object_set_new(b, "perm1_unambiguous", jnum(r.rec.perm1_sure));
            json_object_set_new(b, "perm0_kernel_cost", jnum(r.rec.perm0_cost));
            json_object_set_new(b, "scale_fit_rms", jnum(r.rec.scale_rms));
            json_object_set_new(b, "scale0_rel_err", jnum(r.scale0_err));
            json_object_set_new(b, "rank_deficient", json_integer(r.rank_deficient));
            json_object_set_new(b, "seconds_recover", jnum(r.seconds_recover));
            json_object_set_new(b, "verdict", json_string(vb));
            json_object_set_new(j, "attack_b", b);
        } else {
            json_object_set_new(j, "attack_b", json_null());
        }
        char *s = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(6));
        if (s) puts(s);
        free(s);
        json_decref(j);
    } else {
        printf("audit of %s (eecnn, %s): what a worker learns about the image from the encrypted\n"
               "feature map (%d x %d x %d floats an image)\n",
               f[MODEL].value, EE_SCHEME_CNN, r.c0, r.h, r.w);
        printf("  test set       %d images (%s); the key and the images only make and score the maps\n",
               r.n, f[TEST].value);
        printf("  baselines      plaintext model on the true images %.1f%%; chance %.1f%% (largest "
               "class %.1f%%)\n", 100 * r.acc_true, 100 * r.acc_chance, 100 * r.acc_majority);
        printf("A: %s\n", A_ADVERSARY);
        printf("  from one map each:\n");
        for (int k = 0; k < nav; k++) {
            if (k == 4)
                printf("  from all %d maps together (one key: a worker that sees the traffic; "
                       "no labels, images or weights):\n", r.n);
            print_score(av[k].label, av[k].sc, " (scaled to [0, 1])");
            const ee_cnn_deconv_info *d = av[k].sc == &r.a_deconv1   ? &r.deconv1
                                          : av[k].sc == &r.a_deconvn ? &r.deconvn
                                                                     : NULL;
            if (d)
                printf("  %-18s fit (no key needed): relative misfit %.3g%s (largest %.3g), %d "
                       "rounds at most; assumes a %dx%d stem kernel\n", "", d->resid,
                       av[k].many ? "" : " median over maps", d->resid_max, d->iterations,
                       enc->blocks[1].k, enc->blocks[1].k);
        }
        printf("  best               %s%s%s\n", best->label,
               best != best1 ? "; best from one map: " : "", best != best1 ? best1->label : "");
        if (pub) {
            printf("B: %s (%s)\n", B_ADVERSARY, f[PUBLIC].value);
            printf("  permutations   perm0 %.0f%% correct (%.0f%% unambiguous), perm1 %.0f%% correct "
                   "(%.0f%% unambiguous)\n", 100 * r.perm0_correct, 100 * r.rec.perm0_sure,
                   100 * r.perm1_correct, 100 * r.rec.perm1_sure);
            printf("  fit            kernel direction cost %.2g, log-scale fit rms %.2g; s0 within "
                   "%.2g (relative, up to the common factor)\n", r.rec.perm0_cost, r.rec.scale_rms,
                   r.scale0_err);
            print_score("images", &r.b, " (raw)");
            printf("  %-14s %d of %d systems rank deficient; recovery %.4f s of the %.4f s\n", "",
                   r.rank_deficient, r.n, r.seconds_recover, r.b.seconds);
        } else {
            printf("B: not run (no --public)\n");
        }
        printf("verdict A: %s\n", va);
        if (pub) printf("verdict B: %s\n", vb);
        if (f[DUMP].present)
            printf("pictures: %s (first 8 images; 64x64 PGM; _a_best = %s)\n", f[DUMP].value,
                   best->label);
    }
    rc = 0;
done:
    ee_key_wipe(&master);
    ee_key_wipe(&sk);
    ee_audit_cnn_result_free(&r);
    free(images);
    free(labels);
    ee_cnn_free(enc);
    ee_cnn_free(pub);
    ee_cnn_free(plain);
    ee_gguf_close(ge);
    ee_gguf_close(gp);
    ee_gguf_close(gs);
    cli_flags_free(f, NF);
    return rc ? cmd_fail("audit", err.msg) : 0;
}
