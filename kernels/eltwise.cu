/* eltwise.cu: element-wise ops of the CUDA backend, twins of core/ops/lrelu.c,
 * concat.c, sgd.c and eltwise.c (same formulas, flat indices):
 *   lrelu_fwd   y = x > 0 ? x : a*x           lrelu_bwd  gx = x > 0 ? gy : a*gy
 *   add_lrelu_fwd  v = a + b; y = v > 0 ? v : alpha*v   (the residual block's add + nonlin;
 *               y may alias a or b: each thread reads its element before writing it)
 *   concat_fwd  y = [a, b] along C             concat_bwd ga, gb = the two parts of gy
 *   sgd_step    d = g + wd*w; buf = first ? d : m*buf + d; w -= lr*(nesterov ? d + m*buf : buf)
 *   adam_step   d = g + wd*w; m = b1*m + (1-b1)*d; v = b2*v + (1-b2)*d^2;
 *               vmax = max(vmax, v) (amsgrad); w -= step * m / (sqrt(v|vmax)/bc2 + eps)
 *               (step = lr/(1-b1^t), bc2 = sqrt(1-b2^t) in double on the host, as adam.c);
 *               decoupled (AdamW): w *= shrink = 1 - lr*wd first and d = g
 *   axpy        y += a*x     scale  x *= a     sumsq  *out = sum x^2 (double, host value)
 * Arithmetic uses __fmul_rn/__fadd_rn where nvcc would contract to an FMA, so
 * the results are bit-identical to the CPU's (tested exactly). Grid-stride loops; concat is two strided copies (cudaMemcpy2DAsync), since in
 * both layouts each sample's channels are one contiguous run. sumsq reduces in
 * double per block, then in a fixed order (deterministic), then syncs to return.
 *
 * Storage (core/nnu_backend.h): lrelu's x, y, gy, gx, add_lrelu's a, b, y, concat's
 * tensors and axpy's
 * x, y are activation storage - float, or bf16/fp16 in the -act16 tables
 * (act_store.cuh): the kernels are templates over it, compute in fp32 and round
 * once on store (axpy: y = round(y + a*x) with the fp32 operations above). axpy is
 * used only on activation gradients, scale and sumsq only on fp32 parameter
 * gradients, SGD and Adam on fp32 parameters and state, in every table. */
#include "act_store.cuh"

#define GRID_LOOP(i, n)                                                        \
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < (n); \
         i += (int64_t)gridDim.x * blockDim.x)

template <typename T>
__global__ void k_lrelu_fwd(const T *x, T *y, float a, int64_t n) {
    GRID_LOOP(i, n) { float v = act_ld(x, i); act_st(y, i, v > 0.0f ? v : a * v); }
}

template <typename T>
__global__ void k_lrelu_bwd(const T *x, const T *gy, T *gx, float a, int64_t n) {
    GRID_LOOP(i, n) {
        const float g = act_ld(gy, i);
        act_st(gx, i, act_ld(x, i) > 0.0f ? g : a * g);
    }
}

template <typename T>
__global__ void k_add_lrelu_fwd(const T *a, const T *b, T *y, float al, int64_t n) {
    GRID_LOOP(i, n) {   /* one fp32 add (as the CPU), then the slope; one rounding on store */
        const float v = __fadd_rn(act_ld(a, i), act_ld(b, i));
        act_st(y, i, v > 0.0f ? v : __fmul_rn(al, v));
    }
}

__global__ void k_sgd(float *w, const float *g, float *buf, float lr, float m, float wd,
                      int first, int nest, int64_t n) {
    GRID_LOOP(i, n) {   /* _rn: no FMA contraction, the CPU's separate roundings */
        float d = __fadd_rn(g[i], __fmul_rn(wd, w[i]));
        float b = first ? d : __fadd_rn(__fmul_rn(m, buf[i]), d);
        buf[i] = b;
        w[i] = __fsub_rn(w[i], __fmul_rn(lr, nest ? __fadd_rn(d, __fmul_rn(m, b)) : b));
    }
}

