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

-- The reference's dataset commands take several datasets (-d 4 5 ...) and do them in
-- turn: the option spec for it (opts.datasets) ...
M.DATASETS_OPTION = { "-d", "datasets", "dataset ids (4, 004), names (Dataset004_Hippocampus) or folder paths, "
  .. "done one after the other", nargs = "+", required = true }

-- ... and the loop: run_one(o) for each of opts.datasets (or the single opts.dataset of a
-- programmatic call), o = opts with o.dataset set; stops at the first non-zero status.
function M.for_each_dataset(opts, run_one)
  local list = type(opts.datasets) == "table" and opts.datasets or { opts.dataset }
  for _, d in ipairs(list) do
    local o = {}
    for k, v in pairs(opts) do o[k] = v end
    o.dataset = d
    local st = run_one(o)
    if st ~= 0 then return st end
  end
  return 0
end

-- Runs a recipe with command-line style arguments; returns its exit status.
function M.call(name, argv)
  local r = M.load(name)
  local opts = args.parse(r, argv or {}, name)
  if not opts then return 0 end
  return math.tointeger(r.run(opts)) or 0
end

return M
