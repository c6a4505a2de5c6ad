/* nnu_metaimage.c: MetaImage (.mha / .mhd) reading and writing as ITK's MetaImageIO
 * (SimpleITK) does.
 *
 * A MetaImage is a text header of "Key = value" lines, ending with the line
 * "ElementDataFile = ...", followed by the voxels:
 *     .mha   ElementDataFile = LOCAL: the voxels follow the header's last line
 *     .mhd   ElementDataFile = name.raw (.zraw): a file next to the header
 * Voxels are x fastest, so a (z, y, x) tensor is the file's order as it is; with
 * CompressedData = True they are one zlib stream (CompressedDataSize bytes, or the
 * rest of the file). What ITK accepts and we follow (checked against SimpleITK 2.5):
 *   - keys are case-sensitive; a key given twice: the last one counts
 *   - NDims, DimSize, ElementType and ElementDataFile are required; ObjectType,
 *     BinaryData (default True) and the rest are optional; unknown keys are ignored
 *   - ElementSpacing, else ElementSize, else 1; a negative spacing is made positive
 *     and the direction's column negated (as MetaImageIO does)
 *   - origin: Offset = Position = Origin; direction: TransformMatrix = Rotation =
 *     Orientation, stored so that its *row* i is ITK's direction column i (the
 *     direction of array axis i), i.e. direction[r][c] = TransformMatrix[c * N + r]
 *   - HeaderSize > 0: the voxels start at that byte of the data file; -1: they are
 *     the last bytes of the data file
 *   - true/false values: first letter T, t or 1 is true (MetaIO's rule)
 *   - MET_LONG / MET_ULONG are 4 bytes (MetaIO's sizes), read as i32 / i64
 * Not read (ERR_UNSUPPORTED): ASCII data (BinaryData = False), vector/RGB pixels
 * (ElementNumberOfChannels > 1), file lists (ElementDataFile = LIST or a pattern),
 * NDims 1 or more than 4 non-trivial dimensions. We are stricter than ITK in one
 * way: a compressed stream that holds more bytes than DimSize promises is refused
 * (ITK silently uses the first bytes).
 *
 * Writing follows sitk.WriteImage(img, path, useCompression=True): the same keys in
 * the same order with 17 significant digits, zlib-compressed by default (see
 * nnu_metaimage.h), .mhd with its data in <name>.raw / <name>.zraw. */
#include "nnu_metaimage.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <zlib.h>

#define MHA_MAX_NDIMS     10
#define MHA_MAX_HEADER    (1 << 20)   /* a header longer than this is not a MetaImage */
/* deflate cannot expand data by more than ~1032:1: a header promising more than
 * this times the compressed size is lying */
#define MHA_MAX_RATIO     1100
#define MHA_DEFAULT_LEVEL 2           /* MetaIO's default compression level */

/* ---- element types ---- */

typedef struct met_type {
    const char *name;
    int         size;       /* bytes on disk; 0: known but not read */
    nnu_dtype   dtype;      /* what we return */
    int         widen;      /* 1: u32 -> i64, 2: u64 -> i64 (range-checked) */
} met_type;

static const met_type MET_TYPES[] = {
    {"MET_UCHAR", 1, NNU_DTYPE_U8, 0},      {"MET_CHAR", 1, NNU_DTYPE_I8, 0},
    {"MET_ASCII_CHAR", 1, NNU_DTYPE_I8, 0}, {"MET_SHORT", 2, NNU_DTYPE_I16, 0},
    {"MET_USHORT", 2, NNU_DTYPE_U16, 0},    {"MET_INT", 4, NNU_DTYPE_I32, 0},
    {"MET_LONG", 4, NNU_DTYPE_I32, 0},      {"MET_UINT", 4, NNU_DTYPE_I64, 1},
    {"MET_ULONG", 4, NNU_DTYPE_I64, 1},     {"MET_LONG_LONG", 8, NNU_DTYPE_I64, 0},
    {"MET_ULONG_LONG", 8, NNU_DTYPE_I64, 2}, {"MET_FLOAT", 4, NNU_DTYPE_F32, 0},
    {"MET_DOUBLE", 8, NNU_DTYPE_F64, 0},
};

static const met_type *met_type_of(const char *name) {
    for (size_t i = 0; i < sizeof MET_TYPES / sizeof MET_TYPES[0]; i++)
        if (strcmp(MET_TYPES[i].name, name) == 0) return &MET_TYPES[i];
    return NULL;
}

static const char *met_name_of(nnu_dtype dt) {
    switch (dt) {
    case NNU_DTYPE_U8: return "MET_UCHAR";
    case NNU_DTYPE_I8: return "MET_CHAR";
    case NNU_DTYPE_I16: return "MET_SHORT";
    case NNU_DTYPE_U16: return "MET_USHORT";
    case NNU_DTYPE_I32: return "MET_INT";
    case NNU_DTYPE_I64: return "MET_LONG_LONG";
    case NNU_DTYPE_F32: return "MET_FLOAT";
    case NNU_DTYPE_F64: return "MET_DOUBLE";
    default: return NULL;
    }
}

/* ---- the header ---- */

