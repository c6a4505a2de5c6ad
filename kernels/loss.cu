/* loss.cu: softmax and the Dice + CE loss on the GPU, twins of core/ops/softmax.c and
 * core/ops/loss_dice_ce.c (formulas in that file's header; reference §7.4).
 *
 * softmax   x (N, C, S) plain -> y, over C; one thread per voxel (C is the class
 *           count, small); the channel loop strides by S, coalesced across threads.
 * loss fwd  one block per (chunk of S, sample n): every thread handles voxels,
 *           writes p = softmax(z) into the workspace (same layout as the CPU:
 *           N*K*S floats padded to 64 bytes, then doubles I, Sp, Sy per (n, k), then
 *           M) and accumulates CE and the per-class sums; per-class sums are
 *           reduced across each warp with shuffles and kept per warp in shared
 *           memory (no atomics), partials per block go to scratch and one finish
 *           kernel sums them in a fixed order (deterministic). The scalar loss is
 *           assembled on the host in double exactly as the CPU does (the op returns
 *           a host value, so it synchronises).
 * loss bwd  a tiny kernel turns the workspace sums into the per-(n, c) Dice
 *           coefficients a_c, b_c (times the deep-supervision weight), then one
 *           thread per voxel writes glogits = p*(g - <p,g>) + (w/M)(p - y).
 * p->terms  (NNU_LOSS_CE_ONLY / _DICE_ONLY) drops a term from the host scalar and its
 *           part of the gradient in k_loss_coef (a_c = b_c = 0, or w/M = 0), as the CPU. */
#include <math.h>

#include "cuda_common.h"

enum { LOSS_MAX_K = 64, LOSS_THREADS = 256, LOSS_WARPS = LOSS_THREADS / 32 };

/* ---- softmax ---- */

__global__ void k_softmax_fwd(const float *x, float *y, int64_t C, int64_t S, int64_t total) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total;
         i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t n = i / S, s = i - n * S;
        const float *xs = x + n * C * S + s;
        float *ys = y + n * C * S + s;
        float m = xs[0];
        for (int64_t c = 1; c < C; c++) m = fmaxf(m, xs[c * S]);
        double sum = 0.0;
        for (int64_t c = 0; c < C; c++) sum += expf(xs[c * S] - m);
        const float inv = (float)(1.0 / sum);
        for (int64_t c = 0; c < C; c++) ys[c * S] = expf(xs[c * S] - m) * inv;
    }
}

__global__ void k_softmax_bwd(const float *y, const float *gy, float *gx, int64_t C, int64_t S,
                              int64_t total) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total;
         i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t n = i / S, s = i - n * S, o = n * C * S + s;
        double dot = 0.0;
        for (int64_t c = 0; c < C; c++) dot += (double)y[o + c * S] * gy[o + c * S];
        for (int64_t c = 0; c < C; c++) gx[o + c * S] = y[o + c * S] * (float)(gy[o + c * S] - dot);
    }
}

nnu_status nnu_softmax_fwd_cuda(const nnu_backend *be, const float *x, float *y,
                                const nnu_softmax_params *p) {
    (void)be;
    const int64_t total = p->n * p->s;
    if (total <= 0) return NNU_STATUS_OK;
    k_softmax_fwd<<<nnu_cuda_blocks(total), NNU_CUDA_THREADS, 0, nnu_cuda_ctx_get()->stream>>>(
        x, y, p->c, p->s, total);
    NNU_CU_LAUNCH("k_softmax_fwd");
    return NNU_STATUS_OK;
}

nnu_status nnu_softmax_bwd_cuda(const nnu_backend *be, const float *y, const float *gy,
                                float *gx, const nnu_softmax_params *p) {
    (void)be;
    const int64_t total = p->n * p->s;
    if (total <= 0) return NNU_STATUS_OK;
    k_softmax_bwd<<<nnu_cuda_blocks(total), NNU_CUDA_THREADS, 0, nnu_cuda_ctx_get()->stream>>>(
        y, gy, gx, p->c, p->s, total);
    NNU_CU_LAUNCH("k_softmax_bwd");
    return NNU_STATUS_OK;
}

/* ---- Dice + CE ---- */

