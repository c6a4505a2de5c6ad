-- 3d_lowres -> 3d_cascade_fullres (issue 8; nnunet-behaviour.md §5.6, §7.7, §9.1, §9.4,
-- Appendix I):
--   1. cascade_ops.stack_onehot on hand values (image channels kept, one 0/1 channel
--      per label, background and -1 give zeros);
--   2. the loader hook: without augmentation the one-hot channels are exactly the
--      previous stage's map cropped with the sample's box (-1 padding -> zeros); with
--      the full v2 training pipeline and prev == label, every one-hot channel equals
--      (augmented label == k) voxel for voxel, i.e. the previous stage goes through the
--      same spatial transform and mirroring as the label (MoveSegAsOneHotToData);
--      cascade_aug (binary operators, component removal) alters the one-hot channel
--      only;
--   3. end to end on a tiny synthetic dataset (6 cases of 16^3, a sphere) planned with a
--      small GPU budget so that 3d_lowres and 3d_cascade_fullres exist: 1 epoch of 2
--      iterations of 3d_lowres (fold all) writes predicted_next_stage/3d_cascade_fullres/
--      CASE.npz for every case at the 3d_fullres preprocessed shape; the cascade stage
--      trains (fold 0) with 1 + 1 input channels; `nnunet predict -c 3d_cascade_fullres`
--      with -prev_stage_predictions, and without it (previous stage predicted first into
--      OUTPUT_prev_stage), writes segmentations with the input geometry.
-- Skips (77) when a pipeline module is not built.
local fs = require("nnunet.fs")
local json = require("nnunet.json")
local nifti = require("nnunet.image")
local sys = require("nnunet.sys")
local tensor = require("nnunet.tensor")

local TL = dofile("tests/lua/testlib.lua")
TL.skip_unless_modules({ "nnunet.net", "nnunet.loader", "nnunet.augment", "nnunet.export", "nnunet.preproc_case",
                         "nnunet.cascade_ops" })
local ops = require("nnunet.cascade_ops")
local loader = require("nnunet.loader")
local AP = require("nnunet.augment_pipeline")
local infer = require("nnunet.infer")
local synth = dofile("tests/lua/synth_dataset.lua")

local check, sh = TL.check, TL.sh