enum { K_NDIMS, K_DIMSIZE, K_ELEMTYPE, K_SPACING, K_ELEMSIZE, K_OFFSET, K_MATRIX, K_BINARY, K_MSB,
       K_COMPRESSED, K_CSIZE, K_HSIZE, K_CHANNELS, K_DATAFILE, K_COUNT };

typedef struct mha_header {
    const char *path;                   /* the header file */
    char       *text;                   /* owned: the header bytes, values NUL-terminated in place */
    const char *val[K_COUNT];           /* last value of each key we use (NULL: absent) */
    int64_t     data_pos;               /* byte after the ElementDataFile line */
    int64_t     file_size;              /* of the header file */

    int         ndims;
    int64_t     dim[MHA_MAX_NDIMS];
    const met_type *type;
    int         msb, compressed;
    int64_t     csize;                  /* CompressedDataSize; -1: the rest of the file */
    int64_t     hsize;                  /* HeaderSize; 0: none, -1: data at the end */
    int64_t     nvox, nbytes;           /* voxels and their bytes on disk, uncompressed */
    char        data_path[4096];        /* where the voxels are */
    int64_t     data_start;             /* their first byte there */
    int64_t     data_avail;             /* bytes from data_start to the end of that file */
} mha_header;

static nnu_status slurp_header(const char *path, mha_header *h) {
    struct stat st;
    if (stat(path, &st) != 0)
        return NNU_FAIL(NNU_STATUS_ERR_IO, "cannot read '%s': %s", path, strerror(errno));
    NNU_CHECK(S_ISREG(st.st_mode), NNU_STATUS_ERR_IO, "cannot read '%s': not a regular file", path);
    h->file_size = (int64_t)st.st_size;
    FILE *f = fopen(path, "rb");
    if (!f) return NNU_FAIL(NNU_STATUS_ERR_IO, "cannot read '%s': %s", path, strerror(errno));
    size_t want = h->file_size < MHA_MAX_HEADER ? (size_t)h->file_size : MHA_MAX_HEADER;
    /* read in growing pieces: a .mha header is a few hundred bytes before megabytes of data */
    size_t cap = 0, n = 0;
    nnu_status s = NNU_STATUS_OK;
    for (size_t step = 4096;; step *= 4) {
        size_t target = step < want ? step : want;
        if (target + 1 > cap) {
            char *nt = realloc(h->text, target + 1);
            if (!nt) { s = NNU_FAIL(NNU_STATUS_ERR_OOM, "cannot read '%s': out of memory", path); break; }
            h->text = nt;
            cap = target + 1;
        }
        n += fread(h->text + n, 1, target - n, f);
        if (ferror(f)) { s = NNU_FAIL(NNU_STATUS_ERR_IO, "cannot read '%s': %s", path, strerror(errno)); break; }
        h->text[n] = '\0';
        /* done when a complete ElementDataFile line is in, or nothing more can come */
        const char *k = h->text;
        int found = 0;
        while ((k = memmem(k, n - (size_t)(k - h->text), "ElementDataFile", 15)) != NULL) {
            if ((k == h->text || k[-1] == '\n') && memchr(k, '\n', n - (size_t)(k - h->text))) { found = 1; break; }
            k += 15;
        }
        if (found || n < target || target == want) break;
    }
    fclose(f);
    if (s) return s;
    h->data_pos = (int64_t)n;           /* refined by the parser */
    return NNU_STATUS_OK;
}

