-- The nnunet.Tensor binding: 1-based views, conversions, reductions, errors
-- that name the operation and the shapes, __close/__gc release (run under
-- ASan by `make test-asan`, where a leaked tensor fails the run).
local T = require("nnunet.tensor")

local failures = 0
local function check(cond, msg)
  if not cond then failures = failures + 1; io.stderr:write("FAIL: " .. msg .. "\n") end
end
local function expect_error(fn, pattern, what)
  local ok, err = pcall(fn)
  check(not ok and tostring(err):find(pattern), string.format("%s: expected error /%s/, got %s", what, pattern, tostring(err)))
end

-- t[i,j,k] = 12(i-1) + 4(j-1) + (k-1) with 1-based indices
local vals = {}
for i = 0, 23 do vals[#vals + 1] = i end
local t <close> = T.from_table(vals, { 2, 3, 4 })
check(tostring(t) == "nnunet.Tensor(f32, cpu, [2,3,4])", "tostring: " .. tostring(t))
check(#t == 24 and t:ndim() == 3 and t:dtype() == "f32", "len/ndim/dtype")
check(t:get(2, 3, 4) == 23, "get last element")

local n <close> = t:narrow(3, 2, 2)          -- [:, :, 1:3] in 0-based terms
check(n:get(2, 3, 1) == 12 + 8 + 1, "narrow element")
check(n:sum() == 138, "narrow sum " .. n:sum())
check(not n:is_contiguous(), "narrow is a strided view")

local p <close> = t:permute({ 3, 1, 2 })
check(p:get(4, 2, 3) == 12 + 8 + 3, "permute element")
local flat = p:contiguous():totable()
check(flat[2] == 4, "contiguous order after permute")

local s <close> = t:select(2, 3)             -- t[:, 3, :]
check(s:get(2, 4) == 12 + 8 + 3, "select element")

local r <close> = t:reshape({ -1, 6 })
check(r:shape()[1] == 4 and r:shape()[2] == 6, "reshape infers -1")

local u <close> = T.from_table({ -1.7, 0.5, 2.9, 300 }, { 4 }, "f64"):astype("i16")
local uv = u:totable()
check(uv[1] == -1 and uv[2] == 0 and uv[3] == 2 and uv[4] == 300, "astype truncates toward zero")
check(math.type(uv[1]) == "integer", "integer dtypes come back as Lua integers")

local q <close> = T.from_table({ 1, 2, 3, 6 }, { 2, 2 })
check(q:mean() == 3 and q:min() == 1 and q:max() == 6, "mean/min/max")
check(q:std() == math.sqrt(14 / 4) and q:std(1) == math.sqrt(14 / 3), "std ddof")
local pc = q:percentile({ 0, 50, 100 })
check(pc[1] == 1 and pc[2] == 2.5 and pc[3] == 6, "percentiles")
check(T.from_table({ 0.7, 3.3 }, { 2 }, "f64"):percentile(50) == 2.0, "numpy lerp upper branch")

local z <close> = T.zeros({ 3 }, "u8"):fill(7)
check(z:sum() == 21, "fill u8")
local c <close> = T.zeros({ 3 }):copy_from(z)
check(c:sum() == 21 and c:dtype() == "f32", "copy_from converts dtype")

-- errors name the operation and the shapes
expect_error(function() return t:narrow(2, 3, 2) end, "narrow: %[2, 4%) out of range on axis 1 of %[2,3,4%]", "narrow range")
expect_error(function() return p:reshape({ 24 }) end, "not contiguous", "reshape of a view")
expect_error(function() return t:reshape({ 5, 5 }) end, "ERR_SHAPE: .*%[2,3,4%] has 24 elements", "reshape count")
expect_error(function() return T.zeros({ 2 }, "f8") end, "unknown dtype 'f8'", "dtype name")
expect_error(function() return t:get(3, 1, 1) end, "index 2 out of range on axis 0", "get bounds")
expect_error(function() return t.sum(42) end, "nnunet.Tensor expected", "type check")
expect_error(function() return c:copy_from(t) end, "copy: destination %[3%] vs source %[2,3,4%]", "copy shapes")

-- explicit release is idempotent; a released tensor is an error, not a crash
local x = T.zeros({ 2 })
x:release(); x:release()
expect_error(function() return x:sum() end, "tensor was released", "use after release")
check(tostring(x) == "nnunet.Tensor(released)", "tostring after release")

-- many short-lived tensors are collected (no leak under ASan)
for _ = 1, 200 do local _ = T.zeros({ 64, 64 }) end
collectgarbage()

if failures > 0 then error(failures .. " checks failed") end
print("tensor binding: all checks passed")
