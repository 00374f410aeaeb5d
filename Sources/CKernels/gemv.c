/* One-row products: see gemv.h. */
#define _GNU_SOURCE
#include "gemv.h"
#include "conv3x3.h"
#include "sgemm_nt.h"
#include <math.h>
#include "workerpool.h"
#include <stdint.h>
#include <stdlib.h>
#ifdef __x86_64__
#include <immintrin.h>
#endif

#define GEMV_MAX_THREADS 8

typedef struct {
    int path;
    const int8_t *w8;          /* int8 weights instead of w when set */
    const float *scale;
    int per_row;
    const float *w;
    size_t ldw;
    const float *x;
    int k, rows;
    float alpha, beta;
    float *y;
    int parts;
    mfs_gemv_epilogue epilogue;
} gemv_job;

/* The activations as the runtime's Swift loops compute them (same libm calls, same bits). */
static inline float gemv_activate(float v, int activation, float slope) {
    switch (activation) {
    case MFS_ACT_RELU: return v > 0 ? v : (v != v ? v : 0);
    case MFS_ACT_LEAKY: return v >= 0 ? v : v * slope;
    case MFS_ACT_SIGMOID: {
        if (v >= 0) return 1 / (1 + expf(-v));
        const float e = expf(v);
        return e / (1 + e);
    }
    case MFS_ACT_TANH: return tanhf(v);
    default: return v;
    }
}

/* The start of this part's share of the next product's weight, into L2, so that DRAM keeps
 * streaming across the handoff between products instead of idling until the next part's
 * first misses (a C loop of this GEMV over the FTM's 336 shapes: 9.5-10.4 against 9.7-10.5 ms,
 * better in four of six alternations: small). */
static void prefetch_next(const mfs_gemv_epilogue *e, int part, int parts) {
#ifdef __x86_64__
    if (!e->next_weight || e->next_weight_bytes == 0) return;
    const size_t share = e->next_weight_bytes / (size_t)parts;
    const char *p = (const char *)e->next_weight + share * (size_t)part;
    const size_t n = share < 16384 ? share : 16384;
    for (size_t o = 0; o < n; o += 64) _mm_prefetch(p + o, _MM_HINT_T1);
#else
    (void)e; (void)part; (void)parts;
#endif
}

/* Rows per product call: their dots wait on the stack for alpha and beta. */
#define GEMV_CHUNK_ROWS 1024

/* Rows [r0, r1) of one product, epilogue included. */
static void run_rows(const gemv_job *j, int r0, int r1) {
    float dots[GEMV_CHUNK_ROWS];
    for (int c0 = r0; c0 < r1; c0 += GEMV_CHUNK_ROWS) {
        const int n = r1 - c0 < GEMV_CHUNK_ROWS ? r1 - c0 : GEMV_CHUNK_ROWS;
        /* The product with the one column x: the streamed conv's kernel (sgemm_nt.c), which
         * prefetches a one-column product's rows ahead. */
        if (j->w8)
            mfs_sgemm_nt_i8(j->path, j->w8 + (size_t)c0 * j->ldw, j->ldw, j->scale + (j->per_row ? c0 : 0), j->per_row,
                            j->x, (size_t)j->k, j->k, 0, n, 1, dots, 1);
        else
            mfs_sgemm_nt(j->path, j->w + (size_t)c0 * j->ldw, j->ldw, j->x, (size_t)j->k, j->k, 0, n, 1, dots, 1);
        float *y = j->y + c0;
        const float alpha = j->alpha, beta = j->beta;
        if (beta == 0) for (int r = 0; r < n; r++) y[r] = alpha * dots[r];
        else for (int r = 0; r < n; r++) y[r] = alpha * dots[r] + beta * y[r];
        const mfs_gemv_epilogue *e = &j->epilogue;
        if (e->activation != MFS_ACT_NONE || e->gain != 1)
            for (int r = 0; r < n; r++) y[r] = gemv_activate(y[r], e->activation, e->slope) * e->gain;
    }
}

static void run_part(const gemv_job *j, int part) {
    /* rows split on multiples of 4 so that every part but the last runs whole blocks */
    const int blocks = (j->rows + 3) / 4;
    const int r0 = blocks * part / j->parts * 4;
    int r1 = blocks * (part + 1) / j->parts * 4;
    if (r1 > j->rows) r1 = j->rows;
    run_rows(j, r0, r1);
    prefetch_next(&j->epilogue, part, j->parts);
}

static void run_job(gemv_job job, int threads);

