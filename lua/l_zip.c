/* l_zip.c: zip archives for the model-sharing recipes (export_model_to_zip,
 * install_pretrained_model_from_zip), over libzip, as the module "nnunet.zip".
 * No core counterpart: like l_fs.c this is host-side file plumbing; the core's own
 * zip reading (PyTorch checkpoints) lives in core/.
 *
 *   zip.list(path)                   -> { {name, size, compressed_size, method, is_dir, mode}, ... }
 *                                       in archive order | nil, msg
 *   zip.read(path, name)             -> contents (string) | nil, msg
 *   zip.extract(path, dest [, {overwrite = false}]) -> n_written, n_identical | nil, msg
 *   zip.name_problem(name)           -> nil when name is a safe relative archive path, else the reason
 *   zip.writer(path)                 -> writer | nil, msg
 *       w:add_file(name, src [, "deflate"|"store"]) -> true | nil, msg   (src read at commit)
 *       w:add_data(name, bytes [, "deflate"|"store"]) -> true | nil, msg
 *       w:count() -> entries added;  w:commit() -> true | nil, msg;  w:abort()
 *
 * Names: every entry name is checked before anything is written or extracted: no
 * absolute path, no '..' or '.' component, no empty component, no backslash, no
 * symbolic-link entry, no encryption. A zip with one bad name is refused as a whole,
 * with a message naming the archive and the entry.
 *
 * extract: the whole archive is checked first (names, then every entry whose target
 * already exists: a file with the same bytes is left as it is, a different one is a
 * conflict). With conflicts and without overwrite nothing is written and the message
 * names the files (at most 5). Each file is written to a temporary name beside its target and
 * renamed, so a target is either the old or the new complete file. Entry CRCs are
 * verified by libzip while reading (a damaged entry is an error naming it).
 *
 * writer: entries go to "<path>.tmp" (libzip itself assembles the archive in a
 * temporary file at commit); commit renames it to path. An uncommitted writer (error,
 * abort, garbage collection, <close>) leaves neither file. Files are stored as
 * regular files with mode 0644 (what `unzip` and Python's zipfile restore). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <zip.h>

#define L_ZIPWRITER_MT "nnunet.ZipWriter"
#define ZIP_CONFLICTS_SHOWN 5

/* ---- names ---- */

/* NULL when name is a safe relative path inside an archive, else the reason. A
 * trailing '/' marks a folder entry. */
static const char *zip_name_problem(const char *name) {
    size_t n = strlen(name);
    if (n == 0) return "empty name";
    if (name[0] == '/') return "absolute path";
    if (strchr(name, '\\')) return "backslash in the name";
    const char *p = name;
    while (*p) {
        const char *e = strchr(p, '/');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == 0) return "empty path component";
        if (len == 1 && p[0] == '.') return "'.' path component";
        if (len == 2 && p[0] == '.' && p[1] == '.') return "'..' path component (outside the destination)";
        if (!e) break;
        p = e + 1;                       /* after a trailing '/', *p == 0 ends the loop */
    }
    return NULL;
}

static int l_zip_name_problem(lua_State *L) {
    const char *why = zip_name_problem(luaL_checkstring(L, 1));
    if (why) lua_pushstring(L, why);
    else lua_pushnil(L);
    return 1;
}

/* ---- reading ---- */

static int push_open_error(lua_State *L, const char *path, int code) {
    zip_error_t e;
    zip_error_init_with_code(&e, code);
    lua_pushnil(L);
    if (code == ZIP_ER_NOENT) lua_pushfstring(L, "'%s': no such file", path);
    else if (code == ZIP_ER_NOZIP || code == ZIP_ER_INCONS)
        lua_pushfstring(L, "'%s' is not a valid zip archive (%s)", path, zip_error_strerror(&e));
    else lua_pushfstring(L, "cannot open zip archive '%s': %s", path, zip_error_strerror(&e));
    zip_error_fini(&e);
    return 2;
}

static zip_t *open_archive(const char *path, int *code) {
    return zip_open(path, ZIP_RDONLY | ZIP_CHECKCONS, code);
}

