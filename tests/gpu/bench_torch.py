#!/usr/bin/env python3
"""bench_torch.py: PyTorch eager twin of kernels/bench/unet_bench.c (device machine only;
never part of the build or the tests).

    python3 tests/gpu/bench_torch.py PLAN PRECS [ITERS]
    PLAN: hippo | large      PRECS: comma list of fp32, tf32, bf16, fp16

The identical network and step as unet_bench: dynamic_network_architectures'
PlainConvUNet (conv3x3x3+bias -> InstanceNorm3d(affine, eps 1e-5) -> LeakyReLU(0.01),
strided-conv downsampling, transposed-conv upsampling, concat [up, skip], 1x1 heads,
deep supervision), nnU-Net's DC_and_CE loss (CE + MemoryEfficientSoftDiceLoss,
do_bg False, batch_dice False, smooth 1e-5) with the deep-supervision weights, global
norm clipping at 12, SGD(lr 1e-2, momentum 0.99, nesterov, weight_decay 3e-5).
cudnn.benchmark = True as in nnU-Net. Precision: fp32 = allow_tf32 off; tf32 = on
(PyTorch's cuDNN default); bf16/fp16 = torch.autocast (+ GradScaler for fp16, as the
reference trainer). Inference: eval, no_grad, only the full-resolution head, batch 1.
Times are medians of ITERS synchronised iterations after 3 warm-ups.
"""
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

PLANS = {
    "hippo": dict(feat=[32, 64, 128, 256], strides=[1, 2, 2, 2], patch=(40, 56, 40), batch=9),
    "large": dict(feat=[32, 64, 128, 256, 320, 320], strides=[1, 2, 2, 2, 2, 2],
                  patch=(128, 128, 128), batch=2),
}


def block(ci, co, stride):
    return nn.Sequential(nn.Conv3d(ci, co, 3, stride, 1, bias=True),
                         nn.InstanceNorm3d(co, eps=1e-5, affine=True),
                         nn.LeakyReLU(0.01, inplace=True))


class PlainConvUNet(nn.Module):
    def __init__(self, feat, strides, in_ch=1, classes=3):
        super().__init__()
        self.enc = nn.ModuleList()
        ci = in_ch
        for f, s in zip(feat, strides):
            self.enc.append(nn.Sequential(block(ci, f, s), block(f, f, 1)))
            ci = f
        self.up, self.dec, self.heads = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        for r in range(len(feat) - 2, -1, -1):     # lowest resolution first
            s = strides[r + 1]
            self.up.append(nn.ConvTranspose3d(feat[r + 1], feat[r], s, s, bias=True))
            self.dec.append(nn.Sequential(block(2 * feat[r], feat[r], 1), block(feat[r], feat[r], 1)))
            self.heads.append(nn.Conv3d(feat[r], classes, 1, 1, 0, bias=True))
        self.deep_supervision = True

    def forward(self, x):
        skips = []
        for st in self.enc:
            x = st(x)
            skips.append(x)
        x = skips[-1]
        outs = []
        n = len(self.dec)
        for t in range(n):
            x = self.up[t](x)
            x = torch.cat((x, skips[-(t + 2)]), 1)
            x = self.dec[t](x)
            if self.deep_supervision:
                outs.append(self.heads[t](x))
            elif t == n - 1:
                outs.append(self.heads[t](x))
        return outs[::-1]                          # highest resolution first


def dice_ce(logits, y, smooth=1e-5):
    ce = F.cross_entropy(logits, y)
    p = logits.softmax(1)
    with torch.no_grad():
        oh = torch.zeros_like(p).scatter_(1, y[:, None], 1)
    p, oh = p[:, 1:], oh[:, 1:]
    axes = tuple(range(2, p.ndim))
    inter = (p * oh).sum(axes)
    sp, sy = p.sum(axes), oh.sum(axes)
    dc = (2 * inter + smooth) / (sp + sy + smooth).clamp_min(1e-8)
    return ce - dc.mean()


def run(plan, prec, iters):
    cfg = PLANS[plan]
    torch.backends.cudnn.benchmark = True
    tf32 = prec != "fp32"
    torch.backends.cudnn.allow_tf32 = tf32
    torch.backends.cuda.matmul.allow_tf32 = tf32
    dev = torch.device("cuda")
    torch.manual_seed(0)
    net = PlainConvUNet(cfg["feat"], cfg["strides"]).to(dev)
    opt = torch.optim.SGD(net.parameters(), lr=1e-2, momentum=0.99, nesterov=True,
                          weight_decay=3e-5)
    ad = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(prec)
    scaler = torch.amp.GradScaler("cuda") if prec == "fp16" else None
    B, patch = cfg["batch"], cfg["patch"]
    x = torch.randn(B, 1, *patch, device=dev)
    nh = len(cfg["feat"]) - 1
    w = [1 / 2 ** i for i in range(nh)]
    w[-1] = 0
    w = [v / sum(w) for v in w]
    tg, shp = [], list(patch)
    for i in range(nh):
        if i > 0:
            shp = [a // cfg["strides"][i] for a in shp]
        tg.append(torch.randint(0, 3, (B, *shp), device=dev))

    def train_step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=ad, enabled=ad is not None):
            outs = net(x)
            loss = sum(w[i] * dice_ce(outs[i], tg[i]) for i in range(nh) if w[i] > 0)
        if scaler:
            scaler.scale(loss).backward()
            scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(net.parameters(), 12)
            scaler.step(opt)
            scaler.update()
        else:
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 12)
            opt.step()
        return loss

    def timed(fn, n):
        ts = []
        for i in range(n + 3):
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            fn()
            torch.cuda.synchronize()
            ts.append((time.perf_counter() - t0) * 1e3)
        return statistics.median(ts[3:])

    torch.cuda.reset_peak_memory_stats()
    net.train()
    net.deep_supervision = True
    train_ms = timed(train_step, iters)
    peak = torch.cuda.max_memory_allocated() / 2 ** 20
    net.eval()
    net.deep_supervision = False
    xi = x[:1].contiguous()

    def infer():
        with torch.no_grad(), torch.autocast("cuda", dtype=ad, enabled=ad is not None):
            return net(xi)
    infer_ms = timed(infer, iters)
    print(f"bench torch plan={plan} prec={prec} batch={B} train_ms={train_ms:.2f} "
          f"infer_ms={infer_ms:.2f} peak_mib={peak:.0f}", flush=True)
    del net, opt, x, tg
    torch.cuda.empty_cache()


def main():
    plan, precs = sys.argv[1], sys.argv[2].split(",")
    iters = int(sys.argv[3]) if len(sys.argv) > 3 else 20
    print(f"torch {torch.__version__} cuda {torch.version.cuda} cudnn "
          f"{torch.backends.cudnn.version()} {torch.cuda.get_device_name()}", flush=True)
    for p in precs:
        run(plan, p, iters)


if __name__ == "__main__":
    main()
