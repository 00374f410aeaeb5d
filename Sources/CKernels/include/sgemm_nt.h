#ifndef MEGAFS_SGEMM_NT_H
#define MEGAFS_SGEMM_NT_H
/*
 * C = A x B^T for few columns (issue #9): the encoder's small mapping convs (a 512 x 4608
 * weight times 2..32 im2col columns), where a packing GEMM spends more time copying the weight
 * than multiplying. Each weight row is streamed once per pair of columns, from memory the
 * first time and from L2 after, with no packing.
 *
 *   c[r * ldc + j] = sum_k a[r * lda + k] * bt[j * ldbt + k],  r in [m0, m1), j in [0, n)
 *
 * Every path computes each c[r, j] the same way, so all give identical bits: eight lane sums
 * s[l] over k = 8i + l (one rounding per multiply-add, fmaf in the reference), combined as
 * ((s0+s4) + (s2+s6)) + ((s1+s5) + (s3+s7)), then the k tail (K mod 8) added by fmaf in order.
 * Paths as in conv3x3.h; MFS_CONV_AVX512 runs the AVX2 code (the product is bandwidth-bound).
 */
#include <stddef.h>
#include <stdint.h>

void mfs_sgemm_nt(int path, const float *a, size_t lda, const float *bt, size_t ldbt, int k,
                  int m0, int m1, int n, float *c, size_t ldc);

/* The same with int8 weight rows (weight-only int8): c[r, j] = (the sum above over the int8
 * values as floats) * scale[r] (scale[0] for every row when per_row_scale is 0). A quarter of
 * the float weight's bytes, and no dequantized copy. */
void mfs_sgemm_nt_i8(int path, const int8_t *a, size_t lda, const float *scale, int per_row_scale, const float *bt,
                     size_t ldbt, int k, int m0, int m1, int n, float *c, size_t ldc);

#endif
