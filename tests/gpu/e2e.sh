#!/bin/bash
# e2e.sh: the whole nnunet program end to end with the carried bundle (issue 9):
# plan + preprocess the 40-case demo dataset, train 3d_fullres fold 0, predict the 8
# held-back cases, evaluate; then (budget permitting) the same prediction on the CPU
# from the same checkpoint, its Dice and the voxel agreement of the two. Runs
# .gpubundle/bin/nnunet (tests/gpu/make_bundle.sh) with the bundle's own libraries
# and Lua tree (tests/gpu/bundle_env.sh); needs nothing of Lua, nifticlib, oneDNN,
# cairo or lua-cjson on the machine. The dataset is laid out as recipes/demo.lua does
# (cases sorted by id, the last 8 held back as imagesTs/labelsTs, Dataset904).
#
#   bash tests/gpu/e2e.sh [DEVICE] [BUDGET_S] [EPOCHS] [ITERATIONS]      (repo root)
#     DEVICE      cuda (default), cpu or auto: -device of train and the first predict
#     BUDGET_S    seconds for the whole script (default 170); a step that would not
#                 fit in what is left is skipped (SKIP line), a running one is stopped
#                 by timeout, and the summary is always written
#     EPOCHS x ITERATIONS   training schedule (default 12 x 50, the demo's bf16 schedule,
#                 whose Dice on the CPU the README gives; 4 validation iterations).
#                 A training stopped by the budget gets SIGINT, writes
#                 checkpoint_latest, and the predictions use that checkpoint
#   env: E2E_PRECISION (-precision of train and the first predict; default: the
#        program's CUDA default bf16-act16 on cuda, bf16 on the CPU),
#        E2E_WORK (default /tmp/nnu_e2e: nnUNet_raw/_preprocessed/_results, deleted
#        first), OUT (default /tmp/nnu_out), nnUNet_n_proc_DA (loader workers).
# Writes $OUT/e2e.log (every command's output), $OUT/e2e_summary.txt (one line per
# step with its wall time, the device lines of the logs, the Dice figures) and
# $OUT/e2e_progress.png (the training's progress plot); prints the summary last.
set -u
DEVICE=${1:-cuda}; BUDGET=${2:-170}; EPOCHS=${3:-12}; ITERS=${4:-50}
if [ "$DEVICE" = cpu ]; then PREC=${E2E_PRECISION:-bf16}; else PREC=${E2E_PRECISION:-bf16-act16}; fi
OUT=${OUT:-/tmp/nnu_out}; mkdir -p "$OUT"
WORK=${E2E_WORK:-/tmp/nnu_e2e}
LOG=$OUT/e2e.log; SUM=$OUT/e2e_summary.txt
: > "$LOG"; : > "$SUM"
T_START=$SECONDS
left() { echo $((BUDGET - (SECONDS - T_START))); }
now() { date +%s.%N; }
say() { echo "$*" | tee -a "$SUM"; }

. tests/gpu/bundle_env.sh
NNU=$BUNDLE/bin/nnunet
DS=Dataset904_HippocampusDemo
rm -rf "$WORK"; mkdir -p "$WORK"
export nnUNet_raw=$WORK/nnUNet_raw nnUNet_preprocessed=$WORK/nnUNet_preprocessed nnUNet_results=$WORK/nnUNet_results
RAW=$nnUNet_raw/$DS
FOLD=$nnUNet_results/$DS/nnUNetTrainer__nnUNetPlans__3d_fullres/fold_0
NCPU=$(nproc); NP=$NCPU; [ "$NP" -gt 16 ] && NP=16

# cairo draws progress.png's text through fontconfig; where the machine has no
# fontconfig setup, point it at matplotlib's DejaVu fonts (if python3 has them).
# Without any font the plot is drawn without text (checked: no crash).
if [ -z "${FONTCONFIG_FILE:-}" ] && [ ! -e /etc/fonts/fonts.conf ]; then
  TTF=$(python3 -c "import matplotlib,os;print(os.path.join(os.path.dirname(matplotlib.__file__),'mpl-data','fonts','ttf'))" 2>/dev/null)
  if [ -n "$TTF" ] && [ -d "$TTF" ]; then
    printf '<?xml version="1.0"?>\n<fontconfig><dir>%s</dir><cachedir>%s</cachedir></fontconfig>\n' \
      "$TTF" "$WORK/fontcache" > "$WORK/fonts.conf"
    export FONTCONFIG_FILE=$WORK/fonts.conf
  fi
