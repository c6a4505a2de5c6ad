-- nnunet ensemble (nnUNetv2_ensemble, nnunet-behaviour.md §11) on hand-made
-- probabilities: the float32 mean, argmax with ties to the lowest class, regions in
-- regions_class_order, the output geometry taken from the first folder's CASE.json,
-- --save_npz, and clear errors for folders that do not match.
local ok_nifti, nifti = pcall(require, "nnunet.image")
if not ok_nifti then
  print("SKIP: the NIfTI module nnunet.image is not built yet")
  os.exit(77)
end
local tensor = require("nnunet.tensor")
local fs = require("nnunet.fs")
local sys = require("nnunet.sys")
local json = require("nnunet.json")
local prob = require("nnunet.probabilities")
local ops = require("nnunet.ensemble_ops")
local ens = require("nnunet.ensemble")
local ms = require("nnunet.model_selection")

local TL = dofile("tests/lua/testlib.lua")
local check = TL.check_msg

local function run(argstr) return TL.run_host(argstr) end

local function f32(x) return (string.unpack("<f", string.pack("<f", x))) end
local function flat(t) return table.concat(t:totable(), ",") end

local tmp = os.tmpname()
os.remove(tmp)
local root = tmp .. "_ens"
assert(fs.mkdir(root))

-- 1. the C ops on tensors ---------------------------------------------------------
do
  -- argmax: lowest index on ties, a NaN wins (numpy)
  local p = tensor.from_table({ 0.5, 0.2, 0 / 0, 0.1,
                                0.5, 0.7, 0.9, 0.1,
                                0.0, 0.1, 1.0, 0.8 }, { 3, 4 }, "f32")
  local s = ops.argmax(p)
  check(s:dtype() == "u8" and flat(s) == "0,1,0,2", "argmax ties/NaN: " .. flat(s))
  -- a strided (non-contiguous) f64 input gives the same result
  local q = tensor.from_table({ 0.1, 0.3, 0.9, 0.2, 0.5, 0.1 }, { 3, 2 }, "f64")
  check(flat(ops.argmax(q:permute({ 2, 1 }):contiguous():permute({ 2, 1 }))) == "1,0", "argmax of a strided f64 view")
  -- regions: later regions overwrite earlier ones; p > 0.5 strictly
  local r = tensor.from_table({ 0.6, 0.4, 0.9, 0.5,
                                0.2, 0.7, 0.6, 0.2 }, { 2, 4 }, "f32")
  check(flat(ops.regions(r, { 1, 2 })) == "1,2,2,0", "regions: " .. flat(ops.regions(r, { 1, 2 })))
  check(ops.regions(r, { 1, 300 }):dtype() == "u16", "regions with a label >= 256 stored as u16")
  -- add / divide in float32
  local acc = tensor.from_table({ 0.1, 0.2 }, { 2 }, "f32")
  ops.add(acc, tensor.from_table({ 0.7, 0.3 }, { 2 }, "f64"))
  ops.divide(acc, 3)
  local e1 = f32(f32(f32(0.1) + f32(0.7)) / 3)
  local e2 = f32(f32(f32(0.2) + f32(0.3)) / 3)
  check(acc:get(1) == e1 and acc:get(2) == e2, "add/divide are float32 operations")
  local okc = pcall(ops.add, acc, tensor.zeros({ 3 }, "f32"))
  check(not okc, "add with a shape mismatch raises")
end

-- 2. hand-made probabilities in three folders ---------------------------------------
-- shape (3 classes, 1, 2, 3); class-major values
local P1 = { 0.5, 0.25, 0.0, 0.75, 0.125, 0.25,
             0.25, 0.5, 0.5, 0.125, 0.75, 0.25,
             0.25, 0.25, 0.5, 0.125, 0.125, 0.5 }
local P2 = { 0.5, 0.75, 0.0, 0.0, 0.125, 0.0,
             0.0, 0.25, 0.25, 0.5, 0.125, 0.0,
             0.5, 0.0, 0.75, 0.5, 0.75, 1.0 }
