"""check_torch_export.py: the reference nnU-Net reads the checkpoints this program writes.

A one-off oracle check, not part of `make test` (the tests never need Python). It:
  1. runs the nnunet host on a Lua script that builds the 3d_fullres network of
     tests/fixtures/torch_ckpt/plans_3d.json, perturbs every parameter (so biases and
     norm affines are not their initial 0 / 1), exports it with
     nnunet.torch_ckpt.export into a model folder (fold_0/checkpoint_final.pth, plans.json,
     dataset.json) and writes its logits for a fixed input;
  2. in the reference environment: torch.load(weights_only=False) and
     (weights_only=True) and (mmap=True: needs the 64-byte alignment), the reference
     network from nnUNetTrainer.build_network_architecture + load_state_dict(strict=True),
     the same input -> logits compared with ours;
  3. nnUNetPredictor.initialize_from_trained_model_folder on the model folder: the network,
     trainer name, configuration and mirroring axes it restores, and its logits; then
     predict_single_npy_array on a small image (the whole reference inference pipeline).

Run (after building, from the repository root):
    /tmp/refenv/bin/python tests/gen/check_torch_export.py build-pth/nnunet
Result recorded in docs/checkpoints.md."""
import copy
import json
import math
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
FIX = os.path.join(ROOT, "tests", "fixtures", "torch_ckpt")
SHAPE = (1, 2, 4, 16, 12)

LUA = r"""
local netmod, tensor, tc = require("nnunet.net"), require("nnunet.tensor"), require("nnunet.torch_ckpt")
local cjson = require("cjson")
local fix, out = ...
local function read(p) local f = assert(io.open(p, "rb")); local s = f:read("a"); f:close(); return s end
local function write(p, s) local f = assert(io.open(p, "wb")); f:write(s); f:close() end
local plans_text, dj_text = read(fix .. "/plans_3d.json"), read(fix .. "/dataset_3d.json")
local arch = cjson.decode(plans_text).configurations["3d_fullres"].architecture
local net = netmod.build(arch, { num_input_channels = 2, num_classes = 3, deep_supervision = false, seed = 42 })
local p = net:flat("params"):totable()
for i = 1, #p do p[i] = p[i] + 0.05 * math.sin(0.7 * i) end
net:set_flat("params", tensor.from_table(p, { #p }))
os.execute("mkdir -p '" .. out .. "/model/fold_0'")
write(out .. "/model/plans.json", plans_text)
write(out .. "/model/dataset.json", dj_text)
assert(tc.export(net, out .. "/model/fold_0/checkpoint_final.pth", { configuration = "3d_fullres",
  plans_json = plans_text, dataset_json = dj_text, fold = 0, mirroring_axes = { 0, 1, 2 }, current_epoch = 3 }))
local xs = {}
for i = 1, 2 * 4 * 16 * 12 do xs[i] = math.sin(0.37 * i) end
local y = net:forward(tensor.from_table(xs, { 1, 2, 4, 16, 12 }))
write(out .. "/logits.json", cjson.encode(y:totable()))
"""


def resenc(plans):
    """the same plans with a ResidualEncoderUNet (nnUNetPlannerResEnc's architecture)"""
    kw = plans["configurations"]["3d_fullres"]["architecture"]["arch_kwargs"]
    kw["n_blocks_per_stage"] = [1, 2, 2]
    del kw["n_conv_per_stage"]
    plans["configurations"]["3d_fullres"]["architecture"]["network_class_name"] = \
        "dynamic_network_architectures.architectures.unet.ResidualEncoderUNet"
    return plans


