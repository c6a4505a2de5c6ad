-- export_model_to_zip and install_pretrained_model_from_zip (lua/nnunet/model_sharing.lua)
-- on a synthetic results tree (two trained configurations, a third trainer's model, two
-- ensembles, inference files; file contents are just tags, so the exports use
-- --native_checkpoints; the conversion to PyTorch checkpoints is tested with a real
-- network in test_predict_modelfolder.lua):
--   1. the exact entry list and order of the reference's export, with and without
--      --exp_cv_preds (probabilities left out), -chk with two checkpoints, -f all
--   2. errors that name the missing file or folder and leave no zip; --not_strict
--      skips; an existing zip is kept unless --overwrite
--   3. install into an empty nnUNet_results reproduces the files byte for byte;
--      installing again is harmless; a changed file is refused (nothing written)
--      unless --overwrite; a zip with '..' is refused
local fs = require("nnunet.fs")
local zip = require("nnunet.zip")
local TL = dofile("tests/lua/testlib.lua")
local check, read, write = TL.check, TL.read, TL.write_file

local root = TL.temp_root("_sharing")
local RES = root .. "/results"
local DS = "Dataset017_Share"
local function touch(rel, content)
  local p = RES .. "/" .. rel
  assert(fs.mkdir(p:match("^(.*)/[^/]+$")))
  write(p, content or ("content of " .. rel))
end
local function model(cfg, trainer)
  return string.format("%s/%s__nnUNetPlans__%s", DS, trainer or "nnUNetTrainer", cfg)
end
for _, cfg in ipairs({ "3d_fullres", "2d" }) do
  local m = model(cfg)
  for _, n in ipairs({ "plans.json", "dataset.json", "dataset_fingerprint.json" }) do touch(m .. "/" .. n) end
  for f = 0, 1 do
    local fd = m .. "/fold_" .. f
    for _, n in ipairs({ "checkpoint_final.pth", "checkpoint_best.pth", "progress.png", "debug.json",
      "training_log_2024_1_1_00_00_00.txt", "validation/summary.json", "validation/case_" .. f .. ".nii.gz",
      "validation/case_" .. f .. ".npz", "validation/case_" .. f .. ".json" }) do
      touch(fd .. "/" .. n)
    end
  end
  local cv = m .. "/crossval_results_folds_0_1"
  for _, n in ipairs({ "summary.json", "postprocessing.json", "case_0.nii.gz", "case_1.nii.gz", "dataset.json",
    "postprocessed/case_0.nii.gz" }) do
    touch(cv .. "/" .. n)
  end
end
touch(model("3d_fullres") .. "/fold_all/checkpoint_final.pth")
touch(model("3d_fullres") .. "/fold_all/validation/summary.json")
touch(model("3d_fullres", "OtherTrainer") .. "/plans.json")
local E1 = "ensemble___nnUNetTrainer__nnUNetPlans__2d___nnUNetTrainer__nnUNetPlans__3d_fullres___0_1"
local E2 = "ensemble___nnUNetTrainer__nnUNetPlans__2d___OtherTrainer__nnUNetPlans__3d_fullres___0_1"
for _, e in ipairs({ E1, E2 }) do
  for _, n in ipairs({ "summary.json", "postprocessing.json", "case_0.nii.gz" }) do touch(DS .. "/ensembles/" .. e .. "/" .. n) end
end
touch(DS .. "/inference_information.json")
touch(DS .. "/inference_instructions.txt")

local ENV = "nnUNet_results=" .. TL.sh(RES) .. " nnUNet_raw= nnUNet_preprocessed="
local function run(argstr, env) return TL.run_host(argstr, env or ENV) end
local function names_of(zpath)
  local out = {}
  for i, e in ipairs(assert(zip.list(zpath))) do out[i] = e.name end
  return out
end

