/* Synthetic eecnn classifiers (layout in core/engine/ee_cnn.h) for unit
 * tests: sizes and f32 weights held in memory, written through our GGUF
 * writer. Tests may overwrite the weights (identity convolutions, chosen
 * heads) before writing, or take the writer and change a key or a tensor to
 * make a broken file. Helpers assert (fail the current Check test). */
#ifndef EE_TESTCNN_H
#define EE_TESTCNN_H

#include "ee_cnn.h"
#include "ee_gguf.h"

#include <stdint.h>

typedef struct ee_testcnn {
    int n_block, in_c, in_h, in_w, pool, n_class, k;
    int c_out[EE_CNN_MAX_BLOCKS];
    float *conv_w[EE_CNN_MAX_BLOCKS]; /* [c_out][c_in][k][k] */
    float *conv_b[EE_CNN_MAX_BLOCKS]; /* [c_out] */
    int n_feat;                       /* head inputs: last c_out * pooled h * pooled w */
    float *head_w;                    /* [n_class][n_feat] */
    float *head_b;                    /* [n_class] */
} ee_testcnn;

/* Sizes set and every weight drawn from seed (He-uniform convolutions,
 * small biases), so a random image gives non-trivial activations. Asserts
 * the sizes pool to at least one pixel. */
void ee_testcnn_init(ee_testcnn *c, int n_block, const int *c_out, int k, int in_c, int in_h,
                     int in_w, int pool, int n_class, uint64_t seed);
void ee_testcnn_free(ee_testcnn *c);
/* Input channels of block l. */
int ee_testcnn_c_in(const ee_testcnn *c, int l);

/* Class label r of the plaintext files: "label-<r>-<a word>" (a string an
 * encrypted file must not contain). Static storage, r < EE_TESTCNN_MAX_LABELS
 * (also the most classes a test model may have). */
#define EE_TESTCNN_MAX_LABELS 256
const char *ee_testcnn_label(int r);

/* A writer holding the whole file: eecnn.* metadata, class labels, and
 * every tensor whose name does not start with skip_prefix (NULL: all).
 * Later setters replace a key; the caller frees the writer. */
ee_gguf_writer *ee_testcnn_writer(const ee_testcnn *c, const char *skip_prefix);
/* Write w to a new temp file and free it; returns the malloc'd path. */
char *ee_testcnn_write_tmp(ee_gguf_writer *w);
/* ee_testcnn_writer(c, NULL) written to a temp file. */
char *ee_testcnn_write(const ee_testcnn *c);
/* c written, opened and loaded; the file is removed again. */
ee_cnn_model *ee_testcnn_load(const ee_testcnn *c);

#endif
