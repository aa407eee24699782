/* The eecnn classifier outside its equivariance (that is test_ee_props.c,
 * sections 10-13): loading and its refusals, the forward pass against a
 * naive double-precision reference, the split into client stem and worker,
 * ee_encrypt_model's refusals for eecnn, the client's cipher, and image
 * decoding (ee_image: stb_image and its box-filter resize).
 *
 * Synthetic models come from tests/common/ee_testcnn; a broken file is the
 * good one with one key or tensor changed through the writer. */
#include "ee_cnn.h"
#include "ee_cnn_cipher.h"
#include "ee_encrypt.h"
#include "ee_gguf.h"
#include "ee_image.h"
#include "ee_key.h"
#include "ee_scheme.h"
#include "ee_testcnn.h"
#include "ee_testmodel.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The default test network: 1 -> 4 -> 6 -> 5 channels, 3x3 kernels, 8x8
 * input pooled 2 (8 -> 4 -> 2 -> 1), 7 classes. */
static void base(ee_testcnn *c) {
    ee_testcnn_init(c, 3, (const int[]){4, 6, 5}, 3, 1, 8, 8, 2, 7, 42);
}

static void *xcalloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size);
    ck_assert_ptr_nonnull(p);
    return p;
}

static void fixed_key(ee_key *k, uint8_t n) {
    uint8_t b[EE_KEY_BYTES];
    for (int i = 0; i < EE_KEY_BYTES; i++) b[i] = (uint8_t)(n * 31 + i * 5 + 3);
    ee_key_from_bytes(k, b);
}

