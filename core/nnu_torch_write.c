/* nnu_torch_write.c: an nnu_net + metadata -> a reference nnU-Net checkpoint file
 * (nnu_torch_ckpt.h), readable by torch.load and nnUNetPredictor.
 *
 * The pickle is the dict nnUNetTrainer.save_checkpoint writes, in its key order:
 *   {'network_weights': OrderedDict(state dict), 'optimizer_state': None,
 *    'grad_scaler_state': None, 'logging': {<the logger's 8 lists>: []},
 *    '_best_ema': float | None, 'current_epoch': int,
 *    'init_args': {'plans': {...}, 'configuration': str, 'fold': int | 'all',
 *                  'dataset_json': {...}, 'device': torch.device('cpu')},
 *    'trainer_name': str, 'inference_allowed_mirroring_axes': (int, ...) | None}
 * The state dict lists the keys in the order PyTorch's state_dict() gives them for
 * PlainConvUNet and ResidualEncoderUNet (tests/test_torch_ckpt.c compares with the
 * reference's files): each conv block's conv/norm tensors followed by their `all_modules`
 * aliases (ConvDropoutNormReLU registers conv, norm, then all_modules = [conv, norm]),
 * the encoder again as `decoder.encoder.*` (UNetDecoder registers the encoder first),
 * then the decoder's own tensors. Aliases share their primary's storage, as in a file
 * torch.save writes, so the file holds each tensor's data once.
 *
 * The zip is written here rather than through libzip because torch's own writer
 * (caffe2 PyTorchStreamWriter) starts every entry's data at a multiple of 64 bytes,
 * padding the local header with an extra field ('FB'), which torch.load(mmap=True)
 * relies on and libzip cannot express. Entries are STORED; no zip64 (an entry or the
 * archive beyond 4 GiB is refused: nnU-Net's largest networks are a few hundred MB). */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nnu_json.h"
#include "nnu_safetensors.h"   /* nnu_crc32 */
#include "nnu_torch_ckpt.h"

#define ALIGN 64
#define PREFIX "archive"

/* ------------------------------------------------------------------ JSON -> pickle */

static nnu_pk *json_value(nnu_pk_doc *d, const nnu_json *j) {
    switch (j->type) {
    case NNU_JSON_NULL: return nnu_pk_none(d);
    case NNU_JSON_BOOL: return nnu_pk_bool(d, j->boolean);
    case NNU_JSON_NUMBER: return j->is_int ? nnu_pk_int(d, j->integer) : nnu_pk_float(d, j->number);
    case NNU_JSON_STRING: return nnu_pk_strn(d, j->string, j->len);
    case NNU_JSON_ARRAY: {
        nnu_pk *l = nnu_pk_new(d, NNU_PK_LIST);
        for (int k = 0; k < j->n; k++) nnu_pk_append(d, l, json_value(d, &j->items[k]));
        return l;
    }
    case NNU_JSON_OBJECT: {
        nnu_pk *o = nnu_pk_new(d, NNU_PK_DICT);
        for (int k = 0; k < j->n; k++) nnu_pk_setitem(d, o, nnu_pk_str(d, j->keys[k]), json_value(d, &j->items[k]));
        return o;
    }
    }
    return NULL;
}

nnu_status nnu_torch_json_to_pk(nnu_pk_doc *d, const char *json, const char *what, nnu_pk **out) {
    NNU_CHECK(json, NNU_STATUS_ERR_ARG, "torch checkpoint: %s is missing", what);
    char err[160];
    nnu_json *j = nnu_json_parse(json, strlen(json), err, sizeof err);
    NNU_CHECK(j, NNU_STATUS_ERR_ARG, "torch checkpoint: %s is not valid JSON: %s", what, err);
    /* the JSON reader bounds the nesting (64), so this recursion is bounded too */
    *out = json_value(d, j);
    nnu_json_free(j);
    NNU_CHECK(*out, NNU_STATUS_ERR_OOM, "torch checkpoint: out of memory converting %s", what);
    return NNU_STATUS_OK;
}

/* ------------------------------------------------------------------ the state dict */

typedef struct sd_builder {
    nnu_pk_doc *d;
    nnu_pk     *sd;                         /* the OrderedDict call */
    nnu_pk     *rebuild, *storage_type, *odict;
} sd_builder;

