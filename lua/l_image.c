/* l_image.c: binds core/nnu_image.h as the module "nnunet.image" (STYLE R2, R15):
 * every image format the program reads and writes (NIfTI, MetaImage, NRRD, PNG, TIFF),
 * chosen by the file's ending, seen through the reference's reader classes.
 *
 *   image.read(path [, opts])           -> tensor, info      | nil, msg, code
 *       opts: a dtype name ("f32": convert), or {dtype =, reader =, seg = true}
 *       reader: "SimpleITKIO", "NibabelIO", "NaturalImage2DIO", "Tiff3DIO" (the plans'
 *       image_reader_writer; nil: by the file's ending); seg: the file is a label
 *       (Tiff3DIO names its spacing sidecar differently)
 *   image.read_header(path [, opts])    -> info              | nil, msg, code
 *   image.write(path, t, ref [, opts])  -> true              | nil, msg, code
 *   image.scan(t [, max_values])        -> {nan, inf, min, max, values}
 *   image.scan_files(paths [, max_values [, n_threads [, label [, ropts]]]]) -> list, one per
 *        path: {info = <info>, scan = <scan's table>} or {error = msg}; the files are read
 *        and scanned by n_threads workers (nnu_parallel; default all CPUs), one volume
 *        in memory per worker, every file even after failures (verify_dataset -np);
 *        label: a progress bar on stderr; ropts: {reader =, seg =} as for read
 *   image.format_of(path)               -> "NIfTI" | "MetaImage" | "NRRD" | "PNG" | "TIFF" | nil
 *   image.reader_supports(reader, path) -> bool (the class reads files with this ending)
 *
 * info is a plain, JSON-serialisable table:
 *   { format, ndim, shape = {z,y,x} or {c,z,y,x}, dtype = "f32", scaled, spatial_dims = 2|3,
 *     spacing = {z,y,x}, spacing_itk = {x,y,z}, origin = {x,y,z}, direction = {9, row-major},
 *     geometry_from = "sform"|"qform"|"none" and header = { raw qform/sform fields } (NIfTI) }
 * ref (write) is such an info table, a path (its header is read), or nil; with
 * no `header` field a NIfTI's geometry is rebuilt from spacing_itk/origin/direction.
 * opts = { compression = 1..9, segmentation = true, dtype = "u8" }.
 * Files that cannot be read or written are expected failures (nil, msg, code);
 * wrong argument types raise. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "l_util.h"
#include "nnu_image.h"
#include "nnu_parallel.h"
#include "nnu_progress.h"

/* ---- info struct <-> table ---- */

