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
--   TR.poly{exponent = 0.9}, TR.plateau{...}, TR.stop_lr_below(x), TR.stop_v1{...}:
--       the building blocks the shipped definitions use
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
--   lr_schedule   = {init = function(tr) -> state, lr = function(tr, state, epoch) -> lr,
--                    epoch_end = function(tr, state, epoch, train_loss)}; `state` is a
--                   JSON-able table saved in every checkpoint, so --c continues it
--   stop          = function(tr, state, epoch) -> true: end training after this epoch
--   augmentation  = "v2" | "2018" (lua/nnunet/augment_pipeline.lua) or
--                   function(AP, cfg) -> training pipeline description
--   deep_supervision = true | false
--   loss          = "dice+ce" (the engine's Dice + CE, §7.4; the only one for now)
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

function M.available()
  local seen, names = {}, {}
  for _, d in ipairs(M.search_dirs()) do
    for _, f in ipairs(fs.listdir(d) or {}) do
      local n = f:match("^([%w_%-%.]+)%.lua$")
      if n and not seen[n] then seen[n], names[#names + 1] = true, n end
    end
  end
  table.sort(names)
  return names
end

local function find(name)
  if name:match("%.lua$") or name:find("/", 1, true) then
    if fs.isfile(name) then return name, (name:match("([^/]+)%.lua$") or name:match("[^/]+$")) end
    user_error("trainer file '%s' not found", name)
  end
  for _, d in ipairs(M.search_dirs()) do
    local p = d .. "/" .. name .. ".lua"
    if fs.isfile(p) then return p, name end
  end
  user_error("unknown trainer '%s'; available trainers: %s (files NAME.lua in $NNUNET_TRAINERS or %s)",
    name, table.concat(M.available(), ", "), M.shipped_dir())
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
  if def.loss ~= nil and def.loss ~= "dice+ce" then
    bad("loss '%s' is not available (the engine computes Dice + CE: 'dice+ce')", tostring(def.loss))
  end
  if def.settings ~= nil and type(def.settings) ~= "table" then bad("settings must be a table") end
end

-- Loads a definition by name (user folders, then shipped) or path. A fresh table each
-- call (the definition may be adapted by configure without touching the file's).
function M.load(name)
  local path, base = find(name)
  local chunk, err = loadfile(path, "t")
  if not chunk then user_error("trainer %s: %s", path, err) end
  local ok, def = pcall(chunk)
  if not ok then user_error("trainer %s: %s", path, tostring(def)) end
  check_def(def, path)
  if def.name ~= nil and def.name ~= base then
    user_error("trainer %s: name '%s' differs from the file name '%s'", path, tostring(def.name), base)
  end
  def.name, def.path = base, path
  def.settings = def.settings or {}
  def.augmentation = def.augmentation or "v2"
  if def.deep_supervision == nil then def.deep_supervision = true end
  def.loss = def.loss or "dice+ce"
  return def
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

return M
