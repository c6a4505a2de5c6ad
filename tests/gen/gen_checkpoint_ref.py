#!/usr/bin/python3
"""gen_checkpoint_ref.py: the training checkpoint as seen from Python.

The checkpoints (checkpoint_{latest,best,final}.pth) are safetensors files
(core/nnu_checkpoint.h). Debian has no python3-safetensors, so this script carries a
reader of the format written from its specification with numpy + json only; it does
what safetensors.numpy.load_file / safe_open(..., "np") do, plus every validity check
of the reference implementation (header length and start, unique keys, string
metadata, known dtypes, data_offsets consistent with shape and dtype, the tensors
tiling the data exactly) and our whole-file CRC (metadata "nnunet_crc32").

  /usr/bin/python3 tests/gen/gen_checkpoint_ref.py
      writes tests/fixtures/checkpoint/python_written.pth, a checkpoint written by
      this script (the spec's looser formatting: spaces after separators, the header's
      entries in reverse data order, __metadata__ last, metadata keys sorted), loaded
      by tests/test_checkpoint.c
  /usr/bin/python3 tests/gen/gen_checkpoint_ref.py --check FILE...
      reads checkpoints written by nnunet (e.g. build/test_checkpoint_sample.pth, left
      by test_checkpoint, or a fold's checkpoint_final.pth), validates them and prints
      what they hold; exit status 1 on any problem.
"""
import json
import os
import struct
import sys
import zlib

import numpy as np

DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": None, "I64": "<i8", "I32": "<i4", "I16": "<i2",
          "I8": "i1", "U64": "<u8", "U32": "<u4", "U16": "<u2", "U8": "u1", "BOOL": "?",
          "F8_E5M2": None, "F8_E4M3": None}
SIZES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U64": 8, "U32": 4,
         "U16": 2, "U8": 1, "BOOL": 1, "F8_E5M2": 1, "F8_E4M3": 1}
CRC_KEY = "nnunet_crc32"


def _no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        raise ValueError("duplicate key in the header")
    return dict(pairs)


def load(path):
    """-> (tensors {name: np.ndarray}, metadata {str: str}, order [names by offset]);
    raises ValueError naming the problem."""
    with open(path, "rb") as f:
        b = f.read()
    if len(b) < 8:
        raise ValueError("truncated: no header length")
    (n,) = struct.unpack("<Q", b[:8])
    if n > 100 << 20 or 8 + n > len(b):
        raise ValueError("bad header length %d" % n)
    raw = b[8:8 + n]
    if raw[:1] != b"{":
        raise ValueError("the header does not start with '{'")
    header = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    meta = header.pop("__metadata__", {}) or {}
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
        raise ValueError("__metadata__ must map strings to strings")
    data = b[8 + n:]
    entries = sorted(header.items(), key=lambda kv: tuple(kv[1]["data_offsets"]))
    pos, tensors = 0, {}
    for name, e in entries:
        dt, shape, (beg, end) = e["dtype"], e["shape"], e["data_offsets"]
        if dt not in SIZES:
            raise ValueError("%s: unknown dtype %s" % (name, dt))
        if beg != pos or end < beg:
            raise ValueError("%s: data_offsets %s do not follow the previous tensor (at %d)" % (name, [beg, end], pos))
        if end - beg != int(np.prod(shape, dtype=np.int64)) * SIZES[dt]:
            raise ValueError("%s: %d bytes for shape %s %s" % (name, end - beg, shape, dt))
        if DTYPES[dt]:
            tensors[name] = np.frombuffer(data[beg:end], dtype=DTYPES[dt]).reshape(shape)
        pos = end
    if pos != len(data):
        raise ValueError("the tensors cover %d of %d data bytes" % (pos, len(data)))
    if CRC_KEY in meta:
        i = raw.find(('"%s":' % CRC_KEY).encode())
        j = raw.find(b'"', raw.find(b":", i) + 1) + 1 + 8
        k = j - 8
        c = bytearray(b)
        c[8 + k:8 + j] = b"00000000"
        if "%08x" % zlib.crc32(bytes(c)) != meta[CRC_KEY]:
            raise ValueError("CRC mismatch: the file is corrupt")
    return tensors, meta, [name for name, _ in entries]


