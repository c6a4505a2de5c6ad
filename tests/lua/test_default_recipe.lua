-- `nnunet default` end to end on a tiny synthetic dataset (tests/lua/synth_dataset.lua:
-- 8 cases of 16^3 voxels with a bright sphere labelled 1, 2 test images with a shifted
-- origin), configurations 2d and 3d_fullres, fold 0, 1 epoch of 2 iterations, then the
-- prediction of the 2 test images. Checks the files every step leaves (fingerprint,
-- plans, preprocessed cases, checkpoint_final, validation/summary.json, the model
-- selection's inference_information.json / inference_instructions.txt, predictions with
-- the input geometry), that a second run skips every finished step (log lines, identical
-- checkpoint bytes), and that a fold whose validation summary is missing is only
-- re-validated (--val), not retrained; and that an ensemble selection is carried out
-- (both members with probabilities, nnunet ensemble, postprocessing of the ensemble).
-- Skips (77) when a pipeline module (net, loader, export) is not built.
local fs = require("nnunet.fs")
local json = require("nnunet.json")
local nifti = require("nnunet.image")
local sys = require("nnunet.sys")

local TL = dofile("tests/lua/testlib.lua")
TL.skip_unless_modules({ "nnunet.net", "nnunet.loader", "nnunet.augment", "nnunet.export", "nnunet.preproc_case" })
local synth = dofile("tests/lua/synth_dataset.lua")

local check, sh, read = TL.check, TL.sh, TL.read

local ROOT = TL.temp_root("_default")
local raw, pre, res = ROOT .. "/raw", ROOT .. "/pre", ROOT .. "/res"
local ds = raw .. "/Dataset994_DefaultSmoke"
local ts, out = ROOT .. "/imagesTs", ROOT .. "/pred"
synth.write(ds, { cases = 8, size = 16, test_cases = 2, test_folder = ts })

local function nnunet(args)
  return TL.nnunet({ raw = raw, pre = pre, res = res, env = "nnUNet_n_proc_DA=1" }, args)
end
local ARGS = string.format("default -d 994 -c 2d 3d_fullres -f 0 -num_epochs 1 -num_iterations_per_epoch 2 "
  .. "-num_val_iterations 1 -i %s -o %s -np 2 --no_fsync --quiet --disable_tta", sh(ts), sh(out))

-- ---------------------------------------------------------------- first run
local t0 = sys.clock()
local code, log1 = nnunet(ARGS)
io.stderr:write(string.format("first run: %.1f s\n", sys.clock() - t0))
if not check(code == 0, "default exit %s:\n%s", tostring(code), log1) then os.exit(1) end
for _, l in ipairs({ "run: nnunet extract_fingerprint", "run: nnunet plan_experiment", "run: nnunet preprocess",
                     "run: nnunet train %-d Dataset994_DefaultSmoke %-c 2d %-f 0",
                     "run: nnunet train %-d Dataset994_DefaultSmoke %-c 3d_fullres %-f 0",
                     "run: nnunet find_best_configuration", "run: nnunet predict", "run: nnunet apply_postprocessing" }) do
  check(log1:find(l) ~= nil, "first run: no line %q", l)
end

local P = pre .. "/Dataset994_DefaultSmoke"
local R = res .. "/Dataset994_DefaultSmoke"
check(fs.isfile(P .. "/dataset_fingerprint.json"), "fingerprint")
local plans = json.decode_file(P .. "/nnUNetPlans.json")
check(plans and plans.configurations["2d"] and plans.configurations["3d_fullres"], "plans with 2d and 3d_fullres")
for _, id in ipairs({ "nnUNetPlans_2d", "nnUNetPlans_3d_fullres" }) do
  local n = 0
  for _, f in ipairs(fs.listdir(P .. "/" .. id) or {}) do if f:match("%.nnu$") then n = n + 1 end end
  check(n == 8, "%s: %d preprocessed cases, want 8", id, n)
