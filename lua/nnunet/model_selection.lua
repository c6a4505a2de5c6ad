-- nnunet.model_selection: nnU-Net v2's find_best_configuration, accumulate_cv_results
-- and determine_postprocessing (nnunetv2/evaluation/find_best_configuration.py,
-- accumulate_cv_results.py, postprocessing/remove_connected_components.py;
-- nnunet-behaviour.md §10, §11, §13.3). docs/model_selection.md describes the files.
--
--   local ms = require("nnunet.model_selection")
--   ms.model_identifier(trainer, plans, config)  "nnUNetTrainer__nnUNetPlans__3d_fullres"
--   ms.parse_identifier(id)                      -> trainer, plans, config
--   ms.ensemble_identifier(id1, id2, folds)      "ensemble___<id1>___<id2>___0_1_2_3_4"
--   ms.folds_string(folds)                       "0_1_2_3_4"
--   ms.accumulate_cv_results(model_folder, merged_folder, folds, gt_folder [, opts]) -> summary
--   ms.determine_postprocessing(folder_predictions, folder_ref [, opts]) -> steps, pp_json
--   ms.find_best_configuration(opts) -> inference_information table, instructions text
--   ms.inference_instructions(info [, opts]) -> text (the exact nnunet commands)
--
-- All evaluations are nnunet.evaluate's (summary.json byte-identical to the
-- reference's) with chill (only predicted cases are evaluated), as the reference's
-- compute_metrics_on_folder calls here. Scores are foreground_mean.Dice; every
-- comparison is a plain floating-point > or <, so NaN never wins and never counts
-- as worse, as in Python.
local json = require("nnunet.json")
local fs = require("nnunet.fs")
local evaluate = require("nnunet.evaluate")
local pp = require("nnunet.postprocessing")
local ens = require("nnunet.ensemble")
local dataset = require("nnunet.dataset")

local M = {}

M.DEFAULT_CONFIGS = { "2d", "3d_fullres", "3d_lowres", "3d_cascade_fullres" }
M.DEFAULT_FOLDS = { 0, 1, 2, 3, 4 }
M.DEFAULT_NUM_PROCESSES = 8         -- default_num_processes, as printed in the commands

local function user_error(fmt, ...)
  error({ user_error = true, message = string.format(fmt, ...) }, 0)
end

local join = evaluate.join

-- ---------------------------------------------------------------- names

function M.folds_string(folds)
  local parts = {}
  for i, f in ipairs(folds) do parts[i] = tostring(f) end
  return table.concat(parts, "_")
end

function M.model_identifier(trainer, plans, config)
  return string.format("%s__%s__%s", trainer, plans, config)
end

function M.parse_identifier(id)
  local base = id:match("([^/]+)/*$") or id
  local tr, pl, c = base:match("^(.-)__(.-)__(.+)$")
  if not tr then user_error("'%s' is not a <trainer>__<plans>__<configuration> identifier", id) end
  return tr, pl, c
end

function M.ensemble_identifier(id1, id2, folds)
  return string.format("ensemble___%s___%s___%s", id1, id2, M.folds_string(folds))
end

-- ---------------------------------------------------------------- files

-- Removes path and everything below it. A symbolic link is removed, never followed
-- (fs.remove unlinks it before any directory test).
function M.rmtree(path)
  if fs.remove(path) then return end
  if not fs.isdir(path) then
    if fs.exists(path) then user_error("cannot remove '%s'", path) end
    return
  end
  for _, n in ipairs(fs.listdir(path) or {}) do M.rmtree(join(path, n)) end
  local ok, err = fs.remove(path)
  if not ok then user_error("%s", tostring(err)) end
end

local function mkdir(path)
  local ok, err = fs.mkdir(path)
  if not ok then user_error("%s", tostring(err)) end
end

local function load_summary(path)
  local v, err = json.decode_file(path)
  if not v then user_error("cannot read '%s': %s", path, tostring(err)) end
  if type(v.foreground_mean) ~= "table" or type(v.mean) ~= "table" then
    user_error("'%s' is not a summary.json (no foreground_mean/mean)", path)
  end
  return v
end
M.load_summary = load_summary