/* Uniform [0, 1) images from a seed. */
static float *random_images(size_t n, uint64_t seed) {
    float *x = xcalloc(n, sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = (float)((ee_test_splitmix64(&seed) >> 40) / 16777216.0);
    return x;
}

/* ---- 1. the forward pass against a naive reference --------------------------- */

/* The eecnn forward pass written out in double, independently of the
 * engine: "same" conv with zero padding, ReLU, max-pool p x p dropping a
 * trailing odd row or column, flatten (c, y, x), linear. */
static void ref_forward(const ee_testcnn *c, const float *img, double *logits) {
    int C = c->in_c, H = c->in_h, W = c->in_w;
    double *a = xcalloc((size_t)C * H * W, sizeof(double));
    for (int i = 0; i < C * H * W; i++) a[i] = img[i];
    for (int l = 0; l < c->n_block; l++) {
        const int O = c->c_out[l], K = c->k, P = K / 2, p = c->pool;
        double *y = xcalloc((size_t)O * H * W, sizeof(double));
        for (int o = 0; o < O; o++)
            for (int r = 0; r < H; r++)
                for (int q = 0; q < W; q++) {
                    double s = c->conv_b[l][o];
                    for (int i = 0; i < C; i++)
                        for (int ky = 0; ky < K; ky++)
                            for (int kx = 0; kx < K; kx++) {
                                int rr = r + ky - P, qq = q + kx - P;
                                if (rr < 0 || rr >= H || qq < 0 || qq >= W) continue;
                                s += (double)c->conv_w[l][((o * C + i) * K + ky) * K + kx] *
                                     a[(i * H + rr) * W + qq];
                            }
                    y[(o * H + r) * W + q] = s > 0 ? s : 0;
                }
        const int oh = p > 1 ? H / p : H, ow = p > 1 ? W / p : W;
        double *z = xcalloc((size_t)O * oh * ow, sizeof(double));
        for (int o = 0; o < O; o++)
            for (int r = 0; r < oh; r++)
                for (int q = 0; q < ow; q++) {
                    double m = -INFINITY;
                    for (int dy = 0; dy < (p > 1 ? p : 1); dy++)
                        for (int dx = 0; dx < (p > 1 ? p : 1); dx++)
                            m = fmax(m, y[(o * H + r * (p > 1 ? p : 1) + dy) * W + q * (p > 1 ? p : 1) + dx]);
                    z[(o * oh + r) * ow + q] = m;
                }
        free(a), free(y);
        a = z, C = O, H = oh, W = ow;
    }
    ck_assert_int_eq(C * H * W, c->n_feat);
    for (int r = 0; r < c->n_class; r++) {
        double s = c->head_b[r];
        for (int f = 0; f < c->n_feat; f++) s += (double)c->head_w[(size_t)r * c->n_feat + f] * a[f];
        logits[r] = s;
    }
    free(a);
}

static void check_forward(const ee_testcnn *c, int n) {
    ee_err err = {{0}};
    ee_cnn_model *m = ee_testcnn_load(c);
    const size_t il = ee_cnn_image_len(m);
    float *img = random_images(il * n, 7), *got = xcalloc((size_t)n * c->n_class, sizeof(float));
    double *want = xcalloc((size_t)c->n_class, sizeof(double)), worst = 0, scale = 0;
    ck_assert_msg(ee_cnn_classify_images(m, img, n, got, &err) == 0, "%s", err.msg);
    for (int i = 0; i < n; i++) {
        ref_forward(c, img + il * i, want);
        for (int r = 0; r < c->n_class; r++) {
            worst = fmax(worst, fabs(got[i * c->n_class + r] - want[r]));
            scale = fmax(scale, fabs(want[r]));
        }
    }
    ck_assert_msg(scale > 0.1, "degenerate test network (max |logit| %.3g)", scale);
    ck_assert_msg(worst <= 1e-5 * scale, "forward pass vs reference: %.3g (max |logit| %.3g)", worst,
                  scale);
    ee_cnn_free(m);
    free(img), free(got), free(want);
}

START_TEST(load_reads_the_shape) {
    ee_testcnn c;
    base(&c);
    ee_cnn_model *m = ee_testcnn_load(&c);
    ck_assert_int_eq(m->hp.n_block, 3);
    ck_assert_int_eq(m->hp.client_blocks, 0);
    ck_assert_int_eq(m->hp.pool, 2);
    ck_assert_int_eq(m->hp.n_class, 7);
    const int cin[3] = {1, 4, 6}, cout[3] = {4, 6, 5}, hw[3] = {8, 4, 2};
    for (int l = 0; l < 3; l++) {
        ck_assert_int_eq(m->blocks[l].c_in, cin[l]);
        ck_assert_int_eq(m->blocks[l].c_out, cout[l]);
        ck_assert_int_eq(m->blocks[l].k, 3);
        ck_assert_int_eq(m->blocks[l].h, hw[l]);
        ck_assert_int_eq(m->blocks[l].w, hw[l]);
    }
    ck_assert_int_eq(m->n_feat, 5);
    ck_assert_uint_eq(ee_cnn_image_len(m), 64);
    ck_assert_uint_eq(ee_cnn_fmap_len(m), 4 * 64);
    ck_assert_int_eq(ee_cnn_fmap_channels(m), 4);
    ee_cnn_free(m);
    ee_testcnn_free(&c);
}
END_TEST

START_TEST(forward_matches_reference) {
    ee_testcnn c;
    base(&c);
    check_forward(&c, 12);
    ee_testcnn_free(&c);
    /* odd sizes (7x9 pooled 2 drops the last row and column), 5x5 kernels,
     * three input channels */
    ee_testcnn_init(&c, 2, (const int[]){5, 3}, 5, 3, 7, 9, 2, 4, 43);
    check_forward(&c, 6);
    ee_testcnn_free(&c);
    /* pool 1 (no pooling), 1x1 kernels */
    ee_testcnn_init(&c, 2, (const int[]){3, 2}, 1, 2, 3, 4, 1, 3, 44);
    check_forward(&c, 4);
    ee_testcnn_free(&c);
}
END_TEST

/* The worker's half after the client's equals the whole pass bitwise: the
 * split only moves where the stem runs. */
START_TEST(stem_then_fmaps_equals_images) {
    ee_err err = {{0}};
    ee_testcnn c;
    base(&c);
    ee_cnn_model *m = ee_testcnn_load(&c);
    enum { N = 5 };
    float *img = random_images(ee_cnn_image_len(m) * N, 9);
    float *fm = xcalloc(ee_cnn_fmap_len(m) * N, sizeof(float));
    float *a = xcalloc(N * 7, sizeof(float)), *b = xcalloc(N * 7, sizeof(float));
    ck_assert_msg(ee_cnn_stem(m, img, N, fm, &err) == 0, "%s", err.msg);
    for (size_t i = 0; i < ee_cnn_fmap_len(m) * N; i++) ck_assert(fm[i] >= 0); /* after ReLU */
    ck_assert_msg(ee_cnn_classify_fmaps(m, fm, N, a, &err) == 0, "%s", err.msg);
    ck_assert_msg(ee_cnn_classify_images(m, img, N, b, &err) == 0, "%s", err.msg);
    ck_assert(memcmp(a, b, sizeof(float) * N * 7) == 0);
    ee_cnn_free(m);
    ee_testcnn_free(&c);
    free(img), free(fm), free(a), free(b);
}
END_TEST

START_TEST(argmax_first_of_ties) {
    const float s[5] = {0.5f, 2.0f, -1.0f, 2.0f, 1.0f};
    ck_assert_int_eq(ee_cnn_argmax(s, 5), 1);
    ck_assert_int_eq(ee_cnn_argmax(s, 1), 0);
    const float neg[3] = {-3.0f, -1.0f, -2.0f};
    ck_assert_int_eq(ee_cnn_argmax(neg, 3), 1);
}
END_TEST

/* ---- 2. load refusals ----------------------------------------------------------- */

/* Write w, open it (must be valid GGUF), and expect ee_cnn_load to refuse
 * with an error containing want. */
static void expect_load_error(ee_gguf_writer *w, const char *want) {
    ee_err err = {{0}};
    char *path = ee_testcnn_write_tmp(w);
    ee_gguf *g = ee_gguf_open(path, &err);
    unlink(path); /* the mapping stays valid; a failed assertion leaves no file */
    ck_assert_msg(g != NULL, "%s", err.msg);
    free(path);
    ee_cnn_model *m = ee_cnn_load(g, &err);
    ck_assert_msg(m == NULL, "loaded (expected: %s)", want);
    ck_assert_msg(strstr(err.msg, want), "error '%s' lacks '%s'", err.msg, want);
    ee_gguf_close(g);
}

static void set_u32(ee_gguf_writer *w, const char *key, uint32_t v) {
    ee_err err = {{0}};
    ck_assert_msg(ee_gguf_writer_set_u32(w, key, v, &err) == 0, "%s", err.msg);
}

static void add_f32(ee_gguf_writer *w, const char *name, uint32_t n_dims, const uint64_t *ne) {
    uint64_t n = 1;
    for (uint32_t i = 0; i < n_dims; i++) n *= ne[i];
    float *z = xcalloc(n, sizeof(float));
    ee_err err = {{0}};
    ck_assert_msg(ee_gguf_writer_add_tensor(w, name, n_dims, ne, EE_DT_F32, z, true, &err) == 0,
                  "%s", err.msg);
    free(z);
}

START_TEST(load_rejects_wrong_architecture) {
    ee_testcnn c;
    base(&c);
    ee_err err = {{0}};
    ee_gguf_writer *w = ee_testcnn_writer(&c, NULL);
    ck_assert_int_eq(ee_gguf_writer_set_str(w, "general.architecture", "llama", &err), 0);
    expect_load_error(w, "not an eecnn model (general.architecture is 'llama')");
    w = ee_testcnn_writer(&c, NULL);
    ee_gguf_writer_remove_kv(w, "general.architecture");
    expect_load_error(w, "not an eecnn model (general.architecture is '(missing)')");
    ee_testcnn_free(&c);
}
END_TEST

START_TEST(load_rejects_missing_tensor) {
    static const char *const names[] = {"blk.0.conv.weight", "blk.1.conv.weight", "blk.2.conv.bias",
                                        "output.weight", "output.bias"};
    ee_testcnn c;
    base(&c);
    char want[96];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(want, sizeof want, "tensor '%s' is missing", names[i]);
        expect_load_error(ee_testcnn_writer(&c, names[i]), want);
    }
    ee_testcnn_free(&c);
}
END_TEST

