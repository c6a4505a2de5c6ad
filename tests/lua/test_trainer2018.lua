-- Trainer definitions (lua/nnunet/trainers.lua, `-tr`) and the 2018 trainer
-- (lua/nnunet/trainers/nnUNetTrainer2018.lua, nnunet-behaviour.md §7.9, paper §2.2):
--   1. the plateau schedule + stop rule on a scripted loss sequence, with the epochs where
--      the learning rate drops and the last epoch derived by hand (below);
--   2. the trainer hands the definition's optimizer options (Adam, lr of the epoch) to
--      NET:train_step; the v2 definition's SGD options equal nnunet.net's defaults;
--   3. resume continuity of the plateau state with the scripted losses (stand-in net) and
--      with a tiny real U-Net trained by Adam without deep supervision: 2 epochs + --c + 2
--      == 4 straight, bit for bit (parameters, Adam moments, schedule state, logs);
--   4. lookup: shipped names, a user file by path, unknown names list the available
--      trainers, malformed definitions are named.
-- (The Adam update itself is checked against hand values in tests/test_backend_ops.c
-- and against PyTorch in tests/test_net.c.)
local T = require("nnunet.trainer")
local TR = require("nnunet.trainers")
local train = require("nnunet.train")
local tensor = require("nnunet.tensor")
local fs = require("nnunet.fs")
local json = require("nnunet.json")

local failures = 0
local function check(cond, msg)
  if not cond then failures = failures + 1; io.stderr:write("FAIL: " .. msg .. "\n") end
  return cond
end
local function close(a, b, tol, msg)
  check(a ~= nil and b ~= nil and math.abs(a - b) <= tol * math.max(1, math.abs(b)),
    string.format("%s: %s vs %s", msg, tostring(a), tostring(b)))
end

local root = os.tmpname()
os.remove(root)
root = root .. "_trainer2018"
assert(fs.mkdir(root))

-- ------------------------------------------------------------------ 1. scripted losses
-- The moving average follows a designed path m_e; the loss that produces it is
-- loss_e = (m_e - 0.93 m_{e-1}) / 0.07 (loss_0 = m_0):
--   e = 0..9    m = 1.0      e = 0 improves on +inf (best 1.0); e = 1..9: bad 1..9
--   e = 10..19  m = 0.99     e = 10: 0.99 < 1.0 - 1e-3, best 0.99, bad 0; then bad 1..9
--   e = 20      m = 0.9891   not below 0.99 - 1e-3 = 0.989: bad 10
--   e = 21..    m = 0.9882   below 0.989: best 0.9882, bad 0; then bad = e - 21
-- ReduceLROnPlateau reduces when bad > 30, i.e. after epoch 21 + 31 = 52 (lr 3e-4 -> 6e-5
-- from epoch 53), bad restarts at 0: after 83 (1.2e-5), 114 (2.4e-6) and 145 (4.8e-7);
-- 4.8e-7 < 1e-6 stops the training after epoch 145: 146 epochs, the cap (1000) unused.
-- (The training losses are float32 in the logs, as the reference's np.mean of float32
-- losses: the path moves by < 1e-7, far from the 1e-3 threshold.)
local function ma_path(e)
  if e <= 9 then return 1.0 elseif e <= 19 then return 0.99 elseif e == 20 then return 0.9891 end
  return 0.9882
end
local function scripted_loss(e)
  if e == 0 then return ma_path(0) end
  return (ma_path(e) - 0.93 * ma_path(e - 1)) / 0.07
end
local LR_DROPS = { [52] = 6e-5, [83] = 1.2e-5, [114] = 2.4e-6, [145] = 4.8e-7 }
local LAST_EPOCH = 145