static const char *method_name(zip_uint16_t m) {
    switch (m) {
    case ZIP_CM_STORE: return "store";
    case ZIP_CM_DEFLATE: return "deflate";
    default: return "other";
    }
}

/* Unix mode of entry i (0 when the archive was not written on Unix or has none). */
static unsigned entry_mode(zip_t *za, zip_uint64_t i) {
    zip_uint8_t opsys;
    zip_uint32_t attr;
    if (zip_file_get_external_attributes(za, i, 0, &opsys, &attr) != 0) return 0;
    return opsys == ZIP_OPSYS_UNIX ? (unsigned)(attr >> 16) : 0;
}

static int l_zip_list(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    int code = 0;
    zip_t *za = open_archive(path, &code);
    if (!za) return push_open_error(L, path, code);
    zip_int64_t n = zip_get_num_entries(za, 0);
    lua_createtable(L, n > 0 ? (int)n : 0, 0);
    for (zip_int64_t i = 0; i < n; i++) {
        zip_stat_t st;
        if (zip_stat_index(za, (zip_uint64_t)i, 0, &st) != 0) {
            lua_pushnil(L);
            lua_pushfstring(L, "'%s': entry %d: %s", path, (int)i + 1, zip_strerror(za));
            zip_discard(za);
            return 2;
        }
        lua_createtable(L, 0, 6);
        lua_pushstring(L, st.name);
        lua_setfield(L, -2, "name");
        lua_pushinteger(L, (lua_Integer)st.size);
        lua_setfield(L, -2, "size");
        lua_pushinteger(L, (lua_Integer)st.comp_size);
        lua_setfield(L, -2, "compressed_size");
        lua_pushstring(L, method_name(st.comp_method));
        lua_setfield(L, -2, "method");
        size_t len = strlen(st.name);
        lua_pushboolean(L, len > 0 && st.name[len - 1] == '/');
        lua_setfield(L, -2, "is_dir");
        unsigned mode = entry_mode(za, (zip_uint64_t)i);
        if (mode) {
            lua_pushinteger(L, mode);
            lua_setfield(L, -2, "mode");
        }
        lua_rawseti(L, -2, i + 1);
    }
    zip_discard(za);
    return 1;
}

static int l_zip_read(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    const char *name = luaL_checkstring(L, 2);
    int code = 0;
    zip_t *za = open_archive(path, &code);
    if (!za) return push_open_error(L, path, code);
    zip_int64_t idx = zip_name_locate(za, name, 0);
    zip_stat_t st;
    if (idx < 0 || zip_stat_index(za, (zip_uint64_t)idx, 0, &st) != 0) {
        zip_discard(za);
        lua_pushnil(L);
        lua_pushfstring(L, "'%s' has no entry '%s'", path, name);
        return 2;
    }
    zip_file_t *zf = zip_fopen_index(za, (zip_uint64_t)idx, 0);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    const char *err = NULL;
    if (!zf) err = zip_strerror(za);
    char buf[1 << 16];
    zip_int64_t got = 0;
    while (zf && (got = zip_fread(zf, buf, sizeof buf)) > 0) luaL_addlstring(&b, buf, (size_t)got);
    if (zf && got < 0) err = zip_file_strerror(zf);
    if (err) {
        lua_pushnil(L);
        lua_pushfstring(L, "'%s': cannot read entry '%s': %s", path, name, err);
        if (zf) zip_fclose(zf);
        zip_discard(za);
        return 2;
    }
    zip_fclose(zf);
    zip_discard(za);
    luaL_pushresult(&b);
    return 1;
}

/* ---- extraction ---- */

/* mkdir -p of the folder part of path (everything before the last '/'). */
static int mkdir_parents(char *path) {
    for (char *p = path + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        int r = mkdir(path, 0777);
        int e = errno;
        *p = '/';
        if (r != 0 && e != EEXIST) { errno = e; return -1; }
    }
    return 0;
}

/* 1 when the file at target has exactly the bytes of entry i, 0 when it differs,
 * -1 on a read error of the archive (message in *err). */
