/* Winograd F(2x2, 3x3) transforms: see winograd.h. Plain C the compiler vectorises over tiles
 * (each of the 16 planes of V and M is contiguous over tiles). */
#include "winograd.h"
#include "multiversion.h"

#pragma clang fp contract(off)

/* Input channels per step of the weight transforms: 16 (cout, cin) pairs side by side in vector
 * lanes, each with the same operations as one pair alone (so the same bits). The results of
 * WINO_WEIGHT_CHUNK input channels gather in a small buffer and then go to each plane of U as
 * one contiguous run: the 16 or 36 planes are a multiple of 4 kB apart, and storing every step
 * to all of them at once kept as many write streams open in one cache set. One pair at a time
 * with such stores took 37 ms for an F4 U of 512 x 512 and 77-84 ms for an F2 U of
 * 2048 x 512 on one thread (Zen 4). */
#define WINO_WEIGHT_LANES 16
#define WINO_WEIGHT_CHUNK 128

/* g[t][i] = tap t of pair i (weight rows of 9 taps from src), lanes past n zero. */
__attribute__((always_inline)) static inline void wino_load_taps(const float *src, int n, float g[9][WINO_WEIGHT_LANES]) {
    for (int i = 0; i < WINO_WEIGHT_LANES; i++)
        for (int t = 0; t < 9; t++) g[t][i] = i < n ? src[(size_t)i * 9 + t] : 0.0f;
}

/* The loops of both weight transforms: `step` turns the taps of 16 pairs (lanes past the
 * chunk's end zero) into their `planes` values, q[k][c0 + i]; each chunk of q then goes to U. */
typedef void (*wino_weight_step)(float g[9][WINO_WEIGHT_LANES], float (*q)[WINO_WEIGHT_CHUNK], int c0);
__attribute__((always_inline)) static inline void wino_weights(const float *weight, int cin, int cout, int co0, int co1,
                                                               float *u, int planes, float (*q)[WINO_WEIGHT_CHUNK],
                                                               wino_weight_step step) {
    const size_t plane = (size_t)cout * cin;
    for (int co = co0; co < co1; co++)
        for (int cc = 0; cc < cin; cc += WINO_WEIGHT_CHUNK) {
            const int cn = cin - cc < WINO_WEIGHT_CHUNK ? cin - cc : WINO_WEIGHT_CHUNK;
            for (int c0 = 0; c0 < cn; c0 += WINO_WEIGHT_LANES) {
                float g[9][WINO_WEIGHT_LANES];
                wino_load_taps(weight + ((size_t)co * cin + cc + c0) * 9,
                               cn - c0 < WINO_WEIGHT_LANES ? cn - c0 : WINO_WEIGHT_LANES, g);
                step(g, q, c0);
            }
            float *dst = u + (size_t)co * cin + cc;
            for (int k = 0; k < planes; k++) __builtin_memcpy(dst + (size_t)k * plane, q[k], (size_t)cn * sizeof(float));
        }
}

__attribute__((always_inline)) static inline void f2_weight_step(float g[9][WINO_WEIGHT_LANES],
                                                                 float (*q)[WINO_WEIGHT_CHUNK], int c0) {
    enum { L = WINO_WEIGHT_LANES };
    float gg[4][3][L];   /* G g: rows g0, (g0 + g1 + g2) / 2, (g0 - g1 + g2) / 2, g2 */
    for (int j = 0; j < 3; j++)
        for (int i = 0; i < L; i++) {
            gg[0][j][i] = g[j][i];
            gg[1][j][i] = 0.5f * (g[j][i] + g[3 + j][i] + g[6 + j][i]);
            gg[2][j][i] = 0.5f * (g[j][i] - g[3 + j][i] + g[6 + j][i]);
            gg[3][j][i] = g[6 + j][i];
        }
    for (int r = 0; r < 4; r++)
        for (int i = 0; i < L; i++) {
            const float a = gg[r][0][i], b = gg[r][1][i], c = gg[r][2][i];
            q[4 * r + 0][c0 + i] = a;
            q[4 * r + 1][c0 + i] = 0.5f * (a + b + c);
            q[4 * r + 2][c0 + i] = 0.5f * (a - b + c);
            q[4 * r + 3][c0 + i] = c;
        }
}

MFS_MULTIVERSION void mfs_winograd_f2_weights(const float *weight, int cin, int cout, int co0, int co1, float *u) {
    float q[16][WINO_WEIGHT_CHUNK];
    wino_weights(weight, cin, cout, co0, co1, u, 16, q, f2_weight_step);
}

