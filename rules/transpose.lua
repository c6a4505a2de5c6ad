-- rules/transpose.lua: axis transposition (nnunet-behaviour.md §4.2). Pure (R30).
-- The coarsest axis of the fullres target spacing moves to the front.
local M = { name = "transpose", version = 2 }

-- target: {z,y,x} fullres target spacing; returns forward, backward as 0-based axis lists
function M.transpose(target, cfg)
  local n = #target
  if cfg.suppress_transpose then
    local id = {}
    for i = 1, n do id[i] = i - 1 end
    return id, util.copy(id)
  end
  local worst = util.argmax(target) - 1
  local fwd = { worst }
  for a = 0, n - 1 do
    if a ~= worst then fwd[#fwd + 1] = a end
  end
  local bwd = {}
  for i, a in ipairs(fwd) do bwd[a + 1] = i - 1 end
  if worst == 0 then
    util.note(cfg, "transpose_forward %s: axis 0 is already the coarsest (%s mm), no transposition",
      util.vec(fwd), util.num(target[1]))
  else
    util.note(cfg, "transpose_forward %s: the coarsest axis %d (%s mm) moves to the front",
      util.vec(fwd), worst, util.num(target[worst + 1]))
  end
  return fwd, bwd
end

return M
