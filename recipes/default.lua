-- one command from a raw dataset to a chosen, postprocessed model (and predictions): fingerprint, plan, preprocess, train, select, predict
--
-- nnunet default -d ID [-c CONFIGS...] [-f FOLDS...] [-num_epochs N] [-num_iterations_per_epoch N]
--   [-num_val_iterations N] [-i INPUT -o OUTPUT] [-np N] [-device cpu|cuda|auto]
--   [-gpu_memory_target GB] [--set KEY=VALUE...] [--disable_ensembling] [--disable_tta] [--no_fsync]
--
-- The reference's workflow (nnunet-behaviour.md §14 "typical workflow", Appendix I) as one
-- recipe, each step the same recipe a user would type:
--   1. fingerprint          (extract_fingerprint; kept when it exists)
--   2. plans                (plan_experiment; kept when nnUNetPlans.json exists)
--   3. preprocessing        (preprocess; valid case files are kept)
--   4. training             every configuration x fold, in the order 2d, 3d_lowres, 3d_fullres,
--                           3d_cascade_fullres (all low-res folds before the cascade), with --npz
--                           so that pairwise ensembles can be scored; a fold with checkpoint_final
--                           and validation/summary.json is skipped, one with checkpoint_final
--                           only is validated (--val), one with checkpoint_latest/best is
--                           continued (--c), otherwise trained from scratch
--   5. find_best_configuration over the trained configurations and folds (skipped when
--                           nothing was trained in this run and inference_information.json exists)
--   6. with -i/-o: the winner's predictions (predict; a cascade predicts its previous stage
--                           first), the ensemble of two winners (ensemble) and the chosen
--                           postprocessing (apply_postprocessing) into OUTPUT; intermediate
--                           predictions go to OUTPUT_raw/. Cases already predicted are kept
--                           (--continue_prediction) unless the selection was redone in this run.
-- Every skipped step prints a line starting with "[default] skip:"; the steps run print
-- "[default] run:" and the equivalent command line.
local dataset = require("nnunet.dataset")
local fs = require("nnunet.fs")
local json = require("nnunet.json")
local recipe = require("nnunet.recipe")
local sys = require("nnunet.sys")

local ALL_CONFIGS = { "2d", "3d_lowres", "3d_fullres", "3d_cascade_fullres" }

local M = {
  summary = "one command: fingerprint, plan, preprocess, train all configurations x folds, pick the best, predict (resumable)",
  options = {
    { "-d", "dataset", "dataset id (4, 004) or name (Dataset004_Hippocampus)", required = true },
    { "-c", "configs", "configurations to train (default: every one in the plans)", nargs = "+" },
    { "-f", "folds", "folds to train (0-4, or 'all')", nargs = "+", default = { "0", "1", "2", "3", "4" } },
    { "-tr", "trainer", "trainer", default = "nnUNetTrainer" },
    { "-num_epochs", "num_epochs", "epochs per fold (default: the trainer's; 1000 for nnUNetTrainer)", type = "int" },
    { "-num_iterations_per_epoch", "num_iterations_per_epoch", "training iterations per epoch (reference: 250)",
      type = "int", default = 250 },
    { "-num_val_iterations", "num_val_iterations", "validation iterations per epoch (reference: 50)",
      type = "int", default = 50 },
    { "-i", "input", "folder of images to predict with the chosen model (CASE_0000<ending> ...)" },
    { "-o", "output", "output folder of the final (postprocessed) predictions" },
    { "-np", "num_processes", "worker threads of fingerprint/preprocessing (0: all CPUs)", type = "int", default = 0 },
    { "-device", "device", "cpu, cuda or auto", default = "auto", choices = { "cpu", "cuda", "auto" } },
    { "-gpu_memory_target", "gpu_memory_target", "planning: GPU memory budget in GB (default 8)", type = "number" },
    { "--set", "set", "planning: override a setting of rules/defaults.lua (KEY=VALUE)", nargs = "+" },
    { "--disable_ensembling", "disable_ensembling", "do not consider ensembles of two configurations", flag = true },
    { "--disable_tta", "disable_tta", "predict without mirroring (faster)", flag = true },
    { "--no_fsync", "no_fsync", "skip fsync before atomic renames (faster on slow disks; still atomic)", flag = true },
    { "--quiet", "quiet", "fewer progress bars", flag = true },
  },
}

local function user_error(fmt, ...)
  error({ user_error = true, message = string.format(fmt, ...) }, 0)
end

local function join(a, b) return (a:gsub("/+$", "")) .. "/" .. b end

local function say(fmt, ...)
  io.stdout:write("[default] ", string.format(fmt, ...), "\n")
  io.stdout:flush()
end

