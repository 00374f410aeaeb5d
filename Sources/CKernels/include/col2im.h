#ifndef MEGAFS_COL2IM_H
#define MEGAFS_COL2IM_H
/*
 * One input row's share of a transposed convolution's col2im, for one output channel and one
 * kernel row: orow[j * sw + t * dw - pad_left] += src[t * tap_stride + j] for the kw taps t and
 * input columns j in [0, w) whose output column falls in [0, ow). StyleGAN2's case (stride 2,
 * 3 taps, no padding) sums the taps that meet in each output pair before touching orow once.
 */
#include <stddef.h>
void mfs_col2im_row(const float *src, size_t tap_stride, int kw, int w, int sw, int dw, int pad_left, int ow,
                    float *orow);
#endif
