-- rules/vram.lua: feature-map size estimate of the PlainConvUNet (deep supervision off)
-- (nnunet-behaviour.md §5.4, `compute_conv_feature_map_size`). Pure (R30).
-- Counts feature-map elements, not bytes; input channels do not enter.
local M = { name = "vram", version = 1 }

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

return M
