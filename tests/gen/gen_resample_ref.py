#!/usr/bin/python3
"""Reference outputs for tests/test_resample.c and tests/test_normalize.c.

Run with Debian's python3 (numpy 1.24, scipy 1.10, scikit-image 0.19, the
versions of nnunet-behaviour.md Appendix L):
    apt-get install -y python3-scipy python3-skimage
    /usr/bin/python3 tests/gen/gen_resample_ref.py
Writes tests/fixtures/resample/cases.bin and tests/fixtures/normalize/np_stats.bin.

The resampling below follows the reference's code path (nnunetv2
preprocessing/resampling/default_resampling.py: determine_do_sep_z_and_axis,
resample_data_or_seg; batchgenerators resize_segmentation), re-typed here from
nnunet-behaviour.md §4.4-§4.5 so that no nnU-Net install is needed; the actual
numerics are skimage.transform.resize and scipy.ndimage.map_coordinates.

File format (little endian): b"NNUFIX01", u32 version (1), u32 count, then per
array: name (32 bytes, NUL padded), u32 dtype (0 f32, 1 f64), u32 ndim,
i64 shape[ndim], raw C-order data.
"""
import os
import struct
import sys

import numpy as np
from scipy.ndimage import map_coordinates
from skimage.transform import resize

ANISO_THRESHOLD = 3
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures")


def get_do_separate_z(spacing, thr=ANISO_THRESHOLD):
    return (np.max(spacing) / np.min(spacing)) > thr


def get_lowres_axis(new_spacing):
    return np.where(max(new_spacing) / np.array(new_spacing) == 1)[0]


def determine_do_sep_z_and_axis(current_spacing, new_spacing):
    if get_do_separate_z(current_spacing):
        do_sep, axis = True, get_lowres_axis(current_spacing)
    elif get_do_separate_z(new_spacing):
        do_sep, axis = True, get_lowres_axis(new_spacing)
    else:
        do_sep, axis = False, None
    if axis is not None:
        if len(axis) in (2, 3):
            do_sep, axis = False, None
        else:
            axis = axis[0]
    return do_sep, axis


def resize_segmentation(seg, new_shape, order=3):
    tpe = seg.dtype
    if order == 0:
        return resize(seg.astype(float), new_shape, order, mode="edge", clip=True,
                      anti_aliasing=False).astype(tpe)
    out = np.zeros(new_shape, dtype=seg.dtype)
    for c in np.unique(seg):
        m = resize((seg == c).astype(float), new_shape, order, mode="edge", clip=True, anti_aliasing=False)
        out[m >= 0.5] = c
    return out


def resample_data_or_seg(data, new_shape, is_seg, axis, order, do_separate_z, order_z):
    if is_seg:
        fn, kw = resize_segmentation, {}
    else:
        fn, kw = resize, {"mode": "edge", "anti_aliasing": False}
    shape = np.array(data[0].shape)
    new_shape = np.array(new_shape)
    out = np.zeros((data.shape[0], *new_shape), dtype=data.dtype)
    if not np.any(shape != new_shape):
        return data
    data = data.astype(float)
    if do_separate_z:
        ns2 = new_shape[[i for i in range(3) if i != axis]]
        for c in range(data.shape[0]):
            tmp = new_shape.copy()
            tmp[axis] = shape[axis]
            here = np.zeros(tmp)
            for s in range(shape[axis]):
                if axis == 0:
                    here[s] = fn(data[c, s], ns2, order, **kw)
                elif axis == 1:
                    here[:, s] = fn(data[c, :, s], ns2, order, **kw)
                else:
                    here[:, :, s] = fn(data[c, :, :, s], ns2, order, **kw)
            if shape[axis] != new_shape[axis]:
                rows, cols, dim = new_shape
                orows, ocols, odim = here.shape
                mr, mc, md = np.mgrid[:rows, :cols, :dim]
                mr = float(orows) / rows * (mr + 0.5) - 0.5
                mc = float(ocols) / cols * (mc + 0.5) - 0.5
                md = float(odim) / dim * (md + 0.5) - 0.5
                cm = np.array([mr, mc, md])
                if not is_seg or order_z == 0:
                    out[c] = map_coordinates(here, cm, order=order_z, mode="nearest")[None]
                else:
                    for cl in np.sort(np.unique(here.ravel())):
                        out[c][np.round(map_coordinates((here == cl).astype(float), cm, order=order_z,
                                                        mode="nearest")) > 0.5] = cl
            else:
                out[c] = here
    else:
        for c in range(data.shape[0]):
            out[c] = fn(data[c], new_shape, order, **kw)
    return out