/* torch._utils._rebuild_tensor_v2(('storage', FloatStorage, key, 'cpu', numel), 0, shape,
 * contiguous strides, False, OrderedDict()) for net tensor i, its storage key "<i>" */
static nnu_pk *tensor_node(sd_builder *b, const nnu_net_tensor_info *ti, int i) {
    nnu_pk_doc *d = b->d;
    char key[16];
    snprintf(key, sizeof key, "%d", i);
    nnu_pk *pid[5] = {nnu_pk_str(d, "storage"), b->storage_type, nnu_pk_str(d, key), nnu_pk_str(d, "cpu"),
                      nnu_pk_int(d, ti->numel)};
    nnu_pk *shape = nnu_pk_new(d, NNU_PK_TUPLE), *stride = nnu_pk_new(d, NNU_PK_TUPLE);
    int64_t st[5], s = 1;
    for (int k = ti->ndim - 1; k >= 0; k--) {
        st[k] = s;
        s *= ti->shape[k];
    }
    for (int k = 0; k < ti->ndim; k++) {
        nnu_pk_append(d, shape, nnu_pk_int(d, ti->shape[k]));
        nnu_pk_append(d, stride, nnu_pk_int(d, st[k]));
    }
    nnu_pk *args[6] = {nnu_pk_persid(d, nnu_pk_tuple(d, 5, pid)), nnu_pk_int(d, 0), shape, stride,
                       nnu_pk_bool(d, 0), nnu_pk_call(d, b->odict, NULL)};
    return nnu_pk_call(d, b->rebuild, nnu_pk_tuple(d, 6, args));
}

static void add(sd_builder *b, const char *prefix, const char *name, nnu_pk *t) {
    char key[256];
    snprintf(key, sizeof key, "%s%s", prefix, name);
    nnu_pk_setitem(b->d, b->sd, nnu_pk_str(b->d, key), t);
}

/* length of the conv-block prefix of name ("<block>.conv." / "<block>.norm."), 0 if none */
static size_t block_len(const char *name) {
    const char *c = strstr(name, ".conv."), *n = strstr(name, ".norm.");
    const char *p = c && (!n || c < n) ? c : n;
    return p ? (size_t)(p - name) : 0;
}

/* emits tensors [lo, hi) of the net under prefix, each block's aliases after its
 * primaries: <block>.conv.<p> -> <block>.all_modules.0.<p>, .norm. -> .all_modules.1. */
static void emit_range(sd_builder *b, const nnu_net *net, nnu_pk **nodes, int lo, int hi, const char *prefix) {
    int i = lo;
    while (i < hi) {
        const char *name = nnu_net_tensor(net, i)->name;
        size_t bl = block_len(name);
        int j = i + 1;
        while (bl && j < hi && block_len(nnu_net_tensor(net, j)->name) == bl &&
               !strncmp(nnu_net_tensor(net, j)->name, name, bl))
            j++;
        for (int k = i; k < j; k++) add(b, prefix, nnu_net_tensor(net, k)->name, nodes[k]);
        for (int k = i; bl && k < j; k++) {
            const char *tn = nnu_net_tensor(net, k)->name;   /* "<block>.conv.weight" */
            char alias[256];
            snprintf(alias, sizeof alias, "%.*s.all_modules.%d.%s", (int)bl, tn, tn[bl + 1] == 'c' ? 0 : 1,
                     tn + bl + 6);
            add(b, prefix, alias, nodes[k]);
        }
        i = j;
    }
}

static nnu_pk *state_dict(nnu_pk_doc *d, const nnu_net *net) {
    sd_builder b = {.d = d};
    b.rebuild = nnu_pk_global(d, "torch._utils", "_rebuild_tensor_v2");
    b.storage_type = nnu_pk_global(d, "torch", "FloatStorage");
    b.odict = nnu_pk_global(d, "collections", "OrderedDict");
    b.sd = nnu_pk_call(d, b.odict, NULL);
    const int nt = nnu_net_num_tensors(net);
    nnu_pk **nodes = calloc((size_t)nt + 1, sizeof *nodes);
    if (!nodes) return NULL;
    int n_enc = 0;
    for (int i = 0; i < nt; i++) {
        nodes[i] = tensor_node(&b, nnu_net_tensor(net, i), i);
        if (!strncmp(nnu_net_tensor(net, i)->name, "encoder.", 8)) n_enc = i + 1;
    }
    emit_range(&b, net, nodes, 0, n_enc, "");
    emit_range(&b, net, nodes, 0, n_enc, "decoder.");   /* UNetDecoder.encoder */
    emit_range(&b, net, nodes, n_enc, nt, "");
    free(nodes);
    return b.sd;
}

