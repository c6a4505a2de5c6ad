-- apply_postprocessing end to end: the L.6 volume of nnunet-behaviour.md written as
-- a NIfTI with a non-trivial geometry, postprocessing.json steps applied by
-- `nnunet apply_postprocessing`, output compared with the L.6 rows, geometry and
-- dataset.json carried over; plus nnunet.postprocessing on tensors directly and
-- `nnunet evaluate_simple`.
local ok_nifti, nifti = pcall(require, "nnunet.image")
if not ok_nifti then
  print("SKIP: the NIfTI module nnunet.image is not built yet")
  os.exit(77)
end
local tensor = require("nnunet.tensor")
local fs = require("nnunet.fs")
local sys = require("nnunet.sys")
local json = require("nnunet.json")
local pp = require("nnunet.postprocessing")

local TL = dofile("tests/lua/testlib.lua")
local check = TL.check_msg

local function parse(s, shape)
  local v = {}
  for c in s:gmatch("%d") do v[#v + 1] = tonumber(c) end
  return tensor.from_table(v, shape or { 3, 6, 6 }, "u8")
end
local function flat(t) return table.concat(t:totable(), "") end
local function digits(s) return (s:gsub("[^%d]", "")) end

local function run(argstr) return TL.run_host(argstr) end

local L6 = "110000/110000/000002/000002/000000/100000 ; 000000/000000/001100/001000/000001/000011 ; "
  .. "002200/000000/000000/000000/000011/000011"
local ROW1 = "110000/110000/000002/000002/000000/000000 ; 000000/000000/001100/001000/000001/000011 ; "
  .. "002200/000000/000000/000000/000011/000011"
local ROW_FG = "000000/000000/000002/000002/000000/000000 ; 000000/000000/000000/000000/000001/000011 ; "
  .. "000000/000000/000000/000000/000011/000011"

-- 1. on tensors
local t = parse(L6)
check(pp.apply(t, { { labels_or_regions = 1 } }) == 1 and flat(t) == digits(ROW1), "label 1 step")
t = parse(L6)
pp.apply(t, { { labels_or_regions = { 1, 2 } } })
check(flat(t) == digits(ROW_FG), "foreground as one")
t = parse(L6)
pp.apply(t, { { labels_or_regions = { { 1, 2 } } } })      -- a list holding one region
check(flat(t) == digits(ROW_FG), "region (1, 2)")
t = parse(L6)
check(pp.apply(t, { { labels_or_regions = 2 } }) == 0 and flat(t) == digits(L6), "label 2: tie, unchanged")

-- 2. the recipe on a folder
local tmp = os.tmpname()
os.remove(tmp)
local root = tmp .. "_pp"
local inp, out = root .. "/in", root .. "/out"
assert(fs.mkdir(root)); assert(fs.mkdir(inp))
local geom = { spacing_itk = { 0.5, 0.75, 2.0 }, origin = { 10, -20, 30 }, direction = { 1, 0, 0, 0, -1, 0, 0, 0, 1 } }
assert(nifti.write(inp .. "/case_1.nii.gz", parse(L6), geom))
assert(nifti.write(inp .. "/case_2.nii.gz", parse(ROW1), geom))
local f = assert(io.open(inp .. "/dataset.json", "w"))
f:write('{"labels": {"background": 0, "a": 1, "b": 2}, "file_ending": ".nii.gz", "channel_names": {"0": "x"}, "numTraining": 2}')
f:close()
local ppfile = root .. "/postprocessing.json"
assert(json.write_file_atomic(ppfile, pp.to_json({ { labels_or_regions = { 1, 2 } }, { labels_or_regions = 1 } },
  { input_folder = { foreground_mean = 0.5 } })))
local o, rc = run(string.format("apply_postprocessing -i %q -o %q -pp_pkl_file %q", inp, out, root .. "/postprocessing.pkl"))
check(rc == 0, "apply_postprocessing exit code " .. tostring(rc) .. ": " .. o)
for _, name in ipairs({ "case_1.nii.gz", "case_2.nii.gz" }) do
  local seg, info = nifti.read(out .. "/" .. name)
  check(seg ~= nil, "output " .. name .. " written")
  if seg then
    check(flat(seg) == digits(ROW_FG), name .. ": foreground step then label step")
    check(seg:dtype() == "u8", name .. ": stored as u8")
    check(info.spacing_itk[1] == 0.5 and info.spacing_itk[3] == 2.0 and info.origin[2] == -20 and info.direction[5] == -1,
      name .. ": geometry kept")
  end
end
check(fs.isfile(out .. "/dataset.json"), "dataset.json copied")

-- the worker pool writes the bytes of reading, pp.apply and writing in Lua, for any -np
local steps2 = { { labels_or_regions = { 1, 2 } }, { labels_or_regions = 1 } }
for _, name in ipairs({ "case_1.nii.gz", "case_2.nii.gz" }) do
  local seg, info = nifti.read(inp .. "/" .. name)
  pp.apply(seg, steps2)
  assert(nifti.write(root .. "/by_hand_" .. name, seg, info, { segmentation = true }))
end
for _, np in ipairs({ 1, 2 }) do
  local outp = root .. "/out_np" .. np
  o, rc = run(string.format("apply_postprocessing -i %q -o %q -pp_pkl_file %q -np %d", inp, outp, ppfile, np))
  check(rc == 0, "-np " .. np .. " exit code " .. tostring(rc) .. ": " .. o)
  for _, name in ipairs({ "case_1.nii.gz", "case_2.nii.gz" }) do
    local a, b = TL.read(root .. "/by_hand_" .. name), TL.read(outp .. "/" .. name)
    check(a and b and a == b, name .. ": -np " .. np .. " writes the one-file-at-a-time bytes")
  end
end
do   -- a truncated input names the file
  local bad = root .. "/bad_in"
  assert(fs.mkdir(bad))
  local whole = TL.read(inp .. "/case_1.nii.gz")
  local fh = assert(io.open(bad .. "/case_9.nii.gz", "wb")); fh:write(whole:sub(1, 40)); fh:close()
  o, rc = run(string.format("apply_postprocessing -i %q -o %q -pp_pkl_file %q -dataset_json %q", bad,
    root .. "/bad_out", ppfile, inp .. "/dataset.json"))
  check(rc ~= 0 and o:find("case_9.nii.gz", 1, true), "a truncated segmentation is an error naming it: " .. o)
end

-- 3. evaluate_simple on the same files: prediction = postprocessed, reference = input
o, rc = run(string.format("evaluate_simple %q %q -l 1 2 -o %q", inp, out, root .. "/s.json"))
check(rc == 0, "evaluate_simple exit code " .. tostring(rc) .. ": " .. o)
local s = json.decode_file(root .. "/s.json") or {}
local c1 = s.metric_per_case and s.metric_per_case[1].metrics["1"] or {}
-- case_1, label 1: the reference has A 4 + B 3 + C 7 + D 1 = 15 voxels, the prediction
-- keeps only C (7, joined with E as the largest foreground component): TP 7, FN 8, FP 0
check(c1.TP == 7 and c1.FN == 8 and c1.FP == 0, string.format("evaluate_simple counts TP %s FN %s FP %s",
  tostring(c1.TP), tostring(c1.FN), tostring(c1.FP)))

os.execute(string.format("rm -rf %q", root))
if TL.failures > 0 then
  io.stderr:write(TL.failures .. " checks failed\n")
  os.exit(1)
end
print("test_postprocessing: all checks passed")
