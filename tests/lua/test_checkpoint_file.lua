-- The trainer's checkpoint file from the outside: a tiny real U-Net trained for one
-- epoch by nnunet.trainer writes checkpoint_final.pth, which is parsed here by hand per
-- the safetensors specification (u64 little-endian header length, JSON header whose
-- entries {dtype, shape, data_offsets} tile the data, __metadata__ of strings) and
-- checked against the network: the PyTorch names and shapes of Net:layout(), the
-- optimizer buffers "optimizer.momentum.<name>", the parameter values, the metadata
-- (format, epoch, trainer, logs and trainer state as JSON) and the whole-file CRC-32.
-- The engine's Net:load reads the same file; a network of another architecture is
-- refused with the first mismatching tensor named (train.checkpoint_load with a layout,
-- and the trainer's --c).
local train = require("nnunet.train")
local tensor = require("nnunet.tensor")
local fs = require("nnunet.fs")
local T = require("nnunet.trainer")
local ok_net, netmod = pcall(require, "nnunet.net")
if not ok_net then
  print("SKIP: nnunet.net is not built")
  os.exit(77)
end
local cjson = require("cjson")

local failures = 0
local function check(cond, msg)
  if not cond then failures = failures + 1; io.stderr:write("FAIL: " .. msg .. "\n") end
  return cond
end

local function arch(features)
  return { network_class_name = "dynamic_network_architectures.architectures.unet.PlainConvUNet",
    arch_kwargs = { n_stages = 2, features_per_stage = features, conv_op = "torch.nn.modules.conv.Conv3d",
      kernel_sizes = { { 3, 3, 3 }, { 3, 3, 3 } }, strides = { { 1, 1, 1 }, { 2, 2, 2 } },
      n_conv_per_stage = { 1, 1 }, n_conv_per_stage_decoder = { 1 }, conv_bias = true,
      norm_op_kwargs = { eps = 1e-5, affine = true }, nonlin_kwargs = { inplace = true } } }
end
local function build(features, classes)
  return netmod.build(arch(features), { num_input_channels = 1, num_classes = classes or 2, seed = 7,
    patch_size = { 8, 8, 8 }, batch_size = 2 })
end
local function batch(b)
  local x, y = {}, {}
  for i = 1, 2 * 512 do
    local inside = ((i - 1) % 8) < 4 and ((i - 1) // 64) % 8 >= b % 3
    x[i] = inside and 1.0 or -0.5
    y[i] = inside and 1 or 0
  end
  return tensor.from_table(x, { 2, 1, 8, 8, 8 }), tensor.from_table(y, { 2, 1, 8, 8, 8 }, "i16")
end
local data = { train_batch = function(_, b) return batch(b) end, val_batch = function(_, b) return batch(b + 1) end }

local root = os.tmpname()
os.remove(root)
root = root .. "_ckfile"
local function trainer(net)
  return T.new { output_folder = root, net = net, data = data, num_epochs = 1, num_iterations_per_epoch = 2,
    num_val_iterations_per_epoch = 1, identity = "Dataset999_Test/nnUNetPlans/tiny", plans_hash = 7, n_classes = 1,
    console = false, progress_bar = false, fsync = false, plot_width = 300, plot_height = 540 }
end
local net = build({ 4, 8 })
trainer(net):run_training()
local path = root .. "/checkpoint_final.pth"
local f = assert(io.open(path, "rb"))
local s = f:read("a")
f:close()

-- the container, per the specification
local N = string.unpack("<I8", s)
check(N > 0 and 8 + N <= #s and (8 + N) % 8 == 0, "header length " .. N .. " (8 + N a multiple of 8)")
local text = s:sub(9, 8 + N)
check(text:sub(1, 1) == "{", "the header starts with '{'")
local header = cjson.decode(text)
local meta = header.__metadata__
check(type(meta) == "table", "__metadata__")
for k, v in pairs(meta) do check(type(v) == "string", "metadata " .. k .. " is a string") end
local entries = {}
for name, e in pairs(header) do
  if name ~= "__metadata__" then
    entries[#entries + 1] = { name = name, e = e }
    check(e.dtype == "F32", name .. ": dtype " .. tostring(e.dtype))
  end
end
table.sort(entries, function(a, b) return a.e.data_offsets[1] < b.e.data_offsets[1] end)
local pos = 0
for _, x in ipairs(entries) do
  local numel = 1
  for _, d in ipairs(x.e.shape) do numel = numel * d end
  check(x.e.data_offsets[1] == pos and x.e.data_offsets[2] == pos + 4 * numel, x.name .. ": data_offsets tile the data")
  pos = x.e.data_offsets[2]
end
check(pos == #s - 8 - N, "the tensors cover the data exactly")

-- the network's tensors under their PyTorch names, then the momentum with the same layout
local layout = net:layout()
check(#entries == 2 * #layout, #entries .. " tensors for " .. #layout .. " parameters + momentum")
for i, t in ipairs(layout) do
  local e, m = entries[i], entries[#layout + i]
  check(e and e.name == t.name, "tensor " .. i .. ": " .. tostring(e and e.name) .. " vs " .. t.name)
  check(m and m.name == "optimizer.momentum." .. t.name, "momentum tensor " .. i .. ": " .. tostring(m and m.name))
  local got = {}
  for d, v in ipairs(e and e.e.shape or {}) do got[d] = math.tointeger(v) end   -- cjson: floats
  check(table.concat(got, ",") == table.concat(t.shape, ","), t.name .. ": shape " .. table.concat(got, ","))
end
check(layout[1].name == "encoder.stages.0.0.convs.0.conv.weight" and table.concat(layout[1].shape, ",") == "4,1,3,3,3",
  "first tensor: the first convolution's weight (4, 1, 3, 3, 3)")
local flat = net:flat("params")
local same = true
for i = 1, flat:numel() do
  if string.unpack("<f", s, 8 + N + 4 * (i - 1) + 1) ~= flat:get(i) then same = false; break end
end
check(same, "the parameter values are the network's, in layout order")

-- metadata
check(meta.format == "nnunet-checkpoint" and meta.format_version == "1", "format")
check(meta.epoch == "1" and meta.trainer == "nnUNetTrainer" and meta.identity == "Dataset999_Test/nnUNetPlans/tiny"
  and meta.plans_hash == "7" and meta.sgd_steps == "2" and meta.seed == "12345" and meta.train_batches == "2",
  "scalars: epoch " .. tostring(meta.epoch) .. ", steps " .. tostring(meta.sgd_steps))
local logs = cjson.decode(meta.logs)
check(#logs.train_losses == 1 and #logs.dice_per_class_or_region == 1 and #logs.lrs == 1 and logs.lrs[1] == 0.01,
  "logs JSON")
check(type(cjson.decode(meta.trainer_state)) == "table", "trainer_state JSON")
local at = select(2, text:find('"nnunet_crc32":"', 1, true))
check(at ~= nil, "nnunet_crc32 in the header")
if at then
  local digits = text:sub(at + 1, at + 8)
  local z = s:sub(1, 8 + at) .. "00000000" .. s:sub(8 + at + 9)
  check(string.format("%08x", train.crc32(z)) == digits, "whole-file CRC-32 " .. digits)
end

-- the engine's Net:load reads the training checkpoint (weights, momentum, step count)
local net2 = build({ 4, 8 })
check(net2:load(path) == true, "Net:load of a training checkpoint")
local f2 = net2:flat("params")
same = f2:numel() == flat:numel()
for i = 1, flat:numel() do if f2:get(i) ~= flat:get(i) then same = false; break end end
check(same and net2:sgd_steps() == 2, "Net:load: same parameters and 2 optimizer steps")

-- another architecture: refused, naming the first mismatching tensor
local other = build({ 6, 8 })
local ck, err = train.checkpoint_load(path, other:layout())
check(ck == nil and tostring(err):find("encoder.stages.0.0.convs.0.conv.weight' is [4,1,3,3,3], the network's is "
  .. "[6,1,3,3,3]", 1, true) ~= nil and err:find(path, 1, true) ~= nil, "architecture mismatch: " .. tostring(err))
local heads = build({ 4, 8 }, 3)
ck, err = train.checkpoint_load(path, heads:layout())
check(ck == nil and tostring(err):find("'decoder.seg_layers.0.weight' is [2,4,1,1,1], the network's is [3,4,1,1,1]",
  1, true) ~= nil, "another class count: " .. tostring(err))
check(train.checkpoint_load(path, net2:layout()) ~= nil, "the same architecture loads")
local tr = trainer(other)
local rok, rerr = pcall(tr.maybe_resume, tr)
check(not rok and tostring(rerr):find("conv.weight' is [4,1,3,3,3]", 1, true) ~= nil,
  "--c with another architecture: " .. tostring(rerr))

for _, n in ipairs({ net, net2, other, heads }) do n:close() end
if not os.getenv("KEEP") then os.execute("rm -rf '" .. root .. "'") end
if failures > 0 then
  io.stderr:write(failures .. " failure(s)\n")
  os.exit(1)
end
print("test_checkpoint_file: ok")
