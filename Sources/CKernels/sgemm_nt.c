/* C = A x B^T for few columns: see sgemm_nt.h. The AVX2 path keeps 4 rows x 2 columns of lane
 * sums in 8 registers: per 8 values of k, 4 row loads and 2 column loads feed 8 FMAs. */
#include "sgemm_nt.h"
#include "conv3x3.h"
#include <math.h>

#if defined(__x86_64__) || defined(__i386__)
#define NT_X86 1
#include <immintrin.h>
#endif

/* The lane-sum combination every path uses (the AVX2 horizontal sum's order). */
static inline float nt_combine(const float s[8]) {
    return ((s[0] + s[4]) + (s[2] + s[6])) + ((s[1] + s[5]) + (s[3] + s[7]));
}

static float nt_dot_ref(const float *a, const float *b, int k) {
    float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    const int k8 = k & ~7;
    for (int i = 0; i < k8; i += 8)
        for (int l = 0; l < 8; l++) s[l] = fmaf(a[i + l], b[i + l], s[l]);
    float t = nt_combine(s);
    for (int i = k8; i < k; i++) t = fmaf(a[i], b[i], t);
    return t;
}

static void nt_ref(const float *a, size_t lda, const float *bt, size_t ldbt, int k, int m0, int m1, int n,
                   float *c, size_t ldc) {
    for (int r = m0; r < m1; r++)
        for (int j = 0; j < n; j++) c[(size_t)r * ldc + j] = nt_dot_ref(a + (size_t)r * lda, bt + (size_t)j * ldbt, k);
}

static float nt_dot_i8_ref(const int8_t *a, const float *b, int k) {
    float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    const int k8 = k & ~7;
    for (int i = 0; i < k8; i += 8)
        for (int l = 0; l < 8; l++) s[l] = fmaf((float)a[i + l], b[i + l], s[l]);
    float t = nt_combine(s);
    for (int i = k8; i < k; i++) t = fmaf((float)a[i], b[i], t);
    return t;
}

static void nt_i8_ref(const int8_t *a, size_t lda, const float *scale, int per_row, const float *bt, size_t ldbt, int k,
                      int m0, int m1, int n, float *c, size_t ldc) {
    for (int r = m0; r < m1; r++)
        for (int j = 0; j < n; j++)
            c[(size_t)r * ldc + j] = nt_dot_i8_ref(a + (size_t)r * lda, bt + (size_t)j * ldbt, k) * scale[per_row ? r : 0];
}

#ifdef NT_X86
__attribute__((target("avx2,fma"))) static inline float nt_hsum(__m256 v) {
    __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1)); /* s0+s4, s1+s5, s2+s6, s3+s7 */
    __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));                             /* (s0+s4)+(s2+s6), (s1+s5)+(s3+s7) */
    __m128 s1 = _mm_add_ss(s2, _mm_shuffle_ps(s2, s2, 1));
    return _mm_cvtss_f32(s1);
}

__attribute__((target("avx2,fma"))) static float nt_tail(const float *a, const float *b, int k8, int k, float t) {
    for (int i = k8; i < k; i++) t = fmaf(a[i], b[i], t);
    return t;
}

__attribute__((target("avx2,fma"))) static inline __m256 nt_load8_i8(const int8_t *p) {
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)p)));
}

/* Eight weights of a row from i, as floats: float rows, or int8 rows widened. */
__attribute__((target("avx2,fma"), always_inline)) static inline __m256 nt_weights8(const void *row, int int8, int i) {
    return int8 ? nt_load8_i8((const int8_t *)row + i) : _mm256_loadu_ps((const float *)row + i);
}

/* The lane sums (combined, before the k tail) of rows a0..a3 with columns b0, b1 over k < k8:
 * sums[2 r + j] for row r, column j. Inlined with int8 constant, so each path gets its own loop. */
