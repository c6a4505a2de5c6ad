/* pipeline.c: executes a table of augmentation steps on one sample (§8.2).
 *
 * The table is plain data (nnu_aug_pipeline), built once from a Lua description
 * (lua/nnunet/augment_pipeline.lua → lua/l_augment.c) and read concurrently by the
 * loader's worker threads. Per sample, each step fires with probability p; inside,
 * channels are treated with p_per_channel and values are drawn from the step's
 * range, all from the sample's own nnu_rng. The spatial step, if present, is the
 * first one and always runs (it turns the enlarged crop into the patch); its own
 * rotation / scaling / elastic decisions use p_rotation, p_scaling, p_elastic. */
#include <math.h>
#include <string.h>

#include "aug_internal.h"

static const char *const kind_names[NNU_AUG_KIND_COUNT] = {
    "spatial", "noise", "blur", "brightness", "contrast", "lowres", "gamma", "mirror", "mask", "remove_label"};

const char *nnu_aug_kind_name(nnu_aug_kind k) {
    return (int)k >= 0 && k < NNU_AUG_KIND_COUNT ? kind_names[k] : "?";
}

int nnu_aug_kind_from_name(const char *name) {
    for (int k = 0; k < NNU_AUG_KIND_COUNT; k++)
        if (strcmp(name, kind_names[k]) == 0) return k;
    return -1;
}

double nnu_aug_sample(nnu_rng *rng, const nnu_aug_range *r) {
    if (r->bg) {
        /* BGContrast: a coin decides between the part below 1 and the part above */
        if (nnu_rng_uniform(rng) < 0.5 && r->lo < 1.0) return nnu_rng_range(rng, r->lo, 1.0);
        return nnu_rng_range(rng, r->lo > 1.0 ? r->lo : 1.0, r->hi);
    }
    return nnu_rng_range(rng, r->lo, r->hi);
}

void nnu_aug_step_init(nnu_aug_step *s, nnu_aug_kind k) {
    memset(s, 0, sizeof *s);
    s->kind = k;
    s->p = 1.0;
    s->p_per_channel = 1.0;
    s->p_per_axis = 0.5;
    s->range.lo = s->range.hi = 1.0;
    s->scaling.lo = s->scaling.hi = 1.0;
    s->p_retain_stats = 1.0;
    s->preserve_range = 1;
    s->from_label = -1;
    s->to_label = 0;
    s->border_seg = -1;
}

static int prob_ok(double p) { return p >= 0.0 && p <= 1.0; }
static int range_ok(const nnu_aug_range *r) { return isfinite(r->lo) && isfinite(r->hi) && r->lo <= r->hi; }

