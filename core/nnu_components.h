/* nnu_components: connected components with full connectivity and "keep the
 * largest component" postprocessing (nnunet-behaviour.md §10, test vectors L.6).
 *
 * A segmentation is treated as the 3-D array (D, H, W) made of its last three axes
 * (leading axes must have size 1; a 2-D (H, W) map is (1, H, W)), with the
 * 26-neighbourhood (skimage label(connectivity=None)); for D = 1 this is the
 * 8-neighbourhood in-plane, as the reference gets for 2-D images stored as (1, X, Y).
 *
 * Components are found on runs of mask voxels along W merged with union-find, so the
 * memory is proportional to the number of runs, not to the number of voxels. */
#ifndef NNU_COMPONENTS_H
#define NNU_COMPONENTS_H

#include <stdint.h>

#include "nnu_tensor.h"

/* remove_all_but_largest_component_from_segmentation(seg, labels, background):
 * mask = seg ∈ labels (one label, a region's label set or a list of labels as one
 * set); every mask voxel outside the largest component(s) of the mask becomes
 * `background` (all components of maximal size are kept: ties keep all). Other
 * labels are untouched, an empty mask changes nothing. seg is modified in place
 * (any integer or float dtype, any strides). n_removed (optional) receives the
 * number of voxels set to background. */
nnu_status nnu_components_keep_largest(nnu_tensor *seg, const int64_t *labels, int n_labels,
                                       int64_t background, int64_t *n_removed);

/* Component sizes of mask = seg ∈ labels, largest first, for inspection and tests:
 * sizes[0 .. min(*n, cap)) filled, *n = number of components. */
nnu_status nnu_components_sizes(const nnu_tensor *seg, const int64_t *labels, int n_labels,
                                int64_t *sizes, int64_t cap, int64_t *n);

#endif
