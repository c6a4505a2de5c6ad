/* l_fs.c: the file-system functions recipes need beyond Lua's io/os:
 * listing (sorted by bytes, as Python's sorted() on str), directory tests,
 * mkdir -p, atomic rename, realpath, file size. Expected failures return
 * nil, message (R15). No core counterpart: this is host-side plumbing. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

static int push_errno(lua_State *L, const char *what, const char *path) {
    int e = errno;
    lua_pushnil(L);
    lua_pushfstring(L, "%s '%s': %s", what, path, strerror(e));
    return 2;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);   /* byte order, not locale */
}

/* listdir(path) -> sorted array of names (without . and ..) */
static int l_fs_listdir(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    DIR *d = opendir(path);
    if (!d) return push_errno(L, "cannot list", path);
    size_t n = 0, cap = 64;
    char **names = malloc(cap * sizeof *names);
    struct dirent *e;
    while (names && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        if (n == cap) {
            char **nn = realloc(names, (cap *= 2) * sizeof *names);
            if (!nn) break;
            names = nn;
        }
        names[n] = strdup(e->d_name);
        if (names[n]) n++;
    }
    closedir(d);
    if (!names) return luaL_error(L, "listdir: out of memory");
    qsort(names, n, sizeof *names, cmp_str);
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        lua_pushstring(L, names[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
        free(names[i]);
    }
    free(names);
    return 1;
}

static int l_fs_isdir(lua_State *L) {
    struct stat s;
    lua_pushboolean(L, stat(luaL_checkstring(L, 1), &s) == 0 && S_ISDIR(s.st_mode));
    return 1;
}

static int l_fs_isfile(lua_State *L) {
    struct stat s;
    lua_pushboolean(L, stat(luaL_checkstring(L, 1), &s) == 0 && S_ISREG(s.st_mode));
    return 1;
}

static int l_fs_exists(lua_State *L) {
    struct stat s;
    lua_pushboolean(L, stat(luaL_checkstring(L, 1), &s) == 0);
    return 1;
}

static int l_fs_size(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    struct stat s;
    if (stat(path, &s) != 0) return push_errno(L, "cannot stat", path);
    lua_pushinteger(L, (lua_Integer)s.st_size);
    return 1;
}

/* mkdir -p */
static int l_fs_mkdir(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    char buf[PATH_MAX];
    size_t len = strlen(path);
    luaL_argcheck(L, len > 0 && len < sizeof buf, 1, "bad path length");
    memcpy(buf, path, len + 1);
    for (char *p = buf + 1; ; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (mkdir(buf, 0777) != 0 && errno != EEXIST) return push_errno(L, "cannot create directory", buf);
            *p = c;
            if (c == '\0') break;
        }
    }
    struct stat s;
    if (stat(path, &s) != 0 || !S_ISDIR(s.st_mode)) {
        errno = ENOTDIR;
        return push_errno(L, "cannot create directory", path);
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* rename(from, to): atomic on one file system (used for crash-safe writes) */
static int l_fs_rename(lua_State *L) {
    const char *from = luaL_checkstring(L, 1), *to = luaL_checkstring(L, 2);
    if (rename(from, to) != 0) return push_errno(L, "cannot rename to", to);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_fs_remove(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    if (remove(path) != 0) return push_errno(L, "cannot remove", path);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_fs_realpath(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    char buf[PATH_MAX];
    if (!realpath(path, buf)) return push_errno(L, "cannot resolve", path);
    lua_pushstring(L, buf);
    return 1;
}

/* copy(from, to): byte copy through to.tmp + rename, so `to` is never half-written */
static int l_fs_copy(lua_State *L) {
    const char *from = luaL_checkstring(L, 1), *to = luaL_checkstring(L, 2);
    char tmp[PATH_MAX];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", to) >= sizeof tmp) {
        errno = ENAMETOOLONG;
        return push_errno(L, "cannot copy to", to);
    }
    FILE *in = fopen(from, "rb");
    if (!in) return push_errno(L, "cannot read", from);
    FILE *out = fopen(tmp, "wb");
    if (!out) { fclose(in); return push_errno(L, "cannot write", tmp); }
    char buf[1 << 16];
    size_t n;
    int ok = 1;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        if (fwrite(buf, 1, n, out) != n) { ok = 0; break; }
    if (ferror(in)) ok = 0;
    fclose(in);
    if (fclose(out) != 0) ok = 0;
    if (!ok || rename(tmp, to) != 0) {
        int e = errno;
        remove(tmp);
        errno = e;
        return push_errno(L, "cannot copy to", to);
    }
    lua_pushboolean(L, 1);
    return 1;
}

static const luaL_Reg fs_functions[] = {
    {"copy", l_fs_copy},
    {"listdir", l_fs_listdir}, {"isdir", l_fs_isdir},   {"isfile", l_fs_isfile},
    {"exists", l_fs_exists},   {"size", l_fs_size},     {"mkdir", l_fs_mkdir},
    {"rename", l_fs_rename},   {"remove", l_fs_remove}, {"realpath", l_fs_realpath},
    {NULL, NULL}};

int luaopen_nnunet_fs(lua_State *L) {
    luaL_newlib(L, fs_functions);
    return 1;
}
