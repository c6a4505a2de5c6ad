-- nnunet.host: what `nnunet RECIPE [args...]` does after the C host has set up
-- the Lua state: global options, recipe lookup, option parsing, error report.
--
-- A recipe is a Lua file. It either returns a table
--   { summary = "...", options = {...}, run = function(opts) ... end }
-- (then its options are parsed by nnunet.args and `nnunet RECIPE --help` works),
-- or it is a plain script that reads its arguments from `...`.
local sys = require("nnunet.sys")
local fs = require("nnunet.fs")
local args_mod = require("nnunet.args")

local M = {}

local function recipes_dir() return sys.home .. "/recipes" end

-- First line of a recipe file, "-- summary", without the comment marker.
local function recipe_summary(path)
  local f = io.open(path, "r")
  if not f then return "" end
  local line = f:read("l") or ""
  f:close()
  return (line:gsub("^%-%-+%s*", ""))
end

local function print_help()
  io.write(string.format([[
nnunet %s: self-configuring medical image segmentation (nnU-Net in C and Lua)

usage: nnunet [--rules DIR] RECIPE [options]     (nnunet RECIPE --help for its options)
       nnunet --help | --version

RECIPE is a path to a .lua file or the name of a shipped recipe:
]], sys.version))
  local names = fs.listdir(recipes_dir()) or {}
  local width = 24                                   -- the names column fits the longest name
  for _, name in ipairs(names) do
    if name:match("%.lua$") then width = math.max(width, #name - 4) end
  end
  for _, name in ipairs(names) do
    if name:match("%.lua$") then
      io.write(string.format("  %-" .. width .. "s %s\n", name:sub(1, -5), recipe_summary(recipes_dir() .. "/" .. name)))
    end
  end
  io.write([[

global options:
  --rules DIR     a folder of rule files that override the shipped rules/ file by file
                  (also: environment variable NNUNET_RULES)
environment: nnUNet_raw, nnUNet_preprocessed, nnUNet_results (as the reference nnU-Net)
]])
end

local function resolve_recipe(name)
  if name:match("%.lua$") or name:find("/", 1, true) then
    if fs.isfile(name) then return name end
    return nil, string.format("recipe file '%s' not found", name)
  end
  local path = recipes_dir() .. "/" .. name .. ".lua"
  if fs.isfile(path) then return path end
  return nil, string.format("unknown recipe '%s' (nnunet --help lists the recipes)", name)
end

local function configure_rules(user_dir)
  local ok, rules = pcall(require, "nnunet.rules")
  if not ok then return end
  if rules.set_shipped_dir then rules.set_shipped_dir(sys.home .. "/rules") end
  user_dir = user_dir or os.getenv("NNUNET_RULES")
  if user_dir and user_dir ~= "" then
    if not fs.isdir(user_dir) then error(string.format("--rules: '%s' is not a folder", user_dir), 0) end
    if rules.set_user_dir then rules.set_user_dir(user_dir) end
  end
end

-- Runs the recipe; returns the process exit status.
local function run(argv)
  local i, user_rules = 1, nil
  while argv[i] and argv[i]:sub(1, 1) == "-" do
    local a = argv[i]
    if a == "--help" or a == "-h" then print_help(); return 0
    elseif a == "--version" then print("nnunet " .. sys.version); return 0
    elseif a == "--rules" then
      user_rules = argv[i + 1] or error("--rules needs a folder", 0)
      i = i + 2
    else
      error(string.format("unknown global option '%s' (nnunet --help)", a), 0)
    end
  end
  if not argv[i] then print_help(); return 2 end
  local path, err = resolve_recipe(argv[i])
  if not path then error(err, 0) end
  local rest = table.move(argv, i + 1, #argv, 1, {})
  configure_rules(user_rules)

  local chunk, lerr = loadfile(path, "t")
  if not chunk then error(lerr, 0) end
  local recipe = chunk(table.unpack(rest))
  if type(recipe) ~= "table" or type(recipe.run) ~= "function" then return 0 end
  local opts = args_mod.parse(recipe, rest, argv[i])
  if not opts then return 0 end                  -- --help was printed
  local status = recipe.run(opts)
  return math.tointeger(status) or 0
end

function M.main(argv)
  local ok, status = xpcall(run, function(e)
    if type(e) == "string" and e:find("interrupted!", 1, true) then return "interrupted" end
    if type(e) == "table" and e.user_error then return e end
    return debug.traceback(e, 2)
  end, argv)
  if ok then return status end
  if status == "interrupted" then
    io.stderr:write("nnunet: interrupted by Ctrl-C\n")
    return 130
  end
  if type(status) == "table" then
    io.stderr:write("nnunet: " .. status.message .. "\n")
    return 1
  end
  io.stderr:write("nnunet: " .. tostring(status) .. "\n")
  return 1
end

return M
