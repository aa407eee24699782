/* ee_conv: direct 2-D convolution (the eecnn classifier, property tests).
 * Its own file so a client that runs a CNN stem links no kernels, no
 * OpenMP and no BLAS (ee-producer). */
#ifndef EE_CONV_H
#define EE_CONV_H

/* 2-D convolution, NCHW, single image: in [c_in][h][w], weight
 * [c_out][c_in][kh][kw], bias [c_out] (may be NULL), stride and padding
 * symmetric. Output [c_out][oh][ow]; returns oh*ow via *out_hw. */
void ee_conv2d(float *out, const float *in, const float *weight,
               const float *bias, int c_in, int h, int w, int c_out, int kh,
               int kw, int stride, int pad, int *out_h, int *out_w);

#endif
