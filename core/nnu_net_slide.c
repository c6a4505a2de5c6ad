/* nnu_net_slide.c: the network as nnu_slide_predict's callback (nnu_net_slide.h). */
#include "nnu_net_slide.h"

nnu_status nnu_net_slide_predict(void *ctx, const nnu_tensor *x, nnu_tensor *y) {
    nnu_net *net = ctx;
    NNU_CHECK(net && x && y, NNU_STATUS_ERR_ARG, "net predictor: NULL argument");
    const nnu_net_config *c = nnu_net_get_config(net);
    NNU_CHECK(x->ndim == c->dim + 2 && y->ndim == x->ndim, NNU_STATUS_ERR_SHAPE,
              "net predictor: windows of %d axes (logits %d) for a %d-D net", x->ndim, y->ndim,
              c->dim);
    NNU_CHECK(x->dtype == NNU_DTYPE_F32 && y->dtype == NNU_DTYPE_F32 &&
              nnu_tensor_is_contiguous(x) && nnu_tensor_is_contiguous(y), NNU_STATUS_ERR_SHAPE,
              "net predictor: windows and logits must be contiguous f32");
    NNU_CHECK(x->shape[1] == c->in_channels && y->shape[1] == c->num_classes &&
              y->shape[0] == x->shape[0], NNU_STATUS_ERR_SHAPE,
              "net predictor: windows (%lld, %lld, ...) / logits (%lld, %lld, ...) for a net "
              "with %d inputs and %d classes", (long long)x->shape[0], (long long)x->shape[1],
              (long long)y->shape[0], (long long)y->shape[1], c->in_channels, c->num_classes);
    const int64_t n = x->shape[0];
    int64_t patch[3] = {1, 1, 1};
    for (int a = 0; a < c->dim; a++) {
        patch[3 - c->dim + a] = x->shape[2 + a];
        NNU_CHECK(y->shape[2 + a] == x->shape[2 + a], NNU_STATUS_ERR_SHAPE,
                  "net predictor: logits spatial axis %d is %lld, windows %lld", a,
                  (long long)y->shape[2 + a], (long long)x->shape[2 + a]);
    }
    NNU_TRY(nnu_net_forward(net, nnu_tensor_data(x), n, patch, 0));
    int64_t sh[5];
    const float *out = nnu_net_output(net, 0, sh);
    NNU_CHECK(out != NULL, NNU_STATUS_ERR_ARG, "net predictor: no output after the forward");
    return nnu_net_read(net, out, nnu_tensor_data(y), nnu_tensor_numel(y));
}
