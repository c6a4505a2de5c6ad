/* instnorm.cu: instance normalization fused with leaky ReLU on the GPU, twin of
 * core/ops/instnorm.c (same formulas, same stats layout):
 *   x (N, C, S) in layout cblk (1 or 16); per row r = n*C + c:
 *     mu = mean_s x, var = mean_s x^2 - mu^2 (biased, sums in double), rstd = 1/sqrt(var+eps)
 *     z = gamma[c]*(x - mu)*rstd + beta[c];  y = z > 0 ? z : slope*z
 *   stats[r*2 + {0,1}] = (mu, rstd) (float), kept for the backward.
 * Backward (gx may alias gy), gz = gy * (z > 0 ? 1 : slope), xhat = (x - mu)*rstd:
 *   A = sum_s gz, B = sum_s gz*xhat;  gx = gamma*rstd*(gz - A/S - xhat*B/S)
 *   ggamma[c] += sum_n B, gbeta[c] += sum_n A  (summed over n in order: deterministic)
 *
 * Each direction is three launches: partial sums per (row, chunk of S) with as many
 * chunks as keep the device busy (rows alone are often fewer than the SMs, e.g.
 * 2 x 32 at full resolution), a per-row finish in a fixed order, and one
 * element-wise pass. Traffic: fwd reads x twice and writes y once; bwd reads x and
 * gy twice and writes gx once, like the CPU twin. Partials live in the grow-once
 * scratch buffer.
 *
 * Storage: x, y, gy, gx are activation storage (float, or bf16/fp16 in the -act16
 * tables: act_store.cuh); every kernel is a template over that type T and computes
 * in fp32 / double exactly as for float, rounding once on store. stats, gamma,
 * beta and their gradients are fp32 in every table. */
#include "act_store.cuh"

/* per-row coefficients written by the finish kernels */
enum { CO_SC = 0, CO_SH, CO_MU, CO_RS, CO_KG, CO_KA, CO_KB, CO_N };

__device__ __forceinline__ int64_t act_idx(int64_t n, int64_t c, int64_t s, int64_t C,
                                           int64_t S, int cblk) {
    return cblk == 1 ? (n * C + c) * S + s
                     : ((n * (C / 16) + c / 16) * S + s) * 16 + (c & 15);
}

/* fwd partials: part[(row*chunks + k)*2 + {0,1}] = (sum x, sum x^2) over chunk k */
template <typename T>
__global__ void k_in_fwd_partial(const T *x, double *part, int64_t C, int64_t S, int cblk,
                                 int chunks) {
    __shared__ double sh[32];
    const int64_t row = blockIdx.y, n = row / C, c = row % C, k = blockIdx.x;
    const int64_t len = (S + chunks - 1) / chunks, s0 = k * len;
    const int64_t s1 = s0 + len < S ? s0 + len : S;
    double a = 0.0, b = 0.0;
    if (cblk == 1) {                        /* plain: the row is contiguous */
        const T *r = x + row * S;
        for (int64_t s = s0 + threadIdx.x; s < s1; s += blockDim.x) {
            double v = act_ld(r, s);
            a += v;
            b += v * v;
        }
    } else {
        for (int64_t s = s0 + threadIdx.x; s < s1; s += blockDim.x) {
            double v = act_ld(x, act_idx(n, c, s, C, S, cblk));
            a += v;
            b += v * v;
        }
    }
    a = nnu_block_sum(a, sh);
    b = nnu_block_sum(b, sh);
    if (threadIdx.x == 0) {
        part[(row * chunks + k) * 2] = a;
        part[(row * chunks + k) * 2 + 1] = b;
    }
}

