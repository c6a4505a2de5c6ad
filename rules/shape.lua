-- rules/shape.lua: resampled shapes and the median shapes of the planner
-- (nnunet-behaviour.md §4.3, §5.2, §13.1). Pure (R30).
local M = { name = "shape", version = 1 }

-- compute_new_shape: round((old_spacing / new_spacing) * old_shape) per axis, half-even
function M.new_shape(old_shape, old_spacing, new_spacing)
  local out = {}
  for a = 1, #old_shape do
    out[a] = util.round(old_spacing[a] / new_spacing[a] * old_shape[a])
  end
  return out
end

-- per-axis np.median of every case's shape resampled to `target` (untransposed; may be x.5)
function M.new_median_shape(fp, target)
  local shapes = {}
  for i, sp in ipairs(fp.spacings) do
    shapes[i] = M.new_shape(fp.shapes_after_crop[i], sp, target)
  end
  return util.median_per_axis(shapes)
end

-- original_median_spacing_after_transp: np.median of raw spacings, transposed (floats)
function M.original_median_spacing(fp, transpose_forward)
  return util.floats(util.permute(util.median_per_axis(fp.spacings), transpose_forward))
end

-- original_median_shape_after_transp: int(round(np.median(shapes_after_crop))), transposed
function M.original_median_shape(fp, transpose_forward)
  local med = util.permute(util.median_per_axis(fp.shapes_after_crop), transpose_forward)
  return util.map(med, function(v) return util.to_int(util.round(v)) end)
end

-- approximate number of voxels of the resampled dataset: prod(median) * numTraining (float)
function M.dataset_voxels(median_shape, num_training)
  return util.prod(util.floats(median_shape)) * num_training
end

-- a 3D configuration is planned only if the transposed median's first axis is not 1
function M.is_3d(median_shape_transposed)
  return #median_shape_transposed == 3 and median_shape_transposed[1] ~= 1
end

return M
