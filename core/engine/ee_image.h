/* ee_image: an image file as a classifier's input. Decoding is stb_image
 * (Debian's libstb: PNG, PGM/PPM, JPEG, BMP, ...), resizing is
 * stb_image_resize with a box filter: each model pixel is the mean of the
 * source area it covers, which is how scikit-learn's digits were made
 * (32x32 bitmaps counted in 4x4 blocks). Values are grey in [0, 1],
 * bright = ink, as the model was trained; `invert` is for dark ink on a
 * light page. */
#ifndef EE_IMAGE_H
#define EE_IMAGE_H

#include "ee_error.h"

#include <stdbool.h>

#define EE_IMAGE_MAX_SIDE 8192 /* larger files are refused, not decoded */

typedef struct ee_image_info {
    int src_w, src_h, src_channels; /* as stored in the file */
} ee_image_info;

/* Decode path into out[h][w] (one grey channel). info may be NULL. Errors
 * name the file and stb_image's reason. */
int ee_image_load_grey(const char *path, int h, int w, bool invert, float *out,
                       ee_image_info *info, ee_err *err);

#endif