__global__ void k_in_fwd_finish(const double *part, float *stats, float *co, const float *gamma,
                                const float *beta, int64_t rows, int64_t C, int64_t S,
                                int chunks, float eps) {
    const int64_t row = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    if (row >= rows) return;
    double a = 0.0, b = 0.0;
    for (int k = 0; k < chunks; k++) {
        a += part[(row * chunks + k) * 2];
        b += part[(row * chunks + k) * 2 + 1];
    }
    const int64_t c = row % C;
    double mu = a / (double)S, var = b / (double)S - mu * mu;
    if (var < 0.0) var = 0.0;
    double rstd = 1.0 / sqrt(var + (double)eps);
    stats[row * 2] = (float)mu;
    stats[row * 2 + 1] = (float)rstd;
    co[row * CO_N + CO_SC] = (float)(gamma[c] * rstd);       /* z = sc*x + sh */
    co[row * CO_N + CO_SH] = (float)(beta[c] - gamma[c] * rstd * mu);
    co[row * CO_N + CO_MU] = (float)mu;
    co[row * CO_N + CO_RS] = (float)rstd;
    co[row * CO_N + CO_KG] = co[row * CO_N + CO_KA] = co[row * CO_N + CO_KB] = 0.0f;
}

template <typename T>
__global__ void k_in_fwd_apply(const T *x, T *y, const float *co, int64_t C, int64_t S,
                               int cblk, float slope, int64_t total) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total;
         i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t row = (i / (C * S)) * C + nnu_act_channel(i, C, S, cblk);
        float z = co[row * CO_N + CO_SC] * act_ld(x, i) + co[row * CO_N + CO_SH];
        act_st(y, i, z > 0.0f ? z : slope * z);
    }
}

/* Plain layout: one row per blockIdx.y, no index division; 4 elements per access
 * (act_ld4) when S % 4 == 0. BWD = 0: y = lrelu(sc*x + sh);  BWD = 1: gx from x,
 * gy (gx may alias gy: each element is read before it is written, by one thread). */
template <int BWD, int VEC, typename T>
__global__ void k_in_apply_rows(const T *x, const T *gy, T *out, const float *co,
                                int64_t S, float slope) {
    const int64_t row = blockIdx.y;
    const float *o = co + row * CO_N;
    const float sc = o[CO_SC], sh = o[CO_SH], mu = o[CO_MU], rs = o[CO_RS];
    const float kg = o[CO_KG], ka = o[CO_KA], kb = o[CO_KB];
    const int64_t nv = S / VEC;
    for (int64_t j = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; j < nv;
         j += (int64_t)gridDim.x * blockDim.x) {
        float xv[VEC], gv[VEC], r[VEC];
        if (VEC == 4) {
            act_ld4(x, row * S + 4 * j, xv);
            if (BWD) act_ld4(gy, row * S + 4 * j, gv);
        } else {
            xv[0] = act_ld(x, row * S + j);
            if (BWD) gv[0] = act_ld(gy, row * S + j);
        }
#pragma unroll
        for (int l = 0; l < VEC; l++) {
            const float z = sc * xv[l] + sh;
            if (!BWD) {
                r[l] = z > 0.0f ? z : slope * z;
            } else {
                const float gz = z > 0.0f ? gv[l] : slope * gv[l];
                r[l] = kg * (gz - ka - (xv[l] - mu) * rs * kb);
            }
        }
        if (VEC == 4) act_st4(out, row * S + 4 * j, r);
        else act_st(out, row * S + j, r[0]);
    }
}

