-- predict_from_modelfolder (recipes/predict_from_modelfolder.lua) with a small real
-- U-Net on two demo Hippocampus cases:
--   1. the same segmentations as `nnunet predict -d ... -c ...` on the same model folder,
--      with nnUNet_results unset
--   2. a renamed model folder: the configuration comes from the checkpoint's init_args
--      (this port's checkpoint, and the reference's PyTorch fixture)
--   3. export_model_to_zip -> install_pretrained_model_from_zip into another
--      nnUNet_results -> predict_from_modelfolder on the installed folder: same output
--   4. errors name the folder (missing, not a model, configuration unknown)
local TL = dofile("tests/lua/testlib.lua")
TL.skip_unless_modules({ "nnunet.net", "nnunet.image" })
local DEMO = "data/Dataset004_Hippocampus_demo"
local fs = require("nnunet.fs")
if not fs.isdir(DEMO) then
  print("SKIP: " .. DEMO .. " is missing")
  os.exit(77)
end
local json = require("nnunet.json")
local netmod = require("nnunet.net")
local train = require("nnunet.train")
local check, read = TL.check, TL.read

local root = TL.temp_root("_modelfolder")
local NAME = "Dataset004_Hippocampus"
local RES = root .. "/results"
local MODEL = RES .. "/" .. NAME .. "/nnUNetTrainer__nnUNetPlans__3d_fullres"
assert(fs.mkdir(MODEL .. "/fold_0/validation"))
local arch = { network_class_name = "dynamic_network_architectures.architectures.unet.PlainConvUNet",
  arch_kwargs = { n_stages = 2, features_per_stage = { 4, 8 }, conv_op = "torch.nn.modules.conv.Conv3d",
    kernel_sizes = { { 3, 3, 3 }, { 3, 3, 3 } }, strides = { { 1, 1, 1 }, { 2, 2, 2 } },
    n_conv_per_stage = { 1, 1 }, n_conv_per_stage_decoder = { 1 }, conv_bias = true,
    norm_op = "torch.nn.modules.instancenorm.InstanceNorm3d", norm_op_kwargs = { eps = 1e-5, affine = true },
    nonlin = "torch.nn.LeakyReLU", nonlin_kwargs = { inplace = true } } }
local plans = {
  dataset_name = NAME, plans_name = "nnUNetPlans", transpose_forward = { 0, 1, 2 }, transpose_backward = { 0, 1, 2 },
  foreground_intensity_properties_per_channel = {
    ["0"] = { mean = 22360.3, std = 60656.1, percentile_00_5 = 28.0, percentile_99_5 = 277682.0 } },
  configurations = { ["3d_fullres"] = {
    data_identifier = "nnUNetPlans_3d_fullres", batch_size = 2, patch_size = { 24, 32, 24 },
    spacing = { 1.0, 1.0, 1.0 }, normalization_schemes = { "ZScoreNormalization" }, use_mask_for_norm = { false },
    resampling_fn_data_kwargs = { is_seg = false, order = 3, order_z = 0 },
    resampling_fn_seg_kwargs = { is_seg = true, order = 1, order_z = 0 },
    resampling_fn_probabilities_kwargs = { is_seg = false, order = 1, order_z = 0 },
    architecture = arch, batch_dice = false } },
}
assert(json.write_file_atomic(MODEL .. "/plans.json", plans))
assert(json.write_file_atomic(MODEL .. "/dataset.json", assert(json.decode_file(DEMO .. "/dataset.json"))))
TL.write_file(MODEL .. "/dataset_fingerprint.json", "{}")
TL.write_file(MODEL .. "/fold_0/validation/summary.json", "{}")
local net = netmod.build(arch, { num_input_channels = 1, num_classes = 3, deep_supervision = false, seed = 5,
  patch_size = { 24, 32, 24 }, batch_size = 1 })
local st = net:get_state()
local function save_checkpoint(path, meta)
  assert(train.checkpoint_save(path, {
    trainer = "nnUNetTrainer", identity = NAME .. "/nnUNetPlans/3d_fullres", plans_hash = 1, epoch = 1,
    optim_steps = 0, params = st.params, layout = st.layout, optim = {}, n_classes = 2, logs = {},
    meta = json.encode(meta) }, { no_fsync = true }))
end
save_checkpoint(MODEL .. "/fold_0/checkpoint_final.pth", { inference_allowed_mirroring_axes = { 0, 1, 2 },
  init_args = { configuration = "3d_fullres", fold = "0", dataset = NAME, plans = "nnUNetPlans" } })

