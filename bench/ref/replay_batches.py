"""bench/ref/replay_batches.py: train the reference nnU-Net v2 network (nnunetv2's own
network, loss, optimizer and gradient clipping, as nnUNetTrainer.train_step on the CPU) from
the initial weights and on the batches that bench/train_logged.lua dumped from nnunet
(NNUNET_DUMP_DIR), and print both loss sequences side by side, with the reference's
gradient norm before clipping and, at the end, how far both final weights are apart.

  REFENV/bin/python bench/ref/replay_batches.py DUMP_DIR PLANS.json DATASET.json [OURS_STEPS.txt]

Never used by the build or the tests (it needs a virtual environment with nnunetv2)."""
import glob
import os
import struct
import sys

import numpy as np
import torch
from batchgeneratorsv2.transforms.utils.deep_supervision_downsampling import DownsampleSegForDSTransform
from batchgenerators.utilities.file_and_folder_operations import load_json
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from safetensors.numpy import load_file


def read_tensor(f):
    nd = struct.unpack("<i", f.read(4))[0]
    shape = struct.unpack("<%di" % nd, f.read(4 * nd))
    n = int(np.prod(shape))
    return np.frombuffer(f.read(4 * n), dtype="<f4").reshape(shape).copy()


def main():
    dump, plans_p, dj_p = sys.argv[1:4]
    ours_steps = sys.argv[4] if len(sys.argv) > 4 else None
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    plans = load_json(plans_p)
    plans.setdefault("continue_training", False)     # nnunetv2 >= 2.7 pops this key
    tr = nnUNetTrainer(plans, "3d_fullres", 0, load_json(dj_p), device=torch.device("cpu"))
    tr.initialize()
    net = tr.network
    w = load_file(os.path.join(dump, "init.safetensors"))
    sd = {k: torch.from_numpy(v) for k, v in w.items() if not k.startswith("optimizer.")}
    missing, unexpected = net.load_state_dict(sd, strict=False)
    assert not unexpected, unexpected
    # the rest are aliases of the same parameters (decoder.encoder.*, *.all_modules.*)
    assert all(k.startswith("decoder.encoder.") or ".all_modules." in k for k in missing), missing
    own = {k for k in net.state_dict() if not (k.startswith("decoder.encoder.") or ".all_modules." in k)}
    assert own == set(sd), own ^ set(sd)
    ds = DownsampleSegForDSTransform(ds_scales=tr._get_deep_supervision_scales())
    ours = {}
    if ours_steps:
        for line in open(ours_steps):
            a = line.split()
            ours[int(a[0])] = float(a[2])
    batches = sorted(glob.glob(os.path.join(dump, "batch_*.bin")))
    net.train()
    print("step  loss_ours  loss_ref   grad_norm_ref")
    for i, p in enumerate(batches):
        with open(p, "rb") as f:
            x, t = read_tensor(f), read_tensor(f)
        targets = [ds(segmentation=torch.from_numpy(t[b]).to(torch.int16))["segmentation"] for b in range(t.shape[0])]
        target = [torch.stack([targets[b][k] for b in range(t.shape[0])]) for k in range(len(targets[0]))]
        tr.optimizer.zero_grad(set_to_none=True)
        out = net(torch.from_numpy(x))
        l = tr.loss(out, target)
        l.backward()
        gn = torch.nn.utils.clip_grad_norm_(net.parameters(), 12)
        tr.optimizer.step()
        print("%4d  %9.6f  %9.6f  %8.4f" % (i, ours.get(i, float("nan")), float(l), float(gn)), flush=True)
    after = os.path.join(dump, "after.safetensors")
    if os.path.exists(after):
        wa = load_file(after)
        sd = net.state_dict()
        num = den = dnum = 0.0
        for k, v in wa.items():
            if k.startswith("optimizer."):
                continue
            r = sd[k].detach().numpy().astype(np.float64)
            o = v.astype(np.float64)
            i0 = w[k].astype(np.float64)
            num += ((r - o) ** 2).sum(); den += ((r - i0) ** 2).sum(); dnum += ((o - i0) ** 2).sum()
        print("weights after %d steps: |ref - ours| = %.4g, |ref - init| = %.4g, |ours - init| = %.4g"
              % (len(batches), num ** 0.5, den ** 0.5, dnum ** 0.5))


if __name__ == "__main__":
    main()
