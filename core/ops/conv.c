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

/* y[n,k,s] = b[k] + sum_c w[k,c] x[n,c,s]; x in layout cblk_in, y plain */
static void head_fwd(const float *x, float *y, const float *w, const float *b,
                     const nnu_conv_params *p) {
    const int64_t C = p->c_in, K = p->c_out, S = p->in[0] * p->in[1] * p->in[2];
    const int L = p->cblk_in;
    const int64_t CB = C / L;
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t n = 0; n < p->n; n++)
        for (int64_t s = 0; s < S; s++) {
            float acc[64];
            for (int64_t k = 0; k < K; k++) acc[k] = b ? b[k] : 0.0f;
            for (int64_t cb = 0; cb < CB; cb++) {
                const float *xv = x + ((n * CB + cb) * S + s) * L;
                for (int64_t k = 0; k < K; k++) {
                    const float *wk = w + k * C + cb * L;
                    float d = 0.0f;
                    for (int l = 0; l < L; l++) d += wk[l] * xv[l];
                    acc[k] += d;
                }
            }
            for (int64_t k = 0; k < K; k++) y[(n * K + k) * S + s] = acc[k];
        }
}

/* gx[n,c,s] = sum_k w[k,c] gy[n,k,s] */
static void head_bwd_data(const float *gy, float *gx, const float *w, const nnu_conv_params *p) {
    const int64_t C = p->c_in, K = p->c_out, S = p->in[0] * p->in[1] * p->in[2];
    const int L = p->cblk_in;
    const int64_t CB = C / L;
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t n = 0; n < p->n; n++)
        for (int64_t s = 0; s < S; s++) {
            float g[64];
            for (int64_t k = 0; k < K; k++) g[k] = gy[(n * K + k) * S + s];
            for (int64_t cb = 0; cb < CB; cb++) {
                float *xv = gx + ((n * CB + cb) * S + s) * L;
                for (int l = 0; l < L; l++) {
                    float d = 0.0f;
                    for (int64_t k = 0; k < K; k++) d += w[k * C + cb * L + l] * g[k];
                    xv[l] = d;
                }
            }
        }
}

/* gw[k,c] += sum_{n,s} gy[n,k,s] x[n,c,s]; gb[k] += sum gy. Parallel over channel
 * blocks (each thread owns its gw columns), so sums run in a fixed order. */
static void head_bwd_params(const float *x, const float *gy, float *gw, float *gb,
                            const nnu_conv_params *p) {
    const int64_t C = p->c_in, K = p->c_out, S = p->in[0] * p->in[1] * p->in[2];
    const int L = p->cblk_in;
    const int64_t CB = C / L;
#pragma omp parallel for schedule(static)
    for (int64_t cb = 0; cb < CB; cb++) {
        double acc[64][16];
        for (int64_t k = 0; k < K; k++)
            for (int l = 0; l < L; l++) acc[k][l] = 0.0;
        for (int64_t n = 0; n < p->n; n++)
            for (int64_t s0 = 0; s0 < S; s0 += 256) {
                /* fp32 partial sums over 256 voxels, then double: accurate and fast */
                float part[64][16] = {{0}};
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
    (void)be;
    NNU_TRY(check(p));
    if (is_head(p)) {
        head_fwd(x, y, w, p->has_bias ? b : NULL, p);
        return NNU_STATUS_OK;
    }
    return nnu_dnnl_conv_run(NNU_DNNL_FWD, p, x, NULL, y, (float *)w, (float *)b);
}

nnu_status nnu_conv_bwd_data_cpu(const nnu_backend *be, const float *gy, float *gx,
                                 const float *w, const nnu_conv_params *p) {
    (void)be;
    NNU_TRY(check(p));
    if (is_head(p)) {
        head_bwd_data(gy, gx, w, p);
        return NNU_STATUS_OK;
    }
    return nnu_dnnl_conv_run(NNU_DNNL_BWD_DATA, p, gy, NULL, gx, (float *)w, NULL);
}

nnu_status nnu_conv_bwd_params_cpu(const nnu_backend *be, const float *x, const float *gy,
                                   float *gw, float *gb, const nnu_conv_params *p) {
    (void)be;
    NNU_TRY(check(p));
    if (is_head(p)) {
        head_bwd_params(x, gy, gw, gb, p);
        return NNU_STATUS_OK;
    }
    return nnu_dnnl_conv_run(NNU_DNNL_BWD_WEIGHTS, p, x, gy, NULL, gw, gb);
}
