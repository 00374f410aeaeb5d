#ifndef MEGAFS_IM2COL_H
#define MEGAFS_IM2COL_H
/*
 * One row of a convolution's im2col matrix, for input plane `src` (h x w) and one kernel tap
 * (row offset in_row0 = oh0 * sh - pad_top + kh * dh, column offset off_w = kw * dw - pad_left):
 * dst[r * ow + j] = scale * src[(in_row0 + r * sh) * w + j * sw + off_w] for the `rows` output
 * rows from oh0 and the ow output columns, 0 where the window reads padding. Stride 1 copies
 * rows; stride 2 picks the even lanes of two vectors (AVX2); other strides run a plain loop.
 */
#include <stddef.h>
void mfs_im2col_row(const float *src, int h, int w, int in_row0, int sh, int off_w, int sw, int rows, int ow,
                    float scale, float *dst);
#endif
