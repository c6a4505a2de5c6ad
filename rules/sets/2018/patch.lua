-- rules/sets/2018/patch.lua: patch size of the original code ([v1-orig] ExperimentPlanner,
-- nnunet-behaviour.md §5.9). Pure (R30).
--   3D: initial patch = 1/spacing normalised by its mean, scaled so that its smallest entry is
--       512, rounded half-even, clipped to the median shape; then, while the v1 estimate
--       exceeds the 12 GB reference (520,000,000), the axis with the largest patch/median
--       ratio (highest index on ties) shrinks by its recomputed divisor (as v2).
--   2D: patch = the median in-plane shape (padded), no reduction (the batch absorbs it).
local M = { name = "patch", version = 1 }

function M.initial_patch(spacing, median, cfg)
  local d = #spacing
  if d == 2 then return util.copy(median), util.copy(median) end
  local tmp = {}
  for a = 1, d do tmp[a] = 1 / spacing[a] end
  local mean = 0
  for a = 1, d do mean = mean + tmp[a] end
  mean = mean / d
  for a = 1, d do tmp[a] = tmp[a] / mean end
  local scale = 1 / util.min(tmp) * 512
  local out, raw = {}, {}
  for a = 1, d do
    raw[a] = util.round(tmp[a] * scale)
    out[a] = median[a] < raw[a] and median[a] or raw[a]
  end
  return out, raw
end

function M.plan(spacing, median, num_classes, cfg, r, num_channels)
  local d = #spacing
  local min_fm, max_numpool = cfg.featuremap_min_edge_length, cfg.max_numpool
  local maxf = d == 2 and cfg.max_features_2d or cfg.max_features_3d
  local function topo(p) return r.topology.pool_and_conv_props(spacing, p, min_fm, max_numpool) end
  local function est(top)
    return r.vram.estimate_v1(top.patch_size, top.strides, cfg.base_num_features, maxf, num_channels or 1,
      num_classes, 2)
  end
  local initial, raw = M.initial_patch(spacing, median, cfg)
  local top = topo(initial)
  local estimate = est(top)
  local reference = r.batch.reference(d, cfg)
  util.note(cfg, "initial patch %s clipped to the median %s -> %s; "
    .. "pool late: %d stages, divisor %s -> patch %s; estimate %s (v1 formula, base %s) vs budget %s",
    d == 2 and "= median (2018 2D)" or (util.vec(raw) .. " (2018: smallest edge 512, isotropic in mm)"),
    util.vec(median), util.vec(initial), #top.strides, util.vec(top.divisor), util.vec(top.patch_size),
    util.num(estimate), util.num(cfg.base_num_features), util.num(reference))
  while d == 3 and estimate > reference do
    local patch = top.patch_size
    local ratios = {}
    for a = 1, d do ratios[a] = patch[a] / median[a] end
    local axis = util.argmax_last(ratios)
    local tmp = util.copy(patch)
    tmp[axis] = tmp[axis] - top.divisor[axis]
    local step = topo(tmp).divisor[axis]
    local new_patch = util.copy(patch)
    new_patch[axis] = new_patch[axis] - step
    if new_patch[axis] <= 0 then
      error("patch.plan: cannot fit a patch into the memory target (axis " .. axis .. ")", 0)
    end
    top = topo(new_patch)
    estimate = est(top)
    util.note(cfg, "  too large: shrink %s (largest patch/median ratio %.4g) by %s -> patch %s, estimate %s",
      util.axis_name(axis, d), ratios[axis], util.num(step), util.vec(top.patch_size), util.num(estimate))
  end
  local n = #top.strides
  local enc, dec = util.slice(cfg.n_conv_per_stage_encoder, 1, n), util.slice(cfg.n_conv_per_stage_decoder, 1, n - 1)
  return {
    patch_size = top.patch_size, topology = top, features = r.network.features_per_stage(n, d, cfg),
    n_conv_enc = enc, n_conv_dec = dec, estimate = estimate, reference = reference,
    ref_bs = r.batch.reference_batch_size(d, cfg),
  }
end

return M
