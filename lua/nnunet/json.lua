-- nnunet.json: JSON writer matching Python's json.dump(obj, indent=4, sort_keys=False)
-- byte for byte (nnUNetPlans.json), plus file helpers. Decoding uses lua-cjson.
--
--   json.null                    null sentinel (any table whose metatable has __jsonnull,
--                                and cjson.null, are written as null)
--   json.object([keys])          empty ordered object; keys assigned later are written in
--                                insertion order (metatable field __keyorder = key list)
--   json.ordered(keys, values)   `values` with an explicit key order
--   json.array([t])              mark t as an array (so an empty one is written as [])
--   json.encode(v [, {indent=4}])  indent=4 default; indent=false -> one line (", ", ": ")
--   json.format_number(x)        Python repr for floats, %d for Lua integers
--   json.decode(str)             -> value | nil, msg (lua-cjson; numbers become floats)
--   json.decode_file(path)       -> value | nil, "path: msg"
--   json.write_file_atomic(path, v [, opts]) -> true | nil, msg (path..".tmp" + os.rename)
--
-- Encoding rules: a Lua integer is written without a fraction, a float as Python repr
-- (1.0, 2.5000803453253524, 1e-05, NaN, Infinity); a plain table with keys 1..n is an array,
-- an empty plain table is [] (use json.object() for {}), other plain tables are objects with
-- keys sorted bytewise (like sort_keys=True). Strings are escaped like ensure_ascii=True.
local M = {}

local NULL_MT = {
  __jsonnull = true,
  __tostring = function() return "null" end,
  __newindex = function() error("json.null is immutable", 2) end,
}
M.null = setmetatable({}, NULL_MT)

local cjson_null = false
do
  local ok, cjson = pcall(require, "cjson")
  if ok and type(cjson) == "table" then cjson_null = cjson.null end
end

function M.is_null(v)
  if v == nil then return true end
  if cjson_null and v == cjson_null then return true end
  local mt = type(v) == "table" and getmetatable(v)
  return mt and mt.__jsonnull == true or false
end

