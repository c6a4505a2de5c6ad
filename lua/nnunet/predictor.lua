-- nnunet.predictor: the per-case prediction pipeline of `nnunet predict`
-- (nnunet-behaviour.md §9; docs/predict.md).
--
--   local predictor = require("nnunet.predictor")
--   local cases = predictor.list_input_cases(folder, ".nii.gz")   -- imagesTs naming
--   local model = predictor.load_model(model_dir, { folds = {0, 1}, checkpoint = "checkpoint_final",
--                                                   device = "auto", step_size = 0.5, tta = true })
--   predictor.predict_cases(model, cases, out_dir, { save_probabilities = false, ... })
--
-- A model is a plain table (so tests can build one around a stub network):
--   { plans, conf, config_name, dataset_json, lm (evaluate.label_manager),
--     preproc_cfg  (nnunet.preproc_case's cfg: training preprocessing of the plans),
--     slide        (infer.sliding_window options: patch, num_heads, step_size, mirror_axes),
--     export       (export.case options: transpose_forward, regions, resampling kwargs),
--     file_ending, num_input_channels,
--     folds = { {name = "fold_0", predictor = net-or-function, activate = function|nil}, ... } }
-- predict_cases runs, for each case in list order:
--   1. read + preprocess (transpose, crop, normalize, resample) on the background thread
--      of export.prefetch (one case ahead of the network)
--   2. for every fold: activate its weights, sliding window with Gaussian weighting and
--      mirroring -> float16 logits; the fold logits are summed and divided in float16
--   3. export: resample the logits to the cropped original shape, argmax (or regions),
--      un-crop, transpose back; CASE.npz/.json first (with --save_probabilities), then
--      CASE<ending> last, each written to a temporary name and renamed.
local export = require("nnunet.export")
local infer = require("nnunet.infer")
local fs = require("nnunet.fs")
local json = require("nnunet.json")
local progress = require("nnunet.progress")
local sys = require("nnunet.sys")

local M = {}

local function user_error(fmt, ...)
  error({ user_error = true, message = string.format(fmt, ...) }, 0)
end

local function join(a, b) return (a:gsub("/+$", "")) .. "/" .. b end

local bytes_less = require("nnunet.dataset").bytes_less   -- byte order, as Python's sorted()

local function escape_pattern(s) return (s:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0")) end

-- ---------------------------------------------------------------- input cases

-- The reference's create_lists_from_splitted_dataset_folder: identifiers are the file
-- names ending in file_ending with the last 5 characters before the ending (_XXXX)
-- removed, unique, sorted bytewise; a case's channel files are the names that fully
-- match <id>_dddd<ending>, sorted. -> { {id = , images = {paths}}, ... }
function M.list_input_cases(folder, file_ending)
  local names = fs.listdir(folder)
  if not names then user_error("input folder '%s' does not exist or cannot be read", folder) end
  local fe = escape_pattern(file_ending) .. "$"
  local files, ids, seen = {}, {}, {}
  for _, n in ipairs(names) do
    if n:find(fe) and #n >= #file_ending + 5 and fs.isfile(join(folder, n)) then
      files[#files + 1] = n
      local id = n:sub(1, #n - #file_ending - 5)
      if not seen[id] then seen[id] = true; ids[#ids + 1] = id end
    end
  end
  table.sort(files, bytes_less)
  table.sort(ids, bytes_less)
  local cases = {}
  for _, id in ipairs(ids) do
    local pat = "^" .. escape_pattern(id) .. "_%d%d%d%d" .. fe
    local images = {}
    for _, n in ipairs(files) do
      if n:find(pat) then images[#images + 1] = join(folder, n) end
    end
    cases[#cases + 1] = { id = id, images = images }
  end
  return cases
end

-- case_list[part_id::num_parts] (0-based part_id, as the reference)
function M.split_parts(cases, num_parts, part_id)
  if num_parts < 1 then user_error("-num_parts must be >= 1, got %d", num_parts) end
  if part_id < 0 or part_id >= num_parts then
    user_error("-part_id must be in 0..%d (num_parts - 1), got %d", num_parts - 1, part_id)
  end
  local out = {}
  for i = part_id + 1, #cases, num_parts do out[#out + 1] = cases[i] end
  return out
end

-- Output files of a case: <out>/<id><ending> and, with probabilities, <out>/<id>.npz (+ .json).
function M.output_paths(out_dir, id, file_ending)
  local prefix = join(out_dir, id)
  return prefix .. file_ending, prefix
end

-- The reference's --continue_prediction filter: a case is done when its segmentation
-- (and, with save_probabilities, its .npz) exists.
function M.is_done(out_dir, id, file_ending, save_probabilities)
  local seg, prefix = M.output_paths(out_dir, id, file_ending)
  if not fs.isfile(seg) then return false end
  if save_probabilities and not fs.isfile(prefix .. ".npz") then return false end
  return true
end

-- ---------------------------------------------------------------- model description

-- configuration `name` of plans with inherits_from resolved (cycles are an error);
-- the rule lives in lua/nnunet/plans.lua
M.resolve_configuration = require("nnunet.plans").resolve_configuration

-- The preprocessing cfg of a configuration: the training preprocessor's own function
-- (recipes/preprocess.lua case_config), so that training and inference preprocess alike.
local function preproc_config(plans, conf, dj)
  local pre = require("nnunet.recipe").load("preprocess")
  local cfg = pre.case_config(plans, conf, dj)
  cfg.keys = nil                                      -- no class locations at inference
  return cfg
end

-- Builds the model table (without folds) from plans, a configuration name and the
-- dataset.json table. opts: step_size (0.5), tta (true), mirror_axes (0-based list;
-- default: all axes of the patch, as the trainer's inference_allowed_mirroring_axes),
-- accum ("f16"), batch_size (1).
function M.describe(plans, config_name, dj, opts)
  opts = opts or {}
  local conf = M.resolve_configuration(plans, config_name)
  if not conf then
    local names = {}
    for k in pairs(plans.configurations or {}) do names[#names + 1] = k end
    table.sort(names)
    user_error("configuration '%s' is not in the plans (available: %s)", config_name, table.concat(names, ", "))
  end
  local evaluate = require("nnunet.evaluate")
  local lm = evaluate.label_manager(dj)
  local patch = {}
  for i, v in ipairs(conf.patch_size) do patch[i] = math.tointeger(v) end
  local mirror = {}
  if opts.tta ~= false then
    local axes = opts.mirror_axes
    if not axes then
      axes = {}
      for i = 1, #patch do axes[i] = i - 1 end
    end
    for i, a in ipairs(axes) do mirror[i] = math.tointeger(a) + 1 end   -- infer wants 1-based
  end
  local step = opts.step_size or 0.5
  if not (step > 0 and step <= 1) then user_error("-step_size must be in (0, 1], got %s", tostring(step)) end
  local num_heads = lm.has_regions and #lm.regions_or_labels or #lm.all_labels
  local rk = conf.resampling_fn_probabilities_kwargs or {}
  local fsz = rk.force_separate_z
  local tf = {}
  for i, v in ipairs(plans.transpose_forward or { 0, 1, 2 }) do tf[i] = math.tointeger(v) end
  local nch = 0
  for _ in pairs(dj.channel_names or dj.modality or {}) do nch = nch + 1 end
  -- cascade (lua/nnunet/cascade.lua): the network also takes one channel per foreground label
  local prev_stage = require("nnunet.cascade").previous_stage(conf)
  return {
    previous_stage = prev_stage, net_input_channels = nch + (prev_stage and #lm.foreground_labels or 0),
    plans = plans, conf = conf, config_name = config_name, dataset_json = dj, lm = lm,
    file_ending = dj.file_ending or ".nii.gz", num_input_channels = nch, num_heads = num_heads,
    preproc_cfg = preproc_config(plans, conf, dj), reader = require("nnunet.dataset").plans_reader(plans),
    slide = { patch = patch, num_heads = num_heads, step_size = step, mirror_axes = mirror,
              batch_size = opts.batch_size or 1, accum = opts.accum or "f16" },
    export = {
      transpose_forward = tf, n_foreground_labels = math.max(#lm.foreground_labels, 1),
      regions_class_order = lm.has_regions and dj.regions_class_order or nil,
      order = math.tointeger(rk.order) or 1, order_z = math.tointeger(rk.order_z) or 0,
      force_separate_z = type(fsz) == "boolean" and fsz or nil,
    },
    folds = {},
  }
end

-- ---------------------------------------------------------------- trained networks

-- Fold folders of a model folder that hold the checkpoint (fold_all excluded), as the
-- reference's auto_detect_available_folds; sorted numerically.
function M.available_folds(model_dir, chk_file)
  local folds = {}
  for _, n in ipairs(fs.listdir(model_dir) or {}) do
    local f = n:match("^fold_(%d+)$")
    if f and fs.isfile(join(join(model_dir, n), chk_file)) then folds[#folds + 1] = math.tointeger(tonumber(f)) end
  end
  table.sort(folds)
  return folds
end

local function checkpoint_file(name)
  if name:match("%.pth$") then return name end
  return name .. ".pth"
end
M.checkpoint_file = checkpoint_file

-- The device to run on: "cpu" or "cuda" (train and predict). auto picks CUDA when the
-- engine was built with it and a GPU initialises (netmod.cuda_available()), else the
-- CPU with the one-line message "no CUDA GPU found: using the CPU"; cuda without one
-- is a user error naming the reason.
function M.choose_device(requested, netmod, log)
  log = log or function(s) io.stderr:write(s, "\n") end
  local has_cuda, why = false, "this build of the network engine has no CUDA support"
  if netmod and type(netmod.cuda_available) == "function" then has_cuda, why = netmod.cuda_available() end
  if requested == "cuda" then
    if not has_cuda then user_error("-device cuda: %s; use -device cpu (or auto)", tostring(why)) end
    log("Using the GPU: " .. tostring(why))
    return "cuda"
  elseif requested == "auto" or requested == nil then
    if has_cuda then log("Using the GPU: " .. tostring(why)); return "cuda" end
    log("no CUDA GPU found: using the CPU" .. (why and why ~= "no CUDA GPU found" and (" (" .. why .. ")") or ""))
    return "cpu"
  end
  log("Using the CPU (-device cpu).")
  return "cpu"
end

-- Loads the model of a trained configuration from its results folder
-- ($nnUNet_results/DatasetXXX/<trainer>__<plans>__<config>): plans.json, dataset.json
-- and fold_k/<checkpoint>.pth for every fold (ours, or a reference nnU-Net checkpoint
-- written by torch.save: docs/checkpoints.md). One network is built; each fold's
-- weights are kept as a flat tensor and copied into it before that fold predicts
-- (the reference keeps one state dict per fold and loads it the same way).
-- opts: folds (list or nil = auto-detect), checkpoint, device ("cpu" | "cuda" | "auto"),
-- precision (nil: fp32 on the CPU, bf16 on CUDA; nnunet.net build), step_size, tta, log.
-- The network plugs into the sliding window at C level (its __nnu_slide_predict), so
-- every batch of windows runs the C forward on the chosen device without a Lua call.
function M.load_model(model_dir, config_name, opts)
  opts = opts or {}
  local log = opts.log or function(s) io.stderr:write(s, "\n") end
  if not fs.isdir(model_dir) then user_error("model folder '%s' does not exist (train the model first)", model_dir) end
  local plans, perr = json.decode_file(join(model_dir, "plans.json"))
  if not plans then user_error("cannot read the plans of the model: %s", perr) end
  require("nnunet.dataset").check_reader(plans, join(model_dir, "plans.json"))
  local dj, derr = json.decode_file(join(model_dir, "dataset.json"))
  if not dj then user_error("cannot read the dataset.json of the model: %s", derr) end
  local chk = checkpoint_file(opts.checkpoint or "checkpoint_final")
  local folds = opts.folds
  if not folds or #folds == 0 then
    folds = M.available_folds(model_dir, chk)
    if #folds == 0 then
      user_error("no fold_X/%s in '%s': train at least one fold, or pass -f", chk, model_dir)
    end
    log(string.format("Using folds %s (all folds with %s).", table.concat(folds, ", "), chk))
  end
  local train = require("nnunet.train")
  local ok, netmod = pcall(require, "nnunet.net")
  if not ok or type(netmod) ~= "table" then
    user_error("the network engine (module nnunet.net) is not available in this build")
  end
  local device = M.choose_device(opts.device or "auto", netmod, log)
  local loaded, mirror_axes = {}, nil
  -- checkpoints are ours (safetensors) or the reference's (torch.save zips, read by
  -- nnunet.torch_ckpt; the weights are loaded once the network is built, below)
  local has_torch, torch_ckpt = pcall(require, "nnunet.torch_ckpt")
  for _, f in ipairs(folds) do
    local fname = f == "all" and "fold_all" or ("fold_" .. tostring(f))
    local path = join(join(model_dir, fname), chk)
    if not fs.isfile(path) then user_error("checkpoint '%s' not found", path) end
    if has_torch and torch_ckpt.is_torch(path) then
      local info, ierr = torch_ckpt.info(path)
      if not info then user_error("%s", ierr) end
      if info.configuration and info.configuration ~= config_name then
        log(string.format("WARNING: '%s' was trained as configuration '%s', used here as '%s'", path,
          info.configuration, config_name))
      end
      -- the reference's inference_allowed_mirroring_axes (0-based, as ours); None or
      -- absent (e.g. nnUNetTrainerNoMirroring) means no mirroring there, so here too
      if not mirror_axes then mirror_axes = info.mirroring_axes or {} end
      loaded[#loaded + 1] = { name = fname, torch = true, path = path }
    else
      local ck, err = train.checkpoint_load(path)
      if not ck then user_error("%s", err) end
      local meta = json.decode(ck.meta ~= "" and ck.meta or "{}") or {}
      if meta.inference_allowed_mirroring_axes and not mirror_axes then
        mirror_axes = meta.inference_allowed_mirroring_axes
      end
      loaded[#loaded + 1] = { name = fname, params = ck.params, layout = ck.layout, path = path }
      for _, o in ipairs(ck.optim or {}) do if o.tensor then o.tensor:release() end end
    end
  end
  local model = M.describe(plans, config_name, dj, {
    step_size = opts.step_size, tta = opts.tta, mirror_axes = mirror_axes,
  })
  local patch = model.slide.patch
  local net = netmod.build(model.conf.architecture, {
    num_input_channels = model.net_input_channels or model.num_input_channels, num_classes = model.num_heads,
    deep_supervision = false,
    patch_size = patch, batch_size = model.slide.batch_size, device = device, precision = opts.precision,
  })
  model.net, model.device, model.precision = net, device, net:info().precision
  if device == "cuda" then log("Network precision: " .. model.precision) end
  local mt = getmetatable(net)
  local predict = (type(mt) == "table" and mt.__nnu_slide_predict) and net
    or function(batch) return net:forward(batch) end
  -- each fold's tensors must be the network's (names, shapes, order): else the error
  -- names the first mismatching tensor
  local layout = net:layout()
  for _, l in ipairs(loaded) do
    if l.torch then   -- Net:load checks every name and shape, naming the first mismatch
      local lok, lerr = net:load(l.path)
      if not lok then user_error("%s", lerr) end
      l.params = net:flat("params")
    else
      local lok, lerr = train.check_layout(l.path, l.layout, layout)
      if not lok then user_error("%s", lerr) end
    end
  end
  for _, l in ipairs(loaded) do
    model.folds[#model.folds + 1] = {
      name = l.name, predictor = predict, path = l.path,
      activate = function() net:set_flat("params", l.params) end,
    }
  end
  return model
end

-- ---------------------------------------------------------------- the pipeline

-- Predicts `cases` ({id, images}) into out_dir. opts: save_probabilities,
-- prev_stage_predictions (folder; required for a cascade stage),
-- continue_prediction (cases already done were filtered by the caller; this flag only
-- changes the log), prefetch_depth (1), progress (true), log (function(string)),
-- compression (zlib level of the NIfTI). Returns the number of cases written.
function M.predict_cases(model, cases, out_dir, opts)
  opts = opts or {}
  local log = opts.log or function(s) io.stderr:write(s, "\n") end
  if #model.folds == 0 then error("predict_cases: the model has no folds", 2) end
  assert(fs.mkdir(out_dir))
  for _, c in ipairs(cases) do
    if model.num_input_channels > 0 then
      require("nnunet.dataset").check_case_files({ file_ending = model.file_ending }, c, model.reader,
        model.num_input_channels, "the model expects")
    end
  end
  if #cases == 0 then return 0 end
  if model.previous_stage and not opts.prev_stage_predictions then
    user_error("configuration '%s' is a cascade stage: it needs the predictions of '%s' (-prev_stage_predictions)",
      model.config_name, model.previous_stage)
  end
  -- cascade: image + one-hot of the previous stage's segmentation (nnunet.cascade)
  local pf <close> = model.previous_stage
    and require("nnunet.cascade").prefetch(model, cases, opts.prev_stage_predictions)
    or export.prefetch(model.preproc_cfg, cases, opts.prefetch_depth or 1)
  local bar = opts.progress ~= false and progress.new("predict", #cases) or nil
  local nfolds = #model.folds
  local written = 0
  for i = 1, #cases do
    local c = cases[i]
    local idx, data, props = pf:next()
    if idx == nil then                                 -- nil, msg: the case's files cannot be read
      user_error("cannot read case '%s' (%s): %s", c.id, table.concat(c.images, ", "), tostring(data))
    end
    assert(idx == i, "prefetch order")
    local acc
    for f, fold in ipairs(model.folds) do
      if fold.activate then fold.activate() end
      local sopts = {}
      for k, v in pairs(model.slide) do sopts[k] = v end
      if bar then
        sopts.progress = function(done, total)
          bar.suffix = string.format("%s fold %d/%d windows %d/%d", c.id, f, nfolds, done, total)
          bar:draw(false)
        end
      end
      local logits = infer.sliding_window(data, sopts, fold.predictor)
      if acc == nil then acc = logits
      else
        export.accumulate(acc, logits)
        logits:release()
      end
    end
    data:release()
    export.divide(acc, nfolds)                          -- no-op for one fold, as the reference
    local seg_path, prefix = M.output_paths(out_dir, c.id, model.file_ending)
    local seg, probs = export.case(acc, props, model.export, opts.save_probabilities)
    acc:release()
    if probs then
      -- the .npz writer streams into its file: write under a temporary name, then rename,
      -- so that a crash never leaves a truncated CASE.npz that --continue_prediction trusts
      local tmp = prefix .. ".partial"
      local ok, err = require("nnunet.probabilities").save(tmp, probs, props:table())
      probs:release()
      if ok then ok, err = fs.rename(tmp .. ".npz", prefix .. ".npz") end
      if ok then ok, err = fs.rename(tmp .. ".json", prefix .. ".json") end
      if not ok then
        os.remove(tmp .. ".npz"); os.remove(tmp .. ".json")
        error(string.format("cannot write %s.npz: %s", prefix, tostring(err)), 0)
      end
    end
    local ok, err = export.write_seg(seg_path, seg, props, opts.compression)
    seg:release()
    if not ok then error(string.format("cannot write %s: %s", seg_path, tostring(err)), 0) end
    written = written + 1
    if bar then bar:step(1, c.id .. " done") else log("predicted " .. c.id) end
    if i % 4 == 0 then collectgarbage() end
  end
  if bar then bar:finish("") end
  pf:close()
  return written
end

return M
