-- evaluate_folder end to end: the L.7 cases of nnunet-behaviour.md written as NIfTI
-- label files, `nnunet evaluate_folder` run through the host, summary.json compared
-- byte for byte with the text the reference code writes for the same inputs
-- (tests/fixtures/evaluate/*.json, from tests/gen/gen_evaluate_ref.py) and with the
-- hand-computed L.7 numbers. Also: ignore label + regions, missing predictions,
-- --chill, and the nnunet.infer helpers the evaluation is built on.
local ok_nifti, nifti = pcall(require, "nnunet.image")
if not ok_nifti then
  print("SKIP: the NIfTI module nnunet.image is not built yet")
  os.exit(77)
end
local tensor = require("nnunet.tensor")
local fs = require("nnunet.fs")
local sys = require("nnunet.sys")
local json = require("nnunet.json")
local infer = require("nnunet.infer")
local evaluate = require("nnunet.evaluate")

local TL = dofile("tests/lua/testlib.lua")
local check = TL.check_msg

local function parse(s)
  local v = {}
  for c in s:gmatch("%d") do v[#v + 1] = tonumber(c) end
  return tensor.from_table(v, { 2, 3, 4 }, "u8")
end

local write_file, read_file = TL.write_file, TL.read
local function run(argstr) return TL.run_host(argstr) end

local function escape(s) return (s:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0")) end

local tmp = os.tmpname()
os.remove(tmp)
local root = tmp .. "_eval"
local ref_dir, pred_dir = root .. "/ref", root .. "/pred"
assert(fs.mkdir(root)); assert(fs.mkdir(ref_dir)); assert(fs.mkdir(pred_dir))

local cases = {
  case_a = { "0112/0112/0044 ; 0011/2200/0000", "0111/0010/0011 ; 0111/0000/0000" },
  case_b = { "1100/0000/0000 ; 0000/0000/0000", "1100/0020/0000 ; 0000/0000/0000" },
}
for name, c in pairs(cases) do
  assert(nifti.write(ref_dir .. "/" .. name .. ".nii.gz", parse(c[1])))
  assert(nifti.write(pred_dir .. "/" .. name .. ".nii.gz", parse(c[2])))
end
write_file(pred_dir .. "/notes.txt", "not a prediction")     -- other endings are ignored
local dj = root .. "/dataset.json"
write_file(dj, [[{"channel_names": {"0": "CT"}, "labels": {"background": 0, "one": 1, "two": 2, "three": 3},
  "numTraining": 2, "file_ending": ".nii.gz"}]])

-- 1. labels [1, 2, 3]: the reference's summary.json, byte for byte
local out, rc = run(string.format("evaluate_folder %q %q -djfile %q", ref_dir, pred_dir, dj))
check(rc == 0, "evaluate_folder exit code " .. tostring(rc) .. ": " .. out)
local got = read_file(pred_dir .. "/summary.json")
local want = read_file("tests/fixtures/evaluate/labels.json")
check(got ~= nil, "summary.json written to PRED_DIR by default")
if got and want then
  local norm = got:gsub(escape(ref_dir), "REF_DIR"):gsub(escape(pred_dir), "PRED_DIR")
  check(norm == want, "summary.json differs from the reference's text:\n" .. norm)
end
check(out:find("foreground mean", 1, true) ~= nil, "a Dice table is printed")

-- -np 1 (one case after the other) writes the same bytes as the default -np 8 (a pool of
-- threads reading and counting the cases)
local seq_out = root .. "/summary_np1.json"
out, rc = run(string.format("evaluate_folder %q %q -djfile %q -np 1 -o %q", ref_dir, pred_dir, dj, seq_out))
check(rc == 0 and read_file(seq_out) == got, "-np 1 and -np 8 give the same summary.json")
-- in parallel too, a broken case names its file and the problem
do
  local bad_dir = root .. "/pred_bad"
  assert(fs.mkdir(bad_dir))
  assert(nifti.write(bad_dir .. "/case_a.nii.gz", parse(cases.case_a[2])))
  assert(nifti.write(bad_dir .. "/case_b.nii.gz", tensor.zeros({ 2, 3, 5 }, "u8")))
  out, rc = run(string.format("evaluate_folder %q %q -djfile %q -np 4", ref_dir, bad_dir, dj))
  check(rc ~= 0 and out:find("shape mismatch", 1, true) and out:find("case_b.nii.gz", 1, true),
    "-np 4, a prediction of another shape: " .. out)
  write_file(bad_dir .. "/case_b.nii.gz", "truncated")
  out, rc = run(string.format("evaluate_folder %q %q -djfile %q -np 4", ref_dir, bad_dir, dj))
  check(rc ~= 0 and out:find("cannot read", 1, true) and out:find("case_b.nii.gz", 1, true),
    "-np 4, an unreadable prediction: " .. out)
  check(not fs.isfile(bad_dir .. "/summary.json"), "no summary.json after a failure")
end

-- the L.7 numbers, read back
local s = json.decode(got or "{}") or {}
local m1 = s.mean and s.mean["1"] or {}
check(m1.Dice == 0.8333333333333333 and m1.IoU == 0.75 and m1.TN == 18.0 and m1.n_pred == 5.5,
  "mean of label 1")
local fg = s.foreground_mean or {}
check(fg.TN == 21.166666666666668 and fg.FN == 0.8333333333333334, "foreground_mean counts")
local a = s.metric_per_case and s.metric_per_case[1] or { metrics = {} }
check(a.prediction_file == pred_dir .. "/case_a.nii.gz", "cases in sorted order, joined paths")
check(a.metrics["1"] and a.metrics["1"].TP == 5 and a.metrics["1"].FP == 4 and a.metrics["1"].FN == 1,
  "case a label 1 counts")
check(got and got:find('"Dice": NaN', 1, true), "bare NaN for label 3")

-- 2. regions [(1, 2), 2] with ignore label 3, output with -o
local cases2 = { case_a = "0112/0112/0033 ; 0011/2200/0000", case_b = "1100/0000/0000 ; 0000/0000/0000" }
for name, r in pairs(cases2) do assert(nifti.write(ref_dir .. "/" .. name .. ".nii.gz", parse(r))) end
local dj2 = root .. "/dataset_regions.json"
write_file(dj2, [[{"channel_names": {"0": "CT"},
  "labels": {"background": 0, "fg": [1, 2], "two": 2, "ignore": 3},
  "regions_class_order": [1, 2], "numTraining": 2, "file_ending": ".nii.gz"}]])
local out2 = root .. "/summary_regions.json"
out, rc = run(string.format("evaluate_folder %q %q -djfile %q -o %q -np 2", ref_dir, pred_dir, dj2, out2))
check(rc == 0, "regions: exit code " .. tostring(rc) .. ": " .. out)
got = read_file(out2)
want = read_file("tests/fixtures/evaluate/regions_ignore.json")
if got and want then
  local norm = got:gsub(escape(ref_dir), "REF_DIR"):gsub(escape(pred_dir), "PRED_DIR")
  check(norm == want, "regions summary differs from the reference's text:\n" .. norm)
else
  check(false, "regions summary written with -o")
end

-- 3. a reference without prediction fails unless --chill
assert(nifti.write(ref_dir .. "/case_c.nii.gz", parse(cases.case_a[1])))
out, rc = run(string.format("evaluate_folder %q %q -djfile %q -o %q", ref_dir, pred_dir, dj, root .. "/x.json"))
check(rc == 1 and out:find("case_c.nii.gz", 1, true), "missing prediction is an error: " .. out)
out, rc = run(string.format("evaluate_folder %q %q -djfile %q -o %q --chill", ref_dir, pred_dir, dj, root .. "/x.json"))
check(rc == 0, "--chill tolerates missing predictions: " .. out)

-- 4. the module directly: label manager and keys
local lm = evaluate.label_manager(dj2)
check(lm.has_regions and lm.ignore_label == 3 and #lm.regions_or_labels == 2, "label manager: regions + ignore")
check(evaluate.key(lm.regions_or_labels[1]) == "(1, 2)" and evaluate.key(lm.regions_or_labels[2]) == "2",
  "region keys as Python's str")
check(evaluate.key({ 2 }) == "(2,)", "one-element tuple key")
local lm1 = evaluate.label_manager(dj)
check(not lm1.has_regions and table.concat(lm1.regions_or_labels, ",") == "1,2,3", "label manager: labels sorted")

-- 5. infer helpers: confusion with ignore, keep_largest, steps, gaussian, npz round trip
local c = infer.confusion(parse(cases.case_a[1]), parse(cases.case_a[2]), { 1, { 1, 2 } }, 4)
check(c[1].TP == 5 and c[1].FP == 2 and c[1].TN == 14 and c[1].Dice == 0.7692307692307693, "confusion, ignore 4")
check(c[2].TP == 6 and c[2].n_ref == 10, "confusion, region (1, 2)")
local seg = parse("1100/0000/0001 ; 0000/0000/0000")
check(infer.keep_largest(seg, 1) == 1 and seg:sum() == 2, "keep_largest removes the single voxel")
local st = infer.steps({ 110, 64 }, { 64, 64 })
check(#st == 2 and table.concat(st[1], ",") == "0,23,46" and table.concat(st[2], ",") == "0", "steps")
check(table.concat(infer.steps(10, 5, 0.5), ",") == "0,2,5", "steps, half-even rounding")
local g, nrep = infer.gaussian({ 8, 8, 8 })
check(g:dtype() == "f16" and nrep == 7 and g:max() == 10, "gaussian (8,8,8)")
local padded, before = infer.pad(tensor.zeros({ 1, 3, 60, 7 }), { 5, 64, 4 })
check(table.concat(padded:shape(), ",") == "1,5,64,7" and table.concat(before, ",") == "0,1,2,0", "pad")
local probs = tensor.from_table({ 0.25, 0.5, 0.75, 1.0, 0.0, 0.125 }, { 2, 1, 1, 3 }, "f32")
local npz = root .. "/case.npz"
check(infer.save_npz(npz, "probabilities", probs) == true, "save_npz")
local back = infer.load_npz(npz, "probabilities")
check(back and table.concat(back:totable(), ",") == table.concat(probs:totable(), ","), "npz round trip")
local none, msg = infer.load_npz(npz, "softmax")
check(none == nil and msg:find("no member", 1, true), "missing npz member is an expected failure")

-- 6. sliding_window with a Lua "network" (identity on channel 1, + mirrored mean)
local img = tensor.from_table({ 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 }, { 1, 1, 3, 4 }, "f32")
local calls = 0
local logits = infer.sliding_window(img, { patch = { 2, 2 }, num_heads = 1, mirror_axes = { 1, 2 },
  accum = "f32", progress = function(done, total) calls = calls + 1 end },
  function(batch) return batch:clone() end)
local lv = logits:totable()
local okv = #lv == 12
for i = 1, 12 do okv = okv and math.abs(lv[i] - i) < 1e-6 end
check(okv and calls > 0, "sliding_window with an identity network returns the image")
local kept
infer.sliding_window(img, { patch = { 2, 2 }, num_heads = 1 }, function(b) kept = b; return b:clone() end)
check(not pcall(function() return kept:sum() end), "a batch kept past the call is released, not silently reused")
local okerr, err = pcall(infer.sliding_window, img, { patch = { 2, 2 }, num_heads = 1 },
  function() error("boom") end)
check(not okerr and tostring(err):find("boom", 1, true), "a Lua error in predict surfaces: " .. tostring(err))

if os.getenv("KEEP") then print(root) else os.execute(string.format("rm -rf %q", root)) end
if TL.failures > 0 then
  io.stderr:write(TL.failures .. " checks failed\n")
  os.exit(1)
end
print("test_evaluate_folder: all checks passed")