/* the whole checkpoint dict (top of the file) */
static nnu_status checkpoint_dict(nnu_pk_doc *d, const nnu_net *net, const nnu_torch_ckpt_meta *m, nnu_pk **out) {
    nnu_pk *plans, *dj;
    NNU_TRY(nnu_torch_json_to_pk(d, m->plans_json, "plans_json", &plans));
    NNU_TRY(nnu_torch_json_to_pk(d, m->dataset_json, "dataset_json", &dj));
    NNU_CHECK(plans->type == NNU_PK_DICT && dj->type == NNU_PK_DICT, NNU_STATUS_ERR_ARG,
              "torch checkpoint: plans_json and dataset_json must be JSON objects");
    nnu_pk *ck = nnu_pk_new(d, NNU_PK_DICT);
#define SET(k, v) nnu_pk_setitem(d, ck, nnu_pk_str(d, k), (v))
    SET("network_weights", state_dict(d, net));
    SET("optimizer_state", nnu_pk_none(d));
    SET("grad_scaler_state", nnu_pk_none(d));
    static const char *const logs[] = {"mean_fg_dice", "ema_fg_dice", "dice_per_class_or_region", "train_losses",
                                       "val_losses", "lrs", "epoch_start_timestamps", "epoch_end_timestamps"};
    nnu_pk *lg = nnu_pk_new(d, NNU_PK_DICT);
    for (size_t k = 0; k < sizeof logs / sizeof *logs; k++)
        nnu_pk_setitem(d, lg, nnu_pk_str(d, logs[k]), nnu_pk_new(d, NNU_PK_LIST));
    SET("logging", lg);
    SET("_best_ema", isnan(m->best_ema) ? nnu_pk_none(d) : nnu_pk_float(d, m->best_ema));
    SET("current_epoch", nnu_pk_int(d, m->current_epoch));
    nnu_pk *ia = nnu_pk_new(d, NNU_PK_DICT);
    nnu_pk_setitem(d, ia, nnu_pk_str(d, "plans"), plans);
    nnu_pk_setitem(d, ia, nnu_pk_str(d, "configuration"), nnu_pk_str(d, m->configuration));
    nnu_pk_setitem(d, ia, nnu_pk_str(d, "fold"), m->fold < 0 ? nnu_pk_str(d, "all") : nnu_pk_int(d, m->fold));
    nnu_pk_setitem(d, ia, nnu_pk_str(d, "dataset_json"), dj);
    /* the trainer records the device it trained on; 'cpu' re-instantiates anywhere */
    nnu_pk *dev_args[1] = {nnu_pk_str(d, "cpu")};
    nnu_pk_setitem(d, ia, nnu_pk_str(d, "device"),
                   nnu_pk_call(d, nnu_pk_global(d, "torch", "device"), nnu_pk_tuple(d, 1, dev_args)));
    SET("init_args", ia);
    SET("trainer_name", nnu_pk_str(d, m->trainer_name ? m->trainer_name : "nnUNetTrainer"));
    nnu_pk *mir = nnu_pk_new(d, NNU_PK_TUPLE);
    for (int k = 0; k < m->n_mirror; k++) nnu_pk_append(d, mir, nnu_pk_int(d, m->mirror_axes[k]));
    SET("inference_allowed_mirroring_axes", m->n_mirror < 0 ? nnu_pk_none(d) : mir);
#undef SET
    *out = ck;
    return NNU_STATUS_OK;
}

/* ------------------------------------------------------------------ the zip */

typedef struct zentry {
    char     name[64];
    uint32_t crc, size, offset;          /* offset of the local header */
} zentry;

typedef struct zwriter {
    FILE    *f;
    uint64_t pos;
    zentry  *e;
    int      n, cap;
    int      err;                        /* errno of the first failed write */
    int      too_big;
} zwriter;

static void zput(zwriter *z, const void *p, size_t n) {
    if (z->err || !n) return;
    if (fwrite(p, 1, n, z->f) != n) z->err = errno ? errno : EIO;
    z->pos += n;
}