START_TEST(load_rejects_wrong_shapes) {
    ee_testcnn c;
    base(&c);
    /* block 1 reading 5 input channels where block 0 makes 4 */
    ee_gguf_writer *w = ee_testcnn_writer(&c, "blk.1.conv.weight");
    add_f32(w, "blk.1.conv.weight", 4, (const uint64_t[]){3, 3, 5, 6});
    expect_load_error(w, "tensor 'blk.1.conv.weight' has ne[2] = 5, expected 4");
    /* a 3-D weight */
    w = ee_testcnn_writer(&c, "blk.1.conv.weight");
    add_f32(w, "blk.1.conv.weight", 3, (const uint64_t[]){3, 3, 4});
    expect_load_error(w, "tensor 'blk.1.conv.weight' is not 4-dimensional");
    /* a bias of the wrong length */
    w = ee_testcnn_writer(&c, "blk.1.conv.bias");
    add_f32(w, "blk.1.conv.bias", 1, (const uint64_t[]){7});
    expect_load_error(w, "tensor 'blk.1.conv.bias' has ne[0] = 7, expected 6");
    /* a head for another feature count (2x2 positions of 5 channels) */
    w = ee_testcnn_writer(&c, "output.weight");
    add_f32(w, "output.weight", 2, (const uint64_t[]){20, 7});
    expect_load_error(w, "tensor 'output.weight' has ne[0] = 20, expected 5");
    /* a head for another class count */
    w = ee_testcnn_writer(&c, "output.");
    add_f32(w, "output.weight", 2, (const uint64_t[]){5, 8});
    add_f32(w, "output.bias", 1, (const uint64_t[]){8});
    expect_load_error(w, "tensor 'output.weight' has ne[1] = 8, expected 7");
    ee_testcnn_free(&c);
}
END_TEST

