#!/usr/bin/python3
"""Writes tests/fixtures/nifti/nibabel_reference.json: what an independent reader
(Debian's python3-nibabel) sees in a set of real NIfTI files, for tests/test_nifti.c.

Per file: shape in array order (z, y, x), dtype after ITK-style scl_* scaling,
exact byte checksums of the voxel buffer in that order, sum/min/max, sample voxels
(flat C-order index, value) and the geometry SimpleITK would report (spacing,
origin, direction in ITK/LPS convention). The geometry is derived here from
nibabel's qform/sform matrices with ITK's NiftiImageIO selection rules, written
independently of core/nnu_nifti.c.

Usage (from the repository root; needs ../shared/data and the demo data):
    /usr/bin/python3 tests/gen/gen_nifti_fixtures.py
The output has one JSON object per line so the C test can parse it without a JSON library.
"""
import glob
import json
import math
import os
import sys

import nibabel as nib
import numpy as np

OUT = "tests/fixtures/nifti/nibabel_reference.json"

DEMO = "data/Dataset004_Hippocampus_demo"
HIPPO = "../shared/data/Dataset004_Hippocampus"
BRATS = "../shared/data/Dataset501_BraTS2013Sample"

# uint8 and float32 images, origin (1,1,1) and (0,0,0), the float32 label of case 243
HIPPO_CASES = ["hippocampus_001", "hippocampus_004", "hippocampus_039", "hippocampus_074",
               "hippocampus_243", "hippocampus_093", "hippocampus_245", "hippocampus_375"]
DEMO_CASES = ["hippocampus_001", "hippocampus_004", "hippocampus_039", "hippocampus_243"]

OUR_DTYPE = {"uint8": "u8", "int8": "i8", "int16": "i16", "uint16": "u16", "int32": "i32",
             "uint32": "i64", "int64": "i64", "uint64": "i64", "float32": "f32", "float64": "f64"}


def itk_geometry(hdr):
    """Spacing/origin/direction as ITK's NiftiImageIO derives them (float mat44)."""
    pix = [float(np.float32(p)) for p in hdr["pixdim"]]
    d = [pix[i] if pix[i] != 0 else 1.0 for i in (1, 2, 3)]
    units = int(hdr["xyzt_units"]) & 7
    scale = {1: 1e3, 3: 1e-3}.get(units, 1.0)
    spacing_itk = [v * scale for v in d]
    qcode, scode = int(hdr["qform_code"]), int(hdr["sform_code"])
    if qcode <= 0:
        q = np.diag([d[0], d[1], d[2], 1.0])
        qcode = 0
    else:
        q = hdr.get_qform()
    if scode <= 0:
        s = np.zeros((4, 4))
        scode = 0
    else:
        s = hdr.get_sform()
        s[3] = [0, 0, 0, 1]
    q = q.astype(np.float32).astype(np.float64)
    s = s.astype(np.float32).astype(np.float64)
    if qcode == 0 and scode == 0:
        return spacing_itk, [0.0, 0.0, 0.0], [1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0], "none"

    similar = (np.all(np.abs(s[:3, :3] - q[:3, :3]) <= 1e-5)
               and np.abs(s[:, 3] - q[:, 3]).sum() <= 1e-7 and np.abs(s[3] - q[3]).sum() <= 1e-7)
    prefer_s = similar
    if not prefer_s or scode != 0:
        ok = abs(s[3, 3] - 1) + np.abs(s[3, :3]).sum() <= np.finfo(np.float32).eps \
            and abs(np.linalg.det(s[:3, :3])) > 0
        if ok:
            r = s[:3, :3] / np.linalg.norm(s[:3, :3], axis=0)
            ok = np.all(np.abs(r @ r.T - np.eye(3)) <= 1e-4)
        if ok:
            if qcode == 0 and scode != 0:
                prefer_s = True
            elif scode == 1:
                prefer_s = True
            elif qcode != 0 and scode != 0:
                ns, nq = np.linalg.norm(s[:3, :3], axis=0), np.linalg.norm(q[:3, :3], axis=0)
                prefer_s = bool(np.all(np.abs(ns - nq) <= 1e-4)
                                and np.all(np.abs(s[:3, :3] / ns - q[:3, :3] / nq) <= 1e-4)
                                and np.all(np.abs(s[:, 3] - q[:, 3]) <= 1e-4))
    if prefer_s:
        m, which = s, "sform"
    elif qcode != 0:
        m, which = q, "qform"
    else:
        raise RuntimeError("no orthonormal geometry")
    origin = [-m[0, 3], -m[1, 3], m[2, 3]]
    direction = np.zeros((3, 3))
    for j in range(3):
        c = np.array([-m[0, j], -m[1, j], m[2, j]])
        n = math.sqrt(float((c * c).sum()))
        direction[:, j] = c / (n if n else 1.0)
    return spacing_itk, [float(v) for v in origin], [float(v) for v in direction.ravel()], which


