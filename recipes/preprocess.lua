-- preprocess the training cases for the planned configurations (nnUNetv2_preprocess)
--
-- nnunet preprocess -d ID [-c CONFIGS ...] [-np N ...] [-plans_name NAME] [--fp16] [--quiet]
--
-- For every configuration (default 2d 3d_fullres 3d_lowres; 3d_cascade_fullres
-- shares 3d_fullres's data) and every training case: transpose, crop to nonzero,
-- normalize, resample, class locations (nnunet-behaviour.md Appendix C), written to
--   $nnUNet_preprocessed/DatasetXXX_Name/<data_identifier>/<case>.nnu   (data, labels, class locations)
--   $nnUNet_preprocessed/DatasetXXX_Name/<data_identifier>/<case>.json  (properties to revert)
-- plus gt_segmentations/ (copies of labelsTr) and dataset.json beside the plans.
-- Format: docs/preprocessing_storage.md. Cases run in parallel on N threads
-- (default: all CPUs) with a progress bar. A rerun skips cases whose files are
-- complete and were made with the same preprocessing settings (plans identifier
-- + hash); half-written files (an interrupted run, Ctrl-C) are redone.
-- Other recipes call M.preprocess(ds, opts).
local dataset = require("nnunet.dataset")
local fs = require("nnunet.fs")
local json = require("nnunet.json")
local pp = require("nnunet.preproc_case")
local sys = require("nnunet.sys")

local M = {
  summary = "preprocess the training cases for the planned configurations (nnUNetv2_preprocess)",
  options = {
    require("nnunet.recipe").DATASETS_OPTION,
    { "-c", "configs", "configurations to preprocess", nargs = "+", default = { "2d", "3d_fullres", "3d_lowres" } },
    { "-np", "num_processes", "worker threads, one value or one per configuration (0: all CPUs)",
      nargs = "+", type = "int", default = { 0 } },
    { "-plans_name", "plans_name", "plans identifier", default = "nnUNetPlans" },
    { "--fp16", "fp16", "store images as float16 (half the disk; see docs/preprocessing_storage.md)", flag = true },
    { "--no_fsync", "no_fsync", "skip fsync before the atomic rename (faster on slow disks; still atomic)", flag = true },
    { "--quiet", "quiet", "no progress bar or summary", flag = true },
  },
}

local function user_error(fmt, ...)
  error({ user_error = true, message = string.format(fmt, ...) }, 0)
end

-- FNV-1a, 64 bit, of a string (Lua integers wrap modulo 2^64); never 0.
function M.fnv1a64(s)
  local h = -3750763034362895579            -- 0xcbf29ce484222325
  for i = 1, #s do
    h = h ~ s:byte(i)
    h = h * 1099511628211                   -- 0x100000001b3
  end
  if h == 0 then h = 1 end
  return h
end

-- configuration `name` of plans with inherits_from resolved (cycles are an error);
-- the rule lives in lua/nnunet/plans.lua (recipes/train.lua still has its own copy)
M.resolve_configuration = require("nnunet.plans").resolve_configuration

-- The class-location keys of the LabelManager (Appendix B, §7.3): foreground labels,
-- or foreground regions; plus all labels when an ignore label is declared.
function M.class_location_keys(dataset_json)
  local labels = dataset_json.labels or {}
  local has_regions = false
  for name, v in pairs(labels) do
    if name ~= "ignore" and type(v) == "table" and #v > 1 then has_regions = true end
  end
  local values, ignore = dataset.label_values(labels)
  local all = {}
  for _, v in ipairs(values) do if v ~= ignore then all[#all + 1] = v end end
  local keys = {}
  if has_regions then
    -- regions in declaration order; lua-cjson loses it, so regions_class_order decides
    -- when present (it lists the regions' output values in that order), else by name
    local regions = {}
    for name, v in pairs(labels) do
      if name ~= "ignore" then
        local r = type(v) == "table" and v or { v }
        local bg_only = #r == 1 and math.tointeger(r[1]) == 0
        if not bg_only then regions[#regions + 1] = { name = name, values = r } end
      end
    end
    -- the reference keeps dataset.json's declaration order, which lua-cjson loses;
    -- regions usually nest and are declared larger first (whole tumour, core, enhancing):
    -- order by the number of member labels, descending, then by name
    table.sort(regions, function(a, b)
      if #a.values ~= #b.values then return #a.values > #b.values end
      return dataset.bytes_less(a.name, b.name)
    end)
    for _, r in ipairs(regions) do
      local k = {}
      for i, x in ipairs(r.values) do k[i] = math.tointeger(x) end
      keys[#keys + 1] = k
    end
  else
    for _, v in ipairs(all) do if v ~= 0 then keys[#keys + 1] = { v } end end
  end
  if ignore ~= nil then keys[#keys + 1] = all end
  return keys
end

-- The binding's cfg for one resolved configuration.
function M.case_config(plans, conf, dataset_json)
  local schemes, masks, ct = {}, {}, {}
  local props = plans.foreground_intensity_properties_per_channel or {}
  for i, s in ipairs(conf.normalization_schemes or {}) do
    schemes[i] = s
    masks[i] = conf.use_mask_for_norm and conf.use_mask_for_norm[i] == true or false
    local p = props[tostring(i - 1)]
    -- only CT reads the dataset statistics (keeps them out of the settings hash otherwise)
    ct[i] = false
    if p and s == "CTNormalization" then ct[i] = { mean = p.mean, std = p.std, percentile_00_5 = p.percentile_00_5,
                        percentile_99_5 = p.percentile_99_5 } end
  end
  local dk = conf.resampling_fn_data_kwargs or {}
  local sk = conf.resampling_fn_seg_kwargs or {}
  local tf = {}
  for i, v in ipairs(plans.transpose_forward or { 0, 1, 2 }) do tf[i] = math.tointeger(v) end
  local spacing = {}
  for i, v in ipairs(conf.spacing) do spacing[i] = v end
  return {
    schemes = schemes, use_mask_for_norm = masks, ct = ct, transpose_forward = tf, spacing = spacing,
    keys = M.class_location_keys(dataset_json),
    data_order = math.tointeger(dk.order) or 3, seg_order = math.tointeger(sk.order) or 1,
    order_z = math.tointeger(dk.order_z) or 0,
    seed = 1234, max_locations = 10000, min_coverage = 0.01,
    reader = dataset.plans_reader(plans),
  }
end

-- Hash of everything that changes the preprocessed arrays: a case made with other
-- settings under the same data_identifier is not reused.
function M.settings_hash(cfg, dtype)
  -- SimpleITKIO (or none) is what every plan used before other readers existed: left out of
  -- the hash so that data preprocessed then stays valid
  local c = cfg
  if cfg.reader == nil or cfg.reader == "SimpleITKIO" then
    c = {}
    for k, v in pairs(cfg) do if k ~= "reader" then c[k] = v end end
  end
  local text = json.encode({ format = 1, cfg = c, dtype = dtype }, { indent = false })
  return M.fnv1a64(text)
end

local function copy_labels(ds, dir, quiet)
  local gt = dir .. "/gt_segmentations"
  local ok, err = fs.mkdir(gt)
  if not ok then user_error("%s", err) end
  local copy = dofile(sys.home .. "/recipes/plan_experiment.lua").copy_file
  local function same_content(a, b)
    if fs.size(a) ~= fs.size(b) then return false end
    local fa, fb = io.open(a, "rb"), io.open(b, "rb")
    local same = fa and fb and fa:read("a") == fb:read("a")
    if fa then fa:close() end
    if fb then fb:close() end
    return same
  end
  local function copy_if_changed(src, dst)   -- rerun: unchanged copies stay
    if not (fs.isfile(dst) and same_content(dst, src)) then copy(src, dst) end
  end
  for _, c in ipairs(ds.cases) do
    copy_if_changed(c.label, gt .. "/" .. c.id .. ds.file_ending)
    -- Tiff3DIO keeps a label's spacing in <label>.json beside it: copied along, so that the
    -- ground truth reads with its spacing (the reference copies the label file only)
    local side = c.label:sub(1, #c.label - #ds.file_ending) .. ".json"
    if ds.file_ending:lower():match("^%.tiff?$") and fs.isfile(side) then
      copy_if_changed(side, gt .. "/" .. c.id .. ".json")
    end
  end
end

local function threads_for(opts, i)
  local np = opts.num_processes or { 0 }
  local n = np[i] or np[#np] or 0
  if n <= 0 then n = sys.ncpu() end
  return n
end

-- Preprocesses ds for opts.configs; returns a table {config -> {done, skipped, dir}}.
function M.preprocess(ds, opts)
  opts = opts or {}
  local dir = dataset.preprocessed_dir(ds)
  local plans_name = opts.plans_name or "nnUNetPlans"
  local plans_path = dir .. "/" .. plans_name .. ".json"
  if not fs.isfile(plans_path) then
    user_error("%s not found: run `nnunet plan_experiment -d %s` first", plans_path, ds.name)
  end
  local plans, perr = json.decode_file(plans_path)
  if not plans then user_error("cannot read the plans: %s", perr) end
  dataset.check_reader(plans, plans_path)
  local reader = dataset.plans_reader(plans)
  for _, c in ipairs(ds.cases) do
    if not c.label or not fs.isfile(c.label) then user_error("case '%s' has no label file", c.id) end
    dataset.check_case_files(ds, c, reader)
  end
  local mk, merr = fs.mkdir(dir)
  if not mk then user_error("%s", merr) end
  local plan_exp = dofile(sys.home .. "/recipes/plan_experiment.lua")
  plan_exp.copy_file(ds.json_path, dir .. "/dataset.json")
  copy_labels(ds, dir, opts.quiet)

  local dtype = opts.fp16 and "f16" or "f32"
  local report, done_ids = {}, {}
  for i, name in ipairs(opts.configs or { "2d", "3d_fullres", "3d_lowres" }) do
    local conf = M.resolve_configuration(plans, name)
    if not conf then
      if not opts.quiet then
        io.stderr:write(string.format("INFO: configuration %s not found in %s, skipped\n", name, plans_path))
      end
    elseif done_ids[conf.data_identifier] then
      report[name] = report[done_ids[conf.data_identifier]]
    else
      local cfg = M.case_config(plans, conf, ds.json)
      local hash = M.settings_hash(cfg, dtype)
      local out_dir = dir .. "/" .. conf.data_identifier
      local ok, err = fs.mkdir(out_dir)
      if not ok then user_error("%s", err) end
      local todo, skipped = {}, 0
      for _, c in ipairs(ds.cases) do
        local base = out_dir .. "/" .. c.id
        if pp.is_valid(base .. ".nnu", conf.data_identifier, hash) and fs.isfile(base .. ".json") then
          skipped = skipped + 1
        else
          os.remove(base .. ".nnu.tmp")        -- leftovers of an interrupted run
          os.remove(base .. ".json.tmp")
          todo[#todo + 1] = { id = c.id, images = c.images, label = c.label }
        end
      end
      local t0 = sys.clock()
      if #todo > 0 then
        local patch = {}
        for k, v in ipairs(conf.patch_size or {}) do patch[k] = math.tointeger(v) end
        pp.run_dataset(cfg, todo, {
          out_dir = out_dir, plans_id = conf.data_identifier, plans_hash = hash, dtype = dtype,
          patch = #patch > 0 and patch or nil, threads = threads_for(opts, i),
          progress = not opts.quiet, label = name, no_fsync = opts.no_fsync,
        })
      end
      report[name] = { done = #todo, skipped = skipped, dir = out_dir, seconds = sys.clock() - t0 }
      done_ids[conf.data_identifier] = name
      if not opts.quiet then
        print(string.format("%s: %d cases preprocessed, %d already done (%s) in %.1f s", name, #todo, skipped,
          out_dir, sys.clock() - t0))
      end
    end
  end
  return report
end

local function run_one(opts)
  local ds, err = dataset.open(opts.dataset)
  if not ds then user_error("%s", err) end
  M.preprocess(ds, opts)
  return 0
end

-- several datasets (-d 4 5 ...) in turn, as the reference
function M.run(opts) return require("nnunet.recipe").for_each_dataset(opts, run_one) end

return M
