/* One-row products: see gemv.h. */
#define _GNU_SOURCE
#include "gemv.h"
#include "conv3x3.h"
#include "sgemm_nt.h"
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdatomic.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#define GEMV_X86 1
#include <immintrin.h>
#endif

#define GEMV_MAX_THREADS 8
/* How long a worker spins for the next product before it sleeps. */
#define GEMV_SPIN_NS 200000L

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
} gemv_job;

/* Rows per product call: their dots wait on the stack for alpha and beta. */
#define GEMV_CHUNK_ROWS 1024

static void run_part(const gemv_job *j, int part) {
    /* rows split on multiples of 4 so that every part but the last runs whole blocks */
    const int blocks = (j->rows + 3) / 4;
    const int r0 = blocks * part / j->parts * 4;
    int r1 = blocks * (part + 1) / j->parts * 4;
    if (r1 > j->rows) r1 = j->rows;
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
    }
}

/* The pool: workers wait for `generation` to move, run their part of `job`, and
 * count themselves into `finished`. */
static struct {
    pthread_mutex_t submit;      /* held by the caller whose product the pool runs */
    pthread_mutex_t sleep_lock;
    pthread_cond_t wake;
    _Atomic long generation;
    _Atomic int sleepers;
    _Atomic int finished;
    gemv_job job;
    int workers;                 /* started so far; worker i runs part i, the caller part 0 */
    long start_generation[GEMV_MAX_THREADS];
    _Atomic long pooled, inline_runs;
} pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER};

static long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000L + t.tv_nsec;
}

static void *worker_main(void *arg) {
    const int part = (int)(size_t)arg;
    /* the generation before the caller that started this worker posts its product */
    long seen = pool.start_generation[part];
    for (;;) {
        long g = atomic_load(&pool.generation);
        if (g == seen) {
            const long until = now_ns() + GEMV_SPIN_NS;
            for (int spins = 0; (g = atomic_load(&pool.generation)) == seen; spins++) {
#ifdef GEMV_X86
                _mm_pause();
#endif
                if ((spins & 255) == 255 && now_ns() > until) break;
            }
        }
        if (g == seen) {
            pthread_mutex_lock(&pool.sleep_lock);
            atomic_fetch_add(&pool.sleepers, 1);
            while ((g = atomic_load(&pool.generation)) == seen) pthread_cond_wait(&pool.wake, &pool.sleep_lock);
            atomic_fetch_sub(&pool.sleepers, 1);
            pthread_mutex_unlock(&pool.sleep_lock);
        }
        seen = g;
        if (part < pool.job.parts) run_part(&pool.job, part);
        atomic_fetch_add(&pool.finished, 1);
    }
    return NULL;
}

static void run_job(gemv_job job, int threads);

void mfs_sgemv_rows(int path, const float *w, size_t ldw, const float *x, int k, int rows, float alpha, float beta,
                    float *y, int threads) {
    gemv_job job = {path, NULL, NULL, 0, w, ldw, x, k, rows, alpha, beta, y, 1};
    run_job(job, (size_t)rows * (size_t)k * sizeof(float) < 65536 ? 1 : threads);
}

void mfs_sgemv_rows_i8(int path, const int8_t *w, size_t ldw, const float *scale, int per_row_scale, const float *x,
                       int k, int rows, float alpha, float beta, float *y, int threads) {
    gemv_job job = {path, w, scale, per_row_scale, NULL, ldw, x, k, rows, alpha, beta, y, 1};
    run_job(job, (size_t)rows * (size_t)k < 65536 ? 1 : threads);
}

/* Below 64 kB of weight (the callers pass threads = 1) a handoff costs more than it saves. */
static void run_job(gemv_job job, int threads) {
    if (threads > GEMV_MAX_THREADS) threads = GEMV_MAX_THREADS;
    if (threads <= 1 || pthread_mutex_trylock(&pool.submit) != 0) {
        if (threads > 1) atomic_fetch_add(&pool.inline_runs, 1);
        run_part(&job, 0);
        return;
    }
    while (pool.workers < threads - 1) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pool.start_generation[pool.workers + 1] = atomic_load(&pool.generation);
        const int ok = pthread_create(&t, &attr, worker_main, (void *)(size_t)(pool.workers + 1)) == 0;
        pthread_attr_destroy(&attr);
        if (!ok) break;
        pool.workers++;
    }
    const int workers = pool.workers;
    job.parts = workers + 1 < threads ? workers + 1 : threads;
    pool.job = job;
    atomic_store(&pool.finished, 0);
    atomic_fetch_add(&pool.generation, 1);     /* seq_cst: pairs with the sleepers count */
    if (atomic_load(&pool.sleepers) > 0) {
        pthread_mutex_lock(&pool.sleep_lock);
        pthread_cond_broadcast(&pool.wake);
        pthread_mutex_unlock(&pool.sleep_lock);
    }
    run_part(&job, 0);
    while (atomic_load(&pool.finished) < workers) {
#ifdef GEMV_X86
        _mm_pause();
#endif
    }
    atomic_fetch_add(&pool.pooled, 1);
    pthread_mutex_unlock(&pool.submit);
}

void mfs_gemv_pool_stats(long *pooled, long *inline_runs) {
    *pooled = atomic_load(&pool.pooled);
    *inline_runs = atomic_load(&pool.inline_runs);
}
