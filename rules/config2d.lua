-- rules/config2d.lua: inputs of the 2d configuration (nnunet-behaviour.md §5.6). Pure (R30).
-- The 2D U-Net works on the trailing (in-plane) axes of the transposed 3D geometry; its
-- 5 % batch cap uses the 3D dataset voxel count.
local M = { name = "config2d", version = 1 }

-- spacing_t, median_t: transposed fullres spacing and median shape (3 axes)
-- returns spacing (2), median (2), n_voxels_dataset
function M.inputs(spacing_t, median_t, n_voxels_dataset_3d)
  return util.slice(spacing_t, 2, 3), util.slice(median_t, 2, 3), n_voxels_dataset_3d
end

return M
