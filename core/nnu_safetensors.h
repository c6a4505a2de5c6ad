/* nnu_safetensors: files in the safetensors format (huggingface), written atomically
 * and read with every check of the format's reference implementation.
 *
 * Layout (the format's specification):
 *   8 bytes   N, the header length, unsigned 64-bit little-endian
 *   N bytes   a UTF-8 JSON object, padded with spaces (here: so that 8 + N is a
 *             multiple of 8, which aligns the data):
 *               {"__metadata__": {"key": "value", ...},         (optional, string -> string)
 *                "<tensor name>": {"dtype": "F32", "shape": [d0, d1, ...],
 *                                  "data_offsets": [begin, end]}, ...}
 *   the rest  the data: little-endian, C order, offsets relative to its first byte;
 *             the tensors tile it exactly (sorted by begin: each begins where the
 *             previous ends, the last ends at the end of the file), each
 *             end - begin = product(shape) * dtype size. Names are unique.
 * Python's `safetensors.numpy.load_file(path)` / `safe_open(path, "np")` read such
 * files, whatever their name ends with.
 *
 * Integrity (our addition, invisible to other readers, which ignore unknown metadata):
 * with a `crc_key`, the writer stores under that metadata key the zlib CRC-32 of the
 * whole file computed with the key's 8 hex digits read as "00000000" (so it covers
 * the length, the header and the data); the reader recomputes it and reports any
 * difference as "CRC mismatch". In Python:
 *   b = bytearray(open(p, "rb").read()); i = <offset of the digits>; c = b[i:i+8]
 *   b[i:i+8] = b"00000000"; assert zlib.crc32(b) == int(c, 16)
 *
 * Atomicity: the writer writes "<path>.tmp", fsyncs it, renames it onto <path> and
 * fsyncs the folder; a crash at any moment leaves <path> absent, the previous file or
 * the new one (a stale .tmp is overwritten by the next save and never read). */
#ifndef NNU_SAFETENSORS_H
#define NNU_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "nnu_dtype.h"
#include "nnu_status.h"

#define NNU_ST_MAX_DIMS   8
#define NNU_ST_MAX_HEADER (100u << 20)   /* the reference implementation's limit */

/* One tensor entry. Saving: name, dtype, ndim, shape and data (host memory, C order,
 * numel * size bytes; NULL allowed when empty) are read; begin/end are ignored.
 * Loading: everything but data is filled; name points into the nnu_st_file. */
typedef struct nnu_st_tensor {
    const char *name;
    char        dtype[12];              /* the spec's name: "F32", "F64", "I64", "U8", ... */
    int         ndim;
    int64_t     shape[NNU_ST_MAX_DIMS];
    uint64_t    begin, end;             /* byte offsets into the data section */
    const void *data;
} nnu_st_tensor;

/* the spec's dtype name of an nnu_dtype ("F32", ...; NULL for none) */
const char *nnu_st_dtype_name(nnu_dtype dt);
/* element size of a spec dtype name (F8_* and BOOL: 1, ...); 0 if unknown */
size_t nnu_st_dtype_size(const char *name);

typedef struct nnu_st_save_opts {
    const char *crc_key;     /* metadata key of the whole-file CRC-32 (NULL: none) */
    int no_fsync;            /* 1: skip the fsyncs (tests; the rename stays atomic) */
    int stop_before_rename;  /* tests: write and sync the .tmp, then return without renaming
                                (what a crash between the two steps leaves behind) */
} nnu_st_save_opts;

/* Writes nt tensors (in the order given: their data follows in that order) and nmeta
 * metadata strings to path atomically. Names must be unique and non-empty, keys
 * unique, metadata values valid UTF-8. opts may be NULL. */
nnu_status nnu_st_save(const char *path, const nnu_st_tensor *t, int nt, const char *const *keys,
                       const char *const *values, int nmeta, const nnu_st_save_opts *opts);

/* An open, validated file. */
typedef struct nnu_st_file {
    char           *path;
    const char     *what;        /* "checkpoint", ...: the first word of messages */
    FILE           *f;
    uint64_t        file_size, header_len, data_start;   /* data_start = 8 + N */
    int             n;           /* tensors, sorted by begin */
    nnu_st_tensor  *t;
    int             nmeta;
    const char    **keys, **values;
    void           *tree;        /* the parsed header (owns the strings above) */
} nnu_st_file;

/* Opens and validates path: header length and start, JSON, every entry (dtype, shape,
 * offsets), the tiling of the data section, the exact file size and, with crc_key,
 * the CRC (which must be present). Messages read "<what> '<path>': <problem>", the
 * problem being e.g. "truncated (...)", "trailing bytes after the data (...)",
 * "not a safetensors file (...)", "CRC mismatch (...)", "malformed header (...)",
 * "tensor 'x': ...". On failure *out is left closed. */
nnu_status nnu_st_open(const char *path, const char *what, const char *crc_key, nnu_st_file *out);
/* the same; with crc_optional a file whose header parses without crc_key in its
 * __metadata__ is accepted unchecked (files written before the CRC), one with it is
 * checked (Net:load of older weight files) */
nnu_status nnu_st_open_opt(const char *path, const char *what, const char *crc_key, int crc_optional,
                           nnu_st_file *out);

/* metadata value of key (NULL when absent) */
const char *nnu_st_meta(const nnu_st_file *f, const char *key);
/* tensor called name (NULL when absent) */
const nnu_st_tensor *nnu_st_find(const nnu_st_file *f, const char *name);
/* copies the end - begin bytes of t into dst */
nnu_status nnu_st_read(nnu_st_file *f, const nnu_st_tensor *t, void *dst);
/* closes and frees; safe on a zeroed or closed struct */
void nnu_st_close(nnu_st_file *f);

/* zlib CRC-32 of n bytes continuing from crc (start with 0). */
uint32_t nnu_crc32(uint32_t crc, const void *data, size_t n);

#endif
