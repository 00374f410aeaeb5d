/* The accumulator tiles shared by the direct convolutions (conv3x3.c, convtaps.c): 4 output
 * channels x 16 columns (c00..c31) or x 8 columns (c0..c3), started from y's partial sums or
 * from zero, and stored back. Include only where immintrin.h is available; use inside
 * functions compiled with target("avx2,fma"). */
#ifndef MEGAFS_CONV_TILE_AVX2_H
#define MEGAFS_CONV_TILE_AVX2_H

#define MFS_TILE4x16_BEGIN(y, ystride, accumulate)                                           \
    float *y0 = (y), *y1 = y0 + (ystride), *y2 = y1 + (ystride), *y3 = y2 + (ystride);       \
    __m256 c00, c01, c10, c11, c20, c21, c30, c31;                                            \
    if (accumulate) {                                                                         \
        c00 = _mm256_loadu_ps(y0); c01 = _mm256_loadu_ps(y0 + 8);                             \
        c10 = _mm256_loadu_ps(y1); c11 = _mm256_loadu_ps(y1 + 8);                             \
        c20 = _mm256_loadu_ps(y2); c21 = _mm256_loadu_ps(y2 + 8);                             \
        c30 = _mm256_loadu_ps(y3); c31 = _mm256_loadu_ps(y3 + 8);                             \
    } else {                                                                                  \
        c00 = _mm256_setzero_ps(); c01 = c00; c10 = c00; c11 = c00;                           \
        c20 = c00; c21 = c00; c30 = c00; c31 = c00;                                           \
    }

#define MFS_TILE4x16_END()                                                                    \
    _mm256_storeu_ps(y0, c00); _mm256_storeu_ps(y0 + 8, c01);                                 \
    _mm256_storeu_ps(y1, c10); _mm256_storeu_ps(y1 + 8, c11);                                 \
    _mm256_storeu_ps(y2, c20); _mm256_storeu_ps(y2 + 8, c21);                                 \
    _mm256_storeu_ps(y3, c30); _mm256_storeu_ps(y3 + 8, c31)

#define MFS_TILE4x8_BEGIN(y, ystride, accumulate)                                            \
    float *y0 = (y), *y1 = y0 + (ystride), *y2 = y1 + (ystride), *y3 = y2 + (ystride);       \
    __m256 c0, c1, c2, c3;                                                                    \
    if (accumulate) {                                                                         \
        c0 = _mm256_loadu_ps(y0); c1 = _mm256_loadu_ps(y1);                                   \
        c2 = _mm256_loadu_ps(y2); c3 = _mm256_loadu_ps(y3);                                   \
    } else {                                                                                  \
        c0 = _mm256_setzero_ps(); c1 = c0; c2 = c0; c3 = c0;                                  \
    }

#define MFS_TILE4x8_END()                                                                     \
    _mm256_storeu_ps(y0, c0); _mm256_storeu_ps(y1, c1);                                       \
    _mm256_storeu_ps(y2, c2); _mm256_storeu_ps(y3, c3)

#endif