local input = root .. "/in"
assert(fs.mkdir(input))
local ids = { "hippocampus_001", "hippocampus_004" }
for _, id in ipairs(ids) do
  TL.write_file(input .. "/" .. id .. "_0000.nii.gz", assert(read(DEMO .. "/imagesTr/" .. id .. "_0000.nii.gz")))
end
local COMMON = " -f 0 --disable_tta --disable_progress_bar -device cpu"
-- env: "" | "-u nnUNet_results" | "nnUNet_results=DIR"
local function run(env, argstr)
  local unset, assign = "", env
  if env:sub(1, 3) == "-u " then unset, assign = env, "" end
  return TL.run_host(argstr, "env -u nnUNet_raw -u nnUNet_preprocessed " .. unset .. " OMP_NUM_THREADS=1 " .. assign)
end

-- 1. the reference run and the model-folder run
local out, rc = run("nnUNet_results=" .. TL.sh(RES), "predict -i " .. TL.sh(input) .. " -o " .. TL.sh(root .. "/a")
  .. " -d " .. NAME .. " -c 3d_fullres" .. COMMON)
check(rc == 0, "predict exit 0, got %s:\n%s", tostring(rc), out)
local function same_outputs(dir, what)
  for _, id in ipairs(ids) do
    local a, b = read(root .. "/a/" .. id .. ".nii.gz"), read(dir .. "/" .. id .. ".nii.gz")
    check(a ~= nil and a == b, "%s: %s equals predict's", what, id)
  end
end
out, rc = run("-u nnUNet_results", "predict_from_modelfolder -i " .. TL.sh(input) .. " -o " .. TL.sh(root .. "/b")
  .. " -m " .. TL.sh(MODEL) .. COMMON)
check(rc == 0, "predict_from_modelfolder exit 0, got %s:\n%s", tostring(rc), out)
same_outputs(root .. "/b", "model folder")
check(fs.isfile(root .. "/b/plans.json") and fs.isfile(root .. "/b/predict_from_raw_data_args.json"),
  "plans.json and the arguments beside the predictions")

-- 2. a renamed folder: the checkpoint's init_args.configuration
local renamed = root .. "/my model"
os.execute("cp -r " .. TL.sh(MODEL) .. " " .. TL.sh(renamed))
out, rc = run("-u nnUNet_results", "predict_from_modelfolder -i " .. TL.sh(input) .. " -o " .. TL.sh(root .. "/c")
  .. " -m " .. TL.sh(renamed) .. COMMON)
check(rc == 0, "renamed folder exit 0:\n%s", out)
same_outputs(root .. "/c", "renamed folder")

-- 3. export -> install -> predict from the installed folder
local z = root .. "/model.zip"
out, rc = run("nnUNet_results=" .. TL.sh(RES), "export_model_to_zip -d 4 -c 3d_fullres -f 0 -o " .. TL.sh(z))
check(rc == 0, "export exit 0:\n%s", out)
local RES2 = root .. "/results2"
out, rc = run("nnUNet_results=" .. TL.sh(RES2), "install_pretrained_model_from_zip " .. TL.sh(z))
check(rc == 0, "install exit 0:\n%s", out)
local installed = RES2 .. "/" .. NAME .. "/nnUNetTrainer__nnUNetPlans__3d_fullres"
out, rc = run("-u nnUNet_results", "predict_from_modelfolder -i " .. TL.sh(input) .. " -o " .. TL.sh(root .. "/d")
  .. " -m " .. TL.sh(installed) .. COMMON)