-- ---------------------------------------------------------------- 1. stack_onehot
do
  -- data (2, 1, 2, 3), seg (1, 1, 2, 3) = [[0, 1, 2], [-1, 2, 1]], labels {1, 2}
  local data = tensor.from_table({ 1, 2, 3, 4, 5, 6, 10, 20, 30, 40, 50, 60 }, { 2, 1, 2, 3 })
  local seg = tensor.from_table({ 0, 1, 2, -1, 2, 1 }, { 1, 1, 2, 3 }, "i16")
  local out = ops.stack_onehot(data, seg, { 1, 2 })
  check(table.concat(out:shape(), ",") == "4,1,2,3", "stack shape %s", table.concat(out:shape(), ","))
  local want = { 1, 2, 3, 4, 5, 6, 10, 20, 30, 40, 50, 60, 0, 1, 0, 0, 0, 1, 0, 0, 1, 0, 1, 0 }
  local got, bad = out:totable(), 0
  for i = 1, #want do if got[i] ~= want[i] then bad = bad + 1 end end
  check(#got == #want and bad == 0, "stack values %s", table.concat(got, ","))
  -- (D, H, W) seg and a u8 dtype are accepted; a shape mismatch raises
  local out2 = ops.stack_onehot(data, tensor.from_table({ 0, 1, 2, 0, 2, 1 }, { 1, 2, 3 }, "u8"), { 2 })
  local g2, want2 = out2:totable(), { 0, 0, 1, 0, 1, 0 }
  local bad2 = 0
  for i = 1, 6 do if g2[12 + i] ~= want2[i] then bad2 = bad2 + 1 end end
  check(#g2 == 18 and bad2 == 0, "u8 seg, label 2")
  check(not pcall(ops.stack_onehot, data, tensor.zeros({ 1, 2, 2 }, "i16"), { 1 }), "shape mismatch raises")
end

-- ---------------------------------------------------------------- 2. loader hook
local N = 10
local function case_tensors()
  local img, lab, prev = {}, {}, {}
  for z = 0, N - 1 do for y = 0, N - 1 do for x = 0, N - 1 do
    local inside = (z - 4.5) ^ 2 + (y - 5) ^ 2 + (x - 4) ^ 2 <= 9
    img[#img + 1] = (inside and 2 or 0) + 0.01 * ((z * 7 + y * 3 + x) % 11)
    lab[#lab + 1] = inside and 1 or 0
    prev[#prev + 1] = (z + 2 * y + x) % 3          -- labels 0, 1, 2 in a pattern
  end end end
  return tensor.from_table(img, { 1, N, N, N }), tensor.from_table(lab, { 1, N, N, N }, "i16"),
    tensor.from_table(prev, { 1, N, N, N }, "i16")
end

do -- no augmentation: one-hot = crop of prev (1-based corner lo, -1 padding -> 0)
  local data, seg, prev = case_tensors()
  local P = 6
  local ld = loader.new { batch_size = 3, patch = { P, P, P }, oversample = 0, seed = 7, workers = 0,
    onehot_labels = { 1, 2 } }
  ld:add_case(data, seg)
  ld:set_prev_seg(1, prev)
  local pv = prev:totable()
  for b = 1, 3 do
    local d, s, info = ld:next()
    check(table.concat(d:shape(), ",") == "3,3,6,6,6" and table.concat(s:shape(), ",") == "3,1,6,6,6",
      "batch shapes %s / %s", table.concat(d:shape(), ","), table.concat(s:shape(), ","))
    local dv = d:totable()
    local bad = 0
    for j = 1, 3 do
      local lo = info[j].lo
      for z = 0, P - 1 do for y = 0, P - 1 do for x = 0, P - 1 do
        local sz, sy, sx = lo[1] - 1 + z, lo[2] - 1 + y, lo[3] - 1 + x
        local v = -1
        if sz >= 0 and sz < N and sy >= 0 and sy < N and sx >= 0 and sx < N then
          v = pv[(sz * N + sy) * N + sx + 1]
        end
        for k = 1, 2 do
          local got = dv[((((j - 1) * 3 + k) * P + z) * P + y) * P + x + 1]
          if got ~= (v == k and 1 or 0) then bad = bad + 1 end
        end
      end end end
    end
    check(bad == 0, "batch %d: %d one-hot voxels differ from the cropped previous stage", b, bad)
  end
  ld:close()
  -- a cascade loader refuses a case without its previous-stage map
  local ld2 = loader.new { batch_size = 1, patch = { P, P, P }, seed = 1, workers = 0, onehot_labels = { 1 } }
  ld2:add_case(data, seg)
  check(not pcall(ld2.next, ld2), "missing previous stage raises")
  check(not pcall(ld2.set_prev_seg, ld2, 1, tensor.zeros({ 1, N, N, N - 1 }, "i16")), "prev shape checked")
  ld2:close()
end

do -- full v2 training pipeline, prev == label: the one-hot channel follows the label exactly
  local data, seg = case_tensors()
  local P = 8
  local setup = AP.setup { patch = { P, P, P }, trainer = "nnUNetTrainer", mask_channels = {} }
  local ld = loader.new { batch_size = 2, patch = { P, P, P }, initial_patch = setup.initial_patch, oversample = 0.5,
    seed = 11, workers = 1, pipeline = AP.build(setup.train), onehot_labels = { 1 } }
  ld:add_case(data, seg, { { values = { 1 }, coords = { { 5, 6, 5 }, { 4, 5, 4 } } } })
  ld:set_prev_seg(1, seg)
  local bad, fg = 0, 0
  for _ = 1, 12 do
    local d, s = ld:next()
    check(d:shape()[2] == 2, "2 data channels")
    local dv, sv = d:totable(), s:totable()
    local n = P * P * P
    for j = 0, 1 do
      for i = 1, n do
        local lab = sv[j * n + i]
        local oh = dv[(j * 2 + 1) * n + i]
        if lab == 1 then fg = fg + 1 end
        if oh ~= (lab == 1 and 1 or 0) then bad = bad + 1 end
      end
    end
  end
  ld:close()
  check(bad == 0, "augmented: %d voxels where one-hot(prev) differs from the augmented label", bad)
  check(fg > 0, "foreground sampled")
end

do -- cascade_aug: the morphology / component removal changes the one-hot channel at times
  -- (tests/test_cascade.c checks the values); the label is untouched (= the plain loader)
  local data, seg = case_tensors()
  local P = 8
  local setup = AP.setup { patch = { P, P, P }, trainer = "nnUNetTrainer", mask_channels = {} }
  local function mk(aug)
    local ld = loader.new { batch_size = 2, patch = { P, P, P }, initial_patch = setup.initial_patch, oversample = 0.5,
      seed = 5, workers = 0, pipeline = AP.build(setup.train), onehot_labels = { 1 }, cascade_aug = aug }
    ld:add_case(data, seg, { { values = { 1 }, coords = { { 5, 6, 5 }, { 4, 5, 4 } } } })
    ld:set_prev_seg(1, seg)
    return ld
  end
  local a, b = mk(true), mk(false)
  local changed, seg_diff = 0, 0
  for _ = 1, 16 do
    local da, sa = a:next()
    local db, sb = b:next()
    local va, vb, ta, tb = da:totable(), db:totable(), sa:totable(), sb:totable()
    for i = 1, #va do
      if va[i] ~= vb[i] then changed = changed + 1 end
    end
    for i = 1, #ta do if ta[i] ~= tb[i] then seg_diff = seg_diff + 1 end end
  end
  a:close(); b:close()
  check(changed > 0, "cascade_aug changed nothing in 16 batches")
  check(seg_diff == 0, "cascade_aug changed the label (%d voxels)", seg_diff)
end

-- ---------------------------------------------------------------- 3. end to end
local ROOT = TL.temp_root("_cascade")
local raw, pre, res = ROOT .. "/raw", ROOT .. "/pre", ROOT .. "/res"
local ts = ROOT .. "/imagesTs"
synth.write(raw .. "/Dataset996_CascadeSmoke", { cases = 6, size = 16, test_cases = 2, test_folder = ts })
local function nnunet(args)
  return TL.nnunet({ raw = raw, pre = pre, res = res, env = "nnUNet_n_proc_DA=1" }, args)
end
local T = "-num_epochs 1 -num_iterations_per_epoch 2 -num_val_iterations 1 --no_plot"

-- a small GPU budget shrinks the fullres patch; lowres_creation_threshold 0.6 (0.25 in
-- the reference) makes the 16^3 median "large" enough for a low-resolution stage
local code, out = nnunet("plan_and_preprocess -d 996 -c 3d_lowres 3d_fullres -np 2 -gpu_memory_target 0.002 "
  .. "--set lowres_creation_threshold=0.6 --no_fsync --quiet")
if not check(code == 0, "plan_and_preprocess exit %s:\n%s", tostring(code), out) then os.exit(1) end
local P = pre .. "/Dataset996_CascadeSmoke"
local plans = json.decode_file(P .. "/nnUNetPlans.json")
local C = plans.configurations
if not check(C["3d_lowres"] and C["3d_cascade_fullres"], "plans have 3d_lowres and 3d_cascade_fullres") then os.exit(1) end
check(C["3d_lowres"].next_stage == "3d_cascade_fullres", "3d_lowres.next_stage")
check(C["3d_cascade_fullres"].previous_stage == "3d_lowres" and C["3d_cascade_fullres"].inherits_from == "3d_fullres",
  "3d_cascade_fullres links")

local t0 = sys.clock()
code, out = nnunet("train -d 996 -c 3d_lowres -f all " .. T)
io.stderr:write(string.format("3d_lowres fold all: %.1f s\n", sys.clock() - t0))
if not check(code == 0, "train 3d_lowres exit %s:\n%s", tostring(code), out) then os.exit(1) end
local R = res .. "/Dataset996_CascadeSmoke"
local NS = R .. "/nnUNetTrainer__nnUNetPlans__3d_lowres/predicted_next_stage/3d_cascade_fullres"
local pp = require("nnunet.preproc_case")
for i = 1, 6 do
  local id = string.format("sph_%03d", i)
  local t = infer.load_npz(NS .. "/" .. id .. ".npz", "seg")
  if check(t ~= nil, "predicted_next_stage %s.npz", id) then
    local st = pp.open(P .. "/" .. C["3d_fullres"].data_identifier .. "/" .. id .. ".nnu")
    local want = st:info().shape
    st:close()
    check(table.concat(t:shape(), ",") == table.concat(want, ","), "%s: next-stage shape %s, fullres %s", id,
      table.concat(t:shape(), ","), table.concat(want, ","))
    check(t:dtype() == "u8" and t:min() >= 0 and t:max() <= 1, "%s: u8 labels", id)
    t:release()
  end
end

t0 = sys.clock()
code, out = nnunet("train -d 996 -c 3d_cascade_fullres -f 0 " .. T)
io.stderr:write(string.format("3d_cascade_fullres fold 0: %.1f s\n", sys.clock() - t0))
check(code == 0, "train 3d_cascade_fullres exit %s:\n%s", tostring(code), out)
local F = R .. "/nnUNetTrainer__nnUNetPlans__3d_cascade_fullres/fold_0"
check(fs.isfile(F .. "/checkpoint_final.pth"), "cascade checkpoint_final")
local s = json.decode_file(F .. "/validation/summary.json")
check(s and #s.metric_per_case == 2, "cascade validation summary")
check(out:find("shape %[2, ") ~= nil, "validation input has 2 channels (image + one-hot)")

code, out = nnunet(string.format("predict -i %s -o %s -d 996 -c 3d_lowres -f all --disable_tta --disable_progress_bar",
  sh(ts), sh(ROOT .. "/low")))
check(code == 0, "predict 3d_lowres exit %s:\n%s", tostring(code), out)
code, out = nnunet(string.format("predict -i %s -o %s -d 996 -c 3d_cascade_fullres -f 0 --disable_tta "
  .. "--disable_progress_bar -prev_stage_predictions %s", sh(ts), sh(ROOT .. "/casc"), sh(ROOT .. "/low")))
check(code == 0, "predict 3d_cascade_fullres exit %s:\n%s", tostring(code), out)
local args = json.decode_file(ROOT .. "/casc/predict_from_raw_data_args.json")
check(args and args.folder_with_segs_from_prev_stage == ROOT .. "/low", "args record the previous stage folder")
-- without -prev_stage_predictions the previous stage runs first with the same folds
-- (here fold 0, so 3d_lowres fold 0 is trained too)
code, out = nnunet("train -d 996 -c 3d_lowres -f 0 " .. T)
check(code == 0, "train 3d_lowres fold 0 exit %s:\n%s", tostring(code), out)
code, out = nnunet(string.format("predict -i %s -o %s -d 996 -c 3d_cascade_fullres -f 0 --disable_tta "
  .. "--disable_progress_bar", sh(ts), sh(ROOT .. "/casc2")))
check(code == 0, "predict cascade without -prev_stage_predictions exit %s:\n%s", tostring(code), out)
check(fs.isfile(ROOT .. "/casc2_prev_stage/test_001.nii.gz") and fs.isfile(ROOT .. "/casc2/test_002.nii.gz"),
  "previous stage predicted into OUTPUT_prev_stage, then the cascade")
for i = 1, 2 do
  local ti, ii = nifti.read(string.format("%s/test_%03d_0000.nii.gz", ts, i))
  local tp, ip = nifti.read(string.format("%s/casc/test_%03d.nii.gz", ROOT, i))
  if check(tp ~= nil, "cascade prediction %d", i) then
    check(table.concat(ip.shape, ",") == table.concat(ii.shape, ",") and math.abs(ip.origin[1] - ii.origin[1]) < 1e-5,
      "cascade prediction %d geometry", i)
    check(tp:max() <= 1, "labels")
    tp:release()
  end
  ti:release()
end

TL.finish("test_cascade", ROOT)
