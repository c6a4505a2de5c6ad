-- rules/normalization.lua: intensity normalization scheme per channel and use_mask_for_norm
-- (nnunet-behaviour.md §3.1, §3.2). Pure (R30).
local M = { name = "normalization", version = 2 }

-- channel name (casefolded) -> scheme class name; any other name -> ZScoreNormalization
M.by_name = {
  ct = "CTNormalization",
  nonorm = "NoNormalization",
  zscore = "ZScoreNormalization",
  rescale_to_0_1 = "RescaleTo01Normalization",
  rgb_to_0_1 = "RGBTo01Normalization",
}

-- schemes whose mask variant leaves voxels outside the mask at zero
-- (leaves_pixels_outside_mask_at_zero_if_use_mask_for_norm_is_true)
M.mask_capable = { ZScoreNormalization = true }

-- Python str.casefold restricted to ASCII (names are not trimmed: " CT" -> ZScore)
function M.scheme(channel_name)
  return M.by_name[string.lower(channel_name)] or "ZScoreNormalization"
end

-- channel_names (or MSD "modality") keys in channel order. lua-cjson does not keep key
-- order, so numeric keys "0","1",... are sorted numerically (the normal case, where the
-- reference's dataset.json key order and the channel index agree).
function M.channel_names(dataset_json)
  local names = dataset_json.channel_names or dataset_json.modality
  if type(names) ~= "table" then error("dataset.json: no 'channel_names' (or 'modality')", 0) end
  local keys = {}
  for k in pairs(names) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b)
    local x, y = tonumber(a), tonumber(b)
    if x and y then return x < y end
    if x or y then return x ~= nil end
    return util.bytes_less(a, b)
  end)
  local out = {}
  for i, k in ipairs(keys) do out[i] = names[k] end
  return out
end

-- returns { schemes = {class names}, use_mask_for_norm = {booleans} }
function M.plan(fp, dataset_json, cfg)
  local names = M.channel_names(dataset_json)
  local schemes, mask = {}, {}
  local crop_ratio = fp.median_relative_size_after_cropping
  local use = crop_ratio < cfg.use_mask_for_norm_threshold
  local parts = {}
  for i, n in ipairs(names) do
    schemes[i] = M.scheme(n)
    mask[i] = use and (M.mask_capable[schemes[i]] == true) or false
    parts[i] = string.format("%d '%s' -> %s%s", i - 1, n, schemes[i], mask[i] and " (masked)" or "")
  end
  util.note(cfg, "normalization per channel: %s", table.concat(parts, ", "))
  util.note(cfg, "median relative size after cropping %s %s %s -> %s", util.num(crop_ratio), use and "<" or ">=",
    util.num(cfg.use_mask_for_norm_threshold),
    use and "z-score channels normalize inside the nonzero mask" or "no mask for normalization")
  return { schemes = schemes, use_mask_for_norm = mask }
end

return M
