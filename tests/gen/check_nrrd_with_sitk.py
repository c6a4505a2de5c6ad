#!/usr/bin/env python3
"""Cross-check: NRRD files written by our program, read by SimpleITK.

Not run by the test suite (it needs the built program and SimpleITK):
    /tmp/refenv/bin/python tests/gen/check_nrrd_with_sitk.py [--nnunet build-nrrd/nnunet]

For each case a tiny Lua script has our program (nnunet FILE.lua, modules
nnunet.tensor and nnunet.image) write a .nrrd/.nhdr with a given array, dtype and
geometry; then SimpleITK reads it and must report the same array (values and pixel
type) and the geometry SimpleITK itself gives after writing the same image with
sitk.WriteImage(useCompression=True) and reading it back, bit for bit. The header
text must also equal the one SimpleITK writes (the compressed bytes may differ: zlib
level). Exit status 0 when every case agrees.
"""
import argparse
import math
import os
import subprocess
import sys
import tempfile

import numpy as np
import SimpleITK as sitk

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

NP_OF = {"u8": np.uint8, "i8": np.int8, "i16": np.int16, "u16": np.uint16, "i32": np.int32, "i64": np.int64,
         "f32": np.float32, "f64": np.float64}


def rotation(a, b, c):
    ca, sa, cb, sb, cc, sc = math.cos(a), math.sin(a), math.cos(b), math.sin(b), math.cos(c), math.sin(c)
    rz = np.array([[ca, -sa, 0], [sa, ca, 0], [0, 0, 1]])
    ry = np.array([[cb, 0, sb], [0, 1, 0], [-sb, 0, cb]])
    rx = np.array([[1, 0, 0], [0, cc, -sc], [0, sc, cc]])
    return tuple(float(v) for v in (rz @ ry @ rx).ravel())


def cases(rng):
    rot = rotation(0.3, -0.5, 0.8)
    eye = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
    flip = (-1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, -1.0, 0.0)
    c = 0.4
    rot2 = (math.cos(c), -math.sin(c), math.sin(c), math.cos(c))
    yield "f32_rot.nrrd", (rng.standard_normal((4, 5, 6)) * 50).astype(np.float32), "f32", (0.7, 1.3, 2.9), \
        (12.5, -40.25, 7.125), rot, 3, False
    yield "f64_flip.nrrd", rng.standard_normal((3, 4, 5)), "f64", (0.1, 0.2, 0.3), (-1e-3, 5.0, 1e4 / 3), flip, 3, False
    yield "i16_rot.nhdr", rng.integers(-3000, 3000, (3, 5, 4)).astype(np.int16), "i16", (1.0, 0.5, 3.0), \
        (-1.0, 2.0, 3.0), rot, 3, False
    yield "u16.nrrd", rng.integers(0, 65535, (2, 3, 4)).astype(np.uint16), "u16", (2.0, 2.0, 2.0), (0.0, 0.0, 0.0), \
        eye, 3, False
    yield "i8.nrrd", rng.integers(-128, 127, (2, 3, 4)).astype(np.int8), "i8", (1.0, 1.0, 1.0), (1.0, 2.0, 3.0), \
        eye, 3, False
    yield "i32.nrrd", rng.integers(-2**31, 2**31 - 1, (2, 3, 4)).astype(np.int32), "i32", (1.5, 1.5, 1.5), \
        (0.0, 0.0, 0.0), eye, 3, False
    yield "i64.nrrd", rng.integers(-2**40, 2**40, (2, 3, 4)).astype(np.int64), "i64", (1.0, 1.0, 1.0), \
        (0.0, 0.0, 0.0), eye, 3, False
    yield "seg_u8.nrrd", rng.integers(0, 4, (3, 4, 5)).astype(np.float32), "f32", (0.9, 0.9, 5.0), \
        (-100.0, -120.0, 50.0), rot, 3, True
    yield "seg_u16.nhdr", rng.integers(0, 400, (3, 4, 5)).astype(np.float32), "f32", (0.9, 0.9, 5.0), \
        (-100.0, -120.0, 50.0), eye, 3, True
    yield "u8_2d.nrrd", rng.integers(0, 255, (1, 7, 9)).astype(np.uint8), "u8", (0.8, 1.7, 1.0), (3.5, -2.5, 0.0), \
        rot2, 2, False
    yield "f32_2d.nhdr", rng.standard_normal((1, 5, 6)).astype(np.float32), "f32", (0.3, 0.6, 1.0), (5.0, -7.5, 0.0), \
        rot2, 2, False


