-- fingerprint, plan and preprocess a dataset (nnUNetv2_plan_and_preprocess)
--
-- nnunet plan_and_preprocess -d ID [ID ...] [-c CONFIGS ...] [-np N ...] [-npfp N] [--verify_dataset_integrity]
--                            [-pl RULE_SET] [--explain] [-gpu_memory_target GB] [-overwrite_plans_name NAME] [--set KEY=VALUE ...]
--                            [--clean] [--no_pp] [--fp16] [--quiet]
--
-- 1. (--verify_dataset_integrity) the checks of `nnunet verify_dataset`;
-- 2. the fingerprint (recipes/extract_fingerprint.lua; kept if present unless --clean);
-- 3. the plans (recipes/plan_experiment.lua) -> $nnUNet_preprocessed/DatasetXXX_Name/nnUNetPlans.json;
-- 4. preprocessing of the configurations (recipes/preprocess.lua), unless --no_pp.
-- Several datasets (-d 4 5 ...) are done one after the other, each completely.
local dataset = require("nnunet.dataset")
local sys = require("nnunet.sys")

local M = {
  summary = "fingerprint, plan and preprocess a dataset (nnUNetv2_plan_and_preprocess)",
  options = {
    require("nnunet.recipe").DATASETS_OPTION,
    { "-c", "configs", "configurations to preprocess", nargs = "+", default = { "2d", "3d_fullres", "3d_lowres" } },
    { "-np", "num_processes", "worker threads, one value or one per configuration (0: all CPUs)",
      nargs = "+", type = "int", default = { 0 } },
    { "-npfp", "npfp", "fingerprint worker threads (default: the first -np value)", type = "int" },
    { "--verify_dataset_integrity", "verify", "check the raw dataset first", flag = true },
    { "-fpe", "fpe", "fingerprint extractor (only DatasetFingerprintExtractor, the reference's default)" },
    { "-preprocessor_name", "preprocessor_name", "preprocessor (only DefaultPreprocessor, the reference's default)" },
    { "-pl", "planner", "rule set: ExperimentPlanner (default), nnUNetPlannerResEncM, nnUNetPlannerResEncL, "
      .. "nnUNetPlannerResEncXL, 2018, or a folder of rule files" },
    { "-gpu_memory_target", "gpu_memory_target", "GPU memory budget in GB (default 8)", type = "number" },
    { "-overwrite_target_spacing", "overwrite_target_spacing", "fullres target spacing (z y x, array order)",
      nargs = "+", type = "number" },
    { "-overwrite_plans_name", "plans_name", "plans name (default nnUNetPlans)" },
    { "--set", "set", "override a planning setting of rules/defaults.lua (KEY=VALUE)", nargs = "+" },
    { "--explain", "explain", "print each planning decision with the numbers behind it", flag = true },
    { "--clean", "clean", "recompute the fingerprint even if it exists", flag = true },
    { "--no_pp", "no_pp", "plan only, do not preprocess", flag = true },
    { "--fp16", "fp16", "store images as float16", flag = true },
    { "--no_fsync", "no_fsync", "skip fsync before the atomic renames", flag = true },
    { "--quiet", "quiet", "no progress bars", flag = true },
  },
}

local function user_error(fmt, ...)
  error({ user_error = true, message = string.format(fmt, ...) }, 0)
end

local function recipe(name) return dofile(sys.home .. "/recipes/" .. name .. ".lua") end

-- one dataset: opts.dataset
local function run_one(opts)
  if opts.verify then
    local verify = recipe("verify_dataset")
    local n_valid, problems = verify.verify(opts.dataset, { quiet = opts.quiet,
      num_processes = opts.num_processes and opts.num_processes[1] or 0 })
    if not n_valid then user_error("%s", problems) end
    if #problems > 0 then
      for _, p in ipairs(problems) do io.stderr:write("  " .. p .. "\n") end
      user_error("dataset integrity check failed (%d problems)", #problems)
    end
    if not opts.quiet then print(string.format("dataset integrity: %d valid cases", n_valid)) end
  end
  local ds, err = dataset.open(opts.dataset)
  if not ds then user_error("%s", err) end

  local fp_path, computed = recipe("extract_fingerprint").extract(ds, {
    num_processes = opts.npfp or (opts.num_processes and opts.num_processes[1]) or 0, clean = opts.clean,
    quiet = opts.quiet })
  if computed and not opts.quiet then print(string.format("wrote %s", fp_path)) end

  local plan_exp = recipe("plan_experiment")
  local plans_path, plans, trace = plan_exp.plan(ds, opts)
  if opts.explain then
    for _, l in ipairs(plan_exp.explain_lines(trace)) do print(l) end
  end
  if not opts.quiet then
    print(string.format("wrote %s", plans_path))
    for _, l in ipairs(plan_exp.summary_lines(plans)) do print(l) end
  end
  if opts.no_pp then return 0 end

  recipe("preprocess").preprocess(ds, {
    configs = opts.configs, num_processes = opts.num_processes, plans_name = plans.plans_name,
    fp16 = opts.fp16, no_fsync = opts.no_fsync, quiet = opts.quiet,
  })
  return 0
end

function M.run(opts)
  -- the reference's class options: only their defaults exist here
  if opts.fpe and opts.fpe ~= "DatasetFingerprintExtractor" then
    user_error("-fpe %s: this program has the reference's DatasetFingerprintExtractor only", opts.fpe)
  end
  if opts.preprocessor_name and opts.preprocessor_name ~= "DefaultPreprocessor" then
    user_error("-preprocessor_name %s: this program has the reference's DefaultPreprocessor only",
      opts.preprocessor_name)
  end
  return require("nnunet.recipe").for_each_dataset(opts, run_one)
end

return M
