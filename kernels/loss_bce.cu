/* loss_bce.cu: the Dice + BCE loss of region-based training on the GPU, twin of
 * core/ops/loss_dice_bce.c (formulas in that file's header; reference §7.4, region case).
 *
 * logits (N, R, S) plain, one sigmoid channel per region; target (N, S) int32 labels,
 * region membership bit r of label_regions[label] (passed by value: 64 words).
 * fwd  one block per (chunk of S, sample n), as loss.cu: every thread handles voxels,
 *      writes p = sigmoid(z) into the workspace (the CPU's layout: N*R*S floats padded to
 *      64 bytes, then doubles I, Sp, Sy per (n, r), then the CE denominator), accumulates
 *      BCE in double and the per-region sums with warp shuffles into per-warp shared
 *      slots (no atomics); a finish kernel adds the partials in a fixed order
 *      (deterministic). The scalar is assembled on the host in double as the CPU does.
 * bwd  a tiny kernel makes the per-(n, r) Dice coefficients (a_r, b_r), times the
 *      weight, and the BCE factor w / D; then one thread per voxel writes
 *      g_r = p (1 - p) (a_r y_r + b_r) + (w / D)(p - y_r), 0 on ignored voxels.
 * base.terms (NNU_LOSS_CE_ONLY / _DICE_ONLY) drops a term from the host scalar and its part
 *      of the gradient in k_bce_coef (a_r = b_r = 0, or w / D = 0), as the CPU. */
#include <math.h>

#include "cuda_common.h"
#include "ops_cuda.h"

enum { BCE_MAX_R = 32, BCE_THREADS = 256, BCE_WARPS = BCE_THREADS / 32 };

/* the label -> region bits table, by value in the kernel parameters */
typedef struct bce_table { uint32_t bits[NNU_LOSS_MAX_LABELS]; } bce_table;

static size_t prob_bytes(const nnu_loss_params *p) {    /* as core/ops/loss_dice_bce.c */
    size_t b = (size_t)(p->n * p->k * p->s) * sizeof(float);
    return (b + 63) & ~(size_t)63;
}

static nnu_status check(const nnu_loss_region_params *rp) {
    NNU_TRY(nnu_loss_region_check(rp));   /* as the CPU twin */
    NNU_CHECK(rp->base.n <= 65535, NNU_STATUS_ERR_UNSUPPORTED,
              "loss_dice_bce on cuda: batch %lld", (long long)rp->base.n);
    return NNU_STATUS_OK;
}

static bce_table make_table(const nnu_loss_region_params *rp) {
    bce_table t;
    for (int l = 0; l < NNU_LOSS_MAX_LABELS; l++) t.bits[l] = rp->label_regions[l];
    return t;
}

/* region bits of label t: -1 ignored, -2 outside [0, n_labels) */
__device__ __forceinline__ int64_t voxel_bits(int32_t t, int ignore, int n_labels,
                                              const bce_table &tab) {
    if (ignore >= 0 && t == ignore) return -1;
    if (t < 0 || t >= n_labels) return -2;
    return (int64_t)tab.bits[t];
}