def describe(path):
    img = nib.load(path)
    hdr = img.header
    disk = np.dtype(hdr.get_data_dtype())
    raw = np.asanyarray(img.dataobj.get_unscaled())           # (x, y, z[, t]) as stored
    # nibabel moves scl_slope/scl_inter from the header into the array proxy on load
    slope, inter = float(img.dataobj.slope), float(img.dataobj.inter)
    slope = slope if math.isfinite(slope) and abs(slope) >= np.finfo(float).eps else 1.0
    inter = inter if math.isfinite(inter) else 0.0
    scaled = abs(slope - 1) > np.finfo(float).eps or abs(inter) > np.finfo(float).eps
    if scaled:  # ITK: computed in double, stored as float32 for integer data
        out_dt = np.float64 if disk == np.float64 else np.float32
        data = (raw.astype(np.float64) * slope + inter).astype(out_dt)
    else:
        data = raw.astype(disk.newbyteorder("="))
        if disk.name in ("uint32", "uint64"):   # no unsigned 32/64-bit tensors: widened
            data = raw.astype(np.int64)
    arr = np.ascontiguousarray(np.transpose(data, tuple(range(data.ndim))[::-1]))  # -> (z, y, x)
    if arr.ndim == 4 and arr.shape[0] == 1:
        arr = arr[0]
    flat = arr.ravel()
    b = np.frombuffer(arr.astype(arr.dtype.newbyteorder("<")).tobytes(), dtype=np.uint8).astype(np.uint64)
    idx = np.arange(b.size, dtype=np.uint64)
    c1 = int((b * (idx % np.uint64(251) + np.uint64(1))).sum())
    c2 = int((b * (idx % np.uint64(65521) + np.uint64(1))).sum())
    n = flat.size
    samples = sorted({0, n - 1} | {(k * 7919 * 104729 + k * k * 13) % n for k in range(1, 9)})
    spacing_itk, origin, direction, which = itk_geometry(hdr)
    return {
        "path": path, "shape": list(arr.shape), "dtype": OUR_DTYPE[np.dtype(arr.dtype).name],
        "datatype": int(hdr["datatype"]), "scaled": bool(scaled),
        "sum": math.fsum(float(v) for v in flat.astype(np.float64)) if n < 2_000_000 else float(np.sum(flat, dtype=np.float64)),
        "min": float(flat.min()), "max": float(flat.max()),
        "checksum1": c1, "checksum2": c2,
        "samples": [[int(i), float(flat[i])] for i in samples],
        "spacing_itk": spacing_itk, "spacing": [abs(v) for v in spacing_itk[::-1]],
        "origin": origin, "direction": direction, "geometry_from": which,
    }


SYNTH = "tests/fixtures/nifti"


def rot_affine(angle, axis, spacing, origin):
    """RAS affine: rotation about `axis` times diag(spacing), translation origin."""
    c, s = math.cos(angle), math.sin(angle)
    r = {2: [[c, -s, 0], [s, c, 0], [0, 0, 1]], 0: [[1, 0, 0], [0, c, -s], [0, s, c]]}[axis]
    a = np.eye(4)
    a[:3, :3] = np.array(r) @ np.diag(spacing)
    a[:3, 3] = origin
    return a


