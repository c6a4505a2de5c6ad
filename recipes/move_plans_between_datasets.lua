-- reuse a dataset's plans for another dataset (pretraining / transfer): copy them with the target's name and data identifier
--
-- nnunet move_plans_between_datasets -s SOURCE -t TARGET -sp SOURCE_PLANS [-tp TARGET_PLANS] [--overwrite]
-- As nnUNetv2_move_plans_between_datasets (nnunet-behaviour.md §14; docs/models.md):
-- $nnUNet_preprocessed/SOURCE/SOURCE_PLANS.json is written as
-- $nnUNet_preprocessed/TARGET/TARGET_PLANS.json with dataset_name = TARGET,
-- plans_name = TARGET_PLANS, the image reader/writer chosen for the target's
-- file_ending, and (when the plans identifier changes) every configuration's
-- data_identifier renamed: a prefix SOURCE_PLANS becomes TARGET_PLANS, any other
-- identifier gets TARGET_PLANS_ in front. Everything else, key order included, is kept
-- byte for byte. Added checks: the target's channel count must be the plans' (one
-- normalization scheme per channel), and an existing target plans file with other
-- contents is replaced only with --overwrite (the reference overwrites it).
-- Then: nnunet preprocess -d TARGET -plans_name TARGET_PLANS, and train with -p TARGET_PLANS.
local dataset = require("nnunet.dataset")
local json = require("nnunet.json")
local fs = require("nnunet.fs")
local plans_mod = require("nnunet.plans")

local function user_error(fmt, ...)
  error({ user_error = true, message = string.format(fmt, ...) }, 0)
end

local function join(a, b) return (a:gsub("/+$", "")) .. "/" .. b end

local function read_text(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function count_keys(t)
  local n = 0
  for _ in pairs(t or {}) do n = n + 1 end
  return n
end

-- the plans with the target's names (the reference's move_plans_between_datasets)
local function moved_plans(plans, target_name, sp, tp, reader)
  plans.dataset_name = target_name
  if tp ~= sp then
    for _, c in pairs(plans.configurations or {}) do
      local old = type(c) == "table" and c.data_identifier
      if type(old) == "string" then
        if old:sub(1, #sp) == sp then c.data_identifier = tp .. old:sub(#sp + 1)
        else c.data_identifier = tp .. "_" .. old end
      end
    end
  end
  plans.image_reader_writer = reader
  plans.plans_name = tp
  return plans
end

return {
  summary = "copy a dataset's plans to another dataset under a new plans name (nnUNetv2_move_plans_between_datasets)",
  options = {
    { "-s", "source", "source dataset name or id", required = true },
    { "-t", "target", "target dataset name or id", required = true },
    { "-sp", "source_plans", "source plans identifier (nnUNetPlans for nnUNetPlans.json)", required = true },
    { "-tp", "target_plans", "target plans identifier (default: the source's; not recommended for nnUNetPlans)" },
    { "--overwrite", "overwrite", "replace an existing target plans file with other contents", flag = true },
  },
  moved_plans = moved_plans,
  run = function(o)
    local src, serr = dataset.resolve_name(o.source)
    if not src then user_error("-s: %s", serr) end
    local tgt, terr = dataset.resolve_name(o.target)
    if not tgt then user_error("-t: %s", terr) end
    local sp = o.source_plans
    local tp = o.target_plans or sp
    for _, id in ipairs({ sp, tp }) do
      if id:find("/", 1, true) or id:match("%.json$") then
        user_error("plans identifier '%s': give the name without folder and .json (nnUNetPlans)", id)
      end
    end
    local source_folder = dataset.preprocessed_dir(src)
    if not fs.isdir(source_folder) then
      user_error("Cannot move plans because the preprocessed folder of the source dataset is missing ('%s'). "
        .. "Run nnunet plan_and_preprocess for the source dataset first!", source_folder)
    end
    local source_file = join(source_folder, sp .. ".json")
    local text = read_text(source_file)
    if not text then
      user_error("Source plans are missing. Run the corresponding experiment planning first! Expected file: %s",
        source_file)
    end
    local plans, perr = json.decode_ordered(text)
    if not plans then user_error("cannot read '%s': %s", source_file, perr) end
    if type(plans) ~= "table" or type(plans.configurations) ~= "table" then
      user_error("'%s' is not a plans file (no configurations)", source_file)
    end

    -- the target's raw dataset: reader/writer, channel count
    local ds, derr = dataset.open(tgt)
    if not ds then user_error("target dataset: %s", derr) end
    if #ds.cases == 0 then user_error("target dataset '%s' has no training cases", ds.path) end
    local reader = dataset.reader_class(ds)          -- the class that reads its first training image
    for name in pairs(plans.configurations) do
      local conf = plans_mod.resolve_configuration(plans, name)
      local schemes = conf and conf.normalization_schemes
      if type(schemes) == "table" and #schemes ~= ds.num_channels then
        user_error("the plans of %s normalize %d channel(s) (configuration %s) but %s has %d (%s): the plans cannot "
          .. "be used for it", src, #schemes, name, tgt, ds.num_channels, ds.json_path)
      end
    end
    local src_dj = dataset.read_json(join(source_folder, "dataset.json"))
    if src_dj and count_keys(src_dj.labels) ~= count_keys(ds.json.labels) then
      print(string.format("Note: %s has %d labels, %s has %d; the network's output layer follows the target's "
        .. "dataset.json.", src, count_keys(src_dj.labels), tgt, count_keys(ds.json.labels)))
    end

    moved_plans(plans, tgt, sp, tp, reader)
    local out = json.encode(plans, { indent = 4 })
    local target_folder = dataset.preprocessed_dir(tgt)
    local target_file = join(target_folder, tp .. ".json")
    local old = read_text(target_file)
    if old == out then
      print(string.format("%s is already up to date", target_file))
      return 0
    end
    if old and not o.overwrite then
      user_error("'%s' already exists with other contents: choose another -tp, or pass --overwrite to replace it",
        target_file)
    end
    local ok, err = fs.mkdir(target_folder)
    if not ok then user_error("cannot create '%s': %s", target_folder, tostring(err)) end
    ok, err = json.write_file_atomic(target_file, plans, { indent = 4 })
    if not ok then user_error("cannot write '%s': %s", target_file, tostring(err)) end
    print(string.format("%s -> %s", source_file, target_file))
    print(string.format("next: nnunet preprocess -d %s -plans_name %s, then nnunet train ... -p %s", tgt, tp, tp))
    return 0
  end,
}
