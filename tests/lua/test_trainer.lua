-- nnunet.trainer: the schedule (poly learning rate against hand-computed values), the
-- EMA, the reference's number formats in training_log, checkpoints, and resume
-- continuity: 2 epochs + checkpoint, then --c and 1 more epoch, equals 3 straight
-- epochs (same logs, same parameters, same optimizer state); an interruption inside an
-- epoch saves checkpoint_latest and resume reruns that epoch with its learning rate.
--
-- The network here is a deterministic stand-in (a few parameters with a momentum
-- update that depends on the batch, the learning rate and the previous state), so the
-- test checks the driver's bookkeeping in milliseconds; with nnunet.net present the
-- same continuity check runs on a tiny real U-Net (see the end of the file).
local T = require("nnunet.trainer")
local train = require("nnunet.train")
local tensor = require("nnunet.tensor")
local fs = require("nnunet.fs")

local failures = 0
local function check(cond, msg)
  if not cond then failures = failures + 1; io.stderr:write("FAIL: " .. msg .. "\n") end
end
local function close(a, b, tol, msg)
  check(math.abs(a - b) <= tol * math.max(1, math.abs(b)), string.format("%s: %.17g vs %.17g", msg, a, b))
end

-- ------------------------------------------------------------------ schedule
-- lr_e = 0.01 (1 - e/1000)^0.9; hand values: 0.5^0.9 = exp(0.9 ln 0.5) = 0.535886731268146...,
-- 0.001^0.9 = 10^-2.7 = 0.00199526231496887...
close(T.poly_lr(0.01, 0, 1000), 0.01, 1e-15, "lr epoch 0")
close(T.poly_lr(0.01, 500, 1000), 0.005358867312681466, 1e-14, "lr epoch 500")
close(T.poly_lr(0.01, 999, 1000), 1.9952623149688786e-05, 1e-14, "lr epoch 999")
close(T.poly_lr(0.01, 1, 1000), 0.01 * 0.999 ^ 0.9, 1e-15, "lr epoch 1")
close(T.poly_lr(0.01, 2, 4), 0.01 * 0.5 ^ 0.9, 1e-15, "lr epoch 2 of 4")
-- log format of the learning rate: np.round(lr, 5) printed as a Python float
check(T.repr64(T.np_round64(T.poly_lr(0.01, 0, 1000), 5)) == "0.01", "lr 0 text")
check(T.repr64(T.np_round64(T.poly_lr(0.01, 1, 1000), 5)) == "0.00999", "lr 1 text")
check(T.repr64(T.np_round64(T.poly_lr(0.01, 999, 1000), 5)) == "2e-05", "lr 999 text: "
  .. T.repr64(T.np_round64(T.poly_lr(0.01, 999, 1000), 5)))

-- ------------------------------------------------------------------ EMA (float32)
local e0 = T.ema_update(nil, T.f32(0.5))
local e1 = T.ema_update(e0, T.f32(0.7))
local e2 = T.ema_update(e1, T.f32(0.6))
close(e0, 0.5, 0, "ema 0")
close(e1, 0.52, 1e-7, "ema 1 = 0.9*0.5 + 0.1*0.7")
close(e2, 0.528, 1e-7, "ema 2 = 0.9*0.52 + 0.1*0.6")
check(e2 == T.f32(e2), "ema is a float32 value")

-- numpy float32 printing: np.round(x, 4) then str()
check(T.repr32(T.np_round32(T.f32(0.87404), 4)) == "0.874", "repr32 0.874")
check(T.repr32(T.np_round32(T.f32(-0.51236), 4)) == "-0.5124", "repr32 -0.5124")
check(T.repr32(0 / 0) == "nan", "repr32 nan")
check(T.repr64(T.np_round64(30.125, 2)) == "30.12", "half to even: 30.125 -> 30.12")
check(T.timestamp_str(1700000000.5):match("^%d%d%d%d%-%d%d%-%d%d %d%d:%d%d:%d%d%.500000$") ~= nil,
  "timestamp with microseconds")
