-- train one fold of a configuration (nnUNetv2_train): epochs, checkpoints, logs, progress.png, final validation
--
-- nnunet train -d ID -c CONFIG -f FOLD [--c] [--val] [--val_best] [--npz] [-tr TRAINER] [-p PLANS]
--   [-pretrained_weights CHECKPOINT]
--   [-device cpu|cuda|auto] [-precision fp32|tf32|bf16|fp16|bf16-act16|fp16-act16] [-num_epochs N] [-num_iterations_per_epoch N] [-num_val_iterations N]
--   [-save_every N] [-seed S]
-- As the reference (nnunet-behaviour.md §7, §9.4, §13.3, §14): results go to
--   $nnUNet_results/DatasetXXX_Name/<trainer>__<plans>__<config>/fold_<f>/
-- with plans.json, dataset.json and dataset_fingerprint.json copied to the folder above.
-- The split comes from $nnUNet_preprocessed/DatasetXXX_Name/splits_final.json, created
-- on first use exactly as the reference creates it (KFold(5, shuffle, 12345) over the
-- sorted case ids, §1.4). The epoch loop is lua/nnunet/trainer.lua; this file wires
-- plans, split, network, data loader and the final validation together.
-- Other recipes call M.train_fold(opts) with the same option names.
local dataset = require("nnunet.dataset")
local fs = require("nnunet.fs")
local json = require("nnunet.json")
local sys = require("nnunet.sys")
local train = require("nnunet.train")
local T = require("nnunet.trainer")

local M = {
  summary = "train one fold of a configuration (nnUNetv2_train): checkpoints, logs, progress.png, final validation",
  options = {
    { "-d", "dataset", "dataset id (4, 004) or name (Dataset004_Hippocampus)", required = true },
    { "-c", "config", "configuration (2d, 3d_fullres, 3d_lowres, 3d_cascade_fullres, ...)", required = true },
    { "-f", "fold", "fold: 0-4 (or any index of splits_final.json) or 'all'", required = true },
    { "-tr", "trainer", "trainer: nnUNetTrainer (v2: SGD + poly), nnUNetTrainer2018 (Adam + plateau), the "
      .. "reference's variants by name (nnUNetTrainer_250epochs, nnUNetTrainerNoMirroring, ...: the list in "
      .. "docs/training.md), NAME.lua in $NNUNET_TRAINERS, or a file", default = "nnUNetTrainer" },
    { "-p", "plans", "plans identifier", default = "nnUNetPlans" },
    { "--c", "continue", "continue from checkpoint_final / latest / best (first found)", flag = true },
    { "-pretrained_weights", "pretrained_weights", "checkpoint to start from (fine-tuning): every tensor but the "
      .. "segmentation heads (.seg_layers.) is loaded; this program's or the reference's PyTorch checkpoint; "
      .. "only for a new training (not with --c)" },
    { "--val", "val_only", "only run the final validation (needs a finished training)", flag = true },
    { "--val_best", "val_best", "validate with checkpoint_best instead of checkpoint_final", flag = true },
    { "--npz", "npz", "also save the validation softmax (CASE.npz) for ensembling", flag = true },
    { "--disable_checkpointing", "disable_checkpointing", "write no checkpoints (testing only)", flag = true },
    { "-num_gpus", "num_gpus", "GPUs for one training: 1 (multi-GPU training is not supported)", type = "int",
      default = 1 },
    { "-device", "device", "cpu, cuda or auto (auto: CUDA when a GPU is present)", default = "auto",
      choices = { "cpu", "cuda", "auto" } },
    { "-precision", "precision", "convolution precision: fp32 or bf16 on the CPU; fp32, tf32, bf16 or fp16 on "
      .. "CUDA (default: fp32 on the CPU, bf16-act16 on CUDA; weights and optimizer stay fp32; fp16 trains with dynamic "
      .. "loss scaling as the reference's GradScaler; bf16-act16 / fp16-act16 also keep activations in 16 bits on "
      .. "CUDA: about half the activation memory)",
      choices = { "fp32", "tf32", "bf16", "fp16", "bf16-act16", "fp16-act16" } },
    { "-num_epochs", "num_epochs", "epochs (default: the trainer's; 1000 for nnUNetTrainer, as the reference)",
      type = "int" },
    { "-num_iterations_per_epoch", "num_iterations_per_epoch", "training iterations per epoch (reference: 250)",
      type = "int", default = 250 },
    { "-num_val_iterations", "num_val_iterations", "validation iterations per epoch (reference: 50)",
      type = "int", default = 50 },
    { "-save_every", "save_every", "checkpoint_latest every N epochs (reference: 50)", type = "int", default = 50 },
    { "-seed", "seed", "seed of network initialisation and data sampling", type = "int", default = 12345 },
    { "--no_plot", "no_plot", "do not draw progress.png", flag = true },
  },
}

