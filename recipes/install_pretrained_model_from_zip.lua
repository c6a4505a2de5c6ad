-- install trained models from a zip (made by export_model_to_zip or the reference) into $nnUNet_results
--
-- nnunet install_pretrained_model_from_zip FILE.zip [--overwrite]
-- As nnUNetv2_install_pretrained_model_from_zip (nnunet-behaviour.md §14;
-- docs/models.md): the zip's files are extracted under $nnUNet_results. Entry names
-- that would leave that folder ('..', absolute paths) or symbolic links refuse the
-- whole zip; existing files with other contents are replaced only with --overwrite
-- (the reference always overwrites), identical ones are kept.
local sharing = require("nnunet.model_sharing")

return {
  summary = "install trained models from a zip file into $nnUNet_results (nnUNetv2_install_pretrained_model_from_zip)",
  options = {
    { "ZIP", "zip", "zip file", positional = true },
    { "--overwrite", "overwrite", "replace existing files whose contents differ", flag = true },
  },
  run = function(o)
    sharing.install_model_from_zip(o.zip, { overwrite = o.overwrite })
    return 0
  end,
}
