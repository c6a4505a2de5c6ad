-- nnunet.args: command-line options of a recipe, declared as data.
--
--   recipe.options = {
--     { "-d", "dataset", "dataset id (4, 004) or name", required = true },
--     { "-c", "configs", "configurations", nargs = "+", default = { "3d_fullres" } },
--     { "-np", "num_processes", "worker threads", type = "int", default = 4 },
--     { "--verbose", "verbose", "more output", flag = true },
--     { "INPUT", "input", "input folder", positional = true },
--   }
-- parse(recipe, argv, name) returns the options table keyed by the second
-- field, or nil after printing --help. Wrong options raise a user error
-- (a table {user_error = true, message = ...}) that the host prints without a traceback.
local M = {}

function M.user_error(fmt, ...)
  error({ user_error = true, message = string.format(fmt, ...) }, 0)
end

local function usage(recipe, name)
  local lines = { string.format("usage: nnunet %s [options]", name) }
  if recipe.summary then lines[#lines + 1] = "\n" .. recipe.summary end
  if recipe.description then lines[#lines + 1] = "\n" .. recipe.description end
  lines[#lines + 1] = "\noptions:"
  for _, o in ipairs(recipe.options or {}) do
    local flag = o[1]
    if o.nargs == "+" then flag = flag .. " X [X ...]"
    elseif not o.flag and not o.positional then flag = flag .. " " .. (o.metavar or "X") end
    local extra = ""
    if o.required then extra = " (required)"
    elseif o.default ~= nil and not o.flag then
      local d = o.default
      if type(d) == "table" then d = table.concat(d, " ") end
      extra = " (default: " .. tostring(d) .. ")"
    end
    lines[#lines + 1] = string.format("  %-28s %s%s", flag, o[3] or "", extra)
  end
  lines[#lines + 1] = "  -h, --help                   show this help"
  return table.concat(lines, "\n") .. "\n"
end
M.usage = usage

local function convert(o, v)
  if o.type == "int" then
    local n = math.tointeger(tonumber(v))
    if not n then M.user_error("option %s expects an integer, got '%s'", o[1], v) end
    return n
  elseif o.type == "number" then
    local n = tonumber(v)
    if not n then M.user_error("option %s expects a number, got '%s'", o[1], v) end
    return n
  end
  if o.choices then
    local ok = false
    for _, c in ipairs(o.choices) do if c == v then ok = true end end
    if not ok then M.user_error("option %s: '%s' is not one of %s", o[1], v, table.concat(o.choices, ", ")) end
  end
  return v
end

function M.parse(recipe, argv, name)
  local opts, byflag, positionals = {}, {}, {}
  for _, o in ipairs(recipe.options or {}) do
    if o.positional then positionals[#positionals + 1] = o
    else
      byflag[o[1]] = o
      for _, alias in ipairs(o.aliases or {}) do byflag[alias] = o end
    end
    if type(o.default) == "table" then
      opts[o[2]] = table.move(o.default, 1, #o.default, 1, {})
    elseif o.flag then opts[o[2]] = o.default or false
    else opts[o[2]] = o.default end
  end
  local i, npos = 1, 0
  while i <= #argv do
    local a = argv[i]
    if a == "-h" or a == "--help" then io.write(usage(recipe, name)); return nil end
    local o = byflag[a]
    if o then
      if o.flag then opts[o[2]] = true; i = i + 1
      elseif o.nargs == "+" then
        local vals = {}
        i = i + 1
        while argv[i] and not byflag[argv[i]] do vals[#vals + 1] = convert(o, argv[i]); i = i + 1 end
        if #vals == 0 then M.user_error("option %s needs at least one value", a) end
        opts[o[2]] = vals
      else
        if argv[i + 1] == nil then M.user_error("option %s needs a value", a) end
        opts[o[2]] = convert(o, argv[i + 1]); i = i + 2
      end
    elseif a:sub(1, 1) == "-" and not tonumber(a) then
      M.user_error("unknown option '%s' for %s (nnunet %s --help)", a, name, name)
    else
      npos = npos + 1
      local p = positionals[npos]
      if not p then M.user_error("unexpected argument '%s' (nnunet %s --help)", a, name) end
      opts[p[2]] = convert(p, a); i = i + 1
    end
  end
  for _, o in ipairs(recipe.options or {}) do
    if (o.required or o.positional and not o.optional) and opts[o[2]] == nil then
      M.user_error("missing %s %s (nnunet %s --help)", o.positional and "argument" or "option", o[1], name)
    end
  end
  return opts
end

return M
