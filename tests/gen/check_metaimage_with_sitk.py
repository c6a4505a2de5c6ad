#!/tmp/refenv/bin/python
"""Cross-check (not run by the tests; needs the build): our program writes MetaImage
files and SimpleITK reads them back with the same array and geometry.

A Lua script run by the nnunet host writes, through nnunet.image:
  - synthetic tensors of every dtype with rotated, non-symmetric geometry, as .mha
    (compressed, default), .mha (raw), .mhd + .zraw and .mhd + .raw; a 2-D image; a
    4-D image; a segmentation (stored u8 / u16 by the reference rule); f16 (stored f32)
  - every fixture in tests/fixtures/metaimage/ read by us and written back
and this script checks with SimpleITK that each file holds exactly the array the
formula (or the fixture, read by SimpleITK) gives, with bit-identical spacing,
origin and direction, and the expected pixel type.

Usage (from the repository root, after building build-mha):
    /tmp/refenv/bin/python tests/gen/check_metaimage_with_sitk.py [path/to/nnunet]
"""
import glob
import math
import os
import subprocess
import sys
import tempfile

import numpy as np
import SimpleITK as sitk

NNUNET = sys.argv[1] if len(sys.argv) > 1 else "build-mha/nnunet"
FIX = "tests/fixtures/metaimage"

SITK_OF = {"u8": "8-bit unsigned integer", "i8": "8-bit signed integer", "i16": "16-bit signed integer",
           "u16": "16-bit unsigned integer", "i32": "32-bit signed integer", "i64": "64-bit signed integer",
           "f32": "32-bit float", "f64": "64-bit float"}
NP_OF = {"u8": np.uint8, "i8": np.int8, "i16": np.int16, "u16": np.uint16, "i32": np.int32, "i64": np.int64,
         "f32": np.float32, "f64": np.float64, "f16": np.float16}


def rot(a, b):
    ca, sa, cb, sb = math.cos(a), math.sin(a), math.cos(b), math.sin(b)
    rz = np.array([[ca, -sa, 0], [sa, ca, 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, cb, -sb], [0, sb, cb]])
    return (rz @ rx).ravel().tolist()


def values(n, dt, seg=False):
    i = np.arange(n, dtype=np.int64)
    if seg:
        return (i % 7).astype(np.float64)
    v = ((i * 7919) % 1000 - 500).astype(np.float64)
    if dt in ("u8",):
        v = (i * 37) % 256
    elif dt in ("u16",):
        v = (i * 7919) % 65536
    elif dt in ("i8",):
        v = (i * 37) % 256 - 128
    elif dt.startswith("f"):
        v = v + 0.25 + i * 1e-3
    return np.asarray(v, dtype=np.float64)


# name, shape (ours), dtype, geometry (spacing_itk, origin, direction), spatial_dims, opts
CASES = []
for k, dt in enumerate(["u8", "i8", "i16", "u16", "i32", "i64", "f32", "f64"]):
    geo = ([0.7 + 0.1 * k, 0.8123456789012345, 3.0], [-12.5 + k, 30.25, 7.1], rot(0.3 * k, 0.5))
    for ext, comp in [(".mha", None), (".raw.mha", -1), (".mhd", None), (".raw.mhd", -1)]:
        CASES.append(("%s%s" % (dt, ext), [4, 5, 6], dt, geo, 3, comp, False))
CASES.append(("twod.mha", [1, 5, 7], "f32", ([0.5, 0.25, 1.0], [10.0, -4.5, 0.0],
                                             [0.0, 1.0, 0.0, -1.0, 0.0, 0.0, 0.0, 0.0, 1.0]), 2, None, False))
CASES.append(("fourd.mha", [3, 2, 4, 5], "i16", ([0.5, 0.6, 0.7], [1.0, 2.0, 3.0], rot(1.0, -0.2)), 3, None, False))
CASES.append(("seg_u8.mha", [3, 4, 5], "f32", ([1, 1, 1], [0, 0, 0], [1, 0, 0, 0, 1, 0, 0, 0, 1]), 3, None, True))
CASES.append(("half.mha", [3, 4, 5], "f16", ([2, 2, 2], [1, 1, 1], rot(0.1, 0.1)), 3, None, False))


def lua_list(v):
    return "{" + ", ".join(repr(float(x)) if isinstance(x, float) else str(x) for x in v) + "}"


