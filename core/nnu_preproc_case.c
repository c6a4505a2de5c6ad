/* nnu_preproc_case.c: see nnu_preproc_case.h (the reference's DefaultPreprocessor,
 * nnunet-behaviour.md Appendix C). Layout: config defaults; numpy's MT19937 and
 * permutation; loading; the per-case pipeline; class locations; the properties
 * JSON; the parallel driver; the revert. */
#include "nnu_preproc_case.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nnu_crop.h"
#include "nnu_interrupt.h"
#include "nnu_parallel.h"
#include "nnu_progress.h"

nnu_preproc_config nnu_preproc_config_default(void) {
    nnu_preproc_config c;
    memset(&c, 0, sizeof c);
    c.transpose_forward[0] = 0; c.transpose_forward[1] = 1; c.transpose_forward[2] = 2;
    c.spacing_ndim = 3;
    c.data_opts = nnu_resample_opts_data();
    c.seg_opts = nnu_resample_opts_seg();
    c.seed = 1234;
    c.max_locations = 10000;
    c.min_coverage = 0.01;
    return c;
}

/* ---- loading ---- */

nnu_status nnu_preproc_case_load(const char *const *images, int n_images, const char *label,
                                 nnu_image_reader reader, nnu_tensor **image, nnu_tensor **label_out,
                                 nnu_image_info *info) {
    nnu_tensor *lab = NULL;
    NNU_TRY(nnu_image_read_case(images, n_images, label, reader, image, label_out ? &lab : NULL, info));
    if (!lab) return NNU_STATUS_OK;
    nnu_status st = nnu_tensor_to_dtype(lab, NNU_DTYPE_I16, label_out);
    nnu_tensor_release(lab);
    if (st) {
        nnu_tensor_release(*image);
        *image = NULL;
    }
    return st;
}

/* ---- the pipeline ---- */

static nnu_status check_config(const nnu_preproc_config *cfg, int64_t n_channels) {
    NNU_CHECK(cfg, NNU_STATUS_ERR_ARG, "preprocess: NULL configuration");
    NNU_CHECK(cfg->n_channels == n_channels, NNU_STATUS_ERR_SHAPE,
              "preprocess: the case has %lld channels, the plans %d", (long long)n_channels, cfg->n_channels);
    NNU_CHECK(cfg->schemes && cfg->use_mask_for_norm, NNU_STATUS_ERR_ARG, "preprocess: normalization not set");
    NNU_CHECK(cfg->spacing_ndim == 2 || cfg->spacing_ndim == 3, NNU_STATUS_ERR_ARG,
              "preprocess: spacing must have 2 or 3 entries, got %d", cfg->spacing_ndim);
    int seen[3] = {0, 0, 0};
    for (int a = 0; a < 3; a++) {
        int t = cfg->transpose_forward[a];
        NNU_CHECK(t >= 0 && t < 3 && !seen[t], NNU_STATUS_ERR_ARG, "preprocess: transpose_forward is not a permutation");
        seen[t] = 1;
    }
    for (int a = 0; a < cfg->spacing_ndim; a++)
        NNU_CHECK(cfg->spacing[a] > 0, NNU_STATUS_ERR_ARG, "preprocess: configuration spacing must be > 0");
    for (int c = 0; c < cfg->n_channels; c++)
        NNU_CHECK(cfg->schemes[c] != NNU_NORM_CT || cfg->ct, NNU_STATUS_ERR_ARG,
                  "preprocess: channel %d uses CTNormalization but no intensity properties were given", c);
    return NNU_STATUS_OK;
}

