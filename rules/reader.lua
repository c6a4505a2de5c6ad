-- rules/reader.lua: image reader/writer class name written into the plans
-- (nnunet-behaviour.md §1.1). Pure (R30). The reference additionally checks that the class
-- can open the first training image; here the first class listing the file ending wins.
local M = { name = "reader", version = 1 }

M.classes = {
  { "NaturalImage2DIO", { ".png", ".bmp", ".tif" } },
  { "SimpleITKIO", { ".nii.gz", ".nrrd", ".mha", ".gipl" } },
  { "Tiff3DIO", { ".tif", ".tiff" } },
  { "NibabelIO", { ".nii", ".nii.gz" } },
}

function M.image_reader_writer(dataset_json, cfg)
  if cfg.image_reader_writer then return cfg.image_reader_writer end
  if dataset_json.overwrite_image_reader_writer then return dataset_json.overwrite_image_reader_writer end
  local ending = string.lower(dataset_json.file_ending or "")
  for _, c in ipairs(M.classes) do
    for _, e in ipairs(c[2]) do
      if e == ending then return c[1] end
    end
  end
  error("reader: no image reader/writer for file_ending '" .. ending .. "'", 0)
end

return M
