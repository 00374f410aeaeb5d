/* Direct stride-1 convolution over a list of taps, on a zero-padded input band: the loops the
 * rows product (convtaps.h, one tap) shares with the AVX-512 3x3 kernel (nine taps,
 * convtaps_avx512.c).
 *
 * xpad:    channel ci, band row j, column i at xpad[ci * plane + j * wp + i].
 * weight:  [cout][cin][taps].
 * offsets: taps entries, tap t reads xpad at (r, x) + offsets[t] (= dy * wp + dx, >= 0).
 * Computes y[co][r][x] = sum_ci sum_t weight[co][ci][t] * xpad[ci][r * wp + x + offsets[t]],
 * y at y[co * ystride + r * yrow + x]. Every path sums ci in order and, per ci, the taps in
 * order with one rounding per multiply-add (fmaf in the reference), so all paths give
 * bit-identical results. The AVX2 path keeps 4 output channels x 16 columns in 8
 * accumulators, as the 3x3 kernel does, with the taps in a loop. */
#include "convtaps.h"
#include "conv3x3_internal.h"
#include "ckernels.h"
#include <math.h>

#if defined(__x86_64__) || defined(__i386__)
#define TAPS_X86 1
#include <immintrin.h>
#include "conv_tile_avx2.h"
#endif

static void taps_ref_span(const float *xpad, int cin, size_t plane, int wp, const float *weight, int taps,
                          const int *offsets, int co, int r, int x0, int x1, float *yrow) {
    for (int x = x0; x < x1; x++) {
        float acc = 0.0f;
        for (int ci = 0; ci < cin; ci++) {
            const float *wk = weight + ((size_t)co * cin + ci) * taps;
            const float *xr = xpad + ci * plane + (size_t)r * wp + x;
            for (int t = 0; t < taps; t++) acc = fmaf(wk[t], xr[offsets[t]], acc);
        }
        yrow[x] = acc;
    }
}

static void taps_ref(const float *xpad, int cin, size_t plane, int wp, int rows, int w, const float *weight,
                     int taps, const int *offsets, int co0, int co1, float *y, size_t ystride, size_t yrow) {
    for (int co = co0; co < co1; co++)
        for (int r = 0; r < rows; r++)
            taps_ref_span(xpad, cin, plane, wp, weight, taps, offsets, co, r, 0, w, y + co * ystride + (size_t)r * yrow);
}

#ifdef TAPS_X86
/* Pass sizes and loop orders: see conv3x3_internal.h (the 3x3 kernel's). */

__attribute__((target("avx2,fma")))
static void taps_avx2_4x16(const float *xc, const float *w0, size_t wstride, int cn, size_t plane, int taps,
                           const int *offsets, float *y, size_t ystride, int accumulate) {
    MFS_TILE4x16_BEGIN(y, ystride, accumulate);
    const float *w1 = w0 + wstride, *w2 = w1 + wstride, *w3 = w2 + wstride;
    for (int ci = 0; ci < cn; ci++) {
        for (int t = 0; t < taps; t++) {
            const float *xr = xc + offsets[t];
            __m256 a0 = _mm256_loadu_ps(xr), a1 = _mm256_loadu_ps(xr + 8);
            __m256 b = _mm256_broadcast_ss(w0 + t);
            c00 = _mm256_fmadd_ps(a0, b, c00); c01 = _mm256_fmadd_ps(a1, b, c01);
            b = _mm256_broadcast_ss(w1 + t);
            c10 = _mm256_fmadd_ps(a0, b, c10); c11 = _mm256_fmadd_ps(a1, b, c11);
            b = _mm256_broadcast_ss(w2 + t);
            c20 = _mm256_fmadd_ps(a0, b, c20); c21 = _mm256_fmadd_ps(a1, b, c21);
            b = _mm256_broadcast_ss(w3 + t);
            c30 = _mm256_fmadd_ps(a0, b, c30); c31 = _mm256_fmadd_ps(a1, b, c31);
        }
        xc += plane;
        w0 += taps; w1 += taps; w2 += taps; w3 += taps;
    }
    MFS_TILE4x16_END();
}

/* 4 output channels x 8 columns (the tail of a row). */
__attribute__((target("avx2,fma")))
static void taps_avx2_4x8(const float *xc, const float *w0, size_t wstride, int cn, size_t plane, int taps,
                          const int *offsets, float *y, size_t ystride, int accumulate) {
    MFS_TILE4x8_BEGIN(y, ystride, accumulate);
    const float *w1 = w0 + wstride, *w2 = w1 + wstride, *w3 = w2 + wstride;
    for (int ci = 0; ci < cn; ci++) {
        for (int t = 0; t < taps; t++) {
            __m256 a = _mm256_loadu_ps(xc + offsets[t]);
            c0 = _mm256_fmadd_ps(a, _mm256_broadcast_ss(w0 + t), c0);
            c1 = _mm256_fmadd_ps(a, _mm256_broadcast_ss(w1 + t), c1);
            c2 = _mm256_fmadd_ps(a, _mm256_broadcast_ss(w2 + t), c2);
            c3 = _mm256_fmadd_ps(a, _mm256_broadcast_ss(w3 + t), c3);
        }
        xc += plane;
        w0 += taps; w1 += taps; w2 += taps; w3 += taps;
    }
    MFS_TILE4x8_END();
}