/* Tiles per chunk of a tile row: the four rows of B^T d for a chunk stay on the stack
 * (4 x 514 floats) whatever the model's width. */
#define WINO_CHUNK_TILES 256

MFS_MULTIVERSION void mfs_winograd_f2_input(const float *xpad, int cin, int c0, int c1, int tb, int tw, int wp, float *v,
                                            size_t ld) {
    const size_t kstride = (size_t)cin * ld;
    const size_t xplane = (size_t)(2 * tb + 2) * wp;
    float t[4][2 * WINO_CHUNK_TILES + 2];
    for (int ci = c0; ci < c1; ci++) {
        const float *x = xpad + ci * xplane;
        float *vc = v + (size_t)ci * ld;
        for (int ty = 0; ty < tb; ty++) {
            const float *d0 = x + (size_t)(2 * ty) * wp, *d1 = d0 + wp, *d2 = d1 + wp, *d3 = d2 + wp;
            for (int tx0 = 0; tx0 < tw; tx0 += WINO_CHUNK_TILES) {
                const int nt = tw - tx0 < WINO_CHUNK_TILES ? tw - tx0 : WINO_CHUNK_TILES;
                const int base = 2 * tx0, n = 2 * nt + 2;
                /* B^T d: rows d0 - d2, d1 + d2, d2 - d1, d1 - d3 */
                for (int i = 0; i < n; i++) {
                    t[0][i] = d0[base + i] - d2[base + i];
                    t[1][i] = d1[base + i] + d2[base + i];
                    t[2][i] = d2[base + i] - d1[base + i];
                    t[3][i] = d1[base + i] - d3[base + i];
                }
                float *vt = vc + (size_t)ty * tw + tx0;
                for (int r = 0; r < 4; r++) {
                    const float *sr = t[r];
                    float *o0 = vt + (size_t)(4 * r) * kstride, *o1 = o0 + kstride, *o2 = o1 + kstride, *o3 = o2 + kstride;
                    /* (B^T d) B: columns s0 - s2, s1 + s2, s2 - s1, s1 - s3 of each tile */
                    for (int tx = 0; tx < nt; tx++) {
                        const float a = sr[2 * tx], b = sr[2 * tx + 1], c = sr[2 * tx + 2], d = sr[2 * tx + 3];
                        o0[tx] = a - c;
                        o1[tx] = b + c;
                        o2[tx] = c - b;
                        o3[tx] = b - d;
                    }
                }
            }
        }
    }
}

/* Tiles per step of the output transforms: each plane of M is read as a run of WINO_OUT_STEP
 * tiles, so the arithmetic runs across tiles in vector lanes (tile by tile it ran scalar: the
 * F(4x4) one took 2.8 % of the generator in `perf`). */
#define WINO_OUT_STEP 16

/* One output row of a step's nt tiles, o[q * WINO_OUT_STEP + t] being column q of tile t:
 * `tile` columns per tile, the first nc of the row (tiles hang over the right edge). */
__attribute__((always_inline)) static inline void store_row(float *yr, const float *o, int tile, int nt, int nc) {
    if (nc == tile * nt) {
        for (int t = 0; t < nt; t++)
            for (int q = 0; q < tile; q++) yr[tile * t + q] = o[q * WINO_OUT_STEP + t];
    } else {
        for (int x = 0; x < nc; x++) yr[x] = o[(x % tile) * WINO_OUT_STEP + x / tile];
    }
}