check(T.timestamp_str(1700000000.0):match("^%d%d%d%d%-%d%d%-%d%d %d%d:%d%d:%d%d$") ~= nil,
  "timestamp without fraction when 0 us")
check(T.log_file_name(1700000000):match("^training_log_%d+_%d+_%d+_%d%d_%d%d_%d%d%.txt$") ~= nil,
  "log file name")

-- ------------------------------------------------------------------ a stand-in network
local P = 6
local function new_fake_net()
  local net = { w = {}, m = {}, steps = 0 }
  for i = 1, P do net.w[i], net.m[i] = T.f32(0.1 * i), 0 end
  function net:train_step(data, target, lr)
    local x = data:get(1, 1, 1, 1, 1)             -- batch identity enters the update
    local loss = 0
    for i = 1, P do
      local g = T.f32(self.w[i] - x * 0.01 * i)
      self.m[i] = self.steps == 0 and g or T.f32(0.99 * self.m[i] + g)
      self.w[i] = T.f32(self.w[i] - lr * (g + 0.99 * self.m[i]))
      loss = loss + g * g
    end
    self.steps = self.steps + 1
    return -loss
  end
  function net:val_step(data, target)
    -- logits (1, 2, 1, 2, 2): class 1 wins where w[i] > target-dependent threshold
    local vals = {}
    for v = 1, 4 do vals[v] = 0 end
    for v = 1, 4 do vals[4 + v] = self.w[v] - 0.3 + data:get(1, 1, 1, 1, 1) * 0.001 end
    return -self.w[1], tensor.from_table(vals, { 1, 2, 1, 2, 2 })
  end
  function net:get_state()
    return { params = tensor.from_table(self.w, { P }), optim = { { name = "momentum",
      tensor = tensor.from_table(self.m, { P }) } }, optim_steps = self.steps }
  end
  function net:set_state(st)
    for i = 1, P do
      self.w[i] = st.params:get(i)
      self.m[i] = st.optim[1].tensor:get(i)
    end
    self.steps = st.optim_steps
  end
  return net
end

