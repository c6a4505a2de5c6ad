-- rules/util.lua: numeric helpers shared by the planning rules (R30: pure, no I/O).
-- The loader (lua/nnunet/rules.lua) loads this file first and injects the result as the
-- read-only global `util` into every other rule's sandbox.
-- Conventions reproduced bit-exactly from the reference planner (nnunet-behaviour.md,
-- "Global numeric conventions"): Python round() is half-to-even; np.percentile is the
-- two-sided "linear" lerp; np.median is the middle element or (a+b)/2.
-- Vectors are 1-based Lua arrays; axis lists returned for the plans (transposes) are 0-based.
local M = { name = "util", version = 2 }

-- JSON null sentinel: encoders recognise a metatable with __jsonnull (see lua/nnunet/json.lua).
M.null = setmetatable({}, {
  __jsonnull = true,
  __tostring = function() return "null" end,
  __newindex = function() error("util.null is immutable", 2) end,
})

function M.is_null(v)
  if v == nil or v == M.null then return true end
  return false
end

-- Ordered object for JSON: `values` is returned with a metatable listing its key order
-- (json.lua writes keys in this order; keys missing from `keys` follow, sorted).
function M.ordered(keys, values)
  local k = {}
  for i, key in ipairs(keys) do k[i] = key end
  return setmetatable(values or {}, { __keyorder = k })
end

-- Python round(x) for floats: round half to even. Returns a Lua integer when representable.
function M.round(x)
  local f = math.floor(x)
  local d = x - f -- exact for |x| < 2^52
  local r
  if d > 0.5 then
    r = f + 1
  elseif d < 0.5 then
    r = f
  elseif f % 2 == 0 then
    r = f
  else
    r = f + 1
  end
  return math.tointeger(r) or r
end

-- int(x) for x >= 0 (numpy astype(int) truncation) as a Lua integer.
function M.trunc(x)
  local t = x >= 0 and math.floor(x) or math.ceil(x)
  return math.tointeger(t) or t
end

function M.to_int(x)
  local i = math.tointeger(x)
  if i == nil then error("util.to_int: not an integral value: " .. tostring(x), 2) end
  return i
end

function M.to_float(x) return x + 0.0 end

function M.map(xs, f)
  local out = {}
  for i, v in ipairs(xs) do out[i] = f(v, i) end
  return out
end

function M.ints(xs) return M.map(xs, M.to_int) end
function M.floats(xs) return M.map(xs, M.to_float) end

-- deep copy of plain data (tables without metatables keep none)
function M.copy(v)
  if type(v) ~= "table" then return v end
  local out = {}
  for k, x in pairs(v) do out[k] = M.copy(x) end
  return out
end

function M.slice(xs, i, j)
  local out = {}
  for k = i, j or #xs do out[#out + 1] = xs[k] end
  return out
end

function M.column(rows, a)
  local out = {}
  for i, r in ipairs(rows) do out[i] = r[a] end
  return out
end

-- numpy prod on a small array: sequential left-to-right product
function M.prod(xs)
  local p = xs[1]
  for i = 2, #xs do p = p * xs[i] end
  return p
end

function M.max(xs)
  local m = xs[1]
  for i = 2, #xs do if xs[i] > m then m = xs[i] end end
  return m
end

function M.min(xs)
  local m = xs[1]
  for i = 2, #xs do if xs[i] < m then m = xs[i] end end
  return m
end

-- np.argmax: index (1-based) of the first maximum
function M.argmax(xs)
  local best = 1
  for i = 2, #xs do if xs[i] > xs[best] then best = i end end
  return best
end

-- np.argsort(xs)[-1] on a small array: the last maximum (stable sort keeps ties in index order)
function M.argmax_last(xs)
  local best = 1
  for i = 2, #xs do if xs[i] >= xs[best] then best = i end end
  return best
end

local function sorted_copy(xs)
  local s = {}
  for i, v in ipairs(xs) do s[i] = v + 0.0 end
  table.sort(s)
  return s
end

-- np.percentile(xs, p) with method "linear" (numpy >= 1.22), bit-exact:
-- q = (n-1)*(p/100); i = floor(q); g = q - i; a + (b-a)*g if g < 0.5 else b - (b-a)*(1-g)
function M.percentile(xs, p)
  local n = #xs
  assert(n > 0, "util.percentile: empty input")
  local s = sorted_copy(xs)
  local q = (n - 1) * (p / 100)
  local i = math.floor(q)
  local g = q - i
  if i >= n - 1 then return s[n] end
  if i < 0 then return s[1] end
  local a, b = s[i + 1], s[i + 2]
  local diff = b - a
  if g >= 0.5 then return b - diff * (1 - g) end
  return a + diff * g
end

-- np.median: middle element (odd n) or (a+b)/2 of the two middle ones (even n)
function M.median(xs)
  local n = #xs
  assert(n > 0, "util.median: empty input")
  local s = sorted_copy(xs)
  if n % 2 == 1 then return s[(n + 1) // 2] end
  return (s[n // 2] + s[n // 2 + 1]) / 2
end

-- per-axis statistic of an array of rows ({z,y,x} per case)
function M.percentile_per_axis(rows, p)
  local out = {}
  for a = 1, #rows[1] do out[a] = M.percentile(M.column(rows, a), p) end
  return out
end

function M.median_per_axis(rows)
  local out = {}
  for a = 1, #rows[1] do out[a] = M.median(M.column(rows, a)) end
  return out
end

-- xs permuted by a 0-based axis order (numpy fancy indexing xs[perm])
function M.permute(xs, perm)
  local out = {}
  for i, p in ipairs(perm) do out[i] = xs[p + 1] end
  return out
end

-- number of keys of a table (len(dict))
function M.count_keys(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n
end

-- byte-wise string comparison (independent of the C locale used by Lua's `<`)
function M.bytes_less(a, b)
  local la, lb = #a, #b
  for i = 1, math.min(la, lb) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return la < lb
end

-- Explanation trail (`--explain`): the planner puts a list into cfg._trace when asked; rules
-- append one line per decision with the numbers that drove it. Without a list nothing
-- happens, so notes never change a plan.
function M.note(cfg, fmt, ...)
  local t = type(cfg) == "table" and rawget(cfg, "_trace") or nil
  if t then t[#t + 1] = string.format(fmt, ...) end
end

function M.explaining(cfg)
  return type(cfg) == "table" and rawget(cfg, "_trace") ~= nil
end

-- compact number for notes: integers with thousands separators, floats with 6 digits
function M.num(x)
  if type(x) ~= "number" then return tostring(x) end
  local i = math.tointeger(x)
  if i == nil and x == math.floor(x) and math.abs(x) < 1e15 then i = math.tointeger(math.floor(x)) end
  if i ~= nil then
    local s, neg = tostring(math.abs(i)), i < 0
    local out = s:reverse():gsub("(%d%d%d)", "%1,"):reverse()
    if out:sub(1, 1) == "," then out = out:sub(2) end
    return (neg and "-" or "") .. out
  end
  return string.format("%.6g", x)
end

-- "(a, b, c)" of M.num values
function M.vec(xs)
  local out = {}
  for i, v in ipairs(xs) do out[i] = M.num(v) end
  return "(" .. table.concat(out, ", ") .. ")"
end

-- axis names of a plan in transposed order: z, y, x (3D) or y, x (2D)
function M.axis_name(a, d)
  local names = d == 2 and { "y", "x" } or { "z", "y", "x" }
  return names[a] or ("axis " .. (a - 1))
end

return M
