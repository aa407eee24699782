#include "ee_testcnn.h"

#include "ee_testmodel.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static float *falloc(size_t n) {
    float *p = calloc(n ? n : 1, sizeof(float));
    ck_assert_ptr_nonnull(p);
    return p;
}

/* Uniform in [-a, a] from the splitmix64 stream. */
static void fill_uniform(float *x, size_t n, double a, uint64_t *st) {
    for (size_t i = 0; i < n; i++) {
        double u = (double)(ee_test_splitmix64(st) >> 11) / 9007199254740992.0; /* [0, 1) */
        x[i] = (float)(a * (2.0 * u - 1.0));
    }
}

static int pooled(int n, int pool) { return pool > 1 ? n / pool : n; }

int ee_testcnn_c_in(const ee_testcnn *c, int l) { return l == 0 ? c->in_c : c->c_out[l - 1]; }

void ee_testcnn_init(ee_testcnn *c, int n_block, const int *c_out, int k, int in_c, int in_h,
                     int in_w, int pool, int n_class, uint64_t seed) {
    ck_assert(n_block >= 1 && n_block <= EE_CNN_MAX_BLOCKS);
    memset(c, 0, sizeof *c);
    *c = (ee_testcnn){.n_block = n_block, .in_c = in_c, .in_h = in_h, .in_w = in_w,
                      .pool = pool, .n_class = n_class, .k = k};
    uint64_t st = seed * 0x9E3779B97F4A7C15ull + 1;
    int h = in_h, w = in_w;
    for (int l = 0; l < n_block; l++) {
        c->c_out[l] = c_out[l];
        const int fan_in = ee_testcnn_c_in(c, l) * k * k;
        const size_t nw = (size_t)c_out[l] * fan_in;
        c->conv_w[l] = falloc(nw);
        c->conv_b[l] = falloc((size_t)c_out[l]);
        fill_uniform(c->conv_w[l], nw, sqrt(6.0 / fan_in), &st); /* He: keeps ReLU maps alive */
        fill_uniform(c->conv_b[l], (size_t)c_out[l], 0.1, &st);
        h = pooled(h, pool);
        w = pooled(w, pool);
        ck_assert_msg(h >= 1 && w >= 1, "test model pools to nothing at block %d", l);
    }
    c->n_feat = c_out[n_block - 1] * h * w;
    c->head_w = falloc((size_t)n_class * c->n_feat);
    c->head_b = falloc((size_t)n_class);
    fill_uniform(c->head_w, (size_t)n_class * c->n_feat, sqrt(3.0 / c->n_feat), &st);
    fill_uniform(c->head_b, (size_t)n_class, 0.1, &st);
}

void ee_testcnn_free(ee_testcnn *c) {
    for (int l = 0; l < EE_CNN_MAX_BLOCKS; l++) {
        free(c->conv_w[l]);
        free(c->conv_b[l]);
    }
    free(c->head_w);
    free(c->head_b);
    memset(c, 0, sizeof *c);
}

const char *ee_testcnn_label(int r) {
    static const char *const words[] = {"heron",  "otter",   "walnut", "comet",
                                        "violin", "basalt",  "fennel", "quartz",
                                        "marten", "saffron", "lantern", "glacier"};
    static char labels[EE_TESTCNN_MAX_LABELS][32];
    ck_assert(r >= 0 && r < EE_TESTCNN_MAX_LABELS);
    snprintf(labels[r], sizeof labels[r], "label-%d-%s", r, words[r % 12]);
    return labels[r];
}

static void add(ee_gguf_writer *w, const char *skip, const char *name, uint32_t n_dims,
                const uint64_t *ne, const float *data) {
    if (skip && strncmp(name, skip, strlen(skip)) == 0) return;
    ee_err err = {{0}};
    ck_assert_msg(ee_gguf_writer_add_tensor(w, name, n_dims, ne, EE_DT_F32, data, true, &err) == 0,
                  "%s", err.msg);
}

