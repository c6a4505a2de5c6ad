/* nnu_parallel: a small worker pool for "do fn(i) for i in [0, n)" over threads.
 *
 * Workers (pthreads) take the next item from an atomic counter, so slow items
 * (a large case) do not hold up a fixed partition. Before each item a worker
 * polls nnu_interrupt_requested(); after a failure the pool by default stops
 * handing out new items (items already running finish). The first failure's
 * status and message (workers' messages are thread-local) are re-raised on the
 * calling thread, so the caller sees one ordinary nnu_status.
 *
 * Nested parallelism: code that runs inside a worker and has its own OpenMP
 * loops should add `if(!nnu_parallel_in_worker())` to its `omp parallel`
 * pragmas, so that N workers do not each start a full OpenMP team. */
#ifndef NNU_PARALLEL_H
#define NNU_PARALLEL_H

#include <stdint.h>

#include "nnu_progress.h"
#include "nnu_status.h"

/* Work on item `item` (0-based) in worker `worker` (0 .. n_threads-1; use it to
 * index per-thread scratch). Returns NNU_STATUS_OK or a failure set with NNU_FAIL. */
typedef nnu_status (*nnu_parallel_fn)(int64_t item, int worker, void *ctx);

typedef struct nnu_parallel_opts {
    int          n_threads;    /* <= 0: number of online CPUs; clamped to n_items */
    int          keep_going;   /* 1: run all items even after failures */
    nnu_status  *item_status;  /* optional, n_items entries: each item's status;
                                  items never started get NNU_STATUS_ERR_INTERRUPTED */
    nnu_progress *progress;    /* optional: +1 per finished item (ok or not) */
} nnu_parallel_opts;

/* Runs fn for every item with default options (stop at the first failure).
 * n_threads <= 0: number of CPUs. n_threads == 1 runs inline on the caller's
 * thread (no thread is created). */
nnu_status nnu_parallel_for(int64_t n_items, int n_threads, nnu_parallel_fn fn, void *ctx);
/* Same with options (opts may be NULL). Returns the status of the first failed
 * item in completion order, ERR_INTERRUPTED if the interrupt flag stopped the
 * loop, else OK. */
nnu_status nnu_parallel_for_opts(int64_t n_items, nnu_parallel_fn fn, void *ctx,
                                 const nnu_parallel_opts *opts);

/* 1 on a thread that currently runs an nnu_parallel_for item (also the caller's
 * thread when n_threads == 1), else 0. */
int nnu_parallel_in_worker(void);
/* Number of online CPUs (>= 1). */
int nnu_parallel_num_cpus(void);

#endif
