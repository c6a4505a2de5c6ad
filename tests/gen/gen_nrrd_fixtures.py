#!/usr/bin/env python3
"""Small NRRD fixtures for tests/test_nrrd.c and what SimpleITK reports for each.

Run with an interpreter that has SimpleITK and numpy (the reference's environment):
    /tmp/refenv/bin/python tests/gen/gen_nrrd_fixtures.py
Writes tests/fixtures/nrrd/*.nrrd|*.nhdr|*.raw|*.raw.gz and
tests/fixtures/nrrd/sitk_reference.json: one entry per file with SimpleITK's size,
spacing, origin, direction (row-major), pixel type, the dtype our reader returns,
a few voxels (flat C-order index of GetArrayFromImage, value) and the sum (math.fsum).

Some files are written by SimpleITK itself (sitk.WriteImage, as the reference writes
them); others are written by hand here because SimpleITK never writes them
(big-endian, RAS space, old-style spacings/axis mins, ASCII, line/byte skip, a
detached header with a relative data file). Files SimpleITK refuses are listed
under "rejected" with its message. Deterministic: fixed seed, fixed content.
"""
import gzip
import json
import math
import os
import re
import sys

import numpy as np
import SimpleITK as sitk

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.normpath(os.path.join(HERE, "..", "fixtures", "nrrd"))
REL = "tests/fixtures/nrrd"

DTYPE_OF = {
    sitk.sitkUInt8: "u8", sitk.sitkInt8: "i8", sitk.sitkInt16: "i16", sitk.sitkUInt16: "u16",
    sitk.sitkInt32: "i32", sitk.sitkUInt32: "i64", sitk.sitkInt64: "i64", sitk.sitkUInt64: "i64",
    sitk.sitkFloat32: "f32", sitk.sitkFloat64: "f64",
}

rng = np.random.default_rng(20240611)
entries = []
rejected = []

# a rotation that is not symmetric (no axis-aligned direction), from three angles
def rotation(a, b, c):
    ca, sa, cb, sb, cc, sc = math.cos(a), math.sin(a), math.cos(b), math.sin(b), math.cos(c), math.sin(c)
    rz = np.array([[ca, -sa, 0], [sa, ca, 0], [0, 0, 1]])
    ry = np.array([[cb, 0, sb], [0, 1, 0], [-sb, 0, cb]])
    rx = np.array([[1, 0, 0], [0, cc, -sc], [0, sc, cc]])
    return rz @ ry @ rx


