-- `nnunet train -tr nnUNetTrainer2018` end to end on a tiny synthetic dataset (6 spheres
-- of 16^3, tests/lua/synth_dataset.lua): 2 epochs of 2 iterations write
-- nnUNetTrainer2018__nnUNetPlans__3d_fullres/fold_0 (log, debug.json, checkpoints with the
-- Adam moments and the plateau state, validation/summary.json); --c with -num_epochs 3
-- continues from checkpoint_final with the saved schedule state; a user trainer in
-- $NNUNET_TRAINERS runs into its own folder; an unknown -tr name fails with the list of
-- available trainers and creates nothing.
-- (Schedule arithmetic and bit-exact resume: tests/lua/test_trainer2018.lua.)
-- Skips (77) when a pipeline module (net, loader, export) is not built.
local fs = require("nnunet.fs")
local json = require("nnunet.json")
local sys = require("nnunet.sys")
local train = require("nnunet.train")

for _, m in ipairs({ "nnunet.net", "nnunet.loader", "nnunet.augment", "nnunet.export", "nnunet.preproc_case" }) do
  if not pcall(require, m) then
    print("SKIP: module " .. m .. " is not built")
    os.exit(77)
  end
end

local failures = 0
local function check(cond, fmt, ...)
  if not cond then failures = failures + 1; io.stderr:write("FAIL: " .. string.format(fmt, ...) .. "\n") end
  return cond
