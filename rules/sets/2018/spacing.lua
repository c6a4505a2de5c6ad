-- rules/sets/2018/spacing.lua: target spacing of the 2018 paper: "for each axis chooses the
-- median as the target spacing" ([v1-orig]: plain per-axis median, np.percentile(..., 50),
-- no anisotropy correction; nnunet-behaviour.md §4.1). Pure (R30).
local M = { name = "spacing", version = 1 }

function M.target_spacing(fp, cfg)
  if cfg.overwrite_target_spacing then
    util.note(cfg, "target spacing overwritten on the command line: %s mm", util.vec(cfg.overwrite_target_spacing))
    return util.floats(cfg.overwrite_target_spacing), { overwritten = true }
  end
  local target = util.percentile_per_axis(fp.spacings, 50)
  util.note(cfg, "target spacing = per-axis median of %d case spacings = %s mm (2018: no anisotropy correction)",
    #fp.spacings, util.vec(target))
  return target, { corrected = false }
end

return M
