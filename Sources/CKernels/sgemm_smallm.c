/* C = A x B for at most 4 rows of A: see sgemm_smallm.h. Blocks of columns keep the block's
 * rows of C in L1 while four rows of B at a time feed them, each B value read once. */
#include "sgemm_smallm.h"
#include "conv3x3.h"
#include <math.h>

#if defined(__x86_64__) || defined(__i386__)
#define SMALLM_X86 1
#include <immintrin.h>
#endif

/* Columns per block: 4 rows of C x 512 floats = 8 kB. */
#define SMALLM_COLS 512

static void smallm_ref(int m, int k, const float *a, const float *b, size_t ldb, int j0, int j1, float *c, size_t ldc) {
    for (int i = 0; i < m; i++)
        for (int j = j0; j < j1; j++) {
            float s = 0.0f;
            for (int kk = 0; kk < k; kk++) s = fmaf(a[(size_t)i * k + kk], b[(size_t)kk * ldb + j], s);
            c[(size_t)i * ldc + j] = s;
        }
}

#ifdef SMALLM_X86
/* Columns [j, j + 16) (the first lanes of `mask`) of every row, over rows kk0 .. kk0 + kn of B
 * (kn <= 4), continuing from C unless kk0 == 0. */
__attribute__((target("avx512f,avx2,fma"), always_inline)) static inline void
smallm16(int m, int k, const float *a, const float *b, size_t ldb, int kk0, int kn, int j, __mmask16 mask,
         float *c, size_t ldc) {
    __m512 x[4];
    for (int q = 0; q < kn; q++) x[q] = _mm512_maskz_loadu_ps(mask, b + (size_t)(kk0 + q) * ldb + j);
    for (int i = 0; i < m; i++) {
        float *ci = c + (size_t)i * ldc + j;
        __m512 s = kk0 == 0 ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(mask, ci);
        const float *ai = a + (size_t)i * k + kk0;
        for (int q = 0; q < kn; q++) s = _mm512_fmadd_ps(_mm512_set1_ps(ai[q]), x[q], s);
        _mm512_mask_storeu_ps(ci, mask, s);
    }
}

__attribute__((target("avx512f,avx2,fma"))) static void smallm_avx512(int m, int k, const float *a, const float *b,
                                                                        size_t ldb, int j0, int j1, float *c,
                                                                        size_t ldc) {
    for (int jb = j0; jb < j1; jb += SMALLM_COLS) {
        const int je = jb + SMALLM_COLS < j1 ? jb + SMALLM_COLS : j1;
        for (int kk0 = 0; kk0 < k; kk0 += 4) {
            const int kn = k - kk0 < 4 ? k - kk0 : 4;
            int j = jb;
            for (; j + 16 <= je; j += 16) smallm16(m, k, a, b, ldb, kk0, kn, j, 0xffff, c, ldc);
            if (j < je) smallm16(m, k, a, b, ldb, kk0, kn, j, (__mmask16)((1u << (je - j)) - 1), c, ldc);
        }
    }
}

/* The same 8 columns at a time; the last few columns of a block on the reference loop. */
__attribute__((target("avx2,fma"))) static void smallm_avx2(int m, int k, const float *a, const float *b, size_t ldb,
                                                             int j0, int j1, float *c, size_t ldc) {
    for (int jb = j0; jb < j1; jb += SMALLM_COLS) {
        const int je = jb + SMALLM_COLS < j1 ? jb + SMALLM_COLS : j1;
        const int jv = jb + (je - jb) / 8 * 8;
        for (int kk0 = 0; kk0 < k; kk0 += 4) {
            const int kn = k - kk0 < 4 ? k - kk0 : 4;
            for (int j = jb; j < jv; j += 8) {
                __m256 x[4];
                for (int q = 0; q < kn; q++) x[q] = _mm256_loadu_ps(b + (size_t)(kk0 + q) * ldb + j);
                for (int i = 0; i < m; i++) {
                    float *ci = c + (size_t)i * ldc + j;
                    __m256 s = kk0 == 0 ? _mm256_setzero_ps() : _mm256_loadu_ps(ci);
                    const float *ai = a + (size_t)i * k + kk0;
                    for (int q = 0; q < kn; q++) s = _mm256_fmadd_ps(_mm256_broadcast_ss(ai + q), x[q], s);
                    _mm256_storeu_ps(ci, s);
                }
            }
        }
        if (jv < je) smallm_ref(m, k, a, b, ldb, jv, je, c, ldc);
    }
}
#endif

void mfs_sgemm_small_m(int path, int m, int k, const float *a, const float *b, size_t ldb, int j0, int j1,
                       float *c, size_t ldc) {
#ifdef SMALLM_X86
    if (path == MFS_CONV_AVX512 && mfs_conv3x3_path_available(MFS_CONV_AVX512)) {
        smallm_avx512(m, k, a, b, ldb, j0, j1, c, ldc);
        return;
    }
    if (mfs_conv_path_uses_avx2(path)) {
        smallm_avx2(m, k, a, b, ldb, j0, j1, c, ldc);
        return;
    }
#endif
    (void)path;
    smallm_ref(m, k, a, b, ldb, j0, j1, c, ldc);
}
