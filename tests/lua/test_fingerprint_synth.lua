-- tests/lua/test_fingerprint_synth.lua: fingerprint extraction (nnunet-behaviour.md §2) on
-- volumes whose crop boxes and statistics are computed by hand (issue 3 item 7), and on the
-- shared BraTS cases, both as shipped and with the background zeroed.
--   1. two channels: the nonzero mask is the OR of the channels, the box their union;
--      relative size, foreground count, per-channel statistics of constant foregrounds;
--   2. a hollow cube: the closed cavity is filled (label stays 0 inside), opening one wall
--      voxel connects it to the outside (label -1 there);
--   3. an all-zero image: box = whole image, relative size 1, no foreground, no samples;
--   4. intensity statistics of 1..10 (mean 5.5, std sqrt(8.25), percentiles 1.045 / 9.955);
--   5. BraTS as shipped: the background is a nonzero constant per image, so the reference's
--      crop keeps everything (box = the whole 155 x 240 x 240 volume);
--   6. BraTS with that constant set to 0 (as tests/lua/test_preprocess_brats.lua does): the
--      box is the brain's: every slab outside it is 0 in both channels, each of its six
--      faces touches a nonzero voxel, and the relative size is < 0.75 (-> use_mask_for_norm).
-- Parts 5-6 are left out when ../shared/data is absent; parts 1-4 need no data and always run.
local fs = require("nnunet.fs")
local nifti = require("nnunet.image")
local pp = require("nnunet.preproc_case")
local pre = require("nnunet.preprocess")
local tensor = require("nnunet.tensor")

local TL = dofile("tests/lua/testlib.lua")
local check = TL.check
local function box_str(b)
  local out = {}
  for a = 1, 3 do out[a] = string.format("[%d,%d)", b[a][1], b[a][2]) end
  return table.concat(out, " ")
end
local function same_box(b, want) return box_str(b) == box_str(want) end
local function close(a, b, rel) return math.abs(a - b) <= rel * math.max(1, math.abs(b)) end

-- 1. two channels (2, 6, 7, 8), 0-based voxel coordinates (z, y, x):
--    channel 0 = 3.5 on the block z 1..2, y 1..3, x 2..4; channel 1 = -2.25 at (4, 5, 6).
--    OR mask -> box z [1,5), y [1,6), x [2,7) = 4 x 5 x 5 = 100 of 6*7*8 = 336 voxels.
--    label 1 at (1, 1, 2) (channel 0: 3.5, channel 1: 0), label 2 at (4, 5, 6) (0, -2.25).
do
  local img = tensor.zeros({ 2, 6, 7, 8 })
  local lab = tensor.zeros({ 1, 6, 7, 8 })
  for z = 1, 2 do for y = 1, 3 do for x = 2, 4 do img:set(1, z + 1, y + 1, x + 1, 3.5) end end end
  img:set(2, 5, 6, 7, -2.25)
  lab:set(1, 2, 2, 3, 1)
  lab:set(1, 5, 6, 7, 2)
  local rec, samples = pre.fingerprint_case(img, lab, 1000)
  check(same_box(rec.bbox, { { 1, 5 }, { 1, 6 }, { 2, 7 } }), "two channels: box %s", box_str(rec.bbox))
  check(table.concat(rec.shape_after_crop, ",") == "4,5,5", "shape after crop %s", table.concat(rec.shape_after_crop, ","))
  check(rec.relative_size_after_cropping == 100 / 336, "relative size %.17g, want 100/336", rec.relative_size_after_cropping)
  check(rec.n_foreground == 2, "foreground voxels %d, want 2", rec.n_foreground)
  -- channel 0 sees {3.5, 0}, channel 1 sees {0, -2.25}; 1000 draws with replacement hit both
  local s0 = pre.intensity_stats(samples:select(1, 1):contiguous())
  local s1 = pre.intensity_stats(samples:select(1, 2):contiguous())
  check(s0.min == 0 and s0.max == 3.5, "channel 0 samples in {0, 3.5}: %g .. %g", s0.min, s0.max)
  check(s1.min == -2.25 and s1.max == 0, "channel 1 samples in {-2.25, 0}: %g .. %g", s1.min, s1.max)
  -- the mean of n draws from {0, 3.5} is 3.5 * (count of 3.5) / n: a multiple of 3.5/1000
  local k = s0.mean * 1000 / 3.5
  check(math.abs(k - math.floor(k + 0.5)) < 1e-3 and k > 400 and k < 600, "channel 0 mean %g = 3.5 k/1000", s0.mean)

  -- a constant foreground: every statistic equals the constant, std 0
  local lab1 = tensor.zeros({ 1, 6, 7, 8 })
  lab1:set(1, 2, 3, 4, 1)
  lab1:set(1, 3, 4, 5, 1)
  local _, smp = pre.fingerprint_case(img, lab1, 50)
  local st = pre.intensity_stats(smp:select(1, 1):contiguous())
  check(st.mean == 3.5 and st.median == 3.5 and st.std == 0 and st.min == 3.5 and st.max == 3.5
    and st.percentile_00_5 == 3.5 and st.percentile_99_5 == 3.5, "constant foreground 3.5: all statistics 3.5, std 0")
