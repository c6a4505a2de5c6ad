-- nnunet.net devices (issue 9): cuda_available, build's device/precision options and
-- their errors, Net:info's device fields, the sliding window's C predictor hook
-- (__nnu_slide_predict: the same logits as a Lua predictor calling net:forward), and
-- nnunet.predictor.choose_device's messages. Runs everywhere: where there is no GPU
-- (this machine) the CPU paths and the "no CUDA GPU found" fallbacks are checked;
-- with a GPU the CUDA net's logits are also compared with the CPU's (bf16: loosely).
local netmod = require("nnunet.net")
local tensor = require("nnunet.tensor")
local infer = require("nnunet.infer")
local predictor = require("nnunet.predictor")

local failures = 0
local function check(cond, msg)
  if not cond then failures = failures + 1; io.stderr:write("FAIL: " .. msg .. "\n") end
end
netmod.set_threads(2)

local arch = { network_class_name = "PlainConvUNet", arch_kwargs = {
  n_stages = 3, features_per_stage = { 8, 16, 32 }, conv_op = "torch.nn.modules.conv.Conv3d",
  kernel_sizes = { { 3, 3, 3 }, { 3, 3, 3 }, { 3, 3, 3 } }, strides = { { 1, 1, 1 }, { 2, 2, 2 }, { 2, 2, 2 } },
  n_conv_per_stage = { 2, 2, 2 }, n_conv_per_stage_decoder = { 2, 2 }, conv_bias = true,
  norm_op_kwargs = { eps = 1e-5 }, nonlin_kwargs = { inplace = true } } }
local base = { num_input_channels = 1, num_classes = 3, deep_supervision = false, seed = 7 }
local function opts(extra)
  local o = {}
  for k, v in pairs(base) do o[k] = v end
  for k, v in pairs(extra or {}) do o[k] = v end
  return o
end

-- cuda_available: a boolean and a reason / device description
local has_cuda, why = netmod.cuda_available()
check(type(has_cuda) == "boolean" and type(why) == "string" and #why > 0,
  "cuda_available returns boolean, string: " .. tostring(has_cuda) .. ", " .. tostring(why))
print("cuda_available:", has_cuda, why)

-- the CPU: default, explicit, bf16; info fields
local cpu = netmod.build(arch, opts())
local info = cpu:info()
check(info.device == "cpu" and info.precision == "fp32" and info.backend == "cpu",
  "default build: cpu fp32, got " .. tostring(info.device) .. " " .. tostring(info.precision))
check(info.layout_block == 1, "features 8/16/32: plain layout on the CPU")
local ok, err = pcall(netmod.build, arch, opts({ device = "cpu", precision = "fp16" }))
check(not ok and tostring(err):find("precision on the CPU must be"), "cpu + fp16 is refused: " .. tostring(err))
ok, err = pcall(netmod.build, arch, opts({ device = "gpu" }))
check(not ok and tostring(err):find("device must be 'cpu', 'cuda' or 'auto'"), "bad device name: " .. tostring(err))
ok, err = pcall(netmod.build, arch, opts({ device = "cpu", precision = "bf16" }))
check(ok and err:info().precision == "bf16" and err:info().backend == "cpu:bf16", "cpu bf16 table")

-- auto: CUDA when available, else the CPU (the message goes to stderr)
local auto = netmod.build(arch, opts({ device = "auto" }))
check(auto:info().device == (has_cuda and "cuda" or "cpu"), "auto picks " .. auto:info().device)
if not has_cuda then
  ok, err = pcall(netmod.build, arch, opts({ device = "cuda" }))
  check(not ok, "device = 'cuda' without a GPU must fail")
  check(tostring(err):find("CUDA") or tostring(err):find("cuda"), "the error names CUDA: " .. tostring(err))
  print("cuda build error (expected here): " .. tostring(err):gsub("\n", " | "))
end