local function ordered_newindex(t, k, v)
  local mt = getmetatable(t)
  if not mt.__keyset[k] then
    mt.__keyset[k] = true
    local ko = mt.__keyorder
    ko[#ko + 1] = k
  end
  rawset(t, k, v)
end

function M.object(keys)
  local ko, ks = {}, {}
  for i, k in ipairs(keys or {}) do ko[i] = k; ks[k] = true end
  return setmetatable({}, { __keyorder = ko, __keyset = ks, __newindex = ordered_newindex,
    __jsonobject = true })
end

function M.ordered(keys, values)
  local t = M.object(keys)
  for k, v in pairs(values or {}) do t[k] = v end
  return t
end

function M.array(t)
  return setmetatable(t or {}, { __jsonarray = true })
end

local function bytes_less(a, b)
  local la, lb = #a, #b
  for i = 1, math.min(la, lb) do
    local x, y = a:byte(i), b:byte(i)
    if x ~= y then return x < y end
  end
  return la < lb
end

-- Python float repr: shortest round-trip digits; exponent form iff exp < -4 or exp >= 16
local function format_float(x)
  if x ~= x then return "NaN" end
  if x == math.huge then return "Infinity" end
  if x == -math.huge then return "-Infinity" end
  if x == 0 then return (1 / x < 0) and "-0.0" or "0.0" end
  -- shortest correctly rounded digit string that reads back as x (17 digits always do)
  local s
  for prec = 0, 16 do
    s = string.format("%." .. prec .. "e", x)
    if tonumber(s) == x then break end
  end
  local sign, d1, rest, exp = s:match("^(-?)(%d)%.?(%d*)e([-+]%d+)$")
  local digits = (d1 .. rest):gsub("0+$", "")
  if digits == "" then digits = "0" end
  local e = tonumber(exp)
  local n = #digits
  if e < -4 or e >= 16 then
    local mant = digits:sub(1, 1)
    if n > 1 then mant = mant .. "." .. digits:sub(2) end
    local ae = math.abs(e)
    return string.format("%s%se%s%02d", sign, mant, e < 0 and "-" or "+", ae)
  end
  if e < 0 then
    return sign .. "0." .. string.rep("0", -e - 1) .. digits
  end
  if n <= e + 1 then
    return sign .. digits .. string.rep("0", e + 1 - n) .. ".0"
  end
  return sign .. digits:sub(1, e + 1) .. "." .. digits:sub(e + 2)
end

function M.format_number(x)
  if math.type(x) == "integer" then return string.format("%d", x) end
  return format_float(x)
end

local ESC = {
  ['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t",
  ["\b"] = "\\b", ["\f"] = "\\f",
}

local function u16(cp)
  if cp < 0x10000 then return string.format("\\u%04x", cp) end
  cp = cp - 0x10000
  return string.format("\\u%04x\\u%04x", 0xD800 + (cp >> 10), 0xDC00 + (cp & 0x3FF))
end

-- ensure_ascii=True escaping; invalid UTF-8 bytes are written as \u00XX (latin-1)
local function encode_string(s)
  if not s:find('[%c"\\\128-\255]') then return '"' .. s .. '"' end
  local out, i, n = {}, 1, #s
  while i <= n do
    local c = s:byte(i)
    if c < 0x80 then
      local ch = string.char(c)
      if ESC[ch] then
        out[#out + 1] = ESC[ch]
      elseif c < 0x20 or c == 0x7f then
        out[#out + 1] = string.format("\\u%04x", c)
      else
        out[#out + 1] = ch
      end
      i = i + 1
    else
      local len = c >= 0xF0 and 4 or c >= 0xE0 and 3 or c >= 0xC0 and 2 or 1
      local cp = nil
      if len > 1 and i + len - 1 <= n then
        local ok, v = pcall(utf8.codepoint, s, i)
        if ok then cp = v end
      end
      if cp then
        out[#out + 1] = u16(cp)
        i = i + len
      else
        out[#out + 1] = string.format("\\u%04x", c)
        i = i + 1
      end
    end
  end
  return '"' .. table.concat(out) .. '"'
end

-- classify a table: "array" | "object", plus the key list for objects
local function classify(t)
  local mt = getmetatable(t)
  if mt and mt.__jsonarray then return "array" end
  if mt and mt.__keyorder then
    local keys, seen = {}, {}
    for _, k in ipairs(mt.__keyorder) do
      if rawget(t, k) ~= nil and not seen[k] then keys[#keys + 1] = k; seen[k] = true end
    end
    local extra = {}
    for k in pairs(t) do
      if not seen[k] then extra[#extra + 1] = k end
    end
    for _, k in ipairs(extra) do
      if type(k) ~= "string" then error("json: object key must be a string, got " .. type(k), 0) end
    end
    table.sort(extra, bytes_less)
    for _, k in ipairs(extra) do keys[#keys + 1] = k end
    return "object", keys
  end
  if mt and mt.__jsonobject then return "object", {} end
  local n, count = #t, 0
  for _ in pairs(t) do count = count + 1 end
  if count == n then return "array" end
  local keys = {}
  for k in pairs(t) do
    if type(k) ~= "string" then
      error("json: cannot encode a table mixing array and non-string keys", 0)
    end
    keys[#keys + 1] = k
  end
  table.sort(keys, bytes_less)
  return "object", keys
end

local function encode(v, indent, depth, out, stack)
  local tv = type(v)
  if v == nil or M.is_null(v) then
    out[#out + 1] = "null"
  elseif tv == "boolean" then
    out[#out + 1] = v and "true" or "false"
  elseif tv == "number" then
    out[#out + 1] = M.format_number(v)
  elseif tv == "string" then
    out[#out + 1] = encode_string(v)
  elseif tv == "table" then
    if stack[v] then error("json: cannot encode a cyclic table", 0) end
    stack[v] = true
    local kind, keys = classify(v)
    local open, close = "[", "]"
    local n = kind == "array" and #v or #keys
    if kind == "object" then open, close = "{", "}" end
    if n == 0 then
      out[#out + 1] = open .. close
    else
      local nl, nl_end, sep
      if indent then
        nl = "\n" .. string.rep(" ", indent * (depth + 1))
        nl_end = "\n" .. string.rep(" ", indent * depth)
        sep = ","
      else
        nl, nl_end, sep = "", "", ", "
      end
      out[#out + 1] = open
      for i = 1, n do
        if i > 1 then out[#out + 1] = sep end
        out[#out + 1] = nl
        if kind == "array" then
          encode(v[i], indent, depth + 1, out, stack)
        else
          out[#out + 1] = encode_string(keys[i]) .. ": "
          encode(v[keys[i]], indent, depth + 1, out, stack)
        end
      end
      out[#out + 1] = nl_end .. close
    end
    stack[v] = nil
  else
    error("json: cannot encode a value of type " .. tv, 0)
  end
end

function M.encode(v, opts)
  local indent = 4
  if opts and opts.indent ~= nil then indent = opts.indent or nil end
  local out = {}
  encode(v, indent, 0, out, {})
  return table.concat(out)
end

function M.decode(str)
  local ok, cjson = pcall(require, "cjson")
  if not ok then return nil, "lua-cjson is not available: " .. tostring(cjson) end
  local ok2, v = pcall(cjson.decode, str)
  if not ok2 then return nil, tostring(v) end
  return v
end

function M.decode_file(path)
  local f, err = io.open(path, "rb")
  if f == nil then return nil, tostring(err) end
  local src = f:read("a")
  f:close()
  local v, msg = M.decode(src)
  if v == nil then return nil, path .. ": " .. msg end
  return v
end

-- decode_ordered(str) -> value | nil, msg: a JSON text as values that encode() writes
-- back unchanged: objects keep their key order (json.object), arrays are json.array,
-- integer literals stay Lua integers (cjson makes every number a float, which would
-- turn "batch_size": 2 into 2.0), null is json.null; Python's NaN / Infinity /
-- -Infinity tokens are accepted. For editing a file such as plans.json in place.
function M.decode_ordered(str)
  local pos = 1
  local function fail(what) error({ json_error = string.format("%s at byte %d", what, pos) }, 0) end
  local function ws() pos = str:find("[^ \t\r\n]", pos) or #str + 1 end
  local value
  local ESCAPES = { ['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b", f = "\f", n = "\n", r = "\r", t = "\t" }
  local function utf8_of(cp) return utf8.char(cp) end
  local function read_string()
    pos = pos + 1                                   -- opening quote
    local parts = {}
    while true do
      local s, e = str:find('["\\]', pos)
      if not s then fail("unterminated string") end
      parts[#parts + 1] = str:sub(pos, s - 1)
      if str:sub(s, s) == '"' then pos = e + 1; break end
      local c = str:sub(s + 1, s + 1)
      if c == "u" then
        local hex = str:match("^%x%x%x%x", s + 2)
        if not hex then pos = s; fail("bad \\u escape") end
        local cp = tonumber(hex, 16)
        pos = s + 6
        if cp >= 0xD800 and cp <= 0xDBFF then       -- surrogate pair
          local lo = str:match("^\\u(%x%x%x%x)", pos)
          if lo then
            cp = 0x10000 + (cp - 0xD800) * 0x400 + (tonumber(lo, 16) - 0xDC00)
            pos = pos + 6
          end
        end
        parts[#parts + 1] = utf8_of(cp)
      elseif ESCAPES[c] then
        parts[#parts + 1] = ESCAPES[c]
        pos = s + 2
      else
        pos = s; fail("bad escape")
      end
    end
    return table.concat(parts)
  end
  function value()
    ws()
    local c = str:sub(pos, pos)
    if c == "{" then
      local obj = M.object()
      pos = pos + 1
      ws()
      if str:sub(pos, pos) == "}" then pos = pos + 1; return obj end
      while true do
        ws()
        if str:sub(pos, pos) ~= '"' then fail("expected a key") end
        local k = read_string()
        ws()
        if str:sub(pos, pos) ~= ":" then fail("expected ':'") end
        pos = pos + 1
        obj[k] = value()
        ws()
        local d = str:sub(pos, pos)
        pos = pos + 1
        if d == "}" then return obj end
        if d ~= "," then pos = pos - 1; fail("expected ',' or '}'") end
      end
    elseif c == "[" then
      local arr = M.array({})
      pos = pos + 1
      ws()
      if str:sub(pos, pos) == "]" then pos = pos + 1; return arr end
      while true do
        arr[#arr + 1] = value()
        ws()
        local d = str:sub(pos, pos)
        pos = pos + 1
        if d == "]" then return arr end
        if d ~= "," then pos = pos - 1; fail("expected ',' or ']'") end
      end
    elseif c == '"' then
      return read_string()
    end
    for tok, v in pairs({ ["true"] = true, ["false"] = false, null = M.null, NaN = 0 / 0, Infinity = math.huge,
      ["-Infinity"] = -math.huge }) do
      if str:sub(pos, pos + #tok - 1) == tok then pos = pos + #tok; return v end
    end
    local num = str:match("^-?%d+%.?%d*[eE]?[-+]?%d*", pos)
    if not num or num == "" or num == "-" then fail("unexpected character") end
    pos = pos + #num
    if num:match("^-?%d+$") then
      local i = math.tointeger(tonumber(num))
      if i and tostring(i) == num:gsub("^(-?)0+(%d)", "%1%2") then return i end
    end
    local x = tonumber(num)
    if not x then fail("bad number '" .. num .. "'") end
    return x + 0.0
  end
  local ok, v = pcall(function()
    local r = value()
    ws()
    if pos <= #str then fail("trailing characters") end
    return r
  end)
  if ok then return v end
  if type(v) == "table" and v.json_error then return nil, v.json_error end
  error(v, 0)
end

function M.write_file_atomic(path, value, opts)
  local ok, text = pcall(M.encode, value, opts)
  if not ok then return nil, path .. ": " .. tostring(text) end
  local tmp = path .. ".tmp"
  local f, err = io.open(tmp, "wb")
  if f == nil then return nil, tostring(err) end
  local wok, werr = f:write(text)
  local cok, cerr = f:close()
  if not wok or not cok then
    os.remove(tmp)
    return nil, tmp .. ": " .. tostring(werr or cerr)
  end
  local rok, rerr = os.rename(tmp, path)
  if not rok then
    os.remove(tmp)
    return nil, tostring(rerr)
  end
  return true
end

return M
