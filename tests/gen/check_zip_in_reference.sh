#!/bin/sh
# check_zip_in_reference.sh: a zip from `nnunet export_model_to_zip` installs into the
# reference nnU-Net, and the reference predicts with it what this program predicts.
# A one-off oracle check (the tests never need Python); result in docs/models.md.
#   sh tests/gen/check_zip_in_reference.sh MODEL.zip INPUT_FOLDER DATASET CONFIG [REFENV]
# REFENV: a virtualenv with nnunetv2 (default /tmp/refenv). Both sides predict fold 0 on
# the CPU with --save_probabilities; printed: per case the segmentation agreement and
# the largest probability difference.
set -eu
ZIP=$1 IN=$2 DS=$3 CFG=$4 ENV=${5:-/tmp/refenv}
NNUNET=${NNUNET:-build/nnunet}
W=$(mktemp -d)
export nnUNet_results=$W/results nnUNet_raw=$W/raw nnUNet_preprocessed=$W/pre
"$ENV/bin/nnUNetv2_install_pretrained_model_from_zip" "$ZIP"
"$ENV/bin/nnUNetv2_predict" -i "$IN" -o "$W/ref" -d "$DS" -c "$CFG" -f 0 -device cpu --disable_progress_bar \
  -npp 1 -nps 1 --save_probabilities > "$W/ref.log" 2>&1 || { tail -20 "$W/ref.log"; exit 1; }
MODEL=$(ls -d "$W"/results/*/*__"$CFG" | head -1)
"$NNUNET" predict_from_modelfolder -i "$IN" -o "$W/ours" -m "$MODEL" -f 0 --save_probabilities -device cpu \
  --disable_progress_bar
"$ENV/bin/python" - "$W" <<'PY'
import glob, os, sys
import nibabel as nib, numpy as np
w = sys.argv[1]
for f in sorted(glob.glob(os.path.join(w, "ref", "*.npz"))):
    c = os.path.basename(f)[:-4]
    a = np.load(f)["probabilities"]; b = np.load(os.path.join(w, "ours", c + ".npz"))["probabilities"]
    s1 = np.asarray(nib.load(os.path.join(w, "ref", c + ".nii.gz")).dataobj)
    s2 = np.asarray(nib.load(os.path.join(w, "ours", c + ".nii.gz")).dataobj)
    print(f"{c}: segmentation agreement {(s1 == s2).mean():.6f}, max |p_ref - p_ours| {np.abs(a - b).max():.3g}")
PY
rm -rf "$W"
