-- bench/bench_preprocess.lua: seconds per case and peak RSS of preprocessing (issue 5 item 6).
--
--   build/nnunet bench/bench_preprocess.lua [--np N] [--large | --large-only] [--keep]   (`make bench`)
--
-- For the shared Hippocampus (230 cases) and BraTS sample (6 cases, 2 channels,
-- 240 x 240 x 155) under ../shared/data: fingerprint and plans first (not timed, in their
-- own process), then each configuration in a fresh child process (`--child`), which runs
-- recipes/preprocess.lua's preprocess() with N worker threads (default 2) and reports its
-- wall time and its peak resident set size (VmHWM of /proc/self/status: the whole process,
-- Lua state and libraries included). --large adds a synthetic CT dataset of two
-- 300 x 512 x 512 int16 cases (spacings 1.0/0.7/0.7 and 1.25/0.8/0.8 mm -> both resampled
-- to 1.125/0.75/0.75 mm, cubic, no separate-z): the memory bound of the resampling.
-- Everything happens under a temporary folder, removed at the end unless --keep.
local fs = require("nnunet.fs")
local json = require("nnunet.json")
local sys = require("nnunet.sys")

local argv = { ... }

local function sh(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function peak_rss_kb()
  local f = io.open("/proc/self/status", "r")
  if not f then return nil end
  local text = f:read("a")
  f:close()
  return tonumber(text:match("VmHWM:%s*(%d+)%s*kB"))
end

---------------------------------------------------------------------------------------------
-- child: preprocess one configuration of one dataset, print "RESULT seconds kb cases"
---------------------------------------------------------------------------------------------
if argv[1] == "--child" then
  local dataset = require("nnunet.dataset")
  local id, config, np = argv[2], argv[3], tonumber(argv[4]) or 2
  local ds = assert(dataset.open(id))
  local pre = dofile(sys.home .. "/recipes/preprocess.lua")
  local t0 = sys.clock()
  local report = pre.preprocess(ds, { configs = { config }, num_processes = { np }, quiet = true, no_fsync = true })
  local seconds = sys.clock() - t0
  local r = report[config]
  print(string.format("RESULT %.3f %d %d", r and r.seconds or seconds, peak_rss_kb() or 0, r and r.done or 0))
  return 0
end

---------------------------------------------------------------------------------------------
-- parent
---------------------------------------------------------------------------------------------
local np, large, keep = 2, false, false
local i = 1
while argv[i] do
  if argv[i] == "--np" then np = tonumber(argv[i + 1]); i = i + 2
  elseif argv[i] == "--large" then large = true; i = i + 1
  elseif argv[i] == "--large-only" then large = "only"; i = i + 1
  elseif argv[i] == "--keep" then keep = true; i = i + 1
  else error("bench_preprocess: unknown argument " .. argv[i], 0) end
end

local tmp = os.tmpname()
os.remove(tmp)
local ROOT = tmp .. "_bench"
local RAW, PRE = ROOT .. "/raw", ROOT .. "/pre"
assert(fs.mkdir(RAW) and fs.mkdir(PRE))

local function run(cmd)
  local p = io.popen(string.format("env nnUNet_raw=%s nnUNet_preprocessed=%s NNUNET_PROGRESS=0 %s 2>&1",
    sh(RAW), sh(PRE), cmd))
  local out = p:read("a")
  local ok, _, code = p:close()
  return code or (ok and 0 or 1), out
end

local function nnunet(args) return run(sh(sys.exe()) .. " " .. args) end

-- synthetic CT: body box (40 HU), a bright block (300 HU) labelled 1, air 0 outside
local function make_large(dir)
  local nifti = require("nnunet.image")
  local tensor = require("nnunet.tensor")
  assert(fs.mkdir(dir .. "/imagesTr") and fs.mkdir(dir .. "/labelsTr"))
  local spacings = { { 1.0, 0.7, 0.7 }, { 1.25, 0.8, 0.8 } }
  for k, sp in ipairs(spacings) do
    local img = tensor.zeros({ 300, 512, 512 }, "i16")
    img:narrow(1, 11, 280):narrow(2, 41, 430):narrow(3, 31, 450):fill(40)
    img:narrow(1, 51, 200):narrow(2, 201, 100):narrow(3, 201, 120):fill(300)
    local lab = tensor.zeros({ 300, 512, 512 }, "u8")
    lab:narrow(1, 61, 150):narrow(2, 211, 80):narrow(3, 211, 100):fill(1)
    local geo = { spacing_itk = { sp[3], sp[2], sp[1] }, origin = { 0, 0, 0 }, direction = { 1, 0, 0, 0, 1, 0, 0, 0, 1 } }
    local cid = string.format("ct_%03d", k)
    assert(nifti.write(dir .. "/imagesTr/" .. cid .. "_0000.nii", img, geo))
    assert(nifti.write(dir .. "/labelsTr/" .. cid .. ".nii", lab, geo, { segmentation = true }))
  end
  local f = assert(io.open(dir .. "/dataset.json", "wb"))
  f:write(json.encode({ channel_names = { ["0"] = "CT" }, labels = { background = 0, block = 1 },
    numTraining = #spacings, file_ending = ".nii" }))
  f:close()
end

local shared = sys.home .. "/../shared/data"
local sets = {}
if large ~= "only" and fs.isdir(shared .. "/Dataset004_Hippocampus") then
  sets[#sets + 1] = { id = 4, name = "Dataset004_Hippocampus", src = shared .. "/Dataset004_Hippocampus",
    configs = { "3d_fullres", "2d" } }
end
if large ~= "only" and fs.isdir(shared .. "/Dataset501_BraTS2013Sample") then
  sets[#sets + 1] = { id = 501, name = "Dataset501_BraTS2013Sample", src = shared .. "/Dataset501_BraTS2013Sample",
    configs = { "3d_fullres", "2d" } }
end
if large then
  sets[#sets + 1] = { id = 990, name = "Dataset990_LargeCT", make = make_large, configs = { "3d_fullres" } }
end
if #sets == 0 then
  print("SKIP: no shared data (" .. shared .. ") and no --large")
  return 0
end

print(string.format("preprocessing benchmark: %d worker threads, %d CPUs", np, sys.ncpu()))
print(string.format("%-28s %-11s %6s %9s %9s %12s", "dataset", "config", "cases", "seconds", "s/case", "peak RSS"))
local failed = false
for _, s in ipairs(sets) do
  local dir = RAW .. "/" .. s.name
  if s.src then
    assert(os.execute("ln -s " .. sh(s.src) .. " " .. sh(dir)))
  else
    assert(fs.mkdir(dir))
    s.make(dir)
  end
  local code, out = nnunet(string.format("plan_and_preprocess -d %d --no_pp -np %d --quiet", s.id, np))
  if code ~= 0 then
    io.stderr:write(string.format("%s: planning failed (exit %s)\n%s\n", s.name, tostring(code), out))
    failed = true
  else
    for _, conf in ipairs(s.configs) do
      local ccode, cout = nnunet(string.format("%s --child %d %s %d", sh(sys.home .. "/bench/bench_preprocess.lua"),
        s.id, conf, np))
      local secs, kb, n = cout:match("RESULT ([%d%.]+) (%d+) (%d+)")
      if ccode ~= 0 or not secs then
        io.stderr:write(string.format("%s %s: failed (exit %s)\n%s\n", s.name, conf, tostring(ccode), cout))
        failed = true
      else
        secs, kb, n = tonumber(secs), tonumber(kb), tonumber(n)
        print(string.format("%-28s %-11s %6d %9.2f %9.3f %9.0f MB", s.name, conf, n, secs, n > 0 and secs / n or 0,
          kb / 1024))
      end
    end
  end
end
if keep then print("kept " .. ROOT) else os.execute("rm -rf " .. sh(ROOT)) end
os.exit(failed and 1 or 0)