local function user_error(fmt, ...)
  error({ user_error = true, message = string.format(fmt, ...) }, 0)
end

local function join(a, b) return a .. "/" .. b end

-- integral floats (lua-cjson decodes every number as a float) back to integers, for printing
local function intify(v)
  if type(v) == "number" then return math.tointeger(v) or v end
  if type(v) ~= "table" or getmetatable(v) then return v end
  local out = {}
  for k, x in pairs(v) do out[k] = intify(x) end
  return out
end

-- byte copy (fs.copy: to a temporary name, then renamed); a failure stops with its message
local function copy_file(src, dst)
  local ok, err = fs.copy(src, dst)
  if not ok then user_error("%s", err) end
end

-- ---------------------------------------------------------------- plans

-- configuration `name` with inherits_from resolved (cycles are an error), §13.1
M.resolve_configuration = require("nnunet.plans").resolve_configuration

-- identifiers of the preprocessed cases of a configuration, sorted bytewise (np.sort)
function M.case_ids(folder)
  local ids = {}
  for _, name in ipairs(fs.listdir(folder) or {}) do
    local id = name:match("^(.*)%.nnu$")
    if id then ids[#ids + 1] = id end
  end
  table.sort(ids, dataset.bytes_less)
  return ids
end

-- The reference's do_split (nnUNetTrainer.do_split, §1.4), logging the same lines.
function M.do_split(pre_dir, ids, fold, log)
  log = log or print
  if fold == "all" then return ids, ids end
  local splits_file = join(pre_dir, "splits_final.json")
  local splits
  if not fs.isfile(splits_file) then
    log("Creating new 5-fold cross-validation split...")
    if #ids < 5 then user_error("%d cases: a 5-fold split needs at least 5", #ids) end
    splits = {}
    for f, s in ipairs(train.kfold(#ids, 5, 12345)) do
      local tr, va = {}, {}
      for i, k in ipairs(s.train) do tr[i] = ids[k + 1] end
      for i, k in ipairs(s.val) do va[i] = ids[k + 1] end
      splits[f] = { train = tr, val = va }
    end
    local ok, err = json.write_file_atomic(splits_file, splits)
    if not ok then user_error("cannot write %s: %s", splits_file, err) end
  else
    log("Using splits from existing split file:", splits_file)
    local err
    splits, err = json.decode_file(splits_file)
    if not splits then user_error("%s", err) end
    log(string.format("The split file contains %d splits.", #splits))
  end
  log(string.format("Desired fold for training: %d", fold))
  local tr, va
  if fold < #splits then
    tr, va = splits[fold + 1].train, splits[fold + 1].val
    log(string.format("This split has %d training and %d validation cases.", #tr, #va))
  else
    log(string.format("INFO: You requested fold %d for training but splits contain only %d folds. I am now "
      .. "creating a random (but seeded) 80:20 split!", fold, #splits))
    local s = train.random_split(#ids, fold)
    tr, va = {}, {}
    for i, k in ipairs(s.train) do tr[i] = ids[k + 1] end
    for i, k in ipairs(s.val) do va[i] = ids[k + 1] end
    log(string.format("This random 80:20 split has %d training and %d validation cases.", #tr, #va))
  end
  local inval = {}
  for _, k in ipairs(va) do inval[k] = true end
  for _, k in ipairs(tr) do
    if inval[k] then
      log("WARNING: Some validation cases are also in the training set. Please check the splits.json or ignore "
        .. "if this is intentional.")
      break
    end
  end
  return tr, va
end

-- ---------------------------------------------------------------- network and data adapters
-- The trainer drives NET and DATA objects (lua/nnunet/trainer.lua lists their methods).
-- Both are built here from the engine binding (nnunet.net) and the loader binding.

local function need(mod, what)
  local ok, m = pcall(require, mod)
  if not ok then user_error("%s is not available in this build (module %s missing)", what, mod) end
  return m
end

-- NET: nnunet.net's Net implements the trainer's contract itself (train_step with the
-- trainer definition's optimizer options, lr included, as third argument, val_step,
-- get_state, set_state; ctx.deep_supervision = false for the 2018 trainer). ctx.device
-- ("cpu" | "cuda" | "auto" | nil = auto) is resolved here (nnunet.predictor.choose_device)
-- and ctx.device / ctx.precision hold what the network runs on afterwards. ctx.loss_terms
-- and ctx.loss_smooth (nil: Dice + CE, smooth 1e-5) are the definition's loss
-- (nnunet.trainers net_loss_options).
function M.make_net(ctx)
  local netmod = need("nnunet.net", "the network engine")
  ctx.device = require("nnunet.predictor").choose_device(ctx.device or "auto", netmod, ctx.log)
  local patch = {}
  for i, v in ipairs(ctx.conf.patch_size) do patch[i] = math.tointeger(v) end
  local net = netmod.build(ctx.conf.architecture, {
    num_input_channels = ctx.num_input_channels, num_classes = ctx.num_heads,
    deep_supervision = ctx.deep_supervision ~= false, train = true,
    batch_dice = ctx.conf.batch_dice == true, ignore_label = ctx.ignore_label, seed = ctx.seed,
    patch_size = patch, batch_size = math.tointeger(ctx.conf.batch_size),
    device = ctx.device, precision = ctx.precision,
    regions = ctx.regions,   -- region datasets: sigmoid heads, Dice + BCE (§7.4)
    loss_terms = ctx.loss_terms, loss_smooth = ctx.loss_smooth,   -- the trainer's loss
  })
  ctx.precision = net:info().precision
  return net
end

-- Augmentation (lua/nnunet/augment_pipeline.lua, §8): the trainer's training pipeline
-- from the initial (enlarged) patch, the validation pipeline (crop + RemoveLabel), the
-- initial patch and the mirror axes.
function M.augmentation(ctx)
  local AP = need("nnunet.augment_pipeline", "the augmentation pipelines")
  local patch, mask = {}, {}
  for i, v in ipairs(ctx.conf.patch_size) do patch[i] = math.tointeger(v) end
  for i, m in ipairs(ctx.conf.use_mask_for_norm or {}) do if m == true then mask[#mask + 1] = i end end
  local setup = AP.setup { patch = patch, pipeline = ctx.augmentation or "v2", mask_channels = mask }
  return { train = AP.build(setup.train), val = AP.build(setup.val), initial_patch = setup.initial_patch,
    mirror_axes = setup.mirror_axes, mirror = setup.cfg.mirror, patch = patch, dummy_2d = setup.cfg.dummy_2d }
end

-- DATA: two loaders over the fold's preprocessed case files (training: with the
-- augmentation pipeline from the initial patch; validation: crop at the patch size,
-- RemoveLabel only). Batch b of either depends only on (seed, b): loader:batch(b)
-- seeks when asked for another batch than the next one (a resumed run).
-- Workers: nnUNet_n_proc_DA (default min(12, CPUs)); validation half of that.
function M.make_data(ctx)
  local loader = need("nnunet.loader", "the data loader")
  local aug = ctx.aug or M.augmentation(ctx)
  local nproc = tonumber(os.getenv("nnUNet_n_proc_DA") or "") or math.min(12, sys.ncpu())
  local bs = math.tointeger(ctx.conf.batch_size)
  local over = ctx.oversample or 0.33
  local tr = loader.new { batch_size = bs, patch = aug.patch, initial_patch = aug.initial_patch, oversample = over,
    oversample_random = ctx.oversample_random, seed = ctx.seed, workers = nproc, pipeline = aug.train,
    onehot_labels = ctx.onehot_labels, cascade_aug = ctx.onehot_labels ~= nil and ctx.cascade_augmentation ~= false }
  local va = loader.new { batch_size = bs, patch = aug.patch, oversample = over, oversample_random = ctx.oversample_random,
    seed = ctx.seed + 1, workers = math.max(1, nproc // 2), pipeline = aug.val, onehot_labels = ctx.onehot_labels }
  for _, pair in ipairs({ { tr, ctx.train_ids }, { va, ctx.val_ids } }) do
    for _, id in ipairs(pair[2]) do
      local ok, err = pair[1]:add_store(join(ctx.data_dir, id .. ".nnu"), ctx.conf.data_identifier)
      if not ok then user_error("%s", err) end
    end
    -- cascade (§7.7): the previous stage's predictions, augmented with the label
    if ctx.prev_stage_dir then require("nnunet.cascade").attach(pair[1], pair[2], ctx.prev_stage_dir) end
  end
  -- 2-D configurations: the loader gives (B, C, 1, H, W) slices; the 2-D network
  -- takes (B, C, H, W) (views of the same memory)
  local squeeze = function(d, s) return d, s end
  if #aug.patch == 2 then
    squeeze = function(d, s)
      local ds, ss = d:shape(), s:shape()
      return d:reshape({ ds[1], ds[2], ds[4], ds[5] }), s:reshape({ ss[1], ss[2], ss[4], ss[5] })
    end
  end
  return {
    train_batch = function(_, b) return squeeze(tr:batch(b)) end,
    val_batch = function(_, b) return squeeze(va:batch(b)) end,
    close = function() tr:close(); va:close() end,
  }
end

-- The fraction of a batch of batch_size the deterministic rule forces to foreground:
-- samples j >= round(batch_size * (1 - p)) (Python's round: halves to even), as the
-- reference's nnUNetTrainer_probabilisticOversampling computes it (bs 2, p 0.33 -> 0.5).
function M.forced_fraction(batch_size, p)
  local x = batch_size * (1 - p)
  local r = math.floor(x + 0.5)
  if r - x == 0.5 and r % 2 == 1 then r = r - 1 end      -- a tie goes to the even neighbour
  r = math.min(r, batch_size)
  return (batch_size - r) / batch_size
end

-- ---------------------------------------------------------------- outputs

local function debug_json(path, tr, ctx)
  local d = {}
  for _, k in ipairs({ "initial_lr", "weight_decay", "num_epochs", "num_iterations_per_epoch",
                       "num_val_iterations_per_epoch", "save_every", "oversample_foreground_percent",
                       "enable_deep_supervision", "current_epoch", "seed", "output_folder", "log_file",
                       "disable_checkpointing" }) do
    d[k] = tostring(tr[k])
  end
  d.fold = tostring(ctx.fold)
  d.configuration_name = ctx.config_name
  d.batch_size = tostring(math.tointeger(ctx.conf.batch_size) or ctx.conf.batch_size)
  d.plans_name = ctx.plans_name
  d.trainer_name = tr.trainer_name
  d.optimizer = tr.optimizer and tostring(tr.optimizer.optimizer) or "sgd"
  d.lr_schedule = tr.schedule and tostring(tr.schedule.kind) or "poly"
  local hf = io.open("/proc/sys/kernel/hostname", "r")
  d.hostname = hf and (hf:read("l") or "") or ""
  if hf then hf:close() end
  d.device = ctx.device
  d.precision = ctx.precision
  d.engine = "nnunet " .. tostring(sys.version)
  json.write_file_atomic(path, d)
end

-- The network as infer.sliding_window's predictor: the Net itself when its binding
-- plugs in at C level (metatable field __nnu_slide_predict, l_infer.h), else a Lua call
-- of Net:forward per window.
function M.window_predictor(net)
  local mt = getmetatable(net)
  if type(mt) == "table" and mt.__nnu_slide_predict then return net end
  return function(batch) return net:forward(batch) end
end

-- Sliding-window logits (K, D, H, W) of one preprocessed case (C, D, H, W): step 0.5,
-- Gaussian weighting, mirroring over the trainer's axes, float16 accumulators (§9.2).
-- 2-D configurations slide a (py, px) window over every slice (§9.2 step 3: the
-- 2-D network sees (B, C, py, px)).
function M.predict_logits(net, data, ctx, progress_fn)
  local infer = require("nnunet.infer")
  local ps = ctx.conf.patch_size
  local patch = {}
  for i = 1, #ps do patch[i] = math.tointeger(ps[i]) end
  -- the trainer's mirror axes as 1-based patch axes (2-D: H, W = 1, 2)
  local mirror = {}
  for i, a in ipairs(ctx.mirror_axes or (#ps == 2 and { 0, 1 } or { 0, 1, 2 })) do
    mirror[i] = a + 1
  end
  return infer.sliding_window(data, {
    patch = patch, num_heads = ctx.num_heads, step_size = 0.5, mirror_axes = mirror, batch_size = 1,
    accum = "f16", progress = progress_fn,
  }, M.window_predictor(net))
end

-- Final validation (§7.2, §9.4): every validation case of the fold predicted with the
-- sliding window on its preprocessed data, exported at the original geometry (the
-- predictor's nnunet.export: resample the logits, argmax, un-crop, transpose back) into
-- fold_k/validation/CASE<ending> (+ CASE.npz/.json with --npz) and evaluated against
-- gt_segmentations into validation/summary.json.
function M.final_validation(tr, ctx, val_ids)
  local okx, export = pcall(require, "nnunet.export")
  if not okx or type(export) ~= "table" or type(export.case) ~= "function" then
    tr:log("Final validation skipped: the export of predictions (nnunet.export) is not available in this build")
    return nil
  end
  local pp = require("nnunet.preproc_case")
  local evaluate = require("nnunet.evaluate")
  local lm = evaluate.label_manager(join(ctx.pre_dir, "dataset.json"))
  local ending = lm.file_ending
  local out = join(tr.output_folder, "validation")
  os.execute("rm -rf '" .. out .. "'")
  assert(fs.mkdir(out))
  local rk = ctx.conf.resampling_fn_probabilities_kwargs or {}
  local n_fg = 0
  for _, v in ipairs(lm.regions_or_labels) do if type(v) ~= "table" then n_fg = n_fg + 1 end end
  local xopts = {
    transpose_forward = ctx.plans.transpose_forward or { 0, 1, 2 }, n_foreground_labels = math.max(n_fg, 1),
    regions_class_order = lm.has_regions and ctx.dataset_json.regions_class_order or nil,
    order = math.tointeger(rk.order) or 1, order_z = math.tointeger(rk.order_z) or 0,
    force_separate_z = type(rk.force_separate_z) == "boolean" and rk.force_separate_z or nil,
  }
  for _, k in ipairs(val_ids) do
    tr:log("predicting " .. k)
    local store, err = pp.open(join(ctx.data_dir, k .. ".nnu"))
    if not store then error(err, 0) end
    local data, seg = store:read_all()
    store:close()
    seg:release()
    if ctx.prev_stage_dir then   -- cascade: image + one-hot of the previous stage (§7.7)
      local cascade = require("nnunet.cascade")
      local prev = cascade.load_prev_seg(ctx.prev_stage_dir, k)
      local stacked = cascade.stack(data, prev, ctx.onehot_labels)
      data:release()
      prev:release()
      data = stacked
    end
    tr:log(string.format("%s, shape [%s], rank 0", k, table.concat(data:shape(), ", ")))
    local logits = M.predict_logits(tr.net, data, ctx)
    if ctx.next_stages then       -- low-res stage: predicted_next_stage/ for the cascade (§9.4)
      require("nnunet.cascade").write_next_stages({ model_base = ctx.model_base, pre_dir = ctx.pre_dir,
        plans = ctx.plans, conf = ctx.conf, export = xopts, log = function(s) tr:log(s) end,
        resolve = function(n) return M.resolve_configuration(ctx.plans, n) end }, k, logits)
    end
    local pt, perr = json.decode_file(join(ctx.data_dir, k .. ".json"))
    if not pt then error(perr, 0) end
    local props = export.props(pt, join(join(ctx.pre_dir, "gt_segmentations"), k .. ending),
      { reader = ctx.reader, seg = true })
    local seg, probs = export.case(logits, props, xopts, ctx.npz)
    local ok, werr = export.write_seg(join(out, k .. ending), seg, props)
    if not ok then error(werr, 0) end
    if ctx.npz and probs then require("nnunet.probabilities").save(join(out, k), probs, pt) end
  end
  local res = evaluate.compute_metrics_on_folder(join(ctx.pre_dir, "gt_segmentations"), out,
    join(out, "summary.json"), ending, lm.regions_or_labels, lm.ignore_label,
    { chill = true, num_processes = sys.ncpu(), image_reader = ctx.reader })
  tr:log("Validation complete")
  tr:log("Mean Validation Dice: ", T.repr64(res.foreground_mean.Dice))
  return res
end

-- ---------------------------------------------------------------- one fold

function M.train_fold(o)
  if o.continue and o.pretrained_weights then   -- as the reference's maybe_load_checkpoint
    user_error("cannot both continue a training (--c) and load pretrained weights: pretrained weights can only "
      .. "be used at the beginning of a training")
  end
  local name, err = dataset.resolve_name(o.dataset)
  if not name then user_error("%s", err) end
  local pre_dir = dataset.preprocessed_dir(name)
  local plans_path = join(pre_dir, o.plans .. ".json")
  local plans, perr = json.decode_file(plans_path)
  if not plans then user_error("cannot read the plans (%s): run `nnunet plan_and_preprocess -d %s` first", perr, name) end
  local conf = M.resolve_configuration(plans, o.config)
  if not conf then user_error("configuration '%s' is not in %s", o.config, plans_path) end
  local dj, derr = json.decode_file(join(pre_dir, "dataset.json"))
  if not dj then user_error("%s", derr) end
  local fold = o.fold == "all" and "all" or math.tointeger(tonumber(o.fold))
  if fold == nil or (fold ~= "all" and fold < 0) then user_error("fold must be an integer >= 0 or 'all', got '%s'", o.fold) end
  local evaluate = require("nnunet.evaluate")
  local lm = evaluate.label_manager(join(pre_dir, "dataset.json"))

  -- the trainer definition (lua/nnunet/trainers.lua): an unknown name lists the available ones
  local tdef = require("nnunet.trainers").load(o.trainer)
  local tdef_log = {}
  if tdef.configure then tdef.configure(tdef, plans, function(s) tdef_log[#tdef_log + 1] = s end)
  elseif type(plans.nnunet_training) == "table" then
    tdef_log[1] = string.format("NOTE: these plans record a training recipe (nnunet_training, optimizer %s) that "
      .. "trainer %s does not use; -tr nnUNetTrainer2018 follows it", tostring(plans.nnunet_training.optimizer), tdef.name)
  end
  -- its loss for this dataset (nnUNetTrainerCELoss refuses regions, as the reference), before
  -- anything is written
  local loss_opts = require("nnunet.trainers").net_loss_options(tdef,
    { has_regions = lm.has_regions, ignore_label = lm.ignore_label })
  local base = join(dataset.results_dir(name), string.format("%s__%s__%s", tdef.name, o.plans, o.config))
  local folder = join(base, "fold_" .. tostring(fold))
  assert(fs.mkdir(folder))
  local data_dir = join(pre_dir, conf.data_identifier)
  local ids = M.case_ids(data_dir)
  if #ids == 0 then user_error("no preprocessed cases in %s: run `nnunet preprocess -d %s -c %s`", data_dir, name, o.config) end

  local channels = dj.channel_names or dj.modality or {}
  local nch = 0
  for _ in pairs(channels) do nch = nch + 1 end
  local ctx = {
    plans = plans, plans_name = o.plans, conf = conf, config_name = o.config, dataset_json = dj, fold = fold,
    pre_dir = pre_dir, data_dir = data_dir, device = o.device, precision = o.precision, seed = o.seed, npz = o.npz,
    num_input_channels = nch, num_heads = lm.has_regions and #lm.regions_or_labels or (#lm.regions_or_labels + 1),
    ignore_label = lm.ignore_label, regions = lm.has_regions and lm.regions_or_labels or nil,
    loss_terms = loss_opts.loss_terms, loss_smooth = loss_opts.loss_smooth,
    weight_decay = T.DEFAULTS.weight_decay, model_base = base, reader = dataset.plans_reader(plans),
  }
  -- cascade hooks (lua/nnunet/cascade.lua): a stage with previous_stage gets one input
  -- channel per foreground label; a stage with next_stage exports predicted_next_stage/
  local cascade = require("nnunet.cascade")
  local prev = cascade.previous_stage(conf)
  if prev then
    ctx.onehot_labels = lm.foreground_labels
    ctx.num_input_channels = nch + #lm.foreground_labels
    ctx.prev_stage_dir = cascade.prev_stage_dir(dataset.results_dir(name), tdef.name, o.plans, prev, o.config)
    if not fs.isdir(ctx.prev_stage_dir) then
      user_error("cascade: '%s' does not exist: train the folds of %s first (its final validation writes it)",
        ctx.prev_stage_dir, prev)
    end
  end
  if #cascade.next_stages(conf) > 0 then ctx.next_stages = cascade.next_stages(conf) end
  local identity = string.format("%s/%s/%s", name, o.plans, o.config)
  local conf_text = json.encode(plans.configurations[o.config], { indent = false })
  local targs = {
    output_folder = folder, trainer_name = tdef.name, identity = identity, plans_hash = train.crc32(conf_text),
    n_classes = #lm.regions_or_labels, regions = ctx.regions, ignore_label = lm.ignore_label,
    num_epochs = o.num_epochs, num_iterations_per_epoch = o.num_iterations_per_epoch,
    num_val_iterations_per_epoch = o.num_val_iterations, save_every = o.save_every, seed = o.seed,
    disable_checkpointing = o.disable_checkpointing, net = {}, data = {},
    init_args = { dataset = name, configuration = o.config, fold = tostring(fold), plans = o.plans },
  }
  -- the definition's settings, optimizer, schedule and stop rule (the command line wins)
  for k, v in pairs(require("nnunet.trainers").trainer_options(tdef)) do
    if targs[k] == nil then targs[k] = v end
  end
  local tr = T.new(targs)
  if o.no_plot then tr.plot = function() end end
  tr:log_plain("\n#######################################################################\n"
    .. "Please cite the following paper when using nnU-Net:\n"
    .. "Isensee, F., Jaeger, P. F., Kohl, S. A., Petersen, J., & Maier-Hein, K. H. (2021). nnU-Net: a "
    .. "self-configuring method for deep learning-based biomedical image segmentation. Nature methods, "
    .. "18(2), 203-211.\n#######################################################################\n")
  local tr_ids, val_ids = M.do_split(pre_dir, ids, fold, function(...) tr:log(...) end)
  tr:log_plain(string.format("\nThis is the configuration used by this training:\nConfiguration name: %s\n", o.config),
    json.encode(intify(conf), { indent = false }), "\n")
  ctx.train_ids, ctx.val_ids = tr_ids, val_ids
  tr:log(string.format("Trainer %s (%s)%s", tdef.name, tdef.path, tdef.summary and (": " .. tdef.summary) or ""))
  for _, s in ipairs(tdef_log) do tr:log(s) end
  if loss_opts.loss_terms ~= "dice+ce" or loss_opts.loss_smooth ~= 1e-5 then
    tr:log(string.format("loss: %s (soft Dice smooth %s)", loss_opts.loss_terms == "ce"
      and (lm.has_regions and "BCE alone" or "CE alone") or loss_opts.loss_terms == "dice" and "soft Dice alone"
      or (lm.has_regions and "Dice + BCE" or "Dice + CE"), tostring(loss_opts.loss_smooth)))
  end
  ctx.trainer, ctx.augmentation, ctx.deep_supervision = tdef.name, tdef.augmentation, tdef.deep_supervision
  ctx.cascade_augmentation = tdef.cascade_augmentation
  if tdef.probabilistic_oversampling then
    -- each sample forced to foreground with probability p (the loader's oversample_random);
    -- "matched": p is the fraction the deterministic rule forces at this batch size
    if tdef.probabilistic_oversampling == "matched" then
      tr.oversample_foreground_percent = M.forced_fraction(math.tointeger(conf.batch_size), tr.oversample_foreground_percent)
    end
    ctx.oversample_random = true
    tr:log(string.format("probabilistic oversampling: oversample_foreground_percent %s",
      tostring(tr.oversample_foreground_percent)))
  end
  ctx.oversample = tr.oversample_foreground_percent
  ctx.aug = M.augmentation(ctx)
  tr:log("do_dummy_2d_data_aug: " .. (ctx.aug.dummy_2d and "True" or "False"))
  ctx.mirror_axes = ctx.aug.mirror_axes
  tr.inference_allowed_mirroring_axes = ctx.mirror_axes

  ctx.log = function(s) tr:log(s) end
  tr.net = M.make_net(ctx)
  if o.pretrained_weights and not o.val_only then M.load_pretrained(tr, o.pretrained_weights) end
  tr:log(string.format("Network on %s, convolution precision %s", ctx.device, ctx.precision))
  if o.val_only then
    local ck = join(folder, o.val_best and "checkpoint_best.pth" or "checkpoint_final.pth")
    if not fs.isfile(ck) then user_error("%s not found: train the fold first", ck) end
    tr:load_checkpoint(ck)
    M.final_validation(tr, ctx, val_ids)
    return tr
  end
  tr.data = M.make_data(ctx)

  -- copies for inference, as on_train_start
  copy_file(plans_path, join(base, "plans.json"))     -- byte copy keeps the key order
  copy_file(join(pre_dir, "dataset.json"), join(base, "dataset.json"))
  if fs.isfile(join(pre_dir, "dataset_fingerprint.json")) then
    copy_file(join(pre_dir, "dataset_fingerprint.json"), join(base, "dataset_fingerprint.json"))
  end
  if o.continue then tr:maybe_resume() end
  debug_json(join(folder, "debug.json"), tr, ctx)
  tr:run_training()
  if tr.data.close then tr.data:close() end
  if o.val_best then tr:load_checkpoint(join(folder, "checkpoint_best.pth")) end
  M.final_validation(tr, ctx, val_ids)
  return tr
end

-- The reference's load_pretrained_weights (nnunetv2/run/load_pretrained_weights.py):
-- every tensor but the segmentation heads from `path`, same names and shapes required.
function M.load_pretrained(tr, path)
  if not fs.isfile(path) then user_error("-pretrained_weights: '%s' does not exist", path) end
  local n, err = tr.net:load_pretrained(path, ".seg_layers.")
  if not n then user_error("%s", err) end
  tr:log("################### Loading pretrained weights from file " .. path .. " ###################")
  tr:log(string.format("%d tensors loaded (every tensor but the segmentation layers)", n))
end

function M.run(o)
  if o.num_gpus ~= 1 then
    user_error("-num_gpus %d: this program trains on one GPU (or the CPU); run the folds side by side on several "
      .. "GPUs instead (CUDA_VISIBLE_DEVICES=k nnunet train ... -f k)", o.num_gpus)
  end
  M.train_fold(o)
  return 0
end

return M
