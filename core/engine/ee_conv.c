#include "ee_conv.h"

#include <stddef.h>

void ee_conv2d(float *out, const float *in, const float *weight,
               const float *bias, int c_in, int h, int w, int c_out, int kh,
               int kw, int stride, int pad, int *out_h, int *out_w) {
    int oh = (h + 2 * pad - kh) / stride + 1;
    int ow = (w + 2 * pad - kw) / stride + 1;
    for (int co = 0; co < c_out; co++) {
        for (int oy = 0; oy < oh; oy++) {
            for (int ox = 0; ox < ow; ox++) {
                double acc = bias ? bias[co] : 0.0f;
                for (int ci = 0; ci < c_in; ci++) {
                    for (int ky = 0; ky < kh; ky++) {
                        int iy = oy * stride + ky - pad;
                        if (iy < 0 || iy >= h) continue;
                        for (int kx = 0; kx < kw; kx++) {
                            int ix = ox * stride + kx - pad;
                            if (ix < 0 || ix >= w) continue;
                            acc += (double)in[((size_t)ci * h + iy) * w + ix] *
                                   weight[(((size_t)co * c_in + ci) * kh + ky) * kw + kx];
                        }
                    }
                }
                out[((size_t)co * oh + oy) * ow + ox] = (float)acc;
            }
        }
    }
    if (out_h) *out_h = oh;
    if (out_w) *out_w = ow;
}
