/* pool.c: average pooling with kernel = stride (CPU), the avgpool of the residual
 * encoder's skip path (BasicBlockD: AvgPool(stride, stride) before the 1x1 projection).
 *
 *   x (N, C, in) -> y (N, C, out), out = in / stride (exact: nnu_pool_params_init),
 *   y[n,c,o] = (sum over the K = sd*sh*sw window, in (kd, kh, kw) order) / K
 *   backward: gx[n,c,i] = gy[n,c,window(i)] / K   (writes =; windows do not overlap)
 * An fp32 sum in that fixed order, then one division (as PyTorch's CPU kernel for
 * contiguous input): the CUDA twin (kernels/pool.cu) computes the same bits.
 *
 * Layout: element (n, c, s) at nnu_act_index (cblk 1 or 16, the same for x and y).
 * Work unit: one output row (n, channel block, od, oh) of out[2] * cblk values;
 * parallel over rows. */
#include "ops_cpu.h"

static void pool_row(const float *x, float *y, const nnu_pool_params *p, int64_t nb,
                     int64_t od, int64_t oh) {
    const int L = p->cblk, sd = p->stride[0], sh = p->stride[1], sw = p->stride[2];
    const int64_t Hi = p->in[1], Wi = p->in[2], Si = p->in[0] * Hi * Wi;
    const int64_t Ho = p->out[1], Wo = p->out[2], So = p->out[0] * Ho * Wo;
    const float k = (float)(sd * sh * sw);
    const float *xb = x + nb * Si * L;          /* (n, channel block) unit of x */
    float *yb = y + nb * So * L + ((od * Ho + oh) * Wo) * L;
    for (int64_t ow = 0; ow < Wo; ow++)
        for (int l = 0; l < L; l++) {
            float s = 0.0f;
            for (int kd = 0; kd < sd; kd++)
                for (int kh = 0; kh < sh; kh++)
                    for (int kw = 0; kw < sw; kw++) {
                        int64_t i = ((od * sd + kd) * Hi + oh * sh + kh) * Wi + ow * sw + kw;
                        s += xb[i * L + l];
                    }
            yb[ow * L + l] = s / k;
        }
}

nnu_status nnu_avgpool_fwd_cpu(const nnu_backend *be, const float *x, float *y,
                               const nnu_pool_params *p) {
    (void)be;
    const int64_t units = p->n * (p->c / p->cblk), rows = units * p->out[0] * p->out[1];
    const int64_t So = p->out[0] * p->out[1] * p->out[2];
#pragma omp parallel for schedule(static) if (units * So * p->cblk > NNU_OMP_MIN)
    for (int64_t r = 0; r < rows; r++) {
        const int64_t oh = r % p->out[1], od = (r / p->out[1]) % p->out[0];
        pool_row(x, y, p, r / (p->out[0] * p->out[1]), od, oh);
    }
    return NNU_STATUS_OK;
}

nnu_status nnu_avgpool_bwd_cpu(const nnu_backend *be, const float *gy, float *gx,
                               const nnu_pool_params *p) {
    (void)be;
    const int L = p->cblk;
    const int64_t Hi = p->in[1], Wi = p->in[2], Si = p->in[0] * Hi * Wi;
    const int64_t Ho = p->out[1], Wo = p->out[2], So = p->out[0] * Ho * Wo;
    const int64_t units = p->n * (p->c / L), rows = units * p->in[0] * Hi;
    const float k = (float)(p->stride[0] * p->stride[1] * p->stride[2]);
    /* one input row (unit, d, h) per iteration: gx[i] = gy[window of i] / K */
#pragma omp parallel for schedule(static) if (units * Si * L > NNU_OMP_MIN)
    for (int64_t r = 0; r < rows; r++) {
        const int64_t h = r % Hi, d = (r / Hi) % p->in[0], nb = r / (p->in[0] * Hi);
        const float *gyr = gy + nb * So * L + ((d / p->stride[0]) * Ho + h / p->stride[1]) * Wo * L;
        float *gxr = gx + nb * Si * L + (d * Hi + h) * Wi * L;
        for (int64_t w = 0; w < Wi; w++)
            for (int l = 0; l < L; l++) gxr[w * L + l] = gyr[(w / p->stride[2]) * L + l] / k;
    }
    return NNU_STATUS_OK;
}
