#!/usr/bin/python3
"""gen_net_ref.py: PyTorch reference values for tests/test_net.c.

Builds small PlainConvUNets exactly as dynamic_network_architectures does
(nnunet-behaviour.md §6: ConvDropoutNormReLU = conv -> InstanceNorm(eps 1e-5,
affine) -> LeakyReLU(0.01); strided-conv downsampling; ConvTranspose (k = s)
upsampling; cat([up, skip]); 1x1 heads on every decoder stage), the reference
loss (§7.4: RobustCE + MemoryEfficientSoftDice(smooth 1e-5, do_bg False) with
deep-supervision weights 1/2^i, lowest 0, normalised; targets downsampled with
'nearest-exact') and one SGD step (§7.1: momentum 0.99, Nesterov, wd 3e-5,
lr 1e-2, clip_grad_norm_ 12), and separately one Adam step (§7.9: amsgrad,
lr 3e-4, wd 3e-5) from the same gradients.

Weights, input and target are drawn in float32 and written to the fixture; the
reference computation then runs in float64 so the fixture holds (nearly) exact
values and the C test's tolerance measures only its own float32 error.

Run (Debian python3-torch 1.13):  /usr/bin/python3 tests/gen/gen_net_ref.py
Writes tests/fixtures/net_<name>.bin (format: see write_fixture)."""
import os
import struct

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures")


class ConvDropoutNormReLU(nn.Module):
    def __init__(self, dim, cin, cout, k, s):
        super().__init__()
        conv = nn.Conv3d if dim == 3 else nn.Conv2d
        norm = nn.InstanceNorm3d if dim == 3 else nn.InstanceNorm2d
        self.conv = conv(cin, cout, k, s, padding=[(x - 1) // 2 for x in k], bias=True)
        self.norm = norm(cout, eps=1e-5, affine=True)
        self.nonlin = nn.LeakyReLU(0.01, inplace=True)

    def forward(self, x):
        return self.nonlin(self.norm(self.conv(x)))


class StackedConvBlocks(nn.Module):
    def __init__(self, n, dim, cin, cout, k, s):
        super().__init__()
        self.convs = nn.Sequential(ConvDropoutNormReLU(dim, cin, cout, k, s),
                                   *[ConvDropoutNormReLU(dim, cout, cout, k, [1] * len(k))
                                     for _ in range(n - 1)])

    def forward(self, x):
        return self.convs(x)


class Encoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        stages, cin = [], c["in_channels"]
        for s in range(c["n_stages"]):
            stages.append(nn.Sequential(StackedConvBlocks(c["n_conv"][s], c["dim"], cin,
                                                          c["features"][s], c["kernels"][s],
                                                          c["strides"][s])))
            cin = c["features"][s]
        self.stages = nn.Sequential(*stages)

    def forward(self, x):
        skips = []
        for s in self.stages:
            x = s(x)
            skips.append(x)
        return skips


class Decoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        n, f, dim = c["n_stages"], c["features"], c["dim"]
        tconv = nn.ConvTranspose3d if dim == 3 else nn.ConvTranspose2d
        conv = nn.Conv3d if dim == 3 else nn.Conv2d
        stages, tps, segs = [], [], []
        for s in range(1, n):
            below, skip = f[-s], f[-(s + 1)]
            st = c["strides"][-s]
            tps.append(tconv(below, skip, st, st, bias=True))
            stages.append(StackedConvBlocks(c["n_conv_dec"][s - 1], dim, 2 * skip, skip,
                                            c["kernels"][-(s + 1)], [1] * len(st)))
            segs.append(conv(skip, c["classes"], 1, 1, 0, bias=True))
        self.stages = nn.ModuleList(stages)
        self.transpconvs = nn.ModuleList(tps)
        self.seg_layers = nn.ModuleList(segs)

    def forward(self, skips):
        x, outs = skips[-1], []
        for s in range(len(self.stages)):
            x = self.transpconvs[s](x)
            x = torch.cat((x, skips[-(s + 2)]), 1)
            x = self.stages[s](x)
            outs.append(self.seg_layers[s](x))
        return outs[::-1]


class PlainConvUNet(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.encoder = Encoder(c)
        self.decoder = Decoder(c)

    def forward(self, x):
        return self.decoder(self.encoder(x))


def init_he(module):
    """InitWeights_He(1e-2)"""
    if isinstance(module, (nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.ConvTranspose3d)):
        nn.init.kaiming_normal_(module.weight, a=1e-2)
        if module.bias is not None:
            module.bias = nn.init.constant_(module.bias, 0)


def soft_dice(x, y, batch_dice, smooth=1e-5):
    """MemoryEfficientSoftDiceLoss, softmax nonlinearity, do_bg False, no ignore label"""
    x = torch.softmax(x, 1)
    axes = tuple(range(2, x.ndim))
    y1h = torch.zeros_like(x).scatter_(1, y.long(), 1)[:, 1:]
    x = x[:, 1:]
    inter = (x * y1h).sum(axes)
    sp = x.sum(axes)
    sy = y1h.sum(axes)
    if batch_dice:
        inter, sp, sy = inter.sum(0), sp.sum(0), sy.sum(0)
    dc = (2 * inter + smooth) / torch.clip(sy + sp + smooth, 1e-8)
    return -dc.mean()


def dc_ce(x, y, batch_dice):
    return F.cross_entropy(x, y[:, 0].long()) + soft_dice(x, y, batch_dice)


def write_fixture(path, entries):
    """magic 'NNUREF01', u32 version 1, u32 count; per entry: u32 name length, name,
    u32 dtype (0 f32, 1 i32, 2 f64), u32 ndim, i64 shape[ndim], little-endian data."""
    codes = {np.float32: 0, np.int32: 1, np.float64: 2}
    with open(path, "wb") as f:
        f.write(b"NNUREF01")
        f.write(struct.pack("<II", 1, len(entries)))
        for name, arr in entries:
            arr = np.ascontiguousarray(arr)
            nb = name.encode()
            f.write(struct.pack("<I", len(nb)) + nb)
            f.write(struct.pack("<II", codes[arr.dtype.type], arr.ndim))
            f.write(struct.pack("<%dq" % arr.ndim, *arr.shape))
            f.write(arr.tobytes())


def make(name, c, seed):
    torch.manual_seed(seed)
    net = PlainConvUNet(c)
    net.apply(init_he)
    # random affine norm parameters and biases so their gradients are exercised
    with torch.no_grad():
        for n_, p in net.named_parameters():
            if n_.endswith("norm.weight"):
                p.uniform_(0.5, 1.5)
            elif n_.endswith("bias"):
                p.uniform_(-0.2, 0.2)
    names = [n_ for n_, _ in net.named_parameters()]
    w32 = [p.detach().clone() for _, p in net.named_parameters()]
    N, patch = c["batch"], c["patch"]
    x = torch.randn(N, c["in_channels"], *patch, dtype=torch.float32)
    y = torch.randint(0, c["classes"], (N, 1, *patch), dtype=torch.int32)

    net = net.double()
    xd = x.double()
    outs = net(xd)
    K = len(outs)
    wts = np.array([1 / (2 ** i) for i in range(K)])
    wts[-1] = 0
    wts = wts / wts.sum()
    loss = 0
    for i, o in enumerate(outs):
        if wts[i] == 0:
            continue
        yi = F.interpolate(y.double(), size=o.shape[2:], mode="nearest-exact")
        loss = loss + wts[i] * dc_ce(o, yi, c["batch_dice"])
    loss.backward()
    # the lowest head has loss weight 0: no gradient (None), so SGD leaves it alone
    grads = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1)
                       for p in net.parameters()])
    gnorm = float(grads.norm())
    # Adam (2018 trainer, §7.9: amsgrad, lr 3e-4, wd 3e-5, no clipping) on a copy
    adam_params = [p.detach().clone().requires_grad_(True) for p in net.parameters()]
    for a_, p in zip(adam_params, net.parameters()):
        a_.grad = None if p.grad is None else p.grad.clone()
    torch.optim.Adam(adam_params, lr=3e-4, weight_decay=3e-5, amsgrad=True).step()
    after_adam = torch.cat([p.detach().reshape(-1) for p in adam_params])
    opt = torch.optim.SGD(net.parameters(), lr=1e-2, momentum=0.99, nesterov=True,
                          weight_decay=3e-5)
    torch.nn.utils.clip_grad_norm_(net.parameters(), c["clip"])
    opt.step()
    after = torch.cat([p.detach().reshape(-1) for p in net.parameters()])

    n = c["n_stages"]
    cfg = [c["dim"], n, c["in_channels"], c["classes"], c["batch_dice"], N, *patch]
    cfg += c["features"] + [k for ks in c["kernels"] for k in ([1] + ks if c["dim"] == 2 else ks)]
    cfg += [s for ss in c["strides"] for s in ([1] + ss if c["dim"] == 2 else ss)]
    cfg += c["n_conv"] + c["n_conv_dec"]
    entries = [("config", np.array(cfg, np.int32)),
               ("clip", np.array([c["clip"]], np.float64)),
               ("input", x.numpy()), ("target", y.numpy()),
               ("params", torch.cat([w.reshape(-1) for w in w32]).numpy()),
               ("loss", np.array([float(loss)], np.float64)),
               ("grad_norm", np.array([gnorm], np.float64)),
               ("grads", grads.numpy()), ("params_after", after.numpy()),
               ("params_after_adam", after_adam.numpy())]
    for i, o in enumerate(outs):
        entries.append(("out%d" % i, o.detach().numpy()))
    entries.append(("names", np.frombuffer("\n".join(names).encode(), np.uint8).astype(np.int32)))
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, "net_%s.bin" % name)
    write_fixture(path, entries)
    print("%s: %d params, loss %.6f, grad norm %.4f -> %s" %
          (name, grads.numel(), float(loss), gnorm, path))