START_TEST(load_rejects_even_or_non_square_kernel) {
    ee_testcnn c;
    base(&c);
    ee_gguf_writer *w = ee_testcnn_writer(&c, "blk.1.conv.weight");
    add_f32(w, "blk.1.conv.weight", 4, (const uint64_t[]){2, 2, 4, 6});
    expect_load_error(w, "tensor 'blk.1.conv.weight' has a 2x2 kernel; eecnn kernels are square and odd");
    w = ee_testcnn_writer(&c, "blk.0.conv.weight");
    add_f32(w, "blk.0.conv.weight", 4, (const uint64_t[]){4, 4, 1, 4});
    expect_load_error(w, "has a 4x4 kernel");
    w = ee_testcnn_writer(&c, "blk.2.conv.weight");
    add_f32(w, "blk.2.conv.weight", 4, (const uint64_t[]){3, 1, 6, 5});
    expect_load_error(w, "tensor 'blk.2.conv.weight' has a 1x3 kernel");
    ee_testcnn_free(&c);
}
END_TEST

START_TEST(load_rejects_client_blocks_without_worker_block) {
    ee_testcnn c;
    ee_testcnn_init(&c, 1, (const int[]){4}, 3, 1, 8, 8, 2, 7, 45);
    ee_gguf_writer *w = ee_testcnn_writer(&c, "blk.0.");
    set_u32(w, "eecnn.client_blocks", 1);
    expect_load_error(w, "eecnn.client_blocks = 1 leaves no block to run (block_count 1)");
    ee_testcnn_free(&c);
    base(&c);
    w = ee_testcnn_writer(&c, NULL);
    set_u32(w, "eecnn.client_blocks", 3);
    expect_load_error(w, "eecnn.client_blocks = 3 is out of range [0, 1]");
    /* and the hyperparameters' own ranges */
    w = ee_testcnn_writer(&c, NULL);
    set_u32(w, "eecnn.block_count", 0);
    expect_load_error(w, "eecnn.block_count = 0 is out of range [1, 16]");
    w = ee_testcnn_writer(&c, NULL);
    ee_gguf_writer_remove_kv(w, "eecnn.class_count");
    expect_load_error(w, "eecnn.class_count");
    ee_testcnn_free(&c);
}
END_TEST

START_TEST(load_rejects_pool_to_nothing) {
    ee_testcnn c;
    base(&c);
    ee_gguf_writer *w = ee_testcnn_writer(&c, NULL);
    set_u32(w, "eecnn.pool_size", 4); /* 8 -> 2 -> 0 */
    expect_load_error(w, "block 1 pools the image to nothing (2x2 input, pool 4)");
    w = ee_testcnn_writer(&c, NULL);
    set_u32(w, "eecnn.pool_size", 9);
    expect_load_error(w, "block 0 pools the image to nothing (8x8 input, pool 9)");
    ee_testcnn_free(&c);
}
END_TEST

/* ---- 3. encrypted files: the stem stays with the client ---------------------- */

/* c written and encrypted under k; both files opened and already removed
 * (the mappings stay valid, and a failed assertion leaves no file). */
static ee_gguf *encrypt_base(const ee_testcnn *c, const ee_key *k, ee_gguf **plain_out) {
    ee_err err = {{0}};
    char *pp = ee_testcnn_write(c), *ep = ee_test_tmpfile(".gguf");
    ee_gguf *pg = ee_gguf_open(pp, &err);
    unlink(pp);
    free(pp);
    ck_assert_msg(pg != NULL, "%s", err.msg);
    ee_encrypt_opts o = {.out_type = EE_DT_F32};
    int rc = ee_encrypt_model(pg, k, &o, ep, NULL, &err);
    ee_gguf *eg = rc == 0 ? ee_gguf_open(ep, &err) : NULL;
    unlink(ep);
    free(ep);
    ck_assert_msg(eg != NULL, "%s", err.msg);
    *plain_out = pg;
    return eg;
}

START_TEST(stem_refuses_encrypted_model) {
    ee_err err = {{0}};
    ee_testcnn c;
    base(&c);
    ee_key k;
    fixed_key(&k, 1);
    ee_gguf *pg;
    ee_gguf *eg = encrypt_base(&c, &k, &pg);
    ee_cnn_model *em = ee_cnn_load(eg, &err);
    ck_assert_msg(em != NULL, "%s", err.msg);
    /* the stem's width comes from block 1's input channels */
    ck_assert_int_eq(em->hp.client_blocks, 1);
    ck_assert_ptr_null(em->blocks[0].weight);
    ck_assert_int_eq(ee_cnn_fmap_channels(em), 4);
    ck_assert_uint_eq(ee_cnn_fmap_len(em), 4 * 64);
    float img[64] = {0}, fm[4 * 64], logits[7];
    ck_assert_int_eq(ee_cnn_stem(em, img, 1, fm, &err), -1);
    ck_assert_msg(strstr(err.msg, "this file has no stem"), "%s", err.msg);
    err = (ee_err){{0}};
    ck_assert_int_eq(ee_cnn_classify_images(em, img, 1, logits, &err), -1);
    ck_assert_msg(strstr(err.msg, "no stem"), "%s", err.msg);
    ee_cnn_free(em);
    ee_gguf_close(eg), ee_gguf_close(pg);
    ee_key_wipe(&k);
    ee_testcnn_free(&c);
}
END_TEST

