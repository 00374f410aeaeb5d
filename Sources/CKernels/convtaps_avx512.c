/* The AVX-512 path of the direct convolutions (conv3x3.h, convtaps.h): 8 output channels x
 * 32 columns in 16 zmm accumulators. Per tap of one input channel, 2 input loads and 8 weight
 * broadcasts feed 16 FMAs (the AVX2 tile's 4 x 16 needs 6 loads per 8 FMAs of half the width),
 * and row tails run masked instead of on the scalar path. The 3x3 conv is the list of nine
 * taps ky * wp + kx. Every output sums in the reference order (input channel, then tap, one
 * fmaf each), so the result is bit-identical to the other paths. */
#include "conv3x3_internal.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#define AVX512_TARGET __attribute__((target("avx512f,avx2,fma")))

/* A tile's 16-column vector: whole, or the first lanes of `m` when `masked`. */
#define LOADX(p, m) (masked ? _mm512_maskz_loadu_ps((m), (p)) : _mm512_loadu_ps(p))
#define STOREY(p, m, v)                                                                     \
    do {                                                                                    \
        if (masked) _mm512_mask_storeu_ps((p), (m), (v)); else _mm512_storeu_ps((p), (v));  \
    } while (0)

/* The epilogue (conv3x3.h) on one channel's 16 outputs v, with a at their addend (NULL: none). */
AVX512_TARGET __attribute__((always_inline)) static inline __m512
epilogue16(__m512 v, const mfs_conv_epilogue *ep, float s, float b, const float *a, int masked, __mmask16 m) {
    if (a) {
        if (s != 1.0f) v = _mm512_mul_ps(v, _mm512_set1_ps(s));
        v = _mm512_add_ps(v, LOADX(a, m));
        v = _mm512_add_ps(v, _mm512_set1_ps(b));
    } else if (s != 1.0f || b != 0.0f) {
        v = _mm512_mul_ps(v, _mm512_set1_ps(s));
        v = _mm512_add_ps(v, _mm512_set1_ps(b));
    }
    const float g = ep->gain;
    const __m512 zero = _mm512_setzero_ps();
    switch (ep->activation) {
    case MFS_ACT_RELU: {
        const __mmask16 keep = _mm512_cmp_ps_mask(v, zero, _CMP_GT_OQ) | _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
        v = _mm512_maskz_mov_ps(keep, v);
        if (g != 1.0f) v = _mm512_mul_ps(v, _mm512_set1_ps(g));
        break;
    }
    case MFS_ACT_LEAKY: {
        const __mmask16 pos = _mm512_cmp_ps_mask(v, zero, _CMP_GE_OQ);
        v = _mm512_mask_blend_ps(pos, _mm512_mul_ps(v, _mm512_set1_ps(g * ep->alpha)), _mm512_mul_ps(v, _mm512_set1_ps(g)));
        break;
    }
    default:
        if (g != 1.0f) v = _mm512_mul_ps(v, _mm512_set1_ps(g));
    }
    return v;
}

/* Channel j's scale, bias and addend (at in-band offset aoff) for a tile at output channel co. */
#define EP_CHANNEL(j)                                                                                      \
    const float s = ep->scale ? ep->scale[co + (j)] : 1.0f, b = ep->bias ? ep->bias[co + (j)] : 0.0f;     \
    const float *a = ep->addend ? ep->addend + (size_t)(co + (j)) * ep->addend_channel_stride + aoff : NULL

/* 8 output channels x 32 columns; the second 16 masked by m1 when `masked`. xc at (first input
 * channel of the pass, row, column), w0 at (co, first input channel of the pass). Inlined with
 * `taps` constant, so each tap count gets its own unrolled loop. */
AVX512_TARGET __attribute__((always_inline)) static inline void
tile8x32(const float *xc, const float *w0, size_t wstride, int cn, size_t plane, int taps, const int *offsets,
         float *y, size_t ystride, int accumulate, int masked, __mmask16 m1, const mfs_conv_epilogue *ep, int co,
         size_t aoff) {
    __m512 c[8][2];
    for (int j = 0; j < 8; j++) {
        c[j][0] = accumulate ? _mm512_loadu_ps(y + j * ystride) : _mm512_setzero_ps();
        c[j][1] = accumulate ? LOADX(y + j * ystride + 16, m1) : _mm512_setzero_ps();
    }
    for (int ci = 0; ci < cn; ci++) {
        for (int t = 0; t < taps; t++) {
            const float *xr = xc + offsets[t];
            const __m512 a0 = _mm512_loadu_ps(xr), a1 = LOADX(xr + 16, m1);
            for (int j = 0; j < 8; j++) {
                const __m512 b = _mm512_set1_ps(w0[j * wstride + t]);
                c[j][0] = _mm512_fmadd_ps(a0, b, c[j][0]);
                c[j][1] = _mm512_fmadd_ps(a1, b, c[j][1]);
            }
        }
        xc += plane;
        w0 += taps;
    }
    if (ep)
        for (int j = 0; j < 8; j++) {
            EP_CHANNEL(j);
            c[j][0] = epilogue16(c[j][0], ep, s, b, a, 0, 0xffff);
            c[j][1] = epilogue16(c[j][1], ep, s, b, a ? a + 16 : NULL, masked, m1);
        }
    for (int j = 0; j < 8; j++) {
        _mm512_storeu_ps(y + j * ystride, c[j][0]);
        STOREY(y + j * ystride + 16, m1, c[j][1]);
    }
}