if __name__ == "__main__":
    torch.set_num_threads(1)
    # plain layout (features not multiples of 16), anisotropic first kernel and stride
    make("plain3d", dict(dim=3, n_stages=3, in_channels=2, classes=3, batch_dice=False,
                         batch=2, patch=[4, 16, 12], features=[8, 16, 24],
                         kernels=[[1, 3, 3], [3, 3, 3], [3, 3, 3]],
                         strides=[[1, 1, 1], [1, 2, 2], [2, 2, 2]],
                         n_conv=[2, 2, 2], n_conv_dec=[2, 2], clip=12.0), 1)
    # channel-blocked layout (features multiples of 16), batch Dice, clipping active
    make("blocked3d", dict(dim=3, n_stages=3, in_channels=1, classes=4, batch_dice=True,
                           batch=2, patch=[8, 8, 12], features=[16, 32, 32],
                           kernels=[[3, 3, 3]] * 3, strides=[[1, 1, 1], [2, 2, 2], [2, 2, 2]],
                           n_conv=[2, 2, 1], n_conv_dec=[1, 2], clip=0.5), 2)
    # 2-D network, 4 stages
    make("plain2d", dict(dim=2, n_stages=4, in_channels=1, classes=2, batch_dice=False,
                         batch=3, patch=[16, 24], features=[8, 16, 16, 24],
                         kernels=[[3, 3]] * 4, strides=[[1, 1], [2, 2], [2, 2], [2, 1]],
                         n_conv=[2, 2, 2, 2], n_conv_dec=[2, 2, 2], clip=12.0), 3)
