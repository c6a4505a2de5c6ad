/* conv_transpose.c: transposed convolution (U-Net upsampling) on the CPU via oneDNN.
 *   x  (N, Cin, D, H, W)            layout cblk_in
 *   w  (Cin, Cout, sd, sh, sw) plain (PyTorch ConvTranspose layout), b (Cout)
 *   y  (N, Cout, D*sd, H*sh, W*sw)  layout cblk_out; kernel = stride, no padding,
 *      so every output voxel receives exactly one input voxel's contribution.
 * bwd_data writes gx (=); bwd_params accumulates gw, gb (+=). */
#include "dnnl_conv.h"
#include "ops_cpu.h"

static nnu_status check(const nnu_conv_params *p) {
    NNU_CHECK(p->transposed, NNU_STATUS_ERR_ARG,
              "convt: params describe a plain convolution (use conv_*)");
    NNU_CHECK(p->n > 0 && p->c_in > 0 && p->c_out > 0 && p->out[0] > 0, NNU_STATUS_ERR_ARG,
              "convt: params not initialised (use nnu_conv_params_init)");
    return NNU_STATUS_OK;
}

nnu_status nnu_convt_fwd_cpu(const nnu_backend *be, const float *x, float *y, const float *w,
                             const float *b, const nnu_conv_params *p) {
    NNU_TRY(check(p));
    return nnu_dnnl_conv_run(NNU_DNNL_FWD, p, nnu_backend_is_bf16(be), x, NULL, y, (float *)w, (float *)b);
}

nnu_status nnu_convt_bwd_data_cpu(const nnu_backend *be, const float *gy, float *gx,
                                  const float *w, const nnu_conv_params *p) {
    NNU_TRY(check(p));
    return nnu_dnnl_conv_run(NNU_DNNL_BWD_DATA, p, nnu_backend_is_bf16(be), gy, NULL, gx, (float *)w, NULL);
}

nnu_status nnu_convt_bwd_params_cpu(const nnu_backend *be, const float *x, const float *gy,
                                    float *gw, float *gb, const nnu_conv_params *p) {
    NNU_TRY(check(p));
    return nnu_dnnl_conv_run(NNU_DNNL_BWD_WEIGHTS, p, nnu_backend_is_bf16(be), x, gy, NULL, gw, gb);
}
