/* nnu_crop.c: see nnu_crop.h.
 * The hole filling marks the outside-connected background with a scanline flood
 * fill over x-runs: mask values 0 = background not yet reached, 1 = foreground,
 * 2 = background reached from the border. Afterwards 2 -> 0 and 0 -> 1 (holes). */
#include "nnu_crop.h"

#include <stdlib.h>
#include <string.h>

typedef struct { int64_t *v; int64_t n, cap; } stack_t64;

static int stack_push(stack_t64 *s, int64_t x) {
    if (s->n == s->cap) {
        int64_t cap = s->cap ? 2 * s->cap : 4096;
        int64_t *v = realloc(s->v, (size_t)cap * sizeof *v);
        if (!v) return 0;
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = x;
    return 1;
}

static nnu_status check_spatial4(const nnu_tensor *t, const char *what) {
    char b[64];
    NNU_CHECK(t->ndim == 4, NNU_STATUS_ERR_SHAPE, "crop: %s must be (C,D,H,W), got %s", what,
              nnu_tensor_shape_str(t, b, sizeof b));
    return NNU_STATUS_OK;
}

nnu_status nnu_crop_nonzero_mask(const nnu_tensor *image, nnu_tensor **mask_out) {
    NNU_TRY(check_spatial4(image, "image"));
    *mask_out = NULL;
    nnu_tensor *img = NULL, *m = NULL;
    NNU_TRY(nnu_tensor_contiguous((nnu_tensor *)image, &img));
    nnu_status st = nnu_tensor_new(NNU_DTYPE_U8, 3, image->shape + 1, &m);
    if (st) { nnu_tensor_release(img); return st; }
    int64_t C = image->shape[0], n = nnu_tensor_numel(m);
    uint8_t *mp = nnu_tensor_data(m);
    const char *base = nnu_tensor_data(img);
    size_t es = nnu_dtype_size(img->dtype);
    for (int64_t c = 0; c < C; c++) {
        if (img->dtype == NNU_DTYPE_F32) {
            const float *x = (const float *)base + c * n;
            for (int64_t i = 0; i < n; i++) mp[i] |= x[i] != 0.0f;
        } else {
            for (int64_t i = 0; i < n; i++)
                mp[i] |= nnu_dtype_load(img->dtype, base + (size_t)(c * n + i) * es) != 0.0;
        }
    }
    nnu_tensor_release(img);
    *mask_out = m;
    return NNU_STATUS_OK;
}

/* Pushes the start of every 0-run of row (z,y) inside [x0, x1]. */
static int push_row_runs(stack_t64 *s, const uint8_t *m, int64_t row, int64_t x0, int64_t x1) {
    for (int64_t x = x0; x <= x1; x++)
        if (m[row + x] == 0 && (x == x0 || m[row + x - 1] != 0))
            if (!stack_push(s, row + x)) return 0;
    return 1;
}

nnu_status nnu_crop_fill_holes(nnu_tensor *mask) {
    char b[64];
    NNU_CHECK(mask->ndim == 3 && mask->dtype == NNU_DTYPE_U8 && nnu_tensor_is_contiguous(mask),
              NNU_STATUS_ERR_SHAPE, "fill_holes: need a contiguous u8 (D,H,W) mask, got %s %s",
              nnu_dtype_name(mask->dtype), nnu_tensor_shape_str(mask, b, sizeof b));
    int64_t D = mask->shape[0], H = mask->shape[1], W = mask->shape[2];
    if (D == 0 || H == 0 || W == 0) return NNU_STATUS_OK;
    uint8_t *m = nnu_tensor_data(mask);
    stack_t64 s = {0};
    int ok = 1;
    /* seeds: every 0 voxel on the border; rows on the z/y faces, both x ends elsewhere */
    for (int64_t z = 0; z < D && ok; z++)
        for (int64_t y = 0; y < H && ok; y++) {
            int64_t row = (z * H + y) * W;
            if (z == 0 || z == D - 1 || y == 0 || y == H - 1) ok = push_row_runs(&s, m, row, 0, W - 1);
            else {
                if (m[row] == 0) ok = stack_push(&s, row);
                if (ok && m[row + W - 1] == 0) ok = stack_push(&s, row + W - 1);
            }
        }
    while (ok && s.n > 0) {
        int64_t i = s.v[--s.n];
        if (m[i] != 0) continue;
        int64_t row = i - i % W, x = i - row, y = (row / W) % H, z = row / W / H;
        int64_t xl = x, xr = x;
        while (xl > 0 && m[row + xl - 1] == 0) xl--;
        while (xr < W - 1 && m[row + xr + 1] == 0) xr++;
        memset(m + row + xl, 2, (size_t)(xr - xl + 1));
        if (y > 0) ok = ok && push_row_runs(&s, m, row - W, xl, xr);
        if (y < H - 1) ok = ok && push_row_runs(&s, m, row + W, xl, xr);
        if (z > 0) ok = ok && push_row_runs(&s, m, row - H * W, xl, xr);
        if (z < D - 1) ok = ok && push_row_runs(&s, m, row + H * W, xl, xr);
    }
    free(s.v);
    NNU_CHECK(ok, NNU_STATUS_ERR_OOM, "fill_holes: out of memory for the flood-fill stack");
    int64_t n = D * H * W;
    for (int64_t i = 0; i < n; i++) m[i] = m[i] != 2;   /* 2 -> 0 (open background), 0/1 -> 1 */
    return NNU_STATUS_OK;
}

nnu_status nnu_crop_bbox(const nnu_tensor *mask, int64_t bbox[3][2]) {
    NNU_CHECK(mask->ndim == 3 && mask->dtype == NNU_DTYPE_U8 && nnu_tensor_is_contiguous(mask),
              NNU_STATUS_ERR_SHAPE, "crop_bbox: need a contiguous u8 (D,H,W) mask");
    int64_t D = mask->shape[0], H = mask->shape[1], W = mask->shape[2];
    const uint8_t *m = nnu_tensor_data(mask);
    int64_t lo[3] = {D, H, W}, hi[3] = {-1, -1, -1};
    for (int64_t z = 0; z < D; z++)
        for (int64_t y = 0; y < H; y++) {
            const uint8_t *r = m + (z * H + y) * W;
            int64_t x0 = 0, x1 = W - 1;
            while (x0 < W && !r[x0]) x0++;
            if (x0 == W) continue;                    /* empty row */
            while (!r[x1]) x1--;
            if (z < lo[0]) lo[0] = z;
            if (z > hi[0]) hi[0] = z;
            if (y < lo[1]) lo[1] = y;
            if (y > hi[1]) hi[1] = y;
            if (x0 < lo[2]) lo[2] = x0;
            if (x1 > hi[2]) hi[2] = x1;
        }
    int64_t full[3] = {D, H, W};
    for (int a = 0; a < 3; a++) {
        if (hi[0] < 0) { bbox[a][0] = 0; bbox[a][1] = full[a]; }   /* empty mask: whole image */
        else { bbox[a][0] = lo[a]; bbox[a][1] = hi[a] + 1; }
    }
    return NNU_STATUS_OK;
}

/* view t[:, bbox] (t is (C,D,H,W)) */
static nnu_status view_bbox(const nnu_tensor *t, const int64_t bbox[3][2], nnu_tensor **out) {
    nnu_tensor *cur = (nnu_tensor *)t;
    nnu_tensor_retain(cur);
    for (int a = 0; a < 3; a++) {
        nnu_tensor *v = NULL;
        nnu_status st = nnu_tensor_view_narrow(cur, 1 + a, bbox[a][0], bbox[a][1] - bbox[a][0], &v);
        nnu_tensor_release(cur);
        if (st) return st;
        cur = v;
    }
    *out = cur;
    return NNU_STATUS_OK;
}

nnu_status nnu_crop_to_nonzero(const nnu_tensor *image, const nnu_tensor *label,
                               nnu_tensor **image_out, nnu_tensor **label_out,
                               int64_t bbox[3][2], int64_t shape_before[3]) {
    char b1[64], b2[64];
    NNU_TRY(check_spatial4(image, "image"));
    *image_out = *label_out = NULL;
    if (label) {
        NNU_TRY(check_spatial4(label, "label"));
        NNU_CHECK(label->shape[0] == 1 && label->shape[1] == image->shape[1] &&
                  label->shape[2] == image->shape[2] && label->shape[3] == image->shape[3],
                  NNU_STATUS_ERR_SHAPE, "crop: label %s does not fit image %s",
                  nnu_tensor_shape_str(label, b1, sizeof b1), nnu_tensor_shape_str(image, b2, sizeof b2));
        NNU_CHECK(nnu_dtype_is_float(label->dtype) || label->dtype == NNU_DTYPE_I8 ||
                  label->dtype == NNU_DTYPE_I16 || label->dtype == NNU_DTYPE_I32 ||
                  label->dtype == NNU_DTYPE_I64, NNU_STATUS_ERR_ARG,
                  "crop: label dtype %s cannot hold -1", nnu_dtype_name(label->dtype));
    }
    if (shape_before) memcpy(shape_before, image->shape + 1, 3 * sizeof(int64_t));
    nnu_tensor *mask = NULL, *mview = NULL, *mcrop = NULL, *iv = NULL, *lv = NULL, *lab = NULL;
    nnu_status st = nnu_crop_nonzero_mask(image, &mask);
    if (!st) st = nnu_crop_fill_holes(mask);
    if (!st) st = nnu_crop_bbox(mask, bbox);
    if (!st) st = nnu_tensor_view_reshape(mask, 4, (int64_t[]){1, mask->shape[0], mask->shape[1],
                                                               mask->shape[2]}, &mview);
    if (!st) st = view_bbox(mview, bbox, &iv);
    if (!st) st = nnu_tensor_clone(iv, &mcrop);           /* cropped mask, contiguous (1,d,h,w) */
    nnu_tensor_release(iv);
    iv = NULL;
    if (!st) st = view_bbox(image, bbox, &iv);
    if (!st) st = nnu_tensor_clone(iv, image_out);
    if (!st) {
        if (label) {
            st = view_bbox(label, bbox, &lv);
            if (!st) st = nnu_tensor_clone(lv, &lab);
        } else {
            st = nnu_tensor_new(NNU_DTYPE_I8, 4, mcrop->shape, &lab);
        }
    }
    if (!st) {
        /* -1 where the cropped (filled) mask is 0 and the label is 0 */
        const uint8_t *m = nnu_tensor_data(mcrop);
        int64_t n = nnu_tensor_numel(lab);
        char *lp = nnu_tensor_data(lab);
        size_t es = nnu_dtype_size(lab->dtype);
        if (lab->dtype == NNU_DTYPE_F32) {
            float *l = (float *)lp;
            for (int64_t i = 0; i < n; i++) if (!m[i] && l[i] == 0.0f) l[i] = -1.0f;
        } else if (lab->dtype == NNU_DTYPE_I8) {
            int8_t *l = (int8_t *)lp;
            for (int64_t i = 0; i < n; i++) if (!m[i] && l[i] == 0) l[i] = -1;
        } else {
            for (int64_t i = 0; i < n; i++)
                if (!m[i] && nnu_dtype_load(lab->dtype, lp + (size_t)i * es) == 0.0)
                    nnu_dtype_store(lab->dtype, lp + (size_t)i * es, -1.0);
        }
        *label_out = lab;
        lab = NULL;
    }
    nnu_tensor_release(mask); nnu_tensor_release(mview); nnu_tensor_release(mcrop);
    nnu_tensor_release(iv); nnu_tensor_release(lv); nnu_tensor_release(lab);
    if (st) { nnu_tensor_release(*image_out); *image_out = NULL; }
    return st;
}

nnu_status nnu_crop_uncrop(const nnu_tensor *cropped, const int64_t bbox[3][2],
                           const int64_t shape_before[3], double fill, nnu_tensor **out) {
    char b[64];
    NNU_TRY(check_spatial4(cropped, "cropped"));
    for (int a = 0; a < 3; a++)
        NNU_CHECK(bbox[a][0] >= 0 && bbox[a][1] <= shape_before[a] &&
                  bbox[a][1] - bbox[a][0] == cropped->shape[1 + a], NNU_STATUS_ERR_SHAPE,
                  "uncrop: bbox [%lld, %lld) on axis %d does not fit cropped %s in shape %lld",
                  (long long)bbox[a][0], (long long)bbox[a][1], a,
                  nnu_tensor_shape_str(cropped, b, sizeof b), (long long)shape_before[a]);
    *out = NULL;
    nnu_tensor *t = NULL, *v = NULL;
    int64_t shape[4] = {cropped->shape[0], shape_before[0], shape_before[1], shape_before[2]};
    NNU_TRY(nnu_tensor_new(cropped->dtype, 4, shape, &t));
    nnu_status st = fill != 0.0 ? nnu_tensor_fill(t, fill) : NNU_STATUS_OK;
    if (!st) st = view_bbox(t, bbox, &v);
    if (!st) st = nnu_tensor_copy(v, cropped);
    nnu_tensor_release(v);
    if (st) { nnu_tensor_release(t); return st; }
    *out = t;
    return NNU_STATUS_OK;
}
