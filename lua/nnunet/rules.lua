-- nnunet.rules: loader of the pure planning rules (rules/*.lua, STYLE R30).
--
--   rules.set_user_dir(dir)     user override directory (--rules DIR / NNUNET_RULES); nil clears
--   rules.set_shipped_dir(dir)  shipped rules (default: $NNUNET_HOME/rules, else ./rules)
--   rules.dirs()                -> user_dir or nil, shipped_dir
--   rules.load(name)            -> module; <name>.lua from the user dir first, then shipped
--   rules.path(name)            -> file the cached module was loaded from (after load)
--   rules.util()                -> the util module injected into every rule as `util`
--   rules.settings(overrides [, {strict=false}]) -> defaults.settings merged with overrides
--   rules.clear_cache()
--
-- Override is file by file: a user dir holding only spacing.lua replaces that rule and
-- nothing else. Each file is compiled with load(src, "@"..path, "t", env), where env is a
-- fresh table holding only math, string, table (copies, without random/dump), ipairs, pairs,
-- select, type, error, assert, tostring, tonumber, next, rawget, setmetatable and `util`
-- (read-only). Reading or assigning any other global raises an error naming the global,
-- so io, os, require, load, print ... are unavailable to rules.
local M = {}

local user_dir = nil
local shipped_dir = nil
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
  cache, paths, util_proxy = {}, {}, nil
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
  return user_dir, shipped_dir or default_shipped_dir()
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
  local udir, sdir = M.dirs()
  for _, dir in ipairs({ udir or false, sdir }) do
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

local function compile(name, util)
  if type(name) ~= "string" or not name:match("^[%w_]+$") then
    error("rules: invalid rule name " .. tostring(name), 0)
  end
  local path, src = find(name)
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

-- defaults.settings updated with overrides; unknown keys are an error unless opts.strict == false
function M.settings(overrides, opts)
  local defaults = M.load("defaults").settings
  local strict = not (opts and opts.strict == false)
  local out = copy(defaults)
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
  return out
end

return M
