#!/bin/bash
# check_formats_in_reference.sh: datasets in other image formats give the reference's
# fingerprint and plans. A one-off oracle check (the tests never need Python); result in
# docs/images.md. The datasets of tests/lua/format_datasets.lua (an RGB PNG dataset, a
# 2-D NIfTI dataset, a 3-D TIFF dataset with spacing sidecars, the synthetic spheres as
# MetaImage and NRRD with a rotated geometry, and as NIfTI for control) are
# fingerprinted and planned by the reference (nnunetv2 in REFENV) and by this program;
# printed: per dataset the reader class both chose and every fingerprint or plans value
# that differs (relative 1e-9; our extra "nnunet_rules" key ignored).
#   bash tests/gen/check_formats_in_reference.sh [REFENV]     (from the repository root)
set -eu
ENV=${1:-/tmp/refenv}
NNUNET=$(readlink -f "${NNUNET:-build/nnunet}")
W=$(mktemp -d)
mkdir -p "$W/raw" "$W/pre_ref" "$W/pre_ours"
cat > "$W/make.lua" <<LUA
local FD = dofile("tests/lua/format_datasets.lua")
local image = require("nnunet.image")
local fs = require("nnunet.fs")
local raw = "$W/raw"
FD.rgb_png(raw .. "/Dataset986_RgbPng", { cases = 8 })
FD.nifti2d(raw .. "/Dataset989_Nifti2d", { cases = 8 })
FD.tif3d(raw .. "/Dataset987_Tif3d", "$W/tifsrc", { cases = 5, size = 12, spacing = { 3.0, 1.0, 1.0 } })
local synth = dofile("tests/lua/synth_dataset.lua")
synth.write("$W/src", { cases = 6, size = 14 })
for _, sub in ipairs({ "imagesTr", "labelsTr" }) do
  for _, n in ipairs(fs.listdir("$W/src/" .. sub)) do
    local p = "$W/src/" .. sub .. "/" .. n
    local t = assert(image.read(p))
    assert(image.write(p, t, { spacing_itk = { 0.7, 0.9, 2.5 }, origin = { 10, -3, 4.5 },
                               direction = { 0, 1, 0, -1, 0, 0, 0, 0, 1 } }))
    t:release()
  end
end
FD.convert("$W/src", raw .. "/Dataset981_Nii", ".nii.gz")   -- the control: the same data as NIfTI
FD.convert("$W/src", raw .. "/Dataset982_Mha", ".mha")
FD.convert("$W/src", raw .. "/Dataset983_Nrrd", ".nrrd")
LUA
"$NNUNET" "$W/make.lua"
for ID in 986 989 987 981 982 983; do
  export nnUNet_raw=$W/raw nnUNet_preprocessed=$W/pre_ref nnUNet_results=$W/res
  "$ENV/bin/nnUNetv2_extract_fingerprint" -d $ID -np 2 > "$W/ref_$ID.log" 2>&1
  "$ENV/bin/nnUNetv2_plan_experiment" -d $ID >> "$W/ref_$ID.log" 2>&1
  export nnUNet_preprocessed=$W/pre_ours
  "$NNUNET" extract_fingerprint -d $ID -np 2 --quiet > "$W/ours_$ID.log" 2>&1
  "$NNUNET" plan_experiment -d $ID >> "$W/ours_$ID.log" 2>&1
done
"$ENV/bin/python" - "$W" <<'PY'
import glob, json, math, os, sys
w = sys.argv[1]

def diff(a, b, path, out):
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if k == "nnunet_rules":
                continue
            if k not in a or k not in b:
                out.append(f"{path}/{k}: only in {'ours' if k in b else 'reference'}")
            else:
                diff(a[k], b[k], f"{path}/{k}", out)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            out.append(f"{path}: length {len(a)} vs {len(b)}")
        else:
            for i, (x, y) in enumerate(zip(a, b)):
                diff(x, y, f"{path}[{i}]", out)
    elif isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        if not (a == b or abs(a - b) <= 1e-9 * max(abs(a), abs(b))):
            out.append(f"{path}: {a!r} vs {b!r}")
    elif a != b:
        out.append(f"{path}: {a!r} vs {b!r}")

for d in sorted(glob.glob(os.path.join(w, "pre_ref", "Dataset*"))):
    name = os.path.basename(d)
    o = os.path.join(w, "pre_ours", name)
    out = []
    for f in ("dataset_fingerprint.json", "nnUNetPlans.json"):
        diff(json.load(open(os.path.join(d, f))), json.load(open(os.path.join(o, f))), f, out)
    ref_rw = json.load(open(os.path.join(d, "nnUNetPlans.json")))["image_reader_writer"]
    print(f"{name}: reader {ref_rw}; {len(out)} difference(s)")
    for line in out[:20]:
        print("   ", line)
PY
rm -rf "$W"
