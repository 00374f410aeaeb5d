/* AVX2 integer GEMM path: A widened to int16 at pack time (panels of QG_AVX2_MR rows), B
 * bytes widened in the kernel, products by vpmaddwd (exact: no saturation, see qgemm.h),
 * QG_AVX2_MR x 16 tiles (two 8-column passes). Also the AVX2 quantize-pack of B (same bytes as the scalar one). */
#include "qgemm_internal.h"
#ifdef QG_X86
#include <immintrin.h>

#ifndef QG_PACK_CHUNK
#define QG_PACK_CHUNK 64
#endif
#ifndef QG_AVX2_KCG
#define QG_AVX2_KCG 192 /* k groups per K block: A panel 9 KB + B panel 12 KB in L1 */
#endif
#ifndef QG_AVX2_MCP
#define QG_AVX2_MCP 32 /* A panels per M block: 288 KB in L2 */
#endif
#define T_AVX2 __attribute__((target("avx2,fma")))

/* One full 8-row panel in the 4-byte-group layout (the reference and VNNI paths' A): rows'
 * 32-byte runs transposed as 8x8 words, 8 k groups per step; the groups left over and the
 * last partial one in scalar code. Row sums of the int8 values into sums[8]. */
T_AVX2 void qg_pack_a_panel8_avx2(const int8_t *A, int lda, int K, int32_t *dst, int32_t *sums) {
    const int KG = qg_kgroups(K), steps = (K / 4) / 8;
    const __m256i flip = _mm256_set1_epi8((char)0x80), zero = _mm256_setzero_si256();
    __m256i acc[8];
    for (int r = 0; r < 8; r++) acc[r] = zero;
    for (int s = 0; s < steps; s++) {
        const int g = s * 8;
        __m256i v[8];
        for (int r = 0; r < 8; r++) {
            v[r] = _mm256_loadu_si256((const __m256i *)(A + (size_t)r * lda + (size_t)g * 4));
            /* sum of (x + 128) over 8-byte runs */
            acc[r] = _mm256_add_epi64(acc[r], _mm256_sad_epu8(_mm256_xor_si256(v[r], flip), zero));
        }
        __m256i t0 = _mm256_unpacklo_epi32(v[0], v[1]), t1 = _mm256_unpackhi_epi32(v[0], v[1]);
        __m256i t2 = _mm256_unpacklo_epi32(v[2], v[3]), t3 = _mm256_unpackhi_epi32(v[2], v[3]);
        __m256i t4 = _mm256_unpacklo_epi32(v[4], v[5]), t5 = _mm256_unpackhi_epi32(v[4], v[5]);
        __m256i t6 = _mm256_unpacklo_epi32(v[6], v[7]), t7 = _mm256_unpackhi_epi32(v[6], v[7]);
        /* u[j] holds group j (low lane) and j + 4 (high lane) of rows 0-3, u[j + 4] of rows 4-7 */
        __m256i u[8];
        u[0] = _mm256_unpacklo_epi64(t0, t2); u[1] = _mm256_unpackhi_epi64(t0, t2);
        u[2] = _mm256_unpacklo_epi64(t1, t3); u[3] = _mm256_unpackhi_epi64(t1, t3);
        u[4] = _mm256_unpacklo_epi64(t4, t6); u[5] = _mm256_unpackhi_epi64(t4, t6);
        u[6] = _mm256_unpacklo_epi64(t5, t7); u[7] = _mm256_unpackhi_epi64(t5, t7);
        __m256i *out = (__m256i *)(dst + (size_t)g * 8);
        for (int j = 0; j < 4; j++) {
            _mm256_storeu_si256(out + j, _mm256_permute2x128_si256(u[j], u[j + 4], 0x20));
            _mm256_storeu_si256(out + j + 4, _mm256_permute2x128_si256(u[j], u[j + 4], 0x31));
        }
    }
    const int done = steps * 8;
    for (int r = 0; r < 8; r++) {
        const int8_t *row = A + (size_t)r * lda;
        long long biased = _mm256_extract_epi64(acc[r], 0) + _mm256_extract_epi64(acc[r], 1)
                         + _mm256_extract_epi64(acc[r], 2) + _mm256_extract_epi64(acc[r], 3);
        int32_t sum = (int32_t)(biased - 128LL * done * 4);
        for (int k = done * 4; k < K; k++) sum += row[k];
        sums[r] = sum;
        for (int g = done; g < KG; g++) dst[(size_t)g * 8 + r] = qg_group_bytes(row, g, K);
    }
}

