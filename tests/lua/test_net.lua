-- nnunet.net binding: build from the Hippocampus plans' architecture table (3d_fullres and
-- 2d, read with cjson from ../shared), forward shapes in training and inference mode,
-- a few train steps on one fixed batch (the loss must fall), backward with explicit
-- output gradients, parameters/flat/state round trips and safetensors save/load.
-- The numerics are tested against PyTorch in tests/test_net.c; this checks the binding.
local netmod = require("nnunet.net")
local tensor = require("nnunet.tensor")
local cjson = require("cjson")

local failures = 0
local function check(cond, msg)
  if not cond then failures = failures + 1; io.stderr:write("FAIL: " .. msg .. "\n") end
end

local f = io.open("../shared/reference/msd-plans/Dataset004_Hippocampus/plans.json")
if not f then
  print("SKIP: ../shared/reference/msd-plans not found")
  os.exit(77)
end
local plans = cjson.decode(f:read("a"))
f:close()
netmod.set_threads(2)

-- 3d_fullres architecture, small patch to keep the test fast
local arch = plans.configurations["3d_fullres"].architecture
local net = netmod.build(arch, { num_input_channels = 1, num_classes = 3, seed = 1,
                                 batch_dice = plans.configurations["3d_fullres"].batch_dice })
check(tostring(net):find("PlainConvUNet 3d, 4 stages") ~= nil, "tostring: " .. tostring(net))
local info = net:info()
check(info.layout_block == 16 and info.dim == 3, "blocked layout for 32..256 features")
local params, names = net:parameters()
check(#names == info.num_tensors and names[1] == "encoder.stages.0.0.convs.0.conv.weight",
  "parameter names: " .. tostring(names[1]))
local w = params["decoder.transpconvs.0.weight"]
check(w and table.concat(w:shape(), ",") == "256,128,2,2,2", "transpconv weight shape")

local N, D, H, W = 1, 24, 24, 24
local xs, ts = {}, {}
for i = 1, N * D * H * W do
  local z = (i - 1) % W
  xs[i] = math.sin(i * 0.37) + (z > 11 and 1 or -1)
  ts[i] = z > 15 and 2 or (z > 7 and 1 or 0)
end
local x = tensor.from_table(xs, { N, 1, D, H, W })
local t = tensor.from_table(ts, { N, 1, D, H, W }, "i16")

