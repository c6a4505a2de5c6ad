"""refio: the tiny binary container of the committed test fixtures.

Layout (little endian): magic b"NNUREF1\\0", u32 version (1), u32 count, then per
array: u32 name length, name (ASCII), u32 dtype length, dtype ("f16", "f32", "f64",
"i64", "u8"), u32 ndim, i64 shape[ndim], raw data in C order. Read by
tests/refio.h in the C tests.
"""
import struct

import numpy as np

_DT = {"f16": np.float16, "f32": np.float32, "f64": np.float64, "i64": np.int64, "u8": np.uint8}
_NAME = {np.dtype(v): k for k, v in _DT.items()}


def write(path, arrays):
    """arrays: list of (name, numpy array)"""
    with open(path, "wb") as f:
        f.write(b"NNUREF1\0")
        f.write(struct.pack("<II", 1, len(arrays)))
        for name, a in arrays:
            a = np.ascontiguousarray(a)
            dt = _NAME[a.dtype].encode()
            nb = name.encode()
            f.write(struct.pack("<I", len(nb)) + nb)
            f.write(struct.pack("<I", len(dt)) + dt)
            f.write(struct.pack("<I", a.ndim))
            f.write(struct.pack("<%dq" % a.ndim, *a.shape))
            f.write(a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes())
