-- rules/patch.lua: initial patch size and the patch-reduction loop of
-- `get_plans_for_configuration` (nnunet-behaviour.md §5.5 steps 1-6). Pure (R30).
-- Sibling rules (topology, vram, network, batch) arrive in the argument `r`, so a user
-- override of any of them is honoured here.
local M = { name = "patch", version = 2 }

-- isotropic-in-mm box with the voxel count of edge^d, rounded half-even, clipped to median;
-- second result: the box before clipping
function M.initial_patch(spacing, median, cfg)
  local d = #spacing
  local tmp = {}
  for a = 1, d do tmp[a] = 1 / spacing[a] end
  local volume
  if d == 3 then
    volume = cfg.initial_patch_edge_3d * cfg.initial_patch_edge_3d * cfg.initial_patch_edge_3d
  elseif d == 2 then
    volume = cfg.initial_patch_edge_2d * cfg.initial_patch_edge_2d
  else
    error("patch.initial_patch: spacing must have 2 or 3 axes, got " .. d, 0)
  end
  local scale = (volume / util.prod(tmp)) ^ (1 / d)
  local out, raw = {}, {}
  for a = 1, d do
    local p = util.round(tmp[a] * scale)
    raw[a] = p
    -- Python min(i, j) keeps i on ties; the median may be x.5 (padding makes it integral)
    if median[a] < p then p = median[a] end
    out[a] = p
  end
  return out, raw
end

local function describe_topology(top)
  local function list(vs)
    local out = {}
    for i, v in ipairs(vs) do out[i] = util.vec(v) end
    return table.concat(out, " ")
  end
  return string.format("%d stages, strides %s, kernels %s, divisor %s", #top.strides, list(top.strides),
    list(top.kernel_sizes), util.vec(top.divisor))
end

-- spacing, median: per-axis (transposed) lists; num_classes = len(dataset.json labels)
-- r: { topology=, vram=, network=, batch= } rule modules; num_channels (input channels) is
-- passed for rule sets whose estimate counts the input (2018) and unused here
-- returns { patch_size, topology, features, n_conv_enc, n_conv_dec, estimate, reference, ref_bs }
function M.plan(spacing, median, num_classes, cfg, r)
  local d = #spacing
  for a = 1, d do
    if not (spacing[a] > 0) then error("patch.plan: spacing must be > 0 on every axis", 0) end
  end
  local min_fm, max_numpool = cfg.featuremap_min_edge_length, cfg.max_numpool
  local function topo(p) return r.topology.pool_and_conv_props(spacing, p, min_fm, max_numpool) end
  -- residual encoder (cfg.n_blocks_per_stage_encoder set, §5.8): blocks per stage instead
  -- of convs per stage, and its own feature-map count
  local residual = cfg.n_blocks_per_stage_encoder and true or false
  local function net(top)
    local n = #top.strides
    local f = r.network.features_per_stage(n, d, cfg)
    local dec = util.slice(cfg.n_conv_per_stage_decoder, 1, n - 1)
    if residual then
      local blocks = util.slice(cfg.n_blocks_per_stage_encoder, 1, n)
      return f, blocks, dec, r.vram.estimate_residual(top.patch_size, top.strides, f, blocks, dec, num_classes)
    end
    local enc = util.slice(cfg.n_conv_per_stage_encoder, 1, n)
    return f, enc, dec, r.vram.estimate(top.patch_size, top.strides, f, enc, dec, num_classes)
  end

  local initial, unclipped = M.initial_patch(spacing, median, cfg)
  local top = topo(initial)
  local features, enc, dec, estimate = net(top)
  local reference = r.batch.reference(d, cfg)
  local ref_bs = r.batch.reference_batch_size(d, cfg)
  -- the default planner compares the estimate scaled to a batch of 2 (3D: the estimate
  -- itself; 2D: estimate/6); the residual-encoder planners compare the estimate itself
  local per_ref_bs = cfg.reduction_per_ref_bs
  local function too_big(e)
    if per_ref_bs then return e / ref_bs * 2 > reference end
    return e > reference
  end
  local explain = util.explaining(cfg)
  if explain then
    util.note(cfg, "initial patch %s (%d^%d voxels, isotropic in mm) clipped to the median %s -> %s",
      util.vec(unclipped), d == 3 and cfg.initial_patch_edge_3d or cfg.initial_patch_edge_2d, d,
      util.vec(median), util.vec(initial))
    util.note(cfg, "topology: %s -> patch padded to %s", describe_topology(top), util.vec(top.patch_size))
    util.note(cfg, "memory budget %s = %s x %s/%s GB; features %s; estimate %s%s", util.num(reference),
      util.num(d == 2 and cfg.reference_val_2d or cfg.reference_val_3d), util.num(cfg.gpu_memory_target),
      util.num(cfg.reference_gpu_memory), util.vec(features), util.num(estimate),
      (per_ref_bs and ref_bs ~= 2) and string.format(" (compared as estimate/%s x 2 = %s)", util.num(ref_bs),
        util.num(estimate / ref_bs * 2)) or "")
  end
  -- shrink the axis that is largest relative to the median until the estimate fits
  while too_big(estimate) do
    local patch = top.patch_size
    local ratios = {}
    for a = 1, d do ratios[a] = patch[a] / median[a] end
    local axis = util.argmax_last(ratios)
    -- subtract the divisor recomputed for (patch - old divisor): 256 -> 224, not 192
    local tmp = util.copy(patch)
    tmp[axis] = tmp[axis] - top.divisor[axis]
    local step = topo(tmp).divisor[axis]
    local new_patch = util.copy(patch)
    new_patch[axis] = new_patch[axis] - step
    if new_patch[axis] <= 0 then
      error("patch.plan: cannot fit a patch into the memory target (axis " .. axis .. ")", 0)
    end
    local before = estimate
    top = topo(new_patch)
    features, enc, dec, estimate = net(top)
    if explain then
      util.note(cfg, "  too large (%s): shrink %s (largest patch/median ratio %.4g) by %s -> patch %s, estimate %s",
        util.num(before), util.axis_name(axis, d), ratios[axis], util.num(step), util.vec(top.patch_size),
        util.num(estimate))
    end
  end
  if explain then
    util.note(cfg, "patch %s fits the budget: %d stages, divisor %s", util.vec(top.patch_size), #top.strides,
      util.vec(top.divisor))
  end
  return {
    patch_size = top.patch_size, topology = top, features = features,
    n_conv_enc = enc, n_conv_dec = dec, estimate = estimate,
    reference = reference, ref_bs = ref_bs,
  }
end

return M
