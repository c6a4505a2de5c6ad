-- benchmark: learning on real data (issue 7 item 8): shared Hippocampus, 3d_fullres fold 0
--
-- build/nnunet bench/train_hippocampus.lua [-o WORKDIR] [-num_epochs N] [-num_iterations_per_epoch N]
--
-- Plans and preprocesses ../shared/data/Dataset004_Hippocampus (230 cases) in
-- WORKDIR, trains fold 0 of 3d_fullres with the given CPU schedule, runs the
-- reference's final validation (full-resolution sliding window on the fold's 46
-- validation cases) and prints the schedule, the wall time and the mean Dice.
-- The curve is WORKDIR/.../fold_0/progress.png; docs/training.md has the figures.
-- Rerunning resumes (the train step continues from checkpoint_latest).
local fs = require("nnunet.fs")
local sys = require("nnunet.sys")
local json = require("nnunet.json")
local recipe = require("nnunet.recipe")
local progress = require("nnunet.progress")

local M = {
  summary = "learning on real data: shared Hippocampus 3d_fullres fold 0 on the CPU",
  options = {
    { "-o", "workdir", "working folder", default = "build/bench_hippocampus" },
    { "-num_epochs", "epochs", "epochs", type = "int", default = 6 },
    { "-num_iterations_per_epoch", "iterations", "iterations per epoch", type = "int", default = 100 },
    { "-num_val_iterations", "val_iterations", "validation iterations per epoch", type = "int", default = 15 },
    { "-device", "device", "cpu, cuda or auto", default = "cpu" },
    { "-precision", "precision", "convolution precision (fp32; bf16 where the CPU has AVX512-BF16)",
      default = "fp32" },
  },
}

local NAME = "Dataset004_Hippocampus"

function M.run(o)
  local shared = sys.home .. "/../shared/data/" .. NAME
  if not fs.isdir(shared) then
    print("SKIP: " .. shared .. " not found")
    return 77
  end
  local t0 = sys.clock()
  assert(fs.mkdir(o.workdir .. "/nnUNet_raw"))
  local work = assert(fs.realpath(o.workdir))
  sys.setenv("nnUNet_raw", work .. "/nnUNet_raw")
  sys.setenv("nnUNet_preprocessed", work .. "/nnUNet_preprocessed")
  sys.setenv("nnUNet_results", work .. "/nnUNet_results")
  -- the raw dataset is read in place: a symbolic link, no copy
  local raw = work .. "/nnUNet_raw/" .. NAME
  if not fs.exists(raw) then assert(os.execute(string.format("ln -s %q %q", fs.realpath(shared), raw))) end

  local pre = work .. "/nnUNet_preprocessed/" .. NAME
  if not fs.isfile(pre .. "/nnUNetPlans.json") then
    assert(recipe.call("plan_and_preprocess", { "-d", "4", "-c", "3d_fullres", "-np", "2" }) == 0)
  end
  local t_pre = sys.clock() - t0
  local fold = work .. "/nnUNet_results/" .. NAME .. "/nnUNetTrainer__nnUNetPlans__3d_fullres/fold_0"
  local args = { "-d", "4", "-c", "3d_fullres", "-f", "0", "-device", o.device, "-precision", o.precision,
    "-num_epochs", tostring(o.epochs), "-num_iterations_per_epoch", tostring(o.iterations),
    "-num_val_iterations", tostring(o.val_iterations) }
  if fs.isfile(fold .. "/checkpoint_latest.pth") or fs.isfile(fold .. "/checkpoint_final.pth") then
    args[#args + 1] = "--c"
  end
  assert(recipe.call("train", args) == 0)
  local s = assert(json.decode_file(fold .. "/validation/summary.json"))
  local plans = assert(json.decode_file(pre .. "/nnUNetPlans.json"))
  print(string.format(
    "bench train_hippocampus precision=%s epochs=%d iterations=%d batch=%d preprocess_s=%.0f total=%s " ..
    "val_dice_anterior=%.4f val_dice_posterior=%.4f val_dice_mean=%.4f",
    o.precision, o.epochs, o.iterations, plans.configurations["3d_fullres"].batch_size, t_pre,
    progress.format_time(sys.clock() - t0), s.mean["1"].Dice, s.mean["2"].Dice, s.foreground_mean.Dice))
  print("curve: " .. fold .. "/progress.png")
  return 0
end

return M