MFS_MULTIVERSION void mfs_winograd_f2_output(const float *m, size_t ld, int cout, int co0, int co1, int tb, int tw,
                                             int rows, int w, float *y, size_t ystride) {
    const size_t kstride = (size_t)cout * ld;
    for (int co = co0; co < co1; co++) {
        const float *mc = m + (size_t)co * ld;
        float *yc = y + (size_t)co * ystride;
        for (int ty = 0; ty < tb && 2 * ty < rows; ty++) {
            const float *mt = mc + (size_t)ty * tw;
            const int nr = rows - 2 * ty < 2 ? rows - 2 * ty : 2;
            for (int tx0 = 0; tx0 < tw; tx0 += WINO_OUT_STEP) {
                const int nt = tw - tx0 < WINO_OUT_STEP ? tw - tx0 : WINO_OUT_STEP;
                /* A^T M: rows m0 + m1 + m2, m1 - m2 - m3, for each of the four columns j */
                float s[2][4][WINO_OUT_STEP];
                for (int j = 0; j < 4; j++) {
                    const float *q0 = mt + (size_t)j * kstride + tx0, *q1 = q0 + 4 * kstride, *q2 = q1 + 4 * kstride,
                                *q3 = q2 + 4 * kstride;
                    for (int t = 0; t < nt; t++) {
                        s[0][j][t] = q0[t] + q1[t] + q2[t];
                        s[1][j][t] = q1[t] - q2[t] - q3[t];
                    }
                }
                /* then the same on the columns, two outputs per tile and row */
                const int x0 = 2 * tx0;
                const int nc = w - x0 < 2 * nt ? w - x0 : 2 * nt;
                for (int r = 0; r < nr; r++) {
                    float o[2][WINO_OUT_STEP];
                    for (int t = 0; t < nt; t++) {
                        o[0][t] = s[r][0][t] + s[r][1][t] + s[r][2][t];
                        o[1][t] = s[r][1][t] - s[r][2][t] - s[r][3][t];
                    }
                    store_row(yc + (size_t)(2 * ty + r) * w + x0, &o[0][0], 2, nt, nc);
                }
            }
        }
    }
}

/* F(4x4, 3x3): G, B^T and A^T of Lavin and Gray (interpolation points 0, +-1, +-2, infinity),
 * each applied to rows and then to columns by the same function. */

/* G (a, b, c)^T */
__attribute__((always_inline)) static inline void f4_g(float a, float b, float c, float o[6]) {
    o[0] = a / 4.0f;
    o[1] = -(a + b + c) / 6.0f;
    o[2] = -(a - b + c) / 6.0f;
    o[3] = a / 24.0f + b / 12.0f + c / 6.0f;
    o[4] = a / 24.0f - b / 12.0f + c / 6.0f;
    o[5] = c;
}

/* B^T (a0 .. a5)^T */
__attribute__((always_inline)) static inline void f4_bt(float a0, float a1, float a2, float a3, float a4, float a5,
                                                        float o[6]) {
    o[0] = (4.0f * a0 - 5.0f * a2) + a4;
    o[1] = (a3 + a4) - 4.0f * (a1 + a2);
    o[2] = 4.0f * (a1 - a2) + (a4 - a3);
    o[3] = 2.0f * (a3 - a1) + (a4 - a2);
    o[4] = 2.0f * (a1 - a3) + (a4 - a2);
    o[5] = (4.0f * a1 - 5.0f * a3) + a5;
}

/* A^T (q0 .. q5)^T */
__attribute__((always_inline)) static inline void f4_at(float q0, float q1, float q2, float q3, float q4, float q5,
                                                        float o[4]) {
    const float a = q1 + q2, b = q1 - q2, c = q3 + q4, d = q3 - q4;
    o[0] = (q0 + a) + c;
    o[1] = b + 2.0f * d;
    o[2] = a + 4.0f * c;
    o[3] = (b + 8.0f * d) + q5;
}

__attribute__((always_inline)) static inline void f4_weight_step(float g[9][WINO_WEIGHT_LANES],
                                                                 float (*q)[WINO_WEIGHT_CHUNK], int c0) {
    enum { L = WINO_WEIGHT_LANES };
    float gg[3][6][L];   /* (G g)^T: column j of G g in gg[j] */
    for (int j = 0; j < 3; j++)
        for (int i = 0; i < L; i++) {
            float o[6];
            f4_g(g[j][i], g[3 + j][i], g[6 + j][i], o);
            for (int r = 0; r < 6; r++) gg[j][r][i] = o[r];
        }
    for (int r = 0; r < 6; r++)
        for (int i = 0; i < L; i++) {
            float o[6];
            f4_g(gg[0][r][i], gg[1][r][i], gg[2][r][i], o);
            for (int j = 0; j < 6; j++) q[6 * r + j][c0 + i] = o[j];
        }
}

MFS_MULTIVERSION void mfs_winograd_f4_weights(const float *weight, int cin, int cout, int co0, int co1, float *u) {
    float q[36][WINO_WEIGHT_CHUNK];
    wino_weights(weight, cin, cout, co0, co1, u, 36, q, f4_weight_step);
}

