/* test_parallel.c: nnu_parallel_for (every item exactly once, first error
 * re-raised on the caller, keep_going, interrupt) and nnu_progress (thread safety). */
#include <stdatomic.h>
#include <string.h>

#include "check.h"
#include "nnu_interrupt.h"
#include "nnu_parallel.h"
#include "nnu_progress.h"

#define N 1000

typedef struct { atomic_int hits[N]; int fail_at; int interrupt_at; } ctx_t;

static nnu_status work(int64_t i, int worker, void *vctx) {
    ctx_t *c = vctx;
    atomic_fetch_add(&c->hits[i], 1);
    if (i == c->interrupt_at) nnu_interrupt_request();
    if (i == c->fail_at) return NNU_FAIL(NNU_STATUS_ERR_FORMAT, "case %lld is corrupt", (long long)i);
    return NNU_STATUS_OK;
}

static void reset(ctx_t *c) {
    for (int i = 0; i < N; i++) atomic_init(&c->hits[i], 0);
    c->fail_at = c->interrupt_at = -1;
}

int main(void) {
    static ctx_t c;
    int nts[] = {1, 2, 3, 8};
    for (int k = 0; k < 4; k++) {
        reset(&c);
        CHECK_OK(nnu_parallel_for(N, nts[k], work, &c));
        int once = 1;
        for (int i = 0; i < N; i++) once &= atomic_load(&c.hits[i]) == 1;
        CHECK(once, "every item exactly once with %d threads", nts[k]);
    }
    /* the first failure comes back with its message; with stop-on-error not all items run */
    reset(&c);
    c.fail_at = 10;
    CHECK_FAILS(nnu_parallel_for(N, 2, work, &c), NNU_STATUS_ERR_FORMAT, "case 10 is corrupt");
    CHECK(strstr(nnu_last_error(), "item:10:") != NULL, "message names the item: %s", nnu_last_error());

    /* keep_going + per-item status */
    static nnu_status st[N];
    reset(&c);
    c.fail_at = 500;
    nnu_progress *pr = NULL;
    CHECK_OK(nnu_progress_new("test", N, &pr));
    nnu_parallel_opts o = {.n_threads = 3, .keep_going = 1, .item_status = st, .progress = pr};
    CHECK_FAILS(nnu_parallel_for_opts(N, work, &c, &o), NNU_STATUS_ERR_FORMAT, "case 500");
    nnu_progress_finish(pr);
    CHECK(nnu_progress_done(pr) == N, "progress counted %lld", (long long)nnu_progress_done(pr));
    nnu_progress_free(pr);
    int n_ok = 0;
    for (int i = 0; i < N; i++) n_ok += st[i] == NNU_STATUS_OK;
    CHECK(n_ok == N - 1 && st[500] == NNU_STATUS_ERR_FORMAT, "item statuses: %d ok", n_ok);

    /* interrupt: the loop stops and reports ERR_INTERRUPTED; unstarted items say so */
    reset(&c);
    c.interrupt_at = 100;
    CHECK_FAILS(nnu_parallel_for_opts(N, work, &c, &(nnu_parallel_opts){.n_threads = 2, .item_status = st}),
                NNU_STATUS_ERR_INTERRUPTED, "interrupted");
    nnu_interrupt_clear();
    CHECK(st[N - 1] == NNU_STATUS_ERR_INTERRUPTED, "last item never ran");

    /* zero items, in-worker flag */
    CHECK_OK(nnu_parallel_for(0, 4, work, &c));
    CHECK(!nnu_parallel_in_worker(), "caller is not a worker");
    char buf[32];
    CHECK(strcmp(nnu_progress_format_seconds(125, buf, 32), "2m05s") == 0, "format %s", buf);
    return check_report();
}