-- 1a. the schedule functions alone (a stub trainer)
do
  local def = TR.load("nnUNetTrainer2018")
  local stub = { initial_lr = 3e-4, log = function() end }
  local sched, stop = def.lr_schedule, def.stop
  local st = sched.init(stub)
  local lr_of_epoch, stopped_after = {}, nil
  for e = 0, 999 do
    lr_of_epoch[e] = sched.lr(stub, st, e)
    sched.epoch_end(stub, st, e, T.f32(scripted_loss(e)))
    if e == 0 then check(st.best == st.ma and st.bad == 0, "epoch 0 improves on +inf") end
    if e == 9 then check(st.bad == 9, "epoch 9: 9 bad epochs, got " .. st.bad) end
    if e == 10 then check(st.bad == 0, "epoch 10: improvement by 1e-2 resets") end
    if e == 20 then check(st.bad == 10, "epoch 20: improvement 9e-4 < 1e-3 is no improvement, bad " .. st.bad) end
    if e == 21 then check(st.bad == 0 and math.abs(st.best - 0.9882) < 1e-6, "epoch 21: improvement 1.8e-3") end
    if e == 51 then check(st.bad == 30 and st.lr == 3e-4, "epoch 51: 30 bad epochs, lr unchanged") end
    if stop(stub, st, e) then stopped_after = e; break end
  end
  check(stopped_after == LAST_EPOCH, "stop after epoch 145, got " .. tostring(stopped_after))
  for e = 1, LAST_EPOCH do
    local expect = lr_of_epoch[e - 1]
    if LR_DROPS[e - 1] then expect = lr_of_epoch[e - 1] * 0.2 end
    check(lr_of_epoch[e] == expect, string.format("lr of epoch %d: %s vs %s", e, tostring(lr_of_epoch[e]),
      tostring(expect)))
  end
  close(lr_of_epoch[53], 6e-5, 1e-15, "lr epoch 53")
  close(lr_of_epoch[84], 1.2e-5, 1e-15, "lr epoch 84")
  close(lr_of_epoch[115], 2.4e-6, 1e-15, "lr epoch 115")
  check(lr_of_epoch[52] == 3e-4 and lr_of_epoch[145] < 2.5e-6, "lr before the drops")
  close(st.lr, 4.8e-7, 1e-12, "final lr 4.8e-7")
end

-- 1b. a lr drop needs lr - new > eps (1e-8): at 1e-8 * 1.2 the step 0.96e-8 is refused
do
  local s = TR.plateau { patience = 0, threshold = 1.0 }
  local stub = { initial_lr = 1.2e-8, log = function() end }
  local st = s.init(stub)
  s.epoch_end(stub, st, 0, 1.0)            -- improves on +inf
  s.epoch_end(stub, st, 1, 1.0)            -- bad 1 > 0: 1.2e-8 - 2.4e-9 = 9.6e-9 <= 1e-8: kept
  check(st.lr == 1.2e-8 and st.bad == 0, "ReduceLROnPlateau eps: no reduction below eps")
end

