-- rules/sets/nnUNetPlannerResEncL/preset.lua: the reference's residual-encoder preset L
-- (nnunet-behaviour.md §5.8; planning only). Selected with `plan_experiment -pl nnUNetPlannerResEncL`.
-- Same rules as the default planner except: ResidualEncoderUNet with (1,3,4,6,6,...) basic
-- blocks per encoder stage and one conv per decoder stage (rules/vram.lua estimate_residual,
-- rules/network.lua), reference values 2100000000 (3D) / 380000000 (2D) at 24 GB, the patch shrinks while
-- estimate > reference (no batch-2 scaling), no 5 % batch cap (max_dataset_covered = 1),
-- plans nnUNetResEncUNetLPlans whose 2d/3d_fullres data are nnUNetPlans' (data_identifier
-- nnUNetPlans_2d / nnUNetPlans_3d_fullres; 3d_lowres gets its own).
local blocks = { 1, 3, 4, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6 }
local ones = { 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1 }

return {
  name = "preset",
  version = 1,
  settings = {
    gpu_memory_target = 24,
    reference_gpu_memory = 24,
    reference_val_3d = 2100000000,
    reference_val_2d = 380000000,
    reduction_per_ref_bs = false,
    max_dataset_covered = 1,
    n_blocks_per_stage_encoder = blocks,
    n_conv_per_stage_decoder = ones,
    network_class_name = "dynamic_network_architectures.architectures.unet.ResidualEncoderUNet",
    plans_name = "nnUNetResEncUNetLPlans",
    shared_data_identifier = "nnUNetPlans",
    experiment_planner_name = "nnUNetPlannerResEncL",
  },
}