def check(exe, label, plans):
    print("== %s" % label)
    tmp = tempfile.mkdtemp(prefix="check_torch_export_")
    script = os.path.join(tmp, "export.lua")
    with open(script, "w") as f:
        f.write(LUA)
    # the fixture's plans, plus the intensity properties the reference's preprocessor
    # looks up for every channel (the fixtures never preprocess)
    fix = os.path.join(tmp, "fix")
    os.makedirs(fix)
    plans["foreground_intensity_properties_per_channel"] = {
        str(c): {"max": 3.0, "mean": 0.0, "median": 0.0, "min": -3.0, "percentile_00_5": -2.5,
                 "percentile_99_5": 2.5, "std": 1.0} for c in range(2)}
    json.dump(plans, open(os.path.join(fix, "plans_3d.json"), "w"), indent=1)
    with open(os.path.join(FIX, "dataset_3d.json")) as f, open(os.path.join(fix, "dataset_3d.json"), "w") as g:
        g.write(f.read())
    subprocess.run([exe, script, fix, tmp], check=True, cwd=ROOT)
    ours = np.array(json.load(open(os.path.join(tmp, "logits.json"))), dtype=np.float64).reshape(1, 3, *SHAPE[2:])
    ckpt = os.path.join(tmp, "model", "fold_0", "checkpoint_final.pth")
    x = torch.tensor([math.sin(0.37 * i) for i in range(1, int(np.prod(SHAPE)) + 1)],
                     dtype=torch.float32).reshape(SHAPE)

    ck = torch.load(ckpt, map_location="cpu", weights_only=False)
    print("torch.load(weights_only=False): keys", list(ck.keys()))
    ck_safe = torch.load(ckpt, map_location="cpu", weights_only=True)
    print("torch.load(weights_only=True): ok,", len(ck_safe["network_weights"]), "tensors")
    ck_mmap = torch.load(ckpt, map_location="cpu", weights_only=True, mmap=True)
    print("torch.load(mmap=True): ok")

    plans = ck["init_args"]["plans"]
    dj = ck["init_args"]["dataset_json"]
    pm = PlansManager(plans)
    cm = pm.get_configuration(ck["init_args"]["configuration"])
    net = nnUNetTrainer.build_network_architecture(pm, cm, 2, pm.get_label_manager(dj).num_segmentation_heads,
                                                   enable_deep_supervision=False)
    res = net.load_state_dict(ck["network_weights"], strict=True)
    print("load_state_dict(strict=True):", res)
    for k, v in ck_mmap["network_weights"].items():
        assert torch.equal(v, ck["network_weights"][k]), k
    sd = ck["network_weights"]
    aliases = [k for k in sd if ".all_modules." in k or k.startswith("decoder.encoder.")]
    shared = all(sd[k].untyped_storage().data_ptr() == sd[k.replace("decoder.encoder.", "encoder.").replace(
        ".all_modules.0.", ".conv.").replace(".all_modules.1.", ".norm.")].untyped_storage().data_ptr()
        for k in aliases)
    print("%d aliases, each sharing its primary's storage: %s" % (len(aliases), shared))
    net.eval()
    with torch.no_grad():
        ref = net.double()(x.double()).numpy()
    d1 = np.abs(ref - ours).max()
    print("logits: reference network vs nnunet, max |diff| = %.3g (max |logit| %.3g)" % (d1, np.abs(ref).max()))

    pred = nnUNetPredictor(device=torch.device("cpu"), verbose=False, allow_tqdm=False)
    pred.initialize_from_trained_model_folder(os.path.join(tmp, "model"), use_folds=(0,),
                                              checkpoint_name="checkpoint_final.pth")
    print("nnUNetPredictor: trainer %s, network %s, mirroring axes %s" %
          (pred.trainer_name, pred.configuration_manager.configuration["architecture"]["network_class_name"]
           .split(".")[-1], pred.allowed_mirroring_axes))
    pred.network.eval()
    with torch.no_grad():
        p = copy.deepcopy(pred.network).double()(x.double()).numpy()
    d2 = np.abs(p - ours).max()
    print("logits: nnUNetPredictor's network vs nnunet, max |diff| = %.3g" % d2)
    # the whole inference pipeline (preprocessing, sliding window, mirroring, export) runs
    img = np.stack([np.sin(np.arange(6 * 20 * 18).reshape(6, 20, 18) * 0.1 * (c + 1)) for c in range(2)])
    seg = pred.predict_single_npy_array(img.astype(np.float32), {"spacing": [1.0, 1.0, 1.0]}, None, None, False)
    print("predict_single_npy_array: segmentation", seg.shape, "labels", np.unique(seg).tolist())
    ok = shared and d1 < 1e-4 and d2 < 1e-4 and pred.allowed_mirroring_axes == (0, 1, 2) and ck["current_epoch"] == 3
    print("RESULT (%s):" % label, "PASS" if ok else "FAIL")
    return ok


def main():
    exe = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build", "nnunet")
    plans = json.load(open(os.path.join(FIX, "plans_3d.json")))
    ok = check(exe, "PlainConvUNet", copy.deepcopy(plans))
    ok = check(exe, "ResidualEncoderUNet", resenc(copy.deepcopy(plans))) and ok
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
