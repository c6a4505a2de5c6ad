-- tests/lua/test_rules.lua: the planning rules (rules/*.lua), their loader, the planner and
-- the JSON writer.
--   1. exact unit tests of each rule on hand-computable inputs (nnunet-behaviour.md vectors)
--   2. loader: user-dir override file by file, sandbox refuses io/os/require/globals
--   3. settings overrides (gpu_memory_target changes patch/batch as expected)
--   4. the reference planner's real inputs -> plans.json for six MSD datasets, compared in
--      every field (diff per mismatching key) and byte for byte.
-- Run: cd <repo> && LUA_PATH='lua/?.lua;;' lua5.4 tests/lua/test_rules.lua
--   or build/nnunet tests/lua/test_rules.lua. Exit 77 (skip) if ../shared is absent.
-- Fails with error() (non-zero exit) listing every failed check.

-- locate the repository root: $NNUNET_HOME, else the host's nnunet.sys.home, else from this
-- script's path (arg[0]), else "."
local function script_root()
  local home = os.getenv("NNUNET_HOME")
  if home and home ~= "" then
    local f = io.open(home .. "/rules/util.lua", "r")
    if f then f:close(); return home end
  end
  local ok, sys = pcall(require, "nnunet.sys") -- set by the host program build/nnunet
  if ok and type(sys) == "table" and type(sys.home) == "string" then return sys.home end
  local a0 = arg and arg[0]
  if a0 then
    local dir = a0:match("^(.*)/tests/lua/[^/]+$")
    if dir then return dir == "" and "/" or dir end
    if a0:match("^tests/lua/[^/]+$") then return "." end
  end
  return "."
end
local ROOT = script_root()
package.path = ROOT .. "/lua/?.lua;" .. package.path

local json = require("nnunet.json")
local rules = require("nnunet.rules")
local planner = require("nnunet.planner")
rules.set_user_dir(nil)
rules.set_shipped_dir(ROOT .. "/rules")

local failures, checks = {}, 0
local function fail(msg)
  failures[#failures + 1] = msg
  print("FAIL: " .. msg)
end
local function check(cond, msg)
  checks = checks + 1
  if not cond then fail(msg) end
  return cond
end
local function repr(v)
  if type(v) == "number" then
    return json.format_number(v)
  end
  if type(v) == "table" then
    if json.is_null(v) then return "null" end
    local ok, s = pcall(json.encode, v, { indent = false })
    return ok and s or tostring(v)
  end
  return tostring(v)
end
-- exact equality, also of number type (integer vs float) when want_type is given
local function eq(got, want, msg)
  local same
  if type(got) == "table" and type(want) == "table" then
    same = repr(got) == repr(want)
  else
    same = got == want and (type(got) ~= "number" or math.type(got) == math.type(want))
  end
  return check(same, string.format("%s: got %s, want %s", msg, repr(got), repr(want)))
end
local function raises(f, pattern, msg)
  local ok, err = pcall(f)
  checks = checks + 1
  if ok then fail(msg .. ": expected an error") return end
  if pattern and not tostring(err):find(pattern) then
    fail(string.format("%s: error '%s' does not match '%s'", msg, tostring(err), pattern))
  end
end

local util = rules.util()
local R = {}
for _, n in ipairs(planner.rules_used()) do R[n] = rules.load(n) end
local cfg = rules.settings()

---------------------------------------------------------------------------------------------
-- 1. unit tests
---------------------------------------------------------------------------------------------
do -- util: numpy percentile / median / Python round
  eq(util.percentile({ 0.7, 3.3 }, 50), 2.0, "percentile([0.7,3.3],50) (two-sided lerp)")
  eq(util.percentile({ 0.4, 4.2 }, 50), 2.3, "percentile([0.4,4.2],50)")
  eq(util.median({ 0.4, 4.2 }), 2.3000000000000003, "median([0.4,4.2])")
  eq(util.percentile({ 3, 0, 2, 1 }, 10), 0.30000000000000004, "percentile([0..3],10): q carries rounding")
  eq(util.percentile({ 5, 1, 3 }, 50), 3.0, "percentile odd n")
  eq(util.percentile({ 1, 2, 3, 4 }, 100), 4.0, "percentile p=100")
  eq(util.percentile({ 1, 2, 3, 4 }, 0), 1.0, "percentile p=0")
  eq(util.median({ 3, 1, 2 }), 3 // 3 * 2.0, "median odd n")
  eq(util.median({ 20, 19, 320, 319 }), 169.5, "median even n (x.5)")
  local rounds = { { 0.5, 0 }, { 1.5, 2 }, { 2.5, 2 }, { -0.5, 0 }, { -1.5, -2 }, { 2.6, 3 },
    { 58.4, 58 }, { 319.5, 320 }, { 320.5, 320 }, { 3.0, 3 }, { -2.4, -2 } }
  for _, t in ipairs(rounds) do eq(util.round(t[1]), t[2], "round(" .. t[1] .. ") half-even") end
  eq(util.argmax({ 1, 3, 3 }), 2, "argmax first on ties")
  eq(util.argmax_last({ 0.75, 0.684, 0.75 }), 3, "argsort[-1]: last on ties")
  eq(util.prod({ 36, 50, 35 }), 63000, "prod")
  eq(util.permute({ 10, 20, 30 }, { 2, 0, 1 }), { 30, 10, 20 }, "permute (0-based)")
end

do -- normalization (§3.1, §3.2)
  local map = { CT = "CTNormalization", ct = "CTNormalization", [" CT"] = "ZScoreNormalization",
    CT2 = "ZScoreNormalization", ctnormalization = "ZScoreNormalization",
    MRI = "ZScoreNormalization", T2 = "ZScoreNormalization", zscore = "ZScoreNormalization",
    noNorm = "NoNormalization", NONORM = "NoNormalization", RGB_to_0_1 = "RGBTo01Normalization",
    rescale_to_0_1 = "RescaleTo01Normalization" }
  for name, want in pairs(map) do eq(R.normalization.scheme(name), want, "scheme('" .. name .. "')") end
  local dj = { channel_names = { ["1"] = "ADC", ["0"] = "CT", ["2"] = "noNorm", ["10"] = "T2" } }
  local n = R.normalization.plan({ median_relative_size_after_cropping = 0.5 }, dj, cfg)
  eq(n.schemes, { "CTNormalization", "ZScoreNormalization", "NoNormalization", "ZScoreNormalization" },
    "schemes in channel order")
  eq(n.use_mask_for_norm, { false, true, false, true }, "use_mask_for_norm: ZScore only, ratio < 0.75")
  n = R.normalization.plan({ median_relative_size_after_cropping = 0.75 }, dj, cfg)
  eq(n.use_mask_for_norm, { false, false, false, false }, "use_mask_for_norm: ratio 0.75 -> none")
end

do -- spacing (§4.1)
  -- anisotropic: 10 cases, median (10, 1.5, 1.5), sizes (9, 256, 216) -> P10 of axis 0
  local sp, sh = {}, {}
  local z = { 10, 10, 10, 10, 10, 10, 10, 5, 6, 10 }
  for i = 1, 10 do sp[i] = { z[i], 1.5, 1.5 }; sh[i] = { 9, 256, 216 } end
  local t, info = R.spacing.target_spacing({ spacings = sp, shapes_after_crop = sh }, cfg)
  eq(t, { util.percentile(z, 10), 1.5, 1.5 }, "anisotropic axis -> 10th percentile")
  check(info.corrected, "anisotropy rule fired")
  eq(util.percentile(z, 10), 5.9, "P10 of the slice spacings")
  -- P10 below the in-plane spacing -> max(other) + 1e-5
  for i = 1, 10 do sp[i] = { i <= 2 and 1.0 or 10, 1.5, 1.5 } end
  t = R.spacing.target_spacing({ spacings = sp, shapes_after_crop = sh }, cfg)
  eq(t[1], 1.5 + 1e-5, "coarse axis never finer than the in-plane axes")
  -- not anisotropic in voxels: unchanged median
  for i = 1, 10 do sh[i] = { 90, 256, 216 } end
  t = R.spacing.target_spacing({ spacings = sp, shapes_after_crop = sh }, cfg)
  eq(t, { 10.0, 1.5, 1.5 }, "no correction when the coarse axis has many voxels")
  local ov = rules.settings({ overwrite_target_spacing = { 2, 1, 1 } })
  eq(R.spacing.target_spacing({ spacings = sp, shapes_after_crop = sh }, ov), { 2.0, 1.0, 1.0 },
    "overwrite_target_spacing")
end

do -- transpose (§4.2)
  local f, b = R.transpose.transpose({ 0.8, 5, 0.8 }, cfg)
  eq(f, { 1, 0, 2 }, "transpose_forward (coarse axis 1)"); eq(b, { 1, 0, 2 }, "transpose_backward")
  f, b = R.transpose.transpose({ 1, 1, 5 }, cfg)
  eq(f, { 2, 0, 1 }, "transpose_forward (coarse axis 2)"); eq(b, { 1, 2, 0 }, "transpose_backward")
  f, b = R.transpose.transpose({ 1, 1, 1 }, cfg)
  eq(f, { 0, 1, 2 }, "isotropic: identity")
end

do -- shape (§4.3, §5.2)
  eq(R.shape.new_shape({ 75, 512, 512 }, { 5, 0.5, 0.5 }, { 1, 1, 1 }), { 375, 256, 256 }, "new_shape")
  eq(R.shape.new_shape({ 5, 3, 7 }, { 1, 1, 1 }, { 2, 2, 2 }), { 2, 2, 4 }, "new_shape half-even")
  local fp = { spacings = { { 2, 1, 1 }, { 1, 1, 1 } }, shapes_after_crop = { { 10, 20, 30 }, { 11, 21, 31 } } }
  eq(R.shape.new_median_shape(fp, { 1, 1, 1 }), { 15.5, 20.5, 30.5 }, "median of resampled shapes")
  eq(R.shape.original_median_shape(fp, { 0, 1, 2 }), { 10, 20, 30 }, "original median shape (half-even)")
  eq(R.shape.original_median_spacing(fp, { 1, 0, 2 }), { 1.0, 1.5, 1.0 }, "original median spacing, transposed")
  check(not R.shape.is_3d({ 1, 512, 512 }), "2D data (first axis 1) -> no 3d configuration")
end

do -- topology (§5.3, §16 vectors)
  local t = R.topology.pool_and_conv_props({ 1, 1, 1 }, { 36, 50, 35 }, 4, 999999)
  eq(t.strides, { { 1, 1, 1 }, { 2, 2, 2 }, { 2, 2, 2 }, { 2, 2, 2 } }, "topology hippocampus strides")
  eq(t.kernel_sizes, { { 3, 3, 3 }, { 3, 3, 3 }, { 3, 3, 3 }, { 3, 3, 3 } }, "topology hippocampus kernels")
  eq(t.patch_size, { 40, 56, 40 }, "topology hippocampus padded patch")
  eq(t.divisor, { 8, 8, 8 }, "topology hippocampus divisor")
  t = R.topology.pool_and_conv_props({ 3.6, 0.625, 0.625 }, { 20, 320, 319 }, 4, 999999)
  eq(t.strides, { { 1, 1, 1 }, { 1, 2, 2 }, { 1, 2, 2 }, { 2, 2, 2 }, { 2, 2, 2 }, { 1, 2, 2 }, { 1, 2, 2 } },
    "topology prostate strides")
  eq(t.kernel_sizes, { { 1, 3, 3 }, { 1, 3, 3 }, { 3, 3, 3 }, { 3, 3, 3 }, { 3, 3, 3 }, { 3, 3, 3 }, { 3, 3, 3 } },
    "topology prostate kernels")
  eq(t.patch_size, { 20, 320, 320 }, "topology prostate padded patch")
  eq(t.divisor, { 4, 64, 64 }, "topology prostate divisor")
  eq(R.topology.pad_shape({ 319.5, 64, 1 }, { 64, 64, 4 }), { 320, 64, 4 }, "pad_shape (x.5 median)")
end

do -- vram (§5.4 vectors)
  local two = { 2, 2, 2, 2, 2, 2 }
  eq(R.vram.estimate({ 40, 56, 40 }, { { 1, 1, 1 }, { 2, 2, 2 }, { 2, 2, 2 }, { 2, 2, 2 } },
    { 32, 64, 128, 256 }, two, two, 3), 19174400, "estimate hippocampus")
  eq(R.vram.estimate({ 128, 128, 128 },
    { { 1, 1, 1 }, { 2, 2, 2 }, { 2, 2, 2 }, { 2, 2, 2 }, { 2, 2, 2 }, { 2, 2, 2 } },
    { 32, 64, 128, 256, 320, 320 }, two, two, 3), 452796416, "estimate liver")
  eq(R.network.features_per_stage(8, 2, cfg), { 32, 64, 128, 256, 512, 512, 512, 512 }, "features 2d")
  eq(R.network.features_per_stage(7, 3, cfg), { 32, 64, 128, 256, 320, 320, 320 }, "features 3d")
end

do -- patch and batch (§5.5, §5.7)
  eq(R.patch.initial_patch({ 1, 1, 1 }, { 36, 50, 35 }, cfg), { 36, 50, 35 }, "initial patch clipped")
  eq(R.patch.initial_patch({ 3.5999999046325684, 0.625, 0.625 }, { 1e9, 1e9, 1e9 }, cfg), { 80, 459, 459 },
    "initial patch prostate (unclipped)")
  eq(R.patch.initial_patch({ 1, 0.767578125, 0.767578125 }, { 482, 512, 512 }, cfg), { 215, 280, 280 },
    "initial patch liver")
  eq(R.patch.initial_patch({ 3.5999999046325684, 0.625, 0.625 }, { 20, 320, 319.5 }, cfg), { 20, 320, 319.5 },
    "initial patch clipped to x.5 median")
  local p = R.patch.plan({ 3.5999999046325684, 0.625, 0.625 }, { 20, 320, 319 }, 3, cfg, R)
  eq(p.patch_size, { 20, 320, 256 }, "prostate reduction: axis 2 by 64")
  eq(p.estimate, 483315200, "prostate estimate after reduction")
  p = R.patch.plan({ 1, 0.767578125, 0.767578125 }, { 482, 512, 512 }, 3, cfg, R)
  eq(p.patch_size, { 128, 128, 128 }, "liver reduction (13 steps)")
  p = R.patch.plan({ 1.6000100374221802, 0.7929689884185791, 0.7929689884185791 }, { 187, 512, 512 }, 2, cfg, R)
  eq(p.patch_size, { 64, 192, 160 }, "spleen reduction (tie -> highest axis)")
  eq(R.batch.reference(3, cfg), 560000000.0, "reference 3d at 8 GB")
  eq(R.batch.reference(2, rules.settings({ gpu_memory_target = 24 })), 255000000.0, "reference 2d at 24 GB")
  eq(R.batch.batch_size(19174400, 560e6, 2, 63000.0 * 260, { 40, 56, 40 }, cfg), 9, "hippocampus bs: 5% cap")
  eq(R.batch.batch_size(19174400, 560e6, 2, 1e12, { 40, 56, 40 }, cfg), 58, "bs round(58.4)")
  eq(R.batch.batch_size(651840, 85e6, 12, 63000.0 * 260, { 56, 40 }, cfg), 366, "hippocampus 2d bs 366")
  eq(R.batch.batch_size(604144000, 560e6, 2, 1e12, { 20, 320, 320 }, cfg), 2, "minimum batch size 2")
end

do -- lowres (§5.6)
  local s = R.lowres.step({ 1.6000100374221802, 0.7929689884185791, 0.7929689884185791 }, cfg)
  eq(s, { 1.6000100374221802, 0.7929689884185791 * 1.03, 0.7929689884185791 * 1.03 },
    "lowres step: only axes with max/s > 2")
  s = R.lowres.step({ 1.0, 0.75, 0.75 }, cfg)
  eq(s, { 1.03, 0.75 * 1.03, 0.75 * 1.03 }, "lowres step: all axes")
  local calls = 0
  local found = R.lowres.search({ 1, 1, 1 }, { 40, 56, 40 }, { 36, 50, 35 }, 260,
    function() calls = calls + 1; return { patch_size = { 8, 8, 8 } } end, cfg)
  check(found == nil and calls == 0, "no lowres when the patch covers the median")
end

do -- batch_dice, resampling, reader
  eq(R.batch_dice.batch_dice("2d", false), true, "batch_dice 2d")
  eq(R.batch_dice.batch_dice("3d_lowres", true), false, "batch_dice 3d_lowres")
  eq(R.batch_dice.batch_dice("3d_fullres", true), true, "batch_dice 3d_fullres with cascade")
  eq(R.batch_dice.batch_dice("3d_fullres", false), false, "batch_dice 3d_fullres without cascade")
  local f = R.resampling.functions(cfg)
  eq(json.encode(f.data.kwargs, { indent = false }),
    '{"is_seg": false, "order": 3, "order_z": 0, "force_separate_z": null}', "resampling data kwargs")
  eq(json.encode(f.seg.kwargs, { indent = false }),
    '{"is_seg": true, "order": 1, "order_z": 0, "force_separate_z": null}', "resampling seg kwargs")
  eq(f.probabilities.kwargs.order, 1, "resampling probabilities order")
  local sepz = {
    { { 1, 1, 1 }, { 4 / 7, 5 / 3, 2 / 3 }, false, nil },
    { { 5, 1, 1 }, { 2.5, 0.5, 0.5 }, true, 1 },
    { { 1, 1, 1 }, { 4, 1, 1 }, true, 1 },
    { { 1, 1, 4 }, { 1, 1, 8 }, true, 3 },
    { { 0.24, 1.25, 1.25 }, { 1, 1, 1 }, false, nil },
    { { 3, 1, 1 }, { 1, 1, 1 }, false, nil },
    { { 3.01, 1, 1 }, { 1, 1, 1 }, true, 1 },
  }
  for i, v in ipairs(sepz) do
    local d, a = R.resampling.separate_z(nil, v[1], v[2], cfg)
    check(d == v[3] and a == v[4], string.format("separate_z case %d: got %s %s", i, tostring(d), tostring(a)))
  end
  eq(R.reader.image_reader_writer({ file_ending = ".nii.gz" }, cfg), "SimpleITKIO", "reader .nii.gz")
  eq(R.reader.image_reader_writer({ file_ending = ".png" }, cfg), "NaturalImage2DIO", "reader .png")
  eq(R.reader.image_reader_writer({ file_ending = ".nii" }, cfg), "NibabelIO", "reader .nii")
  -- a 3-D .tif: NaturalImage2DIO is tried first and cannot open it, Tiff3DIO can
  local asked = {}
  local function can_open(c) asked[#asked + 1] = c; return c == "Tiff3DIO" end
  eq(R.reader.image_reader_writer({ file_ending = ".tif" }, cfg, can_open), "Tiff3DIO", "reader 3-D .tif")
  eq(table.concat(asked, ","), "NaturalImage2DIO,Tiff3DIO", "reader: classes tried in the reference's order")
  eq(R.reader.image_reader_writer({ file_ending = ".nii.gz", overwrite_image_reader_writer = "NibabelIO" }, cfg),
    "NibabelIO", "reader: dataset.json's overwrite_image_reader_writer")
  eq(R.reader.image_reader_writer({ file_ending = ".nii.gz", overwrite_image_reader_writer = "None" }, cfg),
    "SimpleITKIO", "reader: overwrite 'None' means auto")
  local ok, err = pcall(R.reader.image_reader_writer, { file_ending = ".tif" }, cfg, function() return false end)
  check(not ok and tostring(err):find("NaturalImage2DIO, Tiff3DIO can read", 1, true), "reader: none can open: " .. tostring(err))
  ok, err = pcall(R.reader.image_reader_writer, { file_ending = ".jpg" }, cfg)
  check(not ok and tostring(err):find("no image reader/writer for file_ending '.jpg'", 1, true), "reader: unknown ending")
end

do -- json writer
  local nums = {
    { 1.0, "1.0" }, { 1, "1" }, { 1e-05, "1e-05" }, { 2.5000803453253524, "2.5000803453253524" },
    { 0.1, "0.1" }, { 1e16, "1e+16" }, { 1e15, "1000000000000000.0" }, { 0.0001, "0.0001" },
    { 123456789012345680.0, "1.2345678901234568e+17" }, { -0.0, "-0.0" }, { 0 / 0, "NaN" },
    { math.huge, "Infinity" }, { -math.huge, "-Infinity" }, { 5e-324, "5e-324" },
    { 0.30000000000000004, "0.30000000000000004" }, { 3.5999999046325684, "3.5999999046325684" },
    { -1.5e-7, "-1.5e-07" }, { 1.5e300, "1.5e+300" }, { 99.48007202148438, "99.48007202148438" },
    { 9999999999999998.0, "9999999999999998.0" }, { 560000000.0, "560000000.0" },
  }
  for _, t in ipairs(nums) do eq(json.format_number(t[1]), t[2], "format_number " .. t[2]) end
  local o = json.object()
  o.z = 1; o.a = json.array(); o.m = json.object(); o.n = json.null; o.s = 'é"\n\1'
  o.l = { 1.5, { true, false } }
  eq(json.encode(o),
    '{\n    "z": 1,\n    "a": [],\n    "m": {},\n    "n": null,\n    "s": "\\u00e9\\"\\n\\u0001",\n'
    .. '    "l": [\n        1.5,\n        [\n            true,\n            false\n        ]\n    ]\n}',
    "encode: insertion order, indent 4, empty array/object, null, ensure_ascii")
  eq(json.encode({ b = 1, a = 2, B = 3 }, { indent = false }), '{"B": 3, "a": 2, "b": 1}',
    "plain objects: sorted keys")
  eq(json.encode({}), "[]", "empty plain table -> []")
  local v, msg = json.decode_file(ROOT .. "/no/such/file.json")
  check(v == nil and msg ~= nil and msg:find("no/such/file.json", 1, true), "decode_file names a missing file")
  local tmp = os.tmpname()
  local f = assert(io.open(tmp, "w")); f:write("{ not json"); f:close()
  v, msg = json.decode_file(tmp)
  check(v == nil and msg and msg:find(tmp, 1, true) == 1, "decode_file names a malformed file: " .. tostring(msg))
  local ok, err = json.write_file_atomic(tmp, o)
  check(ok == true, "write_file_atomic: " .. tostring(err))
  f = assert(io.open(tmp, "r")); local back = f:read("a"); f:close()
  eq(back, json.encode(o), "write_file_atomic content")
  check(io.open(tmp .. ".tmp", "r") == nil, "write_file_atomic leaves no .tmp")
  os.remove(tmp)
end

---------------------------------------------------------------------------------------------
-- 2. loader: overrides and sandbox
---------------------------------------------------------------------------------------------
local function make_dir()
  local d = os.tmpname()
  os.remove(d)
  assert(os.execute('mkdir -p "' .. d .. '"'), "cannot create " .. d)
  return d
end
local function write(path, text)
  local f = assert(io.open(path, "w")); f:write(text); f:close()
end
local function remove_dir(d, files)
  for _, n in ipairs(files) do os.remove(d .. "/" .. n) end
  os.remove(d)
end

local HIPPO_FP = {
  spacings = { { 1, 1, 1 }, { 1, 1, 1 }, { 1, 1, 1 } },
  shapes_after_crop = { { 36, 50, 35 }, { 36, 50, 35 }, { 36, 50, 35 } },
  median_relative_size_after_cropping = 1.0,
  foreground_intensity_properties_per_channel = {},
}
local HIPPO_DJ = { channel_names = { ["0"] = "MRI" }, numTraining = 260, file_ending = ".nii.gz",
  labels = { background = 0, Anterior = 1, Posterior = 2 } }

do
  local d = make_dir()
  local files = { "spacing.lua", "bad_io.lua", "bad_os.lua", "bad_require.lua", "bad_global.lua", "noname.lua" }
  write(d .. "/spacing.lua", [[
local M = { name = "spacing", version = 99 }
function M.target_spacing(fp, cfg) return { 2.0, 2.0, 2.0 }, {} end
return M
]])
  write(d .. "/bad_io.lua", [[
return { name = "bad_io", version = 1, fn = function() return io.open("/etc/hostname") end }
]])
  write(d .. "/bad_os.lua", "local t = os.time()\nreturn { name = 'bad_os', version = 1 }\n")
  write(d .. "/bad_require.lua", "local x = require('nnunet.json')\nreturn { name = 'bad_require', version = 1 }\n")
  write(d .. "/bad_global.lua", "leak = 1\nreturn { name = 'bad_global', version = 1 }\n")
  write(d .. "/noname.lua", "return 42\n")

  rules.set_user_dir(d)
  local sp = rules.load("spacing")
  eq(sp.version, 99, "user dir overrides spacing.lua")
  eq(rules.path("spacing"), d .. "/spacing.lua", "override path")
  rules.load("topology")
  eq(rules.path("topology"), ROOT .. "/rules/topology.lua", "other rules still shipped (file by file)")
  local plans = planner.plan(HIPPO_FP, HIPPO_DJ, nil, "Dataset999_Test")
  eq(plans.configurations["3d_fullres"].spacing, { 2.0, 2.0, 2.0 }, "planner uses the overriding rule")
  eq(plans.configurations["3d_fullres"].median_image_size_in_voxels, { 18.0, 25.0, 18.0 },
    "median shape follows the overridden spacing (half-even 17.5 -> 18)")

  local bad = rules.load("bad_io")
  raises(bad.fn, "undefined global 'io'", "rule calling io.open fails")
  raises(function() rules.load("bad_os") end, "undefined global 'os'", "rule using os at load fails")
  raises(function() rules.load("bad_require") end, "undefined global 'require'", "rule using require fails")
  raises(function() rules.load("bad_global") end, "assignment to global 'leak'", "rule defining a global fails")
  raises(function() rules.load("noname") end, "must return a table", "rule returning a non-table fails")
  raises(function() rules.load("missing_rule") end, "no rule 'missing_rule'", "missing rule names the search path")
  raises(function() rules.load("../etc") end, "invalid rule name", "rule names are plain identifiers")

  rules.set_user_dir(nil)
  rules.load("spacing")
  eq(rules.path("spacing"), ROOT .. "/rules/spacing.lua", "clearing the user dir restores the shipped rule")
  remove_dir(d, files)
end

do -- sandbox contents
  local d = make_dir()
  write(d .. "/probe.lua", [[
return { name = "probe", version = 1,
  fn = function() return math.random, string.dump, util.round(2.5), util.null, table.concat end }
]])
  rules.set_user_dir(d)
  local rnd, dump, r25, null, concat = rules.load("probe").fn()
  check(rnd == nil and dump == nil, "sandbox has no math.random / string.dump")
  eq(r25, 2, "util is injected into rules")
  check(json.is_null(null), "util.null encodes as null")
  check(concat ~= nil, "table library available")
  raises(function() util.round = nil end, "read%-only", "util is read-only")
  rules.set_user_dir(nil)
  remove_dir(d, { "probe.lua" })
end

---------------------------------------------------------------------------------------------
-- 3. settings overrides
---------------------------------------------------------------------------------------------
do
  local s = rules.settings({ gpu_memory_target = "24" })
  eq(s.gpu_memory_target, 24, "settings: CLI string coerced to number")
  eq(s.base_num_features, 32, "settings: other defaults kept")
  raises(function() rules.settings({ gpu_memory_targt = 24 }) end, "unknown setting", "settings: typo rejected")
  raises(function() rules.settings({ gpu_memory_target = {} }) end, "expected number", "settings: type checked")
  eq(rules.settings({ foo = 1 }, { strict = false }).foo, 1, "settings: non-strict accepts extra keys")

  -- a larger memory target enlarges the patch of a dataset whose patch was memory-bound
  local spacing, median = { 1, 0.767578125, 0.767578125 }, { 482, 512, 512 }
  local function fullres(gb)
    local c = rules.settings({ gpu_memory_target = gb })
    local p = R.patch.plan(spacing, median, 3, c, R)
    return p, c
  end
  local p8 = fullres(8)
  local p24, c24 = fullres(24)
  local p4, c4 = fullres(4)
  local vol = function(p) return util.prod(p.patch_size) end
  check(vol(p24) > vol(p8), "24 GB: larger patch than 8 GB (" .. repr(p24.patch_size) .. ")")
  check(vol(p4) < vol(p8), "4 GB: smaller patch than 8 GB (" .. repr(p4.patch_size) .. ")")
  check(p24.estimate / 2 * 2 <= p24.reference and p24.reference == 1680000000.0, "24 GB: estimate fits its reference")
  check(p4.estimate / 2 * 2 <= p4.reference, "4 GB: estimate fits its reference")
  -- a patch that is not memory-bound gets a larger batch (up to the 5 % cap)
  local small = { 1, 1, 1 }
  local function bs(gb, nvox)
    local c = rules.settings({ gpu_memory_target = gb })
    local p = R.patch.plan(small, { 36, 50, 35 }, 3, c, R)
    return R.batch.batch_size(p.estimate, p.reference, p.ref_bs, nvox, p.patch_size, c)
  end
  eq(bs(8, 1e12), 58, "8 GB uncapped batch")
  eq(bs(16, 1e12), 117, "16 GB uncapped batch = round(116.8)")
  eq(bs(16, 63000.0 * 260), 9, "16 GB batch still capped at 5 % of the dataset")
  local plans = planner.plan(HIPPO_FP, HIPPO_DJ, { gpu_memory_target = 16, max_dataset_covered = 1 }, "X")
  eq(plans.configurations["3d_fullres"].batch_size, 117, "planner passes settings (16 GB, cap 100 %)")
end

---------------------------------------------------------------------------------------------
-- 4. the six MSD datasets against the reference planner
---------------------------------------------------------------------------------------------
local function summary()
  print(string.format("test_rules: %d checks, %d failures", checks, #failures))
  if #failures > 0 then
    error(string.format("test_rules: %d of %d checks failed", #failures, checks), 0)
  end
end

local MSD = ROOT .. "/../shared/reference/msd-plans"
local probe = io.open(MSD .. "/Dataset004_Hippocampus/plans.json", "r")
if probe == nil then
  summary()
  print("SKIP: ../shared not found (" .. MSD .. ")")
  os.exit(77)
end
probe:close()

-- recursive diff; prints one line per mismatching key path
local function diff(got, want, path, out)
  if json.is_null(want) or json.is_null(got) then
    if not (json.is_null(want) and json.is_null(got)) then
      out[#out + 1] = string.format("%s: got %s, want %s", path, repr(got), repr(want))
    end
    return
  end
  if type(want) ~= type(got) then
    out[#out + 1] = string.format("%s: got %s (%s), want %s (%s)", path, repr(got), type(got), repr(want), type(want))
    return
  end
  if type(want) ~= "table" then
    if got ~= want then
      out[#out + 1] = string.format("%s: got %s, want %s", path, repr(got), repr(want))
    end
    return
  end
  local keys, seen = {}, {}
  for k in pairs(want) do keys[#keys + 1] = k; seen[k] = true end
  for k in pairs(got) do if not seen[k] then keys[#keys + 1] = k end end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  for _, k in ipairs(keys) do
    local sub = type(k) == "number" and string.format("%s[%d]", path, k - 1) or (path .. "." .. tostring(k))
    if want[k] == nil then
      out[#out + 1] = string.format("%s: unexpected key (got %s)", sub, repr(got[k]))
    elseif got[k] == nil then
      out[#out + 1] = string.format("%s: missing (want %s)", sub, repr(want[k]))
    else
      diff(got[k], want[k], sub, out)
    end
  end
end

local function read_all(path)
  local f = assert(io.open(path, "rb")); local s = f:read("a"); f:close(); return s
end

local DATASETS = { "Dataset001_BrainTumour", "Dataset002_Heart", "Dataset003_Liver",
  "Dataset004_Hippocampus", "Dataset005_Prostate", "Dataset009_Spleen" }
for _, name in ipairs(DATASETS) do
  local dir = MSD .. "/" .. name
  local fp = assert(json.decode_file(dir .. "/dataset_fingerprint.json"))
  local dj = assert(json.decode_file(dir .. "/dataset.json"))
  local want_text = read_all(dir .. "/plans.json")
  local want = assert(json.decode(want_text))
  local ok, plans = pcall(planner.plan, fp, dj, nil, name)
  if not check(ok, name .. ": planner error: " .. tostring(plans)) then goto continue end
  -- the one extra key (rule files and settings that produced the plans, which the reference's
  -- tools ignore) is checked, then removed: everything else must equal the reference
  check(type(plans.nnunet_rules) == "table" and plans.nnunet_rules.rule_set == "default"
    and plans.nnunet_rules.files.patch.path == "rules/patch.lua",
    name .. ": nnunet_rules records the default rule set and its files")
  plans.nnunet_rules = nil
  do
    local d = {}
    diff(plans, want, name, d)
    for _, line in ipairs(d) do fail(line) end
    checks = checks + 1
    local text = json.encode(plans)
    local same = text == want_text
    if not same and #d == 0 then
      -- same values, different bytes: number types, key order or formatting
      local ln, gi, wi = 1, 1, 1
      local glines, wlines = {}, {}
      for l in (text .. "\n"):gmatch("(.-)\n") do glines[#glines + 1] = l end
      for l in (want_text .. "\n"):gmatch("(.-)\n") do wlines[#wlines + 1] = l end
      while glines[ln] == wlines[ln] and ln <= #glines do ln = ln + 1 end
      fail(string.format("%s: plans.json differs in bytes at line %d: got '%s', want '%s'", name, ln,
        tostring(glines[ln]), tostring(wlines[ln])))
    elseif not same then
      fail(name .. ": plans.json differs in bytes (see the field diffs above)")
    end
    local cfgs = {}
    for _, c in ipairs({ "2d", "3d_lowres", "3d_fullres", "3d_cascade_fullres" }) do
      local c1 = plans.configurations[c]
      if c1 and c1.patch_size then
        cfgs[#cfgs + 1] = string.format("%s %s bs %d", c, repr(c1.patch_size), c1.batch_size)
      elseif c1 then
        cfgs[#cfgs + 1] = c
      end
    end
    print(string.format("%-24s %s  [%s]", name, (#d == 0 and same) and "OK (byte-exact)" or "MISMATCH",
      table.concat(cfgs, "; ")))
  end
  ::continue::
end

---------------------------------------------------------------------------------------------
-- 5. --explain: the trail tells the numbers of §5.7, and explaining changes no plan
---------------------------------------------------------------------------------------------
do
  local function explain(name)
    local dir = MSD .. "/" .. name
    local fp = assert(json.decode_file(dir .. "/dataset_fingerprint.json"))
    local dj = assert(json.decode_file(dir .. "/dataset.json"))
    local plain = planner.plan(fp, dj, nil, name)
    local plans, trace = planner.plan(fp, dj, nil, name, { explain = true })
    eq(json.encode(plans), json.encode(plain), name .. ": --explain leaves the plans unchanged")
    check(select(2, planner.plan(fp, dj, nil, name)) == nil, name .. ": no trail unless asked")
    return table.concat(trace, "\n")
  end
  local function has(text, s, msg) check(text:find(s, 1, true) ~= nil, msg .. ": trail lacks '" .. s .. "'") end
  local t = explain("Dataset004_Hippocampus")
  has(t, "initial patch (256, 256, 256) (256^3 voxels, isotropic in mm) clipped to the median (36, 50, 35) -> (36, 50, 35)",
    "hippocampus initial patch")
  has(t, "patch padded to (40, 56, 40)", "hippocampus padding")
  has(t, "batch: memory allows round(560,000,000 / 19,174,400 x 2) = 58, 5 % cap round(16,380,000 x 0.05 / 89,600) = 9, minimum 2 -> 9",
    "hippocampus batch (§5.7)")
  has(t, "batch: memory allows round(85,000,000 / 651,840 x 12) = 1,565", "hippocampus 2d batch")
  has(t, "-> 366", "hippocampus 2d batch 366")
  has(t, "no cascade", "hippocampus has no cascade")
  t = explain("Dataset009_Spleen")
  has(t, "axis 0 anisotropic: 5/0.792969 = 6.31 > 3 and 90 voxels x 3 < 512 -> target axis 0 = 10th percentile = 1.60001 mm",
    "spleen anisotropy")
  has(t, "shrink x (largest patch/median ratio 0.75) by 64 -> patch (128, 384, 320)", "spleen tie -> highest axis")
  has(t, "19 spacing steps x 1.03", "spleen lowres steps")
  has(t, "cascade kept", "spleen cascade")
  t = explain("Dataset003_Liver")
  has(t, "31 spacing steps x 1.03 give spacing (2.50008, 1.91901, 1.91901), median (193, 205, 205)", "liver lowres")
end

---------------------------------------------------------------------------------------------
-- 6. rule sets: residual-encoder presets (§5.8) and the 2018 paper's rules (§5.9, paper text)
---------------------------------------------------------------------------------------------
local function msd(name)
  local dir = MSD .. "/" .. name
  return assert(json.decode_file(dir .. "/dataset_fingerprint.json")), assert(json.decode_file(dir .. "/dataset.json"))
end

do -- nnUNetPlannerResEncM on Hippocampus and Prostate, values derived by hand from §5.8:
  -- ResidualEncoderUNet, blocks per stage b = (1,3,4,6,...), one decoder conv per stage, feature
  -- maps counted like §5.4 with the residual encoder's stem (F_0|P_0|), two convs per basic
  -- block and one skip projection in the first block of every stage after the first:
  --   E = F_0|P_0| + sum_i (2 b_i + [i>0]) F_i|P_i| + sum_{i<n-1} (1+1) F_i|P_i| + C|P_0|
  -- budget 680e6 (3D) / 135e6 (2D) at 8 GB, patch shrinks while E > budget, no 5 % cap.
  rules.set_rule_set("nnUNetPlannerResEncM")
  local fp, dj = msd("Dataset004_Hippocampus")
  local plans, trace = planner.plan(fp, dj, nil, "Dataset004_Hippocampus", { explain = true })
  local t = table.concat(trace, "\n")
  eq(plans.plans_name, "nnUNetResEncUNetMPlans", "ResEncM plans name")
  eq(plans.experiment_planner_used, "nnUNetPlannerResEncM", "ResEncM planner name")
  local c3 = plans.configurations["3d_fullres"]
  -- Hippocampus 3d: patch (40,56,40) as the default planner (median-bound), |P_i| = 89,600,
  -- 11,200, 1,400, 175 with F = 32,64,128,256:
  --   stem 32*89,600 = 2,867,200; stages 2*32*89,600 = 5,734,400, 7*64*11,200 = 5,017,600,
  --   9*128*1,400 = 1,612,800, 13*256*175 = 582,400; decoder 2*(2,867,200+716,800+179,200)
  --   = 7,526,400; output 3*89,600 = 268,800; E = 23,609,600.
  --   batch round(680e6/23,609,600*2) = round(57.60) = 58; cap round(63,000*260/89,600) =
  --   round(182.8) = 183 -> 58 (the default planner's 5 % cap would give 9).
  eq(c3.patch_size, { 40, 56, 40 }, "ResEncM hippocampus 3d patch")
  check(t:find("estimate 23,609,600", 1, true) ~= nil, "ResEncM hippocampus 3d estimate 23,609,600")
  eq(c3.batch_size, 58, "ResEncM hippocampus 3d batch (no 5 % cap)")
  eq(c3.data_identifier, "nnUNetPlans_3d_fullres", "ResEncM reuses nnUNetPlans' 3d_fullres data")
  eq(c3.architecture.network_class_name, "dynamic_network_architectures.architectures.unet.ResidualEncoderUNet",
    "ResEncM network class")
  eq(c3.architecture.arch_kwargs.n_blocks_per_stage, { 1, 3, 4, 6 }, "ResEncM blocks per stage")
  eq(c3.architecture.arch_kwargs.n_conv_per_stage_decoder, { 1, 1, 1 }, "ResEncM decoder convs")
  check(c3.architecture.arch_kwargs.n_conv_per_stage == nil, "ResEncM has no n_conv_per_stage")
  eq(json.encode(c3.architecture.arch_kwargs, { indent = false }):match('^{"n_stages": 4, "features_per_stage": %[32, 64, 128, 256%], '
    .. '"conv_op": "torch.nn.modules.conv.Conv3d", "kernel_sizes": [^}]-"strides": [^}]-"n_blocks_per_stage": %[1, 3, 4, 6%], '
    .. '"n_conv_per_stage_decoder": %[1, 1, 1%], "conv_bias": true') ~= nil, true, "ResEncM arch_kwargs key order")
  -- Hippocampus 2d: patch (56,40), |P_i| = 2,240, 560, 140, 35: stem 71,680; stages 143,360,
  -- 250,880, 161,280, 116,480; decoder 2*(71,680+35,840+17,920) = 250,880; output 6,720;
  -- E = 1,001,280; batch round(135e6/1,001,280*12) = round(1617.9) = 1618 (cap round(7312.5) = 7312).
  eq(plans.configurations["2d"].patch_size, { 56, 40 }, "ResEncM hippocampus 2d patch")
  eq(plans.configurations["2d"].batch_size, 1618, "ResEncM hippocampus 2d batch")
  check(t:find("estimate 1,001,280", 1, true) ~= nil, "ResEncM hippocampus 2d estimate 1,001,280")
  eq(plans.nnunet_rules.rule_set, "nnUNetPlannerResEncM", "nnunet_rules names the set")
  eq(plans.nnunet_rules.files.preset.path, "rules/sets/nnUNetPlannerResEncM/preset.lua", "nnunet_rules lists the preset")
  eq(plans.nnunet_rules.settings.max_dataset_covered, 1, "nnunet_rules lists the preset's settings")

  -- Prostate 3d (spacing (3.6,0.625,0.625), median (20,320,319)): padded (20,320,320), 7 stages,
  -- |P_i| = 2,048,000, 512,000, 128,000, 16,000, 2,000, 500, 125, F = 32,64,128,256,320,320,320:
  --   stem 65,536,000; stages 131,072,000, 229,376,000, 147,456,000, 53,248,000, 8,320,000,
  --   2,080,000, 520,000; decoder 2*119,584,000 = 239,168,000; output 6,144,000;
  --   E = 882,920,000 > 680e6 -> axis x (320/319 largest) -64 -> (20,320,256), E * 0.8 =
  --   706,336,000 > 680e6 -> ratios z = y = 1 tie -> y -64 -> (20,256,256), E * 0.64 =
  --   565,068,800 fits; batch round(680e6/565,068,800*2) = round(2.41) = 2.
  fp, dj = msd("Dataset005_Prostate")
  plans, trace = planner.plan(fp, dj, nil, "Dataset005_Prostate", { explain = true })
  t = table.concat(trace, "\n")
  check(t:find("estimate 882,920,000", 1, true) ~= nil, "ResEncM prostate initial estimate 882,920,000")
  check(t:find("-> patch (20, 320, 256), estimate 706,336,000", 1, true) ~= nil, "ResEncM prostate first reduction")
  check(t:find("-> patch (20, 256, 256), estimate 565,068,800", 1, true) ~= nil, "ResEncM prostate second reduction")
  eq(plans.configurations["3d_fullres"].patch_size, { 20, 256, 256 }, "ResEncM prostate 3d patch")
  eq(plans.configurations["3d_fullres"].batch_size, 2, "ResEncM prostate 3d batch")
  -- Prostate 2d: (320,320), 7 stages, F = 32..256,512,512,512: E = 50,598,400,
  -- batch round(135e6/50,598,400*12) = round(32.02) = 32
  check(t:find("estimate 50,598,400", 1, true) ~= nil, "ResEncM prostate 2d estimate 50,598,400")
  eq(plans.configurations["2d"].batch_size, 32, "ResEncM prostate 2d batch")

  -- L and XL: 24 / 40 GB presets with their own budgets (2.1e9 / 3.6e9 at 24 / 40 GB)
  rules.set_rule_set("nnUNetPlannerResEncL")
  local c = rules.settings()
  eq({ c.gpu_memory_target, c.reference_val_3d, c.reference_val_2d, c.plans_name },
    { 24, 2100000000, 380000000, "nnUNetResEncUNetLPlans" }, "ResEncL preset")
  eq(R.batch.reference(3, c), 2100000000.0, "ResEncL 3d budget at 24 GB")
  rules.set_rule_set("nnUNetPlannerResEncXL")
  c = rules.settings()
  eq({ c.gpu_memory_target, c.reference_val_3d, c.reference_val_2d, c.plans_name },
    { 40, 3600000000, 560000000, "nnUNetResEncUNetXLPlans" }, "ResEncXL preset")
  -- a command-line setting still wins over the preset
  eq(rules.settings({ gpu_memory_target = 80 }).gpu_memory_target, 80, "command line over preset")
  rules.set_rule_set(nil)
  raises(function() rules.set_rule_set("NoSuchPlanner") end, "no rule set 'NoSuchPlanner'", "unknown rule set")
end

do -- 2018 set. Hippocampus by hand (§5.9 [v1-orig] where the paper is silent):
  -- spacing (1,1,1) = plain median; initial patch 1/s normalised, smallest edge 512 ->
  -- (512,512,512), clipped to the median (36,50,35); pool late: floor(log2(36/4, 50/4, 35/4))
  -- = 3 pools per axis -> divisor 8 -> (40,56,40); features 30,60,120,240;
  -- v1 estimate with 1 input channel, 3 classes: 5*89,600*30 + 89,600 + 3*89,600 =
  -- 13,798,400; + 5*11,200*60 = 3,360,000; + 5*1,400*120 = 840,000; + 2*175*240 = 84,000
  -- -> 18,082,400 <= 520e6 (12 GB); batch floor(520e6/18,082,400*2) = floor(57.5) = 57,
  -- cap max(round(0.05*16,380,000/89,600) = 9, 2) -> 9. The median is 0.70 patches (< 4) ->
  -- no cascade.
  rules.set_rule_set("2018")
  local fp, dj = msd("Dataset004_Hippocampus")
  local plans, trace = planner.plan(fp, dj, nil, "Dataset004_Hippocampus", { explain = true })
  local t = table.concat(trace, "\n")
  local c3 = plans.configurations["3d_fullres"]
  eq(plans.plans_name, "nnUNetPlans2018", "2018 plans name")
  eq(c3.architecture.arch_kwargs.features_per_stage, { 30, 60, 120, 240 }, "2018: 30 base features")
  eq(c3.patch_size, { 40, 56, 40 }, "2018 hippocampus patch")
  check(t:find("estimate 18,082,400", 1, true) ~= nil, "2018 hippocampus v1 estimate 18,082,400")
  check(t:find("floor(520,000,000 / 18,082,400 x 2) = 57", 1, true) ~= nil, "2018 hippocampus memory batch 57")
  eq(c3.batch_size, 9, "2018 hippocampus batch (5 % cap)")
  check(plans.configurations["3d_lowres"] == nil, "2018 hippocampus: no cascade")
  eq(plans.nnunet_training.optimizer, "Adam", "2018: Adam recorded for the trainer")
  eq(plans.nnunet_training.initial_lr, 3e-4, "2018: lr 3e-4")
  eq(plans.nnunet_training.weight_decay, 3e-5, "2018: weight decay 3e-5")
  eq(plans.nnunet_training.num_iterations_per_epoch, 250, "2018: 250 iterations per epoch")
  check(json.encode(plans):find('"nnunet_training": {', 1, true) ~= nil, "2018: nnunet_training written")

  -- pool late on an anisotropic patch: spacing (3,1,1), patch (20,160,160): pools
  -- floor(log2(5)) = 2, floor(log2(40)) = 5 -> z pooled only in the last 2 of 5 steps;
  -- kernels: step 0 spacing (3,1,1)/3 -> only z "reached" (> 0.5) -> (1,3,3); after one
  -- in-plane pool (3,2,2)/3 = (1, 0.67, 0.67) all reached -> 3 everywhere
  local top = rules.load("topology").pool_and_conv_props({ 3, 1, 1 }, { 20, 160, 160 }, 4, 999)
  eq(top.strides, { { 1, 1, 1 }, { 1, 2, 2 }, { 1, 2, 2 }, { 1, 2, 2 }, { 2, 2, 2 }, { 2, 2, 2 } }, "2018 pool late strides")
  eq(top.kernel_sizes, { { 1, 3, 3 }, { 3, 3, 3 }, { 3, 3, 3 }, { 3, 3, 3 }, { 3, 3, 3 }, { 3, 3, 3 } }, "2018 pool late kernels")
  eq(top.patch_size, { 20, 160, 160 }, "2018 pool late padding (divisor 4, 32, 32)")

  -- cascade trigger: median 128^3 = 2,097,152 voxels, patch fixed at 64^3 = 262,144 (8 patches
  -- >= 4): spacing x1.01 per step until (128/s)^3 <= 4*262,144 = 1,048,576, i.e. s >= 1.25992:
  -- 1.01^23 = 1.25716 (1,055,480 voxels, go on), 1.01^24 = 1.26973 -> 24 steps, median
  -- round(100.81) = 101 per axis; kept since 2*101^3 = 2,060,602 < 2,097,152.
  local cfg18 = rules.settings()
  local low = rules.load("lowres")
  local found = low.search({ 1, 1, 1 }, { 64, 64, 64 }, { 128, 128, 128 }, 10,
    function() return { patch_size = { 64, 64, 64 } } end, cfg18)
  check(found ~= nil, "2018 cascade created at 8 patches per median image")
  if found then
    eq(found.steps, 24, "2018 cascade: 24 steps of x1.01")
    eq(found.median, { 101, 101, 101 }, "2018 cascade median")
  end
  -- the default rule on the same inputs: x1.03 until the patch covers >= 25 % -> 8 steps
  local def_found = R.lowres.search({ 1, 1, 1 }, { 64, 64, 64 }, { 128, 128, 128 }, 10,
    function() return { patch_size = { 64, 64, 64 } } end, cfg)
  eq(def_found and def_found.steps, 8, "default cascade on the same inputs: 8 steps of x1.03")
  -- 3.8 patches per median image (< 4): no cascade in 2018
  check(low.search({ 1, 1, 1 }, { 82, 82, 82 }, { 128, 128, 128 }, 10, function() error("not called") end, cfg18) == nil,
    "2018: no cascade below 4 patches per median image")

  -- a user folder on top of a set: only spacing.lua replaced, everything else from the set
  local d = make_dir()
  write(d .. "/spacing.lua", [[
local M = { name = "spacing", version = 7 }
function M.target_spacing(fp, cfg) return { 2.0, 2.0, 2.0 }, {} end
return M
]])
  rules.set_user_dir(d)
  plans = planner.plan(fp, dj, nil, "Dataset004_Hippocampus")
  eq(plans.configurations["3d_fullres"].spacing, { 2.0, 2.0, 2.0 }, "user spacing.lua on top of the 2018 set")
  eq(plans.configurations["3d_fullres"].architecture.arch_kwargs.features_per_stage[1], 30, "rest still from the 2018 set")
  eq(plans.nnunet_rules.files.spacing.path, d .. "/spacing.lua", "nnunet_rules: user file path")
  eq(plans.nnunet_rules.files.topology.path, "rules/sets/2018/topology.lua", "nnunet_rules: set file path")
  eq(plans.nnunet_rules.files.shape.path, "rules/shape.lua", "nnunet_rules: shipped file path")
  rules.set_user_dir(nil)
  rules.set_rule_set(nil)
  remove_dir(d, { "spacing.lua" })
end

summary()
