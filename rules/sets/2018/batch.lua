-- rules/sets/2018/batch.lua: batch size of the original code ([v1-orig], nnunet-behaviour.md
-- §5.9): "large patch sizes are favored over large batch sizes (with a minimum batch size
-- of 2)". Pure (R30).
--   3D: bs = floor(max(ref / E, 1) * 2); cap = max(round(0.05 * N / prod(patch)), 2)
--   2D: bs = floor(ref / E * 50);        cap = round(0.05 * N / prod(patch))
--   batch = max(1, min(bs, cap))
local M = { name = "batch", version = 1 }

function M.reference(dim, cfg)
  local val = dim == 2 and cfg.reference_val_2d or cfg.reference_val_3d
  return val * (cfg.gpu_memory_target / cfg.reference_gpu_memory)
end

function M.reference_batch_size(dim, cfg)
  return dim == 2 and cfg.reference_bs_2d or cfg.reference_bs_3d
end

function M.batch_size(estimate, reference, ref_bs, n_voxels_dataset, patch, cfg)
  local d = #patch
  local bs
  if d == 3 then
    bs = math.floor(math.max(reference / estimate, 1) * ref_bs)
  else
    bs = math.floor(reference / estimate * ref_bs)
  end
  local cap = util.round(cfg.max_dataset_covered * n_voxels_dataset / util.prod(util.floats(patch)))
  if d == 3 then cap = math.max(cap, cfg.min_batch_size) end
  local out = util.to_int(math.max(1, math.min(bs, cap)))
  util.note(cfg, "batch (2018): memory allows floor(%s / %s x %s) = %s, %s %% cap %s -> %s",
    util.num(reference), util.num(estimate), util.num(ref_bs), util.num(bs),
    util.num(cfg.max_dataset_covered * 100), util.num(cap), util.num(out))
  return out
end

return M
