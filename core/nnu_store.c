/* nnu_store.c: the preprocessed-case file format (see nnu_store.h and
 * docs/preprocessing_storage.md).
 *
 * Byte layout (little-endian; the header is serialized field by field):
 *   [0, 256)            header
 *       0 magic "NNUCASE1"   8 u32 version     12 u32 header bytes (256)
 *      16 u32 data dtype    20 u32 seg dtype   24 u32 codec   28 u32 channels C
 *      32 i64 shape[3]      56 i64 chunk[3]    80 u64 plans hash
 *      88 char plans_id[64]
 *     152 u64 index offset 160 u64 index entries = (C + 1) * chunks per volume
 *     168 u64 locations offset 176 u64 locations bytes 184 u64 file size
 *     192..251 zero        252 u32 CRC-32 of bytes [0, 252)
 *   [256, 256 + 24 E)     index, E entries of {u64 offset, u32 stored bytes,
 *                         u32 CRC-32 of the stored bytes, u32 codec, u32 raw bytes}
 *                         order: channel 0 chunks, ..., channel C-1, seg; each in
 *                         C order of the chunk grid (z outer, x inner)
 *   chunks                each chunk holds its own extent (edge chunks are smaller),
 *                         C order; DEFLATE = zlib stream of the byte-shuffled chunk
 *                         (all first bytes of the elements, then all second bytes, ...);
 *                         PALETTE = zlib stream of {u32 K, K distinct elements
 *                         ascending by bit pattern, indices u8 (K <= 256) or u16 as
 *                         all low bytes then all high bytes}
 *   class locations       u32 n_keys; per key: u32 n_values, i32 values[n_values],
 *                         u64 n, i32 coords[n][3] (z, y, x)
 * The stored bytes of every element are the host's little-endian representation. */
#include "nnu_store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "nnu_store assumes a little-endian host (elements are stored as in memory)"
#endif

#define HDR_BYTES   256
#define ENTRY_BYTES 24
static const char MAGIC[8] = {'N', 'N', 'U', 'C', 'A', 'S', 'E', '1'};

typedef struct chunk_entry {
    uint64_t offset;
    uint32_t nbytes, crc, codec, raw_bytes;
} chunk_entry;

struct nnu_store {
    int            fd;
    char          *path;
    nnu_store_info info;
    int64_t        grid[3];        /* chunks per axis */
    int64_t        per_volume;     /* grid[0] * grid[1] * grid[2] */
    chunk_entry   *index;          /* (C + 1) * per_volume */
    uint64_t       locs_offset, locs_bytes;
};

/* ---- little-endian helpers ---- */

static void put_u32(unsigned char *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i)); }
static void put_u64(unsigned char *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i)); }
static uint32_t get_u32(const unsigned char *p) {
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}
static uint64_t get_u64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

void nnu_class_locations_free(nnu_class_locations *cl) {
    if (!cl) return;
    for (int k = 0; k < cl->n_keys && cl->keys; k++) {
        free(cl->keys[k].values);
        free(cl->keys[k].coords);
    }
    free(cl->keys);
    cl->keys = NULL;
    cl->n_keys = 0;
}

nnu_store_write_opts nnu_store_write_opts_default(void) {
    nnu_store_write_opts o;
    memset(&o, 0, sizeof o);
    o.data_dtype = NNU_DTYPE_F32;
    o.codec = NNU_STORE_DEFLATE;
    o.level = 1;
    return o;
}

static int64_t pow2_floor(int64_t v) {
    int64_t p = 1;
    while (p * 2 <= v) p *= 2;
    return p;
}
static int64_t clamp64(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : (v > hi ? hi : v); }

void nnu_store_default_chunk(const int64_t shape[3], const int64_t *patch, int patch_ndim,
                             int64_t chunk[3]) {
    for (int a = 0; a < 3; a++) chunk[a] = 32;
    if (patch && patch_ndim == 3) {
        for (int a = 0; a < 3; a++) chunk[a] = clamp64(pow2_floor(patch[a] / 2 > 0 ? patch[a] / 2 : 1), 4, 32);
    } else if (patch && patch_ndim == 2) {
        chunk[0] = 1;
        for (int a = 0; a < 2; a++)
            chunk[1 + a] = clamp64(pow2_floor(patch[a] / 2 > 0 ? patch[a] / 2 : 1), 64, 256);
    }
    for (int a = 0; a < 3; a++) chunk[a] = clamp64(chunk[a], 1, shape[a] > 0 ? shape[a] : 1);
}

/* ---- shuffle ---- */

static void shuffle(const unsigned char *in, unsigned char *out, int64_t n, size_t es) {
    for (size_t b = 0; b < es; b++)
        for (int64_t i = 0; i < n; i++) out[(int64_t)b * n + i] = in[i * (int64_t)es + (int64_t)b];
}
static void unshuffle(const unsigned char *in, unsigned char *out, int64_t n, size_t es) {
    for (size_t b = 0; b < es; b++)
        for (int64_t i = 0; i < n; i++) out[i * (int64_t)es + (int64_t)b] = in[(int64_t)b * n + i];
}

/* ---- I/O helpers ---- */