nnu_status nnu_aug_pipeline_check(const nnu_aug_pipeline *p) {
    NNU_CHECK(p, NNU_STATUS_ERR_ARG, "pipeline: NULL");
    NNU_CHECK(p->n_steps >= 0 && p->n_steps <= NNU_AUG_MAX_STEPS, NNU_STATUS_ERR_ARG,
              "pipeline: %d steps (at most %d)", p->n_steps, NNU_AUG_MAX_STEPS);
    NNU_CHECK(p->dim == 2 || p->dim == 3, NNU_STATUS_ERR_ARG, "pipeline: dim %d (2 or 3)", p->dim);
    NNU_CHECK(p->dim == 3 || (p->patch[0] == 1 && !p->dummy_2d), NNU_STATUS_ERR_ARG,
              "pipeline: a 2-D configuration has patch[0] == 1 and no dummy-2D (patch[0] %lld)",
              (long long)p->patch[0]);
    for (int a = 0; a < 3; a++)
        NNU_CHECK(p->patch[a] >= 1, NNU_STATUS_ERR_ARG, "pipeline: patch axis %d is %lld", a, (long long)p->patch[a]);
    for (int i = 0; i < p->n_steps; i++) {
        const nnu_aug_step *s = &p->step[i];
        const char *nm = nnu_aug_kind_name(s->kind);
        NNU_CHECK((int)s->kind >= 0 && s->kind < NNU_AUG_KIND_COUNT, NNU_STATUS_ERR_ARG,
                  "pipeline step %d: unknown kind %d", i + 1, (int)s->kind);
        NNU_CHECK(prob_ok(s->p) && prob_ok(s->p_per_channel) && prob_ok(s->p_per_axis) && prob_ok(s->p_invert) &&
                      prob_ok(s->p_retain_stats),
                  NNU_STATUS_ERR_ARG, "pipeline step %d (%s): a probability lies outside [0, 1]", i + 1, nm);
        NNU_CHECK(range_ok(&s->range), NNU_STATUS_ERR_ARG, "pipeline step %d (%s): range [%g, %g]", i + 1, nm,
                  s->range.lo, s->range.hi);
        switch (s->kind) {
        case NNU_AUG_SPATIAL:
            NNU_CHECK(i == 0, NNU_STATUS_ERR_ARG, "pipeline step %d: the spatial step must be the first", i + 1);
            NNU_CHECK(prob_ok(s->p_rotation) && prob_ok(s->p_scaling) && prob_ok(s->p_elastic), NNU_STATUS_ERR_ARG,
                      "pipeline step 1 (spatial): p_rotation/p_scaling/p_elastic outside [0, 1]");
            NNU_CHECK(range_ok(&s->scaling) && s->scaling.lo > 0.0, NNU_STATUS_ERR_ARG,
                      "pipeline step 1 (spatial): scaling [%g, %g]", s->scaling.lo, s->scaling.hi);
            for (int a = 0; a < 3; a++)
                NNU_CHECK(s->rotation[a][0] <= s->rotation[a][1], NNU_STATUS_ERR_ARG,
                          "pipeline step 1 (spatial): rotation range of axis %d", a);
            NNU_CHECK(s->p_elastic == 0.0 || (range_ok(&s->alpha) && range_ok(&s->sigma) && s->alpha.lo >= 0.0 &&
                                              s->sigma.lo > 0.0),
                      NNU_STATUS_ERR_ARG, "pipeline step 1 (spatial): elastic alpha/sigma ranges (sigma > 0)");
            break;
        case NNU_AUG_NOISE:
        case NNU_AUG_BLUR:
            NNU_CHECK(s->range.lo >= 0.0 && s->range.hi <= 20.0, NNU_STATUS_ERR_ARG,
                      "pipeline step %d (%s): sigma range [%g, %g] outside [0, 20]", i + 1, nm, s->range.lo,
                      s->range.hi);
            break;
        case NNU_AUG_LOWRES:
            NNU_CHECK(s->range.lo > 0.0 && s->range.hi <= 1.0, NNU_STATUS_ERR_ARG,
                      "pipeline step %d (lowres): zoom range [%g, %g] outside (0, 1]", i + 1, s->range.lo,
                      s->range.hi);
            break;
        case NNU_AUG_GAMMA:
            NNU_CHECK(s->range.lo > 0.0, NNU_STATUS_ERR_ARG, "pipeline step %d (gamma): gamma must be > 0", i + 1);
            break;
        default:
            break;
        }
    }
    return NNU_STATUS_OK;
}

/* ---- execution ---- */

static nnu_status run_spatial(const nnu_aug_pipeline *p, const nnu_aug_step *s, nnu_aug_buf *in, nnu_aug_buf *out,
                              nnu_rng *rng, nnu_aug_ws *ws) {
    nnu_aug_spatial_params sp;
    nnu_aug_spatial_params_init(&sp);
    sp.dim = (p->dim == 2 || p->dummy_2d) ? 2 : 3;
    sp.seg_nearest = s->seg_nearest;
    sp.border_seg = s->border_seg;
    /* decisions in the reference's order: rotation, scaling, deformation */
    int do_rot = nnu_rng_bernoulli(rng, s->p_rotation);
    int do_scale = nnu_rng_bernoulli(rng, s->p_scaling);
    int do_el = nnu_rng_bernoulli(rng, s->p_elastic);
    if (do_rot)
        for (int a = 0; a < 3; a++) sp.angle[a] = nnu_rng_range(rng, s->rotation[a][0], s->rotation[a][1]);
    if (do_scale) sp.scale[0] = sp.scale[1] = sp.scale[2] = nnu_aug_sample(rng, &s->scaling);
    if (do_el) {
        sp.elastic = 1;
        sp.alpha = nnu_aug_sample(rng, &s->alpha);
        sp.sigma = nnu_aug_sample(rng, &s->sigma);
    }
    sp.affine = do_rot || do_scale;
    return nnu_aug_spatial(in, out, &sp, rng, ws);
}