def lua_list(vals):
    return "{" + ",".join(repr(float(v)) if not isinstance(v, (int, np.integer)) else str(int(v)) for v in vals) + "}"


def header_text(path):
    with open(path, "rb") as f:
        data = f.read()
    end = data.find(b"\n\n")
    return data[: end + 1 if end >= 0 else len(data)].decode("latin-1")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nnunet", default=os.path.join(ROOT, "build-nrrd", "nnunet"))
    args = ap.parse_args()
    sitk.ProcessObject.SetGlobalWarningDisplay(False)
    rng = np.random.default_rng(7)
    work = tempfile.mkdtemp(prefix="nrrd_sitk_")
    all_cases = list(cases(rng))
    lua = ['local T = require("nnunet.tensor")', 'local I = require("nnunet.image")']
    for name, arr, dt, sp, org, d, sd, seg in all_cases:
        a = arr if sd == 3 else arr
        vals = a.ravel().tolist()
        lua.append(f'do local t = T.from_table({lua_list(vals)}, {lua_list(a.shape)}, "{dt}")')
        ref = (f'{{spatial_dims = {sd}, spacing_itk = {lua_list(sp)}, origin = {lua_list(org)}, '
               f'direction = {lua_list(d if sd == 3 else (d[0], d[1], 0, d[2], d[3], 0, 0, 0, 1))}}}')
        opts = "{segmentation = true}" if seg else "nil"
        lua.append(f'  local ok, err = I.write("{work}/{name}", t, {ref}, {opts}); assert(ok, err) end')
    script = os.path.join(work, "write.lua")
    with open(script, "w") as f:
        f.write("\n".join(lua) + "\n")
    r = subprocess.run([args.nnunet, script], cwd=ROOT, capture_output=True, text=True)
    if r.returncode != 0:
        print("our program failed:\n", r.stdout, r.stderr)
        return 1
    failures = 0
    for name, arr, dt, sp, org, d, sd, seg in all_cases:
        ours = os.path.join(work, name)
        img = sitk.ReadImage(ours)
        got = sitk.GetArrayFromImage(img)
        want = arr if sd == 3 else arr[0]
        if seg:
            want = want.astype(np.uint8 if want.max() < 255 else np.uint16)
        # the same image written and read back by SimpleITK itself
        ref_img = sitk.GetImageFromArray(want)
        ref_img.SetSpacing(sp[:sd])
        ref_img.SetOrigin(org[:sd])
        ref_img.SetDirection(d)
        theirs = os.path.join(work, "sitk_" + name)
        sitk.WriteImage(ref_img, theirs, useCompression=True)
        back = sitk.ReadImage(theirs)
        problems = []
        if got.dtype != want.dtype or got.shape != want.shape or not np.array_equal(got, want):
            problems.append(f"array {got.dtype}{got.shape} vs {want.dtype}{want.shape}")
        for what in ("GetSpacing", "GetOrigin", "GetDirection"):
            a, b = getattr(img, what)(), getattr(back, what)()
            if a != b:
                problems.append(f"{what}: ours {a} vs SimpleITK round trip {b}")
        ht, hs = header_text(ours), header_text(theirs)
        if ht != hs.replace("sitk_", ""):
            problems.append(f"header differs:\n--- ours\n{ht}--- SimpleITK\n{hs}")
        print(f"{name:16s} {'OK' if not problems else 'FAIL'} {img.GetPixelIDTypeAsString()} size {img.GetSize()}")
        for p in problems:
            print("    " + p)
        failures += bool(problems)
    print(f"{len(all_cases) - failures} of {len(all_cases)} cases agree with SimpleITK ({sitk.Version.VersionString()})")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
