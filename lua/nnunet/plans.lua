-- nnunet.plans: helpers on a plans table (nnUNetPlans.json) shared by the recipes
-- and the predictor (nnunet-behaviour.md §13.1).
--
--   local plans_mod = require("nnunet.plans")
--   local conf = plans_mod.resolve_configuration(plans, "3d_cascade_fullres")  -- table or nil
local M = {}

local function user_error(fmt, ...)
  error({ user_error = true, message = string.format(fmt, ...) }, 0)
end

-- Configuration `name` of plans with inherits_from resolved: the parent's keys first,
-- then the configuration's own (inherits_from itself dropped). nil when the plans have
-- no such configuration; an unknown parent or an inheritance cycle is a user error.
function M.resolve_configuration(plans, name, seen)
  seen = seen or {}
  if seen[name] then user_error("plans: configuration inheritance cycle at '%s'", name) end
  seen[name] = true
  local c = plans.configurations and plans.configurations[name]
  if c == nil then return nil end
  local out = {}
  if c.inherits_from then
    local parent = M.resolve_configuration(plans, c.inherits_from, seen)
    if not parent then user_error("plans: '%s' inherits from unknown '%s'", name, c.inherits_from) end
    for k, v in pairs(parent) do out[k] = v end
  end
  for k, v in pairs(c) do if k ~= "inherits_from" then out[k] = v end end
  return out
end

return M