-- mean: c0 .5 .5 0 .375 .125 .125 | c1 .125 .375 .375 .3125 .4375 .125 | c2 .375 .125 .625 .3125 .4375 .75
-- argmax: 0 (0.5 > 0.375), 0, 2, 0 (0.375 > 0.3125), 1 (tie c1 = c2 -> lowest), 2
local EXPECTED = "0,0,2,0,1,2"
local P3 = { 0.1, 0.2, 0.3, 0.4, 0.5, 0.6,
             0.7, 0.1, 0.3, 0.1, 0.2, 0.3,
             0.2, 0.7, 0.4, 0.5, 0.3, 0.1 }
local geom1 = { spacing = { 0.5, 0.75, 2.0 }, origin = { 10.0, -20.0, 30.0 },
                direction = { 1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0 } }
local geom2 = { spacing = { 1.0, 1.0, 1.0 }, origin = { 0.0, 0.0, 0.0 },
                direction = { 1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0 } }
local function props(g)
  return { spacing = { g.spacing[3], g.spacing[2], g.spacing[1] }, shape_before_cropping = { 1, 2, 3 },
           bbox_used_for_cropping = { { 0, 1 }, { 0, 2 }, { 0, 3 } },
           shape_after_cropping_and_before_resampling = { 1, 2, 3 }, sitk_stuff = g }
end
local DJ = '{"channel_names": {"0": "CT"}, "labels": {"background": 0, "a": 1, "b": 2}, '
  .. '"numTraining": 2, "file_ending": ".nii.gz"}'
local function make_folder(name, values, g, cases)
  local d = root .. "/" .. name
  assert(fs.mkdir(d))
  for _, c in ipairs(cases) do
    assert(prob.save(d .. "/" .. c, tensor.from_table(values, { 3, 1, 2, 3 }, "f32"), props(g)))
  end
  local f = assert(io.open(d .. "/dataset.json", "w"))
  f:write(DJ)
  f:close()
  return d
end
local F1 = make_folder("f1", P1, geom1, { "case_a", "case_b" })
local F2 = make_folder("f2", P2, geom2, { "case_a", "case_b" })
local F3 = make_folder("f3", P3, geom2, { "case_a", "case_b" })
local FMISS = make_folder("fmiss", P2, geom2, { "case_a" })

local out1 = root .. "/out1"
local o, rc = run(string.format("ensemble -i %q %q -o %q --save_npz -np 2", F1, F2, out1))
check(rc == 0, "ensemble exit code " .. tostring(rc) .. ": " .. o)
for _, c in ipairs({ "case_a", "case_b" }) do
  local seg, info = nifti.read(out1 .. "/" .. c .. ".nii.gz")
  check(seg ~= nil, c .. ": segmentation written")
  if seg then
    check(flat(seg) == EXPECTED, c .. ": mean + argmax = " .. flat(seg) .. ", expected " .. EXPECTED)
    check(seg:dtype() == "u8", c .. ": stored as u8")
    check(table.concat(info.shape, ",") == "1,2,3", c .. ": shape (1, 2, 3)")
    check(info.spacing_itk[1] == 0.5 and info.spacing_itk[2] == 0.75 and info.spacing_itk[3] == 2.0,
      c .. ": spacing of the first folder's properties")
    check(info.origin[1] == 10 and info.origin[2] == -20 and info.origin[3] == 30, c .. ": origin")
    check(info.direction[1] == 1 and info.direction[5] == -1 and info.direction[9] == 1, c .. ": direction")
  end
  local mean, p = prob.load(out1 .. "/" .. c)
  check(mean ~= nil, c .. ": --save_npz writes the mean probabilities")
  if mean then
    local want = {}
    for i = 1, #P1 do want[i] = f32(f32(f32(P1[i]) + f32(P2[i])) / 2) end
    check(flat(mean) == table.concat(want, ","), c .. ": npz holds the float32 mean")
    check(p.sitk_stuff.origin[2] == -20, c .. ": properties of the first folder saved with it")
  end
end
check(fs.isfile(out1 .. "/dataset.json"), "dataset.json copied to the output")

-- the worker pool (ops.merge_cases) writes the bytes of the one-case-at-a-time Lua
-- path (ens.merge_files: mean_npz, to_segmentation, nifti.write, prob.save), with 1 and
-- 2 threads, with and without --save_npz
local seq = root .. "/out_seq"
assert(fs.mkdir(seq))
do
  local lc = ens.label_converter(F1 .. "/dataset.json")
  for _, c in ipairs({ "case_a", "case_b" }) do
    ens.merge_files({ F1 .. "/" .. c .. ".npz", F2 .. "/" .. c .. ".npz" }, seq .. "/" .. c, lc, true)
  end
