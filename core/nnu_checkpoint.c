/* nnu_checkpoint.c: writer and validating reader of the checkpoint file (layout
 * in nnu_checkpoint.h).
 *
 * Writing streams the sections through a stdio buffer while the CRC-32 runs over
 * them, then patches the header at offset 0, syncs and renames (tmp + fsync +
 * rename + fsync of the folder). Reading makes two passes: the first checks the
 * header, the file size and the payload CRC over the raw bytes, so that a bit
 * flip anywhere is reported as such and not as whatever malformed field it
 * produced; the second parses the sections into freshly allocated arrays. */
#include "nnu_checkpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define MAGIC        "NNUCKPT"          /* + NUL = 8 bytes */
#define BOM          0x01020304u
#define TAG_LEN      40
#define SEC_HDR      (TAG_LEN + 16)     /* tag, u32 kind, u32 0, u64 count */

enum { K_F32 = 1, K_F64 = 2, K_I64 = 3, K_BYTES = 4 };

static const char *const LOG_NAMES[NNU_CKPT_NLOGS] = {
    "log.train_losses", "log.val_losses", "log.mean_fg_dice", "log.ema_fg_dice",
    "log.lrs", "log.epoch_start_timestamps", "log.epoch_end_timestamps",
};

const char *nnu_checkpoint_log_name(int i) {
    return (i >= 0 && i < NNU_CKPT_NLOGS) ? LOG_NAMES[i] : "?";
}

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

static size_t kind_size(uint32_t k) {
    return k == K_F32 ? 4 : (k == K_F64 || k == K_I64) ? 8 : k == K_BYTES ? 1 : 0;
}