nnu_status nnu_preproc_case_run(const nnu_preproc_config *cfg, nnu_tensor *image, nnu_tensor *label,
                                const double spacing[3], nnu_tensor **data, nnu_tensor **seg,
                                nnu_class_locations *locs, nnu_preproc_props *p) {
    char b[64];
    nnu_tensor *imv = NULL, *lv = NULL, *cimg = NULL, *clab = NULL, *rimg = NULL, *rseg = NULL;
    nnu_status st = NNU_STATUS_OK;
    if (!image || !data || !seg || !p || !spacing) st = NNU_FAIL(NNU_STATUS_ERR_ARG, "preprocess: NULL argument");
    if (!st && (image->ndim != 4 || image->dtype != NNU_DTYPE_F32))
        st = NNU_FAIL(NNU_STATUS_ERR_SHAPE, "preprocess: image must be f32 (C,z,y,x), got %s %s",
                      nnu_dtype_name(image->dtype), nnu_tensor_shape_str(image, b, sizeof b));
    if (!st) st = check_config(cfg, image->shape[0]);
    if (!st && label && (label->ndim != 4 || label->shape[0] != 1 || label->shape[1] != image->shape[1] ||
                         label->shape[2] != image->shape[2] || label->shape[3] != image->shape[3]))
        st = NNU_FAIL(NNU_STATUS_ERR_SHAPE, "preprocess: label %s does not fit the image",
                      nnu_tensor_shape_str(label, b, sizeof b));
    if (st) { nnu_tensor_release(image); nnu_tensor_release(label); return st; }
    *data = NULL;
    *seg = NULL;
    const int *tf = cfg->transpose_forward;

    /* 2. transpose (views) and spacing */
    int perm[4] = {0, 1 + tf[0], 1 + tf[1], 1 + tf[2]};
    for (int a = 0; a < 3; a++) {
        p->spacing[a] = spacing[a];
        p->spacing_transposed[a] = spacing[tf[a]];
    }
    st = nnu_tensor_view_permute(image, perm, &imv);
    if (!st && label) st = nnu_tensor_view_permute(label, perm, &lv);
    nnu_tensor_release(image);                 /* the views keep the storage alive */
    nnu_tensor_release(label);

    /* 3. crop to nonzero (contiguous copies; the inputs are released right after) */
    if (!st) st = nnu_crop_to_nonzero(imv, lv, &cimg, &clab, p->bbox, p->shape_before_cropping);
    nnu_tensor_release(imv);
    nnu_tensor_release(lv);

    /* 4. target spacing and shape */
    int64_t new_shape[3] = {0, 0, 0};
    if (!st) {
        for (int a = 0; a < 3; a++) p->shape_after_cropping[a] = cimg->shape[1 + a];
        if (cfg->spacing_ndim == 2) {
            p->target_spacing[0] = p->spacing_transposed[0];   /* 2d: slices are not resampled */
            p->target_spacing[1] = cfg->spacing[0];
            p->target_spacing[2] = cfg->spacing[1];
        } else {
            for (int a = 0; a < 3; a++) p->target_spacing[a] = cfg->spacing[a];
        }
        nnu_resample_new_shape(p->shape_after_cropping, p->spacing_transposed, p->target_spacing, new_shape);
    }

    /* 5. normalize, channel by channel, in place */
    for (int c = 0; c < cfg->n_channels && !st; c++) {
        nnu_tensor *x = NULL;
        st = nnu_tensor_view_select(cimg, 0, c, &x);
        if (!st) st = nnu_normalize(x, cfg->schemes[c], cfg->use_mask_for_norm[c] ? clab : NULL,
                                    cfg->ct ? &cfg->ct[c] : NULL);
        nnu_tensor_release(x);
    }

    /* 6. resample data, then labels */
    if (!st) st = nnu_resample_to_shape(cimg, new_shape, p->spacing_transposed, p->target_spacing,
                                        &cfg->data_opts, &rimg);
    nnu_tensor_release(cimg);
    if (!st) st = nnu_resample_to_shape(clab, new_shape, p->spacing_transposed, p->target_spacing,
                                        &cfg->seg_opts, &rseg);
    nnu_tensor_release(clab);
    if (!st && rseg->dtype != NNU_DTYPE_I16) {            /* synthesised labels are int8 */
        nnu_tensor *t = NULL;
        st = nnu_tensor_to_dtype(rseg, NNU_DTYPE_I16, &t);
        nnu_tensor_release(rseg);
        rseg = t;
    }
    if (!st) for (int a = 0; a < 3; a++) p->shape_after_resampling[a] = rimg->shape[1 + a];

    /* 7. class locations (training cases only) */
    if (locs) { locs->n_keys = 0; locs->keys = NULL; }
    if (!st && locs && label) st = nnu_preproc_class_locations(cfg, rseg, locs);
    if (st) {
        nnu_tensor_release(rimg);
        nnu_tensor_release(rseg);
        return st;
    }
    *data = rimg;
    *seg = rseg;
    return NNU_STATUS_OK;
}

/* ---- class locations ---- */

static int in_key(int v, const int32_t *vals, int n) {
    for (int i = 0; i < n; i++)
        if (vals[i] == v) return 1;
    return 0;
}