end

-- 2. hollow cube in (1, 7, 7, 7): walls on the surface of [1,6)^3, cavity [2,5)^3 (27 voxels).
do
  local img = tensor.zeros({ 1, 7, 7, 7 })
  for z = 1, 5 do for y = 1, 5 do for x = 1, 5 do
    if z == 1 or z == 5 or y == 1 or y == 5 or x == 1 or x == 5 then img:set(1, z + 1, y + 1, x + 1, 1) end
  end end end
  local lab = tensor.zeros({ 1, 7, 7, 7 })
  local _, cl, bbox = pre.crop(img, lab)
  check(same_box(bbox, { { 1, 6 }, { 1, 6 }, { 1, 6 } }), "hollow cube box %s", box_str(bbox))
  check(cl:min() == 0, "closed cavity filled: no -1 inside the box (min %g)", cl:min())
  -- open one wall voxel (1, 3, 3): the cavity now reaches the outside through it
  img:set(1, 2, 4, 4, 0)
  _, cl, bbox = pre.crop(img, lab)
  check(same_box(bbox, { { 1, 6 }, { 1, 6 }, { 1, 6 } }), "opened cube box %s", box_str(bbox))
  local neg = 0
  for z = 1, 5 do for y = 1, 5 do for x = 1, 5 do if cl:get(1, z, y, x) == -1 then neg = neg + 1 end end end end
  check(neg == 28, "opened cavity: 27 cavity voxels + the opening are -1, got %d", neg)
  local rec = pre.fingerprint_case(img, lab, 10)
  check(rec.relative_size_after_cropping == 125 / 343 and rec.n_foreground == 0, "hollow cube record")
end

-- 3. all-zero image: the box is the whole image, every label 0 becomes -1
do
  local img = tensor.zeros({ 1, 3, 4, 5 })
  local lab = tensor.zeros({ 1, 3, 4, 5 })
  local rec, smp = pre.fingerprint_case(img, lab, 10)
  check(same_box(rec.bbox, { { 0, 3 }, { 0, 4 }, { 0, 5 } }), "empty image box %s", box_str(rec.bbox))
  check(rec.relative_size_after_cropping == 1 and rec.n_foreground == 0, "empty image record")
  local _, cl = pre.crop(img, lab)
  check(cl:max() == -1 and cl:min() == -1, "empty image: label -1 everywhere")
  check(smp == nil or smp:numel() == 0 or rec.n_foreground == 0, "no samples without foreground")
end

-- 4. statistics of 1..10 (float32): mean 5.5, median 5.5, std sqrt(8.25) = 2.8722813...,
--    percentiles q = 9 * 0.005 = 0.045 -> 1 + 0.045 = 1.045 and 9 * 0.995 = 8.955 -> 9.955
--    (float32 results: within 1e-6 relative)
do
  local t = tensor.from_table({ 7, 1, 10, 3, 5, 2, 9, 4, 8, 6 }, { 10 })
  local st = pre.intensity_stats(t)
  check(st.mean == 5.5 and st.median == 5.5 and st.min == 1 and st.max == 10, "1..10 mean/median/min/max")
  check(close(st.std, math.sqrt(8.25), 1e-6), "1..10 std %.9g", st.std)
  check(close(st.percentile_00_5, 1.045, 1e-6) and close(st.percentile_99_5, 9.955, 1e-6),
    "1..10 percentiles %.9g %.9g", st.percentile_00_5, st.percentile_99_5)
