-- download_pretrained_model_by_url (recipes/download_pretrained_model_by_url.lua) and
-- nnunet.http over file:// URLs (no network in the tests; https goes through the same
-- libcurl calls):
--   1. http.download copies the bytes, leaves no .part; a missing source is an error
--      naming the URL and leaves no file
--   2. the recipe installs a model zip into a not yet existing $nnUNet_results and
--      removes its download; installing again is harmless
--   3. a URL that is not a zip, a missing URL and an unset nnUNet_results are clear
--      errors that leave no download behind
local TL = dofile("tests/lua/testlib.lua")
TL.skip_unless_modules({ "nnunet.http", "nnunet.zip" })
local check = TL.check
local http = require("nnunet.http")
local zip = require("nnunet.zip")
local fs = require("nnunet.fs")

local root = TL.temp_root("_download")
assert(fs.mkdir(root))

-- 1. the module
local src = root .. "/src.bin"
local payload = string.rep("nnunet\0\1\2", 5000)
TL.write_file(src, payload)
local ok, err = http.download("file://" .. src, root .. "/copy.bin", false)
check(ok == true, "file:// download: %s", tostring(err))
check(TL.read(root .. "/copy.bin") == payload, "the bytes arrive unchanged")
check(not fs.exists(root .. "/copy.bin.part"), "no .part left")
ok, err = http.download("file://" .. root .. "/absent.zip", root .. "/x.bin", false)
check(ok == nil and err:find("absent.zip", 1, true), "missing source names the URL: %s", tostring(err))
check(not fs.exists(root .. "/x.bin") and not fs.exists(root .. "/x.bin.part"), "a failed download leaves nothing")

-- 2. the recipe
local M = "Dataset123_Down/nnUNetTrainer__nnUNetPlans__3d_fullres"
local zpath = root .. "/model.zip"
local w = assert(zip.writer(zpath))
assert(w:add_data(M .. "/plans.json", '{"plans_name": "nnUNetPlans"}'))
assert(w:add_data(M .. "/dataset.json", '{"file_ending": ".nii.gz"}'))
assert(w:add_data(M .. "/fold_0/checkpoint_final.pth", "weights"))
assert(w:commit())
local RES = root .. "/results"       -- does not exist yet
local function run(env, args) return TL.run_host(args, env) end
local out, rc = run("nnUNet_results=" .. TL.sh(RES), "download_pretrained_model_by_url " .. TL.sh("file://" .. zpath))
check(rc == 0, "download + install exit 0:\n%s", out)
check(TL.read(RES .. "/" .. M .. "/fold_0/checkpoint_final.pth") == "weights", "the model is installed")
local leftovers = {}
for _, n in ipairs(fs.listdir(RES) or {}) do if n:match("^%.download") then leftovers[#leftovers + 1] = n end end
check(#leftovers == 0, "the downloaded zip is removed: %s", table.concat(leftovers, " "))
out, rc = run("nnUNet_results=" .. TL.sh(RES), "download_pretrained_model_by_url " .. TL.sh("file://" .. zpath))
check(rc == 0, "installing the same model again is harmless:\n%s", out)

-- 3. errors
local notzip = root .. "/notzip.txt"
TL.write_file(notzip, "this is not a zip archive")
out, rc = run("nnUNet_results=" .. TL.sh(RES), "download_pretrained_model_by_url " .. TL.sh("file://" .. notzip))
check(rc ~= 0 and out:find("notzip.txt", 1, true) and out:find("not a valid zip", 1, true),
  "a download that is not a zip is an error naming the URL:\n%s", out)
out, rc = run("nnUNet_results=" .. TL.sh(RES), "download_pretrained_model_by_url "
  .. TL.sh("file://" .. root .. "/nothing_here.zip"))
check(rc ~= 0 and out:find("nothing_here.zip", 1, true), "a missing URL is named:\n%s", out)
leftovers = {}
for _, n in ipairs(fs.listdir(RES) or {}) do if n:match("^%.download") then leftovers[#leftovers + 1] = n end end
check(#leftovers == 0, "failed downloads leave nothing: %s", table.concat(leftovers, " "))
out, rc = run("env -u nnUNet_results", "download_pretrained_model_by_url " .. TL.sh("file://" .. zpath))
check(rc ~= 0 and out:find("nnUNet_results", 1, true), "nnUNet_results unset:\n%s", out)

TL.finish("test_download", root)
