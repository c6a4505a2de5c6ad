"""Reference fixtures for the ResidualEncoderUNet (tests/test_net_resenc.c).

Run (from the repository root) with the reference environment, i.e. a Python with
torch, dynamic_network_architectures and nnunetv2 2.8.1 installed:

    /tmp/refenv/bin/python tests/gen/make_resenc_fixture.py

It writes tests/fixtures/resenc3d.safetensors and tests/fixtures/resenc2d.safetensors.
Each network is built exactly as nnunetv2 builds it from a plans file
(nnunetv2.utilities.get_network_from_plans with the arch_kwargs below, as the
ResEnc planners write them; allow_init=True, so InitWeights_He + init_last_bn_before_add_to_0
run), then every parameter is overwritten with seeded random, non-trivial float32
values (conv weights ~ N(0, 2/fan_in), biases and norm betas U(-0.2, 0.2), norm gammas
U(0.5, 1.5)), so the zero-initialised conv2 norms do not hide the main paths. The
reference values are computed in float64 from those float32 weights and input.

File contents (safetensors, readable by core/nnu_net_io.c's nnu_net_load, which ignores
the names it does not know):
  <parameter name>        F32, named_parameters() names and shapes (no all_modules /
                          decoder.encoder aliases), the weights to load
  ref.input               F32 (N, C, [D,] H, W)
  ref.logits              F64 eval-mode output (deep supervision off); the training-mode
                          deep-supervision output 0 equals it (asserted here: instance norm
                          keeps no running statistics), so it is not stored twice
  ref.ds.<i>              F64 training-mode deep-supervision outputs i >= 1 (highest first)
  ref.r                   F32, shaped as ref.ds.0: the loss is L = sum(r * ds[0])
  ref.grad.<name>         F64 dL/d<name> for a few parameters
  __metadata__            arch_kwargs (JSON), network_class_name, batch, patch, loss,
                          named_parameters (the names in order, one per line)
"""
import json
import os
import sys

import numpy as np
import torch
from safetensors.numpy import save_file

from nnunetv2.utilities.get_network_from_plans import get_network_from_plans

CLASS = "dynamic_network_architectures.architectures.unet.ResidualEncoderUNet"
REQ_IMPORT = ["conv_op", "norm_op", "dropout_op", "nonlin"]


def arch_kwargs(dim, features, n_blocks, strides, kernel):
    return {
        "n_stages": len(features),
        "features_per_stage": features,
        "conv_op": "torch.nn.modules.conv.Conv%dd" % dim,
        "kernel_sizes": [kernel] * len(features),
        "strides": strides,
        "n_blocks_per_stage": n_blocks,
        "n_conv_per_stage_decoder": [1] * (len(features) - 1),
        "conv_bias": True,
        "norm_op": "torch.nn.modules.instancenorm.InstanceNorm%dd" % dim,
        "norm_op_kwargs": {"eps": 1e-05, "affine": True},
        "dropout_op": None,
        "dropout_op_kwargs": None,
        "nonlin": "torch.nn.LeakyReLU",
        "nonlin_kwargs": {"inplace": True},
    }


