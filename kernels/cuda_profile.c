/* cuda_profile.c: per-op GPU time of the CUDA backend (NNU_CUDA_PROFILE=1; API in
 * nnu_cuda.h). nnu_backend_cuda() then hands out a copy of the real table whose op
 * slots are the prof_* wrappers below: each records a CUDA event on the backend's
 * stream, calls the real op through the REAL table (the ops read their precision
 * from the table pointer), and records a second event. Nothing synchronises per op:
 * the event pairs wait in a pool of POOL slots and are read (one
 * cudaEventSynchronize on the newest) when the pool is full or a result is asked
 * for. Times are summed per (op, geometry):
 *   conv*      N, Cin, Cout, in[3], kernel[3], stride[3] (transposed: the op name)
 *   instnorm, softmax, loss   N, C (K), S;   concat  N, Ca, Cb, S
 *   lrelu, add_lrelu, axpy, scale, sumsq, sgd, adam      numel
 *   avgpool    N, C, input voxels, stride as the digits sd sh sw
 * A time is the stream time between the op's first and last launch, including the
 * gaps the host leaves (cuDNN planning, host syncs in sumsq/loss): it is what the
 * op costs the stream. Not thread-safe: one thread issues the ops (as nnu_net does).
 * The wrappers are written out one per op of core/nnu_ops.def (R23); an op added
 * there keeps its real slot here until it gets one (tests/test_gpu_profile.c checks
 * that every slot is wrapped). */
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime_api.h>

#include "nnu_cuda.h"

enum { GEO_LEN = 12, POOL = 4096, MAX_AGG = 2048 };

typedef struct prof_rec { int op; int64_t g[GEO_LEN]; } prof_rec;
typedef struct prof_agg { int op; int64_t g[GEO_LEN]; int64_t calls; double ms; } prof_agg;

static nnu_backend wrapped[NNU_CUDA_PRECISION_COUNT];
static const nnu_backend *real_of[NNU_CUDA_PRECISION_COUNT];
static cudaEvent_t ev_start[POOL], ev_end[POOL];
static int n_events;                /* created so far (the pool is made once) */
static prof_rec pending[POOL];      /* [0, n_pending): both events recorded */
static int n_pending;
static prof_agg aggs[MAX_AGG];
static int n_agg;
static int64_t n_lost;              /* records beyond MAX_AGG geometries (reported) */

int nnu_cuda_profile_enabled(void) {
    static int on = -1;
    if (on < 0) {
        const char *s = getenv("NNU_CUDA_PROFILE");
        on = s && s[0] == '1';
    }
    return on;
}

