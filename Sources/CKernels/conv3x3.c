/* Direct 3x3 stride-1 convolution: see conv3x3.h. The AVX2 path keeps 4 output channels x
 * 16 columns in 8 accumulators; each of the nine taps of one input channel costs 2 unaligned
 * loads and 4 weight broadcasts for 8 FMAs. */
#include "conv3x3_internal.h"
#include "ckernels.h"
#include <math.h>

#if defined(__x86_64__) || defined(__i386__)
#define CONV_X86 1
#include <immintrin.h>
#include "conv_tile_avx2.h"
#endif

/* Bit 0: AVX2 + FMA, bit 1: AVX-512F (with AVX2 + FMA); -1 until detected. */
static int conv_paths_available = -1;

int mfs_conv3x3_path_available(int path) {
    if (path == MFS_CONV_REF) return 1;
#ifdef CONV_X86
    if (path != MFS_CONV_AVX2 && path != MFS_CONV_AVX512) return 0;
    int v = __atomic_load_n(&conv_paths_available, __ATOMIC_RELAXED);
    if (v < 0) {
        mfs_cpu_features f = mfs_detect_cpu();
        const int avx2 = f.avx2 && f.fma;
        v = avx2 | ((avx2 && f.avx512f) << 1);
        __atomic_store_n(&conv_paths_available, v, __ATOMIC_RELAXED);
    }
    return (v >> (path == MFS_CONV_AVX512 ? 1 : 0)) & 1;
#else
    (void)conv_paths_available;
    return 0;
#endif
}

int mfs_conv3x3_best_path(void) {
    if (mfs_conv3x3_path_available(MFS_CONV_AVX512)) return MFS_CONV_AVX512;
    return mfs_conv3x3_path_available(MFS_CONV_AVX2) ? MFS_CONV_AVX2 : MFS_CONV_REF;
}

int mfs_conv_path_uses_avx2(int path) {
    return (path == MFS_CONV_AVX2 || path == MFS_CONV_AVX512) && mfs_conv3x3_path_available(path);
}

const char *mfs_conv3x3_path_name(int path) {
    switch (path) {
    case MFS_CONV_REF: return "ref";
    case MFS_CONV_AVX2: return "avx2";
    case MFS_CONV_AVX512: return "avx512";
    default: return "?";
    }
}

/* Output columns [x0, x1) of channel co, row r, in the reference order. */
static void conv_ref_span(const float *xpad, int cin, int rows, int wp, const float *weight, int co,
                          int r, int x0, int x1, float *yrow) {
    const size_t plane = (size_t)(rows + 2) * (size_t)wp;
    for (int x = x0; x < x1; x++) {
        float acc = 0.0f;
        for (int ci = 0; ci < cin; ci++) {
            const float *wk = weight + ((size_t)co * cin + ci) * 9;
            const float *xr = xpad + ci * plane + (size_t)r * wp + x;
            for (int ky = 0; ky < 3; ky++)
                for (int kx = 0; kx < 3; kx++)
                    acc = fmaf(wk[ky * 3 + kx], xr[ky * wp + kx], acc);
        }
        yrow[x] = acc;
    }
}

static void conv_ref(const float *xpad, int cin, int rows, int w, int wp, const float *weight,
                     int co0, int co1, float *y, size_t ystride) {
    for (int co = co0; co < co1; co++)
        for (int r = 0; r < rows; r++)
            conv_ref_span(xpad, cin, rows, wp, weight, co, r, 0, w, y + co * ystride + (size_t)r * w);
}

#ifdef CONV_X86
/* One tap for 4 output channels x 16 columns: 8 accumulators, 2 inputs and 1 broadcast live,
 * well inside the 16 ymm registers (a 4 x 24 block needs all 16 and the compiler spills). */
#define TAP(k, off)                                                                         \
    do {                                                                                    \
        __m256 a0 = _mm256_loadu_ps(xr + (off)), a1 = _mm256_loadu_ps(xr + (off) + 8);      \
        __m256 b = _mm256_broadcast_ss(w0 + (k));                                           \
        c00 = _mm256_fmadd_ps(a0, b, c00); c01 = _mm256_fmadd_ps(a1, b, c01);               \
        b = _mm256_broadcast_ss(w1 + (k));                                                  \
        c10 = _mm256_fmadd_ps(a0, b, c10); c11 = _mm256_fmadd_ps(a1, b, c11);               \
        b = _mm256_broadcast_ss(w2 + (k));                                                  \
        c20 = _mm256_fmadd_ps(a0, b, c20); c21 = _mm256_fmadd_ps(a1, b, c21);               \
        b = _mm256_broadcast_ss(w3 + (k));                                                  \
        c30 = _mm256_fmadd_ps(a0, b, c30); c31 = _mm256_fmadd_ps(a1, b, c31);               \
    } while (0)


