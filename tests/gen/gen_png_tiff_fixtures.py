#!/tmp/refenv/bin/python
"""Writes tests/fixtures/png_tiff/: small PNG and TIFF files and expect.json, what the
reference nnU-Net (nnunetv2 2.8.1) reader classes return for each, for tests/test_png_tiff.c.

For every (file, reader) pair expect.json records the reference's answer:
  NaturalImage2DIO().read_images / Tiff3DIO().read_images (or read_seg) -> array
  shape (C, z, y, x) and spacing; the raw array of skimage.io.imread / tifffile.imread
  (shape, dtype) before the float32 cast; sum, min, max, a weighted checksum and
  sample values (flat C-order index, value); or the exception it raises. "auto" is
  determine_reader_writer_from_file_ending(ending, example_file=file), the
  reference's choice of class, then that class's read.
Our side (what nnu_image_read must return) is derived here too: the array without
the leading channel axis when it is 1 ((z, y, x)), numpy dtype -> our dtype; where we
knowingly differ from the reference, "ours" says what we return and "deviation" why.

Usage (from the repository root):
    /tmp/refenv/bin/python tests/gen/gen_png_tiff_fixtures.py
Needs the reference environment (nnunetv2, scikit-image, tifffile, imagecodecs, Pillow).
"""
import io as _io
import json
import os
import struct
import sys
import warnings
import zlib

import numpy as np
import tifffile
from PIL import Image
from skimage import io as skio

from nnunetv2.imageio.natural_image_reader_writer import NaturalImage2DIO
from nnunetv2.imageio.reader_writer_registry import determine_reader_writer_from_file_ending
from nnunetv2.imageio.tif_reader_writer import Tiff3DIO

OUT = "tests/fixtures/png_tiff"
OUR_DTYPE = {"bool": "u8", "uint8": "u8", "int8": "i8", "int16": "i16", "uint16": "u16", "int32": "i32",
             "uint32": "i64", "int64": "i64", "float16": "f32", "float32": "f32", "float64": "f64"}

rng = np.random.default_rng(20240527)


# ---- a minimal PNG encoder, for the variants Pillow cannot write (2/4-bit gray,
# 16-bit RGB/RGBA/LA, Adam7) ----

