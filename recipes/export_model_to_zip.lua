-- export trained models (checkpoints, plans, validation summaries) of a dataset as a zip file
--
-- nnunet export_model_to_zip -d ID -o FILE.zip [-c CONFIGS...] [-tr TRAINER] [-p PLANS] [-f FOLDS...]
--        [-chk CHECKPOINTS...] [--not_strict] [--exp_cv_preds] [--overwrite]
-- As nnUNetv2_export_model_to_zip (nnunet-behaviour.md §14; docs/models.md): per
-- configuration the folds' debug.json, checkpoints, progress.png and
-- validation/summary.json, the crossval_results summary and postprocessing files,
-- plans.json, dataset.json and dataset_fingerprint.json, then matching ensembles and
-- inference_information.json; names are relative to $nnUNet_results. An existing
-- FILE.zip is replaced only with --overwrite. Checkpoints are converted to the
-- reference's PyTorch format (so the zip installs into the reference too) unless
-- --native_checkpoints. Code: lua/nnunet/model_sharing.lua.
local sharing = require("nnunet.model_sharing")

return {
  summary = "export trained models of a dataset as a zip file (nnUNetv2_export_model_to_zip)",
  options = {
    { "-d", "dataset", "dataset id or name", required = true },
    { "-o", "output", "output zip file", required = true },
    { "-c", "configs", "configurations", nargs = "+", default = sharing.DEFAULT_CONFIGS },
    { "-tr", "trainer", "trainer class", default = "nnUNetTrainer" },
    { "-p", "plans", "plans identifier", default = "nnUNetPlans" },
    { "-f", "folds", "folds (integers or 'all')", nargs = "+", default = sharing.DEFAULT_FOLDS },
    { "-chk", "checkpoints", "checkpoint names to export", nargs = "+", default = sharing.DEFAULT_CHECKPOINTS },
    { "--not_strict", "not_strict", "skip missing configurations and folds instead of stopping", flag = true },
    { "--exp_cv_preds", "exp_cv_preds", "also export the cross-validation predictions", flag = true },
    { "--overwrite", "overwrite", "replace an existing output file", flag = true },
    { "--native_checkpoints", "native_checkpoints",
      "copy this program's checkpoints as they are (smaller, keep the optimizer state; the reference cannot read them) "
        .. "instead of converting them to PyTorch checkpoints", flag = true },
  },
  run = function(o)
    sharing.export_pretrained_model({
      dataset = o.dataset, output = o.output, configs = o.configs, trainer = o.trainer, plans = o.plans,
      folds = o.folds, checkpoints = o.checkpoints, strict = not o.not_strict,
      export_crossval_predictions = o.exp_cv_preds, overwrite = o.overwrite,
      native_checkpoints = o.native_checkpoints,
    })
    return 0
  end,
}
