/* conv.c: 2-D and 3-D convolution on the CPU via oneDNN (dnnl_conv.c).
 *   x  (N, Cin, D, H, W)    layout cblk_in
 *   w  (Cout, Cin, kd, kh, kw) plain (parameter block), b (Cout)
 *   y  (N, Cout, D', H', W') layout cblk_out, D' = ceil(D / stride) ("same" zero padding)
 * kernel 1 or 3 and stride 1 or 2 per axis (nnu_conv_params_init checks them).
 * bwd_data writes gx (=); bwd_params accumulates gw, gb (+=).
 *
 * 1x1 convolutions to few channels (the segmentation heads: F -> classes, blocked
 * input, plain output) run in C here: oneDNN 2.6 has no JIT kernel for a blocked
 * source with a plain destination and would fall back to its reference code. */
#include "dnnl_conv.h"
#include "ops_cpu.h"

/* the head path: kernel 1, stride 1, a plain output of at most 64 channels */
static int is_head(const nnu_conv_params *p) {
    for (int a = 0; a < 3; a++)
        if (p->kernel[a] != 1 || p->stride[a] != 1) return 0;
    return p->cblk_out == 1 && p->c_out <= 64;
}

/* Work split: (sample, block of 1024 voxels) for fwd and bwd data, channel blocks
 * for the weight gradient; the loops live in NNU_SIMD_CLONES functions. */
enum { HEAD_TILE = 1024 };

/* y[n,k,s] = b[k] + sum_c w[k,c] x[n,c,s] for s in [s0, s1); x in layout cblk_in, y plain */
NNU_SIMD_CLONES static void head_fwd_tile(const float *x, float *y, const float *w,
                                          const float *b, const nnu_conv_params *p, int64_t n,
                                          int64_t s0, int64_t s1) {
    const int64_t C = p->c_in, K = p->c_out, S = p->in[0] * p->in[1] * p->in[2];
    const int L = p->cblk_in;
    const int64_t CB = C / L;
    for (int64_t s = s0; s < s1; s++) {
        float acc[64][16];
        for (int64_t k = 0; k < K; k++)
            for (int l = 0; l < 16; l++) acc[k][l] = 0.0f;
        for (int64_t cb = 0; cb < CB; cb++) {
            const float *xv = x + ((n * CB + cb) * S + s) * L;
            for (int64_t k = 0; k < K; k++) {
                const float *wk = w + k * C + cb * L;
                for (int l = 0; l < L; l++) acc[k][l] += wk[l] * xv[l];
            }
        }
        for (int64_t k = 0; k < K; k++) {
            float d = b ? b[k] : 0.0f;
            for (int l = 0; l < L; l++) d += acc[k][l];
            y[(n * K + k) * S + s] = d;
        }
    }
}

static void head_fwd(const float *x, float *y, const float *w, const float *b,
                     const nnu_conv_params *p) {
    const int64_t S = p->in[0] * p->in[1] * p->in[2], T = (S + HEAD_TILE - 1) / HEAD_TILE;
#pragma omp parallel for collapse(2) schedule(static) if (p->n * S * p->c_in > NNU_OMP_MIN)
    for (int64_t n = 0; n < p->n; n++)
        for (int64_t t = 0; t < T; t++)
            head_fwd_tile(x, y, w, b, p, n, t * HEAD_TILE,
                          (t + 1) * HEAD_TILE < S ? (t + 1) * HEAD_TILE : S);
}

/* gx[n,c,s] = sum_k w[k,c] gy[n,k,s] for s in [s0, s1) */
NNU_SIMD_CLONES static void head_bwd_data_tile(const float *gy, float *gx, const float *w,
                                               const nnu_conv_params *p, int64_t n,
                                               int64_t s0, int64_t s1) {
    const int64_t C = p->c_in, K = p->c_out, S = p->in[0] * p->in[1] * p->in[2];
    const int L = p->cblk_in;
    const int64_t CB = C / L;
    for (int64_t s = s0; s < s1; s++) {
        float g[64];
        for (int64_t k = 0; k < K; k++) g[k] = gy[(n * K + k) * S + s];
        for (int64_t cb = 0; cb < CB; cb++) {
            float *xv = gx + ((n * CB + cb) * S + s) * L;
            float d[16] = {0};
            for (int64_t k = 0; k < K; k++)
                for (int l = 0; l < L; l++) d[l] += w[k * C + cb * L + l] * g[k];
            for (int l = 0; l < L; l++) xv[l] = d[l];
        }
    }
}

static void head_bwd_data(const float *gy, float *gx, const float *w, const nnu_conv_params *p) {
    const int64_t S = p->in[0] * p->in[1] * p->in[2], T = (S + HEAD_TILE - 1) / HEAD_TILE;
#pragma omp parallel for collapse(2) schedule(static) if (p->n * S * p->c_in > NNU_OMP_MIN)
    for (int64_t n = 0; n < p->n; n++)
        for (int64_t t = 0; t < T; t++)
            head_bwd_data_tile(gy, gx, w, p, n, t * HEAD_TILE,
                               (t + 1) * HEAD_TILE < S ? (t + 1) * HEAD_TILE : S);
}