__attribute__((target("avx2,fma"), always_inline)) static inline void nt_block4x2(const void *const rows[4], int int8,
                                                                                   const float *b0, const float *b1,
                                                                                   int k8, float sums[8]) {
    __m256 s00 = _mm256_setzero_ps(), s01 = s00, s10 = s00, s11 = s00, s20 = s00, s21 = s00, s30 = s00, s31 = s00;
    for (int i = 0; i < k8; i += 8) {
        const __m256 x0 = _mm256_loadu_ps(b0 + i), x1 = _mm256_loadu_ps(b1 + i);
        __m256 w = nt_weights8(rows[0], int8, i);
        s00 = _mm256_fmadd_ps(w, x0, s00); s01 = _mm256_fmadd_ps(w, x1, s01);
        w = nt_weights8(rows[1], int8, i);
        s10 = _mm256_fmadd_ps(w, x0, s10); s11 = _mm256_fmadd_ps(w, x1, s11);
        w = nt_weights8(rows[2], int8, i);
        s20 = _mm256_fmadd_ps(w, x0, s20); s21 = _mm256_fmadd_ps(w, x1, s21);
        w = nt_weights8(rows[3], int8, i);
        s30 = _mm256_fmadd_ps(w, x0, s30); s31 = _mm256_fmadd_ps(w, x1, s31);
    }
    sums[0] = nt_hsum(s00); sums[1] = nt_hsum(s01); sums[2] = nt_hsum(s10); sums[3] = nt_hsum(s11);
    sums[4] = nt_hsum(s20); sums[5] = nt_hsum(s21); sums[6] = nt_hsum(s30); sums[7] = nt_hsum(s31);
}

/* How far ahead the one-column block prefetches its rows: a one-row product (the GEMV) reads
 * each weight row once, and the hardware prefetcher alone left it at about half the bandwidth. */
#define NT_PREFETCH_BYTES 16384

/* Rows a0..a3 (rows[0] + j * row_bytes) at byte offset `at` + NT_PREFETCH_BYTES, unless that
 * runs past `end`. */
static inline void nt_prefetch4(const char *a0, size_t row_bytes, size_t at, const char *end) {
    const char *p = a0 + at + NT_PREFETCH_BYTES;
    if (p + 3 * row_bytes >= end) return;
    for (int j = 0; j < 4; j++) _mm_prefetch(p + j * row_bytes, _MM_HINT_T0);
}

/* nt_block4x2 for one column b0, the rows (evenly spaced by row_bytes) prefetched ahead up to
 * `end`; sums[r] for row r. */
__attribute__((target("avx2,fma"), always_inline)) static inline void nt_block4x1(const void *const rows[4], int int8,
                                                                                   size_t row_bytes, const float *b0,
                                                                                   int k8, const char *end,
                                                                                   float sums[4]) {
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    const int elementBytes = int8 ? 1 : 4;
    for (int i = 0; i < k8; i += 8) {
        if (((i * elementBytes) & 63) == 0) nt_prefetch4((const char *)rows[0], row_bytes, (size_t)i * elementBytes, end);
        const __m256 x0 = _mm256_loadu_ps(b0 + i);
        s0 = _mm256_fmadd_ps(nt_weights8(rows[0], int8, i), x0, s0);
        s1 = _mm256_fmadd_ps(nt_weights8(rows[1], int8, i), x0, s1);
        s2 = _mm256_fmadd_ps(nt_weights8(rows[2], int8, i), x0, s2);
        s3 = _mm256_fmadd_ps(nt_weights8(rows[3], int8, i), x0, s3);
    }
    sums[0] = nt_hsum(s0); sums[1] = nt_hsum(s1); sums[2] = nt_hsum(s2); sums[3] = nt_hsum(s3);
}

__attribute__((target("avx2,fma"))) static float nt_tail_i8(const int8_t *a, const float *b, int k8, int k, float t) {
    for (int i = k8; i < k; i++) t = fmaf((float)a[i], b[i], t);
    return t;
}

/* Rows a0..a3 (rows[]) times the columns of bt two at a time into c (row stride ldc), the int8
 * rows' sums times scale4[q]; returns the first column left over (n odd). */
