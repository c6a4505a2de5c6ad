-- The residual-encoder presets end to end (nnunet-behaviour.md §5.8): a synthetic
-- dataset (tests/lua/synth_dataset.lua) is planned with `-pl nnUNetPlannerResEncM`
-- (plans nnUNetResEncUNetMPlans: network_class_name ...ResidualEncoderUNet with
-- n_blocks_per_stage), preprocessed, trained with `nnunet train -p nnUNetResEncUNetMPlans`
-- for 3 epochs of 4 iterations, and predicted with `nnunet predict -p ...`. Checked:
-- the plan names the ResidualEncoderUNet, the network built from it is one (its tensor
-- names: encoder.stem, blocks, skip projections), the checkpoint holds those names,
-- the losses are finite and fall, and the prediction is a label image with labels
-- 0..1 of the input's shape. Skips (77) when a pipeline module is not built.
local fs = require("nnunet.fs")
local json = require("nnunet.json")
local nifti = require("nnunet.image")
local lib = dofile("tests/lua/testlib.lua")
local check = lib.check
lib.skip_unless_modules({ "nnunet.net", "nnunet.loader", "nnunet.augment", "nnunet.export", "nnunet.preproc_case" })
local netmod = require("nnunet.net")

local root = lib.temp_root("resenc")
local dirs = { raw = root .. "/raw", pre = root .. "/pre", res = root .. "/res" }
assert(fs.mkdir(dirs.pre)); assert(fs.mkdir(dirs.res))
local synth = dofile("tests/lua/synth_dataset.lua")
synth.write(dirs.raw .. "/Dataset992_ResEnc", { cases = 6, size = 16, test_cases = 1,
  test_folder = root .. "/test_in" })

local code, out = lib.nnunet(dirs, "plan_and_preprocess -d 992 -c 3d_fullres -pl nnUNetPlannerResEncM "
  .. "-np 2 --no_fsync --quiet")
if not check(code == 0, "plan_and_preprocess exit %s:\n%s", tostring(code), out) then lib.finish("resenc", root) end

local PLANS = "nnUNetResEncUNetMPlans"
local plans = json.decode(lib.read(dirs.pre .. "/Dataset992_ResEnc/" .. PLANS .. ".json") or "{}") or {}
local conf = plans.configurations and plans.configurations["3d_fullres"] or {}
local arch = conf.architecture or {}
check(type(arch.network_class_name) == "string" and arch.network_class_name:match("ResidualEncoderUNet$"),
  "plan's network class: %s", tostring(arch.network_class_name))
check(arch.arch_kwargs and arch.arch_kwargs.n_blocks_per_stage, "plan has n_blocks_per_stage")

-- the network the plan describes is the residual encoder, with the reference's names
if arch.arch_kwargs then
  local net = netmod.build(arch, { num_input_channels = 1, num_classes = 2, deep_supervision = true })
  check(net:info().arch == "ResidualEncoderUNet", "net:info().arch = %s", tostring(net:info().arch))
  local names = {}
  for _, l in ipairs(net:layout()) do names[l.name] = l.shape end
  check(names["encoder.stem.convs.0.conv.weight"] ~= nil, "stem conv in the layout")
  check(names["encoder.stages.1.blocks.0.skip.1.conv.weight"] ~= nil, "stage 1 skip projection in the layout")
  check(names["encoder.stages.1.blocks.0.skip.1.conv.bias"] == nil, "the skip conv has no bias")
  check(names["encoder.stages.0.0.convs.0.conv.weight"] == nil, "no PlainConvUNet names")
  net:close()
end
-- an unknown class is refused by name
local ok, err = pcall(netmod.build, { network_class_name = "my.nets.FancyUNet", arch_kwargs = arch.arch_kwargs },
  { num_input_channels = 1, num_classes = 2 })
check(not ok and tostring(err):match("FancyUNet") and tostring(err):match("not supported"),
  "unknown class error: %s", tostring(err))

code, out = lib.nnunet(dirs, "train -d 992 -c 3d_fullres -f 0 -p " .. PLANS .. " -num_epochs 3 "
  .. "-num_iterations_per_epoch 4 -num_val_iterations 2 --no_plot -device cpu")
check(code == 0, "train exit %s:\n%s", tostring(code), out)

local F = dirs.res .. "/Dataset992_ResEnc/nnUNetTrainer__" .. PLANS .. "__3d_fullres/fold_0"
local log = lib.training_logs(F)
local losses = {}
for l in log:gmatch("train_loss (%-?[%d%.]+)") do losses[#losses + 1] = tonumber(l) end
print("train losses: " .. table.concat(losses, ", "))
check(#losses == 3, "3 train_loss lines, got %d", #losses)
check(losses[1] and losses[3] and losses[3] < losses[1], "train loss falls: %s", table.concat(losses, ", "))

-- the checkpoint carries the ResidualEncoderUNet's tensor names
local meta = netmod.metadata(F .. "/checkpoint_final.pth")
check(meta ~= nil, "checkpoint_final.pth readable")
local ck = lib.read(F .. "/checkpoint_final.pth") or ""
check(ck:find("encoder.stages.1.blocks.0.skip.1.norm.weight", 1, true) ~= nil,
  "checkpoint holds the residual encoder's names")

code, out = lib.nnunet(dirs, string.format("predict -i %s -o %s -d 992 -c 3d_fullres -f 0 -p %s -device cpu",
  lib.sh(root .. "/test_in"), lib.sh(root .. "/pred"), PLANS))
check(code == 0, "predict exit %s:\n%s", tostring(code), out)
local seg = nifti.read(root .. "/pred/test_001.nii.gz")
check(seg ~= nil, "prediction written")
if seg then
  local t = seg.data or seg
  local mx, mn = t:max(), t:min()
  check(mn >= 0 and mx <= 1, "predicted labels within 0..1 (min %s, max %s)", tostring(mn), tostring(mx))
  check(t:numel() == 16 * 16 * 16, "prediction has the input's %d voxels, got %s", 16 * 16 * 16,
    tostring(t:numel()))
end

lib.finish("test_train_resenc", root)
