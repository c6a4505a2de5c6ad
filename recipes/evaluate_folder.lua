-- evaluate a folder of predicted segmentations against the reference (Dice, IoU, TP/FP/FN/TN) -> summary.json
--
-- nnunet evaluate_folder REF_DIR PRED_DIR -djfile dataset.json [-o summary.json] [-np N] [--chill]
-- As nnUNetv2_evaluate_folder (nnunet-behaviour.md §12): labels or regions and the
-- ignore label come from dataset.json; the summary goes to PRED_DIR/summary.json
-- unless -o is given. The image reader/writer class is the plans' (-pfile) or chosen
-- by the file ending. -np threads read and count the cases in parallel.
local evaluate = require("nnunet.evaluate")

return {
  summary = "evaluate predicted segmentations against reference segmentations (summary.json)",
  options = {
    { "REF_DIR", "gt_folder", "folder with the reference segmentations", positional = true },
    { "PRED_DIR", "pred_folder", "folder with the predicted segmentations", positional = true },
    { "-djfile", "djfile", "dataset.json (labels, regions, ignore label, file ending)", required = true },
    { "-pfile", "pfile", "plans.json (its image_reader_writer reads the files; default: by file ending)" },
    { "-o", "output_file", "output file (default: PRED_DIR/summary.json)" },
    { "-np", "num_processes", "number of threads reading and counting cases", type = "int", default = 8 },
    { "--chill", "chill", "do not require a prediction for every reference file", flag = true },
  },
  run = function(o)
    local lm = evaluate.label_manager(o.djfile)
    local reader
    if o.pfile then
      local plans, perr = require("nnunet.json").decode_file(o.pfile)
      if not plans then error({ user_error = true, message = "cannot read -pfile: " .. tostring(perr) }, 0) end
      reader = require("nnunet.dataset").plans_reader(plans)
    end
    local out = o.output_file or evaluate.join(o.pred_folder, "summary.json")
    local result = evaluate.compute_metrics_on_folder(o.gt_folder, o.pred_folder, out, lm.file_ending,
      lm.regions_or_labels, lm.ignore_label, { chill = o.chill, num_processes = o.num_processes,
                                               image_reader = reader })
    local keys = {}
    for _, r in ipairs(lm.regions_or_labels) do keys[#keys + 1] = evaluate.key(r) end
    print(string.format("%d cases evaluated; mean Dice per %s:", #result.metric_per_case,
      lm.has_regions and "region" or "label"))
    for _, k in ipairs(keys) do
      print(string.format("  %-16s %.4f", k, result.mean[k].Dice))
    end
    print(string.format("  %-16s %.4f", "foreground mean", result.foreground_mean.Dice))
    print("summary written to " .. out)
    return 0
  end,
}