-- ------------------------------------------------------------------ 2./3. stand-in net
local P = 4
local function fake_net(iters)
  local net = { w = {}, steps = 0, opts_seen = {} }
  for i = 1, P do net.w[i] = 0.1 * i end
  function net:train_step(data, _, opts)
    local b = math.tointeger(data:get(1, 1, 1, 1, 1))
    self.opts_seen[#self.opts_seen + 1] = opts
    local lr = type(opts) == "table" and opts.lr or opts
    for i = 1, P do self.w[i] = T.f32(self.w[i] - lr * (self.w[i] - 0.01 * i)) end
    self.steps = self.steps + 1
    return scripted_loss(b // iters)
  end
  function net:val_step()
    return 0.5, tensor.from_table({ 0, 0, 1, 1, 1, 1, 0, 0 }, { 1, 2, 1, 2, 2 })
  end
  function net:get_state()
    return { params = tensor.from_table(self.w, { P }), optim = {}, optim_steps = self.steps }
  end
  function net:set_state(st)
    for i = 1, P do self.w[i] = st.params:get(i) end
    self.steps = st.optim_steps
  end
  return net
end
local fake_data = {
  train_batch = function(_, b) return tensor.from_table({ b }, { 1, 1, 1, 1, 1 }), tensor.from_table({ 0 }, { 1, 1, 1, 1, 1 }) end,
  val_batch = function() return tensor.from_table({ 0 }, { 1, 1, 1, 1, 1 }), tensor.from_table({ 1, 0, 1, 1 }, { 1, 1, 1, 2, 2 }) end,
}

local function new_2018(folder, extra)
  local def = TR.load("nnUNetTrainer2018")
  local o = TR.trainer_options(def)
  o.output_folder = root .. "/" .. folder
  o.net, o.data = fake_net(2), fake_data
  o.num_epochs, o.num_iterations_per_epoch, o.num_val_iterations_per_epoch = 1000, 2, 1
  o.save_every = 60
  o.identity, o.plans_hash, o.n_classes = "Dataset999_Test/nnUNetPlans2018/3d_fullres", 18, 1
  o.console, o.progress_bar, o.fsync = false, false, false
  for k, v in pairs(extra or {}) do o[k] = v end
  local tr = T.new(o)
  tr.plot = function() end
  return tr
end

-- straight: 146 epochs, then the stop
local a = new_2018("straight")
a:run_training()
check(a.current_epoch == LAST_EPOCH + 1, "the stop rule ends the run after epoch 145: current_epoch "
  .. a.current_epoch)
check(a.stopped == true, "stopped flag")
check(fs.isfile(a.output_folder .. "/checkpoint_final.pth"), "checkpoint_final after the stop")
check(not fs.isfile(a.output_folder .. "/checkpoint_latest.pth"), "checkpoint_latest removed")
check(#a.logs.lrs == LAST_EPOCH + 1, "146 logged learning rates")
close(a.logs.lrs[1], 3e-4, 0, "logged lr epoch 0")
close(a.logs.lrs[53 + 1], 6e-5, 1e-15, "logged lr epoch 53")
close(a.logs.lrs[52 + 1], 3e-4, 0, "logged lr epoch 52")
close(a.logs.lrs[84 + 1], 1.2e-5, 1e-15, "logged lr epoch 84")
close(a.logs.lrs[145 + 1], 2.4e-6, 1e-15, "logged lr epoch 145")
-- the optimizer options reach the net: Adam with the epoch's lr and the paper's decay
local o1 = a.net.opts_seen[1]
check(type(o1) == "table" and o1.optimizer == "adam" and o1.lr == 3e-4 and o1.weight_decay == 3e-5
  and o1.amsgrad == true and o1.clip == 0, "Adam step options: " .. json.encode(o1 or {}))
close(a.net.opts_seen[2 * 53 + 1].lr, 6e-5, 1e-15, "step options carry the epoch's lr")
-- the log: the scheduler's lines
local logtext = io.open(a.log_file):read("a")
check(logtext:find("Reducing learning rate to " .. json.format_number(3e-4 * 0.2), 1, true) ~= nil,
  "log: reduction line (5.9999999999999995e-05, Python's 3e-4 * 0.2)")
check(logtext:find("Stopping: the learning rate 4%.8") ~= nil, "log: stop line")
-- --c on a stopped training: nothing more to run, checkpoint_final rewritten
local a2 = new_2018("straight")
check(a2:maybe_resume() == "checkpoint_final.pth" and a2.stopped, "resume of a stopped training")
a2:run_training()
check(a2.current_epoch == LAST_EPOCH + 1 and #a2.net.opts_seen == 0, "a stopped training does not train again")

-- resume in the middle of a plateau (save_every 60: checkpoint_latest after epoch 59,
-- state bad = 38 - 31 = 7 after the drop at 52) and at the drop itself (save_every 53)
for _, cut in ipairs({ 60, 53 }) do
  local b = new_2018("resumed" .. cut, { save_every = cut })
  b:run_training(cut)
  local ck = train.checkpoint_load(b.output_folder .. "/checkpoint_latest.pth")
  local meta = ck and json.decode(ck.meta) or {}
  check(type(meta.schedule_state) == "table", "checkpoint meta holds the schedule state")
  local b2 = new_2018("resumed" .. cut, { save_every = cut })
  check(b2:maybe_resume() == "checkpoint_latest.pth" and b2.current_epoch == cut, "resumed at epoch " .. cut)
  for _, k in ipairs({ "lr", "ma", "best", "bad" }) do
    check(b2.sched_state[k] == b.sched_state[k], string.format("cut %d: state %s %s vs %s", cut, k,
      tostring(b2.sched_state[k]), tostring(b.sched_state[k])))
  end
  b2:run_training()
  check(b2.current_epoch == a.current_epoch, "cut " .. cut .. ": same last epoch")
  for i = 1, math.max(#a.logs.lrs, #b2.logs.lrs) do
    if a.logs.lrs[i] ~= b2.logs.lrs[i] then check(false, "cut " .. cut .. ": lr of epoch " .. (i - 1)); break end
  end
  for i = 1, P do check(a.net.w[i] == b2.net.w[i], "cut " .. cut .. ": weight " .. i) end
  for _, k in ipairs({ "lr", "ma", "best", "bad" }) do
    check(a.sched_state[k] == b2.sched_state[k], "cut " .. cut .. ": final state " .. k)
  end
end
-- an interruption inside epoch 53 (batch 107) restores the schedule state of its start
do
  local c = new_2018("interrupted", { save_every = 1000 })
  c.data = { train_batch = function(_, b)
      if b == 107 then error("interrupted!", 0) end
      return fake_data.train_batch(nil, b)
    end, val_batch = fake_data.val_batch }
  check(not pcall(c.run_training, c), "interruption propagates")
  local c2 = new_2018("interrupted")
  c2:maybe_resume()
  check(c2.current_epoch == 53 and c2.sched_state.lr == 3e-4 * 0.2 and c2.sched_state.bad == 0,
    "interrupted epoch 53: resume at 53 with lr 6e-5 and bad 0, got " .. c2.current_epoch .. " "
    .. tostring(c2.sched_state.lr) .. " " .. tostring(c2.sched_state.bad))
  c2:run_training()
  check(c2.current_epoch == LAST_EPOCH + 1, "interrupted run stops at the same epoch")
end
-- a checkpoint of another trainer is refused
do
  local v2 = T.new { output_folder = root .. "/resumed60", net = fake_net(2), data = fake_data,
    identity = "Dataset999_Test/nnUNetPlans2018/3d_fullres", plans_hash = 18, console = false }
  local ok, err = pcall(v2.maybe_resume, v2)
  check(not ok and tostring(err):find("nnUNetTrainer2018") ~= nil, "other trainer's checkpoint refused: "
    .. tostring(err))
end

-- the v2 definition: SGD options equal to nnunet.net's defaults, poly schedule
do
  local def = TR.load("nnUNetTrainer")
  local o = TR.trainer_options(def)
  check(o.optimizer.optimizer == "sgd" and o.optimizer.momentum == 0.99 and o.optimizer.nesterov == true
    and o.optimizer.clip == 12 and o.optimizer.weight_decay == 3e-5 and o.initial_lr == 1e-2, "v2 SGD options")
  check(def.deep_supervision == true and def.augmentation == "v2" and def.stop == nil, "v2 definition")
  local stub = { initial_lr = 1e-2, num_epochs = 1000 }
  close(def.lr_schedule.lr(stub, {}, 500), 0.005358867312681466, 1e-14, "v2 poly lr at epoch 500")
end

-- ------------------------------------------------------------------ 3. a tiny real U-Net
local has_net, netmod = pcall(require, "nnunet.net")
if has_net then
  local arch, cube_data = dofile("tests/lua/testlib.lua").tiny_unet()
  -- the 2018 definition with a plateau that drops quickly (threshold 10: no epoch after
  -- the first counts as an improvement; patience 1: a drop after epochs 2, 4, ...)
  local function real_trainer(folder)
    local def = TR.load("nnUNetTrainer2018")
    def.lr_schedule = TR.plateau { patience = 1, threshold = 10 }
    local o = TR.trainer_options(def)
    o.output_folder = root .. "/" .. folder
    o.data = cube_data
    o.net = netmod.build(arch, { num_input_channels = 1, num_classes = 2, seed = 7, patch_size = { 8, 8, 8 },
      batch_size = 2, deep_supervision = def.deep_supervision, train = true })
    o.num_epochs, o.num_iterations_per_epoch, o.num_val_iterations_per_epoch, o.save_every = 4, 3, 2, 2
    o.identity, o.plans_hash, o.n_classes = "Dataset999_Test/nnUNetPlans/tiny", 7, 1
    o.console, o.progress_bar, o.fsync, o.plot_width, o.plot_height = false, false, false, 300, 540
    return T.new(o)
  end
  local ra = real_trainer("real_straight")
  ra:run_training()
  local rb = real_trainer("real_resumed")
  rb:run_training(2)
  local rb2 = real_trainer("real_resumed")
  check(rb2:maybe_resume() == "checkpoint_latest.pth" and rb2.current_epoch == 2, "real net: resumed at epoch 2")
  rb2:run_training()
  close(ra.logs.lrs[3], 3e-4, 0, "real net: lr of epoch 2")
  close(ra.logs.lrs[4], 6e-5, 1e-15, "real net: lr of epoch 3 after the drop")
  local sa, sb = ra.net:get_state(), rb2.net:get_state()
  local names = {}
  for i, b in ipairs(sa.optim) do names[i] = b.name end
  check(table.concat(names, ",") == "momentum,exp_avg,exp_avg_sq,max_exp_avg_sq", "real net: Adam (amsgrad) state "
    .. table.concat(names, ","))
  check(sa.optim_steps == 12 and sb.optim_steps == 12, "real net: 12 Adam steps")
  for i, buf in ipairs(sa.optim) do
    local other = sb.optim[i] and sb.optim[i].tensor
    local same = other ~= nil and other:numel() == buf.tensor:numel()
    for k = 1, buf.tensor:numel() do
      if not same then break end
      if buf.tensor:get(k) ~= other:get(k) then same = false end
    end
    check(same, "real net: " .. buf.name .. " identical after resume")
  end
  local same_p = true
  for k = 1, sa.params:numel() do if sa.params:get(k) ~= sb.params:get(k) then same_p = false; break end end
  check(same_p, "real net: parameters after 4 straight epochs == after 2 + resume + 2")
  for _, k in ipairs({ "train_losses", "val_losses", "mean_fg_dice", "lrs" }) do
    for i = 1, 4 do
      local u, v = ra.logs[k][i], rb2.logs[k][i]
      check(u == v or (u ~= u and v ~= v), string.format("real net %s[%d]: %s vs %s", k, i, tostring(u), tostring(v)))
    end
  end
  for _, k in ipairs({ "lr", "ma", "best", "bad" }) do
    check(ra.sched_state[k] == rb2.sched_state[k], "real net: schedule state " .. k)
  end
  check(ra.logs.train_losses[4] < ra.logs.train_losses[1], "real net (Adam, no deep supervision): the loss goes down")
else
  print("nnunet.net not built: real-network checks skipped")
end

-- ------------------------------------------------------------------ 4. lookup
do
  local names = table.concat(TR.available(), ",")
  check(names:find("nnUNetTrainer,", 1, true) ~= nil and names:find("nnUNetTrainer2018", 1, true) ~= nil,
    "available: " .. names)
  local ok, err = pcall(TR.load, "nnUNetTrainerNoSuch")
  check(not ok and type(err) == "table" and err.user_error, "unknown trainer: a user error")
  local msg = type(err) == "table" and err.message or tostring(err)
  check(msg:find("unknown trainer 'nnUNetTrainerNoSuch'", 1, true) ~= nil
    and msg:find("nnUNetTrainer, nnUNetTrainer2018", 1, true) ~= nil, "unknown trainer message: " .. msg)
  -- a user file by path; its base name is the trainer name
  local p = root .. "/MyAdam.lua"
  local f = assert(io.open(p, "w"))
  f:write('local TR = require("nnunet.trainers")\n'
    .. 'return { optimizer = { optimizer = "adam" }, settings = { initial_lr = 1e-3 },\n'
    .. '  lr_schedule = TR.plateau { patience = 5 }, stop = TR.stop_lr_below(1e-5), augmentation = "2018" }\n')
  f:close()
  local def = TR.load(p)
  check(def.name == "MyAdam" and def.deep_supervision == true and def.augmentation == "2018", "user trainer by path")
  local o = TR.trainer_options(def)
  check(o.initial_lr == 1e-3 and o.optimizer.weight_decay == nil, "user trainer options")
  -- malformed definitions name the file and the problem
  f = assert(io.open(root .. "/Bad.lua", "w"))
  f:write('return { optimizer = { optimizer = "rmsprop" } }\n')
  f:close()
  ok, err = pcall(TR.load, root .. "/Bad.lua")
  msg = type(err) == "table" and err.message or tostring(err)
  check(not ok and msg:find("Bad.lua", 1, true) and msg:find("rmsprop", 1, true), "bad optimizer named: " .. msg)
  f = assert(io.open(root .. "/Bad2.lua", "w"))
  f:write('return { loss = "focal" }\n')
  f:close()
  ok, err = pcall(TR.load, root .. "/Bad2.lua")
  msg = type(err) == "table" and err.message or tostring(err)
  check(not ok and msg:find("focal", 1, true), "unsupported loss named: " .. msg)
  -- the 2018 definition follows the plans' nnunet_training recipe (rules/sets/2018)
  local d18 = TR.load("nnUNetTrainer2018")
  local lines = {}
  d18.configure(d18, { nnunet_training = { initial_lr = 1e-3, lr_scheduler_patience = 10.0,
    train_loss_ema_alpha = 0.9, stop_when_lr_below = 1e-5 } }, function(s) lines[#lines + 1] = s end)
  check(d18.settings.initial_lr == 1e-3 and d18.lr_schedule.params.patience == 10
    and d18.lr_schedule.params.alpha == 0.9 and d18.lr_schedule.params.factor == 0.2, "configure from the plans")
  check(#lines == 1 and lines[1]:find("initial_lr", 1, true) ~= nil, "configure logs the keys it used")
end

if not os.getenv("KEEP") then os.execute("rm -rf '" .. root .. "'") end
if failures > 0 then
  io.stderr:write(failures .. " failure(s)\n")
  os.exit(1)
end
print("test_trainer2018: ok")
