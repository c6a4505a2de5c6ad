/* nnu_prefetch: reads and preprocesses the test cases of a prediction on a
 * background thread, so that case i+1 is prepared while the network runs on
 * case i (the reference uses -npp worker processes for the same purpose).
 *
 * One pthread walks the case list in order and runs, per case,
 * nnu_preproc_case_load + nnu_preproc_case_run (no label: a test case, no class
 * locations), i.e. exactly the training preprocessing (nnunet-behaviour.md §9.1).
 * Finished cases wait in a ring of `depth` slots; the worker blocks while the
 * ring is full, so at most `depth` preprocessed cases plus the one being
 * prepared exist at any time besides the one the caller holds (bounded memory).
 *
 * Threads: the first case is prepared with the resampler's OpenMP loops (the
 * caller is waiting for it anyway); every later case runs single-threaded (as an
 * nnu_parallel worker, which turns those loops off) so that it overlaps with the
 * prediction instead of competing with the network for every core.
 *
 * Errors: a case that fails (unreadable file, shape mismatch, Ctrl-C) is handed
 * to the caller as the failure of nnu_prefetch_next for that case, with the
 * worker's message; the worker then stops. */
#ifndef NNU_PREFETCH_H
#define NNU_PREFETCH_H

#include <stdint.h>

#include "nnu_preproc_case.h"

typedef struct nnu_prefetch nnu_prefetch;

/* Starts the worker. cfg and cases are deep-copied (the caller may free them at
 * once). depth >= 1 (1: one case ahead). n_cases may be 0. */
nnu_status nnu_prefetch_start(const nnu_preproc_config *cfg, const nnu_preproc_case_spec *cases,
                              int64_t n_cases, int depth, nnu_prefetch **out);

/* The next case in list order. Blocks until it is ready. On success *index is
 * its 0-based position, *data the owned (C, D', H', W') f32 preprocessed image
 * and *props its properties (with the first channel file's NIfTI header in
 * props->nifti). After the last case: *index = -1, *data = NULL, OK. *seconds
 * (may be NULL) receives the wall time the worker spent on the case. */
nnu_status nnu_prefetch_next(nnu_prefetch *p, int64_t *index, nnu_tensor **data,
                             nnu_preproc_props *props, double *seconds);

/* Stops the worker (a case in progress is finished first), joins it and frees
 * every case not taken. NULL-safe. */
void nnu_prefetch_free(nnu_prefetch *p);

#endif
