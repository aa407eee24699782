/* The worker's part of the eecnn classifier, batched: every conv of the
 * n feature maps of a round is one dgemm over their im2col rows, the head
 * one more. Double products keep the logits within ~2e-6 of the float64
 * reference (a float sgemm was 8.6e-6 in PyTorch, too close to the 1e-5
 * the tests hold us to); the sizes are small enough that dgemm costs
 * little more (docs/BENCHMARKS.md, make bench-cnn). Activations are stored
 * as float between blocks. */
#include "ee_cnn.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>

/* out[i][c][h/p][w/p] = max over each p x p window of in[i][c][h][w]. */
static void max_pool(float *out, const float *in, int n, int c, int h, int w, int p) {
    const int oh = h / p, ow = w / p;
    for (size_t ch = 0; ch < (size_t)n * c; ch++)
        for (int y = 0; y < oh; y++)
            for (int x = 0; x < ow; x++) {
                const float *src = in + (ch * h + (size_t)y * p) * w + (size_t)x * p;
                float best = src[0];
                for (int dy = 0; dy < p; dy++)
                    for (int dx = 0; dx < p; dx++)
                        if (src[(size_t)dy * w + dx] > best) best = src[(size_t)dy * w + dx];
                out[(ch * oh + y) * ow + x] = best;
            }
}

/* cols[(i*h + y)*w + x][(ci*k + ky)*k + kx] = in[i][ci][y+ky-k/2][x+kx-k/2],
 * zero outside the map ("same" padding). */
static void im2col(double *cols, const float *in, int n, int c, int h, int w, int k) {
    const int pad = k / 2, K = c * k * k;
    for (int i = 0; i < n; i++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                double *row = cols + (((size_t)i * h + y) * w + x) * K;
                for (int ci = 0; ci < c; ci++) {
                    const float *map = in + ((size_t)i * c + ci) * h * w;
                    for (int ky = 0; ky < k; ky++) {
                        const int iy = y + ky - pad;
                        for (int kx = 0; kx < k; kx++) {
                            const int ix = x + kx - pad;
                            *row++ = iy >= 0 && iy < h && ix >= 0 && ix < w ? map[iy * w + ix] : 0.0;
                        }
                    }
                }
            }
}

/* One block's conv + ReLU on n maps: out [n][c_out][h][w]. */
static void conv_relu_batch(const ee_cnn_block *b, const double *wd, const float *in, int n,
                            float *out, double *cols, double *prod) {
    const int K = b->c_in * b->k * b->k, hw = b->h * b->w;
    im2col(cols, in, n, b->c_in, b->h, b->w, b->k);
    /* prod [n*hw][c_out] = cols [n*hw][K] . W^T (W is [c_out][K]) */
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n * hw, b->c_out, K, 1.0, cols, K, wd, K,
                0.0, prod, b->c_out);
    for (int i = 0; i < n; i++)
        for (int co = 0; co < b->c_out; co++) {
            float *dst = out + ((size_t)i * b->c_out + co) * hw;
            const double bias = b->bias[co];
            for (int p = 0; p < hw; p++) {
                const double v = prod[((size_t)i * hw + p) * b->c_out + co] + bias;
                dst[p] = v > 0.0 ? (float)v : 0.0f;
            }
        }
}

/* Maps per dgemm: enough rows to amortise the call, few enough that the
 * im2col rows stay in L2 (360 maps at once ran 4x slower per map than one
 * at a time; make bench-cnn). */
#define CHUNK 16

/* Scratch for CHUNK maps, sized for the largest block the worker runs,
 * and the weights in double; made once per call and reused by every chunk
 * (allocating it per chunk put glibc's large blocks, mmap'd, through page
 * faults on every chunk: 2.5x the time, measured with make bench-cnn). */
typedef struct scratch {
    float *a, *t;      /* activations [CHUNK][map] */
    double *cols;      /* im2col rows [CHUNK][cols] (also the head's input) */
    double *wd;        /* every block's weight after the stem, then the head's, in double */
    const double *w[EE_CNN_MAX_BLOCKS]; /* block l's weight inside wd (l >= 1) */
    const double *head;                 /* the head's weight inside wd */
    double *prod;      /* products [CHUNK][prod] */
} scratch;

