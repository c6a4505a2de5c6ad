-- tests/lua/test_plan_recipe.lua: `nnunet plan_experiment -d ID` through the command line on
-- the reference planner's real inputs of six MSD datasets (issue 3 item 4).
-- For each dataset of ../shared/reference/msd-plans: dataset.json goes to a temporary
-- $nnUNet_raw/DatasetXXX_Name/, dataset_fingerprint.json to $nnUNet_preprocessed/DatasetXXX_Name/;
-- the recipe must write $nnUNet_preprocessed/DatasetXXX_Name/nnUNetPlans.json equal to the
-- reference plans.json field by field and byte for byte, except for the one extra top-level
-- key "nnunet_rules" (rule files and settings that produced the plans; the reference's tools
-- ignore it), which must be present and is removed before the comparison. It also checks the
-- copy of dataset.json beside the plans, and the three spellings of -d: 4, 004 and the full
-- name (Hippocampus is planned with all three; the others with one spelling each).
-- Exit 77 (skip) when ../shared is absent.
local fs = require("nnunet.fs")
local json = require("nnunet.json")
local sys = require("nnunet.sys")

local MSD = sys.home .. "/../shared/reference/msd-plans"
if not fs.isfile(MSD .. "/Dataset004_Hippocampus/plans.json") then
  print("SKIP: ../shared not found (" .. MSD .. ")")
  os.exit(77)
end

local TL = dofile("tests/lua/testlib.lua")
local check, sh, read_file, write_file = TL.check, TL.sh, TL.read_file, TL.write_file

local ROOT = TL.temp_root("_plan")
local RAW, PRE = ROOT .. "/raw", ROOT .. "/pre"
assert(fs.mkdir(RAW) and fs.mkdir(PRE))

local function nnunet(args)
  return TL.nnunet({ raw = RAW, pre = PRE, env = "NNUNET_PROGRESS=0" }, args)
end

-- The written file without the extra key. The key is the last top-level key, so the
-- reference's text is the written text with `,\n    "nnunet_rules": ...` cut before the final
-- `\n}`. Returns the stripped text, or nil and a reason.
local function strip_rules_key(text)
  local at = text:find(',\n    "nnunet_rules": ', 1, true)
  if not at then return nil, "no top-level \"nnunet_rules\" key" end
  if not text:sub(-2) == "\n}" then return nil, "file does not end with \\n}" end
  local rest = text:sub(at + 1, -3)
  -- nothing but the key's value may follow: no other top-level key after it
  if rest:find('\n    "[^"]+": ', #'\n    "nnunet_rules": ' + 1) then
    return nil, "\"nnunet_rules\" is not the last top-level key"
  end
  return text:sub(1, at - 1) .. "\n}"
end

-- recursive diff of decoded JSON; one line per mismatching key path
local function repr(v)
  if type(v) == "table" then
    local ok, s = pcall(json.encode, v, { indent = false })
    return ok and s or tostring(v)
  end
  return tostring(v)
end
local function diff(got, want, path, out)
  if type(want) ~= type(got) then
    out[#out + 1] = string.format("%s: got %s, want %s", path, repr(got), repr(want))
    return
  end
  if type(want) ~= "table" then
    if got ~= want then out[#out + 1] = string.format("%s: got %s, want %s", path, repr(got), repr(want)) end
    return
  end
  local keys, seen = {}, {}
  for k in pairs(want) do keys[#keys + 1] = k; seen[k] = true end
  for k in pairs(got) do if not seen[k] then keys[#keys + 1] = k end end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  for _, k in ipairs(keys) do
    local sub = path .. "." .. tostring(k)
    if want[k] == nil then out[#out + 1] = sub .. ": unexpected key"
    elseif got[k] == nil then out[#out + 1] = sub .. ": missing"
    else diff(got[k], want[k], sub, out) end
  end
end

-- dataset -> the -d spellings to try (each run rewrites the plans file)
local DATASETS = {
  { "Dataset001_BrainTumour", { "1" } },
  { "Dataset002_Heart", { "002" } },
  { "Dataset003_Liver", { "Dataset003_Liver" } },
  { "Dataset004_Hippocampus", { "4", "004", "Dataset004_Hippocampus" } },
  { "Dataset005_Prostate", { "5" } },
  { "Dataset009_Spleen", { "009" } },
}

for _, d in ipairs(DATASETS) do
  local name, spellings = d[1], d[2]
  local src = MSD .. "/" .. name
  assert(fs.mkdir(RAW .. "/" .. name) and fs.mkdir(PRE .. "/" .. name))
  local dj_text = read_file(src .. "/dataset.json")
  write_file(RAW .. "/" .. name .. "/dataset.json", dj_text)
  write_file(PRE .. "/" .. name .. "/dataset_fingerprint.json", read_file(src .. "/dataset_fingerprint.json"))
  local want_text = read_file(src .. "/plans.json")
  local want = assert(json.decode(want_text))
  local plans_path = PRE .. "/" .. name .. "/nnUNetPlans.json"
  for _, id in ipairs(spellings) do
    os.remove(plans_path)
    local code, out = nnunet("plan_experiment --quiet -d " .. id)
    if check(code == 0, "%s -d %s: exit %s\n%s", name, id, tostring(code), out)
      and check(fs.isfile(plans_path), "%s -d %s: %s not written", name, id, plans_path) then
      local text = read_file(plans_path)
      local stripped, why = strip_rules_key(text)
      if check(stripped ~= nil, "%s -d %s: %s", name, id, tostring(why)) then
        local got = assert(json.decode(stripped))
        local lines = {}
        diff(got, want, name, lines)
        for _, l in ipairs(lines) do check(false, "-d %s: %s", id, l) end
        check(stripped == want_text, "%s -d %s: nnUNetPlans.json differs in bytes from plans.json", name, id)
        -- the extra key names the shipped rule files and no non-default settings
        local rk = assert(json.decode(text)).nnunet_rules
        check(type(rk) == "table" and type(rk.files) == "table" and rk.files.patch ~= nil,
          "%s: nnunet_rules.files lists the rule files", name)
        check(type(rk) == "table" and rk.rule_set == "default", "%s: rule set default (got %s)", name,
          repr(rk and rk.rule_set))
      end
      check(read_file(PRE .. "/" .. name .. "/dataset.json") == dj_text, "%s: dataset.json copied beside the plans", name)
      check(not fs.isfile(plans_path .. ".tmp"), "%s: no .tmp left", name)
    end
  end
  print(string.format("%-24s -d %-28s %s", name, table.concat(spellings, ", "), TL.failures == 0 and "OK" or "..."))
end

-- an unknown id is a user error naming the id
local code, out = nnunet("plan_experiment -d 7")
check(code ~= 0 and out:find("7", 1, true) ~= nil, "unknown id: exit %s, %s", tostring(code), out)

os.execute("rm -rf " .. sh(ROOT))
print(string.format("test_plan_recipe: %d checks, %d failures", TL.checks, TL.failures))
if TL.failures > 0 then os.exit(1) end
