/* nnu_torch_read.c: the torch.save container, read (nnu_torch_ckpt.h): the zip (libzip),
 * its data.pkl (nnu_pickle.h) and the tensors' storages, gathered into floats.
 *
 * Trust: nothing in the file is believed before it is checked. Every size, offset and
 * stride of a tensor is checked against its storage entry's real size before a byte is
 * copied, and libzip checks each entry's CRC when it is read to its end. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zip.h>

#include "nnu_dtype.h"
#include "nnu_torch_ckpt.h"

#define MAX_PICKLE (1u << 30)   /* data.pkl of a checkpoint: kilobytes; refuse absurd ones */

struct nnu_torch_file {
    char         *path;
    zip_t        *zip;
    char          prefix[256];   /* the archive's top folder */
    nnu_pk_doc   *doc;
    const nnu_pk *root;
    char          cache_key[64]; /* the last storage read: views of one storage read it once */
    unsigned char *cache;
    size_t        cache_len;
};

/* the pickle of torch's legacy (pre-1.6) format starts with its magic number, a LONG1 */
static const unsigned char LEGACY_MAGIC[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46};

int nnu_torch_is_zip(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    unsigned char b[4] = {0};
    size_t n = fread(b, 1, 4, f);
    fclose(f);
    return n == 4 && !memcmp(b, "PK\3\4", 4);
}

const nnu_pk *nnu_torch_root(const nnu_torch_file *f) { return f->root; }
const char *nnu_torch_path(const nnu_torch_file *f) { return f->path; }

void nnu_torch_close(nnu_torch_file *f) {
    if (!f) return;
    if (f->zip) zip_discard(f->zip);   /* read-only: nothing to write back */
    nnu_pk_doc_free(f->doc);
    free(f->cache);
    free(f->path);
    free(f);
}

/* why a file that is not a zip is not read */
static nnu_status not_a_zip(const char *path, const char *zmsg) {
    unsigned char b[8] = {0};
    FILE *fp = fopen(path, "rb");
    size_t n = fp ? fread(b, 1, sizeof b, fp) : 0;
    if (fp) fclose(fp);
    if (n == sizeof b && !memcmp(b, LEGACY_MAGIC, sizeof b))
        return NNU_FAIL(NNU_STATUS_ERR_FORMAT, "torch checkpoint '%s': the legacy PyTorch format (before 1.6, "
                        "not a zip) is not read; re-save it with a current PyTorch: "
                        "torch.save(torch.load(p, weights_only=False), p)", path);
    if (n >= 4 && !memcmp(b, "PK\3\4", 4))
        return NNU_FAIL(NNU_STATUS_ERR_FORMAT, "torch checkpoint '%s': damaged zip archive (%s)", path, zmsg);
    return NNU_FAIL(NNU_STATUS_ERR_FORMAT, "torch checkpoint '%s': not a PyTorch checkpoint (not a zip "
                    "archive: %s)", path, zmsg);
}

/* reads the whole entry idx into a new buffer (at most max bytes); libzip verifies the
 * CRC once the entry has been read to its end, hence the final read of 0 bytes */
static nnu_status read_entry(nnu_torch_file *f, zip_int64_t idx, const char *name, size_t max,
                             unsigned char **buf, size_t *len) {
    zip_stat_t sb;
    zip_stat_init(&sb);
    if (zip_stat_index(f->zip, (zip_uint64_t)idx, 0, &sb) != 0 || !(sb.valid & ZIP_STAT_SIZE))
        return NNU_FAIL(NNU_STATUS_ERR_FORMAT, "torch checkpoint '%s': entry '%s': %s", f->path, name,
                        zip_strerror(f->zip));
    NNU_CHECK(sb.size <= max, NNU_STATUS_ERR_FORMAT, "torch checkpoint '%s': entry '%s' is %llu bytes, "
              "larger than expected", f->path, name, (unsigned long long)sb.size);
    *buf = malloc(sb.size ? (size_t)sb.size : 1);
    NNU_CHECK(*buf, NNU_STATUS_ERR_OOM, "torch checkpoint '%s': out of memory for '%s'", f->path, name);
    zip_file_t *zf = zip_fopen_index(f->zip, (zip_uint64_t)idx, 0);
    nnu_status st = NNU_STATUS_OK;
    if (!zf) {
        st = NNU_FAIL(NNU_STATUS_ERR_FORMAT, "torch checkpoint '%s': entry '%s': %s", f->path, name,
                      zip_strerror(f->zip));
    } else {
        char extra;
        zip_int64_t got = zip_fread(zf, *buf, sb.size);
        zip_int64_t end = got == (zip_int64_t)sb.size ? zip_fread(zf, &extra, 1) : -1;
        if (got != (zip_int64_t)sb.size || end != 0)
            st = NNU_FAIL(NNU_STATUS_ERR_FORMAT, "torch checkpoint '%s': entry '%s' cannot be read (%s)", f->path,
                          name, got < 0 || end < 0 ? zip_file_strerror(zf) : "truncated");
        zip_fclose(zf);
    }
    if (st != NNU_STATUS_OK) {
        free(*buf);
        *buf = NULL;
        return st;
    }
    *len = (size_t)sb.size;
    return NNU_STATUS_OK;
}

