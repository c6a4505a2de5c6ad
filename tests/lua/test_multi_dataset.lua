-- tests/lua/test_multi_dataset.lua: the dataset commands take several datasets, as the
-- reference's (-d 971 972): extract_fingerprint, plan_experiment and preprocess do each
-- dataset completely, in turn; an unknown id among them stops the command with its name
-- after the datasets before it are done.
local fs = require("nnunet.fs")
local TL = dofile("tests/lua/testlib.lua")
local check = TL.check
local synth = dofile("tests/lua/synth_dataset.lua")

local ROOT = TL.temp_root("_multids")
local raw, pre = ROOT .. "/raw", ROOT .. "/pre"
synth.write(raw .. "/Dataset971_A", { cases = 3, size = 10 })
synth.write(raw .. "/Dataset972_B", { cases = 3, size = 10 })
local function nnunet(a) return TL.nnunet({ raw = raw, pre = pre }, a) end

for _, step in ipairs({ "extract_fingerprint -d 971 972 --quiet", "plan_experiment -d 971 972 --quiet",
                        "preprocess -d 971 972 -c 3d_fullres --quiet --no_fsync" }) do
  local code, out = nnunet(step)
  check(code == 0, "%s: exit %s\n%s", step, tostring(code), out)
end
for _, name in ipairs({ "Dataset971_A", "Dataset972_B" }) do
  local P = pre .. "/" .. name
  check(fs.isfile(P .. "/dataset_fingerprint.json") and fs.isfile(P .. "/nnUNetPlans.json"), "%s planned", name)
  local n = 0
  for _, f in ipairs(fs.listdir(P .. "/nnUNetPlans_3d_fullres") or {}) do if f:match("%.nnu$") then n = n + 1 end end
  check(n == 3, "%s: %d preprocessed cases, want 3", name, n)
end
local code, out = nnunet("plan_and_preprocess -d 971 979 -c 3d_fullres --quiet --no_fsync")
check(code ~= 0 and out:find("979", 1, true), "an unknown id stops the command, named:\n%s", out)

TL.finish("test_multi_dataset", ROOT)
