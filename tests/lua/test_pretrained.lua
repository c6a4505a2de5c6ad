-- Fine-tuning from pretrained weights (`nnunet train -pretrained_weights`, the reference's
-- load_pretrained_weights, nnunetv2/run/load_pretrained_weights.py):
--   1. Net:load_pretrained from one of our checkpoints into a network with other
--      segmentation heads: every other tensor is the source's, the heads keep their own
--      values; the count of copied tensors
--   2. from the reference's PyTorch checkpoint (tests/fixtures/torch_ckpt/ref3d.pth):
--      the same tensors Net:load gives, heads untouched
--   3. mismatches name the tensor and leave the network unchanged; a missing file
--   4. the recipe: --c with -pretrained_weights is refused as the reference does; a
--      training started from pretrained weights logs the load and, after one SGD step,
--      is still next to them (a fresh start is not)
local TL = dofile("tests/lua/testlib.lua")
TL.skip_unless_modules({ "nnunet.net", "nnunet.loader", "nnunet.augment", "nnunet.preproc_case" })
local check = TL.check
local netmod = require("nnunet.net")
local fs = require("nnunet.fs")
local cjson = require("cjson")
netmod.set_threads(2)

local root = TL.temp_root("pretrained")
assert(fs.mkdir(root))
local DIR = "tests/fixtures/torch_ckpt/"
local plans = cjson.decode(TL.read_file(DIR .. "plans_3d.json"))
local arch = plans.configurations["3d_fullres"].architecture

local function build(classes, seed, a)
  return netmod.build(a or arch, { num_input_channels = 2, num_classes = classes, deep_supervision = false,
    seed = seed })
end
local function max_diff(a, b)
  local ta, tb = a:totable(), b:totable()
  local m = 0
  for i = 1, #ta do m = math.max(m, math.abs(ta[i] - tb[i])) end
  return m
end
local function is_head(name) return name:find(".seg_layers.", 1, true) ~= nil end

-- 1. ours -> a network with other heads (3 -> 5 classes)
local src = build(3, 1)
local src_path = root .. "/src.pth"
assert(src:save(src_path))
local src_params = src:parameters()
local dst = build(5, 2)
local before = dst:parameters()
local n, err = dst:load_pretrained(src_path)
check(n ~= nil, "load_pretrained from ours: %s", tostring(err))
local after, names = dst:parameters()
local n_body, same_body, same_heads = 0, true, true
for _, name in ipairs(names) do
  if is_head(name) then
    same_heads = same_heads and max_diff(after[name], before[name]) == 0
  else
    n_body = n_body + 1
    same_body = same_body and max_diff(after[name], src_params[name]) == 0
  end
end
check(n == n_body and n > 10, "%s tensors loaded, %d outside the heads", tostring(n), n_body)
check(same_body, "every tensor outside the heads is the pretrained one")
check(same_heads, "the segmentation heads keep their initialisation")
check(max_diff(before["encoder.stages.0.0.convs.0.conv.weight"], src_params["encoder.stages.0.0.convs.0.conv.weight"]) > 0,
  "(the two networks started different)")

-- 2. the reference's PyTorch checkpoint
local full = build(3, 3)
assert(full:load(DIR .. "ref3d.pth"))
local ref = full:parameters()
local tgt = build(2, 4)
local tb = tgt:parameters()
n, err = tgt:load_pretrained(DIR .. "ref3d.pth")
check(n == n_body, "load_pretrained from PyTorch: %s (%s)", tostring(n), tostring(err))
local ta = tgt:parameters()
local ok_body, ok_heads = true, true
for _, name in ipairs(names) do
  if is_head(name) then ok_heads = ok_heads and max_diff(ta[name], tb[name]) == 0
  else ok_body = ok_body and max_diff(ta[name], ref[name]) == 0 end
end
check(ok_body, "PyTorch checkpoint: the tensors Net:load reads")
check(ok_heads, "PyTorch checkpoint: heads untouched")

