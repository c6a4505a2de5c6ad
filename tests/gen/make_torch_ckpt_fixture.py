"""make_torch_ckpt_fixture.py: reference PyTorch checkpoints for tests/test_torch_ckpt.c,
tests/test_pickle.c and tests/lua/test_torch_ckpt.lua, written by the reference itself.

The networks are built by nnU-Net v2's own code path (nnUNetTrainer.build_network_
architecture -> get_network_from_plans -> dynamic_network_architectures' PlainConvUNet)
from small plans, get random non-trivial weights (conv and norm weights and biases), and
are saved in the dict nnUNetTrainer.save_checkpoint writes (network_weights =
state_dict() with its all_modules / decoder.encoder aliases, a real SGD optimizer
state_dict, logging lists holding numpy scalars, init_args with torch.device, ...).
The logits for a fixed random input come from the same network in eval mode, deep
supervision off, computed in float64 from the float32 weights (so the fixture's error
is far below the C test's float32 tolerance).

Run (the reference environment: nnunetv2 2.8.1, torch 2.x, dynamic_network_architectures):
    /tmp/refenv/bin/python tests/gen/make_torch_ckpt_fixture.py
Writes tests/fixtures/torch_ckpt/:
    ref3d.pth, ref3d_logits.bin    3d_fullres: 3 stages, features 4/8/16, 2 channels, 3 classes,
                                   anisotropic kernels/strides, checkpoint dict as the trainer's
    ref2d.pth, ref2d_logits.bin    2d: 1 channel, 2 classes, state dict saved with keys prefixed
                                   "_orig_mod." (torch.compile)
    ref2d_fp16.pth                 the 2d state dict in float16, keys prefixed "module."
    ref2d_bf16.pth                 the 2d state dict in bfloat16, bare (no wrapping dict), without
                                   the alias keys
    resenc2d.pth, resenc2d_logits.bin   a 2d ResidualEncoderUNet (blocks 1/2/1, features 4/8/8)
    views.pth, views.bin           views of one storage (transposed, sliced, offset), shared
                                   storages, float16/bfloat16/float64 tensors, and their values
    plans_3d.json, dataset_3d.json the plans and dataset.json of ref3d (for the export test)
    pickle_p2.bin, pickle_p4.bin, pickle_p5.bin   Python pickles of one value at protocols 2, 4, 5
(.bin arrays: NNUFIX01, tests/fixture.h)."""
import collections
import copy
import fractions
import json
import os
import pickle
import struct
import sys

import numpy as np
import torch

from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "torch_ckpt")
if len(sys.argv) > 1:   # another folder (e.g. to regenerate one file without touching the others)
    OUT = sys.argv[1]
SEED = 20240607


def write_fixture(path, items):
    with open(path, "wb") as f:
        f.write(b"NNUFIX01" + struct.pack("<II", 1, len(items)))
        for name, a in items:
            a = np.ascontiguousarray(a)
            assert a.dtype in (np.float32, np.float64) and len(name) <= 32
            f.write(name.encode().ljust(32, b"\0"))
            f.write(struct.pack("<II", 0 if a.dtype == np.float32 else 1, a.ndim))
            f.write(struct.pack("<%dq" % a.ndim, *a.shape))
            f.write(a.astype(a.dtype.newbyteorder("<")).tobytes())
    print("wrote %s (%d bytes)" % (path, os.path.getsize(path)))


