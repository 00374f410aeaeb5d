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

/* The one-tap case as a product whose weight rows are each read once, in order (the encoder's
 * mapping convs at 8x8 output and below: 9.4 MB of weight against 8..32 im2col columns):
 *   y[r * ldy + j] = sum_kk weight[r * k + kk] * x[kk * ldx + j],  r in [m0, m1), j in [0, n)
 * Each block of rows sums all of k before its store, so its weight streams from memory once
 * while x (k x n floats) stays in L2; mfs_conv_taps would split k into passes of 64 and revisit
 * every row's weight per pass. Same order of operations, and bits, on every path. */
void mfs_sgemm_rows(int path, const float *weight, int k, const float *x, size_t ldx, int n, int m0, int m1, float *y,
                    size_t ldy);

#endif