-- data: batch b is a deterministic function of b only (as the real loader's streams)
local function new_fake_data(interrupt_at)
  local d = {}
  function d:train_batch(b)
    if interrupt_at and b == interrupt_at then error("interrupted!", 0) end
    local x = ((b * 7919) % 101) / 101
    return tensor.from_table({ x }, { 1, 1, 1, 1, 1 }), tensor.from_table({ 0 }, { 1, 1, 1, 1, 1 })
  end
  function d:val_batch(b)
    local x = ((b * 104729) % 97) / 97
    return tensor.from_table({ x }, { 1, 1, 1, 1, 1 }), tensor.from_table({ 1, 0, 1, 1 }, { 1, 1, 1, 2, 2 })
  end
  return d
end

local root = os.tmpname()
os.remove(root)
root = root .. "_trainer"
assert(fs.mkdir(root))

local function new_trainer(folder, interrupt_at)
  return T.new {
    output_folder = root .. "/" .. folder, net = new_fake_net(), data = new_fake_data(interrupt_at),
    num_epochs = 3, num_iterations_per_epoch = 4, num_val_iterations_per_epoch = 2, save_every = 2,
    identity = "Dataset999_Test/nnUNetPlans/3d_fullres", plans_hash = 42, n_classes = 1,
    console = false, progress_bar = false, fsync = false, plot_width = 300, plot_height = 540,
  }
end

local function read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

-- A: three straight epochs
local a = new_trainer("straight")
a:run_training()
check(a.current_epoch == 3, "straight run ends at epoch 3")
check(fs.isfile(a.output_folder .. "/checkpoint_final.pth"), "checkpoint_final written")
check(fs.isfile(a.output_folder .. "/checkpoint_best.pth"), "checkpoint_best written")
check(not fs.isfile(a.output_folder .. "/checkpoint_latest.pth"), "checkpoint_latest removed at the end")
if train.plot_available() then check(fs.isfile(a.output_folder .. "/progress.png"), "progress.png written") end
close(a.logs.lrs[1], 0.01, 1e-15, "logged lr 0")
close(a.logs.lrs[2], 0.01 * (2 / 3) ^ 0.9, 1e-15, "logged lr 1")
close(a.logs.lrs[3], 0.01 * (1 / 3) ^ 0.9, 1e-15, "logged lr 2")
for e = 1, 3 do
  local prev = a.logs.ema_fg_dice[e - 1]
  check(a.logs.ema_fg_dice[e] == T.ema_update(prev, a.logs.mean_fg_dice[e]), "ema of epoch " .. e)
end

-- the log file: the reference's lines
local logtext = read(a.log_file) or ""
local ts = "%d%d%d%d%-%d%d%-%d%d %d%d:%d%d:%d%d[%.%d]*: "
check(logtext:find("\n" .. ts .. "Epoch 0 \n") ~= nil or logtext:find("^" .. ts .. " \n" .. ts .. "Epoch 0 \n") ~= nil,
  "log has 'Epoch 0'")
check(logtext:find(ts .. "Current learning rate: 0%.01 \n") ~= nil, "log has the lr line")
check(logtext:find(ts .. "train_loss %-?[%d%.e%-]+ \n") ~= nil, "log has train_loss")
check(logtext:find(ts .. "val_loss %-?[%d%.e%-]+ \n") ~= nil, "log has val_loss")
check(logtext:find(ts .. "Pseudo dice %[np%.float32%([%d%.nae%-]+%)%] \n") ~= nil, "log has Pseudo dice")
check(logtext:find(ts .. "Epoch time: [%d%.e%-]+ s \n") ~= nil, "log has Epoch time")
check(logtext:find(ts .. "Yayy! New best EMA pseudo Dice: [%d%.]+ \n") ~= nil, "log has the best-EMA line")
check(logtext:find(ts .. "Training done%. \n") ~= nil, "log has Training done.")

-- B: two epochs (checkpoint_latest at the end of epoch 1 since save_every = 2), then --c
local b = new_trainer("resumed")
b:run_training(2)
check(fs.isfile(b.output_folder .. "/checkpoint_latest.pth"), "checkpoint_latest after 2 epochs")
local b2 = new_trainer("resumed")
check(b2:maybe_resume() == "checkpoint_latest.pth", "resume picks checkpoint_latest")
check(b2.current_epoch == 2, "resumed at epoch 2")
b2:run_training()

local function same_list(x, y, what)
  check(#x == #y, what .. ": lengths " .. #x .. " vs " .. #y)
  for i = 1, math.max(#x, #y) do
    local u, v = x[i], y[i]
    if type(u) == "table" then same_list(u, v or {}, what .. "[" .. i .. "]")
    else check(u == v or (u ~= u and v ~= v), string.format("%s[%d]: %s vs %s", what, i, tostring(u), tostring(v))) end
  end
end
local function same_state(x, y, what)
  for k in pairs({ train_losses = 1, val_losses = 1, mean_fg_dice = 1, ema_fg_dice = 1, lrs = 1,
                   dice_per_class_or_region = 1 }) do
    same_list(x.logs[k], y.logs[k], what .. " " .. k)
  end
  same_list(x.net.w, y.net.w, what .. " params")
  same_list(x.net.m, y.net.m, what .. " momentum")
  check(x.net.steps == y.net.steps, what .. " optimizer steps")
  check(x.best_ema == y.best_ema, what .. " best EMA")
end
same_state(a, b2, "resume")
-- the final checkpoints agree too (timestamps aside)
local ca, cb = train.checkpoint_load(a.output_folder .. "/checkpoint_final.pth"),
  train.checkpoint_load(b2.output_folder .. "/checkpoint_final.pth")
check(ca and cb and ca.epoch == 3 and cb.epoch == 3, "final checkpoints at epoch 3")
if ca and cb then
  for i = 1, P do check(ca.params:get(i) == cb.params:get(i), "final params " .. i) end
  same_list(ca.logs.train_losses, cb.logs.train_losses, "final ckpt train_losses")
end

-- C: interruption in epoch 1 (batch 6 = epoch 1, iteration 2): checkpoint_latest holds
-- epoch 1 with one epoch of logs; --c reruns epoch 1 with lr_1 and finishes
local c = new_trainer("interrupted", 6)
local ok, err = pcall(c.run_training, c)
check(not ok and tostring(err):find("interrupted") ~= nil, "interruption propagates: " .. tostring(err))
local ck = train.checkpoint_load(c.output_folder .. "/checkpoint_latest.pth")
check(ck and ck.epoch == 1 and #ck.logs.lrs == 1 and #ck.logs.train_losses == 1,
  "interrupted checkpoint: epoch 1, one epoch of logs")
local c2 = new_trainer("interrupted")
c2:maybe_resume()
check(c2.current_epoch == 1, "resume after the interruption starts at epoch 1")
c2:run_training()
check(#c2.logs.lrs == 3, "3 epochs logged after resuming")
close(c2.logs.lrs[2], 0.01 * (2 / 3) ^ 0.9, 1e-15, "rerun epoch 1 uses lr_1")

-- a checkpoint of another configuration is refused
local d = new_trainer("interrupted")
d.plans_hash = 43
local dok, derr = pcall(d.maybe_resume, d)
check(not dok and tostring(derr):find("plans hash") ~= nil, "foreign checkpoint refused: " .. tostring(derr))

-- ------------------------------------------------------------------ a tiny real U-Net
-- 2 stages (4, 8 features), patch 8^3, batch 2, labels {0, 1}: data and target of batch
-- b are a cube whose corner depends on b. 3 epochs straight vs 2 + --c + 1: the
-- parameters, momentum and logs must be identical bit for bit.
local has_net, netmod = pcall(require, "nnunet.net")
if has_net then
  local arch, cube_data = dofile("tests/lua/testlib.lua").tiny_unet()
  local function real_trainer(folder)
    return T.new {
      output_folder = root .. "/" .. folder, data = cube_data,
      net = netmod.build(arch, { num_input_channels = 1, num_classes = 2, seed = 7, patch_size = { 8, 8, 8 },
        batch_size = 2 }),
      num_epochs = 3, num_iterations_per_epoch = 3, num_val_iterations_per_epoch = 2, save_every = 2,
      identity = "Dataset999_Test/nnUNetPlans/tiny", plans_hash = 7, n_classes = 1,
      console = false, progress_bar = false, fsync = false, plot_width = 300, plot_height = 540,
    }
  end
  local ra = real_trainer("real_straight")
  ra:run_training()
  local rb = real_trainer("real_resumed")
  rb:run_training(2)
  local rb2 = real_trainer("real_resumed")
  check(rb2:maybe_resume() == "checkpoint_latest.pth" and rb2.current_epoch == 2, "real net: resumed at epoch 2")
  rb2:run_training()
  local sa, sb = ra.net:get_state(), rb2.net:get_state()
  local np = sa.params:numel()
  local same_p, same_m = true, true
  for i = 1, np do
    if sa.params:get(i) ~= sb.params:get(i) then same_p = false end
    if sa.optim[1].tensor:get(i) ~= sb.optim[1].tensor:get(i) then same_m = false end
  end
  check(same_p, "real net: parameters after 3 straight epochs == after 2 + resume + 1")
  check(same_m, "real net: momentum identical after resume")
  check(sa.optim_steps == 9 and sb.optim_steps == 9, "real net: 9 optimizer steps")
  for _, k in ipairs({ "train_losses", "val_losses", "mean_fg_dice", "ema_fg_dice", "lrs" }) do
    same_list(ra.logs[k], rb2.logs[k], "real net " .. k)
  end
  check(ra.logs.train_losses[3] < ra.logs.train_losses[1], "real net: the loss goes down")
else
  print("nnunet.net not built: real-network resume check skipped")
end

if not os.getenv("KEEP") then os.execute("rm -rf '" .. root .. "'") end
if failures > 0 then
  io.stderr:write(failures .. " failure(s)\n")
  os.exit(1)
end
print("test_trainer: ok")
