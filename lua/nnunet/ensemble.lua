-- nnunet.ensemble: nnUNetv2_ensemble and the cross-validation ensembles of
-- find_best_configuration (nnunetv2/ensembling/ensemble.py, nnunet-behaviour.md §11).
--
--   local ens = require("nnunet.ensemble")
--   ens.label_converter(dataset_json_path_or_table) -> lc
--        lc.to_segmentation(probs) -> seg   (argmax; regions: p > 0.5 in regions_class_order)
--        lc.file_ending
--   ens.merge_files(npz_paths, output_truncated, lc [, save_probabilities])
--        mean of the 'probabilities' arrays (float32, file order), segmentation, written
--        to output_truncated .. file_ending with the geometry of the first file's
--        properties (<case>.json beside its .npz); with save_probabilities also
--        output_truncated .. ".npz"/".json"
--   ens.merge_many(jobs, lc, opts)
--        jobs[i] = { files = {npz...}, output_truncated = path }: merge_files for every
--        job, opts.num_processes cases at a time (C worker pool; 0: all CPUs); opts.save_npz
--        also writes the mean (CASE.npz + CASE.json); opts.label shows a progress bar
--   ens.ensemble_folders(input_folders, output_folder [, opts]) -> number of cases
--        opts = { save_npz = bool, dataset_json = path, num_processes = n, label = s }
--   ens.ensemble_crossvalidations(model_folders, output_folder, folds [, opts])
--        opts = { overwrite = true, num_processes = n, label = s }: every model's
--        fold_k/validation/*.npz, matched by case
--
-- Inputs are the --save_probabilities / --npz files of docs/inference.md: CASE.npz
-- (member 'probabilities', (K, z, y, x) float32) + CASE.json (properties with
-- sitk_stuff = {spacing, origin, direction}). Problems with the inputs (a case
-- missing from one folder, a fold without .npz files, mismatched shapes) are user
-- errors that name the folder or file.
local ops = require("nnunet.ensemble_ops")
local json = require("nnunet.json")
local fs = require("nnunet.fs")
local evaluate = require("nnunet.evaluate")
local prob = require("nnunet.probabilities")

local M = {}

local function user_error(fmt, ...)
  error({ user_error = true, message = string.format(fmt, ...) }, 0)
end

local join = evaluate.join

local bytes_less = require("nnunet.dataset").bytes_less   -- byte order, as Python's sorted()

-- Byte copy of a file (fs.copy: to a temporary name, then renamed); raises a user error.
function M.copy_file(src, dst)
  local ok, err = fs.copy(src, dst)
  if not ok then user_error("%s", err) end
end

-- Names in dir ending with `suffix` (regular files), sorted by bytes.
function M.subfiles(dir, suffix)
  local names, err = fs.listdir(dir)
  if not names then user_error("cannot list '%s': %s", dir, tostring(err)) end
  local out = {}
  for _, n in ipairs(names) do
    if (suffix == nil or (#n >= #suffix and n:sub(-#suffix) == suffix)) and fs.isfile(join(dir, n)) then
      out[#out + 1] = n
    end
  end
  table.sort(out, bytes_less)
  return out
end

-- ---------------------------------------------------------------- label manager

local function read_dataset_json(dj)
  if type(dj) == "table" then return dj, nil end
  local f = io.open(dj, "rb")
  if not f then user_error("cannot read dataset.json '%s'", dj) end
  local text = f:read("a")
  f:close()
  local v, err = json.decode(text)
  if not v then user_error("dataset.json '%s': %s", dj, tostring(err)) end
  return v, text
end

-- LabelManager.convert_probabilities_to_segmentation: argmax over the channels, or
-- for region models seg[p_i > 0.5] = regions_class_order[i] in order.
function M.label_converter(dj)
  local v, text = read_dataset_json(dj)
  local lm = evaluate.label_manager(v, text)
  local lc = { file_ending = lm.file_ending, has_regions = lm.has_regions, label_manager = lm }
  if lm.has_regions then
    local rco = v.regions_class_order
    if type(rco) ~= "table" or #rco == 0 then
      user_error("dataset.json: a region-based dataset needs 'regions_class_order'")
    end
    local order = {}
    for i, x in ipairs(rco) do
      order[i] = math.tointeger(x)
      if not order[i] then user_error("dataset.json: regions_class_order[%d] = %s is not an integer", i, tostring(x)) end
    end
    lc.regions_class_order = order
    function lc.to_segmentation(probs)
      if probs:shape()[1] ~= #order then
        user_error("probabilities have %d channels but dataset.json has %d regions", probs:shape()[1], #order)
      end
      return ops.regions(probs, order)
    end
  else
    local k = #lm.all_labels                  -- num_segmentation_heads: background + foreground labels
    function lc.to_segmentation(probs)
      if probs:shape()[1] ~= k then
        user_error("probabilities have %d channels but dataset.json has %d labels (incl. background)",
          probs:shape()[1], k)
      end
      return ops.argmax(probs)
    end
  end
  return lc
end

-- ---------------------------------------------------------------- one case

-- The geometry a segmentation is written with, from a properties table (CASE.json):
-- its sitk_stuff (what SimpleITK writes, as the reference), or, when the properties
-- carry the input's raw NIfTI header (key "nifti" with "header", as the
-- preprocessing's properties files do), that header, so the output matches what
-- nnunet predict writes for the same case.
function M.geometry(props, where)
  if type(props) == "table" and type(props.nifti) == "table" and type(props.nifti.spacing_itk) == "table" then
    return props.nifti
  end
  local s = type(props) == "table" and props.sitk_stuff
  if type(s) ~= "table" or type(s.spacing) ~= "table" or type(s.origin) ~= "table" or type(s.direction) ~= "table" then
    user_error("'%s': properties without sitk_stuff {spacing, origin, direction}", where)
  end
  -- the array-order spacing rides along for formats that store it beside the image
  -- (Tiff3DIO's sidecar)
  local spacing = type(props.spacing) == "table" and #props.spacing == 3 and props.spacing or nil
  if #s.spacing == 2 then   -- a 2-D image, as SimpleITK reports it: written back as 2-D
    local d = s.direction
    return { spacing_itk = { s.spacing[1], s.spacing[2], 1 }, origin = { s.origin[1], s.origin[2], 0 },
             direction = { d[1], d[2], 0, d[3], d[4], 0, 0, 0, 1 }, spatial_dims = 2, spacing = spacing }
  end
  return { spacing_itk = s.spacing, origin = s.origin, direction = s.direction, spacing = spacing }
end

function M.merge_files(npz_paths, output_truncated, lc, save_probabilities)
  local nifti = require("nnunet.image")
  local first_props = npz_paths[1]:gsub("%.npz$", ".json")
  local props, perr = json.decode_file(first_props)
  if not props then user_error("cannot read the properties '%s': %s", first_props, tostring(perr)) end
  local probs <close>, err = ops.mean_npz(npz_paths, "probabilities")
  if not probs then user_error("ensembling %s: %s", table.concat(npz_paths, ", "), tostring(err)) end
  local seg <close> = lc.to_segmentation(probs)
  local out = output_truncated .. lc.file_ending
  local ok, werr = nifti.write(out, seg, M.geometry(props, first_props), { segmentation = true })
  if not ok then user_error("cannot write '%s': %s", out, tostring(werr)) end
  if save_probabilities then
    local sok, serr = prob.save(output_truncated, probs, props)
    if not sok then user_error("cannot write '%s.npz': %s", output_truncated, tostring(serr)) end
  end
end

-- Every job's merge_files on the C worker pool (ops.merge_cases: mean, segmentation,
-- NIfTI and, with save_npz, the mean's .npz per case; the same files as merge_files);
-- the properties (geometry) are read here first, so a bad CASE.json fails before any
-- work starts.
function M.merge_many(jobs, lc, opts)
  opts = opts or {}
  local cases, props_of = {}, {}
  for i, j in ipairs(jobs) do
    local pfile = j.files[1]:gsub("%.npz$", ".json")
    local props, perr = json.decode_file(pfile)
    if not props then user_error("cannot read the properties '%s': %s", pfile, tostring(perr)) end
    props_of[i] = props
    cases[i] = { files = j.files, output = j.output_truncated .. lc.file_ending, geometry = M.geometry(props, pfile),
                 probabilities = opts.save_npz and (j.output_truncated .. ".npz") or nil }
  end
  local channels = lc.regions_class_order and #lc.regions_class_order or #lc.label_manager.all_labels
  local ok, err = ops.merge_cases(cases, { channels = channels, class_order = lc.regions_class_order,
                                           threads = opts.num_processes or 0, label = opts.label })
  if not ok then user_error("ensembling: %s", tostring(err)) end
  -- --save_npz: the properties beside the mean, as prob.save writes them
  if not opts.save_npz then return end
  for i, j in ipairs(jobs) do
    local wok, werr = json.write_file_atomic(j.output_truncated .. ".json", props_of[i], { indent = 4 })
    if not wok then user_error("cannot write '%s.json': %s", j.output_truncated, tostring(werr)) end
  end
end

-- ---------------------------------------------------------------- folders

function M.ensemble_folders(input_folders, output_folder, opts)
  opts = opts or {}
  if #input_folders < 1 then user_error("ensemble: no input folders") end
  for _, d in ipairs(input_folders) do
    if not fs.isdir(d) then user_error("ensemble: input folder '%s' not found", d) end
  end
  local dj = opts.dataset_json or join(input_folders[1], "dataset.json")
  if not fs.isfile(dj) then
    user_error("ensemble: '%s' not found (nnunet predict copies dataset.json into its output folder; "
      .. "give -dataset_json otherwise)", dj)
  end
  local lc = M.label_converter(dj)
  -- every folder must hold the same cases (the reference asserts the same)
  local per_folder, all, names = {}, {}, {}
  for i, d in ipairs(input_folders) do
    per_folder[i] = {}
    for _, n in ipairs(M.subfiles(d, ".npz")) do
      per_folder[i][n] = true
      if not all[n] then all[n] = true; names[#names + 1] = n end
    end
  end
  if #names == 0 then
    user_error("ensemble: no .npz files in %s (predict with --save_probabilities)", table.concat(input_folders, ", "))
  end
  table.sort(names, bytes_less)
  for i, d in ipairs(input_folders) do
    local missing = {}
    for _, n in ipairs(names) do if not per_folder[i][n] then missing[#missing + 1] = n end end
    if #missing > 0 then
      user_error("ensemble: not all folders contain the same cases: '%s' lacks %d (e.g. '%s'); "
        .. "give only folders predicted with --save_probabilities for the same images", d, #missing, missing[1])
    end
  end
  local ok, err = fs.mkdir(output_folder)
  if not ok then user_error("cannot create '%s': %s", output_folder, tostring(err)) end
  M.copy_file(dj, join(output_folder, "dataset.json"))       -- byte copy keeps the key order
  local jobs = {}
  for i, n in ipairs(names) do
    local files = {}
    for j, d in ipairs(input_folders) do files[j] = join(d, n) end
    jobs[i] = { files = files, output_truncated = join(output_folder, n:sub(1, -5)) }
  end
  M.merge_many(jobs, lc, opts)
  return #names
end

-- ensemble_crossvalidations: the validation probabilities of every fold of every
-- model, case by case; plans.json and dataset.json of the first model are copied.
function M.ensemble_crossvalidations(model_folders, output_folder, folds, opts)
  opts = opts or {}
  local overwrite = opts.overwrite ~= false
  local dj = join(model_folders[1], "dataset.json")
  if not fs.isfile(dj) then user_error("'%s' not found (written by nnunet train)", dj) end
  local lc = M.label_converter(dj)
  local files_per_model, unique, names = {}, {}, {}
  for m, tr in ipairs(model_folders) do
    files_per_model[m] = {}
    for _, f in ipairs(folds) do
      local vdir = join(join(tr, "fold_" .. tostring(f)), "validation")
      if not fs.isdir(vdir) then
        user_error("expected model output folder '%s' does not exist: train all requested folds of the model "
          .. "(model %s, fold %s)", vdir, tr, tostring(f))
      end
      local here = M.subfiles(vdir, ".npz")
      if #here == 0 then
        user_error("no .npz files in '%s': rerun the validation with --npz (nnunet train -d ID -c CONFIG -f %s --val --npz)",
          vdir, tostring(f))
      end
      files_per_model[m][f] = here
      for _, n in ipairs(here) do
        if not unique[n] then unique[n] = true; names[#names + 1] = n end
      end
    end
  end
  table.sort(names, bytes_less)
  -- every model must have every case, each in exactly one fold
  local mapping = {}
  for m, tr in ipairs(model_folders) do
    mapping[m] = {}
    for _, f in ipairs(folds) do
      for _, n in ipairs(files_per_model[m][f]) do
        if mapping[m][n] then
          user_error("case '%s' is present in more than one fold of model '%s'", n, tr)
        end
        mapping[m][n] = join(join(join(tr, "fold_" .. tostring(f)), "validation"), n)
      end
    end
    local missing = {}
    for _, n in ipairs(names) do if not mapping[m][n] then missing[#missing + 1] = n end end
    if #missing > 0 then
      user_error("model '%s' does not contain all validation predictions of folds %s: %d missing (e.g. '%s'; "
        .. "other models predicted it)", tr, table.concat(folds, " "), #missing, missing[1])
    end
  end
  local ok, err = fs.mkdir(output_folder)
  if not ok then user_error("cannot create '%s': %s", output_folder, tostring(err)) end
  local jobs = {}
  for _, n in ipairs(names) do
    local trunc = join(output_folder, n:sub(1, -5))
    if overwrite or not fs.isfile(trunc .. lc.file_ending) then
      local files = {}
      for m = 1, #model_folders do files[m] = mapping[m][n] end
      jobs[#jobs + 1] = { files = files, output_truncated = trunc }
    end
  end
  M.merge_many(jobs, lc, { num_processes = opts.num_processes, label = opts.label })
  M.copy_file(join(model_folders[1], "plans.json"), join(output_folder, "plans.json"))
  M.copy_file(dj, join(output_folder, "dataset.json"))
  return #names
end

return M
