#ifndef MEGAFS_CONV3X3_H
#define MEGAFS_CONV3X3_H
/*
 * Direct 3x3 stride-1 convolution over a zero-padded input band (issue #9): no im2col.
 *
 * xpad:   [cin][rows + 2][wp] floats, wp >= w + 2. Padded row j holds input row r0 + j - 1 and
 *         padded column i input column i - 1; the padding is zeros (the caller builds the band,
 *         scaling channels by the style where the conv is modulated).
 * weight: [cout][cin][3][3] as in ONNX (not repacked; four output channels are read at a time).
 * y:      output channel co, band row r, column x at y[co * y_channel_stride + r * w + x].
 * Computes output channels [co0, co1) for the band's `rows` rows:
 *   y[co][r][x] = sum_ci sum_ky sum_kx weight[co][ci][ky][kx] * xpad[ci][r + ky][x + kx]
 * Every path sums ci in order and, per ci, the nine taps in (ky, kx) order with one rounding
 * per multiply-add (fmaf in the reference), so all paths give bit-identical results.
 */
#include <stddef.h>

enum { MFS_CONV_REF = 0, MFS_CONV_AVX2 = 1, MFS_CONV_AVX512 = 2 };

int mfs_conv3x3_path_available(int path);
int mfs_conv3x3_best_path(void);
const char *mfs_conv3x3_path_name(int path);
/* Whether a kernel with no AVX-512 variant of its own runs its AVX2 code for `path` (AVX2, or
 * AVX-512 on a CPU that has it). */
int mfs_conv_path_uses_avx2(int path);

void mfs_conv3x3s1(int path, const float *xpad, int cin, int rows, int w, int wp,
                   const float *weight, int co0, int co1, float *y, size_t y_channel_stride);

#endif
