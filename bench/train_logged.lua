-- bench/train_logged.lua: `nnunet train` that also writes one line per training step to
-- $NNUNET_ITER_LOG:
--   step lr loss fg1,fg2,.. c1_1,c1_2,.. c2_1,c2_2,.. data_mean data_std
-- (fgK: foreground fraction of sample K's full-resolution target; c1/c2: fractions of
-- labels 1 and 2; data mean/std over the batch, population std). With
-- NNUNET_BATCH_STATS_ONLY=N no step is taken (loss 0): the first N batches of the loader
-- are only logged, then the program exits. Used by bench/compare_reference_learning.sh to
-- compare with the reference (bench/ref/nnUNetTrainerShortLR.py writes the same columns).
-- With NNUNET_DUMP_DIR=DIR and NNUNET_DUMP_STEPS=K the network's initial weights
-- (DIR/init.safetensors, Net:save: PyTorch names) and the first K training batches
-- (DIR/batch_NNN.bin: int32 ndim, int32 shape[ndim], float32 data; then the same for the
-- target) are written, K steps are trained, and the program exits: bench/ref/replay_batches.py
-- trains the reference network from the same weights on the same batches.
-- Options: those of `nnunet train`. Not part of the build or the tests.
local recipe = require("nnunet.recipe")
local train = recipe.load("train")

local W = { summary = "train, logging every step (loss, lr, batch statistics) to $NNUNET_ITER_LOG",
  options = train.options }

local function fractions(t)
  local flat, nb = t:totable(), t:shape()[1]      -- totable() is flat, C order
  local per = #flat // nb
  local fg, c1, c2 = {}, {}, {}
  for i = 0, nb - 1 do
    local n0, n1, n2 = 0, 0, 0
    for j = i * per + 1, (i + 1) * per do
      local v = flat[j]
      if v > 0 then n0 = n0 + 1 end
      if v == 1 then n1 = n1 + 1 elseif v == 2 then n2 = n2 + 1 end
    end
    fg[i + 1] = string.format("%.4f", n0 / per)
    c1[i + 1] = string.format("%.4f", n1 / per)
    c2[i + 1] = string.format("%.4f", n2 / per)
  end
  return table.concat(fg, ","), table.concat(c1, ","), table.concat(c2, ",")
end

local function data_stats(x)
  local flat = x:totable()
  local s, s2 = 0, 0
  for i = 1, #flat do local v = flat[i]; s = s + v; s2 = s2 + v * v end
  local m = s / #flat
  return m, math.sqrt(math.max(0, s2 / #flat - m * m))
end

local function dump_tensor(f, t)
  local shape, flat = t:shape(), t:totable()
  f:write(string.pack("<i4", #shape))
  for _, n in ipairs(shape) do f:write(string.pack("<i4", n)) end
  local parts = {}
  for i = 1, #flat do parts[#parts + 1] = string.pack("<f", flat[i]) end
  f:write(table.concat(parts))
end

function W.run(o)
  local path = os.getenv("NNUNET_ITER_LOG")
  local stats_only = tonumber(os.getenv("NNUNET_BATCH_STATS_ONLY") or "")
  local dump_dir, dump_steps = os.getenv("NNUNET_DUMP_DIR"), tonumber(os.getenv("NNUNET_DUMP_STEPS") or "")
  if path then
    require("nnunet.net")
    local methods = debug.getregistry()["nnunet.Net"].__index
    local orig, step = methods.train_step, 0
    methods.train_step = function(net, x, t, opts)
      if dump_dir and step == 0 then assert(net:save(dump_dir .. "/init.safetensors")) end
      if dump_dir and step < (dump_steps or 0) then
        local f = assert(io.open(string.format("%s/batch_%03d.bin", dump_dir, step), "wb"))
        dump_tensor(f, x); dump_tensor(f, t); f:close()
      end
      local loss = stats_only and 0 or orig(net, x, t, opts)
      local lr = type(opts) == "table" and opts.lr or opts
      local fg, c1, c2 = fractions(t)
      local m, sd = data_stats(x)
      local f = assert(io.open(path, "a"))
      f:write(string.format("%d %.6g %.6f %s %s %s %.4f %.4f\n", step, lr or -1, loss, fg, c1, c2, m, sd))
      f:close()
      step = step + 1
      if stats_only and step >= stats_only then os.exit(0) end
      if dump_dir and dump_steps and step >= dump_steps then
        assert(net:save(dump_dir .. "/after.safetensors"))
        os.exit(0)
      end
      return loss
    end
  end
  return train.run(o)
end

return W