nnu_status nnu_preproc_class_locations(const nnu_preproc_config *cfg, const nnu_tensor *seg,
                                       nnu_class_locations *out) {
    char b[64];
    NNU_CHECK(cfg && seg && out, NNU_STATUS_ERR_ARG, "class locations: NULL argument");
    NNU_CHECK(seg->ndim == 4 && seg->shape[0] == 1, NNU_STATUS_ERR_SHAPE,
              "class locations: seg must be (1,D,H,W), got %s", nnu_tensor_shape_str(seg, b, sizeof b));
    out->n_keys = 0;
    out->keys = NULL;
    if (cfg->n_keys <= 0) return NNU_STATUS_OK;
    NNU_CHECK(cfg->key_offsets && cfg->key_values, NNU_STATUS_ERR_ARG, "class locations: keys not set");
    nnu_tensor *s16 = NULL;                                   /* contiguous int16, C order */
    if (seg->dtype == NNU_DTYPE_I16) NNU_TRY(nnu_tensor_contiguous((nnu_tensor *)seg, &s16));
    else NNU_TRY(nnu_tensor_to_dtype(seg, NNU_DTYPE_I16, &s16));
    const int16_t *sv = nnu_tensor_data(s16);
    const int64_t H = seg->shape[2], W = seg->shape[3], N = seg->shape[1] * H * W;
    nnu_nprandom rng;
    nnu_nprandom_seed(&rng, cfg->seed);
    nnu_status st = NNU_STATUS_OK;
    out->keys = calloc((size_t)cfg->n_keys, sizeof *out->keys);
    if (!out->keys) st = NNU_FAIL(NNU_STATUS_ERR_OOM, "class locations: out of memory");
    int64_t *idx = NULL;
    for (int k = 0; k < cfg->n_keys && !st; k++) {
        const int32_t *vals = cfg->key_values + cfg->key_offsets[k];
        int nv = cfg->key_offsets[k + 1] - cfg->key_offsets[k];
        nnu_class_locs *l = &out->keys[k];
        out->n_keys = k + 1;
        l->n_values = nv;
        l->values = malloc((size_t)(nv > 0 ? nv : 1) * sizeof *l->values);
        if (!l->values) { st = NNU_FAIL(NNU_STATUS_ERR_OOM, "class locations: out of memory"); break; }
        memcpy(l->values, vals, (size_t)nv * sizeof *vals);
        int64_t n = 0;                                     /* np.argwhere(seg in key), C order */
        for (int64_t i = 0; i < N; i++) n += in_key(sv[i], vals, nv);
        if (n == 0) continue;                              /* no draws for an empty class */
        free(idx);
        idx = malloc((size_t)n * sizeof *idx);
        if (!idx) { st = NNU_FAIL(NNU_STATUS_ERR_OOM, "class locations: out of memory"); break; }
        for (int64_t i = 0, j = 0; i < N; i++)
            if (in_key(sv[i], vals, nv)) idx[j++] = i;
        int64_t want = n < cfg->max_locations ? n : cfg->max_locations;
        int64_t cover = (int64_t)ceil((double)n * cfg->min_coverage);
        if (cover > want) want = cover;
        if (want > n) want = n;
        /* choice(n, want, replace=False) = all_locs[permutation(n)[:want]]; shuffling
         * the locations themselves with the same swaps gives the same first `want`
         * and needs no second n-element array (8 bytes per voxel of the class in all) */
        nnu_nprandom_shuffle(&rng, idx, n);
        l->coords = malloc((size_t)want * 3 * sizeof *l->coords);
        if (!l->coords) { st = NNU_FAIL(NNU_STATUS_ERR_OOM, "class locations: out of memory"); break; }
        for (int64_t j = 0; j < want; j++) {
            int64_t v = idx[j];
            l->coords[3 * j] = (int32_t)(v / (H * W));
            l->coords[3 * j + 1] = (int32_t)(v / W % H);
            l->coords[3 * j + 2] = (int32_t)(v % W);
        }
        l->n = want;
    }
    free(idx);
    nnu_tensor_release(s16);
    if (st) nnu_class_locations_free(out);
    return st;
}

/* ---- properties JSON ---- */

static void j_str(FILE *f, const char *s) {
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
        else if (*p < 0x20 || *p >= 0x7f) fprintf(f, "\\u%04x", *p);
        else fputc(*p, f);
    }
    fputc('"', f);
}

static void j_num(FILE *f, double v) {
    if (v == floor(v) && fabs(v) < 1e15) fprintf(f, "%.1f", v);   /* 1.0, as Python writes floats */
    else fprintf(f, "%.17g", v);
}

