/* One-row products: see gemv.h. */
#define _GNU_SOURCE
#include "gemv.h"
#include "conv3x3.h"
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdatomic.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#define GEMV_X86 1
#include <immintrin.h>
#endif

#define GEMV_PREFETCH_BYTES 16384
#define GEMV_MAX_THREADS 8
/* How long a worker spins for the next product before it sleeps. */
#define GEMV_SPIN_NS 200000L

static void rows_ref(const float *w, size_t ldw, const float *x, int k, int r0, int r1, float alpha, float beta,
                     float *y) {
    for (int r = r0; r < r1; r++) {
        const float *a = w + (size_t)r * ldw;
        float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        const int k8 = k & ~7;
        for (int i = 0; i < k8; i += 8)
            for (int l = 0; l < 8; l++) s[l] = fmaf(a[i + l], x[i + l], s[l]);
        float t = ((s[0] + s[4]) + (s[2] + s[6])) + ((s[1] + s[5]) + (s[3] + s[7]));
        for (int i = k8; i < k; i++) t = fmaf(a[i], x[i], t);
        y[r] = beta == 0 ? alpha * t : alpha * t + beta * y[r];
    }
}

#ifdef GEMV_X86
/* The lane sums combined in rows_ref's order, so both paths give the same bits. */
__attribute__((target("avx2,fma"))) static inline float lane_total(__m256 v) {
    float l[8];
    _mm256_storeu_ps(l, v);
    return ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]));
}

/* Rows r..r+3 at byte offset `at` + GEMV_PREFETCH_BYTES, unless that runs past `end`. */
static inline void prefetch4(const char *a0, size_t row_bytes, size_t at, const char *end) {
    const char *p = a0 + at + GEMV_PREFETCH_BYTES;
    if (p + 3 * row_bytes >= end) return;
    for (int j = 0; j < 4; j++) _mm_prefetch(p + j * row_bytes, _MM_HINT_T0);
}

/* Four rows at a time: per 8 values, one load of x feeds four FMAs. The lane sums combine as
 * rows_ref's, so both paths give the same bits. */
__attribute__((target("avx2,fma"))) static void rows_avx2(const float *w, size_t ldw, const float *x, int k, int r0,
                                                           int r1, float alpha, float beta, float *y,
                                                           const char *end) {
    const int k8 = k & ~7;
    int r = r0;
    for (; r + 4 <= r1; r += 4) {
        const float *a0 = w + (size_t)r * ldw, *a1 = a0 + ldw, *a2 = a1 + ldw, *a3 = a2 + ldw;
        __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
        for (int i = 0; i < k8; i += 8) {
            if ((i & 15) == 0) prefetch4((const char *)a0, ldw * sizeof(float), (size_t)i * sizeof(float), end);
            const __m256 xv = _mm256_loadu_ps(x + i);
            s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a0 + i), xv, s0);
            s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a1 + i), xv, s1);
            s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a2 + i), xv, s2);
            s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a3 + i), xv, s3);
        }
        const __m256 sums[4] = {s0, s1, s2, s3};
        for (int j = 0; j < 4; j++) {
            float t = lane_total(sums[j]);
            const float *a = w + (size_t)(r + j) * ldw;
            for (int i = k8; i < k; i++) t = fmaf(a[i], x[i], t);
            y[r + j] = beta == 0 ? alpha * t : alpha * t + beta * y[r + j];
        }
    }
    if (r < r1) rows_ref(w, ldw, x, k, r, r1, alpha, beta, y);
}
#endif

