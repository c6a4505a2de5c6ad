-- nnunet.dataset: nnU-Net v2 raw datasets (nnunet-behaviour.md §1.1, §1.2).
--
--   local dataset = require("nnunet.dataset")
--   local ds, err = dataset.open("4")          -- id (4, "004"), "Dataset004_Hippocampus" or a folder path
--   ds.name, ds.id, ds.path, ds.json, ds.file_ending, ds.num_channels, ds.num_training
--   ds.channel_names   {"MRI"}                 (index i+1 holds channel_names["i"])
--   ds.labels          {background = 0, ...}   (name -> int, or name -> {ints} for regions)
--   ds.cases           { {id = "hippocampus_001", images = {paths}, label = path}, ... }
--
-- Names and ids are looked up under $nnUNet_raw (the reference's variable); an
-- explicit folder path (one that holds dataset.json) needs no environment.
-- Cases are listed as the reference does: every imagesTr/*<file_ending> with the
-- `_XXXX` channel suffix stripped, unique, sorted by bytes; the channel files of a
-- case are those named exactly <case>_dddd<file_ending>, sorted; the label is
-- labelsTr/<case><file_ending> (it may be missing: verify_dataset reports that).
-- With a "dataset" dict in dataset.json the files are taken from it instead.
--
-- Expected failures (unknown id, missing or unparsable dataset.json) return
-- nil, message. preprocessed_dir/results_dir raise a user error when their
-- environment variable is unset.
local fs = require("nnunet.fs")
local cjson = require("cjson")

local M = {}

M.REQUIRED_KEYS = { "channel_names", "labels", "numTraining", "file_ending" }

-- Byte-order string comparison (Python's sorted(); Lua's < uses strcoll).
local function bytes_less(a, b)
  local n = math.min(#a, #b)
  for i = 1, n do
    local x, y = a:byte(i), b:byte(i)
    if x ~= y then return x < y end
  end
  return #a < #b
end
M.bytes_less = bytes_less

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = tostring(k) end
  table.sort(keys, bytes_less)
  return keys
end
M.sorted_keys = sorted_keys

local function user_error(fmt, ...)
  error({ user_error = true, message = string.format(fmt, ...) }, 0)
end

local function escape_pattern(s) return (s:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0")) end

local function join(a, b) return (a:gsub("/+$", "")) .. "/" .. b end

-- Lua number from JSON (lua-cjson decodes every number as a float) as integer when integral.
local function int_or_self(v)
  return type(v) == "number" and math.tointeger(v) or v
end
M.int_or_self = int_or_self

--- environment

function M.env(name)
  local v = os.getenv(name)
  if v == nil or v == "" then return nil end
  return v
end

local function env_dir(var, what)
  local v = M.env(var)
  if not v then
    user_error("%s is not set: export %s=/path/to/%s (the reference nnU-Net's variable)", var, var, what)
  end
  return v
end

--- names and ids

-- "Dataset004_Hippocampus" -> 4 (nil if the name does not follow the convention)
function M.id_from_name(name)
  local digits = tostring(name):match("^Dataset(%d%d%d)_")
  return digits and tonumber(digits) or nil
end

-- 4 -> "Dataset004" (the prefix every folder of that id starts with)
function M.id_prefix(id) return string.format("Dataset%03d_", id) end

local function parse_id(x)
  if math.type(x) == "integer" then return x end
  if type(x) == "number" and math.tointeger(x) then return math.tointeger(x) end
  if type(x) == "string" and x:match("^%d+$") then return tonumber(x) end
  return nil
end

-- Folders under `root` whose name starts with DatasetNNN_.
local function folders_with_id(root, id)
  local out = {}
  for _, name in ipairs(fs.listdir(root) or {}) do
    if name:sub(1, 11) == M.id_prefix(id) and fs.isdir(join(root, name)) then out[#out + 1] = name end
  end
  return out
end

-- The full dataset name for an id or name, looked up as the reference's
-- maybe_convert_to_dataset_name does (nnUNet_preprocessed, nnUNet_raw,
-- nnUNet_results). Returns name | nil, msg.
function M.resolve_name(id_or_name)
  if type(id_or_name) == "string" and id_or_name:match("^Dataset") then return id_or_name end
  local id = parse_id(id_or_name)
  if not id then return nil, string.format("'%s' is neither a dataset id nor a DatasetNNN_Name", tostring(id_or_name)) end
  local found, seen, roots = {}, {}, {}
  for _, var in ipairs({ "nnUNet_preprocessed", "nnUNet_raw", "nnUNet_results" }) do
    local root = M.env(var)
    if root then
      roots[#roots + 1] = var .. "=" .. root
      for _, n in ipairs(folders_with_id(root, id)) do
        if not seen[n] then seen[n] = true; found[#found + 1] = n end
      end
    end
  end
  if #found == 1 then return found[1] end
  if #found == 0 then
    if #roots == 0 then
      return nil, string.format("dataset id %d: nnUNet_raw is not set (export nnUNet_raw=/path/to/raw, or pass the dataset folder's path)", id)
    end
    return nil, string.format("no dataset with id %d (%s*) in %s", id, M.id_prefix(id), table.concat(roots, ", "))
  end
  table.sort(found, bytes_less)
  return nil, string.format("more than one dataset name for id %d: %s", id, table.concat(found, ", "))
end

-- Folder of a raw dataset: an existing folder path, or an id/name under $nnUNet_raw.
function M.find(id_or_path)
  local s = tostring(id_or_path)
  if (s:find("/", 1, true) or not parse_id(id_or_path)) and fs.isdir(s) then
    return (s:gsub("(.)/+$", "%1"))
  end
  if not parse_id(id_or_path) and not s:match("^Dataset") then
    return nil, string.format("dataset '%s': no such folder, and not an id or a DatasetNNN_Name", s)
  end
  local raw = M.env("nnUNet_raw")
  local name, err
  if parse_id(id_or_path) then
    if not raw then
      return nil, string.format("dataset id %s: nnUNet_raw is not set (export nnUNet_raw=/path/to/raw, or pass the dataset folder's path)", s)
    end
    local found = folders_with_id(raw, parse_id(id_or_path))
    table.sort(found, bytes_less)
    if #found == 0 then
      return nil, string.format("no dataset with id %d (%s*) in nnUNet_raw=%s", parse_id(id_or_path), M.id_prefix(parse_id(id_or_path)), raw)
    elseif #found > 1 then
      return nil, string.format("more than one dataset with id %d in nnUNet_raw=%s: %s", parse_id(id_or_path), raw, table.concat(found, ", "))
    end
    name = found[1]
  else
    name, err = s, nil
    if not raw then return nil, string.format("dataset '%s': nnUNet_raw is not set (export nnUNet_raw=/path/to/raw)", s) end
  end
  local path = join(raw, name)
  if not fs.isdir(path) then return nil, err or string.format("dataset folder '%s' does not exist", path) end
  return path
end

--- dataset.json

function M.read_json(path)
  local f, ferr = io.open(path, "rb")
  if not f then return nil, string.format("cannot read '%s': %s", path, ferr) end
  local text = f:read("a")
  f:close()
  local ok, value = pcall(cjson.decode, text)
  if not ok then return nil, string.format("cannot parse '%s': %s", path, tostring(value)) end
  if type(value) ~= "table" then return nil, string.format("'%s' does not hold a JSON object", path) end
  return value
end

-- Missing required keys of a decoded dataset.json (empty list when complete).
function M.missing_keys(dj)
  local missing = {}
  for _, k in ipairs(M.REQUIRED_KEYS) do
    if dj[k] == nil then missing[#missing + 1] = k end
  end
  return missing
end

-- "$VAR" and "${VAR}" expanded, relative paths joined to the dataset folder.
local function dataset_file(base, p)
  p = tostring(p):gsub("%${?([%w_]+)}?", function(v) return os.getenv(v) or "" end)
  if p:sub(1, 1) == "/" then return p end
  return join(base, p)
end

--- cases

-- The reference's listing of imagesTr/labelsTr (see the header comment).
function M.list_cases(path, file_ending)
  local images_dir, labels_dir = join(path, "imagesTr"), join(path, "labelsTr")
  local names = fs.listdir(images_dir) or {}
  local fe_pat = escape_pattern(file_ending) .. "$"
  local files, ids, seen = {}, {}, {}
  for _, n in ipairs(names) do
    if n:find(fe_pat) and fs.isfile(join(images_dir, n)) then
      files[#files + 1] = n
      local id = n:sub(1, #n - #file_ending - 5)
      if not seen[id] then seen[id] = true; ids[#ids + 1] = id end
    end
  end
  table.sort(files, bytes_less)
  table.sort(ids, bytes_less)
  local by_id = {}
  for _, n in ipairs(files) do
    -- which case does this channel file belong to? (<case>_dddd<fe>, fully matched)
    local id = n:match("^(.*)_%d%d%d%d" .. fe_pat)
    if id and by_id[id] == nil then by_id[id] = {} end
    if id then table.insert(by_id[id], join(images_dir, n)) end
  end
  local cases = {}
  for _, id in ipairs(ids) do
    cases[#cases + 1] = { id = id, images = by_id[id] or {}, label = join(labels_dir, id .. file_ending) }
  end
  return cases
end

local function cases_from_dict(path, dict)
  local cases = {}
  for _, id in ipairs(sorted_keys(dict)) do
    local entry = dict[id]
    local images = {}
    for _, p in ipairs(type(entry) == "table" and entry.images or {}) do images[#images + 1] = dataset_file(path, p) end
    local label = type(entry) == "table" and entry.label and dataset_file(path, entry.label) or nil
    cases[#cases + 1] = { id = id, images = images, label = label }
  end
  return cases
end

--- labels

-- Sorted integer label values declared in dataset.json (regions flattened, ignore
-- label included), and the ignore label (or nil).
function M.label_values(labels)
  local seen, values, ignore = {}, {}, nil
  local function add(v)
    v = int_or_self(v)
    if math.type(v) == "integer" and not seen[v] then seen[v] = true; values[#values + 1] = v end
  end
  for name, v in pairs(labels or {}) do
    if name == "ignore" then ignore = int_or_self(v) end
    if type(v) == "table" then for _, x in ipairs(v) do add(x) end else add(v) end
  end
  table.sort(values)
  return values, ignore
end

--- opening

-- ds | nil, msg
function M.open(id_or_path)
  local path, err = M.find(id_or_path)
  if not path then return nil, err end
  local json_path = join(path, "dataset.json")
  if not fs.isfile(json_path) then return nil, string.format("'%s' has no dataset.json", path) end
  local dj, jerr = M.read_json(json_path)
  if not dj then return nil, jerr end
  local missing = M.missing_keys(dj)
  if #missing > 0 then
    return nil, string.format("'%s' lacks the required key(s) %s", json_path, table.concat(missing, ", "))
  end
  if type(dj.file_ending) ~= "string" then return nil, string.format("'%s': file_ending must be a string", json_path) end
  if type(dj.channel_names) ~= "table" then return nil, string.format("'%s': channel_names must be an object", json_path) end
  if type(dj.labels) ~= "table" then return nil, string.format("'%s': labels must be an object", json_path) end

  local channel_names, nch = {}, 0
  for k, v in pairs(dj.channel_names) do
    local i = tonumber(k)
    if not i or not math.tointeger(i) or i < 0 then
      return nil, string.format("'%s': channel_names key '%s' is not a channel index", json_path, tostring(k))
    end
    channel_names[math.tointeger(i) + 1] = v
    nch = nch + 1
  end
  for i = 1, nch do
    if channel_names[i] == nil then
      return nil, string.format("'%s': channel_names must be numbered 0..%d", json_path, nch - 1)
    end
  end
  local labels = {}
  for k, v in pairs(dj.labels) do
    if type(v) == "table" then
      local l = {}
      for i, x in ipairs(v) do l[i] = int_or_self(x) end
      labels[k] = l
    else
      labels[k] = int_or_self(v)
    end
  end

  local name = path:match("([^/]+)$")
  local ds = {
    name = name, id = M.id_from_name(name), path = path, json = dj, json_path = json_path,
    file_ending = dj.file_ending, channel_names = channel_names, num_channels = nch,
    labels = labels, num_training = int_or_self(dj.numTraining),
    uses_dataset_dict = type(dj.dataset) == "table",
  }
  if ds.uses_dataset_dict then ds.cases = cases_from_dict(path, dj.dataset)
  else ds.cases = M.list_cases(path, dj.file_ending) end
  return ds
end

--- reading a case as the reference's image reader/writer classes do

-- The reference's reader/writer classes this program reproduces (core/nnu_image.h):
-- SimpleITKIO (NIfTI, MetaImage, NRRD), NibabelIO (NIfTI, the same arrays),
-- NaturalImage2DIO (.png, 2-D .tif) and Tiff3DIO (3-D .tif/.tiff with a spacing
-- sidecar). NibabelIOWithReorient turns every image to RAS first and is not reproduced.
M.SUPPORTED_READERS = { SimpleITKIO = true, NibabelIO = true, NaturalImage2DIO = true, Tiff3DIO = true }

-- Refuses plans whose image_reader_writer this program cannot reproduce (a model or
-- preprocessing made with it would see differently read images); `where` names the
-- plans file or model folder. Plans without the field pass.
function M.check_reader(plans, where)
  local r = type(plans) == "table" and plans.image_reader_writer
  if not r or M.SUPPORTED_READERS[r] then return end
  user_error("%s: image_reader_writer '%s' is not supported: this program reads images as the reference's "
    .. "SimpleITKIO, NibabelIO, NaturalImage2DIO and Tiff3DIO do, and a plan or model made with '%s' expects "
    .. "images read differently", where, tostring(r), tostring(r))
end

-- The reader class of plans (its image_reader_writer; nil when absent: by file ending).
function M.plans_reader(plans)
  local r = type(plans) == "table" and plans.image_reader_writer or nil
  if r and not M.SUPPORTED_READERS[r] then M.check_reader(plans, "plans") end
  return r
end

-- The reader class of ds as the reference determines it (rules/reader.lua): settings'
-- image_reader_writer, dataset.json's overwrite_image_reader_writer, or the first class
-- listing the file ending that reads the first training image. Cached in ds.reader.
-- Raises a user error when no class fits.
function M.reader_class(ds, settings)
  if ds.reader then return ds.reader end
  local image = require("nnunet.image")
  local first   -- the first training image that exists (verify_dataset reports missing ones)
  for _, c in ipairs(ds.cases) do
    for _, p in ipairs(c.images) do
      if fs.isfile(p) then first = p; break end
    end
    if first then break end
  end
  local function can_open(class)
    if not M.SUPPORTED_READERS[class] or not first then return M.SUPPORTED_READERS[class] or false end
    return image.read_header(first, { reader = class }) ~= nil
  end
  local ok, r = pcall(require("nnunet.rules").load("reader").image_reader_writer, ds.json, settings or {}, can_open)
  if not ok then user_error("%s: %s", ds.json_path, tostring(r)) end
  if not M.SUPPORTED_READERS[r] then M.check_reader({ image_reader_writer = r }, ds.json_path) end
  ds.reader = r
  return r
end

-- Checks that a case has `expected` channels (ds: dataset.json's count): one file per
-- channel, or fewer files when they hold several channels each (a 4-D NIfTI, an RGB PNG:
-- then the first file's header tells). Raises a user error naming the case otherwise;
-- `what` names who expects them ("dataset.json lists", "the model expects").
function M.check_case_files(ds, case, reader, expected, what)
  expected = expected or ds.num_channels
  local n = #case.images
  if n == expected then return end
  if n > 0 and n < expected then
    local info = require("nnunet.image").read_header(case.images[1], { reader = reader })
    local per_file = info and (info.ndim == 4 and info.shape[1] or 1)
    if per_file and per_file * n == expected then return end
  end
  local ending = ds and ds.file_ending or (case.images[1] or ""):match("_%d%d%d%d(%..*)$") or ""
  user_error("case '%s' has %d channel file(s), %s %d channels (%s_0000%s ...)", case.id, n,
    what or "dataset.json lists", expected, case.id, ending)
end

local function props_of(info)
  return {
    spacing = { info.spacing[1], info.spacing[2], info.spacing[3] },          -- (z, y, x), abs
    sitk_stuff = { spacing = info.spacing_itk, origin = info.origin, direction = info.direction },
    nifti = info,                                                             -- for writing back
  }
end

local function same_list(a, b)
  if #a ~= #b then return false end
  for i = 1, #a do if a[i] ~= b[i] then return false end end
  return true
end

-- the (z, y, x) part of an image info's shape (without a 4-D file's channel axis)
local function spatial(info)
  local s = info.shape
  if info.ndim == 4 then return { s[2], s[3], s[4] } end
  return { s[1], s[2], s[3] }
end
M.spatial_shape = spatial

-- The channel files of one case as a float32 tensor (C, Z, Y, X) and its properties
-- {spacing = {z,y,x}, sitk_stuff = {spacing, origin, direction}, nifti = info of the
-- first file}, read with the reader class `reader` (nil: by file ending). Like the
-- reference's read_images: every file must have the same spatial shape and spacing
-- (else nil, msg); a file may hold several channels (4-D NIfTI, RGB PNG);
-- origin/direction differences only warn (returned as a third value, a list of
-- strings). opts.seg: the files are segmentations.
function M.read_images(paths, reader, opts)
  local image = require("nnunet.image")
  local T = require("nnunet.tensor")
  if #paths == 0 then return nil, "read_images: no files" end
  local ropts = { reader = reader, seg = opts and opts.seg or nil }
  local infos, warnings, channels = {}, {}, 0
  for i, p in ipairs(paths) do
    local info, err = image.read_header(p, ropts)
    if not info then return nil, err end
    infos[i] = info
    channels = channels + (info.ndim == 4 and info.shape[1] or 1)
    if i > 1 then
      if not same_list(spatial(info), spatial(infos[1])) then
        return nil, string.format("not all input images have the same shape: '%s' [%s] vs '%s' [%s]", paths[1],
          table.concat(infos[1].shape, ", "), p, table.concat(info.shape, ", "))
      end
      if not same_list(info.spacing, infos[1].spacing) then
        return nil, string.format("not all input images have the same spacing: '%s' vs '%s'", paths[1], p)
      end
      if not same_list(info.origin, infos[1].origin) then
        warnings[#warnings + 1] = string.format("not all input images have the same origin: '%s' vs '%s'", paths[1], p)
      end
      if not same_list(info.direction, infos[1].direction) then
        warnings[#warnings + 1] = string.format("not all input images have the same direction: '%s' vs '%s'", paths[1], p)
      end
    end
  end
  local s = spatial(infos[1])
  local out = T.zeros({ channels, s[1], s[2], s[3] }, "f32")
  local at = 1
  for _, p in ipairs(paths) do
    local t, err = image.read(p, { dtype = "f32", reader = reader, seg = ropts.seg })
    if not t then out:release(); return nil, err end
    local n = t:ndim() == 4 and t:shape()[1] or 1
    local src = t:ndim() == 4 and t or t:reshape({ 1, s[1], s[2], s[3] })
    local dst <close> = out:narrow(1, at, n)
    dst:copy_from(src)
    at = at + n
    if src ~= t then src:release() end
    t:release()
  end
  return out, props_of(infos[1]), warnings
end

-- A label file as a float32 tensor (1, Z, Y, X) and its properties (read_seg).
function M.read_seg(path, reader)
  local t, props, w = M.read_images({ path }, reader, { seg = true })
  if t and t:shape()[1] ~= 1 then
    t:release()
    return nil, string.format("'%s': a segmentation must have one channel", path)
  end
  return t, props, w
end

--- other roots

-- $nnUNet_preprocessed/<name> (raises a user error when the variable is unset)
function M.preprocessed_dir(ds)
  return join(env_dir("nnUNet_preprocessed", "preprocessed"), type(ds) == "table" and ds.name or tostring(ds))
end

-- $nnUNet_results/<name> (raises a user error when the variable is unset)
function M.results_dir(ds)
  return join(env_dir("nnUNet_results", "results"), type(ds) == "table" and ds.name or tostring(ds))
end

-- trainer, plans, configuration of a model folder's name <trainer>__<plans>__<config>
-- (nil when the name is not of that form)
function M.model_folder_parts(name)
  return name:match("^(.-)__(.-)__(.+)$")
end

-- $nnUNet_raw (raises a user error when unset)
function M.raw_dir() return env_dir("nnUNet_raw", "raw") end

return M