static int same_contents(zip_t *za, zip_uint64_t i, zip_uint64_t size, const char *target, const char **err) {
    struct stat s;
    if (stat(target, &s) != 0 || (zip_uint64_t)s.st_size != size) return 0;
    FILE *f = fopen(target, "rb");
    if (!f) return 0;
    zip_file_t *zf = zip_fopen_index(za, i, 0);
    if (!zf) { fclose(f); *err = zip_strerror(za); return -1; }
    static char a[1 << 16], b[1 << 16];
    int same = 1;
    zip_int64_t got;
    while (same && (got = zip_fread(zf, a, sizeof a)) > 0) {
        if (fread(b, 1, (size_t)got, f) != (size_t)got || memcmp(a, b, (size_t)got) != 0) same = 0;
    }
    if (same && got < 0) { *err = zip_file_strerror(zf); same = -1; }
    zip_fclose(zf);
    fclose(f);
    return same;
}

/* Writes entry i to target via a temporary file in the same folder. NULL or the
 * error text (static or libzip's). */
static const char *write_entry(zip_t *za, zip_uint64_t i, const char *target, char *tmp, size_t tmplen) {
    snprintf(tmp, tmplen, "%s.partXXXXXX", target);
    int fd = mkstemp(tmp);
    if (fd < 0) return strerror(errno);
    mode_t um = umask(0);
    umask(um);
    fchmod(fd, 0666 & ~um);              /* mkstemp makes 0600; a plain file is 0666 & ~umask */
    zip_file_t *zf = zip_fopen_index(za, i, 0);
    const char *err = NULL;
    if (!zf) err = zip_strerror(za);
    static char buf[1 << 16];
    zip_int64_t got = 0;
    while (!err && (got = zip_fread(zf, buf, sizeof buf)) > 0) {
        for (zip_int64_t off = 0; off < got && !err;) {
            ssize_t w = write(fd, buf + off, (size_t)(got - off));
            if (w < 0) err = strerror(errno);
            else off += w;
        }
    }
    if (!err && got < 0) err = zip_file_strerror(zf);
    if (zf) zip_fclose(zf);
    if (close(fd) != 0 && !err) err = strerror(errno);
    if (!err && rename(tmp, target) != 0) err = strerror(errno);
    if (err) unlink(tmp);
    return err;
}

static int extract_fail(lua_State *L, zip_t *za, char *target, char *tmp) {
    /* the message is on the stack top */
    zip_discard(za);
    free(target);
    free(tmp);
    lua_pushnil(L);
    lua_insert(L, -2);
    return 2;
}