static int scratch_alloc(scratch *sc, const ee_cnn_model *m, ee_err *err) {
    const int nc = m->hp.n_class;
    size_t map = 0, cols = (size_t)m->n_feat, wts = (size_t)nc * m->n_feat, prod = (size_t)nc;
    for (int l = 0; l < m->hp.n_block; l++) {
        const ee_cnn_block *b = &m->blocks[l];
        const size_t hw = (size_t)b->h * b->w, K = (size_t)b->c_in * b->k * b->k;
        if (hw * b->c_out > map) map = hw * b->c_out;
        if (l == 0) continue; /* block 0's conv is the stem: never run here */
        if (hw * K > cols) cols = hw * K;
        wts += (size_t)b->c_out * K;
        if (hw * b->c_out > prod) prod = hw * b->c_out;
    }
    sc->a = malloc(sizeof(float) * map * CHUNK);
    sc->t = malloc(sizeof(float) * map * CHUNK);
    sc->cols = malloc(sizeof(double) * cols * CHUNK);
    sc->wd = malloc(sizeof(double) * wts);
    sc->prod = malloc(sizeof(double) * prod * CHUNK);
    if (sc->a && sc->t && sc->cols && sc->wd && sc->prod) {
        double *d = sc->wd;
        for (int l = 1; l < m->hp.n_block; l++) {
            const ee_cnn_block *b = &m->blocks[l];
            const size_t nw = (size_t)b->c_out * b->c_in * b->k * b->k;
            for (size_t q = 0; q < nw; q++) d[q] = b->weight[q];
            sc->w[l] = d;
            d += nw;
        }
        for (size_t q = 0; q < (size_t)nc * m->n_feat; q++) d[q] = m->head_w[q];
        sc->head = d;
        return 0;
    }
    free(sc->a), free(sc->t), free(sc->cols), free(sc->wd), free(sc->prod);
    return ee_err_set(err, "out of memory for the activations of %d feature maps", CHUNK);
}

static void scratch_free(scratch *sc) {
    free(sc->a), free(sc->t), free(sc->cols), free(sc->wd), free(sc->prod);
}

/* n <= CHUNK maps through pool, blocks 1.., head. */
static void classify_chunk(const ee_cnn_model *m, const float *fmaps, int n, float *logits,
                           scratch *sc) {
    const int L = m->hp.n_block, p = m->hp.pool, nc = m->hp.n_class;
    float *a = sc->a, *t = sc->t;
    /* a: block l's conv output for every map, before pooling. */
    memcpy(a, fmaps, sizeof(float) * ee_cnn_fmap_len(m) * n);
    for (int l = 0;; l++) {
        const ee_cnn_block *b = &m->blocks[l];
        if (p > 1) {
            max_pool(t, a, n, b->c_out, b->h, b->w, p);
            float *s = a;
            a = t;
            t = s;
        }
        if (l + 1 == L) break;
        conv_relu_batch(&m->blocks[l + 1], sc->w[l + 1], a, n, t, sc->cols, sc->prod);
        float *s = a;
        a = t;
        t = s;
    }
    /* head: logits [n][nc] = feat [n][n_feat] . W^T + b, features in (c, y, x) order */
    for (size_t q = 0; q < (size_t)n * m->n_feat; q++) sc->cols[q] = a[q];
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, nc, m->n_feat, 1.0, sc->cols,
                m->n_feat, sc->head, m->n_feat, 0.0, sc->prod, nc);
    for (int i = 0; i < n; i++)
        for (int c = 0; c < nc; c++)
            logits[(size_t)i * nc + c] = (float)(sc->prod[(size_t)i * nc + c] + m->head_b[c]);
}

int ee_cnn_classify_fmaps(const ee_cnn_model *m, const float *fmaps, int n, float *logits,
                          ee_err *err) {
    if (n <= 0) return 0;
    scratch sc = {0};
    if (scratch_alloc(&sc, m, err)) return -1;
    const size_t fl = ee_cnn_fmap_len(m);
    for (int i = 0; i < n; i += CHUNK) {
        const int k = n - i < CHUNK ? n - i : CHUNK;
        classify_chunk(m, fmaps + fl * i, k, logits + (size_t)m->hp.n_class * i, &sc);
    }
    scratch_free(&sc);
    return 0;
}

int ee_cnn_classify_images(const ee_cnn_model *m, const float *images, int n, float *logits,
                           ee_err *err) {
    size_t fl = ee_cnn_fmap_len(m);
    float *f = malloc(sizeof(float) * fl * (size_t)(n > 0 ? n : 1));
    if (!f) return ee_err_set(err, "out of memory for feature maps");
    int rc = ee_cnn_stem(m, images, n, f, err) || ee_cnn_classify_fmaps(m, f, n, logits, err) ? -1 : 0;
    free(f);
    return rc;
}
