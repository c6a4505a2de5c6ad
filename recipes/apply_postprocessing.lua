-- apply a postprocessing.json (keep-largest-component steps) to a folder of segmentations
--
-- nnunet apply_postprocessing -i INPUT_FOLDER -o OUTPUT_FOLDER -pp_pkl_file postprocessing.json
--        [-np N] [-plans_json plans.json] [-dataset_json dataset.json]
-- As nnUNetv2_apply_postprocessing (nnunet-behaviour.md §10): every segmentation
-- with the dataset's file ending is read, the steps are applied in order, and it is
-- written with the same geometry. dataset.json (file ending) and plans.json default
-- to the ones in INPUT_FOLDER and are copied to OUTPUT_FOLDER. The reference's
-- pickle is replaced by postprocessing.json (a .pkl path reads the .json beside it).
local pp = require("nnunet.postprocessing")
local evaluate = require("nnunet.evaluate")
local json = require("nnunet.json")
local fs = require("nnunet.fs")

local function copy(src, dst)
  local f = io.open(src, "rb")
  if not f then return false end
  local s = f:read("a")
  f:close()
  local g = assert(io.open(dst, "wb"))
  g:write(s)
  g:close()
  return true
end

return {
  summary = "apply postprocessing (keep the largest connected component) to a folder of segmentations",
  options = {
    { "-i", "input_folder", "folder with the segmentations", required = true },
    { "-o", "output_folder", "output folder", required = true },
    { "-pp_pkl_file", "pp_file", "postprocessing.json (or its .pkl name)", required = true },
    { "-np", "num_processes", "files postprocessed in parallel (threads)", type = "int", default = 8 },
    { "-plans_json", "plans_json", "plans.json (default: INPUT_FOLDER/plans.json; copied to the output)" },
    { "-dataset_json", "dataset_json", "dataset.json (default: INPUT_FOLDER/dataset.json)" },
  },
  run = function(o)
    local dj = o.dataset_json or evaluate.join(o.input_folder, "dataset.json")
    local file_ending = ".nii.gz"
    if fs.isfile(dj) then
      local v = json.decode_file(dj)
      if v and v.file_ending then file_ending = v.file_ending end
    elseif o.dataset_json then
      error({ user_error = true, message = "dataset.json '" .. dj .. "' not found" }, 0)
    end
    local steps = pp.load(o.pp_file)
    local n = pp.apply_to_folder(o.input_folder, o.output_folder, steps, file_ending, o.num_processes)
    if fs.isfile(dj) then copy(dj, evaluate.join(o.output_folder, "dataset.json")) end
    local plans = o.plans_json or evaluate.join(o.input_folder, "plans.json")
    if fs.isfile(plans) then copy(plans, evaluate.join(o.output_folder, "plans.json")) end
    print(string.format("%d segmentations postprocessed (%d steps) -> %s", n, #steps, o.output_folder))
    return 0
  end,
}