static int l_zip_extract(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    size_t dlen;
    const char *dest = luaL_checklstring(L, 2, &dlen);
    int overwrite = 0;
    if (lua_istable(L, 3)) {
        lua_getfield(L, 3, "overwrite");
        overwrite = lua_toboolean(L, -1);
        lua_pop(L, 1);
    }
    while (dlen > 1 && dest[dlen - 1] == '/') dlen--;
    int code = 0;
    zip_t *za = open_archive(path, &code);
    if (!za) return push_open_error(L, path, code);
    zip_int64_t n = zip_get_num_entries(za, 0);
    /* action per entry: 0 skip (identical), 1 write file, 2 make folder */
    unsigned char *action = calloc(n > 0 ? (size_t)n : 1, 1);
    size_t cap = dlen + 4096 + 32;
    char *target = malloc(cap), *tmp = malloc(cap);
    if (!action || !target || !tmp) {
        free(action); free(target); free(tmp); zip_discard(za);
        return luaL_error(L, "zip.extract: out of memory");
    }
    lua_newtable(L);                     /* conflicting names, below the message slots */
    int conflicts = lua_gettop(L), n_conflicts = 0;
    /* 1. names, entry kinds, existing targets */
    for (zip_int64_t i = 0; i < n; i++) {
        zip_stat_t st;
        const char *err = NULL;
        if (zip_stat_index(za, (zip_uint64_t)i, 0, &st) != 0) {
            lua_pushfstring(L, "'%s': entry %d: %s", path, (int)i + 1, zip_strerror(za));
            free(action);
            return extract_fail(L, za, target, tmp);
        }
        const char *why = zip_name_problem(st.name);
        if (why) {
            lua_pushfstring(L, "'%s' is refused: entry '%s' has an unsafe name (%s); nothing was extracted",
                            path, st.name, why);
            free(action);
            return extract_fail(L, za, target, tmp);
        }
        unsigned mode = entry_mode(za, (zip_uint64_t)i);
        if (mode && S_ISLNK(mode)) {
            lua_pushfstring(L, "'%s' is refused: entry '%s' is a symbolic link; nothing was extracted", path, st.name);
            free(action);
            return extract_fail(L, za, target, tmp);
        }
        if ((st.valid & ZIP_STAT_ENCRYPTION_METHOD) && st.encryption_method != ZIP_EM_NONE) {
            lua_pushfstring(L, "'%s': entry '%s' is encrypted (not supported); nothing was extracted", path, st.name);
            free(action);
            return extract_fail(L, za, target, tmp);
        }
        size_t nlen = strlen(st.name);
        if (dlen + 1 + nlen + 32 > cap) {
            cap = dlen + 1 + nlen + 32;
            char *t1 = realloc(target, cap), *t2 = t1 ? realloc(tmp, cap) : NULL;
            if (t1) target = t1;
            if (t2) tmp = t2;
            if (!t1 || !t2) { free(action); free(target); free(tmp); zip_discard(za);
                              return luaL_error(L, "zip.extract: out of memory"); }
        }
        snprintf(target, cap, "%.*s/%s", (int)dlen, dest, st.name);
        if (st.name[nlen - 1] == '/') { action[i] = 2; continue; }
        struct stat s;
        if (stat(target, &s) != 0) { action[i] = 1; continue; }
        int same = S_ISDIR(s.st_mode) ? 0 : same_contents(za, (zip_uint64_t)i, st.size, target, &err);
        if (same < 0) {
            lua_pushfstring(L, "'%s': cannot read entry '%s': %s", path, st.name, err);
            free(action);
            return extract_fail(L, za, target, tmp);
        }
        if (same) { action[i] = 0; continue; }
        if (S_ISDIR(s.st_mode) || !overwrite) {
            lua_pushfstring(L, "'%s'%s", target, S_ISDIR(s.st_mode) ? " (a folder)" : "");
            lua_rawseti(L, conflicts, ++n_conflicts);
            if (S_ISDIR(s.st_mode) && overwrite) {
                lua_pushfstring(L, "'%s': entry '%s' would replace the folder '%s'; nothing was extracted",
                                path, st.name, target);
                free(action);
                return extract_fail(L, za, target, tmp);
            }
        }
        action[i] = 1;
    }
    if (n_conflicts > 0) {
        luaL_Buffer b;
        luaL_buffinit(L, &b);
        lua_pushfstring(L, "extracting '%s' would overwrite %d existing file(s) with different contents: ", path,
                        n_conflicts);
        luaL_addvalue(&b);
        for (int k = 1; k <= n_conflicts && k <= ZIP_CONFLICTS_SHOWN; k++) {
            if (k > 1) luaL_addstring(&b, ", ");
            lua_rawgeti(L, conflicts, k);
            luaL_addvalue(&b);
        }
        if (n_conflicts > ZIP_CONFLICTS_SHOWN) luaL_addstring(&b, ", ...");
        luaL_addstring(&b, ". Nothing was extracted.");
        luaL_pushresult(&b);
        free(action);
        return extract_fail(L, za, target, tmp);
    }
    /* 2. write */
    lua_Integer written = 0, identical = 0;
    for (zip_int64_t i = 0; i < n; i++) {
        const char *name = zip_get_name(za, (zip_uint64_t)i, 0);
        snprintf(target, cap, "%.*s/%s", (int)dlen, dest, name);
        if (action[i] == 0) { identical++; continue; }
        if (mkdir_parents(target) != 0) {
            lua_pushfstring(L, "cannot create the folders of '%s': %s", target, strerror(errno));
            free(action);
            return extract_fail(L, za, target, tmp);
        }
        if (action[i] == 2) continue;
        const char *err = write_entry(za, (zip_uint64_t)i, target, tmp, cap);
        if (err) {
            lua_pushfstring(L, "'%s': cannot extract entry '%s' to '%s': %s", path, name, target, err);
            free(action);
            return extract_fail(L, za, target, tmp);
        }
        written++;
    }
    free(action);
    free(target);
    free(tmp);
    zip_discard(za);
    lua_pushinteger(L, written);
    lua_pushinteger(L, identical);
    return 2;
}

