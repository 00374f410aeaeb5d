#ifndef MEGAFS_CONVTRANSPOSE_H
#define MEGAFS_CONVTRANSPOSE_H
/*
 * StyleGAN2's upsampling conv (issue #9): ConvTranspose 3x3, stride 2, no padding, so output
 * row 2i + kh, column 2j + kw receives x[i][j] * w[kh][kw] and the output is (2h+1) x (2w+1).
 * Input pixels sit in vector lanes: one tile sums all of cin for the nine taps of 16 (AVX2: 8)
 * consecutive input columns, then adds them into three output rows, interleaving the even
 * columns (taps kw = 0 and the kw = 2 of the column to the left) with the odd ones (kw = 1).
 * No column matrix, no col2im scatter, and each output pixel is written by one store per row
 * of input that reaches it.
 *
 * x:      channel ci, row i, column j at x[ci * xplane + i * w + j].
 * weight: channel co, input channel ci, tap kh * 3 + kw at weight[co * wco + ci * 9 + kh * 3 + kw].
 * t:      output channel co, output row r at t[co * tplane + (r - row0) * (2w + 1)]; the caller
 *         zeroes it once, and every input row adds to the three output rows it reaches.
 * Adds the contributions of input rows [i0, i1) for output channels [co0, co1):
 *   t[co][2i + kh][2j + kw] += sum_ci weight[co][ci][kh][kw] * x[ci][i][j]
 * Every path sums ci in order with one fmaf each per tap, and adds an even column's two taps
 * (kw = 0 of column j, then kw = 2 of column j - 1) before adding them to t, so all paths give
 * bit-identical results.
 */
#include <stddef.h>

/* Paths as in conv3x3.h. */
void mfs_convt3x3s2_rows(int path, const float *x, int cin, size_t xplane, int w, const float *weight, size_t wco,
                         int co0, int co1, int i0, int i1, float *t, size_t tplane, int row0);

#endif