__device__ __forceinline__ double warp_sum(double v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

/* partial values per block: [r]: I, [R+r]: Sp, [2R+r]: Sy, [3R]: BCE sum, [3R+1]: M */
__global__ void __launch_bounds__(BCE_THREADS)
k_bce_fwd_partial(const float *logits, const int32_t *target, float *prob, double *part,
                  int *bad, int64_t R, int64_t S, int ignore, int n_labels, bce_table tab,
                  int chunks) {
    __shared__ double acc[BCE_WARPS * 3 * BCE_MAX_R];
    __shared__ double sh[32];
    const int64_t n = blockIdx.y, k = blockIdx.x, V = 3 * R + 2;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    for (int i = threadIdx.x; i < BCE_WARPS * 3 * R; i += blockDim.x) acc[i] = 0.0;
    __syncthreads();
    const int64_t len = (S + chunks - 1) / chunks, s0 = k * len;
    const int64_t s1 = s0 + len < S ? s0 + len : S;
    double bce = 0.0, m = 0.0;
    double *wacc = acc + warp * 3 * R;
    for (int64_t base = s0; base < s1; base += blockDim.x) {   /* uniform per warp */
        const int64_t s = base + threadIdx.x;
        const int active = s < s1;
        int64_t bits = -1;
        if (active) {
            bits = voxel_bits(target[n * S + s], ignore, n_labels, tab);
            if (bits == -2) atomicExch(bad, (int)(n * S + s) + 1);
            if (bits >= 0) m += 1.0;
        }
        const int valid = active && bits >= 0;
        for (int64_t r = 0; r < R; r++) {
            float pr = 0.0f, y = 0.0f;
            if (active) {
                const float z = logits[(n * R + r) * S + s];
                pr = 1.0f / (1.0f + expf(-z));
                prob[(n * R + r) * S + s] = pr;
                if (valid) {
                    y = (float)((bits >> r) & 1);
                    bce += fmax((double)z, 0.0) - (double)z * y + log1p(exp(-fabs((double)z)));
                }
            }
            double vi = warp_sum(valid ? (double)pr * y : 0.0);
            double vp = warp_sum(valid ? (double)pr : 0.0);
            double vy = warp_sum(valid ? (double)y : 0.0);
            if (lane == 0) {
                wacc[r] += vi;
                wacc[R + r] += vp;
                wacc[2 * R + r] += vy;
            }
        }
    }
    bce = nnu_block_sum(bce, sh);
    m = nnu_block_sum(m, sh);
    __syncthreads();
    double *out = part + (n * chunks + k) * V;
    for (int64_t v = threadIdx.x; v < 3 * R; v += blockDim.x) {
        double t = 0.0;
        for (int w = 0; w < BCE_WARPS; w++) t += acc[w * 3 * R + v];   /* fixed order */
        out[v] = t;
    }
    if (threadIdx.x == 0) {
        out[3 * R] = bce;
        out[3 * R + 1] = m;
    }
}

/* stats[(n*R + r)*3 + {I, Sp, Sy}], stats[N*R*3] = the CE denominator; bce_out = BCE sum */
__global__ void k_bce_fwd_finish(const double *part, double *stats, double *bce_out, int64_t N,
                                 int64_t R, int chunks, int has_ignore) {
    const int64_t V = 3 * R + 2;
    for (int64_t i = threadIdx.x; i < N * R; i += blockDim.x) {
        const int64_t n = i / R, r = i % R;
        double I = 0.0, Sp = 0.0, Sy = 0.0;
        for (int k = 0; k < chunks; k++) {
            const double *pp = part + (n * chunks + k) * V;
            I += pp[r];
            Sp += pp[R + r];
            Sy += pp[2 * R + r];
        }
        stats[i * 3] = I;
        stats[i * 3 + 1] = Sp;
        stats[i * 3 + 2] = Sy;
    }
    if (threadIdx.x == 0) {
        double bce = 0.0, m = 0.0;
        for (int64_t n = 0; n < N; n++)
            for (int k = 0; k < chunks; k++) {
                bce += part[(n * chunks + k) * V + 3 * R];
                m += part[(n * chunks + k) * V + 3 * R + 1];
            }
        /* the reference: mean over all elements, or masked sum / max(voxels, 1e-8) */
        stats[N * R * 3] = has_ignore ? fmax(m, 1e-8) : m * (double)R;
        *bce_out = bce;
    }
}

nnu_status nnu_loss_dice_bce_fwd_cuda(const nnu_backend *be, const float *logits,
                                      const int32_t *target, void *ws, double *loss,
                                      const nnu_loss_region_params *rp) {
    (void)be;
    NNU_TRY(check(rp));
    const nnu_loss_params *p = &rp->base;
    cudaStream_t st = nnu_cuda_ctx_get()->stream;
    const int64_t N = p->n, R = p->k, S = p->s, V = 3 * R + 2;
    float *prob = (float *)ws;
    double *stats = (double *)((char *)ws + prob_bytes(p));
    const int chunks = nnu_cuda_chunks(N, S);
    const size_t nstats = (size_t)(N * R * 3 + 1);
    void *scr, *host;
    NNU_TRY(nnu_cuda_buffer(NNU_CUDA_BUF_SCRATCH,
                            (size_t)(N * chunks * V + 2) * sizeof(double), &scr));
    NNU_TRY(nnu_cuda_buffer(NNU_CUDA_BUF_HOST, (nstats + 2) * sizeof(double), &host));
    double *part = (double *)scr, *bce_dev = part + N * chunks * V;
    int *bad_dev = (int *)(bce_dev + 1);
    NNU_CU(cudaMemsetAsync(bad_dev, 0, sizeof(int), st));
    k_bce_fwd_partial<<<dim3(chunks, (unsigned)N), BCE_THREADS, 0, st>>>(
        logits, target, prob, part, bad_dev, R, S, p->ignore_label, rp->n_labels, make_table(rp),
        chunks);
    NNU_CU_LAUNCH("k_bce_fwd_partial");
    k_bce_fwd_finish<<<1, 256, 0, st>>>(part, stats, bce_dev, N, R, chunks, p->ignore_label >= 0);
    NNU_CU_LAUNCH("k_bce_fwd_finish");
    double *h = (double *)host;
    NNU_CU(cudaMemcpyAsync(h, stats, nstats * sizeof(double), cudaMemcpyDeviceToHost, st));
    NNU_CU(cudaMemcpyAsync(h + nstats, bce_dev, 2 * sizeof(double), cudaMemcpyDeviceToHost, st));
    NNU_CU(cudaStreamSynchronize(st));
    int bad = *(int *)(h + nstats + 1);
    NNU_CHECK(bad == 0, NNU_STATUS_ERR_ARG,
              "loss_dice_bce: target label outside [0, %d) at flat index %lld", rp->n_labels,
              (long long)(bad - 1));
    /* the scalar, in double as core/ops/loss_dice_bce.c */
    const double dice = nnu_loss_dice_factor(p) > 0.0
        ? nnu_loss_dice_mean(h, N, R, 0, p->batch_dice, p->smooth) : 0.0;
    *loss = (nnu_loss_ce_factor(p) > 0.0 ? h[nstats] / h[N * R * 3] : 0.0) - dice;
    return NNU_STATUS_OK;
}

/* coef[(n*R + r)*2 + {0,1}] = (a_r, b_r) for sample n, times the weight; coef[N*R*2] = w/D;
 * use_dice = 0: a_r = b_r = 0, use_ce = 0: w/D = 0 (base.terms) */
__global__ void k_bce_coef(const double *stats, float *coef, int64_t N, int64_t R, int batch_dice,
                           float smooth, float w, int use_ce, int use_dice) {
    const double G = (double)(R * (batch_dice ? 1 : N));
    for (int64_t i = threadIdx.x; i < N * R; i += blockDim.x) {
        const int64_t n = i / R, r = i % R;
        double I = 0, Sp = 0, Sy = 0;
        for (int64_t m = batch_dice ? 0 : n; m < (batch_dice ? N : n + 1); m++) {
            I += stats[(m * R + r) * 3];
            Sp += stats[(m * R + r) * 3 + 1];
            Sy += stats[(m * R + r) * 3 + 2];
        }
        double raw = Sp + Sy + smooth, den = fmax(raw, 1e-8), num = 2.0 * I + smooth;
        coef[i * 2] = use_dice ? (float)(w * -2.0 / (G * den)) : 0.0f;
        coef[i * 2 + 1] = use_dice && raw > 1e-8 ? (float)(w * num / (G * den * den)) : 0.0f;
    }
    if (threadIdx.x == 0) coef[N * R * 2] = use_ce ? (float)(w / stats[N * R * 3]) : 0.0f;
}

__global__ void k_bce_bwd(const float *prob, const int32_t *target, const float *coef,
                          float *glogits, int64_t N, int64_t R, int64_t S, int ignore,
                          int n_labels, bce_table tab) {
    const float cw = coef[N * R * 2];
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < N * S;
         i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t n = i / S, s = i - n * S;
        const int64_t bits = voxel_bits(target[i], ignore, n_labels, tab);
        for (int64_t r = 0; r < R; r++) {
            float *g = glogits + (n * R + r) * S + s;
            if (bits < 0) { *g = 0.0f; continue; }
            const float pr = prob[(n * R + r) * S + s], y = (float)((bits >> r) & 1);
            const float *cf = coef + (n * R + r) * 2;
            *g = pr * (1.0f - pr) * (cf[0] * y + cf[1]) + cw * (pr - y);
        }
    }
}

