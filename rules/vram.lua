-- rules/vram.lua: feature-map size estimate of the PlainConvUNet (deep supervision off)
-- (nnunet-behaviour.md §5.4, `compute_conv_feature_map_size`). Pure (R30).
-- Counts feature-map elements, not bytes; input channels do not enter.
local M = { name = "vram", version = 2 }

-- patch: integer patch; strides: per-stage stride lists (stage 0 all ones);
-- features: F_i per stage; n_conv_enc/n_conv_dec: per-stage conv counts;
-- num_classes: len(dataset.json labels) (background and ignore included)
-- E = sum_i enc_i*F_i*|P_i| + sum_{i<n-1} (dec_i+1)*F_i*|P_i| + C*|P_0|, P_i = P_{i-1} // s_i
function M.estimate(patch, strides, features, n_conv_enc, n_conv_dec, num_classes)
  local n = #strides
  local size = {}
  for a = 1, #patch do size[a] = util.to_int(patch[a]) end
  local vox = {}
  for i = 1, n do
    for a = 1, #size do size[a] = size[a] // strides[i][a] end
    local v = 1
    for a = 1, #size do v = v * size[a] end
    vox[i] = v
  end
  local e = 0
  for i = 1, n do e = e + n_conv_enc[i] * features[i] * vox[i] end
  -- decoder stage j (1-based, bottom-up) works at encoder resolution n - j
  for i = 1, n - 1 do e = e + (n_conv_dec[n - i] + 1) * features[i] * vox[i] end
  return e + num_classes * vox[1]
end

-- ResidualEncoderUNet (nnunet-behaviour.md §5.8; residual-encoder planners), counted the way
-- dynamic_network_architectures' compute_conv_feature_map_size counts (deep supervision off):
--   stem:      one conv, F_0 x |P_0|
--   encoder:   stage i = n_blocks_i basic blocks; each block's two convs output F_i x |P_i|;
--              the first block of stage i >= 1 changes channels and stride, so its skip
--              projection adds one more F_i x |P_i| (stage 0: same channels, stride 1: none)
--   decoder:   as the plain U-Net: per decoder stage its convs plus the transposed conv,
--              (dec_i + 1) F_i |P_i| for i < n-1, and the segmentation output C x |P_0|
-- E = F_0|P_0| + sum_i (2 b_i + [i>0]) F_i |P_i| + sum_{i<n-1} (dec_i+1) F_i |P_i| + C |P_0|
function M.estimate_residual(patch, strides, features, n_blocks, n_conv_dec, num_classes)
  local n = #strides
  local size = {}
  for a = 1, #patch do size[a] = util.to_int(patch[a]) end
  local vox = {}
  for i = 1, n do
    for a = 1, #size do size[a] = size[a] // strides[i][a] end
    local v = 1
    for a = 1, #size do v = v * size[a] end
    vox[i] = v
  end
  local e = features[1] * vox[1]
  for i = 1, n do
    local skip = i > 1 and 1 or 0
    e = e + (2 * n_blocks[i] + skip) * features[i] * vox[i]
  end
  for i = 1, n - 1 do e = e + (n_conv_dec[n - i] + 1) * features[i] * vox[i] end
  return e + num_classes * vox[1]
end

return M
