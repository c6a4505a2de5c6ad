-- rules/batch_dice.lua: batch Dice per configuration (nnunet-behaviour.md §5.6). Pure (R30).
-- 2d: always; 3d_lowres: never; 3d_fullres: only when a cascade (3d_lowres) exists.
local M = { name = "batch_dice", version = 1 }

function M.batch_dice(config_name, has_lowres)
  if config_name == "2d" then return true end
  if config_name == "3d_lowres" then return false end
  if config_name == "3d_fullres" then return has_lowres and true or false end
  error("batch_dice: unknown configuration '" .. tostring(config_name) .. "'", 0)
end

return M
