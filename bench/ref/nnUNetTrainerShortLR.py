# Reference-side trainer for bench/compare_reference_learning.sh (copied into the reference's
# nnunetv2/training/nnUNetTrainer/ of a virtual environment; never used by the build or tests).
# nnUNetTrainer with a short schedule from the environment (LR_EPOCHS, LR_ITERS, LR_VAL_ITERS);
# with LR_ITER_LOG set, every training step appends
#   step lr loss fg1,fg2,.. c1_1,c1_2,.. c2_1,c2_2,.. data_mean data_std
# to that file, the columns of bench/train_logged.lua. LR_BATCH_STATS_ONLY=N: no training,
# the first N training batches are only logged (loss 0), then the program exits.
import os
import sys

import torch
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer


class nnUNetTrainerShortLR(nnUNetTrainer):
    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device('cuda')):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.num_epochs = int(os.environ.get("LR_EPOCHS", "4"))
        self.num_iterations_per_epoch = int(os.environ.get("LR_ITERS", "50"))
        self.num_val_iterations_per_epoch = int(os.environ.get("LR_VAL_ITERS", "10"))
        self._lr_step = 0

    def train_step(self, batch):
        path = os.environ.get("LR_ITER_LOG")
        stats_only = int(os.environ.get("LR_BATCH_STATS_ONLY", "0"))
        lr = self.optimizer.param_groups[0]['lr']
        t = batch['target'][0] if isinstance(batch['target'], list) else batch['target']
        cols = []
        for cond in (lambda v: v > 0, lambda v: v == 1, lambda v: v == 2):
            cols.append(",".join("%.4f" % float(cond(t[i]).double().mean()) for i in range(t.shape[0])))
        d = batch['data'].double()
        dmean, dstd = float(d.mean()), float(d.std(unbiased=False))
        out = {'loss': 0.0} if stats_only else super().train_step(batch)
        if path:
            with open(path, "a") as f:
                f.write("%d %.6g %.6f %s %s %s %.4f %.4f\n" % (self._lr_step, lr, float(out["loss"]), *cols,
                                                             dmean, dstd))
        self._lr_step += 1
        if stats_only and self._lr_step >= stats_only:
            os._exit(0)
        return out