static void set_num_array(lua_State *L, const char *key, const double *v, int n) {
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        lua_pushnumber(L, v[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, key);
}

static void set_num(lua_State *L, const char *key, double v) { lua_pushnumber(L, v); lua_setfield(L, -2, key); }
static void set_int(lua_State *L, const char *key, lua_Integer v) { lua_pushinteger(L, v); lua_setfield(L, -2, key); }
static void set_str(lua_State *L, const char *key, const char *v) { lua_pushstring(L, v); lua_setfield(L, -2, key); }

static void push_header(lua_State *L, const nnu_nifti_header *h) {
    lua_createtable(L, 0, 20);
    set_int(L, "version", h->version);
    set_int(L, "datatype", h->datatype);
    lua_createtable(L, 8, 0);
    for (int i = 0; i < 8; i++) { lua_pushinteger(L, (lua_Integer)h->dim[i]); lua_rawseti(L, -2, i + 1); }
    lua_setfield(L, -2, "dim");
    set_num_array(L, "pixdim", h->pixdim, 8);
    set_int(L, "qform_code", h->qform_code);
    set_int(L, "sform_code", h->sform_code);
    double q[6] = {h->quatern_b, h->quatern_c, h->quatern_d, h->qoffset_x, h->qoffset_y, h->qoffset_z};
    set_num_array(L, "quatern", q, 3);        /* b, c, d */
    set_num_array(L, "qoffset", q + 3, 3);    /* x, y, z */
    set_num_array(L, "srow", &h->srow[0][0], 12);
    set_int(L, "xyzt_units", h->xyzt_units);
    set_int(L, "intent_code", h->intent_code);
    double ip[3] = {h->intent_p1, h->intent_p2, h->intent_p3};
    set_num_array(L, "intent_p", ip, 3);
    set_str(L, "intent_name", h->intent_name);
    set_str(L, "descrip", h->descrip);
    set_str(L, "aux_file", h->aux_file);
}

static void push_info(lua_State *L, const nnu_image_info *info) {
    lua_createtable(L, 0, 14);
    set_str(L, "format", nnu_image_format_name(info->format));
    set_int(L, "spatial_dims", info->spatial_dims);
    set_int(L, "ndim", info->ndim);
    l_pushshape(L, info->ndim, info->shape);
    lua_setfield(L, -2, "shape");
    set_str(L, "dtype", nnu_dtype_name(info->dtype));
    lua_pushboolean(L, info->scaled);
    lua_setfield(L, -2, "scaled");
    set_num_array(L, "spacing", info->spacing, 3);
    set_num_array(L, "spacing_itk", info->spacing_itk, 3);
    set_num_array(L, "origin", info->origin, 3);
    set_num_array(L, "direction", info->direction, 9);
    if (info->hdr.version == 0) return;             /* not a NIfTI file */
    set_str(L, "geometry_from", info->used_sform ? "sform"
                                : (info->hdr.qform_code > 0 || info->hdr.sform_code > 0) ? "qform" : "none");
    push_header(L, &info->hdr);
    lua_setfield(L, -2, "header");
}

/* reads n numbers of the array field `key` of the table at idx; raises when malformed */
static void get_num_array(lua_State *L, int idx, const char *key, double *out, int n, int required) {
    int t = lua_getfield(L, idx, key);
    if (t == LUA_TNIL && !required) { lua_pop(L, 1); return; }
    if (t != LUA_TTABLE || luaL_len(L, -1) != n)
        luaL_error(L, "image.write: reference field '%s' must be an array of %d numbers", key, n);
    for (int i = 0; i < n; i++) {
        lua_geti(L, -1, i + 1);
        int ok;
        out[i] = lua_tonumberx(L, -1, &ok);
        if (!ok) luaL_error(L, "image.write: reference field '%s'[%d] is not a number", key, i + 1);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

static lua_Integer get_int(lua_State *L, int idx, const char *key) {
    lua_getfield(L, idx, key);
    int ok;
    lua_Integer v = lua_tointegerx(L, -1, &ok);
    lua_pop(L, 1);
    if (!ok) luaL_error(L, "image.write: reference header field '%s' must be an integer", key);
    return v;
}

static void get_str(lua_State *L, int idx, const char *key, char *out, size_t cap) {
    lua_getfield(L, idx, key);
    const char *s = lua_tostring(L, -1);
    out[0] = '\0';
    if (s) { strncpy(out, s, cap - 1); out[cap - 1] = '\0'; }
    lua_pop(L, 1);
}

/* info table at idx -> struct (geometry and, when present, the raw header); shared
 * with the other bindings through l_util.h */
void l_image_check_info(lua_State *L, int idx, nnu_image_info *info) {
    memset(info, 0, sizeof *info);
    idx = lua_absindex(L, idx);
    lua_getfield(L, idx, "spatial_dims");
    info->spatial_dims = (int)luaL_optinteger(L, -1, 3);
    lua_pop(L, 1);
    if (info->spatial_dims != 2 && info->spatial_dims != 3) luaL_error(L, "image.write: reference spatial_dims must be 2 or 3");
    if (lua_getfield(L, idx, "header") == LUA_TTABLE) {
        int h = lua_absindex(L, -1);
        nnu_nifti_header *r = &info->hdr;
        r->version = (int)get_int(L, h, "version");
        if (r->version != 1 && r->version != 2) luaL_error(L, "image.write: reference header version must be 1 or 2");
        r->qform_code = (int)get_int(L, h, "qform_code");
        r->sform_code = (int)get_int(L, h, "sform_code");
        r->xyzt_units = (int)get_int(L, h, "xyzt_units");
        lua_getfield(L, h, "intent_code");
        r->intent_code = (int)lua_tointeger(L, -1);
        lua_pop(L, 1);
        double q[3], o[3], ip[3] = {0, 0, 0};
        get_num_array(L, h, "pixdim", r->pixdim, 8, 1);
        get_num_array(L, h, "quatern", q, 3, 1);
        get_num_array(L, h, "qoffset", o, 3, 1);
        get_num_array(L, h, "srow", &r->srow[0][0], 12, 1);
        get_num_array(L, h, "intent_p", ip, 3, 0);
        r->quatern_b = q[0]; r->quatern_c = q[1]; r->quatern_d = q[2];
        r->qoffset_x = o[0]; r->qoffset_y = o[1]; r->qoffset_z = o[2];
        r->intent_p1 = ip[0]; r->intent_p2 = ip[1]; r->intent_p3 = ip[2];
        get_str(L, h, "intent_name", r->intent_name, sizeof r->intent_name);
        get_str(L, h, "descrip", r->descrip, sizeof r->descrip);
        get_str(L, h, "aux_file", r->aux_file, sizeof r->aux_file);
        lua_pop(L, 1);
        get_num_array(L, idx, "spacing_itk", info->spacing_itk, 3, 0);
        get_num_array(L, idx, "origin", info->origin, 3, 0);
        get_num_array(L, idx, "direction", info->direction, 9, 0);
        get_num_array(L, idx, "spacing", info->spacing, 3, 0);
    } else {
        lua_pop(L, 1);
        get_num_array(L, idx, "spacing_itk", info->spacing_itk, 3, 1);
        get_num_array(L, idx, "origin", info->origin, 3, 1);
        get_num_array(L, idx, "direction", info->direction, 9, 1);
        /* nnU-Net's array-order spacing: Tiff3DIO writes it beside the image */
        for (int a = 0; a < 3; a++) info->spacing[a] = fabs(info->spacing_itk[2 - a]);
        get_num_array(L, idx, "spacing", info->spacing, 3, 0);
    }
}

/* ---- functions ---- */

int l_check_image_reader(lua_State *L, int idx) {
    if (lua_isnoneornil(L, idx)) return NNU_IMAGE_READER_AUTO;
    const char *name = luaL_checkstring(L, idx);
    nnu_image_reader r = nnu_image_reader_parse(name);
    if (r == NNU_IMAGE_READER_AUTO)
        return luaL_error(L, "unknown image reader/writer '%s' (this program has SimpleITKIO, NibabelIO, "
                             "NaturalImage2DIO and Tiff3DIO)", name);
    return (int)r;
}

void l_check_image_read_opts(lua_State *L, int idx, nnu_image_read_opts *o) {
    o->reader = NNU_IMAGE_READER_AUTO;
    o->is_seg = 0;
    if (!lua_istable(L, idx)) return;
    lua_getfield(L, idx, "reader");
    o->reader = (nnu_image_reader)l_check_image_reader(L, -1);
    lua_getfield(L, idx, "seg");
    o->is_seg = lua_toboolean(L, -1);
    lua_pop(L, 2);
}

static nnu_image_read_opts check_read_opts(lua_State *L, int idx) {
    nnu_image_read_opts o;
    l_check_image_read_opts(L, idx, &o);
    return o;
}

static int l_image_read(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    int want_dtype = 0;
    nnu_dtype dt = NNU_DTYPE_F32;
    if (lua_type(L, 2) == LUA_TSTRING) {
        want_dtype = 1;
        dt = l_optdtype(L, 2, NNU_DTYPE_F32);
    } else if (lua_istable(L, 2)) {
        lua_getfield(L, 2, "dtype");
        if (!lua_isnil(L, -1)) { want_dtype = 1; dt = l_optdtype(L, -1, NNU_DTYPE_F32); }
        lua_pop(L, 1);
    } else {
        luaL_argcheck(L, lua_isnoneornil(L, 2), 2, "dtype name or options table expected");
    }
    nnu_image_read_opts ro = check_read_opts(L, 2);
    nnu_tensor **box = l_tensor_newbox(L);
    nnu_image_info info;
    nnu_status st = nnu_image_read(path, &ro, &info, box);
    if (st) return l_fail(L, st);
    if (want_dtype && (*box)->dtype != dt) {
        nnu_tensor *c = NULL;
        st = nnu_tensor_to_dtype(*box, dt, &c);
        if (st) return l_raise(L, st);          /* out of memory: not an expected failure */
        nnu_tensor_release(*box);
        *box = c;
        info.dtype = dt;
    }
    push_info(L, &info);
    return 2;
}

static int l_image_read_header(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    nnu_image_read_opts ro = check_read_opts(L, 2);
    nnu_image_info info;
    nnu_status st = nnu_image_read_header(path, &ro, &info);
    if (st) return l_fail(L, st);
    push_info(L, &info);
    return 1;
}

static int l_image_write(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    nnu_tensor *t = l_tensor_check(L, 2);
    nnu_image_info ref, *refp = NULL;
    if (lua_type(L, 3) == LUA_TSTRING) {
        nnu_status st = nnu_image_read_header(lua_tostring(L, 3), NULL, &ref);
        if (st) return l_fail(L, st);
        refp = &ref;
    } else if (lua_type(L, 3) == LUA_TTABLE) {
        l_image_check_info(L, 3, &ref);
        refp = &ref;
    } else {
        luaL_argcheck(L, lua_isnoneornil(L, 3), 3, "reference info table, path or nil expected");
    }
    nnu_image_write_opts o;
    memset(&o, 0, sizeof o);
    if (!lua_isnoneornil(L, 4)) {
        luaL_checktype(L, 4, LUA_TTABLE);
        lua_getfield(L, 4, "compression");
        o.compression = (int)luaL_optinteger(L, -1, 0);
        lua_getfield(L, 4, "segmentation");
        o.segmentation = lua_toboolean(L, -1);
        lua_getfield(L, 4, "dtype");
        if (!lua_isnil(L, -1)) { o.has_dtype = 1; o.dtype = l_optdtype(L, -1, NNU_DTYPE_F32); }
        lua_pop(L, 3);
    }
    nnu_status st = nnu_image_write(path, t, refp, &o);
    if (st == NNU_STATUS_ERR_IO || st == NNU_STATUS_ERR_FORMAT || st == NNU_STATUS_ERR_UNSUPPORTED)
        return l_fail(L, st);
    if (st) return l_raise(L, st);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_image_format_of(lua_State *L) {
    nnu_image_format f = nnu_image_format_of(luaL_checkstring(L, 1));
    if (f == NNU_IMAGE_FORMAT_UNKNOWN) lua_pushnil(L);
    else lua_pushstring(L, nnu_image_format_name(f));
    return 1;
}

static int l_image_reader_supports(lua_State *L) {
    nnu_image_reader r = (nnu_image_reader)l_check_image_reader(L, 1);
    lua_pushboolean(L, nnu_image_reader_supports(r, luaL_checkstring(L, 2)));
    return 1;
}

static int l_image_scan(lua_State *L) {
    nnu_tensor *t = l_tensor_check(L, 1);
    lua_Integer maxv = luaL_optinteger(L, 2, 256);
    luaL_argcheck(L, maxv >= 0 && maxv <= 65536, 2, "max_values must be in 0..65536");
    double *vals = lua_newuserdatauv(L, (size_t)(maxv ? maxv : 1) * sizeof(double), 0);  /* GC-owned scratch */
    nnu_image_scan_result r;
    nnu_status st = nnu_image_scan(t, vals, (int)maxv, &r);
    if (st) return l_raise(L, st);
    lua_createtable(L, 0, 5);
    set_int(L, "nan", (lua_Integer)r.n_nan);
    set_int(L, "inf", (lua_Integer)r.n_inf);
    set_num(L, "min", r.min);
    set_num(L, "max", r.max);
    if (r.n_values >= 0) {
        set_num_array(L, "values", vals, r.n_values);
    }
    return 1;
}

/* ---- many files, in parallel ---- */

typedef struct scan_item {
    nnu_image_info info;
    nnu_image_scan_result res;
    double *values;                 /* max_values slots */
    char error[512];                /* set when the file failed */
} scan_item;

typedef struct scan_job {
    const char **paths;
    scan_item *items;
    int max_values;
    nnu_image_read_opts ro;
} scan_job;

static nnu_status scan_one(int64_t i, int worker, void *ctx) {
    (void)worker;
    const scan_job *j = ctx;
    scan_item *it = &j->items[i];
    nnu_tensor *t = NULL;
    nnu_status st = nnu_image_read(j->paths[i], &j->ro, &it->info, &t);
    if (st == NNU_STATUS_OK) st = nnu_image_scan(t, it->values, j->max_values, &it->res);
    nnu_tensor_release(t);
    /* the message is thread-local: keep it with the item (keep_going runs the rest) */
    if (st) snprintf(it->error, sizeof it->error, "%s", nnu_last_error());
    return st;
}

static int l_image_scan_files(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    const int64_t n = (int64_t)luaL_len(L, 1);
    const lua_Integer maxv = luaL_optinteger(L, 2, 256);
    luaL_argcheck(L, maxv >= 0 && maxv <= 65536, 2, "max_values must be in 0..65536");
    const int threads = (int)luaL_optinteger(L, 3, 0);
    const char *label = luaL_optstring(L, 4, NULL);
    nnu_image_read_opts ro = check_read_opts(L, 5);
    /* GC-owned scratch: paths (anchored in table 1), items, value slots, statuses */
    const char **paths = lua_newuserdatauv(L, sizeof(char *) * (size_t)(n + 1), 0);
    scan_item *items = lua_newuserdatauv(L, sizeof *items * (size_t)(n + 1), 0);
    double *vals = lua_newuserdatauv(L, sizeof(double) * (size_t)((n ? n : 1) * (maxv ? maxv : 1)), 0);
    nnu_status *status = lua_newuserdatauv(L, sizeof *status * (size_t)(n + 1), 0);
    for (int64_t i = 0; i < n; i++) {
        lua_geti(L, 1, i + 1);
        luaL_argcheck(L, lua_type(L, -1) == LUA_TSTRING, 1, "paths must be strings");
        paths[i] = lua_tostring(L, -1);
        lua_pop(L, 1);
        memset(&items[i], 0, sizeof items[i]);
        items[i].values = vals + i * (maxv ? maxv : 1);
    }
    scan_job job = {paths, items, (int)maxv, ro};
    nnu_progress *bar = NULL;
    if (label && n > 0 && nnu_progress_new(label, n, &bar)) bar = NULL;   /* no bar is no error */
    nnu_parallel_opts po = {threads, 1, status, bar};
    nnu_status st = nnu_parallel_for_opts(n, scan_one, &job, &po);
    if (bar) nnu_progress_finish(bar);
    nnu_progress_free(bar);
    if (st == NNU_STATUS_ERR_INTERRUPTED) return l_raise(L, st);   /* Ctrl-C: stop the recipe */
    lua_createtable(L, (int)n, 0);
    for (int64_t i = 0; i < n; i++) {
        lua_createtable(L, 0, 2);
        if (status[i] != NNU_STATUS_OK) {
            set_str(L, "error", items[i].error[0] ? items[i].error : nnu_status_name(status[i]));
        } else {
            push_info(L, &items[i].info);
            lua_setfield(L, -2, "info");
            const nnu_image_scan_result *r = &items[i].res;
            lua_createtable(L, 0, 5);
            set_int(L, "nan", (lua_Integer)r->n_nan);
            set_int(L, "inf", (lua_Integer)r->n_inf);
            set_num(L, "min", r->min);
            set_num(L, "max", r->max);
            if (r->n_values >= 0) set_num_array(L, "values", items[i].values, r->n_values);
            lua_setfield(L, -2, "scan");
        }
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

static const luaL_Reg image_functions[] = {
    {"read", l_image_read}, {"read_header", l_image_read_header}, {"write", l_image_write},
    {"scan", l_image_scan}, {"scan_files", l_image_scan_files}, {"format_of", l_image_format_of},
    {"reader_supports", l_image_reader_supports}, {NULL, NULL}};

int luaopen_nnunet_image(lua_State *L) {
    luaL_newlib(L, image_functions);
    return 1;
}
