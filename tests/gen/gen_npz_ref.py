#!/usr/bin/python3
"""gen_npz_ref.py: .npz files written by numpy.savez_compressed for tests/test_npz.c,
which writes the same arrays with nnu_npz and compares the files byte for byte
(numpy >= 1.23 writes every member with date 1980-01-01, so the files are
deterministic), then reads these files back and compares the values.

Arrays (integer formulas the C test reproduces):
  probs.npz  probabilities float32 (3, 4, 5, 6) = ((7c + 5z + 3y + x) % 13) / 13
  multi.npz  a float16 (7,) = i / 4 - 1;  b uint8 (2, 3) = 10 i + j;
             s int64 () = -5;  seg int16 (2, 2, 2) = i - 3 (flat index i)

Run:  /usr/bin/python3 tests/gen/gen_npz_ref.py
"""
import os

import numpy as np


def main():
    here = os.path.join(os.path.dirname(__file__), "..", "fixtures", "npz")
    c, z, y, x = np.meshgrid(np.arange(3), np.arange(4), np.arange(5), np.arange(6), indexing="ij")
    probs = (((7 * c + 5 * z + 3 * y + x) % 13) / 13.0).astype(np.float32)
    np.savez_compressed(os.path.join(here, "probs.npz"), probabilities=probs)
    a = (np.arange(7) / 4.0 - 1).astype(np.float16)
    i, j = np.meshgrid(np.arange(2), np.arange(3), indexing="ij")
    b = (10 * i + j).astype(np.uint8)
    s = np.array(-5, dtype=np.int64)
    seg = (np.arange(8) - 3).astype(np.int16).reshape(2, 2, 2)
    np.savez_compressed(os.path.join(here, "multi.npz"), a=a, b=b, s=s, seg=seg)
    for n in ("probs.npz", "multi.npz"):
        with np.load(os.path.join(here, n)) as f:
            print(n, {k: (f[k].dtype.str, f[k].shape) for k in f.files})


if __name__ == "__main__":
    main()
