#!/tmp/refenv/bin/python
"""Writes the MetaImage fixtures of tests/test_metaimage.c into tests/fixtures/metaimage/:
small .mha/.mhd files written by SimpleITK (sitk.WriteImage, as the reference writes
them) and a few headers written by hand for what SimpleITK does not write (big-endian
data, HeaderSize = -1, ElementSize, the Position/Orientation aliases, negative spacing,
MET_LONG/MET_ULONG, CRLF line ends), then reads every file back with SimpleITK and
records what it reports in expected.json (one JSON object per line, parsed by the C
test without a JSON library):

    path, size (SimpleITK's, x first), shape (our array order: (z, y, x) or
    (c, z, y, x); 2-D -> (1, y, x)), dtype (ours: uint32 -> i64, ...), spatial_dims,
    spacing_itk / origin / direction (3-D, as nnu_image_info: the upper-left 3-D part
    of a 4-D geometry; 2-D padded with spacing 1, origin 0, direction [8] = 1),
    sum / min / max, checksum1 (sum of byte * (i % 251 + 1) over the voxel buffer in
    our dtype, C order) and samples [[flat index, value], ...].

Usage (from the repository root; needs SimpleITK and numpy):
    /tmp/refenv/bin/python tests/gen/gen_metaimage_fixtures.py
"""
import json
import math
import os
import zlib

import numpy as np
import SimpleITK as sitk

OUT = "tests/fixtures/metaimage"

OUR_DTYPE = {"uint8": "u8", "int8": "i8", "int16": "i16", "uint16": "u16", "int32": "i32",
             "uint32": "i64", "int64": "i64", "uint64": "i64", "float32": "f32", "float64": "f64"}
WIDEN = {"uint32": np.int64, "uint64": np.int64}


def rotation():
    """a non-symmetric rotation: about z by 0.3, then about x by 0.5"""
    c, s = math.cos(0.3), math.sin(0.3)
    rz = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    c2, s2 = math.cos(0.5), math.sin(0.5)
    rx = np.array([[1, 0, 0], [0, c2, -s2], [0, s2, c2]])
    return tuple((rz @ rx).ravel().tolist())


def volume(shape, dtype, seed):
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "f":
        return (rng.normal(size=shape) * 100).astype(dtype)
    info = np.iinfo(dtype)
    lo, hi = max(info.min, -30000), min(info.max, 60000)
    a = rng.integers(lo, hi, size=shape, endpoint=True).astype(dtype)
    a.flat[0], a.flat[-1] = lo, hi          # the extremes survive
    return a


def write_sitk(name, arr, spacing, origin, direction, compress, is_vector=False):
    img = sitk.GetImageFromArray(arr, isVector=is_vector)
    img.SetSpacing(spacing)
    img.SetOrigin(origin)
    img.SetDirection(direction)
    sitk.WriteImage(img, os.path.join(OUT, name), useCompression=compress)


def write_raw(name, header_lines, data, prefix=b""):
    """a hand-written .mha: header lines, then prefix + data bytes"""
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(("\n".join(header_lines) + "\n").encode())
        f.write(prefix + data)


def expectation(name):
    path = os.path.join(OUT, name)
    img = sitk.ReadImage(path)
    arr = sitk.GetArrayFromImage(img)
    dim = img.GetDimension()
    size = list(img.GetSize())
    sp, org, d = list(img.GetSpacing()), list(img.GetOrigin()), list(img.GetDirection())
    if dim == 2:
        shape = [1, size[1], size[0]]
        spacing_itk, origin = sp + [1.0], org + [0.0]
        direction = [d[0], d[1], 0.0, d[2], d[3], 0.0, 0.0, 0.0, 1.0]
        spatial = 2
    else:
        shape = list(arr.shape) if dim == 3 else [size[3], size[2], size[1], size[0]]
        if dim == 4 and size[3] == 1:
            shape = shape[1:]
        spacing_itk, origin = sp[:3], org[:3]
        direction = [d[r * dim + c] for r in range(3) for c in range(3)]
        spatial = 3
    kind = str(arr.dtype)
    ours = arr.astype(WIDEN.get(kind, arr.dtype))
    b = np.frombuffer(ours.tobytes(), dtype=np.uint8).astype(np.uint64)
    k = (np.arange(b.size, dtype=np.uint64) % 251) + 1
    flat = ours.ravel()
    idx = sorted(set([0, flat.size - 1] + [int(i) for i in np.linspace(0, flat.size - 1, 9)]))
    return {"path": path, "size": size, "shape": shape, "dtype": OUR_DTYPE[kind], "spatial_dims": spatial,
            "spacing_itk": spacing_itk, "spacing": [abs(v) for v in spacing_itk[::-1]],
            "origin": origin, "direction": direction,
            "sum": math.fsum(float(v) for v in flat), "min": float(flat.min()), "max": float(flat.max()),
            "checksum1": int((b * k).sum()), "samples": [[i, float(flat[i])] for i in idx]}


