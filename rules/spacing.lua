-- rules/spacing.lua: full-resolution target spacing with the anisotropy rule
-- (nnunet-behaviour.md §4.1, `determine_fullres_target_spacing`). Pure (R30).
-- Axis order is the reader's array order (z, y, x), untransposed.
local M = { name = "spacing", version = 2 }

-- fp.spacings:          array of {z,y,x} per case (mm)
-- fp.shapes_after_crop: array of {z,y,x} per case (voxels, cropped, not resampled)
-- cfg.anisotropy_threshold, cfg.anisotropic_axis_percentile, cfg.anisotropy_min_margin,
-- cfg.overwrite_target_spacing (false or {z,y,x})
-- returns target {z,y,x} (floats) and an info table describing the decision
function M.target_spacing(fp, cfg)
  if cfg.overwrite_target_spacing then
    util.note(cfg, "target spacing overwritten on the command line: %s mm", util.vec(cfg.overwrite_target_spacing))
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
  util.note(cfg, "target spacing = per-axis median of %d case spacings = %s mm (array order); median cropped shape %s",
    #fp.spacings, util.vec(target), util.vec(target_size))
  local ax = "axis " .. (worst - 1)
  if aniso_spacing and aniso_voxels then
    local t = util.percentile(util.column(fp.spacings, worst), cfg.anisotropic_axis_percentile)
    local msg = string.format("%s anisotropic: %s/%s = %.3g > %s and %s voxels x %s < %s -> target %s = %sth percentile = %s mm",
      ax, util.num(target[worst]), util.num(max_other), target[worst] / max_other, util.num(thr),
      util.num(target_size[worst]), util.num(thr), util.num(util.min(other_sizes)), ax,
      util.num(cfg.anisotropic_axis_percentile), util.num(t))
    if t < max_other then
      t = math.max(max_other, t) + cfg.anisotropy_min_margin
      msg = msg .. string.format(", finer than the other axes -> raised to %s + %s = %s mm",
        util.num(max_other), util.num(cfg.anisotropy_min_margin), util.num(t))
    end
    util.note(cfg, "%s", msg)
    target[worst] = t
    info.corrected = true
  else
    util.note(cfg, "%s (coarsest) not corrected: spacing ratio %s/%s = %.3g %s %s, voxels %s x %s %s %s -> median kept",
      ax, util.num(target[worst]), util.num(max_other), target[worst] / max_other, aniso_spacing and ">" or "<=",
      util.num(thr), util.num(target_size[worst]), util.num(thr), aniso_voxels and "<" or ">=",
      util.num(util.min(other_sizes)))
  end
  return target, info
end

return M
