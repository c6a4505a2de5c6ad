-- Region-based training end to end (nnunet-behaviour.md §7.4, Appendix B): a synthetic
-- dataset whose dataset.json declares overlapping regions (whole = [1, 2], core = 2,
-- regions_class_order [1, 2]; tests/lua/synth_dataset.lua with regions = true) goes through
-- plan_and_preprocess, `nnunet train` (sigmoid heads, Dice + BCE) for 3 epochs of 4
-- iterations, and `nnunet predict`. Checked: the net has one head per region, the losses
-- are finite and fall, the pseudo-Dice is logged per region, validation/summary.json is
-- keyed by the regions, and predictions paint regions_class_order labels (0, 1, 2 only).
-- Skips (77) when a pipeline module is not built.
local fs = require("nnunet.fs")
local json = require("nnunet.json")
local nifti = require("nnunet.image")
local lib = dofile("tests/lua/testlib.lua")
local check = lib.check
lib.skip_unless_modules({ "nnunet.net", "nnunet.loader", "nnunet.augment", "nnunet.export", "nnunet.preproc_case" })

local root = lib.temp_root("regions")
local dirs = { raw = root .. "/raw", pre = root .. "/pre", res = root .. "/res" }
assert(fs.mkdir(dirs.pre)); assert(fs.mkdir(dirs.res))
local synth = dofile("tests/lua/synth_dataset.lua")
synth.write(dirs.raw .. "/Dataset991_Regions", { cases = 6, size = 16, regions = true, test_cases = 1,
  test_folder = root .. "/test_in" })

local code, out = lib.nnunet(dirs, "plan_and_preprocess -d 991 -c 3d_fullres -np 2 --no_fsync --quiet")
if not check(code == 0, "plan_and_preprocess exit %s:\n%s", tostring(code), out) then lib.finish("regions", root) end

code, out = lib.nnunet(dirs, "train -d 991 -c 3d_fullres -f 0 -num_epochs 3 -num_iterations_per_epoch 4 "
  .. "-num_val_iterations 2 --no_plot -device cpu")
check(code == 0, "train exit %s:\n%s", tostring(code), out)

local F = dirs.res .. "/Dataset991_Regions/nnUNetTrainer__nnUNetPlans__3d_fullres/fold_0"
local log = lib.training_logs(F)
local losses = {}
for l in log:gmatch("train_loss (%-?[%d%.]+)") do losses[#losses + 1] = tonumber(l) end
check(#losses == 3, "3 train_loss lines, got %d", #losses)
-- BCE + Dice starts near log 2 - small Dice; it must fall over the 12 iterations
check(losses[1] and losses[3] and losses[3] < losses[1], "train loss falls: %s", table.concat(losses, ", "))
local dice_line = log:match("Pseudo dice (%b[])")
check(dice_line and select(2, dice_line:gsub("np%.float32", "")) == 2, "pseudo dice has 2 regions: %s",
  tostring(dice_line))

local summary = json.decode(lib.read(F .. "/validation/summary.json") or "{}") or {}
check(summary.mean and summary.mean["(1, 2)"] and summary.mean["2"], "summary.json keyed by the regions")

-- predict: the regions are painted with regions_class_order (1 = whole, then 2 = core over it)
code, out = lib.nnunet(dirs, string.format("predict -i %s -o %s -d 991 -c 3d_fullres -f 0 -device cpu",
  lib.sh(root .. "/test_in"), lib.sh(root .. "/pred")))
check(code == 0, "predict exit %s:\n%s", tostring(code), out)
local seg = nifti.read(root .. "/pred/test_001.nii.gz")
check(seg ~= nil, "prediction written")
if seg then
  local t = seg.data or seg
  local mx, mn = t:max(), t:min()
  check(mn >= 0 and mx <= 2, "predicted labels within 0..2 (min %s, max %s)", tostring(mn), tostring(mx))
end

lib.finish("test_train_regions", root)
