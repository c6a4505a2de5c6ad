/* nnu_npz.c: see nnu_npz.h.
 *
 * Layout of a member as CPython's zipfile writes it for numpy (seekable file):
 *   local header (30 B) | name | zip64 extra (20 B: id 1, size 16, usize Q, csize Q)
 *   | raw deflate data
 * The local header is written with zero sizes first and rewritten after the data
 * (sizes and CRC known), exactly as zipfile does. Central directory entries carry
 * a zip64 extra only for values above ZIP64_LIMIT = 2^31 − 1 (zipfile's limit).
 * All integers little endian. */
#define _FILE_OFFSET_BITS 64
#include "nnu_npz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define ZIP64_LIMIT ((int64_t)0x7fffffff)
#define CHUNK (1 << 20)

typedef struct entry {
    char    *name;
    uint32_t crc;
    int64_t  usize, csize, offset;
} entry;

struct nnu_npz_writer {
    FILE  *f;
    char  *path;
    int    level;
    int    n, cap;
    entry *e;
    unsigned char *out;          /* CHUNK bytes of deflate output */
};

/* ---------------------------------------------------------------- helpers */

static void put16(unsigned char *p, unsigned v) { p[0] = v & 0xff; p[1] = (v >> 8) & 0xff; }
static void put32(unsigned char *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (v >> (8 * i)) & 0xff; }
static void put64(unsigned char *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (v >> (8 * i)) & 0xff; }
static unsigned get16(const unsigned char *p) { return p[0] | (unsigned)p[1] << 8; }
static uint32_t get32(const unsigned char *p) { return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t get64(const unsigned char *p) { return get32(p) | (uint64_t)get32(p + 4) << 32; }

static const char *npy_descr(nnu_dtype dt) {
    switch (dt) {
    case NNU_DTYPE_F32: return "<f4";
    case NNU_DTYPE_F64: return "<f8";
    case NNU_DTYPE_F16: return "<f2";
    case NNU_DTYPE_U8:  return "|u1";
    case NNU_DTYPE_I8:  return "|i1";
    case NNU_DTYPE_I16: return "<i2";
    case NNU_DTYPE_U16: return "<u2";
    case NNU_DTYPE_I32: return "<i4";
    case NNU_DTYPE_I64: return "<i8";
    default: return NULL;
    }
}

int nnu_npy_header(const nnu_tensor *t, char *buf, int cap) {
    const char *descr = npy_descr(t->dtype);
    if (!descr || cap < 256) return -1;
    char shape[160] = "(";
    size_t sl = 1;
    for (int a = 0; a < t->ndim; a++)       /* Python tuple repr: (5,) and (2, 3, 4) */
        sl += (size_t)snprintf(shape + sl, sizeof shape - sl, a ? ", %lld" : "%lld", (long long)t->shape[a]);
    snprintf(shape + sl, sizeof shape - sl, t->ndim == 1 ? ",)" : ")");
    char dict[256];
    int dl = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr, shape);
    if (t->ndim > 0) {                      /* numpy's growth space: 21 − len(repr(shape[0])) */
        char first[32];
        int fl = snprintf(first, sizeof first, "%lld", (long long)t->shape[0]);
        for (int i = 0; i < 21 - fl && dl < (int)sizeof dict - 1; i++) dict[dl++] = ' ';
        dict[dl] = 0;
    }
    int hlen = dl + 1, pad = 64 - ((10 + hlen) % 64);   /* _wrap_header, ARRAY_ALIGN 64 */
    if (10 + hlen + pad > cap) return -1;
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    put16((unsigned char *)buf + 8, (unsigned)(hlen + pad));
    memcpy(buf + 10, dict, (size_t)dl);
    memset(buf + 10 + dl, ' ', (size_t)pad);
    buf[10 + dl + pad] = '\n';
    return 10 + hlen + pad;
}

/* ---------------------------------------------------------------- writer */

