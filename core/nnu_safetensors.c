/* nnu_safetensors.c: writer and validating reader of safetensors files (layout,
 * CRC and atomicity in nnu_safetensors.h).
 *
 * Writing builds the header in memory with the CRC digits as "00000000", streams
 * length, header and data through stdio while the CRC-32 runs over them, patches the
 * digits, syncs and renames. Reading parses the header (nnu_json), checks the file
 * size against the tensors' extent, then streams the file once for the CRC, then
 * validates every entry; so a bit flip anywhere is reported as a CRC mismatch and not
 * as whatever malformed field it produced. Tensor data is read on demand. */
#define _FILE_OFFSET_BITS 64
#include "nnu_safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "nnu_json.h"

uint32_t nnu_crc32(uint32_t crc, const void *data, size_t n) {
    const unsigned char *p = data;
    while (n > 0) {                          /* crc32_z takes z_size_t; chunk anyway */
        size_t take = n > (1u << 30) ? (1u << 30) : n;
        crc = (uint32_t)crc32_z(crc, p, take);
        p += take;
        n -= take;
    }
    return crc;
}

static const struct { const char *name; size_t size; nnu_dtype dt; } DTYPES[] = {
    {"F32", 4, NNU_DTYPE_F32}, {"F64", 8, NNU_DTYPE_F64}, {"F16", 2, NNU_DTYPE_F16},
    {"U8", 1, NNU_DTYPE_U8},   {"I8", 1, NNU_DTYPE_I8},   {"I16", 2, NNU_DTYPE_I16},
    {"U16", 2, NNU_DTYPE_U16}, {"I32", 4, NNU_DTYPE_I32}, {"I64", 8, NNU_DTYPE_I64},
    /* spec types without an nnu_dtype (readable, never written here) */
    {"BOOL", 1, NNU_DTYPE_COUNT}, {"F8_E5M2", 1, NNU_DTYPE_COUNT}, {"F8_E4M3", 1, NNU_DTYPE_COUNT},
    {"BF16", 2, NNU_DTYPE_COUNT}, {"U32", 4, NNU_DTYPE_COUNT},     {"U64", 8, NNU_DTYPE_COUNT},
};
#define NDTYPES (int)(sizeof DTYPES / sizeof DTYPES[0])

const char *nnu_st_dtype_name(nnu_dtype dt) {
    for (int i = 0; i < NDTYPES; i++) if (DTYPES[i].dt == dt && dt != NNU_DTYPE_COUNT) return DTYPES[i].name;
    return NULL;
}

size_t nnu_st_dtype_size(const char *name) {
    for (int i = 0; i < NDTYPES; i++) if (!strcmp(DTYPES[i].name, name)) return DTYPES[i].size;
    return 0;
}

/* ------------------------------------------------------------------ header text */

typedef struct sbuf { char *s; size_t len, cap; int oom; } sbuf;

static void sb_put(sbuf *b, const char *p, size_t n) {
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = (b->len + n + 1) * 2;
        char *s = realloc(b->s, cap);
        if (!s) { b->oom = 1; return; }
        b->s = s;
        b->cap = cap;
    }
    memcpy(b->s + b->len, p, n);
    b->len += n;
    b->s[b->len] = 0;
}

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...) {
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp) { b->oom = 1; return; }
    sb_put(b, tmp, (size_t)n);
}

/* s as a JSON string literal: quote, backslash and control characters escaped, the
 * rest (UTF-8) as is */
static void sb_json_string(sbuf *b, const char *s) {
    sb_put(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') { sb_put(b, "\\", 1); sb_put(b, s, 1); }
        else if (c < 0x20) sb_printf(b, "\\u%04x", c);
        else sb_put(b, s, 1);
    }
    sb_put(b, "\"", 1);
}

static int valid_utf8(const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned c = *p;
        int k = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (!k) return 0;
        unsigned cp = k == 1 ? c : k == 2 ? (c & 0x1F) : k == 3 ? (c & 0x0F) : (c & 0x07);
        for (int j = 1; j < k; j++) {
            if ((p[j] & 0xC0) != 0x80) return 0;
            cp = (cp << 6) | (p[j] & 0x3F);
        }
        static const unsigned min[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min[k] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
        p += k;
    }
    return 1;
}

