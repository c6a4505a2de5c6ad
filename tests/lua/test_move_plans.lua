-- move_plans_between_datasets (recipes/move_plans_between_datasets.lua) on the
-- reference's Hippocampus plans (../shared/reference/msd-plans): the target file is
-- the source text with exactly the reference's changes (dataset_name, plans_name,
-- data_identifier, image_reader_writer), byte for byte otherwise; errors name the
-- missing folder or file; a channel-count mismatch is refused; an existing different
-- target is kept unless --overwrite. Also json.decode_ordered's round trip.
local fs = require("nnunet.fs")
local json = require("nnunet.json")
local TL = dofile("tests/lua/testlib.lua")
local check, read, write = TL.check, TL.read, TL.write_file

local REF = "../shared/reference/msd-plans/Dataset004_Hippocampus/"
local ref_plans = read(REF .. "plans.json")
if not ref_plans then
  print("SKIP: ../shared/reference/msd-plans is absent")
  os.exit(77)
end

-- json.decode_ordered: every reference JSON file encodes back to the same bytes
for _, ds in ipairs(fs.listdir("../shared/reference/msd-plans") or {}) do
  for _, f in ipairs({ "plans.json", "dataset.json", "dataset_fingerprint.json" }) do
    local p = "../shared/reference/msd-plans/" .. ds .. "/" .. f
    local s = read(p)
    if s then
      local v, err = json.decode_ordered(s)
      local out = v and json.encode(v, { indent = 4 })
      check(out == s or out .. "\n" == s, "decode_ordered round trip of %s (%s)", p, tostring(err))
    end
  end
end
local v = json.decode_ordered('{"b": 1, "a": [2.0, -3, 1e-05, null, true], "c": {}, "d": "\\u00e9\\ud83d\\ude00"}')
check(v and json.encode(v, { indent = false }) == '{"b": 1, "a": [2.0, -3, 1e-05, null, true], "c": {}, "d": "\\u00e9\\ud83d\\ude00"}',
  "decode_ordered keeps order, integers, floats, null, escapes: %s", v and json.encode(v, { indent = false }) or "nil")
local bad, berr = json.decode_ordered('{"a": 1,}')
check(bad == nil and berr:find("byte", 1, true), "malformed JSON: %s", tostring(berr))

