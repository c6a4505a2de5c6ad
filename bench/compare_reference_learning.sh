#!/bin/bash
# bench/compare_reference_learning.sh: does nnunet learn as fast, per iteration, as the
# reference nnU-Net v2 on the same data and schedule? (docs/training.md, "Learning speed
# against the reference"). Not part of the build or the tests; needs a virtual environment
# with the reference (python3 -m venv REFENV && REFENV/bin/pip install nnunetv2).
#
#   bench/compare_reference_learning.sh REFENV WORKDIR [SEED...]
#
# Environment: EPOCHS (4), ITERS (50), VAL_ITERS (10), BUILD (build), REPLAY_STEPS (40; 0 = skip).
# Steps, everything under WORKDIR (nothing is written to the repository):
#  1. the demo's 32 training cases of data/Dataset004_Hippocampus_demo (the last 8 by id are
#     held back, as recipes/demo.lua) as Dataset004_HippocampusDemo, one raw copy per side;
#  2. plan_and_preprocess 3d_fullres on both sides; the plans are compared (without nnunet's
#     extra "nnunet_rules" key) and so are the splits;
#  3. fold 0 of 3d_fullres with the same short schedule: the reference through
#     bench/ref/nnUNetTrainerShortLR.py (copied into REFENV's nnunetv2), nnunet through
#     bench/train_logged.lua for each SEED (default 12345); every step's loss and batch
#     statistics go to iter_log.txt on both sides;
#  4. replay: the reference network, loss and optimizer trained from nnunet's initial weights
#     on nnunet's first REPLAY_STEPS batches (bench/ref/replay_batches.py);
#  5. a per-epoch table of both sides (bench/ref/summarize_logs.py).
# Runs with nice -n 19 and 2 threads (OMP_NUM_THREADS, nnUNet_n_proc_DA).
set -euo pipefail
REFENV=$(realpath "$1"); WORK=$(realpath -m "$2"); shift 2
SEEDS=("$@"); [ ${#SEEDS[@]} -gt 0 ] || SEEDS=(12345)
EPOCHS=${EPOCHS:-4}; ITERS=${ITERS:-50}; VAL_ITERS=${VAL_ITERS:-10}; REPLAY_STEPS=${REPLAY_STEPS:-40}
REPO=$(cd "$(dirname "$0")/.." && pwd); NNUNET=$REPO/${BUILD:-build}/nnunet
PY=$REFENV/bin/python
DS=Dataset004_HippocampusDemo
export OMP_NUM_THREADS=2 nnUNet_n_proc_DA=2
[ -x "$NNUNET" ] || { echo "no $NNUNET: make build first" >&2; exit 1; }
[ -x "$PY" ] || { echo "no $PY: create the reference's virtual environment first" >&2; exit 1; }
TRDIR=$("$PY" -c 'import nnunetv2, os; print(os.path.dirname(nnunetv2.__file__))')/training/nnUNetTrainer
cp "$REPO/bench/ref/nnUNetTrainerShortLR.py" "$TRDIR/"

# 1. raw data
SRC=$REPO/data/Dataset004_Hippocampus_demo
for side in ref ours; do
  R=$WORK/$side/raw/$DS; mkdir -p "$R/imagesTr" "$R/labelsTr" "$WORK/$side/pre"
  for f in $(ls "$SRC/labelsTr" | sort | head -n 32); do
    cp -n "$SRC/labelsTr/$f" "$R/labelsTr/"; cp -n "$SRC/imagesTr/${f%.nii.gz}_0000.nii.gz" "$R/imagesTr/"
  done
  cat > "$R/dataset.json" <<JSON
{"channel_names": {"0": "MRI"}, "labels": {"background": 0, "Anterior": 1, "Posterior": 2},
 "numTraining": 32, "file_ending": ".nii.gz", "name": "HippocampusDemo"}
JSON
done

# 2. plans
( export nnUNet_raw=$WORK/ours/raw nnUNet_preprocessed=$WORK/ours/pre nnUNet_results=$WORK/ours/res
  cd "$REPO" && nice -n 19 "$NNUNET" plan_and_preprocess -d 4 -c 3d_fullres -np 2 ) > "$WORK/ours_plan.log" 2>&1
( export nnUNet_raw=$WORK/ref/raw nnUNet_preprocessed=$WORK/ref/pre nnUNet_results=$WORK/ref/res
  nice -n 19 "$REFENV/bin/nnUNetv2_plan_and_preprocess" -d 4 -c 3d_fullres -np 2 -npfp 2 ) > "$WORK/ref_plan.log" 2>&1
"$PY" - "$WORK" <<'PYEOF'
import json, sys
w = sys.argv[1]
a = json.load(open(w + "/ref/pre/Dataset004_HippocampusDemo/nnUNetPlans.json"))
b = json.load(open(w + "/ours/pre/Dataset004_HippocampusDemo/nnUNetPlans.json"))
b.pop("nnunet_rules", None)
def diff(x, y, p=""):
    if isinstance(x, dict) and isinstance(y, dict):
        for k in sorted(set(x) | set(y)):
            diff(x.get(k), y.get(k), p + "/" + k)
    elif x != y:
        print("plans differ at %s: reference %r, nnunet %r" % (p, x, y))
diff(a, b)
c = a["configurations"]["3d_fullres"]
print("3d_fullres: patch %s, batch %d, features %s" % (c["patch_size"], c["batch_size"],
      c["architecture"]["arch_kwargs"]["features_per_stage"]))
PYEOF

# 3. training, reference (its splits_final.json is created by its first run) and nnunet
( export nnUNet_raw=$WORK/ref/raw nnUNet_preprocessed=$WORK/ref/pre nnUNet_results=$WORK/ref/res
  export LR_EPOCHS=$EPOCHS LR_ITERS=$ITERS LR_VAL_ITERS=$VAL_ITERS LR_ITER_LOG=$WORK/ref/iter_log.txt
  rm -f "$LR_ITER_LOG"; cd "$WORK" &&
  nice -n 19 "$REFENV/bin/nnUNetv2_train" 4 3d_fullres 0 -tr nnUNetTrainerShortLR -device cpu
) > "$WORK/ref_train.log" 2>&1
cmp <("$PY" -m json.tool "$WORK/ref/pre/$DS/splits_final.json") \
    <("$PY" -m json.tool "$WORK/ours/pre/$DS/splits_final.json" 2>/dev/null || true) >/dev/null 2>&1 ||
  cp "$WORK/ref/pre/$DS/splits_final.json" "$WORK/ours/pre/$DS/"
TABLE=("ref=$WORK/ref_train.log")
for s in "${SEEDS[@]}"; do
  ( export nnUNet_raw=$WORK/ours/raw nnUNet_preprocessed=$WORK/ours/pre nnUNet_results=$WORK/ours/res_s$s
    export NNUNET_ITER_LOG=$WORK/ours/iter_log_s$s.txt; rm -f "$NNUNET_ITER_LOG"; cd "$REPO" &&
    nice -n 19 "$NNUNET" bench/train_logged.lua -d 4 -c 3d_fullres -f 0 -num_epochs "$EPOCHS" \
      -num_iterations_per_epoch "$ITERS" -num_val_iterations "$VAL_ITERS" -device cpu -seed "$s" --no_plot
  ) > "$WORK/ours_train_s$s.log" 2>&1
  TABLE+=("ours_s$s=$WORK/ours_train_s$s.log")
done

# 4. replay of nnunet's first batches in the reference's network / loss / optimizer
if [ "$REPLAY_STEPS" -gt 0 ]; then
  D=$WORK/replay; mkdir -p "$D"
  ( export nnUNet_raw=$WORK/ours/raw nnUNet_preprocessed=$WORK/ours/pre nnUNet_results=$D/res
    export NNUNET_ITER_LOG=$D/ours_steps.txt NNUNET_DUMP_DIR=$D NNUNET_DUMP_STEPS=$REPLAY_STEPS
    rm -f "$NNUNET_ITER_LOG"; cd "$REPO" &&
    nice -n 19 "$NNUNET" bench/train_logged.lua -d 4 -c 3d_fullres -f 0 -num_epochs 10 \
      -num_iterations_per_epoch $((REPLAY_STEPS + 10)) -device cpu -seed 3 --no_plot ) > "$D/ours.log" 2>&1
  ( export nnUNet_raw=$WORK/ref/raw nnUNet_preprocessed=$WORK/ref/pre nnUNet_results=$D/res_ref
    nice -n 19 "$PY" "$REPO/bench/ref/replay_batches.py" "$D" "$WORK/ref/pre/$DS/nnUNetPlans.json" \
      "$WORK/ref/pre/$DS/dataset.json" "$D/ours_steps.txt" ) 2>/dev/null | tee "$WORK/replay.txt"
fi

# 5. the table
"$PY" "$REPO/bench/ref/summarize_logs.py" "${TABLE[@]}"
