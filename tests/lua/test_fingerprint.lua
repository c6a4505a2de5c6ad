-- Fingerprint extraction end to end (nnunet-behaviour.md §2):
--  1. `nnunet extract_fingerprint` on the shared Hippocampus (230 cases) against the
--     values computed independently with numpy by tests/gen/gen_fingerprint_ref.py
--     (tests/fixtures/fingerprint/hippocampus_fingerprint.json): shapes after crop,
--     spacings, median relative size and the 7 intensity statistics, all exact;
--     atomic write, no recomputation without --clean.
--  2. What is comparable with the reference's own fingerprint of all 260 cases
--     (../shared/reference/msd-plans/Dataset004_Hippocampus): every spacing is 1 mm,
--     the median relative size is 1.0, our 230 shapes are a sub-multiset of its 260.
--  3. BraTS (2 channels) through the binding with fewer samples.
--  4. The bindings on a synthetic case (crop box, samples, statistics).
-- Skips (exit 77) when ../shared/data is absent.
local fs = require("nnunet.fs")
local json = require("nnunet.json")
local sys = require("nnunet.sys")
local tensor = require("nnunet.tensor")
local pre = require("nnunet.preprocess")
local dataset = require("nnunet.dataset")

local failures = 0
local function check(cond, msg, ...)
  if not cond then
    failures = failures + 1
    io.stderr:write("FAIL: " .. string.format(msg, ...) .. "\n")
  end
end

-- 4. synthetic case first (needs no data): a 3x4x5 block in a (1,5,6,7) image
do
  local img = tensor.zeros({ 1, 5, 6, 7 })
  local lab = tensor.zeros({ 1, 5, 6, 7 })
  for z = 2, 4 do for y = 2, 5 do for x = 2, 6 do img:set(1, z, y, x, z + y + x) end end end
  lab:set(1, 3, 3, 3, 1)
  lab:set(1, 3, 4, 4, 2)
  local ci, cl, bbox, before = pre.crop(img, lab)
  check(table.concat(ci:shape(), ",") == "1,3,4,5", "crop shape %s", table.concat(ci:shape(), ","))
  check(bbox[1][1] == 1 and bbox[1][2] == 4 and bbox[3][1] == 1 and bbox[3][2] == 6, "bbox is 0-based half-open")
  check(before[1] == 5 and before[3] == 7, "shape before")
  local full = pre.uncrop(ci, bbox, before)
  check(full:get(1, 3, 3, 3) == img:get(1, 3, 3, 3) and full:get(1, 1, 1, 1) == 0, "uncrop")
  local rec, samples = pre.fingerprint_case(img, lab, 1000)
  check(rec.n_foreground == 2 and rec.relative_size_after_cropping == 60 / 210, "case record")
  local st = pre.intensity_stats(samples)
  check(st.min == 9 and st.max == 11 and (st.median == 9 or st.median == 11 or st.median == 10),
        "samples come from the two foreground voxels (values 9 and 11): %g %g", st.min, st.max)
  check(pre.scheme_for_channel("ct") == "CTNormalization" and pre.scheme_for_channel("T2") == "ZScoreNormalization",
        "scheme names")
end

-- resampling and normalization bindings (the numerics are tested in C)
do
  local x = tensor.from_table({ 0, 1, 4, 9 }, { 1, 1, 1, 4 })
  local y = pre.resample(x, { 1, 1, 7 }, { 1, 1, 1 }, { 1, 1, 1 })
  check(y:get(1, 1, 1, 1) == 0 and y:get(1, 1, 1, 7) == 9 and math.abs(y:get(1, 1, 1, 4) - 2.09807611) < 1e-6,
        "cubic 1-D vector V1")
  local s = tensor.from_table({ 0, 0, 1, 1, 2 }, { 1, 1, 1, 5 })
  local r = pre.resample_seg(s, { 1, 1, 3 }, { 1, 1, 1 }, { 1, 1, 1 })
  check(r:get(1, 1, 1, 1) == 0 and r:get(1, 1, 1, 2) == 1 and r:get(1, 1, 1, 3) == 2, "label vector V2")
  local ns = pre.new_shape({ 4, 5, 6 }, { 5, 1, 1 }, { 2.5, 0.5, 0.5 })
  check(ns[1] == 8 and ns[2] == 10 and ns[3] == 12, "new shape")
  check(pre.separate_z_axis({ 5, 1, 1 }, { 2.5, 0.5, 0.5 }) == 1 and pre.separate_z_axis({ 1, 1, 1 }, { 1, 1, 2 }) == nil,
        "separate-z axis (1-based)")
  local c = tensor.from_table({ -5, 2, 9, -1 }, { 4 })
  pre.normalize(c, "CTNormalization", { mean = 3.5, std = 4.25, percentile_00_5 = -2.5, percentile_99_5 = 9.25 })
  check(math.abs(c:get(1) - (-1.41176474)) < 1e-7, "CT normalization binding")
  local ok = pcall(pre.normalize, c, "CTNormalization", {})
  check(not ok, "CT without statistics raises")
end

local shared = "../shared/data/Dataset004_Hippocampus"
if not fs.isdir(shared) then
  print("SKIP: " .. shared .. " not found")
  os.exit(failures == 0 and 77 or 1)
end

