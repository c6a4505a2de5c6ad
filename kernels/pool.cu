/* pool.cu: average pooling with kernel = stride, the CUDA twin of core/ops/pool.c
 * (the residual encoder's skip path: AvgPool(stride, stride) in BasicBlockD).
 *
 *   fwd  y[n,c,o] = (sum of the K = sd*sh*sw inputs of window o, in (kd, kh, kw)
 *        order) / K         one thread per output element, flat index of y
 *   bwd  gx[n,c,i] = gy[n,c,window(i)] / K   (=)  one thread per element of gx
 * The fp32 sum in the CPU's order with __fadd_rn and one __fdiv_rn: the same bits
 * as the CPU (tested exactly). Layout: the flat index of (n, c, s) is
 * nnu_act_index (cblk 1 or 16), the same for x and y; a thread decodes its index
 * as ((unit * S + s) * L + l) with unit = n*(C/L) + c/L.
 *
 * Storage: x, y, gy, gx are activation storage (float, or bf16/fp16 in the -act16
 * tables, act_store.cuh): loaded as float, summed in fp32, rounded once on store. */
#include "act_store.cuh"

#define GRID_LOOP(i, n)                                                        \
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < (n); \
         i += (int64_t)gridDim.x * blockDim.x)

/* geometry passed by value (the params struct is host memory) */
struct pool_geo {
    int64_t in[3], out[3];
    int stride[3];
    int L;
};

static pool_geo geo_of(const nnu_pool_params *p) {
    pool_geo g;
    for (int a = 0; a < 3; a++) {
        g.in[a] = p->in[a];
        g.out[a] = p->out[a];
        g.stride[a] = p->stride[a];
    }
    g.L = p->cblk;
    return g;
}

template <typename T>
__global__ void k_avgpool_fwd(const T *x, T *y, pool_geo g, int64_t n) {
    const int64_t Hi = g.in[1], Wi = g.in[2], Si = g.in[0] * Hi * Wi;
    const int64_t Ho = g.out[1], Wo = g.out[2], So = g.out[0] * Ho * Wo;
    const float k = (float)(g.stride[0] * g.stride[1] * g.stride[2]);
    GRID_LOOP(i, n) {
        const int64_t l = i % g.L, t = i / g.L, s = t % So, unit = t / So;
        const int64_t ow = s % Wo, oh = (s / Wo) % Ho, od = s / (Wo * Ho);
        const int64_t base = unit * Si;
        float acc = 0.0f;
        for (int kd = 0; kd < g.stride[0]; kd++)
            for (int kh = 0; kh < g.stride[1]; kh++)
                for (int kw = 0; kw < g.stride[2]; kw++) {
                    const int64_t si = ((od * g.stride[0] + kd) * Hi + oh * g.stride[1] + kh) * Wi +
                                       ow * g.stride[2] + kw;
                    acc = __fadd_rn(acc, act_ld(x, (base + si) * g.L + l));
                }
        act_st(y, i, __fdiv_rn(acc, k));
    }
}

template <typename T>
__global__ void k_avgpool_bwd(const T *gy, T *gx, pool_geo g, int64_t n) {
    const int64_t Hi = g.in[1], Wi = g.in[2], Si = g.in[0] * Hi * Wi;
    const int64_t Ho = g.out[1], Wo = g.out[2], So = g.out[0] * Ho * Wo;
    const float k = (float)(g.stride[0] * g.stride[1] * g.stride[2]);
    GRID_LOOP(i, n) {
        const int64_t l = i % g.L, t = i / g.L, s = t % Si, unit = t / Si;
        const int64_t w = s % Wi, h = (s / Wi) % Hi, d = s / (Wi * Hi);
        const int64_t so = ((d / g.stride[0]) * Ho + h / g.stride[1]) * Wo + w / g.stride[2];
        act_st(gx, i, __fdiv_rn(act_ld(gy, (unit * So + so) * g.L + l), k));
    }
}

static nnu_status pool_check(const nnu_pool_params *p) {
    NNU_CHECK(p->cblk == 1 || p->cblk == 16, NNU_STATUS_ERR_ARG, "avgpool: layout block %d",
              p->cblk);
    for (int a = 0; a < 3; a++)
        NNU_CHECK(p->stride[a] >= 1 && p->out[a] * p->stride[a] == p->in[a], NNU_STATUS_ERR_SHAPE,
                  "avgpool: axis %d: in %lld != out %lld * stride %d (use nnu_pool_params_init)",
                  a, (long long)p->in[a], (long long)p->out[a], p->stride[a]);
    return NNU_STATUS_OK;
}

nnu_status nnu_avgpool_fwd_cuda(const nnu_backend *be, const float *x, float *y,
                                const nnu_pool_params *p) {
    NNU_TRY(pool_check(p));
    const int64_t n = p->n * p->c * p->out[0] * p->out[1] * p->out[2];
    if (n <= 0) return NNU_STATUS_OK;
    const pool_geo g = geo_of(p);
    const unsigned b = nnu_cuda_blocks(n);
    cudaStream_t st = nnu_cuda_ctx_get()->stream;
    switch (act_type(nnu_cuda_prec(be))) {   /* x, y: activation storage */
    case ACT_BF16:
        k_avgpool_fwd<<<b, NNU_CUDA_THREADS, 0, st>>>((const __nv_bfloat16 *)x,
                                                      (__nv_bfloat16 *)y, g, n);
        break;
    case ACT_F16:
        k_avgpool_fwd<<<b, NNU_CUDA_THREADS, 0, st>>>((const __half *)x, (__half *)y, g, n);
        break;
    default:
        k_avgpool_fwd<<<b, NNU_CUDA_THREADS, 0, st>>>(x, y, g, n);
    }
    NNU_CU_LAUNCH("k_avgpool_fwd");
    return NNU_STATUS_OK;
}

nnu_status nnu_avgpool_bwd_cuda(const nnu_backend *be, const float *gy, float *gx,
                                const nnu_pool_params *p) {
    NNU_TRY(pool_check(p));
    const int64_t n = p->n * p->c * p->in[0] * p->in[1] * p->in[2];
    if (n <= 0) return NNU_STATUS_OK;
    const pool_geo g = geo_of(p);
    const unsigned b = nnu_cuda_blocks(n);
    cudaStream_t st = nnu_cuda_ctx_get()->stream;
    switch (act_type(nnu_cuda_prec(be))) {   /* gy, gx: activation (gradient) storage */
    case ACT_BF16:
        k_avgpool_bwd<<<b, NNU_CUDA_THREADS, 0, st>>>((const __nv_bfloat16 *)gy,
                                                      (__nv_bfloat16 *)gx, g, n);
        break;
    case ACT_F16:
        k_avgpool_bwd<<<b, NNU_CUDA_THREADS, 0, st>>>((const __half *)gy, (__half *)gx, g, n);
        break;
    default:
        k_avgpool_bwd<<<b, NNU_CUDA_THREADS, 0, st>>>(gy, gx, g, n);
    }
    NNU_CU_LAUNCH("k_avgpool_bwd");
    return NNU_STATUS_OK;
}