/* 4 output channels x 16 columns; xc at (ci = first of the pass, row, column), w0 at
 * (co, ci = first of the pass). */
__attribute__((target("avx2,fma")))
static void conv_avx2_4x16(const float *xc, const float *w0, size_t wstride, int cn, size_t plane, int wp,
                           float *y, size_t ystride, int accumulate) {
    MFS_TILE4x16_BEGIN(y, ystride, accumulate);
    const float *w1 = w0 + wstride, *w2 = w1 + wstride, *w3 = w2 + wstride;
    for (int ci = 0; ci < cn; ci++) {
        const float *xr = xc;
        TAP(0, 0); TAP(1, 1); TAP(2, 2);
        xr += wp;
        TAP(3, 0); TAP(4, 1); TAP(5, 2);
        xr += wp;
        TAP(6, 0); TAP(7, 1); TAP(8, 2);
        xc += plane;
        w0 += 9; w1 += 9; w2 += 9; w3 += 9;
    }
    MFS_TILE4x16_END();
}
#undef TAP

#define TAP1(k, off)                                                                        \
    do {                                                                                    \
        __m256 a = _mm256_loadu_ps(xr + (off));                                             \
        c0 = _mm256_fmadd_ps(a, _mm256_broadcast_ss(w0 + (k)), c0);                         \
        c1 = _mm256_fmadd_ps(a, _mm256_broadcast_ss(w1 + (k)), c1);                         \
        c2 = _mm256_fmadd_ps(a, _mm256_broadcast_ss(w2 + (k)), c2);                         \
        c3 = _mm256_fmadd_ps(a, _mm256_broadcast_ss(w3 + (k)), c3);                         \
    } while (0)

/* 4 output channels x 8 columns (the tail of a row). */
__attribute__((target("avx2,fma")))
static void conv_avx2_4x8(const float *xc, const float *w0, size_t wstride, int cn, size_t plane, int wp,
                          float *y, size_t ystride, int accumulate) {
    MFS_TILE4x8_BEGIN(y, ystride, accumulate);
    const float *w1 = w0 + wstride, *w2 = w1 + wstride, *w3 = w2 + wstride;
    for (int ci = 0; ci < cn; ci++) {
        const float *xr = xc;
        TAP1(0, 0); TAP1(1, 1); TAP1(2, 2);
        xr += wp;
        TAP1(3, 0); TAP1(4, 1); TAP1(5, 2);
        xr += wp;
        TAP1(6, 0); TAP1(7, 1); TAP1(8, 2);
        xc += plane;
        w0 += 9; w1 += 9; w2 += 9; w3 += 9;
    }
    MFS_TILE4x8_END();
}
#undef TAP1

/* Loop orders and pass sizes: see conv3x3_internal.h. */

/* First column the vector tiles leave to the scalar tail: 16-column tiles, then one of 8. */
static inline int conv_vector_end(int w) { int x = w / 16 * 16; return w - x >= 8 ? x + 8 : x; }

/* One row's vector tiles of output channels [co, co + 4) for the pass at c0. */
__attribute__((target("avx2,fma")))
static inline void conv_avx2_row(const float *xc, const float *w0, size_t wstride, int cn, size_t plane, int wp,
                                 int w, float *yo, size_t ystride, int accumulate) {
    int x = 0;
    for (; x + 16 <= w; x += 16) conv_avx2_4x16(xc + x, w0, wstride, cn, plane, wp, yo + x, ystride, accumulate);
    if (x + 8 <= w) conv_avx2_4x8(xc + x, w0, wstride, cn, plane, wp, yo + x, ystride, accumulate);
}