static mfs_gemv_epilogue plain_epilogue(const mfs_gemv_epilogue *e) {
    if (e) return *e;
    mfs_gemv_epilogue none = {MFS_ACT_NONE, 0, 1, NULL, 0};
    return none;
}

void mfs_sgemv_rows(int path, const float *w, size_t ldw, const float *x, int k, int rows, float alpha, float beta,
                    float *y, int threads, const mfs_gemv_epilogue *epilogue) {
    gemv_job job = {path, NULL, NULL, 0, w, ldw, x, k, rows, alpha, beta, y, 1, plain_epilogue(epilogue)};
    run_job(job, (size_t)rows * (size_t)k * sizeof(float) < 65536 ? 1 : threads);
}

void mfs_sgemv_rows_i8(int path, const int8_t *w, size_t ldw, const float *scale, int per_row_scale, const float *x,
                       int k, int rows, float alpha, float beta, float *y, int threads,
                       const mfs_gemv_epilogue *epilogue) {
    gemv_job job = {path, w, scale, per_row_scale, NULL, ldw, x, k, rows, alpha, beta, y, 1, plain_epilogue(epilogue)};
    run_job(job, (size_t)rows * (size_t)k < 65536 ? 1 : threads);
}

static void run_task(void *context, long part) { run_part((const gemv_job *)context, (int)part); }

/* Below 64 kB of weight (the callers pass threads = 1) a handoff costs more than it saves. */
static void run_job(gemv_job job, int threads) {
    if (threads > GEMV_MAX_THREADS) threads = GEMV_MAX_THREADS;
    job.parts = threads < 1 ? 1 : threads;
    mfs_pool_run(job.parts, run_task, &job);
}

/* ---- groups of independent products ---- */

typedef struct {
    int path;
    const mfs_gemv_item *items;
    int count;
    int parts;
    const size_t *start;  /* bytes of weight before each item; start[count] = total */
} gemv_group;

static size_t item_row_bytes(const mfs_gemv_item *it) { return (size_t)it->k * (it->w8 ? 1 : 4); }

/* The (item, row) where the share that starts at byte `at` of all the weights begins: rows on
 * multiples of 4 within their product, as mfs_sgemv_rows splits them. */
static void group_position(const gemv_group *g, size_t at, int *item, int *row) {
    int i = 0;
    while (i < g->count && g->start[i + 1] <= at) i++;
    if (i == g->count) { *item = g->count; *row = 0; return; }
    const size_t per = item_row_bytes(&g->items[i]);
    int r = per ? (int)((at - g->start[i]) / per) / 4 * 4 : 0;
    *item = i;
    *row = r;
}

static gemv_job item_job(int path, const mfs_gemv_item *it) {
    gemv_job j = {path, it->w8, it->scale, it->per_row_scale, it->w, it->ldw, it->x, it->k, it->rows,
                  it->alpha, it->beta, it->y, 1, it->epilogue};
    return j;
}

static void run_group_part(void *context, long part) {
    const gemv_group *g = (const gemv_group *)context;
    const size_t total = g->start[g->count];
    int i0, r0, i1, r1;
    group_position(g, total * (size_t)part / (size_t)g->parts, &i0, &r0);
    group_position(g, total * (size_t)(part + 1) / (size_t)g->parts, &i1, &r1);
    for (int i = i0; i <= i1 && i < g->count; i++) {
        const int from = i == i0 ? r0 : 0;
        const int to = i == i1 ? r1 : g->items[i].rows;
        if (from >= to) continue;
        gemv_job j = item_job(g->path, &g->items[i]);
        run_rows(&j, from, to);
    }
}

void mfs_sgemv_group(int path, const mfs_gemv_item *items, int count, int threads) {
    if (count <= 0) return;
    size_t stack[65];
    size_t *start = count <= 64 ? stack : (size_t *)malloc(sizeof(size_t) * (size_t)(count + 1));
    if (!start) {  /* no memory for the offsets: one product after another */
        for (int i = 0; i < count; i++) { gemv_job j = item_job(path, &items[i]); run_job(j, threads); }
        return;
    }
    start[0] = 0;
    for (int i = 0; i < count; i++) start[i + 1] = start[i] + item_row_bytes(&items[i]) * (size_t)items[i].rows;
    if (threads > GEMV_MAX_THREADS) threads = GEMV_MAX_THREADS;
    gemv_group g = {path, items, count, threads < 1 ? 1 : threads, start};
    if (start[count] < 65536) g.parts = 1;
    mfs_pool_run(g.parts, run_group_part, &g);
    if (start != stack) free(start);
}
