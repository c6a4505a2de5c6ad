/* l_net.c: module "nnunet.net", the thin binding of core/nnu_net.h (userdata "nnunet.Net").
 *
 *   net.build(arch, opts) -> Net
 *       arch: a configuration's `architecture` table of nnUNetPlans.json
 *             ({network_class_name=, arch_kwargs={n_stages, features_per_stage, conv_op,
 *             kernel_sizes, strides, n_conv_per_stage, n_conv_per_stage_decoder,
 *             conv_bias, norm_op_kwargs={eps}, nonlin_kwargs={negative_slope}}})
 *             network_class_name ...PlainConvUNet (or absent): n_conv_per_stage;
 *             ...ResidualEncoderUNet (the nnUNetPlannerResEncM/L/XL plans; also chosen
 *             when the class is absent and arch_kwargs has n_blocks_per_stage):
 *             n_blocks_per_stage instead, BasicBlockD blocks only (block,
 *             bottleneck_channels and a stem_channels other than features_per_stage[1]
 *             are refused); any other class is an error naming it
 *       opts: {num_input_channels=, num_classes=, deep_supervision=true, batch_dice=false,
 *              ignore_label=nil, seed=12345, patch_size={..}, batch_size=n, train=,
 *              device="cpu"|"cuda"|"auto", precision=, regions=, loss_scale=,
 *              loss_terms="dice+ce", loss_smooth=1e-5}
 *             regions: region-based training: {{1, 2, 3}, {2, 3}, 3} (a label or a list of
 *             labels per region, declaration order); num_classes = #regions sigmoid
 *             heads trained with Dice + BCE
 *             loss_terms: "dice+ce" (default: Dice + CE, regions Dice + BCE) | "ce" (the
 *             CE, regions BCE, alone) | "dice" (the soft Dice alone); loss_smooth: the
 *             soft Dice's smooth (default 1e-5, the reference's; >= 0) (§7.4)
 *             device: "cpu" (default), "cuda" (nnu_backend_cuda; an error without a
 *             GPU or CUDA build), "auto" (CUDA when available, else the CPU with the
 *             one-line message "no CUDA GPU found: using the CPU" on stderr).
 *             precision: CPU "fp32" (default) | "bf16" (bf16 convolutions,
 *             nnu_backend_cpu_bf16); CUDA "bf16" (default) | "fp32" | "tf32" | "fp16"
 *             | "bf16-act16" | "fp16-act16" (16-bit activation storage)
 *             (convolution compute precision; weights stay fp32, activations too
 *             except in the -act16 modes;
 *             fp16 trains with dynamic loss scaling by default: loss_scale below)
 *             loss_scale: nil (fp16 on CUDA: dynamic, else off) | false | true |
 *             "dynamic" | initial scale | {scale=, growth=, backoff=, growth_interval=}:
 *             PyTorch's GradScaler (nnu_net.h); a skipped step returns a non-finite
 *             loss or grad_norm and counts in Net:info().skipped_steps
 *             (patch_size + batch_size plan the activation arena right away: the
 *             training arena when `train` (default: deep_supervision), else the lean
 *             inference one; forward re-plans when shapes or the mode require it)
 *   net.poly_lr(initial, epoch, max_epochs) -> lr        net.set_threads(n)
 *   net.cuda_available() -> true, "device description" | false, "reason"
 *   Net:forward(x [, train]) -> {logits...} (train: deep-supervision list, highest
 *       resolution first) | logits (inference); x f32 (N,C,D,H,W) or (N,C,H,W) for 2-D.
 *       Outputs are copies: the arena is reused by the next forward.
 *   Net:loss(target) -> loss     (after a training forward; target (N,1,spatial) labels;
 *       also stores the loss gradient for Net:backward())
 *   Net:backward([grads])        (grads: one tensor per output; default: the loss's)
 *   Net:zero_grad()   Net:sgd_step([opts]) -> grad_norm
 *   Net:train_step(x, target [, opts]) -> loss   (zero_grad, forward, loss, backward, SGD)
 *       opts: lr, or {optimizer="sgd"|"adam", ...}: SGD defaults lr=1e-2, momentum=0.99,
 *       weight_decay=3e-5, nesterov=true, clip=12; Adam defaults (§7.9) lr=3e-4,
 *       weight_decay=3e-5, beta1=0.9, beta2=0.999, eps=1e-8, amsgrad=true, clip=0
 *   Net:val_step(x, target) -> loss, logits      (no update; full-resolution logits)
 *   Net:get_state() -> {params=, optim={{name="momentum", tensor=}, (Adam: exp_avg,
 *       exp_avg_sq, max_exp_avg_sq)}, optim_steps=, layout=Net:layout()}
 *   Net:layout() -> {{name=, shape={...}}, ...}   the tensors of the flat blocks in order
 *   Net:set_state(state)                         (nnunet.trainer's checkpoint contract)
 *   Net:parameters() -> {name = Tensor copy, ...}, {names in order}
 *   Net:gradients()  -> the same for the gradients
 *   Net:flat(which) -> Tensor copy of "params" | "grads" | "momentum" | "exp_avg" |
 *       "exp_avg_sq" | "max_exp_avg_sq" (1-D)
 *   Net:set_flat(which, tensor)     Net:sgd_steps([n]) -> n
 *   Net:save(path [, meta]) -> true | nil, msg, code   (meta: {key = string} in __metadata__)
 *   Net:load(path) -> true | nil, msg, code      net.metadata(path) -> JSON text | nil, msg
 *       (path: our safetensors checkpoint or a PyTorch one, nnu_torch_ckpt.h)
 *   Net:load_pretrained(path [, skip=".seg_layers."]) -> n_loaded | nil, msg, code
 *       the reference's load_pretrained_weights: every tensor whose name lacks `skip`
 *       copied from path (ours or PyTorch's; same names and shapes required)
 *   Net:info() -> {num_params=, num_tensors=, arena_bytes=, layout_block=, dim=,
 *       num_classes=, device="cpu"|"cuda", precision=, backend=,
 *       arch="PlainConvUNet"|"ResidualEncoderUNet", loss_terms="dice+ce"|"ce"|"dice",
 *       loss_smooth=}
 * The Net's metatable carries "__nnu_slide_predict" (l_infer.h): infer.sliding_window(img,
 * opts, net) calls the C forward (nnu_net_slide_predict) per batch of windows.
 * Programming errors raise; expected failures (I/O, checkpoint mismatch) return nil, msg. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "l_infer.h"
#include "l_util.h"
#include "nnu_net.h"
#include "nnu_net_slide.h"
#ifdef NNUNET_HAVE_CUDA
#include "nnu_cuda.h"
#endif

#define L_NET_MT "nnunet.Net"

static nnu_net *l_net_check(lua_State *L, int arg) {
    nnu_net **box = (nnu_net **)luaL_checkudata(L, arg, L_NET_MT);
    luaL_argcheck(L, *box != NULL, arg, "network was released");
    return *box;
}

static int l_net_gc(lua_State *L) {
    nnu_net **box = (nnu_net **)luaL_checkudata(L, 1, L_NET_MT);
    nnu_net_free(*box);            /* never raises (R11) */
    *box = NULL;
    return 0;
}

