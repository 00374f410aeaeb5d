// The runtime's worker threads. A loop is posted by bumping a generation word; idle workers
// poll it for a while (MEGAFS_POOL_SPIN_US) before they sleep on a futex. On the small VMs
// this runs on, waking a sleeping thread (and its halted virtual CPU) took 20-50 us, as long
// as a whole FTM product, and libdispatch's concurrentPerform paid that on most loops.
#define _GNU_SOURCE
#include "workerpool.h"
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

enum { max_workers = 255 };

// The posted loop: [generation:32][parts:16][claimed:16]. A claim is a CAS on the whole word,
// so a worker that wakes late cannot claim a part of a newer loop under an older generation.
static _Atomic uint64_t job_state;
// Written by the owner before job_state is published; read by a worker only after it has
// claimed a part, when the loop cannot have finished (and been replaced) yet.
static mfs_pool_task job_task;
static void *job_context;
static _Atomic long job_completed;

static _Atomic uint32_t wake_word;  // the futex word: the generation of the latest loop
static _Atomic int sleepers;
static _Atomic int quiesce_requested;
static _Atomic int owner_busy;       // one loop at a time; other callers run theirs inline
static uint32_t owner_generation;    // guarded by owner_busy
static _Atomic long pooled_loops, inline_loops;

static pthread_mutex_t grow_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic int worker_count;

static long spin_ns_value = -1;
static int worker_limit = 0;
static pthread_once_t settings_once = PTHREAD_ONCE_INIT;

static int processors_available(void);

static void read_settings(void) {
    worker_limit = processors_available() - 1;
    long us = 200;
    const char *text = getenv("MEGAFS_POOL_SPIN_US");
    if (text && *text) {
        char *end = NULL;
        long value = strtol(text, &end, 10);
        if (end && *end == '\0' && value >= 0 && value <= 1000000) us = value;
    }
    spin_ns_value = us * 1000;
}

static inline long monotonic_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long)t.tv_sec * 1000000000L + t.tv_nsec;
}

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    _mm_pause();
#endif
}

static void futex_wait(_Atomic uint32_t *word, uint32_t expected) {
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
}

static void futex_wake_all(_Atomic uint32_t *word) {
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

// Claims and runs parts of the loop of `generation` until none is left.
static void run_parts(uint32_t generation) {
    uint64_t state = atomic_load_explicit(&job_state, memory_order_acquire);
    for (;;) {
        uint32_t posted = (uint32_t)(state >> 32);
        unsigned parts = (unsigned)(state >> 16) & 0xffff;
        unsigned claimed = (unsigned)state & 0xffff;
        if (posted != generation || claimed >= parts) return;
        if (!atomic_compare_exchange_weak_explicit(&job_state, &state, state + 1,
                                                   memory_order_acq_rel, memory_order_acquire))
            continue;
        job_task(job_context, (long)claimed);
        atomic_fetch_add_explicit(&job_completed, 1, memory_order_release);
        state = atomic_load_explicit(&job_state, memory_order_acquire);
    }
}

static uint32_t wait_for_loop(uint32_t seen) {
    long spin_ns = spin_ns_value;
    if (spin_ns > 0 && !atomic_load_explicit(&quiesce_requested, memory_order_relaxed)) {
        long deadline = monotonic_ns() + spin_ns;
        for (unsigned i = 1;; i++) {
            uint32_t now = atomic_load_explicit(&wake_word, memory_order_acquire);
            if (now != seen) return now;
            cpu_relax();
            if ((i & 63) == 0) {
                if (atomic_load_explicit(&quiesce_requested, memory_order_relaxed)) break;
                if (monotonic_ns() > deadline) break;
            }
        }
    }
    for (;;) {
        atomic_fetch_add(&sleepers, 1);
        if (atomic_load(&wake_word) == seen) futex_wait(&wake_word, seen);
        atomic_fetch_sub(&sleepers, 1);
        uint32_t now = atomic_load_explicit(&wake_word, memory_order_acquire);
        if (now != seen) return now;
    }
}

static void *worker_main(void *unused) {
    (void)unused;
    uint32_t seen = atomic_load_explicit(&wake_word, memory_order_acquire);
    for (;;) {
        seen = wait_for_loop(seen);
        run_parts(seen);
    }
    return NULL;
}

// Never more threads polling than the processors this process may run on: with more parts
// than that (a `--threads` above the core count), the threads there are claim several each.
static int processors_available(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) return CPU_COUNT(&set) > 0 ? CPU_COUNT(&set) : 1;
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    return online > 0 ? (int)online : 1;
}

static void ensure_workers(int wanted) {
    if (wanted > worker_limit) wanted = worker_limit;
    if (wanted > max_workers) wanted = max_workers;
    if (atomic_load_explicit(&worker_count, memory_order_acquire) >= wanted) return;
    pthread_mutex_lock(&grow_lock);
    while (atomic_load(&worker_count) < wanted) {
        pthread_attr_t attributes;
        pthread_attr_init(&attributes);
        pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
        pthread_t thread;
        int failed = pthread_create(&thread, &attributes, worker_main, NULL);
        pthread_attr_destroy(&attributes);
        if (failed) break;  // fewer workers: the caller runs the parts nobody claims
        atomic_fetch_add(&worker_count, 1);
    }
    pthread_mutex_unlock(&grow_lock);
}

void mfs_pool_quiesce(void) {
    atomic_store_explicit(&quiesce_requested, 1, memory_order_relaxed);
}

void mfs_pool_run(long parts, mfs_pool_task task, void *context) {
    if (parts <= 0) return;
    int expected = 0;
    if (parts == 1 || parts > 0xffff ||
        !atomic_compare_exchange_strong(&owner_busy, &expected, 1)) {
        if (parts > 1) atomic_fetch_add_explicit(&inline_loops, 1, memory_order_relaxed);
        for (long p = 0; p < parts; p++) task(context, p);
        return;
    }
    pthread_once(&settings_once, read_settings);
    ensure_workers((int)parts - 1);

    job_task = task;
    job_context = context;
    atomic_store_explicit(&job_completed, 0, memory_order_relaxed);
    atomic_store_explicit(&quiesce_requested, 0, memory_order_relaxed);
    uint32_t generation = ++owner_generation;
    if (generation == 0) generation = ++owner_generation;  // 0 is the workers' starting value
    atomic_store_explicit(&job_state, ((uint64_t)generation << 32) | ((uint64_t)parts << 16),
                          memory_order_release);
    atomic_store(&wake_word, generation);
    if (atomic_load(&sleepers) > 0) futex_wake_all(&wake_word);

    run_parts(generation);
    long spun_since = 0;
    for (unsigned i = 1; atomic_load_explicit(&job_completed, memory_order_acquire) < parts; i++) {
        cpu_relax();
        // A worker descheduled in the middle of its part: let other threads have the core.
        if ((i & 1023) == 0) {
            long now = monotonic_ns();
            if (spun_since == 0) spun_since = now;
            else if (now - spun_since > 1000000) sched_yield();
        }
    }
    atomic_fetch_add_explicit(&pooled_loops, 1, memory_order_relaxed);
    atomic_store_explicit(&owner_busy, 0, memory_order_release);
}

void mfs_pool_stats(long *pooled, long *inline_runs) {
    *pooled = atomic_load(&pooled_loops);
    *inline_runs = atomic_load(&inline_loops);
}