def plans_for(dim, features, kernels, strides, n_conv, n_conv_dec, patch):
    conv = "torch.nn.modules.conv.Conv%dd" % dim
    norm = "torch.nn.modules.instancenorm.InstanceNorm%dd" % dim
    cfg = {
        "data_identifier": "nnUNetPlans_%dd" % dim, "preprocessor_name": "DefaultPreprocessor",
        "batch_size": 2, "patch_size": patch, "median_image_size_in_voxels": patch,
        "spacing": [1.0] * dim, "normalization_schemes": ["ZScoreNormalization"] * 2,
        "use_mask_for_norm": [False, False],
        "resampling_fn_data": "resample_data_or_seg_to_shape",
        "resampling_fn_seg": "resample_data_or_seg_to_shape",
        "resampling_fn_data_kwargs": {"is_seg": False, "order": 3, "order_z": 0, "force_separate_z": None},
        "resampling_fn_seg_kwargs": {"is_seg": True, "order": 1, "order_z": 0, "force_separate_z": None},
        "resampling_fn_probabilities": "resample_data_or_seg_to_shape",
        "resampling_fn_probabilities_kwargs": {"is_seg": False, "order": 1, "order_z": 0,
                                               "force_separate_z": None},
        "architecture": {
            "network_class_name": "dynamic_network_architectures.architectures.unet.PlainConvUNet",
            "arch_kwargs": {
                "n_stages": len(features), "features_per_stage": features, "conv_op": conv,
                "kernel_sizes": kernels, "strides": strides, "n_conv_per_stage": n_conv,
                "n_conv_per_stage_decoder": n_conv_dec, "conv_bias": True, "norm_op": norm,
                "norm_op_kwargs": {"eps": 1e-05, "affine": True}, "dropout_op": None,
                "dropout_op_kwargs": None, "nonlin": "torch.nn.LeakyReLU",
                "nonlin_kwargs": {"inplace": True},
            },
            "_kw_requires_import": ["conv_op", "norm_op", "dropout_op", "nonlin"],
        },
        "batch_dice": False,
    }
    name = "3d_fullres" if dim == 3 else "2d"
    return name, {
        "dataset_name": "Dataset999_Tiny", "plans_name": "nnUNetPlans",
        "original_median_spacing_after_transp": [1.0, 1.0, 1.0],
        "original_median_shape_after_transp": [8, 16, 16],
        "image_reader_writer": "SimpleITKIO", "transpose_forward": [0, 1, 2], "transpose_backward": [0, 1, 2],
        "configurations": {name: cfg},
        "experiment_planner_used": "ExperimentPlanner", "label_manager": "LabelManager",
        "foreground_intensity_properties_per_channel": {},
    }


def build(plans, cfg_name, dataset_json):
    pm = PlansManager(plans)
    cm = pm.get_configuration(cfg_name)
    n_in = len(dataset_json["channel_names"])
    n_out = pm.get_label_manager(dataset_json).num_segmentation_heads
    net = nnUNetTrainer.build_network_architecture(pm, cm, n_in, n_out, enable_deep_supervision=False)
    g = torch.Generator().manual_seed(SEED)
    with torch.no_grad():
        for name, p in net.named_parameters():   # non-trivial: norm gamma around 1, nonzero biases
            r = torch.randn(p.shape, generator=g)
            p.copy_(1 + 0.2 * r if name.endswith("norm.weight") else 0.3 * r)
    return net.eval(), n_in


def logits(net, x):
    net64 = copy.deepcopy(net).double()
    with torch.no_grad():
        return net64(torch.from_numpy(x).double()).numpy()