/* ee_encrypt_model must refuse with want and leave no file at out. */
static void expect_encrypt_error(const ee_gguf *g, ee_dtype type, const char *want) {
    ee_err err = {{0}};
    ee_key k;
    fixed_key(&k, 2);
    char *out = ee_test_tmpfile(".gguf");
    unlink(out);
    ee_encrypt_opts o = {.out_type = type};
    ck_assert_int_eq(ee_encrypt_model(g, &k, &o, out, NULL, &err), -1);
    ck_assert_msg(strstr(err.msg, want), "error '%s' lacks '%s'", err.msg, want);
    ck_assert_msg(access(out, F_OK) != 0, "a refused encryption wrote %s", out);
    free(out);
    ee_key_wipe(&k);
}

/* w written, opened and removed again (the mapping stays valid). */
static ee_gguf *open_writer(ee_gguf_writer *w) {
    ee_err err = {{0}};
    char *path = ee_testcnn_write_tmp(w);
    ee_gguf *g = ee_gguf_open(path, &err);
    unlink(path);
    free(path);
    ck_assert_msg(g != NULL, "%s", err.msg);
    return g;
}

START_TEST(encrypt_refusals) {
    ee_testcnn c;
    base(&c);
    ee_key k;
    fixed_key(&k, 1);
    ee_gguf *pg;
    ee_gguf *eg = encrypt_base(&c, &k, &pg);
    /* an encrypted file (ee.scheme set) */
    expect_encrypt_error(eg, EE_DT_F32, "already encrypted");
    /* a file without its stem but no ee.scheme (a stripped encrypted file) */
    ee_gguf_writer *w = ee_testcnn_writer(&c, "blk.0.");
    set_u32(w, "eecnn.client_blocks", 1);
    ee_gguf *sg = open_writer(w);
    expect_encrypt_error(sg, EE_DT_F32, "the classifier has no stem (eecnn.client_blocks is set)");
    /* block-quantized or half-precision output */
    expect_encrypt_error(pg, EE_DT_F16, "encrypted classifiers are written as f32 (asked for f16)");
    expect_encrypt_error(pg, EE_DT_Q8_0, "written as f32 (asked for q8_0)");
    /* one block: nothing would be left for the worker but the head */
    ee_testcnn one;
    ee_testcnn_init(&one, 1, (const int[]){4}, 3, 1, 8, 8, 2, 7, 46);
    ee_gguf *og = open_writer(ee_testcnn_writer(&one, NULL));
    expect_encrypt_error(og, EE_DT_F32, "needs 2 or more blocks");
    ee_gguf_close(eg), ee_gguf_close(pg), ee_gguf_close(sg), ee_gguf_close(og);
    ee_key_wipe(&k);
    ee_testcnn_free(&c), ee_testcnn_free(&one);
}
END_TEST

/* ---- 4. the client's cipher ---------------------------------------------------- */