/* ---- writing ---- */

typedef struct zip_writer {
    zip_t *za;          /* NULL once committed or aborted */
    char  *path;        /* final archive */
    char  *tmp;         /* path .. ".tmp", what libzip writes */
    int    count;
} zip_writer;

static zip_writer *writer_check(lua_State *L) {
    zip_writer *w = (zip_writer *)luaL_checkudata(L, 1, L_ZIPWRITER_MT);
    luaL_argcheck(L, w->za != NULL, 1, "zip writer is committed or aborted");
    return w;
}

/* discards the archive (nothing is written) and frees the names; idempotent, never raises */
static int l_zipwriter_gc(lua_State *L) {
    zip_writer *w = (zip_writer *)luaL_checkudata(L, 1, L_ZIPWRITER_MT);
    if (w->za) { zip_discard(w->za); w->za = NULL; }
    if (w->tmp) unlink(w->tmp);          /* libzip writes it only at commit; a leftover is ours */
    free(w->path);
    free(w->tmp);
    w->path = w->tmp = NULL;
    return 0;
}

static int l_zip_writer(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    zip_writer *w = (zip_writer *)lua_newuserdatauv(L, sizeof *w, 0);
    memset(w, 0, sizeof *w);
    luaL_setmetatable(L, L_ZIPWRITER_MT);
    size_t n = strlen(path);
    w->path = strdup(path);
    w->tmp = malloc(n + 5);
    if (!w->path || !w->tmp) return luaL_error(L, "zip.writer: out of memory");
    snprintf(w->tmp, n + 5, "%s.tmp", path);
    int code = 0;
    w->za = zip_open(w->tmp, ZIP_CREATE | ZIP_TRUNCATE, &code);
    if (!w->za) {
        zip_error_t e;
        zip_error_init_with_code(&e, code);
        lua_pushnil(L);
        lua_pushfstring(L, "cannot create zip archive '%s': %s", path, zip_error_strerror(&e));
        zip_error_fini(&e);
        return 2;
    }
    return 1;
}

static zip_int32_t check_method(lua_State *L, int arg) {
    static const char *const names[] = {"deflate", "store", NULL};
    return luaL_checkoption(L, arg, "deflate", names) == 0 ? ZIP_CM_DEFLATE : ZIP_CM_STORE;
}

/* adds src under name; on failure frees src and pushes nil, msg */
static int writer_add(lua_State *L, zip_writer *w, const char *name, zip_source_t *src, zip_int32_t method) {
    zip_int64_t idx = zip_file_add(w->za, name, src, ZIP_FL_ENC_UTF_8);
    if (idx < 0) {
        zip_source_free(src);
        lua_pushnil(L);
        if (zip_error_code_zip(zip_get_error(w->za)) == ZIP_ER_EXISTS)
            lua_pushfstring(L, "zip '%s': entry '%s' is added twice", w->path, name);
        else lua_pushfstring(L, "zip '%s': cannot add '%s': %s", w->path, name, zip_strerror(w->za));
        return 2;
    }
    if (zip_set_file_compression(w->za, (zip_uint64_t)idx, method, 0) != 0 ||
        zip_file_set_external_attributes(w->za, (zip_uint64_t)idx, 0, ZIP_OPSYS_UNIX,
                                         (zip_uint32_t)(S_IFREG | 0644) << 16) != 0) {
        lua_pushnil(L);
        lua_pushfstring(L, "zip '%s': entry '%s': %s", w->path, name, zip_strerror(w->za));
        return 2;
    }
    w->count++;
    lua_pushboolean(L, 1);
    return 1;
}

static int name_refused(lua_State *L, zip_writer *w, const char *name) {
    const char *why = zip_name_problem(name);
    if (!why) return 0;
    lua_pushnil(L);
    lua_pushfstring(L, "zip '%s': entry name '%s' refused (%s)", w->path, name, why);
    return 2;
}