local function step(name, argv)
  say("run: nnunet %s %s", name, table.concat(argv, " "))
  local st = recipe.call(name, argv)
  collectgarbage()   -- networks and loaders of a finished step are released before the next
  if st ~= 0 then user_error("step 'nnunet %s' failed (exit %s)", name, tostring(st)) end
end

local function contains(list, x)
  for _, v in ipairs(list) do if v == x then return true end end
  return false
end

-- configurations to train, in training order (a cascade's previous stage first)
function M.training_order(plans, requested)
  local present = plans.configurations or {}
  local want = {}
  if requested then
    for _, c in ipairs(requested) do
      if not present[c] then user_error("configuration '%s' is not in the plans", c) end
      want[c] = true
    end
  else
    for _, c in ipairs(ALL_CONFIGS) do if present[c] then want[c] = true end end
  end
  -- a cascade stage needs its previous stage trained (added when not requested)
  local added = {}
  for c in pairs(want) do
    local prev = type(present[c]) == "table" and present[c].previous_stage
    if prev and not want[prev] then added[#added + 1] = prev end
  end
  for _, p in ipairs(added) do want[p] = true end
  local order = {}
  for _, c in ipairs(ALL_CONFIGS) do if want[c] then order[#order + 1] = c end end
  local custom = {}
  for c in pairs(want) do if not contains(ALL_CONFIGS, c) then custom[#custom + 1] = c end end
  table.sort(custom)
  for _, c in ipairs(custom) do order[#order + 1] = c end
  return order, added
end

-- what a fold folder needs: "done", "validate" (final checkpoint without summary),
-- "continue" (a latest/best checkpoint) or "train"
function M.fold_state(folder)
  if fs.isfile(join(folder, "checkpoint_final.pth")) then
    if fs.isfile(join(join(folder, "validation"), "summary.json")) then return "done" end
    return "validate"
  end
  if fs.isfile(join(folder, "checkpoint_latest.pth")) or fs.isfile(join(folder, "checkpoint_best.pth")) then
    return "continue"
  end
  return "train"
end

function M.run(o)
  local t_start = sys.clock()
  local name, nerr = dataset.resolve_name(o.dataset)
  if not name then user_error("%s", nerr) end
  if (o.input == nil) ~= (o.output == nil) then user_error("-i and -o go together") end
  local ds, derr = dataset.open(name)
  if not ds then user_error("%s", derr) end
  local pre_dir = dataset.preprocessed_dir(name)
  local quiet = o.quiet and { "--quiet" } or {}

  -- 1. fingerprint
  local fp_path = join(pre_dir, "dataset_fingerprint.json")
  if fs.isfile(fp_path) then say("skip: fingerprint %s exists", fp_path)
  else
    say("run: nnunet extract_fingerprint -d %s", name)
    recipe.load("extract_fingerprint").extract(ds, { num_processes = o.num_processes, quiet = o.quiet })
  end

  -- 2. plans
  local plans_path = join(pre_dir, "nnUNetPlans.json")
  if fs.isfile(plans_path) then say("skip: plans %s exist", plans_path)
  else
    local argv = { "-d", name }
    if o.gpu_memory_target then argv[#argv + 1] = "-gpu_memory_target"; argv[#argv + 1] = tostring(o.gpu_memory_target) end
    if o.set then
      argv[#argv + 1] = "--set"
      for _, s in ipairs(o.set) do argv[#argv + 1] = s end
    end
    step("plan_experiment", argv)
  end
  local plans, perr = json.decode_file(plans_path)
  if not plans then user_error("cannot read %s: %s", plans_path, tostring(perr)) end
  local configs, added = M.training_order(plans, o.configs)
  for _, a in ipairs(added) do say("note: %s added (previous stage of a requested cascade)", a) end
  say("configurations: %s; folds: %s", table.concat(configs, ", "), table.concat(o.folds, ", "))

  -- 3. preprocessing (valid case files are kept by the preprocess recipe itself)
  do
    local argv = { "-d", name, "-c" }
    for _, c in ipairs(configs) do argv[#argv + 1] = c end
    argv[#argv + 1] = "-np"
    argv[#argv + 1] = tostring(o.num_processes)
    if o.no_fsync then argv[#argv + 1] = "--no_fsync" end
    for _, q in ipairs(quiet) do argv[#argv + 1] = q end
    step("preprocess", argv)
  end

  -- 4. training
  local results = dataset.results_dir(name)
  local trained = 0
  for _, c in ipairs(configs) do
    for _, f in ipairs(o.folds) do
      local folder = join(join(results, string.format("%s__nnUNetPlans__%s", o.trainer, c)), "fold_" .. tostring(f))
      local state = M.fold_state(folder)
      if state == "done" then
        say("skip: %s fold %s is trained and validated (%s)", c, f, folder)
      else
        local argv = { "-d", name, "-c", c, "-f", tostring(f), "-tr", o.trainer, "--npz", "-device", o.device,
          "-num_iterations_per_epoch", tostring(o.num_iterations_per_epoch),
          "-num_val_iterations", tostring(o.num_val_iterations) }
        if o.num_epochs then argv[#argv + 1] = "-num_epochs"; argv[#argv + 1] = tostring(o.num_epochs) end
        if state == "validate" then argv[#argv + 1] = "--val"
        elseif state == "continue" then argv[#argv + 1] = "--c" end
        step("train", argv)
        trained = trained + 1
      end
    end
  end

  -- 5. model selection (integer folds only, as the reference's -f)
  local int_folds = {}
  for _, f in ipairs(o.folds) do
    local n = math.tointeger(tonumber(f))
    if n then int_folds[#int_folds + 1] = tostring(n) end
  end
  local info_path = join(results, "inference_information.json")
  local selected_now = false
  if #int_folds == 0 then
    say("skip: find_best_configuration needs cross-validation folds (only 'all' was trained)")
  elseif trained == 0 and fs.isfile(info_path) then
    say("skip: %s exists and nothing was trained in this run", info_path)
  else
    local argv = { "-d", name, "-tr", o.trainer, "-c" }
    for _, c in ipairs(configs) do argv[#argv + 1] = c end
    argv[#argv + 1] = "-f"
    for _, f in ipairs(int_folds) do argv[#argv + 1] = f end
    if o.disable_ensembling then argv[#argv + 1] = "--disable_ensembling" end
    step("find_best_configuration", argv)
    selected_now = true
  end

  -- 6. prediction of a folder with the chosen model(s)
  if o.input then
    M.predict_folder(o, name, results, info_path, selected_now)
  end
  say("finished in %.1f s", sys.clock() - t_start)
  return 0
end

-- The inference instructions, carried out (find_best_configuration's
-- inference_information.json): predict with each selected model, ensemble when there
-- are two, apply the chosen postprocessing into o.output.
function M.predict_folder(o, name, results, info_path, selected_now)
  local info
  local folds = {}
  if fs.isfile(info_path) then
    local err
    info, err = json.decode_file(info_path)
    if not info then user_error("cannot read %s: %s", info_path, tostring(err)) end
    for i, f in ipairs(info.folds) do folds[i] = tostring(math.tointeger(f) or f) end
  end
  local models, pp_file
  if info then
    models = info.best_model_or_ensemble.selected_model_or_models
    pp_file = info.best_model_or_ensemble.postprocessing_file
  else
    -- only fold 'all' trained: the first configuration, no postprocessing decision
    local configs = M.training_order(json.decode_file(join(dataset.preprocessed_dir(name), "nnUNetPlans.json")),
      o.configs)
    models = { { configuration = configs[#configs], trainer = o.trainer, plans_identifier = "nnUNetPlans" } }
    folds = o.folds
  end
  local raw_root = o.output:gsub("/+$", "") .. "_raw"
  local ensemble = #models > 1
  local folders = {}
  for j, m in ipairs(models) do
    local out = join(raw_root, m.configuration)
    folders[j] = out
    local argv = { "-i", o.input, "-o", out, "-d", name, "-c", m.configuration, "-tr", m.trainer,
      "-p", m.plans_identifier, "-device", o.device, "-f" }
    for _, f in ipairs(folds) do argv[#argv + 1] = f end
    if ensemble then argv[#argv + 1] = "--save_probabilities" end
    if o.disable_tta then argv[#argv + 1] = "--disable_tta" end
    if not selected_now then argv[#argv + 1] = "--continue_prediction" end
    if o.quiet then argv[#argv + 1] = "--disable_progress_bar" end
    step("predict", argv)
  end
  local seg_folder = folders[1]
  if ensemble then
    seg_folder = join(raw_root, "ensemble")
    local argv = { "-i" }
    for _, f in ipairs(folders) do argv[#argv + 1] = f end
    argv[#argv + 1] = "-o"
    argv[#argv + 1] = seg_folder
    step("ensemble", argv)
  end
  if pp_file and fs.isfile(pp_file) then
    step("apply_postprocessing", { "-i", seg_folder, "-o", o.output, "-pp_pkl_file", pp_file,
      "-plans_json", join(seg_folder, "plans.json") })
  else
    -- no postprocessing decision: the predictions are the output
    say("note: no postprocessing decision; copying %s to %s", seg_folder, o.output)
    assert(fs.mkdir(o.output))
    for _, n in ipairs(fs.listdir(seg_folder) or {}) do
      local src = join(seg_folder, n)
      if fs.isfile(src) then
        local fi = assert(io.open(src, "rb"))
        local s = fi:read("a")
        fi:close()
        local fo = assert(io.open(join(o.output, n), "wb"))
        fo:write(s)
        fo:close()
      end
    end
  end
  say("predictions of %s are in %s", o.input, o.output)
end

return M
