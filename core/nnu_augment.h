/* nnu_augment: the training augmentations of nnU-Net (nnunet-behaviour.md §8) as
 * plain C functions on one sample, and a pipeline that chains them.
 *
 * defines (core/augment/):
 *   spatial.c    nnu_aug_spatial            rotation + scaling + elastic deformation in one
 *                                           pass (trilinear data, per-label linear seg), or
 *                                           the plain centre crop when nothing fires
 *                nnu_aug_spatial_matrix     A = Rz·Ry·Rx·S (3-D) / R·S (2-D)
 *                nnu_aug_initial_patch_size get_patch_size (§8.1, L.8)
 *   intensity.c  noise, blur, brightness, contrast, low resolution, gamma
 *   mirror.c     mirroring, mask, remove label, deep-supervision seg downsampling
 *   pipeline.c   nnu_aug_pipeline_run: a table of steps (order, probabilities, ranges),
 *                built from Lua once and executed by loader threads
 *
 * Sample layout: data (C, D, H, W) float32, seg (Cs, D, H, W) int16, both contiguous,
 * W fastest (nnu_axes.h). 2-D configurations use D = 1. Spatial axes are numbered
 * 0 = D, 1 = H, 2 = W everywhere in this header (angles, mirror bits, zooms).
 *
 * Threads: every function is re-entrant; randomness comes only from the nnu_rng
 * passed in. Scratch memory comes from an nnu_aug_ws owned by the calling thread
 * (grown on demand, never per voxel). Functions with OpenMP loops run them only
 * when the calling thread allows it (nnu_aug_set_omp), so that loader workers do
 * not each start a full OpenMP team. */
#ifndef NNU_AUGMENT_H
#define NNU_AUGMENT_H

#include <stddef.h>
#include <stdint.h>

#include "nnu_rng.h"
#include "nnu_status.h"

/* ---- sample buffers and scratch ---- */

typedef struct nnu_aug_buf {
    float   *data;  int c;      /* (c, D, H, W) */
    int16_t *seg;   int cs;     /* (cs, D, H, W); cs may be 0 (seg NULL) */
    int64_t  shape[3];          /* D, H, W */
} nnu_aug_buf;

/* Growable scratch owned by one thread; zero-initialise, free with nnu_aug_ws_free. */
typedef struct nnu_aug_ws { float *buf; size_t cap; } nnu_aug_ws;
void       nnu_aug_ws_free(nnu_aug_ws *ws);
/* Returns scratch of at least n floats in *out (valid until the next call on ws). */
nnu_status nnu_aug_ws_get(nnu_aug_ws *ws, size_t n, float **out);

/* Per-thread switch for OpenMP inside the transforms (default on). */
void nnu_aug_set_omp(int on);
int  nnu_aug_omp_allowed(void);

/* ---- spatial transform (§8.2 step 1; elastic: 2018 paper / batchgenerators v1) ---- */

typedef struct nnu_aug_spatial_params {
    int     dim;          /* 3: transform (D, H, W); 2: transform (H, W) of every slice
                             alike, D passes through (needs D_in == D_out): 2-D
                             configurations and dummy-2D */
    int     affine;       /* 0 and elastic 0: plain centre crop, no interpolation */
    double  angle[3];     /* radians: angle[0] Rx (plane 1-2), angle[1] Ry (0-2),
                             angle[2] Rz (0-1); 2-D uses angle[2] on (H, W) */
    double  scale[3];     /* S = diag(scale) over the transformed axes (2-D: scale[1], scale[2]) */
    int     elastic;      /* add displacement alpha · G_sigma * U(-1, 1) per axis */
    double  alpha, sigma; /* voxels (batchgenerators elastic_deform_coordinates) */
    int     seg_nearest;  /* 0: per-label linear (v2); 1: nearest neighbour */
    int     border_seg;   /* label of samples outside the input: -1 (v2 >= 2.7) */
} nnu_aug_spatial_params;