/* the top folder of the archive: the folder of its "<prefix>/data.pkl" */
static nnu_status find_pickle(nnu_torch_file *f, zip_int64_t *idx) {
    zip_int64_t n = zip_get_num_entries(f->zip, 0);
    int torchscript = 0;
    for (zip_int64_t i = 0; i < n; i++) {
        const char *name = zip_get_name(f->zip, (zip_uint64_t)i, 0);
        if (!name) continue;
        const char *slash = strchr(name, '/');
        if (!slash) continue;
        if (!strcmp(slash, "/constants.pkl") || !strncmp(slash, "/code/", 6)) torchscript = 1;
        if (strcmp(slash, "/data.pkl") || (size_t)(slash - name) >= sizeof f->prefix) continue;
        snprintf(f->prefix, sizeof f->prefix, "%.*s", (int)(slash - name), name);
        *idx = i;
        return NNU_STATUS_OK;
    }
    if (torchscript)
        return NNU_FAIL(NNU_STATUS_ERR_FORMAT, "torch checkpoint '%s': a TorchScript archive (torch.jit.save), "
                        "not a torch.save checkpoint", f->path);
    return NNU_FAIL(NNU_STATUS_ERR_FORMAT, "torch checkpoint '%s': a zip archive without <folder>/data.pkl "
                    "(not written by torch.save)", f->path);
}

nnu_status nnu_torch_open(const char *path, nnu_torch_file **out) {
    *out = NULL;
    nnu_torch_file *f = calloc(1, sizeof *f);
    NNU_CHECK(f && (f->path = strdup(path)), NNU_STATUS_ERR_OOM, "torch checkpoint '%s': out of memory", path);
    int zerr = 0;
    f->zip = zip_open(path, ZIP_RDONLY | ZIP_CHECKCONS, &zerr);
    if (!f->zip) {
        int e = errno;
        nnu_torch_close(f);
        if (zerr == ZIP_ER_NOENT || zerr == ZIP_ER_OPEN || zerr == ZIP_ER_READ)
            return NNU_FAIL(NNU_STATUS_ERR_IO, "torch checkpoint '%s': cannot open: %s", path,
                            strerror(zerr == ZIP_ER_NOENT ? ENOENT : e));
        zip_error_t ze;
        zip_error_init_with_code(&ze, zerr);
        nnu_status st = not_a_zip(path, zip_error_strerror(&ze));
        zip_error_fini(&ze);
        return st;
    }
    zip_int64_t idx = -1;
    unsigned char *pkl = NULL;
    size_t len = 0;
    nnu_status st = find_pickle(f, &idx);
    if (st == NNU_STATUS_OK) {   /* torch writes "little"; a big-endian file would need swapping */
        char bo[300];
        snprintf(bo, sizeof bo, "%s/byteorder", f->prefix);
        zip_int64_t bi = zip_name_locate(f->zip, bo, 0);
        unsigned char *b = NULL;
        size_t bl = 0;
        if (bi >= 0 && (st = read_entry(f, bi, bo, 16, &b, &bl)) == NNU_STATUS_OK &&
            !(bl == 6 && !memcmp(b, "little", 6)))
            st = NNU_FAIL(NNU_STATUS_ERR_UNSUPPORTED, "torch checkpoint '%s': byte order '%.*s' (only little-endian "
                          "files are read)", path, (int)bl, (const char *)b);
        free(b);
    }
    if (st == NNU_STATUS_OK) st = read_entry(f, idx, "data.pkl", MAX_PICKLE, &pkl, &len);
    if (st == NNU_STATUS_OK) {
        char what[4200];
        snprintf(what, sizeof what, "torch checkpoint '%s': %s/data.pkl", path, f->prefix);
        st = nnu_pickle_read(pkl, len, what, &f->doc, &f->root);
    }
    free(pkl);
    if (st != NNU_STATUS_OK) {
        nnu_torch_close(f);
        return st;
    }
    *out = f;
    return NNU_STATUS_OK;
}

