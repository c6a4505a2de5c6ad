-- rules/patch.lua: initial patch size and the patch-reduction loop of
-- `get_plans_for_configuration` (nnunet-behaviour.md §5.5 steps 1-6). Pure (R30).
-- Sibling rules (topology, vram, network, batch) arrive in the argument `r`, so a user
-- override of any of them is honoured here.
local M = { name = "patch", version = 1 }

-- isotropic-in-mm box with the voxel count of edge^d, rounded half-even, clipped to median
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
  local out = {}
  for a = 1, d do
    local p = util.round(tmp[a] * scale)
    -- Python min(i, j) keeps i on ties; the median may be x.5 (padding makes it integral)
    if median[a] < p then p = median[a] end
    out[a] = p
  end
  return out
end

-- spacing, median: per-axis (transposed) lists; num_classes = len(dataset.json labels)
-- r: { topology=, vram=, network=, batch= } rule modules
-- returns { patch_size, topology, features, n_conv_enc, n_conv_dec, estimate, reference, ref_bs }
function M.plan(spacing, median, num_classes, cfg, r)
  local d = #spacing
  for a = 1, d do
    if not (spacing[a] > 0) then error("patch.plan: spacing must be > 0 on every axis", 0) end
  end
  local min_fm, max_numpool = cfg.featuremap_min_edge_length, cfg.max_numpool
  local function topo(p) return r.topology.pool_and_conv_props(spacing, p, min_fm, max_numpool) end
  local function net(top)
    local n = #top.strides
    local f = r.network.features_per_stage(n, d, cfg)
    local enc = util.slice(cfg.n_conv_per_stage_encoder, 1, n)
    local dec = util.slice(cfg.n_conv_per_stage_decoder, 1, n - 1)
    return f, enc, dec, r.vram.estimate(top.patch_size, top.strides, f, enc, dec, num_classes)
  end

  local top = topo(M.initial_patch(spacing, median, cfg))
  local features, enc, dec, estimate = net(top)
  local reference = r.batch.reference(d, cfg)
  local ref_bs = r.batch.reference_batch_size(d, cfg)
  -- shrink the axis that is largest relative to the median until the estimate fits
  while estimate / ref_bs * 2 > reference do
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
    top = topo(new_patch)
    features, enc, dec, estimate = net(top)
  end
  return {
    patch_size = top.patch_size, topology = top, features = features,
    n_conv_enc = enc, n_conv_dec = dec, estimate = estimate,
    reference = reference, ref_bs = ref_bs,
  }
end

return M
