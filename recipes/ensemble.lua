-- ensemble predictions: mean of the probabilities (CASE.npz) of several folders, argmax, write segmentations
--
-- nnunet ensemble -i FOLDER1 FOLDER2 ... -o OUTPUT_FOLDER [-np N] [--save_npz]
-- As nnUNetv2_ensemble (nnunet-behaviour.md §11): every folder must hold the same
-- cases as CASE.npz + CASE.json (nnunet predict --save_probabilities); per case the
-- float32 probabilities are averaged, turned into a segmentation (argmax, or the
-- regions of regions_class_order with p > 0.5) and written with the geometry of
-- the first folder's CASE.json. dataset.json comes from the first folder (or
-- -dataset_json) and is copied to OUTPUT_FOLDER. --save_npz also writes the mean
-- probabilities. -np cases are merged at a time.
local ens = require("nnunet.ensemble")

return {
  summary = "ensemble prediction folders: mean of their probabilities (CASE.npz), argmax, segmentations",
  options = {
    { "-i", "inputs", "folders with CASE.npz + CASE.json (nnunet predict --save_probabilities)", nargs = "+",
      required = true },
    { "-o", "output", "output folder", required = true },
    { "-np", "num_processes", "cases merged in parallel (threads)", type = "int", default = 8 },
    { "--save_npz", "save_npz", "also write the mean probabilities (CASE.npz + CASE.json)", flag = true },
    { "-dataset_json", "dataset_json", "dataset.json (default: the first input folder's)" },
  },
  run = function(o)
    if #o.inputs < 2 then
      io.stderr:write("note: only one input folder; its probabilities are converted as they are\n")
    end
    local n = ens.ensemble_folders(o.inputs, o.output, { save_npz = o.save_npz, dataset_json = o.dataset_json,
                                                    num_processes = o.num_processes, label = "ensemble" })
    print(string.format("%d cases ensembled from %d folders -> %s", n, #o.inputs, o.output))
    return 0
  end,
}
