-- find_best_configuration and the postprocessing decision (nnunet-behaviour.md §10,
-- §11) on synthetic results folders with known outcomes, independent of training:
--   1. configuration B (3d_fullres) beats A (2d) -> B picked; the recipe through the host
--   2. an ensemble of A + B whose mean probabilities fix the errors of both -> picked
--   3. postprocessing: a spurious component -> keep-largest for all foreground accepted;
--      a real second component -> rejected, per-class decisions hand-computed; the
--      written postprocessing.json applied by `nnunet apply_postprocessing`
--   4. inference_instructions.txt: the exact commands (also a cascade stage)
--   5. wrong input (missing fold, mismatched cases, missing model folder, no .npz)
--      gives an error naming the folder
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
local args = require("nnunet.args")
local ms = require("nnunet.model_selection")

local TL = dofile("tests/lua/testlib.lua")
local check = TL.check_msg
local function close(a, b) return type(a) == "number" and math.abs(a - b) <= 1e-12 end

local function run(env, argstr) return TL.run_host(argstr, env) end
local read_file, write_file = TL.read, TL.write_file

-- "0110/0100 ; ..." -> u8 tensor of the given shape
local function vol(s, shape)
  local v = {}
  for c in s:gmatch("%d") do v[#v + 1] = tonumber(c) end
  return tensor.from_table(v, shape, "u8")
end
local function flat(t) return table.concat(t:totable(), "") end
local function digits(s) return (s:gsub("[^%d]", "")) end

local tmp = os.tmpname()
os.remove(tmp)
local root = tmp .. "_ms"
assert(fs.mkdir(root))

local DJ = '{"channel_names": {"0": "CT"}, "labels": {"background": 0, "organ": 1}, "numTraining": 4, '
  .. '"file_ending": ".nii.gz"}'
local PLANS = '{"dataset_name": "X", "plans_name": "nnUNetPlans", "configurations": {"2d": {"batch_size": 2}, '
  .. '"3d_fullres": {"batch_size": 2}, "3d_lowres": {"batch_size": 2, "next_stage": "3d_cascade_fullres"}}}'
local SHAPE = { 1, 4, 4 }
local GT = "0000/0110/0110/0000"
local CASES = { { "c1", 0 }, { "c2", 0 }, { "c3", 1 }, { "c4", 1 } }   -- case, fold

-- A dataset under root/tag: preprocessed (plans, gt_segmentations) and results roots.
local function make_dataset(tag, name, dj, gt_by_case, shape)
  local d = { root = root .. "/" .. tag, name = name, dj = dj or DJ }
  d.pre = d.root .. "/pre/" .. name
  d.res = d.root .. "/res/" .. name
  assert(fs.mkdir(d.pre .. "/gt_segmentations")); assert(fs.mkdir(d.res))
  write_file(d.pre .. "/nnUNetPlans.json", PLANS)
  write_file(d.pre .. "/dataset.json", d.dj)
  for c, s in pairs(gt_by_case) do assert(nifti.write(d.pre .. "/gt_segmentations/" .. c .. ".nii.gz", vol(s, shape or SHAPE))) end
  return d
end

local GEOM = { sitk_stuff = { spacing = { 1.0, 1.0, 1.0 }, origin = { 0.0, 0.0, 0.0 },
  direction = { 1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0 } } }

-- A trained model folder: fold_k/validation/CASE.nii.gz (+ CASE.npz/.json when
-- probs_by_case gives the foreground probability per voxel).
local function make_model(d, config, seg_by_case, probs_by_case, cases)
  local folder = d.res .. "/" .. ms.model_identifier("nnUNetTrainer", "nnUNetPlans", config)
  for _, cf in ipairs(cases or CASES) do
    local c, f = cf[1], cf[2]
    local v = folder .. "/fold_" .. f .. "/validation"
    assert(fs.mkdir(v))
    if seg_by_case[c] then assert(nifti.write(v .. "/" .. c .. ".nii.gz", vol(seg_by_case[c], SHAPE))) end
    if probs_by_case and probs_by_case[c] then
      local p = probs_by_case[c]
      local vals = {}
      for i = 1, #p do vals[i] = 1 - p[i]; vals[#p + i] = p[i] end
      assert(prob.save(v .. "/" .. c, tensor.from_table(vals, { 2, 1, 4, 4 }, "f32"), GEOM))
    end
  end
  write_file(folder .. "/plans.json", PLANS)
  write_file(folder .. "/dataset.json", d.dj)
  return folder
end
local function all_cases(s) return { c1 = s, c2 = s, c3 = s, c4 = s } end
local gt_all = all_cases(GT)

-- the options of a shipped recipe accept a command line of the instructions
local function command_parses(line)
  local words = {}
  for w in line:gmatch("%S+") do words[#words + 1] = w end
  if words[1] ~= "nnunet" then return false, "not an nnunet command" end
  local recipe = dofile("recipes/" .. words[2] .. ".lua")
  local argv = table.move(words, 3, #words, 1, {})
  return pcall(args.parse, recipe, argv, words[2])
end

local quiet = function() end

-- 1. B better than A -------------------------------------------------------------------
local A_PRED = "0000/0110/0100/0000"                      -- one voxel missed: Dice 6/7
do
  local d = make_dataset("s1", "Dataset901_Sel", nil, gt_all)
  make_model(d, "2d", all_cases(A_PRED))
  make_model(d, "3d_fullres", { c1 = GT, c2 = GT, c3 = GT, c4 = A_PRED })
  local env = string.format("nnUNet_results=%q nnUNet_preprocessed=%q nnUNet_raw=", root .. "/s1/res", root .. "/s1/pre")
  local out, rc = run(env, "find_best_configuration -d 901 -c 2d 3d_fullres 3d_cascade_fullres -f 0 1 --disable_ensembling")
  check(rc == 0, "find_best_configuration exit code " .. tostring(rc) .. ": " .. out)
  check(out:find("Configuration 3d_cascade_fullres not found in plans nnUNetPlans", 1, true),
    "a configuration missing from the plans is skipped with a note")
  local info = json.decode_file(d.res .. "/inference_information.json")
  check(info ~= nil, "inference_information.json written")
  if info then
    local a = info.all_results["nnUNetTrainer__nnUNetPlans__2d"]
    local b = info.all_results["nnUNetTrainer__nnUNetPlans__3d_fullres"]
    check(close(a, 6 / 7), "2d cross-validation Dice 6/7, got " .. tostring(a))
    check(close(b, (3 + 6 / 7) / 4), "3d_fullres cross-validation Dice (3 + 6/7)/4, got " .. tostring(b))
    local best = info.best_model_or_ensemble
    check(#best.selected_model_or_models == 1 and best.selected_model_or_models[1].configuration == "3d_fullres"
      and best.selected_model_or_models[1].trainer == "nnUNetTrainer"
      and best.selected_model_or_models[1].plans_identifier == "nnUNetPlans", "3d_fullres picked")
    check(close(best.result_on_crossval_pre_pp, b) and close(best.result_on_crossval_post_pp, b),
      "pre/post postprocessing results (nothing to remove)")
    check(info.ensembling_allowed == false and #info.considered_models == 2 and info.folds[2] == 1
      and info.dataset_name_or_id == "901", "inference_information fields")
  end
  local cv = d.res .. "/nnUNetTrainer__nnUNetPlans__3d_fullres/crossval_results_folds_0_1"
  check(fs.isfile(cv .. "/summary.json") and fs.isfile(cv .. "/c4.nii.gz") and fs.isfile(cv .. "/plans.json"),
    "crossval_results_folds_0_1 holds the union of the folds, summary.json and plans.json")
  check(fs.isfile(cv .. "/postprocessed/c1.nii.gz") and fs.isfile(cv .. "/postprocessed/summary.json")
    and not fs.exists(cv .. "/postprocessed/temp"), "postprocessed/ written, temp removed")
  local ppj = json.decode_file(cv .. "/postprocessing.json")
  check(ppj and #ppj.postprocessing_fns == 0 and #ppj.postprocessing_kwargs == 0, "no postprocessing step accepted")
  local text = read_file(d.res .. "/inference_instructions.txt") or ""
  local want = "***Run inference like this:***\n\n"
    .. "nnunet predict -d 901 -i INPUT_FOLDER -o OUTPUT_FOLDER -f 0 1 -tr nnUNetTrainer -c 3d_fullres -p nnUNetPlans\n\n"
    .. "***Once inference is completed, run postprocessing like this:***\n\n"
    .. "nnunet apply_postprocessing -i OUTPUT_FOLDER -o OUTPUT_FOLDER_PP -pp_pkl_file " .. cv
    .. "/postprocessing.json -np 8 -plans_json " .. cv .. "/plans.json\n"
  check(text == want, "inference_instructions.txt:\n" .. text .. "\nexpected:\n" .. want)
  for line in text:gmatch("[^\n]+") do
    if line:match("^nnunet ") then
      local okp, err = command_parses(line)
      check(okp, "command accepted by its recipe: " .. line .. " (" .. tostring(err and err.message or err) .. ")")
    end
  end
end

-- 1b. the plans' 3d_lowres is requested but was never trained: error naming the folder
do
  local o, rc = run(string.format("nnUNet_results=%q nnUNet_preprocessed=%q nnUNet_raw=", root .. "/s1/res",
    root .. "/s1/pre"), "find_best_configuration Dataset901_Sel -c 2d 3d_lowres -f 0 1 --disable_ensembling")
  check(rc ~= 0 and o:find(root .. "/s1/res/Dataset901_Sel/nnUNetTrainer__nnUNetPlans__3d_lowres", 1, true),
    "an untrained configuration of the plans is an error naming its folder: " .. o)
  -- a configuration missing from the plans is skipped with a note
  local lines = {}
  local ok = pcall(ms.find_best_configuration, { dataset = "Dataset901_Sel", configs = { "2d", "3d_cascade_fullres" },
    folds = { 0, 1 }, allow_ensembling = false, results_dir = root .. "/s1/res/Dataset901_Sel",
    preprocessed_dir = root .. "/s1/pre/Dataset901_Sel", log = function(l) lines[#lines + 1] = l end })
  check(ok and table.concat(lines, "\n"):find("Configuration 3d_cascade_fullres not found in plans nnUNetPlans", 1, true),
    "configuration absent from the plans skipped")
end

-- 2. the ensemble of A and B fixes the errors of both ---------------------------------
-- foreground probability per voxel (row-major 4x4). GT foreground: (1,1) (1,2) (2,1) (2,2).
-- A: (1,1) missed with 0.4, false positive (0,0) 0.6; B: (2,2) missed with 0.45, false
-- positive (3,3) 0.55. Each alone: TP 3, FP 1, FN 1 -> Dice 0.75; the mean: perfect.
local function probs_with(changes)
  local p = {}
  for r = 0, 3 do for c = 0, 3 do
    p[r * 4 + c + 1] = (r == 1 or r == 2) and (c == 1 or c == 2) and 0.9 or 0.1
  end end
  for _, ch in ipairs(changes) do p[ch[1] * 4 + ch[2] + 1] = ch[3] end
  return p
end
local PA = probs_with({ { 1, 1, 0.4 }, { 0, 0, 0.6 } })
local PB = probs_with({ { 2, 2, 0.45 }, { 3, 3, 0.55 } })
do
  local d = make_dataset("s2", "Dataset902_Ens", nil, gt_all)
  make_model(d, "2d", all_cases("1000/0010/0110/0000"), all_cases(PA))
  make_model(d, "3d_fullres", all_cases("0000/0110/0100/0001"), all_cases(PB))
  local info, text = ms.find_best_configuration({ dataset = "Dataset902_Ens", configs = { "2d", "3d_fullres" },
    folds = { 0, 1 }, results_dir = d.res, preprocessed_dir = d.pre, log = quiet })
  local id = "ensemble___nnUNetTrainer__nnUNetPlans__2d___nnUNetTrainer__nnUNetPlans__3d_fullres___0_1"
  check(close(info.all_results["nnUNetTrainer__nnUNetPlans__2d"], 0.75), "A alone: Dice 0.75")
  check(close(info.all_results["nnUNetTrainer__nnUNetPlans__3d_fullres"], 0.75), "B alone: Dice 0.75")
  check(close(info.all_results[id], 1.0), "ensemble: Dice 1, got " .. tostring(info.all_results[id]))
  local sel = info.best_model_or_ensemble.selected_model_or_models
  check(#sel == 2 and sel[1].configuration == "2d" and sel[2].configuration == "3d_fullres", "the ensemble picked")
  local ens_dir = d.res .. "/ensembles/" .. id
  local seg = nifti.read(ens_dir .. "/c3.nii.gz")
  check(seg and flat(seg) == digits(GT), "ensemble prediction of c3 equals the reference")
  check(fs.isfile(ens_dir .. "/plans.json") and fs.isfile(ens_dir .. "/dataset.json")
    and fs.isfile(ens_dir .. "/postprocessing.json"), "ensemble folder: plans, dataset.json, postprocessing.json")
  check(info.best_model_or_ensemble.postprocessing_file == ens_dir .. "/postprocessing.json", "postprocessing file")
  local want = "***Run inference like this:***\n\n"
    .. "An ensemble won! What a surprise! Run the following commands to run predictions with the ensemble members:\n\n"
    .. "nnunet predict -d Dataset902_Ens -i INPUT_FOLDER -o OUTPUT_FOLDER_MODEL_1 -f 0 1 -tr nnUNetTrainer -c 2d "
    .. "-p nnUNetPlans --save_probabilities\n"
    .. "nnunet predict -d Dataset902_Ens -i INPUT_FOLDER -o OUTPUT_FOLDER_MODEL_2 -f 0 1 -tr nnUNetTrainer "
    .. "-c 3d_fullres -p nnUNetPlans --save_probabilities\n\n"
    .. "Then run ensembling with:\n\n"
    .. "nnunet ensemble -i OUTPUT_FOLDER_MODEL_1 OUTPUT_FOLDER_MODEL_2 -o OUTPUT_FOLDER -np 8\n\n"
    .. "***Once inference is completed, run postprocessing like this:***\n\n"
    .. "nnunet apply_postprocessing -i OUTPUT_FOLDER -o OUTPUT_FOLDER_PP -pp_pkl_file " .. ens_dir
    .. "/postprocessing.json -np 8 -plans_json " .. ens_dir .. "/plans.json\n"
  check(text == want, "ensemble instructions:\n" .. text)
  check(read_file(d.res .. "/inference_instructions.txt") == text, "instructions written to the file")
  for line in text:gmatch("[^\n]+") do
    if line:match("^nnunet ") then
      local okp, err = command_parses(line)
      check(okp, "command accepted by its recipe: " .. line .. " (" .. tostring(err and err.message or err) .. ")")
    end
  end
  -- the file is the reference's save_json(sort_keys=True)
  local ij = read_file(d.res .. "/inference_information.json") or ""
  local head = '{\n    "all_results": {\n        "ensemble___'
  check(ij:sub(1, #head) == head, "inference_information.json: sorted keys, indent 4")
end

-- 3. the postprocessing decision --------------------------------------------------------
local DJ2 = '{"channel_names": {"0": "CT"}, "labels": {"background": 0, "a": 1, "b": 2}, "numTraining": 1, '
  .. '"file_ending": ".nii.gz"}'
local SH = { 1, 6, 10 }
local function pp_case(tag, gt, pred)
  local dir = root .. "/" .. tag
  assert(fs.mkdir(dir .. "/pred")); assert(fs.mkdir(dir .. "/gt"))
  assert(nifti.write(dir .. "/gt/case.nii.gz", vol(gt, SH)))
  assert(nifti.write(dir .. "/pred/case.nii.gz", vol(pred, SH)))
  write_file(dir .. "/pred/dataset.json", DJ2)
  return dir
end
do
  -- P: labels 1 and 2 touch (one object); a spurious voxel of label 1 far away.
  -- before: label 1 TP 4 FP 1 -> 8/9, label 2 -> 1; keep-largest(fg) removes the voxel:
  -- both 1 -> accepted; per class then changes nothing (1 > 1 is false) -> rejected.
  local P = pp_case("ppP",
    "1122000000/1122000000/0000000000/0000000000/0000000000/0000000000",
    "1122000000/1122000000/0000000000/0000000000/0000000010/0000000000")
  local steps, pj = ms.determine_postprocessing(P .. "/pred", P .. "/gt", { log = quiet })
  check(#steps == 1 and type(steps[1].labels_or_regions) == "table" and #steps[1].labels_or_regions == 2,
    "P: keep-largest for all foreground accepted, nothing else")
  local j = json.decode_file(P .. "/pred/postprocessing.json")
  check(j and j.postprocessing_fns[1] == "remove_all_but_largest_component_from_segmentation"
    and j.postprocessing_kwargs[1].labels_or_regions[1] == 1 and j.postprocessing_kwargs[1].labels_or_regions[2] == 2
    and #j.postprocessing_fns == 1, "P: postprocessing.json steps")
  check(j and close(j.input_folder.mean["1"].Dice, 8 / 9) and close(j.input_folder.foreground_mean.Dice, (8 / 9 + 1) / 2)
    and close(j.postprocessed.foreground_mean.Dice, 1.0), "P: Dice before/after in postprocessing.json")
  local s = nifti.read(P .. "/pred/postprocessed/case.nii.gz")
  check(s and flat(s) == digits("1122000000/1122000000/0000000000/0000000000/0000000000/0000000000"),
    "P: postprocessed prediction")
  check(pj.postprocessed.mean["2"].Dice == 1.0, "P: returned table")

  -- R: two separate objects, label 2 has a real second component (also in the
  -- reference), label 1 a spurious voxel. before: label 1 TP 4 FP 1 -> 8/9, label 2 1.
  -- fg as one keeps only label 2's body (6 voxels): label 1 -> 0, label 2 -> 12/14: rejected.
  -- label 1 alone: spurious voxel removed, 1 > 8/9: accepted.
  -- label 2 alone: its real 2-voxel component removed, 12/14 < 1: rejected.
  local R = pp_case("ppR",
    "1100002220/1100002220/0000000000/0000000000/0000000000/0000000022",
    "1100002220/1100002220/0000000000/0000000000/0000100000/0000000022")
  local logs = {}
  steps = ms.determine_postprocessing(R .. "/pred", R .. "/gt", { log = function(l) logs[#logs + 1] = l end })
  check(#steps == 1 and steps[1].labels_or_regions == 1, "R: only keep-largest for label 1 accepted")
  local jr = json.decode_file(R .. "/pred/postprocessing.json")
  check(jr and #jr.postprocessing_kwargs == 1 and jr.postprocessing_kwargs[1].labels_or_regions == 1,
    "R: postprocessing.json holds the label-1 step")
  check(jr and close(jr.postprocessed.mean["1"].Dice, 1.0) and close(jr.postprocessed.mean["2"].Dice, 1.0)
    and close(jr.input_folder.mean["1"].Dice, 8 / 9), "R: Dice values")
  local lg = table.concat(logs, "\n")
  check(lg:find("largest foreground region did not improve", 1, true)
    and lg:find("component for 1. Dice before: 0.88889 after: 1.00000", 1, true)
    and lg:find("component for 2 did not improve results! Dice before: 1.00000 after: 0.85714", 1, true),
    "R: decisions logged:\n" .. lg)
  -- the written file drives `nnunet apply_postprocessing` to the same result
  local o, rc = run("", string.format("apply_postprocessing -i %q -o %q -pp_pkl_file %q", R .. "/pred", R .. "/applied",
    R .. "/pred/postprocessing.json"))
  check(rc == 0, "apply_postprocessing: " .. o)
  local a1 = nifti.read(R .. "/applied/case.nii.gz")
  local a2 = nifti.read(R .. "/pred/postprocessed/case.nii.gz")
  check(a1 and a2 and flat(a1) == flat(a2)
    and flat(a1) == digits("1100002220/1100002220/0000000000/0000000000/0000000000/0000000022"),
    "apply_postprocessing with the decided steps reproduces postprocessed/")
end

-- 4. instructions for a cascade stage, identifiers --------------------------------------
do
  local plans = { configurations = { ["3d_fullres"] = { batch_size = 2 }, ["3d_lowres"] = { next_stage = "3d_cascade_fullres" },
    ["3d_cascade_fullres"] = { inherits_from = "3d_fullres", previous_stage = "3d_lowres" } } }
  local info = { dataset_name_or_id = "4", folds = { 0, 1, 2, 3, 4 }, best_model_or_ensemble = {
    postprocessing_file = "/r/pp.json", some_plans_file = "/r/plans.json",
    selected_model_or_models = { { configuration = "3d_cascade_fullres", trainer = "nnUNetTrainer",
      plans_identifier = "nnUNetPlans" } } } }
  local text = ms.inference_instructions(info, { plans_of = function() return plans end })
  check(text:find("nnunet predict -d 4 -i INPUT_FOLDER -o OUTPUT_FOLDER_PREV_STAGE -f 0 1 2 3 4 -tr nnUNetTrainer "
    .. "-c 3d_lowres -p nnUNetPlans\nnnunet predict -d 4 -i INPUT_FOLDER -o OUTPUT_FOLDER -f 0 1 2 3 4 -tr nnUNetTrainer "
    .. "-c 3d_cascade_fullres -p nnUNetPlans -prev_stage_predictions OUTPUT_FOLDER_PREV_STAGE\n", 1, true),
    "cascade: the low-resolution stage first, then the cascade with its predictions:\n" .. text)
  local tr, pl, c = ms.parse_identifier("/x/nnUNetTrainer__nnUNetPlans__3d_cascade_fullres")
  check(tr == "nnUNetTrainer" and pl == "nnUNetPlans" and c == "3d_cascade_fullres", "parse_identifier")
  check(ms.ensemble_identifier("a__b__c", "d__e__f", { 0, 2 }) == "ensemble___a__b__c___d__e__f___0_2", "ensemble id")
end

-- 5. wrong input ------------------------------------------------------------------------
do
  local d = make_dataset("s5", "Dataset905_Bad", nil, gt_all)
  local mA = make_model(d, "2d", all_cases(GT), all_cases(PA))
  -- missing fold (through the host): the error names the fold's folder
  local env = string.format("nnUNet_results=%q nnUNet_preprocessed=%q nnUNet_raw=", root .. "/s5/res", root .. "/s5/pre")
  local o, rc = run(env, "find_best_configuration -d 905 -c 2d -f 0 1 2")
  check(rc ~= 0 and o:find(mA .. "/fold_2/validation", 1, true), "missing fold named: " .. o)
  -- B lacks case c4 (fold 1 predicted only c3): mismatched case lists
  local mB = make_model(d, "3d_fullres", { c1 = GT, c2 = GT, c3 = GT }, nil)
  local ok, err = pcall(ms.find_best_configuration, { dataset = "Dataset905_Bad", configs = { "2d", "3d_fullres" },
    folds = { 0, 1 }, allow_ensembling = false, results_dir = d.res, preprocessed_dir = d.pre, log = quiet })
  local msg = type(err) == "table" and err.message or tostring(err)
  check(not ok and msg:find(mB .. "/crossval_results_folds_0_1", 1, true) and msg:find("c4.nii.gz", 1, true),
    "mismatched case lists name the folder and the case: " .. msg)
  -- the same with ensembling: B has no .npz at all
  assert(nifti.write(mB .. "/fold_1/validation/c4.nii.gz", vol(GT, SHAPE)))
  ok, err = pcall(ms.find_best_configuration, { dataset = "Dataset905_Bad", configs = { "2d", "3d_fullres" },
    folds = { 0, 1 }, results_dir = d.res, preprocessed_dir = d.pre, log = quiet })
  msg = type(err) == "table" and err.message or tostring(err)
  check(not ok and msg:find(mB .. "/fold_0/validation", 1, true) and msg:find("--npz", 1, true),
    "ensembling without .npz names the folder: " .. msg)
  -- B has probabilities for c1..c3 only: the ensemble names B and the missing case
  for _, c in ipairs({ "c1", "c2", "c3" }) do
    local f = (c == "c3") and 1 or 0
    local vals = {}
    for i = 1, 16 do vals[i] = 1 - PB[i]; vals[16 + i] = PB[i] end
    assert(prob.save(mB .. "/fold_" .. f .. "/validation/" .. c, tensor.from_table(vals, { 2, 1, 4, 4 }, "f32"), GEOM))
  end
  ok, err = pcall(ms.find_best_configuration, { dataset = "Dataset905_Bad", configs = { "2d", "3d_fullres" },
    folds = { 0, 1 }, results_dir = d.res, preprocessed_dir = d.pre, log = quiet })
  msg = type(err) == "table" and err.message or tostring(err)
  check(not ok and msg:find("model '" .. mB .. "'", 1, true) and msg:find("c4.npz", 1, true),
    "ensemble with a missing case names the model folder: " .. msg)
  -- a case predicted by two folds
  assert(nifti.write(mA .. "/fold_1/validation/c1.nii.gz", vol(GT, SHAPE)))
  ok, err = pcall(ms.accumulate_cv_results, mA, root .. "/s5/cv", { 0, 1 }, d.pre .. "/gt_segmentations")
  msg = type(err) == "table" and err.message or tostring(err)
  check(not ok and msg:find("c1.nii.gz", 1, true) and msg:find(mA, 1, true), "duplicate case across folds: " .. msg)
end

ms.rmtree(root)
check(not fs.exists(root), "temporary folder removed")
if TL.failures > 0 then
  io.stderr:write(TL.failures .. " checks failed\n")
  os.exit(1)
end
print("test_model_selection: all checks passed")
