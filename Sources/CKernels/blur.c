/* Separable FIR rows: see blur.h. */
#include "blur.h"
#include "multiversion.h"

#pragma clang fp contract(off)
#include <stddef.h>

MFS_MULTIVERSION void mfs_upfir_rows_separable(const float *x, int h, int w, int up, const float *col, int kh, const float *row,
                                               int kw, int pad_top, int pad_left, int ow, int r0, int r1, float *out,
                                               float *tmp) {
    float *v = tmp;
    for (int r = r0; r < r1; r++) {
        for (int c = 0; c < w; c++) v[c] = 0.0f;
        for (int a = 0; a < kh; a++) {
            const int i = r + a - pad_top;   /* row of the upsampled plane: only every up-th is not zero */
            if (i < 0 || i % up != 0 || i / up >= h) continue;
            const float ka = col[a];
            const float *xr = x + (size_t)(i / up) * w;
            for (int c = 0; c < w; c++) v[c] += ka * xr[c];
        }
        float *o = out + (size_t)r * ow;
        for (int p = 0; p < up; p++) {
            /* output columns c = p + up * m read v[m + d] through tap b when p + b - pad_left = up * d */
            const int n = (ow - p + up - 1) / up;
            if (n <= 0) continue;
            /* without upsampling the one phase is the output row itself */
            float *phase = up == 1 ? o : tmp + w;
            for (int m = 0; m < n; m++) phase[m] = 0.0f;
            for (int b = 0; b < kw; b++) {
                const int j = p + b - pad_left;
                if (j % up != 0) continue;
                const int d = j / up;
                const int lo = -d > 0 ? -d : 0, hi = w - d < n ? w - d : n;
                const float kb = row[b];
                const float *t = v + d;
                for (int m = lo; m < hi; m++) phase[m] += kb * t[m];
            }
            if (up > 1)
                for (int m = 0; m < n; m++) o[p + (size_t)up * m] = phase[m];
        }
    }
}
