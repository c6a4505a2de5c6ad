-- gather the validation predictions of a model's folds into one folder and evaluate them (crossval_results_folds_X)
--
-- nnunet accumulate_crossval_results ID -c CONFIG [-o OUTPUT_FOLDER] [-f FOLDS...] [-p PLANS] [-tr TRAINER]
-- As nnUNetv2_accumulate_crossval_results (nnunet-behaviour.md §11, §14;
-- docs/model_selection.md): the predictions in fold_k/validation/ of every requested
-- fold are copied (each case from exactly one fold) with dataset.json and plans.json
-- into <model>/crossval_results_folds_<folds>/ (recreated) or into -o, which must be
-- new or empty, and evaluated against nnUNet_raw/<dataset>/labelsTr (or
-- nnUNet_preprocessed/<dataset>/gt_segmentations) into its summary.json. The same
-- step find_best_configuration runs for every candidate (lua/nnunet/model_selection.lua).
local ms = require("nnunet.model_selection")
local dataset = require("nnunet.dataset")
local json = require("nnunet.json")
local evaluate = require("nnunet.evaluate")
local fs = require("nnunet.fs")

local function user_error(fmt, ...)
  error({ user_error = true, message = string.format(fmt, ...) }, 0)
end

local join = evaluate.join

return {
  summary = "copy the folds' validation predictions into one folder and evaluate them (nnUNetv2_accumulate_crossval_results)",
  options = {
    { "DATASET", "dataset_pos", "dataset id or name", positional = true, optional = true },
    { "-d", "dataset", "dataset id or name (instead of the first argument)" },
    { "-c", "config", "configuration", required = true },
    { "-o", "output", "output folder (default: <model>/crossval_results_folds_<folds>); must be new or empty" },
    { "-f", "folds", "folds", nargs = "+", type = "int", default = ms.DEFAULT_FOLDS },
    { "-p", "plans", "plans identifier", default = "nnUNetPlans" },
    { "-tr", "trainer", "trainer class", default = "nnUNetTrainer" },
  },
  run = function(o)
    local ds = o.dataset or o.dataset_pos
    if ds == nil then user_error("missing the dataset (nnunet accumulate_crossval_results --help)") end
    if o.dataset and o.dataset_pos and o.dataset ~= o.dataset_pos then
      user_error("dataset given twice: -d %s and %s", o.dataset, o.dataset_pos)
    end
    local name, nerr = dataset.resolve_name(ds)
    if not name then user_error("%s", nerr) end
    local model = join(dataset.results_dir(name), ms.model_identifier(o.trainer, o.plans, o.config))
    if not fs.isdir(model) then
      user_error("trained model folder '%s' does not exist (train it: nnunet train -d %s -c %s -f 0 ...)", model, ds,
        o.config)
    end
    local merged = o.output
    if merged == nil then
      merged = join(model, "crossval_results_folds_" .. ms.folds_string(o.folds))
    elseif fs.isdir(merged) and #(fs.listdir(merged) or {}) > 0 then
      user_error("Output folder '%s' exists and is not empty. To avoid data loss, an empty output folder is required.",
        merged)
    end
    -- the reference's reference folder: labelsTr of the plans' dataset, else gt_segmentations
    local plans = json.decode_file(join(model, "plans.json"))
    local ds_name = plans and type(plans.dataset_name) == "string" and plans.dataset_name or name
    local raw = dataset.env("nnUNet_raw")
    local gt = raw and join(join(raw, ds_name), "labelsTr")
    if not (gt and fs.isdir(gt)) then
      local pre = dataset.env("nnUNet_preprocessed")
      gt = pre and join(join(pre, ds_name), "gt_segmentations")
      if not (gt and fs.isdir(gt)) then
        user_error("no reference segmentations for %s: neither nnUNet_raw/%s/labelsTr nor "
          .. "nnUNet_preprocessed/%s/gt_segmentations exists", ds_name, ds_name, ds_name)
      end
    end
    ms.num_processes = ms.DEFAULT_NUM_PROCESSES
    local summary = ms.accumulate_cv_results(model, merged, o.folds, gt, { overwrite = true })
    local lm = evaluate.label_manager(join(model, "dataset.json"))
    print(string.format("%s: folds %s evaluated against %s", merged, table.concat(o.folds, " "), gt))
    for _, r in ipairs(lm.regions_or_labels) do
      local k = evaluate.key(r)
      print(string.format("  %-16s %s", k, json.format_number(summary.mean[k].Dice)))
    end
    print(string.format("  %-16s %s", "foreground mean", json.format_number(summary.foreground_mean.Dice)))
    return 0
  end,
}
