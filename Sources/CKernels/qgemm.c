/* Integer GEMM: path selection, packing entry points and the blocked driver shared by
 * all paths (the per-ISA microkernels live in qgemm_ref.c, qgemm_avx2.c, qgemm_avx512vnni.c). */
#include "ckernels.h"
#include "qgemm_internal.h"
#include <string.h>
#include <math.h>

static int qg_available[3] = {-1, -1, -1};

int mfs_qgemm_path_available(int path) {
    if (path == MFS_QGEMM_REF) return 1;
#ifdef QG_X86
    if (path != MFS_QGEMM_AVX2 && path != MFS_QGEMM_AVX512VNNI) return 0;
    int v = __atomic_load_n(&qg_available[path], __ATOMIC_RELAXED);
    if (v < 0) {
        mfs_cpu_features f = mfs_detect_cpu();
        v = path == MFS_QGEMM_AVX2 ? (f.avx2 && f.fma)
                                   : (f.avx2 && f.fma && f.avx512f && f.avx512bw && f.avx512vnni);
        __atomic_store_n(&qg_available[path], v, __ATOMIC_RELAXED);
    }
    return v;
#else
    (void)qg_available;
    return 0;
#endif
}

int mfs_qgemm_best_path(void) {
    if (mfs_qgemm_path_available(MFS_QGEMM_AVX512VNNI)) return MFS_QGEMM_AVX512VNNI;
    if (mfs_qgemm_path_available(MFS_QGEMM_AVX2)) return MFS_QGEMM_AVX2;
    return MFS_QGEMM_REF;
}

const char *mfs_qgemm_path_name(int path) {
    switch (path) {
    case MFS_QGEMM_REF: return "ref";
    case MFS_QGEMM_AVX2: return "avx2";
    case MFS_QGEMM_AVX512VNNI: return "avx512vnni";
    default: return "?";
    }
}

static const qg_kernel *qg_kernel_for(int path) {
    if (!mfs_qgemm_path_available(path)) return NULL;
    switch (path) {
    case MFS_QGEMM_REF: return &qg_kernel_ref;
#ifdef QG_X86
    case MFS_QGEMM_AVX2: return &qg_kernel_avx2;
    case MFS_QGEMM_AVX512VNNI: return &qg_kernel_avx512vnni;
#endif
    default: return NULL;
    }
}

int mfs_qgemm_mr(int path) { return path == MFS_QGEMM_AVX2 ? QG_AVX2_MR : 8; }
int mfs_qgemm_zero_point(int mode) { return mode == MFS_QGEMM_ACT_UNSIGNED ? 0 : 128; }

size_t mfs_qgemm_packed_a_size(int path, int M, int K) {
    size_t mr = (size_t)mfs_qgemm_mr(path);
    size_t rows = (M + mr - 1) / mr * mr;
    return rows * (size_t)qg_kgroups(K) * 4 * (path == MFS_QGEMM_AVX2 ? 2 : 1);
}

size_t mfs_qgemm_packed_b_size(int K, int N) {
    return (size_t)(N + QG_PANEL - 1) / QG_PANEL * QG_PANEL * (size_t)qg_kgroups(K) * 4;
}

void mfs_qgemm_pack_a(int path, int M, int K, const int8_t *A, int lda, void *packed, int32_t *row_sums) {
    int mr = mfs_qgemm_mr(path);
    mfs_qgemm_pack_a_panels(path, M, K, A, lda, packed, row_sums, 0, (M + mr - 1) / mr);
}


void mfs_qgemm_pack_a_panels(int path, int M, int K, const int8_t *A, int lda, void *packed, int32_t *row_sums,
                             int panel0, int panel1) {
    int mr = mfs_qgemm_mr(path), KG = qg_kgroups(K);
#ifdef QG_X86
    /* Full 8-row panels of the 4-byte-group layout in AVX2 (the same bytes); the rest below. */
    if (path != MFS_QGEMM_AVX2 && mr == 8 && mfs_qgemm_path_available(MFS_QGEMM_AVX2)) {
        int full = M / 8 < panel1 ? M / 8 : panel1;
        for (int i = panel0; i < full; i++) {
            int32_t sums[8];
            qg_pack_a_panel8_avx2(A + (size_t)i * 8 * lda, lda, K, (int32_t *)packed + (size_t)i * KG * 8, sums);
            if (row_sums) memcpy(row_sums + (size_t)i * 8, sums, sizeof sums);
        }
        if (full > panel0) panel0 = full;
        if (panel0 >= panel1) return;
    }
#endif
    if (row_sums) {
        for (int m = panel0 * mr; m < M && m < panel1 * mr; m++) {
            int32_t s = 0;
            for (int k = 0; k < K; k++) s += A[(size_t)m * lda + k];
            row_sums[m] = s;
        }
    }
#ifdef QG_X86
    if (path == MFS_QGEMM_AVX2) { qg_pack_a_int16(M, K, A, lda, mr, (int16_t *)packed, panel0, panel1); return; }
#endif
    /* Panel i holds, for each k group g, the four bytes of its mr rows: 32-bit words at
     * (i * KG + g) * mr + r. Row by row, so each row is read once, in order. */
    int32_t *words = (int32_t *)packed;
    for (int i = panel0; i < panel1; i++)
        for (int r = 0; r < mr; r++) {
            const int m = i * mr + r;
            int32_t *dst = words + (size_t)i * KG * mr + r;
            if (m >= M) { for (int g = 0; g < KG; g++) dst[(size_t)g * mr] = 0; continue; }
            const int8_t *row = A + (size_t)m * lda;
            for (int g = 0; g < KG; g++) dst[(size_t)g * mr] = qg_group_bytes(row, g, K);
        }
}