def check(path):
    tensors, meta, order = load(path)
    if meta.get("format") != "nnunet-checkpoint" or CRC_KEY not in meta:
        raise ValueError("not an nnunet checkpoint (format %r)" % meta.get("format"))
    params = [k for k in order if not k.startswith("optimizer.")]
    buffers = sorted({k.split(".")[1] for k in order if k.startswith("optimizer.")})
    for bname in buffers:
        for p in params:
            o = tensors["optimizer.%s.%s" % (bname, p)]
            if o.shape != tensors[p].shape:
                raise ValueError("optimizer.%s.%s has shape %s, its parameter %s" % (bname, p, o.shape,
                                                                                     tensors[p].shape))
    logs = json.loads(meta["logs"])
    state = json.loads(meta["trainer_state"]) if meta["trainer_state"] else {}
    n = len(logs["train_losses"])
    for k, v in logs.items():
        if len(v) != n:
            raise ValueError("logs.%s has %d entries, train_losses %d" % (k, len(v), n))
    nparams = sum(int(tensors[p].size) for p in params)
    print("%s: safetensors OK, CRC OK; %d parameter tensors (%d values, first %s %s), optimizer buffers %s; "
          "trainer %s, identity %s, epoch %s, sgd_steps %s, best_ema %s, %d logged epochs, trainer_state keys %s"
          % (path, len(params), nparams, params[0], list(tensors[params[0]].shape), buffers, meta["trainer"],
             meta["identity"], meta["epoch"], meta["sgd_steps"], meta["best_ema"], n, sorted(state)))


def write_fixture(path):
    params = {"a.bias": np.arange(3, dtype="<f4") / 8,
              "b.weight": (np.arange(3, 15, dtype="<f4") / 8).reshape(2, 3, 2)}
    tensors = dict(params)
    tensors["optimizer.momentum.a.bias"] = -np.arange(3, dtype="<f4")
    tensors["optimizer.momentum.b.weight"] = -np.arange(3, 15, dtype="<f4").reshape(2, 3, 2)
    logs = {"train_losses": [-0.5, -0.625], "val_losses": [-0.25, -0.375], "mean_fg_dice": [None, 0.5],
            "ema_fg_dice": [0.0, 0.05], "lrs": [0.01, 0.009], "epoch_start_timestamps": [1700000000.5, 1700000100.25],
            "epoch_end_timestamps": [1700000099.0, 1700000199.75],
            "dice_per_class_or_region": [[0.5, 0.5], [0.75, 0.25]]}
    meta = {"format": "nnunet-checkpoint", "format_version": "1", "trainer": "nnUNetTrainer",
            "identity": "Dataset999_Py/nnUNetPlans/3d_fullres", "plans_hash": str(2 ** 64 - 1), "epoch": "5",
            "best_ema": "0.75", "sgd_steps": "20", "n_classes": "2", "seed": "12345", "train_batches": "1250",
            "val_batches": "250", "trainer_state": json.dumps({"inference_allowed_mirroring_axes": [0, 1, 2]}),
            "logs": json.dumps(logs), CRC_KEY: "00000000"}
    entries, pos = [], 0
    for name in sorted(tensors):            # data in name order, like the safetensors library
        a = tensors[name]
        entries.append((name, {"data_offsets": [pos, pos + a.nbytes], "dtype": "F32", "shape": list(a.shape)}))
        pos += a.nbytes
    header = dict(reversed(entries))        # readers must sort by offset, not trust the key order
    header["__metadata__"] = dict(sorted(meta.items()))
    text = json.dumps(header).encode()
    text += b" " * ((8 - (8 + len(text)) % 8) % 8)
    blob = bytearray(struct.pack("<Q", len(text)) + text + b"".join(tensors[k].tobytes() for k in sorted(tensors)))
    i = blob.find(('"%s": "00000000"' % CRC_KEY).encode()) + len(CRC_KEY) + 5
    blob[i:i + 8] = ("%08x" % zlib.crc32(bytes(blob))).encode()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(blob)
    check(path)                             # the reader accepts what the writer wrote


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--check":
        bad = 0
        for p in sys.argv[2:]:
            try:
                check(p)
            except (ValueError, KeyError, OSError) as e:
                print("%s: %s" % (p, e))
                bad += 1
        sys.exit(1 if bad else 0)
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "checkpoint")
    write_fixture(os.path.join(root, "python_written.pth"))


if __name__ == "__main__":
    main()