/* ------------------------------------------------------------------ tensors */

static const struct { const char *name; int elsize; } FLOAT_STORAGES[] = {
    {"FloatStorage", 4}, {"HalfStorage", 2}, {"BFloat16Storage", 2}, {"DoubleStorage", 8},
};

/* the _rebuild_tensor_v2 call inside v (through _rebuild_parameter), or NULL */
static const nnu_pk *rebuild_call(const nnu_pk *v) {
    for (int hop = 0; hop < 2 && v && v->type == NNU_PK_CALL; hop++) {
        if (nnu_pk_is_global(v->callee, "torch._utils", "_rebuild_tensor_v2")) return v;
        if ((nnu_pk_is_global(v->callee, "torch._utils", "_rebuild_parameter") ||
             nnu_pk_is_global(v->callee, "torch._utils", "_rebuild_parameter_with_state")) &&
            v->args->n >= 1)
            v = v->args->items[0];
        else
            return NULL;
    }
    return NULL;
}

int nnu_torch_is_tensor(const nnu_pk *v) { return rebuild_call(v) != NULL; }

static int int_tuple(const nnu_pk *v, int max, int64_t *out) {
    if (!v || v->type != NNU_PK_TUPLE || v->n > max) return -1;
    for (int k = 0; k < v->n; k++) {
        if (v->items[k]->type != NNU_PK_INT || v->items[k]->big) return -1;
        out[k] = v->items[k]->i;
    }
    return v->n;
}

#define LIMIT ((int64_t)1 << 48)   /* elements: far above any network's tensor, far below overflow */

nnu_status nnu_torch_tensor_of(const nnu_torch_file *f, const nnu_pk *v, const char *name,
                               nnu_torch_tensor *t) {
    memset(t, 0, sizeof *t);
    const nnu_pk *c = rebuild_call(v);
#define BADT(...) NNU_FAIL(NNU_STATUS_ERR_FORMAT, "torch checkpoint '%s': tensor '%s': " __VA_ARGS__)
    if (!c) return BADT("not a tensor (a %s)", f->path, name, nnu_pk_type_name(v ? v->type : NNU_PK_NONE));
    const nnu_pk *a = c->args;
    if (a->n < 4 || a->items[0]->type != NNU_PK_PERSID || a->items[1]->type != NNU_PK_INT)
        return BADT("malformed _rebuild_tensor_v2 arguments", f->path, name);
    const nnu_pk *pid = a->items[0]->args;
    if (pid->type != NNU_PK_TUPLE || pid->n != 5 || !nnu_pk_is_str(pid->items[0], "storage") ||
        pid->items[1]->type != NNU_PK_GLOBAL || pid->items[2]->type != NNU_PK_STR ||
        pid->items[4]->type != NNU_PK_INT || pid->items[4]->big)
        return BADT("malformed storage id (expected ('storage', type, key, location, numel))", f->path, name);
    const nnu_pk *ty = pid->items[1];
    if (strcmp(ty->s, "torch")) return BADT("storage type %s.%s", f->path, name, ty->s, ty->name);
    for (size_t k = 0; k < sizeof FLOAT_STORAGES / sizeof *FLOAT_STORAGES; k++)
        if (!strcmp(ty->name, FLOAT_STORAGES[k].name)) t->elsize = FLOAT_STORAGES[k].elsize;
    if (!t->elsize)
        return NNU_FAIL(NNU_STATUS_ERR_UNSUPPORTED, "torch checkpoint '%s': tensor '%s': storage type torch.%s "
                        "(float32, float16, bfloat16 and float64 are read)", f->path, name, ty->name);
    const nnu_pk *key = pid->items[2];
    if (key->len == 0 || key->len >= sizeof t->storage_key || strchr(key->s, '/') || memchr(key->s, 0, key->len))
        return BADT("bad storage key", f->path, name);
    snprintf(t->storage_key, sizeof t->storage_key, "%s", key->s);
    snprintf(t->storage_type, sizeof t->storage_type, "%s", ty->name);
    t->storage_numel = pid->items[4]->i;
    t->offset = a->items[1]->big ? -1 : a->items[1]->i;
    int nd = int_tuple(a->items[2], NNU_TORCH_MAX_DIMS, t->shape);
    int ns = int_tuple(a->items[3], NNU_TORCH_MAX_DIMS, t->stride);
    if (nd < 0 || ns != nd) return BADT("malformed size or stride (at most %d dimensions)", f->path, name,
                                        NNU_TORCH_MAX_DIMS);
    t->ndim = nd;
    if (t->storage_numel < 0 || t->storage_numel > LIMIT || t->offset < 0 || t->offset > LIMIT)
        return BADT("storage size or offset out of range", f->path, name);
    /* numel, and the last element's position: offset + sum((size - 1) * stride) */
    int64_t numel = 1, last = t->offset;
    for (int d = 0; d < nd; d++) {
        if (t->shape[d] < 0 || t->shape[d] > LIMIT || t->stride[d] < 0 || t->stride[d] > LIMIT)
            return BADT("negative or huge size or stride", f->path, name);
        if (t->shape[d] && numel > LIMIT / t->shape[d]) return BADT("too many elements", f->path, name);
        numel *= t->shape[d];
    }
    for (int d = 0; d < nd && numel > 0; d++) {
        if (t->shape[d] > 1 && t->stride[d] > (LIMIT - last) / (t->shape[d] - 1))
            return BADT("strides reach beyond any storage", f->path, name);
        last += (t->shape[d] - 1) * t->stride[d];
    }
    if (numel > 0 && last >= t->storage_numel)
        return BADT("views elements up to %lld of a storage of %lld", f->path, name, (long long)last,
                    (long long)t->storage_numel);
    t->numel = numel;
#undef BADT
    return NNU_STATUS_OK;
}

