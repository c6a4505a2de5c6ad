/* nnu_cascade.c: see nnu_cascade.h. */
#include "nnu_cascade.h"

#include <string.h>

#include "nnu_dtype.h"

void nnu_cascade_onehot_i16(const int16_t *seg, int64_t n, int n_labels, const int32_t *labels, float *out) {
    for (int k = 0; k < n_labels; k++) {
        float *o = out + (int64_t)k * n;
        int32_t l = labels[k];
        for (int64_t i = 0; i < n; i++) o[i] = seg[i] == l ? 1.0f : 0.0f;
    }
}

nnu_status nnu_cascade_stack_onehot(const nnu_tensor *data, const nnu_tensor *seg, int n_labels,
                                    const int32_t *labels, nnu_tensor **out) {
    NNU_CHECK(data && seg && out && (labels || n_labels == 0), NNU_STATUS_ERR_ARG, "cascade_stack_onehot: NULL argument");
    *out = NULL;
    char b1[64], b2[64];
    int sd = seg->ndim == 4 ? 1 : 0;   /* first spatial axis of seg */
    int ok = data->ndim == 4 && data->dtype == NNU_DTYPE_F32 && (seg->ndim == 3 || (seg->ndim == 4 && seg->shape[0] == 1));
    for (int a = 0; ok && a < 3; a++) ok = seg->shape[sd + a] == data->shape[1 + a];
    NNU_CHECK(ok, NNU_STATUS_ERR_SHAPE, "cascade_stack_onehot: data %s (f32 (C,D,H,W)) and seg %s ((1,D,H,W) or "
              "(D,H,W)) do not fit", nnu_tensor_shape_str(data, b1, sizeof b1), nnu_tensor_shape_str(seg, b2, sizeof b2));
    NNU_CHECK(n_labels >= 0 && n_labels <= NNU_CASCADE_MAX_LABELS, NNU_STATUS_ERR_ARG,
              "cascade_stack_onehot: %d labels (at most %d)", n_labels, NNU_CASCADE_MAX_LABELS);
    int64_t C = data->shape[0], n = data->shape[1] * data->shape[2] * data->shape[3];
    int64_t os[4] = {C + n_labels, data->shape[1], data->shape[2], data->shape[3]};
    nnu_tensor *o = NULL, *s16 = NULL, *dv = NULL;
    NNU_TRY(nnu_tensor_new(NNU_DTYPE_F32, 4, os, &o));
    /* image channels: copy through a view of the first C channels (handles any strides) */
    nnu_status st = nnu_tensor_view_narrow(o, 0, 0, C, &dv);
    if (st == NNU_STATUS_OK) st = nnu_tensor_copy(dv, data);
    nnu_tensor_release(dv);
    /* seg as contiguous int16 (labels fit: the stores keep seg in [-1, 32767]) */
    if (st == NNU_STATUS_OK) st = nnu_tensor_to_dtype(seg, NNU_DTYPE_I16, &s16);
    if (st == NNU_STATUS_OK)
        nnu_cascade_onehot_i16(nnu_tensor_data(s16), n, n_labels, labels, (float *)nnu_tensor_data(o) + C * n);
    nnu_tensor_release(s16);
    if (st != NNU_STATUS_OK) { nnu_tensor_release(o); return st; }
    *out = o;
    return NNU_STATUS_OK;
}
