-- evaluate predicted segmentations for given labels (no dataset.json needed) -> summary.json
--
-- nnunet evaluate_simple GT_FOLDER PRED_FOLDER -l 1 2 ... [-il IGNORE] [-o summary.json] [-np N] [--chill]
-- As nnUNetv2_evaluate_simple (nnunet-behaviour.md §12): the file ending is taken
-- from the first reference file the way the reference does (the text after its last
-- dot, e.g. ".gz"); the summary goes to PRED_FOLDER/summary.json unless -o is given.
local evaluate = require("nnunet.evaluate")
local fs = require("nnunet.fs")

return {
  summary = "evaluate predicted segmentations for the given labels (summary.json)",
  options = {
    { "GT_FOLDER", "gt_folder", "folder with the reference segmentations", positional = true },
    { "PRED_FOLDER", "pred_folder", "folder with the predicted segmentations", positional = true },
    { "-l", "labels", "labels to evaluate", nargs = "+", type = "int", required = true },
    { "-il", "ignore_label", "ignore label", type = "int" },
    { "-o", "output_file", "output file (default: PRED_FOLDER/summary.json)" },
    { "-np", "num_processes", "number of processes (accepted; evaluation is sequential)", type = "int", default = 8 },
    { "--chill", "chill", "do not require a prediction for every reference file", flag = true },
  },
  run = function(o)
    local names = fs.listdir(o.gt_folder) or {}
    table.sort(names)
    local first
    for _, n in ipairs(names) do
      if fs.isfile(evaluate.join(o.gt_folder, n)) then first = n; break end
    end
    if not first then error({ user_error = true, message = "no files in '" .. o.gt_folder .. "'" }, 0) end
    local ending = first:match("(%.[^.]*)$") or ""
    local out = o.output_file or evaluate.join(o.pred_folder, "summary.json")
    local result = evaluate.compute_metrics_on_folder(o.gt_folder, o.pred_folder, out, ending, o.labels,
      o.ignore_label, { chill = o.chill })
    print(string.format("%d cases evaluated; foreground mean Dice %.4f; summary written to %s",
      #result.metric_per_case, result.foreground_mean.Dice, out))
    return 0
  end,
}
