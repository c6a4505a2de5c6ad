-- tests/lua/test_convert_old.lua: `nnunet convert_old_nnUNet_dataset` (v1 task -> v2
-- dataset). The expected dataset.json is what nnunetv2 2.8.1's
-- nnUNetv2_convert_old_nnUNet_dataset wrote for this very task (checked byte for byte
-- when the recipe was written); files are copied unchanged; the result opens and
-- verifies as a v2 dataset; an existing target, a missing labelsTr and a bad name are
-- refused without touching anything.
local fs = require("nnunet.fs")
local TL = dofile("tests/lua/testlib.lua")
local check, sh = TL.check, TL.sh
local synth = dofile("tests/lua/synth_dataset.lua")

local ROOT = TL.temp_root("_convert_old")
local src, task, out = ROOT .. "/src", ROOT .. "/Task077_Old", ROOT .. "/raw"
synth.write(src, { cases = 2, size = 8, test_cases = 1, test_folder = src .. "/imagesTs" })
assert(fs.mkdir(task)); assert(fs.mkdir(out))
for _, sub in ipairs({ "imagesTr", "labelsTr", "imagesTs" }) do
  assert(fs.mkdir(task .. "/" .. sub))
  for _, n in ipairs(fs.listdir(src .. "/" .. sub)) do assert(fs.copy(src .. "/" .. sub .. "/" .. n, task .. "/" .. sub .. "/" .. n)) end
end
TL.write_file(task .. "/dataset.json", [[
{
    "name": "Old",
    "description": "a v1 task",
    "tensorImageSize": "3D",
    "reference": "here",
    "licence": "CC-BY-SA 4.0",
    "release": "1.0",
    "modality": {
        "0": "MRI"
    },
    "labels": {
        "0": "background",
        "1": "sphere"
    },
    "numTraining": 2,
    "numTest": 1,
    "training": [{"image": "./imagesTr/sph_001.nii.gz", "label": "./labelsTr/sph_001.nii.gz"},
                 {"image": "./imagesTr/sph_002.nii.gz", "label": "./labelsTr/sph_002.nii.gz"}],
    "test": ["./imagesTs/test_001.nii.gz"]
}
]])
local WANT = [[
{
    "name": "Old",
    "description": "a v1 task",
    "reference": "here",
    "licence": "CC-BY-SA 4.0",
    "release": "1.0",
    "labels": {
        "background": 0,
        "sphere": 1
    },
    "numTraining": 2,
    "channel_names": {
        "0": "MRI"
    },
    "file_ending": ".nii.gz"
}]]

local function run(a) return TL.nnunet({ raw = out }, "convert_old_nnUNet_dataset " .. a) end
local code, log = run(sh(task) .. " Dataset077_Old")
check(code == 0, "convert exit %s:\n%s", tostring(code), log)
local D = out .. "/Dataset077_Old"
check(TL.read_file(D .. "/dataset.json") == WANT, "dataset.json as the reference writes it:\n%s",
  tostring(TL.read_file(D .. "/dataset.json")))
for _, sub in ipairs({ "imagesTr", "labelsTr", "imagesTs" }) do
  for _, n in ipairs(fs.listdir(task .. "/" .. sub)) do
    check(TL.read_file(D .. "/" .. sub .. "/" .. n) == TL.read_file(task .. "/" .. sub .. "/" .. n), "%s/%s copied", sub, n)
  end
end
check(not fs.exists(D .. "/labelsTs"), "no labelsTs invented")
code, log = TL.nnunet({ raw = out }, "verify_dataset -d 77 --quiet")
check(code == 0 and log:find("2 valid cases", 1, true), "the result verifies:\n%s", log)

-- refusals: nothing changes
local before = TL.read_file(D .. "/dataset.json")
code, log = run(sh(task) .. " Dataset077_Old")
check(code ~= 0 and log:find("already exists", 1, true), "existing target refused:\n%s", log)
check(TL.read_file(D .. "/dataset.json") == before, "existing target untouched")
code, log = run(sh(task) .. " Task077_Old")
check(code ~= 0 and log:find("DatasetXXX_Name", 1, true), "bad name refused:\n%s", log)
code, log = run(sh(src .. "/imagesTs") .. " Dataset078_X")
check(code ~= 0 and log:find("no imagesTr", 1, true) and not fs.exists(out .. "/Dataset078_X"),
  "a folder without imagesTr refused:\n%s", log)

TL.finish("test_convert_old", ROOT)
