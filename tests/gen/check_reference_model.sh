#!/bin/bash
# check_reference_model.sh: a model trained by the reference nnU-Net predicts here as
# it is. A one-off oracle check (the tests never need Python); result in
# docs/checkpoints.md. The reference preprocesses and trains (CPU) one fold of a raw
# dataset (any image format), predicts a few cases, and `nnunet predict` predicts the
# same cases from the reference's own results folder; printed: per case the segmentation
# agreement (read with the reference's reader class) and the largest probability difference.
#   [CONFIG=2d] bash tests/gen/check_reference_model.sh RAW_DATASET_FOLDER ID [TRAINER] [REFENV]
# e.g. bash tests/gen/check_reference_model.sh data/Dataset004_Hippocampus_demo 4 nnUNetTrainer_1epoch
set -eu
RAWDS=$(readlink -f "$1") ID=$2 TR=${3:-nnUNetTrainer_1epoch} ENV=${4:-/tmp/refenv} CONFIG=${CONFIG:-3d_fullres}
NNUNET=$(readlink -f "${NNUNET:-build/nnunet}")
W=$(mktemp -d)
NAME=$(basename "$RAWDS" | sed -E 's/^(Dataset[0-9]{3}_[^_]+).*/\1/')
mkdir -p "$W/raw" "$W/pre" "$W/res" "$W/in"
ENDING=$(sed -n 's/.*"file_ending": *"\([^"]*\)".*/\1/p' "$RAWDS/dataset.json")
ln -s "$RAWDS" "$W/raw/$NAME"
export nnUNet_raw=$W/raw nnUNet_preprocessed=$W/pre nnUNet_results=$W/res
"$ENV/bin/nnUNetv2_plan_and_preprocess" -d "$ID" -c "$CONFIG" -np 2 > "$W/pp.log" 2>&1
"$ENV/bin/nnUNetv2_train" "$ID" "$CONFIG" 0 -tr "$TR" -device cpu > "$W/train.log" 2>&1
grep "Mean Validation Dice" "$W"/res/*/*/fold_0/training_log_* || true
for c in $(ls "$RAWDS/imagesTr" | head -3); do ln -s "$RAWDS/imagesTr/$c" "$W/in/$c"; done
"$ENV/bin/nnUNetv2_predict" -i "$W/in" -o "$W/ref" -d "$ID" -c "$CONFIG" -tr "$TR" -f 0 -device cpu \
  -npp 1 -nps 1 --save_probabilities --disable_progress_bar > "$W/ref.log" 2>&1
"$NNUNET" predict -i "$W/in" -o "$W/ours" -d "$ID" -c "$CONFIG" -tr "$TR" -f 0 -device cpu \
  --save_probabilities --disable_progress_bar > "$W/ours.log" 2>&1
"$ENV/bin/python" - "$W" "$ENDING" <<'PY'
import glob, os, sys
import numpy as np
from nnunetv2.imageio.reader_writer_registry import determine_reader_writer_from_file_ending
w, ending = sys.argv[1], sys.argv[2]
for f in sorted(glob.glob(os.path.join(w, "ref", "*" + ending))):
    c = os.path.basename(f)[:-len(ending)]
    rw = determine_reader_writer_from_file_ending(ending, f)()
    a = rw.read_seg(f)[0]; b = rw.read_seg(os.path.join(w, "ours", c + ending))[0]
    pa = np.load(os.path.join(w, "ref", c + ".npz"))["probabilities"]
    pb = np.load(os.path.join(w, "ours", c + ".npz"))["probabilities"]
    print(f"{c}: segmentation agreement {(a == b).mean():.6f}, max |p_ref - p_ours| {np.abs(pa - pb).max():.3g}")
PY
rm -rf "$W"
