#ifndef MEGAFS_CONVTAPS_H
#define MEGAFS_CONVTAPS_H
/*
 * Direct stride-1 convolution with an arbitrary list of taps over a zero-padded input band
 * (issue #9): the sub-pixel phases of a stride-2 transposed convolution (2x2, 2x1, 1x2 and
 * 1x1 taps of the 3x3 kernel), with no GEMM column matrix and no col2im scatter.
 *
 * xpad:    channel ci, band row j, column i at xpad[ci * plane + j * wp + i] (zero padding
 *          is the caller's).
 * weight:  [cout][cin][taps], packed by the caller.
 * offsets: taps entries, tap t reads xpad at (r, x) + offsets[t] (= dy * wp + dx, >= 0).
 * y:       output channel co, row r, column x at y[co * ystride + r * yrow + x].
 * Computes output channels [co0, co1), rows [0, rows), columns [0, w):
 *   y[co][r][x] = sum_ci sum_t weight[co][ci][t] * xpad[ci][r * wp + x + offsets[t]]
 * Every path sums ci in order and, per ci, the taps in order with one rounding per
 * multiply-add (fmaf in the reference), so all paths give bit-identical results.
 */
#include <stddef.h>

/* Paths as in conv3x3.h (the AVX-512 one in convtaps_avx512.c). */
void mfs_conv_taps(int path, const float *xpad, int cin, size_t plane, int wp, int rows, int w,
                   const float *weight, int taps, const int *offsets, int co0, int co1,
                   float *y, size_t ystride, size_t yrow);

#endif
