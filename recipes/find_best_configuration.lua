-- find the best configuration or pairwise ensemble by cross-validation Dice, decide postprocessing, write inference instructions
--
-- nnunet find_best_configuration -d ID [-c CONFIGS...] [-tr TRAINERS...] [-p PLANS...] [-f FOLDS...]
--        [--disable_ensembling] [-np N] [--no_overwrite]
-- As nnUNetv2_find_best_configuration (nnunet-behaviour.md §10, §11): for every
-- trained (trainer, plans, configuration) the validation predictions of the folds
-- are gathered into <model>/crossval_results_folds_<folds>/ and evaluated; every
-- pair of models is ensembled from the --npz validation probabilities into
-- $nnUNet_results/DatasetXXX/ensembles/; the highest foreground-mean Dice wins
-- (single models first on ties); postprocessing is decided on the winner's folder
-- (postprocessing.json, postprocessed/); inference_information.json and
-- inference_instructions.txt (the nnunet predict / ensemble / apply_postprocessing
-- commands to run) go to $nnUNet_results/DatasetXXX/. docs/model_selection.md.
local ms = require("nnunet.model_selection")

return {
  summary = "pick the best configuration/ensemble by cross-validation Dice, decide postprocessing, print the commands",
  options = {
    { "-d", "dataset", "dataset id or name (required; or give it as the first argument, as the reference)" },
    { "DATASET", "dataset_pos", "dataset id or name (instead of -d)", positional = true, optional = true },
    { "-c", "configs", "configurations to consider (those missing from the plans are skipped)", nargs = "+",
      default = ms.DEFAULT_CONFIGS },
    { "-tr", "trainers", "trainers", nargs = "+", default = { "nnUNetTrainer" } },
    { "-p", "plans", "plans identifiers", nargs = "+", default = { "nnUNetPlans" } },
    { "-f", "folds", "folds", nargs = "+", type = "int", default = ms.DEFAULT_FOLDS },
    { "--disable_ensembling", "disable_ensembling", "do not try ensembles of two models", flag = true },
    { "-np", "num_processes", "threads for the evaluations (cases read and counted in parallel)", type = "int",
      default = 8 },
    { "--no_overwrite", "no_overwrite", "reuse existing cross-validation and ensemble outputs", flag = true },
  },
  run = function(o)
    local ds = o.dataset or o.dataset_pos
    if ds == nil then error({ user_error = true, message = "missing option -d (nnunet find_best_configuration --help)" }, 0) end
    if o.dataset and o.dataset_pos and o.dataset ~= o.dataset_pos then
      error({ user_error = true, message = "dataset given twice: -d " .. o.dataset .. " and " .. o.dataset_pos }, 0)
    end
    ms.num_processes = o.num_processes
    ms.find_best_configuration({
      dataset = ds, configs = o.configs, trainers = o.trainers, plans = o.plans, folds = o.folds,
      allow_ensembling = not o.disable_ensembling, overwrite = not o.no_overwrite,
    })
    return 0
  end,
}
