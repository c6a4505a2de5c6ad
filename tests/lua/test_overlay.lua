-- plot_overlay_pngs (recipes/plot_overlay_pngs.lua, core/nnu_overlay.h, nnunet.overlay):
--   1. slice choice and rendering against the reference's own functions
--      (select_slice_to_plot2, generate_overlay; values from tests/gen/gen_overlay_ref.py),
--      including the reference's column normalisation quirk (it picks slice 2 where a
--      per-class normalisation would pick 3), -1 voxels, the colour order by rank
--   2. PNG round trip through libpng (8-bit RGB), errors naming the file
--   3. the command on a synthetic dataset: preprocessed (default) and --use_raw, one
--      PNG per case equal to the overlay of its data; errors for a missing
--      configuration or channel; -np 1 writes the same bytes as the default 8 workers
local TL = dofile("tests/lua/testlib.lua")
TL.skip_unless_modules({ "nnunet.overlay", "nnunet.image" })
local overlay = require("nnunet.overlay")
local tensor = require("nnunet.tensor")
local fs = require("nnunet.fs")
local nifti = require("nnunet.image")
local check = TL.check

-- from tests/gen/gen_overlay_ref.py (the reference's functions)
local IMG = { -5.5, 8.5, -0.5, 13.5, 4.5, -4.5, 9.5, 0.5, 14.5, 5.5, -3.5, 10.5, 1.5, 15.5, 6.5, -2.5, 11.5, 2.5, 16.5, 7.5, -1.5, 12.5, 3.5, -5.5, 8.5, -0.5, 13.5, 4.5, -4.5, 9.5, 0.5, 14.5, 5.5, -3.5, 10.5, 1.5, 15.5, 6.5, -2.5, 11.5, 2.5, 16.5, 7.5, -1.5, 12.5, 3.5, -5.5, 8.5, -0.5, 13.5, 4.5, -4.5, 9.5, 0.5, 14.5, 5.5, -3.5, 10.5, 1.5, 15.5 }
local SEG = { -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 0, 2, 2, 0, 0, 0, 2, 2, 2, 0, 0, 0, 0, 0, 0, -1, 0, 0, 0, 0, 3 }
local SLICE_A = 2  -- 0-based
local OVERLAY_A = { 32, 32, 32, 145, 145, 145, 72, 72, 72, 0, 0, 0, 113, 113, 113, 65, 78, 122, 179, 191, 235, 106, 118, 163, 33, 45, 90, 121, 121, 121, 141, 98, 67, 255, 211, 180, 88, 88, 88, 16, 16, 16, 129, 129, 129 }
local SEG_B = { 0, 0, 0, 0, 0, 0, 2, 2, 2, 0, 0, 0, 0, 0, 0 }
local OVERLAY_B = { 33, 33, 33, 191, 191, 191, 90, 90, 90, 247, 247, 247, 146, 146, 146, 45, 45, 45, 218, 226, 255, 117, 125, 153, 16, 24, 52, 157, 157, 157, 56, 56, 56, 213, 213, 213, 112, 112, 112, 11, 11, 11, 168, 168, 168 }

local function first_diff(got, want)
  if #got ~= #want then return string.format("length %d vs %d", #got, #want) end
  for i = 1, #want do
    if got[i] ~= want[i] then return string.format("index %d: %s vs %s", i, tostring(got[i]), tostring(want[i])) end
  end
  return nil
end

-- 1. the reference's values
local img = tensor.from_table(IMG, { 4, 3, 5 }, "f32")
local seg = tensor.from_table(SEG, { 4, 3, 5 }, "i16")
check(overlay.select_slice(seg) == SLICE_A + 1, "slice %d, want %d (1-based)", overlay.select_slice(seg), SLICE_A + 1)
local rgb, z = overlay.case(img, seg, 0.6)
check(z == SLICE_A + 1, "case: slice %d", z)
check(table.concat(rgb:shape(), ",") == "3,5,3" and rgb:dtype() == "u8", "rgb (Y, X, 3) u8: %s %s",
  table.concat(rgb:shape(), ","), rgb:dtype())
local d = first_diff(rgb:totable(), OVERLAY_A)
check(d == nil, "overlay A equals the reference's: %s", tostring(d))
local img_b = img:select(1, 2)
local rgb_b = overlay.render(img_b, tensor.from_table(SEG_B, { 3, 5 }, "i16"), 0.25)
d = first_diff(rgb_b:totable(), OVERLAY_B)
check(d == nil, "overlay B (labels {0, 2}, intensity 0.25) equals the reference's: %s", tostring(d))
check(overlay.select_slice(tensor.zeros({ 4, 3, 5 }, "i16")) == 1, "no foreground: the first slice")
-- a float segmentation (labels read from a float NIfTI) works the same
check(overlay.select_slice(tensor.from_table(SEG, { 4, 3, 5 }, "f32")) == SLICE_A + 1, "float seg")
-- a constant image is black; shapes must agree
local black = overlay.render(tensor.zeros({ 3, 5 }, "f32"), tensor.zeros({ 3, 5 }, "i16"))
check(black:max() == 0, "constant image: black")
check(not pcall(overlay.case, img, tensor.zeros({ 4, 3, 4 }, "i16")), "shape mismatch is an error")

-- 2. PNG round trip
local root = TL.temp_root("_overlay")
assert(fs.mkdir(root))
local png = root .. "/a.png"
assert(overlay.write_png(png, rgb))
check(fs.isfile(png) and not fs.exists(png .. ".tmp"), "PNG written, no .tmp left")
local f = assert(io.open(png, "rb"))
local head = f:read(26)
f:close()
check(head:sub(1, 8) == "\137PNG\r\n\26\n", "PNG signature")
local w, h, depth, ctype = string.unpack(">I4I4BB", head, 17)
check(head:sub(13, 16) == "IHDR" and w == 5 and h == 3 and depth == 8 and ctype == 2,
  "IHDR: 5 x 3, 8-bit RGB (colour type 2): %s x %s, %s, %s", w, h, depth, ctype)
local back = assert(overlay.read_png(png))
check(first_diff(back:totable(), OVERLAY_A) == nil, "PNG reads back the same pixels")
local nope, err = overlay.read_png(root .. "/missing.png")
check(nope == nil and err:find(root .. "/missing.png", 1, true), "missing PNG named: %s", tostring(err))
TL.write_file(root .. "/bad.png", "not a png")
nope, err = overlay.read_png(root .. "/bad.png")
check(nope == nil and err:find(root .. "/bad.png", 1, true), "corrupt PNG named: %s", tostring(err))
nope, err = overlay.write_png(root .. "/no/such/dir/x.png", rgb)
check(nope == nil and err:find(root .. "/no/such/dir/x.png", 1, true), "unwritable PNG named: %s", tostring(err))

-- 3. the command
local synth = dofile("tests/lua/synth_dataset.lua")
local RAW, PRE = root .. "/raw", root .. "/pre"
local DS = "Dataset993_Overlay"
local ids = synth.write(RAW .. "/" .. DS, { cases = 3, size = 12 })
local dirs = { raw = RAW, pre = PRE }
local code, out = TL.nnunet(dirs, "plan_and_preprocess -d 993 -c 3d_fullres -np 1 --no_fsync --quiet")
if not check(code == 0, "plan_and_preprocess exit %s:\n%s", tostring(code), out) then TL.finish("test_overlay", root) end

local function same_png(path, want_rgb, what)
  local got = overlay.read_png(path)
  check(got ~= nil, "%s: %s written", what, path)
  if got then check(first_diff(got:totable(), want_rgb:totable()) == nil, "%s: pixels of %s", what, path) end
end
local o1 = root .. "/png_pre"
code, out = TL.nnunet(dirs, "plot_overlay_pngs -d 993 -o " .. TL.sh(o1))
check(code == 0, "preprocessed overlays exit 0:\n%s", out)
local pp = require("nnunet.preproc_case")
for _, id in ipairs(ids) do
  local store = assert(pp.open(PRE .. "/" .. DS .. "/nnUNetPlans_3d_fullres/" .. id .. ".nnu"))
  local data, s = store:read_all()
  store:close()
  same_png(o1 .. "/" .. id .. ".png", overlay.case(data:select(1, 1), s:select(1, 1), 0.6), "preprocessed")
end
local o2 = root .. "/png_raw"
code, out = TL.nnunet(dirs, "plot_overlay_pngs -d " .. DS .. " -o " .. TL.sh(o2) .. " --use_raw -overlay_intensity 0.3")
check(code == 0, "raw overlays exit 0:\n%s", out)
for _, id in ipairs(ids) do
  local im = nifti.read(RAW .. "/" .. DS .. "/imagesTr/" .. id .. "_0000.nii.gz")
  local lb = nifti.read(RAW .. "/" .. DS .. "/labelsTr/" .. id .. ".nii.gz")
  same_png(o2 .. "/" .. id .. ".png", overlay.case(im, lb, 0.3), "raw")
end
check(#fs.listdir(o2) == #ids, "one PNG per case")
-- the cases were drawn by 8 workers (-np default); one worker writes the same bytes
local o3 = root .. "/png_raw_np1"
code, out = TL.nnunet(dirs, "plot_overlay_pngs -d " .. DS .. " -o " .. TL.sh(o3) .. " --use_raw -overlay_intensity 0.3 -np 1")
check(code == 0, "-np 1 exit 0:\n%s", out)
for _, id in ipairs(ids) do
  check(TL.read_file(o3 .. "/" .. id .. ".png") == TL.read_file(o2 .. "/" .. id .. ".png"), "%s: -np 1 = -np 8", id)
end
code, out = TL.nnunet(dirs, "plot_overlay_pngs -d 993 -o " .. TL.sh(root .. "/x") .. " -c 2d_missing")
check(code == 1 and out:find("2d_missing", 1, true), "unknown configuration named:\n%s", out)
code, out = TL.nnunet(dirs, "plot_overlay_pngs -d 993 -o " .. TL.sh(root .. "/x") .. " -channel_idx 1")
check(code == 1 and out:find("channel index up to 0", 1, true), "channel out of range:\n%s", out)
code, out = TL.nnunet(dirs, "plot_overlay_pngs -d 993 -o " .. TL.sh(root .. "/x") .. " --use_raw -channel_idx 1")
check(code == 1 and out:find("-channel_idx 1", 1, true), "raw channel out of range:\n%s", out)
code, out = TL.nnunet(dirs, "plot_overlay_pngs -d 993 -o " .. TL.sh(root .. "/x") .. " -p nnUNetPlansNone")
check(code == 1 and out:find(PRE .. "/" .. DS .. "/nnUNetPlansNone.json", 1, true), "missing plans named:\n%s", out)

TL.finish("test_overlay", root)