__attribute__((target("avx2,fma"), always_inline)) static inline int nt_pairs4(const void *const rows[4], int int8,
                                                                                const float *scale4, const float *bt,
                                                                                size_t ldbt, int k, int n, float *c,
                                                                                size_t ldc) {
    const int k8 = k & ~7;
    int j = 0;
    for (; j + 2 <= n; j += 2) {
        const float *b0 = bt + (size_t)j * ldbt, *b1 = b0 + ldbt;
        float t[8];
        nt_block4x2(rows, int8, b0, b1, k8, t);
        for (int q = 0; q < 4; q++) {
            float v0, v1;
            if (int8) {
                const int8_t *aq = (const int8_t *)rows[q];
                v0 = nt_tail_i8(aq, b0, k8, k, t[2 * q]) * scale4[q];
                v1 = nt_tail_i8(aq, b1, k8, k, t[2 * q + 1]) * scale4[q];
            } else {
                const float *aq = (const float *)rows[q];
                v0 = nt_tail(aq, b0, k8, k, t[2 * q]);
                v1 = nt_tail(aq, b1, k8, k, t[2 * q + 1]);
            }
            c[q * ldc + j] = v0;
            c[q * ldc + j + 1] = v1;
        }
    }
    return j;
}

/* One column (the GEMV) with rows of at most NT_ROWS1_MAX_K: row after row, each read front to
 * back, prefetched NT_PREFETCH_BYTES ahead. Each row's lane sums are the 4-row block's (one
 * accumulator, the same order), so the
 * bits do not change; but four rows read side by side interleave four streams within each page,
 * which the hardware prefetchers follow badly: rows of 1 KB streamed at 16-21 against 28-30
 * GB/s in order, 2 KB rows 22-24 against 30-40, 4 KB rows 28-32 against 32-35 (a C loop over
 * 140-280 products, 2 threads, Zen 4). Longer rows keep the four streams (each in its own
 * pages then), whose independent sums hide the FMA latency: the encoder's 2-column convs over
 * 8 KB rows took 5.3-5.4 ms row by row against 4.6 ms. */
#define NT_ROWS1_MAX_K 1024
__attribute__((target("avx2,fma"), always_inline)) static inline void nt_rows1(const void *a, int int8, size_t lda,
                                                                               const float *scale, int per_row,
                                                                               const float *b0, int k, int m0, int m1,
                                                                               float *c, size_t ldc) {
    const int k8 = k & ~7;
    const size_t elementBytes = int8 ? 1 : 4;
    const char *base = (const char *)a;
    const char *end = m1 > m0 ? base + ((size_t)(m1 - 1) * lda + (size_t)k) * elementBytes : NULL;
    for (int r = m0; r < m1; r++) {
        const void *row = base + (size_t)r * lda * elementBytes;
        __m256 s0 = _mm256_setzero_ps();
        for (int i = 0; i < k8; i += 8) {
            if (((i * elementBytes) & 63) == 0) {
                const char *p = (const char *)row + (size_t)i * elementBytes + NT_PREFETCH_BYTES;
                if (p < end) _mm_prefetch(p, _MM_HINT_T0);
            }
            s0 = _mm256_fmadd_ps(nt_weights8(row, int8, i), _mm256_loadu_ps(b0 + i), s0);
        }
        if (int8) c[(size_t)r * ldc] = nt_tail_i8((const int8_t *)row, b0, k8, k, nt_hsum(s0)) * scale[per_row ? r : 0];
        else c[(size_t)r * ldc] = nt_tail((const float *)row, b0, k8, k, nt_hsum(s0));
    }
}

