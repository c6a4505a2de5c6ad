#!/usr/bin/python3
"""gen_splits_ref.py: reference split lists for tests/test_splits.c.

Writes tests/fixtures/splits/splits_ref.bin (refio container, i64 arrays):
  perm_<n>            numpy.random.RandomState(12345).permutation(n)
  perm_s<seed>_<n>    RandomState(seed).permutation(n) for a few other seeds
  kf_<n>_<k>_train/val  sklearn KFold(5, shuffle=True, random_state=12345) fold k,
                      both sorted as nnU-Net writes them (nnunet-behaviour.md §1.4)
  rnd_<n>_<fold>_train/val  the 80:20 fallback of nnUNetTrainer.do_split for a
                      fold >= 5: RandomState(12345 + fold).choice(n, int(n*0.8),
                      replace=False) in drawn order, the remaining indices ascending
  random_sample_7     RandomState(7).random_sample(8) (f64): the double path
Run from the repo root with Debian's python3-numpy and python3-sklearn:
  /usr/bin/python3 tests/gen/gen_splits_ref.py
"""
import os
import sys

import numpy as np
from sklearn.model_selection import KFold

sys.path.insert(0, os.path.dirname(__file__))
import refio  # noqa: E402

N_PERM = list(range(1, 100)) + [260, 484, 631, 1000, 1251, 5000]
N_KFOLD = list(range(5, 40)) + [52, 100, 260, 484, 1251]
N_RANDOM = [1, 2, 5, 7, 20, 33, 260]


def main():
    arrays = []
    for n in N_PERM:
        arrays.append(("perm_%d" % n, np.random.RandomState(12345).permutation(n).astype(np.int64)))
    for seed in (0, 1, 1234, 4294967295):
        for n in (10, 100, 1000):
            arrays.append(("perm_s%d_%d" % (seed, n), np.random.RandomState(seed).permutation(n).astype(np.int64)))
    for n in N_KFOLD:
        kf = KFold(n_splits=5, shuffle=True, random_state=12345)
        for k, (tr, va) in enumerate(kf.split(np.arange(n))):
            arrays.append(("kf_%d_%d_train" % (n, k), np.sort(tr).astype(np.int64)))
            arrays.append(("kf_%d_%d_val" % (n, k), np.sort(va).astype(np.int64)))
    for n in N_RANDOM:
        for fold in (5, 6, 9):
            rnd = np.random.RandomState(seed=12345 + fold)
            idx_tr = rnd.choice(n, int(n * 0.8), replace=False)
            idx_val = [i for i in range(n) if i not in idx_tr]
            arrays.append(("rnd_%d_%d_train" % (n, fold), np.asarray(idx_tr, dtype=np.int64)))
            arrays.append(("rnd_%d_%d_val" % (n, fold), np.asarray(idx_val, dtype=np.int64)))
    arrays.append(("random_sample_7", np.random.RandomState(7).random_sample(8).astype(np.float64)))
    os.makedirs("tests/fixtures/splits", exist_ok=True)
    refio.write("tests/fixtures/splits/splits_ref.bin", arrays)
    print("wrote %d arrays" % len(arrays))


if __name__ == "__main__":
    main()
