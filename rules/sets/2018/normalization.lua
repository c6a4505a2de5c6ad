-- rules/sets/2018/normalization.lua: the 2018 paper's normalization ("If a modality is not
-- CT, nnU-Net normalizes intensity values by subtracting the mean and dividing by the
-- standard deviation"; CT: clip to the 0.5/99.5 foreground percentiles, global mean/std),
-- with the [v1-orig] rules where the text is silent (nnunet-behaviour.md §3.3): exactly "CT"
-- or "ct" is CT, "noNorm" is none, anything else z-score; use_mask_for_norm is false for any
-- channel whose name contains "CT" and otherwise true iff the median relative size after
-- cropping is < 3/4. Written with the v2 class names the preprocessor understands. Pure (R30).
local M = { name = "normalization", version = 1 }

function M.scheme(channel_name)
  if channel_name == "CT" or channel_name == "ct" then return "CTNormalization" end
  if channel_name == "noNorm" then return "NoNormalization" end
  return "ZScoreNormalization"
end

-- channel names in index order ("0", "1", ... sorted numerically)
local function channel_names(dataset_json)
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

function M.plan(fp, dataset_json, cfg)
  local names = channel_names(dataset_json)
  local crop_ratio = fp.median_relative_size_after_cropping
  local use = crop_ratio < cfg.use_mask_for_norm_threshold
  local schemes, mask, parts = {}, {}, {}
  for i, n in ipairs(names) do
    schemes[i] = M.scheme(n)
    mask[i] = use and not string.find(n, "CT", 1, true) and schemes[i] == "ZScoreNormalization"
    parts[i] = string.format("%d '%s' -> %s%s", i - 1, n, schemes[i], mask[i] and " (masked)" or "")
  end
  util.note(cfg, "normalization per channel (2018): %s; median relative size after cropping %s %s %s",
    table.concat(parts, ", "), util.num(crop_ratio), use and "<" or ">=", util.num(cfg.use_mask_for_norm_threshold))
  return { schemes = schemes, use_mask_for_norm = mask }
end

return M
