-- download a trained model's zip from a URL and install it into $nnUNet_results
--
-- nnunet download_pretrained_model_by_url URL [--overwrite]
-- As nnUNetv2_download_pretrained_model_by_url (nnunet-behaviour.md §14;
-- docs/models.md): the zip is downloaded (https, http, ftp or file URLs; a progress
-- bar in MiB) into $nnUNet_results/.download-<time>-<random>.zip, installed as
-- install_pretrained_model_from_zip does (unsafe names refused, files with other
-- contents kept unless --overwrite), and removed. A failed or interrupted download
-- leaves nothing behind.
local sharing = require("nnunet.model_sharing")
local dataset = require("nnunet.dataset")
local http = require("nnunet.http")
local fs = require("nnunet.fs")

local function user_error(fmt, ...)
  error({ user_error = true, message = string.format(fmt, ...) }, 0)
end

return {
  summary = "download a trained model's zip from a URL and install it (nnUNetv2_download_pretrained_model_by_url)",
  options = {
    { "URL", "url", "address of the zip (https, http, ftp, file)", positional = true },
    { "--overwrite", "overwrite", "replace existing files whose contents differ", flag = true },
  },
  run = function(o)
    local root = dataset.env("nnUNet_results")
    if not root then user_error("nnUNet_results is not set: export nnUNet_results=/path/to/results") end
    local mok, merr = fs.mkdir(root)
    if not mok then user_error("cannot create nnUNet_results '%s': %s", root, tostring(merr)) end
    -- in the results folder: the same file system as the install, room for a large model
    -- (Lua 5.4 seeds math.random per process: concurrent downloads get other names)
    local tmp = string.format("%s/.download-%d-%d.zip", (root:gsub("/+$", "")), os.time(), math.random(1 << 30))
    print("Downloading " .. o.url)
    local ok, err = http.download(o.url, tmp, true)
    if not ok then user_error("%s", err) end
    local iok, ierr = pcall(sharing.install_model_from_zip, tmp, { overwrite = o.overwrite })
    os.remove(tmp)
    if not iok then
      if type(ierr) == "table" and ierr.message then user_error("installing the download of %s: %s", o.url, ierr.message) end
      error(ierr, 0)
    end
    return 0
  end,
}
