/* l_overlay.c: binds core/nnu_overlay.h as the module "nnunet.overlay" (the PNGs of
 * plot_overlay_pngs). Slices seen from Lua are 1-based.
 *
 *   overlay.case(image, seg [, intensity]) -> rgb (Y, X, 3) u8, slice (1-based)
 *                                             image, seg: (Z, Y, X) tensors of equal shape
 *   overlay.select_slice(seg)              -> slice (1-based)
 *   overlay.render(image2d, seg2d [, intensity]) -> rgb
 *   overlay.write_png(path, rgb)           -> true | nil, msg, code
 *   overlay.read_png(path)                 -> rgb | nil, msg, code
 *   overlay.cases(jobs, {intensity = 0.6, reader = nil, threads = 0, label = nil}) -> true | nil, msg
 *        jobs = { {image = path, label = path, channel = 0, output = png} (raw files) or
 *                 {store = CASE.nnu, channel = 0, output = png} (preprocessed), ... }: every
 *        PNG drawn by `threads` workers (nnu_overlay_cases); label: a progress bar */
#include <string.h>

#include "l_util.h"
#include "nnu_overlay.h"
#include "nnu_progress.h"

static int l_overlay_case(lua_State *L) {
    nnu_tensor *image = l_tensor_check(L, 1), *seg = l_tensor_check(L, 2);
    double intensity = luaL_optnumber(L, 3, 0.6);
    nnu_tensor **box = l_tensor_newbox(L);
    int64_t slice = 0;
    nnu_status st = nnu_overlay_case(image, seg, intensity, &slice, box);
    if (st) return l_raise(L, st);
    lua_pushinteger(L, (lua_Integer)slice + 1);
    return 2;
}

static int l_overlay_select_slice(lua_State *L) {
    int64_t slice = 0;
    nnu_status st = nnu_overlay_select_slice(l_tensor_check(L, 1), &slice);
    if (st) return l_raise(L, st);
    lua_pushinteger(L, (lua_Integer)slice + 1);
    return 1;
}

static int l_overlay_render(lua_State *L) {
    nnu_tensor *image = l_tensor_check(L, 1), *seg = l_tensor_check(L, 2);
    double intensity = luaL_optnumber(L, 3, 0.6);
    nnu_tensor **box = l_tensor_newbox(L);
    nnu_status st = nnu_overlay_render(image, seg, intensity, box);
    if (st) return l_raise(L, st);
    return 1;
}

static int l_overlay_write_png(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    nnu_status st = nnu_png_write_rgb(path, l_tensor_check(L, 2));
    if (st == NNU_STATUS_ERR_SHAPE || st == NNU_STATUS_ERR_ARG) return l_raise(L, st);
    if (st) return l_fail(L, st);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_overlay_read_png(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    nnu_tensor **box = l_tensor_newbox(L);
    nnu_status st = nnu_png_read_rgb(path, box);
    if (st) return l_fail(L, st);
    return 1;
}

/* a string field of the table at idx, anchored there (NULL when absent) */
static const char *opt_str_field(lua_State *L, int idx, const char *key) {
    lua_getfield(L, idx, key);
    const char *s = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    lua_pop(L, 1);                          /* the table keeps the string alive */
    return s;
}

static int l_overlay_cases(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    const int64_t n = (int64_t)luaL_len(L, 1);
    double intensity = 0.6;
    int reader = 0, threads = 0;
    const char *label = NULL;
    if (lua_istable(L, 2)) {
        intensity = l_opt_num_field(L, 2, "intensity", 0.6);
        threads = (int)l_opt_int_field(L, 2, "threads", 0);
        lua_getfield(L, 2, "reader");
        reader = l_check_image_reader(L, -1);
        lua_pop(L, 1);
        label = opt_str_field(L, 2, "label");
    }
    nnu_overlay_job *jobs = lua_newuserdatauv(L, sizeof *jobs * (size_t)(n + 1), 0);   /* GC-owned */
    for (int64_t i = 0; i < n; i++) {
        lua_geti(L, 1, i + 1);
        luaL_argcheck(L, lua_istable(L, -1), 1, "jobs must be tables");
        int t = lua_gettop(L);
        memset(&jobs[i], 0, sizeof jobs[i]);
        jobs[i].image = opt_str_field(L, t, "image");     /* strings anchored in the jobs table */
        jobs[i].label = opt_str_field(L, t, "label");
        jobs[i].store = opt_str_field(L, t, "store");
        jobs[i].output = opt_str_field(L, t, "output");
        jobs[i].channel = (int)l_opt_int_field(L, t, "channel", 0);
        luaL_argcheck(L, jobs[i].output && (jobs[i].image ? jobs[i].label != NULL : jobs[i].store != NULL), 1,
                      "a job needs output and image + label, or store");
        lua_pop(L, 1);
    }
    nnu_progress *bar = NULL;
    if (label && n > 0 && nnu_progress_new(label, n, &bar)) bar = NULL;   /* no bar is no error */
    nnu_status st = nnu_overlay_cases(jobs, n, intensity, reader, threads, bar);
    if (bar) nnu_progress_finish(bar);
    nnu_progress_free(bar);
    if (st == NNU_STATUS_ERR_INTERRUPTED || st == NNU_STATUS_ERR_OOM) return l_raise(L, st);
    if (st) return l_fail(L, st);
    lua_pushboolean(L, 1);
    return 1;
}

static const luaL_Reg overlay_functions[] = {
    {"case", l_overlay_case},           {"cases", l_overlay_cases},         {"select_slice", l_overlay_select_slice},
    {"render", l_overlay_render},       {"write_png", l_overlay_write_png}, {"read_png", l_overlay_read_png},
    {NULL, NULL}};

int luaopen_nnunet_overlay(lua_State *L) {
    luaL_newlib(L, overlay_functions);
    return 1;
}
