/* ee-model classify: an eecnn image classifier (ee_cnn.h) on image files
 * or on a test set, plaintext or encrypted (docs/VISION.md).
 *
 * Encrypted, the key holder's path is the service's: the stem of the
 * plaintext model on the image, the feature map encrypted (ee_cnn_cipher),
 * the encrypted model from there, the scores decrypted. On a test set it
 * also runs the plaintext model and reports whether every prediction is
 * the same, the largest logit difference, and what each side costs. */
#include "cli_args.h"
#include "cmds.h"
#include "ee_clock.h"
#include "ee_cnn.h"
#include "ee_cnn_cipher.h"
#include "ee_gguf.h"
#include "ee_image.h"
#include "ee_scheme.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- inputs ------------------------------------------------------------------ */

typedef struct inputs {
    int n;
    float *images;        /* [n][image_len] */
    float *labels;        /* [n] test set only (class index as f32) */
    float *ref_logits;    /* [n][n_class] test set only */
} inputs;

static void inputs_free(inputs *in) {
    free(in->images);
    free(in->labels);
    free(in->ref_logits);
    memset(in, 0, sizeof *in);
}

/* A test set written by tools/train_cnn.py: test.images [n][c][h][w],
 * test.labels [n] (f32 class indices), test.logits [n][n_class] (the float64 reference). */
static int read_test_set(const char *path, const ee_cnn_model *m, inputs *in, ee_err *err) {
    ee_gguf *g = ee_gguf_open(path, err);
    if (!g) return ee_err_wrap(err, "--test-set");
    const ee_gguf_tensor *ti = ee_gguf_find_tensor(g, "test.images");
    const ee_gguf_tensor *tl = ee_gguf_find_tensor(g, "test.labels");
    const ee_gguf_tensor *tg = ee_gguf_find_tensor(g, "test.logits");
    int rc = -1;
    const size_t il = ee_cnn_image_len(m);
    if (!ti || !tl || !tg || ti->type != EE_DT_F32 || tl->type != EE_DT_F32 ||
        tg->type != EE_DT_F32) {
        ee_err_set(err, "--test-set %s: want f32 test.images, test.labels, f32 test.logits",
                   path);
        goto done;
    }
    const uint64_t n = tl->ne[0];
    if (n == 0 || n > (1u << 24) || ee_gguf_tensor_nelements(ti) != n * il ||
        ee_gguf_tensor_nelements(tg) != n * (uint64_t)m->hp.n_class) {
        ee_err_set(err, "--test-set %s: shapes do not fit the model (%zu floats an image, %d "
                        "classes)", path, il, m->hp.n_class);
        goto done;
    }
    in->n = (int)n;
    in->images = malloc(sizeof(float) * n * il);
    in->labels = malloc(sizeof(float) * n);
    in->ref_logits = malloc(sizeof(float) * n * m->hp.n_class);
    if (!in->images || !in->labels || !in->ref_logits) {
        ee_err_set(err, "out of memory");
        goto done;
    }
    memcpy(in->images, ti->data, sizeof(float) * n * il);
    memcpy(in->labels, tl->data, sizeof(float) * n);
    memcpy(in->ref_logits, tg->data, sizeof(float) * n * m->hp.n_class);
    rc = 0;
done:
    ee_gguf_close(g);
    return rc;
}

static int read_images(cli_flag *img, bool invert, const ee_cnn_model *m, inputs *in,
                       ee_err *err) {
    const size_t il = ee_cnn_image_len(m);
    if (m->hp.in_c != 1) return ee_err_set(err, "--image: the model takes %d channels; image "
                                                "files are read as grey (1 channel)", m->hp.in_c);
    in->n = (int)img->n_values;
    in->images = malloc(sizeof(float) * il * img->n_values);
    if (!in->images) return ee_err_set(err, "out of memory");
    for (size_t i = 0; i < img->n_values; i++)
        if (ee_image_load_grey(img->values[i], m->hp.in_h, m->hp.in_w, invert,
                               in->images + i * il, NULL, err))
            return ee_err_wrap(err, "--image");
    return 0;
}

