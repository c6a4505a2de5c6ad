/* l_torch_ckpt.c: module "nnunet.torch_ckpt", the thin binding of core/nnu_torch_ckpt.h:
 * PyTorch checkpoints of the reference nnU-Net (torch.save zips), read and written.
 *
 *   torch_ckpt.is_torch(path) -> true | false | nil, msg, code
 *       true when the file starts with the zip magic (a torch.save checkpoint; our own
 *       safetensors checkpoints give false); nil, msg when it cannot be opened
 *   torch_ckpt.info(path) -> t | nil, msg, code
 *       t = {trainer_name = "nnUNetTrainer", configuration = "3d_fullres",
 *            current_epoch = 1000, mirroring_axes = {0, 1, 2} (0-based, as in the file),
 *            keys = {"encoder.stages.0.0.convs.0.conv.weight", ...}}
 *       (fields the checkpoint lacks are nil; keys = the state dict's keys as stored)
 *   torch_ckpt.export(net, dst, info) -> true | nil, msg, code
 *       writes the weights of net (an nnunet.net Net, any device) to dst as a reference
 *       nnU-Net checkpoint (the dict nnUNetTrainer.save_checkpoint writes; the reference's
 *       nnUNetv2_predict and torch.load read it), atomically. info:
 *         configuration = "3d_fullres"            (required)
 *         plans_json    = JSON text of plans.json (required; -> init_args.plans)
 *         dataset_json  = JSON text of dataset.json (required)
 *         trainer_name  = "nnUNetTrainer"         (default)
 *         fold          = 0 | "all"               (default 0)
 *         mirroring_axes = {0, 1, 2} | nil        (0-based; nil writes None)
 *         current_epoch = n (default 0)           best_ema = x | nil (None)
 *       The Net is taken rather than a checkpoint path so the caller decides how it is
 *       built and which fold's weights it holds (predictor.load_model + fold.activate()).
 * Net:load(path) (nnunet.net) reads torch checkpoints too (nnu_net_load tells them apart).
 * Expected failures (I/O, a damaged or foreign file) return nil, message, status name. */
#include <math.h>
#include <string.h>

#include "l_util.h"
#include "nnu_torch_ckpt.h"

#define L_NET_MT "nnunet.Net"   /* lua/l_net.c's userdata: a box holding an nnu_net * */

static int l_is_torch(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    int z = nnu_torch_is_zip(path);
    if (z < 0) return l_fail(L, NNU_FAIL(NNU_STATUS_ERR_IO, "cannot open '%s'", path));
    lua_pushboolean(L, z);
    return 1;
}

static void push_strings(lua_State *L, char **s, int n) {
    lua_createtable(L, n, 0);
    for (int k = 0; k < n; k++) {
        lua_pushstring(L, s[k]);
        lua_rawseti(L, -2, k + 1);
    }
}

static int l_info(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    /* boxed so a Lua memory error while building the table cannot leak the keys (R12) */
    nnu_torch_ckpt_info *info = lua_newuserdatauv(L, sizeof *info, 0);
    memset(info, 0, sizeof *info);
    const int box = lua_gettop(L);
    nnu_status st = nnu_torch_ckpt_info_read(path, info);
    if (st) return l_fail(L, st);
    lua_createtable(L, 0, 5);
    if (info->trainer_name[0]) { lua_pushstring(L, info->trainer_name); lua_setfield(L, -2, "trainer_name"); }
    if (info->configuration[0]) { lua_pushstring(L, info->configuration); lua_setfield(L, -2, "configuration"); }
    if (info->current_epoch >= 0) { lua_pushinteger(L, info->current_epoch); lua_setfield(L, -2, "current_epoch"); }
    if (info->n_mirror >= 0) {
        lua_createtable(L, info->n_mirror, 0);
        for (int k = 0; k < info->n_mirror; k++) {
            lua_pushinteger(L, info->mirror_axes[k]);
            lua_rawseti(L, -2, k + 1);
        }
        lua_setfield(L, -2, "mirroring_axes");
    }
    push_strings(L, info->keys, info->nkeys);
    lua_setfield(L, -2, "keys");
    nnu_torch_ckpt_info_free(info);
    lua_remove(L, box);
    return 1;
}

static const char *req_string(lua_State *L, int t, const char *k) {
    lua_getfield(L, t, k);
    const char *s = lua_tostring(L, -1);
    if (!s || lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "export: info.%s must be a string", k);
    lua_pop(L, 1);   /* the string stays alive: it is in the table */
    return s;
}

static int l_export(lua_State *L) {
    nnu_net **box = (nnu_net **)luaL_checkudata(L, 1, L_NET_MT);
    luaL_argcheck(L, *box != NULL, 1, "network was released");
    const char *dst = luaL_checkstring(L, 2);
    luaL_checktype(L, 3, LUA_TTABLE);
    nnu_torch_ckpt_meta m = {.fold = 0, .n_mirror = -1, .best_ema = NAN};
    m.configuration = req_string(L, 3, "configuration");
    m.plans_json = req_string(L, 3, "plans_json");
    m.dataset_json = req_string(L, 3, "dataset_json");
    lua_getfield(L, 3, "trainer_name");
    m.trainer_name = lua_isnil(L, -1) ? NULL : luaL_checkstring(L, -1);
    lua_pop(L, 1);
    lua_getfield(L, 3, "fold");
    if (lua_type(L, -1) == LUA_TSTRING && !strcmp(lua_tostring(L, -1), "all")) m.fold = -1;
    else if (!lua_isnil(L, -1)) {
        int isint;
        lua_Integer f = lua_tointegerx(L, -1, &isint);
        luaL_argcheck(L, isint && f >= 0 && f < (1 << 30), 3, "info.fold must be an integer >= 0 or \"all\"");
        m.fold = (int)f;
    }
    lua_pop(L, 1);
    int axes[NNU_TORCH_MAX_DIMS];
    lua_getfield(L, 3, "mirroring_axes");
    if (!lua_isnil(L, -1)) {
        luaL_argcheck(L, lua_istable(L, -1), 3, "info.mirroring_axes must be a list of 0-based axes");
        m.n_mirror = (int)luaL_len(L, -1);
        luaL_argcheck(L, m.n_mirror <= NNU_TORCH_MAX_DIMS, 3, "info.mirroring_axes: too many axes");
        for (int k = 0; k < m.n_mirror; k++) {
            lua_geti(L, -1, k + 1);
            int isint;
            lua_Integer a = lua_tointegerx(L, -1, &isint);
            luaL_argcheck(L, isint && a >= 0 && a < 3, 3, "info.mirroring_axes: axes are 0, 1 or 2");
            axes[k] = (int)a;
            lua_pop(L, 1);
        }
        m.mirror_axes = axes;
    }
    lua_pop(L, 1);
    m.current_epoch = l_opt_int_field(L, 3, "current_epoch", 0);
    m.best_ema = l_opt_num_field(L, 3, "best_ema", NAN);
    nnu_status st = nnu_torch_ckpt_save(*box, dst, &m);
    if (st) return l_fail(L, st);
    lua_pushboolean(L, 1);
    return 1;
}

int luaopen_nnunet_torch_ckpt(lua_State *L) {
    static const luaL_Reg fns[] = {
        {"is_torch", l_is_torch}, {"info", l_info}, {"export", l_export}, {NULL, NULL}};
    luaL_newlib(L, fns);
    return 1;
}
