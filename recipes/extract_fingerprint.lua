-- compute a dataset's fingerprint (nnUNetv2_extract_fingerprint) into $nnUNet_preprocessed
--
-- nnunet extract_fingerprint -d ID [-np N] [--clean] [--quiet]
--
-- For every training case: crop to the nonzero region, record the shape after
-- cropping, the spacing and the relative size, and draw foreground intensity
-- samples exactly as nnU-Net v2 does (nnunet-behaviour.md §2); then the
-- per-channel statistics. Writes
--   $nnUNet_preprocessed/DatasetXXX_Name/dataset_fingerprint.json
-- with the reference's keys, atomically (tmp + rename). An existing fingerprint
-- is kept unless --clean is given (as the reference). Other recipes call
-- M.extract(ds, opts) directly.
local dataset = require("nnunet.dataset")
local fs = require("nnunet.fs")
local json = require("nnunet.json")
local preprocess = require("nnunet.preprocess")

local M = {
  summary = "compute a dataset's fingerprint (nnUNetv2_extract_fingerprint)",
  options = {
    require("nnunet.recipe").DATASETS_OPTION,
    { "-np", "num_processes", "worker threads (0: number of CPUs)", type = "int", default = 0 },
    { "--clean", "clean", "recompute even if dataset_fingerprint.json exists", flag = true },
    { "--quiet", "quiet", "no progress bar", flag = true },
  },
}

local function user_error(fmt, ...)
  error({ user_error = true, message = string.format(fmt, ...) }, 0)
end

-- The fingerprint of ds (from nnunet.dataset.open) as the reference's JSON table.
-- opts: num_processes, quiet. Returns the table (and the per-case relative sizes).
function M.compute(ds, opts)
  opts = opts or {}
  local cases = {}
  if #ds.cases == 0 then user_error("dataset '%s' has no training cases", ds.name) end
  local reader = dataset.reader_class(ds)
  for i, c in ipairs(ds.cases) do
    if not c.label then user_error("case '%s' has no label file in labelsTr", c.id) end
    dataset.check_case_files(ds, c, reader)
    cases[i] = { images = c.images, label = c.label }
  end
  local fp, err = preprocess.fingerprint(cases, ds.num_channels,
    { threads = opts.num_processes or 0, progress = not opts.quiet, reader = reader })
  if not fp then user_error("fingerprint of '%s': %s", ds.name, err) end
  local out = {
    foreground_intensity_properties_per_channel = fp.foreground_intensity_properties_per_channel,
    median_relative_size_after_cropping = fp.median_relative_size_after_cropping,
    shapes_after_crop = fp.shapes_after_crop,
    spacings = fp.spacings,
  }
  return out, fp
end

-- Computes (unless present and not opts.clean) and writes the fingerprint; returns its path.
function M.extract(ds, opts)
  opts = opts or {}
  local dir = dataset.preprocessed_dir(ds)
  local path = dir .. "/dataset_fingerprint.json"
  if fs.isfile(path) and not opts.clean then
    if not opts.quiet then io.stderr:write(string.format("%s exists, not recomputed (--clean to redo)\n", path)) end
    return path, false
  end
  local fp = M.compute(ds, opts)
  local ok, err = fs.mkdir(dir)
  if not ok then user_error("%s", err) end
  ok, err = json.write_file_atomic(path, fp)
  if not ok then user_error("cannot write %s: %s", path, err) end
  return path, true
end

local function run_one(opts)
  local ds, err = dataset.open(opts.dataset)
  if not ds then user_error("%s", err) end
  local path, computed = M.extract(ds, opts)
  if computed and not opts.quiet then print(string.format("wrote %s (%d cases)", path, #ds.cases)) end
  return 0
end

-- several datasets (-d 4 5 ...) in turn, as the reference
function M.run(opts) return require("nnunet.recipe").for_each_dataset(opts, run_one) end

return M