/* ---- devices ---- */

/* 1 when this build has the CUDA backend and a GPU initialises; *why gets the device
 * description or the reason (static or thread-local text) */
static int cuda_usable(const char **why) {
#ifdef NNUNET_HAVE_CUDA
    if (nnu_cuda_device_count() == 0) {
        *why = "no CUDA GPU found";
        return 0;
    }
    const nnu_backend *be;
    if (nnu_backend_cuda(NNU_CUDA_FP32, &be) != NNU_STATUS_OK) {
        *why = nnu_last_error();
        return 0;
    }
    *why = nnu_cuda_device_info();
    return 1;
#else
    *why = "this build has no CUDA backend";
    return 0;
#endif
}

/* the backend for opts.device / opts.precision (table at index t); raises on bad
 * names, on "cuda" without a usable GPU (with the backend's HINT), never returns NULL */
static const nnu_backend *pick_backend(lua_State *L, int t) {
    lua_getfield(L, t, "device");
    const char *dev = luaL_optstring(L, -1, "cpu");
    lua_getfield(L, t, "precision");
    const char *prec = luaL_optstring(L, -1, NULL);
    int cuda = 0;
    if (!strcmp(dev, "auto")) {
        const char *why;
        cuda = cuda_usable(&why);
        if (!cuda && !strcmp(why, "no CUDA GPU found"))
            fprintf(stderr, "no CUDA GPU found: using the CPU\n");
        else if (!cuda)
            fprintf(stderr, "no CUDA GPU found: using the CPU (%s)\n", why);
    } else if (!strcmp(dev, "cuda")) {
        cuda = 1;
    } else if (strcmp(dev, "cpu")) {
        luaL_error(L, "build: device must be 'cpu', 'cuda' or 'auto', got '%s'", dev);
    }
    const nnu_backend *be = NULL;
    if (!cuda) {
        if (!prec || !strcmp(prec, "fp32")) be = nnu_backend_cpu();
        else if (!strcmp(prec, "bf16")) be = nnu_backend_cpu_bf16();
        else luaL_error(L, "build: precision on the CPU must be 'fp32' or 'bf16', got '%s'", prec);
    } else {
#ifdef NNUNET_HAVE_CUDA
        /* the GPU default: bf16 convolutions with 16-bit activation storage, measured on an
         * H200 (docs/cuda.md, 2026-11-28): correct against the CPU, faster than fp32 storage
         * (hippo 12.2 vs 14.3 ms per iteration) and half the training memory */
        nnu_cuda_precision p = NNU_CUDA_BF16_ACT16;
        if (prec && !nnu_cuda_precision_from_name(prec, &p))
            luaL_error(L, "build: precision on CUDA must be 'fp32', 'tf32', 'bf16', 'fp16', "
                          "'bf16-act16' or 'fp16-act16', got '%s'", prec);
        nnu_status st = nnu_backend_cuda(p, &be);
        if (st) l_raise(L, st);
#else
        luaL_error(L, "build: device 'cuda': this build has no CUDA backend (rebuild with the "
                      "CUDA toolkit, or use device = 'cpu')");
#endif
    }
    lua_pop(L, 2);
    return be;
}

static int l_net_cuda_available(lua_State *L) {
    const char *why;
    int ok = cuda_usable(&why);
    lua_pushboolean(L, ok);
    lua_pushstring(L, why);
    return 2;
}

/* ---- reading the plan table ---- */

static lua_Integer field_int(lua_State *L, int t, const char *k, lua_Integer def, int required) {
    lua_getfield(L, t, k);
    int isnum;
    lua_Integer v = lua_tointegerx(L, -1, &isnum);
    if (!isnum) {
        if (required || !lua_isnil(L, -1)) luaL_error(L, "build: '%s' must be an integer", k);
        v = def;
    }
    lua_pop(L, 1);
    return v;
}

static double field_num(lua_State *L, int t, const char *k, double def) {
    lua_getfield(L, t, k);
    double v = lua_isnil(L, -1) ? def : luaL_checknumber(L, -1);
    lua_pop(L, 1);
    return v;
}

static int field_bool(lua_State *L, int t, const char *k, int def) {
    lua_getfield(L, t, k);
    int v = lua_isnil(L, -1) ? def : lua_toboolean(L, -1);
    lua_pop(L, 1);
    return v;
}

