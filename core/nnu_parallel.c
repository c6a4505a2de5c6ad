/* nnu_parallel.c: see nnu_parallel.h.
 * Shared state: `next` (atomic item counter), `stop` (atomic: no new items) and
 * the first error (status + message copied under a mutex, because nnu_last_error
 * is per thread). */
#include "nnu_parallel.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nnu_interrupt.h"

static _Thread_local int tl_in_worker = 0;

int nnu_parallel_in_worker(void) { return tl_in_worker; }

int nnu_parallel_num_cpus(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (int)n;
}

typedef struct pool {
    int64_t          n_items;
    nnu_parallel_fn  fn;
    void            *ctx;
    nnu_parallel_opts opts;
    atomic_llong     next;
    atomic_int       stop;
    pthread_mutex_t  mu;
    nnu_status       first_status;   /* guarded by mu */
    char             first_msg[1024];
    int64_t          first_item;
    int              interrupted;    /* guarded by mu */
} pool;

typedef struct worker_arg { pool *p; int id; } worker_arg;

static void record_failure(pool *p, int64_t item, nnu_status st) {
    pthread_mutex_lock(&p->mu);
    if (p->first_status == NNU_STATUS_OK) {
        p->first_status = st;
        p->first_item = item;
        snprintf(p->first_msg, sizeof p->first_msg, "%s", nnu_last_error());
    }
    pthread_mutex_unlock(&p->mu);
    if (!p->opts.keep_going) atomic_store(&p->stop, 1);
}

static void *worker_main(void *arg) {
    worker_arg *w = arg;
    pool *p = w->p;
    int saved = tl_in_worker;
    tl_in_worker = 1;
    for (;;) {
        if (atomic_load(&p->stop)) break;
        if (nnu_interrupt_requested()) {
            pthread_mutex_lock(&p->mu);
            p->interrupted = 1;
            pthread_mutex_unlock(&p->mu);
            atomic_store(&p->stop, 1);
            break;
        }
        int64_t i = (int64_t)atomic_fetch_add(&p->next, 1);
        if (i >= p->n_items) break;
        nnu_status st = p->fn(i, w->id, p->ctx);
        if (p->opts.item_status) p->opts.item_status[i] = st;
        if (st != NNU_STATUS_OK) record_failure(p, i, st);
        nnu_progress_add(p->opts.progress, 1);
    }
    tl_in_worker = saved;
    return NULL;
}

nnu_status nnu_parallel_for_opts(int64_t n_items, nnu_parallel_fn fn, void *ctx,
                                 const nnu_parallel_opts *opts) {
    NNU_CHECK(fn, NNU_STATUS_ERR_ARG, "parallel_for: fn is NULL");
    NNU_CHECK(n_items >= 0, NNU_STATUS_ERR_ARG, "parallel_for: n_items %lld < 0", (long long)n_items);
    pool p;
    memset(&p, 0, sizeof p);
    p.n_items = n_items;
    p.fn = fn;
    p.ctx = ctx;
    if (opts) p.opts = *opts;
    atomic_init(&p.next, 0);
    atomic_init(&p.stop, 0);
    pthread_mutex_init(&p.mu, NULL);
    if (p.opts.item_status)
        for (int64_t i = 0; i < n_items; i++) p.opts.item_status[i] = NNU_STATUS_ERR_INTERRUPTED;

    int nt = p.opts.n_threads > 0 ? p.opts.n_threads : nnu_parallel_num_cpus();
    if ((int64_t)nt > n_items) nt = (int)(n_items > 0 ? n_items : 1);
    worker_arg *args = calloc((size_t)nt, sizeof *args);
    pthread_t *th = calloc((size_t)nt, sizeof *th);
    if (!args || !th) {
        free(args); free(th);
        pthread_mutex_destroy(&p.mu);
        return NNU_FAIL(NNU_STATUS_ERR_OOM, "parallel_for: out of memory for %d workers", nt);
    }
    int started = 0;
    if (nt > 1) {
        for (int t = 0; t < nt; t++) {
            args[t] = (worker_arg){&p, t};
            if (pthread_create(&th[t], NULL, worker_main, &args[t]) != 0) break;
            started++;
        }
    }
    if (started == 0) {            /* one thread, or thread creation failed: run inline */
        args[0] = (worker_arg){&p, 0};
        worker_main(&args[0]);
    }
    for (int t = 0; t < started; t++) pthread_join(th[t], NULL);
    free(args);
    free(th);
    pthread_mutex_destroy(&p.mu);

    if (p.first_status != NNU_STATUS_OK)
        /* the message reads "item 12: nnu_crop.c:80: <original message>" */
        return nnu_fail(p.first_status, "item", (int)p.first_item, "%s", p.first_msg);
    if (p.interrupted)
        return NNU_FAIL(NNU_STATUS_ERR_INTERRUPTED, "interrupted after %lld of %lld items",
                        (long long)(atomic_load(&p.next) < n_items ? atomic_load(&p.next) : n_items),
                        (long long)n_items);
    return NNU_STATUS_OK;
}

nnu_status nnu_parallel_for(int64_t n_items, int n_threads, nnu_parallel_fn fn, void *ctx) {
    nnu_parallel_opts o = {0};
    o.n_threads = n_threads;
    return nnu_parallel_for_opts(n_items, fn, ctx, &o);
}
