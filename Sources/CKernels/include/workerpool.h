#ifndef MEGAFS_WORKERPOOL_H
#define MEGAFS_WORKERPOOL_H

/// One task of a parallel loop: `part` is in 0..<parts.
typedef void (*mfs_pool_task)(void *context, long part);

/// Runs task(context, p) for every p in 0..<parts, on the caller and the pool's workers
/// (started on first use: parts - 1 of them, and at most one fewer than the processors the
/// process may use), and returns when all have finished.
/// Parts are claimed one at a time, so a worker that is slow to wake costs only its share:
/// the caller takes the parts nobody claimed. A call made while another is running (from a
/// task, or from a second thread) runs its parts on the caller alone.
void mfs_pool_run(long parts, mfs_pool_task task, void *context);

/// How many loops of more than one part ran on the pool, and how many on their caller alone
/// because the pool was busy (for tests).
void mfs_pool_stats(long *pooled, long *inline_runs);

/// Makes idle workers sleep now instead of spinning for the next loop: called before handing
/// the cores to another library's threads (OpenBLAS), which would otherwise wait for them.
void mfs_pool_quiesce(void);

#endif
