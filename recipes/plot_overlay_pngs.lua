-- draw a PNG per training case: the slice with the most foreground, segmentation overlaid (a visual check of the data)
--
-- nnunet plot_overlay_pngs -d ID -o OUTPUT_FOLDER [-np N] [-channel_idx 0] [--use_raw] [-p nnUNetPlans]
--        [-c CONFIG] [-overlay_intensity 0.6]
-- As nnUNetv2_plot_overlay_pngs (nnunetv2/utilities/overlay_plots.py; nnunet-behaviour.md
-- §14; docs/models.md): for every training case OUTPUT_FOLDER/CASE.png shows one axial
-- slice (array axis 0) of channel -channel_idx with the labels painted over it. By
-- default the preprocessed data of configuration -c (3d_fullres if planned, else 2d)
-- of plans -p are drawn; --use_raw draws imagesTr/labelsTr instead. Slice choice and
-- colours are the reference's (core/nnu_overlay.h); spacing is ignored, as there.
-- Existing PNGs of the same cases are replaced (they are derived from the data).
-- The cases are drawn by -np workers (overlay.cases, one case in memory per worker).
local dataset = require("nnunet.dataset")
local json = require("nnunet.json")
local fs = require("nnunet.fs")
local overlay = require("nnunet.overlay")
local plans_mod = require("nnunet.plans")

local function user_error(fmt, ...)
  error({ user_error = true, message = string.format(fmt, ...) }, 0)
end

local function join(a, b) return (a:gsub("/+$", "")) .. "/" .. b end

-- imagesTr / labelsTr of the raw dataset
local function cases_from_raw(name, channel_idx)
  local ds, err = dataset.open(name)
  if not ds then user_error("%s", err) end
  local jobs = {}
  for _, c in ipairs(ds.cases) do
    local img, in_file = c.images[channel_idx + 1], 0
    if not img and #c.images == 1 then img, in_file = c.images[1], channel_idx end   -- RGB PNG, 4-D NIfTI
    if not img then
      user_error("case '%s' has %d channel file(s): -channel_idx %d does not exist", c.id, #c.images, channel_idx)
    end
    if not fs.isfile(img) then user_error("image file '%s' not found", img) end
    if not (c.label and fs.isfile(c.label)) then user_error("label file '%s' not found", tostring(c.label)) end
    jobs[#jobs + 1] = { id = c.id, image = img, label = c.label, channel = in_file }
  end
  return jobs, dataset.reader_class(ds)
end

-- the preprocessed cases (CASE.nnu) of a configuration
local function cases_from_preprocessed(name, plans_id, config, channel_idx)
  local folder = dataset.preprocessed_dir(name)
  if not fs.isdir(folder) then user_error("'%s' does not exist: run preprocessing for that dataset first", folder) end
  local plans_file = join(folder, plans_id .. ".json")
  local plans, perr = json.decode_file(plans_file)
  if not plans then user_error("cannot read plans '%s': %s", plans_file, tostring(perr)) end
  if config == nil then
    config = (type(plans.configurations) == "table" and plans.configurations["3d_fullres"] ~= nil) and "3d_fullres"
      or "2d"
  end
  local conf = plans_mod.resolve_configuration(plans, config)
  if not conf then user_error("configuration '%s' is not in '%s'", config, plans_file) end
  local data_dir = join(folder, conf.data_identifier or (plans_id .. "_" .. config))
  if not fs.isdir(data_dir) then
    user_error("Preprocessed data folder for configuration %s of plans identifier %s (%s) does not exist ('%s'). "
      .. "Run preprocessing for this configuration first!", config, plans_id, name, data_dir)
  end
  local jobs = {}
  for _, n in ipairs(fs.listdir(data_dir) or {}) do
    local id = n:match("^(.*)%.nnu$")
    if id then jobs[#jobs + 1] = { id = id, store = join(data_dir, n), channel = channel_idx } end
  end
  table.sort(jobs, function(x, y) return dataset.bytes_less(x.id, y.id) end)
  if #jobs == 0 then user_error("no preprocessed cases (*.nnu) in '%s'", data_dir) end
  return jobs
end

return {
  summary = "PNG per training case: the slice with the most foreground, labels overlaid (nnUNetv2_plot_overlay_pngs)",
  options = {
    { "-d", "dataset", "dataset id or name", required = true },
    { "-o", "output", "output folder", required = true },
    { "-np", "num_processes", "number of cases drawn at the same time (0: all CPUs)", type = "int", default = 8 },
    { "-channel_idx", "channel_idx", "channel drawn (0 = _0000)", type = "int", default = 0 },
    { "--use_raw", "use_raw", "draw the raw imagesTr/labelsTr instead of the preprocessed data", flag = true },
    { "-p", "plans", "plans identifier (preprocessed data only)", default = "nnUNetPlans" },
    { "-c", "config", "configuration (preprocessed data only; default: 3d_fullres if planned, else 2d)" },
    { "-overlay_intensity", "overlay_intensity", "overlay intensity: higher = brighter, less transparent",
      type = "number", default = 0.6 },
  },
  run = function(o)
    if o.channel_idx < 0 then user_error("-channel_idx must be >= 0, got %d", o.channel_idx) end
    local name, nerr = dataset.resolve_name(o.dataset)
    if not name then user_error("%s", nerr) end
    local jobs, reader
    if o.use_raw then jobs, reader = cases_from_raw(name, o.channel_idx)
    else jobs = cases_from_preprocessed(name, o.plans, o.config, o.channel_idx) end
    local ok, err = fs.mkdir(o.output)
    if not ok then user_error("cannot create '%s': %s", o.output, tostring(err)) end
    for _, job in ipairs(jobs) do job.output = join(o.output, job.id .. ".png") end
    local done, derr = overlay.cases(jobs, { intensity = o.overlay_intensity, reader = reader,
      threads = o.num_processes, label = "overlays" })
    -- the C message without its source prefix
    if not done then user_error("%s", (tostring(derr):gsub("^item:%d+: ", ""):gsub("^[%w_]+%.c:%d+: ", ""))) end
    print(string.format("%d overlays written to %s", #jobs, o.output))
    return 0
  end,
}
