-- nnunet.torch_ckpt and Net:load of PyTorch checkpoints (docs/checkpoints.md): the
-- reference-written fixtures (tests/gen/make_torch_ckpt_fixture.py) are recognised and
-- described; export writes a file that Net:load reads back bit-identically (same logits);
-- predictor.load_model takes a model folder holding the reference's checkpoint (mirroring
-- axes from inference_allowed_mirroring_axes) or ours; mistakes are reported.
-- The numerics against PyTorch are in tests/test_torch_ckpt.c.
local T = dofile("tests/lua/testlib.lua")
T.skip_unless_modules({ "nnunet.torch_ckpt", "nnunet.net" })
local check = T.check
local tc = require("nnunet.torch_ckpt")
local netmod = require("nnunet.net")
local tensor = require("nnunet.tensor")
local fs = require("nnunet.fs")
local cjson = require("cjson")

local DIR = "tests/fixtures/torch_ckpt/"
local function read(p) local f = assert(io.open(p, "rb")); local s = f:read("a"); f:close(); return s end
local plans_text, dj_text = read(DIR .. "plans_3d.json"), read(DIR .. "dataset_3d.json")
local plans = cjson.decode(plans_text)
local arch = plans.configurations["3d_fullres"].architecture
netmod.set_threads(2)
local function build(seed)
  return netmod.build(arch, { num_input_channels = 2, num_classes = 3, deep_supervision = false, seed = seed })
end

-- is_torch / info
check(tc.is_torch(DIR .. "ref3d.pth") == true, "ref3d.pth is a torch file")
check(tc.is_torch("tests/fixtures/checkpoint/python_written.pth") == false, "safetensors is not")
local r, msg = tc.is_torch("no/such.pth")
check(r == nil and msg:find("no/such.pth", 1, true), "is_torch of a missing file: %s", tostring(msg))
local info = assert(tc.info(DIR .. "ref3d.pth"))
check(info.trainer_name == "nnUNetTrainer" and info.configuration == "3d_fullres" and info.current_epoch == 2,
  "info: %s %s %s", tostring(info.trainer_name), tostring(info.configuration), tostring(info.current_epoch))
