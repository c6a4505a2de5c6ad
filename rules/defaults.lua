-- rules/defaults.lua: every tunable constant of the planning rules, as plain data (R30).
-- A recipe or the command line overrides single entries (e.g. `-gpu_memory_target 24` ->
-- settings.gpu_memory_target = 24); lua/nnunet/rules.lua `rules.settings(overrides)` merges
-- and type-checks them. Values are those of nnU-Net v2's default ExperimentPlanner
-- (nnunet-behaviour.md §3.2, §4.1, §5.1, §5.6, §6, §13.1); `false` means "not set".
local twos12 = { 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2 }
local twos11 = { 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2 }

return {
  name = "defaults",
  version = 2,
  settings = {
    -- GPU memory budget -----------------------------------------------------------
    gpu_memory_target = 8,               -- GB; CLI -gpu_memory_target
    reference_gpu_memory = 8,            -- GB the reference values below correspond to
    reference_val_3d = 560000000,        -- feature-map elements a 3D net may use at 8 GB
    reference_val_2d = 85000000,         -- same for 2D
    reference_bs_3d = 2,                 -- batch size the 3D reference value was measured with
    reference_bs_2d = 12,                -- same for 2D
    -- network --------------------------------------------------------------------
    base_num_features = 32,              -- features of stage 0, doubled per stage
    max_features_3d = 320,
    max_features_2d = 512,
    featuremap_min_edge_length = 4,      -- bottleneck edge >= this (pooling needs size >= 2x)
    max_numpool = 999999,                -- max pooling ops per axis (unlimited)
    n_conv_per_stage_encoder = twos12,   -- sliced to n_stages
    n_conv_per_stage_decoder = twos11,   -- sliced to n_stages - 1
    n_blocks_per_stage_encoder = false,  -- residual encoder: basic blocks per stage (§5.8)
    network_class_name = "dynamic_network_architectures.architectures.unet.PlainConvUNet",
    conv_bias = true,
    norm_eps = 1e-5,
    norm_affine = true,
    nonlin = "torch.nn.LeakyReLU",
    nonlin_inplace = true,
    -- patch and batch --------------------------------------------------------------
    initial_patch_edge_3d = 256,         -- initial patch has the voxel count of 256^3 ...
    initial_patch_edge_2d = 2048,        -- ... or 2048^2, isotropic in mm
    min_batch_size = 2,
    max_dataset_covered = 0.05,          -- a batch covers at most 5 % of the dataset voxels
    reduction_per_ref_bs = true,         -- shrink the patch while estimate/ref_bs*2 > reference
                                         -- (false: while estimate > reference, §5.8)
    -- spacing --------------------------------------------------------------------
    anisotropy_threshold = 3,            -- ANISO_THRESHOLD
    anisotropic_axis_percentile = 10,    -- percentile of the coarse axis' spacings
    anisotropy_min_margin = 1e-5,        -- coarse axis never finer than max(other)+margin
    overwrite_target_spacing = false,    -- {z, y, x} to force the fullres spacing
    suppress_transpose = false,
    -- normalization ----------------------------------------------------------------
    use_mask_for_norm_threshold = 0.75,  -- median relative size after cropping < this
    -- cascade ----------------------------------------------------------------------
    lowres_creation_threshold = 0.25,    -- create 3d_lowres if patch < 25 % of the median
    lowres_spacing_increase_factor = 1.03,
    lowres_anisotropy_factor = 2,        -- first coarsen axes with max/s > this
    lowres_min_size_ratio = 2,           -- keep lowres only if fullres/lowres voxels >= this
    -- resampling (plans kwargs; order_z along the separate-z axis) --------------------
    resampling_order_data = 3,
    resampling_order_seg = 1,
    resampling_order_probabilities = 1,
    resampling_order_z = 0,
    separate_z_anisotropy_threshold = 3,
    -- names written into the plans -----------------------------------------------
    plans_name = "nnUNetPlans",
    shared_data_identifier = false,      -- plans name whose 2d/3d_fullres data are reused (§5.8)
    preprocessor_name = "DefaultPreprocessor",
    experiment_planner_name = "ExperimentPlanner",
    label_manager = "LabelManager",
    image_reader_writer = false,         -- class name to force; false = by file_ending
    training_defaults = false,           -- table recorded in the plans for the trainer (2018 set)
  },
}