static void trim(char **s, char *end) {
    while (**s == ' ' || **s == '\t') (*s)++;
    while (end > *s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r')) end--;
    *end = '\0';
}

/* "Key = value" lines up to ElementDataFile; values stay in h->text. */
static nnu_status parse_lines(mha_header *h) {
    static const struct { const char *key; int id; } KEYS[] = {
        {"NDims", K_NDIMS}, {"DimSize", K_DIMSIZE}, {"ElementType", K_ELEMTYPE},
        {"ElementSpacing", K_SPACING}, {"ElementSize", K_ELEMSIZE},
        {"Offset", K_OFFSET}, {"Position", K_OFFSET}, {"Origin", K_OFFSET},
        {"TransformMatrix", K_MATRIX}, {"Rotation", K_MATRIX}, {"Orientation", K_MATRIX},
        {"BinaryData", K_BINARY}, {"BinaryDataByteOrderMSB", K_MSB}, {"ElementByteOrderMSB", K_MSB},
        {"CompressedData", K_COMPRESSED}, {"CompressedDataSize", K_CSIZE}, {"HeaderSize", K_HSIZE},
        {"ElementNumberOfChannels", K_CHANNELS}, {"ElementDataFile", K_DATAFILE},
    };
    const char *path = h->path;
    char *p = h->text, *end = h->text + h->data_pos;
    int line = 0;
    while (p < end) {
        line++;
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *eol = nl ? nl : end;
        char *next = nl ? nl + 1 : end;
        char *eq = memchr(p, '=', (size_t)(eol - p));
        char *k = p;
        if (!eq) {
            trim(&k, eol);
            NNU_CHECK(*k == '\0', NNU_STATUS_ERR_FORMAT,
                      "cannot read '%s': line %d is not \"Key = value\" (not a MetaImage header, or one cut short)",
                      path, line);
            p = next;
            continue;
        }
        char *v = eq + 1;
        trim(&k, eq);
        trim(&v, eol);
        for (const char *c = k; *c; c++)
            NNU_CHECK((unsigned char)*c >= 32 && (unsigned char)*c < 127, NNU_STATUS_ERR_FORMAT,
                      "cannot read '%s': line %d: binary bytes in a key (not a MetaImage header)", path, line);
        for (size_t i = 0; i < sizeof KEYS / sizeof KEYS[0]; i++)
            if (strcmp(k, KEYS[i].key) == 0) h->val[KEYS[i].id] = v;
        p = next;
        if (strcmp(k, "ElementDataFile") == 0) {
            /* "ElementDataFile = LOC" at the very end: a .mha cut inside its header */
            NNU_CHECK(nl || *v == '\0' || strncasecmp(v, "LOCAL", strlen(v)) != 0, NNU_STATUS_ERR_FORMAT,
                      "cannot read '%s': the header ends inside its ElementDataFile line (file cut short)", path);
            h->data_pos = (int64_t)(next - h->text);
            return NNU_STATUS_OK;
        }
    }
    static const char *REQUIRED[] = {"NDims", "DimSize", "ElementType"};
    static const int REQ_ID[] = {K_NDIMS, K_DIMSIZE, K_ELEMTYPE};
    for (int i = 0; i < 3; i++)
        NNU_CHECK(h->val[REQ_ID[i]], NNU_STATUS_ERR_FORMAT, "cannot read '%s': required key %s is missing", path,
                  REQUIRED[i]);
    return NNU_FAIL(NNU_STATUS_ERR_FORMAT,
                    "cannot read '%s': required key ElementDataFile is missing (it must end the header)", path);
}

/* n numbers of key into out; 0 or ERR_FORMAT */
static nnu_status parse_doubles(const mha_header *h, const char *key, const char *s, int n, double *out) {
    for (int i = 0; i < n; i++) {
        char *e;
        errno = 0;
        double v = strtod(s, &e);
        NNU_CHECK(e != s, NNU_STATUS_ERR_FORMAT, "cannot read '%s': %s needs %d numbers (NDims = %d), found %d",
                  h->path, key, n, h->ndims, i);
        NNU_CHECK(isfinite(v), NNU_STATUS_ERR_FORMAT, "cannot read '%s': %s: value %d is not finite", h->path, key,
                  i + 1);
        out[i] = v;
        s = e;
    }
    return NNU_STATUS_OK;
}

static nnu_status parse_int(const mha_header *h, const char *key, const char *s, int64_t *out) {
    char *e;
    errno = 0;
    long long v = strtoll(s, &e, 10);
    while (*e == ' ' || *e == '\t') e++;
    NNU_CHECK(e != s && *e == '\0' && errno == 0, NNU_STATUS_ERR_FORMAT,
              "cannot read '%s': %s = '%s' is not an integer", h->path, key, s);
    *out = v;
    return NNU_STATUS_OK;
}

static int is_true(const char *v) { return v && (v[0] == 'T' || v[0] == 't' || v[0] == '1'); }

/* "DimSize 4 3 2 MET_FLOAT" for messages */
static void describe(const mha_header *h, char *buf, size_t len) {
    size_t k = (size_t)snprintf(buf, len, "DimSize");
    for (int i = 0; i < h->ndims && k < len; i++) k += (size_t)snprintf(buf + k, len - k, " %lld", (long long)h->dim[i]);
    if (k < len) snprintf(buf + k, len - k, " %s", h->type ? h->type->name : "?");
}

static double det3(const double *a) {
    return a[0] * (a[4] * a[8] - a[5] * a[7]) - a[1] * (a[3] * a[8] - a[5] * a[6]) +
           a[2] * (a[3] * a[7] - a[4] * a[6]);
}

/* Everything but the voxels: keys, shape, dtype, geometry, where the data are. */
static nnu_status parse_header(mha_header *h, nnu_image_info *info) {
    const char *path = h->path;
    NNU_TRY(slurp_header(path, h));
    NNU_TRY(parse_lines(h));

    /* dimensions */
    int64_t nd = 0;
    NNU_CHECK(h->val[K_NDIMS], NNU_STATUS_ERR_FORMAT, "cannot read '%s': required key NDims is missing", path);
    NNU_TRY(parse_int(h, "NDims", h->val[K_NDIMS], &nd));
    NNU_CHECK(nd >= 1 && nd <= MHA_MAX_NDIMS, NNU_STATUS_ERR_FORMAT, "cannot read '%s': bad NDims %lld", path,
              (long long)nd);
    NNU_CHECK(nd >= 2, NNU_STATUS_ERR_UNSUPPORTED, "cannot read '%s': 1-D images are not supported (ITK neither)",
              path);
    h->ndims = (int)nd;
    NNU_CHECK(h->val[K_DIMSIZE], NNU_STATUS_ERR_FORMAT, "cannot read '%s': required key DimSize is missing", path);
    NNU_CHECK(h->val[K_ELEMTYPE], NNU_STATUS_ERR_FORMAT, "cannot read '%s': required key ElementType is missing",
              path);
    double dims[MHA_MAX_NDIMS];
    NNU_TRY(parse_doubles(h, "DimSize", h->val[K_DIMSIZE], h->ndims, dims));
    h->nvox = 1;
    for (int i = 0; i < h->ndims; i++) {
        NNU_CHECK(dims[i] >= 1 && dims[i] == floor(dims[i]) && dims[i] <= (double)(INT64_C(1) << 40),
                  NNU_STATUS_ERR_FORMAT, "cannot read '%s': bad DimSize[%d] = %g", path, i, dims[i]);
        h->dim[i] = (int64_t)dims[i];
        NNU_CHECK(h->dim[i] <= (INT64_C(1) << 40) / h->nvox, NNU_STATUS_ERR_FORMAT,
                  "cannot read '%s': DimSize too large", path);
        h->nvox *= h->dim[i];
    }
    for (int i = 4; i < h->ndims; i++)
        NNU_CHECK(h->dim[i] == 1, NNU_STATUS_ERR_UNSUPPORTED,
                  "cannot read '%s': %d-D images are not supported (DimSize[%d] = %lld)", path, h->ndims, i,
                  (long long)h->dim[i]);

    /* element type and storage */
    const char *et = h->val[K_ELEMTYPE];
    h->type = met_type_of(et);
    NNU_CHECK(h->type || strncmp(et, "MET_", 4) != 0, NNU_STATUS_ERR_UNSUPPORTED,
              "cannot read '%s': ElementType %s is not supported", path, et);
    NNU_CHECK(h->type, NNU_STATUS_ERR_FORMAT, "cannot read '%s': unknown ElementType '%s'", path, et);
    if (h->val[K_CHANNELS]) {
        int64_t nc = 0;
        NNU_TRY(parse_int(h, "ElementNumberOfChannels", h->val[K_CHANNELS], &nc));
        NNU_CHECK(nc >= 1, NNU_STATUS_ERR_FORMAT, "cannot read '%s': bad ElementNumberOfChannels %lld", path,
                  (long long)nc);
        NNU_CHECK(nc == 1, NNU_STATUS_ERR_UNSUPPORTED,
                  "cannot read '%s': ElementNumberOfChannels = %lld: vector/RGB MetaImages are not supported "
                  "(store one channel per file, as nnU-Net's _0000, _0001 files)", path, (long long)nc);
    }
    NNU_CHECK(!h->val[K_BINARY] || is_true(h->val[K_BINARY]), NNU_STATUS_ERR_UNSUPPORTED,
              "cannot read '%s': ASCII MetaImages (BinaryData = False) are not supported", path);
    h->msb = is_true(h->val[K_MSB]);
    h->compressed = is_true(h->val[K_COMPRESSED]);
    h->nbytes = h->nvox * h->type->size;
    h->csize = -1;
    if (h->compressed && h->val[K_CSIZE]) {
        NNU_TRY(parse_int(h, "CompressedDataSize", h->val[K_CSIZE], &h->csize));
        NNU_CHECK(h->csize > 0, NNU_STATUS_ERR_FORMAT, "cannot read '%s': bad CompressedDataSize %lld", path,
                  (long long)h->csize);
    }
    h->hsize = 0;
    if (h->val[K_HSIZE]) {
        NNU_TRY(parse_int(h, "HeaderSize", h->val[K_HSIZE], &h->hsize));
        NNU_CHECK(h->hsize >= -1, NNU_STATUS_ERR_FORMAT, "cannot read '%s': bad HeaderSize %lld", path,
                  (long long)h->hsize);
    }

    /* where the voxels are */
    const char *df = h->val[K_DATAFILE];
    NNU_CHECK(*df, NNU_STATUS_ERR_FORMAT, "cannot read '%s': ElementDataFile is empty", path);
    int local = strcasecmp(df, "LOCAL") == 0;
    if (local) {
        snprintf(h->data_path, sizeof h->data_path, "%s", path);
    } else {
        NNU_CHECK(strcmp(df, "LIST") != 0 && strncmp(df, "LIST ", 5) != 0 && !strchr(df, '%') && !strchr(df, ' ') &&
                      !strchr(df, '\t'),
                  NNU_STATUS_ERR_UNSUPPORTED,
                  "cannot read '%s': ElementDataFile = %s: file lists and patterns (one file per slice) are not "
                  "supported", path, df);
        const char *slash = strrchr(path, '/');
        int k = df[0] == '/' || !slash
                    ? snprintf(h->data_path, sizeof h->data_path, "%s", df)
                    : snprintf(h->data_path, sizeof h->data_path, "%.*s/%s", (int)(slash - path), path, df);
        NNU_CHECK(k > 0 && (size_t)k < sizeof h->data_path, NNU_STATUS_ERR_ARG, "cannot read '%s': path too long",
                  path);
    }
    int64_t dsize = h->file_size;
    if (!local) {
        struct stat st;
        if (stat(h->data_path, &st) != 0)
            return NNU_FAIL(NNU_STATUS_ERR_IO, "cannot read '%s': its data file '%s': %s", path, h->data_path,
                            strerror(errno));
        NNU_CHECK(S_ISREG(st.st_mode), NNU_STATUS_ERR_IO, "cannot read '%s': its data file '%s' is not a regular file",
                  path, h->data_path);
        dsize = (int64_t)st.st_size;
    }
    char what[160];
    describe(h, what, sizeof what);
    if (h->hsize > 0) {
        h->data_start = h->hsize;
    } else if (h->hsize == -1) {                       /* the data are the last bytes of the file */
        int64_t tail = h->compressed ? h->csize : h->nbytes;
        NNU_CHECK(tail > 0, NNU_STATUS_ERR_FORMAT,
                  "cannot read '%s': HeaderSize = -1 with compressed data needs CompressedDataSize", path);
        NNU_CHECK(tail <= dsize, NNU_STATUS_ERR_FORMAT,
                  "cannot read '%s': header says %s = %lld bytes but the data file has only %lld bytes", path, what,
                  (long long)tail, (long long)dsize);
        h->data_start = dsize - tail;
    } else {
        h->data_start = local ? h->data_pos : 0;
    }
    NNU_CHECK(h->data_start <= dsize, NNU_STATUS_ERR_FORMAT,
              "cannot read '%s': HeaderSize %lld beyond the end of the data (%lld bytes)", path,
              (long long)h->data_start, (long long)dsize);
    h->data_avail = dsize - h->data_start;
    if (!h->compressed) {
        NNU_CHECK(h->nbytes <= h->data_avail, NNU_STATUS_ERR_FORMAT,
                  "cannot read '%s': header says %s = %lld bytes but only %lld bytes of data", path, what,
                  (long long)h->nbytes, (long long)h->data_avail);
    } else {
        if (h->csize < 0) h->csize = h->data_avail;
        NNU_CHECK(h->csize <= h->data_avail, NNU_STATUS_ERR_FORMAT,
                  "cannot read '%s': CompressedDataSize %lld but only %lld bytes of data", path, (long long)h->csize,
                  (long long)h->data_avail);
        NNU_CHECK(h->nbytes / MHA_MAX_RATIO <= h->csize, NNU_STATUS_ERR_FORMAT,
                  "cannot read '%s': header says %s = %lld bytes, more than %lld bytes of zlib data can hold", path,
                  what, (long long)h->nbytes, (long long)h->csize);
    }

    /* geometry (ITK's N-D geometry, cut to 3-D) */
    int n = h->ndims;
    double sp[MHA_MAX_NDIMS], org[MHA_MAX_NDIMS], tm[MHA_MAX_NDIMS * MHA_MAX_NDIMS];
    for (int i = 0; i < n; i++) { sp[i] = 1; org[i] = 0; }
    for (int i = 0; i < n * n; i++) tm[i] = (i % (n + 1) == 0);
    if (h->val[K_SPACING]) NNU_TRY(parse_doubles(h, "ElementSpacing", h->val[K_SPACING], n, sp));
    else if (h->val[K_ELEMSIZE]) NNU_TRY(parse_doubles(h, "ElementSize", h->val[K_ELEMSIZE], n, sp));
    if (h->val[K_OFFSET]) NNU_TRY(parse_doubles(h, "Offset", h->val[K_OFFSET], n, org));
    if (h->val[K_MATRIX]) NNU_TRY(parse_doubles(h, "TransformMatrix", h->val[K_MATRIX], n * n, tm));

    memset(info, 0, sizeof *info);
    info->format = NNU_IMAGE_FORMAT_METAIMAGE;
    info->dtype = h->type->dtype;
    info->spatial_dims = n == 2 ? 2 : 3;
    int sd = info->spatial_dims;
    for (int i = 0; i < 3; i++) { info->spacing_itk[i] = 1; info->origin[i] = 0; }
    for (int i = 0; i < 9; i++) info->direction[i] = (i % 4 == 0);
    for (int c = 0; c < sd; c++) {
        double s = sp[c], sign = 1;
        if (s < 0) { s = -s; sign = -1; }              /* MetaImageIO: flip the axis instead */
        info->spacing_itk[c] = s;
        info->origin[c] = org[c];
        for (int r = 0; r < sd; r++) info->direction[3 * r + c] = sign * tm[c * n + r];
    }
    NNU_CHECK(det3(info->direction) != 0, NNU_STATUS_ERR_FORMAT,
              "cannot read '%s': TransformMatrix is singular", path);
    for (int i = 0; i < 3; i++) info->spacing[2 - i] = info->spacing_itk[i];

    int64_t nx = h->dim[0], ny = h->dim[1], nz = n >= 3 ? h->dim[2] : 1, nt = n >= 4 ? h->dim[3] : 1;
    if (nt > 1) {
        info->ndim = 4;
        info->shape[0] = nt; info->shape[1] = nz; info->shape[2] = ny; info->shape[3] = nx;
    } else {
        info->ndim = 3;
        info->shape[0] = nz; info->shape[1] = ny; info->shape[2] = nx;
    }
    return NNU_STATUS_OK;
}

nnu_status nnu_metaimage_read_header(const char *path, nnu_image_info *info) {
    mha_header h;
    memset(&h, 0, sizeof h);
    h.path = path;
    nnu_status st = parse_header(&h, info);
    free(h.text);
    if (st) memset(info, 0, sizeof *info);
    return st;
}

/* ---- voxels ---- */

static nnu_status read_exact(const mha_header *h, FILE *f, void *dst, int64_t n, const char *what) {
    char *p = dst;
    while (n > 0) {
        size_t chunk = n > (1 << 30) ? (size_t)1 << 30 : (size_t)n;
        size_t got = fread(p, 1, chunk, f);
        if (got < chunk) {
            if (ferror(f))
                return NNU_FAIL(NNU_STATUS_ERR_IO, "cannot read '%s': %s: %s", h->path, h->data_path, strerror(errno));
            return NNU_FAIL(NNU_STATUS_ERR_FORMAT, "cannot read '%s': %s ends early (file changed while reading?)",
                            h->path, what);
        }
        p += got;
        n -= (int64_t)got;
    }
    return NNU_STATUS_OK;
}

/* The csize zlib bytes at the file position into dst (exactly nbytes; the stream must end there). */
static nnu_status inflate_into(const mha_header *h, FILE *f, void *dst) {
    z_stream z;
    memset(&z, 0, sizeof z);
    NNU_CHECK(inflateInit2(&z, 15 + 32) == Z_OK, NNU_STATUS_ERR_OOM, "cannot read '%s': zlib init failed", h->path);
    enum { CHUNK = 1 << 18 };
    unsigned char *in = malloc(CHUNK);
    if (!in) { inflateEnd(&z); return NNU_FAIL(NNU_STATUS_ERR_OOM, "cannot read '%s': out of memory", h->path); }
    char what[160];
    describe(h, what, sizeof what);
    unsigned char *out = dst;
    int64_t left_in = h->csize, produced = 0;
    nnu_status st = NNU_STATUS_OK;
    int ret = Z_OK;
    while (ret != Z_STREAM_END) {
        if (z.avail_in == 0 && left_in > 0) {
            size_t want = left_in > CHUNK ? CHUNK : (size_t)left_in;
            size_t got = fread(in, 1, want, f);
            if (got < want && ferror(f)) {
                st = NNU_FAIL(NNU_STATUS_ERR_IO, "cannot read '%s': %s", h->data_path, strerror(errno));
                break;
            }
            left_in -= (int64_t)want;
            z.next_in = in;
            z.avail_in = (uInt)got;
        }
        int64_t room = h->nbytes - produced;
        unsigned char spare;
        /* with the output full, offer one spare byte: the stream must end, not hold more */
        z.next_out = room > 0 ? out + produced : &spare;
        z.avail_out = room > 0 ? (uInt)(room > (1 << 30) ? 1 << 30 : room) : 1;
        uInt before = z.avail_out;
        ret = inflate(&z, Z_NO_FLUSH);
        if (room > 0) produced += before - z.avail_out;
        else if (z.avail_out == 0) {
            st = NNU_FAIL(NNU_STATUS_ERR_FORMAT,
                          "cannot read '%s': the zlib stream holds more than the header's %s = %lld bytes", h->path,
                          what, (long long)h->nbytes);
            break;
        }
        if (ret == Z_STREAM_END) break;
        if (ret == Z_DATA_ERROR || ret == Z_NEED_DICT || ret == Z_STREAM_ERROR) {
            st = NNU_FAIL(NNU_STATUS_ERR_FORMAT, "cannot read '%s': corrupt zlib stream (%s)", h->path,
                          z.msg ? z.msg : "bad data");
            break;
        }
        if (ret == Z_MEM_ERROR) { st = NNU_FAIL(NNU_STATUS_ERR_OOM, "cannot read '%s': out of memory", h->path); break; }
        if (z.avail_in == 0 && left_in == 0 && (ret == Z_BUF_ERROR || z.avail_out > 0)) {
            st = NNU_FAIL(NNU_STATUS_ERR_FORMAT,
                          "cannot read '%s': truncated zlib stream (%lld of %lld bytes decoded from %lld compressed "
                          "bytes)", h->path, (long long)produced, (long long)h->nbytes, (long long)h->csize);
            break;
        }
    }
    if (st == NNU_STATUS_OK && produced != h->nbytes)
        st = NNU_FAIL(NNU_STATUS_ERR_FORMAT,
                      "cannot read '%s': header says %s = %lld bytes but the zlib stream holds only %lld", h->path,
                      what, (long long)h->nbytes, (long long)produced);
    inflateEnd(&z);
    free(in);
    return st;
}

nnu_status nnu_metaimage_read(const char *path, nnu_image_info *info_out, nnu_tensor **out) {
    *out = NULL;
    nnu_image_info local, *info = info_out ? info_out : &local;
    mha_header h;
    memset(&h, 0, sizeof h);
    h.path = path;
    nnu_status st = parse_header(&h, info);
    free(h.text);
    h.text = NULL;
    if (st) { memset(info, 0, sizeof *info); return st; }

    nnu_tensor *t = NULL;
    NNU_TRY(nnu_tensor_new(info->dtype, info->ndim, info->shape, &t));   /* raw bytes fit: size <= dtype size */
    void *buf = nnu_tensor_data(t);
    FILE *f = fopen(h.data_path, "rb");
    if (!f) st = NNU_FAIL(NNU_STATUS_ERR_IO, "cannot read '%s': %s: %s", path, h.data_path, strerror(errno));
    if (!st && fseeko(f, (off_t)h.data_start, SEEK_SET) != 0)
        st = NNU_FAIL(NNU_STATUS_ERR_IO, "cannot read '%s': %s: %s", path, h.data_path, strerror(errno));
    if (!st) st = h.compressed ? inflate_into(&h, f, buf) : read_exact(&h, f, buf, h.nbytes, h.data_path);
    if (f) fclose(f);
    if (!st && h.msb && h.type->size > 1) nnu_image_swap_bytes(buf, h.nvox, h.type->size);
    if (!st && h.type->widen == 1) {
        const uint32_t *in = buf;
        int64_t *o = buf;
        for (int64_t i = h.nvox - 1; i >= 0; i--) o[i] = (int64_t)in[i];   /* backwards: in place */
    } else if (!st && h.type->widen == 2) {
        const uint64_t *in = buf;
        for (int64_t i = 0; i < h.nvox && !st; i++)
            if (in[i] > (uint64_t)INT64_MAX)
                st = NNU_FAIL(NNU_STATUS_ERR_UNSUPPORTED, "cannot read '%s': MET_ULONG_LONG voxel %llu does not fit int64",
                              path, (unsigned long long)in[i]);
    }
    if (st) {
        nnu_tensor_release(t);
        memset(info, 0, sizeof *info);
        return st;
    }
    *out = t;
    return NNU_STATUS_OK;
}

/* ---- writing ---- */

/* ITK's AnatomicalOrientation of a 3-D direction (LPS, "from" letters: +x R, +y A,
 * +z I): each array axis takes the world axis of its largest cosine, largest first. */
static void anatomical_orientation(const double *D, char out[4]) {
    int used_r[3] = {0}, used_c[3] = {0};
    static const char *LET = "RLAPIS";
    for (int k = 0; k < 3; k++) {
        int br = -1, bc = -1;
        for (int c = 0; c < 3; c++)            /* column-major scan; the last of equal maxima wins */
            for (int r = 0; r < 3; r++) {
                if (used_r[r] || used_c[c]) continue;
                if (br < 0 || fabs(D[3 * r + c]) >= fabs(D[3 * br + bc])) { br = r; bc = c; }
            }
        used_r[br] = used_c[bc] = 1;
        out[bc] = LET[2 * br + (D[3 * br + bc] < 0)];
    }
    out[3] = '\0';
}

typedef struct text { char buf[4096]; size_t n; } text;

__attribute__((format(printf, 2, 3)))
static void put(text *t, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(t->buf + t->n, sizeof t->buf - t->n, fmt, ap);
    va_end(ap);
    if (k > 0) t->n += (size_t)k;
    if (t->n > sizeof t->buf - 1) t->n = sizeof t->buf - 1;
}

static void put_nums(text *t, const char *key, const double *v, int n) {
    put(t, "%s =", key);
    for (int i = 0; i < n; i++) put(t, " %.17g", v[i]);      /* as ITK: 17 digits, "-0" kept */
    put(t, "\n");
}

/* deflate the whole buffer into *out (growing; segmentations compress to little) */
static nnu_status deflate_all(const char *path, const void *src, int64_t n, int level, unsigned char **out,
                              int64_t *out_n) {
    *out = NULL;
    z_stream z;
    memset(&z, 0, sizeof z);
    NNU_CHECK(deflateInit(&z, level) == Z_OK, NNU_STATUS_ERR_OOM, "cannot write '%s': zlib init failed", path);
    size_t cap = 1 << 16, len = 0;
    unsigned char *buf = malloc(cap);
    const unsigned char *in = src;
    int64_t left = n;
    int ret = Z_OK;
    while (buf && ret != Z_STREAM_END) {
        if (z.avail_in == 0 && left > 0) {
            uInt c = left > (1 << 30) ? 1u << 30 : (uInt)left;
            z.next_in = (unsigned char *)in;
            z.avail_in = c;
            in += c;
            left -= c;
        }
        if (len == cap) {
            unsigned char *nb = realloc(buf, cap * 2);
            if (!nb) { free(buf); buf = NULL; break; }
            buf = nb;
            cap *= 2;
        }
        z.next_out = buf + len;
        z.avail_out = (uInt)(cap - len > (1u << 30) ? 1u << 30 : cap - len);
        uInt before = z.avail_out;
        ret = deflate(&z, left == 0 && z.avail_in == 0 ? Z_FINISH : Z_NO_FLUSH);
        len += before - z.avail_out;
        if (ret == Z_STREAM_ERROR) break;
    }
    deflateEnd(&z);
    if (!buf) return NNU_FAIL(NNU_STATUS_ERR_OOM, "cannot write '%s': out of memory", path);
    if (ret != Z_STREAM_END) { free(buf); return NNU_FAIL(NNU_STATUS_ERR_IO, "cannot write '%s': zlib error", path); }
    *out = buf;
    *out_n = (int64_t)len;
    return NNU_STATUS_OK;
}

nnu_status nnu_metaimage_write(const char *path, const nnu_tensor *t, const nnu_image_info *ref,
                               const nnu_image_write_opts *opts) {
    NNU_TRY(nnu_image_check_writable(path, t));
    NNU_CHECK(t->ndim == 3 || t->ndim == 4, NNU_STATUS_ERR_SHAPE,
              "cannot write '%s': tensor must be (z, y, x) or (c, z, y, x), got %d dimensions", path, t->ndim);
    int mhd = nnu_image_ends_with(path, ".mhd");
    NNU_CHECK(mhd || nnu_image_ends_with(path, ".mha"), NNU_STATUS_ERR_ARG,
              "cannot write '%s': the name must end in .mha or .mhd", path);
    int compress = !opts || opts->compression >= 0;
    int level = opts && opts->compression > 0 && opts->compression <= 9 ? opts->compression : MHA_DEFAULT_LEVEL;

    /* geometry */
    double sp[3] = {1, 1, 1}, org[3] = {0, 0, 0}, D[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
    if (ref) {
        memcpy(sp, ref->spacing_itk, sizeof sp);
        memcpy(org, ref->origin, sizeof org);
        memcpy(D, ref->direction, sizeof D);
    }
    int nd = 3;
    int64_t dim[4] = {t->shape[t->ndim - 1], t->shape[t->ndim - 2], t->shape[t->ndim - 3], 1};
    if (t->ndim == 4) { nd = 4; dim[3] = t->shape[0]; }
    else if (ref && ref->spatial_dims == 2 && t->shape[0] == 1) nd = 2;   /* SimpleITKIO writes 2-D back */

    nnu_tensor *w;
    NNU_TRY(nnu_image_storage_tensor(path, t, opts, &w));
    const char *met = met_name_of(w->dtype);
    if (!met) {
        nnu_tensor_release(w);
        return NNU_FAIL(NNU_STATUS_ERR_UNSUPPORTED, "cannot write '%s': dtype %s", path, nnu_dtype_name(t->dtype));
    }
    int64_t nbytes = nnu_tensor_numel(w) * (int64_t)nnu_dtype_size(w->dtype);
    const void *data = nnu_tensor_data(w);
    unsigned char *z = NULL;
    int64_t zn = 0;
    nnu_status st = NNU_STATUS_OK;
    if (compress) {
        st = deflate_all(path, data, nbytes, level, &z, &zn);
        data = z;
        nbytes = zn;
    }

    /* header, in MetaImageIO's key order */
    text h;
    h.n = 0;
    double v[4 * 4];
    put(&h, "ObjectType = Image\nNDims = %d\nBinaryData = True\nBinaryDataByteOrderMSB = False\n", nd);
    put(&h, "CompressedData = %s\n", compress ? "True" : "False");
    if (compress) put(&h, "CompressedDataSize = %lld\n", (long long)zn);
    for (int i = 0; i < nd; i++)                 /* row i = direction of array axis i */
        for (int j = 0; j < nd; j++) v[i * nd + j] = i < 3 && j < 3 ? D[3 * j + i] : (i == j);
    put_nums(&h, "TransformMatrix", v, nd * nd);
    for (int i = 0; i < nd; i++) v[i] = i < 3 ? org[i] : 0;
    put_nums(&h, "Offset", v, nd);
    for (int i = 0; i < nd; i++) v[i] = 0;
    put_nums(&h, "CenterOfRotation", v, nd);
    if (nd == 3) {
        char ao[4];
        anatomical_orientation(D, ao);
        put(&h, "AnatomicalOrientation = %s\n", ao);
    }
    for (int i = 0; i < nd; i++) v[i] = i < 3 ? sp[i] : 1;
    put_nums(&h, "ElementSpacing", v, nd);
    put(&h, "DimSize =");
    for (int i = 0; i < nd; i++) put(&h, " %lld", (long long)dim[i]);
    put(&h, "\n");
    if (nd != 3) put(&h, "AnatomicalOrientation = %.*s\n", nd, "????");
    put(&h, "ElementType = %s\n", met);

    if (!st && mhd) {
        /* <name>.raw / <name>.zraw next to the header, written first so that the
         * header never names a missing file */
        char dpath[4096];
        size_t stem = strlen(path) - 4;
        int k = snprintf(dpath, sizeof dpath, "%.*s.%s", (int)stem, path, compress ? "zraw" : "raw");
        if (k < 0 || (size_t)k >= sizeof dpath) st = NNU_FAIL(NNU_STATUS_ERR_ARG, "cannot write '%s': path too long", path);
        const char *base = strrchr(dpath, '/');
        base = base ? base + 1 : dpath;
        put(&h, "ElementDataFile = %s\n", base);
        if (!st && h.n >= sizeof h.buf - 1) st = NNU_FAIL(NNU_STATUS_ERR_ARG, "cannot write '%s': name too long", path);
        if (!st) st = nnu_image_write_file(dpath, NULL, 0, data, nbytes);
        if (!st) st = nnu_image_write_file(path, h.buf, h.n, NULL, 0);
    } else if (!st) {
        put(&h, "ElementDataFile = LOCAL\n");
        st = nnu_image_write_file(path, h.buf, h.n, data, nbytes);
    }
    free(z);
    nnu_tensor_release(w);
    return st;
}