static nnu_status run_step(const nnu_aug_pipeline *p, const nnu_aug_step *s, nnu_aug_buf *b, nnu_rng *rng,
                           nnu_aug_ws *ws) {
    int64_t n = b->shape[0] * b->shape[1] * b->shape[2];
    double shared = 0.0;
    if (s->kind == NNU_AUG_NOISE || s->kind == NNU_AUG_BRIGHTNESS || s->kind == NNU_AUG_CONTRAST ||
        s->kind == NNU_AUG_LOWRES || s->kind == NNU_AUG_GAMMA)
        if (s->sync_channels) shared = nnu_aug_sample(rng, &s->range);
    switch (s->kind) {
    case NNU_AUG_MIRROR: {
        int axes = 0;
        for (int a = 0; a < 3; a++)
            if ((s->axes & (1 << a)) && nnu_rng_bernoulli(rng, s->p_per_axis)) axes |= 1 << a;
        nnu_aug_mirror(b, axes);
        return NNU_STATUS_OK;
    }
    case NNU_AUG_MASK:
        nnu_aug_mask(b, (unsigned)s->axes);
        return NNU_STATUS_OK;
    case NNU_AUG_REMOVE_LABEL:
        if (b->seg) nnu_aug_remove_label(b->seg, n * b->cs, s->from_label, s->to_label);
        return NNU_STATUS_OK;
    default:
        break;
    }
    for (int c = 0; c < b->c; c++) {
        if (!nnu_rng_bernoulli(rng, s->p_per_channel)) continue;
        float *x = b->data + c * n;
        double v = s->sync_channels ? shared : 0.0;
        switch (s->kind) {
        case NNU_AUG_NOISE:
            if (!s->sync_channels) v = nnu_aug_sample(rng, &s->range);
            nnu_aug_noise(x, n, v, rng);
            break;
        case NNU_AUG_BLUR: {
            double sig[3];
            sig[0] = nnu_aug_sample(rng, &s->range);
            sig[1] = s->sync_axes ? sig[0] : nnu_aug_sample(rng, &s->range);
            sig[2] = s->sync_axes ? sig[0] : nnu_aug_sample(rng, &s->range);
            NNU_TRY(nnu_aug_blur(x, b->shape, sig, ws));
            break;
        }
        case NNU_AUG_BRIGHTNESS:
            if (!s->sync_channels) v = nnu_aug_sample(rng, &s->range);
            nnu_aug_brightness(x, n, v);
            break;
        case NNU_AUG_CONTRAST:
            if (!s->sync_channels) v = nnu_aug_sample(rng, &s->range);
            nnu_aug_contrast(x, n, v, s->preserve_range);
            break;
        case NNU_AUG_LOWRES: {
            if (!s->sync_channels) v = nnu_aug_sample(rng, &s->range);
            /* axis 0 is left alone in 2-D configurations (size 1) and dummy-2D */
            double z[3] = {(p->dim == 2 || p->dummy_2d) ? 1.0 : v, v, v};
            NNU_TRY(nnu_aug_lowres(x, b->shape, z, ws));
            break;
        }
        case NNU_AUG_GAMMA: {
            if (!s->sync_channels) v = nnu_aug_sample(rng, &s->range);
            int inv = nnu_rng_bernoulli(rng, s->p_invert), keep = nnu_rng_bernoulli(rng, s->p_retain_stats);
            nnu_aug_gamma(x, n, v, inv, keep);
            break;
        }
        default:
            return NNU_FAIL(NNU_STATUS_ERR_ARG, "pipeline: step kind %d cannot run here", (int)s->kind);
        }
    }
    return NNU_STATUS_OK;
}

nnu_status nnu_aug_pipeline_run(const nnu_aug_pipeline *p, nnu_aug_buf *in, nnu_aug_buf *out, nnu_rng *rng,
                                nnu_aug_ws *ws) {
    NNU_CHECK(p && in && out && rng && ws, NNU_STATUS_ERR_ARG, "pipeline: NULL argument");
    for (int a = 0; a < 3; a++)
        NNU_CHECK(out->shape[a] == p->patch[a], NNU_STATUS_ERR_SHAPE,
                  "pipeline: output axis %d is %lld, the patch %lld", a, (long long)out->shape[a],
                  (long long)p->patch[a]);
    int first = 0;
    if (p->n_steps > 0 && p->step[0].kind == NNU_AUG_SPATIAL) {
        NNU_TRY(run_spatial(p, &p->step[0], in, out, rng, ws));
        first = 1;
    } else {
        NNU_CHECK(in->shape[0] == out->shape[0] && in->shape[1] == out->shape[1] && in->shape[2] == out->shape[2] &&
                      in->c == out->c && in->cs == out->cs,
                  NNU_STATUS_ERR_SHAPE, "pipeline without a spatial step: input and output shapes differ");
        int64_t n = in->shape[0] * in->shape[1] * in->shape[2];
        if (out->data != in->data) memcpy(out->data, in->data, (size_t)(n * in->c) * sizeof(float));
        if (in->cs && out->seg != in->seg) memcpy(out->seg, in->seg, (size_t)(n * in->cs) * sizeof(int16_t));
    }
    for (int i = first; i < p->n_steps; i++) {
        if (!nnu_rng_bernoulli(rng, p->step[i].p)) continue;
        NNU_TRY(run_step(p, &p->step[i], out, rng, ws));
    }
    return NNU_STATUS_OK;
}