static void put_u32(unsigned char *p, uint32_t v) { memcpy(p, &v, 4); }
static void put_u64(unsigned char *p, uint64_t v) { memcpy(p, &v, 8); }
static uint32_t get_u32(const unsigned char *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t get_u64(const unsigned char *p) { uint64_t v; memcpy(&v, p, 8); return v; }

/* ------------------------------------------------------------------ writing */

typedef struct writer {
    FILE       *f;
    uint32_t    crc;
    uint64_t    bytes;       /* payload bytes so far */
    uint32_t    n_sections;
    int         err;         /* errno of the first failed write */
} writer;

static void w_raw(writer *w, const void *p, size_t n) {
    if (w->err || n == 0) return;
    if (fwrite(p, 1, n, w->f) != n) { w->err = errno ? errno : EIO; return; }
    w->crc = nnu_crc32(w->crc, p, n);
    w->bytes += n;
}

static void w_section(writer *w, const char *tag, uint32_t kind, const void *data, uint64_t count) {
    unsigned char h[SEC_HDR] = {0};
    strncpy((char *)h, tag, TAG_LEN - 1);
    put_u32(h + TAG_LEN, kind);
    put_u64(h + TAG_LEN + 8, count);
    w_raw(w, h, sizeof h);
    size_t nb = (size_t)count * kind_size(kind);
    w_raw(w, data, nb);
    static const unsigned char zeros[8] = {0};
    w_raw(w, zeros, (8 - nb % 8) % 8);
    w->n_sections++;
}

static void w_i64(writer *w, const char *tag, int64_t v) { w_section(w, tag, K_I64, &v, 1); }

static nnu_status check_f32(const nnu_tensor *t, int64_t n, const char *what) {
    NNU_CHECK(t != NULL, NNU_STATUS_ERR_ARG, "checkpoint: %s is missing", what);
    NNU_CHECK(t->dtype == NNU_DTYPE_F32 && nnu_tensor_is_contiguous(t), NNU_STATUS_ERR_ARG,
              "checkpoint: %s must be a contiguous f32 tensor", what);
    NNU_CHECK(t->storage->mem == NULL || t->storage->mem->host_accessible, NNU_STATUS_ERR_ARG,
              "checkpoint: %s must be in host memory", what);
    NNU_CHECK(n < 0 || nnu_tensor_numel(t) == n, NNU_STATUS_ERR_SHAPE,
              "checkpoint: %s has %lld elements, the parameters %lld", what,
              (long long)nnu_tensor_numel(t), (long long)n);
    return NNU_STATUS_OK;
}

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

nnu_status nnu_checkpoint_save(const char *path, const nnu_checkpoint *ck,
                               const nnu_checkpoint_save_opts *opts) {
    static const nnu_checkpoint_save_opts defaults = {0};
    if (!opts) opts = &defaults;
    NNU_CHECK(path && ck, NNU_STATUS_ERR_ARG, "checkpoint save: NULL argument");
    NNU_TRY(check_f32(ck->params, -1, "params"));
    const int64_t n = nnu_tensor_numel(ck->params);
    NNU_CHECK(ck->n_optim >= 0 && ck->n_optim <= NNU_CKPT_MAX_OPTIM, NNU_STATUS_ERR_ARG,
              "checkpoint: %d optimizer buffers (at most %d)", ck->n_optim, NNU_CKPT_MAX_OPTIM);
    for (int i = 0; i < ck->n_optim; i++) {
        NNU_CHECK(ck->optim_name[i][0] && memchr(ck->optim_name[i], 0, NNU_CKPT_NAME_LEN),
                  NNU_STATUS_ERR_ARG, "checkpoint: optimizer buffer %d has no name", i);
        NNU_TRY(check_f32(ck->optim[i], n, ck->optim_name[i]));
    }
    NNU_CHECK(ck->n_logged >= 0 && ck->n_classes >= 0, NNU_STATUS_ERR_ARG,
              "checkpoint: negative log sizes");
    for (int i = 0; i < NNU_CKPT_NLOGS; i++)
        NNU_CHECK(ck->n_logged == 0 || ck->logs[i], NNU_STATUS_ERR_ARG,
                  "checkpoint: log array %s is missing", LOG_NAMES[i]);
    NNU_CHECK(ck->n_logged * ck->n_classes == 0 || ck->dice_per_class, NNU_STATUS_ERR_ARG,
              "checkpoint: log array dice_per_class is missing");

    char tmp[4096];
    NNU_CHECK(snprintf(tmp, sizeof tmp, "%s.tmp", path) < (int)sizeof tmp, NNU_STATUS_ERR_ARG,
              "checkpoint path too long: '%s'", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return NNU_FAIL(NNU_STATUS_ERR_IO, "cannot create '%s': %s", tmp, strerror(errno));
    writer w = {.f = fdopen(fd, "wb")};
    if (!w.f) { close(fd); unlink(tmp); return NNU_FAIL(NNU_STATUS_ERR_OOM, "fdopen '%s' failed", tmp); }

    unsigned char hdr[NNU_CKPT_HEADER] = {0};
    if (fwrite(hdr, 1, sizeof hdr, w.f) != sizeof hdr) w.err = errno ? errno : EIO;

    w_section(&w, "trainer", K_BYTES, ck->trainer, strnlen(ck->trainer, sizeof ck->trainer));
    w_section(&w, "identity", K_BYTES, ck->identity, strnlen(ck->identity, sizeof ck->identity));
    w_i64(&w, "plans_hash", (int64_t)ck->plans_hash);
    w_i64(&w, "epoch", ck->epoch);
    w_section(&w, "best_ema", K_F64, &ck->best_ema, 1);
    w_i64(&w, "optim_steps", ck->optim_steps);
    w_i64(&w, "n_classes", ck->n_classes);
    w_section(&w, "params", K_F32, nnu_tensor_data(ck->params), (uint64_t)n);
    for (int i = 0; i < ck->n_optim; i++) {
        char tag[TAG_LEN];
        snprintf(tag, sizeof tag, "optim.%s", ck->optim_name[i]);
        w_section(&w, tag, K_F32, nnu_tensor_data(ck->optim[i]), (uint64_t)n);
    }
    for (int i = 0; i < NNU_CKPT_NLOGS; i++)
        w_section(&w, LOG_NAMES[i], K_F64, ck->logs[i], (uint64_t)ck->n_logged);
    w_section(&w, "log.dice_per_class", K_F64, ck->dice_per_class,
              (uint64_t)(ck->n_logged * ck->n_classes));
    w_section(&w, "rng", K_BYTES, ck->rng, ck->rng_len);
    w_section(&w, "meta", K_BYTES, ck->meta, ck->meta_len);

    memcpy(hdr, MAGIC, 8);
    put_u32(hdr + 8, NNU_CKPT_VERSION);
    put_u32(hdr + 12, NNU_CKPT_HEADER);
    put_u64(hdr + 16, w.bytes);
    put_u32(hdr + 24, w.crc);
    put_u32(hdr + 28, w.n_sections);
    put_u32(hdr + 32, BOM);
    put_u32(hdr + 60, nnu_crc32(0, hdr, 60));
    if (!w.err && fflush(w.f) != 0) w.err = errno;
    if (!w.err && (fseek(w.f, 0, SEEK_SET) != 0 || fwrite(hdr, 1, sizeof hdr, w.f) != sizeof hdr ||
                   fflush(w.f) != 0)) w.err = errno ? errno : EIO;
    if (!w.err && !opts->no_fsync && fsync(fd) != 0) w.err = errno;
    if (fclose(w.f) != 0 && !w.err) w.err = errno;
    if (w.err) {
        unlink(tmp);
        return NNU_FAIL(NNU_STATUS_ERR_IO, "cannot write '%s': %s", tmp, strerror(w.err));
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

void nnu_checkpoint_free(nnu_checkpoint *ck) {
    if (!ck) return;
    nnu_tensor_release(ck->params);
    for (int i = 0; i < NNU_CKPT_MAX_OPTIM; i++) nnu_tensor_release(ck->optim[i]);
    for (int i = 0; i < NNU_CKPT_NLOGS; i++) free(ck->logs[i]);
    free(ck->dice_per_class);
    free(ck->rng);
    free(ck->meta);
    memset(ck, 0, sizeof *ck);
}

#define BAD(...) do { st = NNU_FAIL(NNU_STATUS_ERR_FORMAT, __VA_ARGS__); goto fail; } while (0)

/* reads exactly n bytes; 0 on short read */
static int r_exact(FILE *f, void *p, size_t n) { return fread(p, 1, n, f) == n; }

/* Pass 1: header fields, file size and payload CRC. */
static nnu_status check_container(FILE *f, const char *path, uint64_t *payload, uint32_t *nsec) {
    nnu_status st = NNU_STATUS_OK;
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0) return NNU_FAIL(NNU_STATUS_ERR_IO, "checkpoint '%s': %s", path, strerror(errno));
    uint64_t fsize = (uint64_t)sb.st_size;
    unsigned char hdr[NNU_CKPT_HEADER];
    if (fsize < NNU_CKPT_HEADER || !r_exact(f, hdr, sizeof hdr))
        BAD("checkpoint '%s': truncated (%llu bytes, shorter than the %d-byte header)", path,
            (unsigned long long)fsize, NNU_CKPT_HEADER);
    if (memcmp(hdr, MAGIC, 8) != 0) BAD("checkpoint '%s': not a checkpoint file (wrong magic)", path);
    if (get_u32(hdr + 32) != BOM) BAD("checkpoint '%s': written on a machine of the other byte order", path);
    if (get_u32(hdr + 60) != nnu_crc32(0, hdr, 60)) BAD("checkpoint '%s': header CRC mismatch (corrupt header)", path);
    if (get_u32(hdr + 8) != NNU_CKPT_VERSION)
        BAD("checkpoint '%s': format version %u, this build reads version %d", path, get_u32(hdr + 8),
            NNU_CKPT_VERSION);
    if (get_u32(hdr + 12) != NNU_CKPT_HEADER) BAD("checkpoint '%s': unexpected header size %u", path, get_u32(hdr + 12));
    *payload = get_u64(hdr + 16);
    *nsec = get_u32(hdr + 28);
    if (fsize != NNU_CKPT_HEADER + *payload)
        BAD("checkpoint '%s': %s (file has %llu bytes, header says %llu)", path,
            fsize < NNU_CKPT_HEADER + *payload ? "truncated" : "trailing bytes after the payload",
            (unsigned long long)fsize, (unsigned long long)(NNU_CKPT_HEADER + *payload));
    uint32_t crc = 0;
    unsigned char buf[1 << 16];
    for (uint64_t left = *payload; left > 0;) {
        size_t take = left > sizeof buf ? sizeof buf : (size_t)left;
        if (!r_exact(f, buf, take)) BAD("checkpoint '%s': read error or truncated payload", path);
        crc = nnu_crc32(crc, buf, take);
        left -= take;
    }
    if (crc != get_u32(hdr + 24))
        BAD("checkpoint '%s': payload CRC mismatch (stored %08x, computed %08x): the file is corrupt",
            path, get_u32(hdr + 24), crc);
fail:
    return st;
}

nnu_status nnu_checkpoint_load(const char *path, nnu_checkpoint *ck) {
    NNU_CHECK(path && ck, NNU_STATUS_ERR_ARG, "checkpoint load: NULL argument");
    memset(ck, 0, sizeof *ck);
    FILE *f = fopen(path, "rb");
    if (!f) return NNU_FAIL(NNU_STATUS_ERR_IO, "cannot open checkpoint '%s': %s", path, strerror(errno));
    uint64_t payload = 0;
    uint32_t nsec = 0;
    nnu_status st = check_container(f, path, &payload, &nsec);
    if (st) { fclose(f); return st; }

    /* Pass 2: sections. `seen` bits: the scalar and array sections required. */
    enum { S_TRAINER, S_IDENTITY, S_HASH, S_EPOCH, S_BEST, S_STEPS, S_NCLS, S_PARAMS, S_DICE,
           S_LOG0, S_REQUIRED = S_LOG0 + NNU_CKPT_NLOGS };
    int seen[S_REQUIRED] = {0};
    int64_t n_params = -1, n_dice = -1, n_log[NNU_CKPT_NLOGS] = {0};
    if (fseek(f, NNU_CKPT_HEADER, SEEK_SET) != 0) BAD("checkpoint '%s': seek failed", path);
    uint64_t pos = 0;
    for (uint32_t s = 0; s < nsec; s++) {
        unsigned char h[SEC_HDR];
        if (payload - pos < SEC_HDR || !r_exact(f, h, sizeof h))
            BAD("checkpoint '%s': section %u runs past the payload", path, s);
        pos += SEC_HDR;
        char tag[TAG_LEN + 1];
        memcpy(tag, h, TAG_LEN);
        tag[TAG_LEN] = 0;
        uint32_t kind = get_u32(h + TAG_LEN);
        uint64_t count = get_u64(h + TAG_LEN + 8);
        size_t es = kind_size(kind);
        if (!es) BAD("checkpoint '%s': section '%s' has unknown kind %u", path, tag, kind);
        if (count > (payload - pos) / es) BAD("checkpoint '%s': section '%s' runs past the payload", path, tag);
        uint64_t nb = count * es, padded = nb + (8 - nb % 8) % 8;
        if (padded > payload - pos) BAD("checkpoint '%s': section '%s' runs past the payload", path, tag);
        void *buf = malloc(nb + 1);               /* +1: NUL for text */
        if (!buf) { st = NNU_FAIL(NNU_STATUS_ERR_OOM, "checkpoint '%s': out of memory", path); goto fail; }
        if (!r_exact(f, buf, (size_t)nb)) { free(buf); BAD("checkpoint '%s': read error", path); }
        ((char *)buf)[nb] = 0;
        unsigned char pad[8];
        if (!r_exact(f, pad, (size_t)(padded - nb))) { free(buf); BAD("checkpoint '%s': read error", path); }
        pos += padded;

#define WANT(k, c) do { if (kind != (k) || ((c) >= 0 && count != (uint64_t)(c))) { free(buf); \
        BAD("checkpoint '%s': section '%s' has the wrong type or size", path, tag); } } while (0)
#define ONCE(i) do { if (seen[i]++) { free(buf); BAD("checkpoint '%s': section '%s' appears twice", path, tag); } } while (0)
        int keep = 0;
        if (!strcmp(tag, "trainer") || !strcmp(tag, "identity")) {
            int is_tr = tag[0] == 't';
            size_t cap = is_tr ? sizeof ck->trainer : sizeof ck->identity;
            WANT(K_BYTES, -1);
            ONCE(is_tr ? S_TRAINER : S_IDENTITY);
            if (count >= cap) { free(buf); BAD("checkpoint '%s': section '%s' is too long", path, tag); }
            memcpy(is_tr ? ck->trainer : ck->identity, buf, (size_t)count + 1);
        } else if (!strcmp(tag, "plans_hash") || !strcmp(tag, "epoch") || !strcmp(tag, "optim_steps") ||
                   !strcmp(tag, "n_classes")) {
            WANT(K_I64, 1);
            int64_t v = (int64_t)get_u64(buf);
            if (tag[0] == 'p') { ONCE(S_HASH); ck->plans_hash = (uint64_t)v; }
            else if (tag[0] == 'e') { ONCE(S_EPOCH); ck->epoch = v; }
            else if (tag[0] == 'o') { ONCE(S_STEPS); ck->optim_steps = v; }
            else {
                ONCE(S_NCLS);
                if (v < 0 || v > 100000) { free(buf); BAD("checkpoint '%s': bad class count %lld", path, (long long)v); }
                ck->n_classes = (int)v;
            }
            if (v < 0 && tag[0] != 'p') { free(buf); BAD("checkpoint '%s': negative %s", path, tag); }
        } else if (!strcmp(tag, "best_ema")) {
            WANT(K_F64, 1);
            ONCE(S_BEST);
            memcpy(&ck->best_ema, buf, 8);
        } else if (!strcmp(tag, "params") || !strncmp(tag, "optim.", 6)) {
            WANT(K_F32, -1);
            nnu_tensor **slot;
            if (tag[0] == 'p') { ONCE(S_PARAMS); slot = &ck->params; n_params = (int64_t)count; }
            else {
                if (ck->n_optim == NNU_CKPT_MAX_OPTIM) { free(buf); BAD("checkpoint '%s': too many optimizer buffers", path); }
                if (strlen(tag + 6) >= NNU_CKPT_NAME_LEN || !tag[6]) { free(buf); BAD("checkpoint '%s': bad optimizer buffer name '%s'", path, tag); }
                strcpy(ck->optim_name[ck->n_optim], tag + 6);
                slot = &ck->optim[ck->n_optim++];
            }
            int64_t shape[1] = {(int64_t)count};
            st = nnu_tensor_new(NNU_DTYPE_F32, 1, shape, slot);
            if (st) { free(buf); goto fail; }
            memcpy(nnu_tensor_data(*slot), buf, (size_t)nb);
        } else if (!strcmp(tag, "log.dice_per_class")) {
            WANT(K_F64, -1);
            ONCE(S_DICE);
            ck->dice_per_class = buf; keep = 1; n_dice = (int64_t)count;
        } else if (!strncmp(tag, "log.", 4)) {
            int li = -1;
            for (int i = 0; i < NNU_CKPT_NLOGS; i++) if (!strcmp(tag, LOG_NAMES[i])) li = i;
            if (li < 0) { free(buf); BAD("checkpoint '%s': unknown section '%s'", path, tag); }
            WANT(K_F64, -1);
            ONCE(S_LOG0 + li);
            ck->logs[li] = buf; keep = 1; n_log[li] = (int64_t)count;
        } else if (!strcmp(tag, "rng")) {
            WANT(K_BYTES, -1);
            if (ck->rng) { free(buf); BAD("checkpoint '%s': section 'rng' appears twice", path); }
            ck->rng = buf; ck->rng_len = (size_t)count; keep = 1;
        } else if (!strcmp(tag, "meta")) {
            WANT(K_BYTES, -1);
            if (ck->meta) { free(buf); BAD("checkpoint '%s': section 'meta' appears twice", path); }
            ck->meta = buf; ck->meta_len = (size_t)count; keep = 1;
        } else {
            free(buf);
            BAD("checkpoint '%s': unknown section '%s'", path, tag);
        }
#undef WANT
#undef ONCE
        if (!keep) free(buf);
    }
    if (pos != payload) BAD("checkpoint '%s': %llu bytes after the last section", path,
                            (unsigned long long)(payload - pos));
    static const char *const req_names[S_LOG0] = {"trainer", "identity", "plans_hash", "epoch",
                                                   "best_ema", "optim_steps", "n_classes", "params",
                                                   "log.dice_per_class"};
    for (int i = 0; i < S_REQUIRED; i++)
        if (!seen[i]) BAD("checkpoint '%s': required section '%s' is missing", path,
                          i < S_LOG0 ? req_names[i] : LOG_NAMES[i - S_LOG0]);
    ck->n_logged = n_log[0];
    for (int i = 1; i < NNU_CKPT_NLOGS; i++)
        if (n_log[i] != ck->n_logged)
            BAD("checkpoint '%s': log '%s' has %lld entries, '%s' %lld", path, LOG_NAMES[i],
                (long long)n_log[i], LOG_NAMES[0], (long long)ck->n_logged);
    if (n_dice != ck->n_logged * ck->n_classes)
        BAD("checkpoint '%s': dice_per_class has %lld entries, expected %lld epochs x %d classes", path,
            (long long)n_dice, (long long)ck->n_logged, ck->n_classes);
    for (int i = 0; i < ck->n_optim; i++)
        if (nnu_tensor_numel(ck->optim[i]) != n_params)
            BAD("checkpoint '%s': optimizer buffer '%s' has %lld values, the parameters %lld", path,
                ck->optim_name[i], (long long)nnu_tensor_numel(ck->optim[i]), (long long)n_params);
    fclose(f);
    return NNU_STATUS_OK;
fail:
    fclose(f);
    nnu_checkpoint_free(ck);
    return st;
}