def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def pack_rows(img, bits):
    """img (rows, samples) of ints -> row byte strings (big-endian 16-bit, MSB-first packing)"""
    rows = []
    for r in img:
        if bits == 16:
            rows.append(r.astype(">u2").tobytes())
        elif bits == 8:
            rows.append(r.astype(np.uint8).tobytes())
        else:
            per = 8 // bits
            out = bytearray((len(r) + per - 1) // per)
            for i, v in enumerate(r):
                out[i // per] |= int(v) << (8 - bits - bits * (i % per))
            rows.append(bytes(out))
    return rows


def png_bytes(img, bits, ctype, extra=b"", interlace=False):
    """img: (H, W * samples) ints; ctype: PNG colour type"""
    spp = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[ctype]
    h, w = img.shape[0], img.shape[1] // spp
    if not interlace:
        raw = b"".join(b"\0" + r for r in pack_rows(img, bits))
    else:
        im3, raw = img.reshape(h, w, spp), b""
        for x0, y0, dx, dy in [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
                               (0, 1, 1, 2)]:
            sub = im3[y0::dy, x0::dx]
            if sub.size:
                raw += b"".join(b"\0" + r for r in pack_rows(sub.reshape(sub.shape[0], -1), bits))
    ihdr = struct.pack(">IIBBBBB", w, h, bits, ctype, 0, 0, 1 if interlace else 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + extra + png_chunk(b"IDAT", zlib.compress(raw, 9))
            + png_chunk(b"IEND", b""))


def u8(shape, hi=256):
    return rng.integers(0, hi, shape).astype(np.uint8)


def make_files():
    files = {}

    def pil(name, img, **kw):
        img.save(os.path.join(OUT, name), **kw)
        files[name] = True

    def raw(name, data):
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
        files[name] = True

    def tif(name, data, **kw):
        tifffile.imwrite(os.path.join(OUT, name), data, **kw)
        files[name] = True

    # PNG
    pil("gray8.png", Image.fromarray(u8((9, 13)), "L"))
    pil("gray16.png", Image.fromarray(rng.integers(0, 65536, (7, 11)).astype(np.uint16)))
    pil("rgb8.png", Image.fromarray(u8((6, 10, 3)), "RGB"))
    pil("rgba8.png", Image.fromarray(u8((6, 10, 4)), "RGBA"))
    p = Image.fromarray(u8((8, 9), 5), "P")
    p.putpalette([0, 0, 0, 250, 10, 20, 30, 240, 40, 50, 60, 230, 128, 128, 128])
    pil("palette.png", p, transparency=1)
    pil("bits1.png", Image.fromarray(u8((9, 11), 2).astype(bool)))
    pil("gray_alpha8.png", Image.fromarray(u8((5, 7, 2)), "LA"))
    raw("gray2.png", png_bytes(rng.integers(0, 4, (5, 9)), 2, 0))
    raw("gray4.png", png_bytes(rng.integers(0, 16, (5, 9)), 4, 0))
    raw("rgb16.png", png_bytes(rng.integers(0, 65536, (4, 6 * 3)), 16, 2))
    raw("gray_alpha16.png", png_bytes(rng.integers(0, 65536, (4, 6 * 2)), 16, 4))
    raw("interlaced.png", png_bytes(rng.integers(0, 256, (11, 13)), 8, 0, interlace=True))
    # TIFF, 2-D
    tif("gray_u8.tif", u8((12, 17)))
    pil("rgb_u8.tif", Image.fromarray(u8((6, 9, 3)), "RGB"))                       # Pillow: no shape description
    tif("rgb_planar.tif", u8((3, 7, 10)), photometric="rgb", planarconfig="separate")
    tif("gray_u32.tif", rng.integers(0, 2**32, (5, 6), dtype=np.uint64).astype(np.uint32))
    pil("bits1.tif", Image.fromarray(u8((6, 13), 2).astype(bool)))
    # TIFF, 3-D (image channel files <case>_0000.tif: the sidecar is <case>.json)
    tif("vol_u16_zlib_0000.tif", rng.integers(0, 65536, (5, 6, 7)).astype(np.uint16), compression="zlib")
    with open(os.path.join(OUT, "vol_u16_zlib.json"), "w") as f:
        json.dump({"spacing": [3.0, 0.5, 0.75]}, f)
    tif("vol_f32_0000.tif", rng.normal(0, 100, (6, 5, 7)).astype(np.float32))
    tif("vol_i16_lzw_0000.tif", rng.integers(-32768, 32768, (5, 8, 9)).astype(np.int16), compression="lzw")
    tif("tiled_u16_0000.tif", rng.integers(0, 65536, (2, 20, 24)).astype(np.uint16), tile=(16, 16),
        compression="zlib")
    tif("vol1_u8_0000.tif", u8((1, 6, 9)))                                          # one-slice volume
    tif("rgb_stack.tif", u8((2, 5, 6, 3)), photometric="rgb")
    # a 3-D segmentation: its sidecar is <name>.json
    tif("seg_u8_packbits.tif", u8((6, 7, 5), 4), compression="packbits")
    with open(os.path.join(OUT, "seg_u8_packbits.json"), "w") as f:
        json.dump({"spacing": [2.5, 1.25, 1.0]}, f)
    return sorted(files)


# ---- the reference's answers ----

def raw_read(path):
    """what the class sees before the float32 cast: skimage for NaturalImage2DIO, tifffile for Tiff3DIO"""
    return skio.imread(path), tifffile.imread(path) if path.endswith((".tif", ".tiff")) else None


def summary(arr):
    a = np.asarray(arr, dtype=np.float64).ravel()
    idx = sorted(set([0, len(a) - 1, len(a) // 2] + list(rng.integers(0, len(a), 5))))
    weights = (np.arange(len(a)) % 251 + 1).astype(np.float64)
    return {"sum": float(a.sum()), "min": float(a.min()), "max": float(a.max()),
            "checksum": float((a * weights).sum()), "samples": [[int(i), float(a[i])] for i in idx]}


def reference_case(path, reader, is_seg):
    name = os.path.basename(path)
    rec = {"file": name, "reader": reader, "is_seg": is_seg}
    cls = None
    try:
        if reader == "auto":
            ending = "." + name.split(".")[-1]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                saved = sys.stdout, sys.stderr            # it prints the tracebacks of failed tries
                sys.stdout = sys.stderr = _io.StringIO()
                try:
                    cls = determine_reader_writer_from_file_ending(ending, path, verbose=False)
                finally:
                    sys.stdout, sys.stderr = saved
            rec["auto_class"] = cls.__name__
        else:
            cls = {"NaturalImage2DIO": NaturalImage2DIO, "Tiff3DIO": Tiff3DIO}[reader]
        saved, sys.stdout = sys.stdout, _io.StringIO()      # Tiff3DIO prints a warning without sidecar
        try:
            arr, props = cls().read_seg(path) if is_seg else cls().read_images((path,))
        finally:
            sys.stdout = saved
    except Exception as e:
        rec["raises"] = type(e).__name__ + ": " + str(e).split("\n")[0][:160]
        return rec, None
    if cls is NaturalImage2DIO:
        rawa = skio.imread(path)
    else:
        rawa = tifffile.imread(path)
    rec["ref_shape"] = list(arr.shape)
    rec["raw_shape"] = list(rawa.shape)
    rec["raw_dtype"] = str(rawa.dtype)
    rec["spacing"] = [float(s) for s in props["spacing"]]
    ours = arr[0] if arr.shape[0] == 1 else arr          # (z, y, x) for one channel
    rec["shape"] = list(ours.shape)
    rec["dtype"] = OUR_DTYPE[str(rawa.dtype)]
    rec.update(summary(arr))
    return rec, arr


# Where the reference answers and we knowingly do not (or differently), keyed by
# (file, reader): our status, and why.
OURS = {
    ("gray_alpha8.png", "NaturalImage2DIO"): "ERR_UNSUPPORTED",
    ("gray_alpha8.png", "auto"): "ERR_UNSUPPORTED",
    ("rgb_stack.tif", "NaturalImage2DIO"): "ERR_FORMAT",
    ("rgb_stack.tif", "Tiff3DIO"): "ERR_FORMAT",
    ("rgb_stack.tif", "auto"): "ERR_FORMAT",
}
DEVIATIONS = {
    ("rgb_u8.tif", "Tiff3DIO"): ("ERR_FORMAT", "tifffile gives (y, x, 3) and Tiff3DIO takes it for a volume whose "
                                               "last axis is 3; we read a 2-D RGB image, which Tiff3DIO rejects"),
    ("rgb_planar.tif", "Tiff3DIO"): ("ERR_FORMAT", "tifffile gives (3, y, x) and Tiff3DIO takes it for a 3-slice "
                                                   "volume; we read a 2-D RGB image, which Tiff3DIO rejects"),
}


def main():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        os.remove(os.path.join(OUT, f))
    names = make_files()
    cases = []
    for name in names:
        path = os.path.join(OUT, name)
        if name.endswith(".png"):
            readers = [("NaturalImage2DIO", False), ("auto", False)]
        elif name.startswith("seg_"):
            readers = [("Tiff3DIO", True), ("NaturalImage2DIO", True), ("auto", True)]
        else:
            readers = [("NaturalImage2DIO", False), ("Tiff3DIO", False), ("auto", False)]
        for reader, is_seg in readers:
            rec, _ = reference_case(path, reader, is_seg)
            key = (name, reader)
            if key in DEVIATIONS:
                rec["ours"], rec["deviation"] = DEVIATIONS[key]
            elif "raises" in rec:
                # the reference raises: we fail too, with ERR_FORMAT (a file the class cannot
                # read) unless listed as unsupported above
                rec["ours"] = OURS.get(key, "ERR_FORMAT")
            cases.append(rec)
    with open(os.path.join(OUT, "expect.json"), "w") as f:
        f.write('{"generator": "tests/gen/gen_png_tiff_fixtures.py", "cases": [\n')
        f.write(",\n".join(json.dumps(c) for c in cases))
        f.write("\n]}\n")
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f"{len(names)} files, {len(cases)} cases, {total} bytes in {OUT}")
    for c in cases:
        print(f'{c["file"]:24s} {c["reader"]:17s} ' +
              (f'raises {c["raises"][:70]}' if "raises" in c else f'{c["ref_shape"]} {c["raw_dtype"]} {c["spacing"]}')
              + (f'  ours {c["ours"]}' if "ours" in c else ""))


if __name__ == "__main__":
    main()