START_TEST(cipher_round_trip) {
    ee_err err = {{0}};
    enum { CH = 6, HW = 49, NC = 10 };
    ee_key k;
    fixed_key(&k, 3);
    ee_cnn_cipher c;
    ck_assert_msg(ee_cnn_cipher_init(&c, &k, CH, HW, NC, &err) == 0, "%s", err.msg);
    /* a permutation and scales in [1/4, 4] */
    int seen[CH] = {0}, cseen[NC] = {0};
    for (int j = 0; j < CH; j++) {
        ck_assert_uint_lt(c.perm[j], CH);
        seen[c.perm[j]]++;
        ck_assert(c.scale[j] >= 0.25f && c.scale[j] <= 4.0f);
    }
    for (int j = 0; j < CH; j++) ck_assert_int_eq(seen[j], 1);
    for (int r = 0; r < NC; r++) cseen[c.class_perm[r]]++;
    for (int r = 0; r < NC; r++) ck_assert_int_eq(cseen[r], 1);

    float *x = random_images(CH * HW, 11), e[CH * HW], back[CH * HW];
    ee_cnn_fmap_encrypt(&c, x, e);
    ee_cnn_fmap_decrypt(&c, e, back);
    double worst = 0, moved = 0, mx = 0;
    for (int i = 0; i < CH * HW; i++) {
        worst = fmax(worst, fabs((double)back[i] - x[i]));
        moved = fmax(moved, fabs((double)e[i] - x[i]));
        mx = fmax(mx, fabs(x[i]));
    }
    ck_assert_msg(worst <= 1e-6 * mx, "fmap round trip: %.3g", worst / mx);
    ck_assert_msg(moved > 0.1 * mx, "the encrypted map equals the plaintext one (%.3g)", moved / mx);
    /* channel perm[j] lands on j, times scale[j] */
    for (int j = 0; j < CH; j++)
        for (int i = 0; i < HW; i++)
            ck_assert_float_eq(e[j * HW + i], c.scale[j] * x[c.perm[j] * HW + i]);

    /* scores: encrypted slot r holds class class_perm[r] */
    float s[NC], se[NC], sd[NC];
    for (int r = 0; r < NC; r++) s[r] = (float)r - 3.5f;
    for (int r = 0; r < NC; r++) se[r] = s[c.class_perm[r]];
    ee_cnn_scores_decrypt(&c, se, sd);
    ck_assert(memcmp(sd, s, sizeof s) == 0);

    ee_cnn_cipher bad;
    ck_assert_int_eq(ee_cnn_cipher_init(&bad, &k, 0, HW, NC, &err), -1);
    ck_assert_msg(strstr(err.msg, "invalid feature map (0 channels of 49)"), "%s", err.msg);
    ee_cnn_cipher_free(&c);
    ee_key_wipe(&k);
    free(x);
}
END_TEST

/* The client's cipher and the encryption derive the same stream: block 0's
 * permutation and scales and the class permutation of ee_cnn_secrets; and
 * ee_cnn_cipher_load from a key file binds the key to the plaintext model
 * as ee_encrypt_model did (same ee.key_id). */
