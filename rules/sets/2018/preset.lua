-- rules/sets/2018/preset.lua: the settings of the 2018 nnU-Net paper (Isensee et al., "nnU-Net:
-- Self-adapting Framework for U-Net-Based Medical Image Segmentation", shared/reference/
-- nnunet-2018-paper.txt) where the text gives them, and of the original v1 code
-- ([v1-orig], nnunet-behaviour.md §5.9, §7.9) where the text is silent.
-- Selected with `plan_experiment -pl 2018`; the other files of this folder replace the
-- default rules that differ (spacing, normalization, topology, vram, patch, batch, lowres).
return {
  name = "preset",
  version = 1,
  settings = {
    -- "30 convolutional filters in the first layer and double this number with each pooling"
    base_num_features = 30,
    max_features_3d = 320,          -- [v1-orig] Generic_UNet cap (text silent)
    max_features_2d = 512,          -- [v1-orig] 2D planner cap (§5.9)
    -- "keeping the memory consumption within a certain budget (12 GB TitanXp GPU)": the
    -- [v1-orig] reference value 520,000,000 (§5.9) is the 3D budget of that 12 GB GPU
    gpu_memory_target = 12,
    reference_gpu_memory = 12,
    reference_val_3d = 520000000,   -- Generic_UNet.use_this_for_batch_size_computation_3D
    reference_bs_3d = 2,            -- DEFAULT_BATCH_SIZE_3D ("minimum batch size of 2")
    reference_val_2d = 19739648,    -- Generic_UNet.use_this_for_batch_size_computation_2D
    reference_bs_2d = 50,           -- DEFAULT_BATCH_SIZE_2D
    -- "Pooling along each axis is done until further pooling would reduce the spatial size
    -- of this axis below 4 voxels"
    featuremap_min_edge_length = 4,
    max_numpool = 999,
    -- "If the selected patch size covers less than 25% of the voxels in a typical training
    -- case, the 3D U-Net cascade is additionally configured": [v1-orig] creates it when
    -- prod(median)/prod(patch) >= 4 and coarsens the spacing by 1.01 per step until the
    -- low-resolution median is at most 4 patches (§5.9)
    lowres_creation_threshold = 0.25,
    lowres_spacing_increase_factor = 1.01,
    lowres_anisotropy_factor = 2,
    lowres_min_size_ratio = 2,      -- kept only if 2 * prod(lowres median) < prod(fullres median)
    anisotropy_threshold = 3,       -- "out-of-plane spacing three times larger than in-plane"
    plans_name = "nnUNetPlans2018",
    experiment_planner_name = "ExperimentPlanner2018",
    -- training recipe of the paper (§2.2) and [v1-orig] nnUNetTrainer (§7.9), recorded in the
    -- plans as "nnunet_training" for the trainer to pick up
    training_defaults = {
      optimizer = "Adam",
      amsgrad = true,                       -- [v1-orig]
      initial_lr = 3e-4,                    -- paper
      weight_decay = 3e-5,                  -- paper ("l2 weight decay")
      lr_scheduler = "ReduceLROnPlateau",   -- on the EMA of the training loss
      lr_scheduler_factor = 0.2,            -- paper ("dropped by a factor of 0.2")
      lr_scheduler_patience = 30,           -- paper ("within the last 30 epochs")
      lr_scheduler_threshold = 1e-3,        -- [v1-orig] threshold_mode 'abs'
      train_loss_ema_alpha = 0.93,          -- [v1-orig] MA_t = 0.93 MA_{t-1} + 0.07 loss_t
      stop_when_lr_below = 1e-6,            -- paper
      early_stopping_patience = 50,         -- [v1-orig]
      max_num_epochs = 1000,                -- paper
      num_iterations_per_epoch = 250,       -- paper
      num_val_iterations_per_epoch = 50,    -- [v1-orig]
      loss = "dice+ce",                     -- paper
      oversample_foreground_percent = 0.33, -- [v1-orig]
      mixed_precision = false,              -- [v1-orig] fp32
    },
  },
}
