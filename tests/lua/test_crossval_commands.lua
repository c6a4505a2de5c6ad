-- accumulate_crossval_results and determine_postprocessing as commands
-- (recipes/accumulate_crossval_results.lua, recipes/determine_postprocessing.lua) on a
-- synthetic trained model whose Dice values are computed by hand:
--   case c1 (fold 0): 4 correct voxels + 1 spurious voxel far away -> Dice 8/9
--   case c2 (fold 1): perfect -> Dice 1
-- accumulate: the merged folder, summary.json values, -o (new / non-empty refused),
-- a missing fold named, the gt_segmentations fallback. determine_postprocessing:
-- keep-largest accepted (Dice 1 after), postprocessing.json, postprocessed/ kept or
-- removed, a missing dataset.json named.
local ok_nifti, nifti = pcall(require, "nnunet.image")
if not ok_nifti then
  print("SKIP: nnunet.image is not built")
  os.exit(77)
end
local tensor = require("nnunet.tensor")
local fs = require("nnunet.fs")
local json = require("nnunet.json")
local TL = dofile("tests/lua/testlib.lua")
local check, read, write = TL.check, TL.read, TL.write_file

local function vol(s)
  local v = {}
  for c in s:gmatch("%d") do v[#v + 1] = tonumber(c) end
  return tensor.from_table(v, { 1, 5, 5 }, "u8")
end
local GT = "00000/01100/01100/00000/00000"
local SPURIOUS = "00000/01100/01100/00000/00001"

local root = TL.temp_root("_cvcmd")
local DS = "Dataset031_Cv"
local RAW, PRE, RES = root .. "/raw", root .. "/pre", root .. "/res"
local DJ = '{"channel_names": {"0": "CT"}, "labels": {"background": 0, "organ": 1}, "numTraining": 2, '
  .. '"file_ending": ".nii.gz"}'
assert(fs.mkdir(RAW .. "/" .. DS .. "/labelsTr")); assert(fs.mkdir(PRE .. "/" .. DS .. "/gt_segmentations"))
for _, c in ipairs({ "c1", "c2" }) do
  assert(nifti.write(RAW .. "/" .. DS .. "/labelsTr/" .. c .. ".nii.gz", vol(GT)))
  assert(nifti.write(PRE .. "/" .. DS .. "/gt_segmentations/" .. c .. ".nii.gz", vol(GT)))
end
local MODEL = RES .. "/" .. DS .. "/nnUNetTrainer__nnUNetPlans__3d_fullres"
assert(fs.mkdir(MODEL .. "/fold_0/validation")); assert(fs.mkdir(MODEL .. "/fold_1/validation"))
write(MODEL .. "/dataset.json", DJ)
write(MODEL .. "/plans.json", '{"dataset_name": "' .. DS .. '", "plans_name": "nnUNetPlans", "configurations": {}}')
assert(nifti.write(MODEL .. "/fold_0/validation/c1.nii.gz", vol(SPURIOUS)))
assert(nifti.write(MODEL .. "/fold_1/validation/c2.nii.gz", vol(GT)))

local dirs = { raw = RAW, pre = PRE, res = RES }
local function run(a, d) return TL.nnunet(d or dirs, a) end
local function close(a, b) return type(a) == "number" and math.abs(a - b) <= 1e-12 end

-- 1. accumulate into the default folder
local code, out = run("accumulate_crossval_results 31 -c 3d_fullres -f 0 1")
check(code == 0, "accumulate exit 0, got %s:\n%s", tostring(code), out)
local merged = MODEL .. "/crossval_results_folds_0_1"
for _, n in ipairs({ "c1.nii.gz", "c2.nii.gz", "dataset.json", "plans.json", "summary.json" }) do
  check(fs.isfile(merged .. "/" .. n), "merged folder has %s", n)
end
local s = json.decode_file(merged .. "/summary.json")
local want = (8 / 9 + 1) / 2
check(s and close(s.foreground_mean.Dice, want) and close(s.mean["1"].Dice, want),
  "summary Dice %s, want %s", s and tostring(s.foreground_mean.Dice) or "nil", tostring(want))
check(s and s.metric_per_case[1].reference_file:find(RAW .. "/" .. DS .. "/labelsTr/c1.nii.gz", 1, true),
  "evaluated against nnUNet_raw labelsTr")
check(out:find("foreground mean", 1, true) and out:find(merged, 1, true), "result printed:\n%s", out)
-- -d instead of the positional, a stale file in the default folder is removed (recreated)
write(merged .. "/stale.nii.gz", "x")
code, out = run("accumulate_crossval_results -d " .. DS .. " -c 3d_fullres -f 0 1")
check(code == 0 and not fs.exists(merged .. "/stale.nii.gz"), "default folder recreated:\n%s", out)

-- -o: a new folder works, a non-empty one is refused untouched
local o1 = root .. "/cv_out"
code, out = run("accumulate_crossval_results 31 -c 3d_fullres -f 0 1 -o " .. TL.sh(o1))
check(code == 0 and fs.isfile(o1 .. "/summary.json") and fs.isfile(o1 .. "/c2.nii.gz"), "-o new folder:\n%s", out)
code, out = run("accumulate_crossval_results 31 -c 3d_fullres -f 0 1 -o " .. TL.sh(o1))
check(code == 1 and out:find(o1, 1, true) and out:find("not empty", 1, true), "-o non-empty refused:\n%s", out)
-- a missing fold and a missing model are named
code, out = run("accumulate_crossval_results 31 -c 3d_fullres -f 0 1 2")
check(code == 1 and out:find(MODEL .. "/fold_2/validation", 1, true), "missing fold named:\n%s", out)
code, out = run("accumulate_crossval_results 31 -c 2d")
check(code == 1 and out:find(RES .. "/" .. DS .. "/nnUNetTrainer__nnUNetPlans__2d", 1, true),
  "missing model named:\n%s", out)
-- without nnUNet_raw: gt_segmentations
local o2 = root .. "/cv_pre"
code, out = run("accumulate_crossval_results 31 -c 3d_fullres -f 0 1 -o " .. TL.sh(o2),
  { raw = "", pre = PRE, res = RES })
s = json.decode_file(o2 .. "/summary.json")
check(code == 0 and s and s.metric_per_case[1].reference_file:find("gt_segmentations", 1, true),
  "gt_segmentations fallback:\n%s", out)

-- 2. determine_postprocessing on the merged folder
local ref = RAW .. "/" .. DS .. "/labelsTr"
code, out = run("determine_postprocessing -i " .. TL.sh(merged) .. " -ref " .. TL.sh(ref) .. " -np 2")
check(code == 0, "determine_postprocessing exit 0:\n%s", out)
local pp = json.decode_file(merged .. "/postprocessing.json")
check(pp and #pp.postprocessing_fns == 1
  and pp.postprocessing_fns[1] == "remove_all_but_largest_component_from_segmentation"
  and close(pp.input_folder.foreground_mean.Dice, want) and close(pp.postprocessed.foreground_mean.Dice, 1),
  "postprocessing.json: one accepted step, Dice %s -> 1", tostring(want))
check(fs.isfile(merged .. "/postprocessed/c1.nii.gz") and fs.isfile(merged .. "/postprocessed/summary.json")
  and not fs.exists(merged .. "/postprocessed/temp"), "postprocessed/ kept, temp removed")
local fixed = nifti.read(merged .. "/postprocessed/c1.nii.gz")
check(fixed and table.concat(fixed:totable(), "") == GT:gsub("/", ""), "spurious voxel removed")
check(out:find("1 postprocessing step(s) accepted", 1, true), "summary line:\n%s", out)
-- --remove_postprocessed, and the decision is applied by apply_postprocessing
code, out = run("determine_postprocessing -i " .. TL.sh(o1) .. " -ref " .. TL.sh(ref) .. " --remove_postprocessed")
check(code == 0 and fs.isfile(o1 .. "/postprocessing.json") and not fs.exists(o1 .. "/postprocessed"),
  "--remove_postprocessed:\n%s", out)
code, out = run("apply_postprocessing -i " .. TL.sh(merged) .. " -o " .. TL.sh(root .. "/applied") .. " -pp_pkl_file "
  .. TL.sh(merged .. "/postprocessing.json"))
local applied = nifti.read(root .. "/applied/c1.nii.gz")
check(code == 0 and applied and table.concat(applied:totable(), "") == GT:gsub("/", ""), "decision applies:\n%s", out)
-- errors
local nodj = root .. "/nodj"
assert(fs.mkdir(nodj))
assert(nifti.write(nodj .. "/c1.nii.gz", vol(GT)))
code, out = run("determine_postprocessing -i " .. TL.sh(nodj) .. " -ref " .. TL.sh(ref))
check(code == 1 and out:find(nodj .. "/dataset.json", 1, true), "missing dataset.json named:\n%s", out)
code, out = run("determine_postprocessing -i " .. TL.sh(nodj) .. " -ref " .. TL.sh(ref) .. " -dataset_json "
  .. TL.sh(MODEL .. "/dataset.json"))
check(code == 0 and fs.isfile(nodj .. "/postprocessing.json"), "-dataset_json:\n%s", out)
code, out = run("determine_postprocessing -i " .. TL.sh(root .. "/absent") .. " -ref " .. TL.sh(ref))
check(code == 1 and out:find(root .. "/absent", 1, true), "missing input named:\n%s", out)

TL.finish("test_crossval_commands", root)