static uint64_t numel_of(const nnu_st_tensor *t) {
    uint64_t n = 1;
    for (int d = 0; d < t->ndim; d++) n *= (uint64_t)t->shape[d];
    return n;
}

/* ------------------------------------------------------------------ writing */

static nnu_status fsync_dir_of(const char *path) {
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (!slash) strcpy(dir, ".");
    else if (slash == path) strcpy(dir, "/");
    else snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return NNU_FAIL(NNU_STATUS_ERR_IO, "cannot open folder '%s': %s", dir, strerror(errno));
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    /* some file systems refuse fsync on folders (EINVAL): nothing more to do there */
    NNU_CHECK(rc == 0 || e == EINVAL, NNU_STATUS_ERR_IO, "cannot sync folder '%s': %s", dir, strerror(e));
    return NNU_STATUS_OK;
}

static nnu_status check_entries(const nnu_st_tensor *t, int nt, const char *const *keys,
                                const char *const *values, int nmeta, const char *crc_key) {
    for (int i = 0; i < nt; i++) {
        NNU_CHECK(t[i].name && t[i].name[0] && strcmp(t[i].name, "__metadata__") && valid_utf8(t[i].name),
                  NNU_STATUS_ERR_ARG, "safetensors: tensor %d has an empty, reserved or non-UTF-8 name", i);
        NNU_CHECK(nnu_st_dtype_size(t[i].dtype) > 0, NNU_STATUS_ERR_ARG,
                  "safetensors: tensor '%s' has unknown dtype '%s'", t[i].name, t[i].dtype);
        NNU_CHECK(t[i].ndim >= 0 && t[i].ndim <= NNU_ST_MAX_DIMS, NNU_STATUS_ERR_ARG,
                  "safetensors: tensor '%s' has %d dimensions", t[i].name, t[i].ndim);
        uint64_t numel = 1;
        for (int d = 0; d < t[i].ndim; d++) {
            NNU_CHECK(t[i].shape[d] >= 0 && (!t[i].shape[d] || numel <= ((uint64_t)1 << 60) / (uint64_t)t[i].shape[d]),
                      NNU_STATUS_ERR_ARG, "safetensors: tensor '%s' has a negative or too large extent", t[i].name);
            numel *= (uint64_t)t[i].shape[d];
        }
        NNU_CHECK(t[i].data || numel_of(&t[i]) == 0, NNU_STATUS_ERR_ARG, "safetensors: tensor '%s' has no data",
                  t[i].name);
        for (int j = 0; j < i; j++)
            NNU_CHECK(strcmp(t[i].name, t[j].name), NNU_STATUS_ERR_ARG, "safetensors: tensor name '%s' twice",
                      t[i].name);
    }
    for (int i = 0; i < nmeta; i++) {
        NNU_CHECK(keys[i] && values[i] && valid_utf8(keys[i]) && valid_utf8(values[i]), NNU_STATUS_ERR_ARG,
                  "safetensors: metadata entry %d is missing or not valid UTF-8", i);
        NNU_CHECK(!crc_key || strcmp(keys[i], crc_key), NNU_STATUS_ERR_ARG,
                  "safetensors: metadata key '%s' is reserved", keys[i]);
        for (int j = 0; j < i; j++)
            NNU_CHECK(strcmp(keys[i], keys[j]), NNU_STATUS_ERR_ARG, "safetensors: metadata key '%s' twice", keys[i]);
    }
    return NNU_STATUS_OK;
}

