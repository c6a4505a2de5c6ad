-- Dynamic loss scaling through nnunet.net and nnunet.trainer (nnu_net.h's GradScaler):
-- build's loss_scale option and its errors, Net:info's loss_scale, get_state/set_state,
-- and a real tiny training whose checkpoints carry the scaler: scaled == unscaled bit for
-- bit on the CPU (power-of-two scales are exact), and 2 epochs + resume + 1 == 3 epochs
-- including the scale and its growth tracker.
local netmod = require("nnunet.net")
local T = require("nnunet.trainer")
local lib = dofile("tests/lua/testlib.lua")
local check = lib.check
netmod.set_threads(2)

local arch, cube_data = lib.tiny_unet()
local function build(extra)
  local o = { num_input_channels = 1, num_classes = 2, seed = 7, patch_size = { 8, 8, 8 }, batch_size = 2 }
  for k, v in pairs(extra or {}) do o[k] = v end
  return netmod.build(arch, o)
end

-- options: off on the CPU by default (the default is on only for fp16 on CUDA)
check(build():info().loss_scale == nil, "no loss scaling by default on the CPU")
check(build({ loss_scale = false }):info().loss_scale == nil, "loss_scale = false")
check(build({ loss_scale = true }):info().loss_scale == 65536, "loss_scale = true: GradScaler's 2^16")
check(build({ loss_scale = "dynamic" }):info().loss_scale == 65536, "loss_scale = 'dynamic'")
check(build({ loss_scale = 1024 }):info().loss_scale == 1024, "loss_scale = 1024")
local ok, err = pcall(build, { loss_scale = "static" })
check(not ok and tostring(err):find("loss_scale must be", 1, true), "bad loss_scale string: " .. tostring(err))
ok, err = pcall(build, { loss_scale = { scale = -1 } })
check(not ok and tostring(err):find("finite and positive", 1, true), "negative scale: " .. tostring(err))

-- growth and state: interval 2, three steps -> one doubling, tracker 1
local net = build({ loss_scale = { scale = 1024, growth_interval = 2 } })
for b = 0, 2 do
  local x, y = cube_data:train_batch(b)
  local l = net:train_step(x, y, 1e-2)
  check(l == l and l > 0, "finite loss " .. tostring(l))
end
local info = net:info()
check(info.loss_scale == 2048 and info.skipped_steps == 0, "after 3 steps: scale " .. tostring(info.loss_scale))
local st = net:get_state()
check(st.loss_scale and st.loss_scale.scale == 2048 and st.loss_scale.growth_tracker == 1,
  "get_state().loss_scale = {scale = 2048, growth_tracker = 1}")
local other = build({ loss_scale = { growth_interval = 2 } })
other:set_state(st)
check(other:info().loss_scale == 2048 and other:get_state().loss_scale.growth_tracker == 1,
  "set_state restores the scale and the tracker")
local unscaled = build()
unscaled:set_state(st)   -- a state with a scaler into a net without one: ignored
check(unscaled:info().loss_scale == nil, "set_state does not turn scaling on")

-- a real training: scaled vs unscaled, straight vs resumed
local root = lib.temp_root("loss_scale")
local function trainer(folder, scale)
  return T.new {
    output_folder = root .. "/" .. folder, data = cube_data,
    net = build({ loss_scale = scale and { scale = scale, growth_interval = 2 } or false }),
    num_epochs = 3, num_iterations_per_epoch = 3, num_val_iterations_per_epoch = 2, save_every = 2,
    identity = "Dataset999_Test/nnUNetPlans/tiny", plans_hash = 7, n_classes = 1,
    console = false, progress_bar = false, fsync = false, plot_width = 300, plot_height = 540,
  }
end
local plain = trainer("plain")
plain:run_training()
local straight = trainer("straight", 65536)
straight:run_training()
local resumed = trainer("resumed", 65536)
resumed:run_training(2)
local again = trainer("resumed", 1)   -- the checkpoint's scale must win over this one
check(again:maybe_resume() == "checkpoint_latest.pth", "resumed from checkpoint_latest")
check(again.net:info().loss_scale == 65536 * 2 ^ 3, "scale after 6 steps restored: " ..
  tostring(again.net:info().loss_scale))
again:run_training()

local function same_params(a, b)
  local pa, pb = a.net:get_state().params, b.net:get_state().params
  for i = 1, pa:numel() do
    if pa:get(i) ~= pb:get(i) then return false end
  end
  return true
end
check(same_params(plain, straight), "scaled training == unscaled training, bit for bit")
check(same_params(straight, again), "2 epochs + resume + 1 == 3 epochs with loss scaling")
local s1, s2 = straight.net:get_state().loss_scale, again.net:get_state().loss_scale
check(s1.scale == 65536 * 2 ^ 4 and s1.growth_tracker == 1, "straight: 9 steps, interval 2 -> 2^20, tracker 1")
check(s2.scale == s1.scale and s2.growth_tracker == s1.growth_tracker, "resumed scaler state == straight")
for e = 1, 3 do
  check(plain.logs.train_losses[e] == straight.logs.train_losses[e], "epoch " .. e .. " train loss identical")
end

lib.finish("test_loss_scale", root)