CASES = {
    # 3 stages, features 4/8/16, blocks (1, 2, 2), strides 1/2/2: every strided block
    # changes channels (skip = AvgPool + 1x1 conv + norm), stage 0 is the identity skip
    "resenc3d": dict(dim=3, in_ch=2, classes=3, batch=2, patch=[8, 8, 8],
                     kw=arch_kwargs(3, [4, 8, 16], [1, 2, 2],
                                    [[1, 1, 1], [2, 2, 2], [2, 2, 2]], [3, 3, 3]),
                     grads=["encoder.stem.convs.0.conv.weight",
                            "encoder.stages.0.blocks.0.conv2.norm.weight",
                            "encoder.stages.1.blocks.0.conv1.conv.weight",
                            "encoder.stages.1.blocks.0.skip.1.conv.weight",
                            "encoder.stages.1.blocks.0.skip.1.norm.weight",
                            "encoder.stages.1.blocks.0.skip.1.norm.bias",
                            "encoder.stages.2.blocks.1.conv1.norm.bias",
                            "encoder.stages.2.blocks.1.conv2.norm.weight",
                            "decoder.transpconvs.0.weight",
                            "decoder.stages.1.convs.0.norm.weight",
                            "decoder.seg_layers.1.bias"]),
    # 2-D, features 4/8/8 and strides 1/2/(2,1): stage 2 strides without a channel
    # change (skip = AvgPool alone, the case of the 320-capped stages of real plans)
    "resenc2d": dict(dim=2, in_ch=1, classes=2, batch=2, patch=[16, 12],
                     kw=arch_kwargs(2, [4, 8, 8], [1, 1, 2], [[1, 1], [2, 2], [2, 1]], [3, 3]),
                     grads=["encoder.stem.convs.0.conv.weight",
                            "encoder.stages.1.blocks.0.skip.1.conv.weight",
                            "encoder.stages.2.blocks.0.conv1.conv.weight",
                            "encoder.stages.2.blocks.0.conv2.norm.bias",
                            "encoder.stages.2.blocks.1.conv1.conv.weight",
                            "decoder.transpconvs.0.weight",
                            "decoder.seg_layers.1.weight"]),
}


def build(case):
    net = get_network_from_plans(CLASS, case["kw"], REQ_IMPORT, case["in_ch"], case["classes"],
                                 allow_init=True, deep_supervision=True)
    g = torch.Generator().manual_seed(20260707)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if p.ndim >= 2:
                fan_in = p.shape[1] * int(np.prod(p.shape[2:]))
                p.copy_(torch.randn(p.shape, generator=g) * (2.0 / fan_in) ** 0.5)
            elif name.endswith("norm.weight"):
                p.copy_(0.5 + torch.rand(p.shape, generator=g))
            else:
                p.copy_(0.4 * torch.rand(p.shape, generator=g) - 0.2)
    return net, g


def main(out_dir):
    for name, case in CASES.items():
        net, g = build(case)
        weights = {n: p.detach().float().numpy().copy() for n, p in net.named_parameters()}
        x32 = (2 * torch.rand([case["batch"], case["in_ch"]] + case["patch"], generator=g) - 1).float()
        net64 = net.double()
        x = x32.double()
        # eval mode, deep supervision off: what nnU-Net's predictor runs
        net64.eval()
        net64.decoder.deep_supervision = False
        with torch.no_grad():
            logits = net64(x)
        # training mode with deep supervision, L = sum(r * ds[0])
        net64.train()
        net64.decoder.deep_supervision = True
        net64.zero_grad()
        ds = net64(x)
        r32 = (2 * torch.rand(ds[0].shape, generator=g) - 1).float()
        loss = (ds[0] * r32.double()).sum()
        loss.backward()
        params = dict(net64.named_parameters())
        out = dict(weights)
        out["ref.input"] = x32.numpy()
        out["ref.logits"] = logits.detach().numpy()
        assert torch.equal(ds[0].detach(), logits), "train and eval outputs differ"
        for i, d in enumerate(ds):
            if i:
                out["ref.ds.%d" % i] = d.detach().numpy()
        out["ref.r"] = r32.numpy()
        for gname in case["grads"]:
            out["ref.grad." + gname] = params[gname].grad.detach().numpy()
        meta = {"network_class_name": CLASS, "arch_kwargs": json.dumps(case["kw"]),
                "num_input_channels": str(case["in_ch"]), "num_classes": str(case["classes"]),
                "batch": str(case["batch"]), "patch": json.dumps(case["patch"]),
                "loss": "sum(ref.r * ref.ds.0)", "generator": "tests/gen/make_resenc_fixture.py",
                "named_parameters": "\n".join(weights.keys())}
        path = os.path.join(out_dir, name + ".safetensors")
        save_file({k: np.ascontiguousarray(v) for k, v in out.items()}, path, metadata=meta)
        print("%s: %d parameter tensors, %d bytes" % (path, len(weights), os.path.getsize(path)))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures")
