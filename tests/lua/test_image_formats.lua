-- tests/lua/test_image_formats.lua: datasets in other image formats end to end
-- (docs/images.md), through the command line with temporary nnU-Net roots.
--   1. The same dataset as NIfTI, MetaImage (.mha) and NRRD (.nrrd), converted here
--      voxel for voxel with the NIfTI geometry: the fingerprints and plans are identical
--      (SimpleITKIO reads all three) and so is every preprocessed case (arrays, class
--      locations, properties but the file's own header).
--   2. `nnunet default` on a MetaImage dataset: predictions are .mha files with the test
--      images' geometry (origin, direction) and shape.
--   3. An RGB PNG dataset (one _0000.png per case holding channels R, G, B; gray PNG
--      labels): NaturalImage2DIO is chosen, spacing (999, 1, 1), only a 2d configuration;
--      verify_dataset counts the channels in the file; `nnunet default` writes .png
--      predictions of the input's size.
--   4. A 3-D TIFF dataset with spacing sidecars: Tiff3DIO is chosen and the fingerprint
--      has the sidecar's spacing; a short training and a prediction whose .tif gets a
--      sidecar with the input's spacing. (3. also ensembles PNG probabilities.)
-- Skips (77) when a pipeline module is not built.
local fs = require("nnunet.fs")
local json = require("nnunet.json")
local image = require("nnunet.image")
local sys = require("nnunet.sys")

local TL = dofile("tests/lua/testlib.lua")
TL.skip_unless_modules({ "nnunet.net", "nnunet.loader", "nnunet.augment", "nnunet.export", "nnunet.preproc_case" })
local synth = dofile("tests/lua/synth_dataset.lua")
local FD = dofile("tests/lua/format_datasets.lua")
local check, sh = TL.check, TL.sh

local ROOT = TL.temp_root("_formats")
local raw, pre, res = ROOT .. "/raw", ROOT .. "/pre", ROOT .. "/res"
for _, d in ipairs({ raw, pre, res }) do assert(fs.mkdir(d)) end

local function nnunet(args)
  return TL.nnunet({ raw = raw, pre = pre, res = res, env = "nnUNet_n_proc_DA=1 NNUNET_PROGRESS=0" }, args)
end

local function run_ok(args, what)
  local code, log = nnunet(args)
  if not check(code == 0, "%s: exit %s:\n%s", what, tostring(code), log) then os.exit(1) end
  return log
end

local function close_lists(a, b, tol)
  if #a ~= #b then return false end
  for i = 1, #a do if math.abs(a[i] - b[i]) > tol then return false end end
  return true
end

local function values_equal(a, b)
  local ta, tb = a:totable(), b:totable()
  if #ta ~= #tb then return false end
  for i = 1, #ta do if ta[i] ~= tb[i] then return false end end
  return true
end

-- ---------------------------------------------------------------- 1. same data, three formats
-- a shifted origin and a rotated direction, so that the geometry has to travel too
local base_ds = raw .. "/Dataset981_NiftiSrc"
synth.write(base_ds, { cases = 6, size = 14 })
local rot = { 0, 1, 0, -1, 0, 0, 0, 0, 1 }
for _, sub in ipairs({ "imagesTr", "labelsTr" }) do
  for _, n in ipairs(fs.listdir(base_ds .. "/" .. sub)) do
    local p = base_ds .. "/" .. sub .. "/" .. n
    local t = assert(image.read(p))
    assert(image.write(p, t, { spacing_itk = { 0.7, 0.9, 2.5 }, origin = { 10, -3, 4.5 }, direction = rot }))
    t:release()
  end
end
local formats = { { 982, "Dataset982_Mha", ".mha" }, { 983, "Dataset983_Nrrd", ".nrrd" } }
for _, f in ipairs(formats) do FD.convert(base_ds, raw .. "/" .. f[2], f[3]) end

local PP = "plan_and_preprocess -c 3d_fullres 2d -np 2 --no_fsync --quiet -d "
run_ok(PP .. "981", "NIfTI plan_and_preprocess")
local function read_text(p)
  local f = assert(io.open(p, "rb"))
  local s = f:read("a")
  f:close()
  return s
end
local P0 = pre .. "/Dataset981_NiftiSrc"
local fp0 = read_text(P0 .. "/dataset_fingerprint.json")
local plans0 = read_text(P0 .. "/nnUNetPlans.json"):gsub("Dataset981_NiftiSrc", "X")
-- both in one command, as the reference's -d 982 983 (one after the other; -npfp sets
-- the fingerprint's workers); -fpe / -preprocessor_name other than the defaults are refused
run_ok("plan_and_preprocess -c 3d_fullres 2d -np 2 -npfp 1 --no_fsync --quiet -d 982 983 -fpe DatasetFingerprintExtractor",
  ".mha and .nrrd plan_and_preprocess")
local rcode, rlog = nnunet("plan_and_preprocess -d 982 -preprocessor_name MyPreprocessor --no_pp --quiet")
check(rcode ~= 0 and rlog:find("DefaultPreprocessor only", 1, true), "-preprocessor_name refused:\n%s", rlog)
for _, f in ipairs(formats) do
  local name = f[2]
  local P = pre .. "/" .. name
  check(read_text(P .. "/dataset_fingerprint.json") == fp0, "%s: fingerprint differs from the NIfTI one", f[3])
  local plans = read_text(P .. "/nnUNetPlans.json"):gsub(name, "X")
  check(plans == plans0, "%s: plans differ from the NIfTI ones", f[3])
  check(json.decode_file(P .. "/nnUNetPlans.json").image_reader_writer == "SimpleITKIO", "%s: SimpleITKIO", f[3])
  local pp = require("nnunet.preproc_case")
  for _, id in ipairs({ "nnUNetPlans_3d_fullres", "nnUNetPlans_2d" }) do
    for _, n in ipairs(fs.listdir(P0 .. "/" .. id)) do
      local case = n:match("^(.*)%.nnu$")
      if case then
        local a, b = assert(pp.open(P0 .. "/" .. id .. "/" .. n)), pp.open(P .. "/" .. id .. "/" .. n)
        if check(b, "%s: %s/%s missing", f[3], id, n) then
          local da, sa = a:read_all()
          local db, sb = b:read_all()
          check(values_equal(da, db) and values_equal(sa, sb), "%s: %s/%s: arrays differ", f[3], id, case)
          local la, lb = json.encode(a:class_locations()), json.encode(b:class_locations())
          check(la == lb, "%s: %s/%s: class locations differ", f[3], id, case)
          for _, t in ipairs({ da, sa, db, sb }) do t:release() end
          b:close()
          local ja = json.decode_file(P0 .. "/" .. id .. "/" .. case .. ".json")
          local jb = json.decode_file(P .. "/" .. id .. "/" .. case .. ".json")
          ja.nifti, jb.nifti = nil, nil   -- the file's own header (format, NIfTI fields)
          -- geometry: a format may hold it in other numbers (NRRD: spacing x direction
          -- vectors), so SimpleITK itself reads it back within an ulp or two
          local ga, gb = ja.sitk_stuff, jb.sitk_stuff
          ja.sitk_stuff, jb.sitk_stuff = nil, nil
          check(json.encode(ja) == json.encode(jb), "%s: %s/%s: properties differ", f[3], id, case)
          for _, k in ipairs({ "spacing", "origin", "direction" }) do
            check(close_lists(ga[k], gb[k], 1e-12), "%s: %s/%s: sitk_stuff.%s %s vs %s", f[3], id, case, k,
              table.concat(ga[k], ","), table.concat(gb[k], ","))
          end
        end
        a:close()
      end
    end
  end
end

-- ---------------------------------------------------------------- 2. default on MetaImage
local mha_src = raw .. "/Dataset984_MhaSrc"
local ts_src = ROOT .. "/imagesTs_nii"
synth.write(mha_src, { cases = 6, size = 14, test_cases = 2, test_folder = ts_src })
local mha = raw .. "/Dataset985_MhaDefault"
FD.convert(mha_src, mha, ".mha")
local ts, out = ROOT .. "/imagesTs_mha", ROOT .. "/pred_mha"
assert(fs.mkdir(ts))
for _, n in ipairs(fs.listdir(ts_src)) do
  local t, info = image.read(ts_src .. "/" .. n)
  -- a test image placed and turned differently from the training data
  assert(image.write(ts .. "/" .. n:gsub("%.nii%.gz$", ".mha"), t,
    { spacing_itk = info.spacing_itk, origin = { -7, 2, 30 }, direction = rot }))
  t:release()
end
run_ok(string.format("default -d 985 -c 3d_fullres -f 0 -num_epochs 1 -num_iterations_per_epoch 2 "
  .. "-num_val_iterations 1 -i %s -o %s -np 2 --no_fsync --quiet --disable_tta", sh(ts), sh(out)), "default .mha")
local n_pred = 0
for _, n in ipairs(fs.listdir(ts)) do
  local id = n:match("^(.*)_0000%.mha$")
  local pin = image.read_header(ts .. "/" .. n)
  local pout, err = image.read_header(out .. "/" .. id .. ".mha")
  if check(pout, "prediction %s.mha: %s", tostring(id), tostring(err)) then
    n_pred = n_pred + 1
    check(pout.format == "MetaImage", "prediction format %s", tostring(pout.format))
    check(table.concat(pout.shape, ",") == table.concat(pin.shape, ","), "prediction shape")
    check(close_lists(pout.origin, { -7, 2, 30 }, 0), "prediction origin %s", table.concat(pout.origin, ","))
    check(close_lists(pout.direction, rot, 0), "prediction direction %s", table.concat(pout.direction, ","))
  end
end
check(n_pred == 2, "%d .mha predictions, want 2", n_pred)

-- ---------------------------------------------------------------- 3. RGB PNG
local png = raw .. "/Dataset986_RgbPng"
local png_ts, png_out = ROOT .. "/imagesTs_png", ROOT .. "/pred_png"
local H, W = FD.rgb_png(png, { cases = 8, test_cases = 2, test_folder = png_ts })
local vlog = run_ok("verify_dataset -d 986 --quiet", "verify_dataset RGB PNG")
check(vlog:find("8 valid cases", 1, true), "verify: %s", vlog)
run_ok(string.format("default -d 986 -c 2d -f 0 -num_epochs 1 -num_iterations_per_epoch 2 -num_val_iterations 1 "
  .. "-i %s -o %s -np 2 --no_fsync --quiet --disable_tta", sh(png_ts), sh(png_out)), "default .png")
local pplans = json.decode_file(pre .. "/Dataset986_RgbPng/nnUNetPlans.json")
check(pplans.image_reader_writer == "NaturalImage2DIO", "png reader %s", tostring(pplans.image_reader_writer))
local confs = {}
for k in pairs(pplans.configurations) do confs[#confs + 1] = k end
check(#confs == 1 and confs[1] == "2d", "png: only 2d, got %s", table.concat(confs, ","))
local pfp = json.decode_file(pre .. "/Dataset986_RgbPng/dataset_fingerprint.json")
check(table.concat(pfp.spacings[1], ",") == "999,1,1" or table.concat(pfp.spacings[1], ",") == "999.0,1.0,1.0",
  "png spacing %s", table.concat(pfp.spacings[1], ","))
check(pfp.foreground_intensity_properties_per_channel["2"] ~= nil, "png: three channels in the fingerprint")
for i = 1, 2 do
  local p = string.format("%s/road_%03d.png", png_out, i)
  local t, info = image.read(p)
  if check(t, "png prediction %s: %s", p, tostring(info)) then
    check(table.concat(t:shape(), ",") == "1," .. H .. "," .. W, "png prediction shape %s", table.concat(t:shape(), ","))
    check(info.format == "PNG", "png prediction format")
    t:release()
  end
end

-- probabilities of two predictions ensembled: the 2-D geometry travels through the
-- properties files, the result is a PNG equal to the single model's segmentation
local ens = {}
for k = 1, 2 do
  ens[k] = ROOT .. "/png_prob" .. k
  run_ok(string.format("predict -i %s -o %s -d 986 -c 2d -f 0 --save_probabilities --disable_tta", sh(png_ts),
    sh(ens[k])), "predict png with probabilities")
end
run_ok(string.format("ensemble -i %s %s -o %s", sh(ens[1]), sh(ens[2]), sh(ROOT .. "/png_ens")), "ensemble png")
for i = 1, 2 do
  local n = string.format("road_%03d.png", i)
  local a = image.read(ens[1] .. "/" .. n)
  local b, info = image.read(ROOT .. "/png_ens/" .. n)
  if check(a and b, "ensembled %s", n) then
    check(info.format == "PNG" and table.concat(b:shape(), ",") == "1," .. H .. "," .. W
      and values_equal(a, b), "ensemble of a model with itself = its segmentation (%s)", n)
    a:release(); b:release()
  end
end

-- ---------------------------------------------------------------- 4. 3-D TIFF with sidecars
local tif = raw .. "/Dataset987_Tif3d"
FD.tif3d(tif, raw .. "/Dataset988_TifSrc", { cases = 5, size = 12, spacing = { 3.0, 1.0, 1.0 } })
run_ok("plan_and_preprocess -d 987 -c 3d_fullres -np 2 --no_fsync --quiet", "Tiff3DIO plan_and_preprocess")
local tplans = json.decode_file(pre .. "/Dataset987_Tif3d/nnUNetPlans.json")
check(tplans.image_reader_writer == "Tiff3DIO", "tif reader %s", tostring(tplans.image_reader_writer))
local tfp = json.decode_file(pre .. "/Dataset987_Tif3d/dataset_fingerprint.json")
check(tfp.spacings[1][1] == 3 and tfp.spacings[1][2] == 1 and tfp.spacings[1][3] == 1,
  "tif spacing from the sidecar: %s", table.concat(tfp.spacings[1], ","))
-- a short training, then a prediction: the .tif output gets Tiff3DIO's sidecar with the
-- input's spacing (the final validation writes them too)
local tif_in, tif_out = ROOT .. "/imagesTs_tif", ROOT .. "/pred_tif"
assert(fs.mkdir(tif_in))
assert(fs.copy(tif .. "/imagesTr/sph_001_0000.tif", tif_in .. "/sph_001_0000.tif"))
assert(fs.copy(tif .. "/imagesTr/sph_001.json", tif_in .. "/sph_001.json"))
run_ok("train -d 987 -c 3d_fullres -f 0 -num_epochs 1 -num_iterations_per_epoch 2 -num_val_iterations 1 --npz",
  "Tiff3DIO train")
run_ok(string.format("predict -i %s -o %s -d 987 -c 3d_fullres -f 0 --disable_tta", sh(tif_in), sh(tif_out)),
  "Tiff3DIO predict")
local pt, pinfo = image.read(tif_out .. "/sph_001.tif", { reader = "Tiff3DIO", seg = true })
if check(pt, "tif prediction: %s", tostring(pinfo)) then
  check(table.concat(pt:shape(), ",") == "12,12,12" and close_lists(pinfo.spacing, { 3, 1, 1 }, 0),
    "tif prediction shape %s, spacing from its sidecar %s", table.concat(pt:shape(), ","),
    table.concat(pinfo.spacing, ","))
  pt:release()
end
check(fs.isfile(tif_out .. "/sph_001.json"), "tif prediction's sidecar written")

TL.finish("test_image_formats", ROOT)