local root = TL.temp_root("_moveplans")
local RAW, PRE = root .. "/raw", root .. "/pre"
local function raw_dataset(name, nch)
  local d = RAW .. "/" .. name
  assert(fs.mkdir(d .. "/imagesTr")); assert(fs.mkdir(d .. "/labelsTr"))
  local ch = {}
  for c = 0, nch - 1 do ch[#ch + 1] = string.format('"%d": "MRI%d"', c, c) end
  local dj = '{"channel_names": {' .. table.concat(ch, ", ") .. '}, "labels": {"background": 0, "a": 1}, '
    .. '"numTraining": 1, "file_ending": ".nii.gz"}'
  write(d .. "/dataset.json", dj)
  -- real (tiny) images: the reader class is the one that opens the first training image
  local img = require("nnunet.tensor").zeros({ 2, 2, 2 }, "f32")
  for c = 0, nch - 1 do assert(require("nnunet.image").write(string.format("%s/imagesTr/case_%04d.nii.gz", d, c), img)) end
  assert(require("nnunet.image").write(d .. "/labelsTr/case.nii.gz", img))
  img:release()
end
assert(fs.mkdir(PRE .. "/Dataset004_Hippocampus"))
write(PRE .. "/Dataset004_Hippocampus/nnUNetPlans.json", ref_plans)
write(PRE .. "/Dataset004_Hippocampus/dataset.json", read(REF .. "dataset.json"))
raw_dataset("Dataset004_Hippocampus", 1)
raw_dataset("Dataset021_Target", 1)
raw_dataset("Dataset022_TwoChannels", 2)
local dirs = { raw = RAW, pre = PRE }
local function run(a) return TL.nnunet(dirs, "move_plans_between_datasets " .. a) end

-- 1. new plans identifier: dataset_name, data_identifier, plans_name changed, rest identical
local code, out = run("-s 4 -t 21 -sp nnUNetPlans -tp nnUNetPlansFrom4")
check(code == 0, "exit 0, got %s:\n%s", tostring(code), out)
local want = ref_plans:gsub('"dataset_name": "Dataset004_Hippocampus"', '"dataset_name": "Dataset021_Target"')
  :gsub('"plans_name": "nnUNetPlans"', '"plans_name": "nnUNetPlansFrom4"')
  :gsub('"data_identifier": "nnUNetPlans_', '"data_identifier": "nnUNetPlansFrom4_')
local target = PRE .. "/Dataset021_Target/nnUNetPlansFrom4.json"
local got = read(target)
check(got == want or got == want:gsub("\n$", ""), "target plans = source with the reference's edits")
if got and got ~= want then write(root .. "/got.json", got); write(root .. "/want.json", want) end
-- same identifier: data identifiers unchanged
code, out = run("-s Dataset004_Hippocampus -t Dataset021_Target -sp nnUNetPlans")
local same_id = read(PRE .. "/Dataset021_Target/nnUNetPlans.json")
check(code == 0 and same_id and same_id:find('"data_identifier": "nnUNetPlans_3d_fullres"', 1, true)
  and same_id:find('"dataset_name": "Dataset021_Target"', 1, true), "-tp omitted keeps data identifiers:\n%s", out)
-- an identifier that does not start with the source plans name gets a prefix
local moved = dofile("recipes/move_plans_between_datasets.lua").moved_plans
local p = json.decode_ordered('{"dataset_name": "A", "plans_name": "P", "configurations": {"x": {"data_identifier": '
  .. '"custom_3d"}, "y": {"data_identifier": "P_2d"}}}')
moved(p, "B", "P", "Q", "SimpleITKIO")
check(p.configurations.x.data_identifier == "Q_custom_3d" and p.configurations.y.data_identifier == "Q_2d"
  and p.image_reader_writer == "SimpleITKIO" and p.plans_name == "Q", "data_identifier renaming rule")

-- 2. reruns and existing targets
code, out = run("-s 4 -t 21 -sp nnUNetPlans -tp nnUNetPlansFrom4")
check(code == 0 and out:find("already up to date", 1, true), "rerun: up to date:\n%s", out)
write(target, "{}")
code, out = run("-s 4 -t 21 -sp nnUNetPlans -tp nnUNetPlansFrom4")
check(code == 1 and out:find(target, 1, true) and out:find("--overwrite", 1, true) and read(target) == "{}",
  "a different target is kept:\n%s", out)
code, out = run("-s 4 -t 21 -sp nnUNetPlans -tp nnUNetPlansFrom4 --overwrite")
check(code == 0 and read(target) == got, "--overwrite replaces it:\n%s", out)

-- 3. errors
code, out = run("-s 4 -t 22 -sp nnUNetPlans -tp X")
check(code == 1 and out:find("1 channel", 1, true) and out:find("Dataset022_TwoChannels", 1, true)
  and not fs.exists(PRE .. "/Dataset022_TwoChannels/X.json"), "channel mismatch refused:\n%s", out)
code, out = run("-s 4 -t 21 -sp nnUNetPlansMissing")
check(code == 1 and out:find(PRE .. "/Dataset004_Hippocampus/nnUNetPlansMissing.json", 1, true),
  "missing source plans named:\n%s", out)
code, out = run("-s 21 -t 4 -sp nnUNetPlans -tp Y")
check(code == 0, "target's plans moved back (the target's preprocessed folder exists):\n%s", out)
code, out = run("-s 22 -t 4 -sp nnUNetPlans")
check(code == 1 and out:find(PRE .. "/Dataset022_TwoChannels", 1, true), "missing source folder named:\n%s", out)
code, out = run("-s 99 -t 4 -sp nnUNetPlans")
check(code == 1 and out:find("99", 1, true), "unknown dataset:\n%s", out)

TL.finish("test_move_plans", root)