fi

{
  echo "== e2e env: device $DEVICE, precision $PREC, schedule ${EPOCHS}x${ITERS}, budget ${BUDGET} s, $NCPU CPUs"
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH (libstdc++/libgcc_s fallback used: $NNU_FALLBACK)"
  echo "FONTCONFIG_FILE=${FONTCONFIG_FILE:-}"
  echo "nnunet's libraries:"; ldd "$NNU" 2>&1 | awk '{print "  " $0}'
} >> "$LOG" 2>&1
say "== e2e: nnunet $DEVICE $PREC ${EPOCHS}x${ITERS}, budget ${BUDGET} s, $NCPU CPUs$(command -v nvidia-smi >/dev/null && echo ", $(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)")"
UNRES=$(ldd "$NNU" 2>&1 | grep "not found")
[ -n "$UNRES" ] && say "FAIL libraries: $(echo "$UNRES" | tr -s ' \t\n' ' ')"

# step NAME MIN_S RESERVE_S CMD...: runs CMD if at least MIN_S are left, under a
# timeout (signal $STEP_SIG, default TERM) that keeps RESERVE_S for the steps after
# it; output to the log and $STEP_OUT
STEP_OUT=$WORK/step.out
STEP_SIG=TERM
step() {
  local name=$1 min=$2 reserve=$3; shift 3
  if [ "$(left)" -lt "$min" ]; then say "SKIP $name (needs ~$min s, $(left) s left)"; return 2; fi
  local to=$(( $(left) - reserve )); [ "$to" -lt "$min" ] && to=$min
  echo "### $name: $*" >> "$LOG"
  local t0; t0=$(now)
  if declare -F "$1" >/dev/null; then "$@" > "$STEP_OUT" 2>&1   # a function of this script
  else timeout -s "$STEP_SIG" -k 20 "$to" "$@" > "$STEP_OUT" 2>&1; fi
  local rc=$?
  cat "$STEP_OUT" >> "$LOG"
  local dt; dt=$(awk -v a="$t0" -v b="$(now)" 'BEGIN {printf "%.1f", b - a}')
  local r=PASS; [ $rc -ne 0 ] && r=FAIL; [ $rc -eq 124 ] || [ $rc -eq 137 ] && r="FAIL (timeout ${to} s)"
  say "$r $name (rc=$rc, $dt s)"
  [ $rc -ne 0 ] && tail -3 "$STEP_OUT" | sed 's/^/    /' | tee -a "$SUM"
  return $rc
}
# dice NAME: the Dice lines of evaluate_folder's output in $STEP_OUT as one line
dice() {
  local d n; d=$(awk '/mean Dice per/ {on = 1; next} on && /^  / {sub(/^ +/, ""); gsub(/  +/, " "); printf "%s%s", sep, $0; sep = ", "}' "$STEP_OUT")
  n=$(awk '/cases evaluated/ {print $1; exit}' "$STEP_OUT")
  say "DICE $1: ${d:-none} (Anterior = 1, Posterior = 2; ${n:-?} of 8 cases)"
}

# 1. the raw dataset: 32 training cases + 8 held back, as recipes/demo.lua lays it out
make_raw() {
  local src=$BUNDLE/share/nnunet/data/Dataset004_Hippocampus_demo i=0 n ntr id d
  n=$(ls "$src/labelsTr" | wc -l); ntr=$((n - 8))
  for d in imagesTr labelsTr imagesTs labelsTs; do mkdir -p "$RAW/$d"; done
  for id in $(ls "$src/labelsTr" | LC_ALL=C sort | sed 's/\.nii\.gz$//'); do
    i=$((i + 1)); d=Tr; [ $i -gt $ntr ] && d=Ts
    cp "$src/imagesTr/${id}_0000.nii.gz" "$RAW/images$d/" && cp "$src/labelsTr/$id.nii.gz" "$RAW/labels$d/" || return 1
  done
  cat > "$RAW/dataset.json" <<EOF
{
    "channel_names": {"0": "MRI"},
    "labels": {"background": 0, "Anterior": 1, "Posterior": 2},
    "numTraining": $ntr,
    "file_ending": ".nii.gz",
    "name": "HippocampusDemo",
    "description": "nnunet e2e: $ntr training cases of MSD Task04 Hippocampus, 8 held back",
    "licence": "CC-BY-SA 4.0"
}
EOF
  echo "$ntr training cases, $((n - ntr)) held back"
}
step dataset 5 0 make_raw &&
step plan_and_preprocess 20 60 "$NNU" plan_and_preprocess -d $DS -c 3d_fullres -np $NP --verify_dataset_integrity &&
grep -iE "patch|batch" "$STEP_OUT" | head -3 | sed 's/^/    /' | tee -a "$SUM"