def main():
    tmp = tempfile.mkdtemp(prefix="mha_check_")
    lines = ['local image = require("nnunet.image")', 'local tensor = require("nnunet.tensor")',
             'local function ok(r, msg) if not r then error(msg) end end']
    for name, shape, dt, (sp, org, d), sd, comp, seg in CASES:
        n = int(np.prod(shape))
        vals = values(n, dt, seg)
        lines.append("do local v = {%s}" % ", ".join(repr(float(x)) for x in vals))
        lines.append('  local t = tensor.from_table(v, %s, "%s")' % (lua_list(shape), dt))
        lines.append('  local ref = {spacing_itk = %s, origin = %s, direction = %s, spatial_dims = %d}'
                     % (lua_list([float(x) for x in sp]), lua_list([float(x) for x in org]),
                        lua_list([float(x) for x in d]), sd))
        opts = []
        if comp is not None:
            opts.append("compression = %d" % comp)
        if seg:
            opts.append("segmentation = true")
        lines.append('  ok(image.write("%s/%s", t, ref, {%s})) end' % (tmp, name, ", ".join(opts)))
    fixtures = sorted(glob.glob(os.path.join(FIX, "*.mh[ad]")))
    for f in fixtures:
        out = os.path.join(tmp, "fx_" + os.path.basename(f))
        lines.append('do local t, info = image.read("%s"); ok(t, info); ok(image.write("%s", t, info)) end' % (f, out))
    script = os.path.join(tmp, "write.lua")
    with open(script, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    r = subprocess.run([NNUNET, script], capture_output=True, text=True)
    if r.returncode != 0:
        print(r.stdout, r.stderr)
        sys.exit("nnunet failed")

    bad = 0
    for name, shape, dt, (sp, org, d), sd, comp, seg in CASES:
        img = sitk.ReadImage(os.path.join(tmp, name))
        arr = sitk.GetArrayFromImage(img)
        want_dt = "u8" if seg else ("f32" if dt == "f16" else dt)
        want = values(int(np.prod(shape)), dt, seg).astype(NP_OF[dt]).astype(NP_OF[want_dt])
        want_shape = shape[1:] if sd == 2 else shape
        errs = []
        if img.GetDimension() != (2 if sd == 2 else len(shape)):
            errs.append("dimension %d" % img.GetDimension())
        if list(arr.shape) != list(want_shape) or not np.array_equal(arr.ravel(), want.ravel()):
            errs.append("array differs")
        if img.GetPixelIDTypeAsString() != SITK_OF[want_dt]:
            errs.append("pixel type %s" % img.GetPixelIDTypeAsString())
        k = 2 if sd == 2 else 3
        dim = img.GetDimension()
        if list(img.GetSpacing())[:k] != list(sp)[:k] or list(img.GetOrigin())[:k] != list(org)[:k]:
            errs.append("spacing/origin %s %s" % (img.GetSpacing(), img.GetOrigin()))
        gd = img.GetDirection()
        if [gd[r * dim + c] for r in range(k) for c in range(k)] != [d[r * 3 + c] for r in range(k) for c in range(k)]:
            errs.append("direction %s" % (gd,))
        print("%-14s %s" % (name, "OK" if not errs else "FAIL: " + "; ".join(errs)))
        bad += bool(errs)
    for f in fixtures:
        a, b = sitk.ReadImage(f), sitk.ReadImage(os.path.join(tmp, "fx_" + os.path.basename(f)))
        aa, bb = sitk.GetArrayFromImage(a), sitk.GetArrayFromImage(b)
        k = min(a.GetDimension(), 3)
        errs = []
        if not np.array_equal(aa.astype(np.float64), bb.astype(np.float64)) or aa.shape != bb.shape:
            errs.append("array differs")
        if (a.GetSpacing()[:k] != b.GetSpacing()[:k] or a.GetOrigin()[:k] != b.GetOrigin()[:k]
                or a.GetDirection() != b.GetDirection()):
            errs.append("geometry %s %s %s vs %s %s %s" % (a.GetSpacing(), a.GetOrigin(), a.GetDirection(),
                                                         b.GetSpacing(), b.GetOrigin(), b.GetDirection()))
        print("%-24s %s" % ("fx_" + os.path.basename(f), "OK" if not errs else "FAIL: " + "; ".join(errs)))
        bad += bool(errs)
    print("%d files checked, %d failed (files in %s)" % (len(CASES) + len(fixtures), bad, tmp))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
