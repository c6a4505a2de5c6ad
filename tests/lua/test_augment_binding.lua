-- The nnunet.augment and nnunet.loader bindings and lua/nnunet/augment_pipeline.lua:
--   - §8.1 configuration: Hippocampus (40,56,40) → ±30°, no dummy-2D, initial (73,80,64);
--     Prostate (20,320,256) → dummy-2D, (20,376,376); 2-D (384,160) → ±15°, (485,188);
--   - the v2 and 2018 descriptions build, round-trip through describe(), and reject
--     bad tables with a message naming the step;
--   - transforms from Lua: a 90° rotation permutes voxels, mirroring twice is the
--     identity, gamma against a hand computation, labels stay in the label set;
--   - the loader: shapes, 1-based info, forced foreground, the same batches for 0 and
--     2 worker threads, batch(b) after a jump, close/__close.
local A = require("nnunet.augment")
local L = require("nnunet.loader")
local T = require("nnunet.tensor")
local AP = require("nnunet.augment_pipeline")

local failures = 0
local function check(cond, msg)
  if not cond then failures = failures + 1; io.stderr:write("FAIL: " .. msg .. "\n") end
end
local function expect_error(fn, pattern, what)
  local ok, err = pcall(fn)
  check(not ok and tostring(err):find(pattern), string.format("%s: expected error /%s/, got %s", what, pattern,
    tostring(err)))
end
local function same(a, b) return table.concat(a, ",") == table.concat(b, ",") end

-- ---------------------------------------------------------------- §8.1
local c = AP.configure({ 40, 56, 40 })
check(not c.dummy_2d and math.abs(c.rotation - math.pi / 6) < 1e-12, "hippocampus rotation")
check(same(c.initial_patch, { 73, 80, 64 }), "hippocampus initial " .. table.concat(c.initial_patch, ","))
check(same(c.mirror_axes, { 0, 1, 2 }), "mirror axes")
c = AP.configure({ 20, 320, 256 })
check(c.dummy_2d and same(c.initial_patch, { 20, 376, 376 }), "prostate dummy-2D " .. table.concat(c.initial_patch, ","))
c = AP.configure({ 24, 72, 72 })
check(not c.dummy_2d and same(c.initial_patch, { 66, 115, 87 }), "(24,72,72): ratio exactly 3 is not dummy-2D")
c = AP.configure({ 384, 160 })
check(same(c.initial_patch, { 485, 188 }) and same(c.mirror, { 2, 3 }), "2-D (384,160)")

-- ---------------------------------------------------------------- descriptions
local setup = AP.setup { patch = { 40, 56, 40 } }
local pipe = AP.build(setup.train)
check(tostring(pipe):find("10 steps"), "v2 pipeline: " .. tostring(pipe))
local d = pipe:describe()
check(d.steps[1].kind == "spatial" and d.steps[1].p_rotation == 0.2 and d.steps[1].scaling[1] == 0.7,
  "describe spatial")
check(d.steps[7].kind == "gamma" and d.steps[7].p_invert == 1 and d.steps[7].range.bg, "describe inverted gamma")
check(same(d.steps[9].axes, { 1, 2, 3 }), "describe mirror axes")
local again = A.pipeline(d):describe()
check(again.steps[5].range[2] == 1.25 and again.steps[5].preserve_range, "describe round trip")
local s18 = AP.setup { patch = { 40, 56, 40 }, trainer = "nnUNetTrainer2018" }
local p18 = AP.build(s18.train):describe()
check(p18.steps[1].p_elastic == 0.2 and p18.steps[1].alpha[2] == 900 and p18.steps[1].sigma[1] == 9, "2018 elastic")
check(same(s18.initial_patch, { 62, 75, 57 }), "2018 initial patch (±15°, numpy get_patch_size) " .. table.concat(s18.initial_patch, ","))
expect_error(function() A.pipeline { dim = 3, patch = { 4, 4, 4 }, steps = { { kind = "warp" } } } end,
  "step 1: unknown kind 'warp'", "unknown kind")
expect_error(function()
  A.pipeline { dim = 3, patch = { 4, 4, 4 }, steps = { { kind = "noise" }, { kind = "spatial" } } }
end, "must be the first", "spatial second")
expect_error(function() A.pipeline { dim = 3, patch = { 4, 4, 4 }, steps = { { kind = "gamma", p = 2 } } } end,
  "probability", "bad p")