end
local folds = {}
for _, c in ipairs({ "2d", "3d_fullres" }) do
  local F = R .. "/nnUNetTrainer__nnUNetPlans__" .. c .. "/fold_0"
  folds[c] = F
  check(fs.isfile(F .. "/checkpoint_final.pth"), "%s checkpoint_final", c)
  local s = json.decode_file(F .. "/validation/summary.json")
  check(s and s.metric_per_case and #s.metric_per_case == 2, "%s validation/summary.json with 2 cases", c)
  local npz = 0
  for _, f in ipairs(fs.listdir(F .. "/validation") or {}) do if f:match("%.npz$") then npz = npz + 1 end end
  check(npz == 2, "%s: --npz validation probabilities (%d)", c, npz)
end
local info = json.decode_file(R .. "/inference_information.json")
if check(info and info.best_model_or_ensemble, "inference_information.json") then
  local n = 0
  for _ in pairs(info.all_results) do n = n + 1 end
  check(n == 3, "2 models + 1 ensemble scored, got %d", n)
end
local instr = read(R .. "/inference_instructions.txt") or ""
check(instr:find("nnunet predict %-d Dataset994_DefaultSmoke") ~= nil and instr:find("nnunet apply_postprocessing") ~= nil,
  "inference_instructions.txt:\n%s", instr)

-- predictions: one per test image, with the input's geometry
for i = 1, 2 do
  local img = string.format("%s/test_%03d_0000.nii.gz", ts, i)
  local pred = string.format("%s/test_%03d.nii.gz", out, i)
  local ti, ii = nifti.read(img)
  local tp, ip = nifti.read(pred)
  if check(tp ~= nil, "prediction %s exists", pred) then
    check(table.concat(ip.shape, ",") == table.concat(ii.shape, ","), "shape %s vs %s", table.concat(ip.shape, ","),
      table.concat(ii.shape, ","))
    for k = 1, 3 do
      check(math.abs(ip.origin[k] - ii.origin[k]) < 1e-5 and math.abs(ip.spacing_itk[k] - ii.spacing_itk[k]) < 1e-6,
        "geometry axis %d: origin %g vs %g", k, ip.origin[k], ii.origin[k])
    end
    local mx = tp:max()
    check(mx <= 1 and tp:min() >= 0, "labels in {0, 1}")
    tp:release()
  end
  if ti then ti:release() end
end

-- ---------------------------------------------------------------- second run: resumes
local ck1 = read(folds["3d_fullres"] .. "/checkpoint_final.pth")
local pred1 = read(out .. "/test_001.nii.gz")
t0 = sys.clock()
local log2
code, log2 = nnunet(ARGS)
io.stderr:write(string.format("second run: %.1f s\n", sys.clock() - t0))
check(code == 0, "second run exit %s:\n%s", tostring(code), log2)
for _, l in ipairs({ "skip: fingerprint", "skip: plans", "skip: 2d fold 0 is trained", "skip: 3d_fullres fold 0 is trained",
                     "skip: .*inference_information.json exists" }) do
  check(log2:find(l) ~= nil, "second run: no line %q", l)
end
check(log2:find("run: nnunet train") == nil, "second run trained again:\n%s", log2)
check(log2:find("0 cases preprocessed") ~= nil or log2:find("run: nnunet preprocess") ~= nil, "preprocess step")
check(read(folds["3d_fullres"] .. "/checkpoint_final.pth") == ck1, "checkpoint_final untouched")
check(log2:find("%-%-continue_prediction") ~= nil, "predictions kept (--continue_prediction)")
check(read(out .. "/test_001.nii.gz") == pred1, "prediction unchanged")

-- ---------------------------------------------------------------- a fold without its validation
os.remove(folds["2d"] .. "/validation/summary.json")
local log3
code, log3 = nnunet(ARGS)
check(code == 0, "third run exit %s:\n%s", tostring(code), log3)
check(log3:find("run: nnunet train %-d Dataset994_DefaultSmoke %-c 2d %-f 0 .*%-%-val") ~= nil,
  "third run: 2d fold 0 re-validated with --val:\n%s", log3)
check(log3:find("run: nnunet train %-d Dataset994_DefaultSmoke %-c 3d_fullres") == nil, "third run: 3d_fullres retrained")
check(fs.isfile(folds["2d"] .. "/validation/summary.json"), "summary.json rewritten")
check(log3:find("run: nnunet find_best_configuration") ~= nil, "selection redone after a step ran")

-- ---------------------------------------------------------------- an ensemble selected
-- (the selection is edited so that both models win; nothing is retrained, so the
-- edited inference_information.json is what the prediction step carries out)
info = json.decode_file(R .. "/inference_information.json")
info.best_model_or_ensemble.selected_model_or_models = {
  { configuration = "2d", trainer = "nnUNetTrainer", plans_identifier = "nnUNetPlans" },
  { configuration = "3d_fullres", trainer = "nnUNetTrainer", plans_identifier = "nnUNetPlans" } }
assert(json.write_file_atomic(R .. "/inference_information.json", info, { indent = 4 }))
local out2 = ROOT .. "/pred_ens"
local log4
code, log4 = nnunet(ARGS:gsub("%-o '[^']*'", "-o " .. sh(out2)))
check(code == 0, "ensemble run exit %s:\n%s", tostring(code), log4)
check(log4:find("run: nnunet predict .*%-c 2d .*%-%-save_probabilities") ~= nil
  and log4:find("run: nnunet predict .*%-c 3d_fullres .*%-%-save_probabilities") ~= nil, "both members predicted with probabilities")
check(log4:find("run: nnunet ensemble %-i") ~= nil and log4:find("run: nnunet apply_postprocessing %-i [^ ]*ensemble") ~= nil,
  "ensemble, then postprocessing of the ensemble:\n%s", log4)
for i = 1, 2 do
  check(fs.isfile(string.format("%s/test_%03d.nii.gz", out2, i)), "ensemble prediction %d", i)
  check(fs.isfile(string.format("%s_raw/2d/test_%03d.npz", out2, i)), "member probabilities %d", i)
end

TL.finish("test_default_recipe", ROOT)
