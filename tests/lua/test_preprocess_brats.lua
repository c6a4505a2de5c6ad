-- tests/lua/test_preprocess_brats.lua: preprocessing of the shared BraTS sample (2 channels,
-- 240 x 240 x 155) end to end: crop to the brain and masked z-score normalization.
--
-- The shared files were z-scored by their distributor, so the background outside the brain
-- is one constant per image (not 0) and crop-to-nonzero would keep the whole volume. The
-- test first sets that constant to 0 (pp.zero_value; the image corner is background), as a
-- raw scan's air would be, writes two cases as .nii into a temporary nnUNet_raw, and runs
-- `nnunet plan_and_preprocess -c 3d_fullres`. Expected, as the reference's rules say:
-- median relative size after cropping < 0.75 -> use_mask_for_norm = true for both (ZScore)
-- channels; the crop box lies inside the volume; outside the brain mask the label is -1 and
-- the data 0; inside, each channel has mean 0 and std 1 (so sum(x^2) over the case equals
-- the number of brain voxels); revert restores the label map exactly (1 mm, no resampling).
-- The fingerprint is computed with 2e6 instead of 1e8 intensity samples to keep the test
-- short (z-score normalization does not use them). Skipped (77) without ../shared/data.
local fs = require("nnunet.fs")
local json = require("nnunet.json")
local nifti = require("nnunet.image")
local pp = require("nnunet.preproc_case")
local preprocess = require("nnunet.preprocess")
local sys = require("nnunet.sys")

local shared = "../shared/data/Dataset501_BraTS2013Sample"
if not fs.isdir(shared) then
  print("SKIP: " .. shared .. " is absent")
  os.exit(77)
end

local TL = dofile("tests/lua/testlib.lua")
local check, sh = TL.check, TL.sh
local ROOT = TL.temp_root("_brats")
local raw, pre = ROOT .. "/raw", ROOT .. "/pre"
local name = "Dataset502_BraTSZeroBg"
local ds = raw .. "/" .. name
assert(fs.mkdir(ds .. "/imagesTr")); assert(fs.mkdir(ds .. "/labelsTr")); assert(fs.mkdir(pre .. "/" .. name))

local t0 = sys.clock()
local src = assert(json.decode_file(shared .. "/dataset.json"))
local ids = { "brats_2013_pat0001_1", "brats_2013_pat0005_1" }
local fp_cases = {}
for i, id in ipairs(ids) do
  local images = {}
  for c = 0, 1 do
    local t, info = assert(nifti.read(string.format("%s/imagesTr/%s_%04d.nii.gz", shared, id, c)))
    local bg = t:get(1, 1, 1)
    local n = pp.zero_value(t, bg)
    check(n > 0.3 * t:numel(), "%s channel %d: %d background voxels set to 0", id, c, n)
    images[#images + 1] = string.format("%s/imagesTr/%s_%04d.nii", ds, id, c)
    assert(nifti.write(images[#images], t, info))
  end
  local lab, linfo = assert(nifti.read(shared .. "/labelsTr/" .. id .. ".nii.gz"))
  assert(nifti.write(ds .. "/labelsTr/" .. id .. ".nii", lab, linfo, { segmentation = true }))
  fp_cases[i] = { images = images, label = ds .. "/labelsTr/" .. id .. ".nii" }
end
local f = assert(io.open(ds .. "/dataset.json", "wb"))
f:write(json.encode({ channel_names = src.channel_names, labels = src.labels, numTraining = #ids, file_ending = ".nii" }))
f:close()

-- fingerprint with fewer samples (see top), written where extract_fingerprint would
local fp = assert(preprocess.fingerprint(fp_cases, 2, { threads = 2, progress = false, num_samples = 2e6 }))
assert(json.write_file_atomic(pre .. "/" .. name .. "/dataset_fingerprint.json", {
  foreground_intensity_properties_per_channel = fp.foreground_intensity_properties_per_channel,
  median_relative_size_after_cropping = fp.median_relative_size_after_cropping,
  shapes_after_crop = fp.shapes_after_crop, spacings = fp.spacings }))
check(fp.median_relative_size_after_cropping < 0.75, "median relative size after cropping %g < 0.75",
  fp.median_relative_size_after_cropping)

local code, out = TL.nnunet({ raw = raw, pre = pre, env = "NNUNET_PROGRESS=0" },
  "plan_and_preprocess -d 502 -c 3d_fullres -np 2 --no_fsync")
check(code == 0, "plan_and_preprocess exit %s:\n%s", tostring(code), out)

local pd = pre .. "/" .. name
local plans = json.decode_file(pd .. "/nnUNetPlans.json")
if check(plans, "plans written") then
  local c3 = plans.configurations["3d_fullres"]
  check(c3.use_mask_for_norm[1] == true and c3.use_mask_for_norm[2] == true, "use_mask_for_norm = {true, true}")
  check(c3.normalization_schemes[1] == "ZScoreNormalization", "ZScore for %s", tostring(src.channel_names["0"]))
  for _, id in ipairs(ids) do
    local base = pd .. "/" .. c3.data_identifier .. "/" .. id
    local props = json.decode_file(base .. ".json")
    local st = pp.open(base .. ".nnu", c3.data_identifier)
    if check(props and st, "%s: case files", id) then
      local before, after = props.shape_before_cropping, props.shape_after_cropping_and_before_resampling
      local vb, va = 1, 1
      for a = 1, 3 do vb = vb * before[a]; va = va * after[a] end
      check(va < 0.75 * vb, "%s: cropped to the brain, %d of %d voxels", id, va, vb)
      local data, seg = st:read_all()
      local sv = seg:totable()
      local n_out, first_out = 0, nil
      for i = 1, #sv do
        if sv[i] == -1 then n_out = n_out + 1; first_out = first_out or i end
      end
      local n_in = #sv - n_out
      check(n_out > 0 and first_out, "%s: label -1 outside the brain mask (%d voxels)", id, n_out)
      local H, W = after[2], after[3]
      for c = 1, 2 do
        local ch = data:select(1, c)
        local m, s = ch:mean(), ch:std()
        -- zeros outside: mean over all = mean inside * n_in / n = 0; sum(x^2) = n_in * 1
        local sumsq = (s * s + m * m) * #sv
        check(math.abs(m) < 1e-5, "%s channel %d: mean %g", id, c, m)
        check(math.abs(sumsq / n_in - 1) < 1e-4, "%s channel %d: sum(x^2) / brain voxels = %.6f (masked z-score)",
          id, c, sumsq / n_in)
        if first_out then
          local i = first_out - 1
          local z, y, x = i // (H * W), i // W % H, i % W
          check(data:get(c, z + 1, y + 1, x + 1) == 0, "%s channel %d: data 0 outside the mask", id, c)
        end
      end
      local back = pp.revert_seg(seg, props, plans.transpose_forward)
      local orig = nifti.read(shared .. "/labelsTr/" .. id .. ".nii.gz")
      local a, b = back:totable(), orig:totable()
      local bad = #a == #b and 0 or -1
      for i = 1, #a do if a[i] ~= b[i] then bad = bad + 1 end end
      check(bad == 0, "%s: revert restores the label map (%d differences)", id, bad)
      st:close()
    end
  end
end
io.stderr:write(string.format("BraTS: %.1f s\n", sys.clock() - t0))
os.execute("rm -rf " .. sh(ROOT))
print(string.format("%d checks, %d failures", TL.checks, TL.failures))
os.exit(TL.failures == 0 and 0 or 1)