def trainer_checkpoint(net, plans, cfg_name, dataset_json, mirror_axes):
    """the dict of nnUNetTrainer.save_checkpoint, with real optimizer and logger content"""
    opt = torch.optim.SGD(net.parameters(), 1e-2, weight_decay=3e-5, momentum=0.99, nesterov=True)
    logging = {k: [] for k in ("mean_fg_dice", "ema_fg_dice", "dice_per_class_or_region", "train_losses",
                                "val_losses", "lrs", "epoch_start_timestamps", "epoch_end_timestamps")}
    for e in range(2):   # values as the trainer logs them: numpy scalars, lists of floats
        logging["mean_fg_dice"].append(np.float64(0.5 + 0.1 * e))
        logging["ema_fg_dice"].append(np.float64(0.45 + 0.1 * e))
        logging["dice_per_class_or_region"].append([0.4 + 0.1 * e, 0.6])
        logging["train_losses"].append(np.float32(-0.2 * e))
        logging["val_losses"].append(np.float32(-0.1 * e))
        logging["lrs"].append(0.01 * (1 - e / 1000) ** 0.9)
        logging["epoch_start_timestamps"].append(1.7e9 + e)
        logging["epoch_end_timestamps"].append(1.7e9 + e + 0.5)
    return {
        "network_weights": net.state_dict(),
        "optimizer_state": opt.state_dict(),
        "grad_scaler_state": None,
        "logging": logging,
        "_best_ema": np.float64(0.55),
        "current_epoch": 2,
        "init_args": {"plans": plans, "configuration": cfg_name, "fold": 0, "dataset_json": dataset_json,
                      "device": torch.device("cuda")},
        "trainer_name": "nnUNetTrainer",
        "inference_allowed_mirroring_axes": mirror_axes,
    }


