-- nnunet.recipe: run one shipped recipe from another (the demo and `default`
-- chain fingerprint -> plan -> preprocess -> train -> predict this way).
--
--   local recipe = require("nnunet.recipe")
--   local status = recipe.call("verify_dataset", { "-d", path })
-- The arguments are parsed exactly as on the command line, so a chained step
-- behaves like the user typing it.
local sys = require("nnunet.sys")
local args = require("nnunet.args")

local M = {}

function M.path(name)
  return sys.home .. "/recipes/" .. name .. ".lua"
end

-- Loads recipes/<name>.lua and returns its table (summary, options, run, ...).
function M.load(name)
  local chunk, err = loadfile(M.path(name), "t")
  if not chunk then error(err, 0) end
  local r = chunk()
  if type(r) ~= "table" or type(r.run) ~= "function" then
    error(string.format("recipe '%s' does not return a recipe table", name), 0)
  end
  return r
end

-- Runs a recipe with command-line style arguments; returns its exit status.
function M.call(name, argv)
  local r = M.load(name)
  local opts = args.parse(r, argv or {}, name)
  if not opts then return 0 end
  return math.tointeger(r.run(opts)) or 0
end

return M
