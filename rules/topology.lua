-- rules/topology.lua: network topology from spacing and patch size
-- (nnunet-behaviour.md §5.3, `get_pool_and_conv_props`). Pure (R30).
-- Sizes may be non-integral on entry (clipped to a median of x.5); the padded patch is integral.
local M = { name = "topology", version = 1 }

-- pad_shape: round each size up to a multiple of its divisor (unchanged if divisible);
-- numpy astype(int) truncation of the result
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

-- spacing, patch: per-axis lists; min_fm: cfg.featuremap_min_edge_length; max_numpool
-- returns {
--   num_pool_per_axis = {..}, strides = {{1,..}, ..} (n_stages entries, stage 0 all ones),
--   kernel_sizes = {{..}, ..} (n_stages entries, bottleneck all 3),
--   patch_size = padded patch (integers), divisor = 2^num_pool per axis }
function M.pool_and_conv_props(spacing, patch, min_fm, max_numpool)
  local dim = #spacing
  local cur_spacing, cur_size = {}, {}
  for a = 1, dim do cur_spacing[a] = spacing[a]; cur_size[a] = patch[a] end
  local ones = {}
  for a = 1, dim do ones[a] = 1 end
  local strides = { ones }
  local kernels = {}
  local npool, kernel = {}, {}
  for a = 1, dim do npool[a] = 0; kernel[a] = 1 end

  while true do
    -- 1. axes that can still be halved without going below min_fm
    local valid = {}
    for a = 1, dim do
      if cur_size[a] >= 2 * min_fm then valid[#valid + 1] = a end
    end
    if #valid < 1 then break end
    -- 2. keep valid axes within factor 2 of the finest valid spacing
    local ms = math.huge
    for _, a in ipairs(valid) do if cur_spacing[a] < ms then ms = cur_spacing[a] end end
    local v2 = {}
    for _, a in ipairs(valid) do
      if cur_spacing[a] / ms < 2 and npool[a] < max_numpool then v2[#v2 + 1] = a end
    end
    valid = v2
    -- 4. a single remaining axis needs size >= 3*min_fm
    if #valid == 1 and not (cur_size[valid[1]] >= 3 * min_fm) then break end
    if #valid < 1 then break end
    -- 5. sticky kernel update against the global minimum spacing
    local gmin = util.min(cur_spacing)
    for a = 1, dim do
      if kernel[a] ~= 3 and cur_spacing[a] / gmin < 2 then kernel[a] = 3 end
    end
    -- 6. pool the valid axes
    local is_valid = {}
    for _, a in ipairs(valid) do is_valid[a] = true end
    local stride = {}
    for a = 1, dim do
      if is_valid[a] then
        stride[a] = 2
        npool[a] = npool[a] + 1
        cur_spacing[a] = cur_spacing[a] * 2
        cur_size[a] = math.ceil(cur_size[a] / 2)
      else
        stride[a] = 1
      end
    end
    strides[#strides + 1] = stride
    kernels[#kernels + 1] = util.copy(kernel)
  end

  local divisor = {}
  for a = 1, dim do divisor[a] = 1 << npool[a] end
  local bottleneck = {}
  for a = 1, dim do bottleneck[a] = 3 end
  kernels[#kernels + 1] = bottleneck
  return {
    num_pool_per_axis = npool,
    strides = strides,
    kernel_sizes = kernels,
    patch_size = M.pad_shape(patch, divisor),
    divisor = divisor,
  }
end

return M