local outs = net:forward(x, true)
check(#outs == 3, "training mode: 3 deep-supervision outputs, got " .. #outs)
check(table.concat(outs[1]:shape(), ",") == "1,3,24,24,24", "out1 shape")
check(table.concat(outs[2]:shape(), ",") == "1,3,12,12,12", "out2 shape")
check(table.concat(outs[3]:shape(), ",") == "1,3,6,6,6", "out3 shape")
local inf = net:forward(x)
check(table.concat(inf:shape(), ",") == "1,3,24,24,24", "inference: one full-res output")

-- explicit output gradients: d(sum of out1)/d(params) is non-zero, the lowest head's zero
net:forward(x, true)
net:zero_grad()
local g = {}
for i, o in ipairs(outs) do g[i] = tensor.full(o:shape(), i == 1 and 1 or 0) end
net:backward(g)
local grads = net:gradients()
check(grads["decoder.seg_layers.2.bias"]:sum() ~= 0, "top head bias gradient")
check(grads["decoder.seg_layers.0.bias"]:sum() == 0, "lowest head gets no gradient")
-- d(sum out1)/d(top head bias) = number of voxels per class
check(math.abs(grads["decoder.seg_layers.2.bias"]:get(1) - N * D * H * W) < 1e-3,
  "bias gradient counts voxels: " .. grads["decoder.seg_layers.2.bias"]:get(1))

-- the training checks run on the same plan with fewer features (16..32, still the
-- blocked layout), so they take a fraction of a second
local function copy(t)
  if type(t) ~= "table" then return t end
  local r = {}
  for k, v in pairs(t) do r[k] = copy(v) end
  return r
end
local small = copy(arch)
small.arch_kwargs.features_per_stage = { 16, 16, 32, 32 }
net = netmod.build(small, { num_input_channels = 1, num_classes = 3, seed = 1 })
info = net:info()
arch = small

-- a few SGD steps on one batch: the loss falls
local losses = {}
for i = 1, 4 do losses[i] = net:train_step(x, t, { lr = 1e-2 }) end
check(losses[4] < losses[1], string.format("loss falls: %.4f -> %.4f", losses[1], losses[4]))
check(net:sgd_steps() == 4, "4 SGD steps")
-- the input may be collected between forward and backward (the net keeps a copy)
net:zero_grad()
net:forward(tensor.from_table(xs, { N, 1, D, H, W }), true)
collectgarbage(); collectgarbage()
net:loss(t)
net:backward()
check(net:gradients()["encoder.stages.0.0.convs.0.conv.weight"]:sum() ~= 0, "first-layer gradient")
local vl, logits = net:val_step(x, t)
check(type(vl) == "number" and table.concat(logits:shape(), ",") == "1,3,24,24,24", "val_step")

-- state round trip and save/load
local st = net:get_state()
check(st.optim_steps == 4 and st.params:numel() == info.num_params, "get_state")
local path = os.tmpname()
check(net:save(path, { epoch = 12, plans_identity = 'nnUNetPlans "3d_fullres"' }) == true, "save")
local meta = cjson.decode(netmod.metadata(path))
check(meta.epoch == "12" and meta.plans_identity == 'nnUNetPlans "3d_fullres"' and
      meta.sgd_steps == "4", "metadata round trip: " .. netmod.metadata(path))
local net2 = netmod.build(arch, { num_input_channels = 1, num_classes = 3, seed = 2 })
check(net2:flat("params"):sum() ~= st.params:sum(), "other seed, other weights")
check(net2:load(path) == true, "load")
check(net2:flat("params"):sum() == st.params:sum(), "loaded weights")
check(net2:sgd_steps() == 4, "loaded step count")
local net3 = netmod.build(arch, { num_input_channels = 2, num_classes = 3 })
local ok, msg = net3:load(path)
check(ok == nil and msg:find("encoder.stages.0.0.convs.0.conv.weight", 1, true),
  "mismatch names the tensor: " .. tostring(msg))
os.remove(path)
net2:set_state(st)
check(net2:flat("momentum"):sum() == st.optim[1].tensor:sum(), "set_state momentum")
local bad = pcall(net.forward, net, tensor.zeros({ 1, 1, 24, 24, 20 }), true)
check(not bad, "patch not divisible by the total stride raises")

-- Adam (2018 trainer) on a copy: its state shows up in get_state and survives save/load
local na = netmod.build(arch, { num_input_channels = 1, num_classes = 3, seed = 1 })
local la = {}
for i = 1, 3 do la[i] = na:train_step(x, t, { optimizer = i == 1 and "Adam" or "adam", lr = 1e-3 }) end
check(la[3] < la[1], string.format("Adam: loss falls %.4f -> %.4f", la[1], la[3]))
local sa = na:get_state()
check(#sa.optim == 4 and sa.optim[4].name == "max_exp_avg_sq", "Adam state in get_state")
local pa = os.tmpname()
check(na:save(pa) == true, "save with Adam state")
local nb = netmod.build(arch, { num_input_channels = 1, num_classes = 3, seed = 5 })
check(nb:load(pa) == true, "load with Adam state")
check(nb:flat("exp_avg_sq"):sum() == na:flat("exp_avg_sq"):sum(), "Adam state round trip")
os.remove(pa)
check(not pcall(na.train_step, na, x, t, { optimizer = "lbfgs" }), "unknown optimizer raises")

-- bf16 convolutions train too (where the CPU has avx512_bf16)
local ok16, n16 = pcall(netmod.build, small, { num_input_channels = 1, num_classes = 3, seed = 1,
                                               precision = "bf16" })
check(ok16, "build with precision bf16: " .. tostring(n16))
local ok_step, l16 = pcall(n16.train_step, n16, x, t, { lr = 1e-2 })
if ok_step then
  local l16b = n16:train_step(x, t, { lr = 1e-2 })
  check(math.abs(l16 - losses[1]) < 0.05 * math.abs(losses[1]) + 1e-3,
    string.format("bf16 first loss %.4f close to fp32 %.4f", l16, losses[1]))
  check(l16b < l16, "bf16: loss falls")
else
  print("note: bf16 convolutions unavailable here: " .. tostring(l16))
end
check(not pcall(netmod.build, small, { num_input_channels = 1, num_classes = 3, precision = "fp8" }),
  "unknown precision raises")

-- 2d configuration (kernel and stride pairs, (N, C, H, W) tensors)
local a2 = plans.configurations["2d"].architecture
local n2 = netmod.build(a2, { num_input_channels = 1, num_classes = 3 })
local h2, w2 = 1, 1
for _, s in ipairs(a2.arch_kwargs.strides) do h2 = h2 * s[1]; w2 = w2 * s[2] end
local o2 = n2:forward(tensor.zeros({ 1, 1, h2, w2 }), true)
check(#o2 == a2.arch_kwargs.n_stages - 1 and #o2[1]:shape() == 4, "2d outputs")
check(o2[1]:shape()[3] == h2 and o2[1]:shape()[4] == w2, "2d full-res shape")

if failures > 0 then
  io.stderr:write(failures .. " failure(s)\n")
  os.exit(1)
end
print("test_net: ok")
