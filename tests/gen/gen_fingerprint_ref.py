#!/usr/bin/python3
"""Reference values for tests/test_fingerprint.c and tests/lua/test_fingerprint.lua.

    /usr/bin/python3 tests/gen/gen_fingerprint_ref.py

Writes tests/fixtures/fingerprint/np_random.bin (format: see gen_resample_ref.py):
numpy RandomState(1234) draws, np.mean/np.std/np.percentile on float32 and
float64 arrays, one synthetic case with its crop and foreground samples; and,
when ../shared/data/Dataset004_Hippocampus exists, the fingerprint of that
dataset computed with numpy the way nnunetv2's DatasetFingerprintExtractor
does (crop_to_nonzero with scipy binary_fill_holes, RandomState(1234).choice per
case, float32 statistics) -> tests/fixtures/fingerprint/hippocampus_fingerprint.json.
"""
import glob
import json
import os
import sys

import numpy as np
from scipy.ndimage import binary_fill_holes

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_resample_ref import Writer  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "fixtures", "fingerprint")
SHARED = os.path.join(HERE, "..", "..", "..", "shared", "data", "Dataset004_Hippocampus")


def crop_to_nonzero(data, seg):
    mask = np.zeros(data.shape[1:], dtype=bool)
    for c in range(data.shape[0]):
        mask |= data[c] != 0
    mask = binary_fill_holes(mask)
    w = np.where(mask)
    if len(w[0]) == 0:
        bbox = [[0, s] for s in mask.shape]
    else:
        bbox = [[int(np.min(a)), int(np.max(a)) + 1] for a in w]
    sl = tuple(slice(a, b) for a, b in bbox)
    data = data[(slice(None),) + sl]
    seg = seg[(slice(None),) + sl].copy()
    m = mask[sl][None]
    seg[(seg == 0) & ~m] = -1
    return data, seg, bbox


def case_fingerprint(images, seg, num_samples, seed=1234):
    shape_before = images.shape[1:]
    data, seg, bbox = crop_to_nonzero(images, seg)
    rs = np.random.RandomState(seed)
    fg = seg[0] > 0
    samples = []
    for c in range(len(data)):
        px = data[c][fg]
        samples.append(rs.choice(px, num_samples, replace=True) if len(px) > 0 else [])
    rel = np.prod(data.shape[1:]) / np.prod(shape_before)
    return data.shape[1:], samples, rel, bbox


def stats(x):
    p005, med, p995 = np.percentile(x, np.array((0.5, 50.0, 99.5)))
    return dict(mean=float(np.mean(x)), median=float(med), std=float(np.std(x)), min=float(np.min(x)),
                max=float(np.max(x)), percentile_99_5=float(p995), percentile_00_5=float(p005))


def main():
    w = Writer()
    rs = np.random.RandomState(1234)
    w.add("raw32", np.array(rs.randint(0, 2 ** 32, size=8, dtype=np.uint64), np.float64))
    for i, high in enumerate((1, 2, 7, 1000, 434782, 2 ** 31 + 5, 2 ** 40 + 3)):
        rs = np.random.RandomState(1234)
        w.add("randint%d" % i, np.array([high] + list(rs.randint(0, high, size=12)), np.float64))
    g = np.random.RandomState(7)
    for name, n in (("s1", 1), ("s2", 2), ("s3", 1001), ("s4", 8192 * 2 + 77), ("s5", 30011)):
        x = np.round(g.gamma(2.0, 50.0, size=n), 1).astype(np.float32)   # duplicates on purpose
        s = stats(x)
        s64 = stats(x.astype(np.float64))
        keys = ("mean", "median", "std", "min", "max", "percentile_99_5", "percentile_00_5")
        w.add(name + ".x", x)
        w.add(name + ".f32", np.array([s[k] for k in keys], np.float64))
        w.add(name + ".f64", np.array([s64[k] for k in keys], np.float64))
    # synthetic case: 2 channels (5, 9, 11), background border, a hole, labels 0/1/2
    img = np.zeros((2, 5, 9, 11), np.float32)
    img[0, 1:4, 2:8, 1:10] = g.normal(100, 20, (3, 6, 9)).astype(np.float32)
    img[0, 2, 4, 5] = 0
    img[1, 1:5, 2:8, 2:9] = g.normal(-5, 3, (4, 6, 7)).astype(np.float32)
    seg = np.zeros((1, 5, 9, 11), np.float32)
    seg[0, 2:4, 3:6, 3:8] = 1
    seg[0, 3, 5:7, 6:9] = 2
    shape, samples, rel, bbox = case_fingerprint(img, seg, 50)
    w.add("case.img", img)
    w.add("case.seg", seg)
    w.add("case.res", np.array([*shape, rel, *np.array(bbox).ravel()], np.float64))
    w.add("case.samples", np.array(samples, np.float32))
    os.makedirs(OUT, exist_ok=True)
    w.write(os.path.join(OUT, "np_random.bin"))

    if not os.path.isdir(SHARED):
        print("no shared Hippocampus data: skipping its fingerprint")
        return
    import nibabel as nib
    imgs = sorted(glob.glob(os.path.join(SHARED, "imagesTr", "*_0000.nii.gz")))
    n = len(imgs)
    ns = int(1e8 // n)
    shapes, spacings, rels, per_ch = [], [], [], [[]]
    for p in imgs:
        case = os.path.basename(p)[:-len("_0000.nii.gz")]
        im = nib.load(p)
        data = np.asanyarray(im.dataobj).astype(np.float32).transpose(2, 1, 0)[None]
        lab = np.asanyarray(nib.load(os.path.join(SHARED, "labelsTr", case + ".nii.gz")).dataobj)
        lab = lab.astype(np.float32).transpose(2, 1, 0)[None]
        shape, samples, rel, _ = case_fingerprint(np.ascontiguousarray(data), np.ascontiguousarray(lab), ns)
        shapes.append([int(s) for s in shape])
        spacings.append([float(s) for s in im.header.get_zooms()[:3][::-1]])
        rels.append(float(rel))
        per_ch[0].append(samples[0])
    allv = [np.concatenate(per_ch[c]) for c in range(1)]
    fp = {"foreground_intensity_properties_per_channel": {"0": stats(allv[0])},
          "median_relative_size_after_cropping": float(np.median(rels)),
          "shapes_after_crop": shapes, "spacings": spacings, "num_samples_per_case": ns}
    with open(os.path.join(OUT, "hippocampus_fingerprint.json"), "w") as f:
        json.dump(fp, f, indent=1, sort_keys=True)
    print("hippocampus: %d cases, %d samples per case: %s" % (n, ns, fp["foreground_intensity_properties_per_channel"]))


if __name__ == "__main__":
    main()