def main():
    os.makedirs(OUT, exist_ok=True)
    rs = np.random.RandomState(SEED)

    # --- 3d_fullres: the trainer's checkpoint dict ---
    dj3 = {"channel_names": {"0": "T1", "1": "T2"}, "labels": {"background": 0, "a": 1, "b": 2},
           "numTraining": 4, "file_ending": ".nii.gz"}
    cfg3, plans3 = plans_for(3, [4, 8, 16], [[1, 3, 3], [3, 3, 3], [3, 3, 3]],
                             [[1, 1, 1], [1, 2, 2], [2, 2, 2]], [1, 1, 1], [1, 1], [4, 16, 12])
    net3, nin3 = build(plans3, cfg3, dj3)
    torch.save(trainer_checkpoint(net3, plans3, cfg3, dj3, (0, 1, 2)), os.path.join(OUT, "ref3d.pth"))
    x3 = rs.standard_normal((1, nin3, 4, 16, 12)).astype(np.float32)
    write_fixture(os.path.join(OUT, "ref3d_logits.bin"), [("input", x3), ("logits", logits(net3, x3))])
    with open(os.path.join(OUT, "plans_3d.json"), "w") as f:
        json.dump(plans3, f, indent=1)
    with open(os.path.join(OUT, "dataset_3d.json"), "w") as f:
        json.dump(dj3, f, indent=1)

    # --- 2d: state dicts with torch.compile / DataParallel prefixes, half precision ---
    dj2 = {"channel_names": {"0": "CT"}, "labels": {"background": 0, "x": 1}, "numTraining": 4,
           "file_ending": ".nii.gz"}
    cfg2, plans2 = plans_for(2, [4, 8, 16], [[3, 3]] * 3, [[1, 1], [2, 2], [2, 2]], [1, 1, 1], [1, 1], [16, 20])
    net2, nin2 = build(plans2, cfg2, dj2)
    sd = net2.state_dict()
    ck2 = trainer_checkpoint(net2, plans2, cfg2, dj2, (0, 1))
    ck2["network_weights"] = collections.OrderedDict(("_orig_mod." + k, v) for k, v in sd.items())
    ck2["optimizer_state"] = None
    torch.save(ck2, os.path.join(OUT, "ref2d.pth"))
    x2 = rs.standard_normal((2, nin2, 16, 20)).astype(np.float32)
    write_fixture(os.path.join(OUT, "ref2d_logits.bin"), [("input", x2), ("logits", logits(net2, x2))])
    torch.save({"network_weights": collections.OrderedDict(("module." + k, v.half()) for k, v in sd.items())},
               os.path.join(OUT, "ref2d_fp16.pth"))
    torch.save(collections.OrderedDict((k, v.bfloat16()) for k, v in sd.items()   # without the aliases
                                       if ".all_modules." not in k and not k.startswith("decoder.encoder.")),
               os.path.join(OUT, "ref2d_bf16.pth"))

    # --- 2d ResidualEncoderUNet (nnUNetPlannerResEnc's architecture): stem, BasicBlockD
    # blocks with and without a skip projection, and a strided skip without one (8 -> 8) ---
    cfg_r, plans_r = plans_for(2, [4, 8, 8], [[3, 3]] * 3, [[1, 1], [2, 2], [2, 2]], [1, 1, 1], [1, 1], [16, 20])
    kw = plans_r["configurations"][cfg_r]["architecture"]["arch_kwargs"]
    kw["n_blocks_per_stage"] = [1, 2, 1]
    del kw["n_conv_per_stage"]
    plans_r["configurations"][cfg_r]["architecture"]["network_class_name"] = \
        "dynamic_network_architectures.architectures.unet.ResidualEncoderUNet"
    net_r, nin_r = build(plans_r, cfg_r, dj2)
    ck_r = trainer_checkpoint(net_r, plans_r, cfg_r, dj2, (0, 1))
    ck_r["optimizer_state"] = None
    torch.save(ck_r, os.path.join(OUT, "resenc2d.pth"))
    x_r = rs.standard_normal((1, nin_r, 16, 20)).astype(np.float32)
    write_fixture(os.path.join(OUT, "resenc2d_logits.bin"), [("input", x_r), ("logits", logits(net_r, x_r))])

    # --- views and storages for the container reader ---
    base = torch.arange(60, dtype=torch.float32).reshape(3, 4, 5) * 0.5 - 7
    views = collections.OrderedDict([
        ("base", base),
        ("transposed", base.transpose(0, 2)),             # strides (1, 5, 20)
        ("sliced", base[1:, ::2, 1:4]),                   # offset 21, strides (20, 10, 1)
        ("row", base[2, 3]),                              # offset 55, 1-d
        ("scalar", base[1, 2, 3]),                        # 0-d, offset 33
        ("expanded", torch.tensor([1.5, -2.0]).reshape(2, 1).expand(2, 3)),   # stride 0
        ("half", (base[0] * 0.25).half().t()),            # float16 storage, transposed
        ("bf16", (base[2] - 3).bfloat16()),
        ("double", base[:, 1].double() / 3),
        ("empty", torch.zeros(0, 3)),
    ])
    views["same"] = views["transposed"]                   # the same tensor object twice (memo)
    torch.save(views, os.path.join(OUT, "views.pth"))
    write_fixture(os.path.join(OUT, "views.bin"),
                  [(k, v.float().contiguous().numpy()) for k, v in views.items()])

    # --- plain pickles for the pickle reader ---
    shared = [7, "seven"]
    cyc = []
    cyc.append(cyc)
    value = {
        "ints": [0, 1, -1, 255, 256, 65535, 65536, -2 ** 31, 2 ** 31 - 1, 2 ** 31, -2 ** 31 - 1,
                 2 ** 63 - 1, -2 ** 63, 2 ** 63, 2 ** 70, -2 ** 70],
        "floats": [1.5, -0.0, 1e300, float("inf")],
        "str": "h\u00e9llo \u2713", "bytes": b"\x00\x01\xff", "long_str": "x" * 300,
        "tuples": [(), (1,), (1, 2), (1, 2, 3), (1, 2, 3, 4)],
        "none": None, "true": True, "false": False,
        "set": {3}, "frozenset": frozenset(["f"]),
        "shared": [shared, shared], "cycle": cyc,
        "odict": collections.OrderedDict([("k", 1), ("j", [2])]),
        "fraction": fractions.Fraction(1, 3),
        "big_list": list(range(1200)),                   # more than one APPENDS batch
    }
    for proto in (2, 4, 5):
        with open(os.path.join(OUT, "pickle_p%d.bin" % proto), "wb") as f:
            f.write(pickle.dumps(value, protocol=proto))


if __name__ == "__main__":
    main()