/* ---- output ------------------------------------------------------------------ */

static json_t *floats_json(const float *v, size_t n) {
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) json_array_append_new(a, json_real((double)v[i]));
    return a;
}

static double max_abs_diff(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - b[i]));
    return m;
}

int cmd_classify(int argc, char **argv) {
    enum { MODEL, IMAGE, TEST, INVERT, KEY, PLAIN, SHOWC, JSON, BATCH, HELP, NF };
    cli_flag f[NF] = {[MODEL] = {"--model", true},        [IMAGE] = {"--image", true, true},
                      [TEST] = {"--test-set", true},      [INVERT] = {"--invert", false},
                      [KEY] = {"--key", true},            [PLAIN] = {"--plain-model", true},
                      [SHOWC] = {"--show-ciphertext", false}, [JSON] = {"--json", false},
                      [BATCH] = {"--batch", true},
                      [HELP] = {"--help", false}};
    ee_err err = {{0}};
    if (cli_wants_help(argc, argv)) {
        printf("usage: ee-model classify --model M.gguf (--image FILE [--image FILE ...] |\n"
               "         --test-set T.gguf) [--invert] [--json] [--batch N]\n"
               "  Class scores of an eecnn image classifier (docs/VISION.md). Images: PNG,\n"
               "  PGM and what else stb_image reads, made grey and box-resized to the\n"
               "  model's size; bright ink on dark, as the digits set (--invert for dark\n"
               "  ink on a light page). A test set (tools/train_cnn.py) reports accuracy\n"
               "  and the largest difference from its float64 reference logits. The part\n"
               "  after the stem runs --batch maps per call (default: all), as a worker runs\n"
               "  the classify jobs of one round.\n"
               "\n"
               "  Encrypted classifiers (ee-model encrypt; docs/EE.md):\n"
               "    --model ENC.gguf --key K.eekey --plain-model PLAIN.gguf (--image F | --test-set T)\n"
               "        the key holder: the plaintext stem on the image, the feature map\n"
               "        encrypted, the encrypted model, the scores decrypted. A test set also\n"
               "        runs the plaintext model: same predictions?, largest logit\n"
               "        difference, and the client's and the worker's time per image.\n"
               "    --show-ciphertext   also print the encrypted feature map and scores\n"
               "  Workers serve `classify` jobs (ee-consumer). They receive the feature map,\n"
               "  not the image, but the map gives the image away: a worker with the public\n"
               "  weights rebuilds every test digit exactly, one without them reads 96.7%%\n"
               "  by blind deconvolution (docs/SECURITY.md rows 5, 5b; make security-report).\n");
        return 0;
    }
    if (cli_parse(argc, argv, f, NF, &err)) {
        cli_flags_free(f, NF);
        return cmd_fail("classify", err.msg);
    }
    int rc = 1;
    ee_gguf *g = NULL, *pg = NULL;
    ee_cnn_model *m = NULL, *pm = NULL;
    ee_cnn_cipher cc = {0};
    inputs in = {0};
    float *fm = NULL, *efm = NULL, *out = NULL, *plain_out = NULL, *dec = NULL;
    json_t *o = NULL;
    if (!f[MODEL].present || f[IMAGE].present == f[TEST].present) {
        ee_err_set(&err, "give --model and one of --image and --test-set");
        goto done;
    }
    if (f[KEY].present != f[PLAIN].present) {
        ee_err_set(&err, "--key and --plain-model go together (the key is bound to the plain "
                         "model, whose stem the client runs)");
        goto done;
    }
    if (!(g = ee_gguf_open(f[MODEL].value, &err)) || !(m = ee_cnn_load(g, &err))) {
        ee_err_wrap(&err, "--model %s", f[MODEL].value);
        goto done;
    }
    const bool encrypted = ee_model_is_encrypted(g);
    if (encrypted && !f[KEY].present) {
        ee_err_set(&err, "--model is encrypted and has no stem: give --key and --plain-model (the "
                         "key holder's path); workers serve classify jobs through ee-consumer");
        goto done;
    }
    if (!encrypted && f[KEY].present) {
        ee_err_set(&err, "--key: --model is not encrypted (give the file ee-model encrypt made)");
        goto done;
    }
    const ee_cnn_model *client = m; /* the model whose stem runs on the image */
    if (encrypted) {
        if (!(pg = ee_gguf_open(f[PLAIN].value, &err)) || !(pm = ee_cnn_load(pg, &err))) {
            ee_err_wrap(&err, "--plain-model %s", f[PLAIN].value);
            goto done;
        }
        if (ee_model_is_encrypted(pg)) {
            ee_err_set(&err, "--plain-model %s is itself encrypted", f[PLAIN].value);
            goto done;
        }
        if (ee_cnn_fmap_len(pm) != ee_cnn_fmap_len(m) || pm->hp.n_class != m->hp.n_class) {
            ee_err_set(&err, "--plain-model's stem or classes do not fit --model");
            goto done;
        }
        char key_id[EE_KEY_ID_HEX];
        if (ee_cnn_cipher_load(&cc, f[KEY].value, pg, pm, key_id, &err)) goto done;
        ee_key check = {0};
        memcpy(check.id, key_id, sizeof key_id);
        if (ee_model_check_key(g, &check, &err)) goto done;
        client = pm;
    }
    if (f[TEST].present ? read_test_set(f[TEST].value, client, &in, &err)
                        : read_images(&f[IMAGE], f[INVERT].present, client, &in, &err))
        goto done;
    const int n = in.n, nc = m->hp.n_class;
    long batch = n;
    if (f[BATCH].present && cli_int("--batch", f[BATCH].value, 1, 1 << 20, &batch, &err)) goto done;
    const size_t fl = ee_cnn_fmap_len(client);
    fm = malloc(sizeof(float) * fl * n);
    efm = malloc(sizeof(float) * fl * n);
    out = malloc(sizeof(float) * (size_t)nc * n);
    plain_out = malloc(sizeof(float) * (size_t)nc * n);
    dec = malloc(sizeof(float) * (size_t)nc * n);
    if (!fm || !efm || !out || !plain_out || !dec) {
        ee_err_set(&err, "out of memory");
        goto done;
    }
    /* The client's stem and cipher, then the (worker's) rest, timed apart. */
    double t0 = ee_now_ms();
    if (ee_cnn_stem(client, in.images, n, fm, &err)) goto done;
    double stem_ms = ee_now_ms() - t0;
    t0 = ee_now_ms();
    for (int i = 0; i < n; i++)
        if (encrypted) ee_cnn_fmap_encrypt(&cc, fm + (size_t)i * fl, efm + (size_t)i * fl);
    double enc_ms = ee_now_ms() - t0;
    /* One untimed call first: the first one pays page faults and the BLAS
     * threads' start, which no worker pays per job. */
    if (ee_cnn_classify_fmaps(m, encrypted ? efm : fm, 1, out, &err)) goto done;
    t0 = ee_now_ms();
    for (int i = 0; i < n; i += (int)batch) {
        const int k = n - i < batch ? n - i : (int)batch;
        if (ee_cnn_classify_fmaps(m, (encrypted ? efm : fm) + (size_t)i * fl, k, out + (size_t)i * nc, &err))
            goto done;
    }
    double rest_ms = ee_now_ms() - t0;
    for (int i = 0; i < n; i++) {
        if (encrypted)
            ee_cnn_scores_decrypt(&cc, out + (size_t)i * nc, dec + (size_t)i * nc);
        else
            memcpy(dec + (size_t)i * nc, out + (size_t)i * nc, sizeof(float) * nc);
    }
    if (encrypted && ee_cnn_classify_fmaps(pm, fm, n, plain_out, &err)) goto done;

    if (f[TEST].present) {
        int correct = 0, same = 0, same_ref = 0;
        for (int i = 0; i < n; i++) {
            int p = ee_cnn_argmax(dec + (size_t)i * nc, nc);
            correct += p == (int)in.labels[i];
            same_ref += p == ee_cnn_argmax(in.ref_logits + (size_t)i * nc, nc);
            if (encrypted) same += p == ee_cnn_argmax(plain_out + (size_t)i * nc, nc);
        }
        const size_t nl = (size_t)n * nc;
        o = json_object();
        json_object_set_new(o, "model", json_string(f[MODEL].value));
        json_object_set_new(o, "encrypted", json_boolean(encrypted));
        json_object_set_new(o, "count", json_integer(n));
        json_object_set_new(o, "accuracy", json_real((double)correct / n));
        json_object_set_new(o, "same_prediction_as_reference", json_integer(same_ref));
        json_object_set_new(o, "max_abs_vs_reference", json_real(max_abs_diff(dec, in.ref_logits, nl)));
        if (encrypted) {
            json_object_set_new(o, "same_prediction_as_plaintext", json_integer(same));
            json_object_set_new(o, "max_abs_vs_plaintext", json_real(max_abs_diff(dec, plain_out, nl)));
            json_object_set_new(o, "client_encrypt_us_per_image", json_real(1000.0 * enc_ms / n));
        }
        json_object_set_new(o, "stem_us_per_image", json_real(1000.0 * stem_ms / n));
        json_object_set_new(o, "rest_us_per_image", json_real(1000.0 * rest_ms / n));
        json_object_set_new(o, "batch", json_integer(batch));
        json_object_set_new(o, "image_bytes", json_integer((json_int_t)(ee_cnn_image_len(client) * sizeof(float))));
        json_object_set_new(o, "fmap_bytes", json_integer((json_int_t)(fl * sizeof(float))));
        if (f[JSON].present) {
            char *s = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(9));
            puts(s);
            free(s);
        } else {
            printf("%d images: accuracy %.4f; %d/%d predictions as the reference, max |logit "
                   "diff| %.3g\n", n, (double)correct / n, same_ref, n,
                   max_abs_diff(dec, in.ref_logits, nl));
            if (encrypted)
                printf("encrypted: %d/%d predictions as plaintext, max |logit diff| %.3g\n", same,
                       n, max_abs_diff(dec, plain_out, nl));
            printf("per image: stem %.1f us (client), rest %.1f us (%s)\n", 1000.0 * stem_ms / n,
                   1000.0 * rest_ms / n, encrypted ? "worker" : "same process");
        }
    } else {
        for (int i = 0; i < n; i++) {
            const float *sc = dec + (size_t)i * nc;
            int p = ee_cnn_argmax(sc, nc);
            char lb[16];
            const char *label = ee_cnn_class_label(encrypted ? pg : g, p, lb);
            if (f[JSON].present) {
                json_t *r = json_object();
                json_object_set_new(r, "image", json_string(f[IMAGE].values[i]));
                json_object_set_new(r, "class", json_integer(p));
                json_object_set_new(r, "label", json_string(label));
                json_object_set_new(r, "scores", floats_json(sc, nc));
                if (encrypted && f[SHOWC].present) {
                    json_object_set_new(r, "fmap_encrypted", floats_json(efm + (size_t)i * fl, fl));
                    json_object_set_new(r, "scores_encrypted", floats_json(out + (size_t)i * nc, nc));
                }
                char *s = json_dumps(r, JSON_COMPACT | JSON_REAL_PRECISION(9));
                puts(s);
                free(s);
                json_decref(r);
            } else {
                printf("%s: %s (class %d, score %.4f)\n", f[IMAGE].values[i], label, p, sc[p]);
                if (encrypted && f[SHOWC].present) {
                    printf("  encrypted scores:");
                    for (int c = 0; c < nc; c++) printf(" %.4f", out[(size_t)i * nc + c]);
                    printf("\n");
                }
            }
        }
    }
    rc = 0;
done:
    if (rc) cmd_fail("classify", err.msg);
    json_decref(o);
    free(fm);
    free(efm);
    free(out);
    free(plain_out);
    free(dec);
    inputs_free(&in);
    ee_cnn_cipher_free(&cc);
    ee_cnn_free(m);
    ee_cnn_free(pm);
    ee_gguf_close(g);
    ee_gguf_close(pg);
    cli_flags_free(f, NF);
    return rc;
}