nnu_status nnu_st_save(const char *path, const nnu_st_tensor *t, int nt, const char *const *keys,
                       const char *const *values, int nmeta, const nnu_st_save_opts *opts) {
    static const nnu_st_save_opts defaults = {0};
    if (!opts) opts = &defaults;
    NNU_CHECK(path && (t || nt == 0) && nt >= 0 && nmeta >= 0, NNU_STATUS_ERR_ARG, "safetensors save: bad arguments");
    NNU_TRY(check_entries(t, nt, keys, values, nmeta, opts->crc_key));

    /* the header; crc_at = offset of the CRC digits in it */
    sbuf b = {0};
    size_t crc_at = 0;
    sb_put(&b, "{", 1);
    if (nmeta > 0 || opts->crc_key) {
        sb_put(&b, "\"__metadata__\":{", 16);
        int first = 1;
        if (opts->crc_key) {
            sb_json_string(&b, opts->crc_key);
            sb_put(&b, ":\"", 2);
            crc_at = b.len;
            sb_put(&b, "00000000\"", 9);
            first = 0;
        }
        for (int i = 0; i < nmeta; i++) {
            if (!first) sb_put(&b, ",", 1);
            first = 0;
            sb_json_string(&b, keys[i]);
            sb_put(&b, ":", 1);
            sb_json_string(&b, values[i]);
        }
        sb_put(&b, "}", 1);
    }
    uint64_t off = 0;
    for (int i = 0; i < nt; i++) {
        if (b.len > 1) sb_put(&b, ",", 1);
        sb_json_string(&b, t[i].name);
        sb_printf(&b, ":{\"dtype\":\"%s\",\"shape\":[", t[i].dtype);
        for (int d = 0; d < t[i].ndim; d++) sb_printf(&b, "%s%lld", d ? "," : "", (long long)t[i].shape[d]);
        uint64_t nb = numel_of(&t[i]) * nnu_st_dtype_size(t[i].dtype);
        sb_printf(&b, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off, (unsigned long long)(off + nb));
        off += nb;
    }
    sb_put(&b, "}", 1);
    while (!b.oom && (8 + b.len) % 8) sb_put(&b, " ", 1);
    if (b.oom) { free(b.s); return NNU_FAIL(NNU_STATUS_ERR_OOM, "safetensors save: header of '%s'", path); }
    if (b.len > NNU_ST_MAX_HEADER) {
        free(b.s);
        return NNU_FAIL(NNU_STATUS_ERR_ARG, "safetensors save: header of %zu bytes is too large", b.len);
    }

    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) {
        free(b.s);
        return NNU_FAIL(NNU_STATUS_ERR_ARG, "path too long: '%s'", path);
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) { free(b.s); return NNU_FAIL(NNU_STATUS_ERR_IO, "cannot create '%s': %s", tmp, strerror(errno)); }
    FILE *f = fdopen(fd, "wb");
    if (!f) { close(fd); unlink(tmp); free(b.s); return NNU_FAIL(NNU_STATUS_ERR_OOM, "fdopen '%s' failed", tmp); }
    int err = 0;
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)b.len >> (8 * i));
    uint32_t crc = nnu_crc32(0, len8, 8);
    crc = nnu_crc32(crc, b.s, b.len);
    if (fwrite(len8, 1, 8, f) != 8 || fwrite(b.s, 1, b.len, f) != b.len) err = errno ? errno : EIO;
    for (int i = 0; i < nt && !err; i++) {
        size_t nb = (size_t)(numel_of(&t[i]) * nnu_st_dtype_size(t[i].dtype));
        if (nb == 0) continue;
        if (fwrite(t[i].data, 1, nb, f) != nb) err = errno ? errno : EIO;
        crc = nnu_crc32(crc, t[i].data, nb);
    }
    if (!err && opts->crc_key) {
        char digits[9];
        snprintf(digits, sizeof digits, "%08x", crc);
        if (fflush(f) != 0 || fseeko(f, (off_t)(8 + crc_at), SEEK_SET) != 0 || fwrite(digits, 1, 8, f) != 8)
            err = errno ? errno : EIO;
    }
    free(b.s);
    if (!err && fflush(f) != 0) err = errno ? errno : EIO;
    if (!err && !opts->no_fsync && fsync(fd) != 0) err = errno;
    if (fclose(f) != 0 && !err) err = errno ? errno : EIO;
    if (err) {
        unlink(tmp);
        return NNU_FAIL(NNU_STATUS_ERR_IO, "cannot write '%s': %s", tmp, strerror(err));
    }
    if (opts->stop_before_rename) return NNU_STATUS_OK;
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return NNU_FAIL(NNU_STATUS_ERR_IO, "cannot rename '%s' to '%s': %s", tmp, path, strerror(e));
    }
    return opts->no_fsync ? NNU_STATUS_OK : fsync_dir_of(path);
}

/* ------------------------------------------------------------------ reading */

