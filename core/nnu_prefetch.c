/* nnu_prefetch.c: background reading + preprocessing of test cases (see nnu_prefetch.h). */
#include "nnu_prefetch.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nnu_parallel.h"

typedef struct slot {
    int                full;         /* 1: holds case `index` (or its failure) */
    int64_t            index;
    nnu_status         status;
    char               msg[1024];
    nnu_tensor        *data;
    nnu_preproc_props  props;
    double             seconds;
} slot;

struct nnu_prefetch {
    /* deep copies of the inputs */
    nnu_preproc_config     cfg;
    nnu_norm_scheme       *schemes;
    int                   *mask;
    nnu_norm_ct_props     *ct;
    int                   *key_offsets;
    int32_t               *key_values;
    int64_t                n_cases;
    char                 **paths;      /* all channel paths, case after case */
    int64_t                n_paths;    /* entries of paths allocated so far */
    int64_t               *first;      /* n_cases + 1 offsets into paths */
    /* ring */
    int                    depth;
    slot                  *slots;
    int64_t                produced, consumed;
    int                    stop, worker_done;
    pthread_mutex_t        mu;
    pthread_cond_t         cv;
    pthread_t              thread;
    int                    started;
};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- one case ---- */

typedef struct job {
    nnu_prefetch *p;
    int64_t       i;
    slot         *out;
} job;

static nnu_status run_case(int64_t item, int worker, void *vctx) {
    (void)item;
    (void)worker;
    job *j = vctx;
    nnu_prefetch *p = j->p;
    int64_t i = j->i;
    nnu_tensor *image = NULL, *data = NULL, *seg = NULL;
    memset(&j->out->props, 0, sizeof j->out->props);
    nnu_status st = nnu_preproc_case_load((const char *const *)(p->paths + p->first[i]),
                                          (int)(p->first[i + 1] - p->first[i]), NULL, p->cfg.reader, &image, NULL,
                                          &j->out->props.nifti);
    if (st) return st;
    double spacing[3] = {j->out->props.nifti.spacing[0], j->out->props.nifti.spacing[1],
                         j->out->props.nifti.spacing[2]};
    st = nnu_preproc_case_run(&p->cfg, image, NULL, spacing, &data, &seg, NULL, &j->out->props);  /* steals */
    nnu_tensor_release(seg);
    if (st) return st;
    j->out->data = data;
    return NNU_STATUS_OK;
}

