-- predict segmentations for a folder of images with trained model(s) (sliding window, mirroring, fold ensemble)
--
-- nnunet predict -i INPUT_FOLDER -o OUTPUT_FOLDER -d ID -c CONFIG [-f FOLDS...] [-tr TRAINER] [-p PLANS]
--   [-step_size 0.5] [--disable_tta] [--save_probabilities] [-device cpu|cuda|auto]
--   [--continue_prediction] [-num_parts N -part_id K] [-chk checkpoint_final] [-npp N] [-nps N]
-- As nnUNetv2_predict (nnunet-behaviour.md §9, §14). Work in progress.
return {
  summary = "predict segmentations for a folder of images (CASE_0000.nii.gz ...) with trained model(s)",
  options = {
    { "-i", "input", "input folder (files named CASE_XXXX.nii.gz as imagesTs)", required = true },
    { "-o", "output", "output folder (CASE.nii.gz)", required = true },
    { "-d", "dataset", "dataset id or name", required = true },
    { "-c", "config", "configuration (2d, 3d_fullres, 3d_lowres, ...)", required = true },
    { "-f", "folds", "folds to ensemble (default: 0 1 2 3 4, or the fold folders that exist)", nargs = "+" },
    { "-tr", "trainer", "trainer class name", default = "nnUNetTrainer" },
    { "-p", "plans", "plans identifier", default = "nnUNetPlans" },
    { "-step_size", "step_size", "sliding window step as a fraction of the patch size", type = "number", default = 0.5 },
    { "--disable_tta", "disable_tta", "no mirroring test-time augmentation", flag = true },
    { "--save_probabilities", "save_probabilities", "also write CASE.npz + CASE.json with class probabilities", flag = true },
    { "-device", "device", "cpu, cuda or auto", default = "auto", choices = { "cpu", "cuda", "auto" } },
    { "--continue_prediction", "continue_prediction", "skip cases whose output exists", flag = true },
    { "-num_parts", "num_parts", "split the cases into this many parts", type = "int", default = 1 },
    { "-part_id", "part_id", "which part to predict (0-based)", type = "int", default = 0 },
    { "-chk", "checkpoint", "checkpoint name", default = "checkpoint_final" },
    { "-npp", "npp", "preprocessing workers", type = "int", default = 3 },
    { "-nps", "nps", "export workers", type = "int", default = 3 },
  },
  run = function(o)
    error("nnunet predict: not implemented yet", 0)
  end,
}