/* Defaults: dim 3, identity, no elastic, per-label linear seg, border_seg -1. */
void nnu_aug_spatial_params_init(nnu_aug_spatial_params *p);
/* A (row-major 3×3 over the transformed axes; 2-D fills the top-left 2×2 with
 * rows/cols = (H, W) and the rest 0) = Rz·Ry·Rx·S or R·S. */
void nnu_aug_spatial_matrix(const nnu_aug_spatial_params *p, double A[9]);

/* out (C, Do, Ho, Wo) ← in (C, Di, Hi, Wi): output voxel o samples input position
 *   c = A·(o − (p_out−1)/2 + disp(o)) + (S_in−1)/2       (per transformed axis)
 * data: (bi/tri)linear, taps outside the input count as 0 (grid_sample zeros);
 * seg: for each label present among the taps, its interpolated one-hot weight
 * (float16 comparison of weight·1000, ties → lowest label), border_seg where c
 * lies outside [0, S_in−1] on any axis. Without affine/elastic: centre crop at
 * start = S_in//2 − p//2, data 0 / seg border_seg outside. in and out must not
 * overlap; out.c == in.c, out.cs == in.cs. rng is used for the elastic noise only. */
nnu_status nnu_aug_spatial(const nnu_aug_buf *in, nnu_aug_buf *out, const nnu_aug_spatial_params *p,
                           nnu_rng *rng, nnu_aug_ws *ws);

/* get_patch_size (§8.1): patch[ndim] (ndim 2 or 3), rot_max[3] = max |rotation|
 * about x, y, z in radians (2-D uses rot_max[0]), scale_min = 0.85 in nnU-Net;
 * dummy_2d resets axis 0 to patch[0]. out[ndim]. */
void nnu_aug_initial_patch_size(int ndim, const int64_t *patch, const double rot_max[3], double scale_min,
                                int dummy_2d, int64_t *out);

/* ---- intensity transforms on one channel x[n] (shape where the op is spatial) ---- */

/* x += N(0, sigma²) */
void nnu_aug_noise(float *x, int64_t n, double sigma, nnu_rng *rng);
/* Separable Gaussian, sigma[a] per spatial axis a (<= 0: axis untouched); kernel
 * size int(6σ+0.5) made odd upward, torch 'reflect' padding (§8.2 step 4). */
nnu_status nnu_aug_blur(float *x, const int64_t shape[3], const double sigma[3], nnu_aug_ws *ws);
/* Kernel of nnu_aug_blur: writes k taps into w (k <= max), returns k (0 if max too small). */
int  nnu_aug_blur_kernel(double sigma, double *w, int max);
/* x *= factor */
void nnu_aug_brightness(float *x, int64_t n, double factor);
/* x = (x − mean)·factor + mean, clipped to the original [min, max] if preserve_range */
void nnu_aug_contrast(float *x, int64_t n, double factor, int preserve_range);
/* Downsample to round(shape·zoom[a]) (nearest-exact) and back with (tri)linear
 * interpolation, align_corners False; zoom[a] == 1 leaves axis a alone. */
nnu_status nnu_aug_lowres(float *x, const int64_t shape[3], const double zoom[3], nnu_aug_ws *ws);
/* Gamma (§8.2 steps 8-9): [invert] → ((x−min)/max(range,1e-7))^gamma·range + min →
 * [restore mean and std (ddof 1)] → [invert back]. */
void nnu_aug_gamma(float *x, int64_t n, double gamma, int invert, int retain_stats);

/* ---- mirroring, masks, labels, deep supervision ---- */

/* Flips data and seg along every spatial axis a with bit (1 << a) in axes. */
void nnu_aug_mirror(nnu_aug_buf *b, int axes);
/* data[c] = 0 where seg[0] < 0, for every channel c with bit (1 << c) in channels. */
void nnu_aug_mask(nnu_aug_buf *b, unsigned channels);
/* seg == from → to (RemoveLabel: −1 → 0). */
void nnu_aug_remove_label(int16_t *seg, int64_t n, int16_t from, int16_t to);
/* Nearest-exact resize of one seg channel in[in_shape] → out[out_shape]
 * (source index min(floor((o+0.5)·in/out), in−1) per axis). */
