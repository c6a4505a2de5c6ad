-- predict segmentations for a folder of images with trained model(s) (sliding window, mirroring, fold ensemble)
--
-- nnunet predict -i INPUT_FOLDER -o OUTPUT_FOLDER -d ID -c CONFIG [-f FOLDS...] [-tr TRAINER] [-p PLANS]
--   [-step_size 0.5] [--disable_tta] [--save_probabilities] [-device cpu|cuda|auto]
--   [-precision fp32|tf32|bf16|fp16|bf16-act16|fp16-act16]
--   [--continue_prediction] [-num_parts N -part_id K] [-chk checkpoint_final] [-npp N] [-nps N]
-- As nnUNetv2_predict (nnunet-behaviour.md §9, §14; docs/predict.md). The model is
--   $nnUNet_results/DatasetXXX_Name/<trainer>__<plans>__<config>/{plans.json, dataset.json,
--   fold_k/<chk>.pth}
-- Input files are named as imagesTs (CASE_0000<ending>, CASE_0001<ending>, ...); outputs are
-- CASE<ending> (+ CASE.npz and CASE.json with --save_probabilities). The per-case pipeline is
-- lua/nnunet/predictor.lua. Other recipes call M.predict(opts) with the same option names;
-- predict_from_modelfolder calls M.predict_from_model_folder(dir, config, opts).
local dataset = require("nnunet.dataset")
local fs = require("nnunet.fs")
local json = require("nnunet.json")
local predictor = require("nnunet.predictor")

local M = {
  summary = "predict segmentations for a folder of images (CASE_0000.nii.gz ...) with trained model(s)",
  options = {
    { "-i", "input", "input folder (files named CASE_XXXX<ending> as imagesTs)", required = true },
    { "-o", "output", "output folder (CASE<ending>)", required = true },
    { "-d", "dataset", "dataset id or name", required = true },
    { "-c", "config", "configuration (2d, 3d_fullres, 3d_lowres, ...)", required = true },
    { "-f", "folds", "folds to ensemble, or 'all' (default: every fold_X with the checkpoint)", nargs = "+" },
    { "-tr", "trainer", "trainer class name", default = "nnUNetTrainer" },
    { "-p", "plans", "plans identifier", default = "nnUNetPlans" },
    { "-step_size", "step_size", "sliding window step as a fraction of the patch size, in (0, 1]",
      type = "number", default = 0.5 },
    { "--disable_tta", "disable_tta", "no mirroring test-time augmentation (faster, slightly worse)", flag = true },
    { "--save_probabilities", "save_probabilities", "also write CASE.npz + CASE.json with class probabilities", flag = true },
    { "-device", "device", "cpu, cuda or auto (auto: CUDA when a GPU is present)", default = "auto",
      choices = { "cpu", "cuda", "auto" } },
    { "-precision", "precision", "convolution precision: fp32 or bf16 on the CPU; fp32, tf32, bf16 or fp16 on "
      .. "CUDA, bf16-act16 or fp16-act16 for 16-bit activations on CUDA (default: fp32 on the CPU, bf16-act16 on "
      .. "CUDA)",
      choices = { "fp32", "tf32", "bf16", "fp16", "bf16-act16", "fp16-act16" } },
    { "--continue_prediction", "continue_prediction", "keep cases whose output exists and predict only the others", flag = true },
    { "-num_parts", "num_parts", "split the cases into this many parts (cases[part_id::num_parts])", type = "int", default = 1 },
    { "-part_id", "part_id", "which part to predict (0-based)", type = "int", default = 0 },
    { "-chk", "checkpoint", "checkpoint name (checkpoint_final, checkpoint_best, ...)", default = "checkpoint_final" },
    { "-npp", "npp", "cases read and preprocessed ahead of the network (one background thread)", type = "int", default = 1 },
    { "-nps", "nps", "accepted for compatibility; the export runs after each case on the main thread", type = "int", default = 3 },
    { "--disable_progress_bar", "no_progress", "no progress bar", flag = true },
    { "-prev_stage_predictions", "prev_stage_predictions", "cascade: folder with the previous stage's segmentations "
      .. "(default: the previous stage is predicted first into OUTPUT_prev_stage)" },
  },
}

local function user_error(fmt, ...)
  error({ user_error = true, message = string.format(fmt, ...) }, 0)
end

local function join(a, b) return (a:gsub("/+$", "")) .. "/" .. b end

-- byte copy (fs.copy: to a temporary name, then renamed); a failure stops with its message
local function copy_file(src, dst)
  local ok, err = fs.copy(src, dst)
  if not ok then user_error("%s", err) end
end

function M.model_folder(name, trainer, plans, config)
  return join(dataset.results_dir(name), string.format("%s__%s__%s", trainer, plans, config))
end

