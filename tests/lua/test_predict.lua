-- nnunet predict (recipes/predict.lua, lua/nnunet/predictor.lua, nnunet.export).
--
-- 1. numeric: the whole path (read, transpose, crop, normalize (ZScore + CT), resample,
--    sliding window with mirroring, two folds in float16, export with separate-z,
--    un-crop, transpose back) with fixed 1x1x1-convolution networks equals, voxel for
--    voxel, a numpy replay of the reference (tests/gen/gen_predict_ref.py), for a 3d
--    and a 2d configuration, an anisotropic case and a case smaller than the patch;
--    the output geometry is the input's (raw qform/sform fields, spacing, origin, direction)
-- 2. export.case on hand-computed logits: argmax ties, un-crop, transpose back, regions,
--    probabilities; float16 fold sum/division
-- 3. the command line on 2 demo Hippocampus images with a real (randomly initialised)
--    U-Net checkpoint in a fake $nnUNet_results: outputs with the input's geometry and
--    labels in range; -num_parts/-part_id; --continue_prediction keeps existing outputs,
--    a plain run replaces them; --save_probabilities
local export = require("nnunet.export")
local fs = require("nnunet.fs")
local infer = require("nnunet.infer")
local json = require("nnunet.json")
local nifti = require("nnunet.image")
local predictor = require("nnunet.predictor")
local sys = require("nnunet.sys")
local T = require("nnunet.tensor")

local failures = 0
local function check(cond, msg)
  if not cond then failures = failures + 1; io.stderr:write("FAIL: " .. msg .. "\n") end
  return cond
end

-- one OpenMP thread: the machine running the tests is shared, and spinning OpenMP teams
-- slow a loaded machine down by an order of magnitude
local has_net, netmod = pcall(require, "nnunet.net")
if has_net and netmod.set_threads then netmod.set_threads(1) end

local root = os.tmpname()
os.remove(root)
assert(fs.mkdir(root))
local function join(a, b) return a .. "/" .. b end
local FIX = "tests/fixtures/predict"

local function same_list(a, b, tol)
  if #a ~= #b then return false end
  for i = 1, #a do
    if tol then
      if math.abs(a[i] - b[i]) > tol then return false end
    elseif a[i] ~= b[i] then return false end
  end
  return true
end

-- output geometry = input geometry (shape, spacing, origin, direction, raw q/sform fields)
local function check_geometry(out_path, in_path, what)
  local o, oerr = nifti.read_header(out_path)
  local i = assert(nifti.read_header(in_path))
  if not check(o ~= nil, what .. ": output readable (" .. tostring(oerr) .. ")") then return end
  check(same_list(o.shape, i.shape), what .. ": shape")
  check(same_list(o.spacing, i.spacing), what .. ": spacing")
  check(same_list(o.origin, i.origin), what .. ": origin")
  check(same_list(o.direction, i.direction), what .. ": direction")
  local oh, ih = o.header, i.header
  check(oh.qform_code == ih.qform_code and oh.sform_code == ih.sform_code, what .. ": qform/sform codes")
  check(same_list(oh.srow, ih.srow) and same_list(oh.quatern, ih.quatern) and same_list(oh.qoffset, ih.qoffset),
    what .. ": qform/sform parameters")
  check(same_list({ table.unpack(oh.pixdim, 1, 4) }, { table.unpack(ih.pixdim, 1, 4) }), what .. ": pixdim")
  check(oh.xyzt_units == ih.xyzt_units, what .. ": units")
end

local function labels_equal(a_path, b_path, labels)
  local a = assert(nifti.read(a_path))
  local b = assert(nifti.read(b_path))
  if not same_list(a:shape(), b:shape()) then return false, "shape" end
  local counts = infer.confusion(a, b, labels)
  for i, c in ipairs(counts) do
    if c.FP ~= 0 or c.FN ~= 0 then return false, string.format("label %d: FP %d FN %d", labels[i], c.FP, c.FN) end
  end
  return true