nnu_status nnu_loss_dice_bce_bwd_cuda(const nnu_backend *be, const float *logits,
                                      const int32_t *target, const void *ws, float *glogits,
                                      const nnu_loss_region_params *rp) {
    (void)be;
    (void)logits;
    NNU_TRY(check(rp));
    const nnu_loss_params *p = &rp->base;
    cudaStream_t st = nnu_cuda_ctx_get()->stream;
    const int64_t N = p->n, R = p->k, S = p->s;
    const float *prob = (const float *)ws;
    const double *stats = (const double *)((const char *)ws + prob_bytes(p));
    void *scr;
    NNU_TRY(nnu_cuda_buffer(NNU_CUDA_BUF_SCRATCH, (size_t)(N * R * 2 + 1) * sizeof(float), &scr));
    float *coef = (float *)scr;
    k_bce_coef<<<1, 256, 0, st>>>(stats, coef, N, R, p->batch_dice, p->smooth, p->weight,
                                  nnu_loss_ce_factor(p) > 0.0, nnu_loss_dice_factor(p) > 0.0);
    NNU_CU_LAUNCH("k_bce_coef");
    k_bce_bwd<<<nnu_cuda_blocks(N * S), NNU_CUDA_THREADS, 0, st>>>(
        prob, target, coef, glogits, N, R, S, p->ignore_label, rp->n_labels, make_table(rp));
    NNU_CU_LAUNCH("k_bce_bwd");
    return NNU_STATUS_OK;
}
