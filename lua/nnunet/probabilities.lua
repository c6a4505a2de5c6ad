-- nnunet.probabilities: the --save_probabilities files (docs/inference.md).
--
--   local prob = require("nnunet.probabilities")
--   prob.save(prefix, probs, properties)   -> writes prefix .. ".npz" (member 'probabilities',
--        written as numpy.savez_compressed does) and prefix .. ".json" (the properties)
--   prob.load(prefix [, want_properties]) -> probs tensor, properties table | nil, msg
--
-- probs is (C, z, y, x) and stored as float32 (as the reference); properties is the
-- reference's properties dict as JSON: spacing, shape_before_cropping,
-- bbox_used_for_cropping, shape_after_cropping_and_before_resampling and sitk_stuff
-- {spacing, origin, direction}. The reference's CASE.pkl becomes CASE.json.
local infer = require("nnunet.infer")
local json = require("nnunet.json")

local M = {}

function M.save(prefix, probs, properties)
  local p = probs
  if probs:dtype() ~= "f32" then p = probs:astype("f32") end
  local ok, err = infer.save_npz(prefix .. ".npz", "probabilities", p)
  if not ok then return nil, err end
  ok, err = json.write_file_atomic(prefix .. ".json", properties or json.object(), { indent = 4 })
  if not ok then return nil, err end
  return true
end

function M.load(prefix, want_properties)
  local t, err = infer.load_npz(prefix .. ".npz", "probabilities")
  if not t then return nil, err end
  if want_properties == false then return t end
  local props, perr = json.decode_file(prefix .. ".json")
  if not props then return nil, perr end
  return t, props
end

return M
