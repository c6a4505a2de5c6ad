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

return M