-- ---------------------------------------------------------------- transforms
-- x[d, h, w] = 100d + 10h + w on (1, 2, 4, 4); Rx(90°): out[d, h, w] = in[d, 3 - w, h]
local vals, labs = {}, {}
for dd = 0, 1 do for h = 0, 3 do for w = 0, 3 do
  vals[#vals + 1] = 100 * dd + 10 * h + w
  labs[#labs + 1] = (h + w) % 3
end end end
local x <close> = T.from_table(vals, { 1, 2, 4, 4 })
local s <close> = T.from_table(labs, { 1, 2, 4, 4 }, "i16")
local rx, rs = A.spatial(x, s, { 2, 4, 4 }, { angles = { math.pi / 2, 0, 0 } })
local ok = true
for dd = 1, 2 do for h = 1, 4 do for w = 1, 4 do
  ok = ok and rx:get(1, dd, h, w) == x:get(1, dd, 5 - w, h) and rs:get(1, dd, h, w) == s:get(1, dd, 5 - w, h)
end end end
check(ok, "90 degree rotation = permutation")
local y = x:clone()
A.mirror(y, nil, { 1, 3 })
check(y:get(1, 1, 2, 1) == x:get(1, 2, 2, 4), "mirror axes 1 and 3")
A.mirror(y, nil, { 1, 3 })
check(y:sum() == x:sum() and y:get(1, 2, 3, 4) == x:get(1, 2, 3, 4), "mirror twice = identity")

-- gamma without retained stats on [0, 1, 2, 3]: ((v - 0)/3)^2 * 3
local g = T.from_table({ 0, 1, 2, 3 }, { 1, 2, 2 })
A.gamma(g, 2, false, false)
check(math.abs(g:get(1, 2, 1) - 4 / 3) < 1e-6 and math.abs(g:get(1, 2, 2) - 3) < 1e-6, "gamma by hand")
expect_error(function() A.gamma(g, -1) end, "gamma must be > 0", "gamma <= 0")
expect_error(function() A.blur(s, 1) end, "f32 tensor expected", "blur on i16")

local big = T.zeros({ 1, 20, 24, 22 })
local bseg = T.zeros({ 1, 20, 24, 22 }, "i16")
for dd = 5, 12 do for h = 6, 15 do for w = 4, 12 do bseg:set(1, dd, h, w, 1); big:set(1, dd, h, w, 1) end end end
local od, os_ = pipe:run(big:narrow(2, 1, 20):contiguous(), bseg, 7)
check(same(od:shape(), { 1, 40, 56, 40 }), "pipeline output shape")
local lab_ok = true
for _, v in ipairs(os_:astype("f64"):totable()) do lab_ok = lab_ok and (v == 0 or v == 1) end
check(lab_ok, "pipeline labels in {0, 1}")

-- ---------------------------------------------------------------- loader
local function make_loader(workers)
  local ld = L.new { batch_size = 3, patch = { 8, 10, 12 }, initial_patch = { 12, 14, 16 }, seed = 3,
                     workers = workers, pipeline = AP.build(AP.v2(AP.configure({ 8, 10, 12 }))) }
  local locs = { { values = { 1 }, coords = { { 6, 7, 5 }, { 12, 15, 12 } } } }
  ld:add_case(big, bseg, locs)
  return ld
end
local l0 <close> = make_loader(0)
local l2 <close> = make_loader(2)
check(l0:num_cases() == 1 and l0:next_index() == 0, "loader counts")
for b = 0, 4 do
  local d0, s0, info = l0:next()
  local d2, s2 = l2:next()
  check(same(d0:shape(), { 3, 1, 8, 10, 12 }) and same(s0:shape(), { 3, 1, 8, 10, 12 }) and s0:dtype() == "i16",
    "batch shapes")
  check(d0:sum() == d2:sum() and s0:sum() == s2:sum(), "batch " .. b .. " equal for 0 and 2 workers")
  check(info[3].forced and info[3].key == 1 and not info[1].forced and info[1].case == 1, "info of batch " .. b)
end
local j7, s7 = l2:batch(7)
local m7 = l0:make_batch(7)
check(j7:sum() == m7:sum() and l2:next_index() == 8, "batch(7) after a jump == make_batch(7)")
expect_error(function() L.new { patch = { 8, 10, 12 }, initial_patch = { 9, 10, 12 } } end,
  "initial patch must equal", "initial patch without pipeline")
-- a 2-D configuration: patch {H, W} sampled slice-wise from the 3-D case
local c2 = AP.configure({ 10, 12 })
local l2d <close> = L.new { batch_size = 2, patch = { 10, 12 }, initial_patch = c2.initial_patch, seed = 1,
                            workers = 1, pipeline = AP.build(AP.v2(c2)) }
l2d:add_case(big, bseg, { { values = { 1 }, coords = { { 6, 7, 5 } } } })
local d2d, s2d, i2d = l2d:next()
check(same(d2d:shape(), { 2, 1, 1, 10, 12 }) and i2d[2].forced and i2d[2].lo[1] == 6, "2-D loader: one slice, forced")
local closed = make_loader(1)
closed:close()
expect_error(function() closed:next() end, "loader was closed", "closed loader")
local nok, msg = make_loader(0):add_store("/nonexistent/case.nnu")
check(nok == nil and type(msg) == "string", "add_store of a missing file returns nil, msg")

if failures > 0 then error(failures .. " checks failed") end
print("augment binding: all checks passed")