__attribute__((target("avx2,fma"))) static void nt_avx2(const float *a, size_t lda, const float *bt, size_t ldbt, int k,
                                                         int m0, int m1, int n, float *c, size_t ldc) {
    const int k8 = k & ~7;
    const char *end = m1 > m0 ? (const char *)(a + (size_t)(m1 - 1) * lda + k) : NULL;
    int r = m0;
    if (n == 1 && k <= NT_ROWS1_MAX_K) { nt_rows1(a, 0, lda, NULL, 0, bt, k, m0, m1, c, ldc); return; }
    for (; r + 4 <= m1; r += 4) {
        const float *a0 = a + (size_t)r * lda;
        const void *const rows[4] = {a0, a0 + lda, a0 + 2 * lda, a0 + 3 * lda};
        int j = nt_pairs4(rows, 0, NULL, bt, ldbt, k, n, c + (size_t)r * ldc, ldc);
        for (; j < n; j++) {
            const float *b0 = bt + (size_t)j * ldbt;
            float t[4];
            nt_block4x1(rows, 0, lda * sizeof(float), b0, k8, end, t);
            for (int q = 0; q < 4; q++) c[(size_t)(r + q) * ldc + j] = nt_tail((const float *)rows[q], b0, k8, k, t[q]);
        }
    }
    for (; r < m1; r++) {
        const float *a0 = a + (size_t)r * lda;
        for (int j = 0; j < n; j++) {
            const float *b0 = bt + (size_t)j * ldbt;
            __m256 s0 = _mm256_setzero_ps();
            for (int i = 0; i < k8; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a0 + i), _mm256_loadu_ps(b0 + i), s0);
            c[(size_t)r * ldc + j] = nt_tail(a0, b0, k8, k, nt_hsum(s0));
        }
    }
}

/* nt_avx2 with int8 weight rows, widened to float 8 at a time; the row's scale multiplies the sum. */
__attribute__((target("avx2,fma"))) static void nt_i8_avx2(const int8_t *a, size_t lda, const float *scale, int per_row,
                                                            const float *bt, size_t ldbt, int k, int m0, int m1, int n,
                                                            float *c, size_t ldc) {
    const int k8 = k & ~7;
    const char *end = m1 > m0 ? (const char *)(a + (size_t)(m1 - 1) * lda + k) : NULL;
    int r = m0;
    if (n == 1 && k <= NT_ROWS1_MAX_K) { nt_rows1(a, 1, lda, scale, per_row, bt, k, m0, m1, c, ldc); return; }
    for (; r + 4 <= m1; r += 4) {
        const int8_t *a0 = a + (size_t)r * lda;
        const float sc[4] = {scale[per_row ? r : 0], scale[per_row ? r + 1 : 0], scale[per_row ? r + 2 : 0],
                             scale[per_row ? r + 3 : 0]};
        const void *const rows[4] = {a0, a0 + lda, a0 + 2 * lda, a0 + 3 * lda};
        int j = nt_pairs4(rows, 1, sc, bt, ldbt, k, n, c + (size_t)r * ldc, ldc);
        for (; j < n; j++) {
            const float *b0 = bt + (size_t)j * ldbt;
            float t[4];
            nt_block4x1(rows, 1, lda, b0, k8, end, t);
            for (int q = 0; q < 4; q++)
                c[(size_t)(r + q) * ldc + j] = nt_tail_i8((const int8_t *)rows[q], b0, k8, k, t[q]) * sc[q];
        }
    }
    if (r < m1) nt_i8_ref(a, lda, scale, per_row, bt, ldbt, k, r, m1, n, c, ldc);
}
#endif

void mfs_sgemm_nt_i8(int path, const int8_t *a, size_t lda, const float *scale, int per_row_scale, const float *bt,
                     size_t ldbt, int k, int m0, int m1, int n, float *c, size_t ldc) {
#ifdef NT_X86
    if (mfs_conv_path_uses_avx2(path)) {
        nt_i8_avx2(a, lda, scale, per_row_scale, bt, ldbt, k, m0, m1, n, c, ldc);
        return;
    }
#endif
    (void)path;
    nt_i8_ref(a, lda, scale, per_row_scale, bt, ldbt, k, m0, m1, n, c, ldc);
}

void mfs_sgemm_nt(int path, const float *a, size_t lda, const float *bt, size_t ldbt, int k,
                  int m0, int m1, int n, float *c, size_t ldc) {
#ifdef NT_X86
    if (mfs_conv_path_uses_avx2(path)) {
        nt_avx2(a, lda, bt, ldbt, k, m0, m1, n, c, ldc);
        return;
    }
#endif
    (void)path;
    nt_ref(a, lda, bt, ldbt, k, m0, m1, n, c, ldc);
}