__attribute__((target("avx2,fma")))
static inline void taps_avx2_row(const float *xc, const float *w0, size_t wstride, int cn, size_t plane, int taps,
                                 const int *offsets, int w, float *yo, size_t ystride, int accumulate) {
    int x = 0;
    for (; x + 16 <= w; x += 16) taps_avx2_4x16(xc + x, w0, wstride, cn, plane, taps, offsets, yo + x, ystride, accumulate);
    if (x + 8 <= w) taps_avx2_4x8(xc + x, w0, wstride, cn, plane, taps, offsets, yo + x, ystride, accumulate);
}

__attribute__((target("avx2,fma")))
static void taps_avx2(const float *xpad, int cin, size_t plane, int wp, int rows, int w, const float *weight,
                      int taps, const int *offsets, int co0, int co1, float *y, size_t ystride, size_t yrow) {
    const size_t wstride = (size_t)cin * taps;
    const int coEnd = co0 + (co1 - co0) / 4 * 4;
    const int passChannels = cin < MFS_CONV_CI_PASS ? cin : MFS_CONV_CI_PASS;
    const size_t passWeightBytes = (size_t)(coEnd - co0) * passChannels * taps * sizeof(float);
    int chunk = rows;
    if (passWeightBytes > MFS_CONV_L2_WEIGHT_BYTES) {
        chunk = MFS_CONV_CHUNK_BYTES / (passChannels * wp * (int)sizeof(float)) - 1;
        if (chunk < 1) chunk = 1;
    }
    int xv = w / 16 * 16;
    if (w - xv >= 8) xv += 8;
    for (int r0 = 0; r0 < rows; r0 += chunk) {
        const int r1 = r0 + chunk < rows ? r0 + chunk : rows;
        if (passWeightBytes > MFS_CONV_L2_WEIGHT_BYTES) {
            for (int c0 = 0; c0 < cin; c0 += MFS_CONV_CI_PASS) {
                const int cn = cin - c0 < MFS_CONV_CI_PASS ? cin - c0 : MFS_CONV_CI_PASS;
                for (int co = co0; co < coEnd; co += 4)
                    for (int r = r0; r < r1; r++)
                        taps_avx2_row(xpad + c0 * plane + (size_t)r * wp, weight + (size_t)co * wstride + (size_t)c0 * taps,
                                      wstride, cn, plane, taps, offsets, w, y + co * ystride + (size_t)r * yrow, ystride, c0 > 0);
            }
        } else {
            for (int r = r0; r < r1; r++)
                for (int x = 0; x + 8 <= w; x += 16) {
                    const int tile = x + 16 <= w ? 16 : 8;
                    for (int c0 = 0; c0 < cin; c0 += MFS_CONV_CI_PASS) {
                        const int cn = cin - c0 < MFS_CONV_CI_PASS ? cin - c0 : MFS_CONV_CI_PASS;
                        for (int co = co0; co < coEnd; co += 4)
                            taps_avx2_row(xpad + c0 * plane + (size_t)r * wp + x, weight + (size_t)co * wstride + (size_t)c0 * taps,
                                          wstride, cn, plane, taps, offsets, tile, y + co * ystride + (size_t)r * yrow + x, ystride, c0 > 0);
                    }
                }
        }
        for (int r = r0; r < r1 && xv < w; r++)
            for (int co = co0; co < coEnd; co++)
                taps_ref_span(xpad, cin, plane, wp, weight, taps, offsets, co, r, xv, w, y + co * ystride + (size_t)r * yrow);
    }
    if (coEnd < co1) taps_ref(xpad, cin, plane, wp, rows, w, weight, taps, offsets, coEnd, co1, y, ystride, yrow);
}

/* The rows product for few columns on AVX2 (the encoder's streamed mapping convs, 8..32
 * columns against 4608-long weight rows): 6 rows x 16 columns (12 accumulators, 2 loads of x
 * and 6 weight broadcasts per step of k), or 12 rows x 8 columns below 16 columns, over k in
 * blocks of ROWS_KC so that a block of weight rows stays in L1 for the next tile of columns.
 * Each weight row is read from memory once; each sum runs over k in order, one multiply-add
 * at a time, as the reference. Against taps_avx2 (4 x 16, k in passes of 64) and the NT
 * product, one thread, weights not in cache, 512 x 4608: 16 columns 0.86 against 1.25 and
 * 1.43 ms, 32 columns 2.59 against 3.65 and 3.39 ms (AMD EPYC Zen 3). */
#define ROWS_KC 512
/* Wider products (Winograd's, k = input channels) came out even with taps_avx2's tiles. */
#define MFS_ROWS_FEW_COLUMNS 32

