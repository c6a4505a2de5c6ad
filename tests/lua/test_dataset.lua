-- Raw datasets, verify_dataset and convert_msd on the bundled demo data and on
-- tiny datasets built here: the 4-D split of a synthetic MSD task, and broken
-- datasets (missing label file, image/label shape mismatch, a label value not in
-- dataset.json, a missing channel file, NaN, numTraining, non-consecutive labels),
-- each reported with the case and file. Also nnunet.image's Lua surface (nil, msg
-- for bad files) and GC release of many tensors (checked under ASan).
local dataset = require("nnunet.dataset")
local nifti = require("nnunet.image")
local T = require("nnunet.tensor")
local fs = require("nnunet.fs")
local cjson = require("cjson")
local verify = dofile("recipes/verify_dataset.lua")
local convert = dofile("recipes/convert_msd.lua")

local failures = 0
local function check(cond, msg)
  if not cond then failures = failures + 1; io.stderr:write("FAIL: " .. msg .. "\n") end
end

local DEMO = "data/Dataset004_Hippocampus_demo"
local tmp = os.tmpname()
os.remove(tmp)
assert(fs.mkdir(tmp))

local function copy(src, dst)
  local f = assert(io.open(src, "rb")); local d = f:read("a"); f:close()
  local o = assert(io.open(dst, "wb")); o:write(d); o:close()
end
local function write_json(path, v)
  local f = assert(io.open(path, "wb")); f:write(cjson.encode(v)); f:close()
end
local function has(list, pattern)
  for _, s in ipairs(list) do if s:find(pattern) then return true end end
  return false
end