static size_t prob_bytes(const nnu_loss_params *p) {     /* as core/ops/loss_dice_ce.c */
    size_t b = (size_t)(p->n * p->k * p->s) * sizeof(float);
    return (b + 63) & ~(size_t)63;
}

static nnu_status check(const nnu_loss_params *p) {
    NNU_CHECK(p->n > 0 && p->k >= 2 && p->s > 0, NNU_STATUS_ERR_SHAPE,
              "loss_dice_ce: bad sizes n=%lld k=%lld s=%lld", (long long)p->n,
              (long long)p->k, (long long)p->s);
    NNU_CHECK(p->k <= LOSS_MAX_K, NNU_STATUS_ERR_UNSUPPORTED,
              "loss_dice_ce: %lld classes (max %d)", (long long)p->k, LOSS_MAX_K);
    NNU_CHECK(p->n <= 65535, NNU_STATUS_ERR_UNSUPPORTED, "loss_dice_ce on cuda: batch %lld",
              (long long)p->n);
    return nnu_loss_terms_check(p, "loss_dice_ce");
}

__device__ __forceinline__ double warp_sum(double v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

/* partial values per block: [k]: I, [K+k]: Sp, [2K+k]: Sy, [3K]: CE sum, [3K+1]: M */
__global__ void __launch_bounds__(LOSS_THREADS)
k_loss_fwd_partial(const float *logits, const int32_t *target, float *prob, double *part,
                   int *bad, int64_t K, int64_t S, int ignore, int chunks) {
    __shared__ double acc[LOSS_WARPS * 3 * LOSS_MAX_K];
    __shared__ double sh[32];
    const int64_t n = blockIdx.y, k = blockIdx.x, V = 3 * K + 2;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    for (int i = threadIdx.x; i < LOSS_WARPS * 3 * K; i += blockDim.x) acc[i] = 0.0;
    __syncthreads();
    const int64_t len = (S + chunks - 1) / chunks, s0 = k * len;
    const int64_t s1 = s0 + len < S ? s0 + len : S;
    double ce = 0.0, m = 0.0;
    double *wacc = acc + warp * 3 * K;
    for (int64_t base = s0; base < s1; base += blockDim.x) {   /* uniform per warp */
        const int64_t s = base + threadIdx.x;
        const int active = s < s1;
        const float *zs = logits + n * K * S + s;
        float *ps = prob + n * K * S + s;
        int32_t t = -1;
        int valid = 0;
        float mx = 0.0f;
        double se = 1.0;
        if (active) {
            t = target[n * S + s];
            valid = !(ignore >= 0 && t == ignore);
            if (valid && (t < 0 || t >= K)) { atomicExch(bad, (int)(n * S + s) + 1); valid = 0; }
            mx = zs[0];
            for (int64_t c = 1; c < K; c++) mx = fmaxf(mx, zs[c * S]);
            se = 0.0;
            for (int64_t c = 0; c < K; c++) se += expf(zs[c * S] - mx);
            if (valid) {
                ce += -((double)zs[(int64_t)t * S] - mx - log(se));
                m += 1.0;
            }
        }
        const float inv = (float)(1.0 / se);
        for (int64_t c = 0; c < K; c++) {
            float pc = 0.0f;
            if (active) {
                pc = expf(zs[c * S] - mx) * inv;
                ps[c * S] = pc;
            }
            const int hit = valid && t == c;
            double vi = warp_sum(hit ? (double)pc : 0.0);
            double vp = warp_sum(valid ? (double)pc : 0.0);
            double vy = warp_sum(hit ? 1.0 : 0.0);
            if (lane == 0) {
                wacc[c] += vi;
                wacc[K + c] += vp;
                wacc[2 * K + c] += vy;
            }
        }
    }
    ce = nnu_block_sum(ce, sh);
    m = nnu_block_sum(m, sh);
    __syncthreads();
    double *out = part + (n * chunks + k) * V;
    for (int64_t v = threadIdx.x; v < 3 * K; v += blockDim.x) {
        double t = 0.0;
        for (int w = 0; w < LOSS_WARPS; w++) t += acc[w * 3 * K + v];   /* fixed order */
        out[v] = t;
    }
    if (threadIdx.x == 0) {
        out[3 * K] = ce;
        out[3 * K + 1] = m;
    }
}

/* stats[(n*K + c)*3 + {I, Sp, Sy}], stats[N*K*3] = M; ce_out = CE sum */
__global__ void k_loss_fwd_finish(const double *part, double *stats, double *ce_out, int64_t N,
                                  int64_t K, int chunks) {
    const int64_t V = 3 * K + 2;
    for (int64_t i = threadIdx.x; i < N * K; i += blockDim.x) {
        const int64_t n = i / K, c = i % K;
        double I = 0.0, Sp = 0.0, Sy = 0.0;
        for (int k = 0; k < chunks; k++) {
            const double *pp = part + (n * chunks + k) * V;
            I += pp[c];
            Sp += pp[K + c];
            Sy += pp[2 * K + c];
        }
        stats[i * 3] = I;
        stats[i * 3 + 1] = Sp;
        stats[i * 3 + 2] = Sy;
    }
    if (threadIdx.x == 0) {
        double ce = 0.0, m = 0.0;
        for (int64_t n = 0; n < N; n++)
            for (int k = 0; k < chunks; k++) {
                ce += part[(n * chunks + k) * V + 3 * K];
                m += part[(n * chunks + k) * V + 3 * K + 1];
            }
        stats[N * K * 3] = m;
        *ce_out = ce;
    }
}

nnu_status nnu_loss_dice_ce_fwd_cuda(const nnu_backend *be, const float *logits,
                                     const int32_t *target, void *ws, double *loss,
                                     const nnu_loss_params *p) {
    (void)be;
    NNU_TRY(check(p));
    cudaStream_t st = nnu_cuda_ctx_get()->stream;
    const int64_t N = p->n, K = p->k, S = p->s, V = 3 * K + 2;
    float *prob = (float *)ws;
    double *stats = (double *)((char *)ws + prob_bytes(p));
    const int chunks = nnu_cuda_chunks(N, S);
    const size_t nstats = (size_t)(N * K * 3 + 1);
    void *scr, *host;
    NNU_TRY(nnu_cuda_buffer(NNU_CUDA_BUF_SCRATCH,
                            (size_t)(N * chunks * V + 2) * sizeof(double), &scr));
    NNU_TRY(nnu_cuda_buffer(NNU_CUDA_BUF_HOST, (nstats + 2) * sizeof(double), &host));
    double *part = (double *)scr, *ce_dev = part + N * chunks * V;
    int *bad_dev = (int *)(ce_dev + 1);
    NNU_CU(cudaMemsetAsync(bad_dev, 0, sizeof(int), st));
    k_loss_fwd_partial<<<dim3(chunks, (unsigned)N), LOSS_THREADS, 0, st>>>(
        logits, target, prob, part, bad_dev, K, S, p->ignore_label, chunks);
    NNU_CU_LAUNCH("k_loss_fwd_partial");
    k_loss_fwd_finish<<<1, 256, 0, st>>>(part, stats, ce_dev, N, K, chunks);
    NNU_CU_LAUNCH("k_loss_fwd_finish");
    double *h = (double *)host;
    NNU_CU(cudaMemcpyAsync(h, stats, nstats * sizeof(double), cudaMemcpyDeviceToHost, st));
    NNU_CU(cudaMemcpyAsync(h + nstats, ce_dev, 2 * sizeof(double), cudaMemcpyDeviceToHost, st));
    NNU_CU(cudaStreamSynchronize(st));
    int bad = *(int *)(h + nstats + 1);
    NNU_CHECK(bad == 0, NNU_STATUS_ERR_ARG,
              "loss_dice_ce: target label outside [0, %lld) at flat index %lld", (long long)K,
              (long long)(bad - 1));
    /* the scalar, in double as core/ops/loss_dice_ce.c */
    const double m_sum = h[N * K * 3], ce = m_sum > 0.0 ? h[nstats] / m_sum : 0.0;
    const double dice = nnu_loss_dice_factor(p) > 0.0
        ? nnu_loss_dice_mean(h, N, K, p->do_bg ? 0 : 1, p->batch_dice, p->smooth) : 0.0;
    *loss = (nnu_loss_ce_factor(p) > 0.0 ? ce : 0.0) - dice;
    return NNU_STATUS_OK;
}

/* coef[(n*K + c)*2 + {0,1}] = (a_c, b_c) for sample n, times the weight; coef[N*K*2] = w/M;
 * use_dice = 0: a_c = b_c = 0, use_ce = 0: w/M = 0 (p->terms) */
__global__ void k_loss_coef(const double *stats, float *coef, int64_t N, int64_t K, int batch_dice,
                            int do_bg, float smooth, float w, int use_ce, int use_dice) {
    const int64_t c0 = do_bg ? 0 : 1;
    const double G = (double)((K - c0) * (batch_dice ? 1 : N));
    for (int64_t i = threadIdx.x; i < N * K; i += blockDim.x) {
        const int64_t n = i / K, c = i % K;
        float a = 0.0f, b = 0.0f;
        if (use_dice && c >= c0) {
            double I = 0, Sp = 0, Sy = 0;
            for (int64_t m = batch_dice ? 0 : n; m < (batch_dice ? N : n + 1); m++) {
                I += stats[(m * K + c) * 3];
                Sp += stats[(m * K + c) * 3 + 1];
                Sy += stats[(m * K + c) * 3 + 2];
            }
            double raw = Sp + Sy + smooth, den = fmax(raw, 1e-8), num = 2.0 * I + smooth;
            a = (float)(w * -2.0 / (G * den));
            b = raw > 1e-8 ? (float)(w * num / (G * den * den)) : 0.0f;
        }
        coef[i * 2] = a;
        coef[i * 2 + 1] = b;
    }
    if (threadIdx.x == 0) {
        const double M = stats[N * K * 3];
        coef[N * K * 2] = use_ce && M > 0.0 ? (float)(w / M) : 0.0f;
    }
}

__global__ void k_loss_bwd(const float *prob, const int32_t *target, const float *coef,
                           float *glogits, int64_t N, int64_t K, int64_t S, int ignore) {
    const float inv_m = coef[N * K * 2];
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < N * S;
         i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t n = i / S, s = i - n * S;
        const float *ps = prob + n * K * S + s;
        float *gs = glogits + n * K * S + s;
        const float *cf = coef + n * K * 2;
        const int32_t t = target[i];
        if ((ignore >= 0 && t == ignore) || t < 0 || t >= K) {
            for (int64_t k = 0; k < K; k++) gs[k * S] = 0.0f;
            continue;
        }
        float dot = 0.0f;
        for (int64_t k = 0; k < K; k++)
            dot += ps[k * S] * (cf[k * 2 + 1] + (k == t ? cf[k * 2] : 0.0f));
        for (int64_t k = 0; k < K; k++) {
            const float pk = ps[k * S], g = cf[k * 2 + 1] + (k == t ? cf[k * 2] : 0.0f);
            gs[k * S] = pk * (g - dot) + inv_m * (pk - (k == t ? 1.0f : 0.0f));
        }
    }
}