-- 3. mismatches
local wide = cjson.decode(cjson.encode(arch))
wide.arch_kwargs.features_per_stage[2] = wide.arch_kwargs.features_per_stage[2] * 2
local other = build(3, 5, wide)
local ob = other:flat("params")
n, err = other:load_pretrained(src_path)
check(n == nil and err:find("encoder.stages.1.0.convs.0.conv.weight", 1, true) and err:find("does not match", 1, true)
  and err:find(src_path, 1, true), "shape mismatch names the tensor and file: %s", tostring(err))
check(max_diff(other:flat("params"), ob) == 0, "a failed load leaves the network unchanged")
n, err = other:load_pretrained(DIR .. "ref3d.pth")
check(n == nil and err:find("is %[", 1) and err:find("ref3d.pth", 1, true), "PyTorch shape mismatch: %s", tostring(err))
n, err = dst:load_pretrained(root .. "/absent.pth")
check(n == nil and err:find("absent.pth", 1, true), "missing file: %s", tostring(err))
-- without skipping, the heads must match too: 5 heads vs the file's 3
n, err = dst:load_pretrained(src_path, "")
check(n == nil and err:find("seg_layers", 1, true), "no skip: the heads are checked too: %s", tostring(err))

-- 4. the recipe
local dirs = { raw = root .. "/raw", pre = root .. "/pre", res = root .. "/res" }
assert(fs.mkdir(dirs.pre)); assert(fs.mkdir(dirs.res))
local synth = dofile("tests/lua/synth_dataset.lua")
synth.write(dirs.raw .. "/Dataset993_Pretrained", { cases = 6, size = 16 })
local code, out = TL.nnunet(dirs, "plan_and_preprocess -d 993 -c 3d_fullres -np 2 --no_fsync --quiet")
if not check(code == 0, "plan_and_preprocess exit %s:\n%s", tostring(code), out) then TL.finish("pretrained", root) end
local COMMON = " -num_epochs 1 -num_iterations_per_epoch 1 -num_val_iterations 1 --no_plot -device cpu"
-- pretrained weights far from the training's own initialisation (seed 12345): another seed
local pj = cjson.decode(TL.read_file(dirs.pre .. "/Dataset993_Pretrained/nnUNetPlans.json"))
local a3 = pj.configurations["3d_fullres"].architecture
local function net3(seed) return netmod.build(a3, { num_input_channels = 1, num_classes = 2, deep_supervision = true,
  seed = seed }) end
local pre_copy = root .. "/pretrained.pth"
assert(net3(999):save(pre_copy))

code, out = TL.nnunet(dirs, "train -d 993 -c 3d_fullres -f 1 --c -pretrained_weights " .. TL.sh(pre_copy) .. COMMON)
check(code ~= 0 and out:find("cannot both continue", 1, true), "--c with -pretrained_weights refused:\n%s", out)

code, out = TL.nnunet(dirs, "train -d 993 -c 3d_fullres -f 1 -pretrained_weights " .. TL.sh(pre_copy) .. COMMON)
check(code == 0, "fine-tuning exit %s:\n%s", tostring(code), out)
local F1 = dirs.res .. "/Dataset993_Pretrained/nnUNetTrainer__nnUNetPlans__3d_fullres/fold_1"
local log = TL.training_logs(F1)
check(log:find("Loading pretrained weights from file " .. pre_copy, 1, true), "the log names the pretrained file")
-- one SGD step (lr 1e-2) from the pretrained weights stays next to them, far from the
-- initialisation a training without them starts from
local function first_conv(path)
  local net = net3(1)
  assert(net:load(path))
  return net:parameters()["encoder.stages.0.0.convs.0.conv.weight"]
end
local w_pre, w_tuned = first_conv(pre_copy), first_conv(F1 .. "/checkpoint_final.pth")
local w_init = net3(12345):parameters()["encoder.stages.0.0.convs.0.conv.weight"]
local d_pre, d_init = max_diff(w_pre, w_tuned), max_diff(w_init, w_tuned)
check(d_pre < 0.1 * d_init, "fine-tuned weights stay next to the pretrained ones (%.3g, vs %.3g from the own init)",
  d_pre, d_init)

TL.finish("test_pretrained", root)
