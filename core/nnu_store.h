/* nnu_store: the preprocessed-case file format (one file per case, CASE.nnu),
 * built for random patch reads during training. Full description and the disk-use
 * comparison with the reference's Blosc2 files: docs/preprocessing_storage.md.
 *
 * Content of a case file (all little-endian):
 *   header (256 bytes): magic "NNUCASE1", format version, dtypes, codec, channel
 *     count, spatial shape (z,y,x) and chunk shape, the plans identifier
 *     (data_identifier text + a 64-bit hash of the preprocessing settings),
 *     section offsets, the total file size and a CRC-32 of the header;
 *   chunk index: one entry {offset, stored bytes, CRC-32, codec} per chunk, for the
 *     C data channels and then the segmentation, chunks in C order of the chunk grid;
 *   chunks: data (C, D, H, W) float32 or float16, seg (1, D, H, W) int8 or int16,
 *     each chunk stored raw, byte-shuffled + deflated, or as a palette of its distinct
 *     values + indices, deflated (the smallest; all lossless);
 *   class locations: per key (a label, or a region/ignore tuple of labels) the
 *     sampled voxel coordinates (z, y, x) used for foreground oversampling.
 *
 * A patch read decompresses only the chunks it overlaps (pread on a shared file
 * descriptor: one open store may be read from many threads at once).
 *
 * Atomicity: nnu_store_write writes PATH.tmp, fsyncs it, renames it to PATH and
 * fsyncs the folder, so PATH is either absent, an older complete file, or the new
 * complete file. nnu_store_open rejects anything else: wrong magic or version,
 * header CRC mismatch, a file size different from the recorded one (truncated or
 * appended), or a plans identifier that differs from the expected one. */
#ifndef NNU_STORE_H
#define NNU_STORE_H

#include <stdint.h>

#include "nnu_tensor.h"

#define NNU_STORE_VERSION 1
#define NNU_STORE_ID_LEN  64      /* plans identifier text, NUL-padded */

/* chunk codecs */
enum {
    NNU_STORE_RAW = 0,       /* the chunk's elements as they are */
    NNU_STORE_DEFLATE = 1,   /* byte-shuffled, zlib-deflated */
    NNU_STORE_PALETTE = 2    /* distinct values + u8/u16 indices, deflated (lossless) */
};

/* ---- class locations (foreground oversampling, nnunet-behaviour.md §7.3) ---- */

/* One key: `n_values` label values (1 for a label; several for a region tuple or
 * the ignore-label "annotated" key) and `n` sampled voxels, coords (n, 3) as
 * (z, y, x) in the stored (preprocessed) array. */
typedef struct nnu_class_locs {
    int      n_values;
    int32_t *values;
    int64_t  n;
    int32_t *coords;
} nnu_class_locs;

typedef struct nnu_class_locations {
    int             n_keys;
    nnu_class_locs *keys;
} nnu_class_locations;

void nnu_class_locations_free(nnu_class_locations *cl);   /* frees the arrays, zeroes *cl */

/* ---- writing ---- */

typedef struct nnu_store_write_opts {
    nnu_dtype   data_dtype;     /* NNU_DTYPE_F32 (default, exact) or NNU_DTYPE_F16 */
    int         codec;          /* NNU_STORE_DEFLATE (default: best of deflate/palette/raw
                                   per chunk) or NNU_STORE_RAW (all chunks raw) */
    int         level;          /* zlib level 1..9; 0 = 1 (fast; see docs for the ratios) */
    int64_t     chunk[3];       /* chunk shape; zeros: nnu_store_default_chunk(shape, NULL) */
    const char *plans_id;       /* e.g. "nnUNetPlans_3d_fullres" (< 64 bytes) */
    uint64_t    plans_hash;     /* hash of the preprocessing settings (recipes compute it) */
    int         no_fsync;       /* 1: skip fsync (tests on tmpfs); rename stays atomic */
} nnu_store_write_opts;

nnu_store_write_opts nnu_store_write_opts_default(void);

/* Chunk shape for a case of spatial `shape` and a training patch of `patch_ndim`
 * (3 or 2; patch may be NULL = no patch known). 3-D: per axis pow2_floor(patch/2)
 * clamped to [4, 32] (32 without a patch); 2-D patches (1, py, px) read single
 * slices, so the chunk depth is 1 and in-plane pow2_floor(patch/2) clamped to
 * [64, 256] (whole small slices compress better). Every entry is finally clamped to the case's shape. */
void nnu_store_default_chunk(const int64_t shape[3], const int64_t *patch, int patch_ndim,
                             int64_t chunk[3]);

/* Writes one case atomically (see top). data: (C, D, H, W) f32, any strides; seg:
 * (1, D, H, W) any integer or float dtype holding integers in [-1, 32767]; stored
 * as i8 when max <= 127, else i16 (the reference's rule). locs may be NULL. */
nnu_status nnu_store_write(const char *path, const nnu_tensor *data, const nnu_tensor *seg,
                           const nnu_class_locations *locs, const nnu_store_write_opts *opts);

/* ---- reading ---- */

typedef struct nnu_store_info {
    int       version;
    int       n_channels;
    int64_t   shape[3];         /* (z, y, x) */
    int64_t   chunk[3];
    nnu_dtype data_dtype;       /* as stored */
    nnu_dtype seg_dtype;
    int       codec;            /* of the writer (per-chunk codecs may be RAW) */
    char      plans_id[NNU_STORE_ID_LEN];
    uint64_t  plans_hash;
    uint64_t  file_size;
    int64_t   chunks_by_codec[3];   /* number of RAW, DEFLATE, PALETTE chunks */
} nnu_store_info;

typedef struct nnu_store nnu_store;

/* Opens and validates PATH (header, CRC, size). expect_id: NULL = any; else the
 * stored plans_id must be equal and, when expect_hash != 0, the hash too (a
 * mismatch is ERR_FORMAT "plans identifier ..."). Reads header and index only. */
nnu_status nnu_store_open(const char *path, const char *expect_id, uint64_t expect_hash,
                          nnu_store **out);
void       nnu_store_close(nnu_store *s);                  /* NULL-safe */
const nnu_store_info *nnu_store_get_info(const nnu_store *s);

/* 1 if PATH is a complete case file with that identifier (see nnu_store_open),
 * else 0; the reason is left in nnu_last_error(). */
int nnu_store_is_valid(const char *path, const char *expect_id, uint64_t expect_hash);

/* Reads every chunk and checks its CRC-32 (and that it decompresses). */
nnu_status nnu_store_verify(const nnu_store *s);

/* Patch [lo, lo + size) per spatial axis; lo may be negative and the patch may
 * extend past the case (parts outside: data 0, seg -1, as the reference loader
 * pads). data_out: contiguous f32 (C, sz, sy, sx) or NULL; seg_out: contiguous
 * (1, sz, sy, sx) of dtype i8, i16 or f32, or NULL. Thread-safe. */
nnu_status nnu_store_read_patch(const nnu_store *s, const int64_t lo[3], const int64_t size[3],
                                nnu_tensor *data_out, nnu_tensor *seg_out);

/* The whole case: *data (C, D, H, W) f32, *seg (1, D, H, W) in the stored dtype. Either may be NULL. */
nnu_status nnu_store_read_all(const nnu_store *s, nnu_tensor **data, nnu_tensor **seg);

/* The stored class locations (owned by the caller: nnu_class_locations_free). */
nnu_status nnu_store_read_class_locations(const nnu_store *s, nnu_class_locations *out);

#endif
