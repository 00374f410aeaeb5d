#ifndef MEGAFS_GEMV_H
#define MEGAFS_GEMV_H
/*
 * The bandwidth-bound matrix-vector product of one-row linears (the FTM swapper's 300-odd
 * layers): y[r] = alpha * dot(w[r * ldw .. + k], x) + beta * y[r] for r in [0, rows), beta 0
 * or 1 (y not read when 0). Each weight is read once, with software prefetch 16 kB ahead
 * (within the matrix) so that DRAM keeps streaming across the short rows.
 *
 * With threads > 1 the rows are split over the worker pool (workerpool.h), whose workers poll
 * for a moment after each loop before they sleep: back-to-back layers of 0.5-1 MB then cost a
 * few microseconds of handoff each, not a thread wake-up. A second caller while the pool is
 * busy (two sessions at once) computes on its own thread.
 */
#include <stddef.h>
#include <stdint.h>
#include "conv3x3.h"

/* What each part does after its rows' products (NULL: nothing): y[r] = act(y[r]) * gain, with
 * the runtime's own formulas (ReLU keeps NaN, the stable sigmoid, tanhf), and then it prefetches
 * the start of its share of next_weight (the next product's, next_weight_bytes long; NULL for
 * none) while the other parts finish. */
typedef struct {
    int activation;   /* MFS_ACT_* (conv3x3.h) */
    float slope;      /* of MFS_ACT_LEAKY */
    float gain;
    const void *next_weight;
    size_t next_weight_bytes;
} mfs_gemv_epilogue;

void mfs_sgemv_rows(int path, const float *w, size_t ldw, const float *x, int k, int rows, float alpha, float beta,
                    float *y, int threads, const mfs_gemv_epilogue *epilogue);
/* The same with int8 weights: y[r] = alpha * (scale[r] * dot(w[r], x)) + beta * y[r], one scale
 * (scale[0]) for all rows when per_row_scale is 0. Reads a quarter of the float product's bytes. */
void mfs_sgemv_rows_i8(int path, const int8_t *w, size_t ldw, const float *scale, int per_row_scale, const float *x,
                       int k, int rows, float alpha, float beta, float *y, int threads,
                       const mfs_gemv_epilogue *epilogue);

/* One product of a group: as the arguments of mfs_sgemv_rows (w8, scale and per_row_scale as
 * those of mfs_sgemv_rows_i8 when w8 is set; w is then not read). */
typedef struct {
    const float *w;
    const int8_t *w8;
    const float *scale;
    int per_row_scale;
    size_t ldw;
    const float *x;
    int k, rows;
    float alpha, beta;
    float *y;
    mfs_gemv_epilogue epilogue;
} mfs_gemv_item;

/* Independent products (none reads another's y) in one parallel loop: the parts split the
 * weights' bytes evenly across product boundaries, so many small products cost one handoff
 * instead of one each. Each row gets the bits mfs_sgemv_rows(_i8) gives it. */
void mfs_sgemv_group(int path, const mfs_gemv_item *items, int count, int threads);
#endif
