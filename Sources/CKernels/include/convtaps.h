#ifndef MEGAFS_CONVTAPS_H
#define MEGAFS_CONVTAPS_H
#include <stddef.h>

/* Paths as in conv3x3.h (the AVX-512 one in convtaps_avx512.c).
 *
 * A product whose weight rows are each read once, in order (the encoder's
 * mapping convs at 8x8 output and below: 9.4 MB of weight against 8..32 im2col columns):
 *   y[r * ldy + j] = sum_kk weight[r * k + kk] * x[kk * ldx + j],  r in [m0, m1), j in [0, n)
 * Each block of rows sums all of k before its store, so its weight streams from memory once
 * while x (k x n floats) stays in L2; the direct conv's loops (convtaps.c) would split k into
 * passes of 64 and revisit every row's weight per pass. Same order of operations, and bits, on every path. */
void mfs_sgemm_rows(int path, const float *weight, int k, const float *x, size_t ldx, int n, int m0, int m1, float *y,
                    size_t ldy);

#endif
