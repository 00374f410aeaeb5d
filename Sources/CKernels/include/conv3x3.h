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

/* What runs on each output of channel co (row r, column x of the band) after the accumulation,
 * in this order and with these roundings (no fused multiply-add; ConvEpilogue's in Swift):
 *   s = scale ? scale[co] : 1, b = bias ? bias[co] : 0, a = addend[co * addend_channel_stride + r * w + x]
 *   with an addend:  v = s == 1 ? (v + a) + b : (v * s + a) + b
 *   without:         v = v * s + b, only when s != 1 or b != 0
 *   then activation: none: v * gain (gain != 1); relu: v > 0 or NaN ? v : 0, times gain when
 *   gain != 1; leaky: v >= 0 ? v * gain : v * (gain * alpha). */
/* Activation codes; the conv epilogue takes the first three, the streamed GEMV (gemv.h) all. */
enum { MFS_ACT_NONE = 0, MFS_ACT_RELU = 1, MFS_ACT_LEAKY = 2, MFS_ACT_SIGMOID = 3, MFS_ACT_TANH = 4 };
typedef struct {
    const float *scale;
    const float *bias;
    const float *addend;
    size_t addend_channel_stride;
    int activation;
    float alpha, gain;
} mfs_conv_epilogue;

/* The convolution above, then the epilogue on its outputs when ep is not NULL (the AVX-512 path
 * in registers before the store, the others over the band after it). */
void mfs_conv3x3s1(int path, const float *xpad, int cin, int rows, int w, int wp,
                   const float *weight, int co0, int co1, float *y, size_t y_channel_stride,
                   const mfs_conv_epilogue *ep);

#endif
