/* The 3x3 stride-2 transposed conv with input columns in vector lanes: see convtranspose.h.
 * AVX-512 keeps 2 x 16 columns x 9 taps in 18 zmm accumulators (per input channel: 2 loads and
 * 9 weight broadcasts feed 18 FMAs), with masked tails; AVX2 keeps 8 columns x 9 taps in 9 ymm
 * and leaves the last w % 8 columns to the reference loop. */
#include "convtranspose.h"
#include "conv3x3.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#pragma clang fp contract(off)

#if defined(__x86_64__) || defined(__i386__)
#define CONVT_X86 1
#include <immintrin.h>
#endif

/* Columns [j0, j1) of input row i for one output channel (wk = its [cin][9] weights), adding
 * into rows[kh] (output row 2i + kh). carry[kh] is tap kw = 2 of column j0 - 1 (0 at the row
 * start); the column past the last (2w) gets the last one. */
static void convt_ref_cols(const float *xr, int cin, size_t xplane, int w, const float *wk, int j0, int j1,
                           float carry[3], float *rows[3]) {
    for (int j = j0; j < j1; j++) {
        float a[9] = {0};
        for (int ci = 0; ci < cin; ci++) {
            const float xv = xr[ci * xplane + j];
            const float *wc = wk + (size_t)ci * 9;
            for (int k = 0; k < 9; k++) a[k] = fmaf(wc[k], xv, a[k]);
        }
        for (int kh = 0; kh < 3; kh++) {
            rows[kh][2 * j] += a[kh * 3] + carry[kh];
            rows[kh][2 * j + 1] += a[kh * 3 + 1];
            carry[kh] = a[kh * 3 + 2];
        }
    }
    if (j1 == w)
        for (int kh = 0; kh < 3; kh++) rows[kh][2 * w] += 0.0f + carry[kh];
}

/* One input row of one output channel, `rows` its three output rows, xs the distance between
 * the input channels' rows: the signature every path's row function shares. */
typedef void (*convt_row_fn)(const float *xr, int cin, size_t xs, int w, const float *wk, float *rows[3]);

static void convt_row_ref(const float *xr, int cin, size_t xs, int w, const float *wk, float *rows[3]) {
    float carry[3] = {0.0f, 0.0f, 0.0f};
    convt_ref_cols(xr, cin, xs, w, wk, 0, w, carry, rows);
}

/* Input row i of every channel is copied into a per-thread buffer with a row stride that is
 * not a power of two: read in place, the cin rows of a tile sit a whole plane
 * apart (1 MB at 512x512), all in the same L1 and L2 sets, and the tile's loads went to L3.
 * Returns input row i of channel 0 and sets *stride to the distance between channels' rows
 * (in place, xplane, if the buffer cannot be had). The buffer lives as long as its thread:
 * cin x (w + 32) floats at most, 164 kB in the generator. */
static __thread float *convt_rowbuf;
static __thread size_t convt_rowcap;

static const float *convt_input_row(const float *x, int cin, size_t xplane, int w, int i, size_t *stride) {
    const size_t padded = (size_t)(w + 15) / 16 * 16 + 16;
    const size_t need = padded * (size_t)cin;
    if (need > convt_rowcap) {
        free(convt_rowbuf);
        convt_rowbuf = aligned_alloc(64, need * sizeof(float));
        convt_rowcap = convt_rowbuf ? need : 0;
    }
    *stride = xplane;
    if (!convt_rowbuf) return x + (size_t)i * w;
    for (int ci = 0; ci < cin; ci++)
        memcpy(convt_rowbuf + ci * padded, x + ci * xplane + (size_t)i * w, (size_t)w * sizeof(float));
    *stride = padded;
    return convt_rowbuf;
}

#ifdef CONVT_X86
#define AVX2_TARGET __attribute__((target("avx2,fma")))
#define AVX512_TARGET __attribute__((target("avx512f,avx2,fma")))

AVX2_TARGET static inline float lane7(__m256 v) {
    return _mm256_cvtss_f32(_mm256_permutevar8x32_ps(v, _mm256_set1_epi32(7)));
}

static AVX2_TARGET void convt_row_avx2(const float *xr, int cin, size_t xs, int w, const float *wk, float *rows[3]) {
    const __m256i rotate = _mm256_setr_epi32(7, 0, 1, 2, 3, 4, 5, 6);
    __m256 carry[3] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    int j0 = 0;
    for (; j0 + 8 <= w; j0 += 8) {
        __m256 a[9];
        for (int k = 0; k < 9; k++) a[k] = _mm256_setzero_ps();
        for (int ci = 0; ci < cin; ci++) {
            const __m256 xv = _mm256_loadu_ps(xr + ci * xs + j0);
            const float *wc = wk + (size_t)ci * 9;
            for (int k = 0; k < 9; k++) a[k] = _mm256_fmadd_ps(xv, _mm256_broadcast_ss(wc + k), a[k]);
        }
        for (int kh = 0; kh < 3; kh++) {
            const __m256 a2 = a[kh * 3 + 2];
            /* column j's kw = 2 tap lands on even column j + 1: shift one lane up */
            const __m256 s = _mm256_blend_ps(_mm256_permutevar8x32_ps(a2, rotate),
                                             _mm256_permutevar8x32_ps(carry[kh], rotate), 0x01);
            const __m256 e = _mm256_add_ps(a[kh * 3], s), o = a[kh * 3 + 1];
            const __m256 lo = _mm256_unpacklo_ps(e, o), hi = _mm256_unpackhi_ps(e, o);
            float *dst = rows[kh] + 2 * j0;
            _mm256_storeu_ps(dst, _mm256_add_ps(_mm256_loadu_ps(dst), _mm256_permute2f128_ps(lo, hi, 0x20)));
            _mm256_storeu_ps(dst + 8,
                             _mm256_add_ps(_mm256_loadu_ps(dst + 8), _mm256_permute2f128_ps(lo, hi, 0x31)));
            carry[kh] = a2;
        }
    }
    float c[3] = {0.0f, 0.0f, 0.0f};
    if (j0 > 0)
        for (int kh = 0; kh < 3; kh++) c[kh] = lane7(carry[kh]);
    convt_ref_cols(xr, cin, xs, w, wk, j0, w, c, rows);
}

