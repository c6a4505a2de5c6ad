-- nnunet.evaluate: nnU-Net v2's evaluation (nnunetv2/evaluation/evaluate_predictions.py,
-- nnunet-behaviour.md §12 and Appendix B; test vectors L.7).
--
--   local ev = require("nnunet.evaluate")
--   local lm = ev.label_manager(dataset_json_path_or_table [, raw_text])
--        lm.regions_or_labels  {1, 2} or {{1, 2, 3}, {2, 3}, 3} (foreground only)
--        lm.ignore_label       integer or nil;  lm.has_regions;  lm.file_ending
--   ev.key(r)                  "1" | "(1, 2)" | "(2,)"   (Python's str of int / tuple)
--   ev.compute_metrics(ref_file, pred_file, regions_or_labels, ignore_label)
--        -> { reference_file, prediction_file, metrics = { [key] = {Dice, IoU, FP, TP,
--             FN, TN, n_pred, n_ref} } }
--   ev.summarize(metric_list, regions_or_labels) -> { metric_per_case, mean, foreground_mean }
--   ev.compute_metrics_on_folder(ref_dir, pred_dir, output_file, file_ending,
--        regions_or_labels, ignore_label [, {chill = bool, progress = fn(i, n),
--        num_processes = n (cases read and counted by n threads; default 1),
--        image_reader = the image reader/writer class (nil: by file ending)}])
--        -> result table (also written to output_file unless it is false)
--   ev.encode_summary(result)  -> the summary.json text (indent 4, sorted keys, bare NaN)
--
-- Files evaluated are the prediction folder's files with the file ending, in sorted
-- (byte) order, each matched by name in the reference folder; without chill every
-- reference file must have a prediction. Paths in the summary are os.path.join(folder,
-- name) of the folders as given. Means are numpy's (infer.np_nanmean / np_mean), so the
-- printed floats equal the reference's digit for digit.
local infer = require("nnunet.infer")
local json = require("nnunet.json")
local fs = require("nnunet.fs")

local M = {}

local METRICS = { "Dice", "FN", "FP", "IoU", "TN", "TP", "n_pred", "n_ref" }
M.METRICS = METRICS

local function user_error(fmt, ...)
  error({ user_error = true, message = string.format(fmt, ...) }, 0)
end

local bytes_less = require("nnunet.dataset").bytes_less   -- byte order, as Python's sorted()

-- os.path.join(a, b)
local function join(a, b)
  if a == "" or a:sub(-1) == "/" then return a .. b end
  return a .. "/" .. b
end
M.join = join

-- ---------------------------------------------------------------- labels

-- Key order of the object `"labels": {...}` in the raw dataset.json text (lua-cjson
-- loses it; regions are declared in that order). Returns nil if not found.
local function labels_key_order(text)
  local s = text:find('"labels"%s*:%s*{')
  if not s then return nil end
  local i = text:find("{", s, true) + 1
  local keys, depth, n = {}, 0, #text
  local expect_key = true
  while i <= n do
    local c = text:sub(i, i)
    if c == '"' then
      local j, buf = i + 1, {}
      while j <= n do
        local d = text:sub(j, j)
        if d == "\\" then buf[#buf + 1] = text:sub(j, j + 1); j = j + 2
        elseif d == '"' then break
        else buf[#buf + 1] = d; j = j + 1 end
      end
      if depth == 0 and expect_key then
        local raw = table.concat(buf)
        local ok, v = pcall(json.decode, '"' .. raw .. '"')
        keys[#keys + 1] = ok and v or raw
        expect_key = false
      end
      i = j + 1
    elseif c == "{" or c == "[" then depth = depth + 1; i = i + 1
    elseif c == "]" then depth = depth - 1; i = i + 1
    elseif c == "}" then
      if depth == 0 then return keys end
      depth = depth - 1; i = i + 1
    elseif c == "," then
      if depth == 0 then expect_key = true end
      i = i + 1
    else i = i + 1 end
  end
  return keys
end

local function as_int(v, what)
  local n = math.tointeger(v)
  if n == nil then user_error("dataset.json: %s must be an integer, got %s", what, tostring(v)) end
  return n
end

-- LabelManager essentials: foreground labels or regions, ignore label, file ending.
function M.label_manager(dj, raw_text)
  if type(dj) == "string" then
    local f = io.open(dj, "rb")
    if not f then user_error("cannot read dataset.json '%s'", dj) end
    raw_text = f:read("a")
    f:close()
    local v, err = json.decode(raw_text)
    if not v then user_error("dataset.json '%s': %s", dj, tostring(err)) end
    dj = v
  end
  if type(dj.labels) ~= "table" then user_error("dataset.json has no 'labels'") end
  local order = raw_text and labels_key_order(raw_text) or nil
  if not order then
    order = {}
    for k in pairs(dj.labels) do order[#order + 1] = k end
    table.sort(order, bytes_less)
  end
  local lm = { file_ending = dj.file_ending or ".nii.gz", has_regions = false }
  local all, seen = {}, {}
  for _, k in ipairs(order) do
    local v = dj.labels[k]
    if k == "ignore" then
      lm.ignore_label = as_int(v, "labels.ignore")
    elseif type(v) == "table" then
      if #v > 1 then lm.has_regions = true end
      for _, x in ipairs(v) do
        local n = as_int(x, "labels." .. k)
        if not seen[n] then seen[n] = true; all[#all + 1] = n end
      end
    else
      local n = as_int(v, "labels." .. k)
      if not seen[n] then seen[n] = true; all[#all + 1] = n end
    end
  end
  table.sort(all)
  lm.all_labels = all
  lm.foreground_labels = {}
  for _, l in ipairs(all) do if l ~= 0 then lm.foreground_labels[#lm.foreground_labels + 1] = l end end
  if lm.has_regions then
    local regions = {}
    for _, k in ipairs(order) do
      local v = dj.labels[k]
      if k ~= "ignore" then
        if type(v) == "table" then
          local only_bg = true
          local r = {}
          for i, x in ipairs(v) do r[i] = as_int(x, "labels." .. k); if r[i] ~= 0 then only_bg = false end end
          if not only_bg then regions[#regions + 1] = r end
        elseif as_int(v, "labels." .. k) ~= 0 then
          regions[#regions + 1] = as_int(v, "labels." .. k)
        end
      end
    end
    lm.foreground_regions = regions
    lm.regions_or_labels = regions
  else
    lm.regions_or_labels = lm.foreground_labels
  end
  return lm
end

-- Python str() of a label (int) or region (tuple)
function M.key(r)
  if type(r) ~= "table" then return string.format("%d", r) end
  local parts = {}
  for i, x in ipairs(r) do parts[i] = string.format("%d", x) end
  if #parts == 1 then return "(" .. parts[1] .. ",)" end
  return "(" .. table.concat(parts, ", ") .. ")"
end

-- ---------------------------------------------------------------- per case

-- A segmentation file as a tensor, read with the image reader/writer class `class`
-- (nil: by the file's ending).
local function read_seg(path, class)
  local t, info = require("nnunet.image").read(path, { reader = class, seg = true })
  if not t then user_error("cannot read '%s': %s", path, tostring(info)) end
  return t
end
M.read_seg = read_seg

function M.compute_metrics(reference_file, prediction_file, regions_or_labels, ignore_label, reader)
  reader = reader or read_seg
  local ref <close> = reader(reference_file)
  local pred <close> = reader(prediction_file)
  local rs, ps = ref:shape(), pred:shape()
  if table.concat(rs, ",") ~= table.concat(ps, ",") then
    user_error("shape mismatch: '%s' is (%s), '%s' is (%s)", reference_file, table.concat(rs, ", "),
      prediction_file, table.concat(ps, ", "))
  end
  local counts = infer.confusion(ref, pred, regions_or_labels, ignore_label)
  local metrics = {}
  for i, r in ipairs(regions_or_labels) do
    metrics[M.key(r)] = counts[i]
  end
  return { reference_file = reference_file, prediction_file = prediction_file, metrics = metrics }
end

-- ---------------------------------------------------------------- summary

function M.summarize(metric_list, regions_or_labels)
  if #metric_list == 0 then user_error("no cases to evaluate") end
  local mean = {}
  for _, r in ipairs(regions_or_labels) do
    local k = M.key(r)
    mean[k] = {}
    for _, m in ipairs(METRICS) do
      local vals = {}
      for i, case in ipairs(metric_list) do vals[i] = case.metrics[k][m] + 0.0 end
      mean[k][m] = infer.np_nanmean(vals)
    end
  end
  local foreground_mean = {}
  for _, m in ipairs(METRICS) do
    local vals = {}
    for _, r in ipairs(regions_or_labels) do
      local k = M.key(r)
      if k ~= "0" then vals[#vals + 1] = mean[k][m] end
    end
    foreground_mean[m] = infer.np_mean(vals)
  end
  return { metric_per_case = metric_list, mean = mean, foreground_mean = foreground_mean }
end

function M.encode_summary(result)
  return json.encode(result, { indent = 4 })
end

-- names of the files in dir ending in `ending`, sorted bytewise (user error if dir cannot be listed)
local function list_files(dir, ending)
  local names, err = fs.listdir(dir)
  if not names then user_error("cannot list '%s': %s", dir, tostring(err)) end
  local out = {}
  for _, n in ipairs(names) do
    if #n >= #ending and n:sub(-#ending) == ending and fs.isfile(join(dir, n)) then out[#out + 1] = n end
  end
  table.sort(out, bytes_less)
  return out
end
M.list_files = list_files

function M.compute_metrics_on_folder(folder_ref, folder_pred, output_file, file_ending, regions_or_labels,
                                     ignore_label, opts)
  opts = opts or {}
  if not fs.isdir(folder_ref) then user_error("reference folder '%s' not found", folder_ref) end
  if not fs.isdir(folder_pred) then user_error("prediction folder '%s' not found", folder_pred) end
  local files_pred = list_files(folder_pred, file_ending)
  if not opts.chill then
    local missing = {}
    for _, n in ipairs(list_files(folder_ref, file_ending)) do
      if not fs.isfile(join(folder_pred, n)) then missing[#missing + 1] = n end
    end
    if #missing > 0 then
      user_error("not all files in the reference folder exist in the prediction folder (%d missing, e.g. '%s'; "
        .. "--chill evaluates only the predicted cases)", #missing, missing[1])
    end
  end
  local metric_list = {}
  for _, n in ipairs(files_pred) do
    local rf = join(folder_ref, n)
    if not fs.isfile(rf) then user_error("prediction '%s' has no reference file '%s'", n, rf) end
  end
  local np = opts.num_processes or 1
  if np > 1 and not opts.reader and #files_pred > 1 and infer.confusion_files then
    -- NIfTI files read and counted by a pool of np threads (the reference's -np);
    -- same numbers as the sequential path, in the same (sorted) order
    local pairs_ = {}
    for i, n in ipairs(files_pred) do pairs_[i] = { join(folder_ref, n), join(folder_pred, n) } end
    local counts, err = infer.confusion_files(pairs_, regions_or_labels, ignore_label, np, opts.image_reader)
    if not counts then   -- the C message without its worker and source prefixes
      user_error("%s", (tostring(err):gsub("^item:%d+: ", ""):gsub("^[%w_]+%.c:%d+: ", "")))
    end
    for i, n in ipairs(files_pred) do
      local metrics = {}
      for r, reg in ipairs(regions_or_labels) do metrics[M.key(reg)] = counts[i][r] end
      metric_list[i] = { reference_file = pairs_[i][1], prediction_file = pairs_[i][2], metrics = metrics }
    end
    if opts.progress then opts.progress(#files_pred, #files_pred) end
  else
    for i, n in ipairs(files_pred) do
      metric_list[i] = M.compute_metrics(join(folder_ref, n), join(folder_pred, n), regions_or_labels,
        ignore_label, opts.reader or function(p) return read_seg(p, opts.image_reader) end)
      if opts.progress then opts.progress(i, #files_pred) end
    end
  end
  local result = M.summarize(metric_list, regions_or_labels)
  if output_file then
    local ok, err = json.write_file_atomic(output_file, result, { indent = 4 })
    if not ok then user_error("cannot write '%s': %s", output_file, tostring(err)) end
  end
  return result
end

return M
