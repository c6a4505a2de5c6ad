/* nnu_ensemble_cases.c: nnu_ensemble_cases.h, one case per pool item. */
#include "nnu_ensemble_cases.h"
#include "nnu_ensemble.h"
#include "nnu_npz.h"
#include "nnu_parallel.h"

typedef struct merge_ctx {
    const nnu_ensemble_case       *cases;
    const nnu_ensemble_cases_opts *o;
} merge_ctx;

static nnu_status merge_one(int64_t item, int worker, void *vctx) {
    (void)worker;
    const merge_ctx *ctx = vctx;
    const nnu_ensemble_case *c = &ctx->cases[item];
    const nnu_ensemble_cases_opts *o = ctx->o;
    nnu_tensor *mean = NULL, *seg = NULL;
    nnu_status st = nnu_ensemble_mean_npz(c->paths, c->n_paths, o->key ? o->key : "probabilities", &mean);
    if (st) return st;
    if (mean->ndim < 2 || mean->shape[0] != o->channels) {
        st = NNU_FAIL(NNU_STATUS_ERR_SHAPE, "'%s': probabilities have %lld channels but the dataset has %d %s",
                      c->paths[0], (long long)(mean->ndim ? mean->shape[0] : 0), o->channels,
                      o->class_order ? "regions" : "labels (incl. background)");
    } else {
        st = o->class_order ? nnu_ensemble_regions(mean, o->class_order, o->channels, &seg)
                            : nnu_ensemble_argmax(mean, &seg);
    }
    if (st == NNU_STATUS_OK && c->probabilities) {
        const char *key = "probabilities";
        const nnu_tensor *arr = mean;
        st = nnu_npz_save(c->probabilities, 1, &key, &arr);
    }
    nnu_tensor_release(mean);
    if (st == NNU_STATUS_OK) {
        nnu_image_write_opts w = {.segmentation = 1};
        st = nnu_image_write(c->output, seg, &c->geometry, &w);
    }
    nnu_tensor_release(seg);
    if (st == NNU_STATUS_OK && o->progress) nnu_progress_add(o->progress, 1);
    return st;
}

nnu_status nnu_ensemble_merge_cases(const nnu_ensemble_case *cases, int n_cases,
                                    const nnu_ensemble_cases_opts *opts) {
    NNU_CHECK(cases && opts && n_cases >= 0, NNU_STATUS_ERR_ARG, "ensemble: no cases given");
    NNU_CHECK(opts->channels >= 1, NNU_STATUS_ERR_ARG, "ensemble: %d channels expected", opts->channels);
    merge_ctx ctx = {cases, opts};
    return nnu_parallel_for(n_cases, opts->n_threads, merge_one, &ctx);
}
