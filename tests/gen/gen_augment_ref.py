#!/usr/bin/python3
"""gen_augment_ref.py: reference outputs of the augmentation transforms for
tests/test_augment.c (nnunet-behaviour.md §8.2), with explicit parameters.

The reference transforms (batchgeneratorsv2) are torch code; their formulas are
re-stated here with torch (Debian python3-torch) and scipy (python3-scipy):
  spatial   torch grid_sample (trilinear/bilinear, zeros, align_corners=False) on the
            grid c = A·(o − (p−1)/2) + (S−1)/2, A = Rz·Ry·Rx·S; seg: per-label one-hot
            ×1000 interpolated, float16, argmax (ties → lowest), outside → −1;
            plus scaling ×2 against scipy.ndimage.map_coordinates(order=1,
            mode='grid-constant') on the same grid
  blur      scipy correlate1d(mode='mirror') with the torch-style kernel
  lowres    torch interpolate nearest-exact down, (tri)linear up (align_corners False)
  gamma / contrast   numpy formulas in float64
  dsseg     torch interpolate nearest-exact
  elastic filter     scipy gaussian_filter(sigma, truncate 4, mode='constant')
Writes tests/fixtures/augment/augment_ref.bin (refio container, f32/f64).
Run from the repo root:  /usr/bin/python3 tests/gen/gen_augment_ref.py
"""
import os
import sys

import numpy as np
import scipy.ndimage as ndi
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
import refio  # noqa: E402


def affine3(angles, scale):
    cx, sx = np.cos(angles[0]), np.sin(angles[0])
    cy, sy = np.cos(angles[1]), np.sin(angles[1])
    cz, sz = np.cos(angles[2]), np.sin(angles[2])
    Rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    Ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    Rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return Rz @ Ry @ Rx @ np.diag(scale)


def source_grid(A, p_out, s_in):
    """c[..., a] = A·(o − (p−1)/2) + (S−1)/2 over the output grid (float64)."""
    axes = [np.arange(p) - (p - 1) / 2.0 for p in p_out]
    u = np.stack(np.meshgrid(*axes, indexing="ij"), -1)
    return u @ A.T + (np.asarray(s_in, dtype=np.float64) - 1) / 2.0


