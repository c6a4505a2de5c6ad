-- check a raw dataset's integrity as nnU-Net's --verify_dataset_integrity does
--
-- nnunet verify_dataset -d ID|NAME|PATH [-np N]   (N threads read the files: the slow part)
--
-- The checks of nnunet-behaviour.md §1.2, each failure naming the case and file:
-- required dataset.json keys; numTraining equals the cases found; every case has
-- a label file (and, with a "dataset" dict, every image exists); labels (plus
-- ignore) consecutive from 0; label files hold only declared values (a file with
-- only 0 is a warning); no NaN in images or labels; one file per channel_names
-- entry; all channels and the label share shape and spacing (np.allclose);
-- origin/direction mismatches are warnings only. Prints "N valid cases" and
-- returns 0, or lists the problems and returns 1.
local dataset = require("nnunet.dataset")
local image = require("nnunet.image")
local fs = require("nnunet.fs")
local sys = require("nnunet.sys")

local M = {
  summary = "check a raw dataset's integrity (nnU-Net's --verify_dataset_integrity)",
  options = {
    { "-d", "dataset", "dataset id (4, 004), name (Dataset004_Hippocampus) or folder path", required = true },
    { "-np", "num_processes", "threads reading and checking the files (0: all CPUs)", type = "int", default = 8 },
    { "--quiet", "quiet", "no progress line", flag = true },
  },
}

-- np.allclose(a, b): |a - b| <= 1e-8 + 1e-5 * |b| elementwise
local function allclose(a, b)
  if #a ~= #b then return false end
  for i = 1, #a do
    if not (math.abs(a[i] - b[i]) <= 1e-8 + 1e-5 * math.abs(b[i])) then return false end
  end
  return true
end

local function fmt_list(t, f)
  local out = {}
  for i, v in ipairs(t) do out[i] = f and f(v) or tostring(v) end
  return table.concat(out, ", ")
end

local function fmt_num(v)
  local i = math.tointeger(v)
  if i then return tostring(i) end
  return string.format("%.17g", v)
end

local spatial = dataset.spatial_shape

local function same(a, b)
  if #a ~= #b then return false end
  for i = 1, #a do if a[i] ~= b[i] then return false end end
  return true
end

