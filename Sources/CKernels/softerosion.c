/* The symmetric convolution row of SoftErosion: see softerosion.h. */
#include "softerosion.h"
#include "multiversion.h"

#pragma clang fp contract(off)
#include <stddef.h>

MFS_MULTIVERSION void mfs_symconv_row(const float *pad, long pw, long y, long x0, long n, int r, const float *wq,
                                      float *folded, long rs, float *out) {
    const int s = 2 * r + 1;
    const long nb = (n + MFS_SYMCONV_BLOCK - 1) / MFS_SYMCONV_BLOCK * MFS_SYMCONV_BLOCK;
    const long len = nb + 2 * r;
    for (int ky = 0; ky <= r; ky++) {
        const float *top = pad + (size_t)(y + ky) * pw + x0;
        float *dst = folded + (size_t)ky * rs;
        if (ky < r) {
            const float *bot = pad + (size_t)(y + s - 1 - ky) * pw + x0;
            for (long i = 0; i < len; i++) dst[i] = top[i] + bot[i];
        } else {
            for (long i = 0; i < len; i++) dst[i] = top[i];
        }
    }
    for (long xb = 0; xb < nb; xb += MFS_SYMCONV_BLOCK) {
        float acc[MFS_SYMCONV_BLOCK];
        for (int i = 0; i < MFS_SYMCONV_BLOCK; i++) acc[i] = 0.0f;
        for (int ky = 0; ky <= r; ky++) {
            const float *row = folded + (size_t)ky * rs + xb;
            const float *w = wq + (size_t)ky * (r + 1);
            for (int kx = 0; kx < r; kx++) {
                const float wv = w[kx];
                const float *L = row + kx, *R = row + (s - 1 - kx);
                for (int i = 0; i < MFS_SYMCONV_BLOCK; i++) acc[i] += wv * (L[i] + R[i]);
            }
            const float wv = w[r];
            const float *M = row + r;
            for (int i = 0; i < MFS_SYMCONV_BLOCK; i++) acc[i] += wv * M[i];
        }
        const long m = n - xb < MFS_SYMCONV_BLOCK ? n - xb : MFS_SYMCONV_BLOCK;
        for (long i = 0; i < m; i++) out[xb + i] = acc[i];
    }
}
