/* nnu_overlay.c: slice choice, overlay rendering and PNG I/O of nnu_overlay.h.
 * Layout: select_slice (counts per slice and class, the reference's normalisation),
 * render (float32 arithmetic in numpy's order), case (both), then the RGB PNG
 * writer/reader (libpng, through core/nnu_png.h). */
#include "nnu_overlay.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nnu_png.h"

/* largest label value the per-class table is built for (4 MB of indices) */
#define OVERLAY_MAX_LABEL (1 << 20)

const uint32_t NNU_OVERLAY_COLORS[NNU_OVERLAY_N_COLORS] = {
    0x000000, 0x4363d8, 0xf58231, 0x3cb44b, 0xe6194B, 0x911eb4, 0xffe119, 0xbfef45,
    0x42d4f4, 0xf032e6, 0x000075, 0x9A6324, 0x808000, 0x800000, 0x469990,
};

/* a contiguous copy of t in dtype dt (owned) */
static nnu_status as_dtype(const nnu_tensor *t, nnu_dtype dt, nnu_tensor **out) {
    return nnu_tensor_to_dtype(t, dt, out);
}

nnu_status nnu_overlay_select_slice(const nnu_tensor *seg, int64_t *slice) {
    NNU_CHECK(seg && seg->ndim == 3, NNU_STATUS_ERR_SHAPE, "overlay: seg must be (Z, Y, X)");
    nnu_tensor *s = NULL;
    NNU_TRY(as_dtype(seg, NNU_DTYPE_I32, &s));
    const int32_t *v = (const int32_t *)nnu_tensor_data(s);
    int64_t Z = seg->shape[0], plane = seg->shape[1] * seg->shape[2], n = Z * plane;
    int32_t maxv = 0;
    for (int64_t i = 0; i < n; i++) if (v[i] > maxv) maxv = v[i];
    *slice = 0;
    if (maxv == 0) { nnu_tensor_release(s); return NNU_STATUS_OK; }   /* no foreground: argmax of NaNs */
    if (maxv > OVERLAY_MAX_LABEL) {
        nnu_tensor_release(s);
        return NNU_FAIL(NNU_STATUS_ERR_ARG, "overlay: label value %d is above %d", (int)maxv, OVERLAY_MAX_LABEL);
    }
    /* class index of each present label value, ascending */
    int32_t *idx = malloc(((size_t)maxv + 1) * sizeof *idx);
    if (!idx) { nnu_tensor_release(s); return NNU_FAIL(NNU_STATUS_ERR_OOM, "overlay: out of memory"); }
    for (int32_t k = 0; k <= maxv; k++) idx[k] = -1;
    for (int64_t i = 0; i < n; i++) if (v[i] > 0) idx[v[i]] = 0;
    int ncls = 0;
    for (int32_t k = 1; k <= maxv; k++) if (idx[k] == 0) idx[k] = ncls++;
    double *fg = calloc((size_t)(Z * ncls), sizeof *fg);                  /* (Z, ncls) */
    if (!fg) { free(idx); nnu_tensor_release(s); return NNU_FAIL(NNU_STATUS_ERR_OOM, "overlay: out of memory"); }
    for (int64_t z = 0; z < Z; z++) {
        const int32_t *p = v + z * plane;
        double *row = fg + z * ncls;
        for (int64_t i = 0; i < plane; i++) if (p[i] > 0) row[idx[p[i]]] += 1.0;
    }
    /* The reference fills the table column by column and divides column i by the sum
     * of the whole table at that moment: the earlier columns (already divided) plus
     * column i's counts, later columns still 0. Summed in the table's C order. */
    for (int c = 0; c < ncls; c++) {
        double total = 0.0;
        for (int64_t z = 0; z < Z; z++)
            for (int k = 0; k <= c; k++) total += fg[z * ncls + k];
        for (int64_t z = 0; z < Z; z++) fg[z * ncls + c] /= total;
    }
    double best = 0.0;
    for (int64_t z = 0; z < Z; z++) {
        double m = 0.0;
        for (int c = 0; c < ncls; c++) m += fg[z * ncls + c];
        m /= ncls;
        if (z == 0 || m > best) { best = m; *slice = z; }
    }
    free(fg);
    free(idx);
    nnu_tensor_release(s);
    return NNU_STATUS_OK;
}

