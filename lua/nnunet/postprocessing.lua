-- nnunet.postprocessing: applying nnU-Net v2's postprocessing
-- (nnunetv2/postprocessing/remove_connected_components.py, nnunet-behaviour.md §10).
--
--   local pp = require("nnunet.postprocessing")
--   local steps = pp.load(path)          postprocessing.json -> { {fn = name, labels_or_regions = ...}, ... }
--   pp.apply(seg, steps)                 in place, in order; returns voxels changed
--   pp.apply_to_folder(input_dir, output_dir, steps, file_ending [, num_processes])
--                                        every file, num_processes at a time (C pool; 0/nil: all CPUs)
--   pp.to_json(steps, extra)             the postprocessing.json table (fns + kwargs)
--
-- The reference stores the steps as a pickled list of functions plus kwargs
-- (postprocessing.pkl) and a readable postprocessing.json with the fields
-- postprocessing_fns (function names) and postprocessing_kwargs
-- ({labels_or_regions = ...}); this port reads and writes the JSON only. The one
-- function nnU-Net's search produces is remove_all_but_largest_component_from_segmentation;
-- labels_or_regions is a label, a list of labels or a region (a list too, once in
-- JSON): in every case the union of the labels is one mask.
local infer = require("nnunet.infer")
local json = require("nnunet.json")
local fs = require("nnunet.fs")

local M = {}

M.KEEP_LARGEST = "remove_all_but_largest_component_from_segmentation"

local function user_error(fmt, ...)
  error({ user_error = true, message = string.format(fmt, ...) }, 0)
end

local evaluate = require("nnunet.evaluate")
local join = evaluate.join                 -- os.path.join(a, b)
local list_files = evaluate.list_files     -- names ending in `ending`, sorted bytewise

-- labels_or_regions as a flat list of integer labels (the union)
local function flatten(lr, out)
  out = out or {}
  if type(lr) == "table" then
    for _, x in ipairs(lr) do flatten(x, out) end
  else
    local n = math.tointeger(lr)
    if n == nil then user_error("postprocessing: label %s is not an integer", tostring(lr)) end
    out[#out + 1] = n
  end
  return out
end
M.flatten = flatten

-- Reads postprocessing.json (a .pkl path falls back to the .json beside it).
function M.load(path)
  if path:match("%.pkl$") then
    local j = path:gsub("%.pkl$", ".json")
    if fs.isfile(j) then path = j
    else user_error("'%s': pickled postprocessing cannot be read; give the postprocessing.json", path) end
  end
  local v, err = json.decode_file(path)
  if not v then user_error("cannot read postprocessing file: %s", tostring(err)) end
  local fns, kwargs = v.postprocessing_fns or {}, v.postprocessing_kwargs or {}
  if #fns ~= #kwargs then user_error("'%s': %d functions but %d kwargs", path, #fns, #kwargs) end
  local steps = {}
  for i, name in ipairs(fns) do
    if name ~= M.KEEP_LARGEST then user_error("'%s': unknown postprocessing function '%s'", path, tostring(name)) end
    local kw = kwargs[i]
    if type(kw) ~= "table" or kw.labels_or_regions == nil then
      user_error("'%s': step %d has no labels_or_regions", path, i)
    end
    steps[i] = { fn = name, labels_or_regions = kw.labels_or_regions }
  end
  return steps
end

function M.to_json(steps, extra)
  local out = {}
  for k, v in pairs(extra or {}) do out[k] = v end
  out.postprocessing_fns = json.array({})
  out.postprocessing_kwargs = json.array({})
  for i, s in ipairs(steps) do
    out.postprocessing_fns[i] = s.fn or M.KEEP_LARGEST
    out.postprocessing_kwargs[i] = { labels_or_regions = s.labels_or_regions }
  end
  return out
end

function M.apply(seg, steps)
  local changed = 0
  for _, s in ipairs(steps) do
    changed = changed + infer.keep_largest(seg, flatten(s.labels_or_regions), s.background or 0)
  end
  return changed
end

-- Reads every segmentation of input_dir, applies the steps, writes it to
-- output_dir with the input's geometry (stored as u8, or u16 from 255 labels on,
-- as the reference's write_seg), num_processes files at a time on the C worker pool
-- (infer.keep_largest_files; the same bytes as reading, M.apply and writing here).
-- Returns the number of files.
function M.apply_to_folder(input_dir, output_dir, steps, file_ending, num_processes)
  if not fs.isdir(input_dir) then user_error("input folder '%s' not found", input_dir) end
  if not fs.isdir(output_dir) then
    local ok, err = fs.mkdir(output_dir)
    if not ok then user_error("cannot create '%s': %s", output_dir, tostring(err)) end
  end
  local c_steps = {}
  for i, s in ipairs(steps) do c_steps[i] = { labels = flatten(s.labels_or_regions), background = s.background or 0 } end
  local files = list_files(input_dir, file_ending)
  local pairs_ = {}
  for i, n in ipairs(files) do pairs_[i] = { join(input_dir, n), join(output_dir, n) } end
  local ok, err = infer.keep_largest_files(pairs_, c_steps, num_processes or 0)
  if not ok then user_error("postprocessing: %s", tostring(err)) end
  return #files
end

return M