void nnu_st_close(nnu_st_file *f) {
    if (!f) return;
    if (f->f) fclose(f->f);
    free(f->path);
    free(f->t);
    free(f->keys);
    free(f->values);
    nnu_json_free(f->tree);
    memset(f, 0, sizeof *f);
}

const char *nnu_st_meta(const nnu_st_file *f, const char *key) {
    for (int i = 0; i < f->nmeta; i++) if (!strcmp(f->keys[i], key)) return f->values[i];
    return NULL;
}

const nnu_st_tensor *nnu_st_find(const nnu_st_file *f, const char *name) {
    for (int i = 0; i < f->n; i++) if (!strcmp(f->t[i].name, name)) return &f->t[i];
    return NULL;
}

nnu_status nnu_st_read(nnu_st_file *f, const nnu_st_tensor *t, void *dst) {
    size_t nb = (size_t)(t->end - t->begin);
    if (nb == 0) return NNU_STATUS_OK;
    if (fseeko(f->f, (off_t)(f->data_start + t->begin), SEEK_SET) != 0 || fread(dst, 1, nb, f->f) != nb)
        return NNU_FAIL(NNU_STATUS_ERR_IO, "%s '%s': cannot read tensor '%s': %s", f->what, f->path, t->name,
                        ferror(f->f) ? strerror(errno) : "short read");
    return NNU_STATUS_OK;
}

