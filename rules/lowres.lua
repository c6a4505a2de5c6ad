-- rules/lowres.lua: 3d_lowres creation for the cascade (nnunet-behaviour.md §5.6). Pure (R30).
local M = { name = "lowres", version = 1 }

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
  if util.prod(util.floats(median_full)) / median_vox < cfg.lowres_min_size_ratio then return nil end
  result.steps = steps
  return result
end

return M