def record(name, note):
    path = os.path.join(OUT, name)
    img = sitk.ReadImage(path)
    arr = sitk.GetArrayFromImage(img)
    flat = arr.ravel()
    n = flat.size
    idx = sorted({0, 1, n // 3, n // 2, n - 2, n - 1, int(np.argmax(flat)), int(np.argmin(flat))})
    entries.append({
        "file": REL + "/" + name,
        "note": note,
        "dimension": img.GetDimension(),
        "size": list(img.GetSize()),
        "spacing": list(img.GetSpacing()),
        "origin": list(img.GetOrigin()),
        "direction": list(img.GetDirection()),
        "pixel": img.GetPixelIDTypeAsString(),
        "dtype": DTYPE_OF[img.GetPixelID()],
        "samples": [[i, float(flat[i])] for i in idx],
        "sum": math.fsum(float(v) for v in flat),
    })


def sitk_write(name, arr, spacing, origin, direction, compress, note):
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing(spacing)
    img.SetOrigin(origin)
    img.SetDirection(direction)
    sitk.WriteImage(img, os.path.join(OUT, name), useCompression=compress)
    record(name, note)


def hand_write(name, header, data, note, expect_ok=True):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(header.encode() + data)
    if expect_ok:
        record(name, note)
    else:
        try:
            sitk.ReadImage(os.path.join(OUT, name))
            raise SystemExit(f"{name}: SimpleITK read it, expected a failure")
        except RuntimeError as e:
            msg = [l for l in str(e).strip().splitlines() if l.strip()][-1]
            msg = re.sub(r"\(0x[0-9a-f]+\)", "", msg)      # no pointer values: deterministic output
            rejected.append({"file": REL + "/" + name, "note": note, "sitk_error": msg})


def main():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        os.remove(os.path.join(OUT, f))
    sitk.ProcessObject.SetGlobalWarningDisplay(False)

    R = rotation(0.3, -0.5, 0.8)
    rot = tuple(float(v) for v in R.ravel())
    f32 = (rng.standard_normal((6, 7, 8)) * 100).astype(np.float32)     # (z, y, x)
    sitk_write("f32_rot_gz.nrrd", f32, (0.7, 1.3, 2.9), (12.5, -40.25, 7.125), rot, True,
               "3-D float32, rotated direction, gzip (SimpleITK)")
    sitk_write("f32_rot_raw.nrrd", f32, (0.7, 1.3, 2.9), (12.5, -40.25, 7.125), rot, False,
               "3-D float32, rotated direction, raw (SimpleITK)")
    i16 = rng.integers(-3000, 3000, (5, 6, 7)).astype(np.int16)
    sitk_write("i16_pair.nhdr", i16, (1.0, 0.5, 3.0), (-1.0, 2.0, 3.0), rot, True,
               "3-D int16, detached header + i16_pair.raw.gz (SimpleITK)")
    sitk_write("u16_pair_raw.nhdr", rng.integers(0, 65535, (3, 4, 5)).astype(np.uint16), (2.0, 2.0, 2.0),
               (0.0, 0.0, 0.0), (1, 0, 0, 0, 1, 0, 0, 0, 1), False,
               "3-D uint16, detached header + u16_pair_raw.raw (SimpleITK)")
    u8_2d = rng.integers(0, 255, (9, 11)).astype(np.uint8)           # (y, x)
    R2 = (math.cos(0.4), -math.sin(0.4), math.sin(0.4), math.cos(0.4))
    sitk_write("u8_2d.nrrd", u8_2d, (0.8, 1.7), (3.5, -2.5), R2, True, "2-D uint8, rotated (SimpleITK)")
    sitk_write("u8.nrrd", rng.integers(0, 5, (4, 5, 6)).astype(np.uint8), (1.5, 1.5, 4.0), (1.0, 2.0, 3.0),
               (1, 0, 0, 0, -1, 0, 0, 0, -1), True, "3-D uint8 label-like, flipped axes (SimpleITK)")
    sitk_write("i16.nrrd", i16, (0.9, 0.9, 5.0), (-100.0, -120.0, 50.0), (1, 0, 0, 0, 1, 0, 0, 0, 1), True,
               "3-D int16 (SimpleITK)")
    sitk_write("u16.nrrd", rng.integers(0, 65535, (3, 5, 4)).astype(np.uint16), (1.0, 1.0, 1.0),
               (0.0, 0.0, 0.0), (1, 0, 0, 0, 1, 0, 0, 0, 1), True, "3-D uint16 (SimpleITK)")
    sitk_write("f64.nrrd", rng.standard_normal((3, 4, 5)), (0.3, 0.4, 0.5), (1e-3, 2e5, -7.0), rot, True,
               "3-D double, rotated (SimpleITK)")

    # ---- written by hand ----
    v = np.arange(3 * 4 * 5, dtype=np.int16).reshape(3, 4, 5) * 37 - 1000
    hand_write("big_endian_raw.nrrd",
               "NRRD0004\ntype: short\ndimension: 3\nspace: left-posterior-superior\nsizes: 5 4 3\n"
               "space directions: (0.5,0,0) (0,0.75,0) (0,0,2.5)\nkinds: domain domain domain\n"
               "endian: big\nencoding: raw\nspace origin: (1,2,3)\n\n", v.astype(">i2").tobytes(),
               "big-endian int16, raw")
    f = (np.arange(60, dtype=np.float32).reshape(3, 4, 5) - 20.5) * 0.25
    hand_write("big_endian_f32_gz.nrrd",
               "NRRD0005\ntype: float\ndimension: 3\nsizes: 5 4 3\nendian: big\nencoding: gz\n\n",
               gzip.compress(f.astype(">f4").tobytes()), "big-endian float, gzip, no geometry (NRRD0005)")
    hand_write("ras.nrrd",
               "NRRD0004\ntype: int16\ndimension: 3\nspace: right-anterior-superior\nsizes: 5 4 3\n"
               "space directions: (0.6,0.8,0) (-1.6,1.2,0) (0,0,3)\nendian: little\nencoding: raw\n"
               "space origin: (10.5,-20.25,30)\n\n", v.astype("<i2").tobytes(),
               "RAS space: ITK negates x and y of directions and origin")
    hand_write("las.nrrd",
               "NRRD0003\ntype: uint8\ndimension: 3\nspace: LAS\nsizes: 5 4 3\n"
               "space directions: (1,0,0) (0,1,0) (0,0,1)\nencoding: raw\nspace origin: (4,5,6)\n\n",
               (np.arange(60) % 256).astype(np.uint8).tobytes(), "LAS space: ITK negates x")
    hand_write("scanner_xyz.nrrd",
               "NRRD0004\ntype: uint16\ndimension: 3\nspace: scanner-xyz\nsizes: 5 4 3\n"
               "space directions: (0,2,0) (3,0,0) (0,0,1)\nendian: little\nencoding: raw\n"
               "space origin: (1,1,1)\n\n", (np.arange(60) * 1000).astype("<u2").tobytes(),
               "scanner-xyz space: taken as is, axes swapped")
    hand_write("spacings_old.nrrd",
               "NRRD0001\n# old-style geometry\ntype: unsigned short\ndimension: 3\nsizes: 5 4 3\n"
               "spacings: 1.5 2.5 -3.5\naxis mins: 1 2 3\nendian: little\nencoding: raw\n\n",
               (np.arange(60) * 3).astype("<u2").tobytes(),
               "old-style spacings (one negative: ITK flips that axis) and axis mins (cell: min + spacing/2)")
    hand_write("mins_maxs_node.nrrd",
               "NRRD0004\ntype: int\ndimension: 3\nsizes: 5 4 3\naxis mins: 1 2 3\naxis maxs: 5 8 9\n"
               "centers: node cell ???\nendian: little\nencoding: raw\n\n",
               (np.arange(60) * 100000 - 3000000).astype("<i4").tobytes(),
               "axis mins + maxs, node/cell centers, int32")
    hand_write("ascii.nrrd",
               "NRRD0004\ntype: double\ndimension: 2\nsizes: 4 3\nspacings: 0.5 0.25\nencoding: ascii\n\n",
               (" ".join(repr(float(x)) for x in (np.arange(12) * 0.1 - 0.35)) + "\n").encode(),
               "2-D double, ASCII encoding, old-style spacings")
    hand_write("skips.nrrd",
               "NRRD0004\ntype: int8\ndimension: 3\nsizes: 5 4 3\nline skip: 2\nbyte skip: 3\nencoding: raw\n"
               "my key:=my value\n\n", b"junk line 1\njunk line 2\nXYZ" +
               (np.arange(60) - 30).astype(np.int8).tobytes(), "line skip + byte skip, int8, key/value pair")
    hand_write("uint32.nrrd",
               "NRRD0004\ntype: uint\ndimension: 3\nsizes: 5 4 3\nkinds: domain space time\nendian: little\n"
               "encoding: gzip\nbyte skip: 4\n\n",
               gzip.compress(b"\0\0\0\0" + (np.arange(60, dtype=np.uint64) * 70000000).astype("<u4").tobytes()),
               "uint32 (widened to i64), gzip with byte skip (decompressed bytes), kinds space/time")
    with open(os.path.join(OUT, "detached_data.bin"), "wb") as g:
        g.write(b"HEADERJUNK" + (np.arange(60) * 0.5).astype("<f8").tobytes())
    hand_write("detached_skip.nhdr",
               "NRRD0004\ntype: double\ndimension: 3\nspace dimension: 3\nsizes: 5 4 3\n"
               "space directions: (1,0,0) none (0,0,2)\nendian: little\nencoding: raw\n"
               "data file: ./detached_data.bin\nbyte skip: -1\n", b"",
               "hand-written .nhdr: relative data file, byte skip -1, a 'none' direction")

    # ---- files SimpleITK rejects ----
    hand_write("rej_2d_in_3d_space.nrrd",
               "NRRD0004\ntype: short\ndimension: 2\nsizes: 3 2\nspace: LPS\n"
               "space directions: (1,0,0) (0,1,0)\nendian: little\nencoding: raw\n\n",
               np.zeros(6, "<i2").tobytes(), "2 axes in a 3-D space", expect_ok=False)
    hand_write("rej_no_endian.nrrd",
               "NRRD0004\ntype: short\ndimension: 3\nsizes: 3 2 1\nencoding: raw\n\n",
               np.zeros(6, "<i2").tobytes(), "short without endian", expect_ok=False)

    with open(os.path.join(OUT, "sitk_reference.json"), "w") as f:
        json.dump({"generator": "tests/gen/gen_nrrd_fixtures.py", "simpleitk": sitk.Version.VersionString(),
                   "files": entries, "rejected": rejected}, f, indent=1)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(OUT, p)) for p in os.listdir(OUT))
    print(f"{len(entries)} files, {len(rejected)} rejected, {total} bytes in {OUT}")


if __name__ == "__main__":
    sys.exit(main())
