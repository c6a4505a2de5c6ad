-- tests/lua/synth_dataset.lua: a tiny synthetic raw dataset for end-to-end tests
-- (test_default_recipe.lua, test_cascade.lua): N cases of an n^3 volume with one
-- bright sphere labelled 1 on a textured background, spacing 1 mm, written with
-- nnunet.image in the nnU-Net v2 raw layout (imagesTr/CASE_0000.nii.gz,
-- labelsTr/CASE.nii.gz, dataset.json). Deterministic (no random numbers).
--
--   local synth = dofile("tests/lua/synth_dataset.lua")
--   synth.write(folder, { cases = 8, size = 16, test_cases = 2, test_folder = path })
--     -> list of case ids; test images (CASE_0000.nii.gz, no labels) go to test_folder
--   synth.write(folder, { regions = true, ... }): a brighter core (label 2) inside each
--     sphere, and a region dataset.json: whole = [1, 2], core = 2, regions_class_order [1, 2]
--   synth.sphere(i, size [, core]) -> image table, label table (C order, x fastest)
local json = require("nnunet.json")
local fs = require("nnunet.fs")
local nifti = require("nnunet.image")
local tensor = require("nnunet.tensor")

local M = {}

-- case i: sphere of radius r around a centre that moves with i
function M.sphere(i, n, core)
  local img, lab = {}, {}
  local r = n * 0.22 + (i % 3) * 0.5
  local cz, cy, cx = n / 2 + (i % 3) - 1, n / 2 + (i % 2) - 0.5, n / 2 - (i % 4) + 1.5
  for z = 0, n - 1 do for y = 0, n - 1 do for x = 0, n - 1 do
    local d2 = (z - cz) ^ 2 + (y - cy) ^ 2 + (x - cx) ^ 2
    local inside = d2 <= r * r
    local inner = core and d2 <= r * r * 0.3
    img[#img + 1] = (inner and 260 or inside and 180 or 60) + ((z * 31 + y * 17 + x * 7 + i * 5) % 23)
    lab[#lab + 1] = inner and 2 or inside and 1 or 0
  end end end
  return img, lab
end

M.geometry = { spacing_itk = { 1, 1, 1 }, origin = { 0, 0, 0 }, direction = { 1, 0, 0, 0, 1, 0, 0, 0, 1 } }

function M.write(folder, o)
  o = o or {}
  local ncase, n = o.cases or 8, o.size or 16
  assert(fs.mkdir(folder .. "/imagesTr"))
  assert(fs.mkdir(folder .. "/labelsTr"))
  local ids = {}
  for i = 1, ncase do
    local img, lab = M.sphere(i, n, o.regions)
    local id = string.format("sph_%03d", i)
    ids[#ids + 1] = id
    assert(nifti.write(folder .. "/imagesTr/" .. id .. "_0000.nii.gz", tensor.from_table(img, { n, n, n }), M.geometry))
    assert(nifti.write(folder .. "/labelsTr/" .. id .. ".nii.gz", tensor.from_table(lab, { n, n, n }, "u8"),
      M.geometry, { segmentation = true }))
  end
  if o.test_folder then
    assert(fs.mkdir(o.test_folder))
    for i = 1, o.test_cases or 2 do
      local img = M.sphere(100 + i, n, o.regions)
      local geo = { spacing_itk = { 1, 1, 1 }, origin = { 3, -2, 1 }, direction = M.geometry.direction }
      assert(nifti.write(string.format("%s/test_%03d_0000.nii.gz", o.test_folder, i),
        tensor.from_table(img, { n, n, n }), geo))
    end
  end
  local f = assert(io.open(folder .. "/dataset.json", "w"))
  if o.regions then   -- written by hand: the order of "labels" declares the regions
    f:write(string.format('{"channel_names": {"0": "MRI"}, "labels": {"background": 0, "whole": [1, 2], '
      .. '"core": 2}, "regions_class_order": [1, 2], "numTraining": %d, "file_ending": ".nii.gz"}', ncase))
    f:close()
    return ids
  end
  f:write(json.encode({ channel_names = { ["0"] = "MRI" }, labels = { background = 0, sphere = 1 },
    numTraining = ncase, file_ending = ".nii.gz" }))
  f:close()
  return ids
end

return M