nnu_status nnu_loss_dice_ce_bwd_cuda(const nnu_backend *be, const float *logits,
                                     const int32_t *target, const void *ws, float *glogits,
                                     const nnu_loss_params *p) {
    (void)be;
    (void)logits;
    NNU_TRY(check(p));
    cudaStream_t st = nnu_cuda_ctx_get()->stream;
    const int64_t N = p->n, K = p->k, S = p->s;
    const float *prob = (const float *)ws;
    const double *stats = (const double *)((const char *)ws + prob_bytes(p));
    void *scr;
    NNU_TRY(nnu_cuda_buffer(NNU_CUDA_BUF_SCRATCH, (size_t)(N * K * 2 + 1) * sizeof(float), &scr));
    float *coef = (float *)scr;
    k_loss_coef<<<1, 256, 0, st>>>(stats, coef, N, K, p->batch_dice, p->do_bg, p->smooth,
                                   p->weight, nnu_loss_ce_factor(p) > 0.0,
                                   nnu_loss_dice_factor(p) > 0.0);
    NNU_CU_LAUNCH("k_loss_coef");
    k_loss_bwd<<<nnu_cuda_blocks(N * S), NNU_CUDA_THREADS, 0, st>>>(prob, target, coef, glogits,
                                                                   N, K, S, p->ignore_label);
    NNU_CU_LAUNCH("k_loss_bwd");
    return NNU_STATUS_OK;
}
