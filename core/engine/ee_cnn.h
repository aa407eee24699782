/* ee_cnn: the eecnn image classifier (docs/VISION.md): a stack of conv
 * blocks, then one linear layer.
 *
 *   image  [c][h][w] floats in [0, 1] (eecnn.image.*)
 *   block  conv k x k, stride 1, zero padding k/2 ("same"), bias; ReLU;
 *          then max-pool p x p, stride p (eecnn.pool_size; a trailing odd
 *          row or column is dropped, as torch's MaxPool2d does)
 *   head   flatten the last block's pooled map in (c, y, x) order; linear
 *          to eecnn.class_count logits
 *
 * Block 0 is the stem. Its conv + ReLU is split from its pool so a client
 * can run it alone: an encrypted file has no block 0 (eecnn.client_blocks
 * = 1) and a worker starts from the stem's feature map, pooling it first.
 *
 * Tensors (ours; no llama.cpp architecture runs CNNs), GGUF ne order:
 *   blk.N.conv.weight  [k, k, c_in, c_out]  i.e. row-major [c_out][c_in][k][k]
 *   blk.N.conv.bias    [c_out]
 *   output.weight      [n_feat, n_class]    i.e. [n_class][n_feat]
 *   output.bias        [n_class]
 * f32 or f16 (dequantized at load). */
#ifndef EE_CNN_H
#define EE_CNN_H

#include "ee_error.h"
#include "ee_gguf.h"

#include <stddef.h>

#define EE_CNN_MAX_BLOCKS 16

typedef struct ee_cnn_hparams {
    int n_block;      /* eecnn.block_count, the stem included */
    int client_blocks;/* eecnn.client_blocks: 0 plaintext, 1 stem run by the client */
    int in_c, in_h, in_w; /* eecnn.image.channels/height/width */
    int pool;         /* eecnn.pool_size (1: no pooling) */
    int n_class;      /* eecnn.class_count */
} ee_cnn_hparams;

typedef struct ee_cnn_block {
    int c_in, c_out, k;
    int h, w;          /* input height and width of the conv */
    float *weight;     /* [c_out][c_in][k][k]; NULL for a client block */
    float *bias;       /* [c_out] */
} ee_cnn_block;

typedef struct ee_cnn_model {
    ee_cnn_hparams hp;
    ee_cnn_block blocks[EE_CNN_MAX_BLOCKS];
    int n_feat;        /* head inputs: last block's c_out * pooled h * pooled w */
    float *head_w;     /* [n_class][n_feat] */
    float *head_b;     /* [n_class] */
} ee_cnn_model;

/* Read and check eecnn.* (architecture "eecnn"). */
int ee_cnn_read_hparams(const ee_gguf *g, ee_cnn_hparams *hp, ee_err *err);
/* Load a plaintext or encrypted (no stem) file; every tensor's presence and
 * shape is checked against the hyperparameters. The model owns its
 * weights (g may be closed after). */
ee_cnn_model *ee_cnn_load(const ee_gguf *g, ee_err *err);
void ee_cnn_free(ee_cnn_model *m);

/* Floats of one image (c*h*w) and of the stem's feature map (stem c_out * h
 * * w: "same" convolution keeps the size). */
size_t ee_cnn_image_len(const ee_cnn_model *m);
size_t ee_cnn_fmap_len(const ee_cnn_model *m);
/* The stem's output channels (what the client's cipher permutes). */
int ee_cnn_fmap_channels(const ee_cnn_model *m);

/* The client's part: fmap = ReLU(conv0(image)), for n images. Fails on a
 * file without the stem. */
int ee_cnn_stem(const ee_cnn_model *m, const float *images, int n, float *fmaps, ee_err *err);
/* The worker's part: class scores of n stem feature maps (pool, the other
 * blocks, the head). logits [n][n_class]. */
int ee_cnn_classify_fmaps(const ee_cnn_model *m, const float *fmaps, int n, float *logits,
                          ee_err *err);
/* Both: logits of n images (plaintext files). */
int ee_cnn_classify_images(const ee_cnn_model *m, const float *images, int n, float *logits,
                           ee_err *err);

/* The name of class k: g's eecnn.class_labels entry, else k's number
 * written into buf (an encrypted file's labels are placeholders: ask the
 * plaintext file). */
const char *ee_cnn_class_label(const ee_gguf *g, int k, char buf[16]);

/* Index of the largest of n scores (the first on ties). */
int ee_cnn_argmax(const float *scores, int n);

#endif
