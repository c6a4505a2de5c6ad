-- tests/lua/testlib.lua: helpers shared by the Lua tests (check counters, skipping,
-- files, running the nnunet host with temporary nnUNet_raw / _preprocessed / _results).
-- Not a test itself (no test_ prefix, so CTest does not run it).
--
--   local T = dofile("tests/lua/testlib.lua")
--   local check = T.check                       -- check(cond, fmt, ...): FAIL line formatted
--   T.skip_unless_modules({ "nnunet.net", ... }) -- exit 77 with "SKIP: module X is not built"
--   local ROOT = T.temp_root("_train")           -- os.tmpname() .. suffix (nothing created)
--   local code, out = T.nnunet({ raw = R, pre = P, res = S, env = "nnUNet_n_proc_DA=1" }, "train -d 1 ...")
--   ... if T.failures > 0 then ... end           -- T.checks counts every check call
local sys = require("nnunet.sys")

local M = { failures = 0, checks = 0 }

-- check(cond, fmt, ...): counts, and on failure writes "FAIL: <formatted message>" to
-- stderr. Returns cond (so `if not check(...) then os.exit(1) end` works).
function M.check(cond, fmt, ...)
  M.checks = M.checks + 1
  if not cond then
    M.failures = M.failures + 1
    io.stderr:write("FAIL: " .. string.format(fmt, ...) .. "\n")
  end
  return cond
end

-- check_msg(cond, msg): the same with a plain message (no format: '%' stays as is).
function M.check_msg(cond, msg)
  M.checks = M.checks + 1
  if not cond then M.failures = M.failures + 1; io.stderr:write("FAIL: " .. msg .. "\n") end
end

-- exit 77 (CTest: skipped) unless every module in the list loads
function M.skip_unless_modules(modules)
  for _, m in ipairs(modules) do
    if not pcall(require, m) then
      print("SKIP: module " .. m .. " is not built")
      os.exit(77)
    end
  end
end

-- s quoted for the POSIX shell (single quotes)
function M.sh(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- whole file as a string; nil when it cannot be opened
function M.read(p)
  local f = io.open(p, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

-- whole file as a string; an error when it cannot be opened
function M.read_file(p)
  local f = assert(io.open(p, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

-- the text of every training_log_*.txt of a fold folder ("" when there is none)
function M.training_logs(folder)
  local text = ""
  for _, n in ipairs(require("nnunet.fs").listdir(folder) or {}) do
    if n:match("^training_log_.*%.txt$") then text = text .. M.read_file(folder .. "/" .. n) end
  end
  return text
end

function M.write_file(p, s)
  local f = assert(io.open(p, "wb"))
  f:write(s)
  f:close()
end

-- a fresh path for a test's temporary tree: os.tmpname() (the file it makes removed)
-- followed by suffix; the folder itself is not created
function M.temp_root(suffix)
  local tmp = os.tmpname()
  os.remove(tmp)
  return tmp .. suffix
end

-- Runs `nnunet ARGS` (this build's executable) with stderr merged into stdout, under
--   env nnUNet_raw=RAW nnUNet_preprocessed=PRE [nnUNet_results=RES] [ENV] nnunet ARGS
-- dirs = { raw =, pre =, res = (optional), env = extra NAME=VALUE words (optional) }.
-- -> exit code, output
function M.nnunet(dirs, args)
  local parts = { "env", "nnUNet_raw=" .. M.sh(dirs.raw), "nnUNet_preprocessed=" .. M.sh(dirs.pre) }
  if dirs.res then parts[#parts + 1] = "nnUNet_results=" .. M.sh(dirs.res) end
  if dirs.env then parts[#parts + 1] = dirs.env end
  parts[#parts + 1] = M.sh(sys.exe())
  parts[#parts + 1] = args
  local p = io.popen(table.concat(parts, " ") .. " 2>&1")
  local out = p:read("a")
  local _, _, code = p:close()
  return code, out
end

-- Runs `[ENV ]nnunet ARGSTR` with stderr merged; the exit status is read from an
-- "rc=N" line appended by the shell. -> output (without that line), exit status
function M.run_host(argstr, env)
  local prefix = env and (env .. " ") or ""
  local p = io.popen(string.format("%s%q %s 2>&1; echo \"rc=$?\"", prefix, sys.exe(), argstr))
  local out = p:read("a")
  p:close()
  local rc = tonumber(out:match("rc=(%d+)%s*$"))
  return (out:gsub("rc=%d+%s*$", "")), rc
end

-- The end of an end-to-end test: removes root unless a check failed or KEEP is set;
-- on failure reports the count and the kept folder and exits 1, else prints "NAME: ok".
function M.finish(name, root)
  if M.failures == 0 and not os.getenv("KEEP") then os.execute("rm -rf " .. M.sh(root)) end
  if M.failures > 0 then
    io.stderr:write(string.format("%d failure(s); files kept in %s\n", M.failures, root))
    os.exit(1)
  end
  print(name .. ": ok")
end

-- A tiny real U-Net for trainer tests: its architecture table (2 stages, 4 and 8
-- features, one conv per stage) and a data object whose batch b (patch 8^3, batch 2,
-- labels {0, 1}) is a cube whose corner depends on b (validation batches use another
-- salt). Deterministic, so straight and resumed runs can be compared bit for bit.
function M.tiny_unet()
  local tensor = require("nnunet.tensor")
  local arch = { network_class_name = "dynamic_network_architectures.architectures.unet.PlainConvUNet",
    arch_kwargs = { n_stages = 2, features_per_stage = { 4, 8 }, conv_op = "torch.nn.modules.conv.Conv3d",
      kernel_sizes = { { 3, 3, 3 }, { 3, 3, 3 } }, strides = { { 1, 1, 1 }, { 2, 2, 2 } },
      n_conv_per_stage = { 1, 1 }, n_conv_per_stage_decoder = { 1 }, conv_bias = true,
      norm_op_kwargs = { eps = 1e-5, affine = true }, nonlin_kwargs = { inplace = true } } }
  local function cube_batch(b, salt)
    local x, y = {}, {}
    for n = 0, 1 do
      local o = (b * 3 + n * 5 + salt) % 4
      for z = 0, 7 do for yy = 0, 7 do for xx = 0, 7 do
        local inside = z >= o and z < o + 4 and yy >= o and yy < o + 4 and xx >= 1 and xx < 5
        local i = ((n * 8 + z) * 8 + yy) * 8 + xx + 1
        x[i] = inside and 1.0 or -0.5 + 0.01 * ((i * 37) % 11)
        y[i] = inside and 1 or 0
      end end end
    end
    return tensor.from_table(x, { 2, 1, 8, 8, 8 }), tensor.from_table(y, { 2, 1, 8, 8, 8 }, "i16")
  end
  local data = {
    train_batch = function(_, b) return cube_batch(b, 0) end,
    val_batch = function(_, b) return cube_batch(b, 1) end,
  }
  return arch, data
end

return M
