-- rules/reader.lua: the image reader/writer class of a dataset, written into the plans as
-- image_reader_writer (nnunet-behaviour.md §1.1, the reference's
-- determine_reader_writer_from_dataset_json). Pure (R30): whether a class can open the
-- dataset's first training image is asked through the can_open callback that the caller
-- (which does the I/O) passes.
local M = { name = "reader", version = 2 }

-- Tried in this order; a class is a candidate when it lists the dataset's file_ending.
M.classes = {
  { "NaturalImage2DIO", { ".png", ".bmp", ".tif" } },
  { "SimpleITKIO", { ".nii.gz", ".nrrd", ".mha", ".gipl" } },
  { "Tiff3DIO", { ".tif", ".tiff" } },
  { "NibabelIO", { ".nii", ".nii.gz" } },
}

-- The class to use: cfg.image_reader_writer (a settings override), else dataset.json's
-- overwrite_image_reader_writer (unless "None"), else the first candidate class for
-- which can_open(class) is true (every candidate when can_open is nil).
function M.image_reader_writer(dataset_json, cfg, can_open)
  if cfg.image_reader_writer then return cfg.image_reader_writer end
  local forced = dataset_json.overwrite_image_reader_writer
  if forced and forced ~= "None" then return forced end
  local ending = string.lower(dataset_json.file_ending or "")
  local tried = {}
  for _, c in ipairs(M.classes) do
    for _, e in ipairs(c[2]) do
      if e == ending then
        if not can_open or can_open(c[1]) then return c[1] end
        tried[#tried + 1] = c[1]
      end
    end
  end
  if #tried > 0 then
    error("reader: none of " .. table.concat(tried, ", ") .. " can read the first training image ('"
      .. ending .. "' files)", 0)
  end
  error("reader: no image reader/writer for file_ending '" .. ending .. "'", 0)
end

return M
