-- rules/batch.lua: memory reference and batch size (nnunet-behaviour.md §5.5 steps 5, 7, 8).
-- Pure (R30).
local M = { name = "batch", version = 2 }

-- feature-map budget for this GPU memory target (float)
function M.reference(dim, cfg)
  local val = dim == 2 and cfg.reference_val_2d or cfg.reference_val_3d
  return val * (cfg.gpu_memory_target / cfg.reference_gpu_memory)
end

function M.reference_batch_size(dim, cfg)
  return dim == 2 and cfg.reference_bs_2d or cfg.reference_bs_3d
end

-- bs = round(reference/estimate*ref_bs), capped to cover at most max_dataset_covered of the
-- (float) dataset voxels, and at least min_batch_size
function M.batch_size(estimate, reference, ref_bs, n_voxels_dataset, patch, cfg)
  local bs = util.round(reference / estimate * ref_bs)
  local bs_cap = util.round(n_voxels_dataset * cfg.max_dataset_covered / util.prod(util.floats(patch)))
  local out = util.to_int(math.max(math.min(bs, bs_cap), cfg.min_batch_size))
  util.note(cfg, "batch: memory allows round(%s / %s x %s) = %s, %s %% cap round(%s x %s / %s) = %s, minimum %s -> %s",
    util.num(reference), util.num(estimate), util.num(ref_bs), util.num(bs), util.num(cfg.max_dataset_covered * 100),
    util.num(n_voxels_dataset), util.num(cfg.max_dataset_covered), util.num(util.prod(patch)), util.num(bs_cap),
    util.num(cfg.min_batch_size), util.num(out))
  return out
end

return M
