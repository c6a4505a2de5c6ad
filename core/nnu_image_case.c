/* nnu_image_case.c: reading a case's channel files and label (see nnu_image.h). */
#include "nnu_image.h"

#include <stdlib.h>
#include <string.h>

static int same_spatial(const nnu_tensor *t, const int64_t s[3]) {
    int off = t->ndim - 3;
    return t->shape[off] == s[0] && t->shape[off + 1] == s[1] && t->shape[off + 2] == s[2];
}

static int64_t channels_of(const nnu_tensor *t) { return t->ndim == 4 ? t->shape[0] : 1; }

nnu_status nnu_image_read_case(const char *const *images, int n_images, const char *label,
                               nnu_image_reader reader, nnu_tensor **image, nnu_tensor **label_out,
                               nnu_image_info *info) {
    char b1[64], b2[64];
    NNU_CHECK(images && n_images > 0 && image, NNU_STATUS_ERR_ARG, "read case: no image files");
    *image = NULL;
    if (label_out) *label_out = NULL;
    nnu_image_read_opts ro = {reader, 0};
    nnu_image_info first;
    nnu_tensor *ch = NULL, *img = NULL;
    NNU_TRY(nnu_image_read_f32(images[0], &ro, &first, &ch));
    const int64_t *sp = ch->shape + (ch->ndim - 3);
    int64_t spatial[3] = {sp[0], sp[1], sp[2]};
    nnu_status st = NNU_STATUS_OK;
    if (n_images == 1) {                               /* the common single-file case: no copy */
        if (ch->ndim == 4) {
            img = ch;
        } else {
            st = nnu_tensor_view_reshape(ch, 4, (int64_t[]){1, spatial[0], spatial[1], spatial[2]}, &img);
            nnu_tensor_release(ch);
        }
        ch = NULL;
    } else {
        /* read every file once to know C, keeping them: a case is a few volumes */
        nnu_tensor **parts = calloc((size_t)n_images, sizeof *parts);
        NNU_CHECK(parts, NNU_STATUS_ERR_OOM, "read case: out of memory");
        parts[0] = ch;
        ch = NULL;
        int64_t total = channels_of(parts[0]);
        for (int c = 1; c < n_images && !st; c++) {
            st = nnu_image_read_f32(images[c], &ro, NULL, &parts[c]);
            if (!st && !same_spatial(parts[c], spatial))
                st = NNU_FAIL(NNU_STATUS_ERR_SHAPE, "'%s' has shape %s, channel 0 ('%s') %s", images[c],
                              nnu_tensor_shape_str(parts[c], b1, sizeof b1), images[0],
                              nnu_tensor_shape_str(parts[0], b2, sizeof b2));
            if (!st) total += channels_of(parts[c]);
        }
        if (!st) st = nnu_tensor_new(NNU_DTYPE_F32, 4, (int64_t[]){total, spatial[0], spatial[1], spatial[2]}, &img);
        int64_t vox = spatial[0] * spatial[1] * spatial[2], at = 0;
        for (int c = 0; c < n_images && !st; c++) {
            int64_t n = channels_of(parts[c]) * vox;
            memcpy((float *)nnu_tensor_data(img) + at, nnu_tensor_data(parts[c]), (size_t)n * sizeof(float));
            at += n;
        }
        for (int c = 0; c < n_images; c++) nnu_tensor_release(parts[c]);
        free(parts);
    }
    if (!st && label && label_out) {
        nnu_image_read_opts lo = {reader, 1};
        nnu_tensor *raw = NULL;
        st = nnu_image_read_f32(label, &lo, NULL, &raw);
        if (!st && (raw->ndim != 3 || !same_spatial(raw, spatial)))
            st = NNU_FAIL(NNU_STATUS_ERR_SHAPE, "label '%s' has shape %s, the image %s", label,
                          nnu_tensor_shape_str(raw, b1, sizeof b1), nnu_tensor_shape_str(img, b2, sizeof b2));
        if (!st) st = nnu_tensor_view_reshape(raw, 4, (int64_t[]){1, spatial[0], spatial[1], spatial[2]}, label_out);
        nnu_tensor_release(raw);
    }
    if (st) {
        nnu_tensor_release(img);
        if (label_out) { nnu_tensor_release(*label_out); *label_out = NULL; }
        return st;
    }
    if (info) *info = first;
    *image = img;
    return NNU_STATUS_OK;
}