static void j_nums(FILE *f, const double *v, int n) {
    fputc('[', f);
    for (int i = 0; i < n; i++) { if (i) fputs(", ", f); j_num(f, v[i]); }
    fputc(']', f);
}

static void j_ints(FILE *f, const int64_t *v, int n) {
    fputc('[', f);
    for (int i = 0; i < n; i++) fprintf(f, "%s%lld", i ? ", " : "", (long long)v[i]);
    fputc(']', f);
}

/* "nifti": the geometry (and a NIfTI's raw header) in nnunet.image's info layout, so
 * that image.write can reuse it to export predictions */
static void write_nifti_json(FILE *f, const nnu_image_info *in) {
    const nnu_nifti_header *h = &in->hdr;
    fprintf(f, ",\n  \"nifti\": {\"format\": ");
    j_str(f, nnu_image_format_name(in->format));
    fprintf(f, ", \"spatial_dims\": %d, \"spacing\": ", in->spatial_dims);
    j_nums(f, in->spacing, 3);
    fputs(", \"spacing_itk\": ", f);
    j_nums(f, in->spacing_itk, 3);
    fputs(", \"origin\": ", f);
    j_nums(f, in->origin, 3);
    fputs(", \"direction\": ", f);
    j_nums(f, in->direction, 9);
    if (h->version == 0) {                  /* not a NIfTI file: geometry only */
        fputc('}', f);
        return;
    }
    fprintf(f, ",\n    \"header\": {\"version\": %d, \"datatype\": %d, \"dim\": ", h->version, h->datatype);
    j_ints(f, h->dim, 8);
    fputs(", \"pixdim\": ", f);
    j_nums(f, h->pixdim, 8);
    fprintf(f, ", \"qform_code\": %d, \"sform_code\": %d, \"quatern\": ", h->qform_code, h->sform_code);
    double q[3] = {h->quatern_b, h->quatern_c, h->quatern_d}, o[3] = {h->qoffset_x, h->qoffset_y, h->qoffset_z};
    double ip[3] = {h->intent_p1, h->intent_p2, h->intent_p3};
    j_nums(f, q, 3);
    fputs(", \"qoffset\": ", f);
    j_nums(f, o, 3);
    fputs(", \"srow\": ", f);
    j_nums(f, &h->srow[0][0], 12);
    fprintf(f, ", \"xyzt_units\": %d, \"intent_code\": %d, \"intent_p\": ", h->xyzt_units, h->intent_code);
    j_nums(f, ip, 3);
    fputs(", \"intent_name\": ", f);
    j_str(f, h->intent_name);
    fputs(", \"descrip\": ", f);
    j_str(f, h->descrip);
    fputs(", \"aux_file\": ", f);
    j_str(f, h->aux_file);
    fputs("}}", f);
}