/* gw[k, cb*L + l] += sum_{n,s} gy[n,k,s] x[n,c,s] for one channel block */
NNU_SIMD_CLONES static void head_bwd_params_block(const float *x, const float *gy, float *gw,
                                                  const nnu_conv_params *p, int64_t cb) {
    const int64_t C = p->c_in, K = p->c_out, S = p->in[0] * p->in[1] * p->in[2];
    const int L = p->cblk_in;
    const int64_t CB = C / L;
    double acc[64][16];
    for (int64_t k = 0; k < K; k++)
        for (int l = 0; l < L; l++) acc[k][l] = 0.0;
    for (int64_t n = 0; n < p->n; n++)
        for (int64_t s0 = 0; s0 < S; s0 += 256) {
            /* fp32 partial sums over 256 voxels, then double: accurate and fast */
            float part[64][16];
            for (int64_t k = 0; k < K; k++)
                for (int l = 0; l < 16; l++) part[k][l] = 0.0f;
            int64_t s1 = s0 + 256 < S ? s0 + 256 : S;
            for (int64_t s = s0; s < s1; s++) {
                const float *xv = x + ((n * CB + cb) * S + s) * L;
                for (int64_t k = 0; k < K; k++) {
                    float g = gy[(n * K + k) * S + s];
                    for (int l = 0; l < L; l++) part[k][l] += g * xv[l];
                }
            }
            for (int64_t k = 0; k < K; k++)
                for (int l = 0; l < L; l++) acc[k][l] += part[k][l];
        }
    for (int64_t k = 0; k < K; k++)
        for (int l = 0; l < L; l++) gw[k * C + cb * L + l] += (float)acc[k][l];
}

/* Parallel over channel blocks (each thread owns its gw columns), so the sums run
 * in a fixed order; the bias gradient is summed once, serially in double. */
static void head_bwd_params(const float *x, const float *gy, float *gw, float *gb,
                            const nnu_conv_params *p) {
    const int64_t K = p->c_out, S = p->in[0] * p->in[1] * p->in[2];
    const int64_t CB = p->c_in / p->cblk_in;
#pragma omp parallel for schedule(static) if (p->n * S * p->c_in > NNU_OMP_MIN)
    for (int64_t cb = 0; cb < CB; cb++) head_bwd_params_block(x, gy, gw, p, cb);
    if (gb && p->has_bias)
        for (int64_t k = 0; k < K; k++) {
            double sum = 0.0;
            for (int64_t n = 0; n < p->n; n++)
                for (int64_t s = 0; s < S; s++) sum += gy[(n * K + k) * S + s];
            gb[k] += (float)sum;
        }
}

static nnu_status check(const nnu_conv_params *p) {
    NNU_CHECK(!p->transposed, NNU_STATUS_ERR_ARG,
              "conv: params describe a transposed convolution (use convt_*)");
    NNU_CHECK(p->n > 0 && p->c_in > 0 && p->c_out > 0 && p->out[0] > 0, NNU_STATUS_ERR_ARG,
              "conv: params not initialised (use nnu_conv_params_init)");
    return NNU_STATUS_OK;
}

nnu_status nnu_conv_fwd_cpu(const nnu_backend *be, const float *x, float *y, const float *w,
                            const float *b, const nnu_conv_params *p) {
    NNU_TRY(check(p));
    if (is_head(p)) {
        head_fwd(x, y, w, p->has_bias ? b : NULL, p);
        return NNU_STATUS_OK;
    }
    return nnu_dnnl_conv_run(NNU_DNNL_FWD, p, nnu_backend_is_bf16(be), x, NULL, y, (float *)w, (float *)b);
}

nnu_status nnu_conv_bwd_data_cpu(const nnu_backend *be, const float *gy, float *gx,
                                 const float *w, const nnu_conv_params *p) {
    NNU_TRY(check(p));
    if (is_head(p)) {
        head_bwd_data(gy, gx, w, p);
        return NNU_STATUS_OK;
    }
    return nnu_dnnl_conv_run(NNU_DNNL_BWD_DATA, p, nnu_backend_is_bf16(be), gy, NULL, gx, (float *)w, NULL);
}

nnu_status nnu_conv_bwd_params_cpu(const nnu_backend *be, const float *x, const float *gy,
                                   float *gw, float *gb, const nnu_conv_params *p) {
    NNU_TRY(check(p));
    if (is_head(p)) {
        head_bwd_params(x, gy, gw, gb, p);
        return NNU_STATUS_OK;
    }
    return nnu_dnnl_conv_run(NNU_DNNL_BWD_WEIGHTS, p, nnu_backend_is_bf16(be), x, gy, NULL, gw, gb);
}
