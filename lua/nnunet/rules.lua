-- nnunet.rules: loader of the pure planning rules (rules/*.lua, STYLE R30).
--
--   rules.set_user_dir(dir)     user override directory (--rules DIR / NNUNET_RULES); nil clears
--   rules.set_shipped_dir(dir)  shipped rules (default: $NNUNET_HOME/rules, else ./rules)
--   rules.set_rule_set(name_or_dir) a named rule set (rules/sets/<name>/, e.g.
--                               nnUNetPlannerResEncM, 2018) or a folder; nil/"default" clears
--   rules.rule_set()            -> name of the selected set ("default" when none), its folder
--   rules.set_names()           -> names of the shipped sets (sorted)
--   rules.dirs()                -> user_dir or nil, shipped_dir, set_dir or nil
--   rules.load(name)            -> module; <name>.lua from the user dir, then the set, then shipped
--   rules.path(name)            -> file the cached module was loaded from (after load)
--   rules.util()                -> the util module injected into every rule as `util`
--   rules.settings(overrides [, {strict=false}]) -> defaults.settings, then the set's and the
--                               user dir's preset.lua settings, then overrides
--   rules.provenance(cfg)       -> { rule_set, files = {name -> {path, version}},
--                               settings = {key -> value differing from defaults.lua} }
--   rules.clear_cache()
--
-- Override is file by file: a user dir holding only spacing.lua replaces that rule and
-- nothing else; a rule set is such a folder shipped under rules/sets/. A folder may also hold
-- preset.lua = { name = "preset", version = N, settings = { key = value, ... } }: settings
-- applied on top of defaults.lua (set first, then user dir) before any command-line override. Each file is compiled with load(src, "@"..path, "t", env), where env is a
-- fresh table holding only math, string, table (copies, without random/dump), ipairs, pairs,
-- select, type, error, assert, tostring, tonumber, next, rawget, setmetatable and `util`
-- (read-only). Reading or assigning any other global raises an error naming the global,
-- so io, os, require, load, print ... are unavailable to rules.
local M = {}

local user_dir = nil
local shipped_dir = nil
local set_dir, set_name = nil, nil
local preset_cache = nil -- list of {module, path} of the preset.lua files, see presets()
local cache = {}   -- name -> module
local paths = {}   -- name -> path it was loaded from
local util_proxy = nil

local function nonempty(s) return s ~= nil and s ~= "" end

local function default_shipped_dir()
  local home = os.getenv("NNUNET_HOME")
  if nonempty(home) then return home .. "/rules" end
  return "./rules"
end

function M.clear_cache()
  cache, paths, util_proxy, preset_cache = {}, {}, nil, nil
end

function M.set_user_dir(dir)
  user_dir = nonempty(dir) and dir or nil
  M.clear_cache()
end

function M.set_shipped_dir(dir)
  shipped_dir = nonempty(dir) and dir or nil
  M.clear_cache()
end

function M.dirs()
  return user_dir, shipped_dir or default_shipped_dir(), set_dir
end

local function is_dir(path)
  -- a folder can be opened for reading on Linux; io.open on it succeeds, read fails
  local f = io.open(path, "rb")
  if f == nil then return false end
  local ok, _, code = f:read(1)
  f:close()
  return ok == nil and code == 21
end

-- names accepted for "no rule set" (the reference's default planner and plans names)
local DEFAULT_NAMES = { default = true, ExperimentPlanner = true, nnUNetPlans = true, nnUNetPlanner = true }

function M.set_rule_set(name_or_dir)
  if not nonempty(name_or_dir) or DEFAULT_NAMES[name_or_dir] then
    set_dir, set_name = nil, nil
  else
    local _, sdir = M.dirs()
    local named = sdir .. "/sets/" .. name_or_dir
    if name_or_dir:match("^[%w_%-]+$") and is_dir(named) then
      set_dir, set_name = named, name_or_dir
    elseif is_dir(name_or_dir) then
      set_dir, set_name = name_or_dir, (name_or_dir:gsub("/+$", ""):match("([^/]+)$"))
    else
      error(string.format("rules: no rule set '%s' (shipped sets: %s; or give a folder)", name_or_dir,
        table.concat(M.set_names(), ", ")), 0)
    end
  end
  M.clear_cache()
end

function M.rule_set()
  return set_name or "default", set_dir
end

function M.set_names()
  local _, sdir = M.dirs()
  local names = {}
  local p = io.popen('ls -1 "' .. sdir .. '/sets" 2>/dev/null')
  if p then
    for line in p:lines() do
      if line:match("^[%w_%-]+$") then names[#names + 1] = line end
    end
    p:close()
  end
  table.sort(names)
  return names
end

local function read_file(path)
  local f = io.open(path, "rb")
  if f == nil then return nil end
  local src = f:read("a")
  f:close()
  return src
end

-- returns path, source of the first <dir>/<name>.lua found
local function find(name)
  local searched = {}
  local udir, sdir, tdir = M.dirs()
  for _, dir in ipairs({ udir or false, tdir or false, sdir }) do
    if dir then
      local path = dir .. "/" .. name .. ".lua"
      local src = read_file(path)
      if src ~= nil then return path, src end
      searched[#searched + 1] = path
    end
  end
  error(string.format("rules: no rule '%s' (searched %s)", name, table.concat(searched, ", ")), 0)
end

local LIBS = {
  math = { random = true, randomseed = true },
  string = { dump = true },
  table = {},
}
local FUNCS = {
  ipairs = ipairs, pairs = pairs, select = select, type = type, error = error,
  assert = assert, tostring = tostring, tonumber = tonumber, next = next,
  rawget = rawget, setmetatable = setmetatable,
}

local function sandbox(name, util)
  local env = {}
  for lib, banned in pairs(LIBS) do
    local copy = {}
    for k, v in pairs(_G[lib]) do
      if not banned[k] then copy[k] = v end
    end
    env[lib] = copy
  end
  for k, f in pairs(FUNCS) do env[k] = f end
  env.util = util
  return setmetatable(env, {
    __index = function(_, k)
      error(string.format("rule '%s': undefined global '%s' (rules are pure: no io, os, require, "
        .. "load or globals; see STYLE R30)", name, tostring(k)), 2)
    end,
    __newindex = function(_, k)
      error(string.format("rule '%s': assignment to global '%s' (rules may not define globals)",
        name, tostring(k)), 2)
    end,
  })
end

local function compile(name, util, path, src)
  if type(name) ~= "string" or not name:match("^[%w_]+$") then
    error("rules: invalid rule name " .. tostring(name), 0)
  end
  if path == nil then path, src = find(name) end
  local chunk, err = load(src, "@" .. path, "t", sandbox(name, util))
  if chunk == nil then error("rules: " .. err, 0) end
  local ok, mod = pcall(chunk)
  if not ok then error(string.format("rules: loading %s: %s", path, tostring(mod)), 0) end
  if type(mod) ~= "table" then
    error(string.format("rules: %s must return a table, got %s", path, type(mod)), 0)
  end
  if type(mod.name) ~= "string" or mod.version == nil then
    error(string.format("rules: %s must return { name=..., version=..., ... }", path), 0)
  end
  return mod, path
end

function M.util()
  if util_proxy == nil then
    local mod, path = compile("util", nil)
    cache.util, paths.util = mod, path
    util_proxy = setmetatable({}, {
      __index = mod,
      __newindex = function(_, k) error("util is read-only (tried to set '" .. tostring(k) .. "')", 2) end,
      __pairs = function() return next, mod, nil end,
    })
  end
  return util_proxy
end

function M.load(name)
  if name == "util" then M.util(); return cache.util end
  local mod = cache[name]
  if mod == nil then
    local path
    mod, path = compile(name, M.util())
    cache[name], paths[name] = mod, path
  end
  return mod
end

function M.path(name)
  return paths[name]
end

local function copy(v)
  if type(v) ~= "table" then return v end
  local out = {}
  for k, x in pairs(v) do out[k] = copy(x) end
  return out
end

-- coerce command-line strings to the default's type
local function coerce(key, v, default)
  if type(v) ~= "string" or type(default) == "string" or default == false then return v end
  if type(default) == "number" then
    local n = tonumber(v)
    if n == nil then error(string.format("setting '%s': expected a number, got '%s'", key, v), 0) end
    return n
  end
  if type(default) == "boolean" then
    if v == "true" or v == "1" then return true end
    if v == "false" or v == "0" then return false end
    error(string.format("setting '%s': expected true/false, got '%s'", key, v), 0)
  end
  return v
end

-- the preset.lua modules of the set dir and the user dir (in this order), as {module, path}
local function presets()
  if preset_cache == nil then
    preset_cache = {}
    local udir, _, tdir = M.dirs()
    for _, dir in ipairs({ tdir or false, udir or false }) do
      if dir then
        local path = dir .. "/preset.lua"
        local src = read_file(path)
        if src ~= nil then
          local mod = compile("preset", M.util(), path, src)
          if type(mod.settings) ~= "table" then
            error(string.format("rules: %s must return { settings = {...} }", path), 0)
          end
          preset_cache[#preset_cache + 1] = { module = mod, path = path }
        end
      end
    end
  end
  return preset_cache
end

local function merge(out, defaults, overrides, strict)
  for k, v in pairs(overrides or {}) do
    local d = defaults[k]
    if d == nil then
      if strict then error(string.format("unknown setting '%s'", tostring(k)), 0) end
      out[k] = v
    else
      v = coerce(k, v, d)
      if d ~= false and v ~= false and type(v) ~= type(d) then
        error(string.format("setting '%s': expected %s, got %s", k, type(d), type(v)), 0)
      end
      out[k] = copy(v)
    end
  end
end

-- defaults.settings, then the presets (set, user dir), then overrides; unknown keys are an
-- error unless opts.strict == false (presets are always strict)
function M.settings(overrides, opts)
  local defaults = M.load("defaults").settings
  local strict = not (opts and opts.strict == false)
  local out = copy(defaults)
  for _, p in ipairs(presets()) do merge(out, defaults, p.module.settings, true) end
  merge(out, defaults, overrides, strict)
  return out
end

local function same(a, b)
  if type(a) ~= type(b) then return false end
  if type(a) ~= "table" then return a == b end
  for k, v in pairs(a) do if not same(v, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end

-- path as recorded in the plans: shipped files relative to the repository ("rules/x.lua")
local function record_path(path)
  local _, sdir = M.dirs()
  if path:sub(1, #sdir + 1) == sdir .. "/" then return "rules/" .. path:sub(#sdir + 2) end
  return path
end

-- What produced a plan: the selected rule set, every rule file loaded so far (name ->
-- {path, version}, presets included) and the settings of cfg that differ from defaults.lua.
-- Keys starting with "_" (planner-internal, e.g. the explanation trace) are left out.
function M.provenance(cfg)
  local defaults = M.load("defaults").settings
  local files = {}
  for name, mod in pairs(cache) do
    files[name] = { path = record_path(paths[name]), version = mod.version }
  end
  for i, p in ipairs(presets()) do
    files[i == 1 and #presets() == 1 and "preset" or ("preset" .. i)] =
      { path = record_path(p.path), version = p.module.version }
  end
  local changed = {}
  for k, v in pairs(cfg or {}) do
    if type(k) == "string" and k:sub(1, 1) ~= "_" and not same(v, defaults[k]) then changed[k] = copy(v) end
  end
  return { rule_set = set_name or "default", files = files, settings = changed }
end

return M
