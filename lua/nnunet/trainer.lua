-- nnunet.trainer: the epoch loop of the reference's nnUNetTrainer (nnunet-behaviour.md
-- §7.1-§7.6): poly learning rate set at the start of every epoch, training and
-- validation iterations, pseudo-Dice per class over the validation batches, its EMA,
-- checkpoints (best / latest / final), training_log_*.txt lines in the reference's
-- format, progress.png, a progress bar, resume (--c) and Ctrl-C.
--
--   local T = require("nnunet.trainer")
--   local tr = T.new{ output_folder = ".../fold_0", net = NET, data = DATA, ... settings }
--   tr:maybe_resume()        -- --c: final -> latest -> best, as the reference
--   tr:run_training()        -- epochs current_epoch .. num_epochs-1, then checkpoint_final
--
-- The trainer owns no numerics; it drives two objects (adapters built by recipes/train.lua
-- from nnunet.net and the data loader, or test doubles):
--   NET:train_step(data, target, lr) -> loss        zero_grad, forward, deep-supervision
--                                                     loss, backward, clip, optimizer step
--                                                     (with an `optimizer` setting the third
--                                                     argument is that table with lr set:
--                                                     nnunet.net's {optimizer = "adam", ...})
--   NET:val_step(data, target) -> loss, logits       no update; logits (N, K, ...) of the
--                                                     highest-resolution output
--   NET:get_state() -> {params = Tensor, optim = {{name=, tensor=}...}, optim_steps = int,
--                       layout = {{name=, shape=}...} (optional: the tensors of params
--                       in order, their names in the checkpoint; else one tensor "params")}
--   NET:set_state(state)
--   NET:layout()        (optional) -> the same layout: checked against a checkpoint's
--                       before set_state (the error names the first mismatching tensor)
--   DATA:train_batch(b) -> data, target             batch b (0-based, counted over the
--   DATA:val_batch(b)   -> data, target             whole run): batch b of epoch e is
--                                                     e * iterations + i, so a resumed run
--                                                     draws exactly the batches it would have
-- Settings use the reference's attribute names (T.DEFAULTS).
-- Trainer definitions (lua/nnunet/trainers.lua, `-tr`) add their settings (num_epochs of
-- nnUNetTrainer_250epochs, ...; the command line's values win), optimizer (step options),
-- schedule ({init, lr, epoch_end}: its state goes into every checkpoint's JSON text, so
-- --c continues a plateau schedule exactly) and stop (function(tr, state, epoch) -> true
-- ends the training after that epoch). Without them: poly learning rate, all epochs.
local train = require("nnunet.train")
local json = require("nnunet.json")
local fs = require("nnunet.fs")
local progress = require("nnunet.progress")

local M = {}

M.DEFAULTS = {
  trainer_name = "nnUNetTrainer",
  initial_lr = 1e-2,
  lr_exponent = 0.9,                 -- PolyLRScheduler
  weight_decay = 3e-5,
  momentum = 0.99,
  grad_clip = 12,
  num_epochs = 1000,
  num_iterations_per_epoch = 250,
  num_val_iterations_per_epoch = 50,
  save_every = 50,                   -- checkpoint_latest every save_every epochs
  oversample_foreground_percent = 0.33,
  enable_deep_supervision = true,
  disable_checkpointing = false,
  plot_width = 3000, plot_height = 5400,   -- the reference's 30 x 54 inch figure at 100 dpi
  ema_alpha = 0.9,
  seed = 12345,
  console = true,                    -- also print log lines to stdout
  progress_bar = true,
  fsync = true,                      -- checkpoints: fsync file and folder (tests turn it off)
}

-- ---------------------------------------------------------------- numerics

-- float32 rounding of a double (numpy float32 arithmetic is emulated op by op)
local function f32(x) return (string.unpack("<f", string.pack("<f", x))) end
M.f32 = f32

-- PolyLRScheduler: initial * (1 - epoch / max_epochs) ^ exponent (Python floats)
function M.poly_lr(initial, epoch, max_epochs, exponent)
  return initial * (1 - epoch / max_epochs) ^ (exponent or 0.9)
end

-- The logger's EMA in numpy float32 (the pseudo-Dice values are np.float32):
-- ema_0 = d_0, ema_e = ema_{e-1} * 0.9 + 0.1 * d_e
function M.ema_update(prev, value, alpha)
  alpha = alpha or 0.9
  if prev == nil then return f32(value) end
  return f32(f32(prev * f32(alpha)) + f32(f32(1 - alpha) * value))
end

-- np.round(x, decimals) on a float32 (multiply, round half to even, divide, in float32)
local function round_half_even(x)
  local r = math.floor(x + 0.5)
  if r - x == 0.5 and r % 2 ~= 0 then r = r - 1 end
  return r
end
function M.np_round32(x, decimals)
  if x ~= x or x == math.huge or x == -math.huge then return x end
  local s = f32(10.0 ^ decimals)
  return f32(round_half_even(f32(x * s)) / s)
end
-- the same on a float64
function M.np_round64(x, decimals)
  if x ~= x or x == math.huge or x == -math.huge then return x end
  local s = 10.0 ^ decimals
  return round_half_even(x * s) / s
end

-- str() of a numpy float32 / Python float: shortest digits that round-trip, Python's layout
function M.repr32(x)
  if x ~= x then return "nan" end
  if x == math.huge then return "inf" elseif x == -math.huge then return "-inf" end
  for p = 1, 9 do
    local s = string.format("%." .. p .. "g", x)
    if f32(tonumber(s)) == x then return json.format_number(tonumber(s) + 0.0) end
  end
  return json.format_number(x + 0.0)
end
function M.repr64(x)
  if x ~= x then return "nan" end
  return json.format_number(x + 0.0)
end

-- str(datetime.fromtimestamp(t)): "YYYY-MM-DD HH:MM:SS[.ffffff]" in local time
function M.timestamp_str(t)
  local sec = math.floor(t)
  local us = math.floor((t - sec) * 1e6 + 0.5)
  if us >= 1000000 then sec, us = sec + 1, 0 end
  local s = os.date("%Y-%m-%d %H:%M:%S", sec)
  if us ~= 0 then s = s .. string.format(".%06d", us) end
  return s
end

-- "training_log_%d_%d_%d_%02.0d_%02.0d_%02.0d.txt" of the reference
function M.log_file_name(t)
  local d = os.date("*t", math.floor(t))
  return string.format("training_log_%d_%d_%d_%02d_%02d_%02d.txt", d.year, d.month, d.day, d.hour, d.min, d.sec)
end

-- ---------------------------------------------------------------- the trainer

local Trainer = {}
Trainer.__index = Trainer

local LOG_KEYS = { "mean_fg_dice", "ema_fg_dice", "dice_per_class_or_region", "train_losses", "val_losses",
  "lrs", "epoch_start_timestamps", "epoch_end_timestamps" }

function M.new(opts)
  local self = setmetatable({}, Trainer)
  for k, v in pairs(M.DEFAULTS) do self[k] = v end
  for k, v in pairs(opts) do self[k] = v end
  assert(self.output_folder, "trainer: output_folder is required")
  assert(self.net and self.data, "trainer: net and data are required")
  self.current_epoch = 0
  self.best_ema = nil
  self.logs = {}
  for _, k in ipairs(LOG_KEYS) do self.logs[k] = {} end
  self.identity = self.identity or "unknown"
  self.plans_hash = self.plans_hash or 0
  self.n_classes = self.n_classes or 1
  local ok, err = fs.mkdir(self.output_folder)
  if not ok and not fs.isdir(self.output_folder) then error(err, 0) end
  self.log_file = self.log_file or (self.output_folder .. "/" .. M.log_file_name(train.time()))
  self.stopped = false
  if self.schedule and self.schedule.init then self.sched_state = self.schedule.init(self) end
  return self
end

local function copy(t)
  if type(t) ~= "table" then return t end
  local o = {}
  for k, v in pairs(t) do o[k] = copy(v) end
  return o
end

-- print_to_log_file(*args): "<timestamp>: a b c " + newline, each arg followed by a space
function Trainer:log(...)
  local args = table.pack(...)
  local parts = {}
  if not self.no_timestamp then parts[1] = M.timestamp_str(train.time()) .. ":" end
  for i = 1, args.n do parts[#parts + 1] = tostring(args[i]) end
  local f = io.open(self.log_file, "a+")
  if f then
    f:write(table.concat(parts, " ") .. " \n")
    f:close()
  end
  if self.console then print(table.concat(parts, " ")) end
end

function Trainer:log_plain(...)
  self.no_timestamp = true
  self:log(...)
  self.no_timestamp = false
end

-- ---------------------------------------------------------------- checkpoints

function Trainer:checkpoint_table()
  local st = self.net:get_state()
  local meta = json.encode({
    trainer_name = self.trainer_name,
    init_args = self.init_args or {},
    inference_allowed_mirroring_axes = self.inference_allowed_mirroring_axes or json.array({}),
    num_epochs = self.num_epochs,
    num_iterations_per_epoch = self.num_iterations_per_epoch,
    num_val_iterations_per_epoch = self.num_val_iterations_per_epoch,
    seed = self.seed,
    schedule_state = self.sched_state,     -- nil for the poly schedule (stateless)
    stopped = self.stopped or nil,         -- the stop rule ended the training
    grad_scaler = st.loss_scale,           -- {scale=, growth_tracker=} with loss scaling (fp16)
  }, { indent = false })
  local logs = {}
  local n = self.current_epoch
  for _, k in ipairs(LOG_KEYS) do logs[k] = table.move(self.logs[k], 1, n, 1, {}) end
  return {
    trainer = self.trainer_name, identity = self.identity, plans_hash = self.plans_hash,
    epoch = self.current_epoch, best_ema = self.best_ema, optim_steps = st.optim_steps or 0,
    params = st.params, layout = st.layout, optim = st.optim or {}, n_classes = self.n_classes, logs = logs,
    -- the loader's randomness depends only on (seed, batch index); the counters are
    -- implied by the epoch but kept for inspection
    seed = self.seed, train_batches = self.current_epoch * self.num_iterations_per_epoch,
    val_batches = self.current_epoch * self.num_val_iterations_per_epoch,
    meta = meta,
  }
end

-- save_checkpoint(name): name is the file name in the fold folder. `epoch` in the
-- file is the reference's current_epoch + 1 convention handled by the caller.
function Trainer:save_checkpoint(name)
  if self.disable_checkpointing then
    self:log("No checkpoint written, checkpointing is disabled")
    return
  end
  local ok, err = train.checkpoint_save(self.output_folder .. "/" .. name, self:checkpoint_table(),
    { no_fsync = not self.fsync })
  if not ok then error("saving " .. name .. " failed: " .. tostring(err), 0) end
end

-- A network with a layout (nnunet.net's Net:layout()) must match the file's tensors
-- (names, shapes, order): else the error names the first mismatching tensor.
function Trainer:load_checkpoint(path)
  local ck, err = train.checkpoint_load(path)
  if not ck then error(err, 0) end
  if ck.identity ~= self.identity or ck.plans_hash ~= self.plans_hash then
    error(string.format("checkpoint '%s' belongs to '%s' (plans hash %d), this training is '%s' (plans hash %d)",
      path, ck.identity, ck.plans_hash, self.identity, self.plans_hash), 0)
  end
  if ck.n_classes ~= self.n_classes then
    error(string.format("checkpoint '%s' has %d pseudo-Dice classes, this training %d", path, ck.n_classes,
      self.n_classes), 0)
  end
  if ck.trainer ~= self.trainer_name then
    error(string.format("checkpoint '%s' was written by trainer '%s', this training is '%s'", path, ck.trainer,
      tostring(self.trainer_name)), 0)
  end
  if type(self.net.layout) == "function" then
    local ok, lerr = train.check_layout(path, ck.layout, self.net:layout())
    if not ok then error(lerr, 0) end
  end
  local meta = json.decode(ck.meta) or {}
  self.net:set_state({ params = ck.params, optim = ck.optim, optim_steps = ck.optim_steps,
    loss_scale = meta.grad_scaler })
  self.current_epoch = ck.epoch
  self.best_ema = ck.best_ema
  for _, k in ipairs(LOG_KEYS) do self.logs[k] = ck.logs[k] or {} end
  if meta.inference_allowed_mirroring_axes then
    self.inference_allowed_mirroring_axes = meta.inference_allowed_mirroring_axes
  end
  if self.schedule then
    if type(meta.schedule_state) == "table" then
      self.sched_state = meta.schedule_state
    else
      self:log("WARNING: the checkpoint holds no learning-rate schedule state: the schedule starts afresh")
      self.sched_state = self.schedule.init and self.schedule.init(self) or {}
    end
  end
  self.stopped = meta.stopped == true
  if meta.num_epochs and meta.num_epochs ~= self.num_epochs then
    self:log(string.format("WARNING: the checkpoint was written with num_epochs = %d, this run uses %d: the "
      .. "learning-rate schedule changes", meta.num_epochs, self.num_epochs))
  end
  return ck
end

-- --c: checkpoint_final -> checkpoint_latest -> checkpoint_best, the first that exists
-- (the reference's order). Returns the file used, or nil (fresh start, as the reference).
function Trainer:maybe_resume()
  for _, name in ipairs({ "checkpoint_final.pth", "checkpoint_latest.pth", "checkpoint_best.pth" }) do
    local p = self.output_folder .. "/" .. name
    if fs.isfile(p) then
      self:load_checkpoint(p)
      self:log("Continuing from " .. name .. " at epoch " .. self.current_epoch)
      return name
    end
  end
  self:log("WARNING: Cannot continue training because there seems to be no checkpoint available to "
    .. "continue from. Starting a new training...")
  return nil
end

-- ---------------------------------------------------------------- epochs

function Trainer:on_epoch_start()
  if self.schedule then self.sched_saved = copy(self.sched_state) end   -- restored if interrupted
  self.logs.epoch_start_timestamps[self.current_epoch + 1] = train.time()
end

function Trainer:on_train_epoch_start()
  if self.schedule then
    self.lr = self.schedule.lr(self, self.sched_state, self.current_epoch)
  else
    self.lr = M.poly_lr(self.initial_lr, self.current_epoch, self.num_epochs, self.lr_exponent)
  end
  if self.optimizer then
    self.step_opts = copy(self.optimizer)
    self.step_opts.lr = self.lr
    if self.step_opts.weight_decay == nil then self.step_opts.weight_decay = self.weight_decay end
  end
  self:log("")
  self:log("Epoch " .. self.current_epoch)
  self:log("Current learning rate: " .. M.repr64(M.np_round64(self.lr, 5)))
  self.logs.lrs[self.current_epoch + 1] = self.lr
end

local function bar(self, label, n)
  if not self.progress_bar then return nil end
  return progress.new(label, n)
end

function Trainer:train_epoch()
  local e, n = self.current_epoch, self.num_iterations_per_epoch
  local b = bar(self, string.format("epoch %d train", e), n)
  local sum = 0
  for i = 0, n - 1 do
    local data, target = self.data:train_batch(e * n + i)
    local l = self.net:train_step(data, target, self.step_opts or self.lr)
    sum = sum + f32(l)
    if b then b:step(1, string.format("loss %.4f", l)) end
  end
  if b then b:finish() end
  -- np.mean over the float32 losses (accumulated in double here, rounded to float32)
  self.logs.train_losses[e + 1] = f32(sum / n)
end

function Trainer:validation_epoch()
  local e, n = self.current_epoch, self.num_val_iterations_per_epoch
  local b = bar(self, string.format("epoch %d val", e), n)
  local sum, tp, fp, fn = 0, nil, nil, nil
  local dice_opts = { regions = self.regions, ignore_label = self.ignore_label }
  for i = 0, n - 1 do
    local data, target = self.data:val_batch(e * n + i)
    local l, logits = self.net:val_step(data, target)
    sum = sum + f32(l)
    local t, p, f = train.pseudo_dice(logits, target, dice_opts)
    if not tp then tp, fp, fn = {}, {}, {} ; for c = 1, #t do tp[c], fp[c], fn[c] = 0, 0, 0 end end
    -- the reference sums the per-batch float32 counts with np.sum (float32)
    for c = 1, #t do
      tp[c], fp[c], fn[c] = f32(tp[c] + t[c]), f32(fp[c] + p[c]), f32(fn[c] + f[c])
    end
    if b then b:step(1) end
  end
  if b then b:finish() end
  local dice, s, cnt = {}, 0, 0
  for c = 1, #(tp or {}) do
    local den = f32(f32(f32(2 * tp[c]) + fp[c]) + fn[c])
    dice[c] = f32(f32(2 * tp[c]) / den)                      -- NaN for 0 / 0
    if dice[c] == dice[c] then s, cnt = s + dice[c], cnt + 1 end
  end
  local mean = cnt > 0 and f32(s / cnt) or 0 / 0             -- np.nanmean
  self.logs.mean_fg_dice[e + 1] = mean
  self.logs.ema_fg_dice[e + 1] = M.ema_update(self.logs.ema_fg_dice[e], mean, self.ema_alpha)
  self.logs.dice_per_class_or_region[e + 1] = dice
  self.logs.val_losses[e + 1] = f32(sum / n)
end

function Trainer:plot()
  if not train.plot_available() then return end
  local n = self.current_epoch + 1
  local logs = {}
  for _, k in ipairs(LOG_KEYS) do logs[k] = table.move(self.logs[k], 1, n, 1, {}) end
  local ok, err = train.plot_progress(self.output_folder .. "/progress.png", logs, self.plot_width, self.plot_height)
  if not ok then self:log("WARNING: progress.png not written: " .. tostring(err)) end
end

-- the schedule's end-of-epoch step (plateau: moving average, patience, lr) and the
-- stop rule, before any checkpoint of this epoch is written
function Trainer:schedule_epoch_end(e)
  if self.schedule and self.schedule.epoch_end then
    self.schedule.epoch_end(self, self.sched_state, e, self.logs.train_losses[e + 1])
  end
  if self.stop and self.stop(self, self.sched_state, e) then self.stopped = true end
end

function Trainer:on_epoch_end()
  local e = self.current_epoch
  self.logs.epoch_end_timestamps[e + 1] = train.time()
  self:log("train_loss", M.repr32(M.np_round32(self.logs.train_losses[e + 1], 4)))
  self:log("val_loss", M.repr32(M.np_round32(self.logs.val_losses[e + 1], 4)))
  local parts = {}
  for c, d in ipairs(self.logs.dice_per_class_or_region[e + 1]) do
    parts[c] = "np.float32(" .. M.repr32(M.np_round32(d, 4)) .. ")"
  end
  self:log("Pseudo dice", "[" .. table.concat(parts, ", ") .. "]")
  local dt = self.logs.epoch_end_timestamps[e + 1] - self.logs.epoch_start_timestamps[e + 1]
  self:log("Epoch time: " .. M.repr64(M.np_round64(dt, 2)) .. " s")
  -- dynamic loss scaling (fp16): say when steps were skipped (the reference is silent)
  local info = type(self.net.info) == "function" and self.net:info() or {}
  if info.skipped_steps and info.skipped_steps ~= (self.skipped_seen or 0) then
    self:log(string.format("Loss scaling: %d step(s) skipped for non-finite gradients, scale now %g",
      info.skipped_steps - (self.skipped_seen or 0), info.loss_scale))
    self.skipped_seen = info.skipped_steps
  end
  self:schedule_epoch_end(e)

  if (e + 1) % self.save_every == 0 and e ~= self.num_epochs - 1 and not self.stopped then
    self.current_epoch = e + 1                  -- the file records epochs completed
    self:save_checkpoint("checkpoint_latest.pth")
    self.current_epoch = e
  end
  local ema = self.logs.ema_fg_dice[e + 1]
  if self.best_ema == nil or ema > self.best_ema then
    self.best_ema = ema
    self:log("Yayy! New best EMA pseudo Dice: " .. M.repr32(M.np_round32(ema, 4)))
    self.current_epoch = e + 1
    self:save_checkpoint("checkpoint_best.pth")
    self.current_epoch = e
  end
  self:plot()
  self.current_epoch = e + 1
end

function Trainer:on_train_end()
  self:save_checkpoint("checkpoint_final.pth")
  local latest = self.output_folder .. "/checkpoint_latest.pth"
  if fs.isfile(latest) then os.remove(latest) end
  self:log("Training done.")
end

-- Ctrl-C (or any error) inside an epoch: the epoch in progress is dropped from the
-- logs and checkpoint_latest records the current weights with current_epoch = that
-- epoch, so --c reruns it with its learning rate.
function Trainer:save_interrupted()
  local n = self.current_epoch
  for _, k in ipairs(LOG_KEYS) do
    for i = #self.logs[k], n + 1, -1 do self.logs[k][i] = nil end
  end
  if self.sched_saved then self.sched_state, self.stopped = copy(self.sched_saved), false end
  self:save_checkpoint("checkpoint_latest.pth")
  self:log(string.format("Interrupted during epoch %d: checkpoint_latest.pth written (resume with --c reruns "
    .. "epoch %d)", n, n))
end

function Trainer:run_epoch()
  self:on_epoch_start()
  self:on_train_epoch_start()
  self:train_epoch()
  self:validation_epoch()
  self:on_epoch_end()
end

-- Runs epochs current_epoch .. num_epochs-1, then writes checkpoint_final.
-- `until_epoch` (tests): stop before that epoch without the end-of-training steps.
function Trainer:run_training(until_epoch)
  local last = math.min(self.num_epochs, until_epoch or self.num_epochs)
  while self.current_epoch < last and not self.stopped do
    local interrupted = false
    local ok, err = xpcall(self.run_epoch, function(e)
      if type(e) ~= "string" then return e end            -- user errors pass through as tables
      if e:find("interrupted", 1, true) or e:find("ERR_INTERRUPTED", 1, true) then
        interrupted = true
        return e
      end
      return debug.traceback(e, 2)                        -- keep where a real error came from
    end, self)
    if not ok then
      if interrupted then
        local sok, serr = pcall(self.save_interrupted, self)
        if not sok then io.stderr:write("could not save the interrupted state: " .. tostring(serr) .. "\n") end
      end
      error(err, 0)
    end
  end
  if (self.current_epoch >= self.num_epochs or self.stopped) and not until_epoch then self:on_train_end() end
end

return M