ee_gguf_writer *ee_testcnn_writer(const ee_testcnn *c, const char *skip_prefix) {
    ee_err err = {{0}};
    ee_gguf_writer *w = ee_gguf_writer_new(&err);
    ck_assert_msg(w != NULL, "%s", err.msg);
    const char *labels[EE_TESTCNN_MAX_LABELS];
    ck_assert(c->n_class <= EE_TESTCNN_MAX_LABELS);
    for (int r = 0; r < c->n_class; r++) labels[r] = ee_testcnn_label(r);
    int rc = ee_gguf_writer_set_str(w, "general.architecture", "eecnn", &err) ||
             ee_gguf_writer_set_str(w, "general.name", "eecnn-synthetic", &err) ||
             ee_gguf_writer_set_u32(w, "eecnn.block_count", (uint32_t)c->n_block, &err) ||
             ee_gguf_writer_set_u32(w, "eecnn.image.channels", (uint32_t)c->in_c, &err) ||
             ee_gguf_writer_set_u32(w, "eecnn.image.height", (uint32_t)c->in_h, &err) ||
             ee_gguf_writer_set_u32(w, "eecnn.image.width", (uint32_t)c->in_w, &err) ||
             ee_gguf_writer_set_u32(w, "eecnn.pool_size", (uint32_t)c->pool, &err) ||
             ee_gguf_writer_set_u32(w, "eecnn.class_count", (uint32_t)c->n_class, &err) ||
             ee_gguf_writer_set_str_arr(w, "eecnn.class_labels", labels, (uint64_t)c->n_class, &err) ||
             ee_gguf_writer_set_str(w, "eecnn.train.dataset", "synthetic (ee_testcnn)", &err);
    ck_assert_msg(rc == 0, "%s", err.msg);
    char name[64];
    for (int l = 0; l < c->n_block; l++) {
        const uint64_t ne[4] = {(uint64_t)c->k, (uint64_t)c->k, (uint64_t)ee_testcnn_c_in(c, l),
                                (uint64_t)c->c_out[l]};
        const uint64_t nb[1] = {(uint64_t)c->c_out[l]};
        snprintf(name, sizeof name, "blk.%d.conv.weight", l);
        add(w, skip_prefix, name, 4, ne, c->conv_w[l]);
        snprintf(name, sizeof name, "blk.%d.conv.bias", l);
        add(w, skip_prefix, name, 1, nb, c->conv_b[l]);
    }
    const uint64_t nw[2] = {(uint64_t)c->n_feat, (uint64_t)c->n_class}, nb[1] = {(uint64_t)c->n_class};
    add(w, skip_prefix, "output.weight", 2, nw, c->head_w);
    add(w, skip_prefix, "output.bias", 1, nb, c->head_b);
    return w;
}

char *ee_testcnn_write_tmp(ee_gguf_writer *w) {
    ee_err err = {{0}};
    char *path = ee_test_tmpfile(".gguf");
    ck_assert_ptr_nonnull(path);
    ck_assert_msg(ee_gguf_writer_write(w, path, &err) == 0, "%s", err.msg);
    ee_gguf_writer_free(w);
    return path;
}

char *ee_testcnn_write(const ee_testcnn *c) { return ee_testcnn_write_tmp(ee_testcnn_writer(c, NULL)); }

ee_cnn_model *ee_testcnn_load(const ee_testcnn *c) {
    ee_err err = {{0}};
    char *path = ee_testcnn_write(c);
    ee_gguf *g = ee_gguf_open(path, &err);
    ck_assert_msg(g != NULL, "%s", err.msg);
    ee_cnn_model *m = ee_cnn_load(g, &err);
    ck_assert_msg(m != NULL, "%s", err.msg);
    ee_gguf_close(g);
    unlink(path);
    free(path);
    return m;
}