/* 8 output channels x 16 columns (the first lanes of m). */
AVX512_TARGET __attribute__((always_inline)) static inline void
tile8x16(const float *xc, const float *w0, size_t wstride, int cn, size_t plane, int taps, const int *offsets,
         float *y, size_t ystride, int accumulate, __mmask16 m, const mfs_conv_epilogue *ep, int co, size_t aoff) {
    const int masked = 1;
    __m512 c[8];
    for (int j = 0; j < 8; j++) c[j] = accumulate ? LOADX(y + j * ystride, m) : _mm512_setzero_ps();
    for (int ci = 0; ci < cn; ci++) {
        for (int t = 0; t < taps; t++) {
            const __m512 a = LOADX(xc + offsets[t], m);
            for (int j = 0; j < 8; j++) c[j] = _mm512_fmadd_ps(a, _mm512_set1_ps(w0[j * wstride + t]), c[j]);
        }
        xc += plane;
        w0 += taps;
    }
    if (ep)
        for (int j = 0; j < 8; j++) {
            EP_CHANNEL(j);
            c[j] = epilogue16(c[j], ep, s, b, a, 1, m);
        }
    for (int j = 0; j < 8; j++) STOREY(y + j * ystride, m, c[j]);
}

/* Columns [0, n) of a row (n <= 32) for 8 output channels, with `taps` constant when inlined. */
AVX512_TARGET __attribute__((always_inline)) static inline void
span8(const float *xc, const float *w0, size_t wstride, int cn, size_t plane, int taps, const int *offsets, int n,
      float *y, size_t ystride, int accumulate, const mfs_conv_epilogue *ep, int co, size_t aoff) {
    if (n == 32) tile8x32(xc, w0, wstride, cn, plane, taps, offsets, y, ystride, accumulate, 0, 0xffff, ep, co, aoff);
    else if (n > 16)
        tile8x32(xc, w0, wstride, cn, plane, taps, offsets, y, ystride, accumulate, 1, (__mmask16)((1u << (n - 16)) - 1),
                 ep, co, aoff);
    else tile8x16(xc, w0, wstride, cn, plane, taps, offsets, y, ystride, accumulate, (__mmask16)((1u << n) - 1), ep, co, aoff);
}

#define SPAN8_FOR(T)                                                                                          \
    AVX512_TARGET static void span8_##T(const float *xc, const float *w0, size_t wstride, int cn, size_t plane, \
                                        int taps, const int *offsets, int n, float *y, size_t ystride,          \
                                        int accumulate, const mfs_conv_epilogue *ep, int co, size_t aoff) {     \
        (void)taps;                                                                                             \
        span8(xc, w0, wstride, cn, plane, T, offsets, n, y, ystride, accumulate, ep, co, aoff);                 \
    }
SPAN8_FOR(9)
SPAN8_FOR(1)

AVX512_TARGET static void span8_any(const float *xc, const float *w0, size_t wstride, int cn, size_t plane, int taps,
                                    const int *offsets, int n, float *y, size_t ystride, int accumulate,
                                    const mfs_conv_epilogue *ep, int co, size_t aoff) {
    span8(xc, w0, wstride, cn, plane, taps, offsets, n, y, ystride, accumulate, ep, co, aoff);
}

typedef void (*span8_fn)(const float *, const float *, size_t, int, size_t, int, const int *, int, float *, size_t, int,
                         const mfs_conv_epilogue *, int, size_t);

/* Output channels [co0, co0 + 8k) of a direct conv over a list of taps (convtaps.c) in blocks of 8, with the loop
 * orders of conv3x3_internal.h (`halo`: band rows beyond the output rows a chunk reads).
 * Returns the first channel left (fewer than 8), for the caller's AVX2 code. */