-- choose_device (train and predict recipes)
local lines = {}
local function log(s) lines[#lines + 1] = s end
check(predictor.choose_device("cpu", netmod, log) == "cpu", "choose_device cpu")
local d = predictor.choose_device("auto", netmod, log)
check(d == (has_cuda and "cuda" or "cpu"), "choose_device auto -> " .. d)
if not has_cuda then
  check(lines[#lines]:find("^no CUDA GPU found: using the CPU"), "auto message: " .. tostring(lines[#lines]))
  ok, err = pcall(predictor.choose_device, "cuda", netmod, log)
  check(not ok and type(err) == "table" and err.user_error and err.message:find("^%-device cuda: "),
    "choose_device cuda without a GPU is a user error")
end
-- an engine without cuda_available (an old build) counts as no CUDA
check(predictor.choose_device("auto", {}, log) == "cpu", "no cuda_available -> cpu")

-- the C predictor hook: same logits as a Lua function calling net:forward
local mt = getmetatable(cpu)
check(type(mt.__nnu_slide_predict) == "userdata", "Net metatable has __nnu_slide_predict")
local D, H, W = 13, 19, 17
local xs = {}
for i = 1, D * H * W do xs[i] = math.sin(i * 0.13) + ((i % W) > 8 and 0.7 or -0.4) end
local img = tensor.from_table(xs, { 1, D, H, W })
local sopts = { patch = { 8, 12, 8 }, num_heads = 3, step_size = 0.5, mirror_axes = { 1, 3 }, batch_size = 3,
                accum = "f32" }
local viaC = infer.sliding_window(img, sopts, cpu)
local viaLua = infer.sliding_window(img, sopts, function(b) return cpu:forward(b) end)
check(table.concat(viaC:shape(), ",") == "3,13,19,17", "logits shape " .. table.concat(viaC:shape(), ","))
local a, b = viaC:contiguous():totable(), viaLua:contiguous():totable()
local function flat(t, out)
  out = out or {}
  for _, v in ipairs(t) do if type(v) == "table" then flat(v, out) else out[#out + 1] = v end end
  return out
end
a, b = flat(a), flat(b)
local maxd, maxa = 0, 0
for i = 1, #a do maxd = math.max(maxd, math.abs(a[i] - b[i])); maxa = math.max(maxa, math.abs(a[i])) end
check(#a == 3 * D * H * W and maxd == 0, "C hook vs Lua predictor: max diff " .. maxd)
check(maxa > 0, "non-zero logits")
-- a released net is an error, not a crash
local tmp = netmod.build(arch, opts())
tmp:close()
ok, err = pcall(infer.sliding_window, img, sopts, tmp)
check(not ok, "sliding window with a released net fails")

-- non-contiguous inputs (issue 9): a narrowed and a permuted view give the logits of
-- their contiguous copies on every device the machine has (the net copies strided
-- inputs into its arena; nothing reads a view's storage as if it were packed)
local big_vals = {}
for i = 1, 8 * 16 * 20 do big_vals[i] = math.cos(i * 0.071) + ((i % 20) > 9 and 0.5 or -0.3) end
local big = tensor.from_table(big_vals, { 1, 1, 8, 16, 20 })
local narrowed = big:narrow(5, 3, 16)                                  -- (1,1,8,16,16), strided
local permuted = tensor.from_table(big_vals, { 1, 1, 20, 16, 8 }):narrow(3, 1, 16):permute({ 1, 2, 5, 4, 3 })
check(not narrowed:is_contiguous() and not permuted:is_contiguous(), "the views are not contiguous")
local function same_logits(net, view, what)
  local a1 = flat(net:forward(view):contiguous():totable())
  local a2 = flat(net:forward(view:contiguous()):contiguous():totable())
  local md = 0
  for i = 1, #a1 do md = math.max(md, math.abs(a1[i] - a2[i])) end
  check(#a1 == 3 * 8 * 16 * 16 and md == 0, what .. ": view vs contiguous copy, max diff " .. md)
end
same_logits(cpu, narrowed, "cpu narrowed input")
same_logits(cpu, permuted, "cpu permuted input")
if has_cuda then
  local g = netmod.build(arch, opts({ device = "cuda", precision = "fp32" }))
  same_logits(g, narrowed, "cuda narrowed input")
  same_logits(g, permuted, "cuda permuted input")
end

-- region-based training (sigmoid heads, Dice + BCE): the CUDA loss equals the CPU's on
-- the first step from identical weights (labels 0..3 in regions {1,2,3}, {2,3}, {3})
do
  local ys = {}
  for i = 1, 2 * 8 * 16 * 16 do ys[i] = (i * 7 // 5) % 4 end
  local target = tensor.from_table(ys, { 2, 1, 8, 16, 16 }, "i16")
  local xr = tensor.from_table(big_vals, { 1, 1, 8, 16, 20 }):narrow(5, 1, 16):contiguous()
  local x2 = tensor.zeros({ 2, 1, 8, 16, 16 })
  x2:narrow(1, 1, 1):copy_from(xr); x2:narrow(1, 2, 1):copy_from(xr)
  local ropts = opts({ num_classes = 3, deep_supervision = true, regions = { { 1, 2, 3 }, { 2, 3 }, 3 } })
  local rc = netmod.build(arch, ropts)
  local lc = rc:train_step(x2, target, 1e-2)
  check(lc == lc and lc > 0 and lc < 2, "cpu region loss " .. tostring(lc))
  local bad_ok = pcall(netmod.build, arch, opts({ num_classes = 2, regions = { { 1, 2 }, 2, 3 } }))
  check(not bad_ok, "3 regions with 2 heads is refused")
  if has_cuda then
    ropts.device, ropts.precision = "cuda", "fp32"
    local lg = netmod.build(arch, ropts):train_step(x2, target, 1e-2)
    check(math.abs(lg - lc) <= 1e-5 * math.abs(lc), string.format("cuda region loss %.9g vs cpu %.9g", lg, lc))
  end
end

-- with a GPU: the CUDA net (same seed, same weights) gives the CPU's logits
if has_cuda then
  for _, prec in ipairs({ "fp32", "bf16" }) do
    local g = netmod.build(arch, opts({ device = "cuda", precision = prec }))
    check(g:info().device == "cuda" and g:info().precision == prec, "cuda " .. prec .. " info")
    local lg = flat(infer.sliding_window(img, sopts, g):contiguous():totable())
    local md = 0
    for i = 1, #a do md = math.max(md, math.abs(a[i] - lg[i])) end
    local tol = prec == "fp32" and 1e-4 or 5e-2
    check(md <= tol * maxa, string.format("cuda %s logits: max diff %.3g (max|logit| %.3g)", prec, md, maxa))
    print(string.format("cuda %s: max |logit diff| %.3g of %.3g", prec, md, maxa))
  end
end

if failures > 0 then print(failures .. " failure(s)"); os.exit(1) end
print("ok")