def write_synthetic():
    """Tiny files written by nibabel, so the reader is also checked on NIfTI it did not write."""
    rng = np.random.default_rng(20240611)
    out = []

    def save(img, name):
        path = f"{SYNTH}/{name}"
        nib.save(img, path)
        out.append(path)

    # NIfTI-2, rotated geometry in qform and sform (code 1)
    a = rot_affine(0.4, 2, [0.7, 0.9, 2.0], [10.5, -20.25, 3.0])
    data = rng.integers(-300, 300, size=(5, 4, 3)).astype(np.int16)
    save(nib.Nifti2Image(data, a), "synth_nifti2_rot_i16.nii.gz")
    # big-endian int16 with scl_slope/scl_inter -> float32
    h = nib.Nifti1Header(endianness=">")
    h.set_data_dtype(">i2")
    # float data stored as int16: nibabel's array writer picks scl_slope/scl_inter
    img = nib.Nifti1Image(rng.normal(size=(4, 3, 2)) * 1000.0 + 5.0, np.diag([1.5, 1.5, 3, 1]), h)
    save(img, "synth_bigendian_scaled_i16.nii")
    # MSD-style 4-D float32: channels in the 4th dimension
    a = np.diag([0.8, 0.8, 2.5, 1.0])
    a[:3, 3] = [-30, 12, 7]
    save(nib.Nifti1Image(rng.normal(size=(6, 5, 4, 3)).astype(np.float32), a), "synth_4d_f32.nii.gz")
    # more voxel types
    for dt in ("uint16", "uint32", "int64", "float64", "int8", "int32"):
        v = rng.integers(0, 120, size=(3, 4, 2))
        save(nib.Nifti1Image(v.astype(dt), np.eye(4), dtype=dt), f"synth_{dt}.nii.gz")
    # qform only (rotated about x), sform code 0 -> ITK uses the qform
    img = nib.Nifti1Image(np.zeros((3, 3, 3), np.uint8), None)
    img.set_qform(rot_affine(0.3, 0, [1.0, 1.2, 1.4], [1, 2, 3]), code=1)
    img.set_sform(np.eye(4), code=0)
    save(img, "synth_qform_only.nii.gz")
    # qform (code 1) and a different sform (code 2, ALIGNED): not "very similar" -> qform
    img = nib.Nifti1Image(np.zeros((3, 3, 3), np.uint8), None)
    img.set_qform(rot_affine(0.0, 2, [1.0, 1.0, 1.0], [5, 5, 5]), code=1)
    img.set_sform(rot_affine(0.5, 2, [1.0, 1.0, 1.0], [9, 9, 9]), code=2)
    save(img, "synth_qform_vs_aligned_sform.nii.gz")
    # spacing in metres: ITK reports millimetres
    img = nib.Nifti1Image(np.ones((2, 2, 2), np.float32), np.diag([0.001, 0.002, 0.003, 1]))
    img.header.set_xyzt_units("meter", "sec")
    save(img, "synth_units_meter.nii.gz")
    return out


def main():
    files = write_synthetic()
    for c in DEMO_CASES:
        files += [f"{DEMO}/imagesTr/{c}_0000.nii.gz", f"{DEMO}/labelsTr/{c}.nii.gz"]
    for c in HIPPO_CASES:
        files += [f"{HIPPO}/imagesTr/{c}_0000.nii.gz", f"{HIPPO}/labelsTr/{c}.nii.gz"]
    files += sorted(glob.glob(f"{BRATS}/imagesTr/*.nii.gz")) + sorted(glob.glob(f"{BRATS}/labelsTr/*.nii.gz"))
    missing = [f for f in files if not os.path.exists(f)]
    if missing:
        sys.exit(f"missing input files (run from the repository root): {missing[:3]}")
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as fh:
        fh.write('{"generator": "tests/gen/gen_nifti_fixtures.py (nibabel %s, numpy %s)",\n' %
                 (nib.__version__, np.__version__))
        fh.write('"files": [\n')
        for i, f in enumerate(files):
            fh.write(json.dumps(describe(f)) + ("," if i + 1 < len(files) else "") + "\n")
            print(f, file=sys.stderr)
        fh.write("]}\n")


if __name__ == "__main__":
    main()