# 2. train fold 0 (keeps 45 s for predict + evaluate; stopped with SIGINT, nnunet
# writes checkpoint_latest)
if [ -f "$nnUNet_preprocessed/$DS/nnUNetPlans.json" ]; then
  STEP_SIG=INT step train 40 45 "$NNU" train -d $DS -c 3d_fullres -f 0 -device "$DEVICE" -precision "$PREC" \
    -num_epochs "$EPOCHS" -num_iterations_per_epoch "$ITERS" -num_val_iterations 4
  # the lines that say where the network ran, the last epoch, the final validation
  grep -E "Using the GPU|no CUDA GPU|Using the CPU|Network on|Mean Validation Dice|Interrupted" "$STEP_OUT" | sed 's/^/    /' | tee -a "$SUM"
  grep -E "Epoch time" "$STEP_OUT" | awk '{t = $(NF - 1); s += t; n++; last = $0} END {if (n) printf "    %d epochs, mean epoch time %.2f s (first included); last: %s\n", n, s / n, last}' | tee -a "$SUM"
  grep -E "train_loss|Pseudo dice" "$STEP_OUT" | tail -2 | sed 's/^/    /' | tee -a "$SUM"
  [ -f "$FOLD/progress.png" ] && cp "$FOLD/progress.png" "$OUT/e2e_progress.png"
else
  say "SKIP train (no plans)"
fi

# 3. predict the held-back cases on DEVICE, evaluate
PRED=$WORK/pred_$DEVICE
CHK=checkpoint_final
[ -f "$FOLD/$CHK.pth" ] || { CHK=checkpoint_latest; [ -f "$FOLD/$CHK.pth" ] && say "NOTE predicting from $CHK (training did not finish)"; }
if [ -f "$FOLD/$CHK.pth" ]; then
  step "predict $DEVICE" 15 10 "$NNU" predict -i "$RAW/imagesTs" -o "$PRED" -d $DS -c 3d_fullres -f 0 \
    -chk $CHK -device "$DEVICE" -precision "$PREC" --disable_progress_bar
  grep -E "Using the GPU|no CUDA GPU|Using the CPU|predicted into" "$STEP_OUT" | sed 's/^/    /' | tee -a "$SUM"
  step "evaluate $DEVICE" 5 0 "$NNU" evaluate_folder "$RAW/labelsTs" "$PRED" -djfile "$RAW/dataset.json" \
    -o "$WORK/summary_$DEVICE.json" --chill && dice "held-back, $DEVICE $PREC"
else
  say "SKIP predict/evaluate (no checkpoint)"
fi

# 4. the same checkpoint on the CPU (fp32, the reference precision), agreement
PREDC=$WORK/pred_cpu_fp32
if [ -d "$PRED" ] && [ -f "$FOLD/$CHK.pth" ]; then
  step "predict cpu fp32" 30 10 "$NNU" predict -i "$RAW/imagesTs" -o "$PREDC" -d $DS -c 3d_fullres -f 0 \
    -chk $CHK -device cpu -precision fp32 --disable_progress_bar &&
  step "evaluate cpu fp32" 5 0 "$NNU" evaluate_folder "$RAW/labelsTs" "$PREDC" -djfile "$RAW/dataset.json" \
    -o "$WORK/summary_cpu.json" --chill && dice "held-back, cpu fp32" &&
  step "agreement $DEVICE vs cpu" 5 0 "$NNU" tests/gpu/seg_agreement.lua "$PRED" "$PREDC" -l 0 1 2 &&
  grep "^agreement" "$STEP_OUT" | sed 's/^/    /' | tee -a "$SUM"
fi
say "== e2e done in $((SECONDS - T_START)) s (budget $BUDGET s); logs: $LOG"