static nnu_status write_all(int fd, const void *buf, size_t n, uint64_t off, const char *path) {
    const char *p = buf;
    while (n > 0) {
        ssize_t w = pwrite(fd, p, n, (off_t)off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return NNU_FAIL(NNU_STATUS_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
        p += w; n -= (size_t)w; off += (uint64_t)w;
    }
    return NNU_STATUS_OK;
}

static nnu_status read_all(int fd, void *buf, size_t n, uint64_t off, const char *path) {
    char *p = buf;
    while (n > 0) {
        ssize_t r = pread(fd, p, n, (off_t)off);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return NNU_FAIL(NNU_STATUS_ERR_IO, "cannot read '%s': %s", path, strerror(errno));
        if (r == 0) return NNU_FAIL(NNU_STATUS_ERR_FORMAT, "'%s': unexpected end of file", path);
        p += r; n -= (size_t)r; off += (uint64_t)r;
    }
    return NNU_STATUS_OK;
}

/* ---- writer ---- */

typedef struct writer {
    int            fd;
    const char    *path;             /* the .tmp path, for messages */
    uint64_t       pos;              /* next chunk offset */
    int            codec, level;
    unsigned char *raw, *shuf, *comp;   /* scratch, sized for the largest chunk */
    size_t         comp_cap;
} writer;

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* Palette encoding of n elements of es (2 or 4) bytes into w->shuf: u32 K, the K
 * distinct bit patterns (ascending), then the indices as u8 (K <= 256) or as u16
 * split into low and high bytes. Returns the encoded size, or 0 when K is too
 * large for a palette to pay off (K > n / 4 or K > 65536). Preprocessed MRI/CT
 * data often has few distinct values (integer scanner values through an affine
 * normalization): a chunk then costs 1-2 bytes per voxel before deflate. */
static size_t palette_encode(writer *w, int64_t n, size_t es) {
    uint32_t *keys = (uint32_t *)w->comp;          /* comp holds >= 4n bytes: scratch */
    for (int64_t i = 0; i < n; i++)
        keys[i] = es == 4 ? ((const uint32_t *)w->raw)[i] : ((const uint16_t *)w->raw)[i];
    qsort(keys, (size_t)n, sizeof *keys, cmp_u32);
    int64_t K = 0;
    for (int64_t i = 0; i < n; i++)
        if (K == 0 || keys[i] != keys[K - 1]) keys[K++] = keys[i];
    if (K > 65536 || K > n / 4) return 0;
    unsigned char *o = w->shuf;
    put_u32(o, (uint32_t)K);
    size_t pos = 4;
    for (int64_t k = 0; k < K; k++, pos += es) {
        if (es == 4) put_u32(o + pos, keys[k]);
        else { o[pos] = (unsigned char)keys[k]; o[pos + 1] = (unsigned char)(keys[k] >> 8); }
    }
    for (int64_t i = 0; i < n; i++) {
        uint32_t v = es == 4 ? ((const uint32_t *)w->raw)[i] : ((const uint16_t *)w->raw)[i];
        int64_t lo = 0, hi = K - 1;                 /* binary search: v is present */
        while (lo < hi) {
            int64_t mid = (lo + hi) / 2;
            if (keys[mid] < v) lo = mid + 1; else hi = mid;
        }
        if (K <= 256) o[pos + i] = (unsigned char)lo;
        else { o[pos + i] = (unsigned char)lo; o[pos + n + i] = (unsigned char)(lo >> 8); }
    }
    return pos + (size_t)n * (K <= 256 ? 1 : 2);
}

/* Stores w->raw (n elements of es bytes) as one chunk, as the smallest of RAW,
 * DEFLATE (byte-shuffled) and PALETTE (palette + indices, deflated); fills *e. */
static nnu_status write_chunk(writer *w, int64_t n, size_t es, chunk_entry *e) {
    size_t raw_bytes = (size_t)n * es;
    const unsigned char *src = w->raw;
    size_t nbytes = raw_bytes;
    e->codec = NNU_STORE_RAW;
    if (w->codec == NNU_STORE_DEFLATE) {
        size_t plen = es > 1 ? palette_encode(w, n, es) : 0;
        const unsigned char *in = w->raw;
        size_t in_len = raw_bytes;
        int codec = NNU_STORE_DEFLATE;
        if (plen > 0) { in = w->shuf; in_len = plen; codec = NNU_STORE_PALETTE; }
        else if (es > 1) { shuffle(w->raw, w->shuf, n, es); in = w->shuf; }
        uLongf clen = (uLongf)w->comp_cap;
        int zr = compress2(w->comp, &clen, in, (uLong)in_len, w->level);
        if (zr != Z_OK) return NNU_FAIL(NNU_STATUS_ERR_OOM, "'%s': zlib compress2 failed (%d)", w->path, zr);
        if ((size_t)clen < raw_bytes) { src = w->comp; nbytes = (size_t)clen; e->codec = (uint32_t)codec; }
    }
    e->offset = w->pos;
    e->nbytes = (uint32_t)nbytes;
    e->raw_bytes = (uint32_t)raw_bytes;
    e->crc = (uint32_t)crc32(0L, src, (uInt)nbytes);
    NNU_TRY(write_all(w->fd, src, nbytes, w->pos, w->path));
    w->pos += nbytes;
    return NNU_STATUS_OK;
}

/* seg element (any dtype) as an integer */
static int64_t seg_value(const nnu_tensor *t, const char *p) {
    switch (t->dtype) {
        case NNU_DTYPE_I8:  return *(const int8_t *)p;
        case NNU_DTYPE_I16: return *(const int16_t *)p;
        case NNU_DTYPE_F32: return (int64_t)*(const float *)p;
        default:            return (int64_t)nnu_dtype_load(t->dtype, p);
    }
}

/* Gathers chunk [o, o + e) of channel c of t (4-D, any strides) into w->raw as
 * dtype dst (f32, f16, i8 or i16). */
static void gather(const nnu_tensor *t, int64_t c, const int64_t o[3], const int64_t e[3],
                   nnu_dtype dst, unsigned char *out) {
    const char *base = (const char *)t->storage->data;
    size_t es = nnu_dtype_size(t->dtype);
    int64_t k = 0;
    for (int64_t z = 0; z < e[0]; z++)
        for (int64_t y = 0; y < e[1]; y++) {
            int64_t off = t->offset + c * t->stride[0] + (o[0] + z) * t->stride[1] + (o[1] + y) * t->stride[2]
                          + o[2] * t->stride[3];
            for (int64_t x = 0; x < e[2]; x++, k++) {
                const char *p = base + (size_t)(off + x * t->stride[3]) * es;
                switch (dst) {
                    case NNU_DTYPE_F32: ((float *)out)[k] = *(const float *)p; break;
                    case NNU_DTYPE_F16: ((uint16_t *)out)[k] = nnu_f32_to_f16(*(const float *)p); break;
                    case NNU_DTYPE_I8:  ((int8_t *)out)[k] = (int8_t)seg_value(t, p); break;
                    default:            ((int16_t *)out)[k] = (int16_t)seg_value(t, p); break;
                }
            }
        }
}

static nnu_status seg_range(const nnu_tensor *seg, int64_t *mn, int64_t *mx) {
    const char *base = (const char *)seg->storage->data;
    size_t es = nnu_dtype_size(seg->dtype);
    *mn = INT64_MAX; *mx = INT64_MIN;
    for (int64_t z = 0; z < seg->shape[1]; z++)
        for (int64_t y = 0; y < seg->shape[2]; y++)
            for (int64_t x = 0; x < seg->shape[3]; x++) {
                const char *p = base + (size_t)(seg->offset + z * seg->stride[1] + y * seg->stride[2]
                                                + x * seg->stride[3]) * es;
                int64_t v = seg_value(seg, p);
                if (nnu_dtype_is_float(seg->dtype)) {
                    double d = nnu_dtype_load(seg->dtype, p);
                    NNU_CHECK(d == (double)v, NNU_STATUS_ERR_ARG, "store: segmentation value %g is not an integer", d);
                }
                if (v < *mn) *mn = v;
                if (v > *mx) *mx = v;
            }
    return NNU_STATUS_OK;
}

static nnu_status write_locations(writer *w, const nnu_class_locations *locs, uint64_t *bytes) {
    uint64_t start = w->pos;
    unsigned char b[8];
    int nk = locs ? locs->n_keys : 0;
    put_u32(b, (uint32_t)nk);
    NNU_TRY(write_all(w->fd, b, 4, w->pos, w->path));
    w->pos += 4;
    for (int k = 0; k < nk; k++) {
        const nnu_class_locs *l = &locs->keys[k];
        NNU_CHECK(l->n_values >= 0 && l->n >= 0 && (l->n == 0 || l->coords), NNU_STATUS_ERR_ARG,
                  "store: malformed class location key %d", k);
        put_u32(b, (uint32_t)l->n_values);
        NNU_TRY(write_all(w->fd, b, 4, w->pos, w->path));
        w->pos += 4;
        if (l->n_values > 0) {
            NNU_TRY(write_all(w->fd, l->values, (size_t)l->n_values * 4, w->pos, w->path));
            w->pos += (uint64_t)l->n_values * 4;
        }
        put_u64(b, (uint64_t)l->n);
        NNU_TRY(write_all(w->fd, b, 8, w->pos, w->path));
        w->pos += 8;
        if (l->n > 0) {
            NNU_TRY(write_all(w->fd, l->coords, (size_t)l->n * 12, w->pos, w->path));
            w->pos += (uint64_t)l->n * 12;
        }
    }
    *bytes = w->pos - start;
    return NNU_STATUS_OK;
}

static void encode_header(unsigned char *h, const nnu_store_info *info, uint64_t n_entries,
                          uint64_t locs_off, uint64_t locs_bytes) {
    memset(h, 0, HDR_BYTES);
    memcpy(h, MAGIC, 8);
    put_u32(h + 8, NNU_STORE_VERSION);
    put_u32(h + 12, HDR_BYTES);
    put_u32(h + 16, (uint32_t)info->data_dtype);
    put_u32(h + 20, (uint32_t)info->seg_dtype);
    put_u32(h + 24, (uint32_t)info->codec);
    put_u32(h + 28, (uint32_t)info->n_channels);
    for (int a = 0; a < 3; a++) {
        put_u64(h + 32 + 8 * a, (uint64_t)info->shape[a]);
        put_u64(h + 56 + 8 * a, (uint64_t)info->chunk[a]);
    }
    put_u64(h + 80, info->plans_hash);
    memcpy(h + 88, info->plans_id, NNU_STORE_ID_LEN);
    put_u64(h + 152, HDR_BYTES);
    put_u64(h + 160, n_entries);
    put_u64(h + 168, locs_off);
    put_u64(h + 176, locs_bytes);
    put_u64(h + 184, info->file_size);
    put_u32(h + 252, (uint32_t)crc32(0L, h, 252));
}

/* fsync of the folder that holds path (makes the rename durable) */
static void fsync_dir(const char *path) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == dir) slash[1] = '\0';
    else if (slash) *slash = '\0';
    else snprintf(dir, sizeof dir, ".");
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) { fsync(fd); close(fd); }
}