static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* rank of x in the sorted distinct values u[0..n) */
static int rank_of(const int32_t *u, int n, int32_t x) {
    int lo = 0, hi = n - 1;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (u[mid] < x) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

nnu_status nnu_overlay_render(const nnu_tensor *image2d, const nnu_tensor *seg2d, double intensity, nnu_tensor **rgb) {
    NNU_CHECK(image2d && seg2d && image2d->ndim == 2 && seg2d->ndim == 2 &&
                  image2d->shape[0] == seg2d->shape[0] && image2d->shape[1] == seg2d->shape[1],
              NNU_STATUS_ERR_SHAPE, "overlay: image and seg must be (Y, X) of the same shape");
    int64_t H = image2d->shape[0], W = image2d->shape[1], n = H * W;
    nnu_tensor *im = NULL, *sg = NULL, *out = NULL;
    float *buf = NULL;
    int32_t *u = NULL;
    nnu_status st = as_dtype(image2d, NNU_DTYPE_F32, &im);
    if (!st) st = as_dtype(seg2d, NNU_DTYPE_I32, &sg);
    int64_t oshape[3] = {H, W, 3};
    if (!st) st = nnu_tensor_new(NNU_DTYPE_U8, 3, oshape, &out);
    if (!st && n > 0) {
        buf = malloc((size_t)n * 3 * sizeof *buf);
        u = malloc((size_t)n * sizeof *u);
        if (!buf || !u) st = NNU_FAIL(NNU_STATUS_ERR_OOM, "overlay: out of memory");
    }
    if (st || n == 0) goto done;
    const float *x = (const float *)nnu_tensor_data(im);
    int32_t *s = (int32_t *)nnu_tensor_data(sg);
    uint8_t *o = (uint8_t *)nnu_tensor_data(out);
    for (int64_t i = 0; i < n; i++) if (s[i] < 0) s[i] = 0;             /* seg[seg < 0] = 0 */
    /* image - min, / max * 255, each step a float32 rounding */
    float mn = x[0];
    for (int64_t i = 1; i < n; i++) if (x[i] < mn) mn = x[i];
    float mx = 0.0f;
    for (int64_t i = 0; i < n; i++) {
        float d = x[i] - mn;
        buf[3 * i] = d;
        if (d > mx) mx = d;
    }
    if (!(mx > 0.0f)) {                          /* constant image: NaN in the reference, black here */
        memset(o, 0, (size_t)n * 3);
        goto done;
    }
    for (int64_t i = 0; i < n; i++) {
        float g = buf[3 * i] / mx;
        g = g * 255.0f;
        buf[3 * i] = buf[3 * i + 1] = buf[3 * i + 2] = g;
    }
    /* colours by rank of the slice's distinct values (0 included) */
    memcpy(u, s, (size_t)n * sizeof *u);
    qsort(u, (size_t)n, sizeof *u, cmp_i32);
    int nu = 0;
    for (int64_t i = 0; i < n; i++) if (nu == 0 || u[i] != u[nu - 1]) u[nu++] = u[i];
    for (int64_t i = 0; i < n; i++) {
        uint32_t c = NNU_OVERLAY_COLORS[rank_of(u, nu, s[i]) % NNU_OVERLAY_N_COLORS];
        const double add[3] = {intensity * (double)((c >> 16) & 0xff), intensity * (double)((c >> 8) & 0xff),
                               intensity * (double)(c & 0xff)};
        for (int k = 0; k < 3; k++) buf[3 * i + k] = (float)((double)buf[3 * i + k] + add[k]);
    }
    float mx2 = 0.0f;
    for (int64_t i = 0; i < 3 * n; i++) if (buf[i] > mx2) mx2 = buf[i];
    for (int64_t i = 0; i < 3 * n; i++) {
        float g = buf[i] / mx2;
        g = g * 255.0f;
        o[i] = (uint8_t)g;                       /* astype(uint8): truncation */
    }
done:
    free(buf);
    free(u);
    nnu_tensor_release(im);
    nnu_tensor_release(sg);
    if (st) { nnu_tensor_release(out); return st; }
    *rgb = out;
    return NNU_STATUS_OK;
}

nnu_status nnu_overlay_case(const nnu_tensor *image, const nnu_tensor *seg, double intensity, int64_t *slice,
                            nnu_tensor **rgb) {
    NNU_CHECK(image && seg && image->ndim == 3 && nnu_tensor_same_shape(image, seg), NNU_STATUS_ERR_SHAPE,
              "overlay: image and seg must be (Z, Y, X) volumes of the same shape");
    int64_t z = 0;
    NNU_TRY(nnu_overlay_select_slice(seg, &z));
    nnu_tensor *im2 = NULL, *sg2 = NULL;
    /* the views only read: the const casts do not write through */
    nnu_status st = nnu_tensor_view_select((nnu_tensor *)image, 0, z, &im2);
    if (!st) st = nnu_tensor_view_select((nnu_tensor *)seg, 0, z, &sg2);
    if (!st) st = nnu_overlay_render(im2, sg2, intensity, rgb);
    nnu_tensor_release(im2);
    nnu_tensor_release(sg2);
    if (!st && slice) *slice = z;
    return st;
}

/* ---- PNG through libpng (core/nnu_png.h): the overlay's (H, W, 3) layout <-> the
 * image layer's (3, 1, H, W) ---- */

nnu_status nnu_png_write_rgb(const char *path, const nnu_tensor *rgb) {
    NNU_CHECK(rgb && rgb->ndim == 3 && rgb->shape[2] == 3 && rgb->dtype == NNU_DTYPE_U8, NNU_STATUS_ERR_SHAPE,
              "png: expected a (H, W, 3) u8 image");
    nnu_tensor *chw = NULL, *c = NULL, *img = NULL;
    nnu_status st = nnu_tensor_view_permute((nnu_tensor *)rgb, (const int[]){2, 0, 1}, &chw);
    if (!st) st = nnu_tensor_contiguous(chw, &c);
    if (!st) st = nnu_tensor_view_reshape(c, 4, (const int64_t[]){3, 1, rgb->shape[0], rgb->shape[1]}, &img);
    if (!st) st = nnu_png_write(path, img, NULL, NULL);
    nnu_tensor_release(img);
    nnu_tensor_release(c);
    nnu_tensor_release(chw);
    return st;
}

nnu_status nnu_png_read_rgb(const char *path, nnu_tensor **rgb) {
    *rgb = NULL;
    nnu_tensor *t = NULL;
    NNU_TRY(nnu_png_read(path, NULL, &t));
    /* (1, H, W) gray or (3|4, 1, H, W) colour; alpha is dropped, gray repeated */
    int64_t ch = t->ndim == 4 ? t->shape[0] : 1, H = t->shape[t->ndim - 2], W = t->shape[t->ndim - 1];
    nnu_status st = t->dtype == NNU_DTYPE_U8 ? NNU_STATUS_OK
                  : NNU_FAIL(NNU_STATUS_ERR_FORMAT, "PNG '%s': 16-bit images are not read as RGB", path);
    nnu_tensor *out = NULL;
    if (!st) st = nnu_tensor_new(NNU_DTYPE_U8, 3, (const int64_t[]){H, W, 3}, &out);
    if (!st) {
        const uint8_t *src = nnu_tensor_data(t);
        uint8_t *o = nnu_tensor_data(out);
        for (int64_t i = 0; i < H * W; i++)
            for (int k = 0; k < 3; k++) o[3 * i + k] = src[(ch >= 3 ? k : 0) * H * W + i];
        *rgb = out;
    }
    nnu_tensor_release(t);
    return st;
}
