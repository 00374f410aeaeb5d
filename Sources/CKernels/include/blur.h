#ifndef MEGAFS_BLUR_H
#define MEGAFS_BLUR_H
/*
 * A separable FIR filter (StyleGAN2's blur and upsampling, kernel = column x row) over output
 * rows [r0, r1) of one plane, upsampled by `up` first (zeros inserted after each input row and
 * column; 1: none): out[r][c] = sum_a sum_b col[a] row[b] X'[r + a - pad_top][c + b - pad_left],
 * X' the upsampled plane, zero outside it (x: h x w, row-major). A column pass over the input
 * rows that are not inserted zeros into tmp, then a row pass per output phase c = p (mod up)
 * over the taps that meet input columns: kh + kw multiply-adds per output instead of kh x kw
 * without upsampling, 2 + 2 instead of 16 for StyleGAN2's 2x. Writes (does not accumulate) out
 * (ow per row). tmp: w + ow/up + 1 floats.
 */
void mfs_upfir_rows_separable(const float *x, int h, int w, int up, const float *col, int kh, const float *row, int kw,
                              int pad_top, int pad_left, int ow, int r0, int r1, float *out, float *tmp);
#endif