static nnu_status write_body(writer *w, const nnu_tensor *data, const nnu_tensor *seg,
                             const nnu_class_locations *locs, nnu_store_info *info,
                             const int64_t grid[3], chunk_entry *index, uint64_t *locs_off,
                             uint64_t *locs_bytes) {
    int64_t per_volume = grid[0] * grid[1] * grid[2];
    for (int64_t c = 0; c <= info->n_channels; c++) {
        const nnu_tensor *t = c < info->n_channels ? data : seg;
        nnu_dtype dt = c < info->n_channels ? info->data_dtype : info->seg_dtype;
        int64_t tc = c < info->n_channels ? c : 0;
        int64_t i = 0;
        for (int64_t gz = 0; gz < grid[0]; gz++)
            for (int64_t gy = 0; gy < grid[1]; gy++)
                for (int64_t gx = 0; gx < grid[2]; gx++, i++) {
                    int64_t o[3] = {gz * info->chunk[0], gy * info->chunk[1], gx * info->chunk[2]}, e[3];
                    for (int a = 0; a < 3; a++)
                        e[a] = o[a] + info->chunk[a] <= info->shape[a] ? info->chunk[a] : info->shape[a] - o[a];
                    gather(t, tc, o, e, dt, w->raw);
                    NNU_TRY(write_chunk(w, e[0] * e[1] * e[2], nnu_dtype_size(dt), &index[c * per_volume + i]));
                }
    }
    *locs_off = w->pos;
    return write_locations(w, locs, locs_bytes);
}

