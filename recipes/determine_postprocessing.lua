-- decide the postprocessing (keep the largest component) for a folder of predictions by Dice against the reference
--
-- nnunet determine_postprocessing -i PREDICTIONS -ref REFERENCE [-plans_json F] [-dataset_json F] [-np N]
--        [--remove_postprocessed]
-- As nnUNetv2_determine_postprocessing (nnunet-behaviour.md §10, §14;
-- docs/model_selection.md): keep-largest for all foreground labels together, then
-- for each label/region, each kept iff it improves the Dice; writes
-- PREDICTIONS/postprocessing.json (what apply_postprocessing -pp_pkl_file reads) and
-- PREDICTIONS/postprocessed/ (removed again with --remove_postprocessed). The same
-- decision find_best_configuration makes on the winner (lua/nnunet/model_selection.lua).
local ms = require("nnunet.model_selection")
local evaluate = require("nnunet.evaluate")
local fs = require("nnunet.fs")

local function user_error(fmt, ...)
  error({ user_error = true, message = string.format(fmt, ...) }, 0)
end

return {
  summary = "decide which keep-largest-component steps improve Dice on a folder of predictions (nnUNetv2_determine_postprocessing)",
  options = {
    { "-i", "input", "folder with the predictions (e.g. crossval_results_folds_0_1_2_3_4)", required = true },
    { "-ref", "ref", "folder with the reference segmentations", required = true },
    { "-plans_json", "plans_json", "plans.json (accepted for compatibility; labels come from dataset.json)" },
    { "-dataset_json", "dataset_json", "dataset.json (default: INPUT/dataset.json)" },
    { "-np", "num_processes", "threads reading and counting cases in the evaluations", type = "int", default = 8 },
    { "--remove_postprocessed", "remove_postprocessed", "do not keep INPUT/postprocessed/", flag = true },
  },
  run = function(o)
    if not fs.isdir(o.input) then user_error("input folder '%s' does not exist", o.input) end
    if not fs.isdir(o.ref) then user_error("reference folder '%s' does not exist", o.ref) end
    local dj = o.dataset_json or evaluate.join(o.input, "dataset.json")
    if not fs.isfile(dj) then
      user_error("Expected dataset.json missing: '%s' (nnunet predict writes it beside the predictions; or pass "
        .. "-dataset_json)", dj)
    end
    if o.plans_json and not fs.isfile(o.plans_json) then user_error("plans file '%s' not found", o.plans_json) end
    ms.num_processes = o.num_processes
    local steps, pp = ms.determine_postprocessing(o.input, o.ref, {
      dataset_json = dj, log = print, keep_postprocessed_files = not o.remove_postprocessed,
    })
    print(string.format("%d postprocessing step(s) accepted; foreground mean Dice %.5f -> %.5f",
      #steps, pp.input_folder.foreground_mean.Dice, pp.postprocessed.foreground_mean.Dice))
    print("written: " .. evaluate.join(o.input, "postprocessing.json"))
    return 0
  end,
}
