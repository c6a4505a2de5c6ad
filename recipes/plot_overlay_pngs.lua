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
-- Needs PNG support (cairo at build time).
local dataset = require("nnunet.dataset")
local json = require("nnunet.json")
local fs = require("nnunet.fs")
local image_io = require("nnunet.image")
local overlay = require("nnunet.overlay")
local plans_mod = require("nnunet.plans")
local progress = require("nnunet.progress")

local function user_error(fmt, ...)
  error({ user_error = true, message = string.format(fmt, ...) }, 0)
end

local function join(a, b) return (a:gsub("/+$", "")) .. "/" .. b end

-- a (Y, X) image read from a 2-D file is drawn as the single slice of (1, Y, X)
local function as_volume(t)
  if t:ndim() == 2 then
    local s = t:shape()
    local v = t:reshape({ 1, s[1], s[2] })
    t:release()
    return v
  end
  return t
end

local function write_png(path, rgb)
  local ok, err = overlay.write_png(path, rgb)
  rgb:release()
  if not ok then user_error("%s", err) end
end

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
    jobs[#jobs + 1] = { id = c.id, image = img, label = c.label, in_file = in_file }
  end
  return jobs
end

local function draw_raw(job, out, intensity)
  local image, ierr = image_io.read(job.image)
  if not image then user_error("cannot read '%s': %s", job.image, tostring(ierr)) end
  local in_file = job.in_file or 0
  if image:ndim() ~= 4 and in_file > 0 then
    image:release()
    user_error("'%s' holds one channel: -channel_idx %d does not exist", job.image, in_file)
  end
  if image:ndim() == 4 then   -- a file holding several channels: the one asked for
    if in_file >= image:shape()[1] then
      user_error("'%s' has %d channel(s): -channel_idx %d does not exist", job.image, image:shape()[1], job.in_file)
    end
    local ch = image:select(1, (job.in_file or 0) + 1)
    local v = ch:contiguous()
    ch:release()
    image:release()
    image = v
  end
  local seg, serr = image_io.read(job.label)
  if not seg then image:release(); user_error("cannot read '%s': %s", job.label, tostring(serr)) end
  image, seg = as_volume(image), as_volume(seg)
  local a, b = image:shape(), seg:shape()
  if table.concat(a, ",") ~= table.concat(b, ",") or #a ~= 3 then
    image:release(); seg:release()
    user_error("image and seg do not have the same 3-D shape: '%s' [%s], '%s' [%s]", job.image, table.concat(a, ", "),
      job.label, table.concat(b, ", "))
  end
  local rgb = overlay.case(image, seg, intensity)
  image:release()
  seg:release()
  write_png(out, rgb)
end

-- the preprocessed cases (CASE.nnu) of a configuration
local function cases_from_preprocessed(name, plans_id, config)
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
    if id then jobs[#jobs + 1] = { id = id, store = join(data_dir, n) } end
  end
  table.sort(jobs, function(x, y) return dataset.bytes_less(x.id, y.id) end)
  if #jobs == 0 then user_error("no preprocessed cases (*.nnu) in '%s'", data_dir) end
  return jobs
end

local function draw_preprocessed(job, out, intensity, channel_idx)
  local pp = require("nnunet.preproc_case")
  local store, err = pp.open(job.store)
  if not store then user_error("cannot open '%s': %s", job.store, tostring(err)) end
  local data, seg = store:read_all()
  store:close()
  if not data then user_error("cannot read '%s': %s", job.store, tostring(seg)) end
  local nch = data:shape()[1]
  if channel_idx >= nch then
    data:release(); seg:release()
    user_error("This dataset only supports channel index up to %d (-channel_idx %d; '%s')", nch - 1, channel_idx,
      job.store)
  end
  local image = data:select(1, channel_idx + 1)
  local s0 = seg:select(1, 1)
  local rgb = overlay.case(image, s0, intensity)
  image:release(); s0:release(); data:release(); seg:release()
  write_png(out, rgb)
end

return {
  summary = "PNG per training case: the slice with the most foreground, labels overlaid (nnUNetv2_plot_overlay_pngs)",
  options = {
    { "-d", "dataset", "dataset id or name", required = true },
    { "-o", "output", "output folder", required = true },
    { "-np", "num_processes", "number of processes (accepted; cases are drawn in turn)", type = "int", default = 8 },
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
    local jobs = o.use_raw and cases_from_raw(name, o.channel_idx) or cases_from_preprocessed(name, o.plans, o.config)
    local ok, err = fs.mkdir(o.output)
    if not ok then user_error("cannot create '%s': %s", o.output, tostring(err)) end
    local bar = progress.new("overlays", #jobs)
    for _, job in ipairs(jobs) do
      local out = join(o.output, job.id .. ".png")
      if o.use_raw then draw_raw(job, out, o.overlay_intensity)
      else draw_preprocessed(job, out, o.overlay_intensity, o.channel_idx) end
      bar:step(1, job.id)
      collectgarbage("step")
    end
    bar:finish("")
    print(string.format("%d overlays written to %s", #jobs, o.output))
    return 0
  end,
}
