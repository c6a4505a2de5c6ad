-- tests/lua/format_datasets.lua: small raw datasets in other image formats, for
-- tests/lua/test_image_formats.lua and the reference check tests/gen/check_formats_in_reference.sh.
-- Deterministic (no random numbers); written with nnunet.image and nnunet.overlay.
--
--   local FD = dofile("tests/lua/format_datasets.lua")
--   FD.convert(src, dst, ending)   every .nii.gz of src/{imagesTr,labelsTr,imagesTs} written as
--                                  `ending` with the same voxels and geometry; dataset.json too
--   FD.rgb_png(folder, {cases = 8, test_cases = 0, test_folder = path}) -> H, W
--                                  RGB PNG images (one _0000.png holding R, G, B), gray PNG labels
--                                  (a disc labelled 1); channel_names R, G, B
--   FD.nifti2d(folder, {cases = 8})  the RGB cases' red channel as 2-D NIfTI files (dim[0] = 2,
--                                  spacing 0.5 x 0.8 mm), labels likewise: SimpleITKIO's 2-D case
--   FD.tif3d(folder, scratch, {cases = 5, size = 12, spacing = {s0, s1, s2}})
--                                  3-D TIFF images and labels (synth_dataset's spheres, made in
--                                  `scratch` first) with Tiff3DIO spacing sidecars
local fs = require("nnunet.fs")
local image = require("nnunet.image")
local json = require("nnunet.json")
local overlay = require("nnunet.overlay")
local tensor = require("nnunet.tensor")

local M = {}

local function write_json(p, v, indent)
  assert(json.write_file_atomic(p, v, { indent = indent or false }))
end

function M.convert(src, dst, ending)
  for _, sub in ipairs({ "imagesTr", "labelsTr", "imagesTs" }) do
    if fs.isdir(src .. "/" .. sub) then
      assert(fs.mkdir(dst .. "/" .. sub))
      for _, n in ipairs(fs.listdir(src .. "/" .. sub)) do
        local base = n:match("^(.*)%.nii%.gz$")
        if base then
          local t, info = image.read(src .. "/" .. sub .. "/" .. n)
          assert(t, info)
          local geo = { spacing_itk = info.spacing_itk, origin = info.origin, direction = info.direction }
          assert(image.write(dst .. "/" .. sub .. "/" .. base .. ending, t, geo))
          t:release()
        end
      end
    end
  end
  local dj = json.decode_file(src .. "/dataset.json")
  dj.file_ending = ending
  write_json(dst .. "/dataset.json", dj, 4)
end

local H, W = 24, 32

-- case i: an (H, W, 3) u8 RGB image with a disc, and its (1, H, W) u8 label
local function rgb_case(i)
  local rgb, lab = {}, {}
  local cy, cx, r = 12 + (i % 3) - 1, 16 + (i % 5) - 2, 6 + (i % 2)
  for y = 0, H - 1 do
    for x = 0, W - 1 do
      local inside = (y - cy) ^ 2 + (x - cx) ^ 2 <= r * r
      local t = (y * 7 + x * 3 + i) % 19
      rgb[#rgb + 1] = inside and 200 + t or 40 + t          -- R
      rgb[#rgb + 1] = inside and 90 + t or 60 + t           -- G
      rgb[#rgb + 1] = inside and 30 + t or 120 + t          -- B
      lab[#lab + 1] = inside and 1 or 0
    end
  end
  return tensor.from_table(rgb, { H, W, 3 }, "u8"), tensor.from_table(lab, { 1, H, W }, "u8")
end

function M.rgb_png(folder, o)
  o = o or {}
  local n, nt = o.cases or 8, o.test_cases or 0
  for _, d in ipairs({ folder .. "/imagesTr", folder .. "/labelsTr" }) do assert(fs.mkdir(d)) end
  if nt > 0 then assert(fs.mkdir(o.test_folder)) end
  for i = 1, n do
    local id = string.format("road_%03d", i)
    local rgb, lab = rgb_case(i)
    assert(overlay.write_png(folder .. "/imagesTr/" .. id .. "_0000.png", rgb))
    assert(image.write(folder .. "/labelsTr/" .. id .. ".png", lab, nil, { segmentation = true }))
    if i <= nt then assert(overlay.write_png(o.test_folder .. "/" .. id .. "_0000.png", rgb)) end
    rgb:release()
    lab:release()
  end
  write_json(folder .. "/dataset.json", {
    channel_names = { ["0"] = "R", ["1"] = "G", ["2"] = "B" }, labels = { background = 0, road = 1 },
    numTraining = n, file_ending = ".png" }, 4)
  return H, W
end

function M.nifti2d(folder, o)
  o = o or {}
  local n = o.cases or 8
  for _, d in ipairs({ folder .. "/imagesTr", folder .. "/labelsTr" }) do assert(fs.mkdir(d)) end
  local geo = { spatial_dims = 2, spacing_itk = { 0.5, 0.8, 1 }, origin = { 3, -4, 0 },
                direction = { 1, 0, 0, 0, 1, 0, 0, 0, 1 } }
  for i = 1, n do
    local id = string.format("slice_%03d", i)
    local rgb, lab = rgb_case(i)
    local red <close> = rgb:narrow(3, 1, 1)
    local img = red:contiguous():reshape({ 1, H, W })
    assert(image.write(folder .. "/imagesTr/" .. id .. "_0000.nii.gz", img, geo))
    assert(image.write(folder .. "/labelsTr/" .. id .. ".nii.gz", lab, geo, { segmentation = true }))
    img:release()
    rgb:release()
    lab:release()
  end
  write_json(folder .. "/dataset.json", {
    channel_names = { ["0"] = "red" }, labels = { background = 0, road = 1 }, numTraining = n,
    file_ending = ".nii.gz" }, 4)
end

function M.tif3d(folder, scratch, o)
  o = o or {}
  local synth = dofile("tests/lua/synth_dataset.lua")
  synth.write(scratch, { cases = o.cases or 5, size = o.size or 12 })
  for _, d in ipairs({ folder .. "/imagesTr", folder .. "/labelsTr" }) do assert(fs.mkdir(d)) end
  for _, sub in ipairs({ "imagesTr", "labelsTr" }) do
    for _, n in ipairs(fs.listdir(scratch .. "/" .. sub)) do
      local t = assert(image.read(scratch .. "/" .. sub .. "/" .. n))
      local base = n:gsub("%.nii%.gz$", "")
      assert(image.write(folder .. "/" .. sub .. "/" .. base .. ".tif", t, nil,
        sub == "labelsTr" and { segmentation = true } or nil))
      t:release()
      -- the sidecar: <case>.json for a case's channel files, <label>.json for a label
      local side = sub == "imagesTr" and base:gsub("_0000$", "") or base
      write_json(folder .. "/" .. sub .. "/" .. side .. ".json", { spacing = o.spacing or { 1, 1, 1 } })
    end
  end
  local dj = json.decode_file(scratch .. "/dataset.json")
  dj.file_ending = ".tif"
  write_json(folder .. "/dataset.json", dj, 4)
end

return M