static int l_zipwriter_add_file(lua_State *L) {
    zip_writer *w = writer_check(L);
    const char *name = luaL_checkstring(L, 2);
    const char *src = luaL_checkstring(L, 3);
    zip_int32_t method = check_method(L, 4);
    if (name_refused(L, w, name)) return 2;
    struct stat s;
    if (stat(src, &s) != 0 || !S_ISREG(s.st_mode) || access(src, R_OK) != 0) {
        lua_pushnil(L);
        lua_pushfstring(L, "zip '%s': cannot add '%s': '%s' is not a readable file", w->path, name, src);
        return 2;
    }
    zip_source_t *zs = zip_source_file(w->za, src, 0, 0);
    if (!zs) {
        lua_pushnil(L);
        lua_pushfstring(L, "zip '%s': cannot read '%s': %s", w->path, src, zip_strerror(w->za));
        return 2;
    }
    return writer_add(L, w, name, zs, method);
}

static int l_zipwriter_add_data(lua_State *L) {
    zip_writer *w = writer_check(L);
    const char *name = luaL_checkstring(L, 2);
    size_t len;
    const char *data = luaL_checklstring(L, 3, &len);
    zip_int32_t method = check_method(L, 4);
    if (name_refused(L, w, name)) return 2;
    void *copy = malloc(len ? len : 1);   /* libzip frees it (freep = 1) */
    if (!copy) return luaL_error(L, "zip add_data: out of memory");
    memcpy(copy, data, len);
    zip_source_t *zs = zip_source_buffer(w->za, copy, len, 1);
    if (!zs) { free(copy); return luaL_error(L, "zip add_data: %s", zip_strerror(w->za)); }
    return writer_add(L, w, name, zs, method);
}

static int l_zipwriter_count(lua_State *L) {
    zip_writer *w = (zip_writer *)luaL_checkudata(L, 1, L_ZIPWRITER_MT);
    lua_pushinteger(L, w->count);
    return 1;
}

/* An archive without entries: libzip writes no file for it, so the 22-byte end of
 * central directory record is written by hand. */
static int write_empty_zip(const char *path) {
    static const unsigned char eocd[22] = {0x50, 0x4b, 0x05, 0x06};
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    int ok = fwrite(eocd, 1, sizeof eocd, f) == sizeof eocd;
    return (fclose(f) == 0 && ok) ? 0 : -1;
}

static int l_zipwriter_commit(lua_State *L) {
    zip_writer *w = writer_check(L);
    int failed;
    if (w->count == 0) {
        zip_discard(w->za);
        w->za = NULL;
        failed = write_empty_zip(w->tmp) != 0;
        if (failed) lua_pushfstring(L, "cannot write zip archive '%s': %s", w->path, strerror(errno));
    } else {
        failed = zip_close(w->za) != 0;
        if (failed) {
            lua_pushfstring(L, "cannot write zip archive '%s': %s", w->path, zip_strerror(w->za));
            zip_discard(w->za);
        }
        w->za = NULL;
    }
    if (!failed && rename(w->tmp, w->path) != 0) {
        lua_pushfstring(L, "cannot rename '%s' to '%s': %s", w->tmp, w->path, strerror(errno));
        failed = 1;
    }
    if (failed) {
        unlink(w->tmp);
        lua_pushnil(L);
        lua_insert(L, -2);
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

static const luaL_Reg writer_methods[] = {
    {"add_file", l_zipwriter_add_file}, {"add_data", l_zipwriter_add_data}, {"count", l_zipwriter_count},
    {"commit", l_zipwriter_commit},     {"abort", l_zipwriter_gc},          {NULL, NULL}};

static const luaL_Reg writer_meta[] = {{"__gc", l_zipwriter_gc}, {"__close", l_zipwriter_gc}, {NULL, NULL}};

static const luaL_Reg zip_functions[] = {
    {"list", l_zip_list},       {"read", l_zip_read},     {"extract", l_zip_extract},
    {"name_problem", l_zip_name_problem}, {"writer", l_zip_writer}, {NULL, NULL}};

int luaopen_nnunet_zip(lua_State *L) {
    luaL_newmetatable(L, L_ZIPWRITER_MT);
    luaL_setfuncs(L, writer_meta, 0);
    luaL_newlib(L, writer_methods);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
    luaL_newlib(L, zip_functions);
    return 1;
}