static void zle(zwriter *z, uint64_t v, int n) {
    unsigned char b[8];
    for (int k = 0; k < n; k++) b[k] = (unsigned char)(v >> (8 * k));
    zput(z, b, (size_t)n);
}

/* one STORED entry whose data starts at a multiple of ALIGN (torch's 'FB' padding) */
static void zentry_add(zwriter *z, const char *name, const void *data, size_t size) {
    if (z->err || z->too_big) return;
    if (z->n == z->cap) {
        int cap = z->cap ? 2 * z->cap : 64;
        zentry *e = realloc(z->e, (size_t)cap * sizeof *e);
        if (!e) { z->err = ENOMEM; return; }
        z->e = e;
        z->cap = cap;
    }
    const size_t nl = strlen(name);
    size_t pad = (ALIGN - (z->pos + 30 + nl) % ALIGN) % ALIGN;
    if (pad && pad < 4) pad += ALIGN;   /* an extra field needs its 4-byte header */
    if (z->pos + 30 + nl + pad + size >= ((uint64_t)1 << 32) || z->n >= 65535) { z->too_big = 1; return; }
    zentry *e = &z->e[z->n++];
    snprintf(e->name, sizeof e->name, "%s", name);
    e->crc = nnu_crc32(0, data, size);
    e->size = (uint32_t)size;
    e->offset = (uint32_t)z->pos;
    zle(z, 0x04034b50, 4);                 /* local file header */
    zle(z, 20, 2);                         /* version needed: 2.0 */
    zle(z, 0, 2);                          /* flags */
    zle(z, 0, 2);                          /* STORED */
    zle(z, 0, 2);                          /* time 00:00 */
    zle(z, 0x21, 2);                       /* date 1980-01-01 (fixed: the file is reproducible) */
    zle(z, e->crc, 4);
    zle(z, size, 4);
    zle(z, size, 4);
    zle(z, nl, 2);
    zle(z, pad, 2);
    zput(z, name, nl);
    if (pad) {
        static const unsigned char zeros[ALIGN + 4];
        zle(z, 0x4246, 2);                 /* 'FB', the id torch's writer uses */
        zle(z, pad - 4, 2);
        zput(z, zeros, pad - 4);
    }
    zput(z, data, size);
}

static void zfinish(zwriter *z) {
    const uint64_t cd = z->pos;
    for (int k = 0; k < z->n; k++) {
        const zentry *e = &z->e[k];
        const size_t nl = strlen(e->name);
        zle(z, 0x02014b50, 4);             /* central directory header */
        zle(z, 20, 2);                     /* made by: 2.0 (MS-DOS attributes) */
        zle(z, 20, 2);
        zle(z, 0, 2);
        zle(z, 0, 2);
        zle(z, 0, 2);
        zle(z, 0x21, 2);
        zle(z, e->crc, 4);
        zle(z, e->size, 4);
        zle(z, e->size, 4);
        zle(z, nl, 2);
        zle(z, 0, 2);                      /* extra: the padding lives in the local header only */
        zle(z, 0, 2);                      /* comment */
        zle(z, 0, 2);                      /* disk */
        zle(z, 0, 2);                      /* internal attributes */
        zle(z, 0, 4);                      /* external attributes */
        zle(z, e->offset, 4);
        zput(z, e->name, nl);
    }
    const uint64_t cd_size = z->pos - cd;
    if (z->pos >= ((uint64_t)1 << 32)) { z->too_big = 1; return; }
    zle(z, 0x06054b50, 4);                 /* end of central directory */
    zle(z, 0, 2);
    zle(z, 0, 2);
    zle(z, (uint64_t)z->n, 2);
    zle(z, (uint64_t)z->n, 2);
    zle(z, cd_size, 4);
    zle(z, cd, 4);
    zle(z, 0, 2);
}

static nnu_status fsync_dir_of(const char *path) {
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == path) snprintf(dir, sizeof dir, "/");
    else snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return NNU_FAIL(NNU_STATUS_ERR_IO, "cannot open folder '%s': %s", dir, strerror(errno));
    int rc = fsync(fd), e = errno;
    close(fd);
    /* some file systems refuse fsync on folders (EINVAL): nothing more to do there */
    NNU_CHECK(rc == 0 || e == EINVAL, NNU_STATUS_ERR_IO, "cannot sync folder '%s': %s", dir, strerror(e));
    return NNU_STATUS_OK;
}

