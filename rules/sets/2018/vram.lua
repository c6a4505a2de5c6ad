-- rules/sets/2018/vram.lua: the original code's memory estimate ([v1-orig]
-- Generic_UNet.compute_approx_vram_consumption, nnunet-behaviour.md §5.9), conv_per_stage
-- cps = 2, deep supervision not counted (the planner does not):
--   E = (2 cps + 1) |P_0| b + channels |P_0| + classes |P_0|
--     + sum_{p=1..npool} k_p |P_p| F_p,   k_p = 2 cps + 1 for p < npool, cps for the bottleneck
--   P_p = P_{p-1} / stride_p (truncated), F_p = min(2 F_{p-1}, max_features), F_0 = b.
-- Unlike v2 it counts the input channels. Pure (R30).
local M = { name = "vram", version = 1 }

function M.estimate_v1(patch, strides, base, max_features, num_channels, num_classes, cps)
  local size = {}
  for a = 1, #patch do size[a] = util.to_int(patch[a]) end
  local function vox()
    local v = 1
    for a = 1, #size do v = v * size[a] end
    return v
  end
  local npool = #strides - 1
  local e = (cps * 2 + 1) * vox() * base + num_channels * vox() + num_classes * vox()
  local f = base
  for p = 1, npool do
    for a = 1, #size do size[a] = size[a] // strides[p + 1][a] end
    f = math.min(f * 2, max_features)
    local k = p < npool and (cps * 2 + 1) or cps
    e = e + k * vox() * f
  end
  return e
end

return M
