#!/usr/bin/python3
"""gen_slide_ref.py: reference outputs of nnU-Net v2's sliding-window inference for
tests/test_slide.c, computed by a numpy re-implementation of the reference code:
  nnunetv2/inference/sliding_window_prediction.py (compute_gaussian,
  compute_steps_for_sliding_window), acvl_utils pad_nd_image, and
  nnUNetPredictor.predict_sliding_window_return_logits /
  _internal_maybe_mirror_and_predict / _internal_get_sliding_window_slicers,
with the CPU dtypes of the reference (float32 network output, float16 Gaussian,
float16 accumulators: every float16 += float32 is computed in float32 and rounded).

The "network" is a fixed function with a position-dependent term so that test-time
mirroring changes the result:
  out[k] = bias[k] + sum_c W[k,c] x[c] + V[k] x[0 shifted by +1 along the last axis]
           + P[k, patch position]                                   (all float32)
Inputs and weights are integer formulas that the C test reproduces exactly.

Run:  /usr/bin/python3 tests/gen/gen_slide_ref.py   (writes tests/fixtures/slide_ref.bin)
"""
import itertools
import os
import sys

import numpy as np
from scipy.ndimage import gaussian_filter

sys.path.insert(0, os.path.dirname(__file__))
import refio  # noqa: E402


