-- rules/sets/2018/topology.lua: "pool late" topology of the original code ([v1-orig]
-- get_pool_and_conv_props_poolLateV2, nnunet-behaviour.md §5.9), which implements the
-- 2018 paper's "Pooling along each axis is done until further pooling would reduce the
-- spatial size of this axis below 4 voxels". Pure (R30).
--   pools per axis  n_a = floor(log(size_a / min_fm) / log 2) (capped at max_numpool, >= 0)
--   stages          max_a n_a pooling steps; axis a is pooled at step p iff n_a + p >= max n
--                   (axes with fewer pools are pooled in the last steps)
--   kernels         step p: 3 on every axis once every axis has spacing/max(initial) > 0.5,
--                   else 1 on those coarse axes and 3 on the others; bottleneck all 3
-- Returned in the v2 plans layout (stage 0 stride 1), patch padded up to 2^n_a.
local M = { name = "topology", version = 1 }

function M.pad_shape(shape, divisor)
  local out = {}
  for a = 1, #shape do
    local d = divisor[a]
    local r = shape[a] % d
    local v = shape[a] + d - r
    if r == 0 then v = v - d end
    out[a] = util.trunc(v)
  end
  return out
end

function M.pool_and_conv_props(spacing, patch, min_fm, max_numpool)
  local dim = #spacing
  local npool, reach = {}, util.max(spacing)
  for a = 1, dim do
    local n = math.floor(math.log(patch[a] / min_fm) / math.log(2))
    npool[a] = math.tointeger(math.max(0, math.min(n, max_numpool)))
  end
  local net_numpool = util.max(npool)
  local ones = {}
  for a = 1, dim do ones[a] = 1 end
  local strides, kernels = { ones }, {}
  local cur = util.floats(spacing)
  for p = 0, net_numpool - 1 do
    local all_reached, reached = true, {}
    for a = 1, dim do
      reached[a] = cur[a] / reach > 0.5
      if not reached[a] then all_reached = false end
    end
    local pool, conv = {}, {}
    for a = 1, dim do
      pool[a] = (npool[a] + p >= net_numpool) and 2 or 1
      conv[a] = (all_reached or not reached[a]) and 3 or 1
    end
    strides[#strides + 1] = pool
    kernels[#kernels + 1] = conv
    for a = 1, dim do cur[a] = cur[a] * pool[a] end
  end
  local bottleneck, divisor = {}, {}
  for a = 1, dim do bottleneck[a] = 3; divisor[a] = 1 << npool[a] end
  kernels[#kernels + 1] = bottleneck
  return {
    num_pool_per_axis = npool, strides = strides, kernel_sizes = kernels,
    patch_size = M.pad_shape(patch, divisor), divisor = divisor,
  }
end

return M