check(#info.mirroring_axes == 3 and info.mirroring_axes[1] == 0 and info.mirroring_axes[3] == 2, "mirroring axes")
check(info.keys[1] == "encoder.stages.0.0.convs.0.conv.weight" and #info.keys > 30, "keys")
local bare = assert(tc.info(DIR .. "ref2d_bf16.pth"))
check(bare.trainer_name == nil and bare.mirroring_axes == nil and #bare.keys > 0, "a bare state dict")
r, msg = tc.info(DIR .. "plans_3d.json")
check(r == nil and msg:find("plans_3d.json", 1, true), "info of a non-checkpoint: %s", tostring(msg))

-- Net:load of the reference's file, export, load back
local xs = {}
for i = 1, 2 * 4 * 16 * 12 do xs[i] = math.sin(i * 0.37) end
local x = tensor.from_table(xs, { 1, 2, 4, 16, 12 })
local a, b = build(1), build(2)
check(a:load(DIR .. "ref3d.pth") == true, "Net:load of a torch checkpoint")
local ya = a:forward(x)
local tmp = os.tmpname()
local ok, err = tc.export(a, tmp, { configuration = "3d_fullres", plans_json = plans_text, dataset_json = dj_text,
  fold = "all", mirroring_axes = { 1, 2 }, current_epoch = 7, trainer_name = "nnUNetTrainer_x" })
check(ok == true, "export: %s", tostring(err))
local back = assert(tc.info(tmp))
check(back.configuration == "3d_fullres" and back.current_epoch == 7 and back.trainer_name == "nnUNetTrainer_x" and
  #back.mirroring_axes == 2 and back.mirroring_axes[1] == 1 and #back.keys == #info.keys, "exported info")
check(b:load(tmp) == true, "Net:load of the exported file")
local yb = b:forward(x)
local same = true
local ta, tb = ya:totable(), yb:totable()
local function flat(t, out) for _, v in ipairs(t) do if type(v) == "table" then flat(v, out) else out[#out + 1] = v end end return out end
ta, tb = flat(ta, {}), flat(tb, {})
for i = 1, #ta do if ta[i] ~= tb[i] then same = false end end
check(same and #ta == 1 * 3 * 4 * 16 * 12, "identical logits after export + load (%d values)", #ta)

-- mistakes
local wrong = netmod.build(arch, { num_input_channels = 2, num_classes = 4, deep_supervision = false })
r, msg = wrong:load(tmp)
check(r == nil and msg:find("seg_layers", 1, true) and msg:find(tmp, 1, true), "wrong architecture: %s", tostring(msg))
ok, err = pcall(tc.export, a, tmp, { plans_json = plans_text, dataset_json = dj_text })
check(not ok and tostring(err):find("configuration"), "export without configuration raises: %s", tostring(err))
r, msg = tc.export(a, "no/such/dir/x.pth", { configuration = "3d_fullres", plans_json = plans_text,
  dataset_json = dj_text })
check(r == nil and msg:find("no/such/dir", 1, true), "export to a missing folder: %s", tostring(msg))
os.remove(tmp)

-- a model folder holding the reference's checkpoint (fold_0) and ours exported (fold_1)
local predictor = require("nnunet.predictor")
local mdir = os.tmpname()
os.remove(mdir)
assert(fs.mkdir(mdir .. "/fold_0") and fs.mkdir(mdir .. "/fold_1"))
local function write(p, s) local f = assert(io.open(p, "wb")); f:write(s); f:close() end
write(mdir .. "/plans.json", plans_text)
write(mdir .. "/dataset.json", dj_text)
write(mdir .. "/fold_0/checkpoint_final.pth", read(DIR .. "ref3d.pth"))
assert(tc.export(b, mdir .. "/fold_1/checkpoint_final.pth", { configuration = "3d_fullres",
  plans_json = plans_text, dataset_json = dj_text, fold = 1, mirroring_axes = { 0, 1, 2 } }))
local model = predictor.load_model(mdir, "3d_fullres", { device = "cpu", log = function() end })
check(#model.folds == 2, "two folds loaded")
local m = model.slide.mirror_axes
check(#m == 3 and m[1] == 1 and m[3] == 3, "mirror axes from the checkpoint (1-based for infer)")
model.folds[1].activate()
local y1 = model.net:forward(x)
local t1 = flat(y1:totable(), {})
same = true
for i = 1, #ta do if t1[i] ~= ta[i] then same = false end end
check(same, "fold_0 (the reference's checkpoint) predicts as Net:load")
-- a checkpoint whose inference_allowed_mirroring_axes is None (the reference's
-- nnUNetTrainerNoMirroring): no mirroring, as the reference's predictor
os.remove(mdir .. "/fold_0/checkpoint_final.pth")
assert(tc.export(b, mdir .. "/fold_1/checkpoint_final.pth", { configuration = "3d_fullres",
  plans_json = plans_text, dataset_json = dj_text, fold = 1 }))
check(tc.info(mdir .. "/fold_1/checkpoint_final.pth").mirroring_axes == nil, "exported with None")
local nomirror = predictor.load_model(mdir, "3d_fullres", { device = "cpu", log = function() end })
check(#nomirror.slide.mirror_axes == 0, "None mirroring axes: no mirroring (got %d axes)",
  #nomirror.slide.mirror_axes)
-- a model made with a reader whose arrays differ from ours is refused by name
do
  local pl = cjson.decode(plans_text)
  pl.image_reader_writer = "NibabelIOWithReorient"
  write(mdir .. "/plans.json", cjson.encode(pl))
  local okr, rerr = pcall(predictor.load_model, mdir, "3d_fullres", { device = "cpu", log = function() end })
  check(not okr and type(rerr) == "table" and rerr.message:find("NibabelIOWithReorient", 1, true)
    and rerr.message:find(mdir, 1, true), "unsupported reader refused: %s", tostring(rerr and rerr.message))
  pl.image_reader_writer = "NibabelIO"
  write(mdir .. "/plans.json", cjson.encode(pl))
  check(pcall(predictor.load_model, mdir, "3d_fullres", { device = "cpu", log = function() end }),
    "NibabelIO (same arrays as SimpleITKIO) is accepted")
end
for _, p in ipairs({ "/fold_0/checkpoint_final.pth", "/fold_1/checkpoint_final.pth", "/plans.json",
  "/dataset.json" }) do os.remove(mdir .. p) end
os.remove(mdir .. "/fold_0"); os.remove(mdir .. "/fold_1"); os.remove(mdir)

print(string.format("%d checks, %d failed", T.checks, T.failures))
os.exit(T.failures == 0 and 0 or 1)