void mfs_qgemm_quantize_pack_b(int K, int N, const float *X, int ldx, float inv_scale, int mode,
                               uint8_t *packed, int n0, int n1) {
#ifdef QG_X86
    if (mfs_qgemm_path_available(MFS_QGEMM_AVX2)) {
        qg_quantize_pack_b_avx2(K, N, X, ldx, inv_scale, mode, packed, n0, n1);
        return;
    }
#endif
    qg_quantize_pack_b_ref(K, N, X, ldx, inv_scale, mode, packed, n0, n1);
}

void mfs_qgemm_pack_b_u8(int K, int N, const uint8_t *X, int ldx, uint8_t pad, uint8_t *packed, int n0, int n1) {
    int KG = qg_kgroups(K);
    for (int p = n0 / QG_PANEL; p * QG_PANEL < n1; p++) {
        uint8_t *d = packed + (size_t)p * KG * 64;
        for (int g = 0; g < KG; g++)
            for (int c = 0; c < QG_PANEL; c++)
                for (int j = 0; j < 4; j++) {
                    int n = p * QG_PANEL + c, k = g * 4 + j;
                    *d++ = (n < N && k < K) ? X[(size_t)k * ldx + n] : pad;
                }
    }
}

float mfs_absmax_f32(const float *x, size_t n) {
#ifdef QG_X86
    if (mfs_qgemm_path_available(MFS_QGEMM_AVX2)) return qg_absmax_avx2(x, n);
#endif
    float m = 0;
    for (size_t i = 0; i < n; i++) { float a = fabsf(x[i]); m = a > m ? a : m; }
    return m;
}

static int qg_run(int path, int M, int N, int K, const void *packed_a, const uint8_t *packed_b,
                  const qg_out *out, int m0, int m1, int n0, int n1) {
    const qg_kernel *kr = qg_kernel_for(path);
    if (!kr || M < 0 || N < 0 || K < 0 || m0 < 0 || m1 > M || n0 < 0 || n1 > N) return -1;
    if (m0 >= m1 || n0 >= n1) return 0;
    const int mr = kr->mr, nt = kr->nt, KG = qg_kgroups(K);
    const size_t a_panel = (size_t)mr * KG * 4 * kr->a_elem; /* bytes per A panel */
    const size_t b_panel = (size_t)KG * 64;                  /* bytes per B panel */
    const int ip0 = m0 / mr, ip1 = (m1 + mr - 1) / mr;
    const int step = nt < QG_PANEL ? nt : QG_PANEL;
    const int nstart = n0 - n0 % step;
    int32_t tile[8 * 32] __attribute__((aligned(64)));
    if (KG == 0) { /* K = 0: the product is zero */
        memset(tile, 0, sizeof tile);
        for (int m = m0; m < m1; m++)
            for (int n = n0; n < n1; n++) qg_store_scalar(tile, 0, 0, 1, 0, 1, m, n, 1, 1, out);
        return 0;
    }
    /* K blocks of at most kcg groups, balanced (no short last block). */
    const int nkb = (KG + kr->kcg - 1) / kr->kcg, kstep = (KG + nkb - 1) / nkb;
    for (int kb = 0; kb < KG; kb += kstep) {
        const int kgs = KG - kb < kstep ? KG - kb : kstep;
        const int first = kb == 0, last = kb + kgs == KG;
        for (int ib = ip0; ib < ip1; ib += kr->mcp) {
            const int ie = ib + kr->mcp < ip1 ? ib + kr->mcp : ip1;
            for (int n = nstart; n < n1; n += nt) {
                const int c0 = n0 > n ? n0 - n : 0;
                const int c1 = n1 - n < nt ? n1 - n : nt;
                const uint8_t *b = packed_b + (size_t)(n / QG_PANEL) * b_panel + (size_t)kb * 64 + (n % QG_PANEL) * 4;
                for (int i = ib; i < ie; i++) {
                    const int m = i * mr;
                    const int r0 = m0 > m ? m0 - m : 0;
                    const int r1 = m1 - m < mr ? m1 - m : mr;
                    const uint8_t *a = (const uint8_t *)packed_a + (size_t)i * a_panel + (size_t)kb * mr * 4 * kr->a_elem;
                    kr->ukr(a, b, b_panel, kgs, c1, tile);
                    kr->store(tile, nt, r0, r1, c0, c1, m, n, first, last, out);
                }
            }
        }
    }
    return 0;
}

int mfs_qgemm_compute(int path, int M, int N, int K, const void *packed_a, const uint8_t *packed_b,
                      int32_t *C, int ldc, int m0, int m1, int n0, int n1) {
    qg_out o = {0};
    o.f32 = 0; o.C = C; o.ldc = ldc;
    return qg_run(path, M, N, K, packed_a, packed_b, &o, m0, m1, n0, n1);
}

int mfs_qgemm_compute_f32(int path, int M, int N, int K, const void *packed_a, const uint8_t *packed_b,
                          const int32_t *row_sums, int zero_point, const float *scale_a, float scale_b,
                          const float *bias, float *y, int ldy, int m0, int m1, int n0, int n1) {
    qg_out o = {0};
    o.f32 = 1; o.y = y; o.ldy = ldy; o.row_sums = row_sums; o.zero_point = zero_point;
    o.scale_a = scale_a; o.scale_b = scale_b; o.bias = bias;
    return qg_run(path, M, N, K, packed_a, packed_b, &o, m0, m1, n0, n1);
}