nnu_status nnu_store_write(const char *path, const nnu_tensor *data, const nnu_tensor *seg,
                           const nnu_class_locations *locs, const nnu_store_write_opts *opts) {
    char b1[64], b2[64];
    NNU_CHECK(path && data && seg, NNU_STATUS_ERR_ARG, "store: NULL argument");
    nnu_store_write_opts o = opts ? *opts : nnu_store_write_opts_default();
    NNU_CHECK(data->ndim == 4 && data->dtype == NNU_DTYPE_F32, NNU_STATUS_ERR_SHAPE,
              "store '%s': data must be f32 (C,D,H,W), got %s %s", path, nnu_dtype_name(data->dtype),
              nnu_tensor_shape_str(data, b1, sizeof b1));
    NNU_CHECK(seg->ndim == 4 && seg->shape[0] == 1 && seg->shape[1] == data->shape[1] &&
              seg->shape[2] == data->shape[2] && seg->shape[3] == data->shape[3], NNU_STATUS_ERR_SHAPE,
              "store '%s': seg %s does not fit data %s (want (1,D,H,W))", path,
              nnu_tensor_shape_str(seg, b1, sizeof b1), nnu_tensor_shape_str(data, b2, sizeof b2));
    NNU_CHECK(o.data_dtype == NNU_DTYPE_F32 || o.data_dtype == NNU_DTYPE_F16, NNU_STATUS_ERR_ARG,
              "store: data dtype must be f32 or f16, got %s", nnu_dtype_name(o.data_dtype));
    NNU_CHECK(o.codec == NNU_STORE_RAW || o.codec == NNU_STORE_DEFLATE, NNU_STATUS_ERR_ARG,
              "store: unknown codec %d", o.codec);
    NNU_CHECK(!o.plans_id || strlen(o.plans_id) < NNU_STORE_ID_LEN, NNU_STATUS_ERR_ARG,
              "store: plans identifier longer than %d bytes", NNU_STORE_ID_LEN - 1);
    for (int a = 0; a < 3; a++)
        NNU_CHECK(data->shape[1 + a] > 0, NNU_STATUS_ERR_SHAPE, "store '%s': empty volume %s", path,
                  nnu_tensor_shape_str(data, b1, sizeof b1));
    if (o.level <= 0) o.level = 1;
    if (o.level > 9) o.level = 9;

    nnu_store_info info;
    memset(&info, 0, sizeof info);
    info.version = NNU_STORE_VERSION;
    info.n_channels = (int)data->shape[0];
    info.data_dtype = o.data_dtype;
    info.codec = o.codec;
    info.plans_hash = o.plans_hash;
    if (o.plans_id) memcpy(info.plans_id, o.plans_id, strlen(o.plans_id));
    for (int a = 0; a < 3; a++) info.shape[a] = data->shape[1 + a];
    if (o.chunk[0] > 0 && o.chunk[1] > 0 && o.chunk[2] > 0) {
        for (int a = 0; a < 3; a++) info.chunk[a] = clamp64(o.chunk[a], 1, info.shape[a]);
    } else {
        nnu_store_default_chunk(info.shape, NULL, 0, info.chunk);
    }
    int64_t mn, mx;
    NNU_TRY(seg_range(seg, &mn, &mx));
    NNU_CHECK(mn >= -32768 && mx <= 32767, NNU_STATUS_ERR_ARG,
              "store '%s': segmentation values [%lld, %lld] do not fit int16", path, (long long)mn, (long long)mx);
    info.seg_dtype = (mx > 127 || mn < -128) ? NNU_DTYPE_I16 : NNU_DTYPE_I8;

    int64_t grid[3];
    for (int a = 0; a < 3; a++) grid[a] = (info.shape[a] + info.chunk[a] - 1) / info.chunk[a];
    int64_t per_volume = grid[0] * grid[1] * grid[2];
    uint64_t n_entries = (uint64_t)(info.n_channels + 1) * (uint64_t)per_volume;
    size_t chunk_bytes = (size_t)(info.chunk[0] * info.chunk[1] * info.chunk[2]) * 4;

    char tmp[4096];
    int n = snprintf(tmp, sizeof tmp, "%s.tmp", path);
    NNU_CHECK(n > 0 && (size_t)n < sizeof tmp, NNU_STATUS_ERR_ARG, "store: path too long");
    writer w;
    memset(&w, 0, sizeof w);
    w.path = tmp;
    w.codec = o.codec;
    w.level = o.level;
    size_t shuf_bytes = chunk_bytes + 4 + 65536 * 4;          /* also a palette encoding */
    w.comp_cap = (size_t)compressBound((uLong)shuf_bytes);
    w.raw = malloc(chunk_bytes);
    w.shuf = malloc(shuf_bytes);
    w.comp = malloc(w.comp_cap);
    chunk_entry *index = calloc((size_t)n_entries, sizeof *index);
    unsigned char *ibuf = malloc((size_t)n_entries * ENTRY_BYTES);
    nnu_status st = NNU_STATUS_OK;
    w.fd = -1;
    if (!w.raw || !w.shuf || !w.comp || !index || !ibuf) st = NNU_FAIL(NNU_STATUS_ERR_OOM, "store: out of memory");
    if (!st) {
        w.fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (w.fd < 0) st = NNU_FAIL(NNU_STATUS_ERR_IO, "cannot create '%s': %s", tmp, strerror(errno));
    }
    uint64_t locs_off = 0, locs_bytes = 0;
    w.pos = HDR_BYTES + n_entries * ENTRY_BYTES;
    if (!st) st = write_body(&w, data, seg, locs, &info, grid, index, &locs_off, &locs_bytes);
    if (!st) {
        info.file_size = w.pos;
        for (uint64_t i = 0; i < n_entries; i++) {
            unsigned char *p = ibuf + i * ENTRY_BYTES;
            put_u64(p, index[i].offset);
            put_u32(p + 8, index[i].nbytes);
            put_u32(p + 12, index[i].crc);
            put_u32(p + 16, index[i].codec);
            put_u32(p + 20, index[i].raw_bytes);
        }
        st = write_all(w.fd, ibuf, (size_t)n_entries * ENTRY_BYTES, HDR_BYTES, tmp);
    }
    if (!st) {
        unsigned char h[HDR_BYTES];
        encode_header(h, &info, n_entries, locs_off, locs_bytes);
        st = write_all(w.fd, h, HDR_BYTES, 0, tmp);          /* the header goes last */
    }
    if (!st && !o.no_fsync && fsync(w.fd) != 0)
        st = NNU_FAIL(NNU_STATUS_ERR_IO, "cannot fsync '%s': %s", tmp, strerror(errno));
    if (w.fd >= 0 && close(w.fd) != 0 && !st)
        st = NNU_FAIL(NNU_STATUS_ERR_IO, "cannot close '%s': %s", tmp, strerror(errno));
    if (!st && rename(tmp, path) != 0)
        st = NNU_FAIL(NNU_STATUS_ERR_IO, "cannot rename '%s' to '%s': %s", tmp, path, strerror(errno));
    if (st) unlink(tmp);
    else if (!o.no_fsync) fsync_dir(path);
    free(w.raw); free(w.shuf); free(w.comp); free(index); free(ibuf);
    return st;
}