/* array of n integers at t[k] (a single integer: n copies, as the reference accepts) */
static void field_ints(lua_State *L, int t, const char *k, int n, int *out) {
    lua_getfield(L, t, k);
    if (lua_isinteger(L, -1)) {
        for (int i = 0; i < n; i++) out[i] = (int)lua_tointeger(L, -1);
        lua_pop(L, 1);
        return;
    }
    if (!lua_istable(L, -1) || (int)luaL_len(L, -1) != n)
        luaL_error(L, "build: '%s' must be an array of %d integers", k, n);
    for (int i = 0; i < n; i++) {
        lua_geti(L, -1, i + 1);
        out[i] = (int)luaL_checkinteger(L, -1);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

/* per-stage spatial triples (2-D plans have pairs: D gets 1) */
static void field_triples(lua_State *L, int t, const char *k, int n, int dim, int out[][3]) {
    lua_getfield(L, t, k);
    if (!lua_istable(L, -1) || (int)luaL_len(L, -1) != n)
        luaL_error(L, "build: '%s' must have one entry per stage (%d)", k, n);
    for (int i = 0; i < n; i++) {
        lua_geti(L, -1, i + 1);
        if (!lua_istable(L, -1) || (int)luaL_len(L, -1) != dim)
            luaL_error(L, "build: '%s'[%d] must have %d entries", k, i + 1, dim);
        out[i][0] = 1;
        for (int a = 0; a < dim; a++) {
            lua_geti(L, -1, a + 1);
            out[i][3 - dim + a] = (int)luaL_checkinteger(L, -1);
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

/* opts.regions: nil (softmax labels) or the regions in declaration order, each a label or a
 * list of labels ({{1, 2, 3}, {2, 3}, 3} for BraTS): one sigmoid head per region, trained
 * with Dice + BCE (num_classes must equal the region count) */
static void region_opts(lua_State *L, int t, nnu_net_config *c) {
    lua_getfield(L, t, "regions");
    if (lua_isnil(L, -1)) { lua_pop(L, 1); return; }
    luaL_argcheck(L, lua_istable(L, -1), t, "regions must be a list of labels or label lists");
    const int v = lua_gettop(L), n = (int)luaL_len(L, v);
    luaL_argcheck(L, n >= 1 && n <= 32, t, "regions: 1 to 32 regions");
    int maxl = 0;
    for (int r = 0; r < n; r++) {
        lua_geti(L, v, r + 1);
        const int e = lua_gettop(L), single = lua_isinteger(L, e);
        luaL_argcheck(L, single || lua_istable(L, e), t, "regions: each region is a label or a list");
        const int m = single ? 1 : (int)luaL_len(L, e);
        for (int j = 0; j < m; j++) {
            if (!single) lua_geti(L, e, j + 1);
            int isint;
            lua_Integer l = lua_tointegerx(L, -1, &isint);
            luaL_argcheck(L, isint && l >= 1 && l < NNU_LOSS_MAX_LABELS, t,
                          "regions: labels must be integers in 1..63");
            c->label_regions[l] |= 1u << r;
            if (l > maxl) maxl = (int)l;
            if (!single) lua_pop(L, 1);
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    c->n_regions = n;
    c->n_labels = maxl + 1;   /* every foreground label is in a region (Appendix B) */
}

/* opts.loss_terms ("dice+ce" | "ce" | "dice") and opts.loss_smooth (a number >= 0):
 * which terms of the training loss Net:loss computes, and the soft Dice's smooth */
static void loss_opts(lua_State *L, int t, nnu_net_config *c) {
    static const char *const names[] = {"dice+ce", "ce", "dice", NULL};
    static const int terms[] = {NNU_LOSS_DICE_AND_CE, NNU_LOSS_CE_ONLY, NNU_LOSS_DICE_ONLY};
    lua_getfield(L, t, "loss_terms");
    if (!lua_isnil(L, -1)) {
        const char *s = lua_tostring(L, -1);
        int i = 0;
        while (s && names[i] && strcmp(s, names[i])) i++;
        if (!s || !names[i])
            luaL_error(L, "build: loss_terms must be 'dice+ce', 'ce' or 'dice', got '%s'",
                       s ? s : luaL_typename(L, -1));
        c->loss_terms = terms[i];
    }
    lua_pop(L, 1);
    lua_getfield(L, t, "loss_smooth");
    if (!lua_isnil(L, -1)) {
        int isnum;
        lua_Number v = lua_tonumberx(L, -1, &isnum);
        if (!isnum || !(v >= 0) || v > 1e30)
            luaL_error(L, "build: loss_smooth must be a number >= 0");
        c->loss_smooth_set = 1;
        c->loss_smooth = (float)v;
    }
    lua_pop(L, 1);
}

/* opts.loss_scale: nil = dynamic loss scaling for fp16 on CUDA (the reference's
 * GradScaler; fp16 gradients underflow without it), off otherwise; false = off; true or
 * "dynamic" = on with GradScaler's defaults; a number = on from that scale; a table
 * {scale=, growth=, backoff=, growth_interval=} = on with those settings */
/* 1 when be computes its convolutions in fp16 (the tables that need loss scaling) */
static int computes_fp16(const nnu_backend *be) {
#ifdef NNUNET_HAVE_CUDA
    const int p = nnu_cuda_precision_of(be);
    return p >= 0 && nnu_cuda_precision_compute((nnu_cuda_precision)p) == NNU_CUDA_FP16;
#else
    (void)be;
    return 0;
#endif
}

static nnu_status loss_scale_opts(lua_State *L, int t, nnu_net *net, const nnu_backend *be) {
    nnu_loss_scaler s;
    nnu_loss_scaler_default(&s);
    lua_getfield(L, t, "loss_scale");
    const int v = lua_gettop(L);
    switch (lua_type(L, v)) {
    case LUA_TNIL: s.enabled = computes_fp16(be); break;
    case LUA_TBOOLEAN: s.enabled = lua_toboolean(L, v); break;
    case LUA_TNUMBER: s.scale = lua_tonumber(L, v); break;
    case LUA_TSTRING:
        luaL_argcheck(L, !strcmp(lua_tostring(L, v), "dynamic"), t,
                      "loss_scale must be nil, false, true, 'dynamic', a number or a table");
        break;
    case LUA_TTABLE:
        s.scale = field_num(L, v, "scale", s.scale);
        s.growth = field_num(L, v, "growth", s.growth);
        s.backoff = field_num(L, v, "backoff", s.backoff);
        s.growth_interval = (int)field_int(L, v, "growth_interval", s.growth_interval, 0);
        break;
    default:
        luaL_argerror(L, t, "loss_scale must be nil, false, true, 'dynamic', a number or a table");
    }
    lua_pop(L, 1);
    return nnu_net_set_loss_scaler(net, &s);
}

/* 1 when the last dot-separated part of class name cls is `name` */
static int class_is(const char *cls, const char *name) {
    const char *dot = strrchr(cls, '.');
    return !strcmp(dot ? dot + 1 : cls, name);
}

/* the architecture of arch table t (kw: its arch_kwargs): network_class_name decides;
 * without one, n_blocks_per_stage means the residual encoder */
static int pick_arch(lua_State *L, int t, int kw) {
    lua_getfield(L, t, "network_class_name");
    const char *cls = luaL_optstring(L, -1, NULL);
    int arch;
    if (!cls) {
        lua_getfield(L, kw, "n_blocks_per_stage");
        arch = lua_isnil(L, -1) ? NNU_NET_PLAIN : NNU_NET_RESENC;
        lua_pop(L, 1);
    } else if (class_is(cls, "PlainConvUNet")) {
        arch = NNU_NET_PLAIN;
    } else if (class_is(cls, "ResidualEncoderUNet")) {
        arch = NNU_NET_RESENC;
    } else {
        return luaL_error(L, "build: network class '%s' is not supported (the engine builds "
                             "PlainConvUNet and ResidualEncoderUNet)", cls);
    }
    lua_pop(L, 1);
    return arch;
}

/* ResidualEncoderUNet kwargs this engine does not implement: refused by name */
static void resenc_supported(lua_State *L, int kw, const nnu_net_config *c) {
    lua_getfield(L, kw, "block");
    if (!lua_isnil(L, -1)) {
        const char *b = lua_tostring(L, -1);
        if (!b || !class_is(b, "BasicBlockD"))
            luaL_error(L, "build: ResidualEncoderUNet block '%s' is not supported (BasicBlockD is)",
                       b ? b : luaL_typename(L, -1));
    }
    lua_getfield(L, kw, "bottleneck_channels");
    if (!lua_isnil(L, -1))
        luaL_error(L, "build: ResidualEncoderUNet bottleneck_channels is not supported "
                      "(BasicBlockD blocks have none)");
    lua_getfield(L, kw, "stem_channels");
    if (!lua_isnil(L, -1) && lua_tointeger(L, -1) != c->features[0])
        luaL_error(L, "build: ResidualEncoderUNet stem_channels %s is not supported (the stem "
                      "has features_per_stage[1] = %d channels)", lua_tostring(L, -1),
                   c->features[0]);
    lua_pop(L, 3);
}

static int l_net_build(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_getfield(L, 1, "arch_kwargs");
    luaL_argcheck(L, lua_istable(L, -1), 1, "architecture table without arch_kwargs");
    const int kw = lua_gettop(L);
    nnu_net_config c;
    memset(&c, 0, sizeof c);
    c.arch = pick_arch(L, 1, kw);
    lua_getfield(L, kw, "conv_op");
    const char *op = luaL_optstring(L, -1, "torch.nn.modules.conv.Conv3d");
    c.dim = strstr(op, "Conv2d") ? 2 : 3;
    lua_pop(L, 1);
    c.n_stages = (int)field_int(L, kw, "n_stages", 0, 1);
    luaL_argcheck(L, c.n_stages >= 2 && c.n_stages <= NNU_NET_MAX_STAGES, 1, "n_stages out of range");
    field_ints(L, kw, "features_per_stage", c.n_stages, c.features);
    field_triples(L, kw, "kernel_sizes", c.n_stages, c.dim, c.kernel);
    field_triples(L, kw, "strides", c.n_stages, c.dim, c.stride);
    if (c.arch == NNU_NET_RESENC) {
        field_ints(L, kw, "n_blocks_per_stage", c.n_stages, c.n_blocks_enc);
        resenc_supported(L, kw, &c);
    } else {
        field_ints(L, kw, "n_conv_per_stage", c.n_stages, c.n_conv_enc);
    }
    field_ints(L, kw, "n_conv_per_stage_decoder", c.n_stages - 1, c.n_conv_dec);
    c.conv_bias = field_bool(L, kw, "conv_bias", 1);
    lua_getfield(L, kw, "norm_op_kwargs");
    c.norm_eps = lua_istable(L, -1) ? (float)field_num(L, lua_gettop(L), "eps", 1e-5) : 1e-5f;
    lua_pop(L, 1);
    lua_getfield(L, kw, "nonlin_kwargs");   /* {inplace=true} -> PyTorch's default 0.01 */
    c.slope = lua_istable(L, -1) ? (float)field_num(L, lua_gettop(L), "negative_slope", 1e-2)
                                 : 1e-2f;
    lua_pop(L, 1);
    c.in_channels = (int)field_int(L, 2, "num_input_channels", 0, 1);
    c.num_classes = (int)field_int(L, 2, "num_classes", 0, 1);
    c.deep_supervision = field_bool(L, 2, "deep_supervision", 1);
    c.batch_dice = field_bool(L, 2, "batch_dice", 0);
    c.ignore_label = (int)field_int(L, 2, "ignore_label", -1, 0);
    region_opts(L, 2, &c);
    loss_opts(L, 2, &c);
    uint64_t seed = (uint64_t)field_int(L, 2, "seed", 12345, 0);
    int plan_train = field_bool(L, 2, "train", c.deep_supervision);
    const nnu_backend *be = pick_backend(L, 2);
    int64_t patch[3] = {1, 1, 1}, batch = field_int(L, 2, "batch_size", 0, 0);
    lua_getfield(L, 2, "patch_size");
    int have_patch = lua_istable(L, -1);
    if (have_patch) {
        luaL_argcheck(L, (int)luaL_len(L, -1) == c.dim, 2, "patch_size must match the net's dim");
        for (int a = 0; a < c.dim; a++) {
            lua_geti(L, -1, a + 1);
            patch[3 - c.dim + a] = luaL_checkinteger(L, -1);
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);
    nnu_net **box = (nnu_net **)lua_newuserdatauv(L, sizeof *box, 0);   /* box first (R12) */
    *box = NULL;
    luaL_setmetatable(L, L_NET_MT);
    nnu_status st = nnu_net_create(be, &c, seed, box);
    if (st == NNU_STATUS_OK) st = loss_scale_opts(L, 2, *box, be);
    /* eager plan: training arena unless told otherwise; a net built without deep
     * supervision (the predictor's) gets the lean inference arena */
    if (st == NNU_STATUS_OK && have_patch && batch > 0)
        st = nnu_net_plan(*box, batch, patch, plan_train);
    return st ? l_raise(L, st) : 1;
}

/* ---- forward / loss / backward ---- */

/* x as contiguous f32 (N, C, D, H, W); *own receives a reference to drop */
static const float *input_data(lua_State *L, int arg, const nnu_net *net, int64_t *n,
                               int64_t patch[3], nnu_tensor **own) {
    nnu_tensor *x = l_tensor_check(L, arg);
    const nnu_net_config *c = nnu_net_get_config(net);
    luaL_argcheck(L, x->ndim == c->dim + 2, arg, c->dim == 3 ? "expected (N, C, D, H, W)"
                                                              : "expected (N, C, H, W)");
    luaL_argcheck(L, x->shape[1] == c->in_channels, arg, "channel count differs from the net's");
    nnu_status st = x->dtype == NNU_DTYPE_F32 ? nnu_tensor_contiguous(x, own)
                                              : nnu_tensor_to_dtype(x, NNU_DTYPE_F32, own);
    if (st) l_raise(L, st);
    *n = x->shape[0];
    patch[0] = c->dim == 3 ? x->shape[2] : 1;
    patch[1] = x->shape[x->ndim - 2];
    patch[2] = x->shape[x->ndim - 1];
    return nnu_tensor_data(*own);
}

/* pushes a copy of output i (2-D nets drop the D axis) */
static void push_output(lua_State *L, nnu_net *net, int i) {
    int64_t sh[5];
    const float *y = nnu_net_output(net, i, sh);
    int dim = nnu_net_get_config(net)->dim;
    int64_t s2[5] = {sh[0], sh[1], sh[3], sh[4]};
    nnu_tensor **box = l_tensor_newbox(L);
    nnu_status st = nnu_tensor_new(NNU_DTYPE_F32, dim + 2, dim == 3 ? sh : s2, box);
    if (st) l_raise(L, st);
    st = nnu_net_read(net, y, nnu_tensor_data(*box), nnu_tensor_numel(*box));
    if (st) l_raise(L, st);
}

static int l_net_forward(lua_State *L) {
    nnu_net *net = l_net_check(L, 1);
    int train = lua_toboolean(L, 3);
    int64_t n, patch[3];
    nnu_tensor *own = NULL;
    const float *x = input_data(L, 2, net, &n, patch, &own);
    nnu_status st = nnu_net_forward(net, x, n, patch, train);
    nnu_tensor_release(own);
    if (st) return l_raise(L, st);
    if (!train) { push_output(L, net, 0); return 1; }
    lua_createtable(L, nnu_net_num_outputs(net), 0);
    for (int i = 0; i < nnu_net_num_outputs(net); i++) {
        push_output(L, net, i);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

/* target as (N, 1, D, H, W) (2-D: (N, 1, H, W) gets D = 1) */
static nnu_tensor *target_view(lua_State *L, int arg, const nnu_net *net) {
    nnu_tensor *t = l_tensor_check(L, arg);
    int dim = nnu_net_get_config(net)->dim;
    luaL_argcheck(L, t->ndim == dim + 2, arg, "target must be (N, 1, spatial...)");
    nnu_tensor *v = NULL;
    nnu_status st;
    if (dim == 3) {
        nnu_tensor_retain(t);
        return t;
    }
    nnu_tensor *c = NULL;
    st = nnu_tensor_contiguous(t, &c);
    if (st == NNU_STATUS_OK)
        st = nnu_tensor_view_reshape(c, 5, (const int64_t[]){t->shape[0], t->shape[1], 1,
                                                             t->shape[2], t->shape[3]}, &v);
    nnu_tensor_release(c);
    if (st) l_raise(L, st);
    return v;
}

static int l_net_loss(lua_State *L) {
    nnu_net *net = l_net_check(L, 1);
    nnu_tensor *t = target_view(L, 2, net);
    double loss;
    nnu_status st = nnu_net_loss(net, t, &loss);
    nnu_tensor_release(t);
    if (st) return l_raise(L, st);
    lua_pushnumber(L, loss);
    return 1;
}

static int l_net_backward(lua_State *L) {
    nnu_net *net = l_net_check(L, 1);
    if (lua_istable(L, 2)) {
        int k = nnu_net_num_outputs(net);
        luaL_argcheck(L, (int)luaL_len(L, 2) == k, 2, "one gradient per output");
        for (int i = 0; i < k; i++) {
            lua_geti(L, 2, i + 1);
            nnu_tensor *g = l_tensor_check(L, -1);
            int64_t sh[5];
            nnu_net_output(net, i, sh);
            luaL_argcheck(L, g->dtype == NNU_DTYPE_F32 && nnu_tensor_is_contiguous(g) &&
                          nnu_tensor_numel(g) == sh[0] * sh[1] * sh[2] * sh[3] * sh[4], 2,
                          "gradients must be contiguous f32 tensors shaped as the outputs");
            nnu_status st = nnu_net_write(net, nnu_net_output_grad(net, i), nnu_tensor_data(g),
                                          nnu_tensor_numel(g));
            if (st) return l_raise(L, st);
            lua_pop(L, 1);
        }
    }
    nnu_status st = nnu_net_backward(net);
    return st ? l_raise(L, st) : 0;
}

static int l_net_zero_grad(lua_State *L) {
    nnu_status st = nnu_net_zero_grad(l_net_check(L, 1));
    return st ? l_raise(L, st) : 0;
}

/* opts: a number (the learning rate of SGD) or {optimizer = "sgd" | "adam", lr=,
 * momentum=, weight_decay=, nesterov=, clip=, beta1=, beta2=, eps=, amsgrad=,
 * decoupled_weight_decay= (Adam: AdamW's decay)};
 * absent fields keep the optimizer's reference defaults (nnu_net.h) */
static void sgd_opts(lua_State *L, int arg, nnu_sgd_config *c) {
    nnu_sgd_config_default(c);
    if (lua_isnoneornil(L, arg)) return;
    if (lua_type(L, arg) == LUA_TNUMBER) {   /* just the learning rate (nnunet.trainer) */
        c->lr = (float)lua_tonumber(L, arg);
        return;
    }
    luaL_checktype(L, arg, LUA_TTABLE);
    lua_getfield(L, arg, "optimizer");
    const char *o = luaL_optstring(L, -1, "sgd");   /* any case: the plans write "Adam" */
    if (!strcasecmp(o, "adam")) nnu_adam_config_default(c);
    else if (strcasecmp(o, "sgd")) luaL_argerror(L, arg, "optimizer must be 'sgd' or 'adam'");
    lua_pop(L, 1);
    c->lr = (float)field_num(L, arg, "lr", c->lr);
    c->momentum = (float)field_num(L, arg, "momentum", c->momentum);
    c->weight_decay = (float)field_num(L, arg, "weight_decay", c->weight_decay);
    c->nesterov = field_bool(L, arg, "nesterov", c->nesterov);
    c->clip_norm = (float)field_num(L, arg, "clip", c->clip_norm);
    c->beta1 = (float)field_num(L, arg, "beta1", c->beta1);
    c->beta2 = (float)field_num(L, arg, "beta2", c->beta2);
    c->eps = (float)field_num(L, arg, "eps", c->eps);
    c->amsgrad = field_bool(L, arg, "amsgrad", c->amsgrad);
    c->decoupled = field_bool(L, arg, "decoupled_weight_decay", c->decoupled);
}

static int l_net_sgd_step(lua_State *L) {
    nnu_net *net = l_net_check(L, 1);
    nnu_sgd_config c;
    sgd_opts(L, 2, &c);
    double norm;
    nnu_status st = nnu_net_sgd_step(net, &c, &norm);
    if (st) return l_raise(L, st);
    lua_pushnumber(L, norm);
    return 1;
}

static int l_net_train_step(lua_State *L) {
    nnu_net *net = l_net_check(L, 1);
    nnu_sgd_config c;
    sgd_opts(L, 4, &c);
    int64_t n, patch[3];
    nnu_tensor *own = NULL;
    const float *x = input_data(L, 2, net, &n, patch, &own);
    nnu_tensor *t = target_view(L, 3, net);
    double loss = 0;
    nnu_status st = nnu_net_train_step(net, x, n, patch, t, &c, &loss);
    nnu_tensor_release(own);
    nnu_tensor_release(t);
    if (st) return l_raise(L, st);
    lua_pushnumber(L, loss);
    return 1;
}

/* forward (training mode: the reference validates with deep supervision on), loss,
 * no update; returns loss and a copy of the full-resolution logits */
static int l_net_val_step(lua_State *L) {
    nnu_net *net = l_net_check(L, 1);
    int64_t n, patch[3];
    nnu_tensor *own = NULL;
    const float *x = input_data(L, 2, net, &n, patch, &own);
    nnu_tensor *t = target_view(L, 3, net);
    double loss = 0;
    nnu_status st = nnu_net_forward(net, x, n, patch, 1);
    if (st == NNU_STATUS_OK) st = nnu_net_loss(net, t, &loss);
    nnu_tensor_release(own);
    nnu_tensor_release(t);
    if (st) return l_raise(L, st);
    lua_pushnumber(L, loss);
    push_output(L, net, 0);
    return 2;
}

/* ---- parameters ---- */

static float *flat_block(lua_State *L, nnu_net *net, int arg) {
    const char *w = luaL_checkstring(L, arg);
    if (!strcmp(w, "params")) return nnu_net_params(net);
    if (!strcmp(w, "grads")) return nnu_net_grads(net);
    if (!strcmp(w, "momentum")) return nnu_net_momentum(net);
    static const char *const adam[3] = {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"};
    for (int i = 0; i < 3; i++)
        if (!strcmp(w, adam[i])) {
            nnu_status st = nnu_net_adam_alloc(net);   /* zeros before the first Adam step */
            if (st) l_raise(L, st);
            return nnu_net_adam_state(net, i);
        }
    luaL_argerror(L, arg, "expected 'params', 'grads', 'momentum', 'exp_avg', 'exp_avg_sq' "
                          "or 'max_exp_avg_sq'");
    return NULL;
}

static int push_tensors(lua_State *L, nnu_net *net, const float *block) {
    int nt = nnu_net_num_tensors(net);
    lua_createtable(L, 0, nt);
    lua_createtable(L, nt, 0);
    for (int i = 0; i < nt; i++) {
        const nnu_net_tensor_info *ti = nnu_net_tensor(net, i);
        nnu_tensor **box = l_tensor_newbox(L);
        nnu_status st = nnu_tensor_new(NNU_DTYPE_F32, ti->ndim, ti->shape, box);
        if (st) return l_raise(L, st);
        st = nnu_net_read(net, block + ti->offset, nnu_tensor_data(*box), ti->numel);
        if (st) return l_raise(L, st);
        lua_setfield(L, -3, ti->name);
        lua_pushstring(L, ti->name);
        lua_rawseti(L, -2, i + 1);
    }
    return 2;
}

static int l_net_parameters(lua_State *L) {
    nnu_net *net = l_net_check(L, 1);
    return push_tensors(L, net, nnu_net_params(net));
}

static int l_net_gradients(lua_State *L) {
    nnu_net *net = l_net_check(L, 1);
    return push_tensors(L, net, nnu_net_grads(net));
}

/* Net:layout() -> {{name = s, shape = {...}}, ...}: the tensors of the flat blocks in
 * order (the checkpoint layout of nnunet.train) */
static int l_net_layout(lua_State *L) {
    nnu_net *net = l_net_check(L, 1);
    int nt = nnu_net_num_tensors(net);
    lua_createtable(L, nt, 0);
    for (int i = 0; i < nt; i++) {
        const nnu_net_tensor_info *ti = nnu_net_tensor(net, i);
        lua_createtable(L, 0, 2);
        lua_pushstring(L, ti->name);
        lua_setfield(L, -2, "name");
        lua_createtable(L, ti->ndim, 0);
        for (int d = 0; d < ti->ndim; d++) {
            lua_pushinteger(L, (lua_Integer)ti->shape[d]);
            lua_rawseti(L, -2, d + 1);
        }
        lua_setfield(L, -2, "shape");
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

static int l_net_flat(lua_State *L) {
    nnu_net *net = l_net_check(L, 1);
    const float *b = flat_block(L, net, 2);
    int64_t n = nnu_net_num_params(net);
    nnu_tensor **box = l_tensor_newbox(L);
    nnu_status st = nnu_tensor_new(NNU_DTYPE_F32, 1, &n, box);
    if (st) return l_raise(L, st);
    st = nnu_net_read(net, b, nnu_tensor_data(*box), n);
    return st ? l_raise(L, st) : 1;
}

static int l_net_set_flat(lua_State *L) {
    nnu_net *net = l_net_check(L, 1);
    float *b = flat_block(L, net, 2);
    nnu_tensor *t = l_tensor_check(L, 3);
    luaL_argcheck(L, t->dtype == NNU_DTYPE_F32 && nnu_tensor_is_contiguous(t) &&
                  nnu_tensor_numel(t) == nnu_net_num_params(net), 3,
                  "expected a contiguous f32 tensor with num_params elements");
    nnu_status st = nnu_net_write(net, b, nnu_tensor_data(t), nnu_net_num_params(net));
    return st ? l_raise(L, st) : 0;
}

static int l_net_sgd_steps(lua_State *L) {
    nnu_net *net = l_net_check(L, 1);
    if (!lua_isnoneornil(L, 2)) nnu_net_set_sgd_steps(net, (int)luaL_checkinteger(L, 2));
    lua_pushinteger(L, nnu_net_get_sgd_steps(net));
    return 1;
}

/* {params = Tensor, optim = {{name = "momentum", tensor = Tensor}}, optim_steps = n}
 * (the state nnunet.trainer checkpoints through nnunet.train) */
/* optimizer buffers by name: the SGD momentum, then Adam's state once allocated */
static const char *const state_names[4] = {"momentum", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"};

static int l_net_get_state(lua_State *L) {
    nnu_net *net = l_net_check(L, 1);
    lua_createtable(L, 0, 3);
    lua_pushcfunction(L, l_net_flat);
    lua_pushvalue(L, 1);
    lua_pushliteral(L, "params");
    lua_call(L, 2, 1);
    lua_setfield(L, -2, "params");
    lua_createtable(L, 4, 0);
    int k = 0;
    for (int i = 0; i < 4; i++) {
        if (i > 0 && !nnu_net_adam_state(net, i - 1)) continue;
        lua_createtable(L, 0, 2);
        lua_pushstring(L, state_names[i]);
        lua_setfield(L, -2, "name");
        lua_pushcfunction(L, l_net_flat);
        lua_pushvalue(L, 1);
        lua_pushstring(L, state_names[i]);
        lua_call(L, 2, 1);
        lua_setfield(L, -2, "tensor");
        lua_rawseti(L, -2, ++k);
    }
    lua_setfield(L, -2, "optim");
    lua_pushinteger(L, nnu_net_get_sgd_steps(net));
    lua_setfield(L, -2, "optim_steps");
    const nnu_loss_scaler *ls = nnu_net_loss_scaler(net);
    if (ls->enabled) {   /* GradScaler's state_dict: scale and growth tracker */
        lua_createtable(L, 0, 2);
        lua_pushnumber(L, ls->scale);
        lua_setfield(L, -2, "scale");
        lua_pushinteger(L, ls->growth_tracker);
        lua_setfield(L, -2, "growth_tracker");
        lua_setfield(L, -2, "loss_scale");
    }
    lua_pushcfunction(L, l_net_layout);
    lua_pushvalue(L, 1);
    lua_call(L, 1, 1);
    lua_setfield(L, -2, "layout");
    return 1;
}

static int l_net_set_state(lua_State *L) {
    nnu_net *net = l_net_check(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_pushcfunction(L, l_net_set_flat);
    lua_pushvalue(L, 1);
    lua_pushliteral(L, "params");
    lua_getfield(L, 2, "params");
    lua_call(L, 3, 0);
    int steps = (int)field_int(L, 2, "optim_steps", 0, 0);
    lua_getfield(L, 2, "optim");
    int found = 0;
    for (int i = 1; lua_istable(L, -1) && i <= (int)luaL_len(L, -1); i++) {
        lua_geti(L, -1, i);
        lua_getfield(L, -1, "name");
        const char *nm = lua_tostring(L, -1);
        for (int j = 0; nm && j < 4; j++) {
            if (strcmp(nm, state_names[j])) continue;
            lua_pushcfunction(L, l_net_set_flat);
            lua_pushvalue(L, 1);
            lua_pushstring(L, nm);
            lua_getfield(L, -5, "tensor");
            lua_call(L, 3, 0);
            found = 1;
        }
        lua_pop(L, 2);
    }
    lua_pop(L, 1);
    if (!found) {   /* weights only: the optimizer starts afresh */
        nnu_status st = nnu_backend_memset(nnu_net_backend(net), nnu_net_momentum(net), 0,
                                           (size_t)nnu_net_num_params(net) * sizeof(float));
        if (st) return l_raise(L, st);
        steps = 0;
    }
    nnu_net_set_sgd_steps(net, steps);
    /* {scale=, growth_tracker=} from a scaled training; ignored when this net does not
     * scale (e.g. resumed on another precision), and absent state keeps the net's */
    lua_getfield(L, 2, "loss_scale");
    nnu_loss_scaler ls = *nnu_net_loss_scaler(net);
    if (lua_istable(L, -1) && ls.enabled) {
        ls.scale = field_num(L, lua_gettop(L), "scale", ls.scale);
        ls.growth_tracker = (int)field_int(L, lua_gettop(L), "growth_tracker", 0, 0);
        nnu_status st = nnu_net_set_loss_scaler(net, &ls);
        if (st) return l_raise(L, st);
    }
    lua_pop(L, 1);
    return 0;
}

/* Net:save(path [, {key = string|number, ...}]) */
static int l_net_save(lua_State *L) {
    nnu_net *net = l_net_check(L, 1);
    const char *path = luaL_checkstring(L, 2);
    enum { MAXMETA = 32 };
    const char *keys[MAXMETA], *vals[MAXMETA];
    int n = 0;
    if (!lua_isnoneornil(L, 3)) {
        luaL_checktype(L, 3, LUA_TTABLE);
        lua_settop(L, 3);
        lua_createtable(L, 2 * MAXMETA, 0);   /* 4: anchors the strings until the call */
        lua_pushnil(L);
        while (lua_next(L, 3)) {
            luaL_argcheck(L, n < MAXMETA, 3, "at most 32 metadata entries");
            luaL_argcheck(L, lua_type(L, -2) == LUA_TSTRING, 3, "metadata keys must be strings");
            luaL_argcheck(L, lua_type(L, -1) == LUA_TSTRING || lua_type(L, -1) == LUA_TNUMBER, 3,
                          "metadata values must be strings or numbers");
            lua_pushvalue(L, -2);
            lua_rawseti(L, 4, 2 * n + 1);
            lua_pushstring(L, lua_tostring(L, -1));   /* a number becomes a new string */
            lua_rawseti(L, 4, 2 * n + 2);
            lua_pop(L, 1);
            lua_rawgeti(L, 4, 2 * n + 1);
            keys[n] = lua_tostring(L, -1);
            lua_rawgeti(L, 4, 2 * n + 2);
            vals[n] = lua_tostring(L, -1);
            lua_pop(L, 2);
            n++;
        }
    }
    nnu_status st = nnu_net_save_meta(net, path, n, keys, vals);
    if (st) return l_fail(L, st);
    lua_pushboolean(L, 1);
    return 1;
}

/* net.metadata(path) -> JSON text of the file's __metadata__ | nil, msg, code */
static int l_net_metadata(lua_State *L) {
    char buf[16384];
    nnu_status st = nnu_net_read_metadata(luaL_checkstring(L, 1), buf, sizeof buf);
    if (st) return l_fail(L, st);
    lua_pushstring(L, buf);
    return 1;
}

static int l_net_load(lua_State *L) {
    nnu_status st = nnu_net_load(l_net_check(L, 1), luaL_checkstring(L, 2));
    if (st) return l_fail(L, st);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_net_load_pretrained(lua_State *L) {
    int n = 0;
    nnu_status st = nnu_net_load_pretrained(l_net_check(L, 1), luaL_checkstring(L, 2),
                                            luaL_optstring(L, 3, ".seg_layers."), &n);
    if (st) return l_fail(L, st);
    lua_pushinteger(L, n);
    return 1;
}

static int l_net_info(lua_State *L) {
    nnu_net *net = l_net_check(L, 1);
    const nnu_net_config *c = nnu_net_get_config(net);
    const nnu_backend *be = nnu_net_backend(net);
    int blk = be->act_block == 16 ? 16 : 1;   /* as nnu_net_create decides */
    for (int s = 0; s < c->n_stages; s++)
        if (c->features[s] % 16) blk = 1;
    lua_createtable(L, 0, 10);
    int cuda = !strncmp(be->name, "cuda", 4);
    lua_pushstring(L, cuda ? "cuda" : "cpu");
    lua_setfield(L, -2, "device");
    const char *pn = strrchr(be->name, ':');   /* "cpu", "cpu:bf16", "cuda:0", "cuda:0:tf32" */
    lua_pushstring(L, pn && strcmp(pn + 1, "0") ? pn + 1 : "fp32");
    lua_setfield(L, -2, "precision");
    lua_pushstring(L, be->name);
    lua_setfield(L, -2, "backend");
    lua_pushinteger(L, (lua_Integer)nnu_net_num_params(net));
    lua_setfield(L, -2, "num_params");
    lua_pushinteger(L, nnu_net_num_tensors(net));
    lua_setfield(L, -2, "num_tensors");
    lua_pushinteger(L, (lua_Integer)nnu_net_arena_bytes(net));
    lua_setfield(L, -2, "arena_bytes");
    lua_pushinteger(L, blk);
    lua_setfield(L, -2, "layout_block");
    lua_pushinteger(L, c->dim);
    lua_setfield(L, -2, "dim");
    lua_pushinteger(L, c->num_classes);
    lua_setfield(L, -2, "num_classes");
    lua_pushstring(L, c->arch == NNU_NET_RESENC ? "ResidualEncoderUNet" : "PlainConvUNet");
    lua_setfield(L, -2, "arch");
    lua_pushstring(L, c->loss_terms == NNU_LOSS_CE_ONLY     ? "ce"
                      : c->loss_terms == NNU_LOSS_DICE_ONLY ? "dice"
                                                            : "dice+ce");
    lua_setfield(L, -2, "loss_terms");
    lua_pushnumber(L, c->loss_smooth_set ? c->loss_smooth : 1e-5f);
    lua_setfield(L, -2, "loss_smooth");
    const nnu_loss_scaler *ls = nnu_net_loss_scaler(net);
    if (ls->enabled) {   /* absent when off */
        lua_pushnumber(L, ls->scale);
        lua_setfield(L, -2, "loss_scale");
        lua_pushinteger(L, (lua_Integer)ls->skipped);
        lua_setfield(L, -2, "skipped_steps");
    }
    return 1;
}

static int l_net_tostring(lua_State *L) {
    nnu_net **box = (nnu_net **)luaL_checkudata(L, 1, L_NET_MT);
    if (!*box) { lua_pushliteral(L, "nnunet.Net(released)"); return 1; }
    const nnu_net_config *c = nnu_net_get_config(*box);
    lua_pushfstring(L, "nnunet.Net(PlainConvUNet %dd, %d stages, %d params)", c->dim, c->n_stages,
                    (int)nnu_net_num_params(*box));
    return 1;
}

static int l_net_poly_lr(lua_State *L) {
    lua_pushnumber(L, nnu_poly_lr((float)luaL_checknumber(L, 1), (int)luaL_checkinteger(L, 2),
                                  (int)luaL_checkinteger(L, 3)));
    return 1;
}

static int l_net_set_threads(lua_State *L) {
    nnu_backend_cpu_set_threads((int)luaL_checkinteger(L, 1));
    return 0;
}

/* the sliding window's C predictor (l_infer.h): ctx = the nnu_net of the box */
static void *net_ctx_of(void *udata) { return *(nnu_net **)udata; }
static const l_infer_predictor net_predictor = {nnu_net_slide_predict, net_ctx_of};

static const luaL_Reg net_methods[] = {
    {"forward", l_net_forward},       {"loss", l_net_loss},
    {"backward", l_net_backward},     {"zero_grad", l_net_zero_grad},
    {"sgd_step", l_net_sgd_step},     {"train_step", l_net_train_step},
    {"parameters", l_net_parameters}, {"gradients", l_net_gradients},
    {"flat", l_net_flat},             {"set_flat", l_net_set_flat},
    {"sgd_steps", l_net_sgd_steps},   {"save", l_net_save},
    {"load", l_net_load},             {"info", l_net_info},
    {"load_pretrained", l_net_load_pretrained},
    {"val_step", l_net_val_step},     {"get_state", l_net_get_state},
    {"set_state", l_net_set_state},   {"layout", l_net_layout},
    {"close", l_net_gc},              {NULL, NULL}};

static const luaL_Reg net_meta[] = {
    {"__gc", l_net_gc}, {"__close", l_net_gc}, {"__tostring", l_net_tostring},
    {"__index", NULL},  {NULL, NULL}};

static const luaL_Reg net_functions[] = {
    {"build", l_net_build}, {"poly_lr", l_net_poly_lr}, {"set_threads", l_net_set_threads},
    {"metadata", l_net_metadata}, {"cuda_available", l_net_cuda_available},
    {NULL, NULL}};

int luaopen_nnunet_net(lua_State *L) {
    if (luaL_newmetatable(L, L_NET_MT)) {
        luaL_setfuncs(L, net_meta, 0);
        luaL_newlib(L, net_methods);
        lua_setfield(L, -2, "__index");
        lua_pushlightuserdata(L, (void *)&net_predictor);
        lua_setfield(L, -2, "__nnu_slide_predict");
    }
    lua_pop(L, 1);
    luaL_newlib(L, net_functions);
    return 1;
}