__attribute__((target("avx2,fma"), always_inline)) static inline void
rows_tile16(int R, const float *w, int k, int k0, int k1, const float *x, size_t ldx, float *y, size_t ldy) {
    __m256 acc[6][2];
    for (int r = 0; r < R; r++) {
        acc[r][0] = k0 == 0 ? _mm256_setzero_ps() : _mm256_loadu_ps(y + r * ldy);
        acc[r][1] = k0 == 0 ? _mm256_setzero_ps() : _mm256_loadu_ps(y + r * ldy + 8);
    }
    const float *xr = x + (size_t)k0 * ldx;
    for (int kk = k0; kk < k1; kk++, xr += ldx) {
        const __m256 x0 = _mm256_loadu_ps(xr), x1 = _mm256_loadu_ps(xr + 8);
        for (int r = 0; r < R; r++) {
            const __m256 b = _mm256_broadcast_ss(w + (size_t)r * k + kk);
            acc[r][0] = _mm256_fmadd_ps(x0, b, acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(x1, b, acc[r][1]);
        }
    }
    for (int r = 0; r < R; r++) {
        _mm256_storeu_ps(y + r * ldy, acc[r][0]);
        _mm256_storeu_ps(y + r * ldy + 8, acc[r][1]);
    }
}

/* Columns [0, c) of 8 (c <= 8, the rest masked off). */
__attribute__((target("avx2,fma"), always_inline)) static inline void
rows_tile8(int R, const float *w, int k, int k0, int k1, const float *x, size_t ldx, float *y, size_t ldy, int c) {
    const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(c), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    __m256 acc[12];
    for (int r = 0; r < R; r++) acc[r] = k0 == 0 ? _mm256_setzero_ps() : _mm256_maskload_ps(y + r * ldy, mask);
    const float *xr = x + (size_t)k0 * ldx;
    for (int kk = k0; kk < k1; kk++, xr += ldx) {
        const __m256 x0 = _mm256_maskload_ps(xr, mask);
        for (int r = 0; r < R; r++) acc[r] = _mm256_fmadd_ps(x0, _mm256_broadcast_ss(w + (size_t)r * k + kk), acc[r]);
    }
    for (int r = 0; r < R; r++) _mm256_maskstore_ps(y + r * ldy, mask, acc[r]);
}

/* R rows over all columns: 16-column tiles while R <= 6 (their 12 accumulators), then 8-column
 * ones (R <= 12), the last one masked. */
__attribute__((target("avx2,fma"), always_inline)) static inline void
rows_block(int R, const float *w, int k, const float *x, size_t ldx, int n, float *y, size_t ldy) {
    for (int k0 = 0; k0 < k; k0 += ROWS_KC) {
        const int k1 = k - k0 < ROWS_KC ? k : k0 + ROWS_KC;
        int j = 0;
        if (R <= 6)
            for (; j + 16 <= n; j += 16) rows_tile16(R, w, k, k0, k1, x + j, ldx, y + j, ldy);
        for (; j < n; j += 8) rows_tile8(R, w, k, k0, k1, x + j, ldx, y + j, ldy, n - j < 8 ? n - j : 8);
    }
}

__attribute__((target("avx2,fma"))) static void rows_avx2(const float *w, int k, const float *x, size_t ldx, int n,
                                                          int m0, int m1, float *y, size_t ldy) {
    int r = m0;
    if (n >= 16)
        for (; r + 6 <= m1; r += 6) rows_block(6, w + (size_t)r * k, k, x, ldx, n, y + (size_t)r * ldy, ldy);
    else
        for (; r + 12 <= m1; r += 12) rows_block(12, w + (size_t)r * k, k, x, ldx, n, y + (size_t)r * ldy, ldy);
    for (; r < m1; r++) rows_block(1, w + (size_t)r * k, k, x, ldx, n, y + (size_t)r * ldy, ldy);
}
#endif

void mfs_sgemm_rows(int path, const float *weight, int k, const float *x, size_t ldx, int n, int m0, int m1, float *y,
                    size_t ldy) {
    static const int origin[1] = {0};
    int r = m0;
#ifdef TAPS_X86
    if (path == MFS_CONV_AVX512 && mfs_conv3x3_path_available(MFS_CONV_AVX512))
        r = mfs_sgemm_rows_avx512_blocks(weight, k, x, ldx, n, m0, m1, y, ldy);
    if (mfs_conv_path_uses_avx2(path)) {
        if (n <= MFS_ROWS_FEW_COLUMNS) rows_avx2(weight, k, x, ldx, n, r, m1, y, ldy);
        else taps_avx2(x, k, ldx, n, 1, n, weight, 1, origin, r, m1, y, ldy, (size_t)n);
        return;
    }
#endif
    (void)path;
    taps_ref(x, k, ldx, n, 1, n, weight, 1, origin, r, m1, y, ldy, (size_t)n);
}