void qg_pack_a_int16(int M, int K, const int8_t *A, int lda, int mr, int16_t *packed, int panel0, int panel1) {
    int KG = qg_kgroups(K);
    for (int i = panel0; i < panel1; i++) {
        int16_t *p = packed + (size_t)i * KG * mr * 4;
        for (int g = 0; g < KG; g++)
            for (int r = 0; r < mr; r++)
                for (int j = 0; j < 4; j++) {
                    int m = i * mr + r, k = g * 4 + j;
                    *p++ = (m < M && k < K) ? A[(size_t)m * lda + k] : 0;
                }
    }
}

/* One k group: the tile's 8 columns as two vectors of 4 columns x 4 k (int16); each row's
 * 4 weights broadcast; vpmaddwd leaves per column two partial sums (k0+k1, k2+k3), which
 * the final hadd folds. */
T_AVX2 static inline __attribute__((always_inline)) void avx2_ukr8(const int16_t *a, const uint8_t *b, int kgs, int32_t *tile) {
    __m256i acc[QG_AVX2_MR][2];
#pragma clang loop unroll(full)
    for (int r = 0; r < QG_AVX2_MR; r++) acc[r][0] = acc[r][1] = _mm256_setzero_si256();
    for (int g = 0; g < kgs; g++) {
        __m256i b0 = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)b));
        __m256i b1 = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(b + 16)));
#pragma clang loop unroll(full)
        for (int r = 0; r < QG_AVX2_MR; r++) {
            long long w;
            memcpy(&w, a + 4 * r, 8);
            __m256i x = _mm256_set1_epi64x(w);
            acc[r][0] = _mm256_add_epi32(acc[r][0], _mm256_madd_epi16(b0, x));
            acc[r][1] = _mm256_add_epi32(acc[r][1], _mm256_madd_epi16(b1, x));
        }
        a += 4 * QG_AVX2_MR;
        b += 64;
    }
#pragma clang loop unroll(full)
    for (int r = 0; r < QG_AVX2_MR; r++) {
        /* hadd: [c0 c1 c4 c5 | c2 c3 c6 c7] -> permute the 64-bit halves into order */
        __m256i h = _mm256_hadd_epi32(acc[r][0], acc[r][1]);
        _mm256_store_si256((__m256i *)(tile + 16 * r), _mm256_permute4x64_epi64(h, 0xD8));
    }
}

/* A 16-column tile (one B panel) as two 8-column passes: the second pass finds the A
 * panel in L1. */
T_AVX2 static void avx2_ukr(const void *a, const uint8_t *b, size_t panel_stride, int kgs, int ncols, int32_t *tile) {
    (void)panel_stride;
    avx2_ukr8((const int16_t *)a, b, kgs, tile);
    if (ncols > 8) avx2_ukr8((const int16_t *)a, b + 32, kgs, tile + 8);
}

T_AVX2 static void avx2_store(const int32_t *tile, int nt, int r0, int r1, int c0, int c1, int m, int n,
                              int first, int last, const qg_out *o) {
    for (int h = 0; h < 2; h++) {
    const int lo = c0 > 8 * h ? c0 - 8 * h : 0;
    const int hi = c1 - 8 * h < 8 ? c1 - 8 * h : 8;
    if (lo >= hi) continue;
    if (lo != 0 || hi != 8) {
        qg_store_scalar(tile + 8 * h, nt, r0, r1, lo, hi, m, n + 8 * h, first, last, o);
        continue;
    }
    for (int r = r0; r < r1; r++) {
        __m256i t = _mm256_load_si256((const __m256i *)(tile + 16 * r + 8 * h));
        const int row = m + r;
        if (!o->f32) {
            __m256i *d = (__m256i *)(o->C + (size_t)row * o->ldc + n + 8 * h);
            if (!first) t = _mm256_add_epi32(t, _mm256_loadu_si256(d));
            _mm256_storeu_si256(d, t);
        } else {
            float *d = o->y + (size_t)row * o->ldy + n + 8 * h;
            if (!first) t = _mm256_add_epi32(t, _mm256_loadu_si256((const __m256i *)d));
            if (!last) { _mm256_storeu_si256((__m256i *)d, t); continue; }
            __m256 v = _mm256_cvtepi32_ps(_mm256_sub_epi32(t, _mm256_set1_epi32(o->zero_point * o->row_sums[row])));
            __m256 s = _mm256_set1_ps(o->scale_a[row] * o->scale_b);
            v = o->bias ? _mm256_fmadd_ps(v, s, _mm256_set1_ps(o->bias[row])) : _mm256_mul_ps(v, s);
            _mm256_storeu_ps(d, v);
        }
    }
    }
}