static float to_float(const unsigned char *p, int elsize, int bf16) {
    switch (elsize) {
    case 2: {
        uint16_t h = (uint16_t)(p[0] | p[1] << 8);
        if (!bf16) return nnu_f16_to_f32(h);
        uint32_t u = (uint32_t)h << 16;   /* bfloat16 is the top half of a float32 */
        float x;
        memcpy(&x, &u, 4);
        return x;
    }
    case 8: {
        double x;
        memcpy(&x, p, 8);
        return (float)x;
    }
    default: {
        float x;
        memcpy(&x, p, 4);
        return x;
    }
    }
}

nnu_status nnu_torch_tensor_read(nnu_torch_file *f, const nnu_torch_tensor *t, const char *name, float *dst) {
    if (t->numel == 0) return NNU_STATUS_OK;
    if (strcmp(f->cache_key, t->storage_key) || !f->cache) {
        char entry[400];
        snprintf(entry, sizeof entry, "%s/data/%s", f->prefix, t->storage_key);
        zip_int64_t idx = zip_name_locate(f->zip, entry, 0);
        NNU_CHECK(idx >= 0, NNU_STATUS_ERR_FORMAT, "torch checkpoint '%s': tensor '%s': its storage '%s' is missing",
                  f->path, name, entry);
        free(f->cache);
        f->cache = NULL;
        f->cache_key[0] = 0;
        NNU_TRY(read_entry(f, idx, entry, (size_t)t->storage_numel * (size_t)t->elsize, &f->cache, &f->cache_len));
        snprintf(f->cache_key, sizeof f->cache_key, "%s", t->storage_key);
    }
    NNU_CHECK(f->cache_len == (size_t)t->storage_numel * (size_t)t->elsize, NNU_STATUS_ERR_FORMAT,
              "torch checkpoint '%s': tensor '%s': storage '%s' has %zu bytes, its id says %lld elements of %d",
              f->path, name, t->storage_key, f->cache_len, (long long)t->storage_numel, t->elsize);
    const int bf16 = !strcmp(t->storage_type, "BFloat16Storage");
    int64_t idx[NNU_TORCH_MAX_DIMS] = {0};
    /* C-order walk over the view; pos is the storage element of idx */
    int64_t pos = t->offset;
    for (int64_t k = 0; k < t->numel; k++) {
        dst[k] = to_float(f->cache + (size_t)pos * (size_t)t->elsize, t->elsize, bf16);
        for (int d = t->ndim - 1; d >= 0; d--) {
            pos += t->stride[d];
            if (++idx[d] < t->shape[d]) break;
            pos -= t->stride[d] * t->shape[d];
            idx[d] = 0;
        }
    }
    return NNU_STATUS_OK;
}