-- ---- the demo dataset, by path and by id through a stubbed environment ----
local ds = assert(dataset.open(DEMO))
check(ds.name == "Dataset004_Hippocampus_demo" and ds.id == 4, "name/id " .. tostring(ds.name))
check(#ds.cases == 40 and ds.num_training == 40 and ds.num_channels == 1, "40 cases, 1 channel")
check(ds.cases[1].id == "hippocampus_001" and ds.cases[40].id == "hippocampus_243", "sorted case ids")
check(#ds.cases[1].images == 1 and ds.cases[1].images[1]:find("imagesTr/hippocampus_001_0000.nii.gz$"), "channel file")
check(ds.cases[1].label:find("labelsTr/hippocampus_001.nii.gz$"), "label file")
check(ds.labels.Anterior == 1 and math.type(ds.labels.Posterior) == "integer", "labels name -> int")
check(ds.channel_names[1] == "MRI", "channel names")
check(dataset.id_from_name("Dataset004_Hippocampus") == 4 and dataset.id_from_name("Task04") == nil, "id_from_name")

local real_env = dataset.env
dataset.env = function(name) if name == "nnUNet_raw" then return "data" end return nil end
for _, key in ipairs({ 4, "4", "004", "Dataset004_Hippocampus_demo" }) do
  local d, err = dataset.open(key)
  check(d and d.path == "data/Dataset004_Hippocampus_demo", "open by " .. tostring(key) .. ": " .. tostring(err))
end
check(dataset.resolve_name(4) == "Dataset004_Hippocampus_demo", "resolve_name")
local d7, e7 = dataset.open(7)
check(not d7 and e7:find("no dataset with id 7"), "unknown id: " .. tostring(e7))
local ok_pp, e_pp = pcall(dataset.preprocessed_dir, ds)
check(not ok_pp and type(e_pp) == "table" and e_pp.message:find("nnUNet_preprocessed is not set"), "preprocessed_dir unset")
dataset.env = function(name) return nil end
local d4, e4 = dataset.open(4)
check(not d4 and e4:find("nnUNet_raw is not set"), "id without nnUNet_raw: " .. tostring(e4))
dataset.env = real_env

-- verify: the demo is valid
local n_valid, problems = verify.verify(DEMO, { quiet = true })
check(n_valid == 40 and #problems == 0, "demo: 40 valid cases, got " .. tostring(n_valid))

-- reading a case as SimpleITKIO does: (C, Z, Y, X) float32 + properties
do
  local data, props = dataset.read_images(ds.cases[1].images)
  check(data and data:dtype() == "f32" and data:ndim() == 4 and data:shape()[1] == 1 and data:shape()[2] == 35,
        "read_images shape/dtype")
  check(props.spacing[1] == 1 and props.sitk_stuff.origin[1] == -1 and props.nifti.header.version == 1, "read_images props")
  local seg, sprops = dataset.read_seg(ds.cases[1].label)
  check(seg and seg:shape()[1] == 1 and seg:max() == 2 and sprops.spacing[3] == 1, "read_seg")
  local two = dataset.read_images({ ds.cases[1].images[1], ds.cases[1].images[1] })
  check(two:shape()[1] == 2 and two:select(1, 2):sum() == data:sum(), "two channels stacked")
  local bad, berr = dataset.read_images({ ds.cases[1].images[1], ds.cases[2].images[1] })
  check(not bad and berr:find("same shape"), "channels of different shapes: " .. tostring(berr))
  data:release(); seg:release(); two:release()
end

-- ---- nifti binding: info table, write with a reference, bad files ----
local img, info = nifti.read(DEMO .. "/imagesTr/hippocampus_039_0000.nii.gz")
check(img and info.dtype == "f32" and #info.shape == 3 and info.origin[1] == 0 and info.direction[1] == -1,
      "read info (origin 0 case)")
local f32 <close> = nifti.read(DEMO .. "/imagesTr/hippocampus_001_0000.nii.gz", "f32")
check(f32:dtype() == "f32", "read(path, 'f32') converts")
local back = cjson.decode(cjson.encode(info))          -- info survives JSON (saved properties)
assert(nifti.write(tmp .. "/rt.nii.gz", img, back))
local img2, info2 = nifti.read(tmp .. "/rt.nii.gz")
check(img2:sum() == img:sum() and cjson.encode(info2.origin) == cjson.encode(info.origin), "write with JSON'd info")
local geo_only = { spacing_itk = info.spacing_itk, origin = info.origin, direction = info.direction }
assert(nifti.write(tmp .. "/geo.nii", img, geo_only))
local _, info3 = nifti.read(tmp .. "/geo.nii")
check(cjson.encode(info3.direction) == cjson.encode(info.direction) and info3.header.qform_code == 1, "write from geometry only")
local t0, msg, code = nifti.read(tmp .. "/nope.nii.gz")
check(t0 == nil and msg:find("nope.nii.gz") and code == "ERR_IO", "missing file -> nil, msg, code")
local bad = assert(io.open(tmp .. "/bad.nii.gz", "wb")); bad:write("this is not gzip nor nifti"); bad:close()
t0, msg, code = nifti.read(tmp .. "/bad.nii.gz")
check(t0 == nil and msg:find("bad.nii.gz") and code == "ERR_FORMAT", "garbage -> nil, msg: " .. tostring(msg))
local scan = nifti.scan(img2)
check(scan.nan == 0 and scan.min == 0 and scan.values == nil, "scan of an image (too many values)")
img:release(); img2:release()

-- many tensors released by the garbage collector (leaks fail under ASan)
for _ = 1, 100 do local _ = nifti.read(DEMO .. "/labelsTr/hippocampus_004.nii.gz") end
collectgarbage()

-- ---- 4-D split: a synthetic MSD task ----
local task = tmp .. "/Task09_Synth"
for _, s in ipairs({ "imagesTr", "labelsTr", "imagesTs" }) do assert(fs.mkdir(task .. "/" .. s)) end
local ref_info = select(2, nifti.read(DEMO .. "/imagesTr/hippocampus_001_0000.nii.gz"))
ref_info.origin = { 3.5, -2, 10 }
ref_info.header = nil                                   -- geometry rebuilt from spacing/origin/direction
ref_info.spacing_itk = { 0.5, 0.75, 2 }
local function four_d(value0)
  local t = T.zeros({ 2, 3, 4, 5 })                    -- (c, z, y, x)
  for c = 1, 2 do for z = 1, 3 do for y = 1, 4 do for x = 1, 5 do
    t:set(c, z, y, x, value0 + 1000 * c + 100 * z + 10 * y + x)
  end end end end
  return t
end
for i, case in ipairs({ "synth_001", "synth_002" }) do
  local t <close> = four_d(i)
  assert(nifti.write(task .. "/imagesTr/" .. case .. ".nii.gz", t, ref_info))
  local l <close> = T.zeros({ 3, 4, 5 }, "u8")
  l:set(1, 2, 3, 1)
  assert(nifti.write(task .. "/labelsTr/" .. case .. ".nii.gz", l, ref_info))
end
do
  local t <close> = four_d(7)
  assert(nifti.write(task .. "/imagesTs/synth_101.nii.gz", t, ref_info))
  local junk <close> = T.zeros({ 3, 4, 5 }, "u8")
  assert(nifti.write(task .. "/imagesTr/._synth_003.nii.gz", junk, ref_info))   -- macOS junk: skipped
  assert(nifti.write(task .. "/labelsTr/_synth_003.nii.gz", junk, ref_info))
end
write_json(task .. "/dataset.json", {
  name = "Synth", description = "two 4-D cases", tensorImageSize = "4D", licence = "CC0",
  modality = { ["0"] = "T1", ["1"] = "T2" }, labels = { ["0"] = "background", ["1"] = "blob" },
  numTraining = 2, numTest = 1,
  training = { { image = "./imagesTr/synth_001.nii.gz", label = "./labelsTr/synth_001.nii.gz" } }, test = {},
})
local out_root = tmp .. "/raw"
assert(fs.mkdir(out_root))
local target, cerr = convert.convert(task, nil, out_root)
check(target == out_root .. "/Dataset009_Synth", "convert target: " .. tostring(target) .. " " .. tostring(cerr))
if target then
  local names = fs.listdir(target .. "/imagesTr")
  check(#names == 4 and names[1] == "synth_001_0000.nii.gz" and names[4] == "synth_002_0001.nii.gz",
        "split channel files: " .. table.concat(names, " "))
  check(#fs.listdir(target .. "/labelsTr") == 2 and #fs.listdir(target .. "/imagesTs") == 2, "labels copied, test split")
  local c1, i1 = nifti.read(target .. "/imagesTr/synth_002_0001.nii.gz")
  check(c1 and c1:ndim() == 3 and c1:get(2, 3, 4) == 2 + 2000 + 200 + 30 + 4, "channel 1 values")
  check(i1 and cjson.encode(i1.origin) == cjson.encode({ 3.5, -2, 10 }) and i1.spacing_itk[3] == 2, "channel geometry")
  local dj = dataset.read_json(target .. "/dataset.json")
  check(dj.labels.blob == 1 and dj.labels.background == 0 and dj.channel_names["1"] == "T2", "converted labels/channels")
  check(dj.file_ending == ".nii.gz" and dj.modality == nil and dj.training == nil and dj.test == nil, "converted keys")
  local f = io.open(target .. "/dataset.json"); local text = f:read("a"); f:close()
  check(text:find('"numTraining": 2,') ~= nil, "numTraining written as an integer")
  local nv, pr = verify.verify(target, { quiet = true })
  check(nv == 2 and #pr == 0, "converted dataset verifies: " .. table.concat(pr or {}, "; "))
  local again, aerr = convert.convert(task, nil, out_root)
  check(not again and aerr:find("id 9 is taken"), "id taken: " .. tostring(aerr))
  check(convert.convert(task, 509, out_root) == out_root .. "/Dataset509_Synth", "-overwrite_id")
end

-- the split of a 4-D file written by nibabel (tests/gen/gen_nifti_fixtures.py)
do
  local src = "tests/fixtures/nifti/synth_4d_f32.nii.gz"
  local four, finfo = nifti.read(src)
  assert(fs.mkdir(tmp .. "/split"))
  local n = convert.split_4d_nifti(src, tmp .. "/split")
  check(n == 3 and four:ndim() == 4, "nibabel 4-D file splits into 3 channels")
  for c = 1, 3 do
    local ch, ci = nifti.read(string.format("%s/split/synth_4d_f32_%04d.nii.gz", tmp, c - 1))
    local want <close> = four:select(1, c)
    check(ch and ch:ndim() == 3 and ch:sum() == want:sum() and ch:get(4, 5, 6) == want:get(4, 5, 6),
          "channel " .. c .. " voxels")
    check(ch and cjson.encode(ci.origin) == cjson.encode(finfo.origin) and
          cjson.encode(ci.direction) == cjson.encode(finfo.direction) and
          cjson.encode(ci.spacing) == cjson.encode(finfo.spacing), "channel " .. c .. " geometry")
    if ch then ch:release() end
  end
  four:release()
end

-- ---- broken datasets, each a copy of 3 demo cases with one defect ----
local function make_ds(name, opts)
  opts = opts or {}
  local root = tmp .. "/" .. name
  assert(fs.mkdir(root .. "/imagesTr")); assert(fs.mkdir(root .. "/labelsTr"))
  local cases = { "hippocampus_001", "hippocampus_004", "hippocampus_006" }
  for _, c in ipairs(cases) do
    copy(DEMO .. "/imagesTr/" .. c .. "_0000.nii.gz", root .. "/imagesTr/" .. c .. "_0000.nii.gz")
    copy(DEMO .. "/labelsTr/" .. c .. ".nii.gz", root .. "/labelsTr/" .. c .. ".nii.gz")
  end
  write_json(root .. "/dataset.json", {
    channel_names = opts.channels or { ["0"] = "MRI" },
    labels = opts.labels or { background = 0, Anterior = 1, Posterior = 2 },
    numTraining = opts.num or 3, file_ending = ".nii.gz" })
  return root
end
local function expect_problem(root, pattern, what)
  local nv, pr = verify.verify(root, { quiet = true })
  check(nv and has(pr, pattern), what .. ": expected a problem matching '" .. pattern .. "', got: " ..
        table.concat(pr or { tostring(pr) }, " | "))
  return nv
end

local r = make_ds("missing_label")
os.remove(r .. "/labelsTr/hippocampus_004.nii.gz")
check(expect_problem(r, "without a label file: labelsTr/hippocampus_004.nii.gz", "missing label") == 2, "2 valid left")

r = make_ds("shape_mismatch")
do
  local l, li = nifti.read(r .. "/labelsTr/hippocampus_001.nii.gz")
  local cut <close> = l:narrow(1, 1, 10)
  assert(nifti.write(r .. "/labelsTr/hippocampus_001.nii.gz", cut, li))
  l:release()
end
expect_problem(r, "case hippocampus_001: shape mismatch between image imagesTr/hippocampus_001_0000.nii.gz", "shape")

r = make_ds("bad_label_value")
do
  local l, li = nifti.read(r .. "/labelsTr/hippocampus_006.nii.gz")
  l:set(1, 1, 1, 3)
  assert(nifti.write(r .. "/labelsTr/hippocampus_006.nii.gz", l, li))
  l:release()
end
expect_problem(r, "case hippocampus_006: unexpected label value%(s%) 3 in labelsTr/hippocampus_006.nii.gz", "label value")

r = make_ds("missing_channel", { channels = { ["0"] = "MRI", ["1"] = "T2" } })
for _, c in ipairs({ "hippocampus_001", "hippocampus_006" }) do
  copy(r .. "/imagesTr/" .. c .. "_0000.nii.gz", r .. "/imagesTr/" .. c .. "_0001.nii.gz")
end
expect_problem(r, "case hippocampus_004: 1 image file%(s%) but channel_names has 2 channel%(s%); missing imagesTr/hippocampus_004_0001.nii.gz",
               "missing channel")

r = make_ds("nan_image")
do
  local t, ti = nifti.read(r .. "/imagesTr/hippocampus_004_0000.nii.gz")
  t:set(2, 2, 2, 0 / 0)
  assert(nifti.write(r .. "/imagesTr/hippocampus_004_0000.nii.gz", t, ti))
  t:release()
end
expect_problem(r, "case hippocampus_004: image imagesTr/hippocampus_004_0000.nii.gz contains 1 NaN", "NaN")

r = make_ds("num_training", { num = 5 })
expect_problem(r, "numTraining = 5 but 3 cases", "numTraining")

r = make_ds("labels_gap", { labels = { background = 0, Anterior = 1, Posterior = 3 } })
expect_problem(r, "consecutive", "label gap")

r = make_ds("corrupt_label")
do
  local f = assert(io.open(r .. "/labelsTr/hippocampus_001.nii.gz", "rb")); local d = f:read("a"); f:close()
  f = assert(io.open(r .. "/labelsTr/hippocampus_001.nii.gz", "wb")); f:write(d:sub(1, #d // 2)); f:close()
end
expect_problem(r, "case hippocampus_001: .*hippocampus_001.nii.gz': truncated gzip stream", "truncated label")

-- the optional "dataset" dict: files listed explicitly (relative to the folder)
r = make_ds("dataset_dict")
write_json(r .. "/dataset.json", {
  channel_names = { ["0"] = "MRI" }, labels = { background = 0, Anterior = 1, Posterior = 2 },
  numTraining = 2, file_ending = ".nii.gz",
  dataset = {
    b_case = { images = { "imagesTr/hippocampus_004_0000.nii.gz" }, label = "labelsTr/hippocampus_004.nii.gz" },
    a_case = { images = { r .. "/imagesTr/hippocampus_001_0000.nii.gz" }, label = "labelsTr/hippocampus_001.nii.gz" },
  } })
local dd = assert(dataset.open(r))
check(dd.uses_dataset_dict and #dd.cases == 2 and dd.cases[1].id == "a_case" and
      dd.cases[2].images[1] == r .. "/imagesTr/hippocampus_004_0000.nii.gz", "dataset dict cases")
local nvd = verify.verify(r, { quiet = true })
check(nvd == 2, "dataset dict verifies")
write_json(r .. "/dataset.json", {
  channel_names = { ["0"] = "MRI" }, labels = { background = 0, Anterior = 1, Posterior = 2 },
  numTraining = 1, file_ending = ".nii.gz",
  dataset = { a_case = { images = { "imagesTr/gone_0000.nii.gz" }, label = "labelsTr/hippocampus_001.nii.gz" } } })
expect_problem(r, "case a_case: image file imagesTr/gone_0000.nii.gz does not exist", "dict: missing image")

r = make_ds("no_keys")
write_json(r .. "/dataset.json", { labels = { background = 0 } })
local nv, err = verify.verify(r, { quiet = true })
check(nv == nil and err:find("lacks the required key%(s%) channel_names, numTraining, file_ending"), "required keys: " .. tostring(err))

os.execute("rm -rf '" .. tmp .. "'")
if failures > 0 then error(failures .. " checks failed") end
print("dataset: all checks passed")
