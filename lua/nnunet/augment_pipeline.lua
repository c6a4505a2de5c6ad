-- nnunet.augment_pipeline: the training augmentation pipelines as plain data
-- (nnunet-behaviour.md §8). A pipeline is a description table -- order, probabilities,
-- ranges -- that nnunet.augment.pipeline(desc) turns once into a C table which the
-- loader's worker threads execute per sample. Edit a copy of a description (or write
-- a new one) to change the augmentation without rebuilding anything.
--
--   local AP = require("nnunet.augment_pipeline")
--   local cfg = AP.configure({40, 56, 40})          -- §8.1: rotation, dummy-2D, mirror, initial patch
--   local desc = AP.v2(cfg)                          -- §8.2, the reference v2 pipeline
--   local pipe = AP.build(desc)                      -- nnunet.AugPipeline for nnunet.loader
--   AP.setup{patch = {40, 56, 40}, trainer = "nnUNetTrainer"} -> {train =, val =, initial_patch =, ...}
--
-- Description format (all keys optional unless said; spatial axes 1 = D, 2 = H, 3 = W):
--   { dim = 2|3, dummy_2d = bool, patch = {...} (required, `dim` entries), steps = {
--       {kind = "spatial", p_rotation =, rotation = {{lo,hi},{lo,hi},{lo,hi}} (radians,
--          about axes 1, 2, 3; 2-D and dummy-2D use the third), p_scaling =, scaling =
--          {lo, hi [, bg = true]}, p_elastic =, alpha = {lo, hi}, sigma = {lo, hi},
--          seg = "linear"|"nearest", border_seg = -1}       (first step; always runs)
--       {kind = "noise"|"blur"|"brightness"|"contrast"|"lowres"|"gamma", p =,
--          p_per_channel =, range = {lo, hi [, bg = true]}, sync_channels =, sync_axes =,
--          p_invert =, p_retain_stats =, preserve_range =}
--       {kind = "mirror", axes = {1, 2, 3}, p_per_axis = 0.5}
--       {kind = "mask", axes = {channels...}}   {kind = "remove_label", from = -1, to = 0} } }
-- `p` is the probability that a step fires for a sample; `bg = true` samples a range
-- the batchgenerators BGContrast way (half below 1, half above).
local augment = require("nnunet.augment")

local M = {}

local ANISO_THRESHOLD = 3          -- nnunetv2/configuration.py
local function rad(deg) return deg / 360 * 2 * math.pi end

local function max_of(t)
  local m = -math.huge
  for _, v in ipairs(t) do if v > m then m = v end end
  return m
end
local function min_of(t)
  local m = math.huge
  for _, v in ipairs(t) do if v < m then m = v end end
  return m
end

