#ifndef MEGAFS_BLUR_H
#define MEGAFS_BLUR_H
/*
 * A separable FIR filter (StyleGAN2's blur, kernel = column x row) over output rows [r0, r1) of
 * one plane, without upsampling: out[r][c] = sum_a sum_b col[a] row[b] x[r + a - pad_top][c + b - pad_left],
 * zero outside x (h x w, row-major). A column pass into tmp (w floats), then a row pass: kh + kw
 * multiply-adds per output instead of kh x kw. Writes (does not accumulate) out (ow per row).
 */
void mfs_blur_rows_separable(const float *x, int h, int w, const float *col, int kh, const float *row, int kw,
                             int pad_top, int pad_left, int ow, int r0, int r1, float *out, float *tmp);

/*
 * The same with upsampling by `up` (zeros inserted after each input row and column, then the
 * filter): out[r][c] = sum_a sum_b col[a] row[b] X'[r + a - pad_top][c + b - pad_left], X' the
 * upsampled plane. The column pass reads only the input rows that are not inserted zeros, the
 * row pass runs per output phase c = p (mod up) over the taps that meet input columns: for
 * StyleGAN2's 2x upsampling, 2 + 2 multiply-adds per output instead of 16. tmp: w + ow/up + 1 floats.
 */
void mfs_upfir_rows_separable(const float *x, int h, int w, int up, const float *col, int kh, const float *row, int kw,
                              int pad_top, int pad_left, int ow, int r0, int r1, float *out, float *tmp);
#endif
