-- `nnunet train` end to end on a tiny synthetic dataset (10 cases of 16^3 voxels, a
-- bright cube labelled 1), through the command line with temporary nnUNet_raw /
-- nnUNet_preprocessed / nnUNet_results: plan_and_preprocess, then 2 epochs of 2
-- iterations. Checks the reference's layout (§13.3): splits_final.json (KFold(5, 12345)
-- of the sorted ids), plans/dataset/fingerprint copies, debug.json, training_log lines,
-- checkpoints (best + final, latest removed), progress.png, validation/*.nii.gz and
-- summary.json with one entry per validation case; then --val reruns only the validation.
-- (Resume continuity is tests/lua/test_trainer.lua's.)
-- Skips (77) when a pipeline module (net, loader, export) is not built.
local fs = require("nnunet.fs")
local json = require("nnunet.json")
local nifti = require("nnunet.image")
local sys = require("nnunet.sys")
local tensor = require("nnunet.tensor")
local train = require("nnunet.train")

local TL = dofile("tests/lua/testlib.lua")
TL.skip_unless_modules({ "nnunet.net", "nnunet.loader", "nnunet.augment", "nnunet.export", "nnunet.preproc_case" })

local check, sh, read = TL.check, TL.sh, TL.read

local ROOT = TL.temp_root("_train")
local raw, pre, res = ROOT .. "/raw", ROOT .. "/pre", ROOT .. "/res"
local ds = raw .. "/Dataset991_TrainSmoke"
assert(fs.mkdir(ds .. "/imagesTr")); assert(fs.mkdir(ds .. "/labelsTr")); assert(fs.mkdir(pre)); assert(fs.mkdir(res))

local N = 16
for i = 1, 10 do
  local img, lab = {}, {}
  local o = 3 + (i % 4)
  for z = 0, N - 1 do for y = 0, N - 1 do for x = 0, N - 1 do
    local inside = z >= o and z < o + 6 and y >= o and y < o + 7 and x >= 4 and x < 10
    img[#img + 1] = (inside and 200 or 50) + ((z * 31 + y * 17 + x * 7 + i) % 13)
    lab[#lab + 1] = inside and 1 or 0
  end end end
  local geo = { spacing_itk = { 1, 1, 1 }, origin = { 0, 0, 0 }, direction = { 1, 0, 0, 0, 1, 0, 0, 0, 1 } }
  local id = string.format("smoke_%03d", i)
  assert(nifti.write(ds .. "/imagesTr/" .. id .. "_0000.nii.gz", tensor.from_table(img, { N, N, N }), geo))
  assert(nifti.write(ds .. "/labelsTr/" .. id .. ".nii.gz", tensor.from_table(lab, { N, N, N }, "u8"), geo,
    { segmentation = true }))
end
do
  local f = assert(io.open(ds .. "/dataset.json", "w"))
  f:write(json.encode({ channel_names = { ["0"] = "MRI" }, labels = { background = 0, cube = 1 },
    numTraining = 10, file_ending = ".nii.gz" }))
  f:close()
end

local function nnunet(args)
  return TL.nnunet({ raw = raw, pre = pre, res = res, env = "nnUNet_n_proc_DA=1" }, args)
end

local code, out = nnunet("plan_and_preprocess -d 991 -c 3d_fullres -np 2 --no_fsync --quiet")
if not check(code == 0, "plan_and_preprocess exit %s:\n%s", tostring(code), out) then os.exit(1) end

local t0 = sys.clock()
code, out = nnunet("train -d 991 -c 3d_fullres -f 0 -num_epochs 2 -num_iterations_per_epoch 2 -num_val_iterations 1")
check(code == 0, "train exit %s:\n%s", tostring(code), out)
io.stderr:write(string.format("train (2 x 2 iterations + final validation): %.1f s\n", sys.clock() - t0))

local P = pre .. "/Dataset991_TrainSmoke"
local splits = json.decode_file(P .. "/splits_final.json")
if check(splits and #splits == 5, "splits_final.json with 5 folds") then
  -- KFold(5, shuffle, 12345) on 10 ids: fold 0 validation = the two ids at the
  -- permutation's first positions, sorted (same rule as test vector n = 20 -> [3, 8, 13, 16])
  local kf = train.kfold(10, 5, 12345)
  local want = {}
  for j, k in ipairs(kf[1].val) do want[j] = string.format("smoke_%03d", k + 1) end
  check(table.concat(splits[1].val, ",") == table.concat(want, ","), "fold 0 val %s vs %s",
    table.concat(splits[1].val, ","), table.concat(want, ","))
  check(#splits[1].train == 8 and #splits[1].val == 2, "fold 0 sizes")
end

local B = res .. "/Dataset991_TrainSmoke/nnUNetTrainer__nnUNetPlans__3d_fullres"
local F = B .. "/fold_0"
for _, f in ipairs({ B .. "/plans.json", B .. "/dataset.json", B .. "/dataset_fingerprint.json", F .. "/debug.json",
                     F .. "/checkpoint_final.pth", F .. "/checkpoint_best.pth" }) do
  check(fs.isfile(f), "%s exists", f)
end
check(read(B .. "/plans.json") == read(P .. "/nnUNetPlans.json"), "plans.json is a byte copy")
check(not fs.isfile(F .. "/checkpoint_latest.pth"), "checkpoint_latest removed at the end")
if train.plot_available() then check(fs.isfile(F .. "/progress.png"), "progress.png") end
local logname
for _, n in ipairs(fs.listdir(F) or {}) do if n:match("^training_log_.*%.txt$") then logname = n end end
local log = logname and read(F .. "/" .. logname) or ""
for _, pat in ipairs({ "Creating new 5%-fold cross%-validation split%.%.%. \n", "Desired fold for training: 0 \n",
                       "This split has 8 training and 2 validation cases%. \n", "Epoch 1 \n",
                       "Current learning rate: 0%.00536 \n", "Pseudo dice %[np%.float32%(", "Training done%. \n",
                       "Mean Validation Dice:  " }) do
  check(log:find(pat) ~= nil, "log lacks %q", pat)
end
local ck = train.checkpoint_load(F .. "/checkpoint_final.pth")
check(ck and ck.epoch == 2 and #ck.logs.train_losses == 2, "checkpoint_final: 2 epochs")
local summary = json.decode_file(F .. "/validation/summary.json")
if check(summary and summary.metric_per_case, "validation/summary.json") then
  check(#summary.metric_per_case == 2, "summary has %d cases", #summary.metric_per_case)
  for _, id in ipairs(splits and splits[1].val or {}) do
    check(fs.isfile(F .. "/validation/" .. id .. ".nii.gz"), "validation/%s.nii.gz", id)
  end
end

-- --val only reruns the validation (no training: the checkpoint stays as it was)
local before = read(F .. "/checkpoint_final.pth")
code, out = nnunet("train -d 991 -c 3d_fullres -f 0 -num_epochs 2 --val")
check(code == 0, "--val exit %s:\n%s", tostring(code), out)
check(read(F .. "/checkpoint_final.pth") == before, "--val leaves checkpoint_final untouched")
check(fs.isfile(F .. "/validation/summary.json"), "--val writes summary.json")
if not os.getenv("KEEP") then os.execute("rm -rf " .. sh(ROOT)) end
-- -num_gpus above 1 (the reference's DDP) is refused before anything is written
code, out = nnunet("train -d 991 -c 3d_fullres -f 1 -num_gpus 2")
check(code ~= 0 and out:find("-num_gpus 2", 1, true) and not fs.exists(res .. "/Dataset991_TrainSmoke/nnUNetTrainer__nnUNetPlans__3d_fullres/fold_1"),
  "-num_gpus 2 refused, no fold folder:\n%s", out)

if TL.failures > 0 then
  io.stderr:write(TL.failures .. " failure(s)\n")
  os.exit(1)
end
print("test_train_recipe: ok")