/* R17 for the runtime calls of this C file: API name (up to '('), file:line */
static nnu_status prof_fail(cudaError_t e, const char *call, const char *file, int line) {
    int n = 0;
    while (call[n] && call[n] != '(') n++;
    cudaGetLastError();
    return nnu_fail(NNU_STATUS_ERR_CUDA, file, line, "%.*s: %s (%s)", n, call,
                    cudaGetErrorName(e), cudaGetErrorString(e));
}
#define PROF_CU(call) do { cudaError_t e_ = (call); \
    if (e_ != cudaSuccess) return prof_fail(e_, #call, __FILE__, __LINE__); } while (0)

static cudaStream_t prof_stream(void) { return (cudaStream_t)nnu_cuda_stream(); }

static void prof_add(const prof_rec *r, double ms) {
    for (int i = 0; i < n_agg; i++)
        if (aggs[i].op == r->op && !memcmp(aggs[i].g, r->g, sizeof r->g)) {
            aggs[i].calls++;
            aggs[i].ms += ms;
            return;
        }
    if (n_agg == MAX_AGG) { n_lost++; return; }
    prof_agg *a = &aggs[n_agg++];
    a->op = r->op;
    memcpy(a->g, r->g, sizeof a->g);
    a->calls = 1;
    a->ms = ms;
}

/* reads every pending pair into the aggregates (waits for the newest end event) */
static nnu_status prof_collect(void) {
    if (n_pending == 0) return NNU_STATUS_OK;
    PROF_CU(cudaEventSynchronize(ev_end[n_pending - 1]));   /* one stream: all earlier done */
    for (int i = 0; i < n_pending; i++) {
        float ms = 0.0f;
        PROF_CU(cudaEventElapsedTime(&ms, ev_start[i], ev_end[i]));
        prof_add(&pending[i], ms);
    }
    n_pending = 0;
    return NNU_STATUS_OK;
}

static nnu_status prof_begin(nnu_op op, const int64_t *g, int *slot) {
    for (; n_events < POOL; n_events++) {   /* once: the whole pool */
        PROF_CU(cudaEventCreate(&ev_end[n_events]));
        cudaError_t e = cudaEventCreate(&ev_start[n_events]);
        if (e != cudaSuccess) {
            cudaEventDestroy(ev_end[n_events]);
            return prof_fail(e, "cudaEventCreate", __FILE__, __LINE__);
        }
    }
    if (n_pending == POOL) NNU_TRY(prof_collect());
    const int i = n_pending;
    PROF_CU(cudaEventRecord(ev_start[i], prof_stream()));
    pending[i].op = (int)op;
    memcpy(pending[i].g, g, sizeof pending[i].g);
    *slot = i;
    return NNU_STATUS_OK;
}

/* closes slot after the op returned st (the op's own error wins) */
static nnu_status prof_end(int slot, nnu_status st) {
    cudaError_t e = cudaEventRecord(ev_end[slot], prof_stream());
    if (e == cudaSuccess) n_pending = slot + 1;
    if (st != NNU_STATUS_OK) return st;
    if (e != cudaSuccess) return prof_fail(e, "cudaEventRecord", __FILE__, __LINE__);
    return NNU_STATUS_OK;
}

/* ---- geometry keys ---- */
static const int64_t *geo_conv(const nnu_conv_params *p, int64_t *g) {
    memset(g, 0, GEO_LEN * sizeof *g);
    g[0] = p->n; g[1] = p->c_in; g[2] = p->c_out;
    for (int a = 0; a < 3; a++) { g[3 + a] = p->in[a]; g[6 + a] = p->kernel[a]; g[9 + a] = p->stride[a]; }
    return g;
}
static const int64_t *geo4(int64_t a, int64_t b, int64_t c, int64_t d, int64_t *g) {
    memset(g, 0, GEO_LEN * sizeof *g);
    g[0] = a; g[1] = b; g[2] = c; g[3] = d;
    return g;
}

static const nnu_backend *real(const nnu_backend *be) { return real_of[be - wrapped]; }

/* ---- the wrappers, one per op of nnu_ops.def ---- */
static nnu_status prof_conv_fwd(const nnu_backend *be, const float *x, float *y, const float *w,
                                const float *b, const nnu_conv_params *p) {
    int64_t g[GEO_LEN]; int s; const nnu_backend *r = real(be);
    NNU_TRY(prof_begin(NNU_OP_conv_fwd, geo_conv(p, g), &s));
    return prof_end(s, r->conv_fwd(r, x, y, w, b, p));
}
static nnu_status prof_conv_bwd_data(const nnu_backend *be, const float *gy, float *gx,
                                     const float *w, const nnu_conv_params *p) {
    int64_t g[GEO_LEN]; int s; const nnu_backend *r = real(be);
    NNU_TRY(prof_begin(NNU_OP_conv_bwd_data, geo_conv(p, g), &s));
    return prof_end(s, r->conv_bwd_data(r, gy, gx, w, p));
}
static nnu_status prof_conv_bwd_params(const nnu_backend *be, const float *x, const float *gy,
                                       float *gw, float *gb, const nnu_conv_params *p) {
    int64_t g[GEO_LEN]; int s; const nnu_backend *r = real(be);
    NNU_TRY(prof_begin(NNU_OP_conv_bwd_params, geo_conv(p, g), &s));
    return prof_end(s, r->conv_bwd_params(r, x, gy, gw, gb, p));
}
static nnu_status prof_convt_fwd(const nnu_backend *be, const float *x, float *y, const float *w,
                                 const float *b, const nnu_conv_params *p) {
    int64_t g[GEO_LEN]; int s; const nnu_backend *r = real(be);
    NNU_TRY(prof_begin(NNU_OP_convt_fwd, geo_conv(p, g), &s));
    return prof_end(s, r->convt_fwd(r, x, y, w, b, p));
}
static nnu_status prof_convt_bwd_data(const nnu_backend *be, const float *gy, float *gx,
                                      const float *w, const nnu_conv_params *p) {
    int64_t g[GEO_LEN]; int s; const nnu_backend *r = real(be);
    NNU_TRY(prof_begin(NNU_OP_convt_bwd_data, geo_conv(p, g), &s));
    return prof_end(s, r->convt_bwd_data(r, gy, gx, w, p));
}
static nnu_status prof_convt_bwd_params(const nnu_backend *be, const float *x, const float *gy,
                                        float *gw, float *gb, const nnu_conv_params *p) {
    int64_t g[GEO_LEN]; int s; const nnu_backend *r = real(be);
    NNU_TRY(prof_begin(NNU_OP_convt_bwd_params, geo_conv(p, g), &s));
    return prof_end(s, r->convt_bwd_params(r, x, gy, gw, gb, p));
}
static nnu_status prof_instnorm_fwd(const nnu_backend *be, const float *x, float *y,
                                    const float *gamma, const float *beta, float *stats,
                                    const nnu_norm_params *p) {
    int64_t g[GEO_LEN]; int s; const nnu_backend *r = real(be);
    NNU_TRY(prof_begin(NNU_OP_instnorm_fwd, geo4(p->n, p->c, p->s, 0, g), &s));
    return prof_end(s, r->instnorm_fwd(r, x, y, gamma, beta, stats, p));
}
static nnu_status prof_instnorm_bwd(const nnu_backend *be, const float *x, const float *gy,
                                    float *gx, const float *gamma, const float *beta,
                                    float *ggamma, float *gbeta, const float *stats,
                                    const nnu_norm_params *p) {
    int64_t g[GEO_LEN]; int s; const nnu_backend *r = real(be);
    NNU_TRY(prof_begin(NNU_OP_instnorm_bwd, geo4(p->n, p->c, p->s, 0, g), &s));
    return prof_end(s, r->instnorm_bwd(r, x, gy, gx, gamma, beta, ggamma, gbeta, stats, p));
}
static nnu_status prof_lrelu_fwd(const nnu_backend *be, const float *x, float *y,
                                 const nnu_eltwise_params *p) {
    int64_t g[GEO_LEN]; int s; const nnu_backend *r = real(be);
    NNU_TRY(prof_begin(NNU_OP_lrelu_fwd, geo4(p->numel, 0, 0, 0, g), &s));
    return prof_end(s, r->lrelu_fwd(r, x, y, p));
}
static nnu_status prof_lrelu_bwd(const nnu_backend *be, const float *x, const float *gy,
                                 float *gx, const nnu_eltwise_params *p) {
    int64_t g[GEO_LEN]; int s; const nnu_backend *r = real(be);
    NNU_TRY(prof_begin(NNU_OP_lrelu_bwd, geo4(p->numel, 0, 0, 0, g), &s));
    return prof_end(s, r->lrelu_bwd(r, x, gy, gx, p));
}
static nnu_status prof_add_lrelu_fwd(const nnu_backend *be, const float *a, const float *b,
                                     float *y, const nnu_eltwise_params *p) {
    int64_t g[GEO_LEN]; int s; const nnu_backend *r = real(be);
    NNU_TRY(prof_begin(NNU_OP_add_lrelu_fwd, geo4(p->numel, 0, 0, 0, g), &s));
    return prof_end(s, r->add_lrelu_fwd(r, a, b, y, p));
}
static nnu_status prof_avgpool_fwd(const nnu_backend *be, const float *x, float *y,
                                   const nnu_pool_params *p) {
    int64_t g[GEO_LEN]; int s; const nnu_backend *r = real(be);
    NNU_TRY(prof_begin(NNU_OP_avgpool_fwd,
                       geo4(p->n, p->c, p->in[0] * p->in[1] * p->in[2],
                            p->stride[0] * 100 + p->stride[1] * 10 + p->stride[2], g), &s));
    return prof_end(s, r->avgpool_fwd(r, x, y, p));
}
static nnu_status prof_avgpool_bwd(const nnu_backend *be, const float *gy, float *gx,
                                   const nnu_pool_params *p) {
    int64_t g[GEO_LEN]; int s; const nnu_backend *r = real(be);
    NNU_TRY(prof_begin(NNU_OP_avgpool_bwd,
                       geo4(p->n, p->c, p->in[0] * p->in[1] * p->in[2],
                            p->stride[0] * 100 + p->stride[1] * 10 + p->stride[2], g), &s));
    return prof_end(s, r->avgpool_bwd(r, gy, gx, p));
}
static nnu_status prof_concat_fwd(const nnu_backend *be, const float *a, const float *b, float *y,
                                  const nnu_concat_params *p) {
    int64_t g[GEO_LEN]; int s; const nnu_backend *r = real(be);
    NNU_TRY(prof_begin(NNU_OP_concat_fwd, geo4(p->n, p->c_a, p->c_b, p->s, g), &s));
    return prof_end(s, r->concat_fwd(r, a, b, y, p));
}
static nnu_status prof_concat_bwd(const nnu_backend *be, const float *gy, float *ga, float *gb,
                                  const nnu_concat_params *p) {
    int64_t g[GEO_LEN]; int s; const nnu_backend *r = real(be);
    NNU_TRY(prof_begin(NNU_OP_concat_bwd, geo4(p->n, p->c_a, p->c_b, p->s, g), &s));
    return prof_end(s, r->concat_bwd(r, gy, ga, gb, p));
}
static nnu_status prof_softmax_fwd(const nnu_backend *be, const float *x, float *y,
                                   const nnu_softmax_params *p) {
    int64_t g[GEO_LEN]; int s; const nnu_backend *r = real(be);
    NNU_TRY(prof_begin(NNU_OP_softmax_fwd, geo4(p->n, p->c, p->s, 0, g), &s));
    return prof_end(s, r->softmax_fwd(r, x, y, p));
}
static nnu_status prof_softmax_bwd(const nnu_backend *be, const float *y, const float *gy,
                                   float *gx, const nnu_softmax_params *p) {
    int64_t g[GEO_LEN]; int s; const nnu_backend *r = real(be);
    NNU_TRY(prof_begin(NNU_OP_softmax_bwd, geo4(p->n, p->c, p->s, 0, g), &s));
    return prof_end(s, r->softmax_bwd(r, y, gy, gx, p));
}
static nnu_status prof_loss_dice_ce_fwd(const nnu_backend *be, const float *logits,
                                        const int32_t *target, void *ws, double *loss,
                                        const nnu_loss_params *p) {
    int64_t g[GEO_LEN]; int s; const nnu_backend *r = real(be);
    NNU_TRY(prof_begin(NNU_OP_loss_dice_ce_fwd, geo4(p->n, p->k, p->s, 0, g), &s));
    return prof_end(s, r->loss_dice_ce_fwd(r, logits, target, ws, loss, p));
}
static nnu_status prof_loss_dice_ce_bwd(const nnu_backend *be, const float *logits,
                                        const int32_t *target, const void *ws, float *glogits,
                                        const nnu_loss_params *p) {
    int64_t g[GEO_LEN]; int s; const nnu_backend *r = real(be);
    NNU_TRY(prof_begin(NNU_OP_loss_dice_ce_bwd, geo4(p->n, p->k, p->s, 0, g), &s));
    return prof_end(s, r->loss_dice_ce_bwd(r, logits, target, ws, glogits, p));
}
static nnu_status prof_loss_dice_bce_fwd(const nnu_backend *be, const float *logits,
                                         const int32_t *target, void *ws, double *loss,
                                         const nnu_loss_region_params *p) {
    int64_t g[GEO_LEN]; int s; const nnu_backend *r = real(be);
    NNU_TRY(prof_begin(NNU_OP_loss_dice_bce_fwd, geo4(p->base.n, p->base.k, p->base.s, 0, g), &s));
    return prof_end(s, r->loss_dice_bce_fwd(r, logits, target, ws, loss, p));
}
static nnu_status prof_loss_dice_bce_bwd(const nnu_backend *be, const float *logits,
                                         const int32_t *target, const void *ws, float *glogits,
                                         const nnu_loss_region_params *p) {
    int64_t g[GEO_LEN]; int s; const nnu_backend *r = real(be);
    NNU_TRY(prof_begin(NNU_OP_loss_dice_bce_bwd, geo4(p->base.n, p->base.k, p->base.s, 0, g), &s));
    return prof_end(s, r->loss_dice_bce_bwd(r, logits, target, ws, glogits, p));
}
static nnu_status prof_sgd_step(const nnu_backend *be, float *w, const float *gr, float *buf,
                                const nnu_sgd_params *p) {
    int64_t g[GEO_LEN]; int s; const nnu_backend *r = real(be);
    NNU_TRY(prof_begin(NNU_OP_sgd_step, geo4(p->numel, 0, 0, 0, g), &s));
    return prof_end(s, r->sgd_step(r, w, gr, buf, p));
}
static nnu_status prof_adam_step(const nnu_backend *be, float *w, const float *gr, float *m,
                                 float *v, float *vmax, const nnu_adam_params *p) {
    int64_t g[GEO_LEN]; int s; const nnu_backend *r = real(be);
    NNU_TRY(prof_begin(NNU_OP_adam_step, geo4(p->numel, 0, 0, 0, g), &s));
    return prof_end(s, r->adam_step(r, w, gr, m, v, vmax, p));
}
static nnu_status prof_axpy(const nnu_backend *be, const float *x, float *y,
                            const nnu_eltwise_params *p) {
    int64_t g[GEO_LEN]; int s; const nnu_backend *r = real(be);
    NNU_TRY(prof_begin(NNU_OP_axpy, geo4(p->numel, 0, 0, 0, g), &s));
    return prof_end(s, r->axpy(r, x, y, p));
}
static nnu_status prof_scale(const nnu_backend *be, float *x, const nnu_eltwise_params *p) {
    int64_t g[GEO_LEN]; int s; const nnu_backend *r = real(be);
    NNU_TRY(prof_begin(NNU_OP_scale, geo4(p->numel, 0, 0, 0, g), &s));
    return prof_end(s, r->scale(r, x, p));
}
static nnu_status prof_sumsq(const nnu_backend *be, const float *x, double *out,
                             const nnu_eltwise_params *p) {
    int64_t g[GEO_LEN]; int s; const nnu_backend *r = real(be);
    NNU_TRY(prof_begin(NNU_OP_sumsq, geo4(p->numel, 0, 0, 0, g), &s));
    return prof_end(s, r->sumsq(r, x, out, p));
}

/* The copy of real table rt: a slot is wrapped only where rt has the op (NULL stays
 * NULL, so nnu_backend_require still names a missing op). */
const nnu_backend *nnu_cuda_profile_wrap(const nnu_backend *rt) {
    const int p = nnu_cuda_precision_of(rt);
    if (p < 0) return NULL;
    nnu_backend *w = &wrapped[p];
    if (rt == w || real_of[p]) return w;
    real_of[p] = rt;
    *w = *rt;                          /* name, memory, sync, copies, layout: the real ones */
    if (w->conv_fwd) w->conv_fwd = prof_conv_fwd;
    if (w->conv_bwd_data) w->conv_bwd_data = prof_conv_bwd_data;
    if (w->conv_bwd_params) w->conv_bwd_params = prof_conv_bwd_params;
    if (w->convt_fwd) w->convt_fwd = prof_convt_fwd;
    if (w->convt_bwd_data) w->convt_bwd_data = prof_convt_bwd_data;
    if (w->convt_bwd_params) w->convt_bwd_params = prof_convt_bwd_params;
    if (w->instnorm_fwd) w->instnorm_fwd = prof_instnorm_fwd;
    if (w->instnorm_bwd) w->instnorm_bwd = prof_instnorm_bwd;
    if (w->lrelu_fwd) w->lrelu_fwd = prof_lrelu_fwd;
    if (w->lrelu_bwd) w->lrelu_bwd = prof_lrelu_bwd;
    if (w->add_lrelu_fwd) w->add_lrelu_fwd = prof_add_lrelu_fwd;
    if (w->avgpool_fwd) w->avgpool_fwd = prof_avgpool_fwd;
    if (w->avgpool_bwd) w->avgpool_bwd = prof_avgpool_bwd;
    if (w->concat_fwd) w->concat_fwd = prof_concat_fwd;
    if (w->concat_bwd) w->concat_bwd = prof_concat_bwd;
    if (w->softmax_fwd) w->softmax_fwd = prof_softmax_fwd;
    if (w->softmax_bwd) w->softmax_bwd = prof_softmax_bwd;
    if (w->loss_dice_ce_fwd) w->loss_dice_ce_fwd = prof_loss_dice_ce_fwd;
    if (w->loss_dice_ce_bwd) w->loss_dice_ce_bwd = prof_loss_dice_ce_bwd;
    if (w->loss_dice_bce_fwd) w->loss_dice_bce_fwd = prof_loss_dice_bce_fwd;
    if (w->loss_dice_bce_bwd) w->loss_dice_bce_bwd = prof_loss_dice_bce_bwd;
    if (w->sgd_step) w->sgd_step = prof_sgd_step;
    if (w->adam_step) w->adam_step = prof_adam_step;
    if (w->axpy) w->axpy = prof_axpy;
    if (w->scale) w->scale = prof_scale;
    if (w->sumsq) w->sumsq = prof_sumsq;
    return w;
}

int nnu_cuda_profile_precision_of(const nnu_backend *be) {
    if (be >= wrapped && be < wrapped + NNU_CUDA_PRECISION_COUNT && real_of[be - wrapped])
        return (int)(be - wrapped);
    return -1;
}

/* ---- results ---- */
nnu_status nnu_cuda_profile_reset(void) {
    NNU_TRY(prof_collect());           /* pending pairs must complete before reuse */
    n_agg = 0;
    n_lost = 0;
    return NNU_STATUS_OK;
}

int64_t nnu_cuda_profile_calls(const char *op) {
    if (prof_collect() != NNU_STATUS_OK) return -1;
    int64_t n = 0;
    for (int i = 0; i < n_agg; i++)
        if (!strcmp(nnu_op_name((nnu_op)aggs[i].op), op)) n += aggs[i].calls;
    return n;
}

static void geo_str(const prof_agg *a, char *s, size_t n) {
    const int64_t *g = a->g;
    switch ((nnu_op)a->op) {
    case NNU_OP_conv_fwd: case NNU_OP_conv_bwd_data: case NNU_OP_conv_bwd_params:
    case NNU_OP_convt_fwd: case NNU_OP_convt_bwd_data: case NNU_OP_convt_bwd_params:
        snprintf(s, n, "N=%lld %lld->%lld in=%lldx%lldx%lld k=%lldx%lldx%lld s=%lldx%lldx%lld",
                 (long long)g[0], (long long)g[1], (long long)g[2], (long long)g[3],
                 (long long)g[4], (long long)g[5], (long long)g[6], (long long)g[7],
                 (long long)g[8], (long long)g[9], (long long)g[10], (long long)g[11]);
        break;
    case NNU_OP_concat_fwd: case NNU_OP_concat_bwd:
        snprintf(s, n, "N=%lld C=%lld+%lld S=%lld", (long long)g[0], (long long)g[1],
                 (long long)g[2], (long long)g[3]);
        break;
    case NNU_OP_instnorm_fwd: case NNU_OP_instnorm_bwd: case NNU_OP_softmax_fwd:
    case NNU_OP_softmax_bwd: case NNU_OP_loss_dice_ce_fwd: case NNU_OP_loss_dice_ce_bwd:
    case NNU_OP_loss_dice_bce_fwd: case NNU_OP_loss_dice_bce_bwd:
        snprintf(s, n, "N=%lld C=%lld S=%lld", (long long)g[0], (long long)g[1], (long long)g[2]);
        break;
    case NNU_OP_avgpool_fwd: case NNU_OP_avgpool_bwd:
        snprintf(s, n, "N=%lld C=%lld S=%lld s=%lld", (long long)g[0], (long long)g[1],
                 (long long)g[2], (long long)g[3]);
        break;
    default:
        snprintf(s, n, "numel=%lld", (long long)g[0]);
    }
}

static int by_ms_desc(const void *pa, const void *pb) {
    const double a = (*(const prof_agg *const *)pa)->ms, b = (*(const prof_agg *const *)pb)->ms;
    return (a < b) - (a > b);
}

nnu_status nnu_cuda_profile_report(FILE *f) {
    NNU_TRY(prof_collect());
    static const prof_agg *order[MAX_AGG];
    static prof_agg per_op[NNU_OP_COUNT];
    static const prof_agg *op_order[NNU_OP_COUNT];
    double total = 0.0;
    int64_t calls = 0;
    memset(per_op, 0, sizeof per_op);
    for (int i = 0; i < n_agg; i++) {
        order[i] = &aggs[i];
        total += aggs[i].ms;
        calls += aggs[i].calls;
        per_op[aggs[i].op].op = aggs[i].op;
        per_op[aggs[i].op].calls += aggs[i].calls;
        per_op[aggs[i].op].ms += aggs[i].ms;
    }
    qsort(order, (size_t)n_agg, sizeof *order, by_ms_desc);
    const double pct = total > 0.0 ? 100.0 / total : 0.0;
    fprintf(f, "profile %-18s %-52s %7s %10s %9s %7s\n", "op", "geometry", "calls", "total_ms",
            "mean_ms", "%total");
    for (int i = 0; i < n_agg; i++) {
        char geo[128];
        geo_str(order[i], geo, sizeof geo);
        fprintf(f, "profile %-18s %-52s %7lld %10.3f %9.4f %6.2f%%\n",
                nnu_op_name((nnu_op)order[i]->op), geo, (long long)order[i]->calls, order[i]->ms,
                order[i]->ms / (double)order[i]->calls, order[i]->ms * pct);
    }
    int nops = 0;
    for (int op = 0; op < NNU_OP_COUNT; op++)
        if (per_op[op].calls) op_order[nops++] = &per_op[op];
    qsort(op_order, (size_t)nops, sizeof *op_order, by_ms_desc);
    for (int i = 0; i < nops; i++)
        fprintf(f, "profile op %-18s calls %7lld total_ms %10.3f mean_ms %9.4f %6.2f%%\n",
                nnu_op_name((nnu_op)op_order[i]->op), (long long)op_order[i]->calls,
                op_order[i]->ms, op_order[i]->ms / (double)op_order[i]->calls,
                op_order[i]->ms * pct);
    fprintf(f, "profile total calls %lld total_ms %.3f geometries %d lost %lld\n",
            (long long)calls, total, n_agg, (long long)n_lost);
    return NNU_STATUS_OK;
}
