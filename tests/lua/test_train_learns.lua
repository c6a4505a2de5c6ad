-- Learning check (issue 7 item 7): a short training on a tiny, easy synthetic dataset
-- lowers the loss and passes a Dice threshold, with each shipped trainer definition
-- (nnUNetTrainer: SGD + poly + deep supervision; nnUNetTrainer2018: Adam + plateau, no
-- deep supervision) driven by lua/nnunet/trainer.lua on a small real U-Net.
-- Data: 16^3 volumes, one bright ball (intensity 1 + noise) on a dark background
-- (0 + noise), centre and radius drawn per sample from a fixed-seed generator; the
-- validation batches come from another seed. Threshold: the pseudo-Dice of the last
-- epoch (TP/FP/FN over all validation batches, §7.5) > 0.7 -- the first epochs score
-- 0.2-0.6 -- and the mean training loss of the last epoch below the first epoch's.
local T = require("nnunet.trainer")
local TR = require("nnunet.trainers")
local tensor = require("nnunet.tensor")
local fs = require("nnunet.fs")
local sys = require("nnunet.sys")

local ok_net, netmod = pcall(require, "nnunet.net")
if not ok_net then
  print("SKIP: nnunet.net is not built")
  os.exit(77)
end

local failures = 0
local function check(cond, msg)
  if not cond then failures = failures + 1; io.stderr:write("FAIL: " .. msg .. "\n") end
end

local N, BS = 16, 2
-- Park-Miller generator: batch b of stream `salt` depends on (salt, b) only
local function rng(seed)
  local s = seed % 2147483646 + 1
  return function()
    s = (s * 48271) % 2147483647
    return s / 2147483647
  end
end
local function ball_batch(b, salt)
  local r = rng(b * 7919 + salt * 104729 + 17)
  local x, y = {}, {}
  for n = 0, BS - 1 do
    local rad = 3 + 2.5 * r()
    local cz, cy, cx = 4 + 8 * r(), 4 + 8 * r(), 4 + 8 * r()
    for z = 0, N - 1 do for yy = 0, N - 1 do for xx = 0, N - 1 do
      local inside = (z - cz) ^ 2 + (yy - cy) ^ 2 + (xx - cx) ^ 2 <= rad * rad
      local i = ((n * N + z) * N + yy) * N + xx + 1
      x[i] = (inside and 1.0 or 0.0) + 0.6 * (r() - 0.5)
      y[i] = inside and 1 or 0
    end end end
  end
  return tensor.from_table(x, { BS, 1, N, N, N }), tensor.from_table(y, { BS, 1, N, N, N }, "i16")
end
local data = {
  train_batch = function(_, b) return ball_batch(b, 1) end,
  val_batch = function(_, b) return ball_batch(b, 2) end,
}

local arch = { network_class_name = "dynamic_network_architectures.architectures.unet.PlainConvUNet",
  arch_kwargs = { n_stages = 3, features_per_stage = { 8, 16, 16 }, conv_op = "torch.nn.modules.conv.Conv3d",
    kernel_sizes = { { 3, 3, 3 }, { 3, 3, 3 }, { 3, 3, 3 } }, strides = { { 1, 1, 1 }, { 2, 2, 2 }, { 2, 2, 2 } },
    n_conv_per_stage = { 1, 1, 1 }, n_conv_per_stage_decoder = { 1, 1 }, conv_bias = true,
    norm_op_kwargs = { eps = 1e-5, affine = true }, nonlin_kwargs = { inplace = true } } }

local root = os.tmpname()
os.remove(root)
root = root .. "_learns"
assert(fs.mkdir(root))

-- epochs x iterations per trainer. Figures (pseudo-Dice per epoch): v2 SGD (lr 1e-2,
-- momentum 0.99, deep supervision) 0.63 0.79 0.87 0.91; Adam without deep supervision
-- learns more slowly at the paper's 3e-4 (0.57 after 96 iterations), so the 2018 run
-- starts at 1e-3 to stay within seconds: 0.20 0.38 0.53 0.56 0.75 0.77.
local DICE_MIN = 0.7
local RUNS = {
  { name = "nnUNetTrainer", epochs = 4, iters = 10 },
  { name = "nnUNetTrainer2018", epochs = 6, iters = 10, initial_lr = 1e-3 },
}
netmod.set_threads(1)   -- tiny tensors; deterministic and unaffected by a busy machine
for _, run in ipairs(RUNS) do
  local t0 = sys.clock()
  local def = TR.load(run.name)
  local o = TR.trainer_options(def)
  o.output_folder = root .. "/" .. run.name
  o.data = data
  o.net = netmod.build(arch, { num_input_channels = 1, num_classes = 2, seed = 3, patch_size = { N, N, N },
    batch_size = BS, deep_supervision = def.deep_supervision, train = true })
  o.num_epochs, o.num_iterations_per_epoch, o.num_val_iterations_per_epoch = run.epochs, run.iters, 4
  o.initial_lr = run.initial_lr or o.initial_lr
  o.identity, o.plans_hash, o.n_classes = "Dataset999_Test/nnUNetPlans/learn", 1, 1
  o.console, o.progress_bar, o.fsync, o.disable_checkpointing = false, false, false, true
  local tr = T.new(o)
  tr.plot = function() end
  tr:run_training()
  local l, d = tr.logs.train_losses, tr.logs.mean_fg_dice
  local line = {}
  for e = 1, #l do line[e] = string.format("%.3f/%.3f", l[e], d[e]) end
  io.stderr:write(string.format("%s: train loss / pseudo-Dice per epoch %s (%.1f s)\n", run.name,
    table.concat(line, " "), sys.clock() - t0))
  check(l[#l] < l[1], string.format("%s: the training loss falls (%.4f -> %.4f)", run.name, l[1], l[#l]))
  check(d[#d] > DICE_MIN, string.format("%s: pseudo-Dice of the last epoch %.4f > %.2f", run.name, d[#d], DICE_MIN))
end

if not os.getenv("KEEP") then os.execute("rm -rf '" .. root .. "'") end
if failures > 0 then
  io.stderr:write(failures .. " failure(s)\n")
  os.exit(1)
end
print("test_train_learns: ok")
