#ifndef MEGAFS_QGEMM_H
#define MEGAFS_QGEMM_H
/*
 * Integer GEMM for the runtime's "dynamic int8" mode (issue #5 part 2).
 *
 *   C[m][n] = sum_k A[m][k] * B[k][n]        (int32, exact)
 *
 * A: int8 weights, M = output channels, K = reduction; packed once at load time by
 *    mfs_qgemm_pack_a into the layout of one kernel path (see below), which also
 *    returns the int32 row sums  rowsum[m] = sum_k A[m][k].
 * B: uint8 activations, packed per call by mfs_qgemm_quantize_pack_b from float:
 *      signed mode   (MFS_QGEMM_ACT_SIGNED):   q = clamp(rne(x * inv_scale), -127, 127), byte = q + 128
 *      unsigned mode (MFS_QGEMM_ACT_UNSIGNED): q = clamp(rne(x * inv_scale),    0, 255), byte = q
 *    (rne = round half to even; the clamp happens in float before rounding, so NaN
 *    becomes the lower bound and +-inf the bounds). zero_point = 128 resp. 0.
 *    mfs_qgemm_pack_b_u8 packs bytes already quantized (no conversion).
 * The kernels multiply A by the bytes, so the caller's signed product is
 *      C_signed[m][n] = C[m][n] - zero_point * rowsum[m].
 * mfs_qgemm_compute returns C (raw, int32); mfs_qgemm_compute_f32 applies the
 * correction and dequantizes in its epilogue:
 *      y[m][n] = fmaf((float)C_signed[m][n], scale_a[m] * scale_b, bias[m])   (bias != NULL)
 *      y[m][n] =      (float)C_signed[m][n] * (scale_a[m] * scale_b)          (bias == NULL)
 * with the float operations exactly as written (same bits on every path).
 *
 * Exactness: int32 accumulation cannot overflow while K * 128 * 255 < 2^31, i.e.
 * K <= 65536 (any int8 weight incl. -128). No path saturates: AVX2 widens to int16
 * and uses vpmaddwd (pairs of int16 products, at most 2*128*255), VNNI uses vpdpbusd
 * (non-saturating). Every path returns bit-identical results.
 *
 * Paths (the layout of packed A depends on the path; packed B does not):
 *   MFS_QGEMM_REF          portable C; A int8 in panels of 8 rows (same layout as VNNI)
 *   MFS_QGEMM_AVX2         A int16 in panels of 6 rows; 6x8 tiles, vpmaddwd
 *   MFS_QGEMM_AVX512VNNI   A int8 in panels of 8 rows; 8x32 tiles, vpdpbusd (zmm)
 * Pack A with the path you will compute with; mfs_qgemm_best_path() is the fastest
 * one this CPU runs, and any available path can be forced by passing it explicitly.
 *
 * Layouts (Kp = K rounded up to a multiple of 4, kg = k / 4):
 *   packed B: panels of 16 columns; panel p holds, for each kg, 16 columns x 4 bytes
 *             (column c's bytes for k = 4kg..4kg+3 contiguous): byte index
 *             p*Kp*16 + kg*64 + c*4 + (k%4). Padding (k >= K or n >= N) is the zero point
 *             (128 / 0); padded A entries are 0, so padding never contributes.
 *   packed A: panels of MR rows (MR = mfs_qgemm_mr(path)); panel i holds, for each kg,
 *             MR rows x 4 values: index i*Kp*MR + kg*MR*4 + r*4 + (k%4); int8 for REF/VNNI,
 *             int16 for AVX2. Rows >= M are zero.
 * Buffers need no particular alignment (64 bytes is best).
 *
 * Threads: compute writes only C[m0..<m1][n0..<n1]; disjoint ranges may run
 * concurrently on the same packed buffers. Split on multiples of 16 columns and of
 * mfs_qgemm_mr(path) rows to avoid recomputing shared tiles (any split is correct).
 * quantize_pack_b packs the column panels [n0, n1) (n0 a multiple of 16), so it can be
 * split over threads too.
 */
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    MFS_QGEMM_REF = 0,
    MFS_QGEMM_AVX2 = 1,
    MFS_QGEMM_AVX512VNNI = 2,
} mfs_qgemm_path;

typedef enum {
    MFS_QGEMM_ACT_SIGNED = 0,   /* q in [-127, 127] stored as q + 128; zero point 128 */
    MFS_QGEMM_ACT_UNSIGNED = 1, /* q in [0, 255] stored as q; zero point 0 */
} mfs_qgemm_act_mode;

/* 1 when this CPU (and this build) can run the path. REF is always available. */
int mfs_qgemm_path_available(int path);
/* The fastest available path (CPUID, cached). */
int mfs_qgemm_best_path(void);
/* "ref", "avx2", "avx512vnni" (or "?"). */
const char *mfs_qgemm_path_name(int path);
/* Rows per packed-A panel for the path (6 for AVX2, 8 otherwise). */
int mfs_qgemm_mr(int path);
/* The zero point of an activation mode (128 or 0). */
int mfs_qgemm_zero_point(int mode);

/* Bytes of packed A / packed B. */
size_t mfs_qgemm_packed_a_size(int path, int M, int K);
size_t mfs_qgemm_packed_b_size(int K, int N);

/* Packs A[m*lda + k] (M x K int8) for `path`; writes rowsum[m] when row_sums != NULL. */
void mfs_qgemm_pack_a(int path, int M, int K, const int8_t *A, int lda, void *packed, int32_t *row_sums);
/* The same for row panels [panel0, panel1) only (mfs_qgemm_mr(path) rows each), so that
 * disjoint ranges can be packed on several threads into the same buffer. */
void mfs_qgemm_pack_a_panels(int path, int M, int K, const int8_t *A, int lda, void *packed, int32_t *row_sums,
                             int panel0, int panel1);

/* Quantizes X[k*ldx + n] (K x N float, row-major, n the fast index) and packs the column
 * panels covering [n0, n1) (n0 % 16 == 0; 0 <= n0 <= n1 <= N). Same bytes on all CPUs. */
void mfs_qgemm_quantize_pack_b(int K, int N, const float *X, int ldx, float inv_scale, int mode,
                               uint8_t *packed, int n0, int n1);
/* Packs already quantized bytes X[k*ldx + n]; `pad` is the byte for padding (zero point). */
void mfs_qgemm_pack_b_u8(int K, int N, const uint8_t *X, int ldx, uint8_t pad, uint8_t *packed, int n0, int n1);

/* max |x| over n floats (NaN ignored), to choose inv_scale = 127 / absmax. */
float mfs_absmax_f32(const float *x, size_t n);

/* C[m*ldc + n] = sum_k A[m][k] * Bbytes[k][n] for m0 <= m < m1, n0 <= n < n1.
 * packed_a must have been packed for the same path. Returns 0, or -1 if the path is
 * not available / arguments are out of range. */
int mfs_qgemm_compute(int path, int M, int N, int K, const void *packed_a, const uint8_t *packed_b,
                      int32_t *C, int ldc, int m0, int m1, int n0, int n1);

/* The same product, corrected by the zero point and dequantized into y[m*ldy + n] (see top). */
int mfs_qgemm_compute_f32(int path, int M, int N, int K, const void *packed_a, const uint8_t *packed_b,
                          const int32_t *row_sums, int zero_point, const float *scale_a, float scale_b,
                          const float *bias, float *y, int ldy, int m0, int m1, int n0, int n1);

#ifdef __cplusplus
}
#endif
#endif
