-- plan the experiment (nnUNetv2_plan_experiment): fingerprint + dataset.json -> nnUNetPlans.json
--
-- nnunet plan_experiment -d ID [-pl RULE_SET] [-gpu_memory_target GB] [-overwrite_target_spacing Z Y X]
--                        [-overwrite_plans_name NAME] [--set KEY=VALUE ...] [--explain] [--quiet]
--
-- Reads $nnUNet_preprocessed/DatasetXXX_Name/dataset_fingerprint.json (run
-- extract_fingerprint first) and dataset.json of the raw dataset, runs the
-- planning rules (lua/nnunet/planner.lua, rules/*.lua; settings of
-- rules/defaults.lua can be changed with --set, e.g. --set max_dataset_covered=0.1),
-- and writes $nnUNet_preprocessed/DatasetXXX_Name/<plans_name>.json atomically
-- (tmp + rename), where the reference writes it, in its structure and key order.
-- dataset.json is copied beside it, as the reference does. Other recipes call
-- M.plan(ds, opts).
-- -pl selects a rule set without rebuilding: a shipped one under rules/sets/ (the
-- reference's planner names nnUNetPlannerResEncM / L / XL, and 2018 for the 2018 paper's
-- rules) or a folder; `nnunet --rules DIR` still overrides single files on top of it.
-- --explain prints each decision with the numbers that drove it (the rules' trail).
local dataset = require("nnunet.dataset")
local fs = require("nnunet.fs")
local json = require("nnunet.json")
local planner = require("nnunet.planner")
local rules = require("nnunet.rules")

local M = {
  summary = "plan the experiment (nnUNetv2_plan_experiment): fingerprint -> nnUNetPlans.json",
  options = {
    require("nnunet.recipe").DATASETS_OPTION,
    { "-pl", "planner", "rule set: ExperimentPlanner (default), nnUNetPlannerResEncM, nnUNetPlannerResEncL, "
      .. "nnUNetPlannerResEncXL, 2018, or a folder of rule files" },
    { "-gpu_memory_target", "gpu_memory_target", "GPU memory budget in GB (default 8)", type = "number" },
    { "-overwrite_target_spacing", "overwrite_target_spacing", "fullres target spacing (z y x, array order)",
      nargs = "+", type = "number" },
    { "-overwrite_plans_name", "plans_name", "plans name (default nnUNetPlans)" },
    { "--set", "set", "override a planning setting of rules/defaults.lua (KEY=VALUE)", nargs = "+" },
    { "--explain", "explain", "print each planning decision with the numbers behind it", flag = true },
    { "--quiet", "quiet", "print nothing", flag = true },
  },
}

local function user_error(fmt, ...)
  error({ user_error = true, message = string.format(fmt, ...) }, 0)
end

-- The settings overrides (a table for planner.plan) from the command-line options.
function M.settings_from_opts(opts)
  local s = {}
  for _, kv in ipairs(opts.set or {}) do
    local k, v = kv:match("^([%w_]+)=(.*)$")
    if not k then user_error("--set expects KEY=VALUE, got '%s'", kv) end
    s[k] = v
  end
  if opts.gpu_memory_target then s.gpu_memory_target = opts.gpu_memory_target end
  if opts.overwrite_target_spacing then
    if #opts.overwrite_target_spacing ~= 3 then user_error("-overwrite_target_spacing needs 3 numbers (z y x)") end
    s.overwrite_target_spacing = opts.overwrite_target_spacing
  end
  if opts.plans_name then s.plans_name = opts.plans_name end
  return s
end

-- Byte copy, atomic (fs.copy: tmp + rename). Returns true or raises a user error.
function M.copy_file(src, dst)
  local ok, err = fs.copy(src, dst)
  if not ok then user_error("%s", err) end
  return true
end

-- Plans ds (from nnunet.dataset.open); opts: settings (table) or the command-line
-- options. Returns the plans path and the plans table.
function M.plan(ds, opts)
  opts = opts or {}
  local settings = opts.settings or M.settings_from_opts(opts)
  local dir = dataset.preprocessed_dir(ds)
  local fp_path = dir .. "/dataset_fingerprint.json"
  if not fs.isfile(fp_path) then
    user_error("%s not found: run `nnunet extract_fingerprint -d %s` first", fp_path, ds.name)
  end
  local fp, ferr = json.decode_file(fp_path)
  if not fp then user_error("cannot read the fingerprint: %s", ferr) end
  if opts.planner then
    local sok, serr = pcall(rules.set_rule_set, opts.planner)
    if not sok then user_error("-pl: %s", tostring(serr)) end
  end
  -- the reader class: the first one listing the file ending that opens the first training
  -- image (dataset.reader_class asks the same rule with the files at hand)
  local function can_open(class) return class == dataset.reader_class(ds, settings) end
  local ok, plans, trace = pcall(planner.plan, fp, ds.json, settings, ds.name,
    { explain = opts.explain, can_open = can_open })
  if not ok then
    if type(plans) == "table" then error(plans, 0) end
    user_error("planning %s: %s", ds.name, tostring(plans))
  end
  local mk, merr = fs.mkdir(dir)
  if not mk then user_error("%s", merr) end
  local path = dir .. "/" .. plans.plans_name .. ".json"
  local wok, werr = json.write_file_atomic(path, plans)
  if not wok then user_error("cannot write %s: %s", path, werr) end
  M.copy_file(ds.json_path, dir .. "/dataset.json")
  return path, plans, trace
end

-- the explanation trail as printed: "[section]" lines as headers, the rest indented
function M.explain_lines(trace)
  local out = {}
  for _, l in ipairs(trace or {}) do
    local sec = l:match("^%[(.*)%]$")
    out[#out + 1] = sec and (sec .. ":") or ("  " .. l)
  end
  return out
end

-- one line per configuration: spacing, patch, batch
function M.summary_lines(plans)
  local lines = {}
  local names = {}
  for name in pairs(plans.configurations) do names[#names + 1] = name end
  table.sort(names)
  local function list(t)
    local out = {}
    for i, v in ipairs(t or {}) do out[i] = json.format_number(v) end
    return "(" .. table.concat(out, ", ") .. ")"
  end
  for _, name in ipairs(names) do
    local c = plans.configurations[name]
    if c.inherits_from then
      lines[#lines + 1] = string.format("  %-20s inherits %s", name, c.inherits_from)
    else
      lines[#lines + 1] = string.format("  %-20s spacing %s patch %s batch %d", name, list(c.spacing),
        list(c.patch_size), c.batch_size)
    end
  end
  return lines
end

local function run_one(opts)
  local ds, err = dataset.open(opts.dataset)
  if not ds then user_error("%s", err) end
  local path, plans, trace = M.plan(ds, opts)
  if opts.explain then
    for _, l in ipairs(M.explain_lines(trace)) do print(l) end
  end
  if not opts.quiet then
    print(string.format("wrote %s", path))
    for _, l in ipairs(M.summary_lines(plans)) do print(l) end
  end
  return 0
end

-- several datasets (-d 4 5 ...) in turn, as the reference
function M.run(opts) return require("nnunet.recipe").for_each_dataset(opts, run_one) end

return M