__global__ void k_adam(float *w, const float *g, float *m, float *v, float *vmax, float b1,
                       float b2, float wd, float eps, float step, float bc2, int ams, int dec,
                       float shrink, int64_t n) {
    GRID_LOOP(i, n) {   /* _rn: the CPU's separate roundings (adam.c, no contraction) */
        if (dec) w[i] = __fmul_rn(w[i], shrink);
        float d = __fadd_rn(g[i], __fmul_rn(wd, w[i]));
        float mi = __fadd_rn(__fmul_rn(b1, m[i]), __fmul_rn(1.0f - b1, d));
        float vi = __fadd_rn(__fmul_rn(b2, v[i]), __fmul_rn(__fmul_rn(1.0f - b2, d), d));
        m[i] = mi;
        v[i] = vi;
        if (ams) {
            vi = fmaxf(vmax[i], vi);
            vmax[i] = vi;
        }
        float den = __fadd_rn(__fdiv_rn(__fsqrt_rn(vi), bc2), eps);
        w[i] = __fsub_rn(w[i], __fdiv_rn(__fmul_rn(step, mi), den));
    }
}

template <typename T>
__global__ void k_axpy(const T *x, T *y, float a, int64_t n) {
    GRID_LOOP(i, n) {   /* no FMA: as the CPU; 16-bit storage rounds the fp32 result once */
        act_st(y, i, __fadd_rn(act_ld(y, i), __fmul_rn(a, act_ld(x, i))));
    }
}

__global__ void k_scale(float *x, float a, int64_t n) {
    GRID_LOOP(i, n) { x[i] *= a; }
}

__global__ void k_sumsq_partial(const float *x, double *part, int64_t n) {
    __shared__ double sh[32];
    double acc = 0.0;
    GRID_LOOP(i, n) { double v = x[i]; acc += v * v; }
    acc = nnu_block_sum(acc, sh);
    if (threadIdx.x == 0) part[blockIdx.x] = acc;
}

__global__ void k_sum_finish(const double *part, double *out, int nparts) {
    double t = 0.0;
    for (int i = 0; i < nparts; i++) t += part[i];
    *out = t;
}

nnu_status nnu_lrelu_fwd_cuda(const nnu_backend *be, const float *x, float *y,
                              const nnu_eltwise_params *p) {
    if (p->numel <= 0) return NNU_STATUS_OK;
    const unsigned g = nnu_cuda_blocks(p->numel);
    cudaStream_t st = nnu_cuda_ctx_get()->stream;
    switch (act_type(nnu_cuda_prec(be))) {   /* x, y: activation storage */
    case ACT_BF16:
        k_lrelu_fwd<<<g, NNU_CUDA_THREADS, 0, st>>>((const __nv_bfloat16 *)x, (__nv_bfloat16 *)y,
                                                    p->alpha, p->numel);
        break;
    case ACT_F16:
        k_lrelu_fwd<<<g, NNU_CUDA_THREADS, 0, st>>>((const __half *)x, (__half *)y, p->alpha,
                                                    p->numel);
        break;
    default:
        k_lrelu_fwd<<<g, NNU_CUDA_THREADS, 0, st>>>(x, y, p->alpha, p->numel);
    }
    NNU_CU_LAUNCH("k_lrelu_fwd");
    return NNU_STATUS_OK;
}

nnu_status nnu_lrelu_bwd_cuda(const nnu_backend *be, const float *x, const float *gy, float *gx,
                              const nnu_eltwise_params *p) {
    if (p->numel <= 0) return NNU_STATUS_OK;
    const unsigned g = nnu_cuda_blocks(p->numel);
    cudaStream_t st = nnu_cuda_ctx_get()->stream;
    switch (act_type(nnu_cuda_prec(be))) {   /* x, gy, gx: activation storage */
    case ACT_BF16:
        k_lrelu_bwd<<<g, NNU_CUDA_THREADS, 0, st>>>((const __nv_bfloat16 *)x,
                                                    (const __nv_bfloat16 *)gy,
                                                    (__nv_bfloat16 *)gx, p->alpha, p->numel);
        break;
    case ACT_F16:
        k_lrelu_bwd<<<g, NNU_CUDA_THREADS, 0, st>>>((const __half *)x, (const __half *)gy,
                                                    (__half *)gx, p->alpha, p->numel);
        break;
    default:
        k_lrelu_bwd<<<g, NNU_CUDA_THREADS, 0, st>>>(x, gy, gx, p->alpha, p->numel);
    }
    NNU_CU_LAUNCH("k_lrelu_bwd");
    return NNU_STATUS_OK;
}