def main():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        os.remove(os.path.join(OUT, f))
    rot = rotation()
    names = []

    # 3-D float32 with a rotated, non-symmetric direction and an origin
    a = volume((5, 6, 7), np.float32, 1)
    write_sitk("rot3d_f32.mha", a, (0.7, 0.8123456789012345, 3.0), (-12.5, 30.25, 7.1), rot, False)
    write_sitk("rot3d_f32_z.mha", a, (0.7, 0.8123456789012345, 3.0), (-12.5, 30.25, 7.1), rot, True)
    names += ["rot3d_f32.mha", "rot3d_f32_z.mha"]
    # .mhd + .raw and .mhd + .zraw
    b = volume((4, 5, 6), np.int16, 2)
    write_sitk("pair_i16.mhd", b, (1.5, 1.25, 2.0), (1.0, -2.0, 3.0), rot, False)
    write_sitk("pair_i16_z.mhd", b, (1.5, 1.25, 2.0), (1.0, -2.0, 3.0), rot, True)
    names += ["pair_i16.mhd", "pair_i16_z.mhd"]
    # 2-D, with a flipped direction
    c = volume((9, 11), np.uint8, 3)
    write_sitk("twod_u8.mha", c, (0.5, 0.25), (10.0, -4.5), (0.0, 1.0, 1.0, 0.0), True)
    names.append("twod_u8.mha")
    # one file per dtype SimpleITK writes
    ident = (1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0)
    for dt, nm in [(np.uint8, "u8"), (np.int8, "i8"), (np.int16, "i16"), (np.uint16, "u16"), (np.int32, "i32"),
                   (np.uint32, "u32"), (np.int64, "i64"), (np.uint64, "u64"), (np.float64, "f64")]:
        v = volume((3, 4, 5), dt, 10 + len(names))
        write_sitk("dtype_%s.mha" % nm, v, (0.9, 1.1, 2.5), (3.0, 2.0, 1.0), ident, nm in ("u8", "u16", "f64"))
        names.append("dtype_%s.mha" % nm)
    # 4-D (c = 2 along the 4th axis)
    f4 = volume((2, 3, 4, 5), np.float32, 4)
    # JoinSeries: GetImageFromArray would make a 3-D vector image of a 4-D array
    img = sitk.JoinSeries([sitk.GetImageFromArray(f4[i]) for i in range(f4.shape[0])])
    img.SetSpacing((0.5, 0.6, 0.7, 2.0))
    img.SetOrigin((1.0, 2.0, 3.0, 4.0))
    sitk.WriteImage(img, os.path.join(OUT, "four_d_f32.mha"), useCompression=True)
    names.append("four_d_f32.mha")

    # ---- hand-written headers ----
    be = volume((3, 4, 5), np.int16, 5)
    write_raw("bigendian_i16.mha", [
        "ObjectType = Image", "NDims = 3", "BinaryData = True", "BinaryDataByteOrderMSB = True",
        "CompressedData = False", "TransformMatrix = 0 1 0 -1 0 0 0 0 1", "Offset = 1.5 2.5 -3.5",
        "ElementSpacing = 0.75 0.5 4", "DimSize = 5 4 3", "ElementType = MET_SHORT", "ElementDataFile = LOCAL"],
        be.astype(">i2").tobytes())
    bef = volume((2, 3, 4), np.float64, 6)
    zb = zlib.compress(bef.astype(">f8").tobytes(), 6)
    # ITK 5.4 needs CompressedDataSize (without it: "Uncompress failed" and garbage)
    write_raw("bigendian_f64_z.mha", [
        "NDims = 3", "ElementByteOrderMSB = True", "CompressedData = True", "CompressedDataSize = %d" % len(zb),
        "DimSize = 4 3 2", "ElementType = MET_DOUBLE", "ElementDataFile = LOCAL"], zb)
    hv = volume((2, 3, 4), np.uint16, 7)
    write_raw("headersize_end.mha", [
        "NDims = 3", "HeaderSize = -1", "Position = 5 6 7",
        "Orientation = 1 0 0 0 0 1 0 -1 0", "ElementSize = 2 3 4", "DimSize = 4 3 2",
        "ElementType = MET_USHORT", "ElementDataFile = LOCAL"], hv.tobytes(), prefix=b"junk before the data")
    ng = volume((2, 3, 4), np.uint8, 8)
    write_raw("negative_spacing.mha", [
        "ObjectType = Image", "NDims = 3", "Origin = 1 2 3", "ElementSpacing = -1.5 2 3",
        "ElementSize = 9 9 9", "DimSize = 4 3 2", "ElementType = MET_UCHAR", "ElementDataFile = LOCAL"],
        ng.tobytes())
    lg = volume((2, 3, 4), np.int32, 9)
    write_raw("met_long_crlf.mha", [
        "ObjectType = Image\r", "NDims = 3\r", "Comment = MET_LONG is 4 bytes in MetaIO\r",
        "DimSize = 4 3 2\r", "ElementType = MET_LONG\r", "ElementDataFile = LOCAL\r"], lg.tobytes())
    ul = volume((2, 3, 4), np.uint32, 10)
    ul.flat[5] = 4000000000
    write_raw("met_ulong.mha", [
        "NDims = 3", "DimSize = 4 3 2", "ElementType = MET_ULONG", "ElementDataFile = LOCAL"], ul.tobytes())
    names += ["bigendian_i16.mha", "bigendian_f64_z.mha", "headersize_end.mha", "negative_spacing.mha",
              "met_long_crlf.mha", "met_ulong.mha"]

    with open(os.path.join(OUT, "expected.json"), "w") as f:
        for n in names:
            f.write(json.dumps(expectation(n)) + "\n")
    total = sum(os.path.getsize(os.path.join(OUT, x)) for x in os.listdir(OUT))
    print("wrote %d fixtures, %d bytes in %s" % (len(names), total, OUT))


if __name__ == "__main__":
    main()
