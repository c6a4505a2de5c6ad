-- convert an nnU-Net v1 raw task (TaskXXX_Name) to an nnU-Net v2 raw dataset
--
-- nnunet convert_old_nnUNet_dataset OLD_TASK_FOLDER DatasetXXX_Name [-o OUT_ROOT]
--
-- As nnUNetv2_convert_old_nnUNet_dataset (nnunet-behaviour.md §1.3): imagesTr and
-- labelsTr (and imagesTs, labelsTs, imagesVal, labelsVal when present) are copied as
-- they are into $nnUNet_raw/DatasetXXX_Name (or -o), and dataset.json is rewritten:
-- tensorImageSize, numTest, training and test removed, modality renamed channel_names,
-- labels inverted to name -> int, file_ending ".nii.gz"; the other keys keep their
-- order (channel_names and file_ending come last, as the reference writes them).
-- An existing target is never touched (as the reference, which aborts). Differences
-- from the reference: the v1 keys it deletes may be absent, and a half-copied target
-- left by an interrupted run is named in the error instead of being overwritten.
local args = require("nnunet.args")
local dataset = require("nnunet.dataset")
local fs = require("nnunet.fs")
local json = require("nnunet.json")
local sys = require("nnunet.sys")

local M = {
  summary = "convert an nnU-Net v1 raw task (TaskXXX_Name) to an nnU-Net v2 raw dataset",
  options = {
    { "OLD_TASK_FOLDER", "input", "the v1 task folder (with imagesTr, labelsTr, dataset.json)", positional = true },
    { "DATASET_NAME", "name", "the new dataset's name, DatasetXXX_Name", positional = true },
    { "-o", "output_root", "folder that receives DatasetXXX_Name (default: $nnUNet_raw)" },
  },
}

local function join(a, b) return (a:gsub("/+$", "")) .. "/" .. b end

-- The v2 dataset.json of a v1 one (decoded with json.decode_ordered, so that the key
-- order survives): the reference's deletions, renames and additions in its order.
function M.convert_json(dj)
  if type(dj) ~= "table" or type(dj.modality) ~= "table" or type(dj.labels) ~= "table" then
    return nil, "dataset.json lacks the v1 keys \"modality\" and \"labels\""
  end
  local drop = { tensorImageSize = true, numTest = true, training = true, test = true, modality = true }
  local keys = {}
  for _, k in ipairs(getmetatable(dj).__keyorder) do
    if not drop[k] and k ~= "channel_names" and k ~= "file_ending" and dj[k] ~= nil then keys[#keys + 1] = k end
  end
  keys[#keys + 1] = "channel_names"
  keys[#keys + 1] = "file_ending"
  local labels = json.object()
  for _, k in ipairs(getmetatable(dj.labels).__keyorder) do
    local v = math.tointeger(tonumber(k))
    if not v then return nil, string.format("labels key '%s' is not an integer (a v1 dataset.json maps "
      .. "\"0\": \"background\", ...)", tostring(k)) end
    local name = dj.labels[k]
    if type(name) ~= "string" then return nil, string.format("label %s has no name", k) end
    labels[name] = v
  end
  local out = json.object(keys)
  for _, k in ipairs(keys) do out[k] = dj[k] end
  out.labels = labels
  out.channel_names = dj.modality
  out.file_ending = ".nii.gz"
  return out
end

-- copies every file below src into dst (created), keeping the tree
local function copy_tree(src, dst)
  local ok, err = fs.mkdir(dst)
  if not ok then return nil, err end
  for _, n in ipairs(fs.listdir(src) or {}) do
    if sys.interrupted() then error("interrupted!") end
    local s, d = join(src, n), join(dst, n)
    if fs.isdir(s) then
      ok, err = copy_tree(s, d)
    else
      ok, err = fs.copy(s, d)
    end
    if not ok then return nil, err end
  end
  return true
end

-- Converts; returns the output folder | nil, msg.
function M.convert(input, name, output_root)
  input = input:gsub("(.)/+$", "%1")
  if not name:match("^Dataset%d%d%d_.+$") then
    return nil, string.format("'%s' is not a dataset name of the form DatasetXXX_Name", name)
  end
  for _, sub in ipairs({ "imagesTr", "labelsTr" }) do
    if not fs.isdir(join(input, sub)) then return nil, string.format("'%s' has no %s folder", input, sub) end
  end
  local f, ferr = io.open(join(input, "dataset.json"), "rb")
  if not f then return nil, tostring(ferr) end
  local dj, jerr = json.decode_ordered(f:read("a"))
  f:close()
  if not dj then return nil, string.format("'%s': %s", join(input, "dataset.json"), jerr) end
  local out, cerr = M.convert_json(dj)
  if not out then return nil, string.format("'%s': %s", join(input, "dataset.json"), cerr) end
  local target = join(output_root or dataset.raw_dir(), name)
  if fs.exists(target) then
    return nil, string.format("target '%s' already exists: nothing was changed (delete it to convert again)", target)
  end
  for _, sub in ipairs({ "imagesTr", "labelsTr", "imagesTs", "labelsTs", "imagesVal", "labelsVal" }) do
    if fs.isdir(join(input, sub)) then
      local ok, err = copy_tree(join(input, sub), join(target, sub))
      if not ok then return nil, err end
    end
  end
  local ok, werr = json.write_file_atomic(join(target, "dataset.json"), out, { indent = 4 })
  if not ok then return nil, werr end
  return target
end

function M.run(opts)
  local target, err = M.convert(opts.input, opts.name, opts.output_root)
  if not target then args.user_error("convert_old_nnUNet_dataset: %s", err) end
  io.stdout:write(string.format("wrote %s\n", target))
  return 0
end

return M