local function parse_folds(list)
  if not list then return nil end
  local out = {}
  for _, f in ipairs(list) do
    if f == "all" then out[#out + 1] = "all"
    else
      local n = math.tointeger(tonumber(f))
      if not n or n < 0 then user_error("-f: fold must be an integer >= 0 or 'all', got '%s'", tostring(f)) end
      out[#out + 1] = n
    end
  end
  return out
end

function M.predict(o)
  local name, err = dataset.resolve_name(o.dataset)
  if not name then user_error("%s", err) end
  local model_dir = M.model_folder(name, o.trainer, o.plans, o.config)
  if not fs.isdir(model_dir) then
    user_error("model folder '%s' does not exist: train it first (nnunet train -d %s -c %s -f 0)", model_dir, name, o.config)
  end
  return M.predict_from_model_folder(model_dir, o.config, o)
end

-- Everything after the model folder is known (recipes/predict_from_modelfolder.lua
-- starts here): o as M.predict's options; dataset, trainer and plans are only used to
-- predict a cascade's previous stage when -prev_stage_predictions is not given, and
-- num_parts / part_id default to 1 / 0.
function M.predict_from_model_folder(model_dir, config, o)
  local log = function(s) io.stderr:write(s, "\n") end
  local num_parts, part_id = o.num_parts or 1, o.part_id or 0
  if not (o.step_size > 0 and o.step_size <= 1) then user_error("-step_size must be in (0, 1], got %s", o.step_size) end
  local dj, derr = json.decode_file(join(model_dir, "dataset.json"))
  if not dj then user_error("cannot read the model's dataset.json: %s", derr) end
  local ending = dj.file_ending or ".nii.gz"
  if not fs.isdir(o.input) then user_error("input folder '%s' does not exist", o.input) end
  local in_real, out_real = fs.realpath(o.input), fs.realpath(o.output)
  if in_real and out_real and in_real == out_real then
    user_error("the output folder must differ from the input folder ('%s')", o.input)
  end

  -- cases: listing, part split, then the --continue_prediction filter (reference order)
  local all = predictor.list_input_cases(o.input, ending)
  log(string.format("There are %d cases in the source folder", #all))
  if #all == 0 then   -- images in another format are the usual reason: say so
    local other = {}
    for _, n in ipairs(fs.listdir(o.input) or {}) do
      local f = require("nnunet.image").format_of(n)
      if f and n:sub(-#ending) ~= ending then other[#other + 1] = n end
    end
    if #other > 0 then
      log(string.format("WARNING: '%s' holds no *%s files (the model's dataset.json file_ending) but %d other image "
        .. "file(s), e.g. '%s': convert them to %s, named CASE_0000%s, ...", o.input, ending, #other, other[1], ending,
        ending))
    end
  end
  local cases = predictor.split_parts(all, num_parts, part_id)
  log(string.format("I am process %d out of %d (max process ID is %d, we start counting with 0!)",
    part_id, num_parts, num_parts - 1))
  log(string.format("There are %d cases that I would like to predict", #cases))
  local todo, existing = {}, 0
  for _, c in ipairs(cases) do
    local done = predictor.is_done(o.output, c.id, ending, o.save_probabilities)
    if done then existing = existing + 1 end
    if not (done and o.continue_prediction) then todo[#todo + 1] = c end
  end
  if o.continue_prediction then
    log(string.format("overwrite was set to False, so I am only working on cases that haven't been predicted yet. "
      .. "That's %d cases.", #todo))
  elseif existing > 0 then
    log(string.format("%d of these cases already have an output in '%s'; each is replaced once its new "
      .. "prediction is complete (--continue_prediction keeps them instead).", existing, o.output))
  end
  assert(fs.mkdir(o.output))
  -- the reference leaves these beside the predictions
  copy_file(join(model_dir, "dataset.json"), join(o.output, "dataset.json"))
  copy_file(join(model_dir, "plans.json"), join(o.output, "plans.json"))
  local args = {
    list_of_lists_or_source_folder = o.input, output_folder_or_list_of_truncated_output_files = o.output,
    save_probabilities = o.save_probabilities, overwrite = not o.continue_prediction,
    num_processes_preprocessing = o.npp, num_processes_segmentation_export = o.nps,
    folder_with_segs_from_prev_stage = o.prev_stage_predictions or json.null, num_parts = num_parts,
    part_id = part_id,
  }
  json.write_file_atomic(join(o.output, "predict_from_raw_data_args.json"), args, { indent = 4 })
  if #todo == 0 then
    log("Nothing to predict.")
    return 0
  end

  local model = predictor.load_model(model_dir, config, {
    folds = parse_folds(o.folds), checkpoint = o.checkpoint, device = o.device, precision = o.precision,
    step_size = o.step_size, tta = not o.disable_tta, log = log,
  })
  local prev_dir = o.prev_stage_predictions
  if model.previous_stage and not prev_dir then
    if not o.dataset then
      user_error("configuration '%s' of '%s' is a cascade stage: pass -prev_stage_predictions with the predictions "
        .. "of its previous stage '%s'", config, model_dir, model.previous_stage)
    end
    -- cascade without -prev_stage_predictions: run the previous stage first (Appendix I)
    prev_dir = o.output:gsub("/+$", "") .. "_prev_stage"
    log(string.format("Cascade: predicting the previous stage %s into %s first", model.previous_stage, prev_dir))
    local po = {}
    for k, v in pairs(o) do po[k] = v end
    po.config, po.output, po.save_probabilities, po.prev_stage_predictions = model.previous_stage, prev_dir, false, nil
    local st = M.predict(po)
    if st ~= 0 then return st end
  end
  local n = predictor.predict_cases(model, todo, o.output, {
    save_probabilities = o.save_probabilities, prefetch_depth = math.max(1, o.npp), prev_stage_predictions = prev_dir,
    progress = not o.no_progress, log = log,
  })
  log(string.format("%d case(s) predicted into %s", n, o.output))
  return 0
end

function M.run(o)
  return M.predict(o)
end

return M