nnu_status nnu_add_lrelu_fwd_cuda(const nnu_backend *be, const float *a, const float *b,
                                  float *y, const nnu_eltwise_params *p) {
    if (p->numel <= 0) return NNU_STATUS_OK;
    const unsigned g = nnu_cuda_blocks(p->numel);
    cudaStream_t st = nnu_cuda_ctx_get()->stream;
    switch (act_type(nnu_cuda_prec(be))) {   /* a, b, y: activation storage */
    case ACT_BF16:
        k_add_lrelu_fwd<<<g, NNU_CUDA_THREADS, 0, st>>>((const __nv_bfloat16 *)a,
                                                        (const __nv_bfloat16 *)b,
                                                        (__nv_bfloat16 *)y, p->alpha, p->numel);
        break;
    case ACT_F16:
        k_add_lrelu_fwd<<<g, NNU_CUDA_THREADS, 0, st>>>((const __half *)a, (const __half *)b,
                                                        (__half *)y, p->alpha, p->numel);
        break;
    default:
        k_add_lrelu_fwd<<<g, NNU_CUDA_THREADS, 0, st>>>(a, b, y, p->alpha, p->numel);
    }
    NNU_CU_LAUNCH("k_add_lrelu_fwd");
    return NNU_STATUS_OK;
}

static nnu_status concat_check(const nnu_concat_params *p) {
    NNU_CHECK(p->cblk == 1 || p->cblk == 16, NNU_STATUS_ERR_ARG, "concat: layout block %d",
              p->cblk);
    NNU_CHECK(p->c_a % p->cblk == 0 && p->c_b % p->cblk == 0, NNU_STATUS_ERR_SHAPE,
              "concat: channels %lld + %lld do not fit layout block %d", (long long)p->c_a,
              (long long)p->c_b, p->cblk);
    return NNU_STATUS_OK;
}

/* bytes of one stored activation element of the table (4, or 2 in -act16) */
static size_t act_elem(const nnu_backend *be) {
    return act_type(nnu_cuda_prec(be)) == ACT_F32 ? sizeof(float) : 2;
}

nnu_status nnu_concat_fwd_cuda(const nnu_backend *be, const float *a, const float *b, float *y,
                               const nnu_concat_params *p) {
    NNU_TRY(concat_check(p));
    cudaStream_t st = nnu_cuda_ctx_get()->stream;
    const size_t na = (size_t)(p->c_a * p->s) * act_elem(be);
    const size_t nb = (size_t)(p->c_b * p->s) * act_elem(be);
    /* rows = samples; each output row is [a_n, b_n] */
    NNU_CU(cudaMemcpy2DAsync(y, na + nb, a, na, na, (size_t)p->n, cudaMemcpyDeviceToDevice, st));
    NNU_CU(cudaMemcpy2DAsync((char *)y + na, na + nb, b, nb, nb, (size_t)p->n,
                             cudaMemcpyDeviceToDevice, st));
    return NNU_STATUS_OK;
}

nnu_status nnu_concat_bwd_cuda(const nnu_backend *be, const float *gy, float *ga, float *gb,
                               const nnu_concat_params *p) {
    NNU_TRY(concat_check(p));
    cudaStream_t st = nnu_cuda_ctx_get()->stream;
    const size_t na = (size_t)(p->c_a * p->s) * act_elem(be);
    const size_t nb = (size_t)(p->c_b * p->s) * act_elem(be);
    if (ga)
        NNU_CU(cudaMemcpy2DAsync(ga, na, gy, na + nb, na, (size_t)p->n, cudaMemcpyDeviceToDevice,
                                 st));
    if (gb)
        NNU_CU(cudaMemcpy2DAsync(gb, nb, (const char *)gy + na, na + nb, nb, (size_t)p->n,
                                 cudaMemcpyDeviceToDevice, st));
    return NNU_STATUS_OK;
}

nnu_status nnu_sgd_step_cuda(const nnu_backend *be, float *w, const float *g, float *buf,
                             const nnu_sgd_params *p) {
    (void)be;
    if (p->numel <= 0) return NNU_STATUS_OK;
    k_sgd<<<nnu_cuda_blocks(p->numel), NNU_CUDA_THREADS, 0, nnu_cuda_ctx_get()->stream>>>(
        w, g, buf, p->lr, p->momentum, p->weight_decay, p->first_step, p->nesterov, p->numel);
    NNU_CU_LAUNCH("k_sgd");
    return NNU_STATUS_OK;
}