end
for _, np in ipairs({ 1, 2 }) do
  for _, save in ipairs({ false, true }) do
    local outp = root .. "/out_pool" .. np .. (save and "_npz" or "")
    o, rc = run(string.format("ensemble -i %q %q -o %q -np %d%s", F1, F2, outp, np, save and " --save_npz" or ""))
    check(rc == 0, "ensemble -np " .. np .. " exit code " .. tostring(rc) .. ": " .. o)
    for _, c in ipairs({ "case_a", "case_b" }) do
      local exts = save and { ".nii.gz", ".npz", ".json" } or { ".nii.gz" }
      for _, ext in ipairs(exts) do
        local a, b = TL.read(seq .. "/" .. c .. ext), TL.read(outp .. "/" .. c .. ext)
        check(a and b and a == b, c .. ext .. ": -np " .. np .. " writes the sequential path's bytes")
      end
    end
    check(save or not fs.exists(outp .. "/case_a.npz"), "-np " .. np .. ": no probabilities without --save_npz")
  end
end

-- three folders: ((p1 + p2) + p3) / 3 in float32, as numpy
local out3 = root .. "/out3"
ens.ensemble_folders({ F1, F2, F3 }, out3, { save_npz = true })
do
  local mean = prob.load(out3 .. "/case_a", false)
  local want, seg_want = {}, {}
  for i = 1, #P1 do want[i] = f32(f32(f32(f32(P1[i]) + f32(P2[i])) + f32(P3[i])) / 3) end
  check(mean and flat(mean) == table.concat(want, ","), "mean of three folders in float32")
  for v = 1, 6 do
    local best, bv = 0, want[v]
    for c = 1, 2 do if want[c * 6 + v] > bv then bv = want[c * 6 + v]; best = c end end
    seg_want[v] = best
  end
  local seg = nifti.read(out3 .. "/case_a.nii.gz")
  check(seg and flat(seg) == table.concat(seg_want, ","), "argmax of the three-folder mean")
end

-- 3. errors name the folder / file ----------------------------------------------------
o, rc = run(string.format("ensemble -i %q %q -o %q", F1, FMISS, root .. "/out_bad"))
check(rc ~= 0, "a folder lacking a case is an error")
check(o:find(FMISS, 1, true) and o:find("case_b.npz", 1, true), "the error names the folder and the case: " .. o)
do
  local FSHAPE = root .. "/fshape"
  assert(fs.mkdir(FSHAPE))
  for _, c in ipairs({ "case_a", "case_b" }) do
    assert(prob.save(FSHAPE .. "/" .. c, tensor.zeros({ 3, 1, 3, 3 }, "f32"), props(geom2)))
  end
  o, rc = run(string.format("ensemble -i %q %q -o %q", F1, FSHAPE, root .. "/out_shape"))
  check(rc ~= 0 and o:find(FSHAPE, 1, true) and o:find("shape mismatch", 1, true),
    "mismatched shapes name the file: " .. o)
  local none, msg = ops.mean_npz({ F1 .. "/case_a.npz", root .. "/absent.npz" })
  check(none == nil and msg:find("absent.npz", 1, true), "unreadable file is nil, msg: " .. tostring(msg))
end
do
  local FNOPROPS = root .. "/fnoprops"
  assert(fs.mkdir(FNOPROPS))
  assert(prob.save(FNOPROPS .. "/case_a", tensor.zeros({ 3, 1, 2, 3 }, "f32"), { spacing = { 1, 1, 1 } }))
  local f = assert(io.open(FNOPROPS .. "/dataset.json", "w")); f:write(DJ); f:close()
  local okp, err = pcall(ens.ensemble_folders, { FNOPROPS }, root .. "/out_np")
  check(not okp and type(err) == "table" and err.message:find("sitk_stuff", 1, true)
    and err.message:find(FNOPROPS, 1, true), "properties without geometry: " .. tostring(err and err.message))
end

