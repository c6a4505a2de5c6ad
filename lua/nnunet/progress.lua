-- nnunet.progress: a progress bar with rate and ETA for loops run from Lua.
-- On a terminal it redraws one line in place; otherwise (logs, CI) it prints
-- a line at most every `plain_interval` seconds and at the end.
--
--   local bar = progress.new("fingerprint", #cases)
--   for i = 1, #cases do ...; bar:step() end
--   bar:finish()
local sys = require("nnunet.sys")

local M = {}
local Bar = {}
Bar.__index = Bar

local function fmt_time(s)
  if s ~= s or s == math.huge then return "--:--" end
  s = math.floor(s + 0.5)
  if s >= 3600 then return string.format("%d:%02d:%02d", s // 3600, s % 3600 // 60, s % 60) end
  return string.format("%02d:%02d", s // 60, s % 60)
end
M.format_time = fmt_time

function M.new(label, total, opts)
  opts = opts or {}
  return setmetatable({
    label = label, total = total, done = 0, start = sys.clock(), last_draw = -math.huge,
    tty = sys.isatty(2), out = opts.out or io.stderr, width = opts.width or 30,
    plain_interval = opts.plain_interval or 10, suffix = "",
  }, Bar)
end

function Bar:render()
  local elapsed = sys.clock() - self.start
  local frac = self.total > 0 and self.done / self.total or 1
  local rate = elapsed > 0 and self.done / elapsed or 0
  local eta = rate > 0 and (self.total - self.done) / rate or math.huge
  local filled = math.floor(frac * self.width + 0.5)
  return string.format("%s [%s%s] %d/%d %3d%% %s<%s %s", self.label, string.rep("#", filled),
    string.rep(".", self.width - filled), self.done, self.total, math.floor(frac * 100),
    fmt_time(elapsed), fmt_time(eta), self.suffix)
end

function Bar:draw(force)
  local now = sys.clock()
  if self.tty then
    if force or now - self.last_draw >= 0.1 then
      self.out:write("\r\27[K" .. self:render())
      self.out:flush()
      self.last_draw = now
    end
  elseif force or now - self.last_draw >= self.plain_interval then
    self.out:write(self:render() .. "\n")
    self.last_draw = now
  end
end

-- Advances by n (default 1); `suffix` replaces the text after the bar (e.g. "loss 0.31").
function Bar:step(n, suffix)
  self.done = math.min(self.total, self.done + (n or 1))
  if suffix then self.suffix = suffix end
  self:draw(false)
end

function Bar:finish(suffix)
  if suffix then self.suffix = suffix end
  self.done = self.total
  self:draw(true)
  if self.tty then self.out:write("\n") end
end

return M