AVX512_TARGET int mfs_conv_taps_avx512_blocks(const float *xpad, int cin, size_t plane, int wp, int rows, int w,
                                              const float *weight, int taps, const int *offsets, int halo, int co0,
                                              int co1, float *y, size_t ystride, size_t yrow,
                                              const mfs_conv_epilogue *ep) {
    const span8_fn span = taps == 9 ? span8_9 : taps == 1 ? span8_1 : span8_any;
    const size_t wstride = (size_t)cin * taps;
    const int coEnd = co0 + (co1 - co0) / 8 * 8;
    const int passChannels = cin < MFS_CONV_CI_PASS ? cin : MFS_CONV_CI_PASS;
    const size_t passWeightBytes = (size_t)(coEnd - co0) * passChannels * taps * sizeof(float);
    const int weightOuter = passWeightBytes > MFS_CONV_L2_WEIGHT_BYTES;
    int chunk = rows;
    if (weightOuter) {
        chunk = MFS_CONV_CHUNK_BYTES / (passChannels * wp * (int)sizeof(float)) - halo;
        if (chunk < 1) chunk = 1;
    }
    for (int r0 = 0; r0 < rows; r0 += chunk) {
        const int r1 = r0 + chunk < rows ? r0 + chunk : rows;
        if (weightOuter) {
            for (int c0 = 0; c0 < cin; c0 += MFS_CONV_CI_PASS) {
                const int cn = cin - c0 < MFS_CONV_CI_PASS ? cin - c0 : MFS_CONV_CI_PASS;
                for (int co = co0; co < coEnd; co += 8)
                    for (int r = r0; r < r1; r++)
                        for (int x = 0; x < w; x += 32)
                            span(xpad + c0 * plane + (size_t)r * wp + x, weight + (size_t)co * wstride + (size_t)c0 * taps,
                                 wstride, cn, plane, taps, offsets, w - x < 32 ? w - x : 32,
                                 y + co * ystride + (size_t)r * yrow + x, ystride, c0 > 0, c0 + cn == cin ? ep : NULL,
                                 co, (size_t)r * yrow + x);
            }
        } else {
            for (int r = r0; r < r1; r++)
                for (int x = 0; x < w; x += 32)
                    for (int c0 = 0; c0 < cin; c0 += MFS_CONV_CI_PASS) {
                        const int cn = cin - c0 < MFS_CONV_CI_PASS ? cin - c0 : MFS_CONV_CI_PASS;
                        for (int co = co0; co < coEnd; co += 8)
                            span(xpad + c0 * plane + (size_t)r * wp + x, weight + (size_t)co * wstride + (size_t)c0 * taps,
                                 wstride, cn, plane, taps, offsets, w - x < 32 ? w - x : 32,
                                 y + co * ystride + (size_t)r * yrow + x, ystride, c0 > 0, c0 + cn == cin ? ep : NULL,
                                 co, (size_t)r * yrow + x);
                    }
        }
    }
    return coEnd;
}

/* Rows [m0, m0 + 8i) of mfs_sgemm_rows (convtaps.h) in blocks of 8 (tiles of the one-tap span). */
AVX512_TARGET int mfs_sgemm_rows_avx512_blocks(const float *weight, int k, const float *x, size_t ldx, int n, int m0,
                                               int m1, float *y, size_t ldy) {
    static const int origin[1] = {0};
    const int end = m0 + (m1 - m0) / 8 * 8;
    for (int r = m0; r < end; r += 8)
        for (int j = 0; j < n; j += 32)
            span8_1(x + j, weight + (size_t)r * k, (size_t)k, k, ldx, 1, origin, n - j < 32 ? n - j : 32,
                    y + r * ldy + j, ldy, 0, NULL, r, 0);
    return end;
}

void mfs_conv3x3_avx512(const float *xpad, int cin, int rows, int w, int wp, const float *weight, int co0, int co1,
                        float *y, size_t ystride, const mfs_conv_epilogue *ep) {
    int offsets[9];
    for (int t = 0; t < 9; t++) offsets[t] = (t / 3) * wp + t % 3;
    const int coEnd = mfs_conv_taps_avx512_blocks(xpad, cin, (size_t)(rows + 2) * (size_t)wp, wp, rows, w, weight, 9,
                                                  offsets, 2, co0, co1, y, ystride, (size_t)w, ep);
    if (coEnd < co1) {
        mfs_conv3x3_avx2(xpad, cin, rows, w, wp, weight, coEnd, co1, y, ystride);
        if (ep) mfs_conv_epilogue_apply(ep, coEnd, co1, rows, w, y, ystride);
    }
}
#endif
