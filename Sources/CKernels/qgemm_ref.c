/* Portable integer GEMM path: plain C over the REF/VNNI layout (A int8, panels of 8 rows),
 * 8 x 16 tiles. Also the scalar quantize-pack of B, which defines the bytes every path packs. */
#include "qgemm_internal.h"

static void ref_ukr(const void *av, const uint8_t *b, size_t panel_stride, int kgs, int ncols, int32_t *tile) {
    (void)panel_stride; (void)ncols;
    const int8_t *a = (const int8_t *)av;
    int32_t acc[8][16];
    memset(acc, 0, sizeof acc);
    for (int g = 0; g < kgs; g++, a += 32, b += 64)
        for (int r = 0; r < 8; r++)
            for (int c = 0; c < 16; c++) {
                int32_t s = 0;
                for (int j = 0; j < 4; j++) s += (int32_t)a[r * 4 + j] * (int32_t)b[c * 4 + j];
                acc[r][c] += s;
            }
    memcpy(tile, acc, sizeof acc);
}

static void ref_store(const int32_t *tile, int nt, int r0, int r1, int c0, int c1, int m, int n,
                      int first, int last, const qg_out *out) {
    qg_store_scalar(tile, nt, r0, r1, c0, c1, m, n, first, last, out);
}

const qg_kernel qg_kernel_ref = {
    .mr = 8, .nt = 16, .a_elem = 1, .kcg = 1 << 28, .mcp = 1 << 28,
    .ukr = ref_ukr, .store = ref_store,
};

void qg_quantize_pack_b_ref(int K, int N, const float *X, int ldx, float inv_scale, int mode,
                            uint8_t *packed, int n0, int n1) {
    const int uns = mode == MFS_QGEMM_ACT_UNSIGNED;
    const float lo = uns ? 0.0f : -127.0f, hi = uns ? 255.0f : 127.0f;
    const int zp = uns ? 0 : 128;
    const int KG = qg_kgroups(K);
    for (int p = n0 / QG_PANEL; p * QG_PANEL < n1; p++) {
        uint8_t *d = packed + (size_t)p * KG * 64;
        for (int g = 0; g < KG; g++)
            for (int c = 0; c < QG_PANEL; c++)
                for (int j = 0; j < 4; j++) {
                    int n = p * QG_PANEL + c, k = g * 4 + j;
                    *d++ = (n < N && k < K) ? qg_quantize1(X[(size_t)k * ldx + n], inv_scale, lo, hi, zp)
                                            : (uint8_t)zp;
                }
    }
}
