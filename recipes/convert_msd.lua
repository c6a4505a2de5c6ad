-- convert a Medical Segmentation Decathlon task (TaskXX_Name) to an nnU-Net v2 raw dataset
--
-- nnunet convert_msd -i TaskXX_Name [-overwrite_id N] [-o OUT_ROOT]
--
-- As nnUNetv2_convert_MSD_dataset (nnunet-behaviour.md §1.3): 4-D images are split
-- along their 4th dimension into CASE_000c.nii.gz files that keep the 3-D geometry
-- (qform and sform copied), 3-D images are copied as CASE_0000.nii.gz, labels are
-- copied, and dataset.json gets labels inverted to name -> int, file_ending
-- ".nii.gz", modality renamed channel_names, training/test removed. Files whose
-- names start with "." or "_" are skipped. The output is DatasetNNN_Name under
-- $nnUNet_raw (or -o), NNN = the task number unless -overwrite_id is given.
-- Differences from the reference: imagesTs is optional, and a name may contain
-- further underscores (the reference splits "TaskXX_Name" at every "_").
local dataset = require("nnunet.dataset")
local nifti = require("nnunet.image")
local fs = require("nnunet.fs")
local sys = require("nnunet.sys")
local args = require("nnunet.args")

local M = {
  summary = "convert an MSD task (TaskXX_Name, 4-D images) to an nnU-Net v2 raw dataset",
  options = {
    { "-i", "input", "the MSD task folder (TaskXX_Name with imagesTr, labelsTr, dataset.json)", required = true },
    { "-overwrite_id", "overwrite_id", "dataset id of the output (default: the task number)", type = "int" },
    { "-o", "output_root", "folder that receives DatasetNNN_Name (default: $nnUNet_raw)" },
    { "-np", "num_processes", "accepted for compatibility; files are converted sequentially", type = "int", default = 1 },
  },
}

local function join(a, b) return (a:gsub("/+$", "")) .. "/" .. b end

-- byte copy (fs.copy: to a temporary name, then renamed) -> true | nil, msg
local function copy_file(src, dst) return fs.copy(src, dst) end

