-- the demo: a short end-to-end run on the bundled Hippocampus subset
--
-- nnunet demo [-o WORKDIR]
--
-- Works in WORKDIR (default build/demo) with its own nnUNet_raw,
-- nnUNet_preprocessed and nnUNet_results unless those are set. Stages run so far:
-- dataset check and summary. Later stages (plan, preprocess, training,
-- prediction, evaluation) are added as the pipeline lands (docs/demo.md).
local dataset = require("nnunet.dataset")
local nifti = require("nnunet.nifti")
local fs = require("nnunet.fs")
local sys = require("nnunet.sys")
local recipe = require("nnunet.recipe")

local M = {
  summary = "the demo: a short end-to-end run on the bundled Hippocampus subset",
  options = {
    { "-o", "workdir", "working folder", default = "build/demo" },
  },
}

local function summarize(ds)
  local shapes, dtypes = {}, {}
  local vmin, vmax = math.huge, -math.huge
  for _, case in ipairs(ds.cases) do
    local info = assert(nifti.read_header(case.images[1]))
    local s = info.shape
    vmin = math.min(vmin, s[1] * s[2] * s[3])
    vmax = math.max(vmax, s[1] * s[2] * s[3])
    dtypes[info.dtype] = (dtypes[info.dtype] or 0) + 1
    shapes[#shapes + 1] = s
  end
  local dt = {}
  for k, v in pairs(dtypes) do dt[#dt + 1] = string.format("%s x%d", k, v) end
  table.sort(dt)
  local labels = {}
  for name, v in pairs(ds.labels) do labels[#labels + 1] = string.format("%s=%s", name, tostring(v)) end
  table.sort(labels)
  print(string.format("dataset   %s (%s)", ds.name, ds.path))
  print(string.format("cases     %d, channels %d (%s)", #ds.cases, ds.num_channels, table.concat(ds.channel_names, ", ")))
  print(string.format("labels    %s", table.concat(labels, ", ")))
  print(string.format("voxels    %d .. %d per case; image dtypes %s", vmin, vmax, table.concat(dt, ", ")))
end

function M.run(opts)
  local data = sys.home .. "/data/Dataset004_Hippocampus_demo"
  local ds = assert(dataset.open(data))
  print("== 1. dataset check")
  local st = recipe.call("verify_dataset", { "-d", data })
  if st ~= 0 then return st end
  summarize(ds)
  return 0
end

return M