nnu_status nnu_preproc_write_properties(const char *path, const char *case_id, const char *plans_id,
                                        const nnu_preproc_props *p, const nnu_class_locations *locs) {
    NNU_CHECK(path && p, NNU_STATUS_ERR_ARG, "properties: NULL argument");
    char tmp[4096];
    int len = snprintf(tmp, sizeof tmp, "%s.tmp", path);
    NNU_CHECK(len > 0 && (size_t)len < sizeof tmp, NNU_STATUS_ERR_ARG, "properties: path too long");
    FILE *f = fopen(tmp, "wb");
    if (!f) return NNU_FAIL(NNU_STATUS_ERR_IO, "cannot create '%s': %s", tmp, strerror(errno));
    fputs("{\n  \"case\": ", f);
    j_str(f, case_id ? case_id : "");
    fputs(",\n  \"plans_identifier\": ", f);
    j_str(f, plans_id ? plans_id : "");
    fputs(",\n  \"spacing\": ", f);
    j_nums(f, p->spacing, 3);
    fputs(",\n  \"shape_before_cropping\": ", f);
    j_ints(f, p->shape_before_cropping, 3);
    fputs(",\n  \"bbox_used_for_cropping\": [", f);
    for (int a = 0; a < 3; a++) {
        fprintf(f, "%s", a ? ", " : "");
        j_ints(f, p->bbox[a], 2);
    }
    fputs("],\n  \"shape_after_cropping_and_before_resampling\": ", f);
    j_ints(f, p->shape_after_cropping, 3);
    fputs(",\n  \"shape_after_resampling\": ", f);
    j_ints(f, p->shape_after_resampling, 3);
    fputs(",\n  \"spacing_transposed\": ", f);
    j_nums(f, p->spacing_transposed, 3);
    fputs(",\n  \"target_spacing\": ", f);
    j_nums(f, p->target_spacing, 3);
    fputs(",\n  \"class_locations\": [", f);
    for (int k = 0; locs && k < locs->n_keys; k++) {
        fprintf(f, "%s{\"key\": [", k ? ", " : "");
        for (int i = 0; i < locs->keys[k].n_values; i++) fprintf(f, "%s%d", i ? ", " : "", (int)locs->keys[k].values[i]);
        fprintf(f, "], \"n\": %lld}", (long long)locs->keys[k].n);
    }
    fputc(']', f);
    if (p->has_nifti) {
        /* as SimpleITK reports it: 2 entries (4 for the direction) for a 2-D image */
        const nnu_image_info *g = &p->nifti;
        int two = g->spatial_dims == 2;
        double dir2[4] = {g->direction[0], g->direction[1], g->direction[3], g->direction[4]};
        fputs(",\n  \"sitk_stuff\": {\"spacing\": ", f);
        j_nums(f, g->spacing_itk, two ? 2 : 3);
        fputs(", \"origin\": ", f);
        j_nums(f, g->origin, two ? 2 : 3);
        fputs(", \"direction\": ", f);
        j_nums(f, two ? dir2 : g->direction, two ? 4 : 9);
        fputc('}', f);
        write_nifti_json(f, g);
    }
    fputs("\n}\n", f);
    int bad = ferror(f);
    if (fclose(f) != 0) bad = 1;
    if (bad) {
        unlink(tmp);
        return NNU_FAIL(NNU_STATUS_ERR_IO, "cannot write '%s': %s", tmp, strerror(errno));
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return NNU_FAIL(NNU_STATUS_ERR_IO, "cannot rename '%s' to '%s': %s", tmp, path, strerror(e));
    }
    return NNU_STATUS_OK;
}

/* ---- whole configuration ---- */

typedef struct dataset_ctx {
    const nnu_preproc_config    *cfg;
    const nnu_preproc_case_spec *cases;
    const nnu_preproc_run_opts  *opts;
} dataset_ctx;

static nnu_status dataset_item(int64_t item, int worker, void *vctx) {
    const dataset_ctx *ctx = vctx;
    const nnu_preproc_case_spec *cs = &ctx->cases[item];
    const nnu_preproc_run_opts *o = ctx->opts;
    char pdata[4096], pjson[4096];
    int n1 = snprintf(pdata, sizeof pdata, "%s/%s.nnu", o->out_dir, cs->id);
    int n2 = snprintf(pjson, sizeof pjson, "%s/%s.json", o->out_dir, cs->id);
    NNU_CHECK(n1 > 0 && n2 > 0 && (size_t)n1 < sizeof pdata && (size_t)n2 < sizeof pjson, NNU_STATUS_ERR_ARG,
              "preprocess: output path too long for case '%s'", cs->id);
    nnu_tensor *image = NULL, *label = NULL, *data = NULL, *seg = NULL;
    nnu_preproc_props props;
    memset(&props, 0, sizeof props);
    nnu_class_locations locs = {0, NULL};
    nnu_status st = nnu_preproc_case_load(cs->images, cs->n_images, cs->label, ctx->cfg->reader, &image,
                                          cs->label ? &label : NULL, &props.nifti);
    if (!st) {
        props.has_nifti = 1;
        double spacing[3] = {props.nifti.spacing[0], props.nifti.spacing[1], props.nifti.spacing[2]};
        st = nnu_preproc_case_run(ctx->cfg, image, label, spacing, &data, &seg, &locs, &props);  /* steals */
    }
    if (!st) st = nnu_preproc_write_properties(pjson, cs->id, o->store.plans_id, &props, &locs);
    if (!st) {
        nnu_store_write_opts so = o->store;
        nnu_store_default_chunk(props.shape_after_resampling, o->patch_ndim ? o->patch : NULL, o->patch_ndim,
                                so.chunk);
        st = nnu_store_write(pdata, data, seg, &locs, &so);  /* the case file is the commit point */
    }
    if (st && st != NNU_STATUS_ERR_INTERRUPTED) {
        /* prefix the message with the case, keep the original text */
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", nnu_last_error());
        st = NNU_FAIL(st, "case '%s': %s", cs->id, msg);
    }
    nnu_tensor_release(data);
    nnu_tensor_release(seg);
    nnu_class_locations_free(&locs);
    return st;
}

