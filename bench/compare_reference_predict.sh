#!/bin/bash
# compare_reference_predict.sh: whole-case CPU prediction time and peak memory of the
# reference's nnUNetv2_predict against `nnunet predict` (fp32 and bf16) with the same
# model, and the agreement of the segmentations. Not part of `make test` or `make bench`
# (it needs the reference in a virtualenv); figures in docs/predict.md.
#   bash bench/compare_reference_predict.sh MODEL.zip INPUT_FOLDER DATASET CONFIG [REFENV]
# MODEL.zip: from `nnunet export_model_to_zip` (or the reference's own export); it is
# installed into a temporary nnUNet_results for both programs. Both predict fold 0 on the
# CPU with mirroring (TTA) on, one case at a time (-npp 1 -nps 1 on the reference side).
# Threads: OMP_NUM_THREADS as set by the caller (the reference's torch takes all CPUs).
set -eu
ZIP=$1 IN=$2 DS=$3 CFG=$4 ENV=${5:-/tmp/refenv}
NNUNET=${NNUNET:-build/nnunet}
W=$(mktemp -d)
export nnUNet_results=$W/res nnUNet_raw=$W/raw nnUNet_preprocessed=$W/pre
"$ENV/bin/nnUNetv2_install_pretrained_model_from_zip" "$ZIP" >/dev/null
measure() {   # label, command...
  local label=$1; shift
  /usr/bin/time -f "%e %M" -o "$W/time" "$@" > "$W/$label.log" 2>&1 || { tail -20 "$W/$label.log"; exit 1; }
  read -r secs kb < "$W/time"
  printf '%-22s %8.1f s   peak RSS %6.2f GB\n' "$label" "$secs" "$(echo "$kb / 1048576" | bc -l)"
}
measure reference "$ENV/bin/nnUNetv2_predict" -i "$IN" -o "$W/ref" -d "$DS" -c "$CFG" -f 0 -device cpu \
  -npp 1 -nps 1 --disable_progress_bar
for p in fp32 bf16; do
  measure "nnunet-$p" "$NNUNET" predict -i "$IN" -o "$W/ours_$p" -d "$DS" -c "$CFG" -f 0 -device cpu \
    -precision "$p" --disable_progress_bar
done
"$ENV/bin/python" - "$W" <<'PY'
import glob, os, sys
import nibabel as nib, numpy as np
w = sys.argv[1]
for f in sorted(glob.glob(os.path.join(w, "ref", "*.nii.gz"))):
    a = np.asarray(nib.load(f).dataobj)
    for p in ("fp32", "bf16"):
        b = np.asarray(nib.load(os.path.join(w, "ours_" + p, os.path.basename(f))).dataobj)
        print(f"{os.path.basename(f)}: nnunet-{p} agrees with the reference on {(a == b).mean():.5f} of the voxels")
PY
rm -rf "$W"