MFS_MULTIVERSION void mfs_winograd_f4_input(const float *xpad, int cin, int c0, int c1, int tb, int tw, int wp, float *v,
                                            size_t ld) {
    const size_t kstride = (size_t)cin * ld;
    const size_t xplane = (size_t)(4 * tb + 2) * wp;
    float t[6][4 * WINO_CHUNK_TILES + 2];
    for (int ci = c0; ci < c1; ci++) {
        const float *x = xpad + ci * xplane;
        float *vc = v + (size_t)ci * ld;
        for (int ty = 0; ty < tb; ty++) {
            const float *d0 = x + (size_t)(4 * ty) * wp, *d1 = d0 + wp, *d2 = d1 + wp, *d3 = d2 + wp, *d4 = d3 + wp,
                        *d5 = d4 + wp;
            for (int tx0 = 0; tx0 < tw; tx0 += WINO_CHUNK_TILES) {
                const int nt = tw - tx0 < WINO_CHUNK_TILES ? tw - tx0 : WINO_CHUNK_TILES;
                const int base = 4 * tx0, n = 4 * nt + 2;
                /* B^T d, row by row */
                for (int i = 0; i < n; i++) {
                    float o[6];
                    f4_bt(d0[base + i], d1[base + i], d2[base + i], d3[base + i], d4[base + i], d5[base + i], o);
                    t[0][i] = o[0]; t[1][i] = o[1]; t[2][i] = o[2]; t[3][i] = o[3]; t[4][i] = o[4]; t[5][i] = o[5];
                }
                float *vt = vc + (size_t)ty * tw + tx0;
                for (int r = 0; r < 6; r++) {
                    const float *sr = t[r];
                    float *o0 = vt + (size_t)(6 * r) * kstride, *o1 = o0 + kstride, *o2 = o1 + kstride, *o3 = o2 + kstride,
                          *o4 = o3 + kstride, *o5 = o4 + kstride;
                    /* (B^T d) B: the same on each tile's six columns */
                    for (int tx = 0; tx < nt; tx++) {
                        const float *s = sr + 4 * tx;
                        float o[6];
                        f4_bt(s[0], s[1], s[2], s[3], s[4], s[5], o);
                        o0[tx] = o[0]; o1[tx] = o[1]; o2[tx] = o[2]; o3[tx] = o[3]; o4[tx] = o[4]; o5[tx] = o[5];
                    }
                }
            }
        }
    }
}

MFS_MULTIVERSION void mfs_winograd_f4_output(const float *m, size_t ld, int cout, int co0, int co1, int tb, int tw,
                                             int rows, int w, float *y, size_t ystride) {
    const size_t kstride = (size_t)cout * ld;
    for (int co = co0; co < co1; co++) {
        const float *mc = m + (size_t)co * ld;
        float *yc = y + (size_t)co * ystride;
        for (int ty = 0; ty < tb && 4 * ty < rows; ty++) {
            const float *mt = mc + (size_t)ty * tw;
            const int nr = rows - 4 * ty < 4 ? rows - 4 * ty : 4;
            for (int tx0 = 0; tx0 < tw; tx0 += WINO_OUT_STEP) {
                const int nt = tw - tx0 < WINO_OUT_STEP ? tw - tx0 : WINO_OUT_STEP;
                float s[4][6][WINO_OUT_STEP];
                /* A^T M down each of the six columns j */
                for (int j = 0; j < 6; j++) {
                    const float *q0 = mt + (size_t)j * kstride + tx0, *q1 = q0 + 6 * kstride, *q2 = q1 + 6 * kstride,
                                *q3 = q2 + 6 * kstride, *q4 = q3 + 6 * kstride, *q5 = q4 + 6 * kstride;
                    for (int t = 0; t < nt; t++) {
                        float o[4];
                        f4_at(q0[t], q1[t], q2[t], q3[t], q4[t], q5[t], o);
                        s[0][j][t] = o[0]; s[1][j][t] = o[1]; s[2][j][t] = o[2]; s[3][j][t] = o[3];
                    }
                }
                /* then along each row r, four outputs per tile */
                const int x0 = 4 * tx0;
                const int nc = w - x0 < 4 * nt ? w - x0 : 4 * nt;
                for (int r = 0; r < nr; r++) {
                    float o[4][WINO_OUT_STEP];
                    for (int t = 0; t < nt; t++) {
                        float q[4];
                        f4_at(s[r][0][t], s[r][1][t], s[r][2][t], s[r][3][t], s[r][4][t], s[r][5][t], q);
                        o[0][t] = q[0]; o[1][t] = q[1]; o[2][t] = q[2]; o[3][t] = q[3];
                    }
                    store_row(yc + (size_t)(4 * ty + r) * w + x0, &o[0][0], 4, nt, nc);
                }
            }
        }
    }
}
