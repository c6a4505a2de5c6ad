-- The --save_probabilities pair CASE.npz + CASE.json: round trip through
-- nnunet.probabilities, float32 storage of f16 input, and the .npz member layout
-- (the byte-exact comparison with numpy's writer is in tests/test_npz.c).
local tensor = require("nnunet.tensor")
local prob = require("nnunet.probabilities")

local failures = 0
local function check(cond, msg)
  if not cond then failures = failures + 1; io.stderr:write("FAIL: " .. msg .. "\n") end
end

local tmp = os.tmpname()
local probs = tensor.from_table({ 0.25, 0.75, 1.0, 0.0, 0.5, 0.5, 0.125, 0.875 }, { 2, 1, 2, 2 }, "f16")
local props = {
  spacing = { 2.0, 0.5, 0.5 },
  shape_before_cropping = { 1, 2, 2 },
  bbox_used_for_cropping = { { 0, 1 }, { 0, 2 }, { 0, 2 } },
  shape_after_cropping_and_before_resampling = { 1, 2, 2 },
  sitk_stuff = { spacing = { 0.5, 0.5, 2.0 }, origin = { 0.0, 0.0, 0.0 },
                 direction = { 1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0 } },
}
check(prob.save(tmp, probs, props) == true, "save")
local t, p = prob.load(tmp)
check(t ~= nil and t:dtype() == "f32", "stored as float32")
check(t and table.concat(t:shape(), ",") == "2,1,2,2", "shape (C, z, y, x)")
check(t and table.concat(t:totable(), ",") == table.concat(probs:totable(), ","), "values")
check(p and p.spacing[1] == 2.0 and p.sitk_stuff.direction[5] == 1.0 and p.bbox_used_for_cropping[2][2] == 2,
  "properties round trip")
local f = io.open(tmp .. ".npz", "rb")
local head = f and f:read(64) or ""
if f then f:close() end
check(head:sub(1, 4) == "PK\3\4" and head:find("probabilities.npy", 1, true), "zip member probabilities.npy")
local none, msg = prob.load(tmp .. "_absent")
check(none == nil and type(msg) == "string", "missing file is an expected failure")
os.remove(tmp .. ".npz"); os.remove(tmp .. ".json"); os.remove(tmp)
if failures > 0 then io.stderr:write(failures .. " checks failed\n"); os.exit(1) end
print("test_probabilities: all checks passed")