-- M.num_processes (the recipes' -np; default 1): threads reading and counting the cases
local function evaluate_folder(folder_ref, folder_pred, lm)
  return evaluate.compute_metrics_on_folder(folder_ref, folder_pred, join(folder_pred, "summary.json"),
    lm.file_ending, lm.regions_or_labels, lm.ignore_label, { chill = true, num_processes = M.num_processes })
end

-- ---------------------------------------------------------------- cross-validation

-- Copies the validation predictions of the given folds into merged_folder (each case
-- from exactly one fold), with dataset.json and plans.json, and evaluates them
-- against gt_folder into merged_folder/summary.json. opts.overwrite (default true)
-- starts from an empty folder. Returns the summary table.
function M.accumulate_cv_results(model_folder, merged_folder, folds, gt_folder, opts)
  opts = opts or {}
  local overwrite = opts.overwrite ~= false
  local dj = join(model_folder, "dataset.json")
  if not fs.isfile(dj) then
    user_error("'%s' not found: is '%s' a trained model folder (nnunet train writes it)?", dj, model_folder)
  end
  if overwrite and fs.exists(merged_folder) then M.rmtree(merged_folder) end
  mkdir(merged_folder)
  local lm = evaluate.label_manager(dj)
  ens.copy_file(dj, join(merged_folder, "dataset.json"))
  local plans = join(model_folder, "plans.json")
  if fs.isfile(plans) then ens.copy_file(plans, join(merged_folder, "plans.json")) end
  local copied = false
  for _, f in ipairs(folds) do
    local vdir = join(join(model_folder, "fold_" .. tostring(f)), "validation")
    if not fs.isdir(vdir) then
      user_error("fold %s of model '%s' is missing: '%s' does not exist. Train it (nnunet train ... -f %s).",
        tostring(f), model_folder, vdir, tostring(f))
    end
    local files = ens.subfiles(vdir, lm.file_ending)
    if #files == 0 then
      user_error("fold %s of model '%s' has no validation predictions in '%s' (did the final validation run?)",
        tostring(f), model_folder, vdir)
    end
    for _, n in ipairs(files) do
      local dst = join(merged_folder, n)
      if overwrite and fs.isfile(dst) then
        user_error("more than one fold of model '%s' has a prediction for case '%s' (fold %s is one of them)",
          model_folder, n, tostring(f))
      end
      if overwrite or not fs.isfile(dst) then
        ens.copy_file(join(vdir, n), dst)
        copied = true
      end
    end
  end
  if copied or not fs.isfile(join(merged_folder, "summary.json")) then
    if not fs.isdir(gt_folder) then user_error("reference folder '%s' not found", gt_folder) end
    return evaluate_folder(gt_folder, merged_folder, lm)
  end
  return load_summary(join(merged_folder, "summary.json"))
end

-- ---------------------------------------------------------------- postprocessing

-- determine_postprocessing (§10): on the predictions in folder_predictions, tries
-- keep-largest for all foreground labels together, then (with more than one
-- label/region) for each label/region in declaration order, each evaluated against
-- folder_ref; writes folder_predictions/postprocessing.json and the postprocessed
-- predictions to folder_predictions/postprocessed/ (with the summary.json of the
-- accepted state). opts: dataset_json (default folder_predictions/dataset.json),
-- log = fn(line), keep_postprocessed_files (default true).
-- Returns the steps ({ {fn, labels_or_regions}, ... }) and the postprocessing.json table.
function M.determine_postprocessing(folder_predictions, folder_ref, opts)
  opts = opts or {}
  local log = opts.log or function() end
  local dj = opts.dataset_json or join(folder_predictions, "dataset.json")
  if not fs.isfile(dj) then
    user_error("expected '%s' (dataset.json of the predictions) is missing", dj)
  end
  local lm = evaluate.label_manager(dj)
  local labels_or_regions = lm.regions_or_labels
  local output_folder = join(folder_predictions, "postprocessed")
  local temp = join(output_folder, "temp")

  local predicted = ens.subfiles(folder_predictions, lm.file_ending)
  if #predicted == 0 then user_error("no predictions (*%s) in '%s'", lm.file_ending, folder_predictions) end
  local have = {}
  for _, n in ipairs(predicted) do have[n] = true end
  for _, n in ipairs(ens.subfiles(folder_ref, lm.file_ending)) do
    if not have[n] then
      log("WARNING: Not all files in folder_ref were found in folder_predictions. Determining postprocessing "
        .. "should always be done on the entire dataset!")
      break
    end
  end

  local summary_path = join(folder_predictions, "summary.json")
  local raw = fs.isfile(summary_path) and load_summary(summary_path) or evaluate_folder(folder_ref, folder_predictions, lm)

  if fs.exists(temp) then M.rmtree(temp) end
  local steps = {}
  local source, source_summary = folder_predictions, raw

  -- 1. all foreground labels as one mask (labels, also for region models)
  local here = join(temp, "keep_largest_fg")
  mkdir(here)
  local step = { fn = pp.KEEP_LARGEST, labels_or_regions = json.array(table.move(lm.foreground_labels, 1,
    #lm.foreground_labels, 1, {})) }
  pp.apply_to_folder(folder_predictions, here, { step }, lm.file_ending, M.num_processes)
  local res = evaluate_folder(folder_ref, here, lm)
  local do_this = res.foreground_mean.Dice > raw.foreground_mean.Dice
  if do_this then
    for k, v in pairs(res.mean) do
      if v.Dice < raw.mean[k].Dice then do_this = false; break end
    end
  end
  if do_this then
    log(string.format("Results were improved by removing all but the largest foreground region. "
      .. "Mean dice before: %.5f after: %.5f", raw.foreground_mean.Dice, res.foreground_mean.Dice))
    source, source_summary = here, res
    steps[#steps + 1] = step
  else
    log("Removing all but the largest foreground region did not improve results!")
  end

  -- 2. each label / region alone, in declaration order, on the current baseline
  if #labels_or_regions > 1 then
    local best_dir = join(temp, "keep_largest_perClassOrRegion_currentBest")
    for _, r in ipairs(labels_or_regions) do
      local k = evaluate.key(r)
      local lr = type(r) == "table" and json.array(table.move(r, 1, #r, 1, {})) or r
      local s = { fn = pp.KEEP_LARGEST, labels_or_regions = lr }
      here = join(temp, "keep_largest_perClassOrRegion")
      mkdir(here)
      pp.apply_to_folder(source, here, { s }, lm.file_ending, M.num_processes)
      res = evaluate_folder(folder_ref, here, lm)
      local before, after = source_summary.mean[k].Dice, res.mean[k].Dice
      if after > before then
        log(string.format("Results were improved by removing all but the largest component for %s. "
          .. "Dice before: %.5f after: %.5f", k, before, after))
        if fs.exists(best_dir) then M.rmtree(best_dir) end
        local ok, err = fs.rename(here, best_dir)
        if not ok then user_error("%s", tostring(err)) end
        source, source_summary = best_dir, res
        steps[#steps + 1] = s
      else
        log(string.format("Removing all but the largest component for %s did not improve results! "
          .. "Dice before: %.5f after: %.5f", k, before, after))
      end
    end
  end

  -- 3. the accepted state (every file of the source folder, its summary.json included)
  mkdir(output_folder)
  for _, n in ipairs(ens.subfiles(source)) do ens.copy_file(join(source, n), join(output_folder, n)) end
  local final = load_summary(join(output_folder, "summary.json"))
  local pp_json = pp.to_json(steps, {
    input_folder = { foreground_mean = raw.foreground_mean, mean = raw.mean },
    postprocessed = { foreground_mean = final.foreground_mean, mean = final.mean },
  })
  local ok, err = json.write_file_atomic(join(folder_predictions, "postprocessing.json"), pp_json, { indent = 4 })
  if not ok then user_error("cannot write postprocessing.json: %s", tostring(err)) end
  M.rmtree(temp)
  if opts.keep_postprocessed_files == false then M.rmtree(output_folder) end
  return steps, pp_json
end

-- ---------------------------------------------------------------- commands

-- The configuration dict of a plans table, with inherits_from resolved.
local function resolve_configuration(plans, name, seen)
  local confs = type(plans) == "table" and plans.configurations or nil
  local c = confs and confs[name]
  if type(c) ~= "table" then return nil end
  seen = seen or {}
  if seen[name] then user_error("plans: configuration '%s' inherits from itself", name) end
  seen[name] = true
  local out = {}
  if c.inherits_from then
    for k, v in pairs(resolve_configuration(plans, c.inherits_from, seen) or {}) do out[k] = v end
  end
  for k, v in pairs(c) do if k ~= "inherits_from" then out[k] = v end end
  return out
end
M.resolve_configuration = resolve_configuration

-- One `nnunet predict` command; for a cascade stage (previous_stage in the plans)
-- the previous stage's command comes first, on its own line.
function M.inference_command(o)
  local fold_parts = {}
  for i, f in ipairs(o.folds) do fold_parts[i] = tostring(f) end
  local lines = {}
  local prev_folder
  if o.plans_table then
    local conf = resolve_configuration(o.plans_table, o.configuration)
    if conf and type(conf.previous_stage) == "string" then
      prev_folder = o.prev_stage_folder or "OUTPUT_FOLDER_PREV_STAGE"
      lines[#lines + 1] = M.inference_command({ dataset = o.dataset, configuration = conf.previous_stage,
        plans = o.plans, trainer = o.trainer, folds = o.folds, plans_table = o.plans_table,
        input_folder = o.input_folder, output_folder = prev_folder })
    end
  end
  local cmd = string.format("nnunet predict -d %s -i %s -o %s -f %s -tr %s -c %s -p %s", tostring(o.dataset),
    o.input_folder or "INPUT_FOLDER", o.output_folder or "OUTPUT_FOLDER", table.concat(fold_parts, " "),
    o.trainer, o.configuration, o.plans)
  if prev_folder then cmd = cmd .. " -prev_stage_predictions " .. prev_folder end
  if o.save_probabilities then cmd = cmd .. " --save_probabilities" end
  lines[#lines + 1] = cmd
  return table.concat(lines, "\n")
end

-- inference_instructions.txt (print_inference_instructions with our commands).
-- opts.plans_of(model) -> plans table or nil (to find cascade stages).
function M.inference_instructions(info, opts)
  opts = opts or {}
  local out = { "***Run inference like this:***", "" }
  local best = info.best_model_or_ensemble
  local models = best.selected_model_or_models
  local is_ensemble = #models > 1
  if is_ensemble then
    out[#out + 1] = "An ensemble won! What a surprise! Run the following commands to run predictions with the "
      .. "ensemble members:"
    out[#out + 1] = ""
  end
  local folders = {}
  for j, m in ipairs(models) do
    local of = is_ensemble and ("OUTPUT_FOLDER_MODEL_" .. j) or "OUTPUT_FOLDER"
    folders[j] = of
    out[#out + 1] = M.inference_command({ dataset = info.dataset_name_or_id, configuration = m.configuration,
      plans = m.plans_identifier, trainer = m.trainer, folds = info.folds, output_folder = of,
      save_probabilities = is_ensemble, plans_table = opts.plans_of and opts.plans_of(m) or nil,
      prev_stage_folder = is_ensemble and ("OUTPUT_FOLDER_PREV_STAGE_MODEL_" .. j) or nil })
  end
  if is_ensemble then
    out[#out + 1] = ""
    out[#out + 1] = "Then run ensembling with:"
    out[#out + 1] = ""
    out[#out + 1] = string.format("nnunet ensemble -i %s -o OUTPUT_FOLDER -np %d", table.concat(folders, " "),
      M.DEFAULT_NUM_PROCESSES)
  end
  out[#out + 1] = ""
  out[#out + 1] = "***Once inference is completed, run postprocessing like this:***"
  out[#out + 1] = ""
  out[#out + 1] = string.format("nnunet apply_postprocessing -i OUTPUT_FOLDER -o OUTPUT_FOLDER_PP -pp_pkl_file %s "
    .. "-np %d -plans_json %s", best.postprocessing_file, M.DEFAULT_NUM_PROCESSES, best.some_plans_file)
  return table.concat(out, "\n") .. "\n"
end

-- ---------------------------------------------------------------- find_best_configuration

local function read_plans(path)
  local v, err = json.decode_file(path)
  if not v then user_error("cannot read plans '%s': %s", path, tostring(err)) end
  return v
end

-- opts = { dataset = id or name (required), configs, trainers, plans (lists),
--          folds = {0..4}, allow_ensembling = true, overwrite = true, log = fn(line) }
-- Folders come from nnUNet_results / nnUNet_preprocessed / nnUNet_raw, or from
-- opts.results_dir / opts.preprocessed_dir (the dataset's folders) / opts.raw_dir.
function M.find_best_configuration(opts)
  local log = opts.log or print
  local name, nerr = dataset.resolve_name(opts.dataset)
  if not name then user_error("%s", nerr) end
  local results_dir = opts.results_dir or dataset.results_dir(name)
  local pre_dir = opts.preprocessed_dir or dataset.preprocessed_dir(name)
  local raw_root = opts.raw_dir or dataset.env("nnUNet_raw")
  local folds = opts.folds or M.DEFAULT_FOLDS
  local configs = opts.configs or M.DEFAULT_CONFIGS
  local trainers = opts.trainers or { "nnUNetTrainer" }
  local plans_names = opts.plans or { "nnUNetPlans" }
  local allow_ensembling = opts.allow_ensembling ~= false
  local overwrite = opts.overwrite ~= false

  -- candidates: trainers x configurations x plans, as the reference's loops
  local models = {}
  for _, t in ipairs(trainers) do
    for _, c in ipairs(configs) do
      for _, p in ipairs(plans_names) do
        local plans_file = join(pre_dir, p .. ".json")
        if not fs.isfile(plans_file) then user_error("plans file '%s' not found", plans_file) end
        local plans = read_plans(plans_file)
        if type(plans.configurations) ~= "table" or plans.configurations[c] == nil then
          log(string.format("Configuration %s not found in plans %s.\nInferred plans file: %s.", c, p, plans_file))
        else
          local folder = join(results_dir, M.model_identifier(t, p, c))
          if not fs.isdir(folder) then
            user_error("trained model %s has no output folder: expected '%s'. Train it first (all requested folds; "
              .. "with --npz to allow ensembling), or restrict the candidates with -c/-tr/-p.",
              M.model_identifier(t, p, c), folder)
          end
          models[#models + 1] = { trainer = t, plans = p, configuration = c, folder = folder,
            identifier = M.model_identifier(t, p, c) }
        end
      end
    end
  end
  if #models == 0 then
    user_error("no candidate model: none of the configurations %s is in the plans", table.concat(configs, ", "))
  end

  local gt_seg = join(pre_dir, "gt_segmentations")
  local gt_cv = raw_root and join(join(raw_root, name), "labelsTr") or nil
  if not (gt_cv and fs.isdir(gt_cv)) then gt_cv = gt_seg end
  if not fs.isdir(gt_seg) then gt_seg = gt_cv end        -- either holds the same label files
  if not fs.isdir(gt_cv) then
    user_error("no reference segmentations: neither '%s' nor nnUNet_raw/%s/labelsTr exists", gt_seg, name)
  end

  local results = {}     -- in insertion order: single models, then ensembles
  local fs_str = M.folds_string(folds)
  local first_cases
  for _, m in ipairs(models) do
    local merged = join(m.folder, "crossval_results_folds_" .. fs_str)
    log(string.format("%s: gathering the validation predictions of folds %s", m.identifier, table.concat(folds, " ")))
    local summary = M.accumulate_cv_results(m.folder, merged, folds, gt_cv, { overwrite = overwrite })
    -- every candidate must be scored on the same cases (stricter than the reference,
    -- which would compare scores over different case sets)
    local lm = evaluate.label_manager(join(m.folder, "dataset.json"))
    local cases = ens.subfiles(merged, lm.file_ending)
    if first_cases == nil then
      first_cases = { list = cases, set = {}, folder = merged }
      for _, n in ipairs(cases) do first_cases.set[n] = true end
    else
      local set = {}
      for _, n in ipairs(cases) do set[n] = true end
      for _, n in ipairs(first_cases.list) do
        if not set[n] then
          user_error("the cross-validation predictions of the candidates differ: '%s' has no '%s' but '%s' has",
            merged, n, first_cases.folder)
        end
      end
      for _, n in ipairs(cases) do
        if not first_cases.set[n] then
          user_error("the cross-validation predictions of the candidates differ: '%s' has '%s' but '%s' has not",
            merged, n, first_cases.folder)
        end
      end
    end
    results[#results + 1] = { id = m.identifier, source = merged, result = summary.foreground_mean.Dice, models = { m } }
  end

  if allow_ensembling then
    for i = 1, #models do
      for j = i + 1, #models do
        local m1, m2 = models[i], models[j]
        local id = M.ensemble_identifier(m1.identifier, m2.identifier, folds)
        local out = join(join(results_dir, "ensembles"), id)
        log(string.format("ensembling %s and %s", m1.identifier, m2.identifier))
        ens.ensemble_crossvalidations({ m1.folder, m2.folder }, out, folds,
          { overwrite = overwrite, num_processes = M.num_processes })
        local lm = evaluate.label_manager(join(m1.folder, "dataset.json"))
        local summary = evaluate_folder(gt_seg, out, lm)
        results[#results + 1] = { id = id, source = out, result = summary.foreground_mean.Dice, models = { m1, m2 } }
      end
    end
  end

  -- best: Python's max() over the scores, then the first with that score
  local best_score = results[1].result
  for k = 2, #results do
    if results[k].result > best_score then best_score = results[k].result end
  end
  local best
  for _, r in ipairs(results) do
    if r.result == best_score then best = r; break end
  end
  log("")
  log("***All results:***")
  for _, r in ipairs(results) do log(string.format("%s: %s", r.id, json.format_number(r.result))) end
  if not best then
    user_error("no best model: the foreground-mean Dice is NaN (a label that occurs in no reference and no "
      .. "prediction makes the mean NaN)")
  end
  log(string.format("\n*Best*: %s: %s", best.id, json.format_number(best.result)))
  log("")
  log("***Determining postprocessing for best model/ensemble***")
  M.determine_postprocessing(best.source, gt_seg, { dataset_json = join(best.source, "dataset.json"), log = log })

  local considered = {}
  for i, m in ipairs(models) do
    considered[i] = { plans = m.plans, configuration = m.configuration, trainer = m.trainer }
  end
  local all_results = {}                  -- written with sorted keys, as save_json(sort_keys=True)
  for _, r in ipairs(results) do all_results[r.id] = r.result end
  local selected = {}
  for i, m in ipairs(best.models) do
    selected[i] = { configuration = m.configuration, trainer = m.trainer, plans_identifier = m.plans }
  end
  local post = load_summary(join(join(best.source, "postprocessed"), "summary.json"))
  local info = {
    folds = json.array(table.move(folds, 1, #folds, 1, {})),
    dataset_name_or_id = tostring(opts.dataset),
    considered_models = considered,
    ensembling_allowed = allow_ensembling,
    all_results = all_results,
    best_model_or_ensemble = {
      result_on_crossval_pre_pp = best.result,
      result_on_crossval_post_pp = post.foreground_mean.Dice,
      postprocessing_file = join(best.source, "postprocessing.json"),
      some_plans_file = join(best.source, "plans.json"),
      selected_model_or_models = selected,
    },
  }
  local ok, err = json.write_file_atomic(join(results_dir, "inference_information.json"), info, { indent = 4 })
  if not ok then user_error("cannot write inference_information.json: %s", tostring(err)) end
  local plans_cache = {}
  local text = M.inference_instructions(info, { plans_of = function(m)
    local f = join(join(results_dir, M.model_identifier(m.trainer, m.plans_identifier, m.configuration)), "plans.json")
    if plans_cache[f] == nil then plans_cache[f] = fs.isfile(f) and read_plans(f) or false end
    return plans_cache[f] or nil
  end })
  local f, ferr = io.open(join(results_dir, "inference_instructions.txt"), "wb")
  if not f then user_error("cannot write inference_instructions.txt: %s", tostring(ferr)) end
  f:write(text)
  f:close()
  log("")
  log(text)
  return info, text
end

return M
