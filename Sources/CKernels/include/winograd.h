#ifndef MEGAFS_WINOGRAD_H
#define MEGAFS_WINOGRAD_H
/*
 * Winograd F(2x2, 3x3) transforms for 3x3 stride-1 convolutions (issue #9). The products in
 * between are 16 ordinary GEMMs, M[k] = U[k] x V[k] (k = 0..15), left to the caller:
 *   U[k][co][ci] = (G g G^T)[k]     for the 3x3 kernel g of (co, ci)       [16][cout][cin]
 *   V[k][ci][t]  = (B^T d B)[k]     for the 4x4 input patch d of tile t    [16][cin][ld]
 *   y (2x2 per tile) = A^T M A                                             M: [16][cout][ld]
 * ld >= tiles = tb * tw is the row stride of V and M (columns past the tiles are not touched).
 * A band of tb tile rows reads the zero-padded input band xpad [cin][2 tb + 2][wp] (padded row j
 * and column i hold input row r0 - 1 + j and column i - 1, wp >= 2 tw + 2) and writes output
 * rows r0 .. r0 + rows - 1 (rows <= 2 tb). Tile t = ty * tw + tx covers output rows 2 ty, 2 ty + 1
 * and columns 2 tx, 2 tx + 1 of the band.
 */
#include <stddef.h>

/* U for output channels [co0, co1) from weight [cout][cin][3][3]. */
void mfs_winograd_f2_weights(const float *weight, int cin, int cout, int co0, int co1, float *u);

/* V for input channels [c0, c1) of the band (tiles = tb * tw). */
void mfs_winograd_f2_input(const float *xpad, int cin, int c0, int c1, int tb, int tw, int wp, float *v, size_t ld);

/* Output channels [co0, co1) of the band from M into y[co * ystride + r * w + x]. */
void mfs_winograd_f2_output(const float *m, size_t ld, int cout, int co0, int co1, int tb, int tw, int rows, int w,
                            float *y, size_t ystride);

/* F(4x4, 3x3): the same with 36 GEMMs over 6x6 input patches and 4x4 output tiles (U [36][cout][cin],
 * V [36][cin][ld], M [36][cout][ld]); the band xpad is [cin][4 tb + 2][wp], wp >= 4 tw + 2,
 * tile t = ty * tw + tx covers output rows 4 ty .. 4 ty + 3 and columns 4 tx .. 4 tx + 3 of the
 * band. 0.56x the multiplies of F(2x2, 3x3) in the GEMMs, with transform constants up to 8
 * (a larger rounding error: see WinogradConvPlan). */
void mfs_winograd_f4_weights(const float *weight, int cin, int cout, int co0, int co1, float *u);
void mfs_winograd_f4_input(const float *xpad, int cin, int c0, int c1, int tb, int tw, int wp, float *v, size_t ld);
void mfs_winograd_f4_output(const float *m, size_t ld, int cout, int co0, int co1, int tb, int tw, int rows, int w,
                            float *y, size_t ystride);

#endif
