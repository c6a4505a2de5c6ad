-- rules/spacing.lua: full-resolution target spacing with the anisotropy rule
-- (nnunet-behaviour.md §4.1, `determine_fullres_target_spacing`). Pure (R30).
-- Axis order is the reader's array order (z, y, x), untransposed.
local M = { name = "spacing", version = 1 }

-- fp.spacings:          array of {z,y,x} per case (mm)
-- fp.shapes_after_crop: array of {z,y,x} per case (voxels, cropped, not resampled)
-- cfg.anisotropy_threshold, cfg.anisotropic_axis_percentile, cfg.anisotropy_min_margin,
-- cfg.overwrite_target_spacing (false or {z,y,x})
-- returns target {z,y,x} (floats) and an info table describing the decision
function M.target_spacing(fp, cfg)
  if cfg.overwrite_target_spacing then
    return util.floats(cfg.overwrite_target_spacing), { overwritten = true }
  end
  local target = util.percentile_per_axis(fp.spacings, 50)
  local target_size = util.percentile_per_axis(fp.shapes_after_crop, 50)
  local worst = util.argmax(target)
  local other_spacings, other_sizes = {}, {}
  for a = 1, #target do
    if a ~= worst then
      other_spacings[#other_spacings + 1] = target[a]
      other_sizes[#other_sizes + 1] = target_size[a]
    end
  end
  local thr = cfg.anisotropy_threshold
  local max_other = util.max(other_spacings)
  local aniso_spacing = target[worst] > thr * max_other
  local aniso_voxels = target_size[worst] * thr < util.min(other_sizes)
  local info = { worst_axis = worst, aniso_spacing = aniso_spacing, aniso_voxels = aniso_voxels }
  if aniso_spacing and aniso_voxels then
    local t = util.percentile(util.column(fp.spacings, worst), cfg.anisotropic_axis_percentile)
    if t < max_other then
      t = math.max(max_other, t) + cfg.anisotropy_min_margin
    end
    target[worst] = t
    info.corrected = true
  end
  return target, info
end

return M
