-- rules/lowres.lua: 3d_lowres creation for the cascade (nnunet-behaviour.md §5.6). Pure (R30).
local M = { name = "lowres", version = 2 }

-- one spacing step: multiply only the axes with max/s > factor if any, else all axes.
-- Repeated multiplication, one factor per step (never s * f^k: the last bits differ).
function M.step(spacing, cfg)
  local mx = util.max(spacing)
  local aniso = false
  for a = 1, #spacing do
    if mx / spacing[a] > cfg.lowres_anisotropy_factor then aniso = true end
  end
  local out = {}
  for a = 1, #spacing do
    if not aniso or mx / spacing[a] > cfg.lowres_anisotropy_factor then
      out[a] = spacing[a] * cfg.lowres_spacing_increase_factor
    else
      out[a] = spacing[a]
    end
  end
  return out
end

-- fullres_spacing, fullres_patch, median_full: transposed 3d_fullres spacing, patch, median
-- plan_fn(spacing, median_int, n_voxels_dataset) -> plan with .patch_size
-- returns nil (no lowres) or { spacing, median (integers), n_voxels, plan, steps }
function M.search(fullres_spacing, fullres_patch, median_full, num_training, plan_fn, cfg)
  local median_vox = util.prod(util.floats(median_full))
  local patch_vox = util.prod(util.floats(fullres_patch))
  local spacing = util.floats(fullres_spacing)
  local result, steps = nil, 0
  local cover0 = patch_vox / median_vox
  if cover0 >= cfg.lowres_creation_threshold then
    util.note(cfg, "the fullres patch covers %.4g %% of the median image (>= %s %%) -> no cascade",
      cover0 * 100, util.num(cfg.lowres_creation_threshold * 100))
    return nil
  end
  while patch_vox / median_vox < cfg.lowres_creation_threshold do
    spacing = M.step(spacing, cfg)
    steps = steps + 1
    local scaled = {}
    for a = 1, #spacing do scaled[a] = fullres_spacing[a] / spacing[a] * median_full[a] end
    median_vox = util.prod(scaled)
    local median = util.map(scaled, function(v) return util.to_int(util.round(v)) end)
    local n_voxels = median_vox * num_training
    local plan = plan_fn(spacing, median, n_voxels)
    result = { spacing = spacing, median = median, n_voxels = n_voxels, plan = plan }
    patch_vox = util.prod(util.floats(plan.patch_size))
  end
  if result == nil then return nil end
  local shrink = util.prod(util.floats(median_full)) / median_vox
  local msg = string.format("the fullres patch covers %.4g %% of the median image (< %s %%) -> "
    .. "%d spacing steps x %s give spacing %s, median %s, patch %s covering %.4g %%; median shrinks %.4g x",
    cover0 * 100, util.num(cfg.lowres_creation_threshold * 100), steps, util.num(cfg.lowres_spacing_increase_factor),
    util.vec(result.spacing), util.vec(result.median), util.vec(result.plan.patch_size),
    patch_vox / median_vox * 100, shrink)
  if shrink < cfg.lowres_min_size_ratio then
    util.note(cfg, "%s < %s -> dropped (too close to 3d_fullres)", msg, util.num(cfg.lowres_min_size_ratio))
    return nil
  end
  util.note(cfg, "%s >= %s -> cascade kept (3d_lowres + 3d_cascade_fullres)", msg, util.num(cfg.lowres_min_size_ratio))
  result.steps = steps
  return result
end

return M