/* the archive's entries into tmp: data.pkl, byteorder, data/<i> per net tensor, version */
static nnu_status write_zip(const char *tmp, const char *path, const void *pkl, size_t pkl_len, const float *w,
                            const nnu_net *net, int no_fsync) {
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    NNU_CHECK(fd >= 0, NNU_STATUS_ERR_IO, "torch checkpoint: cannot create '%s': %s", tmp, strerror(errno));
    zwriter z = {.f = fdopen(fd, "wb")};
    if (!z.f) { close(fd); return NNU_FAIL(NNU_STATUS_ERR_OOM, "torch checkpoint: fdopen '%s' failed", tmp); }
    zentry_add(&z, PREFIX "/data.pkl", pkl, pkl_len);
    zentry_add(&z, PREFIX "/byteorder", "little", 6);
    for (int i = 0; i < nnu_net_num_tensors(net); i++) {
        const nnu_net_tensor_info *ti = nnu_net_tensor(net, i);
        char name[64];
        snprintf(name, sizeof name, PREFIX "/data/%d", i);
        zentry_add(&z, name, w + ti->offset, (size_t)ti->numel * sizeof(float));
    }
    zentry_add(&z, PREFIX "/version", "3\n", 2);
    zfinish(&z);
    int err = z.err;
    if (!err && fflush(z.f) != 0) err = errno ? errno : EIO;
    if (!err && !no_fsync && fsync(fd) != 0) err = errno;
    if (fclose(z.f) != 0 && !err) err = errno ? errno : EIO;
    free(z.e);
    if (err || z.too_big) {
        unlink(tmp);
        if (z.too_big)
            return NNU_FAIL(NNU_STATUS_ERR_UNSUPPORTED, "torch checkpoint '%s': larger than 4 GiB (zip64 is not "
                            "written)", path);
        return NNU_FAIL(NNU_STATUS_ERR_IO, "torch checkpoint: cannot write '%s': %s", tmp, strerror(err));
    }
    return NNU_STATUS_OK;
}

nnu_status nnu_torch_ckpt_save(const nnu_net *net, const char *path, const nnu_torch_ckpt_meta *m) {
    NNU_CHECK(net && path && m && m->configuration, NNU_STATUS_ERR_ARG,
              "torch checkpoint save: net, path and meta.configuration are required");
    NNU_CHECK(m->n_mirror <= NNU_TORCH_MAX_DIMS && (m->n_mirror <= 0 || m->mirror_axes), NNU_STATUS_ERR_ARG,
              "torch checkpoint save: bad mirroring axes");
    char tmp[4096];
    NNU_CHECK(snprintf(tmp, sizeof tmp, "%s.tmp", path) < (int)sizeof tmp, NNU_STATUS_ERR_ARG,
              "path too long: '%s'", path);
    const int64_t np = nnu_net_num_params(net);
    float *host = malloc((size_t)(np ? np : 1) * sizeof *host);
    nnu_pk_doc *d = nnu_pk_doc_new();
    void *pkl = NULL;
    size_t pkl_len = 0;
    nnu_pk *root = NULL;
    nnu_status st = NNU_STATUS_OK;
    if (!host || !d) st = NNU_FAIL(NNU_STATUS_ERR_OOM, "torch checkpoint save '%s': out of memory", path);
    /* the weights as host floats (device memory is copied; the block is only read) */
    if (st == NNU_STATUS_OK) st = nnu_net_read(net, nnu_net_params((nnu_net *)net), host, np);
    if (st == NNU_STATUS_OK) st = checkpoint_dict(d, net, m, &root);
    if (st == NNU_STATUS_OK) st = nnu_pickle_write(d, root, &pkl, &pkl_len);
    if (st == NNU_STATUS_OK) st = write_zip(tmp, path, pkl, pkl_len, host, net, m->no_fsync);
    if (st == NNU_STATUS_OK && rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        st = NNU_FAIL(NNU_STATUS_ERR_IO, "torch checkpoint: cannot rename '%s' to '%s': %s", tmp, path, strerror(e));
    }
    if (st == NNU_STATUS_OK && !m->no_fsync) st = fsync_dir_of(path);
    free(pkl);
    nnu_pk_doc_free(d);
    free(host);
    return st;
}