-- 1. the recipe, in a child process with its own nnUNet_preprocessed
local tmp = os.tmpname()
os.remove(tmp)
local pre_dir = tmp .. "_pre"
assert(fs.mkdir(pre_dir))
local function run(args)
  local p = io.popen(string.format("nnUNet_preprocessed=%q %q extract_fingerprint %s 2>&1; echo \"rc=$?\"",
    pre_dir, sys.exe(), args))
  local out = p:read("a")
  p:close()
  return out, tonumber(out:match("rc=(%d+)%s*$"))
end
local t0 = sys.clock()
local out, rc = run("-d " .. shared .. " -np 2 --quiet")
check(rc == 0, "extract_fingerprint failed (rc %s): %s", tostring(rc), out)
io.stderr:write(string.format("Hippocampus fingerprint: %.1f s\n", sys.clock() - t0))
local path = pre_dir .. "/Dataset004_Hippocampus/dataset_fingerprint.json"
local fp = json.decode_file(path)
local ref = json.decode_file("tests/fixtures/fingerprint/hippocampus_fingerprint.json")
check(fp ~= nil and ref ~= nil, "fingerprint or generator fixture missing")
check(not fs.exists(path .. ".tmp"), "no temporary file left")
if fp and ref then
  check(#fp.shapes_after_crop == 230 and #fp.spacings == 230, "230 cases")
  local bad = 0
  for i = 1, #ref.shapes_after_crop do
    for a = 1, 3 do
      if fp.shapes_after_crop[i][a] ~= ref.shapes_after_crop[i][a] or fp.spacings[i][a] ~= ref.spacings[i][a] then
        bad = bad + 1
      end
    end
  end
  check(bad == 0, "%d shape/spacing entries differ from numpy", bad)
  check(fp.median_relative_size_after_cropping == ref.median_relative_size_after_cropping, "median relative size")
  local a, b = fp.foreground_intensity_properties_per_channel["0"], ref.foreground_intensity_properties_per_channel["0"]
  for _, k in ipairs({ "mean", "median", "std", "min", "max", "percentile_99_5", "percentile_00_5" }) do
    check(a[k] == b[k], "%s: %.17g, numpy %.17g", k, a[k], b[k])
  end
  -- the file is the reference's layout: sorted keys, indent 4
  local f = io.open(path)
  local text = f:read("a")
  f:close()
  check(text:find('^{\n    "foreground_intensity_properties_per_channel": {\n        "0": {\n            "max": ') ~= nil,
        "json layout")

  -- 2. comparable with the reference fingerprint of 260 cases
  local msd = json.decode_file("../shared/reference/msd-plans/Dataset004_Hippocampus/dataset_fingerprint.json")
  if msd then
    check(fp.median_relative_size_after_cropping == msd.median_relative_size_after_cropping, "median rel. size = reference")
    local pool = {}
    for _, s in ipairs(msd.shapes_after_crop) do
      local k = table.concat(s, "x")
      pool[k] = (pool[k] or 0) + 1
    end
    local missing = 0
    for _, s in ipairs(fp.shapes_after_crop) do
      local k = table.concat(s, "x")
      if (pool[k] or 0) > 0 then pool[k] = pool[k] - 1 else missing = missing + 1 end
    end
    check(missing == 0, "%d of our shapes are not among the reference's 260", missing)
    for _, sp in ipairs(fp.spacings) do check(sp[1] == 1 and sp[2] == 1 and sp[3] == 1, "spacing 1 mm") end
    local r = msd.foreground_intensity_properties_per_channel["0"]
    check(a.min == r.min and a.max == r.max and a.percentile_00_5 == r.percentile_00_5,
          "min/max/p0.5 equal the reference's (the extremes are in our subset)")
    check(math.abs(a.median - r.median) / r.median < 0.02, "median within 2 %% of the reference's (%g vs %g)", a.median, r.median)
  end

  -- no recomputation without --clean
  local before = fs.size(path)
  out, rc = run("-d " .. shared)
  check(rc == 0 and out:find("not recomputed", 1, true), "existing fingerprint kept: %s", out)
  check(fs.size(path) == before, "file unchanged")
end

-- 3. BraTS: two channels, crop to the brain (fewer samples to stay fast)
local brats = "../shared/data/Dataset501_BraTS2013Sample"
if fs.isdir(brats) then
  local ds = assert(dataset.open(brats))
  local cases = {}
  for i, c in ipairs(ds.cases) do cases[i] = { images = c.images, label = c.label } end
  local bf = assert(pre.fingerprint(cases, ds.num_channels, { num_samples = 6e5, progress = false, threads = 2 }))
  check(bf.num_samples_per_case == 100000, "samples per case")
  -- This copy is pre-normalised (DeepMedic): outside the brain each image holds one
  -- constant *nonzero* value, so the reference's nonzero mask is the whole volume and
  -- nothing is cropped (relative size 1). The crop itself is covered by test_crop.
  check(bf.median_relative_size_after_cropping == 1.0, "BraTS sample: no zero background, no crop (median %g)",
        bf.median_relative_size_after_cropping)
  for i, s in ipairs(bf.shapes_after_crop) do
    check(s[1] == 155 and s[2] == 240 and s[3] == 240, "case %d shape %s", i, table.concat(s, "x"))
  end
  local c0 = bf.foreground_intensity_properties_per_channel["0"]
  check(c0.min > -10 and c0.max < 20 and c0.percentile_00_5 < c0.median and c0.median < c0.percentile_99_5,
        "BraTS channel 0 statistics in the normalised range: %g .. %g", c0.min, c0.max)
  check(bf.foreground_intensity_properties_per_channel["1"] ~= nil, "two channels")
end

fs.remove(path)
os.exit(failures == 0 and 0 or 1)
