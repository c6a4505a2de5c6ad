-- rules/resampling.lua: resampling functions and kwargs as written into the plans, and the
-- separate-z decision used at preprocessing/export time (nnunet-behaviour.md §4.4, §4.5).
-- Pure (R30).
local M = { name = "resampling", version = 1 }

M.fn_name = "resample_data_or_seg_to_shape"
M.kwargs_keys = { "is_seg", "order", "order_z", "force_separate_z" }

local function kwargs(is_seg, order, cfg)
  return util.ordered(M.kwargs_keys, {
    is_seg = is_seg, order = order, order_z = cfg.resampling_order_z, force_separate_z = util.null,
  })
end

-- returns { data = {fn, kwargs}, seg = {fn, kwargs}, probabilities = {fn, kwargs} }
function M.functions(cfg)
  return {
    data = { fn = M.fn_name, kwargs = kwargs(false, cfg.resampling_order_data, cfg) },
    seg = { fn = M.fn_name, kwargs = kwargs(true, cfg.resampling_order_seg, cfg) },
    probabilities = { fn = M.fn_name, kwargs = kwargs(false, cfg.resampling_order_probabilities, cfg) },
  }
end

-- axes (1-based) whose spacing equals the maximum
local function lowres_axes(spacing)
  local mx, out = util.max(spacing), {}
  for a = 1, #spacing do if mx / spacing[a] == 1 then out[#out + 1] = a end end
  return out
end

local function aniso(spacing, thr) return util.max(spacing) / util.min(spacing) > thr end

-- determine_do_sep_z_and_axis: returns do_separate_z (boolean), axis (1-based or nil).
-- force: nil/util.null (decide), true or false. threshold strict (> cfg value).
function M.separate_z(force, current_spacing, new_spacing, cfg)
  local thr = cfg.separate_z_anisotropy_threshold
  local do_sep, axes
  if force ~= nil and force ~= util.null then
    do_sep = force
    if force then axes = lowres_axes(current_spacing) end
  elseif aniso(current_spacing, thr) then
    do_sep, axes = true, lowres_axes(current_spacing)
  elseif aniso(new_spacing, thr) then
    do_sep, axes = true, lowres_axes(new_spacing)
  else
    do_sep = false
  end
  if axes ~= nil then
    if #axes ~= 1 then return false, nil end
    return do_sep, axes[1]
  end
  return do_sep, nil
end

return M
