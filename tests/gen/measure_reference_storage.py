#!/usr/bin/python3
"""Disk use of our preprocessed case files (CASE.nnu) versus the reference's Blosc
containers, for docs/preprocessing_storage.md. Not a test: run it by hand on a
preprocessed folder, e.g.

    /usr/bin/python3 tests/gen/measure_reference_storage.py $nnUNet_preprocessed/Dataset004_Hippocampus/nnUNetPlans_3d_fullres

It decodes every CASE.nnu (the format of core/nnu_store.c, read here with numpy +
zlib), recompresses the same arrays the way the reference stores them (data float32
and seg int16, byte-shuffled Blosc; Debian ships python3-blosc = Blosc 1, the
reference uses Blosc 2 with the same codecs and filters, and Blosc 2's smaller
patch-derived blocks compress no better), and prints the totals.
"""
import os
import struct
import sys
import zlib

import blosc
import numpy as np

DT = {0: np.float32, 2: np.float16, 4: np.int8, 5: np.int16}


def read_case(path):
    b = open(path, "rb").read()
    assert b[:8] == b"NNUCASE1"
    ddt, sdt, codec, C = struct.unpack_from("<4I", b, 16)
    shape = struct.unpack_from("<3q", b, 32)
    chunk = struct.unpack_from("<3q", b, 56)
    n_entries = struct.unpack_from("<Q", b, 160)[0]
    grid = [(s + c - 1) // c for s, c in zip(shape, chunk)]
    vols = []
    e = 0
    for c in range(C + 1):
        dt = np.dtype(DT[ddt if c < C else sdt])
        vol = np.zeros(shape, dt)
        for gz in range(grid[0]):
            for gy in range(grid[1]):
                for gx in range(grid[2]):
                    off, nb, crc, cod, raw = struct.unpack_from("<QIIII", b, 256 + 24 * e)
                    e += 1
                    o = (gz * chunk[0], gy * chunk[1], gx * chunk[2])
                    ext = [min(ch, s - oo) for ch, s, oo in zip(chunk, shape, o)]
                    n = ext[0] * ext[1] * ext[2]
                    blob = b[off:off + nb]
                    if cod == 1:
                        blob = zlib.decompress(blob)
                        if dt.itemsize > 1:
                            blob = np.frombuffer(blob, np.uint8).reshape(dt.itemsize, n).T.copy().tobytes()
                    elif cod == 2:                     # palette: u32 K, K values, u8 or u16 (lo, hi) indices
                        blob = zlib.decompress(blob)
                        K = struct.unpack_from("<I", blob, 0)[0]
                        pal = np.frombuffer(blob, dt, K, 4)
                        ix = np.frombuffer(blob, np.uint8, n * (1 if K <= 256 else 2), 4 + K * dt.itemsize)
                        if K > 256:
                            ix = ix[:n].astype(np.int64) | (ix[n:].astype(np.int64) << 8)
                        blob = pal[ix].tobytes()
                    arr = np.frombuffer(blob, dt).reshape(ext)
                    vol[o[0]:o[0] + ext[0], o[1]:o[1] + ext[1], o[2]:o[2] + ext[2]] = arr
        vols.append(vol)
    assert e == n_entries
    return np.stack(vols[:C]).astype(np.float32), vols[C].astype(np.int16)


def main(folder):
    files = sorted(f for f in os.listdir(folder) if f.endswith(".nnu"))
    ours = raw = 0
    ref = {"lz4hc-5": 0, "lz4hc-8": 0, "zstd-1": 0, "zstd-8": 0}
    for f in files:
        p = os.path.join(folder, f)
        ours += os.path.getsize(p)
        data, seg = read_case(p)
        raw += data.nbytes + seg.nbytes
        for name in ref:
            cname, lvl = name.split("-")
            for a in (data, seg):
                ref[name] += len(blosc.compress(a.tobytes(), typesize=a.itemsize, clevel=int(lvl),
                                                shuffle=blosc.SHUFFLE, cname=cname))
    mb = 1024 * 1024
    print("%s: %d cases" % (folder, len(files)))
    print("  uncompressed f32 data + i16 seg: %8.1f MiB" % (raw / mb))
    print("  ours (.nnu):                     %8.1f MiB" % (ours / mb))
    for name, v in ref.items():
        print("  reference-like blosc %-8s:    %8.1f MiB" % (name, v / mb))


if __name__ == "__main__":
    for folder in sys.argv[1:]:
        main(folder)
