-- seg_agreement.lua: voxel agreement between two folders of segmentations of the same
-- cases (e.g. the same checkpoint predicted on CUDA and on the CPU), run as a recipe:
--
--   nnunet tests/gpu/seg_agreement.lua A_FOLDER B_FOLDER [-l 0 1 2]
--
-- For every CASE.nii.gz of A_FOLDER (B_FOLDER must hold the same names): voxels with
-- the same label in both, per case and in all; with -l, the Dice between A and B per
-- label. Prints one line per case and the line
--   agreement N of M voxels (P %) in K cases; differing D; Dice A vs B per label: ...
-- A case missing in B, or of another shape, is a user error. Used by tests/gpu/e2e.sh.
local evaluate = require("nnunet.evaluate")
local infer = require("nnunet.infer")

local function user_error(fmt, ...)
  error({ user_error = true, message = string.format(fmt, ...) }, 0)
end

return {
  summary = "voxel agreement of two folders of segmentations (CUDA vs CPU predictions)",
  options = {
    { "A_FOLDER", "a", "first folder of segmentations", positional = true },
    { "B_FOLDER", "b", "second folder (same file names)", positional = true },
    { "-l", "labels", "labels (default: 0 1 2)", nargs = "+", type = "int", default = { 0, 1, 2 } },
  },
  run = function(o)
    local files = evaluate.list_files(o.a, ".nii.gz")
    if #files == 0 then user_error("no .nii.gz files in '%s'", o.a) end
    local same, total = 0, 0
    local tp, n_a, n_b = {}, {}, {}
    for i = 1, #o.labels do tp[i], n_a[i], n_b[i] = 0, 0, 0 end
    for _, name in ipairs(files) do
      local a <close> = evaluate.read_seg(evaluate.join(o.a, name))
      local b <close> = evaluate.read_seg(evaluate.join(o.b, name))
      local sa, sb = table.concat(a:shape(), "x"), table.concat(b:shape(), "x")
      if sa ~= sb then user_error("%s: shape %s in '%s' but %s in '%s'", name, sa, o.a, sb, o.b) end
      -- the label in A is the reference: per label TP = voxels with that label in both
      local c = infer.confusion(a, b, o.labels)
      local case_same = 0
      for i, ci in ipairs(c) do
        case_same = case_same + ci.TP
        tp[i], n_a[i], n_b[i] = tp[i] + ci.TP, n_a[i] + ci.n_ref, n_b[i] + ci.n_pred
      end
      local n = a:numel()
      print(string.format("  %-28s %s  %d of %d voxels agree (%.4f %%)", name, sa, case_same, n,
        100 * case_same / n))
      same, total = same + case_same, total + n
    end
    local dice = {}
    for i, l in ipairs(o.labels) do
      local d = (n_a[i] + n_b[i] > 0) and 2 * tp[i] / (n_a[i] + n_b[i]) or 1
      dice[#dice + 1] = string.format("%d: %.5f", l, d)
    end
    print(string.format("agreement %d of %d voxels (%.4f %%) in %d cases; differing %d; Dice A vs B per label: %s",
      same, total, 100 * same / total, #files, total - same, table.concat(dice, ", ")))
    return 0
  end,
}