nnu_status nnu_npz_create(const char *path, int level, nnu_npz_writer **out) {
    *out = NULL;
    NNU_CHECK(level >= -1 && level <= 9, NNU_STATUS_ERR_ARG, "npz: compression level %d", level);
    nnu_npz_writer *w = calloc(1, sizeof *w);
    NNU_CHECK(w, NNU_STATUS_ERR_OOM, "npz: out of memory");
    w->level = level;
    w->path = strdup(path);
    w->out = malloc(CHUNK);
    w->f = fopen(path, "wb");
    if (!w->f || !w->path || !w->out) {
        int io = !w->f;
        if (w->f) fclose(w->f);
        free(w->path); free(w->out); free(w);
        return io ? NNU_FAIL(NNU_STATUS_ERR_IO, "npz: cannot create '%s'", path)
                  : NNU_FAIL(NNU_STATUS_ERR_OOM, "npz: out of memory");
    }
    *out = w;
    return NNU_STATUS_OK;
}

static void local_header(unsigned char *h, const entry *e, size_t namelen) {
    int big = e->usize > ZIP64_LIMIT || e->csize > ZIP64_LIMIT;
    put32(h, 0x04034b50);
    put16(h + 4, big ? 45 : 20);            /* version needed */
    put16(h + 6, 0);                        /* flags */
    put16(h + 8, 8);                        /* deflate */
    put16(h + 10, 0);                       /* time 00:00:00 */
    put16(h + 12, (0 << 9) | (1 << 5) | 1); /* date 1980-01-01 */
    put32(h + 14, e->crc);
    put32(h + 18, big ? 0xffffffffu : (uint32_t)e->csize);
    put32(h + 22, big ? 0xffffffffu : (uint32_t)e->usize);
    put16(h + 26, (unsigned)namelen);
    put16(h + 28, 20);                      /* extra: zip64 (always, force_zip64) */
    unsigned char *x = h + 30 + namelen;
    put16(x, 1);
    put16(x + 2, 16);
    put64(x + 4, (uint64_t)e->usize);
    put64(x + 12, (uint64_t)e->csize);
}

/* Feeds n bytes (flush: Z_FINISH at the end) through the deflater into the file. */
static nnu_status deflate_write(nnu_npz_writer *w, z_stream *z, const void *data, size_t n, int flush,
                                entry *e) {
    const unsigned char *p = data;
    do {
        size_t take = n > (1u << 30) ? (1u << 30) : n;
        z->next_in = (unsigned char *)p;
        z->avail_in = (uInt)take;
        e->crc = (uint32_t)crc32_z(e->crc, p, take);
        int fl = (flush == Z_FINISH && take == n) ? Z_FINISH : Z_NO_FLUSH;
        int rc;
        do {
            z->next_out = w->out;
            z->avail_out = CHUNK;
            rc = deflate(z, fl);
            NNU_CHECK(rc != Z_STREAM_ERROR, NNU_STATUS_ERR_FORMAT, "npz: deflate failed");
            size_t have = CHUNK - z->avail_out;
            NNU_CHECK(fwrite(w->out, 1, have, w->f) == have, NNU_STATUS_ERR_IO,
                      "npz: cannot write '%s'", w->path);
            e->csize += (int64_t)have;
        } while (z->avail_out == 0 || (fl == Z_FINISH && rc != Z_STREAM_END));
        p += take;
        n -= take;
        e->usize += (int64_t)take;
    } while (n > 0);
    return NNU_STATUS_OK;
}

