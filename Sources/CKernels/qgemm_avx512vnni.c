/* AVX-512 VNNI integer GEMM path: A int8 in panels of 8 rows (the REF layout), 8 x 32 tiles
 * (two B panels; 8 x 16 when one panel is left), vpdpbusd: unsigned B bytes times signed
 * A bytes, four products summed into each int32 lane, without saturation. */
#include "qgemm_internal.h"
#ifdef QG_X86
#include <immintrin.h>

#define T_VNNI __attribute__((target("avx512f,avx512bw,avx512vnni,avx2,fma")))

T_VNNI static void vnni_ukr(const void *av, const uint8_t *b, size_t panel_stride, int kgs, int ncols, int32_t *tile) {
    const int8_t *a = (const int8_t *)av;
    if (ncols > 16) {
        const uint8_t *b1 = b + panel_stride;
        __m512i acc[8][2];
#pragma clang loop unroll(full)
        for (int r = 0; r < 8; r++) acc[r][0] = acc[r][1] = _mm512_setzero_si512();
        for (int g = 0; g < kgs; g++) {
            __m512i x0 = _mm512_loadu_si512((const void *)b);
            __m512i x1 = _mm512_loadu_si512((const void *)b1);
#pragma clang loop unroll(full)
            for (int r = 0; r < 8; r++) {
                int32_t w;
                memcpy(&w, a + 4 * r, 4);
                __m512i aw = _mm512_set1_epi32(w);
                acc[r][0] = _mm512_dpbusd_epi32(acc[r][0], x0, aw);
                acc[r][1] = _mm512_dpbusd_epi32(acc[r][1], x1, aw);
            }
            a += 32; b += 64; b1 += 64;
        }
#pragma clang loop unroll(full)
        for (int r = 0; r < 8; r++) {
            _mm512_store_si512((void *)(tile + 32 * r), acc[r][0]);
            _mm512_store_si512((void *)(tile + 32 * r + 16), acc[r][1]);
        }
    } else {
        __m512i acc[8];
#pragma clang loop unroll(full)
        for (int r = 0; r < 8; r++) acc[r] = _mm512_setzero_si512();
        for (int g = 0; g < kgs; g++) {
            __m512i x0 = _mm512_loadu_si512((const void *)b);
#pragma clang loop unroll(full)
            for (int r = 0; r < 8; r++) {
                int32_t w;
                memcpy(&w, a + 4 * r, 4);
                acc[r] = _mm512_dpbusd_epi32(acc[r], x0, _mm512_set1_epi32(w));
            }
            a += 32; b += 64;
        }
#pragma clang loop unroll(full)
        for (int r = 0; r < 8; r++) _mm512_store_si512((void *)(tile + 32 * r), acc[r]);
    }
}

/* Masked stores of the valid columns: each tile row is two 16-column halves. */
T_VNNI static void vnni_store(const int32_t *tile, int nt, int r0, int r1, int c0, int c1, int m, int n,
                              int first, int last, const qg_out *o) {
    (void)nt;
    for (int h = 0; h < 2; h++) {
        const int lo = c0 > 16 * h ? c0 - 16 * h : 0;
        const int hi = c1 - 16 * h < 16 ? c1 - 16 * h : 16;
        if (lo >= hi) continue;
        const __mmask16 mask = (__mmask16)(((1u << hi) - 1u) & ~((1u << lo) - 1u));
        for (int r = r0; r < r1; r++) {
            const int row = m + r;
            __m512i t = _mm512_load_si512((const void *)(tile + 32 * r + 16 * h));
            if (!o->f32) {
                int32_t *d = o->C + (size_t)row * o->ldc + n + 16 * h;
                if (!first) t = _mm512_add_epi32(t, _mm512_maskz_loadu_epi32(mask, d));
                _mm512_mask_storeu_epi32(d, mask, t);
            } else {
                float *d = o->y + (size_t)row * o->ldy + n + 16 * h;
                if (!first) t = _mm512_add_epi32(t, _mm512_maskz_loadu_epi32(mask, d));
                if (!last) { _mm512_mask_storeu_epi32(d, mask, t); continue; }
                __m512 v = _mm512_cvtepi32_ps(_mm512_sub_epi32(t, _mm512_set1_epi32(o->zero_point * o->row_sums[row])));
                __m512 s = _mm512_set1_ps(o->scale_a[row] * o->scale_b);
                v = o->bias ? _mm512_fmadd_ps(v, s, _mm512_set1_ps(o->bias[row])) : _mm512_mul_ps(v, s);
                _mm512_mask_storeu_ps(d, mask, v);
            }
        }
    }
}

const qg_kernel qg_kernel_avx512vnni = {
    .mr = 8, .nt = 32, .a_elem = 1, .kcg = 128, .mcp = 32,
    .ukr = vnni_ukr, .store = vnni_store,
};
#endif