static inline __mmask16 first_lanes(int n) {
    return n >= 16 ? (__mmask16)0xFFFF : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1);
}

/* V vectors of 16 columns from j0, n = w - j0 columns left in the row (> 16 * (V - 1)). */
AVX512_TARGET __attribute__((always_inline)) static inline void
convt_tile512(const int V, const float *xr, int cin, size_t xplane, const float *wk, int n, __m512 carry[3],
              float *rows[3], int j0) {
    __m512 a[2][9];
    for (int u = 0; u < V; u++)
        for (int k = 0; k < 9; k++) a[u][k] = _mm512_setzero_ps();
    const int masked = n < 16 * V;
    const __mmask16 m0 = first_lanes(n), m1 = first_lanes(n - 16);
    const float *xc = xr + j0;
    for (int ci = 0; ci < cin; ci++, xc += xplane) {
        const float *wc = wk + (size_t)ci * 9;
        const __m512 x0 = masked ? _mm512_maskz_loadu_ps(m0, xc) : _mm512_loadu_ps(xc);
        const __m512 x1 = V < 2 ? _mm512_setzero_ps() : masked ? _mm512_maskz_loadu_ps(m1, xc + 16) : _mm512_loadu_ps(xc + 16);
        for (int k = 0; k < 9; k++) {
            const __m512 b = _mm512_set1_ps(wc[k]);
            a[0][k] = _mm512_fmadd_ps(x0, b, a[0][k]);
            if (V > 1) a[1][k] = _mm512_fmadd_ps(x1, b, a[1][k]);
        }
    }
    const __m512i lo_idx = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i hi_idx = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    for (int u = 0; u < V; u++) {
        /* output positions from 2 * (j0 + 16u): two per column, plus 2w after the row's last */
        const int count = 2 * (n - 16 * u) + 1;
        for (int kh = 0; kh < 3; kh++) {
            const __m512 a2 = a[u][kh * 3 + 2];
            const __m512 s = _mm512_castsi512_ps(
                _mm512_alignr_epi32(_mm512_castps_si512(a2), _mm512_castps_si512(carry[kh]), 15));
            const __m512 e = _mm512_add_ps(a[u][kh * 3], s), o = a[u][kh * 3 + 1];
            const __m512 lo = _mm512_permutex2var_ps(e, lo_idx, o), hi = _mm512_permutex2var_ps(e, hi_idx, o);
            float *dst = rows[kh] + 2 * (j0 + 16 * u);
            if (count >= 32) {
                _mm512_storeu_ps(dst, _mm512_add_ps(_mm512_loadu_ps(dst), lo));
                _mm512_storeu_ps(dst + 16, _mm512_add_ps(_mm512_loadu_ps(dst + 16), hi));
                if (count == 33)
                    dst[32] += 0.0f + _mm512_cvtss_f32(_mm512_permutexvar_ps(_mm512_set1_epi32(15), a2));
            } else {
                const __mmask16 ml = first_lanes(count), mh = first_lanes(count - 16);
                _mm512_mask_storeu_ps(dst, ml, _mm512_add_ps(_mm512_maskz_loadu_ps(ml, dst), lo));
                _mm512_mask_storeu_ps(dst + 16, mh, _mm512_add_ps(_mm512_maskz_loadu_ps(mh, dst + 16), hi));
            }
            carry[kh] = a2;
        }
    }
}

static AVX512_TARGET void convt_row_avx512(const float *xr, int cin, size_t xs, int w, const float *wk,
                                           float *rows[3]) {
    __m512 carry[3] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    for (int j0 = 0; j0 < w;) {
        /* two vectors while more than 16 columns are left, then one (masked) */
        const int v = w - j0 > 16 ? 2 : 1;
        if (v == 2) convt_tile512(2, xr, cin, xs, wk, w - j0, carry, rows, j0);
        else convt_tile512(1, xr, cin, xs, wk, w - j0, carry, rows, j0);
        j0 += 16 * v;
    }
}
#endif

void mfs_convt3x3s2_rows(int path, const float *x, int cin, size_t xplane, int w, const float *weight, size_t wco,
                         int co0, int co1, int i0, int i1, float *t, size_t tplane, int row0) {
    convt_row_fn row = convt_row_ref;
#ifdef CONVT_X86
    if (path == MFS_CONV_AVX512 && mfs_conv3x3_path_available(MFS_CONV_AVX512)) row = convt_row_avx512;
    else if (mfs_conv_path_uses_avx2(path)) row = convt_row_avx2;
#endif
    (void)path;
    const size_t ow = 2 * (size_t)w + 1;
    for (int i = i0; i < i1; i++) {
        size_t xs;
        const float *xr = convt_input_row(x, cin, xplane, w, i, &xs);
        for (int co = co0; co < co1; co++) {
            float *base = t + (size_t)co * tplane + (size_t)(2 * i - row0) * ow;
            float *rows[3] = {base, base + ow, base + 2 * ow};
            row(xr, cin, xs, w, weight + co * wco, rows);
        }
    }
}
