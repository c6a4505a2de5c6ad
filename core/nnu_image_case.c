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
        /* the channel count of every file from its header, then one file at a time into
         * its slot: in memory the image and one file's voxels, never every file at once */
        char shape0[64];
        nnu_tensor_shape_str(ch, shape0, sizeof shape0);
        int64_t total = channels_of(ch);
        for (int c = 1; c < n_images && !st; c++) {
            nnu_image_info hi;
            st = nnu_image_read_header(images[c], &ro, &hi);
            if (!st) total += hi.ndim == 4 ? hi.shape[0] : 1;
        }
        if (!st) st = nnu_tensor_new(NNU_DTYPE_F32, 4, (int64_t[]){total, spatial[0], spatial[1], spatial[2]}, &img);
        const int64_t vox = spatial[0] * spatial[1] * spatial[2];
        int64_t at = 0;                                   /* channels filled */
        for (int c = 0; c < n_images && !st; c++) {
            if (c > 0) {
                nnu_tensor_release(ch);
                ch = NULL;
                st = nnu_image_read_f32(images[c], &ro, NULL, &ch);
            }
            if (!st && !same_spatial(ch, spatial))
                st = NNU_FAIL(NNU_STATUS_ERR_SHAPE, "'%s' has shape %s, channel 0 ('%s') %s", images[c],
                              nnu_tensor_shape_str(ch, b1, sizeof b1), images[0], shape0);
            if (!st && at + channels_of(ch) > total)      /* the file changed since its header was read */
                st = NNU_FAIL(NNU_STATUS_ERR_FORMAT, "'%s': more channels than its header said", images[c]);
            if (!st) {
                memcpy((float *)nnu_tensor_data(img) + at * vox, nnu_tensor_data(ch),
                       (size_t)(channels_of(ch) * vox) * sizeof(float));
                at += channels_of(ch);
            }
        }
        nnu_tensor_release(ch);
        ch = NULL;
        if (!st && at != total)
            st = NNU_FAIL(NNU_STATUS_ERR_FORMAT, "the channel files of '%s' hold fewer channels than their "
                          "headers said", images[0]);
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
