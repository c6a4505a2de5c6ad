-- nnunet.model_sharing: trained models as zip files, as the reference's
-- nnunetv2/model_sharing (model_export.py, model_import.py; nnunet-behaviour.md §14).
-- docs/models.md describes the commands and the differences.
--
--   local sharing = require("nnunet.model_sharing")
--   local entries = sharing.export_entries(opts)       -- what would go into the zip, checked
--   sharing.export_pretrained_model(opts)              -- writes opts.output
--   sharing.add_checkpoint(writer, src, name [, scratch]) -- the one place a checkpoint enters a zip
--   sharing.to_torch_checkpoint(src, dst)              -- one of our checkpoints as the reference's .pth
--   sharing.install_model_from_zip(zip_path [, opts])  -- into $nnUNet_results
--
-- Zip layout (names relative to $nnUNet_results, in the reference's order), per
-- configuration <trainer>__<plans>__<config>:
--   <ds>/<model>/fold_k/debug.json (if present), every -chk checkpoint, progress.png,
--     network_architecture.pdf (if present), validation/summary.json (or, with
--     --exp_cv_preds, every file of validation/ but the probabilities)
--   <ds>/<model>/crossval_results_folds_<f>/{summary.json, postprocessing.pkl,
--     postprocessing.json} when present (every file with --exp_cv_preds)
--   <ds>/<model>/plans.json, dataset_fingerprint.json, dataset.json
-- then <ds>/ensembles/<ensemble>/ files of every ensemble made only of exported
-- configurations, and <ds>/inference_information.json, inference_instructions.txt.
local zip = require("nnunet.zip")
local json = require("nnunet.json")
local fs = require("nnunet.fs")
local dataset = require("nnunet.dataset")

local M = {}

M.DEFAULT_CONFIGS = { "3d_lowres", "3d_fullres", "2d", "3d_cascade_fullres" }
M.DEFAULT_FOLDS = { "0", "1", "2", "3", "4" }
M.DEFAULT_CHECKPOINTS = { "checkpoint_final.pth" }

local function user_error(fmt, ...)
  error({ user_error = true, message = string.format(fmt, ...) }, 0)
end

local function join(a, b) return (a:gsub("/+$", "")) .. "/" .. b end

local function ends_with(s, suffix) return suffix == "" or s:sub(-#suffix) == suffix end

-- "0" -> "fold_0", "all" -> "fold_all"
local function fold_folder(f)
  f = tostring(f)
  if f == "all" then return "fold_all" end
  if not f:match("^%d+$") then user_error("-f: fold must be an integer >= 0 or 'all', got '%s'", f) end
  return "fold_" .. tostring(math.tointeger(tonumber(f)))
end

-- the folds of a crossval_results folder name: '_'.join(str(f) for f in folds)
local function folds_string(folds)
  local parts = {}
  for i, f in ipairs(folds) do parts[i] = tostring(f) end
  return table.concat(parts, "_")
end

-- names of the plain files of a folder (sorted bytewise), none when it is absent
local function files_of(dir)
  local out = {}
  for _, n in ipairs(fs.listdir(dir) or {}) do
    if fs.isfile(join(dir, n)) then out[#out + 1] = n end
  end
  return out
end

-- The checkpoint name as given (-chk checkpoint_final.pth), or with .pth added, as
-- `nnunet predict -chk` takes it.
local checkpoint_name = require("nnunet.predictor").checkpoint_file

-- ---------------------------------------------------------------- export

-- The parts of a checkpoint path .../<trainer>__<plans>__<config>/fold_<k>/<name>.
local function checkpoint_context(src)
  local fold_dir = src:match("^(.*)/[^/]+$") or "."
  local model_dir = fold_dir:match("^(.*)/[^/]+$") or "."
  local fold = fold_dir:match("fold_([%w]+)$")
  local model = model_dir:match("([^/]+)$") or ""
  local trainer, _, config = dataset.model_folder_parts(model)
  return model_dir, trainer, config, fold
end

local function read_text(path)
  local f, err = io.open(path, "rb")
  if not f then user_error("cannot read '%s': %s", path, tostring(err)) end
  local t = f:read("a")
  f:close()
  return t
end

-- Writes our checkpoint src (safetensors, core/nnu_checkpoint.h) to dst as the
-- reference nnU-Net's checkpoint (nnunet.torch_ckpt.export: the dict
-- nnUNetTrainer.save_checkpoint writes), with the weights, trainer name, configuration,
-- fold, epoch, EMA pseudo-Dice and mirroring axes; plans and dataset.json come from
-- the model folder. The optimizer state is not carried over (the reference would
-- need its own PyTorch optimizer dict to continue training).
function M.to_torch_checkpoint(src, dst)
  local torch_ckpt = require("nnunet.torch_ckpt")
  local netmod = require("nnunet.net")
  local predictor = require("nnunet.predictor")
  local model_dir, trainer, config, fold = checkpoint_context(src)
  if not config then
    user_error("'%s' is not in a <trainer>__<plans>__<configuration>/fold_X folder: its configuration is unknown", src)
  end
  local plans_text = read_text(join(model_dir, "plans.json"))
  local dj_text = read_text(join(model_dir, "dataset.json"))
  local plans, perr = json.decode(plans_text)
  if not plans then user_error("'%s': %s", join(model_dir, "plans.json"), tostring(perr)) end
  local dj, derr = json.decode(dj_text)
  if not dj then user_error("'%s': %s", join(model_dir, "dataset.json"), tostring(derr)) end
  -- epoch, EMA and the trainer's state from the header alone; the weights come with
  -- net:load below (the optimizer state is not read at all)
  local md_text, merr = netmod.metadata(src)
  if not md_text then user_error("%s", merr) end
  local md = json.decode(md_text) or {}
  local meta = json.decode(md.trainer_state or "{}") or {}
  local model = predictor.describe(plans, config, dj, {})
  local net = netmod.build(model.conf.architecture, {
    num_input_channels = model.net_input_channels, num_classes = model.num_heads,
    deep_supervision = false, device = "cpu",
  })
  local ok, err = net:load(src)
  if not ok then user_error("%s", err) end
  local axes = meta.inference_allowed_mirroring_axes
  ok, err = torch_ckpt.export(net, dst, {
    configuration = config, plans_json = plans_text, dataset_json = dj_text, trainer_name = trainer,
    fold = fold == "all" and "all" or math.tointeger(tonumber(fold)) or 0,
    mirroring_axes = (type(axes) == "table" and #axes > 0) and axes or nil,
    current_epoch = math.tointeger(tonumber(md.epoch)) or 0, best_ema = tonumber(md.best_ema),
  })
  if not ok then user_error("%s", err) end
end

-- Adds one checkpoint to the zip. A reference (PyTorch) checkpoint goes in as it is;
-- ours is converted to the reference's format first (to_torch_checkpoint), so the zip
-- installs into the reference nnU-Net as well as here, unless scratch.native (then
-- it is copied: smaller, keeps the optimizer state, only this program reads it).
-- The zip reads its sources at commit: converted files live in scratch.dir until the
-- caller has committed and removes them (scratch.files).
function M.add_checkpoint(writer, src, name, scratch)
  local torch_ckpt = require("nnunet.torch_ckpt")
  local path = src
  if not (scratch and scratch.native) and not torch_ckpt.is_torch(src) then
    if not scratch or not scratch.dir then user_error("add_checkpoint: a scratch folder is needed to convert '%s'", src) end
    scratch.files = scratch.files or {}
    path = join(scratch.dir, string.format("%d.pth", #scratch.files + 1))
    scratch.files[#scratch.files + 1] = path
    M.to_torch_checkpoint(src, path)
  end
  local ok, err = writer:add_file(name, path, "deflate")
  if not ok then user_error("%s", err) end
end

-- The entries of the export, each { name = path in the zip, src = file, checkpoint = bool },
-- after every check (so nothing is written when something is missing).
-- opts = { dataset, configs, trainer, plans, folds (strings), checkpoints, strict (true),
--          export_crossval_predictions (false), results_root ($nnUNet_results), log }
function M.export_entries(opts)
  local log = opts.log or print
  local name, nerr = dataset.resolve_name(opts.dataset)
  if not name then user_error("%s", nerr) end
  local root = opts.results_root or dataset.env("nnUNet_results")
  if not root then user_error("nnUNet_results is not set: export nnUNet_results=/path/to/results") end
  local ds_dir = join(root, name)
  if not fs.isdir(ds_dir) then user_error("no trained models of %s: '%s' does not exist", name, ds_dir) end
  local configs = opts.configs or M.DEFAULT_CONFIGS
  local trainer, plans = opts.trainer or "nnUNetTrainer", opts.plans or "nnUNetPlans"
  local folds = opts.folds or M.DEFAULT_FOLDS
  local checkpoints = {}
  for i, c in ipairs(opts.checkpoints or M.DEFAULT_CHECKPOINTS) do checkpoints[i] = checkpoint_name(c) end
  local strict = opts.strict ~= false
  local exp_cv = opts.export_crossval_predictions
  local entries = {}
  local function add(rel, opt)
    local src = join(root, rel)
    entries[#entries + 1] = { name = rel, src = src, checkpoint = opt and opt.checkpoint or false }
  end
  local function require_file(rel, what)
    if not fs.isfile(join(root, rel)) then
      user_error("cannot export %s: '%s' is missing (%s)", name, join(root, rel), what)
    end
    add(rel)
  end
  local exported = {}
  for _, c in ipairs(configs) do
    log("Configuration " .. c)
    local model = string.format("%s__%s__%s", trainer, plans, c)
    local mrel = name .. "/" .. model
    local mdir = join(root, mrel)
    local skip = false
    if not fs.isdir(mdir) then
      if strict then
        user_error("%s is missing the trained model of configuration %s: '%s' does not exist (leave it out with -c, "
          .. "or pass --not_strict to skip missing configurations and folds)", name, c, mdir)
      end
      log(string.format("  no model folder '%s': skipped (--not_strict)", mdir))
      skip = true
    end
    local fold_dirs = {}
    if not skip then
      for _, f in ipairs(folds) do
        local fd = fold_folder(f)
        if fs.isdir(join(mdir, fd)) then fold_dirs[#fold_dirs + 1] = fd
        elseif strict then
          user_error("not all requested folds are present: %s %s has no '%s' (requested folds: %s; --not_strict skips "
            .. "missing folds)", name, c, join(mdir, fd), table.concat(folds, " "))
        else
          log(string.format("  no '%s': skipped (--not_strict)", join(mdir, fd)))
        end
      end
      if #fold_dirs == 0 then
        log(string.format("  none of the requested folds of %s exists: configuration skipped", c))
        skip = true
      end
    end
    if not skip then
      if not fs.isfile(join(mdir, "plans.json")) then
        user_error("plans.json missing, %s %s: '%s'", name, c, join(mdir, "plans.json"))
      end
      exported[c] = true
      for _, fd in ipairs(fold_dirs) do
        log("Exporting " .. fd)
        local frel = mrel .. "/" .. fd
        local fdir = join(root, frel)
        if fs.isfile(join(fdir, "debug.json")) then add(frel .. "/debug.json") end
        for _, chk in ipairs(checkpoints) do
          if not fs.isfile(join(fdir, chk)) then
            user_error("cannot export %s: checkpoint '%s' is missing (train the fold, or choose others with -chk)",
              name, join(fdir, chk))
          end
          add(frel .. "/" .. chk, { checkpoint = true })
        end
        -- progress.png: required by the reference; a build without cairo (or train
        -- --no_plot) draws none, so here it is taken when present
        if fs.isfile(join(fdir, "progress.png")) then add(frel .. "/progress.png")
        else log(string.format("  no progress.png in '%s' (not drawn): left out", fdir)) end
        if fs.isfile(join(fdir, "network_architecture.pdf")) then add(frel .. "/network_architecture.pdf") end
        local vrel = frel .. "/validation"
        if exp_cv then
          -- every file but the probabilities (CASE.npz and its properties: the
          -- reference's CASE.pkl, here CASE.json beside a CASE.npz)
          local vdir = join(root, vrel)
          if not fs.isdir(vdir) then user_error("cannot export %s: '%s' does not exist", name, vdir) end
          local have = {}
          local files = files_of(vdir)
          for _, n in ipairs(files) do have[n] = true end
          for _, n in ipairs(files) do
            local props = n:match("^(.*)%.json$")
            if not (ends_with(n, ".npz") or ends_with(n, ".pkl") or (props and have[props .. ".npz"])) then
              add(vrel .. "/" .. n)
            end
          end
        else
          require_file(vrel .. "/summary.json", "the fold's final validation has not run: nnunet train ... --val")
        end
      end
      local cvrel = mrel .. "/crossval_results_folds_" .. folds_string(folds)
      local cvdir = join(root, cvrel)
      if fs.isdir(cvdir) then
        if exp_cv then
          for _, n in ipairs(files_of(cvdir)) do add(cvrel .. "/" .. n) end
        else
          for _, n in ipairs({ "summary.json", "postprocessing.pkl", "postprocessing.json" }) do
            if fs.isfile(join(cvdir, n)) then add(cvrel .. "/" .. n) end
          end
        end
      end
      require_file(mrel .. "/plans.json", "plans")
      require_file(mrel .. "/dataset_fingerprint.json", "nnunet train copies it from nnUNet_preprocessed")
      require_file(mrel .. "/dataset.json", "dataset")
    end
  end

  -- ensembles whose members are all exported configurations of this trainer and plans
  local ens_dir = join(ds_dir, "ensembles")
  if fs.isdir(ens_dir) then
    for _, e in ipairs(fs.listdir(ens_dir) or {}) do
      if fs.isdir(join(ens_dir, e)) then
        -- ensemble___<id1>___<id2>___<folds>: the members sit between the prefix and the folds
        local parts = {}
        for p in (e .. "___"):gmatch("(.-)___") do parts[#parts + 1] = p end
        local ok = #parts >= 3
        for k = 2, #parts - 1 do
          local tr, pl, c = dataset.model_folder_parts(parts[k])
          if not (tr == trainer and pl == plans and exported[c]) then ok = false end
        end
        if ok then
          log("found matching ensemble: " .. e)
          local erel = name .. "/ensembles/" .. e
          local files = exp_cv and files_of(join(root, erel)) or { "summary.json", "postprocessing.pkl", "postprocessing.json" }
          for _, n in ipairs(files) do
            if fs.isfile(join(join(root, erel), n)) then add(erel .. "/" .. n) end
          end
        end
      end
    end
  else
    log("No ensemble directory found for dataset " .. tostring(opts.dataset))
  end
  -- the reference exports these only when an ensembles folder exists and looks for
  -- inference_information.txt, a name it never writes; here both files go in when present
  for _, n in ipairs({ "inference_information.json", "inference_instructions.txt" }) do
    if fs.isfile(join(ds_dir, n)) then add(name .. "/" .. n) end
  end
  if #entries == 0 then user_error("nothing to export for %s", name) end
  return entries, name
end

-- Writes the zip (opts as export_entries, plus output and overwrite). The archive is
-- assembled under output.tmp and renamed, so an existing output is only replaced
-- once the new one is complete, and only with opts.overwrite.
function M.export_pretrained_model(opts)
  local log = opts.log or print
  local output = opts.output
  if fs.exists(output) and not opts.overwrite then
    user_error("'%s' already exists: choose another -o, or pass --overwrite to replace it", output)
  end
  local entries = M.export_entries(opts)
  -- converted checkpoints wait in a folder beside the output until the commit
  local scratch = { dir = output .. ".convert.tmp", native = opts.native_checkpoints, files = {} }
  local function clean()
    for _, f in ipairs(scratch.files) do fs.remove(f) end
    fs.remove(scratch.dir)
  end
  if not scratch.native then
    local mok, merr = fs.mkdir(scratch.dir)
    if not mok then user_error("cannot create '%s': %s", scratch.dir, tostring(merr)) end
  end
  local writer <close>, werr = zip.writer(output)
  if not writer then clean(); user_error("%s", werr) end
  local ok, err = pcall(function()
    for _, e in ipairs(entries) do
      if e.checkpoint then
        log("  " .. e.name .. (scratch.native and "" or " (as a PyTorch checkpoint)"))
        M.add_checkpoint(writer, e.src, e.name, scratch)
      else
        local aok, aerr = writer:add_file(e.name, e.src, "deflate")
        if not aok then user_error("%s", aerr) end
      end
    end
    local cok, cerr = writer:commit()
    if not cok then user_error("%s", cerr) end
  end)
  clean()
  if not ok then error(err, 0) end
  log(string.format("Done: %d files in %s", #entries, output))
  return entries
end

-- ---------------------------------------------------------------- install

-- Extracts zip_path into $nnUNet_results (opts.results_root), as the reference's
-- install_model_from_zip_file. Unlike the reference (zipfile.extractall overwrites),
-- existing files with other contents are only replaced with opts.overwrite; files with
-- the same bytes are left as they are, so installing the same zip twice is harmless.
-- Returns the number of files written and the list of model folders in the zip.
function M.install_model_from_zip(zip_path, opts)
  opts = opts or {}
  local log = opts.log or print
  local root = opts.results_root or dataset.env("nnUNet_results")
  if not root then user_error("nnUNet_results is not set: export nnUNet_results=/path/to/results") end
  if not fs.isfile(zip_path) then user_error("zip file '%s' not found", zip_path) end
  local entries, lerr = zip.list(zip_path)
  if not entries then user_error("%s", lerr) end
  local models, seen = {}, {}
  for _, e in ipairs(entries) do
    local m = e.name:match("^([^/]+/[^/]+)/")
    if m and not seen[m] and not m:match("/ensembles$") then seen[m] = true; models[#models + 1] = m end
  end
  if not fs.isdir(root) then
    local ok, err = fs.mkdir(root)
    if not ok then user_error("cannot create nnUNet_results '%s': %s", root, tostring(err)) end
  end
  local written, identical = zip.extract(zip_path, root, { overwrite = opts.overwrite })
  if not written then
    local msg = identical
    if msg:find("would overwrite", 1, true) then msg = msg .. " Pass --overwrite to replace them." end
    user_error("%s", msg)
  end
  log(string.format("%d files installed into %s (%d already there with the same contents)", written, root, identical))
  for _, m in ipairs(models) do log("  " .. m) end
  return written, models
end

return M
