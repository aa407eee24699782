#include "ee_image.h"

#include <errno.h>
#include <stb_image.h>
#include <stb_image_resize.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* stb_image's reason for the last failure. Some are empty (a truncated PNG
 * reports its unknown chunk's type, four NUL bytes), so never print "()". */
static const char *stb_reason(void) {
    const char *r = stbi_failure_reason();
    return r && *r ? r : "unknown reason";
}

int ee_image_load_grey(const char *path, int h, int w, bool invert, float *out,
                       ee_image_info *info, ee_err *err) {
    if (h < 1 || w < 1) return ee_err_set(err, "invalid model input size %dx%d", w, h);
    /* Opened here, once: stb_image alone would say only "can't fopen". */
    FILE *f = fopen(path, "rb");
    if (!f) return ee_err_set(err, "cannot open %s: %s", path, strerror(errno));
    int sw, sh, sc;
    unsigned char *px = NULL;
    if (!stbi_info_from_file(f, &sw, &sh, &sc)) /* reads the header and rewinds */
        ee_err_set(err, "%s: not an image stb_image reads (%s)", path, stb_reason());
    else if (sw < 1 || sh < 1 || sw > EE_IMAGE_MAX_SIDE || sh > EE_IMAGE_MAX_SIDE)
        ee_err_set(err, "%s: %dx%d pixels (at most %d a side)", path, sw, sh, EE_IMAGE_MAX_SIDE);
    else if (!(px = stbi_load_from_file(f, &sw, &sh, &sc, 1))) /* 1: grey (luma) */
        ee_err_set(err, "%s: cannot decode (%s)", path, stb_reason());
    fclose(f);
    if (!px) return -1;
    float *grey = malloc(sizeof(float) * (size_t)sw * sh);
    if (!grey) {
        stbi_image_free(px);
        return ee_err_set(err, "%s: out of memory", path);
    }
    for (size_t i = 0; i < (size_t)sw * sh; i++) {
        float v = px[i] / 255.0f;
        grey[i] = invert ? 1.0f - v : v;
    }
    stbi_image_free(px);
    int rc = 0;
    if (sw == w && sh == h) {
        memcpy(out, grey, sizeof(float) * (size_t)w * h);
    } else if (!stbir_resize_float_generic(grey, sw, sh, 0, out, w, h, 0, 1, STBIR_ALPHA_CHANNEL_NONE,
                                           0, STBIR_EDGE_CLAMP, STBIR_FILTER_BOX,
                                           STBIR_COLORSPACE_LINEAR, NULL)) {
        rc = ee_err_set(err, "%s: resizing %dx%d to %dx%d failed", path, sw, sh, w, h);
    }
    free(grey);
    if (rc == 0) {
        for (size_t i = 0; i < (size_t)w * h; i++) /* the box filter stays in range; clamp anyway */
            out[i] = out[i] < 0.0f ? 0.0f : out[i] > 1.0f ? 1.0f : out[i];
        if (info) *info = (ee_image_info){sw, sh, sc};
    }
    return rc;
}
