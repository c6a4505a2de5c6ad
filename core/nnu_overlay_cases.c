/* nnu_overlay_cases.c: plot_overlay_pngs' cases on the worker pool (see nnu_overlay.h). */
#include <string.h>

#include "nnu_image.h"
#include "nnu_overlay.h"
#include "nnu_parallel.h"
#include "nnu_store.h"

typedef struct overlay_ctx {
    const nnu_overlay_job *jobs;
    double intensity;
    nnu_image_reader reader;
} overlay_ctx;

/* the job's image (Z, Y, X) and segmentation (Z, Y, X), as views of owned tensors */
static nnu_status load_raw(const nnu_overlay_job *j, nnu_image_reader reader, nnu_tensor **image,
                           nnu_tensor **seg) {
    nnu_image_read_opts io = {reader, 0}, so = {reader, 1};
    nnu_tensor *t = NULL;
    NNU_TRY(nnu_image_read_f32(j->image, &io, NULL, &t));
    nnu_status st = NNU_STATUS_OK;
    if (t->ndim == 4) {          /* a file holding several channels (RGB PNG, 4-D NIfTI) */
        if (j->channel >= t->shape[0])
            st = NNU_FAIL(NNU_STATUS_ERR_ARG, "'%s' has %lld channel(s): -channel_idx %d does not exist", j->image,
                          (long long)t->shape[0], j->channel);
        if (!st) st = nnu_tensor_view_select(t, 0, j->channel, image);
    } else if (j->channel > 0) {
        st = NNU_FAIL(NNU_STATUS_ERR_ARG, "'%s' holds one channel: -channel_idx %d does not exist", j->image,
                      j->channel);
    } else {
        *image = t;
        t = NULL;
    }
    nnu_tensor_release(t);
    if (!st) st = nnu_image_read_f32(j->label, &so, NULL, seg);
    if (!st) {
        const nnu_tensor *a = *image, *b = *seg;
        int same = a->ndim == 3 && b->ndim == 3;
        for (int i = 0; same && i < 3; i++) same = a->shape[i] == b->shape[i];
        if (!same) {
            char sa[64], sb[64];
            st = NNU_FAIL(NNU_STATUS_ERR_SHAPE, "image and seg do not have the same 3-D shape: '%s' [%s], '%s' [%s]",
                          j->image, nnu_tensor_shape_str(a, sa, sizeof sa), j->label,
                          nnu_tensor_shape_str(b, sb, sizeof sb));
        }
    }
    return st;
}

static nnu_status load_preprocessed(const nnu_overlay_job *j, nnu_tensor **image, nnu_tensor **seg) {
    nnu_store *s = NULL;
    NNU_TRY(nnu_store_open(j->store, NULL, 0, &s));
    nnu_tensor *data = NULL, *sg = NULL;
    nnu_status st = nnu_store_read_all(s, &data, &sg);
    nnu_store_close(s);
    if (!st && j->channel >= data->shape[0])
        st = NNU_FAIL(NNU_STATUS_ERR_ARG, "This dataset only supports channel index up to %lld (-channel_idx %d; '%s')",
                      (long long)data->shape[0] - 1, j->channel, j->store);
    if (!st) st = nnu_tensor_view_select(data, 0, j->channel, image);
    if (!st) st = nnu_tensor_view_select(sg, 0, 0, seg);
    nnu_tensor_release(data);
    nnu_tensor_release(sg);
    return st;
}

static nnu_status draw_one(int64_t i, int worker, void *vctx) {
    (void)worker;
    const overlay_ctx *c = vctx;
    const nnu_overlay_job *j = &c->jobs[i];
    nnu_tensor *image = NULL, *seg = NULL, *rgb = NULL;
    nnu_status st = j->image ? load_raw(j, c->reader, &image, &seg) : load_preprocessed(j, &image, &seg);
    if (!st) st = nnu_overlay_case(image, seg, c->intensity, NULL, &rgb);
    if (!st) st = nnu_png_write_rgb(j->output, rgb);
    nnu_tensor_release(rgb);
    nnu_tensor_release(image);
    nnu_tensor_release(seg);
    return st;
}

nnu_status nnu_overlay_cases(const nnu_overlay_job *jobs, int64_t n, double intensity, int reader, int n_threads,
                             struct nnu_progress *progress) {
    NNU_CHECK(jobs || n == 0, NNU_STATUS_ERR_ARG, "overlay: no jobs");
    for (int64_t i = 0; i < n; i++)
        NNU_CHECK(jobs[i].output && (jobs[i].image ? jobs[i].label != NULL : jobs[i].store != NULL) &&
                      jobs[i].channel >= 0,
                  NNU_STATUS_ERR_ARG, "overlay: job %lld is incomplete", (long long)i);
    overlay_ctx c = {jobs, intensity, (nnu_image_reader)reader};
    nnu_parallel_opts po = {n_threads, 0, NULL, progress};
    return nnu_parallel_for_opts(n, draw_one, &c, &po);
}
