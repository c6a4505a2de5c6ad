-- predict a folder of images with the model in a given folder (no dataset id or nnUNet_results needed)
--
-- nnunet predict_from_modelfolder -i INPUT_FOLDER -o OUTPUT_FOLDER -m MODEL_FOLDER [-f FOLDS...]
--        [-step_size 0.5] [--disable_tta] [--save_probabilities] [-device cpu|cuda|auto] [-precision P]
--        [--continue_prediction] [-chk checkpoint_final] [-npp N] [-nps N] [-prev_stage_predictions DIR]
-- As nnUNetv2_predict_from_modelfolder (nnunet-behaviour.md §14; docs/predict.md):
-- nnunet predict's options without -d, -c, -tr, -p, -num_parts and -part_id. MODEL_FOLDER
-- is a trained model folder (plans.json, dataset.json, fold_X/<checkpoint>), e.g. one
-- installed by install_pretrained_model_from_zip. The configuration is the last part of
-- the folder name <trainer>__<plans>__<configuration> (the reference reads it from the
-- checkpoint; a renamed folder falls back to the checkpoint's init_args.configuration, in
-- this port's checkpoints or the reference's PyTorch ones).
-- A cascade stage needs -prev_stage_predictions.
local predict = require("nnunet.recipe").load("predict")
local json = require("nnunet.json")
local fs = require("nnunet.fs")
local predictor = require("nnunet.predictor")
local dataset = require("nnunet.dataset")

local function user_error(fmt, ...)
  error({ user_error = true, message = string.format(fmt, ...) }, 0)
end

local function join(a, b) return (a:gsub("/+$", "")) .. "/" .. b end

-- predict's options without the ones that locate the model in nnUNet_results
local DROP = { ["-d"] = true, ["-c"] = true, ["-tr"] = true, ["-p"] = true, ["-num_parts"] = true,
  ["-part_id"] = true }
local options = {}
for _, opt in ipairs(predict.options) do
  if opt[1] == "-o" then
    options[#options + 1] = opt
    options[#options + 1] = { "-m", "model_folder", "trained model folder (plans.json, dataset.json, fold_X/)",
      required = true }
  elseif opt[1] == "-prev_stage_predictions" then
    options[#options + 1] = { opt[1], opt[2], "cascade: folder with the previous stage's segmentations (required "
      .. "for a cascade stage)" }
  elseif not DROP[opt[1]] then
    options[#options + 1] = opt
  end
end

-- The configuration of a model folder: <trainer>__<plans>__<config> when that is a
-- configuration of its plans, else init_args.configuration of a fold's checkpoint.
local function configuration_of(model_dir, plans, checkpoint)
  local base = model_dir:gsub("/+$", ""):match("([^/]+)$") or model_dir
  local _, _, c = dataset.model_folder_parts(base)
  if c and plans.configurations[c] ~= nil then return c end
  local train = require("nnunet.train")
  local chk = predictor.checkpoint_file(checkpoint or "checkpoint_final")
  for _, n in ipairs(fs.listdir(model_dir) or {}) do
    local path = join(join(model_dir, n), chk)
    local has_torch, torch_ckpt = pcall(require, "nnunet.torch_ckpt")
    if n:match("^fold_") and fs.isfile(path) and has_torch and torch_ckpt.is_torch(path) then
      -- a reference (PyTorch) checkpoint: init_args.configuration, as the reference reads it
      local info = torch_ckpt.info(path)
      local mc = info and info.configuration
      if type(mc) == "string" and plans.configurations[mc] ~= nil then return mc end
    elseif n:match("^fold_") and fs.isfile(path) then
      local ok, ck = pcall(train.checkpoint_load, path)
      if ok and type(ck) == "table" then
        for _, o in ipairs(ck.optim or {}) do if o.tensor then o.tensor:release() end end
        local meta = json.decode(ck.meta ~= "" and ck.meta or "{}") or {}
        local mc = type(meta.init_args) == "table" and meta.init_args.configuration
        if type(mc) == "string" and plans.configurations[mc] ~= nil then return mc end
      end
    end
  end
  local names = {}
  for k in pairs(plans.configurations) do names[#names + 1] = k end
  table.sort(names)
  user_error("cannot tell the configuration of '%s': its name is not <trainer>__<plans>__<configuration> with a "
    .. "configuration of its plans.json (%s), and no checkpoint names one", model_dir, table.concat(names, ", "))
end

return {
  summary = "predict a folder of images with a trained model folder given by path (nnUNetv2_predict_from_modelfolder)",
  options = options,
  run = function(o)
    local dir = o.model_folder
    if not fs.isdir(dir) then user_error("model folder '%s' does not exist", dir) end
    local plans, perr = json.decode_file(join(dir, "plans.json"))
    if not plans then user_error("'%s' is not a trained model folder: cannot read its plans.json (%s)", dir, perr) end
    if not fs.isfile(join(dir, "dataset.json")) then
      user_error("'%s' is not a trained model folder: '%s' is missing", dir, join(dir, "dataset.json"))
    end
    if type(plans.configurations) ~= "table" then user_error("'%s' has no configurations", join(dir, "plans.json")) end
    local config = configuration_of(dir, plans, o.checkpoint)
    return predict.predict_from_model_folder(dir, config, o)
  end,
}