/* int8 weights: y[r] = alpha * (scale[r] * dot(w8[r], x)) + beta * y[r] (one scale when not per row). */
static void rows_i8_ref(const int8_t *w, size_t ldw, const float *scale, int per_row, const float *x, int k, int r0,
                        int r1, float alpha, float beta, float *y) {
    for (int r = r0; r < r1; r++) {
        const int8_t *a = w + (size_t)r * ldw;
        float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        const int k8 = k & ~7;
        for (int i = 0; i < k8; i += 8)
            for (int l = 0; l < 8; l++) s[l] = fmaf((float)a[i + l], x[i + l], s[l]);
        float t = ((s[0] + s[4]) + (s[2] + s[6])) + ((s[1] + s[5]) + (s[3] + s[7]));
        for (int i = k8; i < k; i++) t = fmaf((float)a[i], x[i], t);
        t *= scale[per_row ? r : 0];
        y[r] = beta == 0 ? alpha * t : alpha * t + beta * y[r];
    }
}

#ifdef GEMV_X86
__attribute__((target("avx2,fma"))) static inline __m256 load8_i8(const int8_t *p) {
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)p)));
}

__attribute__((target("avx2,fma"))) static void rows_i8_avx2(const int8_t *w, size_t ldw, const float *scale, int per_row,
                                                              const float *x, int k, int r0, int r1, float alpha,
                                                              float beta, float *y, const char *end) {
    const int k8 = k & ~7;
    int r = r0;
    for (; r + 4 <= r1; r += 4) {
        const int8_t *a0 = w + (size_t)r * ldw, *a1 = a0 + ldw, *a2 = a1 + ldw, *a3 = a2 + ldw;
        __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
        for (int i = 0; i < k8; i += 8) {
            if ((i & 63) == 0) prefetch4((const char *)a0, ldw, (size_t)i, end);
            const __m256 xv = _mm256_loadu_ps(x + i);
            s0 = _mm256_fmadd_ps(load8_i8(a0 + i), xv, s0);
            s1 = _mm256_fmadd_ps(load8_i8(a1 + i), xv, s1);
            s2 = _mm256_fmadd_ps(load8_i8(a2 + i), xv, s2);
            s3 = _mm256_fmadd_ps(load8_i8(a3 + i), xv, s3);
        }
        const __m256 sums[4] = {s0, s1, s2, s3};
        for (int j = 0; j < 4; j++) {
            float t = lane_total(sums[j]);
            const int8_t *a = w + (size_t)(r + j) * ldw;
            for (int i = k8; i < k; i++) t = fmaf((float)a[i], x[i], t);
            t *= scale[per_row ? r + j : 0];
            y[r + j] = beta == 0 ? alpha * t : alpha * t + beta * y[r + j];
        }
    }
    if (r < r1) rows_i8_ref(w, ldw, scale, per_row, x, k, r, r1, alpha, beta, y);
}
#endif

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

static void run_part(const gemv_job *j, int part) {
    /* rows split on multiples of 4 so that every part but the last runs whole blocks */
    const int blocks = (j->rows + 3) / 4;
    const int r0 = blocks * part / j->parts * 4;
    int r1 = blocks * (part + 1) / j->parts * 4;
    if (r1 > j->rows) r1 = j->rows;
    if (r0 >= r1) return;
    if (j->w8) {
#ifdef GEMV_X86
        if (j->path == MFS_CONV_AVX2 && mfs_conv3x3_path_available(MFS_CONV_AVX2)) {
            const char *end = (const char *)(j->w8 + (size_t)(r1 - 1) * j->ldw + j->k);
            rows_i8_avx2(j->w8, j->ldw, j->scale, j->per_row, j->x, j->k, r0, r1, j->alpha, j->beta, j->y, end);
            return;
        }
#endif
        rows_i8_ref(j->w8, j->ldw, j->scale, j->per_row, j->x, j->k, r0, r1, j->alpha, j->beta, j->y);
        return;
    }
#ifdef GEMV_X86
    if (j->path == MFS_CONV_AVX2 && mfs_conv3x3_path_available(MFS_CONV_AVX2)) {
        const char *end = (const char *)(j->w + (size_t)(r1 - 1) * j->ldw + j->k);
        rows_avx2(j->w, j->ldw, j->x, j->k, r0, r1, j->alpha, j->beta, j->y, end);
        return;
    }
#endif
    rows_ref(j->w, j->ldw, j->x, j->k, r0, r1, j->alpha, j->beta, j->y);
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
