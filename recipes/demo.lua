-- the demo: plan, preprocess, train briefly, predict held-back cases, evaluate
--
-- nnunet demo [-o WORKDIR] [-num_epochs N] [-num_iterations_per_epoch N] [--fresh]
--
-- On the bundled 40-case Hippocampus subset (data/Dataset004_Hippocampus_demo):
-- the last 8 cases (sorted by id) are held back as a test set, the other 32 form
-- the training dataset "Dataset904_HippocampusDemo". The demo then runs the
-- real pipeline, each step being the recipe a user would type:
--   1. verify_dataset        the reference's integrity checks
--   2. plan_and_preprocess   fingerprint, plan (rules/), preprocess 3d_fullres
--   3. train                 3d_fullres, fold 0, a short schedule
--   4. predict               the 8 held-back images, sliding window + mirroring
--   5. evaluate_folder       Dice per label against the held-back labels
-- Everything lives in WORKDIR (default build/demo), which gets its own
-- nnUNet_raw, nnUNet_preprocessed and nnUNet_results. Running the demo again
-- resumes: finished steps are skipped, an interrupted training continues (--c).
local dataset = require("nnunet.dataset")
local json = require("nnunet.json")
local fs = require("nnunet.fs")
local sys = require("nnunet.sys")
local recipe = require("nnunet.recipe")
local progress = require("nnunet.progress")

local DEMO_NAME = "Dataset904_HippocampusDemo"
local N_TEST = 8

local M = {
  summary = "the demo: plan, preprocess, train briefly, predict held-back cases, evaluate",
  options = {
    { "-o", "workdir", "working folder (its own nnUNet_raw/_preprocessed/_results)", default = "build/demo" },
    { "-num_epochs", "num_epochs", "training epochs (default: 12 with bf16, 8 with fp32)", type = "int" },
    { "-num_iterations_per_epoch", "iterations", "training iterations per epoch (default: 50 with bf16, 40 with fp32)",
      type = "int" },
    { "-precision", "precision", "convolution precision: auto (bf16 where the CPU has AVX512-BF16, else fp32), "
      .. "fp32 or bf16", default = "auto", choices = { "auto", "fp32", "bf16" } },
    { "-num_val_iterations", "val_iterations", "validation iterations per epoch", type = "int", default = 4 },
    { "-device", "device", "cpu, cuda or auto", default = "auto" },
    { "--fresh", "fresh", "delete WORKDIR's previous results first", flag = true },
  },
}

-- bf16 convolutions run natively (about 3x faster than fp32 in oneDNN) only where the
-- CPU has AVX512-BF16; elsewhere oneDNN would emulate them slowly, so fp32 is used.
local function cpu_has_bf16()
  local f = io.open("/proc/cpuinfo", "r")
  if not f then return false end
  local info = f:read("a")
  f:close()
  return info:find("avx512_bf16", 1, true) ~= nil or info:find("amx_bf16", 1, true) ~= nil
end

local function check(status, step)
  if status ~= 0 then
    error({ user_error = true, message = string.format("demo: step '%s' failed (status %d)", step, status) }, 0)
  end
end

-- Lays out the raw demo dataset: 32 training cases + 8 held-back test cases.
local function build_raw(raw_root)
  local src = assert(dataset.open(sys.home .. "/data/Dataset004_Hippocampus_demo"))
  local dst = raw_root .. "/" .. DEMO_NAME
  for _, sub in ipairs({ "imagesTr", "labelsTr", "imagesTs", "labelsTs" }) do
    assert(fs.mkdir(dst .. "/" .. sub))
  end
  local n_train = #src.cases - N_TEST
  for i, case in ipairs(src.cases) do
    local img_dir, lbl_dir = "imagesTr", "labelsTr"
    if i > n_train then img_dir, lbl_dir = "imagesTs", "labelsTs" end
    local img = string.format("%s/%s/%s_0000%s", dst, img_dir, case.id, src.file_ending)
    local lbl = string.format("%s/%s/%s%s", dst, lbl_dir, case.id, src.file_ending)
    if not fs.isfile(img) then assert(fs.copy(case.images[1], img)) end
    if not fs.isfile(lbl) then assert(fs.copy(case.label, lbl)) end
  end
  local dj = json.object({ "channel_names", "labels", "numTraining", "file_ending", "name", "description",
    "licence", "reference" })
  dj.channel_names = json.object({ "0" }); dj.channel_names["0"] = "MRI"
  dj.labels = json.object({ "background", "Anterior", "Posterior" })
  dj.labels.background, dj.labels.Anterior, dj.labels.Posterior = 0, 1, 2
  dj.numTraining = n_train
  dj.file_ending = src.file_ending
  dj.name = "HippocampusDemo"
  dj.description = string.format("nnunet demo: %d training cases of MSD Task04 Hippocampus, %d held back",
    n_train, N_TEST)
  dj.licence = "CC-BY-SA 4.0"
  dj.reference = "Vanderbilt University Medical Center (MSD Task04); see data/Dataset004_Hippocampus_demo/README.md"
  json.write_file_atomic(dst .. "/dataset.json", dj)
  return dst, n_train
end

