-- nnunet.trainers: trainer definitions selected with `nnunet train -tr NAME`.
--
-- A trainer is a Lua file returning a table of data and small functions; the epoch loop
-- (lua/nnunet/trainer.lua) stays the same for all of them. Shipped definitions live in
-- lua/nnunet/trainers/<NAME>.lua; users add their own without rebuilding:
--   nnunet train ... -tr MyTrainer          looks in $NNUNET_TRAINERS (folders separated
--                                           by ':'), then in the shipped folder
--   nnunet train ... -tr /path/MyTrainer.lua a file (the results folder uses its base name)
--
--   local TR = require("nnunet.trainers")
--   TR.available() -> {"nnUNetTrainer", "nnUNetTrainer2018", ...}   (sorted, user ones too)
--   TR.load(name_or_path) -> def | raises {user_error = true, message = "... available: ..."}
--   TR.trainer_options(def) -> fields for trainer.new (settings, optimizer, schedule, stop)
--   TR.poly{exponent = 0.9}, TR.plateau{...}, TR.stop_lr_below(x), TR.stop_v1{...},
--   TR.cosine(), TR.warmup{...}: the building blocks the shipped definitions use
--
-- The reference's trainer variants (nnunetv2/training/nnUNetTrainer/variants/) are not
-- files: each is the shipped nnUNetTrainer.lua plus a few modifiers, listed once in
-- M.VARIANTS below (nnUNetTrainer_<N>epochs and nnUNetTrainer_<N>epochs_NoMirroring for
-- the reference's N values, nnUNetTrainerNoMirroring, nnUNetTrainerNoDA,
-- nnUNetTrainerNoDeepSupervision, nnUNetTrainerVanillaAdam*, nnUNetTrainerCosAnneal,
-- nnUNetTrainer_warmup, nnUNetTrainerCELoss, nnUNetTrainerDiceLoss, ...). They load, list
-- and name their results folder like files do; a user file of the same name in
-- $NNUNET_TRAINERS takes precedence. Variants the engine cannot reproduce (BatchNorm,
-- the top-k losses, ...) are not listed: docs/training.md says which and why.
--
-- Definition fields (all but name optional; see trainers/nnUNetTrainer.lua):
--   name          = the file's base name (the results folder <name>__<plans>__<config>)
--   summary       = one line
--   settings      = trainer attributes with the reference's names (initial_lr,
--                   weight_decay, oversample_foreground_percent, ...; trainer.DEFAULTS)
--   optimizer     = options of Net:train_step: {optimizer = "sgd"|"adam", momentum=,
--                   nesterov=, clip=, beta1=, beta2=, eps=, amsgrad=, weight_decay=}
--                   (weight_decay defaults to settings.weight_decay; lr comes from the
--                   schedule every epoch)
--   settings.num_epochs: the definition's epoch count (nnUNetTrainer_250epochs); the
--                   command line's -num_epochs, when given, wins
--   lr_schedule   = {init = function(tr) -> state, lr = function(tr, state, epoch) -> lr,
--                    epoch_end = function(tr, state, epoch, train_loss)}; `state` is a
--                   JSON-able table saved in every checkpoint, so --c continues it
--   stop          = function(tr, state, epoch) -> true: end training after this epoch
--   augmentation  = "v2" | "2018" (lua/nnunet/augment_pipeline.lua) or
--                   function(AP, cfg) -> training pipeline description
--   deep_supervision = true | false
--   probabilistic_oversampling = true | "matched": each sample forced to foreground with
--                   probability oversample_foreground_percent ("matched": the fraction the
--                   deterministic rule forces at the plans' batch size), train and validation
--   cascade_augmentation = false: a cascade stage's previous-stage masks are not augmented
--   loss          = "dice+ce" (default: the reference's DC_and_CE_loss, regions
--                   DC_and_BCE_loss, §7.4) | "ce" (the CE term alone; regions: the BCE)
--                   | "dice" (the soft Dice alone: softmax without background for labels,
--                   sigmoid over every region), or a table {terms = one of those,
--                   smooth = the soft Dice's smooth (default 1e-5; >= 0), regions = false
--                   (refuse region datasets), ignore_label = false (refuse datasets with
--                   an ignore label)}; M.net_loss_options turns it into Net build options
--   configure     = function(def, plans, log): adapt the definition to the plans (e.g. the
--                   2018 rule set's "nnunet_training" recipe)
local fs = require("nnunet.fs")
local sys = require("nnunet.sys")

local M = {}

local function user_error(fmt, ...)
  error({ user_error = true, message = string.format(fmt, ...) }, 0)
end

-- ---------------------------------------------------------------- lookup

function M.shipped_dir() return sys.home .. "/lua/nnunet/trainers" end

-- folders searched for NAME.lua, in order: $NNUNET_TRAINERS (':'-separated), shipped
function M.search_dirs()
  local dirs = {}
  for d in (os.getenv("NNUNET_TRAINERS") or ""):gmatch("[^:]+") do dirs[#dirs + 1] = d end
  dirs[#dirs + 1] = M.shipped_dir()
  return dirs
end

-- every trainer name: files of the search folders and the reference's variants, sorted
function M.available()
  local seen, names = {}, {}
  for _, d in ipairs(M.search_dirs()) do
    for _, f in ipairs(fs.listdir(d) or {}) do
      local n = f:match("^([%w_%-%.]+)%.lua$")
      if n and not seen[n] then seen[n], names[#names + 1] = true, n end
    end
  end
  for n in pairs(M.VARIANTS) do
    if not seen[n] then seen[n], names[#names + 1] = true, n end
  end
  table.sort(names)
  return names
end

-- M.available() for people: the nnUNetTrainer_<N>epochs[_NoMirroring] families folded
-- into one entry each ("nnUNetTrainer_<N>epochs (N = 5, 10, ...)")
function M.available_text()
  local out, fam, famN = {}, {}, {}
  for _, n in ipairs(M.available()) do
    local num, suffix = n:match("^nnUNetTrainer_(%d+)epochs(.*)$")
    if num and (suffix == "" or suffix == "_NoMirroring") then
      local key = "nnUNetTrainer_<N>epochs" .. suffix
      if not famN[key] then famN[key] = {}; fam[#fam + 1] = key; out[#out + 1] = key end
      famN[key][#famN[key] + 1] = math.tointeger(tonumber(num))
    else
      out[#out + 1] = n
    end
  end
  for i, n in ipairs(out) do
    if famN[n] then
      table.sort(famN[n])
      out[i] = string.format("%s (N = %s)", n, table.concat(famN[n], ", "))
    end
  end
  return table.concat(out, ", ")
end

-- path, name, variant (a M.VARIANTS entry, or nil for a file)
local function find(name)
  if name:match("%.lua$") or name:find("/", 1, true) then
    if fs.isfile(name) then return name, (name:match("([^/]+)%.lua$") or name:match("[^/]+$")) end
    user_error("trainer file '%s' not found", name)
  end
  for _, d in ipairs(M.search_dirs()) do
    local p = d .. "/" .. name .. ".lua"
    if fs.isfile(p) then return p, name end
  end
  local v = M.VARIANTS[name]
  if v then return M.shipped_dir() .. "/" .. v.base .. ".lua", name, v end
  user_error("unknown trainer '%s'; available trainers: %s (files NAME.lua in $NNUNET_TRAINERS or %s; "
    .. "docs/training.md)", name, M.available_text(), M.shipped_dir())
end

local function check_def(def, path)
  local function bad(fmt, ...) user_error("trainer %s: " .. fmt, path, ...) end
  if type(def) ~= "table" then bad("the file must return a table") end
  local o = def.optimizer
  if o ~= nil then
    if type(o) ~= "table" then bad("optimizer must be a table") end
    local k = string.lower(tostring(o.optimizer or "sgd"))
    if k ~= "sgd" and k ~= "adam" then bad("optimizer.optimizer must be 'sgd' or 'adam', got '%s'", k) end
  end
  local s = def.lr_schedule
  if s ~= nil and (type(s) ~= "table" or type(s.lr) ~= "function") then
    bad("lr_schedule must be a table with an lr(tr, state, epoch) function")
  end
  if def.stop ~= nil and type(def.stop) ~= "function" then bad("stop must be a function") end
  local a = def.augmentation
  if a ~= nil and a ~= "v2" and a ~= "2018" and type(a) ~= "function" then
    bad("augmentation must be 'v2', '2018' or a function(AP, cfg), got %s", tostring(a))
  end
  if def.loss ~= nil then
    local l = type(def.loss) == "table" and def.loss or { terms = def.loss }
    if not M.LOSS_TERMS[l.terms or "dice+ce"] then
      bad("loss '%s' is not available (the engine computes 'dice+ce', 'ce' or 'dice')", tostring(l.terms))
    end
    if l.smooth ~= nil and not (type(l.smooth) == "number" and l.smooth >= 0 and l.smooth < math.huge) then
      bad("loss.smooth must be a number >= 0, got %s", tostring(l.smooth))
    end
    for _, k in ipairs({ "regions", "ignore_label" }) do
      if l[k] ~= nil and type(l[k]) ~= "boolean" then bad("loss.%s must be true or false", k) end
    end
  end
  if def.settings ~= nil and type(def.settings) ~= "table" then bad("settings must be a table") end
end

-- Loads a definition by name (user folders, then shipped) or path. A fresh table each
-- call (the definition may be adapted by configure without touching the file's).
-- A variant is its base file (always the shipped one, not a user override of the base)
-- with the variant's modifiers applied, named after the variant.
function M.load(name)
  local path, base, variant = find(name)
  local chunk, err = loadfile(path, "t")
  if not chunk then user_error("trainer %s: %s", path, err) end
  local ok, def = pcall(chunk)
  if not ok then user_error("trainer %s: %s", path, tostring(def)) end
  check_def(def, path)
  local file_base = variant and variant.base or base
  if def.name ~= nil and def.name ~= file_base then
    user_error("trainer %s: name '%s' differs from the file name '%s'", path, tostring(def.name), file_base)
  end
  if variant then
    def.settings = def.settings or {}
    def.augmentation = def.augmentation or "v2"
    for _, mod in ipairs(variant.mods) do mod(def) end
    def.summary, def.variant_of = variant.summary, variant.base
    check_def(def, path .. " (variant " .. name .. ")")
  end
  def.name, def.path = base, path
  def.settings = def.settings or {}
  def.augmentation = def.augmentation or "v2"
  if def.deep_supervision == nil then def.deep_supervision = true end
  def.loss = def.loss or "dice+ce"
  return def
end

-- the loss terms a definition may ask for (Net build option loss_terms)
M.LOSS_TERMS = { ["dice+ce"] = true, ce = true, dice = true }

-- The Net build options of a definition's loss for a dataset ({has_regions =,
-- ignore_label = nil | label}, the label manager's): {loss_terms =, loss_smooth =}; a
-- dataset the definition refuses (loss.regions / loss.ignore_label = false) is a user
-- error naming the trainer and the reason.
function M.net_loss_options(def, dataset)
  local l = type(def.loss) == "table" and def.loss or { terms = def.loss }
  local terms = l.terms or "dice+ce"
  if dataset.has_regions and l.regions == false then
    user_error("trainer %s: regions not supported by this trainer (%s)", def.name, terms == "ce"
      and "the reference asserts it: its RobustCrossEntropyLoss takes label maps only" or "loss.regions = false")
  end
  if dataset.ignore_label ~= nil and l.ignore_label == false then
    user_error("trainer %s: datasets with an ignore label (label %s) are not supported by this trainer (%s)",
      def.name, tostring(dataset.ignore_label), terms == "dice"
      and "the reference's MemoryEfficientSoftDiceLoss gets no loss mask: it fails on the ignore label of a "
        .. "label map and misreads the ignore channel of region targets" or "loss.ignore_label = false")
  end
  return { loss_terms = terms, loss_smooth = l.smooth or 1e-5 }
end

-- The fields trainer.new takes from a definition: settings (copied), then
-- optimizer (with weight_decay from the settings unless given), lr_schedule, stop.
function M.trainer_options(def)
  local o = {}
  for k, v in pairs(def.settings or {}) do o[k] = v end
  o.trainer_name = def.name
  if def.optimizer then
    local opt = {}
    for k, v in pairs(def.optimizer) do opt[k] = v end
    opt.weight_decay = opt.weight_decay or o.weight_decay
    o.optimizer = opt
  end
  o.schedule = def.lr_schedule
  o.stop = def.stop
  o.enable_deep_supervision = def.deep_supervision
  return o
end

-- ---------------------------------------------------------------- schedules

-- PolyLRScheduler (§7.1): lr_e = initial_lr * (1 - e / num_epochs)^exponent, set at the
-- start of every epoch; no state.
function M.poly(o)
  local exponent = (o or {}).exponent or 0.9
  return {
    kind = "poly",
    init = function() return {} end,
    lr = function(tr, _, e) return tr.initial_lr * (1 - e / tr.num_epochs) ^ exponent end,
  }
end

-- The 2018 trainer's schedule (§7.9, the paper's §2.2): after every epoch the moving
-- average of the epoch's mean training loss, MA = alpha * MA + (1 - alpha) * loss
-- (MA_0 = loss_0), steps PyTorch's ReduceLROnPlateau(mode='min', factor, patience,
-- threshold, threshold_mode='abs', cooldown=0, min_lr, eps):
--   better = MA < best - threshold          (best starts at +inf)
--   better: best = MA, bad = 0; else bad = bad + 1
--   bad > patience: new = max(lr * factor, min_lr); lr = new if lr - new > eps; bad = 0
-- The lr of the next epoch is the state's lr. All in doubles (Python floats).
-- state = {lr =, ma = nil|x, best = nil|x (nil = +inf), bad = n, epoch_best_ma = nil|e,
--          best_ma_patience = nil|x} (the last two for stop_v1)
function M.plateau(o)
  o = o or {}
  local p = {
    factor = o.factor or 0.2, patience = o.patience or 30, threshold = o.threshold or 1e-3,
    alpha = o.ema_alpha or 0.93, min_lr = o.min_lr or 0, eps = o.eps or 1e-8,
  }
  assert((o.threshold_mode or "abs") == "abs", "plateau: only threshold_mode 'abs' is implemented")
  return {
    kind = "plateau", params = p,
    init = function(tr) return { lr = tr.initial_lr, bad = 0 } end,
    lr = function(_, st) return st.lr end,
    epoch_end = function(tr, st, _, loss)
      st.ma = st.ma == nil and loss or p.alpha * st.ma + (1 - p.alpha) * loss
      if st.best == nil or st.ma < st.best - p.threshold then
        st.best, st.bad = st.ma, 0
      else
        st.bad = st.bad + 1
      end
      if st.bad > p.patience then
        local new = math.max(st.lr * p.factor, p.min_lr)
        if st.lr - new > p.eps then
          st.lr = new
          tr:log(string.format("Reducing learning rate to %s (the training-loss moving average has not improved "
            .. "by %s for %d epochs)", require("nnunet.json").format_number(new), tostring(p.threshold), p.patience))
        end
        st.bad = 0
      end
      tr:log(string.format("train loss moving average %.6f (best %.6f, epochs without improvement %d/%d); "
        .. "lr is now %s", st.ma, st.best, st.bad, p.patience, require("nnunet.json").format_number(st.lr)))
    end,
  }
end

-- The paper's stopping rule: stop once the learning rate (after this epoch's scheduler
-- step) is below `x` (1e-6). The epoch cap is the loop's.
function M.stop_lr_below(x)
  return function(tr, st)
    if st.lr < x then
      tr:log(string.format("Stopping: the learning rate %s is below %s",
        require("nnunet.json").format_number(st.lr), tostring(x)))
      return true
    end
    return false
  end
end

-- [v1-orig] NetworkTrainer.manage_patience (§7.9), as an alternative: the epoch of the
-- last improvement of the train-loss MA by more than `eps` (5e-4); when epoch - that
-- epoch > patience (50): stop if lr <= lr_threshold (1e-6), else set that epoch to
-- epoch - patience // 2 and go on.
function M.stop_v1(o)
  o = o or {}
  local eps, patience, lr_thr = o.eps or 5e-4, o.patience or 50, o.lr_threshold or 1e-6
  return function(tr, st, e)
    if st.best_ma_patience == nil then st.best_ma_patience = st.ma end
    if st.epoch_best_ma == nil then st.epoch_best_ma = e end
    if st.ma + eps < st.best_ma_patience then st.best_ma_patience, st.epoch_best_ma = st.ma, e end
    if e - st.epoch_best_ma > patience then
      if st.lr > lr_thr then
        st.epoch_best_ma = e - patience // 2
      else
        tr:log("Stopping: no improvement of the training-loss moving average and the learning rate is low")
        return true
      end
    end
    return false
  end
end

-- CosineAnnealingLR(optimizer, T_max = num_epochs) (eta_min 0), stepped as the reference
-- steps every scheduler, lr_scheduler.step(current_epoch): PyTorch then uses the closed
-- form lr_e = eta_min + (initial_lr - eta_min) * (1 + cos(pi * e / T_max)) / 2 (Python
-- floats; eta_min = 0 leaves the products exact). No state.
function M.cosine()
  return {
    kind = "cosine",
    init = function() return {} end,
    lr = function(tr, _, e) return tr.initial_lr * (1 + math.cos(math.pi * e / tr.num_epochs)) / 2 end,
  }
end

-- nnUNetTrainer_warmup: epochs 0 .. epochs-1 Lin_incr_LRScheduler(initial_lr, epochs),
-- lr_e = initial_lr / epochs * (1 + e); from epoch `epochs` on PolyLRScheduler_offset,
-- lr_e = initial_lr * (1 - (e - epochs) / (num_epochs - epochs))^exponent. The reference
-- keeps its SGD (and momentum) across the switch, so only the lr changes. No state.
function M.warmup(o)
  o = o or {}
  local n, exponent = o.epochs or 50, o.exponent or 0.9
  return {
    kind = "warmup", params = { epochs = n, exponent = exponent },
    init = function() return {} end,
    lr = function(tr, _, e)
      if e == 0 and tr.log then tr:log("train whole net, warmup") end
      if e == n and tr.log then tr:log("train whole net, default schedule") end
      if e < n then return tr.initial_lr / n * (1 + e) end
      return tr.initial_lr * (1 - (e - n) / (tr.num_epochs - n)) ^ exponent
    end,
  }
end

-- ---------------------------------------------------------------- the reference's variants
-- Modifiers: each changes a loaded definition in place, as the variant's class changes
-- attributes or overrides one method of nnUNetTrainer (file:class of variants/ named).

local V = {}
M.variant_modifiers = V

-- self.num_epochs = n (training_length/nnUNetTrainer_Xepochs.py, ...)
function V.epochs(n)
  return function(def) def.settings.num_epochs = n end
end

-- self.initial_lr = lr (nnUNetTrainerVanillaAdam1en3, ...)
function V.initial_lr(lr)
  return function(def) def.settings.initial_lr = lr end
end

-- self.enable_deep_supervision = False (network_architecture/nnUNetTrainerNoDeepSupervision.py)
function V.no_deep_supervision(def) def.deep_supervision = false end

-- configure_optimizers -> torch.optim.Adam(lr = initial_lr, weight_decay) with PyTorch's
-- defaults (betas 0.9/0.999, eps 1e-8, amsgrad False; weight decay added to the gradient)
-- and the PolyLRScheduler; train_step still clips the gradient norm to 12
-- (optimizer/nnUNetTrainerAdam.py:nnUNetTrainerVanillaAdam)
function V.vanilla_adam(def)
  def.optimizer = { optimizer = "adam", beta1 = 0.9, beta2 = 0.999, eps = 1e-8, amsgrad = false, clip = 12 }
  def.lr_schedule = M.poly { exponent = 0.9 }
end

-- configure_optimizers -> torch.optim.AdamW(lr = initial_lr, weight_decay, amsgrad = True)
-- (decoupled decay: w *= 1 - lr*wd before each step; betas 0.9/0.999, eps 1e-8) and the
-- PolyLRScheduler; train_step still clips the gradient norm to 12
-- (optimizer/nnUNetTrainerAdam.py:nnUNetTrainerAdam)
function V.adamw(def)
  def.optimizer = { optimizer = "adam", beta1 = 0.9, beta2 = 0.999, eps = 1e-8, amsgrad = true,
                    decoupled_weight_decay = true, clip = 12 }
  def.lr_schedule = M.poly { exponent = 0.9 }
end

-- configure_optimizers -> the same SGD, CosineAnnealingLR(T_max = num_epochs)
-- (lr_schedule/nnUNetTrainerCosAnneal.py)
function V.cosine(def) def.lr_schedule = M.cosine() end

-- Lin_incr 50 epochs, then PolyLRScheduler_offset (lr_schedule/nnUNetTrainer_warmup.py)
function V.warmup(def) def.lr_schedule = M.warmup { epochs = 50, exponent = 0.9 } end

-- def.augmentation as function(AP, cfg): `before(AP, cfg)` changes the v2 configuration
-- (the variant's configure_rotation_dummyDA_mirroring_and_inital_patch_size), the base
-- pipeline is described from it, `after(desc, cfg)` may change or replace the
-- description (the variant's get_training_transforms). Modifiers nest: the outer one's
-- `before` runs first, its `after` last.
local function adapt_augmentation(def, before, after)
  local inner = def.augmentation
  assert(inner == "v2" or type(inner) == "function", "trainer variants build on the v2 augmentation")
  def.augmentation = function(AP, cfg)
    if before then before(AP, cfg) end
    local desc = type(inner) == "function" and inner(AP, cfg) or AP.v2(cfg)
    if after then desc = after(desc, cfg) or desc end
    return desc
  end
end

-- mirror_axes = None, inference_allowed_mirroring_axes = None: no MirrorTransform in
-- training and no mirroring at inference (the checkpoint records no axes)
-- (data_augmentation/nnUNetTrainerNoMirroring.py:nnUNetTrainerNoMirroring)
function V.no_mirroring(def)
  adapt_augmentation(def, function(_, cfg) cfg.mirror_axes, cfg.mirror = {}, {} end)
end

-- mirror_axes = inference axes = (0, 1) in 3-D, (0,) in 2-D
-- (data_augmentation/nnUNetTrainerNoMirroring.py:nnUNetTrainer_onlyMirror01)
function V.only_mirror01(def)
  adapt_augmentation(def, function(_, cfg)
    if cfg.dim == 2 then cfg.mirror_axes, cfg.mirror = { 0 }, { 2 }       -- our 2-D layout: (1, H, W)
    else cfg.mirror_axes, cfg.mirror = { 0, 1 }, { 1, 2 } end
  end)
end

-- SpatialTransform(mode_seg = 'nearest') instead of the per-label linear interpolation
-- (data_augmentation/nnUNetTrainerDAOrd0.py:nnUNetTrainer_DASegOrd0)
function V.seg_nearest(def)
  adapt_augmentation(def, nil, function(desc)
    for _, st in ipairs(desc.steps) do if st.kind == "spatial" then st.seg = "nearest" end end
  end)
end

-- get_training_transforms -> get_validation_transforms (RemoveLabel(-1, 0) only; no
-- MaskImage), initial patch = patch, no mirroring in training or inference
-- (data_augmentation/nnUNetTrainerNoDA.py)
function V.no_da(def)
  def.cascade_augmentation = false   -- a cascade stage's previous-stage masks are not augmented either
  adapt_augmentation(def, function(_, cfg)
    cfg.mirror_axes, cfg.mirror = {}, {}
    cfg.initial_patch = { table.unpack(cfg.patch) }
  end, function(_, cfg)
    return { dim = cfg.dim, dummy_2d = cfg.dummy_2d, patch = cfg.patch,
      steps = { { kind = "remove_label", from = -1, to = 0 } } }
  end)
end

-- do_dummy_2d_data_aug = False: 3-D patches always rotate by ±30° about every axis and
-- the initial patch is get_patch_size's for all axes (2-D: unchanged)
-- (data_augmentation/nnUNetTrainer_noDummy2DDA.py)
function V.no_dummy_2d(def)
  adapt_augmentation(def, function(_, cfg)
    if cfg.dim ~= 3 then return end
    local r = 30 / 360 * 2 * math.pi
    cfg.dummy_2d, cfg.rotation = false, r
    cfg.initial_patch = require("nnunet.augment").initial_patch_size(cfg.patch, { r, r, r }, 0.85, false)
  end)
end

-- _build_loss -> RobustCrossEntropyLoss(ignore_index = the ignore label) alone (mean over
-- the annotated voxels), deep supervision weights as before; asserts that the dataset has
-- no regions (loss/nnUNetTrainerCELoss.py:nnUNetTrainerCELoss)
function V.ce_loss(def) def.loss = { terms = "ce", regions = false } end

-- _build_loss -> MemoryEfficientSoftDiceLoss(batch_dice, do_bg = has_regions, smooth 1e-5,
-- softmax for labels | sigmoid for regions) alone, called without a loss mask: a label
-- map's ignore label is out of range of its one-hot scatter (an error) and region targets
-- carry the ignore channel the Dice misreads, so datasets with an ignore label are refused
-- (loss/nnUNetTrainerDiceLoss.py:nnUNetTrainerDiceLoss)
function V.dice_loss(def) def.loss = { terms = "dice", ignore_label = false } end

-- DC_and_CE_loss (labels) / DC_and_BCE_loss (regions) with the soft Dice's smooth = 0; the
-- denominator's clip at 1e-8 stays (loss/nnUNetTrainerDiceLoss.py:nnUNetTrainerDiceCELoss_noSmooth)
function V.no_smooth(def) def.loss = { terms = "dice+ce", smooth = 0 } end

-- probabilistic_oversampling = True: each sample of a batch is forced to contain
-- foreground with probability oversample_foreground_percent (the loader's
-- oversample_random); without p: the fraction the deterministic rule forces at the
-- plans' batch size ("matched", recipes/train.lua forced_fraction)
-- (sampling/nnUNetTrainer_probabilisticOversampling.py)
function V.probabilistic_oversampling(p)
  return function(def)
    def.probabilistic_oversampling = p and true or "matched"
    if p then def.settings.oversample_foreground_percent = p end
  end
end

-- M.VARIANTS[name] = {base =, summary =, mods = {modifier...}}: the reference's class
-- names, each checked against its file in nnunetv2/training/nnUNetTrainer/variants/.
M.VARIANTS = {}
local function variant(name, summary, mods)
  M.VARIANTS[name] = { base = "nnUNetTrainer", summary = summary, mods = mods }
end

-- training_length/nnUNetTrainer_Xepochs.py (note the reference's singular "1epoch")
M.VARIANT_EPOCHS = { 1, 5, 10, 20, 50, 100, 250, 500, 750, 2000, 4000, 8000 }
-- training_length/nnUNetTrainer_Xepochs_NoMirroring.py
M.VARIANT_EPOCHS_NOMIRRORING = { 250, 2000, 4000, 8000 }
for _, n in ipairs(M.VARIANT_EPOCHS) do
  variant(string.format("nnUNetTrainer_%d%s", n, n == 1 and "epoch" or "epochs"),
    string.format("nnUNetTrainer with num_epochs = %d", n), { V.epochs(n) })
end
for _, n in ipairs(M.VARIANT_EPOCHS_NOMIRRORING) do
  variant(string.format("nnUNetTrainer_%depochs_NoMirroring", n),
    string.format("nnUNetTrainer with num_epochs = %d, no mirroring in training or inference", n),
    { V.epochs(n), V.no_mirroring })
end
variant("nnUNetTrainerNoMirroring", "nnUNetTrainer without mirroring in training or inference", { V.no_mirroring })
variant("nnUNetTrainer_onlyMirror01", "nnUNetTrainer mirroring only axes 0, 1 (2-D: 0), in training and inference",
  { V.only_mirror01 })
variant("nnUNetTrainer_onlyMirror01_1500ep", "nnUNetTrainer_onlyMirror01 with num_epochs = 1500",
  { V.only_mirror01, V.epochs(1500) })
variant("nnUNetTrainer_onlyMirror01_DASegOrd0", "nnUNetTrainer_onlyMirror01 with nearest-neighbour "
  .. "interpolation of the segmentation in the spatial augmentation", { V.seg_nearest, V.only_mirror01 })
variant("nnUNetTrainer_DASegOrd0", "nnUNetTrainer with nearest-neighbour interpolation of the segmentation in the "
  .. "spatial augmentation", { V.seg_nearest })
variant("nnUNetTrainer_DASegOrd0_NoMirroring", "nnUNetTrainer_DASegOrd0 without mirroring in training or inference",
  { V.seg_nearest, V.no_mirroring })
variant("nnUNetTrainerNoDA", "nnUNetTrainer without data augmentation (validation transforms for training, "
  .. "no mirroring in inference)", { V.no_da })
variant("nnUNetTrainer_noDummy2DDA", "nnUNetTrainer without dummy-2D augmentation (anisotropic 3-D patches rotate "
  .. "±30° in 3-D)", { V.no_dummy_2d })
variant("nnUNetTrainerNoDeepSupervision", "nnUNetTrainer without deep supervision", { V.no_deep_supervision })
variant("nnUNetTrainerAdam", "nnUNetTrainer with AdamW (lr 1e-2, decoupled weight decay 3e-5, amsgrad) + poly lr",
  { V.adamw })
variant("nnUNetTrainerAdam1en3", "nnUNetTrainerAdam with initial lr 1e-3", { V.adamw, V.initial_lr(1e-3) })
variant("nnUNetTrainerAdam3en4", "nnUNetTrainerAdam with initial lr 3e-4", { V.adamw, V.initial_lr(3e-4) })
variant("nnUNetTrainerVanillaAdam", "nnUNetTrainer with Adam (lr 1e-2, L2 weight decay 3e-5, no amsgrad) + poly lr",
  { V.vanilla_adam })
variant("nnUNetTrainerVanillaAdam1en3", "nnUNetTrainerVanillaAdam with initial lr 1e-3",
  { V.vanilla_adam, V.initial_lr(1e-3) })
variant("nnUNetTrainerVanillaAdam3en4", "nnUNetTrainerVanillaAdam with initial lr 3e-4",
  { V.vanilla_adam, V.initial_lr(3e-4) })
variant("nnUNetTrainerCosAnneal", "nnUNetTrainer with cosine annealing of the lr (T_max = num_epochs)",
  { V.cosine })
variant("nnUNetTrainer_probabilisticOversampling", "nnUNetTrainer forcing each sample to foreground with the "
  .. "probability the deterministic rule gives at the batch size (bs 2: 0.5)", { V.probabilistic_oversampling() })
variant("nnUNetTrainer_probabilisticOversampling_033", "nnUNetTrainer forcing each sample to foreground with "
  .. "probability 0.33", { V.probabilistic_oversampling(0.33) })
variant("nnUNetTrainer_probabilisticOversampling_010", "nnUNetTrainer forcing each sample to foreground with "
  .. "probability 0.1", { V.probabilistic_oversampling(0.1) })
variant("nnUNetTrainerCELoss", "nnUNetTrainer with the cross-entropy loss alone (no Dice; label datasets only)",
  { V.ce_loss })
variant("nnUNetTrainerCELoss_5epochs", "nnUNetTrainerCELoss with num_epochs = 5", { V.ce_loss, V.epochs(5) })
variant("nnUNetTrainerDiceLoss", "nnUNetTrainer with the soft Dice loss alone (no CE; no ignore label)",
  { V.dice_loss })
variant("nnUNetTrainerDiceCELoss_noSmooth", "nnUNetTrainer with Dice + CE (regions: + BCE), the Dice's smooth = 0",
  { V.no_smooth })
variant("nnUNetTrainer_warmup", "nnUNetTrainer with a 50-epoch linear lr warmup, then poly over the remaining "
  .. "epochs", { V.warmup })

return M