-- §8.1 configure_rotation_dummyDA_mirroring_and_inital_patch_size.
-- patch: {z, y, x} or {y, x}. Returns {dim, patch, rotation (max angle, radians),
-- dummy_2d, mirror_axes (0-based, the reference's inference_allowed_mirroring_axes),
-- mirror (1-based spatial axes of our (D, H, W) layout), initial_patch}.
-- opts.rotation_deg overrides the angle; opts.scale_min (0.85) the divisor.
function M.configure(patch, opts)
  opts = opts or {}
  local dim = #patch
  assert(dim == 2 or dim == 3, "configure: patch must have 2 or 3 entries")
  local rot, dummy, mirror_axes, mirror
  if dim == 2 then
    dummy = false
    rot = (max_of(patch) / min_of(patch) > 1.5) and rad(15) or rad(180)
    mirror_axes, mirror = { 0, 1 }, { 2, 3 }
  else
    dummy = max_of(patch) / patch[1] > ANISO_THRESHOLD
    rot = dummy and rad(180) or rad(30)
    mirror_axes, mirror = { 0, 1, 2 }, { 1, 2, 3 }
  end
  if opts.rotation_deg then rot = rad(opts.rotation_deg) end
  local rot_axes = opts.rotation_axes or { rot, rot, rot }
  return {
    dim = dim, patch = { table.unpack(patch) }, rotation = rot, dummy_2d = dummy,
    mirror_axes = mirror_axes, mirror = mirror,
    initial_patch = augment.initial_patch_size(patch, rot_axes, opts.scale_min or 0.85, dummy),
  }
end

-- optional MaskImage step (use_mask_for_norm channels, 1-based)
local function mask_step(cfg)
  if cfg.mask_channels and #cfg.mask_channels > 0 then
    return { kind = "mask", axes = cfg.mask_channels }
  end
end

-- MirrorTransform over cfg.mirror (1-based spatial axes), only when there is an axis to
-- mirror: the reference appends none when mirror_axes is None or empty (the NoMirroring
-- trainers set it so)
local function mirror_step(steps, cfg)
  if cfg.mirror and #cfg.mirror > 0 then
    steps[#steps + 1] = { kind = "mirror", axes = cfg.mirror, p_per_axis = 0.5 }
  end
end

-- §8.2: the reference v2 training pipeline (nnUNetTrainer.get_training_transforms).
function M.v2(cfg)
  local r = cfg.rotation
  local steps = {
    { kind = "spatial", p_rotation = 0.2, rotation = { { -r, r }, { -r, r }, { -r, r } },
      p_scaling = 0.2, scaling = { 0.7, 1.4 }, p_elastic = 0, seg = "linear", border_seg = -1 },
    { kind = "noise", p = 0.1, range = { 0, 0.1 }, sync_channels = true },
    { kind = "blur", p = 0.2, p_per_channel = 0.5, range = { 0.5, 1.0 }, sync_axes = false },
    { kind = "brightness", p = 0.15, range = { 0.75, 1.25, bg = true } },
    { kind = "contrast", p = 0.15, range = { 0.75, 1.25, bg = true }, preserve_range = true },
    { kind = "lowres", p = 0.25, p_per_channel = 0.5, range = { 0.5, 1.0 } },
    { kind = "gamma", p = 0.1, range = { 0.7, 1.5, bg = true }, p_invert = 1, p_retain_stats = 1 },
    { kind = "gamma", p = 0.3, range = { 0.7, 1.5, bg = true }, p_invert = 0, p_retain_stats = 1 },
  }
  mirror_step(steps, cfg)
  local m = mask_step(cfg)
  if m then steps[#steps + 1] = m end
  steps[#steps + 1] = { kind = "remove_label", from = -1, to = 0 }
  return { dim = cfg.dim, dummy_2d = cfg.dummy_2d, patch = cfg.patch, steps = steps }
end

-- §8.3 [v1-orig]/[2018]: elastic deformation (p 0.2; alpha (0, 900), sigma (9, 13) in
-- 3-D, alpha (0, 200) in 2-D and dummy-2D), rotation (p 0.2) ±15° in 3-D (±180° in-plane
-- for 2-D and dummy-2D), scaling (0.85, 1.25) BG-style (p 0.2), gamma (0.7, 1.5) p 0.3
-- with retained statistics, mirroring. Data are interpolated linearly (the 2018 code
-- used cubic; see docs/augmentation.md).
function M.configure_2018(patch)
  local dim = #patch
  local dummy = dim == 3 and max_of(patch) / patch[1] > ANISO_THRESHOLD
  local rot = (dim == 2 or dummy) and rad(180) or rad(15)
  local rot_axes = (dim == 3 and not dummy) and { rot, rot, rot } or { rot, 0, 0 }
  return {
    dim = dim, patch = { table.unpack(patch) }, rotation = rot, dummy_2d = dummy,
    mirror_axes = dim == 2 and { 0, 1 } or { 0, 1, 2 }, mirror = dim == 2 and { 2, 3 } or { 1, 2, 3 },
    initial_patch = augment.initial_patch_size(patch, rot_axes, 0.85, dummy),
  }
end

function M.v2018(cfg)
  local r = cfg.rotation
  local in_plane = cfg.dim == 2 or cfg.dummy_2d
  local rotation = in_plane and { { 0, 0 }, { 0, 0 }, { -r, r } } or { { -r, r }, { -r, r }, { -r, r } }
  local steps = {
    { kind = "spatial", p_rotation = 0.2, rotation = rotation, p_scaling = 0.2,
      scaling = { 0.85, 1.25, bg = true }, p_elastic = 0.2,
      alpha = in_plane and { 0, 200 } or { 0, 900 }, sigma = { 9, 13 }, seg = "linear", border_seg = -1 },
    { kind = "gamma", p = 0.3, range = { 0.7, 1.5, bg = true }, p_invert = 0, p_retain_stats = 1 },
  }
  mirror_step(steps, cfg)
  local m = mask_step(cfg)
  if m then steps[#steps + 1] = m end
  steps[#steps + 1] = { kind = "remove_label", from = -1, to = 0 }
  return { dim = cfg.dim, dummy_2d = cfg.dummy_2d, patch = cfg.patch, steps = steps }
end

-- Validation batches: no spatial or intensity augmentation, crops at the patch size.
function M.validation(cfg)
  local steps = {}
  local m = mask_step(cfg)
  if m then steps[#steps + 1] = m end
  steps[#steps + 1] = { kind = "remove_label", from = -1, to = 0 }
  return { dim = cfg.dim, dummy_2d = cfg.dummy_2d, patch = cfg.patch, steps = steps }
end

M.build = augment.pipeline

-- Everything a trainer needs: setup{patch =, pipeline = "v2" | "2018" | function(AP, cfg)
-- -> description, mask_channels = {...}} -> {cfg, train = desc, val = desc,
-- initial_patch, mirror_axes}. Both descriptions are plain tables; build them with
-- M.build. (`trainer = "nnUNetTrainer2018"` is the older spelling of pipeline = "2018";
-- the trainer definitions of lua/nnunet/trainers/ name their pipeline.) A function
-- pipeline gets the v2 configuration (§8.1) and may change it before describing the
-- pipeline, as the reference's overrides of configure_rotation_dummyDA_mirroring_and_
-- inital_patch_size do (the trainer variants of lua/nnunet/trainers.lua): what it leaves
-- in cfg.initial_patch, cfg.mirror_axes (the inference mirror axes) and cfg.dummy_2d is
-- what the loader, the checkpoint and the log use.
function M.setup(args)
  local pipe = args.pipeline or (args.trainer == "nnUNetTrainer2018" and "2018" or "v2")
  local is2018 = pipe == "2018"
  assert(is2018 or pipe == "v2" or type(pipe) == "function",
    "augment_pipeline.setup: pipeline must be 'v2', '2018' or a function")
  local cfg = is2018 and M.configure_2018(args.patch) or M.configure(args.patch)
  cfg.mask_channels = args.mask_channels
  local train = type(pipe) == "function" and pipe(M, cfg) or (is2018 and M.v2018(cfg) or M.v2(cfg))
  return {
    cfg = cfg,
    train = train,
    val = M.validation(cfg),
    initial_patch = cfg.initial_patch,
    mirror_axes = cfg.mirror_axes,
  }
end

return M