/* launches the row-wise apply (plain layout, rows within the grid's y limit) */
template <typename T>
static nnu_status apply_rows(int bwd, const T *x, const T *gy, T *out,
                             const float *co, int64_t rows, int64_t S, float slope) {
    cudaStream_t st = nnu_cuda_ctx_get()->stream;
    const int vec = S % 4 == 0 ? 4 : 1;
    int64_t bx = (S / vec + NNU_CUDA_THREADS - 1) / NNU_CUDA_THREADS;
    int64_t cap = (16 * (int64_t)nnu_cuda_ctx_get()->sm_count + rows - 1) / rows;
    if (bx > cap) bx = cap;
    if (bx < 1) bx = 1;
    dim3 grid((unsigned)bx, (unsigned)rows);
    if (bwd && vec == 4)
        k_in_apply_rows<1, 4, T><<<grid, NNU_CUDA_THREADS, 0, st>>>(x, gy, out, co, S, slope);
    else if (bwd)
        k_in_apply_rows<1, 1, T><<<grid, NNU_CUDA_THREADS, 0, st>>>(x, gy, out, co, S, slope);
    else if (vec == 4)
        k_in_apply_rows<0, 4, T><<<grid, NNU_CUDA_THREADS, 0, st>>>(x, gy, out, co, S, slope);
    else
        k_in_apply_rows<0, 1, T><<<grid, NNU_CUDA_THREADS, 0, st>>>(x, gy, out, co, S, slope);
    NNU_CU_LAUNCH("k_in_apply_rows");
    return NNU_STATUS_OK;
}

static nnu_status check(const nnu_norm_params *p) {
    NNU_CHECK(p->cblk == 1 || p->cblk == 16, NNU_STATUS_ERR_ARG, "instnorm: layout block %d",
              p->cblk);
    NNU_CHECK(p->c % p->cblk == 0, NNU_STATUS_ERR_SHAPE,
              "instnorm: %lld channels do not fit layout block %d", (long long)p->c, p->cblk);
    NNU_CHECK(p->s > 0 && p->n > 0, NNU_STATUS_ERR_SHAPE, "instnorm: empty input");
    NNU_CHECK(p->n * p->c <= 65535, NNU_STATUS_ERR_UNSUPPORTED,
              "instnorm on cuda: N*C = %lld rows exceed the grid limit 65535", (long long)(p->n * p->c));
    return NNU_STATUS_OK;
}

/* scratch: partials (rows*chunks*2 doubles), row sums A,B (rows*2 doubles), coefficients */
static nnu_status scratch(int64_t rows, int chunks, double **part, double *(*ab),
                          float **co) {
    void *buf;
    const size_t np = (size_t)(rows * chunks * 2), nab = (size_t)(rows * 2);
    NNU_TRY(nnu_cuda_buffer(NNU_CUDA_BUF_SCRATCH,
                            (np + nab) * sizeof(double) + (size_t)(rows * CO_N) * sizeof(float),
                            &buf));
    *part = (double *)buf;
    *ab = *part + np;
    *co = (float *)(*ab + nab);
    return NNU_STATUS_OK;
}

/* the forward on storage type T (x, y); the slot below picks T from the table */
template <typename T>
static nnu_status instnorm_fwd(const T *x, T *y, const float *gamma, const float *beta,
                               float *stats, const nnu_norm_params *p) {
    cudaStream_t st = nnu_cuda_ctx_get()->stream;
    const int64_t rows = p->n * p->c, total = rows * p->s;
    const int chunks = nnu_cuda_chunks(rows, p->s);
    double *part, *ab;
    float *co;
    NNU_TRY(scratch(rows, chunks, &part, &ab, &co));
    k_in_fwd_partial<T><<<dim3(chunks, (unsigned)rows), NNU_CUDA_THREADS, 0, st>>>(
        x, part, p->c, p->s, p->cblk, chunks);
    NNU_CU_LAUNCH("k_in_fwd_partial");
    k_in_fwd_finish<<<(unsigned)((rows + 127) / 128), 128, 0, st>>>(
        part, stats, co, gamma, beta, rows, p->c, p->s, chunks, p->eps);
    NNU_CU_LAUNCH("k_in_fwd_finish");
    if (p->cblk == 1 && rows <= 65535)
        return apply_rows(0, x, (const T *)NULL, y, co, rows, p->s, p->slope);
    k_in_fwd_apply<T><<<nnu_cuda_blocks(total), NNU_CUDA_THREADS, 0, st>>>(
        x, y, co, p->c, p->s, p->cblk, p->slope, total);
    NNU_CU_LAUNCH("k_in_fwd_apply");
    return NNU_STATUS_OK;
}