/* ---- reader ---- */

nnu_status nnu_store_open(const char *path, const char *expect_id, uint64_t expect_hash,
                          nnu_store **out) {
    NNU_CHECK(path && out, NNU_STATUS_ERR_ARG, "store: NULL argument");
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return NNU_FAIL(NNU_STATUS_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    nnu_store *s = calloc(1, sizeof *s);
    nnu_status st = s ? NNU_STATUS_OK : NNU_FAIL(NNU_STATUS_ERR_OOM, "store: out of memory");
    unsigned char h[HDR_BYTES];
    struct stat sb;
    if (!st) { s->fd = fd; s->path = strdup(path); st = s->path ? NNU_STATUS_OK : NNU_FAIL(NNU_STATUS_ERR_OOM, "store: out of memory"); }
    if (!st && fstat(fd, &sb) != 0) st = NNU_FAIL(NNU_STATUS_ERR_IO, "cannot stat '%s': %s", path, strerror(errno));
    if (!st && (uint64_t)sb.st_size < HDR_BYTES)
        st = NNU_FAIL(NNU_STATUS_ERR_FORMAT, "'%s': not a case file (%lld bytes)", path, (long long)sb.st_size);
    if (!st) st = read_all(fd, h, HDR_BYTES, 0, path);
    if (!st && memcmp(h, MAGIC, 8) != 0) st = NNU_FAIL(NNU_STATUS_ERR_FORMAT, "'%s': not a case file (bad magic)", path);
    if (!st && get_u32(h + 252) != (uint32_t)crc32(0L, h, 252))
        st = NNU_FAIL(NNU_STATUS_ERR_FORMAT, "'%s': header checksum mismatch (incomplete write?)", path);
    nnu_store_info *in = s ? &s->info : NULL;
    uint64_t n_entries = 0, index_off = 0;
    if (!st) {
        in->version = (int)get_u32(h + 8);
        in->data_dtype = (nnu_dtype)get_u32(h + 16);
        in->seg_dtype = (nnu_dtype)get_u32(h + 20);
        in->codec = (int)get_u32(h + 24);
        in->n_channels = (int)get_u32(h + 28);
        for (int a = 0; a < 3; a++) {
            in->shape[a] = (int64_t)get_u64(h + 32 + 8 * a);
            in->chunk[a] = (int64_t)get_u64(h + 56 + 8 * a);
        }
        in->plans_hash = get_u64(h + 80);
        memcpy(in->plans_id, h + 88, NNU_STORE_ID_LEN);
        in->plans_id[NNU_STORE_ID_LEN - 1] = '\0';
        index_off = get_u64(h + 152);
        n_entries = get_u64(h + 160);
        s->locs_offset = get_u64(h + 168);
        s->locs_bytes = get_u64(h + 176);
        in->file_size = get_u64(h + 184);
        if (in->version != NNU_STORE_VERSION || get_u32(h + 12) != HDR_BYTES)
            st = NNU_FAIL(NNU_STATUS_ERR_FORMAT, "'%s': format version %d, this program reads version %d",
                          path, in->version, NNU_STORE_VERSION);
    }
    if (!st && in->file_size != (uint64_t)sb.st_size)
        st = NNU_FAIL(NNU_STATUS_ERR_FORMAT, "'%s': %lld bytes, the header says %llu (truncated?)", path,
                      (long long)sb.st_size, (unsigned long long)in->file_size);
    if (!st) {
        int ok = (in->data_dtype == NNU_DTYPE_F32 || in->data_dtype == NNU_DTYPE_F16) &&
                 (in->seg_dtype == NNU_DTYPE_I8 || in->seg_dtype == NNU_DTYPE_I16) && in->n_channels > 0 &&
                 in->n_channels < 4096 && index_off == HDR_BYTES;
        for (int a = 0; a < 3 && ok; a++) {
            ok = in->shape[a] > 0 && in->chunk[a] > 0 && in->chunk[a] <= in->shape[a] && in->chunk[a] <= 4096;
            if (ok) s->grid[a] = (in->shape[a] + in->chunk[a] - 1) / in->chunk[a];
        }
        if (ok) {
            s->per_volume = s->grid[0] * s->grid[1] * s->grid[2];
            ok = n_entries == (uint64_t)(in->n_channels + 1) * (uint64_t)s->per_volume &&
                 HDR_BYTES + n_entries * ENTRY_BYTES <= s->locs_offset &&
                 s->locs_offset + s->locs_bytes == in->file_size;
        }
        if (!ok) st = NNU_FAIL(NNU_STATUS_ERR_FORMAT, "'%s': inconsistent header", path);
    }
    if (!st && expect_id && strcmp(expect_id, in->plans_id) != 0)
        st = NNU_FAIL(NNU_STATUS_ERR_FORMAT, "'%s': plans identifier '%s', expected '%s'", path, in->plans_id, expect_id);
    if (!st && expect_id && expect_hash != 0 && expect_hash != in->plans_hash)
        st = NNU_FAIL(NNU_STATUS_ERR_FORMAT, "'%s': preprocessed with other plans settings (hash %016llx, expected %016llx)",
                      path, (unsigned long long)in->plans_hash, (unsigned long long)expect_hash);
    unsigned char *ibuf = NULL;
    if (!st) {
        s->index = malloc((size_t)n_entries * sizeof *s->index);
        ibuf = malloc((size_t)n_entries * ENTRY_BYTES);
        if (!s->index || !ibuf) st = NNU_FAIL(NNU_STATUS_ERR_OOM, "store: out of memory");
    }
    if (!st) st = read_all(fd, ibuf, (size_t)n_entries * ENTRY_BYTES, HDR_BYTES, path);
    for (uint64_t i = 0; i < n_entries && !st; i++) {
        const unsigned char *p = ibuf + i * ENTRY_BYTES;
        chunk_entry *e = &s->index[i];
        e->offset = get_u64(p);
        e->nbytes = get_u32(p + 8);
        e->crc = get_u32(p + 12);
        e->codec = get_u32(p + 16);
        e->raw_bytes = get_u32(p + 20);
        if (e->offset < HDR_BYTES + n_entries * ENTRY_BYTES || e->offset + e->nbytes > s->locs_offset ||
            e->codec > NNU_STORE_PALETTE || (e->codec == NNU_STORE_RAW && e->nbytes != e->raw_bytes))
            st = NNU_FAIL(NNU_STATUS_ERR_FORMAT, "'%s': corrupt chunk index entry %llu", path, (unsigned long long)i);
        else in->chunks_by_codec[e->codec]++;
    }
    free(ibuf);
    if (st) {
        if (s) { free(s->index); free(s->path); free(s); }
        close(fd);
        return st;
    }
    *out = s;
    return NNU_STATUS_OK;
}

void nnu_store_close(nnu_store *s) {
    if (!s) return;
    close(s->fd);
    free(s->index);
    free(s->path);
    free(s);
}

const nnu_store_info *nnu_store_get_info(const nnu_store *s) { return s ? &s->info : NULL; }

int nnu_store_is_valid(const char *path, const char *expect_id, uint64_t expect_hash) {
    nnu_store *s = NULL;
    if (nnu_store_open(path, expect_id, expect_hash, &s) != NNU_STATUS_OK) return 0;
    nnu_store_close(s);
    return 1;
}

/* scratch for decoding one chunk */
typedef struct decoder {
    unsigned char *stored, *tmp, *out;
    size_t         cap, tmp_cap;       /* raw chunk bytes; tmp also holds a palette encoding */
} decoder;

static nnu_status decoder_init(decoder *d, const nnu_store *s) {
    d->cap = (size_t)(s->info.chunk[0] * s->info.chunk[1] * s->info.chunk[2]) * 4;
    d->tmp_cap = d->cap + 4 + 65536 * 4;
    size_t scap = (size_t)compressBound((uLong)d->tmp_cap);
    d->stored = malloc(scap);
    d->tmp = malloc(d->tmp_cap);
    d->out = malloc(d->cap);
    if (!d->stored || !d->tmp || !d->out) {
        free(d->stored); free(d->tmp); free(d->out);
        return NNU_FAIL(NNU_STATUS_ERR_OOM, "store: out of memory");
    }
    return NNU_STATUS_OK;
}
static void decoder_free(decoder *d) { free(d->stored); free(d->tmp); free(d->out); }

/* Decodes entry `i` (n elements of es bytes) into d->out; check_crc: verify. */
static nnu_status decode_chunk(const nnu_store *s, decoder *d, int64_t i, int64_t n, size_t es, int check_crc) {
    const chunk_entry *e = &s->index[i];
    size_t raw = (size_t)n * es;
    NNU_CHECK(e->raw_bytes == raw && e->nbytes <= (size_t)compressBound((uLong)d->tmp_cap), NNU_STATUS_ERR_FORMAT,
              "'%s': chunk %lld has %u bytes, expected %zu", s->path, (long long)i, e->raw_bytes, raw);
    unsigned char *dst = e->codec == NNU_STORE_RAW ? d->out : d->stored;
    NNU_TRY(read_all(s->fd, dst, e->nbytes, e->offset, s->path));
    if (check_crc)
        NNU_CHECK((uint32_t)crc32(0L, dst, e->nbytes) == e->crc, NNU_STATUS_ERR_FORMAT,
                  "'%s': chunk %lld checksum mismatch", s->path, (long long)i);
    if (e->codec == NNU_STORE_DEFLATE) {
        uLongf len = (uLongf)raw;
        unsigned char *target = es > 1 ? d->tmp : d->out;
        int zr = uncompress(target, &len, d->stored, e->nbytes);
        NNU_CHECK(zr == Z_OK && len == raw, NNU_STATUS_ERR_FORMAT, "'%s': chunk %lld does not decompress (%d)",
                  s->path, (long long)i, zr);
        if (es > 1) unshuffle(d->tmp, d->out, n, es);
    } else if (e->codec == NNU_STORE_PALETTE) {
        uLongf len = (uLongf)d->tmp_cap;
        int zr = uncompress(d->tmp, &len, d->stored, e->nbytes);
        uint32_t K = zr == Z_OK && len >= 4 ? get_u32(d->tmp) : 0;
        size_t need = 4 + (size_t)K * es + (size_t)n * (K <= 256 ? 1 : 2);
        NNU_CHECK(zr == Z_OK && K >= 1 && K <= 65536 && (es == 2 || es == 4) && len == need, NNU_STATUS_ERR_FORMAT,
                  "'%s': palette chunk %lld is corrupt (%d)", s->path, (long long)i, zr);
        const unsigned char *pal = d->tmp + 4, *ix = pal + (size_t)K * es;
        uint32_t bad = 0;                 /* any index >= K marks the chunk corrupt */
        if (es == 4) {
            uint32_t p4[256], *o = (uint32_t *)d->out;
            if (K <= 256) {
                memcpy(p4, pal, (size_t)K * 4);
                for (int64_t k = 0; k < n; k++) { bad |= ix[k] >= K; o[k] = p4[ix[k] < K ? ix[k] : 0]; }
            } else {
                const uint32_t *p = (const uint32_t *)pal;
                for (int64_t k = 0; k < n; k++) {
                    uint32_t j = (uint32_t)ix[k] | ((uint32_t)ix[n + k] << 8);
                    bad |= j >= K;
                    o[k] = p[j < K ? j : 0];
                }
            }
        } else {
            const uint16_t *p = (const uint16_t *)pal;
            uint16_t *o = (uint16_t *)d->out;
            for (int64_t k = 0; k < n; k++) {
                uint32_t j = K <= 256 ? ix[k] : (uint32_t)ix[k] | ((uint32_t)ix[n + k] << 8);
                bad |= j >= K;
                o[k] = p[j < K ? j : 0];
            }
        }
        NNU_CHECK(!bad, NNU_STATUS_ERR_FORMAT, "'%s': palette chunk %lld: index out of range", s->path, (long long)i);
    }
    return NNU_STATUS_OK;
}

nnu_status nnu_store_verify(const nnu_store *s) {
    decoder d;
    NNU_TRY(decoder_init(&d, s));
    nnu_status st = NNU_STATUS_OK;
    const nnu_store_info *in = &s->info;
    for (int64_t c = 0; c <= in->n_channels && !st; c++) {
        size_t es = nnu_dtype_size(c < in->n_channels ? in->data_dtype : in->seg_dtype);
        int64_t i = 0;
        for (int64_t gz = 0; gz < s->grid[0] && !st; gz++)
            for (int64_t gy = 0; gy < s->grid[1] && !st; gy++)
                for (int64_t gx = 0; gx < s->grid[2] && !st; gx++, i++) {
                    int64_t g[3] = {gz, gy, gx}, n = 1;
                    for (int a = 0; a < 3; a++) {
                        int64_t o = g[a] * in->chunk[a];
                        n *= o + in->chunk[a] <= in->shape[a] ? in->chunk[a] : in->shape[a] - o;
                    }
                    st = decode_chunk(s, &d, c * s->per_volume + i, n, es, 1);
                }
    }
    decoder_free(&d);
    if (!st) {
        nnu_class_locations cl = {0, NULL};
        st = nnu_store_read_class_locations(s, &cl);
        nnu_class_locations_free(&cl);
    }
    return st;
}

/* Copies the decoded chunk (origin o, extent e, stored dtype sdt) into out
 * (dtype odt, channel stride, patch origin lo and size sz) where they overlap. */
static void scatter(const unsigned char *chunk, nnu_dtype sdt, const int64_t o[3], const int64_t e[3],
                    void *out, nnu_dtype odt, const int64_t lo[3], const int64_t sz[3]) {
    int64_t a0[3], a1[3];
    for (int a = 0; a < 3; a++) {
        a0[a] = o[a] > lo[a] ? o[a] : lo[a];
        a1[a] = o[a] + e[a] < lo[a] + sz[a] ? o[a] + e[a] : lo[a] + sz[a];
        if (a1[a] <= a0[a]) return;
    }
    for (int64_t z = a0[0]; z < a1[0]; z++)
        for (int64_t y = a0[1]; y < a1[1]; y++) {
            int64_t src = ((z - o[0]) * e[1] + (y - o[1])) * e[2] + (a0[2] - o[2]);
            int64_t dst = ((z - lo[0]) * sz[1] + (y - lo[1])) * sz[2] + (a0[2] - lo[2]);
            int64_t n = a1[2] - a0[2];
            switch (sdt) {
                case NNU_DTYPE_F32:
                    memcpy((float *)out + dst, (const float *)chunk + src, (size_t)n * 4);
                    break;
                case NNU_DTYPE_F16:
                    for (int64_t k = 0; k < n; k++)
                        ((float *)out)[dst + k] = nnu_f16_to_f32(((const uint16_t *)chunk)[src + k]);
                    break;
                default: {
                    for (int64_t k = 0; k < n; k++) {
                        int v = sdt == NNU_DTYPE_I8 ? ((const int8_t *)chunk)[src + k]
                                                    : ((const int16_t *)chunk)[src + k];
                        if (odt == NNU_DTYPE_I8) ((int8_t *)out)[dst + k] = (int8_t)v;
                        else if (odt == NNU_DTYPE_I16) ((int16_t *)out)[dst + k] = (int16_t)v;
                        else ((float *)out)[dst + k] = (float)v;
                    }
                }
            }
        }
}

/* one volume (data channel c, or the seg when c == C) into out (patch layout) */
static nnu_status read_volume(const nnu_store *s, decoder *d, int64_t c, void *out, nnu_dtype odt,
                              const int64_t lo[3], const int64_t sz[3]) {
    const nnu_store_info *in = &s->info;
    nnu_dtype sdt = c < in->n_channels ? in->data_dtype : in->seg_dtype;
    size_t es = nnu_dtype_size(sdt);
    int64_t g0[3], g1[3];
    for (int a = 0; a < 3; a++) {
        int64_t l = lo[a] < 0 ? 0 : lo[a], h = lo[a] + sz[a] > in->shape[a] ? in->shape[a] : lo[a] + sz[a];
        if (h <= l) return NNU_STATUS_OK;                   /* patch entirely outside */
        g0[a] = l / in->chunk[a];
        g1[a] = (h - 1) / in->chunk[a] + 1;
    }
    for (int64_t gz = g0[0]; gz < g1[0]; gz++)
        for (int64_t gy = g0[1]; gy < g1[1]; gy++)
            for (int64_t gx = g0[2]; gx < g1[2]; gx++) {
                int64_t g[3] = {gz, gy, gx}, o[3], e[3];
                for (int a = 0; a < 3; a++) {
                    o[a] = g[a] * in->chunk[a];
                    e[a] = o[a] + in->chunk[a] <= in->shape[a] ? in->chunk[a] : in->shape[a] - o[a];
                }
                int64_t i = c * s->per_volume + (gz * s->grid[1] + gy) * s->grid[2] + gx;
                NNU_TRY(decode_chunk(s, d, i, e[0] * e[1] * e[2], es, 0));
                scatter(d->out, sdt, o, e, out, odt, lo, sz);
            }
    return NNU_STATUS_OK;
}

nnu_status nnu_store_read_patch(const nnu_store *s, const int64_t lo[3], const int64_t size[3],
                                nnu_tensor *data_out, nnu_tensor *seg_out) {
    char b[64];
    NNU_CHECK(s && lo && size, NNU_STATUS_ERR_ARG, "store: NULL argument");
    const nnu_store_info *in = &s->info;
    for (int a = 0; a < 3; a++) NNU_CHECK(size[a] > 0, NNU_STATUS_ERR_SHAPE, "store: empty patch size");
    if (data_out) {
        NNU_CHECK(data_out->dtype == NNU_DTYPE_F32 && data_out->ndim == 4 && nnu_tensor_is_contiguous(data_out) &&
                  data_out->shape[0] == in->n_channels && data_out->shape[1] == size[0] &&
                  data_out->shape[2] == size[1] && data_out->shape[3] == size[2], NNU_STATUS_ERR_SHAPE,
                  "store '%s': data_out must be contiguous f32 (%d,%lld,%lld,%lld), got %s %s", s->path,
                  in->n_channels, (long long)size[0], (long long)size[1], (long long)size[2],
                  nnu_dtype_name(data_out->dtype), nnu_tensor_shape_str(data_out, b, sizeof b));
    }
    if (seg_out) {
        NNU_CHECK((seg_out->dtype == NNU_DTYPE_I8 || seg_out->dtype == NNU_DTYPE_I16 || seg_out->dtype == NNU_DTYPE_F32) &&
                  seg_out->ndim == 4 && nnu_tensor_is_contiguous(seg_out) && seg_out->shape[0] == 1 &&
                  seg_out->shape[1] == size[0] && seg_out->shape[2] == size[1] && seg_out->shape[3] == size[2],
                  NNU_STATUS_ERR_SHAPE, "store '%s': seg_out must be contiguous i8/i16/f32 (1,%lld,%lld,%lld), got %s %s",
                  s->path, (long long)size[0], (long long)size[1], (long long)size[2],
                  nnu_dtype_name(seg_out->dtype), nnu_tensor_shape_str(seg_out, b, sizeof b));
        NNU_CHECK(!(seg_out->dtype == NNU_DTYPE_I8 && in->seg_dtype == NNU_DTYPE_I16), NNU_STATUS_ERR_ARG,
                  "store '%s': labels are int16, seg_out must be i16 or f32", s->path);
    }
    int64_t vox = size[0] * size[1] * size[2];
    decoder d;
    NNU_TRY(decoder_init(&d, s));
    nnu_status st = NNU_STATUS_OK;
    if (data_out) {
        float *dp = nnu_tensor_data(data_out);
        memset(dp, 0, (size_t)(vox * in->n_channels) * sizeof(float));          /* padding: 0 */
        for (int64_t c = 0; c < in->n_channels && !st; c++)
            st = read_volume(s, &d, c, dp + c * vox, NNU_DTYPE_F32, lo, size);
    }
    if (seg_out && !st) {
        void *sp = nnu_tensor_data(seg_out);                                     /* padding: -1 */
        if (seg_out->dtype == NNU_DTYPE_I8) memset(sp, 0xff, (size_t)vox);
        else if (seg_out->dtype == NNU_DTYPE_I16) memset(sp, 0xff, (size_t)vox * 2);
        else for (int64_t k = 0; k < vox; k++) ((float *)sp)[k] = -1.0f;
        st = read_volume(s, &d, in->n_channels, nnu_tensor_data(seg_out), seg_out->dtype, lo, size);
    }
    decoder_free(&d);
    return st;
}

nnu_status nnu_store_read_all(const nnu_store *s, nnu_tensor **data, nnu_tensor **seg) {
    NNU_CHECK(s, NNU_STATUS_ERR_ARG, "store: NULL argument");
    const nnu_store_info *in = &s->info;
    int64_t lo[3] = {0, 0, 0};
    int64_t ds[4] = {in->n_channels, in->shape[0], in->shape[1], in->shape[2]};
    int64_t ss[4] = {1, in->shape[0], in->shape[1], in->shape[2]};
    nnu_tensor *d = NULL, *g = NULL;
    nnu_status st = NNU_STATUS_OK;
    if (data) st = nnu_tensor_new(NNU_DTYPE_F32, 4, ds, &d);
    if (!st && seg) st = nnu_tensor_new(in->seg_dtype, 4, ss, &g);
    if (!st) st = nnu_store_read_patch(s, lo, in->shape, d, g);
    if (st) { nnu_tensor_release(d); nnu_tensor_release(g); return st; }
    if (data) *data = d;
    if (seg) *seg = g;
    return NNU_STATUS_OK;
}

nnu_status nnu_store_read_class_locations(const nnu_store *s, nnu_class_locations *out) {
    NNU_CHECK(s && out, NNU_STATUS_ERR_ARG, "store: NULL argument");
    out->n_keys = 0;
    out->keys = NULL;
    NNU_CHECK(s->locs_bytes >= 4, NNU_STATUS_ERR_FORMAT, "'%s': class location section too short", s->path);
    unsigned char *buf = malloc((size_t)s->locs_bytes);
    NNU_CHECK(buf, NNU_STATUS_ERR_OOM, "store: out of memory");
    nnu_status st = read_all(s->fd, buf, (size_t)s->locs_bytes, s->locs_offset, s->path);
    uint64_t pos = 4, end = s->locs_bytes;
    uint32_t nk = st ? 0 : get_u32(buf);
    if (!st && nk > 1000000) st = NNU_FAIL(NNU_STATUS_ERR_FORMAT, "'%s': %u class location keys", s->path, nk);
    if (!st && nk > 0) {
        out->keys = calloc(nk, sizeof *out->keys);
        if (!out->keys) st = NNU_FAIL(NNU_STATUS_ERR_OOM, "store: out of memory");
    }
    for (uint32_t k = 0; k < nk && !st; k++) {
        nnu_class_locs *l = &out->keys[k];
        out->n_keys = (int)k + 1;
        if (pos + 4 > end) { st = NNU_FAIL(NNU_STATUS_ERR_FORMAT, "'%s': class locations truncated", s->path); break; }
        l->n_values = (int)get_u32(buf + pos);
        pos += 4;
        if (l->n_values < 0 || l->n_values > 65536 || pos + 4 * (uint64_t)l->n_values + 8 > end) {
            st = NNU_FAIL(NNU_STATUS_ERR_FORMAT, "'%s': class locations truncated", s->path);
            break;
        }
        l->values = malloc((size_t)(l->n_values ? l->n_values : 1) * 4);
        if (!l->values) { st = NNU_FAIL(NNU_STATUS_ERR_OOM, "store: out of memory"); break; }
        memcpy(l->values, buf + pos, (size_t)l->n_values * 4);
        pos += 4 * (uint64_t)l->n_values;
        l->n = (int64_t)get_u64(buf + pos);
        pos += 8;
        if (l->n < 0 || pos + 12 * (uint64_t)l->n > end) {
            st = NNU_FAIL(NNU_STATUS_ERR_FORMAT, "'%s': class locations truncated", s->path);
            break;
        }
        l->coords = malloc((size_t)(l->n ? l->n : 1) * 12);
        if (!l->coords) { st = NNU_FAIL(NNU_STATUS_ERR_OOM, "store: out of memory"); break; }
        memcpy(l->coords, buf + pos, (size_t)l->n * 12);
        pos += 12 * (uint64_t)l->n;
    }
    free(buf);
    if (st) nnu_class_locations_free(out);
    return st;
}
