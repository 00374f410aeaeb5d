/* col2im rows: see col2im.h. */
#include "col2im.h"
#include "multiversion.h"

#pragma clang fp contract(off)

MFS_MULTIVERSION void mfs_col2im_row(const float *src, size_t tap_stride, int kw, int w, int sw, int dw, int pad_left, int ow,
                    float *orow) {
    if (sw == 2 && kw == 3 && dw == 1 && pad_left == 0 && w > 0 && ow >= 2 * w + 1) {
        /* even column 2j gets taps 0 (input j) and 2 (input j - 1); odd column 2j + 1 tap 1 */
        const float *restrict s0 = src, *restrict s1 = src + tap_stride, *restrict s2 = src + 2 * tap_stride;
        float *restrict o = orow;
        o[0] += s0[0];
        o[1] += s1[0];
        for (int j = 1; j < w; j++) {
            o[2 * j] += s0[j] + s2[j - 1];
            o[2 * j + 1] += s1[j];
        }
        o[2 * w] += s2[w - 1];
        return;
    }
    for (int t = 0; t < kw; t++) {
        const float *restrict s = src + (size_t)t * tap_stride;
        const int off = t * dw - pad_left;
        /* valid j: 0 <= j * sw + off < ow */
        int lo = off >= 0 ? 0 : (-off + sw - 1) / sw;
        if (lo > w) lo = w;
        int hi = ow - 1 - off >= 0 ? (ow - 1 - off) / sw + 1 : 0;
        if (hi > w) hi = w;
        float *restrict o = orow + off;
        if (sw == 1) for (int j = lo; j < hi; j++) o[j] += s[j];
        else for (int j = lo; j < hi; j++) o[j * sw] += s[j];
    }
}