nnu_status nnu_npz_add(nnu_npz_writer *w, const char *key, const nnu_tensor *t) {
    char hdr[512];
    int hl = nnu_npy_header(t, hdr, sizeof hdr);
    NNU_CHECK(hl > 0, NNU_STATUS_ERR_UNSUPPORTED, "npz: dtype %s cannot be written", nnu_dtype_name(t->dtype));
    NNU_CHECK(key && *key && strlen(key) < 4000, NNU_STATUS_ERR_ARG, "npz: bad member name");
    if (w->n == w->cap) {
        int cap = w->cap ? w->cap * 2 : 4;
        entry *e = realloc(w->e, sizeof *e * (size_t)cap);
        NNU_CHECK(e, NNU_STATUS_ERR_OOM, "npz: out of memory");
        w->e = e;
        w->cap = cap;
    }
    entry *e = &w->e[w->n];
    memset(e, 0, sizeof *e);
    size_t kl = strlen(key);
    e->name = malloc(kl + 5);
    NNU_CHECK(e->name, NNU_STATUS_ERR_OOM, "npz: out of memory");
    memcpy(e->name, key, kl);
    memcpy(e->name + kl, ".npy", 5);
    w->n++;
    size_t nl = kl + 4;
    e->offset = (int64_t)ftello(w->f);
    unsigned char *lh = calloc(1, 30 + nl + 20);
    NNU_CHECK(lh, NNU_STATUS_ERR_OOM, "npz: out of memory");
    memcpy(lh + 30, e->name, nl);
    local_header(lh, e, nl);                /* placeholder: sizes 0, crc 0 */
    if (fwrite(lh, 1, 30 + nl + 20, w->f) != 30 + nl + 20) {
        free(lh);
        return NNU_FAIL(NNU_STATUS_ERR_IO, "npz: cannot write '%s'", w->path);
    }

    nnu_tensor *c = NULL;
    nnu_status st = nnu_tensor_contiguous((nnu_tensor *)t, &c);   /* read only */
    z_stream z;
    memset(&z, 0, sizeof z);
    if (!st && deflateInit2(&z, w->level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        st = NNU_FAIL(NNU_STATUS_ERR_OOM, "npz: deflateInit failed");
    else if (!st) {
        e->crc = (uint32_t)crc32_z(0, NULL, 0);
        size_t nbytes = (size_t)nnu_tensor_numel(c) * nnu_dtype_size(c->dtype);
        st = deflate_write(w, &z, hdr, (size_t)hl, Z_NO_FLUSH, e);
        if (!st) st = deflate_write(w, &z, nnu_tensor_data(c), nbytes, Z_FINISH, e);
        deflateEnd(&z);
    }
    nnu_tensor_release(c);
    if (!st) {                              /* rewrite the local header with the sizes */
        int64_t end = (int64_t)ftello(w->f);
        local_header(lh, e, nl);
        if (fseeko(w->f, (off_t)e->offset, SEEK_SET) || fwrite(lh, 1, 30 + nl + 20, w->f) != 30 + nl + 20 ||
            fseeko(w->f, (off_t)end, SEEK_SET))
            st = NNU_FAIL(NNU_STATUS_ERR_IO, "npz: cannot write '%s'", w->path);
    }
    free(lh);
    return st;
}

nnu_status nnu_npz_close(nnu_npz_writer *w) {
    if (!w) return NNU_STATUS_OK;
    nnu_status st = NNU_STATUS_OK;
    int64_t cd_start = (int64_t)ftello(w->f);
    for (int i = 0; i < w->n && !st; i++) {
        entry *e = &w->e[i];
        size_t nl = strlen(e->name);
        uint64_t extra[3];
        int nx = 0, bigsz = e->usize > ZIP64_LIMIT || e->csize > ZIP64_LIMIT, bigoff = e->offset > ZIP64_LIMIT;
        if (bigsz) { extra[nx++] = (uint64_t)e->usize; extra[nx++] = (uint64_t)e->csize; }
        if (bigoff) extra[nx++] = (uint64_t)e->offset;
        unsigned char h[46 + 4 + 24];
        unsigned ver = (nx || bigsz) ? 45 : 20;
        put32(h, 0x02014b50);
        put16(h + 4, ver | (3 << 8));       /* made by: version, unix */
        put16(h + 6, ver);
        put16(h + 8, 0);
        put16(h + 10, 8);
        put16(h + 12, 0);
        put16(h + 14, (1 << 5) | 1);
        put32(h + 16, e->crc);
        put32(h + 20, bigsz ? 0xffffffffu : (uint32_t)e->csize);
        put32(h + 24, bigsz ? 0xffffffffu : (uint32_t)e->usize);
        put16(h + 28, (unsigned)nl);
        put16(h + 30, nx ? (unsigned)(4 + 8 * nx) : 0);
        put16(h + 32, 0);                   /* comment */
        put16(h + 34, 0);                   /* disk */
        put16(h + 36, 0);                   /* internal attributes */
        put32(h + 38, 0600u << 16);         /* external: -rw------- */
        put32(h + 42, bigoff ? 0xffffffffu : (uint32_t)e->offset);
        unsigned char x[4 + 24];
        put16(x, 1);
        put16(x + 2, (unsigned)(8 * nx));
        for (int k = 0; k < nx; k++) put64(x + 4 + 8 * k, extra[k]);
        if (fwrite(h, 1, 46, w->f) != 46 || fwrite(e->name, 1, nl, w->f) != nl ||
            (nx && fwrite(x, 1, (size_t)(4 + 8 * nx), w->f) != (size_t)(4 + 8 * nx)))
            st = NNU_FAIL(NNU_STATUS_ERR_IO, "npz: cannot write '%s'", w->path);
    }
    int64_t cd_end = (int64_t)ftello(w->f), cd_size = cd_end - cd_start;
    if (!st && (w->n > 0xffff || cd_start > ZIP64_LIMIT || cd_size > ZIP64_LIMIT)) {
        unsigned char r[56 + 20];
        put32(r, 0x06064b50);
        put64(r + 4, 44);
        put16(r + 12, 45);
        put16(r + 14, 45);
        put32(r + 16, 0);
        put32(r + 20, 0);
        put64(r + 24, (uint64_t)w->n);
        put64(r + 32, (uint64_t)w->n);
        put64(r + 40, (uint64_t)cd_size);
        put64(r + 48, (uint64_t)cd_start);
        put32(r + 56, 0x07064b50);          /* zip64 end locator */
        put32(r + 60, 0);
        put64(r + 64, (uint64_t)cd_end);
        put32(r + 72, 1);
        if (fwrite(r, 1, sizeof r, w->f) != sizeof r)
            st = NNU_FAIL(NNU_STATUS_ERR_IO, "npz: cannot write '%s'", w->path);
    }
    if (!st) {
        unsigned char r[22];
        put32(r, 0x06054b50);
        put16(r + 4, 0);
        put16(r + 6, 0);
        put16(r + 8, w->n > 0xffff ? 0xffff : (unsigned)w->n);
        put16(r + 10, w->n > 0xffff ? 0xffff : (unsigned)w->n);
        put32(r + 12, cd_size > 0xffffffffLL ? 0xffffffffu : (uint32_t)cd_size);
        put32(r + 16, cd_start > 0xffffffffLL ? 0xffffffffu : (uint32_t)cd_start);
        put16(r + 20, 0);
        if (fwrite(r, 1, sizeof r, w->f) != sizeof r)
            st = NNU_FAIL(NNU_STATUS_ERR_IO, "npz: cannot write '%s'", w->path);
    }
    if (fclose(w->f) != 0 && !st) st = NNU_FAIL(NNU_STATUS_ERR_IO, "npz: cannot close '%s'", w->path);
    for (int i = 0; i < w->n; i++) free(w->e[i].name);
    free(w->e); free(w->out); free(w->path); free(w);
    return st;
}

nnu_status nnu_npz_save(const char *path, int n, const char *const *keys,
                        const nnu_tensor *const *arrays) {
    nnu_npz_writer *w = NULL;
    NNU_TRY(nnu_npz_create(path, -1, &w));
    nnu_status st = NNU_STATUS_OK;
    for (int i = 0; i < n && !st; i++) st = nnu_npz_add(w, keys[i], arrays[i]);
    nnu_status st2 = nnu_npz_close(w);
    return st ? st : st2;
}

/* ---------------------------------------------------------------- reader */

/* Parses the dict of a .npy header (h: NUL-terminated) into dtype and shape. */
static nnu_status parse_npy(const char *h, nnu_dtype *dt, int *nd, int64_t *shape) {
    static const struct { const char *d; nnu_dtype t; } tab[] = {
        {"<f4", NNU_DTYPE_F32}, {"<f8", NNU_DTYPE_F64}, {"<f2", NNU_DTYPE_F16}, {"|u1", NNU_DTYPE_U8},
        {"|i1", NNU_DTYPE_I8},  {"<i2", NNU_DTYPE_I16}, {"<u2", NNU_DTYPE_U16}, {"<i4", NNU_DTYPE_I32},
        {"<i8", NNU_DTYPE_I64}, {"|b1", NNU_DTYPE_U8}};
    const char *d = strstr(h, "'descr': '");
    NNU_CHECK(d, NNU_STATUS_ERR_FORMAT, "npy: no descr in header");
    d += 10;
    int found = 0;
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++)
        if (strncmp(d, tab[i].d, 3) == 0 && d[3] == '\'') { *dt = tab[i].t; found = 1; }
    NNU_CHECK(found, NNU_STATUS_ERR_UNSUPPORTED, "npy: dtype %.8s not supported", d);
    NNU_CHECK(strstr(h, "'fortran_order': False"), NNU_STATUS_ERR_UNSUPPORTED, "npy: Fortran order not supported");
    const char *s = strstr(h, "'shape': (");
    NNU_CHECK(s, NNU_STATUS_ERR_FORMAT, "npy: no shape in header");
    s += 10;
    *nd = 0;
    while (*s && *s != ')') {
        while (*s == ' ' || *s == ',') s++;
        if (*s == ')') break;
        char *end;
        long long v = strtoll(s, &end, 10);
        NNU_CHECK(end != s && *nd < NNU_MAX_DIMS, NNU_STATUS_ERR_FORMAT, "npy: bad shape");
        shape[(*nd)++] = v;
        s = end;
        while (*s == 'L') s++;
    }
    return NNU_STATUS_OK;
}

static nnu_status read_exact(FILE *f, void *buf, size_t n, const char *path) {
    NNU_CHECK(fread(buf, 1, n, f) == n, NNU_STATUS_ERR_FORMAT, "npz: '%s' is truncated", path);
    return NNU_STATUS_OK;
}

/* A member's uncompressed bytes, read sequentially (stored or deflated). */
typedef struct mstream {
    FILE *f;
    const char *path;
    int method, inflating, ended;
    int64_t cleft;               /* compressed bytes not yet read from the file */
    z_stream z;
    unsigned char *in;
} mstream;

static nnu_status ms_open(mstream *m, FILE *f, const char *path, int method, int64_t csize) {
    memset(m, 0, sizeof *m);
    m->f = f;
    m->path = path;
    m->method = method;
    m->cleft = csize;
    if (method == 0) return NNU_STATUS_OK;
    NNU_CHECK(method == 8, NNU_STATUS_ERR_UNSUPPORTED, "npz: '%s': compression method %d", path, method);
    m->in = malloc(CHUNK);
    NNU_CHECK(m->in, NNU_STATUS_ERR_OOM, "npz: out of memory");
    if (inflateInit2(&m->z, -15) != Z_OK) {
        free(m->in);
        return NNU_FAIL(NNU_STATUS_ERR_OOM, "npz: inflateInit failed");
    }
    m->inflating = 1;
    return NNU_STATUS_OK;
}

static void ms_close(mstream *m) {
    if (m->inflating) inflateEnd(&m->z);
    free(m->in);
    m->in = NULL;
    m->inflating = 0;
}

static nnu_status ms_read(mstream *m, void *dst, size_t n) {
    if (m->method == 0) return read_exact(m->f, dst, n, m->path);
    size_t got = 0;
    while (got < n) {
        NNU_CHECK(!m->ended, NNU_STATUS_ERR_FORMAT, "npz: '%s': member shorter than its header says", m->path);
        if (m->z.avail_in == 0) {
            size_t want = m->cleft > CHUNK ? CHUNK : (size_t)m->cleft;
            NNU_CHECK(want > 0, NNU_STATUS_ERR_FORMAT, "npz: '%s': truncated member", m->path);
            NNU_TRY(read_exact(m->f, m->in, want, m->path));
            m->cleft -= (int64_t)want;
            m->z.next_in = m->in;
            m->z.avail_in = (uInt)want;
        }
        size_t room = n - got > (1u << 30) ? (1u << 30) : n - got;
        m->z.next_out = (unsigned char *)dst + got;
        m->z.avail_out = (uInt)room;
        int rc = inflate(&m->z, Z_NO_FLUSH);
        NNU_CHECK(rc == Z_OK || rc == Z_STREAM_END || rc == Z_BUF_ERROR, NNU_STATUS_ERR_FORMAT,
                  "npz: '%s': corrupt data", m->path);
        if (rc == Z_STREAM_END) m->ended = 1;
        got += room - m->z.avail_out;
    }
    return NNU_STATUS_OK;
}

/* Finds member `name`: its method, compressed size, uncompressed size and the
 * file offset of its data. */
static nnu_status find_member(FILE *f, const char *path, const char *name, int *method, int64_t *csize,
                              int64_t *usize, int64_t *data_off) {
    NNU_CHECK(fseeko(f, 0, SEEK_END) == 0, NNU_STATUS_ERR_IO, "npz: cannot seek '%s'", path);
    int64_t fsize = (int64_t)ftello(f);
    int64_t tail = fsize < 65536 + 22 ? fsize : 65536 + 22;
    unsigned char *t = malloc((size_t)tail + 1);
    NNU_CHECK(t, NNU_STATUS_ERR_OOM, "npz: out of memory");
    nnu_status st = NNU_STATUS_OK;
    if (fseeko(f, (off_t)(fsize - tail), SEEK_SET) || fread(t, 1, (size_t)tail, f) != (size_t)tail) {
        free(t);
        return NNU_FAIL(NNU_STATUS_ERR_FORMAT, "npz: cannot read '%s'", path);
    }
    int64_t eocd = -1;
    for (int64_t i = tail - 22; i >= 0; i--)
        if (get32(t + i) == 0x06054b50) { eocd = i; break; }
    if (eocd < 0) { free(t); return NNU_FAIL(NNU_STATUS_ERR_FORMAT, "npz: '%s' is not a zip file", path); }
    int64_t count = get16(t + eocd + 10), cd_off = get32(t + eocd + 16);
    if (eocd >= 20 && get32(t + eocd - 20) == 0x07064b50) {       /* zip64 locator */
        unsigned char r[56];
        int64_t z64 = (int64_t)get64(t + eocd - 20 + 8);
        if (fseeko(f, (off_t)z64, SEEK_SET) || fread(r, 1, 56, f) != 56 || get32(r) != 0x06064b50) {
            free(t);
            return NNU_FAIL(NNU_STATUS_ERR_FORMAT, "npz: '%s': bad zip64 end record", path);
        }
        count = (int64_t)get64(r + 32);
        cd_off = (int64_t)get64(r + 48);
    }
    free(t);
    NNU_CHECK(fseeko(f, (off_t)cd_off, SEEK_SET) == 0, NNU_STATUS_ERR_FORMAT, "npz: '%s': bad directory", path);
    int64_t lh_off = -1;
    for (int64_t i = 0; i < count && !st && lh_off < 0; i++) {
        unsigned char h[46];
        if ((st = read_exact(f, h, 46, path))) break;
        if (get32(h) != 0x02014b50) { st = NNU_FAIL(NNU_STATUS_ERR_FORMAT, "npz: '%s': bad directory entry", path); break; }
        unsigned nl = get16(h + 28), xl = get16(h + 30), cl = get16(h + 32);
        char nm[65536 + 1];
        unsigned char x[65536];
        if ((st = read_exact(f, nm, nl, path)) || (st = read_exact(f, x, xl, path))) break;
        nm[nl] = 0;
        if (fseeko(f, cl, SEEK_CUR)) { st = NNU_FAIL(NNU_STATUS_ERR_FORMAT, "npz: '%s'", path); break; }
        if (strcmp(nm, name) != 0) continue;
        *method = (int)get16(h + 10);
        int64_t cs = get32(h + 20), us = get32(h + 24), off = get32(h + 42);
        for (unsigned p = 0; p + 4 <= xl;) {                          /* zip64 extra */
            unsigned id = get16(x + p), sz = get16(x + p + 2), q = p + 4;
            if (id == 1) {
                if (us == 0xffffffffLL && q + 8 <= p + 4 + sz) { us = (int64_t)get64(x + q); q += 8; }
                if (cs == 0xffffffffLL && q + 8 <= p + 4 + sz) { cs = (int64_t)get64(x + q); q += 8; }
                if (off == 0xffffffffLL && q + 8 <= p + 4 + sz) { off = (int64_t)get64(x + q); }
            }
            p += 4 + sz;
        }
        *csize = cs;
        *usize = us;
        lh_off = off;
    }
    if (st) return st;
    NNU_CHECK(lh_off >= 0, NNU_STATUS_ERR_ARG, "npz: '%s' has no member '%s'", path, name);
    unsigned char lh[30];
    NNU_CHECK(fseeko(f, (off_t)lh_off, SEEK_SET) == 0, NNU_STATUS_ERR_FORMAT, "npz: '%s'", path);
    NNU_TRY(read_exact(f, lh, 30, path));
    NNU_CHECK(get32(lh) == 0x04034b50, NNU_STATUS_ERR_FORMAT, "npz: '%s': bad local header", path);
    *data_off = lh_off + 30 + get16(lh + 26) + get16(lh + 28);
    return NNU_STATUS_OK;
}

/* Reads an .npy stream (header + data) of `usize` bytes from the member at data_off. */
static nnu_status load_npy_stream(FILE *f, const char *path, int method, int64_t csize, int64_t usize,
                                  int64_t data_off, nnu_tensor **out) {
    NNU_CHECK(fseeko(f, (off_t)data_off, SEEK_SET) == 0, NNU_STATUS_ERR_FORMAT, "npz: '%s'", path);
    mstream m;
    NNU_TRY(ms_open(&m, f, path, method, csize));
    unsigned char *head = malloc(12 + 65536 + 1);
    nnu_tensor *t = NULL;
    nnu_status st = head ? NNU_STATUS_OK : NNU_FAIL(NNU_STATUS_ERR_OOM, "npz: out of memory");
    size_t hn = 0, doff = 0;
    if (!st && usize < 12) st = NNU_FAIL(NNU_STATUS_ERR_FORMAT, "npy: '%s': member too short", path);
    if (!st) st = ms_read(&m, head, 12);                  /* magic, version, header length */
    if (!st) {
        hn = head[6] == 1 ? 10 + (size_t)get16(head + 8) : 12 + (size_t)get32(head + 8);
        if (hn > 12 + 65535 || (int64_t)hn > usize) st = NNU_FAIL(NNU_STATUS_ERR_FORMAT, "npy: '%s': bad header", path);
        else st = ms_read(&m, head + 12, hn - 12);
    }
    nnu_dtype dt = NNU_DTYPE_F32;
    int nd = 0;
    int64_t shape[NNU_MAX_DIMS];
    if (!st && memcmp(head, "\x93NUMPY", 6) != 0)
        st = NNU_FAIL(NNU_STATUS_ERR_FORMAT, "npy: '%s': not an .npy stream (bad magic)", path);
    if (!st) {
        head[hn] = 0;
        doff = hn;
        st = parse_npy((const char *)head + (head[6] == 1 ? 10 : 12), &dt, &nd, shape);
    }
    if (!st) st = nnu_tensor_new(dt, nd, shape, &t);
    if (!st) {
        size_t nbytes = (size_t)nnu_tensor_numel(t) * nnu_dtype_size(dt);
        if ((int64_t)(doff + nbytes) != usize)
            st = NNU_FAIL(NNU_STATUS_ERR_FORMAT, "npy: '%s': %lld data bytes, %zu expected", path,
                          (long long)(usize - (int64_t)doff), nbytes);
        else st = ms_read(&m, nnu_tensor_data(t), nbytes);
    }
    ms_close(&m);
    free(head);
    if (st) { nnu_tensor_release(t); return st; }
    *out = t;
    return NNU_STATUS_OK;
}

nnu_status nnu_npz_load(const char *path, const char *key, nnu_tensor **out) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    NNU_CHECK(f, NNU_STATUS_ERR_IO, "npz: cannot open '%s'", path);
    char name[4100];
    snprintf(name, sizeof name, "%s.npy", key);
    int method = 0;
    int64_t cs = 0, us = 0, off = 0;
    nnu_status st = find_member(f, path, name, &method, &cs, &us, &off);
    if (!st) st = load_npy_stream(f, path, method, cs, us, off, out);
    fclose(f);
    return st;
}

nnu_status nnu_npy_load(const char *path, nnu_tensor **out) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    NNU_CHECK(f, NNU_STATUS_ERR_IO, "npy: cannot open '%s'", path);
    fseeko(f, 0, SEEK_END);
    int64_t n = (int64_t)ftello(f);
    nnu_status st = load_npy_stream(f, path, 0, n, n, 0, out);
    fclose(f);
    return st;
}
