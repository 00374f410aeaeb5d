/* Shared by the direct convolutions' paths (conv3x3.c, convtaps.c, convtaps_avx512.c). */
#ifndef MEGAFS_CONV3X3_INTERNAL_H
#define MEGAFS_CONV3X3_INTERNAL_H
#include "conv3x3.h"
#include <stddef.h>

/* Input channels per pass (64 was the best of 32, 64, 128 and all on this project's Zen VM,
 * before the chunking below). Passes after the first continue from the partial sums in y, so
 * the order of operations, and the result, do not depend on the split. */
#ifndef MFS_CONV_CI_PASS
#define MFS_CONV_CI_PASS 64
#endif

/* Two loop orders, chosen by the size of the weights one pass of a thread's output channels
 * reads (block x 64 x 9 floats per block of output channels):
 * - up to MFS_CONV_L2_WEIGHT_BYTES (the generator's wide, narrow layers): rows and column
 *   tiles outside, blocks of output channels inside, so each tile's input patch stays in L1
 *   and the pass's weights in L2;
 * - above it (512 channels at 32x32, 64x64): blocks of output channels outside, each sweeping
 *   a chunk of rows whose pass input (MFS_CONV_CHUNK_BYTES) stays in L2 with its own weights
 *   in L1. The first order re-read those weights from L3 for every tile and ran 3x slower than
 *   im2col + GEMM at 32x32 x 512 channels.
 * Both sum in the same order, so the results are bit-identical. */
#define MFS_CONV_L2_WEIGHT_BYTES (384 * 1024)
#define MFS_CONV_CHUNK_BYTES (256 * 1024)

/* The epilogue (conv3x3.h) on channels [co0, co1) of a band of rows x w outputs. */
void mfs_conv_epilogue_apply(const mfs_conv_epilogue *ep, int co0, int co1, int rows, int w, float *y,
                             size_t ystride);

#if defined(__x86_64__) || defined(__i386__)
void mfs_conv3x3_avx2(const float *xpad, int cin, int rows, int w, int wp, const float *weight,
                      int co0, int co1, float *y, size_t ystride);
void mfs_conv3x3_avx512(const float *xpad, int cin, int rows, int w, int wp, const float *weight,
                        int co0, int co1, float *y, size_t ystride, const mfs_conv_epilogue *ep);
/* Channels [co0, returned) of the taps conv (convtaps.c) in AVX-512 blocks of 8 (convtaps_avx512.c); `halo`
 * is the band rows beyond the output rows that a chunk of rows reads. */
int mfs_conv_taps_avx512_blocks(const float *xpad, int cin, size_t plane, int wp, int rows, int w,
                                const float *weight, int taps, const int *offsets, int halo, int co0,
                                int co1, float *y, size_t ystride, size_t yrow, const mfs_conv_epilogue *ep);
/* Rows [m0, returned) of mfs_sgemm_rows in AVX-512 blocks of 8 (convtaps_avx512.c). */
int mfs_sgemm_rows_avx512_blocks(const float *weight, int k, const float *x, size_t ldx, int n, int m0, int m1,
                                 float *y, size_t ldy);
#endif
#endif