START_TEST(cipher_agrees_with_secrets_and_key_file) {
    ee_err err = {{0}};
    ee_testcnn c;
    base(&c);
    ee_key k, sk;
    fixed_key(&k, 4);
    ee_gguf *pg;
    ee_gguf *eg = encrypt_base(&c, &k, &pg);
    ee_cnn_model *pm = ee_cnn_load(pg, &err);
    ck_assert_msg(pm != NULL, "%s", err.msg);
    ck_assert_int_eq(ee_scheme_key(&k, pg, EE_SCHEME_CNN, &sk, &err), 0);
    ee_cnn_secrets s;
    ck_assert_msg(ee_cnn_secrets_derive(&s, &sk, 3, (const int[]){4, 6, 5}, 7, &err) == 0, "%s",
                  err.msg);
    char *dir = ee_test_mkdtemp("cnnkey"), kpath[1024], id[EE_KEY_ID_HEX];
    snprintf(kpath, sizeof kpath, "%s/k.eekey", dir);
    ck_assert_msg(ee_key_save(&k, kpath, &err) == 0, "%s", err.msg);
    ee_cnn_cipher cc;
    ck_assert_msg(ee_cnn_cipher_load(&cc, kpath, pg, pm, id, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(cc.channels, 4);
    ck_assert_int_eq(cc.hw, 64);
    for (int j = 0; j < 4; j++) {
        ck_assert_uint_eq(cc.perm[j], s.perm[0][j]);
        ck_assert_float_eq(cc.scale[j], (float)s.scale[0][j]);
    }
    for (int r = 0; r < 7; r++) ck_assert_uint_eq(cc.class_perm[r], s.class_perm[r]);
    ck_assert_str_eq(id, sk.id);
    ck_assert_str_eq(ee_gguf_get_str(eg, "ee.key_id", &err), id);
    ck_assert_str_eq(ee_model_scheme(eg), EE_SCHEME_CNN);
    ee_cnn_cipher_free(&cc);
    ee_cnn_secrets_free(&s);
    ee_cnn_free(pm);
    ee_gguf_close(pg), ee_gguf_close(eg);
    ee_test_rmtree(dir);
    free(dir);
    ee_key_wipe(&k), ee_key_wipe(&sk);
    ee_testcnn_free(&c);
}
END_TEST

/* ---- 5. images ----------------------------------------------------------------- */

/* 4x3 8-bit grey PNG (colour type 0), made once with Python's zlib:
 * rows {0, 51, 102, 153}, {204, 255, 17, 34}, {68, 85, 119, 136}. */
static const unsigned char GREY_PNG[] = {
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x00, 0x00, 0x91, 0x9f, 0xf1,
    0x1a, 0x00, 0x00, 0x00, 0x17, 0x49, 0x44, 0x41, 0x54, 0x78, 0xda, 0x63, 0x60, 0x30, 0x4e, 0x9b,
    0xc9, 0x70, 0xe6, 0xbf, 0xa0, 0x12, 0x83, 0x4b, 0x68, 0x79, 0x07, 0x00, 0x21, 0xed, 0x04, 0xc9,
    0x89, 0x86, 0x84, 0x24, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82};
static const unsigned char GREY_PNG_PIX[12] = {0, 51, 102, 153, 204, 255, 17, 34, 68, 85, 119, 136};

/* 2x1 RGB PNG (colour type 2): pure red, pure blue. */
static const unsigned char RGB_PNG[] = {
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x01, 0x08, 0x02, 0x00, 0x00, 0x00, 0x7b, 0x40, 0xe8,
    0xdd, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0xda, 0x63, 0xf8, 0xcf, 0x00, 0x04,
    0xff, 0x01, 0x07, 0x00, 0x01, 0xff, 0x3d, 0x7d, 0x8c, 0x49, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45,
    0x4e, 0x44, 0xae, 0x42, 0x60, 0x82};

/* A binary PGM (P5) of w x h bytes. */
static void write_pgm(const char *path, int w, int h, const unsigned char *px) {
    char head[64];
    int n = snprintf(head, sizeof head, "P5\n%d %d\n255\n", w, h);
    unsigned char *buf = xcalloc((size_t)n + (size_t)w * h, 1);
    memcpy(buf, head, (size_t)n);
    memcpy(buf + n, px, (size_t)w * h);
    ee_test_write_file(path, buf, (size_t)n + (size_t)w * h);
    free(buf);
}

static void expect_pixels(const float *got, const unsigned char *px, int n, bool invert) {
    for (int i = 0; i < n; i++) {
        float want = invert ? 1.0f - px[i] / 255.0f : px[i] / 255.0f;
        ck_assert_msg(fabsf(got[i] - want) <= 1e-6f, "pixel %d: %.7f, expected %.7f", i, got[i], want);
    }
}

typedef struct imgdir {
    char *dir;
    char path[1024];
} imgdir;

static const char *img_path(imgdir *d, const char *name) {
    if (!d->dir) d->dir = ee_test_mkdtemp("cnnimg");
    snprintf(d->path, sizeof d->path, "%s/%s", d->dir, name);
    return d->path;
}

START_TEST(image_pgm_and_png) {
    ee_err err = {{0}};
    imgdir d = {0};
    float out[12];
    ee_image_info info;
    const unsigned char pgm[12] = {0, 1, 2, 127, 128, 200, 254, 255, 10, 20, 30, 40};
    write_pgm(img_path(&d, "a.pgm"), 4, 3, pgm);
    ck_assert_msg(ee_image_load_grey(d.path, 3, 4, false, out, &info, &err) == 0, "%s", err.msg);
    expect_pixels(out, pgm, 12, false);
    ck_assert_int_eq(info.src_w, 4);
    ck_assert_int_eq(info.src_h, 3);
    ck_assert_int_eq(info.src_channels, 1);
    ck_assert_msg(ee_image_load_grey(d.path, 3, 4, true, out, NULL, &err) == 0, "%s", err.msg);
    expect_pixels(out, pgm, 12, true);

    ee_test_write_file(img_path(&d, "g.png"), GREY_PNG, sizeof GREY_PNG);
    ck_assert_msg(ee_image_load_grey(d.path, 3, 4, false, out, &info, &err) == 0, "%s", err.msg);
    expect_pixels(out, GREY_PNG_PIX, 12, false);
    ck_assert_int_eq(info.src_channels, 1);
    ck_assert_msg(ee_image_load_grey(d.path, 3, 4, true, out, NULL, &err) == 0, "%s", err.msg);
    expect_pixels(out, GREY_PNG_PIX, 12, true);

    /* colour is reduced to luma; stb_image's weights are (77 r + 150 g +
     * 29 b) >> 8: red 255 -> 76, blue 255 -> 28 */
    ee_test_write_file(img_path(&d, "c.png"), RGB_PNG, sizeof RGB_PNG);
    ck_assert_msg(ee_image_load_grey(d.path, 1, 2, false, out, &info, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(info.src_channels, 3);
    expect_pixels(out, (const unsigned char[]){76, 28}, 2, false);
    ee_test_rmtree(d.dir);
    free(d.dir);
}
END_TEST

/* Box filter: each output pixel is the mean of the source area it covers.
 * A 16x16 checkerboard of 2x2 blocks (200 and 40): to 8x8 each output
 * covers one block (its value, the pattern kept); to 4x4 each covers two
 * blocks of each value (mean 120); to 16x16 nothing is resampled. */
START_TEST(image_box_resize) {
    ee_err err = {{0}};
    imgdir d = {0};
    unsigned char px[256];
    for (int y = 0; y < 16; y++)
        for (int x = 0; x < 16; x++) px[y * 16 + x] = ((y / 2 + x / 2) % 2) ? 40 : 200;
    write_pgm(img_path(&d, "board.pgm"), 16, 16, px);
    float o8[64], o4[16], o16[256];
    ee_image_info info;
    ck_assert_msg(ee_image_load_grey(d.path, 8, 8, false, o8, &info, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(info.src_w, 16);
    for (int y = 0; y < 8; y++)
        for (int x = 0; x < 8; x++) {
            float want = ((y + x) % 2 ? 40 : 200) / 255.0f;
            ck_assert_msg(fabsf(o8[y * 8 + x] - want) <= 1e-5f, "8x8 (%d,%d): %.6f, expected %.6f",
                          x, y, o8[y * 8 + x], want);
        }
    ck_assert_msg(ee_image_load_grey(d.path, 4, 4, false, o4, NULL, &err) == 0, "%s", err.msg);
    for (int i = 0; i < 16; i++)
        ck_assert_msg(fabsf(o4[i] - 120 / 255.0f) <= 1e-5f, "4x4 [%d]: %.6f, expected %.6f", i,
                      o4[i], 120 / 255.0f);
    ck_assert_msg(ee_image_load_grey(d.path, 4, 4, true, o4, NULL, &err) == 0, "%s", err.msg);
    for (int i = 0; i < 16; i++) ck_assert(fabsf(o4[i] - (1 - 120 / 255.0f)) <= 1e-5f);
    ck_assert_msg(ee_image_load_grey(d.path, 16, 16, false, o16, NULL, &err) == 0, "%s", err.msg);
    expect_pixels(o16, px, 256, false);
    ee_test_rmtree(d.dir);
    free(d.dir);
}
END_TEST

static void expect_image_error(const char *path, int h, int w, const char *want) {
    ee_err err = {{0}};
    float out[64];
    ck_assert_int_eq(ee_image_load_grey(path, h, w, false, out, NULL, &err), -1);
    ck_assert_msg(strstr(err.msg, want), "error '%s' lacks '%s'", err.msg, want);
}

START_TEST(image_errors) {
    imgdir d = {0};
    char want[1100];
    /* missing */
    img_path(&d, "missing.png");
    snprintf(want, sizeof want, "cannot open %s: No such file or directory", d.path);
    expect_image_error(d.path, 8, 8, want);
    /* not an image */
    const char text[] = "P7 is not a format stb_image knows; neither is this.\n";
    ee_test_write_file(img_path(&d, "notes.txt"), text, sizeof text - 1);
    snprintf(want, sizeof want, "%s: not an image stb_image reads (unknown image type)", d.path);
    expect_image_error(d.path, 8, 8, want);
    /* empty */
    ee_test_write_file(img_path(&d, "empty.png"), "", 0);
    snprintf(want, sizeof want, "%s: not an image stb_image reads (unknown image type)", d.path);
    expect_image_error(d.path, 8, 8, want);
    /* a PNG cut after its header: the size reads, the pixels do not (and
     * stb_image's reason is empty: ee_image says so rather than "()") */
    ee_test_write_file(img_path(&d, "cut.png"), GREY_PNG, 33);
    snprintf(want, sizeof want, "%s: cannot decode (unknown reason)", d.path);
    expect_image_error(d.path, 8, 8, want);
    /* a model input size of nothing */
    ee_test_write_file(img_path(&d, "g.png"), GREY_PNG, sizeof GREY_PNG);
    expect_image_error(d.path, 0, 8, "invalid model input size 8x0");
    ee_test_rmtree(d.dir);
    free(d.dir);
}
END_TEST

Suite *suite_cnn(void) {
    Suite *s = suite_create("cnn");
    TCase *tc = tcase_create("cnn");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, load_reads_the_shape);
    tcase_add_test(tc, forward_matches_reference);
    tcase_add_test(tc, stem_then_fmaps_equals_images);
    tcase_add_test(tc, argmax_first_of_ties);
    tcase_add_test(tc, load_rejects_wrong_architecture);
    tcase_add_test(tc, load_rejects_missing_tensor);
    tcase_add_test(tc, load_rejects_wrong_shapes);
    tcase_add_test(tc, load_rejects_even_or_non_square_kernel);
    tcase_add_test(tc, load_rejects_client_blocks_without_worker_block);
    tcase_add_test(tc, load_rejects_pool_to_nothing);
    tcase_add_test(tc, stem_refuses_encrypted_model);
    tcase_add_test(tc, encrypt_refusals);
    tcase_add_test(tc, cipher_round_trip);
    tcase_add_test(tc, cipher_agrees_with_secrets_and_key_file);
    tcase_add_test(tc, image_pgm_and_png);
    tcase_add_test(tc, image_box_resize);
    tcase_add_test(tc, image_errors);
    suite_add_tcase(s, tc);
    return s;
}
