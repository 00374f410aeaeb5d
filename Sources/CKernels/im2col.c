/* im2col rows: see im2col.h. */
#include "im2col.h"
#include "conv3x3.h"
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

/* dst[j] = scale * s[2j] for j < n. */
__attribute__((target("avx2,fma"))) static void gather2_avx2(const float *restrict s, int n, float scale,
                                                              float *restrict dst) {
    int j = 0;
    if (scale == 1.0f) {
        for (; j + 8 <= n; j += 8) {
            /* lanes (a0 a2 b0 b2 | a4 a6 b4 b6), then the 64-bit pairs reordered to a0 a2 a4 a6 b0 .. */
            const __m256 a = _mm256_loadu_ps(s + 2 * j), b = _mm256_loadu_ps(s + 2 * j + 8);
            const __m256 even = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0));
            _mm256_storeu_ps(dst + j, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(even), 0xD8)));
        }
    } else {
        const __m256 k = _mm256_set1_ps(scale);
        for (; j + 8 <= n; j += 8) {
            const __m256 a = _mm256_loadu_ps(s + 2 * j), b = _mm256_loadu_ps(s + 2 * j + 8);
            const __m256 even = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0));
            _mm256_storeu_ps(dst + j, _mm256_mul_ps(k, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(even), 0xD8))));
        }
    }
    for (; j < n; j++) dst[j] = scale == 1.0f ? s[2 * j] : s[2 * j] * scale;
}
#endif

static void gather(const float *restrict s, int n, int sw, float scale, float *restrict dst, int avx2) {
    if (sw == 1) {
        if (scale == 1.0f) memcpy(dst, s, (size_t)n * sizeof(float));
        else for (int j = 0; j < n; j++) dst[j] = s[j] * scale;
        return;
    }
#if defined(__x86_64__) || defined(__i386__)
    /* A vector at j reads s[2j .. 2j + 15], past the last value used (s[2n - 2]) unless
     * j + 8 <= n - 1: the last value goes on its own. */
    if (sw == 2 && n > 8 && avx2) {
        gather2_avx2(s, n - 1, scale, dst);
        dst[n - 1] = scale == 1.0f ? s[2 * (n - 1)] : s[2 * (n - 1)] * scale;
        return;
    }
#endif
    if (scale == 1.0f) for (int j = 0; j < n; j++) dst[j] = s[(size_t)j * sw];
    else for (int j = 0; j < n; j++) dst[j] = s[(size_t)j * sw] * scale;
}

void mfs_im2col_row(const float *src, int h, int w, int in_row0, int sh, int off_w, int sw, int rows, int ow,
                    float scale, float *dst) {
    /* valid output columns: 0 <= j * sw + off_w < w */
    int lo = off_w >= 0 ? 0 : (-off_w + sw - 1) / sw;
    if (lo > ow) lo = ow;
    int hi = w - 1 - off_w >= 0 ? (w - 1 - off_w) / sw + 1 : 0;
    if (hi > ow) hi = ow;
    if (hi < lo) hi = lo;
    /* once per call: the rows of one band are short at the encoder's 8x8-32x32 outputs */
    const int avx2 = sw == 2 && mfs_conv3x3_path_available(MFS_CONV_AVX2);
    for (int r = 0; r < rows; r++) {
        float *restrict d = dst + (size_t)r * ow;
        const int ih = in_row0 + r * sh;
        if (ih < 0 || ih >= h) {
            memset(d, 0, (size_t)ow * sizeof(float));
            continue;
        }
        if (lo > 0) memset(d, 0, (size_t)lo * sizeof(float));
        if (hi < ow) memset(d + hi, 0, (size_t)(ow - hi) * sizeof(float));
        if (hi > lo) gather(src + (size_t)ih * w + off_w + (ptrdiff_t)lo * sw, hi - lo, sw, scale, d + lo, avx2);
    }
}
