-- rules/sets/2018/lowres.lua: the 2018 cascade trigger. Paper: "If the selected patch size
-- covers less than 25% of the voxels in a typical training case, the 3D U-Net cascade is
-- additionally configured"; [v1-orig] (nnunet-behaviour.md §5.9) decides the details: created
-- when prod(median)/prod(patch) >= 1/lowres_creation_threshold (= 4); the spacing grows by
-- 1.01 per step (first only the axes with max/s > 2) until the low-resolution median holds at
-- most 4 patches; each step plans with the rounded median round(s_full/s * M); the stage is
-- kept only if 2 * prod(lowres median) < prod(fullres median). Pure (R30).
local M = { name = "lowres", version = 1 }

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

function M.search(fullres_spacing, fullres_patch, median_full, num_training, plan_fn, cfg)
  local need = 1 / cfg.lowres_creation_threshold
  local patch_vox = util.prod(util.floats(fullres_patch))
  local full_vox = util.prod(util.floats(median_full))
  if full_vox / patch_vox < need then
    util.note(cfg, "the median image is %.4g patches (< %s) -> no cascade (2018)", full_vox / patch_vox, util.num(need))
    return nil
  end
  local spacing = util.floats(fullres_spacing)
  local num_voxels, result, steps = full_vox, nil, 0
  while num_voxels > need * patch_vox do
    spacing = M.step(spacing, cfg)
    steps = steps + 1
    local scaled = {}
    for a = 1, #spacing do scaled[a] = fullres_spacing[a] / spacing[a] * median_full[a] end
    num_voxels = util.prod(scaled)
    local median = util.map(scaled, function(v) return util.to_int(util.round(v)) end)
    local n_voxels = util.prod(util.floats(median)) * num_training
    local plan = plan_fn(spacing, median, n_voxels)
    result = { spacing = spacing, median = median, n_voxels = n_voxels, plan = plan }
    patch_vox = util.prod(util.floats(plan.patch_size))
  end
  if result == nil then return nil end
  local lowres_vox = util.prod(util.floats(result.median))
  local keep = 2 * lowres_vox < full_vox
  util.note(cfg, "the median image is %.4g patches (>= %s) -> %d spacing steps x %s give spacing %s, median %s, "
    .. "patch %s; 2 x %s %s %s -> %s", full_vox / util.prod(util.floats(fullres_patch)), util.num(need), steps,
    util.num(cfg.lowres_spacing_increase_factor), util.vec(result.spacing), util.vec(result.median),
    util.vec(result.plan.patch_size), util.num(lowres_vox), keep and "<" or ">=", util.num(full_vox),
    keep and "cascade kept" or "dropped")
  if not keep then return nil end
  result.steps = steps
  return result
end

return M