def compute_gaussian(tile_size, sigma_scale=1. / 8, value_scaling_factor=10):
    tmp = np.zeros(tile_size)
    center_coords = [i // 2 for i in tile_size]
    sigmas = [i * sigma_scale for i in tile_size]
    tmp[tuple(center_coords)] = 1
    g = gaussian_filter(tmp, sigmas, 0, mode='constant', cval=0)
    g = g / (np.max(g) / value_scaling_factor)
    g = g.astype(np.float32).astype(np.float16)   # torch .to(float16) goes via float32
    mask = g == 0
    g[mask] = np.min(g[~mask])
    return g


def compute_steps_for_sliding_window(image_size, tile_size, tile_step_size):
    target = [i * tile_step_size for i in tile_size]
    num_steps = [int(np.ceil((i - k) / j)) + 1 for i, j, k in zip(image_size, target, tile_size)]
    steps = []
    for dim in range(len(tile_size)):
        max_step_value = image_size[dim] - tile_size[dim]
        actual = max_step_value / (num_steps[dim] - 1) if num_steps[dim] > 1 else 99999999999
        steps.append([int(np.round(actual * i)) for i in range(num_steps[dim])])
    return steps


def pad_nd_image(image, new_shape):
    old_shape = np.array(image.shape[-len(new_shape):])
    num_axes_nopad = len(image.shape) - len(new_shape)
    new_shape = [max(new_shape[i], old_shape[i]) for i in range(len(new_shape))]
    difference = new_shape - old_shape
    pad_below = difference // 2
    pad_above = difference // 2 + difference % 2
    pad_list = [[0, 0]] * num_axes_nopad + list([list(i) for i in zip(pad_below, pad_above)])
    res = np.pad(image, pad_list, 'constant', constant_values=0)
    pad_list = np.array(pad_list)
    pad_list[:, 1] = np.array(res.shape) - pad_list[:, 1]
    return res, tuple(slice(*i) for i in pad_list)


def image_values(shape):
    C, D, H, W = shape
    c, z, y, x = np.meshgrid(*[np.arange(s) for s in shape], indexing='ij')
    return (((c * 131 + z * 71 + y * 37 + x * 13) % 29 - 14) / 7.0).astype(np.float32)


def net_params(C, K, patch):
    W = np.array([[((k * 3 + c * 5) % 7 - 3) / 4.0 for c in range(C)] for k in range(K)], np.float32)
    b = np.array([(k - 1) * 0.5 for k in range(K)], np.float32)
    V = np.array([((k % 3) - 1) * 0.75 for k in range(K)], np.float32)
    grids = np.meshgrid(*[np.arange(s) for s in patch], indexing='ij')
    if len(patch) == 2:
        grids = [np.zeros_like(grids[0])] + grids
    z, y, x = grids
    P = np.stack([(((k * 31 + z * 17 + y * 7 + x * 3) % 11) - 5) / 8.0 for k in range(K)]).astype(np.float32)
    return W, b, V, P


def network(x, params):
    """x: (1, C, *patch) float32 -> (1, K, *patch) float32, sequential float32 sums"""
    W, b, V, P = params
    K, C = W.shape
    out = np.empty((1, K) + x.shape[2:], np.float32)
    shifted = np.zeros_like(x[0, 0])
    shifted[..., :-1] = x[0, 0, ..., 1:]
    for k in range(K):
        o = np.full(x.shape[2:], b[k], np.float32)
        for c in range(C):
            o = o + W[k, c] * x[0, c]
        o = o + V[k] * shifted
        o = o + P[k]
        out[0, k] = o
    return out


def maybe_mirror_and_predict(x, params, mirror_axes):
    prediction = network(x, params)
    if mirror_axes:
        axes = [m + 2 for m in mirror_axes]
        combos = [c for i in range(len(axes)) for c in itertools.combinations(axes, i + 1)]
        for a in combos:
            prediction = prediction + np.flip(network(np.ascontiguousarray(np.flip(x, a)), params), a)
        prediction = prediction / np.float32(len(combos) + 1)
    return prediction.astype(np.float32)


def slicers_for(image_size, patch, step):
    sl = []
    if len(patch) < len(image_size):
        steps = compute_steps_for_sliding_window(image_size[1:], patch, step)
        for d in range(image_size[0]):
            for sx in steps[0]:
                for sy in steps[1]:
                    sl.append(tuple([slice(None), d] + [slice(s, s + t) for s, t in zip((sx, sy), patch)]))
    else:
        steps = compute_steps_for_sliding_window(image_size, patch, step)
        for sx in steps[0]:
            for sy in steps[1]:
                for sz in steps[2]:
                    sl.append(tuple([slice(None)] + [slice(s, s + t) for s, t in zip((sx, sy, sz), patch)]))
    return sl


def predict_sliding_window(image, patch, step, K, mirror_axes, accum):
    params = net_params(image.shape[0], K, patch)
    data, revert = pad_nd_image(image, patch)
    g = compute_gaussian(tuple(patch))
    g32 = g.astype(np.float32)
    acc = np.zeros((K,) + data.shape[1:], accum)
    wsum = np.zeros(data.shape[1:], accum)
    for sl in slicers_for(data.shape[1:], patch, step):
        workon = np.ascontiguousarray(data[sl][None])
        pred = maybe_mirror_and_predict(workon, params, mirror_axes)[0]
        pred = (pred * g32).astype(np.float32)
        acc[sl] = (acc[sl].astype(np.float32) + pred).astype(accum)
        wsum[sl[1:]] = (wsum[sl[1:]].astype(np.float32) + g32).astype(accum)
    acc = (acc.astype(np.float32) / wsum.astype(np.float32)).astype(accum)
    assert np.all(np.isfinite(acc))
    return acc[(slice(None), *revert[1:])]


# name, image shape, patch, step, K, mirror axes, accumulator dtype
CASES = [
    ("a3d_mirror", (2, 9, 13, 11), (4, 8, 6), 0.5, 3, (0, 1, 2), np.float16),
    ("b3d_small", (1, 3, 10, 5), (4, 8, 6), 0.5, 2, (1, 2), np.float16),
    ("c2d_slices", (2, 3, 4, 7), (5, 4), 0.5, 3, (0, 1), np.float16),
    ("d3d_f32", (1, 6, 10, 9), (4, 4, 4), 0.5, 2, (), np.float32),
]


def main():
    out = []
    for name, shape, patch, step, K, mirror, accum in CASES:
        img = image_values(shape)
        res = predict_sliding_window(img, patch, step, K, mirror, accum)
        assert res.shape == (K,) + shape[1:], (name, res.shape)
        out.append((name, res))
    for patch in [(5, 7), (8, 8, 8), (20, 24, 16)]:
        out.append(("gauss_" + "x".join(map(str, patch)), compute_gaussian(patch)))
    path = os.path.join(os.path.dirname(__file__), "..", "fixtures", "slide_ref.bin")
    refio.write(path, out)
    print("wrote", os.path.normpath(path), [(n, a.shape, str(a.dtype)) for n, a in out])


if __name__ == "__main__":
    main()