def grid_sample_pixels(vol, c):
    """torch grid_sample of vol (spatial dims only) at pixel positions c[..., nd]."""
    nd = vol.ndim
    s = np.asarray(vol.shape, dtype=np.float64)
    g = (2.0 * c + 1.0) / s - 1.0          # pixel → normalised, align_corners False
    g = torch.from_numpy(g[..., ::-1].copy()).float()[None]   # x (last axis) first
    v = torch.from_numpy(vol.astype(np.float32))[None, None]
    out = F.grid_sample(v, g, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out[0, 0].numpy()


def seg_reference(seg, c):
    labels = np.unique(seg)
    tmp = np.stack([grid_sample_pixels((seg == u).astype(np.float32) * 1000, c).astype(np.float16)
                    for u in labels])
    out = labels[np.argmax(tmp, 0)].astype(np.float32)
    s = np.asarray(seg.shape)
    outside = np.any((c < 0) | (c > s - 1), -1)
    out[outside] = -1
    return out


def torch_blur_kernel(sigma):
    k = int(6 * sigma + 0.5)
    if k % 2 == 0:
        k += 1
    x = np.arange(k) - (k - 1) / 2
    w = np.exp(-x ** 2 / (2 * sigma ** 2))
    return w / w.sum()


def main():
    rng = np.random.RandomState(20240501)
    arrays = []

    # --- spatial 3-D: rotation + scale, data and seg ---
    s_in, p_out = (9, 10, 11), (7, 8, 6)
    x = rng.randn(*s_in).astype(np.float32)
    seg = rng.randint(0, 3, size=s_in)
    seg[:2] = 0
    A = affine3((0.3, -0.2, 0.5), (0.9, 0.9, 0.9))
    c = source_grid(A, p_out, s_in)
    arrays += [("sp3_in", x), ("sp3_seg", seg.astype(np.float32)),
               ("sp3_out", grid_sample_pixels(x, c)), ("sp3_segout", seg_reference(seg, c))]

    # --- spatial 3-D, scaling by 2 against scipy map_coordinates on the same grid ---
    A2 = np.diag([2.0, 2.0, 2.0])
    c2 = source_grid(A2, (5, 6, 7), s_in)
    mc = ndi.map_coordinates(x.astype(np.float64), np.moveaxis(c2, -1, 0), order=1, mode="grid-constant", cval=0.0)
    gs = grid_sample_pixels(x, c2)
    assert np.abs(mc - gs).max() < 1e-5, "map_coordinates vs grid_sample"
    arrays += [("sc2_out", mc.astype(np.float32))]

    # --- spatial 2-D (H, W of each slice): angle 0.4, scale 1.1 ---
    s2_in, p2 = (3, 12, 13), (3, 8, 9)
    x2 = rng.randn(*s2_in).astype(np.float32)
    seg2 = rng.randint(0, 4, size=s2_in)
    cc, ss = np.cos(0.4), np.sin(0.4)
    R = np.array([[cc, -ss], [ss, cc]]) @ np.diag([1.1, 1.1])
    c2d = source_grid(R, p2[1:], s2_in[1:])
    out2 = np.stack([grid_sample_pixels(x2[d], c2d) for d in range(3)])
    seg2o = np.stack([seg_reference(seg2[d], c2d) for d in range(3)])
    arrays += [("sp2_in", x2), ("sp2_seg", seg2.astype(np.float32)), ("sp2_out", out2), ("sp2_segout", seg2o)]

    # --- blur: sigma per axis (0.55, 0.8, 1.0), torch 'reflect' = scipy 'mirror' ---
    xb = rng.randn(6, 7, 9).astype(np.float32)
    yb = xb.astype(np.float64)
    for ax, sg in enumerate((0.55, 0.8, 1.0)):
        yb = ndi.correlate1d(yb, torch_blur_kernel(sg), axis=ax, mode="mirror")
    arrays += [("blur_in", xb), ("blur_out", yb.astype(np.float32))]

    # --- lowres: zoom 0.6 on every axis, and (1, 0.7, 0.7) ---
    xl = rng.rand(6, 10, 9).astype(np.float32)
    t = torch.from_numpy(xl)[None, None]
    for name, z in (("lowres_a", (0.6, 0.6, 0.6)), ("lowres_b", (1.0, 0.7, 0.7))):
        small = [int(round(s * zz)) for s, zz in zip(xl.shape, z)]
        d = F.interpolate(t, size=small, mode="nearest-exact")
        u = F.interpolate(d, size=xl.shape, mode="trilinear", align_corners=False)
        arrays.append((name, u[0, 0].numpy()))
    arrays.append(("lowres_in", xl))

    # --- gamma and contrast (float64 numpy formulas) ---
    xg = (rng.randn(4, 5, 6) * 2 + 1).astype(np.float32)

    def gamma(v, g, invert, retain):
        v = v.astype(np.float64)
        if invert:
            v = -v
        m, s = v.mean(), v.std(ddof=1)
        mn, rnge = v.min(), v.max() - v.min()
        v = np.power((v - mn) / max(rnge, 1e-7), g) * rnge + mn
        if retain:
            v = (v - v.mean()) * (s / max(v.std(ddof=1), 1e-7)) + m
        if invert:
            v = -v
        return v.astype(np.float32)

    arrays += [("gamma_in", xg), ("gamma_a", gamma(xg, 0.7, True, True)), ("gamma_b", gamma(xg, 1.3, False, True)),
               ("gamma_c", gamma(xg, 1.5, False, False))]
    xd = xg.astype(np.float64)
    con = np.clip((xd - xd.mean()) * 1.2 + xd.mean(), xd.min(), xd.max())
    arrays += [("contrast_12", con.astype(np.float32))]

    # --- deep-supervision seg downsampling: (7, 10, 9) → (4, 5, 5) nearest-exact ---
    sd = rng.randint(0, 5, size=(7, 10, 9)).astype(np.float32)
    ds = F.interpolate(torch.from_numpy(sd)[None, None], size=(4, 5, 5), mode="nearest-exact")[0, 0].numpy()
    arrays += [("ds_in", sd), ("ds_out", ds)]

    # --- elastic smoothing: gaussian_filter(σ = 2.5, truncate 4, mode constant) ---
    xe = (rng.rand(8, 9, 10) * 2 - 1).astype(np.float32)
    arrays += [("el_in", xe), ("el_out", ndi.gaussian_filter(xe.astype(np.float64), 2.5, mode="constant",
                                                            cval=0.0, truncate=4.0).astype(np.float32))]

    os.makedirs("tests/fixtures/augment", exist_ok=True)
    refio.write("tests/fixtures/augment/augment_ref.bin",
                [(n, np.ascontiguousarray(a, dtype=np.float32)) for n, a in arrays])
    print("wrote %d arrays" % len(arrays))


if __name__ == "__main__":
    main()
