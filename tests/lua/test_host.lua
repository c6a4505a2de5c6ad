-- The host program as a user meets it: recipe lookup, --help, --version,
-- option parsing errors, exit codes, tracebacks, and Ctrl-C reaching a recipe.
local sys = require("nnunet.sys")
local exe = sys.exe()

local failures = 0
local function check(cond, msg)
  if not cond then failures = failures + 1; io.stderr:write("FAIL: " .. msg .. "\n") end
end

-- runs the host with a shell argument string; returns output (stdout+stderr) and exit code
local function run(argstr)
  local p = io.popen(string.format("%q %s 2>&1; echo \"rc=$?\"", exe, argstr))
  local out = p:read("a")
  p:close()
  local rc = tonumber(out:match("rc=(%d+)%s*$"))
  return out:gsub("rc=%d+%s*$", ""), rc
end

local tmp = os.tmpname()
os.remove(tmp)
local dir = tmp .. "_host"
assert(require("nnunet.fs").mkdir(dir))
local recipe = dir .. "/echo.lua"
local f = assert(io.open(recipe, "w"))
f:write([[
-- echo the parsed options (a test recipe)
return {
  summary = "echo the parsed options",
  options = {
    { "-d", "dataset", "dataset id", required = true },
    { "-np", "num_processes", "threads", type = "int", default = 3 },
    { "-c", "configs", "configurations", nargs = "+", default = { "3d_fullres" } },
    { "--fast", "fast", "a flag", flag = true },
  },
  run = function(o)
    print(string.format("d=%s np=%d c=%s fast=%s", o.dataset, o.num_processes, table.concat(o.configs, ","), tostring(o.fast)))
    if o.dataset == "fail" then error("recipe failed on purpose") end
    if o.dataset == "interrupt" then
      -- what Ctrl-C does: the flag is set and the next Lua instruction raises
      -- (system() ignores SIGINT while it waits, so the kill runs in the background)
      local pid = io.open("/proc/self/stat"):read("n")
      local ok, err = pcall(function()
        os.execute(string.format("(sleep 0.3; kill -INT %d) &", pid))
        local t0 = os.time()
        while os.time() - t0 < 10 do end
      end)
      print("caught: " .. tostring(tostring(err):match("interrupted!")) .. " flag=" .. tostring(require("nnunet.sys").interrupted()))
    end
    return 0
  end,
}
]])
f:close()

local out, rc = run("--version")
check(rc == 0 and out:match("^nnunet %d+%.%d+%.%d+"), "--version: " .. out)

out, rc = run("--help")
check(rc == 0 and out:find("usage: nnunet") and out:find("RECIPE"), "--help: " .. out)

out, rc = run(recipe .. " -d 4 -c 2d 3d_lowres --fast")
check(rc == 0 and out:find("d=4 np=3 c=2d,3d_lowres fast=true", 1, true), "options parsed: " .. out)

out, rc = run(recipe .. " --help")
check(rc == 0 and out:find("%-np X") and out:find("%(required%)") and out:find("default: 3"), "recipe --help: " .. out)

out, rc = run(recipe .. " -d 4 -np many")
check(rc == 1 and out:find("option %-np expects an integer, got 'many'"), "bad int: " .. out)
check(not out:find("traceback"), "user errors carry no traceback: " .. out)

out, rc = run(recipe .. " -np 2")
check(rc == 1 and out:find("missing option %-d"), "missing required: " .. out)

out, rc = run(recipe .. " -d 4 --bogus")
check(rc == 1 and out:find("unknown option '%-%-bogus'"), "unknown option: " .. out)

out, rc = run(recipe .. " -d fail")
check(rc == 1 and out:find("recipe failed on purpose") and out:find("stack traceback"), "error with traceback: " .. out)

out, rc = run("no_such_recipe")
check(rc == 1 and out:find("unknown recipe 'no_such_recipe'"), "unknown recipe: " .. out)

out, rc = run(recipe .. " -d interrupt")
check(rc == 0 and out:find("caught: interrupted! flag=true", 1, true), "Ctrl-C reaches the recipe: " .. out)

-- --rules DIR overrides shipped rules file by file (also NNUNET_RULES)
local rules_dir = dir .. "/myrules"
assert(require("nnunet.fs").mkdir(rules_dir))
f = assert(io.open(rules_dir .. "/spacing.lua", "w"))
f:write("return { name = 'spacing', version = 99 }\n")
f:close()
local which = dir .. "/which.lua"
f = assert(io.open(which, "w"))
f:write([[
local rules = require("nnunet.rules")
local version = rules.load("spacing").version   -- path() is known once a rule is loaded
rules.load("topology")
print("spacing=" .. rules.path("spacing") .. " version=" .. tostring(version))
print("topology=" .. rules.path("topology"))
]])
f:close()
out, rc = run("--rules " .. rules_dir .. " " .. which)
check(rc == 0 and out:find("spacing=" .. rules_dir .. "/spacing.lua version=99", 1, true)
      and out:find("topology=" .. sys.home .. "/rules/topology.lua", 1, true), "--rules override: " .. out)
out, rc = run(which)
check(rc == 0 and out:find("spacing=" .. sys.home .. "/rules/spacing.lua", 1, true), "shipped rules by default: " .. out)
out, rc = run("--rules " .. dir .. "/nope " .. which)
check(rc == 1 and out:find("is not a folder"), "--rules with a missing folder: " .. out)
os.remove(rules_dir .. "/spacing.lua"); os.remove(rules_dir); os.remove(which)

os.remove(recipe)
os.remove(dir)
if failures > 0 then error(failures .. " checks failed") end
print("host: all checks passed")