def compute_new_shape(old_shape, old_spacing, new_spacing):
    return np.array([int(round(i / j * k)) for i, j, k in zip(old_spacing, new_spacing, old_shape)])


def resample_to_shape(data, new_shape, cur, new, is_seg, order, order_z):
    do_sep, axis = determine_do_sep_z_and_axis(cur, new)
    return resample_data_or_seg(data, new_shape, is_seg, axis, order, do_sep, order_z), (axis if do_sep else -1)


class Writer:
    def __init__(self):
        self.items = []

    def add(self, name, arr):
        arr = np.ascontiguousarray(arr)
        assert arr.dtype in (np.float32, np.float64) and len(name) < 32
        self.items.append((name, arr))

    def write(self, path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(b"NNUFIX01" + struct.pack("<II", 1, len(self.items)))
            for name, a in self.items:
                f.write(name.encode().ljust(32, b"\0"))
                f.write(struct.pack("<II", 0 if a.dtype == np.float32 else 1, a.ndim))
                f.write(struct.pack("<%dq" % a.ndim, *a.shape))
                f.write(a.astype(a.dtype.newbyteorder("<")).tobytes())
        print("wrote %s (%d arrays, %d bytes)" % (path, len(self.items), os.path.getsize(path)))


def smooth_random(rs, shape):
    """float32 test volume: smooth structure plus noise, values of mixed sign."""
    g = np.meshgrid(*[np.linspace(0, 1, n) for n in shape], indexing="ij")
    v = 40 * np.sin(3 * g[0] + 2 * g[1]) * np.cos(4 * g[2]) + 100 * g[1] + rs.normal(0, 5, shape)
    return v.astype(np.float32)


def blob_labels(rs, shape, n_labels, with_minus=False):
    g = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    lab = np.zeros(shape, np.float32)
    for l in range(1, n_labels + 1):
        c = [rs.uniform(0, n) for n in shape]
        r = rs.uniform(0.2, 0.4) * min(shape)
        d = sum((g[i] - c[i]) ** 2 for i in range(3))
        lab[d < r * r] = l
    if with_minus:
        lab[:, :2, :] = np.where(lab[:, :2, :] == 0, -1, lab[:, :2, :])
    return lab


def main():
    rs = np.random.RandomState(20240101)
    w = Writer()
    # name, channels, in shape, current spacing, new spacing, kind, order, order_z
    cases = [
        ("iso_up_o3", 1, (9, 11, 13), (1, 1, 1), (0.6, 0.65, 0.7), "data", 3, 0),
        ("iso_down_o3", 2, (20, 18, 16), (1, 1, 1), (1.8, 2.0, 1.3), "data", 3, 0),
        ("mixed_o3", 1, (12, 10, 14), (1.2, 0.8, 1.0), (0.9, 1.1, 1.6), "data", 3, 0),
        ("sepz0_up_o3", 1, (6, 20, 22), (5, 0.8, 0.8), (2.5, 0.6, 0.6), "data", 3, 0),
        ("sepz0_down_o3", 1, (9, 24, 21), (4, 0.7, 0.7), (6, 1.1, 1.0), "data", 3, 0),
        ("sepz2_o3", 1, (16, 15, 5), (0.7, 0.7, 4), (1.2, 1.0, 6), "data", 3, 0),
        ("sepz1_o3", 1, (11, 5, 12), (1, 4, 1), (1.5, 3, 0.8), "data", 3, 0),
        ("sepz_target_o3", 1, (10, 12, 12), (1, 1, 1), (4, 1.2, 0.9), "data", 3, 0),
        ("iso_o1", 2, (9, 11, 13), (1, 1, 1), (0.7, 1.3, 0.6), "data", 1, 0),
        ("sepz_o1", 1, (7, 18, 16), (5, 1, 1), (2.2, 1.4, 0.7), "data", 1, 0),
        ("iso_o0", 1, (9, 11, 13), (1, 1, 1), (0.7, 1.3, 0.6), "data", 0, 0),
        ("seg_up", 1, (12, 13, 14), (1, 1, 1), (0.7, 0.6, 0.8), "seg", 1, 0),
        ("seg_down", 1, (22, 20, 18), (1, 1, 1), (1.7, 1.9, 1.4), "seg", 1, 0),
        ("seg_minus", 1, (12, 13, 14), (1, 1, 1), (0.8, 1.3, 0.7), "segm", 1, 0),
        ("seg_sepz", 1, (6, 20, 22), (5, 0.8, 0.8), (2.5, 0.6, 0.7), "seg", 1, 0),
        ("seg_sepz_oz1", 1, (6, 20, 22), (5, 0.8, 0.8), (2.5, 0.6, 0.7), "seg", 1, 1),
        ("iso_o2", 1, (9, 11, 13), (1, 1, 1), (0.7, 1.3, 0.6), "data", 2, 0),
        ("iso_o4", 1, (9, 11, 13), (1, 1, 1), (0.7, 1.3, 0.6), "data", 4, 0),
        ("iso_o5", 1, (9, 11, 13), (1, 1, 1), (0.7, 1.3, 0.6), "data", 5, 0),
    ]
    for name, C, shp, cur, new, kind, order, order_z in cases:
        if kind == "data":
            x = np.stack([smooth_random(rs, shp) for _ in range(C)])
        else:
            x = np.stack([blob_labels(rs, shp, 3, kind == "segm") for _ in range(C)])
        ns = compute_new_shape(shp, cur, new)
        out, axis = resample_to_shape(x, ns, cur, new, kind != "data", order, order_z)
        assert out.dtype == np.float32 and tuple(out.shape[1:]) == tuple(ns), (name, out.shape)
        params = np.array([kind != "data", order, order_z, *cur, *new, *ns, axis], np.float64)
        w.add(name + ".p", params)
        w.add(name + ".in", x)
        w.add(name + ".out", out)
        print("%-16s %s -> %s  separate-z axis %d" % (name, x.shape, out.shape, axis))
    # logits at export: float16 in, float16 out (order 1, export direction)
    lr = np.random.RandomState(5)
    for name, shp, cur, new in (("f16_iso", (2, 9, 11, 13), (0.7, 0.8, 0.9), (1, 1, 1)),
                                ("f16_sepz", (3, 12, 14, 10), (2.5, 0.6, 0.6), (5.0, 0.9, 0.7))):
        x = lr.normal(0, 8, shp).astype(np.float16)
        ns = compute_new_shape(shp[1:], cur, new)
        out, axis = resample_to_shape(x, ns, cur, new, False, 1, 0)
        assert out.dtype == np.float16
        w.add(name + ".p", np.array([0, 1, 0, *cur, *new, *ns, axis], np.float64))
        w.add(name + ".in", x.astype(np.float32))
        w.add(name + ".out", out.astype(np.float32))
        print("%-16s %s -> %s  separate-z axis %d (float16)" % (name, x.shape, out.shape, axis))
    w.write(os.path.join(ROOT, "resample", "cases.bin"))

    # numpy float32 reductions (tests/test_normalize.c): sum, mean, std, and z-score
    s = Writer()
    for name, n in (("a", 20011), ("b", 8192 * 3 + 5), ("c", 129), ("d", 7)):
        x = rs.gamma(2.0, 300.0, size=n).astype(np.float32)
        z = (x - x.mean()) / max(x.std(), 1e-8)
        s.add(name + ".x", x)
        s.add(name + ".r", np.array([np.sum(x), x.mean(), x.std()], np.float64))
        s.add(name + ".z", z.astype(np.float32))
    # z-score of a transposed, cropped *view* (what the reference normalizes): numpy
    # sums it in memory order = the C order of the untransposed array
    tr = np.random.RandomState(11)
    for i in range(4):
        a = tr.gamma(2.0, 300.0, size=(20, 30, 40)).astype(np.float32)
        v = a.transpose(2, 0, 1)[3:37, 2:17, 4:27]          # transpose_forward [2, 0, 1], then crop
        s.add("t%d.x" % i, np.ascontiguousarray(v))
        img = v.astype(np.float32, copy=False)
        mean, std = img.mean(), img.std()
        out = (img - mean) / max(std, 1e-8)
        s.add("t%d.z" % i, out.astype(np.float32))
    s.write(os.path.join(ROOT, "normalize", "np_stats.bin"))

    # hole filling (tests/test_crop.c): random masks with many cavities vs scipy
    from scipy.ndimage import binary_fill_holes
    hr = np.random.RandomState(99)
    h = Writer()
    for i, (shape, p) in enumerate((((12, 14, 16), 0.55), ((10, 10, 10), 0.7), ((1, 20, 20), 0.6),
                                    ((15, 9, 11), 0.8))):
        m = hr.uniform(size=shape) < p
        f = binary_fill_holes(m)
        h.add("m%d" % i, m.astype(np.float32))
        h.add("f%d" % i, f.astype(np.float32))
    h.write(os.path.join(ROOT, "crop", "fill_holes.bin"))


if __name__ == "__main__":
    sys.exit(main())
