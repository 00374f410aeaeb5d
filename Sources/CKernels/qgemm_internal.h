/* Private to the qgemm_*.c files: the shared driver's view of one kernel path. */
#ifndef MEGAFS_QGEMM_INTERNAL_H
#define MEGAFS_QGEMM_INTERNAL_H
#include "qgemm.h"
#include <string.h>

#define QG_PANEL 16 /* columns per packed-B panel */
#ifndef QG_AVX2_MR
#define QG_AVX2_MR 6 /* rows per AVX2 A panel and tile */
#endif

static inline int qg_kgroups(int K) { return (K + 3) / 4; }

/* Row m's four bytes of k group g (zeros past K). */
static inline int32_t qg_group_bytes(const int8_t *row, int g, int K) {
    int32_t v = 0;
    if (g * 4 + 4 <= K) { memcpy(&v, row + g * 4, 4); return v; }
    int8_t b[4] = {0, 0, 0, 0};
    for (int j = 0; g * 4 + j < K; j++) b[j] = row[g * 4 + j];
    memcpy(&v, b, 4);
    return v;
}

/* Where and how a finished tile goes. */
typedef struct {
    int f32;                 /* 0: int32 C, 1: dequantized float y */
    int32_t *C; int ldc;
    float *y; int ldy;       /* partial int32 sums of earlier K blocks live in y's memory */
    const int32_t *row_sums; int zero_point;
    const float *scale_a; float scale_b; const float *bias;
} qg_out;

typedef struct {
    int mr;      /* rows per A panel (= tile rows) */
    int nt;      /* columns per tile: 8, 16 or 32 */
    int a_elem;  /* bytes per packed A element */
    int kcg;     /* k groups per K block */
    int mcp;     /* A panels per M block */
    /* tile[r * nt + c] = sum over kgs groups of A(panel rows) * B(columns starting at b).
     * a: the A panel at the block's first k group; b: the B panel at the block's first
     * k group plus the tile's column offset inside the panel (x4 bytes); panel_stride:
     * bytes from one B panel to the next; ncols: valid columns of the tile (1...nt). */
    void (*ukr)(const void *a, const uint8_t *b, size_t panel_stride, int kgs, int ncols, int32_t *tile);
    /* Writes tile rows [r0, r1) x columns [c0, c1) at output row m + r, column n + c. */
    void (*store)(const int32_t *tile, int nt, int r0, int r1, int c0, int c1, int m, int n,
                  int first, int last, const qg_out *out);
} qg_kernel;

extern const qg_kernel qg_kernel_ref;
#if defined(__x86_64__) || defined(__i386__)
#define QG_X86 1
extern const qg_kernel qg_kernel_avx2;
extern const qg_kernel qg_kernel_avx512vnni;
void qg_pack_a_int16(int M, int K, const int8_t *A, int lda, int mr, int16_t *packed, int panel0, int panel1);
void qg_quantize_pack_b_avx2(int K, int N, const float *X, int ldx, float inv_scale, int mode,
                             uint8_t *packed, int n0, int n1);
float qg_absmax_avx2(const float *x, size_t n);
void qg_pack_a_panel8_avx2(const int8_t *A, int lda, int K, int32_t *dst, int32_t *sums);
#endif
void qg_quantize_pack_b_ref(int K, int N, const float *X, int ldx, float inv_scale, int mode,
                            uint8_t *packed, int n0, int n1);

/* One float quantized exactly as the SIMD code does it: multiply, clamp with max/min
 * semantics (NaN -> lo), round half to even, add the zero point. */
static inline uint8_t qg_quantize1(float x, float inv_scale, float lo, float hi, int zp) {
    float v = x * inv_scale;
    v = v > lo ? v : lo;
    v = v < hi ? v : hi;
    return (uint8_t)((int)__builtin_rintf(v) + zp);
}

/* The scalar epilogue of one value (also the edge case of the SIMD stores). */
static inline float qg_dequant1(int32_t c, int m, const qg_out *o) {
    float s = o->scale_a[m] * o->scale_b;
    float v = (float)(c - o->zero_point * o->row_sums[m]);
    return o->bias ? __builtin_fmaf(v, s, o->bias[m]) : v * s;
}

/* Scalar store of a tile region (used for partial tiles by every path). */
static inline void qg_store_scalar(const int32_t *tile, int nt, int r0, int r1, int c0, int c1, int m, int n,
                                   int first, int last, const qg_out *o) {
    for (int r = r0; r < r1; r++) {
        const int32_t *t = tile + r * nt;
        if (!o->f32) {
            int32_t *d = o->C + (size_t)(m + r) * o->ldc + n;
            for (int c = c0; c < c1; c++) d[c] = first ? t[c] : d[c] + t[c];
        } else {
            float *d = o->y + (size_t)(m + r) * o->ldy + n;
            for (int c = c0; c < c1; c++) {
                int32_t acc = t[c];
                if (!first) { int32_t p; memcpy(&p, d + c, 4); acc += p; }
                if (last) d[c] = qg_dequant1(acc, m + r, o);
                else memcpy(d + c, &acc, 4);
            }
        }
    }
}
#endif
