-- nnunet.cascade: the 3d_lowres -> 3d_cascade_fullres link (nnunet-behaviour.md §7.7,
-- §9.1, §9.4, Appendix I), used by recipes/train.lua and nnunet.predictor.
--
--   local cascade = require("nnunet.cascade")
--   cascade.previous_stage(conf)            -> "3d_lowres" | nil   (conf resolved)
--   cascade.next_stages(conf)               -> { "3d_cascade_fullres", ... } (may be empty)
--   cascade.prev_stage_dir(results_dataset_dir, trainer, plans, prev_config, config)
--       -> <results>/<trainer>__<plans>__<prev_config>/predicted_next_stage/<config>
--   cascade.load_prev_seg(dir, id)          -> (1, D, H, W) tensor of CASE.npz['seg'] (raises if missing)
--   cascade.attach(loader, ids, dir)        every case i of a loader gets ld:set_prev_seg(i, seg)
--   cascade.stack(data, seg, labels)        -> (C + #labels, D, H, W): image + one-hot of seg
--   cascade.write_next_stages(opts, id, logits)   the low-res stage's final validation hook
--   cascade.prefetch(model, cases, prev_folder)   nnunet.predictor's case source for a cascade
--
-- File format of predicted_next_stage/<config>/CASE.npz: as the reference, an .npz with
-- one member 'seg' (uint8, or uint16 with >= 255 foreground labels), the argmax of the
-- low-res logits resampled (probability resampler, order 1 / order_z 0) directly to the
-- next stage's preprocessed shape (D, H, W) (transposed, cropped, resampled space).
local export = require("nnunet.export")
local fs = require("nnunet.fs")
local infer = require("nnunet.infer")
local ops = require("nnunet.cascade_ops")

local M = {}

local function user_error(fmt, ...)
  error({ user_error = true, message = string.format(fmt, ...) }, 0)
end

local function join(a, b) return (a:gsub("/+$", "")) .. "/" .. b end

function M.previous_stage(conf)
  local p = conf and conf.previous_stage
  if type(p) == "string" and p ~= "" then return p end
  return nil
end

-- next_stage may be a string or a list (§13.1)
function M.next_stages(conf)
  local n = conf and conf.next_stage
  if type(n) == "string" then return { n } end
  if type(n) == "table" then
    local out = {}
    for i, v in ipairs(n) do out[i] = v end
    return out
  end
  return {}
end

function M.prev_stage_dir(results_dataset_dir, trainer, plans, prev_config, config)
  return join(join(join(results_dataset_dir, string.format("%s__%s__%s", trainer, plans, prev_config)),
    "predicted_next_stage"), config)
end

function M.load_prev_seg(dir, id)
  local path = join(dir, id .. ".npz")
  if not fs.isfile(path) then
    user_error("the previous stage's prediction '%s' is missing: train all folds of the previous stage "
      .. "(its final validation writes predicted_next_stage/) before the cascade stage", path)
  end
  local t, err = infer.load_npz(path, "seg")
  if not t then user_error("cannot read %s: %s", path, tostring(err)) end
  local s = t:shape()
  if #s == 3 then return t:reshape({ 1, s[1], s[2], s[3] }) end
  return t
end

-- loader cases were added in the order of ids
function M.attach(loader, ids, dir)
  for i, id in ipairs(ids) do
    local seg = M.load_prev_seg(dir, id)
    loader:set_prev_seg(i, seg)
    seg:release()
  end
end

function M.stack(data, seg, labels)
  return ops.stack_onehot(data, seg, labels)
end

local function ints(t)
  local out = {}
  for i, v in ipairs(t) do out[i] = math.tointeger(v) or v end
  return out
end

-- The low-res stage's final validation (§9.4): logits (K, D, H, W) of case `id` in its
-- own preprocessed space -> for every next stage, the argmax of the logits resampled to
-- that stage's preprocessed shape, into <model>/predicted_next_stage/<next>/<id>.npz.
-- o = { model_base, pre_dir, plans, conf (this stage, resolved), resolve = function(name)
--       -> resolved conf, export = export opts (regions, resampling kwargs), log = fn(line) }
-- A next stage whose preprocessed case is missing is logged and skipped (as the reference).
-- As the reference (resample_and_save), the spacing passed to the resampler is this
-- stage's spacing for both sides, so only the separate-z decision depends on it.
local function write_next_stage(o, nxt, shape, id, logits)
  local sp = ints(o.conf.spacing)
  local bbox = { { 0, shape[1] }, { 0, shape[2] }, { 0, shape[3] } }
  local props = export.props({
    spacing = sp, spacing_transposed = sp, target_spacing = sp, shape_before_cropping = shape,
    shape_after_cropping_and_before_resampling = shape, shape_after_resampling = shape, bbox_used_for_cropping = bbox,
  })
  local xo = {}
  for k, v in pairs(o.export) do xo[k] = v end
  xo.transpose_forward = { 0, 1, 2 }                -- stay in the preprocessed (transposed) space
  local seg = export.case(logits, props, xo)
  local dir = join(join(o.model_base, "predicted_next_stage"), nxt)
  assert(fs.mkdir(dir))
  local tmp = join(dir, id .. ".tmp.npz")
  local ok, werr = infer.save_npz(tmp, "seg", seg)
  seg:release()
  if not ok then error(string.format("cannot write %s: %s", tmp, tostring(werr)), 0) end
  assert(os.rename(tmp, join(dir, id .. ".npz")))
end

function M.write_next_stages(o, id, logits)
  local pp = require("nnunet.preproc_case")
  local log = o.log or function(s) io.stderr:write(s, "\n") end
  for _, nxt in ipairs(M.next_stages(o.conf)) do
    local nconf = o.resolve(nxt)
    if not nconf then user_error("next stage '%s' is not in the plans", nxt) end
    local store = pp.open(join(join(o.pre_dir, nconf.data_identifier), id .. ".nnu"))
    if store then
      local shape = ints(store:info().shape)
      store:close()
      write_next_stage(o, nxt, shape, id, logits)
    else   -- as the reference: logged, and the case is skipped for that stage
      log(string.format("Predicting next stage %s failed for case %s because the preprocessed file is missing! "
        .. "Run the preprocessing for this configuration first!", nxt, id))
    end
  end
end

-- The case source of nnunet.predictor for a cascade stage (§9.1, Appendix I): each
-- case's previous-stage segmentation <prev_folder>/<id><ending> is preprocessed with
-- the image like a label (transpose, crop with the image's box, per-label linear
-- resampling to the stage's spacing), one-hot encoded for the foreground labels and
-- stacked after the image channels. Same interface as export.prefetch (synchronous).
function M.prefetch(model, cases, prev_folder)
  local pp = require("nnunet.preproc_case")
  local labels = model.lm.foreground_labels
  for _, c in ipairs(cases) do
    local p = join(prev_folder, c.id .. model.file_ending)
    if not fs.isfile(p) then
      user_error("cascade: the previous stage's segmentation '%s' is missing (-prev_stage_predictions)", p)
    end
  end
  local i = 0
  local src = {}
  function src.next()
    i = i + 1
    local c = cases[i]
    if not c then return nil end
    local t0 = os.clock()
    local data, seg, pt = pp.run_case(model.preproc_cfg, c.images, join(prev_folder, c.id .. model.file_ending))
    local stacked = M.stack(data, seg, labels)
    data:release()
    seg:release()
    local props = export.props(pt, c.images[1], { reader = model.reader })
    return i, stacked, props, os.clock() - t0
  end
  function src.close() end
  return setmetatable(src, { __close = function() end })
end

return M