-- 1. the reference's layout and order
local z1 = root .. "/two.zip"
local out, rc = run("export_model_to_zip --native_checkpoints -d 17 -o " .. TL.sh(z1) .. " -c 3d_fullres 2d -f 0 1")
check(rc == 0, "export exit 0, got %s:\n%s", tostring(rc), out)
local want = {}
for _, cfg in ipairs({ "3d_fullres", "2d" }) do
  local m = model(cfg)
  for f = 0, 1 do
    local fd = m .. "/fold_" .. f
    for _, n in ipairs({ "debug.json", "checkpoint_final.pth", "progress.png", "validation/summary.json" }) do
      want[#want + 1] = fd .. "/" .. n
    end
  end
  for _, n in ipairs({ "summary.json", "postprocessing.json" }) do want[#want + 1] = m .. "/crossval_results_folds_0_1/" .. n end
  for _, n in ipairs({ "plans.json", "dataset_fingerprint.json", "dataset.json" }) do want[#want + 1] = m .. "/" .. n end
end
for _, n in ipairs({ "summary.json", "postprocessing.json" }) do want[#want + 1] = DS .. "/ensembles/" .. E1 .. "/" .. n end
want[#want + 1] = DS .. "/inference_information.json"
want[#want + 1] = DS .. "/inference_instructions.txt"
local got = rc == 0 and names_of(z1) or {}
check(table.concat(got, "\n") == table.concat(want, "\n"), "entries:\n%s\nwant:\n%s", table.concat(got, "\n"),
  table.concat(want, "\n"))
check(out:find("found matching ensemble: " .. E1, 1, true) and not out:find(E2, 1, true), "only the matching ensemble")
for _, e in ipairs(rc == 0 and zip.list(z1) or {}) do
  if e.name:find("checkpoint", 1, true) then
    check(read(RES .. "/" .. e.name) == zip.read(z1, e.name), "checkpoint bytes unchanged: %s", e.name)
  end
end

-- --exp_cv_preds: every validation file but the probabilities, every crossval file
local z2 = root .. "/cv.zip"
out, rc = run("export_model_to_zip --native_checkpoints -d " .. DS .. " -o " .. TL.sh(z2) .. " -c 2d -f 0 1 --exp_cv_preds -chk checkpoint_final.pth checkpoint_best")
check(rc == 0, "export --exp_cv_preds exit 0:\n%s", out)
local set = {}
for _, n in ipairs(rc == 0 and names_of(z2) or {}) do set[n] = true end
local m2 = model("2d")
for _, n in ipairs({ "/fold_0/validation/case_0.nii.gz", "/fold_0/validation/summary.json",
  "/fold_1/checkpoint_best.pth", "/fold_1/checkpoint_final.pth", "/crossval_results_folds_0_1/case_1.nii.gz",
  "/crossval_results_folds_0_1/dataset.json" }) do
  check(set[m2 .. n], "--exp_cv_preds exports %s", n)
end
for _, n in ipairs({ "/fold_0/validation/case_0.npz", "/fold_0/validation/case_0.json",
  "/crossval_results_folds_0_1/postprocessed/case_0.nii.gz", "/fold_0/training_log_2024_1_1_00_00_00.txt" }) do
  check(not set[m2 .. n], "--exp_cv_preds leaves out %s", n)
end
check(not set[DS .. "/ensembles/" .. E1 .. "/summary.json"], "ensemble of 2d + 3d_fullres not exported with -c 2d")
-- -f all
local z3 = root .. "/all.zip"
out, rc = run("export_model_to_zip --native_checkpoints -d 17 -o " .. TL.sh(z3) .. " -c 3d_fullres -f all")
check(rc == 0, "export -f all:\n%s", out)
local ok_all = false
for _, n in ipairs(rc == 0 and names_of(z3) or {}) do
  if n == model("3d_fullres") .. "/fold_all/checkpoint_final.pth" then ok_all = true end
end
check(ok_all, "-f all exports fold_all")

-- 2. errors name the missing thing; no zip is left behind
local bad = root .. "/bad.zip"
local function refused(argstr, needle, what)
  local o, r = run("export_model_to_zip --native_checkpoints -d 17 -o " .. TL.sh(bad) .. " " .. argstr)
  check(r == 1 and o:find(needle, 1, true), "%s: exit 1 naming '%s', got %s:\n%s", what, needle, tostring(r), o)
  check(not fs.exists(bad) and not fs.exists(bad .. ".tmp"), "%s: no zip left", what)
end
refused("", RES .. "/" .. model("3d_lowres"), "default configurations include an untrained one")
refused("-c 2d -f 0 1 2", RES .. "/" .. model("2d") .. "/fold_2", "missing fold")
refused("-c 2d -f 0 -chk checkpoint_latest.pth", RES .. "/" .. model("2d") .. "/fold_0/checkpoint_latest.pth",
  "missing checkpoint")
os.rename(RES .. "/" .. model("2d") .. "/fold_1/validation/summary.json", root .. "/moved.json")
refused("-c 2d -f 0 1", RES .. "/" .. model("2d") .. "/fold_1/validation/summary.json", "missing validation summary")
os.rename(root .. "/moved.json", RES .. "/" .. model("2d") .. "/fold_1/validation/summary.json")
out, rc = run("export_model_to_zip --native_checkpoints -d 17 -o " .. TL.sh(bad) .. " --not_strict -f 0 1 2")
check(rc == 0 and out:find("skipped", 1, true), "--not_strict skips missing configurations and folds:\n%s", out)
local nb = rc == 0 and names_of(bad) or {}
check(#nb > 0 and not table.concat(nb, "\n"):find("3d_lowres", 1, true), "--not_strict zip without 3d_lowres")
-- an existing output is kept
local before = read(z1)
out, rc = run("export_model_to_zip --native_checkpoints -d 17 -o " .. TL.sh(z1) .. " -c 2d -f 0 1")
check(rc == 1 and out:find(z1, 1, true) and out:find("--overwrite", 1, true) and read(z1) == before,
  "existing zip refused and unchanged:\n%s", out)
out, rc = run("export_model_to_zip --native_checkpoints -d 17 -o " .. TL.sh(z1) .. " -c 2d -f 0 1 --overwrite")
check(rc == 0 and read(z1) ~= before and #names_of(z1) < #got, "--overwrite replaces the zip:\n%s", out)
-- restore the two-configuration zip for the install tests
out, rc = run("export_model_to_zip --native_checkpoints -d 17 -o " .. TL.sh(z1) .. " -c 3d_fullres 2d -f 0 1 --overwrite")
assert(rc == 0, out)

-- 3. install
local RES2 = root .. "/installed"
local ENV2 = "nnUNet_results=" .. TL.sh(RES2)
out, rc = run("install_pretrained_model_from_zip " .. TL.sh(z1), ENV2)
check(rc == 0, "install exit 0:\n%s", out)
local all_same = true
for _, n in ipairs(names_of(z1)) do
  if read(RES2 .. "/" .. n) ~= read(RES .. "/" .. n) then all_same = false; TL.check(false, "installed %s differs", n) end
end
check(all_same and out:find(model("3d_fullres"), 1, true), "installed byte for byte, models listed:\n%s", out)
out, rc = run("install_pretrained_model_from_zip " .. TL.sh(z1), ENV2)
check(rc == 0 and out:find("0 files installed", 1, true), "second install writes nothing:\n%s", out)
local edited = RES2 .. "/" .. model("2d") .. "/plans.json"
write(edited, "my local plans")
out, rc = run("install_pretrained_model_from_zip " .. TL.sh(z1), ENV2)
check(rc == 1 and out:find(edited, 1, true) and out:find("--overwrite", 1, true) and read(edited) == "my local plans",
  "a changed file is refused and kept:\n%s", out)
out, rc = run("install_pretrained_model_from_zip " .. TL.sh(z1) .. " --overwrite", ENV2)
check(rc == 0 and out:find("1 files installed", 1, true) and read(edited) == read(RES .. "/" .. model("2d") .. "/plans.json"),
  "--overwrite replaces it:\n%s", out)
-- unsafe names and missing files
local evil = root .. "/evil.zip"
do
  -- a stored entry named "../escape" (the writer refuses such names, so patch one)
  local w = assert(zip.writer(evil))
  assert(w:add_data("Dataset017_Share/ok.txt", "fine", "store"))
  assert(w:add_data("xx/escape.txt", "bad", "store"))
  assert(w:commit())
  local s = read(evil):gsub("xx/escape%.txt", "../escape.txt")
  write(evil, s)
end
out, rc = run("install_pretrained_model_from_zip " .. TL.sh(evil), ENV2)
check(rc == 1 and out:find(evil, 1, true) and out:find("'..'", 1, true), "'..' entry refused:\n%s", out)
check(not fs.exists(RES2 .. "/Dataset017_Share/ok.txt") and not fs.exists(root .. "/escape.txt"), "nothing extracted")
out, rc = run("install_pretrained_model_from_zip " .. TL.sh(root .. "/none.zip"), ENV2)
check(rc == 1 and out:find(root .. "/none.zip", 1, true), "missing zip named:\n%s", out)
out, rc = run("install_pretrained_model_from_zip " .. TL.sh(z1), "nnUNet_results=")
check(rc == 1 and out:find("nnUNet_results", 1, true), "unset nnUNet_results:\n%s", out)

TL.finish("test_model_sharing", root)