nnu_status nnu_adam_step_cuda(const nnu_backend *be, float *w, const float *g, float *m,
                              float *v, float *vmax, const nnu_adam_params *p) {
    (void)be;
    NNU_CHECK(p->step >= 1, NNU_STATUS_ERR_ARG, "adam: step %d (1-based)", p->step);
    NNU_CHECK(!p->amsgrad || vmax, NNU_STATUS_ERR_ARG, "adam: amsgrad needs the vmax buffer");
    if (p->numel <= 0) return NNU_STATUS_OK;
    /* bias corrections once per call in double, rounded to float: as adam.c */
    const float step = (float)(p->lr / (1.0 - pow((double)p->beta1, p->step)));
    const float bc2 = (float)sqrt(1.0 - pow((double)p->beta2, p->step));
    const float shrink = p->decoupled ? (float)(1.0 - (double)p->lr * p->weight_decay) : 1.0f;
    k_adam<<<nnu_cuda_blocks(p->numel), NNU_CUDA_THREADS, 0, nnu_cuda_ctx_get()->stream>>>(
        w, g, m, v, vmax, p->beta1, p->beta2, p->decoupled ? 0.0f : p->weight_decay, p->eps, step, bc2,
        p->amsgrad, p->decoupled, shrink, p->numel);
    NNU_CU_LAUNCH("k_adam");
    return NNU_STATUS_OK;
}

nnu_status nnu_axpy_cuda(const nnu_backend *be, const float *x, float *y,
                         const nnu_eltwise_params *p) {
    if (p->numel <= 0) return NNU_STATUS_OK;
    const unsigned g = nnu_cuda_blocks(p->numel);
    cudaStream_t st = nnu_cuda_ctx_get()->stream;
    switch (act_type(nnu_cuda_prec(be))) {   /* x, y: activation (gradient) storage */
    case ACT_BF16:
        k_axpy<<<g, NNU_CUDA_THREADS, 0, st>>>((const __nv_bfloat16 *)x, (__nv_bfloat16 *)y,
                                               p->alpha, p->numel);
        break;
    case ACT_F16:
        k_axpy<<<g, NNU_CUDA_THREADS, 0, st>>>((const __half *)x, (__half *)y, p->alpha,
                                               p->numel);
        break;
    default:
        k_axpy<<<g, NNU_CUDA_THREADS, 0, st>>>(x, y, p->alpha, p->numel);
    }
    NNU_CU_LAUNCH("k_axpy");
    return NNU_STATUS_OK;
}

nnu_status nnu_scale_cuda(const nnu_backend *be, float *x, const nnu_eltwise_params *p) {
    (void)be;
    if (p->numel <= 0) return NNU_STATUS_OK;
    k_scale<<<nnu_cuda_blocks(p->numel), NNU_CUDA_THREADS, 0, nnu_cuda_ctx_get()->stream>>>(
        x, p->alpha, p->numel);
    NNU_CU_LAUNCH("k_scale");
    return NNU_STATUS_OK;
}

nnu_status nnu_sumsq_cuda(const nnu_backend *be, const float *x, double *out,
                          const nnu_eltwise_params *p) {
    (void)be;
    *out = 0.0;
    if (p->numel <= 0) return NNU_STATUS_OK;
    cudaStream_t st = nnu_cuda_ctx_get()->stream;
    const unsigned blocks = nnu_cuda_blocks(p->numel, 4);
    void *scr, *host;
    NNU_TRY(nnu_cuda_buffer(NNU_CUDA_BUF_SCRATCH, (blocks + 1) * sizeof(double), &scr));
    NNU_TRY(nnu_cuda_buffer(NNU_CUDA_BUF_HOST, sizeof(double), &host));
    double *part = (double *)scr;
    k_sumsq_partial<<<blocks, NNU_CUDA_THREADS, 0, st>>>(x, part, p->numel);
    NNU_CU_LAUNCH("k_sumsq_partial");
    k_sum_finish<<<1, 1, 0, st>>>(part, part + blocks, (int)blocks);
    NNU_CU_LAUNCH("k_sum_finish");
    NNU_CU(cudaMemcpyAsync(host, part + blocks, sizeof(double), cudaMemcpyDeviceToHost, st));
    NNU_CU(cudaStreamSynchronize(st));
    *out = *(double *)host;
    return NNU_STATUS_OK;
}
