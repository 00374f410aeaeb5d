#ifndef MEGAFS_SGEMM_SMALLM_H
#define MEGAFS_SGEMM_SMALLM_H
/*
 * C = A x B for at most 4 rows of A (issue #9): the generator's ToRGB 1x1 convs (3 output
 * channels from 32-512 input channels over up to 1024 x 1024 pixels), where sgemm ran at
 * 13-16 GFLOP/s; the product is bound by reading B once.
 *
 *   c[i * ldc + j] = sum_kk a[i * k + kk] * b[kk * ldb + j],  i in [0, m), j in [j0, j1)
 *
 * Every path sums kk in order with one rounding per multiply-add from 0 (fmaf in the
 * reference), so all give identical bits. Paths as in conv3x3.h. m must be 1..4.
 */
#include <stddef.h>

void mfs_sgemm_small_m(int path, int m, int k, const float *a, const float *b, size_t ldb, int j0, int j1,
                       float *c, size_t ldc);

#endif