const qg_kernel qg_kernel_avx2 = {
    .mr = QG_AVX2_MR, .nt = 16, .a_elem = 2, .kcg = QG_AVX2_KCG, .mcp = QG_AVX2_MCP,
    .ukr = avx2_ukr, .store = avx2_store,
};

T_AVX2 static inline __m256i avx2_q8(const float *x, __m256 inv, __m256 lo, __m256 hi, __m256i zp) {
    __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x), inv);
    v = _mm256_min_ps(_mm256_max_ps(v, lo), hi);
    return _mm256_add_epi32(_mm256_cvtps_epi32(v), zp);
}

T_AVX2 void qg_quantize_pack_b_avx2(int K, int N, const float *X, int ldx, float inv_scale, int mode,
                                    uint8_t *packed, int n0, int n1) {
    const int uns = mode == MFS_QGEMM_ACT_UNSIGNED;
    const float lo = uns ? 0.0f : -127.0f, hi = uns ? 255.0f : 127.0f;
    const int zp = uns ? 0 : 128;
    const __m256 vinv = _mm256_set1_ps(inv_scale), vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi);
    const __m256i vzp = _mm256_set1_epi32(zp);
    const int KG = qg_kgroups(K), KGfull = K / 4;
    /* Full panels in chunks of QG_PACK_CHUNK (reads 4 rows x QG_PACK_CHUNK x 64 contiguous bytes per k group);
     * partial panels and the k tail (K % 4) element by element. */
    const int pbeg = n0 / QG_PANEL, pend = (n1 + QG_PANEL - 1) / QG_PANEL;
    const int pfull = N / QG_PANEL < pend ? N / QG_PANEL : pend; /* panels [pbeg, pfull) are full */
    for (int pc = pbeg; pc < pfull; pc += QG_PACK_CHUNK) {
        const int pe = pc + QG_PACK_CHUNK < pfull ? pc + QG_PACK_CHUNK : pfull;
        for (int g = 0; g < KGfull; g++) {
            const float *x = X + (size_t)(4 * g) * ldx;
            for (int p = pc; p < pe; p++) {
                uint8_t *d = packed + (size_t)p * KG * 64 + (size_t)g * 64;
                for (int h = 0; h < 2; h++) {
                    const float *xh = x + p * QG_PANEL + 8 * h;
                    __m256i q0 = avx2_q8(xh, vinv, vlo, vhi, vzp);
                    __m256i q1 = avx2_q8(xh + ldx, vinv, vlo, vhi, vzp);
                    __m256i q2 = avx2_q8(xh + 2 * (size_t)ldx, vinv, vlo, vhi, vzp);
                    __m256i q3 = avx2_q8(xh + 3 * (size_t)ldx, vinv, vlo, vhi, vzp);
                    __m256i w = _mm256_or_si256(_mm256_or_si256(q0, _mm256_slli_epi32(q1, 8)),
                                                _mm256_or_si256(_mm256_slli_epi32(q2, 16), _mm256_slli_epi32(q3, 24)));
                    _mm256_storeu_si256((__m256i *)(d + 32 * h), w);
                }
            }
        }
    }
    for (int p = pbeg; p < pend; p++) {
        const int g0 = p < pfull ? KGfull : 0;
        uint8_t *d = packed + (size_t)p * KG * 64 + (size_t)g0 * 64;
        for (int g = g0; g < KG; g++)
            for (int c = 0; c < QG_PANEL; c++)
                for (int j = 0; j < 4; j++) {
                    int n = p * QG_PANEL + c, k = g * 4 + j;
                    *d++ = (n < N && k < K) ? qg_quantize1(X[(size_t)k * ldx + n], inv_scale, lo, hi, zp) : (uint8_t)zp;
                }
    }
}

T_AVX2 float qg_absmax_avx2(const float *x, size_t n) {
    const __m256 mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 m0 = _mm256_setzero_ps(), m1 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        m0 = _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(x + i), mask), m0); /* NaN -> keeps m0 */
        m1 = _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(x + i + 8), mask), m1);
    }
    float t[8], m = 0;
    _mm256_storeu_ps(t, _mm256_max_ps(m0, m1));
    for (int j = 0; j < 8; j++) m = t[j] > m ? t[j] : m;
    for (; i < n; i++) { float a = __builtin_fabsf(x[i]); m = a > m ? a : m; }
    return m;
}
#endif