-- .nii.gz files of a folder, without names starting with "." or "_"
local function source_files(dir)
  local out = {}
  for _, n in ipairs(fs.listdir(dir) or {}) do
    if n:sub(-7) == ".nii.gz" and not n:match("^[._]") then out[#out + 1] = n end
  end
  table.sort(out, dataset.bytes_less)
  return out
end

-- Splits one (possibly 4-D) image into channel files in out_dir; returns the number of channels.
function M.split_4d_nifti(path, out_dir)
  local base = path:match("([^/]+)$"):sub(1, -8)
  local info, err = nifti.read_header(path)
  if not info then return nil, err end
  if info.ndim == 3 then
    local ok, cerr = copy_file(path, join(out_dir, base .. "_0000.nii.gz"))
    if not ok then return nil, cerr end
    return 1
  end
  local t, tinfo = nifti.read(path)
  if not t then return nil, tinfo end
  local n = t:shape()[1]
  for c = 1, n do
    local ch <close> = t:select(1, c)            -- (z, y, x) view of channel c-1
    local ok, werr = nifti.write(join(out_dir, string.format("%s_%04d.nii.gz", base, c - 1)), ch, tinfo)
    if not ok then t:release(); return nil, werr end
  end
  t:release()
  return n
end

-- The converted dataset.json: labels inverted, file_ending, modality -> channel_names,
-- training/test removed; the remaining keys keep the MSD order.
function M.convert_json(dj)
  local order = { "name", "description", "reference", "licence", "release", "tensorImageSize",
                  "channel_names", "labels", "numTraining", "numTest", "file_ending" }
  local out = {}
  for k, v in pairs(dj) do out[k] = v end
  local labels = {}
  local label_order = {}
  for k, name in pairs(dj.labels or {}) do
    local v = math.tointeger(tonumber(k))
    if not v then return nil, string.format("MSD labels key '%s' is not an integer", tostring(k)) end
    labels[name] = v
    label_order[#label_order + 1] = name
  end
  table.sort(label_order, function(a, b) return labels[a] < labels[b] end)
  out.labels = labels
  out.file_ending = ".nii.gz"
  out.channel_names = dj.modality
  out.modality, out.training, out.test = nil, nil, nil
  for _, k in ipairs({ "numTraining", "numTest" }) do
    if type(out[k]) == "number" then out[k] = math.tointeger(out[k]) or out[k] end
  end
  local keys, seen = {}, {}
  for _, k in ipairs(order) do if out[k] ~= nil then keys[#keys + 1] = k; seen[k] = true end end
  local rest = {}
  for k in pairs(out) do if not seen[k] then rest[#rest + 1] = k end end
  table.sort(rest, dataset.bytes_less)
  for _, k in ipairs(rest) do keys[#keys + 1] = k end
  return out, keys, label_order
end

local function write_json(path, value, keys, label_order)
  local ok, json = pcall(require, "nnunet.json")
  if ok and json.ordered and json.write_file_atomic then
    local v = {}
    for k, x in pairs(value) do v[k] = x end
    v.labels = json.ordered(label_order, value.labels)
    return json.write_file_atomic(path, json.ordered(keys, v))
  end
  local f, err = io.open(path, "wb")
  if not f then return nil, err end
  f:write(require("cjson").encode(value), "\n")
  f:close()
  return true
end

-- Converts; returns the output folder | nil, msg.
function M.convert(input, overwrite_id, output_root)
  input = input:gsub("(.)/+$", "%1")
  local base = input:match("([^/]+)$")
  local task, name = base:match("^Task(%d+)_(.+)$")
  if not task then return nil, string.format("'%s' is not named TaskXX_Name", base) end
  for _, sub in ipairs({ "imagesTr", "labelsTr" }) do
    if not fs.isdir(join(input, sub)) then return nil, string.format("'%s' has no %s folder", input, sub) end
  end
  local dj, jerr = dataset.read_json(join(input, "dataset.json"))
  if not dj then return nil, jerr end
  if type(dj.modality) ~= "table" or type(dj.labels) ~= "table" then
    return nil, string.format("'%s/dataset.json' lacks the MSD keys \"modality\" and \"labels\"", input)
  end
  local id = overwrite_id or tonumber(task)
  local root = output_root or dataset.raw_dir()
  -- the target id must be free in every nnU-Net root (as the reference checks)
  for _, r in ipairs({ root, dataset.env("nnUNet_preprocessed") or false, dataset.env("nnUNet_results") or false }) do
    if r then
      for _, n in ipairs(fs.listdir(r) or {}) do
        if n:sub(1, 11) == dataset.id_prefix(id) then
          return nil, string.format("target dataset id %d is taken by '%s' in %s (use -overwrite_id)", id, n, r)
        end
      end
    end
  end
  local target = join(root, string.format("Dataset%03d_%s", id, name))
  for _, sub in ipairs({ "imagesTr", "labelsTr", "imagesTs" }) do
    local ok, merr = fs.mkdir(join(target, sub))
    if not ok then return nil, merr end
  end

  local jobs = {}
  for _, n in ipairs(source_files(join(input, "imagesTr"))) do jobs[#jobs + 1] = { join(input, "imagesTr/" .. n), "imagesTr" } end
  if fs.isdir(join(input, "imagesTs")) then
    for _, n in ipairs(source_files(join(input, "imagesTs"))) do jobs[#jobs + 1] = { join(input, "imagesTs/" .. n), "imagesTs" } end
  end
  local labels = source_files(join(input, "labelsTr"))
  local ok_p, progress = pcall(require, "nnunet.progress")
  local bar = ok_p and progress.new and progress.new("convert " .. base, #jobs + #labels) or nil
  for _, j in ipairs(jobs) do
    if sys.interrupted() then error("interrupted!") end
    local n, err = M.split_4d_nifti(j[1], join(target, j[2]))
    if not n then return nil, err end
    if bar then bar:step() end
  end
  for _, n in ipairs(labels) do
    local ok, err = copy_file(join(input, "labelsTr/" .. n), join(target, "labelsTr/" .. n))
    if not ok then return nil, err end
    if bar then bar:step() end
  end
  if bar then bar:finish() end
  local out, keys, label_order = M.convert_json(dj)
  if not out then return nil, keys end
  local ok, werr = write_json(join(target, "dataset.json"), out, keys, label_order)
  if not ok then return nil, werr end
  return target
end

function M.run(opts)
  local target, err = M.convert(opts.input, opts.overwrite_id, opts.output_root)
  if not target then args.user_error("convert_msd: %s", err) end
  io.stdout:write(string.format("wrote %s\n", target))
  return 0
end

return M