void nnu_aug_downsample_seg(const int16_t *in, const int64_t in_shape[3], int16_t *out, const int64_t out_shape[3]);

/* ---- the pipeline ---- */

typedef enum nnu_aug_kind {
    NNU_AUG_SPATIAL = 0, NNU_AUG_NOISE, NNU_AUG_BLUR, NNU_AUG_BRIGHTNESS, NNU_AUG_CONTRAST,
    NNU_AUG_LOWRES, NNU_AUG_GAMMA, NNU_AUG_MIRROR, NNU_AUG_MASK, NNU_AUG_REMOVE_LABEL,
    NNU_AUG_KIND_COUNT
} nnu_aug_kind;

const char *nnu_aug_kind_name(nnu_aug_kind k);         /* "spatial", "noise", ... */
int         nnu_aug_kind_from_name(const char *name);  /* -1 if unknown */

/* A value range; bg = 1 samples batchgenerators' BGContrast way: with probability
 * 0.5 (and lo < 1) uniform(lo, 1), otherwise uniform(max(lo, 1), hi). */
typedef struct nnu_aug_range { double lo, hi; int bg; } nnu_aug_range;
double nnu_aug_sample(nnu_rng *rng, const nnu_aug_range *r);

typedef struct nnu_aug_step {
    nnu_aug_kind  kind;
    double        p;               /* the step fires with probability p per sample */
    double        p_per_channel;   /* each channel is treated with this probability */
    int           sync_channels;   /* one value shared by all channels (noise σ) */
    int           sync_axes;       /* blur: 1 = one σ for all axes, 0 = σ per axis */
    nnu_aug_range range;           /* noise σ, blur σ, multiplier, contrast, zoom, gamma */
    double        p_invert;        /* gamma: probability of the inverted variant */
    double        p_retain_stats;  /* gamma */
    int           preserve_range;  /* contrast */
    int           axes;            /* mirror: spatial-axis bits; mask: channel bits */
    double        p_per_axis;      /* mirror: each allowed axis flips with this probability */
    int16_t       from_label, to_label;  /* remove_label */
    /* spatial only */
    double        p_rotation;
    double        rotation[3][2];  /* angle range (radians) per axis 0..2 (see angle[]) */
    double        p_scaling;
    nnu_aug_range scaling;         /* one factor for all axes */
    double        p_elastic;
    nnu_aug_range alpha, sigma;    /* elastic magnitude and smoothness (voxels) */
    int           seg_nearest;
    int           border_seg;
} nnu_aug_step;

#define NNU_AUG_MAX_STEPS 32

typedef struct nnu_aug_pipeline {
    int           n_steps;
    nnu_aug_step  step[NNU_AUG_MAX_STEPS];
    int           dim;          /* 2 or 3: spatial dimensions of the configuration */
    int           dummy_2d;     /* 3-D config treated slice-wise in-plane (§8.1) */
    int64_t       patch[3];     /* final patch (D, H, W); 2-D: D = 1 */
} nnu_aug_pipeline;

/* Defaults of one step of kind k (p 1, p_per_channel 1, border_seg -1, ...). */
void       nnu_aug_step_init(nnu_aug_step *s, nnu_aug_kind k);
/* Validates ranges, probabilities, the position of the spatial step (first, at
 * most one) and the patch. */
nnu_status nnu_aug_pipeline_check(const nnu_aug_pipeline *p);
/* Runs the pipeline on one sample. in: the crop of the initial patch size (with a
 * spatial step) or of the patch size (without); out: (C, patch), cs as in. in is
 * left unspecified (may be used as scratch). */
nnu_status nnu_aug_pipeline_run(const nnu_aug_pipeline *p, nnu_aug_buf *in, nnu_aug_buf *out, nnu_rng *rng,
                                nnu_aug_ws *ws);

#endif
