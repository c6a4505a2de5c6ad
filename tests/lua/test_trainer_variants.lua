-- The reference's trainer variants (lua/nnunet/trainers.lua M.VARIANTS, `-tr NAME`):
--   1. every shipped variant loads under the reference's class name, and its resolved
--      options are what the variant's class sets (EXPECT below, written from
--      nnunetv2/training/nnUNetTrainer/variants/*.py, not from our code): epochs,
--      optimizer and initial lr, schedule values, deep supervision, oversampling, mirror
--      axes (training and inference), initial patch, pipeline steps; TR.available()
--      lists exactly these names besides the shipped files; the epoch count of a
--      definition applies unless the command line asks for another;
--      the loss variants' Net options for label / region datasets with and without an
--      ignore label (nnUNetTrainerCELoss refuses regions as the reference asserts);
--   2. real training steps of a tiny U-Net with nnUNetTrainerNoDeepSupervision and
--      nnUNetTrainerVanillaAdam3en4 (trainer.lua's loop, the engine's network); the loss
--      of a training forward for each loss setting equals the CE alone / soft Dice alone /
--      sum (smooth 1e-5 or 0) computed here from the network's logits; nnUNetTrainerCELoss
--      and nnUNetTrainerDiceLoss train, and their train_step's loss is that value;
--   3. end to end through `nnunet train`: nnUNetTrainerNoMirroring writes a checkpoint
--      without inference mirror axes, the predictor loads it without mirroring and
--      `nnunet predict` gives the same segmentation with and without --disable_tta;
--      nnUNetTrainer_1epoch without -num_epochs trains 1 epoch into its own folder;
--      nnUNetTrainerCELoss trains with the CE alone (logged); on a region dataset it is
--      refused and nnUNetTrainerDiceLoss trains the sigmoid Dice alone.
-- Skips parts 2 and 3 (77 when nothing ran) when the engine modules are not built.
local T = require("nnunet.trainer")
local TR = require("nnunet.trainers")
local fs = require("nnunet.fs")
local json = require("nnunet.json")
local sys = require("nnunet.sys")

local TL = dofile("tests/lua/testlib.lua")
local check, sh = TL.check, TL.sh

local ROOT = TL.temp_root("_trvariants")

-- ------------------------------------------------------------------ 1. resolved options
-- Fields (nil = nnUNetTrainer's): epochs (num_epochs), lr (initial_lr), opt ("sgd":
-- SGD 0.99 Nesterov | "adam": torch Adam, amsgrad False), sched ({epoch, num_epochs, lr}
-- triples of the variant's scheduler), ds (enable_deep_supervision), mirror3 / mirror2
-- (inference_allowed_mirroring_axes for a 3-D / 2-D patch; {} = None), seg (SpatialTransform
-- mode_seg), noda (training transforms = validation transforms, initial patch = patch),
-- nodummy (do_dummy_2d_data_aug False), loss (the loss's terms: "ce" RobustCrossEntropyLoss alone,
-- "dice" MemoryEfficientSoftDiceLoss alone; nil = DC_and_CE_loss / DC_and_BCE_loss), smooth (the
-- soft Dice's; nil = 1e-5), noregions (asserts not has_regions), noignore (refuses an ignore label:
-- the reference's Dice gets no mask and fails on it).
local POLY = { { 0, 1000, 1e-2 }, { 500, 1000, 0.005358867312681466 } }
local EXPECT = {
  nnUNetTrainer_1epoch = { epochs = 1 }, nnUNetTrainer_5epochs = { epochs = 5 },
  nnUNetTrainer_10epochs = { epochs = 10 }, nnUNetTrainer_20epochs = { epochs = 20 },
  nnUNetTrainer_50epochs = { epochs = 50 }, nnUNetTrainer_100epochs = { epochs = 100 },
  nnUNetTrainer_250epochs = { epochs = 250 }, nnUNetTrainer_500epochs = { epochs = 500 },
  nnUNetTrainer_750epochs = { epochs = 750 }, nnUNetTrainer_2000epochs = { epochs = 2000 },
  nnUNetTrainer_4000epochs = { epochs = 4000 }, nnUNetTrainer_8000epochs = { epochs = 8000 },
  nnUNetTrainer_250epochs_NoMirroring = { epochs = 250, mirror3 = {}, mirror2 = {} },
  nnUNetTrainer_2000epochs_NoMirroring = { epochs = 2000, mirror3 = {}, mirror2 = {} },
  nnUNetTrainer_4000epochs_NoMirroring = { epochs = 4000, mirror3 = {}, mirror2 = {} },
  nnUNetTrainer_8000epochs_NoMirroring = { epochs = 8000, mirror3 = {}, mirror2 = {} },
  nnUNetTrainerNoMirroring = { mirror3 = {}, mirror2 = {} },
  nnUNetTrainer_onlyMirror01 = { mirror3 = { 0, 1 }, mirror2 = { 0 } },
  nnUNetTrainer_onlyMirror01_1500ep = { epochs = 1500, mirror3 = { 0, 1 }, mirror2 = { 0 } },
  nnUNetTrainer_onlyMirror01_DASegOrd0 = { mirror3 = { 0, 1 }, mirror2 = { 0 }, seg = "nearest" },
  nnUNetTrainer_DASegOrd0 = { seg = "nearest" },
  nnUNetTrainer_DASegOrd0_NoMirroring = { seg = "nearest", mirror3 = {}, mirror2 = {} },
  nnUNetTrainerNoDA = { noda = true, mirror3 = {}, mirror2 = {} },
  nnUNetTrainer_noDummy2DDA = { nodummy = true },
  nnUNetTrainerNoDeepSupervision = { ds = false },
  -- optimizer/nnUNetTrainerAdam.py: AdamW(lr, weight_decay, amsgrad=True) + poly
  nnUNetTrainerAdam = { opt = "adamw", lr = 1e-2 },
  nnUNetTrainerAdam1en3 = { opt = "adamw", lr = 1e-3, sched = { { 0, 1000, 1e-3 } } },
  nnUNetTrainerAdam3en4 = { opt = "adamw", lr = 3e-4, sched = { { 0, 1000, 3e-4 } } },
  nnUNetTrainerVanillaAdam = { opt = "adam", lr = 1e-2 },
  nnUNetTrainerVanillaAdam1en3 = { opt = "adam", lr = 1e-3, sched = { { 0, 1000, 1e-3 } } },
  nnUNetTrainerVanillaAdam3en4 = { opt = "adam", lr = 3e-4,
    sched = { { 0, 1000, 3e-4 }, { 500, 1000, 0.00016076601938044396 } } },
  -- CosineAnnealingLR(T_max = num_epochs).step(e), closed form (Python values)
  nnUNetTrainerCosAnneal = { sched = { { 0, 1000, 1e-2 }, { 250, 1000, 0.008535533905932738 },
    { 500, 1000, 0.005 }, { 999, 1000, 2.467399070893439e-08 } } },
  -- Lin_incr_LRScheduler(1e-2, 50) for e < 50, then PolyLRScheduler_offset(1e-2, 1000, 50)
  nnUNetTrainer_warmup = { sched = { { 0, 1000, 0.0002 }, { 49, 1000, 0.01 }, { 50, 1000, 0.01 },
    { 525, 1000, 0.005358867312681466 } } },
  -- sampling/nnUNetTrainer_probabilisticOversampling.py: probabilistic_oversampling = True;
  -- the base keeps 0.33 here (train.lua turns it into the batch's forced fraction), _033 / _010 set it
  nnUNetTrainer_probabilisticOversampling = { prob = "matched" },
  nnUNetTrainer_probabilisticOversampling_033 = { prob = true, over = 0.33 },
  nnUNetTrainer_probabilisticOversampling_010 = { prob = true, over = 0.1 },
  -- loss/nnUNetTrainerCELoss.py, loss/nnUNetTrainerDiceLoss.py
  nnUNetTrainerCELoss = { loss = "ce", noregions = true },
  nnUNetTrainerCELoss_5epochs = { loss = "ce", noregions = true, epochs = 5 },
  nnUNetTrainerDiceLoss = { loss = "dice", noignore = true },
  nnUNetTrainerDiceCELoss_noSmooth = { smooth = 0 },
}
-- initial patch sizes of the reference's get_patch_size (computed with nnunetv2):
-- (40, 56, 40) 30°: 73 80 64; (8, 160, 160) dummy-2D 180°: 8 188 188 (first axis kept);
-- (8, 160, 160) 30° without dummy-2D: 102 257 188; 2-D (56, 40) 180°: 65 65
local P3, P3A, P2 = { 40, 56, 40 }, { 8, 160, 160 }, { 56, 40 }
local INITIAL = { [P3] = { 73, 80, 64 }, [P3A] = { 8, 188, 188 }, [P2] = { 65, 65 } }
local INITIAL_NODUMMY = { [P3] = { 73, 80, 64 }, [P3A] = { 102, 257, 188 }, [P2] = { 65, 65 } }

local function list(t) return table.concat(t or {}, ",") end
local function close(a, b) return a ~= nil and math.abs(a - b) <= 1e-15 * math.max(1, math.abs(b)) end

-- TR.available(): the shipped files and exactly the names above
do
  local want = { nnUNetTrainer = true, nnUNetTrainer2018 = true }
  for n in pairs(EXPECT) do want[n] = true end
  local got = {}
  for _, n in ipairs(TR.available()) do
    got[n] = true
    check(want[n], "available lists '%s', not a shipped name", n)
  end
  for n in pairs(want) do check(got[n], "available lacks '%s'", n) end
  local ok, err = pcall(TR.load, "nnUNetTrainer_3epochs")
  local msg = type(err) == "table" and err.message or tostring(err)
  check(not ok and msg:find("unknown trainer 'nnUNetTrainer_3epochs'", 1, true)
    and msg:find("nnUNetTrainer_<N>epochs (N = 5, 10, 20, 50, 100, 250, 500, 750, 2000, 4000, 8000)", 1, true)
    and msg:find("nnUNetTrainer_1epoch,", 1, true) and msg:find("nnUNetTrainerNoMirroring", 1, true),
    "unknown name lists the families: %s", msg)
end

-- malformed loss fields of user definitions are named
do
  assert(fs.mkdir(ROOT .. "/defs"))
  for _, c in ipairs({ { 'loss = "topk"', "topk" }, { 'loss = { terms = "ce", smooth = -1 }', "smooth" },
                       { 'loss = { terms = "dice", regions = "no" }', "regions" } }) do
    local p = ROOT .. "/defs/BadLoss.lua"
    TL.write_file(p, "return { " .. c[1] .. " }\n")
    local ok, err = pcall(TR.load, p)
    local msg = type(err) == "table" and err.message or tostring(err)
    check(not ok and msg:find(c[2], 1, true), "bad loss field '%s' named: %s", c[1], msg)
  end
  local p = ROOT .. "/defs/UserDice0.lua"
  TL.write_file(p, 'return { loss = { terms = "dice", smooth = 0 } }\n')
  local lo = TR.net_loss_options(TR.load(p), { has_regions = true, ignore_label = 2 })
  check(lo.loss_terms == "dice" and lo.loss_smooth == 0, "a user definition's Dice-only loss, smooth 0")
end

local has_aug, AP = pcall(require, "nnunet.augment_pipeline")
local names = {}
for n in pairs(EXPECT) do names[#names + 1] = n end
table.sort(names)
local stub_net, stub_data = {}, {}
for _, name in ipairs(names) do
  local e = EXPECT[name]
  local ok, def = pcall(TR.load, name)
  if not check(ok and def.name == name, "%s loads: %s", name, tostring(ok and def.name or def.message or def)) then
    goto continue
  end
  do
    local o = TR.trainer_options(def)
    -- the trainer as `nnunet train` builds it without -num_epochs
    o.output_folder, o.net, o.data, o.console = ROOT .. "/opts_" .. name, stub_net, stub_data, false
    local tr = T.new(o)
    check(tr.trainer_name == name, "%s: trainer_name %s", name, tostring(tr.trainer_name))
    check(tr.num_epochs == (e.epochs or 1000), "%s: num_epochs %s", name, tostring(tr.num_epochs))
    check(tr.initial_lr == (e.lr or 1e-2), "%s: initial_lr %s", name, tostring(tr.initial_lr))
    check(tr.weight_decay == 3e-5 and tr.oversample_foreground_percent == (e.over or 0.33),
      "%s: weight decay, oversampling %s", name, tostring(tr.oversample_foreground_percent))
    check(def.probabilistic_oversampling == e.prob, "%s: probabilistic oversampling %s", name,
      tostring(def.probabilistic_oversampling))
    check(tr.enable_deep_supervision == (e.ds ~= false) and def.deep_supervision == (e.ds ~= false),
      "%s: deep supervision %s", name, tostring(tr.enable_deep_supervision))
    local op = tr.optimizer
    if (e.opt or "sgd") == "sgd" then
      check(op.optimizer == "sgd" and op.momentum == 0.99 and op.nesterov == true and op.clip == 12
        and op.weight_decay == 3e-5, "%s: SGD 0.99 Nesterov, clip 12", name)
    elseif e.opt == "adamw" then
      check(op.optimizer == "adam" and op.beta1 == 0.9 and op.beta2 == 0.999 and op.eps == 1e-8
        and op.amsgrad == true and op.decoupled_weight_decay == true and op.clip == 12 and op.weight_decay == 3e-5,
        "%s: torch AdamW, amsgrad, decoupled 3e-5, clip 12 (the trainer's train_step)", name)
    else
      check(op.optimizer == "adam" and op.beta1 == 0.9 and op.beta2 == 0.999 and op.eps == 1e-8
        and op.amsgrad == false and not op.decoupled_weight_decay and op.clip == 12 and op.weight_decay == 3e-5,
        "%s: torch Adam defaults, L2 3e-5, clip 12 (the trainer's train_step)", name)
    end
    for _, s in ipairs(e.sched or POLY) do
      local stub = { initial_lr = tr.initial_lr, num_epochs = s[2] }
      local lr = def.lr_schedule.lr(stub, def.lr_schedule.init(stub), s[1])
      check(close(lr, s[3]), "%s: lr at epoch %d of %d: %.17g, reference %.17g", name, s[1], s[2], lr or -1, s[3])
    end
    -- the loss for label / region datasets, with and without an ignore label
    for _, ds in ipairs({ { has_regions = false }, { has_regions = true }, { has_regions = false, ignore_label = 3 },
                          { has_regions = true, ignore_label = 4 } }) do
      local tag = string.format("%s (%s%s)", name, ds.has_regions and "regions" or "labels",
        ds.ignore_label and ", ignore label" or "")
      local lok, lo = pcall(TR.net_loss_options, def, ds)
      local lmsg = type(lo) == "table" and lo.message or tostring(lo)
      if (e.noregions and ds.has_regions) or (e.noignore and ds.ignore_label) then
        check(not lok and type(lo) == "table" and lo.user_error and lmsg:find(name, 1, true)
          and lmsg:find(ds.has_regions and e.noregions and "regions not supported by this trainer"
            or "ignore label", 1, true), "%s: refused with a clear message: %s", tag, lmsg)
      else
        check(lok and lo.loss_terms == (e.loss or "dice+ce") and lo.loss_smooth == (e.smooth or 1e-5),
          "%s: loss %s smooth %s, reference %s %s", tag, tostring(lok and lo.loss_terms or lmsg),
          tostring(lok and lo.loss_smooth), e.loss or "dice+ce", tostring(e.smooth or 1e-5))
      end
    end
    -- a given -num_epochs wins over the definition's count, 1000 too
    for _, n in ipairs({ 7, 1000 }) do
      o.output_folder, o.num_epochs = ROOT .. "/opts" .. n .. "_" .. name, n
      check(T.new(o).num_epochs == n, "%s: -num_epochs %d wins", name, n)
    end
  end
  if has_aug then
    for _, patch in ipairs({ P3, P3A, P2 }) do
      local s = AP.setup { patch = patch, pipeline = def.augmentation }
      local tag = string.format("%s %s", name, list(patch))
      local want_m = #patch == 3 and (e.mirror3 or { 0, 1, 2 }) or (e.mirror2 or { 0, 1 })
      check(list(s.mirror_axes) == list(want_m), "%s: inference mirror axes {%s}, reference {%s}", tag,
        list(s.mirror_axes), list(want_m))
      local mirror_step, spatial, kinds = nil, nil, {}
      for _, st in ipairs(s.train.steps) do
        kinds[#kinds + 1] = st.kind
        if st.kind == "mirror" then mirror_step = st end
        if st.kind == "spatial" then spatial = st end
      end
      -- the training MirrorTransform over the same axes (1-based (D, H, W); 2-D is (1, H, W))
      local want_steps = {}
      for i, a in ipairs(want_m) do want_steps[i] = a + (#patch == 3 and 1 or 2) end
      if #want_m == 0 then
        check(mirror_step == nil, "%s: no MirrorTransform", tag)
      else
        check(mirror_step and list(mirror_step.axes) == list(want_steps), "%s: MirrorTransform axes {%s}", tag,
          list(mirror_step and mirror_step.axes))
      end
      if e.noda then
        check(list(kinds) == "remove_label" and list(s.initial_patch) == list(patch),
          "%s: NoDA trains with the validation transforms at the patch size: %s / %s", tag, list(kinds),
          list(s.initial_patch))
      else
        check(spatial and spatial.seg == (e.seg or "linear"), "%s: mode_seg %s", tag, tostring(spatial and spatial.seg))
        check(#kinds == 9 + (#want_m > 0 and 1 or 0), "%s: the v2 transforms: %s", tag, list(kinds))
        local want_ip = (e.nodummy and INITIAL_NODUMMY or INITIAL)[patch]
        check(list(s.initial_patch) == list(want_ip), "%s: initial patch %s, reference %s", tag,
          list(s.initial_patch), list(want_ip))
        local want_dummy = patch == P3A and not e.nodummy
        check(s.cfg.dummy_2d == want_dummy, "%s: do_dummy_2d_data_aug %s", tag, tostring(s.cfg.dummy_2d))
      end
      local bok, berr = pcall(AP.build, s.train)
      check(bok, "%s: the pipeline builds: %s", tag, tostring(berr))
    end
  end
  ::continue::
end

-- ------------------------------------------------------------------ 2. real training steps
local has_net, netmod = pcall(require, "nnunet.net")
if has_net then
  local arch, cube_data = TL.tiny_unet()
  local function run(name)
    local def = TR.load(name)
    local o = TR.trainer_options(def)
    local lo = TR.net_loss_options(def, { has_regions = false })
    o.output_folder, o.data = ROOT .. "/real_" .. name, cube_data
    o.net = netmod.build(arch, { num_input_channels = 1, num_classes = 2, seed = 7, patch_size = { 8, 8, 8 },
      batch_size = 2, deep_supervision = def.deep_supervision, train = true,
      loss_terms = lo.loss_terms, loss_smooth = lo.loss_smooth })
    o.num_epochs, o.num_iterations_per_epoch, o.num_val_iterations_per_epoch = 2, 3, 1
    o.identity, o.plans_hash, o.n_classes = "Dataset999_Test/nnUNetPlans/tiny", 7, 1
    o.console, o.progress_bar, o.fsync, o.plot_width, o.plot_height = false, false, false, 300, 540
    local tr = T.new(o)
    tr:run_training()
    return tr
  end
  local t0 = sys.clock()
  local nods = run("nnUNetTrainerNoDeepSupervision")
  local st = nods.net:get_state()
  check(st.optim_steps == 6 and st.optim[1].name == "momentum", "NoDeepSupervision: 6 SGD steps")
  local out = nods.net:forward(cube_data:train_batch(0), true)
  check(type(out) == "table" and #out == 1, "NoDeepSupervision: one training output, got %s",
    type(out) == "table" and #out or type(out))
  check(nods.logs.train_losses[2] == nods.logs.train_losses[2] and nods.logs.train_losses[2] < 10,
    "NoDeepSupervision: finite loss %s", tostring(nods.logs.train_losses[2]))
  local ck = require("nnunet.train").checkpoint_load(ROOT .. "/real_nnUNetTrainerNoDeepSupervision/checkpoint_final.pth")
  check(ck and ck.trainer == "nnUNetTrainerNoDeepSupervision" and ck.epoch == 2, "NoDeepSupervision: checkpoint")

  local adam = run("nnUNetTrainerVanillaAdam3en4")
  st = adam.net:get_state()
  local bufs = {}
  for i, b in ipairs(st.optim) do bufs[i] = b.name end
  check(st.optim_steps == 6 and list(bufs):find("exp_avg,exp_avg_sq", 1, true) ~= nil,
    "VanillaAdam3en4: 6 Adam steps, state %s", list(bufs))
  check(adam.logs.lrs[1] == 3e-4 and close(adam.logs.lrs[2], 3e-4 * 0.5 ^ 0.9), "VanillaAdam3en4: poly from 3e-4: %s, %s",
    tostring(adam.logs.lrs[1]), tostring(adam.logs.lrs[2]))
  check(adam.logs.train_losses[2] == adam.logs.train_losses[2], "VanillaAdam3en4: finite loss")
  -- AdamW (amsgrad): the max buffer exists, and the same run without the decoupled decay
  -- (plain Adam with L2, amsgrad) ends with other weights
  local adamw = run("nnUNetTrainerAdam3en4")
  st = adamw.net:get_state()
  bufs = {}
  for i, b in ipairs(st.optim) do bufs[i] = b.name end
  check(st.optim_steps == 6 and list(bufs):find("max_exp_avg_sq", 1, true) ~= nil,
    "Adam3en4 (AdamW): 6 amsgrad steps, state %s", list(bufs))
  check(adamw.logs.train_losses[2] == adamw.logs.train_losses[2], "Adam3en4: finite loss")
  local coupled = TR.load("nnUNetTrainerAdam3en4")
  coupled.optimizer.decoupled_weight_decay = false
  local o2 = TR.trainer_options(coupled)
  o2.output_folder, o2.data = ROOT .. "/real_coupled", cube_data
  o2.net = netmod.build(arch, { num_input_channels = 1, num_classes = 2, seed = 7, patch_size = { 8, 8, 8 },
    batch_size = 2, deep_supervision = true, train = true })
  o2.num_epochs, o2.num_iterations_per_epoch, o2.num_val_iterations_per_epoch = 2, 3, 1
  o2.identity, o2.plans_hash, o2.n_classes = "Dataset999_Test/nnUNetPlans/tiny", 7, 1
  o2.console, o2.progress_bar, o2.fsync, o2.plot_width, o2.plot_height = false, false, false, 300, 540
  local tr2 = T.new(o2)
  tr2:run_training()
  local pa, pb = st.params:totable(), tr2.net:get_state().params:totable()   -- flat tensors
  local differ = 0
  for k = 1, math.min(#pa, 2000) do if pa[k] ~= pb[k] then differ = differ + 1 end end
  check(differ > 0, "AdamW's decoupled decay changes the weights (vs Adam + L2): %d of the first 2000 differ", differ)

  -- The loss of the tiny U-Net's training forward (one output, full resolution, weight 1),
  -- written out here from its logits (2, 2, 8, 8, 8): p = softmax over the 2 classes;
  -- CE = mean over the voxels of -log p_t (RobustCrossEntropyLoss); Dice = -mean over the
  -- samples of (2 I + smooth) / max(Sp + Sy + smooth, 1e-8) of class 1 (do_bg False,
  -- batch_dice False; MemoryEfficientSoftDiceLoss); DC_and_CE_loss = CE + Dice.
  local function lua_loss(logits, target, terms, smooth)
    local Z = logits:contiguous():reshape({ logits:numel() }):totable()
    local Y = target:contiguous():reshape({ target:numel() }):totable()
    local N, S = 2, 512
    local ce, dsum = 0, 0
    for n = 0, N - 1 do
      local I, Sp, Sy = 0, 0, 0
      for s = 1, S do
        local z0, z1, t = Z[2 * n * S + s], Z[(2 * n + 1) * S + s], math.tointeger(Y[n * S + s])
        local m = math.max(z0, z1)
        local se = math.exp(z0 - m) + math.exp(z1 - m)
        local p1 = math.exp(z1 - m) / se
        ce = ce - ((t == 1 and z1 or z0) - m - math.log(se))
        Sp = Sp + p1
        if t == 1 then I, Sy = I + p1, Sy + 1 end
      end
      dsum = dsum + (2 * I + smooth) / math.max(Sp + Sy + smooth, 1e-8)
    end
    local CE, DICE = ce / (N * S), -dsum / N
    if terms == "ce" then return CE elseif terms == "dice" then return DICE end
    return CE + DICE
  end
  local function near(a, b) return a ~= nil and math.abs(a - b) <= 2e-5 * math.max(1, math.abs(b)) end
  local x0, y0 = cube_data:train_batch(0)
  local seen = {}
  for _, c in ipairs({ { "ce", 1e-5 }, { "dice", 1e-5 }, { "dice+ce", 1e-5 }, { "dice+ce", 0 }, { "dice", 0 } }) do
    local net = netmod.build(arch, { num_input_channels = 1, num_classes = 2, seed = 7, patch_size = { 8, 8, 8 },
      batch_size = 2, train = true, loss_terms = c[1], loss_smooth = c[2] })
    local info = net:info()
    check(info.loss_terms == c[1] and math.abs(info.loss_smooth - c[2]) < 1e-12, "Net:info loss %s %s", info.loss_terms,
      tostring(info.loss_smooth))
    local out = net:forward(x0, true)
    local got, want = net:loss(y0), lua_loss(out[1], y0, c[1], c[2])
    check(near(got, want), "loss %s smooth %s of a training forward: net %.9g, computed from its logits %.9g", c[1],
      tostring(c[2]), got, want)
    seen[#seen + 1] = got
  end
  check(seen[1] > 0 and seen[2] < 0 and seen[2] > -1 and near(seen[3], seen[1] + seen[2]) and seen[4] ~= seen[3],
    "CE > 0, -1 < Dice < 0, Dice + CE their sum, smooth 0 changes it: %s", table.concat(seen, ", "))
  -- nnUNetTrainerCELoss / nnUNetTrainerDiceLoss train; afterwards a training forward's loss
  -- and the train_step's loss (before its update) are the CE alone / Dice alone
  for _, c in ipairs({ { "nnUNetTrainerCELoss", "ce" }, { "nnUNetTrainerDiceLoss", "dice" } }) do
    local tr = run(c[1])
    local tl = tr.logs.train_losses
    check(tr.net:get_state().optim_steps == 6 and #tl == 2 and tl[2] == tl[2], "%s: 6 steps, finite losses %s", c[1],
      table.concat(tl, ", "))
    check(c[2] == "ce" and tl[1] > 0 and tl[2] > 0 or c[2] == "dice" and tl[1] < 0 and tl[1] > -1 and tl[2] < 0
      and tl[2] > -1, "%s: train losses in the term's range: %s", c[1], table.concat(tl, ", "))
    local out = tr.net:forward(x0, true)
    local want = lua_loss(out[1], y0, c[2], 1e-5)
    local got = tr.net:loss(y0)
    check(near(got, want), "%s: loss %.9g, %s computed from the logits %.9g", c[1], got, c[2], want)
    local step = tr.net:train_step(x0, y0, 1e-3)
    check(near(step, want), "%s: train_step loss %.9g, %s alone %.9g", c[1], step, c[2], want)
    check(not near(step, lua_loss(out[1], y0, "dice+ce", 1e-5)), "%s: differs from Dice + CE", c[1])
  end
  io.stderr:write(string.format("real training steps: %.1f s\n", sys.clock() - t0))
else
  print("nnunet.net not built: real training skipped")
end

-- ------------------------------------------------------------------ 3. nnunet train / predict
local e2e_modules = { "nnunet.net", "nnunet.loader", "nnunet.augment", "nnunet.export", "nnunet.preproc_case" }
local have_e2e = true
for _, m in ipairs(e2e_modules) do if not pcall(require, m) then have_e2e = false end end
if have_e2e then
  local nifti = require("nnunet.image")
  local tensor = require("nnunet.tensor")
  local raw, pre, res = ROOT .. "/raw", ROOT .. "/pre", ROOT .. "/res"
  local ds = raw .. "/Dataset993_TrVariants"
  for _, d in ipairs({ ds .. "/imagesTr", ds .. "/labelsTr", ds .. "/imagesTs", pre, res }) do assert(fs.mkdir(d)) end
  local N = 16
  local geo = { spacing_itk = { 1, 1, 1 }, origin = { 0, 0, 0 }, direction = { 1, 0, 0, 0, 1, 0, 0, 0, 1 } }
  for i = 1, 10 do
    local img, lab = {}, {}
    local o = 3 + (i % 4)
    for z = 0, N - 1 do for y = 0, N - 1 do for x = 0, N - 1 do
      local inside = z >= o and z < o + 6 and y >= o and y < o + 7 and x >= 4 and x < 10
      img[#img + 1] = (inside and 200 or 50) + ((z * 31 + y * 17 + x * 7 + i) % 13)
      lab[#lab + 1] = inside and 1 or 0
    end end end
    local id = string.format("tv_%03d", i)
    assert(nifti.write(ds .. "/imagesTr/" .. id .. "_0000.nii.gz", tensor.from_table(img, { N, N, N }), geo))
    assert(nifti.write(ds .. "/labelsTr/" .. id .. ".nii.gz", tensor.from_table(lab, { N, N, N }, "u8"), geo,
      { segmentation = true }))
    if i <= 2 then
      assert(nifti.write(ds .. "/imagesTs/" .. id .. "_0000.nii.gz", tensor.from_table(img, { N, N, N }), geo))
    end
  end
  TL.write_file(ds .. "/dataset.json", json.encode({ channel_names = { ["0"] = "MRI" },
    labels = { background = 0, cube = 1 }, numTraining = 10, file_ending = ".nii.gz" }))
  local function nnunet(args)
    return TL.nnunet({ raw = raw, pre = pre, res = res, env = "nnUNet_n_proc_DA=1" }, args)
  end
  local t0 = sys.clock()
  local code, out = nnunet("plan_and_preprocess -d 993 -c 3d_fullres -np 2 --no_fsync --quiet")
  if not check(code == 0, "plan_and_preprocess exit %s:\n%s", tostring(code), out) then TL.finish("x", ROOT) end

  -- NoMirroring: no mirror axes in the checkpoint, none at prediction
  code, out = nnunet("train -d 993 -c 3d_fullres -f 0 -tr nnUNetTrainerNoMirroring -num_epochs 1 "
    .. "-num_iterations_per_epoch 2 -num_val_iterations 1")
  check(code == 0, "train NoMirroring exit %s:\n%s", tostring(code), out)
  local B = res .. "/Dataset993_TrVariants/nnUNetTrainerNoMirroring__nnUNetPlans__3d_fullres"
  local train = require("nnunet.train")
  local ck = train.checkpoint_load(B .. "/fold_0/checkpoint_final.pth")
  local meta = ck and json.decode(ck.meta) or {}
  check(ck and ck.trainer == "nnUNetTrainerNoMirroring" and ck.epoch == 1, "NoMirroring: checkpoint_final, 1 epoch")
  check(type(meta.inference_allowed_mirroring_axes) == "table" and #meta.inference_allowed_mirroring_axes == 0,
    "NoMirroring: the checkpoint allows no inference mirroring: %s", json.encode(meta.inference_allowed_mirroring_axes))
  check(fs.isfile(B .. "/fold_0/validation/summary.json"), "NoMirroring: final validation")
  local predictor = require("nnunet.predictor")
  local model = predictor.load_model(B, "3d_fullres", { folds = { 0 }, device = "cpu", log = function() end })
  check(model and #model.slide.mirror_axes == 0, "NoMirroring: the predictor mirrors over {%s}",
    list(model and model.slide.mirror_axes))
  local function predict(dir, extra)
    return nnunet(string.format("predict -i %s -o %s -d 993 -c 3d_fullres -f 0 -tr nnUNetTrainerNoMirroring "
      .. "-device cpu %s", sh(ds .. "/imagesTs"), sh(ROOT .. "/" .. dir), extra))
  end
  -- the probabilities (not only the argmax) are identical with and without --disable_tta:
  -- mirroring would have averaged flipped predictions of an untrained network
  code, out = predict("pred_tta", "--save_probabilities")
  check(code == 0, "predict exit %s:\n%s", tostring(code), out)
  code, out = predict("pred_notta", "--save_probabilities --disable_tta")
  check(code == 0, "predict --disable_tta exit %s:\n%s", tostring(code), out)
  local prob = require("nnunet.probabilities")
  -- number of differing probabilities of case `f` in two prediction folders (nil: unreadable)
  local function n_differ(d1, d2, f)
    local a, b = prob.load(ROOT .. "/" .. d1 .. "/" .. f), prob.load(ROOT .. "/" .. d2 .. "/" .. f)
    if not (a and b and a:numel() == b:numel()) then return nil end
    local fa, fb = a:contiguous():reshape({ a:numel() }), b:contiguous():reshape({ b:numel() })
    local n = 0
    for k = 1, a:numel() do if fa:get(k) ~= fb:get(k) then n = n + 1 end end
    return n
  end
  for i = 1, 2 do
    local f = string.format("tv_%03d", i)
    check(n_differ("pred_tta", "pred_notta", f) == 0,
      "NoMirroring: %s probabilities the same with and without --disable_tta (no mirroring either way)", f)
    check(fs.isfile(ROOT .. "/pred_tta/" .. f .. ".nii.gz"), "NoMirroring: %s.nii.gz written", f)
  end

  -- nnUNetTrainer_1epoch without -num_epochs: the definition's 1 epoch, its own folder
  code, out = nnunet("train -d 993 -c 3d_fullres -f 0 -tr nnUNetTrainer_1epoch -num_iterations_per_epoch 2 "
    .. "-num_val_iterations 1")
  check(code == 0, "train 1epoch exit %s:\n%s", tostring(code), out)
  local B1 = res .. "/Dataset993_TrVariants/nnUNetTrainer_1epoch__nnUNetPlans__3d_fullres/fold_0"
  ck = train.checkpoint_load(B1 .. "/checkpoint_final.pth")
  meta = ck and json.decode(ck.meta) or {}
  check(ck and ck.epoch == 1 and meta.num_epochs == 1 and ck.trainer == "nnUNetTrainer_1epoch",
    "1epoch: one epoch of one (epoch %s, num_epochs %s)", tostring(ck and ck.epoch), tostring(meta.num_epochs))
  local dbg = json.decode_file(B1 .. "/debug.json") or {}
  check(dbg.num_epochs == "1" and dbg.trainer_name == "nnUNetTrainer_1epoch", "1epoch: debug.json num_epochs %s",
    tostring(dbg.num_epochs))
  check(#(meta.inference_allowed_mirroring_axes or {}) == 3, "1epoch: mirrors all three axes at inference")
  -- the control: a model that mirrors gives other probabilities without --disable_tta
  for _, x in ipairs({ { "ctl_tta", "" }, { "ctl_notta", "--disable_tta" } }) do
    code, out = nnunet(string.format("predict -i %s -o %s -d 993 -c 3d_fullres -f 0 -tr nnUNetTrainer_1epoch "
      .. "-device cpu --save_probabilities %s", sh(ds .. "/imagesTs"), sh(ROOT .. "/" .. x[1]), x[2]))
    check(code == 0, "predict 1epoch %s exit %s:\n%s", x[2], tostring(code), out)
  end
  local nd = n_differ("ctl_tta", "ctl_notta", "tv_001")
  check(nd and nd > 0, "control: mirroring changes the probabilities of a mirroring model (%s differ)", tostring(nd))

  -- probabilistic oversampling: the loaders draw with oversample_random, p = the forced
  -- fraction of the plans' batch size (logged)
  code, out = nnunet("train -d 993 -c 3d_fullres -f 0 -tr nnUNetTrainer_probabilisticOversampling -num_epochs 1 "
    .. "-num_iterations_per_epoch 2 -num_val_iterations 1")
  check(code == 0, "train probabilisticOversampling exit %s:\n%s", tostring(code), out)
  local pplans = json.decode_file(pre .. "/Dataset993_TrVariants/nnUNetPlans.json")
  local bs = math.tointeger(pplans.configurations["3d_fullres"].batch_size)
  local want = dofile("recipes/train.lua").forced_fraction(bs, 0.33)
  local BP = res .. "/Dataset993_TrVariants/nnUNetTrainer_probabilisticOversampling__nnUNetPlans__3d_fullres/fold_0"
  local logtext = TL.training_logs(BP)
  check(logtext:find("probabilistic oversampling: oversample_foreground_percent " .. tostring(want), 1, true),
    "probabilisticOversampling: p = %s logged for batch size %d", tostring(want), bs)
  check(fs.isfile(BP .. "/checkpoint_final.pth"), "probabilisticOversampling: trained")

  -- nnUNetTrainerCELoss through `nnunet train`: the loss reaches the network (logged; the
  -- epoch's train loss is a CE, > 0)
  code, out = nnunet("train -d 993 -c 3d_fullres -f 0 -tr nnUNetTrainerCELoss -num_epochs 1 "
    .. "-num_iterations_per_epoch 2 -num_val_iterations 1")
  check(code == 0, "train CELoss exit %s:\n%s", tostring(code), out)
  local BC = res .. "/Dataset993_TrVariants/nnUNetTrainerCELoss__nnUNetPlans__3d_fullres/fold_0"
  logtext = TL.training_logs(BC)
  local tl = tonumber(logtext:match("train_loss (%-?[%d%.]+)"))
  check(logtext:find("loss: CE alone", 1, true) and tl and tl > 0, "CELoss: 'loss: CE alone' logged, train_loss %s",
    tostring(tl))

  -- a region dataset (whole = [1, 2], core = 2): nnUNetTrainerCELoss is refused before
  -- anything is written, as the reference asserts; nnUNetTrainerDiceLoss trains the sigmoid
  -- soft Dice over every region alone (a loss in (-1, 0))
  dofile("tests/lua/synth_dataset.lua").write(raw .. "/Dataset994_TrVariantRegions", { cases = 6, size = 16,
    regions = true })
  code, out = nnunet("plan_and_preprocess -d 994 -c 3d_fullres -np 2 --no_fsync --quiet")
  check(code == 0, "plan_and_preprocess regions exit %s:\n%s", tostring(code), out)
  code, out = nnunet("train -d 994 -c 3d_fullres -f 0 -tr nnUNetTrainerCELoss -num_epochs 1 "
    .. "-num_iterations_per_epoch 2 -num_val_iterations 1")
  check(code ~= 0 and out:find("trainer nnUNetTrainerCELoss: regions not supported by this trainer", 1, true)
    and not fs.isdir(res .. "/Dataset994_TrVariantRegions/nnUNetTrainerCELoss__nnUNetPlans__3d_fullres"),
    "CELoss on regions refused (exit %s), no results folder:\n%s", tostring(code), out)
  code, out = nnunet("train -d 994 -c 3d_fullres -f 0 -tr nnUNetTrainerDiceLoss -num_epochs 1 "
    .. "-num_iterations_per_epoch 2 -num_val_iterations 1 --no_plot")
  check(code == 0, "train DiceLoss on regions exit %s:\n%s", tostring(code), out)
  local BD = res .. "/Dataset994_TrVariantRegions/nnUNetTrainerDiceLoss__nnUNetPlans__3d_fullres/fold_0"
  logtext = TL.training_logs(BD)
  tl = tonumber(logtext:match("train_loss (%-?[%d%.]+)"))
  check(logtext:find("loss: soft Dice alone", 1, true) and tl and tl < 0 and tl > -1,
    "DiceLoss on regions: 'loss: soft Dice alone' logged, train_loss %s", tostring(tl))
  io.stderr:write(string.format("nnunet train / predict: %.1f s\n", sys.clock() - t0))
elseif not has_net then
  print("engine modules not built: end-to-end checks skipped")
end

-- the forced fraction of the deterministic rule, as the reference's
-- np.mean([not j < round(bs * (1 - p)) for j in range(bs)]) (Python's round halves to even)
do
  local ff = dofile("recipes/train.lua").forced_fraction
  for _, c in ipairs({ { 2, 0.33, 0.5 }, { 9, 0.33, 3 / 9 }, { 1, 0.33, 0 }, { 4, 0.5, 0.5 }, { 5, 0.5, 0.6 },
                       { 7, 0.5, 3 / 7 }, { 12, 0.33, 4 / 12 }, { 2, 0.1, 0 } }) do
    check(math.abs(ff(c[1], c[2]) - c[3]) < 1e-12, "forced fraction bs %d p %s: %s, want %s", c[1], c[2],
      tostring(ff(c[1], c[2])), tostring(c[3]))
  end
end

TL.finish("test_trainer_variants", ROOT)