static int by_begin(const void *a, const void *b) {
    const nnu_st_tensor *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

#define BAD(...) do { st = NNU_FAIL(NNU_STATUS_ERR_FORMAT, __VA_ARGS__); goto fail; } while (0)

/* offset of the CRC digits in the header: from the parsed tree, else (a damaged
 * header) the first `"key":"` in the text; -1 if absent */
static long crc_position(const char *hdr, size_t n, const nnu_json *tree, const char *key) {
    const nnu_json *v = nnu_json_get(nnu_json_get(tree, "__metadata__"), key);
    if (v) {
        if (v->type == NNU_JSON_STRING && v->pos + 10 <= n && hdr[v->pos + 9] == '"') return (long)v->pos + 1;
        return -1;
    }
    if (tree) return -1;
    char pat[128];
    snprintf(pat, sizeof pat, "\"%s\":\"", key);
    size_t L = strlen(pat);
    for (size_t i = 0; i + L + 9 <= n; i++)
        if (!memcmp(hdr + i, pat, L)) return (long)(i + L);
    return -1;
}

/* one entry of the header into *t; 0 + msg on error */
static int parse_entry(const char *name, const nnu_json *e, nnu_st_tensor *t, char *msg, size_t ml) {
    memset(t, 0, sizeof *t);
    t->name = name;
    const nnu_json *dt = nnu_json_get(e, "dtype"), *sh = nnu_json_get(e, "shape"),
                   *of = nnu_json_get(e, "data_offsets");
    if (!e || e->type != NNU_JSON_OBJECT || !dt || !sh || !of) {
        snprintf(msg, ml, "is not an object with dtype, shape and data_offsets");
        return 0;
    }
    if (dt->type != NNU_JSON_STRING || dt->len >= sizeof t->dtype || !nnu_st_dtype_size(dt->string)) {
        snprintf(msg, ml, "has an unknown dtype");
        return 0;
    }
    strcpy(t->dtype, dt->string);
    if (sh->type != NNU_JSON_ARRAY || sh->n > NNU_ST_MAX_DIMS) {
        snprintf(msg, ml, "has a bad shape (a list of at most %d sizes)", NNU_ST_MAX_DIMS);
        return 0;
    }
    t->ndim = sh->n;
    for (int d = 0; d < sh->n; d++) {
        if (!sh->items[d].is_int || sh->items[d].integer < 0 || sh->items[d].integer > ((int64_t)1 << 48)) {
            snprintf(msg, ml, "has a bad shape entry");
            return 0;
        }
        t->shape[d] = sh->items[d].integer;
    }
    /* the product must not overflow (an empty extent would let a wrapped product of 0 pass) */
    uint64_t numel = 1;
    for (int d = 0; d < t->ndim; d++) {
        if (t->shape[d] && numel > ((uint64_t)1 << 60) / (uint64_t)t->shape[d]) {
            snprintf(msg, ml, "has a shape too large for any file");
            return 0;
        }
        numel *= (uint64_t)t->shape[d];
    }
    if (of->type != NNU_JSON_ARRAY || of->n != 2 || !of->items[0].is_int || !of->items[1].is_int ||
        of->items[0].integer < 0 || of->items[1].integer < of->items[0].integer) {
        snprintf(msg, ml, "has bad data_offsets");
        return 0;
    }
    t->begin = (uint64_t)of->items[0].integer;
    t->end = (uint64_t)of->items[1].integer;
    return 1;
}

nnu_status nnu_st_open(const char *path, const char *what, const char *crc_key, nnu_st_file *out) {
    return nnu_st_open_opt(path, what, crc_key, 0, out);
}

nnu_status nnu_st_open_opt(const char *path, const char *what, const char *crc_key, int crc_optional,
                           nnu_st_file *out) {
    NNU_CHECK(path && out, NNU_STATUS_ERR_ARG, "safetensors open: NULL argument");
    memset(out, 0, sizeof *out);
    out->what = what ? what : "file";
    const char *W = out->what;
    out->f = fopen(path, "rb");
    if (!out->f) return NNU_FAIL(NNU_STATUS_ERR_IO, "cannot open %s '%s': %s", W, path, strerror(errno));
    out->path = strdup(path);
    nnu_status st = NNU_STATUS_OK;
    char *hdr = NULL;
    nnu_json *tree = NULL;
    if (!out->path) { st = NNU_FAIL(NNU_STATUS_ERR_OOM, "out of memory"); goto fail; }
    struct stat sb;
    if (fstat(fileno(out->f), &sb) != 0) BAD("%s '%s': %s", W, path, strerror(errno));
    uint64_t size = out->file_size = (uint64_t)sb.st_size;
    unsigned char len8[8];
    if (size < 8 || fread(len8, 1, 8, out->f) != 8)
        BAD("%s '%s': truncated (%llu bytes, shorter than the 8-byte header length)", W, path,
            (unsigned long long)size);
    uint64_t N = 0;
    for (int i = 0; i < 8; i++) N |= (uint64_t)len8[i] << (8 * i);
    if (N < 2 || N > NNU_ST_MAX_HEADER)
        BAD("%s '%s': not a safetensors file (wrong header: header length %llu)", W, path, (unsigned long long)N);
    if (8 + N > size)
        BAD("%s '%s': truncated (header of %llu bytes, file has %llu bytes)", W, path, (unsigned long long)N,
            (unsigned long long)size);
    out->header_len = N;
    out->data_start = 8 + N;
    hdr = malloc((size_t)N + 1);
    if (!hdr) { st = NNU_FAIL(NNU_STATUS_ERR_OOM, "%s '%s': header of %llu bytes", W, path, (unsigned long long)N); goto fail; }
    if (fread(hdr, 1, (size_t)N, out->f) != N) BAD("%s '%s': read error in the header", W, path);
    hdr[N] = 0;
    if (hdr[0] != '{') BAD("%s '%s': not a safetensors file (wrong header: it does not start with '{')", W, path);

    char perr[200];
    tree = nnu_json_parse(hdr, (size_t)N, perr, sizeof perr);
    if (tree && tree->type != NNU_JSON_OBJECT) { nnu_json_free(tree); tree = NULL; snprintf(perr, sizeof perr, "not an object"); }

    /* the data's extent from the entries that parse, against the file size */
    uint64_t data_len = size - 8 - N, extent = 0;
    for (int i = 0; tree && i < tree->n; i++) {
        const nnu_json *of = nnu_json_get(&tree->items[i], "data_offsets");
        if (of && of->type == NNU_JSON_ARRAY && of->n == 2 && of->items[1].is_int && of->items[1].integer > 0 &&
            (uint64_t)of->items[1].integer > extent)
            extent = (uint64_t)of->items[1].integer;
    }
    if (tree && extent > data_len)
        BAD("%s '%s': truncated (file has %llu bytes, its header says %llu)", W, path, (unsigned long long)size,
            (unsigned long long)(8 + N + extent));
    if (tree && extent < data_len)
        BAD("%s '%s': trailing bytes after the data (file has %llu bytes, its header says %llu)", W, path,
            (unsigned long long)size, (unsigned long long)(8 + N + extent));

    if (crc_key) {
        long at = crc_position(hdr, (size_t)N, tree, crc_key);
        if (at >= 0) {
            char stored[9];
            memcpy(stored, hdr + at, 8);
            stored[8] = 0;
            memcpy(hdr + at, "00000000", 8);
            uint32_t crc = nnu_crc32(nnu_crc32(0, len8, 8), hdr, (size_t)N);
            memcpy(hdr + at, stored, 8);
            unsigned char *chunk = malloc(1 << 16);
            if (!chunk) { st = NNU_FAIL(NNU_STATUS_ERR_OOM, "out of memory"); goto fail; }
            for (uint64_t left = size - 8 - N; left > 0;) {
                size_t take = left > (1u << 16) ? (1u << 16) : (size_t)left;
                if (fread(chunk, 1, take, out->f) != take) { free(chunk); BAD("%s '%s': read error in the data", W, path); }
                crc = nnu_crc32(crc, chunk, take);
                left -= take;
            }
            free(chunk);
            char *endp;
            unsigned long sv = strtoul(stored, &endp, 16);
            if (*endp || (uint32_t)sv != crc)
                BAD("%s '%s': CRC mismatch (stored %s, computed %08x): the file is corrupt", W, path, stored, crc);
        } else if (tree && !crc_optional) {
            BAD("%s '%s': no %s in the header's __metadata__ (not written by nnunet, or damaged)", W, path, crc_key);
        }
    }
    if (!tree) BAD("%s '%s': malformed header (%s)", W, path, perr);

    /* entries */
    int nt = 0;
    const nnu_json *meta = NULL;
    for (int i = 0; i < tree->n; i++) {
        if (!strcmp(tree->keys[i], "__metadata__")) meta = &tree->items[i];
        else nt++;
    }
    out->t = calloc((size_t)(nt ? nt : 1), sizeof *out->t);
    if (!out->t) { st = NNU_FAIL(NNU_STATUS_ERR_OOM, "out of memory"); goto fail; }
    for (int i = 0; i < tree->n; i++) {
        if (&tree->items[i] == meta) continue;
        char msg[120];
        nnu_st_tensor *t = &out->t[out->n];
        if (!parse_entry(tree->keys[i], &tree->items[i], t, msg, sizeof msg))
            BAD("%s '%s': tensor '%s' %s", W, path, tree->keys[i], msg);
        out->n++;
    }
    if (meta) {
        if (meta->type != NNU_JSON_OBJECT) BAD("%s '%s': __metadata__ is not an object", W, path);
        out->keys = calloc((size_t)meta->n + 1, sizeof *out->keys);
        out->values = calloc((size_t)meta->n + 1, sizeof *out->values);
        if (!out->keys || !out->values) { st = NNU_FAIL(NNU_STATUS_ERR_OOM, "out of memory"); goto fail; }
        for (int i = 0; i < meta->n; i++) {
            if (meta->items[i].type != NNU_JSON_STRING)
                BAD("%s '%s': __metadata__ value of '%s' is not a string", W, path, meta->keys[i]);
            out->keys[i] = meta->keys[i];
            out->values[i] = meta->items[i].string;
        }
        out->nmeta = meta->n;
    }
    /* the tiling: sorted by begin, each begins where the previous ends, sizes match */
    qsort(out->t, (size_t)out->n, sizeof *out->t, by_begin);
    uint64_t pos = 0;
    for (int i = 0; i < out->n; i++) {
        nnu_st_tensor *t = &out->t[i];
        if (t->begin != pos)
            BAD("%s '%s': tensor '%s' %s at data offset %llu, expected %llu (the tensors must tile the data)", W,
                path, t->name, t->begin < pos ? "overlaps the previous one" : "leaves a gap", (unsigned long long)t->begin,
                (unsigned long long)pos);
        uint64_t want = numel_of(t) * nnu_st_dtype_size(t->dtype);
        if (t->end - t->begin != want)
            BAD("%s '%s': tensor '%s' has %llu bytes, its shape and dtype need %llu", W, path, t->name,
                (unsigned long long)(t->end - t->begin), (unsigned long long)want);
        pos = t->end;
    }
    free(hdr);
    out->tree = tree;
    return NNU_STATUS_OK;
fail:
    free(hdr);
    nnu_json_free(tree);
    nnu_st_close(out);
    return st;
}