nnu_status nnu_instnorm_fwd_cuda(const nnu_backend *be, const float *x, float *y,
                                 const float *gamma, const float *beta, float *stats,
                                 const nnu_norm_params *p) {
    NNU_TRY(check(p));
    switch (act_type(nnu_cuda_prec(be))) {   /* x, y: activation storage */
    case ACT_BF16:
        return instnorm_fwd((const __nv_bfloat16 *)x, (__nv_bfloat16 *)y, gamma, beta, stats, p);
    case ACT_F16:
        return instnorm_fwd((const __half *)x, (__half *)y, gamma, beta, stats, p);
    default:
        return instnorm_fwd(x, y, gamma, beta, stats, p);
    }
}

/* bwd partials: (sum gz, sum gz*xhat) over chunk k of row */
template <typename T>
__global__ void k_in_bwd_partial(const T *x, const T *gy, const float *stats,
                                 const float *gamma, const float *beta, double *part, int64_t C,
                                 int64_t S, int cblk, float slope, int chunks) {
    __shared__ double sh[32];
    const int64_t row = blockIdx.y, n = row / C, c = row % C, k = blockIdx.x;
    const int64_t len = (S + chunks - 1) / chunks, s0 = k * len;
    const int64_t s1 = s0 + len < S ? s0 + len : S;
    const float mu = stats[row * 2], rs = stats[row * 2 + 1];
    const float sc = gamma[c] * rs, shf = beta[c] - gamma[c] * rs * mu;
    double a = 0.0, b = 0.0;
    for (int64_t s = s0 + threadIdx.x; s < s1; s += blockDim.x) {
        const int64_t i = cblk == 1 ? row * S + s : act_idx(n, c, s, C, S, cblk);
        const float xv = act_ld(x, i), z = sc * xv + shf, g = act_ld(gy, i);
        const float gz = z > 0.0f ? g : slope * g;
        a += gz;
        b += (double)gz * ((xv - mu) * rs);
    }
    a = nnu_block_sum(a, sh);
    b = nnu_block_sum(b, sh);
    if (threadIdx.x == 0) {
        part[(row * chunks + k) * 2] = a;
        part[(row * chunks + k) * 2 + 1] = b;
    }
}

__global__ void k_in_bwd_finish(const double *part, double *ab, float *co, const float *stats,
                                const float *gamma, const float *beta, int64_t rows, int64_t C,
                                int64_t S, int chunks) {
    const int64_t row = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    if (row >= rows) return;
    double a = 0.0, b = 0.0;
    for (int k = 0; k < chunks; k++) {
        a += part[(row * chunks + k) * 2];
        b += part[(row * chunks + k) * 2 + 1];
    }
    const int64_t c = row % C;
    const float mu = stats[row * 2], rs = stats[row * 2 + 1];
    ab[row * 2] = a;
    ab[row * 2 + 1] = b;
    float *o = co + row * CO_N;
    o[CO_SC] = gamma[c] * rs;
    o[CO_SH] = beta[c] - gamma[c] * rs * mu;
    o[CO_MU] = mu;
    o[CO_RS] = rs;
    o[CO_KG] = gamma[c] * rs;                  /* gx = kg*(gz - ka - xhat*kb) */
    o[CO_KA] = (float)(a / (double)S);
    o[CO_KB] = (float)(b / (double)S);
}

/* ggamma[c] += sum_n B(n,c), gbeta[c] += sum_n A(n,c), n in order */
__global__ void k_in_bwd_params(const double *ab, float *ggamma, float *gbeta, int64_t N,
                                int64_t C) {
    const int64_t c = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    if (c >= C) return;
    double a = 0.0, b = 0.0;
    for (int64_t n = 0; n < N; n++) {
        a += ab[(n * C + c) * 2];
        b += ab[(n * C + c) * 2 + 1];
    }
    if (ggamma) ggamma[c] += (float)b;
    if (gbeta) gbeta[c] += (float)a;
}

