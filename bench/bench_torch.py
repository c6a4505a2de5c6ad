#!/usr/bin/python3
"""bench_torch.py: the PyTorch side of bench/bench_engine.c (Debian python3-torch).

Builds the identical Hippocampus PlainConvUNet (the class of tests/gen/gen_net_ref.py,
which mirrors dynamic_network_architectures) and times, in float32 eager mode on the
CPU, either a training iteration (zero_grad, forward, deep-supervision Dice + CE,
backward, clip_grad_norm_(12), SGD Nesterov 0.99) or an inference forward under
torch.no_grad() (full-resolution head only). Prints one line in bench_engine's format:
  torch train3d batch=9 threads=2 median_s=... peak_rss_mb=...

  python3 bench/bench_torch.py --case train3d --batch 9 --threads 2 --reps 3"""
import argparse
import os
import resource
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "gen"))
from gen_net_ref import PlainConvUNet, dc_ce, init_he  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--case", default="train3d")
    ap.add_argument("--batch", type=int, default=9)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    dim = 3 if a.case.endswith("3d") else 2
    k = [3] * dim
    c = dict(dim=dim, n_stages=4, in_channels=1, classes=3, batch_dice=False,
             features=[32, 64, 128, 256], kernels=[k] * 4,
             strides=[[1] * dim] + [[2] * dim] * 3, n_conv=[2] * 4, n_conv_dec=[2] * 3)
    patch = [40, 56, 40] if dim == 3 else [56, 40]
    net = PlainConvUNet(c)
    net.apply(init_he)
    x = torch.randn(a.batch, 1, *patch)
    y = torch.randint(0, 3, (a.batch, 1, *patch)).float()
    times = []

    def cpu():
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime
    if a.case.startswith("train"):
        opt = torch.optim.SGD(net.parameters(), lr=1e-2, momentum=0.99, nesterov=True,
                              weight_decay=3e-5)
        ys = None
        wts = np.array([1, 0.5, 0.25])
        wts[-1] = 0
        wts = wts / wts.sum()
        for it in range(a.reps + 1):
            if it == 1:
                c0 = cpu()
            t0 = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            outs = net(x)
            if ys is None:   # the data loader's job in the reference, outside the timing
                ys = [F.interpolate(y, size=o.shape[2:], mode="nearest-exact") for o in outs]
            loss = sum(wts[i] * dc_ce(o, ys[i], False) for i, o in enumerate(outs) if wts[i] > 0)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 12)
            opt.step()
            if it > 0:
                times.append(time.perf_counter() - t0)
        key = "median_s"
        ckey, cval = "cpu_s", (cpu() - c0) / a.reps
    else:
        net.eval()
        with torch.no_grad():
            for it in range(a.reps + 1):
                if it == 1:
                    c0 = cpu()
                t0 = time.perf_counter()
                net(x)
                if it > 0:
                    times.append((time.perf_counter() - t0) / a.batch)
        key = "median_s_per_patch"
        ckey, cval = "cpu_s_per_patch", (cpu() - c0) / a.reps / a.batch
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("torch %s batch=%d threads=%d %s=%.4f %s=%.4f peak_rss_mb=%.0f" %
          (a.case, a.batch, a.threads, key, float(np.median(times)), ckey, cval, rss), flush=True)


if __name__ == "__main__":
    main()