local function print_table(summary_path, results_dir)
  local s = assert(json.decode_file(summary_path))
  local labels = { { "1", "Anterior" }, { "2", "Posterior" } }
  print("")
  print("  held-back test cases: Dice per label")
  print(string.format("  %-22s %10s %10s", "case", "Anterior", "Posterior"))
  for _, c in ipairs(s.metric_per_case) do
    local id = c.prediction_file:match("([^/]+)%.nii%.gz$") or c.prediction_file
    print(string.format("  %-22s %10.4f %10.4f", id, c.metrics["1"].Dice, c.metrics["2"].Dice))
  end
  print(string.format("  %-22s %10.4f %10.4f", "mean", s.mean["1"].Dice, s.mean["2"].Dice))
  print(string.format("  %-22s %10.4f", "foreground mean", s.foreground_mean.Dice))
  for _, l in ipairs(labels) do assert(s.mean[l[1]], "summary lacks label " .. l[1]) end
  return s.foreground_mean.Dice
end

function M.run(opts)
  local t0 = sys.clock()
  local precision = opts.precision
  if precision == "auto" then precision = cpu_has_bf16() and "bf16" or "fp32" end
  opts.num_epochs = opts.num_epochs or (precision == "bf16" and 12 or 8)
  opts.iterations = opts.iterations or (precision == "bf16" and 50 or 40)
  local work = opts.workdir
  -- the demo only ever deletes its own workspace, and only with --fresh; the shared
  -- rmtree unlinks symbolic links instead of following them
  if opts.fresh then require("nnunet.model_selection").rmtree(work) end
  assert(fs.mkdir(work))
  work = assert(fs.realpath(work))
  local raw, pre, res = work .. "/nnUNet_raw", work .. "/nnUNet_preprocessed", work .. "/nnUNet_results"
  sys.setenv("nnUNet_raw", raw)
  sys.setenv("nnUNet_preprocessed", pre)
  sys.setenv("nnUNet_results", res)

  print("== 1. dataset: 40 bundled Hippocampus cases, 8 held back for testing")
  local raw_ds, n_train = build_raw(raw)
  check(recipe.call("verify_dataset", { "-d", raw_ds, "--quiet" }), "verify_dataset")

  print("\n== 2. plan and preprocess (fingerprint, rules/, 3d_fullres)")
  check(recipe.call("plan_and_preprocess", { "-d", DEMO_NAME, "-c", "3d_fullres", "-np", "2" }),
    "plan_and_preprocess")
  local plans = assert(json.decode_file(pre .. "/" .. DEMO_NAME .. "/nnUNetPlans.json"))
  local cfg = plans.configurations["3d_fullres"]
  print(string.format("   3d_fullres: patch %s, batch %d, %d stages, features %s",
    table.concat(cfg.patch_size, "x"), cfg.batch_size, cfg.architecture.arch_kwargs.n_stages,
    table.concat(cfg.architecture.arch_kwargs.features_per_stage, ",")))

  print(string.format("\n== 3. train 3d_fullres fold 0 (%d of %d cases): %d epochs x %d iterations, %s",
    n_train - math.ceil(n_train / 5), n_train, opts.num_epochs, opts.iterations, precision))
  local fold_dir = string.format("%s/%s/nnUNetTrainer__nnUNetPlans__3d_fullres/fold_0", res, DEMO_NAME)
  local train_args = { "-d", DEMO_NAME, "-c", "3d_fullres", "-f", "0", "-device", opts.device,
    "-precision", precision, "-num_epochs", tostring(opts.num_epochs), "-num_iterations_per_epoch", tostring(opts.iterations),
    "-num_val_iterations", tostring(opts.val_iterations) }
  if fs.isfile(fold_dir .. "/checkpoint_final.pth") and fs.isfile(fold_dir .. "/validation/summary.json") then
    print("   already trained: " .. fold_dir)
  else
    if fs.isfile(fold_dir .. "/checkpoint_latest.pth") or fs.isfile(fold_dir .. "/checkpoint_final.pth") then
      train_args[#train_args + 1] = "--c"
    end
    check(recipe.call("train", train_args), "train")
  end

  print(string.format("\n== 4. predict the %d held-back cases", N_TEST))
  local pred_dir = work .. "/predictions"
  check(recipe.call("predict", { "-i", raw_ds .. "/imagesTs", "-o", pred_dir, "-d", DEMO_NAME,
    "-c", "3d_fullres", "-f", "0", "-device", opts.device, "-precision", precision, "--continue_prediction" }), "predict")

  print("\n== 5. evaluate against the held-back labels")
  local summary = work .. "/test_summary.json"
  check(recipe.call("evaluate_folder", { raw_ds .. "/labelsTs", pred_dir, "-djfile", raw_ds .. "/dataset.json",
    "-o", summary }), "evaluate_folder")
  local dice = print_table(summary)

  print(string.format([[

done in %s. Files:
  plans           %s/%s/nnUNetPlans.json
  training        %s  (training_log_*.txt, progress.png, checkpoints)
  cross-val Dice  %s/validation/summary.json
  predictions     %s
  test Dice       %s  (foreground mean %.4f)]], progress.format_time(sys.clock() - t0), pre, DEMO_NAME,
    fold_dir, fold_dir, pred_dir, summary, dice))
  return 0
end

return M