end
local function sh(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end
local function read(p)
  local f = io.open(p, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local tmp = os.tmpname()
os.remove(tmp)
local ROOT = tmp .. "_train2018"
local raw, pre, res, user = ROOT .. "/raw", ROOT .. "/pre", ROOT .. "/res", ROOT .. "/mytrainers"
assert(fs.mkdir(pre)); assert(fs.mkdir(res)); assert(fs.mkdir(user))
local synth = dofile("tests/lua/synth_dataset.lua")
synth.write(raw .. "/Dataset993_Train2018", { cases = 6, size = 16 })

local function nnunet(args, env)
  local cmd = string.format("env nnUNet_raw=%s nnUNet_preprocessed=%s nnUNet_results=%s nnUNet_n_proc_DA=1 "
    .. "NNUNET_TRAINERS=%s %s %s 2>&1", sh(raw), sh(pre), sh(res), sh(env or ""), sh(sys.exe()), args)
  local p = io.popen(cmd)
  local out = p:read("a")
  local _, _, code = p:close()
  return code, out
end

local t0 = sys.clock()
local code, out = nnunet("plan_and_preprocess -d 993 -c 3d_fullres -np 2 --no_fsync --quiet")
if not check(code == 0, "plan_and_preprocess exit %s:\n%s", tostring(code), out) then os.exit(1) end

local SHORT = "-num_iterations_per_epoch 2 -num_val_iterations 1 --no_plot"
code, out = nnunet("train -d 993 -c 3d_fullres -f 0 -tr nnUNetTrainer2018 -num_epochs 2 " .. SHORT)
check(code == 0, "train -tr nnUNetTrainer2018 exit %s:\n%s", tostring(code), out)

local B = res .. "/Dataset993_Train2018/nnUNetTrainer2018__nnUNetPlans__3d_fullres"
local F = B .. "/fold_0"
for _, f in ipairs({ B .. "/plans.json", B .. "/dataset.json", F .. "/debug.json", F .. "/checkpoint_final.pth",
                     F .. "/checkpoint_best.pth", F .. "/validation/summary.json" }) do
  check(fs.isfile(f), "%s exists", f)
end
check(not fs.isdir(res .. "/Dataset993_Train2018/nnUNetTrainer__nnUNetPlans__3d_fullres"), "no v2 folder")
local function logtext()
  local all = {}
  for _, n in ipairs(fs.listdir(F) or {}) do
    if n:match("^training_log_.*%.txt$") then all[#all + 1] = read(F .. "/" .. n) end
  end
  return table.concat(all)
end
local log = logtext()
for _, pat in ipairs({ "Trainer nnUNetTrainer2018 %(", "Epoch 1 \n", "Current learning rate: 0%.0003 \n",
                       "train loss moving average ", "lr is now 0%.0003", "Training done%. \n",
                       "Mean Validation Dice:  " }) do
  check(log:find(pat) ~= nil, "log lacks %q", pat)
end
local dbg = json.decode_file(F .. "/debug.json") or {}
check(dbg.trainer_name == "nnUNetTrainer2018" and dbg.optimizer == "adam" and dbg.lr_schedule == "plateau"
  and dbg.initial_lr == "0.0003", "debug.json: %s %s %s %s", tostring(dbg.trainer_name), tostring(dbg.optimizer),
  tostring(dbg.lr_schedule), tostring(dbg.initial_lr))
local ck = train.checkpoint_load(F .. "/checkpoint_final.pth")
local st2
if check(ck ~= nil, "checkpoint_final loads") then
  check(ck.trainer == "nnUNetTrainer2018" and ck.epoch == 2 and ck.optim_steps == 4, "checkpoint: trainer %s, "
    .. "epoch %d, %d steps", ck.trainer, ck.epoch, ck.optim_steps)
  local names = {}
  for i, o in ipairs(ck.optim) do names[i] = o.name end
  check(table.concat(names, ",") == "momentum,exp_avg,exp_avg_sq,max_exp_avg_sq", "Adam buffers: %s",
    table.concat(names, ","))
  local meta = json.decode(ck.meta) or {}
  st2 = meta.schedule_state
  if check(type(st2) == "table", "schedule_state in the checkpoint") then
    check(st2.lr == 3e-4 and (st2.bad == 0 or st2.bad == 1), "state after 2 epochs: lr %s bad %s",
      tostring(st2.lr), tostring(st2.bad))
    -- MA_1 = 0.93 * loss_0 + 0.07 * loss_1 (the logged float32 means)
    local l = ck.logs.train_losses
    local ma = 0.93 * l[1] + (1 - 0.93) * l[2]
    check(st2.ma == ma, "moving average %.17g vs %.17g", st2.ma or 0 / 0, ma)
  end
end

-- --c with a longer schedule: continues from checkpoint_final (epoch 2) with the saved state
code, out = nnunet("train -d 993 -c 3d_fullres -f 0 -tr nnUNetTrainer2018 -num_epochs 3 --c " .. SHORT)
check(code == 0, "--c exit %s:\n%s", tostring(code), out)
local ck3 = train.checkpoint_load(F .. "/checkpoint_final.pth")
if check(ck3 and ck and ck3.epoch == 3 and ck3.optim_steps == 6, "resumed to epoch 3") then
  check(ck3.logs.train_losses[1] == ck.logs.train_losses[1] and ck3.logs.train_losses[2] == ck.logs.train_losses[2],
    "logs of the first two epochs kept")
  local st3 = (json.decode(ck3.meta) or {}).schedule_state or {}
  local ma = 0.93 * st2.ma + (1 - 0.93) * ck3.logs.train_losses[3]
  check(st3.ma == ma, "resumed moving average continues from the saved one: %.17g vs %.17g", st3.ma or 0 / 0, ma)
end
check(logtext():find("Continuing from checkpoint_final%.pth at epoch 2") ~= nil, "log: continuing line")

-- a user trainer in $NNUNET_TRAINERS: its own results folder
do
  local f = assert(io.open(user .. "/MyTrainer.lua", "w"))
  f:write('-- a user trainer: Adam at 1e-3 on the v2 pipeline\n'
    .. 'local TR = require("nnunet.trainers")\n'
    .. 'return { summary = "test", settings = { initial_lr = 1e-3 }, optimizer = { optimizer = "adam" },\n'
    .. '  lr_schedule = TR.plateau { patience = 2 }, augmentation = "v2", deep_supervision = true }\n')
  f:close()
end
code, out = nnunet("train -d 993 -c 3d_fullres -f 0 -tr MyTrainer -num_epochs 1 " .. SHORT, user)
check(code == 0, "-tr MyTrainer exit %s:\n%s", tostring(code), out)
local U = res .. "/Dataset993_Train2018/MyTrainer__nnUNetPlans__3d_fullres/fold_0"
check(fs.isfile(U .. "/checkpoint_final.pth"), "user trainer folder %s", U)
local cku = train.checkpoint_load(U .. "/checkpoint_final.pth")
check(cku and cku.logs.lrs[1] == 1e-3 and cku.trainer == "MyTrainer", "user trainer: its lr and name")

-- an unknown name: exit 1, the list of trainers (user ones included), nothing created
code, out = nnunet("train -d 993 -c 3d_fullres -f 0 -tr nnUNetTrainerNope -num_epochs 1", user)
check(code == 1, "unknown trainer exit %s", tostring(code))
check(out:find("unknown trainer 'nnUNetTrainerNope'; available trainers: MyTrainer, nnUNetTrainer, "
  .. "nnUNetTrainer2018", 1, true) ~= nil, "unknown trainer message:\n%s", out)
check(not fs.isdir(res .. "/Dataset993_Train2018/nnUNetTrainerNope__nnUNetPlans__3d_fullres"),
  "no folder for an unknown trainer")
io.stderr:write(string.format("test_train2018_recipe: %.1f s\n", sys.clock() - t0))

if not os.getenv("KEEP") then os.execute("rm -rf " .. sh(ROOT)) end
if failures > 0 then
  io.stderr:write(failures .. " failure(s)\n")
  os.exit(1)
end
print("test_train2018_recipe: ok")