static void *worker_main(void *arg) {
    nnu_prefetch *p = arg;
    for (int64_t i = 0; i < p->n_cases; i++) {
        pthread_mutex_lock(&p->mu);
        while (!p->stop && p->produced - p->consumed >= p->depth) pthread_cond_wait(&p->cv, &p->mu);
        int stop = p->stop;
        pthread_mutex_unlock(&p->mu);
        if (stop) break;
        slot tmp;
        memset(&tmp, 0, sizeof tmp);
        tmp.index = i;
        job j = {p, i, &tmp};
        double t0 = now_s();
        /* the first case with the resampler's OpenMP loops, later ones as a single
         * nnu_parallel worker (no OpenMP team): they overlap with the network */
        nnu_status st = i == 0 ? run_case(0, 0, &j) : nnu_parallel_for(1, 1, run_case, &j);
        tmp.seconds = now_s() - t0;
        tmp.status = st;
        if (st) {
            snprintf(tmp.msg, sizeof tmp.msg, "%s", nnu_last_error());
            nnu_tensor_release(tmp.data);
            tmp.data = NULL;
        }
        tmp.full = 1;
        pthread_mutex_lock(&p->mu);
        p->slots[i % p->depth] = tmp;
        p->produced++;
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
        if (st) break;
    }
    pthread_mutex_lock(&p->mu);
    p->worker_done = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* ---- life cycle ---- */

static void *dup_array(const void *src, size_t n, size_t size) {
    if (n == 0) n = 1;
    void *d = calloc(n, size);
    if (d && src) memcpy(d, src, n * size);
    return d;
}

nnu_status nnu_prefetch_start(const nnu_preproc_config *cfg, const nnu_preproc_case_spec *cases,
                              int64_t n_cases, int depth, nnu_prefetch **out) {
    NNU_CHECK(cfg && out && (cases || n_cases == 0), NNU_STATUS_ERR_ARG, "prefetch: NULL argument");
    NNU_CHECK(depth >= 1 && depth <= 64, NNU_STATUS_ERR_ARG, "prefetch: depth must be 1..64, got %d", depth);
    NNU_CHECK(cfg->n_channels >= 1, NNU_STATUS_ERR_ARG, "prefetch: the configuration has no channels");
    *out = NULL;
    nnu_prefetch *p = calloc(1, sizeof *p);
    NNU_CHECK(p, NNU_STATUS_ERR_OOM, "prefetch: out of memory");
    int C = cfg->n_channels;
    p->cfg = *cfg;
    p->schemes = dup_array(cfg->schemes, (size_t)C, sizeof *p->schemes);
    p->mask = dup_array(cfg->use_mask_for_norm, (size_t)C, sizeof *p->mask);
    p->ct = dup_array(cfg->ct, (size_t)C, sizeof *p->ct);
    int nv = cfg->n_keys > 0 && cfg->key_offsets ? cfg->key_offsets[cfg->n_keys] : 0;
    p->key_offsets = dup_array(cfg->key_offsets, cfg->key_offsets ? (size_t)cfg->n_keys + 1 : 0, sizeof(int));
    p->key_values = dup_array(cfg->key_values, (size_t)nv, sizeof(int32_t));
    p->n_cases = n_cases;
    int64_t total = 0;
    for (int64_t i = 0; i < n_cases; i++) total += cases[i].n_images;
    p->paths = calloc((size_t)(total > 0 ? total : 1), sizeof *p->paths);
    p->first = calloc((size_t)n_cases + 1, sizeof *p->first);
    p->depth = depth;
    p->slots = calloc((size_t)depth, sizeof *p->slots);
    int ok = p->schemes && p->mask && p->ct && p->key_offsets && p->key_values && p->paths && p->first &&
             p->slots;
    for (int64_t i = 0, k = 0; ok && i < n_cases; i++) {
        p->first[i] = k;
        for (int c = 0; ok && c < cases[i].n_images; c++) {
            p->paths[k] = strdup(cases[i].images[c]);
            ok = p->paths[k++] != NULL;
            p->n_paths = k;
        }
        p->first[i + 1] = k;
    }
    if (!ok) {
        nnu_prefetch_free(p);
        return NNU_FAIL(NNU_STATUS_ERR_OOM, "prefetch: out of memory");
    }
    p->cfg.schemes = p->schemes;
    p->cfg.use_mask_for_norm = p->mask;
    p->cfg.ct = p->ct;
    p->cfg.key_offsets = p->key_offsets;
    p->cfg.key_values = p->key_values;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->started = 1;
    if (pthread_create(&p->thread, NULL, worker_main, p) != 0) {
        p->started = 0;
        pthread_mutex_destroy(&p->mu);
        pthread_cond_destroy(&p->cv);
        nnu_prefetch_free(p);
        return NNU_FAIL(NNU_STATUS_ERR_OOM, "prefetch: cannot start the worker thread");
    }
    *out = p;
    return NNU_STATUS_OK;
}

nnu_status nnu_prefetch_next(nnu_prefetch *p, int64_t *index, nnu_tensor **data,
                             nnu_preproc_props *props, double *seconds) {
    NNU_CHECK(p && index && data && props, NNU_STATUS_ERR_ARG, "prefetch: NULL argument");
    *index = -1;
    *data = NULL;
    if (seconds) *seconds = 0;
    pthread_mutex_lock(&p->mu);
    if (p->consumed >= p->n_cases) {
        pthread_mutex_unlock(&p->mu);
        return NNU_STATUS_OK;
    }
    slot *s = &p->slots[p->consumed % p->depth];
    while (!(s->full && s->index == p->consumed) && !p->worker_done) pthread_cond_wait(&p->cv, &p->mu);
    if (!(s->full && s->index == p->consumed)) {          /* worker stopped before this case */
        int64_t i = p->consumed;
        pthread_mutex_unlock(&p->mu);
        return nnu_fail(NNU_STATUS_ERR_INTERRUPTED, "prefetch case", (int)i, "the preprocessing worker stopped");
    }
    slot taken = *s;
    s->full = 0;
    s->data = NULL;
    p->consumed++;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    if (taken.status) return nnu_fail(taken.status, "prefetch case", (int)taken.index, "%s", taken.msg);
    *index = taken.index;
    *data = taken.data;
    *props = taken.props;
    if (seconds) *seconds = taken.seconds;
    return NNU_STATUS_OK;
}

void nnu_prefetch_free(nnu_prefetch *p) {
    if (!p) return;
    if (p->started) {
        pthread_mutex_lock(&p->mu);
        p->stop = 1;
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
        pthread_join(p->thread, NULL);
        pthread_mutex_destroy(&p->mu);
        pthread_cond_destroy(&p->cv);
    }
    if (p->slots)
        for (int k = 0; k < p->depth; k++) nnu_tensor_release(p->slots[k].data);
    for (int64_t k = 0; p->paths && k < p->n_paths; k++) free(p->paths[k]);
    free(p->paths);
    free(p->first);
    free(p->slots);
    free(p->schemes);
    free(p->mask);
    free(p->ct);
    free(p->key_offsets);
    free(p->key_values);
    free(p);
}
