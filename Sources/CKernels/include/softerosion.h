#ifndef MEGAFS_SOFTEROSION_H
#define MEGAFS_SOFTEROSION_H
/*
 * One output row of a symmetric s x s cross-correlation (K[y][x] = K[s-1-y][x] = K[y][s-1-x],
 * s = 2r + 1) over a zero-padded plane `pad` (rows of pw floats; output (y, x) reads padded rows
 * y..y+s-1 and columns x..x+s-1): the blend mask's SoftErosion (Sources/MegaFSSwap/FaceMask.swift).
 *
 * Outputs x0 .. x0+n-1 of row y go to out[0 .. n-1]. The mirrored rows are first added into r+1
 * folded rows (`folded`, r+1 rows of rs floats, rs >= round_up(n, MFS_SYMCONV_BLOCK) + 2r), then
 * each output sums, for ky = 0..r, kx = 0..r-1: wq[ky][kx] * (f[ky][x+kx] + f[ky][x+s-1-kx]),
 * then wq[ky][r] * f[ky][x+r], in that order, multiply and add rounded separately, so every
 * instruction set gives the same bits. wq is the kernel's top-left (r+1) x (r+1) quarter.
 * Reads up to round_up(n, MFS_SYMCONV_BLOCK) + 2r columns from x0 in each padded row.
 */
#define MFS_SYMCONV_BLOCK 64
void mfs_symconv_row(const float *pad, long pw, long y, long x0, long n, int r, const float *wq,
                     float *folded, long rs, float *out);
#endif
