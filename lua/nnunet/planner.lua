-- nnunet.planner: sequences the pure rules (rules/*.lua) into a complete nnUNetPlans.json
-- table (nnunet-behaviour.md §5.6, §13.1), key order as written by the reference.
--
--   planner.plan(fingerprint, dataset_json, settings, dataset_name [, opts]) -> plans, trace
--     fingerprint   dataset_fingerprint.json as decoded (spacings, shapes_after_crop, ...)
--     dataset_json  dataset.json as decoded (channel_names, labels, numTraining, file_ending)
--     settings      overrides of rules/defaults.lua (e.g. {gpu_memory_target = 24}) or nil
--     dataset_name  e.g. "Dataset004_Hippocampus"
--     opts.explain  true: also return the explanation trail, a list of lines ("[name]" lines
--                   open a section); nil otherwise
--     opts.can_open function(class) -> bool: whether that image reader/writer class reads
--                   the first training image (rules/reader.lua; nil: the first class listing
--                   the file ending)
--   The plans end with one key the reference does not write, "nnunet_rules" (rule set, rule
--   files with paths and versions, settings that differ from defaults.lua; see
--   rules.provenance), and, when the settings hold training_defaults (2018 rule set),
--   "nnunet_training" before it. The reference's tools ignore unknown top-level keys.
--   planner.plan_configuration(ctx, name, spacing, median, n_voxels) -> one configuration
--   planner.rules_used()  -> names of the rule files the planner loads
--
-- The returned tables are json.object()s (ordered); encode with nnunet.json to obtain the
-- reference's file byte for byte. No I/O happens here.
local json = require("nnunet.json")
local rules = require("nnunet.rules")

local M = {}

local RULES = {
  "normalization", "spacing", "transpose", "shape", "topology", "vram", "patch", "batch",
  "lowres", "config2d", "batch_dice", "resampling", "network", "reader",
}

function M.rules_used()
  local out = {}
  for i, n in ipairs(RULES) do out[i] = n end
  return out
end

local CONFIG_KEYS = {
  "data_identifier", "preprocessor_name", "batch_size", "patch_size",
  "median_image_size_in_voxels", "spacing", "normalization_schemes", "use_mask_for_norm",
  "resampling_fn_data", "resampling_fn_seg", "resampling_fn_data_kwargs",
  "resampling_fn_seg_kwargs", "resampling_fn_probabilities",
  "resampling_fn_probabilities_kwargs", "architecture", "batch_dice",
}

local PLANS_KEYS = {
  "dataset_name", "plans_name", "original_median_spacing_after_transp",
  "original_median_shape_after_transp", "image_reader_writer", "transpose_forward",
  "transpose_backward", "configurations", "experiment_planner_used", "label_manager",
  "foreground_intensity_properties_per_channel",
}

local function load_rules()
  local r = {}
  for _, n in ipairs(RULES) do r[n] = rules.load(n) end
  return r, rules.util()
end

local function copy_list(xs, conv)
  local out = {}
  for i, x in ipairs(xs) do out[i] = conv(x) end
  return out
end

local function as_int(x)
  local i = math.tointeger(x)
  if i == nil then error("planner: expected an integral value, got " .. tostring(x), 0) end
  return i
end
local function as_float(x) return x + 0.0 end

local function count_keys(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n
end

-- one configuration (2d, 3d_fullres or 3d_lowres) as the reference's get_plans_for_configuration
-- median_is_int: 3d_lowres stores its (rounded) median as integers, the others as floats
function M.plan_configuration(ctx, name, spacing, median, n_voxels, median_is_int)
  local r, cfg = ctx.r, ctx.cfg
  local dim = #spacing
  local p = r.patch.plan(spacing, median, ctx.num_classes, cfg, r, #ctx.norm.schemes)
  local bs = r.batch.batch_size(p.estimate, p.reference, p.ref_bs, n_voxels, p.patch_size, cfg)
  local res = r.resampling.functions(cfg)
  local c = json.object(CONFIG_KEYS)
  local prefix = cfg.plans_name
  if cfg.shared_data_identifier and (name == "2d" or name == "3d_fullres") then
    prefix = cfg.shared_data_identifier -- residual-encoder plans reuse nnUNetPlans' data (§5.8)
  end
  c.data_identifier = prefix .. "_" .. name
  c.preprocessor_name = cfg.preprocessor_name
  c.batch_size = as_int(bs)
  c.patch_size = copy_list(p.patch_size, as_int)
  c.median_image_size_in_voxels = copy_list(median, median_is_int and as_int or as_float)
  c.spacing = copy_list(spacing, as_float)
  c.normalization_schemes = json.array(copy_list(ctx.norm.schemes, tostring))
  c.use_mask_for_norm = json.array(copy_list(ctx.norm.use_mask_for_norm, function(b) return b == true end))
  c.resampling_fn_data = res.data.fn
  c.resampling_fn_seg = res.seg.fn
  c.resampling_fn_data_kwargs = res.data.kwargs
  c.resampling_fn_seg_kwargs = res.seg.kwargs
  c.resampling_fn_probabilities = res.probabilities.fn
  c.resampling_fn_probabilities_kwargs = res.probabilities.kwargs
  c.architecture = r.network.architecture(dim, p, cfg)
  -- planner-internal details (not part of the JSON keys above; removed by M.plan)
  return c, p
end

local function provenance_json(cfg)
  local p = rules.provenance(cfg)
  local files, settings = json.object(), json.object()
  local names = {}
  for k in pairs(p.files) do names[#names + 1] = k end
  table.sort(names)
  for _, k in ipairs(names) do
    files[k] = json.ordered({ "path", "version" }, p.files[k])
  end
  names = {}
  for k in pairs(p.settings) do names[#names + 1] = k end
  table.sort(names)
  for _, k in ipairs(names) do settings[k] = p.settings[k] end
  return json.ordered({ "rule_set", "files", "settings" }, { rule_set = p.rule_set, files = files, settings = settings })
end

function M.plan(fingerprint, dataset_json, settings, dataset_name, opts)
  assert(type(fingerprint) == "table", "planner.plan: fingerprint table expected")
  assert(type(dataset_json) == "table", "planner.plan: dataset_json table expected")
  local cfg = rules.settings(settings)
  local trace = nil
  if opts and opts.explain then
    trace = {}
    cfg._trace = trace
  end
  local function note(fmt, ...) if trace then trace[#trace + 1] = string.format(fmt, ...) end end
  local r = load_rules()
  local util = rules.util()
  local num_training = dataset_json.numTraining
  if type(num_training) ~= "number" then error("dataset.json: 'numTraining' missing", 0) end
  if type(dataset_json.labels) ~= "table" then error("dataset.json: 'labels' missing", 0) end
  note("[dataset]")
  note("%s: %d training cases, %d label entries, rule set '%s'", tostring(dataset_name), num_training,
    count_keys(dataset_json.labels), (rules.rule_set()))
  local ctx = {
    r = r, cfg = cfg,
    num_classes = count_keys(dataset_json.labels),
    norm = r.normalization.plan(fingerprint, dataset_json, cfg),
  }

  -- spacing, transposition, median shapes
  local target = r.spacing.target_spacing(fingerprint, cfg)
  local fwd, bwd = r.transpose.transpose(target, cfg)
  local spacing_t = util.permute(target, fwd)
  local median = r.shape.new_median_shape(fingerprint, target)
  local median_t = util.permute(median, fwd)
  local n_voxels = r.shape.dataset_voxels(median_t, num_training)
  note("median shape after resampling every case to the target spacing (transposed): %s; dataset ~ %s x %d = %s voxels",
    util.vec(median_t), util.num(util.prod(median_t)), num_training, util.num(n_voxels))

  -- 3d_fullres and 3d_lowres
  local full, lowres = nil, nil
  if r.shape.is_3d(median_t) then
    local full_p
    note("[3d_fullres]")
    note("spacing %s, median %s", util.vec(spacing_t), util.vec(median_t))
    full, full_p = M.plan_configuration(ctx, "3d_fullres", spacing_t, median_t, n_voxels, false)
    note("[3d_lowres]")
    -- the search plans once per spacing step; those plans are not narrated, the kept one is
    local quiet = ctx
    if trace then
      local qcfg = {}
      for k, v in pairs(cfg) do qcfg[k] = v end
      qcfg._trace = nil
      quiet = { r = ctx.r, cfg = qcfg, num_classes = ctx.num_classes, norm = ctx.norm }
    end
    local found = r.lowres.search(spacing_t, full_p.patch_size, median_t, num_training,
      function(s, m, n)
        local c, p = M.plan_configuration(quiet, "3d_lowres", s, m, n, true)
        return { config = c, patch_size = p.patch_size }
      end, cfg)
    if found then
      lowres = found.plan.config
      if trace then
        note("spacing %s, median %s", util.vec(found.spacing), util.vec(found.median))
        lowres = M.plan_configuration(ctx, "3d_lowres", found.spacing, found.median, found.n_voxels, true)
      end
    end
    if lowres then lowres.batch_dice = r.batch_dice.batch_dice("3d_lowres", true) end
    full.batch_dice = r.batch_dice.batch_dice("3d_fullres", lowres ~= nil)
    note("batch_dice: 3d_fullres %s%s", tostring(full.batch_dice),
      lowres and ", 3d_lowres false (cascade exists)" or " (no cascade)")
  else
    note("[3d]")
    note("median shape starts with 1 -> 2D data, no 3d configurations")
  end

  -- 2d
  local s2, m2, n2 = r.config2d.inputs(spacing_t, median_t, n_voxels)
  note("[2d]")
  note("spacing %s, median %s (the in-plane axes of the transposed 3D geometry)", util.vec(s2), util.vec(m2))
  local c2d = M.plan_configuration(ctx, "2d", s2, m2, n2, false)
  c2d.batch_dice = r.batch_dice.batch_dice("2d", lowres ~= nil)
  note("batch_dice: 2d %s", tostring(c2d.batch_dice))

  local configurations = json.object()
  configurations["2d"] = c2d
  if lowres then
    configurations["3d_lowres"] = lowres
    if full then lowres.next_stage = "3d_cascade_fullres" end
  end
  if full then
    configurations["3d_fullres"] = full
    if lowres then
      configurations["3d_cascade_fullres"] = json.ordered({ "inherits_from", "previous_stage" },
        { inherits_from = "3d_fullres", previous_stage = "3d_lowres" })
    end
  end

  local plans = json.object(PLANS_KEYS)
  plans.dataset_name = dataset_name
  plans.plans_name = cfg.plans_name
  plans.original_median_spacing_after_transp = r.shape.original_median_spacing(fingerprint, fwd)
  plans.original_median_shape_after_transp = r.shape.original_median_shape(fingerprint, fwd)
  plans.image_reader_writer = r.reader.image_reader_writer(dataset_json, cfg, opts and opts.can_open)
  plans.transpose_forward = copy_list(fwd, as_int)
  plans.transpose_backward = copy_list(bwd, as_int)
  plans.configurations = configurations
  plans.experiment_planner_used = cfg.experiment_planner_name
  plans.label_manager = cfg.label_manager
  -- copied from the fingerprint; statistics are floats in the reference, keys sorted
  local fg = json.object()
  local props = fingerprint.foreground_intensity_properties_per_channel or {}
  local chans = {}
  for k in pairs(props) do chans[#chans + 1] = k end
  table.sort(chans, util.bytes_less)
  for _, ch in ipairs(chans) do
    local stats = {}
    for k, v in pairs(props[ch]) do stats[k] = type(v) == "number" and v + 0.0 or v end
    fg[ch] = stats
  end
  plans.foreground_intensity_properties_per_channel = fg
  if cfg.training_defaults then plans.nnunet_training = util.copy(cfg.training_defaults) end
  plans.nnunet_rules = provenance_json(cfg)
  return plans, trace
end

return M