-- Verifies one case from its files' scans (scanned[path] = image.scan_files' entry);
-- appends to problems/warnings. Returns true when valid.
local function check_case(ds, case, expected, problems, warnings, scanned)
  local ok = true
  local function problem(fmt, ...)
    -- core messages start with "file.c:line: "; the user needs only the rest
    problems[#problems + 1] = (string.format(fmt, ...):gsub(": [%w_]+%.c:%d+: ", ": ", 1))
    ok = false
  end
  local function rel(p) return (p:sub(1, #ds.path + 1) == ds.path .. "/") and p:sub(#ds.path + 2) or p end

  -- channels: one per file, or several in one file (a 4-D NIfTI, an RGB PNG)
  local channels = 0
  for _, p in ipairs(case.images) do
    local im = scanned[p]
    channels = channels + ((im and im.info and im.info.ndim == 4) and im.info.shape[1] or 1)
  end
  if channels ~= ds.num_channels then
    local have, absent = {}, {}
    for _, p in ipairs(case.images) do have[p:match("([^/]+)$")] = true end
    if not ds.uses_dataset_dict then
      for i = 0, ds.num_channels - 1 do
        local n = string.format("%s_%04d%s", case.id, i, ds.file_ending)
        if not have[n] then absent[#absent + 1] = "imagesTr/" .. n end
      end
    end
    if channels > #case.images then absent = {} end   -- multi-channel files: no missing-name guess
    problem("case %s: %d image file(s)%s but channel_names has %d channel(s)%s", case.id, #case.images,
            channels ~= #case.images and string.format(" with %d channel(s)", channels) or "", ds.num_channels,
            #absent > 0 and ("; missing " .. table.concat(absent, ", ")) or "")
  end
  if not case.label or not fs.isfile(case.label) then return false end  -- reported once, above the loop

  local lab = scanned[case.label]
  if lab.error then problem("case %s: %s", case.id, lab.error); return false end
  local s, sinfo = lab.scan, lab.info
  if s.nan > 0 then problem("case %s: label file %s contains %d NaN value(s)", case.id, rel(case.label), s.nan) end
  if not s.values then
    problem("case %s: label file %s holds more than 512 distinct values (not a label map?)", case.id, rel(case.label))
  else
    local unexpected = {}
    for _, v in ipairs(s.values) do if not expected[v] then unexpected[#unexpected + 1] = v end end
    if #unexpected > 0 then
      local exp = {}
      for v in pairs(expected) do exp[#exp + 1] = v end
      table.sort(exp)
      problem("case %s: unexpected label value(s) %s in %s (dataset.json declares %s)", case.id,
              fmt_list(unexpected, fmt_num), rel(case.label), fmt_list(exp))
    elseif #s.values == 1 and s.values[1] == 0 then
      warnings[#warnings + 1] = string.format("case %s: %s only has label 0 (background)", case.id, rel(case.label))
    end
  end

  for _, img in ipairs(case.images) do
    if not fs.isfile(img) then
      problem("case %s: image file %s does not exist", case.id, rel(img))
    else
      local im = scanned[img]
      if im.error then
        problem("case %s: %s", case.id, im.error)
      else
        local info = im.info
        if im.scan.nan > 0 then problem("case %s: image %s contains %d NaN value(s)", case.id, rel(img), im.scan.nan) end
        if not same(spatial(info), spatial(sinfo)) then
          problem("case %s: shape mismatch between image %s %s and label %s %s (z, y, x)", case.id, rel(img),
                  "[" .. fmt_list(info.shape) .. "]", rel(case.label), "[" .. fmt_list(sinfo.shape) .. "]")
        end
        if not allclose(info.spacing, sinfo.spacing) then
          problem("case %s: spacing mismatch between image %s (%s) and label %s (%s)", case.id, rel(img),
                  fmt_list(info.spacing, fmt_num), rel(case.label), fmt_list(sinfo.spacing, fmt_num))
        end
        if not allclose(info.origin, sinfo.origin) then
          warnings[#warnings + 1] = string.format("case %s: origin mismatch between %s (%s) and %s (%s)", case.id,
            rel(img), fmt_list(info.origin, fmt_num), rel(case.label), fmt_list(sinfo.origin, fmt_num))
        end
        if not allclose(info.direction, sinfo.direction) then
          warnings[#warnings + 1] = string.format("case %s: direction mismatch between %s and %s", case.id,
            rel(img), rel(case.label))
        end
      end
    end
  end
  return ok
end

-- Runs every check; returns n_valid, problems, warnings (or nil, msg when the dataset cannot be opened).
function M.verify(id_or_path, opts)
  opts = opts or {}
  local ds, err = dataset.open(id_or_path)
  if not ds then return nil, err end
  local problems, warnings = {}, {}
  local function problem(fmt, ...) problems[#problems + 1] = string.format(fmt, ...) end

  if math.tointeger(ds.num_training) ~= #ds.cases then
    problem("dataset.json says numTraining = %s but %d cases were found in %s", tostring(ds.num_training),
            #ds.cases, ds.uses_dataset_dict and "its \"dataset\" entry" or "imagesTr")
  end
  local missing = {}
  for _, c in ipairs(ds.cases) do
    if not c.label or not fs.isfile(c.label) then
      missing[#missing + 1] = c.label and c.label:match("([^/]+/[^/]+)$") or (c.id .. " (no label entry)")
    end
  end
  if #missing > 0 then
    problem("%d case(s) without a label file: %s", #missing, fmt_list(missing))
  end

  local values, ignore = dataset.label_values(ds.labels)
  local expected = {}
  for _, v in ipairs(values) do expected[v] = true end
  if values[1] ~= 0 then problem("dataset.json labels: the first label must be 0 (background), got %s", tostring(values[1])) end
  local gaps = {}
  for i = 2, #values do if values[i] - values[i - 1] ~= 1 then gaps[#gaps + 1] = values[i] end end
  if #gaps > 0 then
    problem("dataset.json labels must be consecutive (0, 1, 2, ...): %s do not follow", fmt_list(gaps))
  end
  if ignore ~= nil then
    local others = -1
    for _, v in ipairs(values) do if v ~= ignore and v > others then others = v end end
    if math.type(ignore) ~= "integer" or ignore ~= others + 1 then
      problem("dataset.json: the ignore label (%s) must be an integer equal to the highest other label + 1", tostring(ignore))
    end
  end

  -- the image reader/writer class, as preprocessing will choose it
  local rok, reader = pcall(dataset.reader_class, ds)
  if not rok then
    problem("%s", type(reader) == "table" and reader.message or tostring(reader))
    return 0, problems, warnings, ds
  end

  -- every label and image file read and scanned once, by np threads (the slow part)
  local labels, images = {}, {}
  for _, c in ipairs(ds.cases) do
    if c.label and fs.isfile(c.label) then
      labels[#labels + 1] = c.label
      for _, img in ipairs(c.images) do if fs.isfile(img) then images[#images + 1] = img end end
    end
  end
  local bar = (not opts.quiet) and ("verify " .. ds.name) or nil
  local scanned = {}
  for i, r in ipairs(image.scan_files(labels, 512, opts.num_processes or 0, bar, { reader = reader, seg = true })) do
    scanned[labels[i]] = r
  end
  for i, r in ipairs(image.scan_files(images, 512, opts.num_processes or 0, bar, { reader = reader })) do
    scanned[images[i]] = r
  end
  local n_valid = 0
  for _, c in ipairs(ds.cases) do
    if sys.interrupted() then error("interrupted!") end
    if check_case(ds, c, expected, problems, warnings, scanned) then n_valid = n_valid + 1 end
  end
  return n_valid, problems, warnings, ds
end

function M.run(opts)
  local n_valid, problems, warnings, ds = M.verify(opts.dataset,
    { quiet = opts.quiet, num_processes = opts.num_processes })
  if not n_valid then
    io.stderr:write("verify_dataset: " .. problems .. "\n")
    return 1
  end
  for _, w in ipairs(warnings) do io.stdout:write("warning: " .. w .. "\n") end
  if #problems == 0 then
    io.stdout:write(string.format("%s: %d valid cases\n", ds.name, n_valid))
    return 0
  end
  io.stdout:write(string.format("%s: %d problem(s) (%d of %d cases valid):\n", ds.name, #problems, n_valid, #ds.cases))
  for _, p in ipairs(problems) do io.stdout:write("  " .. p .. "\n") end
  return 1
end

return M