template <typename T>
__global__ void k_in_bwd_apply(const T *x, const T *gy, T *gx, const float *co,
                               int64_t C, int64_t S, int cblk, float slope, int64_t total) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total;
         i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t row = (i / (C * S)) * C + nnu_act_channel(i, C, S, cblk);
        const float *o = co + row * CO_N;
        const float xv = act_ld(x, i), z = o[CO_SC] * xv + o[CO_SH], g = act_ld(gy, i);
        const float gz = z > 0.0f ? g : slope * g;
        const float xh = (xv - o[CO_MU]) * o[CO_RS];
        act_st(gx, i, o[CO_KG] * (gz - o[CO_KA] - xh * o[CO_KB]));
    }
}

/* the backward on storage type T (x, gy, gx); the slot below picks T */
template <typename T>
static nnu_status instnorm_bwd(const T *x, const T *gy, T *gx, const float *gamma,
                               const float *beta, float *ggamma, float *gbeta,
                               const float *stats, const nnu_norm_params *p) {
    cudaStream_t st = nnu_cuda_ctx_get()->stream;
    const int64_t rows = p->n * p->c, total = rows * p->s;
    const int chunks = nnu_cuda_chunks(rows, p->s);
    double *part, *ab;
    float *co;
    NNU_TRY(scratch(rows, chunks, &part, &ab, &co));
    k_in_bwd_partial<T><<<dim3(chunks, (unsigned)rows), NNU_CUDA_THREADS, 0, st>>>(
        x, gy, stats, gamma, beta, part, p->c, p->s, p->cblk, p->slope, chunks);
    NNU_CU_LAUNCH("k_in_bwd_partial");
    k_in_bwd_finish<<<(unsigned)((rows + 127) / 128), 128, 0, st>>>(
        part, ab, co, stats, gamma, beta, rows, p->c, p->s, chunks);
    NNU_CU_LAUNCH("k_in_bwd_finish");
    if (ggamma || gbeta) {
        k_in_bwd_params<<<(unsigned)((p->c + 127) / 128), 128, 0, st>>>(ab, ggamma, gbeta, p->n,
                                                                      p->c);
        NNU_CU_LAUNCH("k_in_bwd_params");
    }
    if (p->cblk == 1 && rows <= 65535)
        return apply_rows(1, x, gy, gx, co, rows, p->s, p->slope);
    k_in_bwd_apply<T><<<nnu_cuda_blocks(total), NNU_CUDA_THREADS, 0, st>>>(
        x, gy, gx, co, p->c, p->s, p->cblk, p->slope, total);
    NNU_CU_LAUNCH("k_in_bwd_apply");
    return NNU_STATUS_OK;
}

nnu_status nnu_instnorm_bwd_cuda(const nnu_backend *be, const float *x, const float *gy,
                                 float *gx, const float *gamma, const float *beta,
                                 float *ggamma, float *gbeta, const float *stats,
                                 const nnu_norm_params *p) {
    NNU_TRY(check(p));
    switch (act_type(nnu_cuda_prec(be))) {   /* x, gy, gx: activation storage */
    case ACT_BF16:
        return instnorm_bwd((const __nv_bfloat16 *)x, (const __nv_bfloat16 *)gy,
                            (__nv_bfloat16 *)gx, gamma, beta, ggamma, gbeta, stats, p);
    case ACT_F16:
        return instnorm_bwd((const __half *)x, (const __half *)gy, (__half *)gx, gamma, beta,
                            ggamma, gbeta, stats, p);
    default:
        return instnorm_bwd(x, gy, gx, gamma, beta, ggamma, gbeta, stats, p);
    }
}