__attribute__((target("avx2,fma")))
void mfs_conv3x3_avx2(const float *xpad, int cin, int rows, int w, int wp, const float *weight,
                      int co0, int co1, float *y, size_t ystride) {
    const size_t plane = (size_t)(rows + 2) * (size_t)wp;
    const size_t wstride = (size_t)cin * 9;
    const int coEnd = co0 + (co1 - co0) / 4 * 4;
    const int passChannels = cin < MFS_CONV_CI_PASS ? cin : MFS_CONV_CI_PASS;
    const size_t passWeightBytes = (size_t)(coEnd - co0) * passChannels * 9 * sizeof(float);
    int chunk = rows;
    if (passWeightBytes > MFS_CONV_L2_WEIGHT_BYTES) {
        chunk = MFS_CONV_CHUNK_BYTES / (passChannels * wp * (int)sizeof(float)) - 2;
        if (chunk < 1) chunk = 1;
    }
    for (int r0 = 0; r0 < rows; r0 += chunk) {
        const int r1 = r0 + chunk < rows ? r0 + chunk : rows;
        if (passWeightBytes > MFS_CONV_L2_WEIGHT_BYTES) {
            for (int c0 = 0; c0 < cin; c0 += MFS_CONV_CI_PASS) {
                const int cn = cin - c0 < MFS_CONV_CI_PASS ? cin - c0 : MFS_CONV_CI_PASS;
                for (int co = co0; co < coEnd; co += 4)
                    for (int r = r0; r < r1; r++)
                        conv_avx2_row(xpad + c0 * plane + (size_t)r * wp, weight + (size_t)co * wstride + (size_t)c0 * 9,
                                      wstride, cn, plane, wp, w, y + co * ystride + (size_t)r * w, ystride, c0 > 0);
            }
        } else {
            for (int r = r0; r < r1; r++)
                for (int x = 0; x + 8 <= w; x += 16) {
                    const int tile = x + 16 <= w ? 16 : 8;
                    for (int c0 = 0; c0 < cin; c0 += MFS_CONV_CI_PASS) {
                        const int cn = cin - c0 < MFS_CONV_CI_PASS ? cin - c0 : MFS_CONV_CI_PASS;
                        for (int co = co0; co < coEnd; co += 4)
                            conv_avx2_row(xpad + c0 * plane + (size_t)r * wp + x, weight + (size_t)co * wstride + (size_t)c0 * 9,
                                          wstride, cn, plane, wp, tile, y + co * ystride + (size_t)r * w + x, ystride, c0 > 0);
                    }
                }
        }
        const int xv = conv_vector_end(w);
        for (int r = r0; r < r1 && xv < w; r++)
            for (int co = co0; co < coEnd; co++)
                conv_ref_span(xpad, cin, rows, wp, weight, co, r, xv, w, y + co * ystride + (size_t)r * w);
    }
    if (coEnd < co1) conv_ref(xpad, cin, rows, w, wp, weight, coEnd, co1, y, ystride);
}
#endif

/* The epilogue (conv3x3.h) on y[co][r][x] for co in [co0, co1), every row and column. Each
 * operation its own statement, so that the compiler fuses no multiply-add. */
#pragma clang fp contract(off)
void mfs_conv_epilogue_apply(const mfs_conv_epilogue *ep, int co0, int co1, int rows, int w, float *y,
                             size_t ystride) {
    const float g = ep->gain, ga = ep->gain * ep->alpha;
    for (int co = co0; co < co1; co++) {
        const float s = ep->scale ? ep->scale[co] : 1.0f, b = ep->bias ? ep->bias[co] : 0.0f;
        const float *a = ep->addend ? ep->addend + (size_t)co * ep->addend_channel_stride : NULL;
        float *yc = y + (size_t)co * ystride;
        const size_t n = (size_t)rows * (size_t)w;
        for (size_t i = 0; i < n; i++) {
            float v = yc[i];
            if (a) {
                if (s != 1.0f) v = v * s;
                v = v + a[i];
                v = v + b;
            } else if (s != 1.0f || b != 0.0f) {
                v = v * s;
                v = v + b;
            }
            switch (ep->activation) {
            case MFS_ACT_RELU:
                if (!(v > 0) && v == v) v = 0;
                if (g != 1.0f) v = v * g;
                break;
            case MFS_ACT_LEAKY:
                v = v >= 0 ? v * g : v * ga;
                break;
            default:
                if (g != 1.0f) v = v * g;
            }
            yc[i] = v;
        }
    }
}

void mfs_conv3x3s1(int path, const float *xpad, int cin, int rows, int w, int wp,
                   const float *weight, int co0, int co1, float *y, size_t y_channel_stride,
                   const mfs_conv_epilogue *ep) {
#ifdef CONV_X86
    if (path == MFS_CONV_AVX512 && mfs_conv3x3_path_available(MFS_CONV_AVX512)) {
        mfs_conv3x3_avx512(xpad, cin, rows, w, wp, weight, co0, co1, y, y_channel_stride, ep);
        return;
    }
    if (path == MFS_CONV_AVX2 && mfs_conv3x3_path_available(MFS_CONV_AVX2)) {
        mfs_conv3x3_avx2(xpad, cin, rows, w, wp, weight, co0, co1, y, y_channel_stride);
        if (ep) mfs_conv_epilogue_apply(ep, co0, co1, rows, w, y, y_channel_stride);
        return;
    }
#endif
    (void)path;
    conv_ref(xpad, cin, rows, w, wp, weight, co0, co1, y, y_channel_stride);
    if (ep) mfs_conv_epilogue_apply(ep, co0, co1, rows, w, y, y_channel_stride);
}