nnu_status nnu_preproc_dataset(const nnu_preproc_config *cfg, const nnu_preproc_case_spec *cases,
                               int64_t n_cases, const nnu_preproc_run_opts *opts) {
    NNU_CHECK(cfg && opts && opts->out_dir && (cases || n_cases == 0), NNU_STATUS_ERR_ARG,
              "preprocess: NULL argument");
    if (n_cases == 0) return NNU_STATUS_OK;
    NNU_TRY(check_config(cfg, cfg->n_channels));
    dataset_ctx ctx = {cfg, cases, opts};
    nnu_progress *bar = NULL;
    if (opts->progress) NNU_TRY(nnu_progress_new(opts->label ? opts->label : "preprocess", n_cases, &bar));
    nnu_parallel_opts po;
    memset(&po, 0, sizeof po);
    po.n_threads = opts->n_threads;
    po.item_status = opts->case_status;
    po.progress = bar;
    nnu_status st = nnu_parallel_for_opts(n_cases, dataset_item, &ctx, &po);
    nnu_progress_finish(bar);
    nnu_progress_free(bar);
    return st;
}

typedef struct { nnu_dtype dt; double v; int64_t n; } zero_ctx;
static void zero_one(void *e, void *vctx) {
    zero_ctx *c = vctx;
    if (nnu_dtype_load(c->dt, e) == c->v) { nnu_dtype_store(c->dt, e, 0.0); c->n++; }
}

nnu_status nnu_preproc_zero_value(nnu_tensor *t, double value, int64_t *n) {
    NNU_CHECK(t, NNU_STATUS_ERR_ARG, "zero_value: NULL tensor");
    zero_ctx c = {t->dtype, value, 0};
    if (t->dtype == NNU_DTYPE_F32 && nnu_tensor_is_contiguous(t)) {
        float *x = nnu_tensor_data(t), v = (float)value;
        for (int64_t i = 0; i < nnu_tensor_numel(t); i++)
            if (x[i] == v && (double)v == value) { x[i] = 0.0f; c.n++; }
    } else {
        nnu_tensor_foreach(t, zero_one, &c);
    }
    if (n) *n = c.n;
    return NNU_STATUS_OK;
}

/* ---- revert ---- */

nnu_status nnu_preproc_revert_seg(const nnu_tensor *seg, const nnu_preproc_props *p,
                                  const int transpose_forward[3], const nnu_resample_opts *seg_opts,
                                  nnu_tensor **out) {
    char b[64];
    NNU_CHECK(seg && p && transpose_forward && out, NNU_STATUS_ERR_ARG, "revert: NULL argument");
    NNU_CHECK(seg->ndim == 4 && seg->shape[0] == 1, NNU_STATUS_ERR_SHAPE,
              "revert: seg must be (1,D,H,W), got %s", nnu_tensor_shape_str(seg, b, sizeof b));
    nnu_resample_opts o = seg_opts ? *seg_opts : nnu_resample_opts_seg();
    int tb[3];
    for (int a = 0; a < 3; a++) tb[transpose_forward[a]] = a;
    nnu_tensor *r = NULL, *c = NULL, *u = NULL, *v = NULL, *s = NULL;
    nnu_status st = nnu_resample_to_shape(seg, p->shape_after_cropping, p->target_spacing,
                                          p->spacing_transposed, &o, &r);
    if (!st) st = nnu_tensor_to_dtype(r, NNU_DTYPE_I16, &c);       /* a fresh contiguous copy */
    if (!st) {
        int16_t *x = nnu_tensor_data(c);
        for (int64_t i = 0; i < nnu_tensor_numel(c); i++)
            if (x[i] < 0) x[i] = 0;                                  /* -1 outside the mask -> background */
    }
    if (!st) st = nnu_crop_uncrop(c, p->bbox, p->shape_before_cropping, 0.0, &u);
    int perm[4] = {0, 1 + tb[0], 1 + tb[1], 1 + tb[2]};
    if (!st) st = nnu_tensor_view_permute(u, perm, &v);
    if (!st) st = nnu_tensor_view_select(v, 0, 0, &s);
    if (!st) st = nnu_tensor_clone(s, out);
    nnu_tensor_release(r); nnu_tensor_release(c); nnu_tensor_release(u);
    nnu_tensor_release(v); nnu_tensor_release(s);
    return st;
}