end

-- 5./6. the shared BraTS cases
local shared = "../shared/data/Dataset501_BraTS2013Sample"
if not fs.isdir(shared) then
  print(string.format("test_fingerprint_synth: %d checks, %d failures (BraTS part skipped: %s absent)", TL.checks,
    TL.failures, shared))
  os.exit(TL.failures == 0 and 0 or 1)
end

local function read_case(id)
  local chans = {}
  for c = 0, 1 do chans[c + 1] = assert(nifti.read(string.format("%s/imagesTr/%s_%04d.nii.gz", shared, id, c))) end
  local lab = assert(nifti.read(shared .. "/labelsTr/" .. id .. ".nii.gz"))
  local s = chans[1]:shape()
  local img = tensor.zeros({ 2, s[1], s[2], s[3] })
  for c = 1, 2 do img:select(1, c):copy_from(chans[c]) end
  return img, chans, lab:reshape({ 1, s[1], s[2], s[3] }), s
end

for _, id in ipairs({ "brats_2013_pat0001_1", "brats_2013_pat0005_1" }) do
  local img, chans, lab, s = read_case(id)
  -- 5. as shipped: a nonzero constant background -> nothing cropped
  local rec = pre.fingerprint_case(img, lab, 1000)
  check(same_box(rec.bbox, { { 0, s[1] }, { 0, s[2] }, { 0, s[3] } }) and rec.relative_size_after_cropping == 1,
    "%s as shipped: box %s is the whole volume (background %g, %g is not 0)", id, box_str(rec.bbox),
    chans[1]:get(1, 1, 1), chans[2]:get(1, 1, 1))

  -- 6. background constant -> 0 (the corner voxel is background)
  for c = 1, 2 do pp.zero_value(img:select(1, c), chans[c]:get(1, 1, 1)) end
  rec = pre.fingerprint_case(img, lab, 1000)
  local b = rec.bbox
  check(rec.relative_size_after_cropping < 0.75, "%s zeroed: relative size %g < 0.75", id, rec.relative_size_after_cropping)
  check(rec.shape_after_crop[1] == b[1][2] - b[1][1] and rec.shape_after_crop[2] == b[2][2] - b[2][1]
    and rec.shape_after_crop[3] == b[3][2] - b[3][1], "%s zeroed: shape after crop = box extents", id)
  for a = 1, 3 do check(b[a][1] > 0 and b[a][2] < s[a], "%s zeroed: box %s inside the volume on axis %d", id, box_str(b), a - 1) end
  -- tight: outside slabs all 0 in both channels, each face plane has a nonzero voxel
  local function slab(axis, lo, hi) return img:narrow(axis + 1, lo + 1, hi - lo) end
  local function zero(t) return t:min() == 0 and t:max() == 0 end
  for a = 1, 3 do
    check(zero(slab(a, 0, b[a][1])), "%s zeroed: nothing nonzero before the box on axis %d", id, a - 1)
    check(zero(slab(a, b[a][2], s[a])), "%s zeroed: nothing nonzero after the box on axis %d", id, a - 1)
    check(not zero(slab(a, b[a][1], b[a][1] + 1)), "%s zeroed: the box's first plane on axis %d touches the brain", id, a - 1)
    check(not zero(slab(a, b[a][2] - 1, b[a][2])), "%s zeroed: the box's last plane on axis %d touches the brain", id, a - 1)
  end
  -- every tumour voxel lies inside the box
  local inside = lab:narrow(2, b[1][1] + 1, b[1][2] - b[1][1]):narrow(3, b[2][1] + 1, b[2][2] - b[2][1])
    :narrow(4, b[3][1] + 1, b[3][2] - b[3][1])
  check(inside:sum() == lab:sum() and rec.n_foreground > 0, "%s zeroed: all %d foreground voxels inside the box", id,
    rec.n_foreground)
  io.stderr:write(string.format("%s: brain box %s, relative size %.4f\n", id, box_str(b), rec.relative_size_after_cropping))
end

print(string.format("test_fingerprint_synth: %d checks, %d failures", TL.checks, TL.failures))
os.exit(TL.failures == 0 and 0 or 1)