end

-- ---------------------------------------------------------------- 1. numeric

local plans = assert(json.decode_file(join(FIX, "plans.json")))
local dj = assert(json.decode_file(join(FIX, "dataset.json")))
local nets = assert(json.decode_file(join(FIX, "nets.json")))
local in_dir = join(FIX, "in")
local cases = predictor.list_input_cases(in_dir, ".nii.gz")
check(#cases == 2 and cases[1].id == "aniso" and cases[2].id == "tiny" and #cases[1].images == 2
  and cases[1].images[2]:match("aniso_0001%.nii%.gz$"), "imagesTs listing")

for _, conf in ipairs({ "3d_fullres", "2d" }) do
  local model = predictor.describe(plans, conf, dj, {})
  check(model.num_heads == 3 and #model.slide.mirror_axes == #model.slide.patch, conf .. ": heads and mirror axes")
  for f, n in ipairs(nets) do
    model.folds[f] = { name = "fold_" .. (f - 1), predictor = export.pointwise_net(n.W, n.b) }
  end
  local out = join(root, "num_" .. conf)
  local n = predictor.predict_cases(model, cases, out, { progress = false, log = function() end,
    save_probabilities = conf == "3d_fullres" })
  check(n == 2, conf .. ": two cases written")
  for _, c in ipairs(cases) do
    local got = join(out, c.id .. ".nii.gz")
    local ok, why = labels_equal(got, join(join(join(FIX, "expected"), conf), c.id .. ".nii.gz"), { 1, 2 })
    check(ok, string.format("%s %s: segmentation equals the numpy reference (%s)", conf, c.id, tostring(why)))
    check_geometry(got, c.images[1], conf .. " " .. c.id)
    local hdr = nifti.read_header(got)
    check(hdr and hdr.header.datatype == 2, conf .. " " .. c.id .. ": stored as uint8")
  end
  if conf == "3d_fullres" then
    local probs, props = require("nnunet.probabilities").load(join(out, "aniso"))
    local seg = nifti.read(join(out, "aniso.nii.gz"))
    check(probs and same_list(probs:shape(), { 3, 20, 18, 7 }), "probabilities (K, z, y, x)")
    if probs then
      local s = probs:sum()
      check(math.abs(s - 20 * 18 * 7) < 1e-2, "probabilities sum to 1 per voxel")
      -- outside the crop box (x = 0): background 1
      local bg <close> = probs:select(1, 1):narrow(3, 1, 1)
      check(bg:min() == 1.0, "background probability 1 outside the crop box")
      check(seg:narrow(3, 1, 1):max() == 0, "label 0 outside the crop box")
    end
    check(props and props.sitk_stuff and #props.sitk_stuff.direction == 9 and
      same_list(props.shape_before_cropping, { 7, 20, 18 }), "probabilities properties")
  end
end

-- prefetch: a ring of 2, and an unreadable case reported in its turn after the cases before it
do
  local bad_in = join(root, "bad_in")
  assert(fs.mkdir(bad_in))
  for _, c in ipairs(cases) do
    for k, p in ipairs(c.images) do
      os.execute(string.format("cp '%s' '%s/%s_%04d.nii.gz'", p, bad_in, c.id, k - 1))
    end
  end
  local f = assert(io.open(join(bad_in, "zz_0000.nii.gz"), "wb")); f:write("not a nifti file"); f:close()
  f = assert(io.open(join(bad_in, "zz_0001.nii.gz"), "wb")); f:write("not a nifti file"); f:close()
  local model = predictor.describe(plans, "3d_fullres", dj, { tta = false })
  model.folds[1] = { name = "fold_0", predictor = export.pointwise_net(nets[1].W, nets[1].b) }
  local bad_cases = predictor.list_input_cases(bad_in, ".nii.gz")
  local out = join(root, "bad_out")
  local ok, err = pcall(predictor.predict_cases, model, bad_cases, out, { progress = false, log = function() end,
    prefetch_depth = 2 })
  local msg = type(err) == "table" and tostring(err.message) or tostring(err)
  check(not ok and msg:find("zz_0000.nii.gz", 1, true) and msg:find("case 'zz'", 1, true),
    "prefetch: the case and the unreadable file are named: " .. msg)
  check(fs.isfile(join(out, "aniso.nii.gz")) and fs.isfile(join(out, "tiny.nii.gz")) and
    not fs.isfile(join(out, "zz.nii.gz")), "prefetch: the cases before the bad one are written")
  check(#model.slide.mirror_axes == 0, "--disable_tta: no mirror axes")
  local parts = predictor.split_parts({ 1, 2, 3, 4, 5 }, 2, 1)
  check(same_list(parts, { 2, 4 }), "split_parts: cases[1::2]")
  check(not pcall(predictor.split_parts, { 1 }, 2, 2), "split_parts: part_id out of range")
end

-- ---------------------------------------------------------------- 2. export on hand-computed values

do
  -- transposed space (2, 1, 3) = original (1, 3, 2) with transpose_forward {1, 2, 0}... use {2, 0, 1}:
  -- original (z, y, x) = (3, 1, 2); transposed = (x, z, y) = (2, 3, 1); crop box x [1,2), z [0,3), y [0,1)
  local props = export.props({
    spacing = { 1, 1, 1 }, spacing_transposed = { 1, 1, 1 }, target_spacing = { 1, 1, 1 },
    shape_before_cropping = { 2, 3, 1 }, bbox_used_for_cropping = { { 1, 2 }, { 0, 3 }, { 0, 1 } },
    shape_after_cropping_and_before_resampling = { 1, 3, 1 },
  })
  -- 3 heads over the 3 cropped voxels (z = 0, 1, 2): winners 2, 0 (tie 0/1: lowest wins), 1
  local logits = T.from_table({ 0, 1, 0.5,   0, 1, 2,   3, 0.5, 0.25 }, { 3, 1, 3, 1 }, "f16")
  local seg, probs = export.case(logits, props, { transpose_forward = { 2, 0, 1 } }, true)
  check(same_list(seg:shape(), { 3, 1, 2 }), "export: transposed back to (z, y, x)")
  -- original voxel (z, 0, x): transposed (x, z, 0); x = 1 is the crop box
  check(same_list(seg:totable(), { 0, 2, 0, 0, 0, 1 }), "export: argmax, tie to the lowest, un-crop, transpose "
    .. table.concat(seg:totable(), ","))
  check(seg:dtype() == "u8", "export: u8 labels")
  local sseg = export.case(logits, props, { transpose_forward = { 2, 0, 1 } })   -- channel-streaming path
  check(same_list(sseg:totable(), seg:totable()), "export: streaming argmax equals the full path")
  local seg16 = export.case(logits, props, { transpose_forward = { 2, 0, 1 }, n_foreground_labels = 300 })
  check(seg16:dtype() == "u16" and same_list(seg16:totable(), seg:totable()), "export: u16 with >= 255 labels")
  check(same_list(probs:shape(), { 3, 3, 1, 2 }), "export: probabilities (K, z, y, x)")
  local p = probs:totable()
  -- background channel is 1 outside the box, e.g. (k=1, z=1, x=0) -> index 3
  check(p[1] == 1 and p[3] == 1 and p[7 + 2] == 0, "export: probabilities outside the box")
  check(math.abs(p[2] - 1 / (2 + math.exp(3))) < 1e-6, "export: softmax value")
  -- regions: sigmoid > 0.5 painted in order (later wins)
  local rl = T.from_table({ 1, -1, 1,   1, -1, -1 }, { 2, 1, 3, 1 }, "f32")
  local rseg = export.case(rl, props, { transpose_forward = { 2, 0, 1 }, regions_class_order = { 1, 2 } })
  check(same_list(rseg:totable(), { 0, 2, 0, 0, 0, 1 }), "export: regions " .. table.concat(rseg:totable(), ","))
  -- f16 fold ensemble: (1 + 2^-10) + 1 = 2 + 2^-10 is a float16 tie (ulp 2^-9 there) -> 2
  local a = T.from_table({ 1 + 2 ^ -10, 3 }, { 2 }, "f16")
  local b = T.from_table({ 1, 4 }, { 2 }, "f16")
  export.accumulate(a, b)
  check(same_list(a:totable(), { 2, 7 }), "export: f16 accumulate " .. table.concat(a:totable(), ","))
  export.divide(a, 2)
  check(same_list(a:totable(), { 1, 3.5 }), "export: f16 divide " .. table.concat(a:totable(), ","))
  local ok = pcall(export.case, logits, props, { transpose_forward = { 0, 0, 1 } })
  check(not ok, "export: a bad transpose is an error")
end

-- ---------------------------------------------------------------- 3. command line, real network

local train = require("nnunet.train")
local DEMO = "data/Dataset004_Hippocampus_demo"
if not has_net then
  print("test_predict: nnunet.net not built, command-line part skipped")
elseif not fs.isdir(DEMO) then
  print("test_predict: " .. DEMO .. " missing, command-line part skipped")
else
  local results = join(root, "results")
  local name = "Dataset004_Hippocampus"
  local model_dir = join(join(results, name), "nnUNetTrainer__nnUNetPlans__3d_fullres")
  assert(fs.mkdir(model_dir))
  local arch = { network_class_name = "dynamic_network_architectures.architectures.unet.PlainConvUNet",
    arch_kwargs = { n_stages = 2, features_per_stage = { 4, 8 }, conv_op = "torch.nn.modules.conv.Conv3d",
      kernel_sizes = { { 3, 3, 3 }, { 3, 3, 3 } }, strides = { { 1, 1, 1 }, { 2, 2, 2 } },
      n_conv_per_stage = { 1, 1 }, n_conv_per_stage_decoder = { 1 }, conv_bias = true,
      norm_op = "torch.nn.modules.instancenorm.InstanceNorm3d",
      norm_op_kwargs = { eps = 1e-5, affine = true }, nonlin = "torch.nn.LeakyReLU",
      nonlin_kwargs = { inplace = true } } }
  local hplans = {
    dataset_name = name, plans_name = "nnUNetPlans", transpose_forward = { 0, 1, 2 },
    transpose_backward = { 0, 1, 2 }, foreground_intensity_properties_per_channel = {
      ["0"] = { mean = 22360.3, std = 60656.1, percentile_00_5 = 28.0, percentile_99_5 = 277682.0 } },
    configurations = { ["3d_fullres"] = {
      data_identifier = "nnUNetPlans_3d_fullres", batch_size = 2, patch_size = { 24, 32, 24 },
      spacing = { 1.0, 1.0, 1.0 }, normalization_schemes = { "ZScoreNormalization" }, use_mask_for_norm = { false },
      resampling_fn_data_kwargs = { is_seg = false, order = 3, order_z = 0 },
      resampling_fn_seg_kwargs = { is_seg = true, order = 1, order_z = 0 },
      resampling_fn_probabilities_kwargs = { is_seg = false, order = 1, order_z = 0 },
      architecture = arch, batch_dice = false } },
  }
  assert(json.write_file_atomic(join(model_dir, "plans.json"), hplans))
  local hdj = assert(json.decode_file(join(DEMO, "dataset.json")))
  assert(json.write_file_atomic(join(model_dir, "dataset.json"), hdj))
  for fold = 0, 1 do
    local net = netmod.build(arch, { num_input_channels = 1, num_classes = 3, deep_supervision = false,
      seed = 100 + fold, patch_size = { 24, 32, 24 }, batch_size = 1 })
    local st = net:get_state()
    assert(fs.mkdir(join(model_dir, "fold_" .. fold)))
    assert(train.checkpoint_save(join(join(model_dir, "fold_" .. fold), "checkpoint_final.pth"), {
      trainer = "nnUNetTrainer", identity = name .. "/nnUNetPlans/3d_fullres", plans_hash = 1, epoch = 1,
      optim_steps = 0, params = st.params, layout = st.layout, optim = {}, n_classes = 2, logs = {},
      meta = json.encode({ inference_allowed_mirroring_axes = { 0, 1, 2 } }),
    }, { no_fsync = true }))
    net:close()
  end
  local input = join(root, "hippo_in")
  assert(fs.mkdir(input))
  local ids = { "hippocampus_001", "hippocampus_004" }
  for _, id in ipairs(ids) do
    os.execute(string.format("cp '%s/imagesTr/%s_0000.nii.gz' '%s/'", DEMO, id, input))
  end
  local out = join(root, "hippo_out")
  local exe = sys.exe():gsub(" %(deleted%)$", "")   -- the binary may be relinked while the test runs
  local config = "3d_fullres"
  local function cli(extra, expect_failure)
    local cmd = string.format("env -u nnUNet_raw -u nnUNet_preprocessed OMP_NUM_THREADS=1 nnUNet_results='%s' '%s' predict -i '%s' "
      .. "-o '%s' -d %s -c %s --disable_progress_bar %s 2>'%s/log.txt'", results, exe, input, out,
      name, config, extra, root)
    local ok = os.execute(cmd)
    if not ok and not expect_failure then
      local f = io.open(root .. "/log.txt")
      io.stderr:write((f and f:read("a") or "") .. "\n")
      if f then f:close() end
    end
    return ok
  end
  local function read_bytes(p)
    local f = io.open(p, "rb")
    if not f then return nil end
    local s = f:read("a")
    f:close()
    return s
  end
  local function out_file(id) return join(out, id .. ".nii.gz") end

  -- part 1 of 2 (cases[2::2] in the reference's 0-based terms): only the second case
  check(cli("-num_parts 2 -part_id 1 --disable_tta -f 0"), "cli: -num_parts 2 -part_id 1 runs")
  check(not fs.isfile(out_file(ids[1])) and fs.isfile(out_file(ids[2])), "cli: -part_id 1 predicts only case 2")
  -- an unrelated earlier file in place of case 2's output: kept by --continue_prediction
  local marker = read_bytes(join(input, ids[1] .. "_0000.nii.gz"))
  local mf = assert(io.open(out_file(ids[2]), "wb")); mf:write(marker); mf:close()
  check(cli("--continue_prediction --save_probabilities"), "cli: --continue_prediction runs")
  check(fs.isfile(out_file(ids[1])), "cli: the missing case is predicted")
  -- with --save_probabilities case 2 has no .npz, so it is not done: predicted again
  check(read_bytes(out_file(ids[2])) ~= marker, "cli: a case without its .npz is redone")
  mf = assert(io.open(out_file(ids[1]), "wb")); mf:write(marker); mf:close()
  check(cli("--continue_prediction --save_probabilities"), "cli: second --continue_prediction run")
  check(read_bytes(out_file(ids[1])) == marker, "cli: --continue_prediction keeps an existing output")
  -- a plain run replaces it
  check(cli("-f 0 1"), "cli: two folds, mirroring")
  check(read_bytes(out_file(ids[1])) ~= marker, "cli: without --continue_prediction the output is replaced")
  for _, id in ipairs(ids) do
    check_geometry(out_file(id), join(input, id .. "_0000.nii.gz"), "cli " .. id)
    local seg = nifti.read(out_file(id))
    check(seg and seg:min() >= 0 and seg:max() <= 2, "cli " .. id .. ": labels in 0..2")
    check(fs.isfile(join(out, id .. ".npz")) and fs.isfile(join(out, id .. ".json")), "cli " .. id .. ": probabilities")
  end
  check(fs.isfile(join(out, "predict_from_raw_data_args.json")) and fs.isfile(join(out, "plans.json"))
    and fs.isfile(join(out, "dataset.json")), "cli: args, plans and dataset.json beside the predictions")
  local none = 0
  for _, n in ipairs(fs.listdir(out) or {}) do if n:match("%.tmp$") or n:match("%.partial") then none = none + 1 end end
  check(none == 0, "cli: no temporary files left")
  -- a missing fold is a clear error
  check(not cli("-f 3", true), "cli: a missing fold fails")
  -- an input folder with images in another format: nothing to predict, and the log says why
  local saved_input = input
  input = join(root, "mha_in")
  assert(fs.mkdir(input))
  local t = nifti.read(join(saved_input, ids[1] .. "_0000.nii.gz"))
  assert(nifti.write(join(input, ids[1] .. "_0000.mha"), t))
  t:release()
  check(cli("-f 0"), "cli: a folder without .nii.gz files is no error")
  local lf = io.open(root .. "/log.txt")
  local ltext = lf and lf:read("a") or ""
  if lf then lf:close() end
  check(ltext:find("holds no *.nii.gz files", 1, true) and ltext:find(ids[1] .. "_0000.mha", 1, true),
    "cli: the log names the other-format files:\n%s", ltext)
  input = saved_input

  -- a 2d configuration (slice-wise 2-D windows through the real 2-D U-Net)
  local arch2 = { network_class_name = arch.network_class_name, arch_kwargs = {
    n_stages = 2, features_per_stage = { 4, 8 }, conv_op = "torch.nn.modules.conv.Conv2d",
    kernel_sizes = { { 3, 3 }, { 3, 3 } }, strides = { { 1, 1 }, { 2, 2 } }, n_conv_per_stage = { 1, 1 },
    n_conv_per_stage_decoder = { 1 }, conv_bias = true, norm_op_kwargs = { eps = 1e-5, affine = true },
    nonlin_kwargs = { inplace = true } } }
  hplans.configurations["2d"] = { inherits_from = "3d_fullres", data_identifier = "nnUNetPlans_2d",
    patch_size = { 32, 24 }, spacing = { 1.0, 1.0 }, architecture = arch2 }
  local dir2 = join(join(results, name), "nnUNetTrainer__nnUNetPlans__2d")
  assert(fs.mkdir(join(dir2, "fold_0")))
  assert(json.write_file_atomic(join(dir2, "plans.json"), hplans))
  assert(json.write_file_atomic(join(dir2, "dataset.json"), hdj))
  local net2 = netmod.build(arch2, { num_input_channels = 1, num_classes = 3, deep_supervision = false,
    seed = 7, patch_size = { 32, 24 }, batch_size = 1 })
  assert(train.checkpoint_save(join(join(dir2, "fold_0"), "checkpoint_final.pth"), {
    trainer = "nnUNetTrainer", identity = name .. "/nnUNetPlans/2d", plans_hash = 1, epoch = 1, optim_steps = 0,
    params = net2:get_state().params, layout = net2:layout(), optim = {}, n_classes = 2, logs = {},
    meta = json.encode({ inference_allowed_mirroring_axes = { 0, 1 } }) }, { no_fsync = true }))
  net2:close()
  out, config = join(root, "hippo_out_2d"), "2d"
  check(cli("-f 0"), "cli 2d: runs")
  for _, id in ipairs(ids) do
    check_geometry(out_file(id), join(input, id .. "_0000.nii.gz"), "cli 2d " .. id)
    local seg = nifti.read(out_file(id))
    check(seg and seg:min() >= 0 and seg:max() <= 2, "cli 2d " .. id .. ": labels in 0..2")
  end
end

os.execute("rm -rf '" .. root .. "'")
if failures > 0 then io.stderr:write(failures .. " checks failed\n"); os.exit(1) end
print("test_predict: all checks passed")