-- properties carrying the input's raw NIfTI header: that header's geometry is used
do
  local FHDR = root .. "/fhdr"
  assert(fs.mkdir(FHDR))
  local img = root .. "/img.nii.gz"
  assert(nifti.write(img, tensor.zeros({ 1, 2, 3 }, "f32"), { spacing_itk = { 0.5, 0.75, 2.0 },
    origin = { 10.0, -20.0, 30.0 }, direction = { 1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0 } }))
  local hdr = assert(nifti.read_header(img))
  local pr = props(geom2)
  pr.nifti = hdr
  assert(prob.save(FHDR .. "/case_a", tensor.from_table(P1, { 3, 1, 2, 3 }, "f32"), pr))
  local f = assert(io.open(FHDR .. "/dataset.json", "w")); f:write(DJ); f:close()
  ens.ensemble_folders({ FHDR }, root .. "/out_hdr")
  local seg, info = nifti.read(root .. "/out_hdr/case_a.nii.gz")
  check(seg and info.origin[1] == 10 and info.origin[2] == -20 and info.spacing_itk[3] == 2.0
    and info.direction[5] == -1, "geometry from the properties' NIfTI header")
end

-- 4. region datasets: regions_class_order ---------------------------------------------
do
  local lc = ens.label_converter({ labels = { background = 0, whole = { 1, 2 }, core = 2 },
    regions_class_order = { 1, 2 }, file_ending = ".nii.gz" })
  local r = tensor.from_table({ 0.6, 0.4, 0.9, 0.2, 0.7, 0.6 }, { 2, 1, 1, 3 }, "f32")
  check(lc.has_regions and flat(lc.to_segmentation(r)) == "1,2,2", "regions via dataset.json")
  local okr = pcall(ens.label_converter, { labels = { background = 0, whole = { 1, 2 }, core = 2 },
    file_ending = ".nii.gz" })
  check(not okr, "a region dataset without regions_class_order is an error")
  local lc2 = ens.label_converter(DJ and json.decode(DJ))
  local okk, kerr = pcall(lc2.to_segmentation, tensor.zeros({ 2, 1, 1, 3 }, "f32"))
  check(not okk and kerr.message:find("2 channels", 1, true), "channel count checked against the labels")
end

-- 5. merge_cases directly: regions, channel count, a missing file ----------------------
do
  local RD = root .. "/fregions"
  assert(fs.mkdir(RD))
  local R = { 0.6, 0.4, 0.9, 0.2, 0.7, 0.6 }          -- (2 regions, 1, 1, 3)
  assert(prob.save(RD .. "/case_r", tensor.from_table(R, { 2, 1, 1, 3 }, "f32"), props(geom1)))
  local lc = ens.label_converter({ labels = { background = 0, whole = { 1, 2 }, core = 2 },
    regions_class_order = { 1, 2 }, file_ending = ".nii.gz" })
  ens.merge_many({ { files = { RD .. "/case_r.npz" }, output_truncated = root .. "/reg_out" } }, lc,
    { num_processes = 2 })
  local seg = nifti.read(root .. "/reg_out.nii.gz")
  check(seg and flat(seg) == "1,2,2", "regions through the pool: " .. (seg and flat(seg) or "nil"))
  local cases = { { files = { RD .. "/case_r.npz" }, output = root .. "/bad.nii.gz",
                    geometry = { spacing_itk = { 1, 1, 1 }, origin = { 0, 0, 0 }, direction = { 1, 0, 0, 0, 1, 0, 0, 0, 1 } } } }
  local okc, cerr = ops.merge_cases(cases, { channels = 3, threads = 2 })
  check(okc == nil and cerr:find("2 channels", 1, true) and cerr:find("case_r.npz", 1, true),
    "channel mismatch names the file: " .. tostring(cerr))
  check(cases[1].__paths == nil, "merge_cases leaves the caller's tables as they were")
  cases[1].files = { RD .. "/absent.npz" }
  local okm, merr = ops.merge_cases(cases, { channels = 2 })
  check(okm == nil and merr:find("absent.npz", 1, true), "missing file named: " .. tostring(merr))
  check(not fs.exists(root .. "/bad.nii.gz"), "nothing written for failed cases")
end

ms.rmtree(root)
check(not fs.exists(root), "temporary folder removed")
if TL.failures > 0 then
  io.stderr:write(TL.failures .. " checks failed\n")
  os.exit(1)
end
print("test_ensemble: all checks passed")