check(rc == 0, "installed model predicts:\n%s", out)
same_outputs(root .. "/d", "installed model")
-- the zip carries a PyTorch checkpoint (converted from ours) that the reference can read:
-- the reference's keys, the trainer, configuration and mirroring axes of ours
do
  local torch_ckpt = require("nnunet.torch_ckpt")
  local pth = installed .. "/fold_0/checkpoint_final.pth"
  check(torch_ckpt.is_torch(pth) == true, "export converted the checkpoint to PyTorch's format")
  local info = torch_ckpt.info(pth) or {}
  check(info.trainer_name == "nnUNetTrainer" and info.configuration == "3d_fullres"
    and info.current_epoch == 1 and table.concat(info.mirroring_axes or {}, ",") == "0,1,2",
    "converted checkpoint's trainer/configuration/epoch/mirroring axes: %s %s %s",
    tostring(info.trainer_name), tostring(info.configuration), tostring(info.current_epoch))
  local has_alias = false
  for _, k in ipairs(info.keys or {}) do if k:find("all_modules", 1, true) then has_alias = true end end
  check(has_alias, "the state dict has the reference's all_modules aliases (load_state_dict strict)")
  check(not fs.exists(z .. ".convert.tmp"), "the conversion's scratch folder is removed")
  -- --native_checkpoints: our file as it is
  local zn = root .. "/native.zip"
  out, rc = run("nnUNet_results=" .. TL.sh(RES), "export_model_to_zip -d 4 -c 3d_fullres -f 0 --native_checkpoints -o " .. TL.sh(zn))
  check(rc == 0, "export --native_checkpoints exit 0:\n%s", out)
  check(require("nnunet.zip").read(zn, NAME .. "/nnUNetTrainer__nnUNetPlans__3d_fullres/fold_0/checkpoint_final.pth")
    == read(MODEL .. "/fold_0/checkpoint_final.pth"), "--native_checkpoints copies the checkpoint's bytes")
end

-- 4. errors
out, rc = run("", "predict_from_modelfolder -i " .. TL.sh(input) .. " -o " .. TL.sh(root .. "/e") .. " -m "
  .. TL.sh(root .. "/nope"))
check(rc == 1 and out:find(root .. "/nope", 1, true), "missing folder named:\n%s", out)
out, rc = run("", "predict_from_modelfolder -i " .. TL.sh(input) .. " -o " .. TL.sh(root .. "/e") .. " -m "
  .. TL.sh(input))
check(rc == 1 and out:find("not a trained model folder", 1, true), "not a model folder:\n%s", out)
local anon = root .. "/anonymous"
os.execute("cp -r " .. TL.sh(MODEL) .. " " .. TL.sh(anon))
save_checkpoint(anon .. "/fold_0/checkpoint_final.pth", { inference_allowed_mirroring_axes = { 0, 1, 2 } })
out, rc = run("", "predict_from_modelfolder -i " .. TL.sh(input) .. " -o " .. TL.sh(root .. "/e") .. " -m "
  .. TL.sh(anon) .. COMMON)
check(rc == 1 and out:find("cannot tell the configuration", 1, true) and out:find(anon, 1, true),
  "unknown configuration named:\n%s", out)
-- a renamed folder holding a reference (PyTorch) checkpoint: the configuration from its init_args
local has_torch = pcall(require, "nnunet.torch_ckpt")
local TORCH = "tests/fixtures/torch_ckpt/"
if has_torch and fs.isfile(TORCH .. "ref3d.pth") then
  local tdir = root .. "/reference model"
  assert(fs.mkdir(tdir .. "/fold_0"))
  TL.write_file(tdir .. "/plans.json", read(TORCH .. "plans_3d.json"))
  TL.write_file(tdir .. "/dataset.json", read(TORCH .. "dataset_3d.json"))
  TL.write_file(tdir .. "/fold_0/checkpoint_final.pth", read(TORCH .. "ref3d.pth"))
  local tin = root .. "/in2"
  assert(fs.mkdir(tin))
  local nifti, tensor = require("nnunet.image"), require("nnunet.tensor")
  for c = 0, 1 do
    local v = {}
    for i = 1, 6 * 18 * 14 do v[i] = ((i * (7 + c)) % 13) * 1.0 end
    assert(nifti.write(string.format("%s/x_%04d.nii.gz", tin, c), tensor.from_table(v, { 6, 18, 14 }),
      { spacing_itk = { 1, 1, 1 }, origin = { 0, 0, 0 }, direction = { 1, 0, 0, 0, 1, 0, 0, 0, 1 } }))
  end
  out, rc = run("", "predict_from_modelfolder -i " .. TL.sh(tin) .. " -o " .. TL.sh(root .. "/t") .. " -m "
    .. TL.sh(tdir) .. COMMON)
  check(rc == 0 and fs.isfile(root .. "/t/x.nii.gz"), "renamed folder with a PyTorch checkpoint predicts:\n%s", out)
else
  print("test_predict_modelfolder: nnunet.torch_ckpt or its fixtures absent, PyTorch checkpoint part skipped")
end
out, rc = run("", "predict_from_modelfolder -m " .. TL.sh(MODEL) .. " -o x -d 4 -i y")
check(rc == 1 and out:find("unknown option '-d'", 1, true), "-d is not an option here:\n%s", out)
net:close()

TL.finish("test_predict_modelfolder", root)
