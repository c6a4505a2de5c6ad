/* nnu_nrrd.c: NRRD files (.nrrd with attached data, .nhdr with a detached data
 * file), read and written as ITK's NrrdImageIO (SimpleITK) does.
 *
 * Layout: a text header, one field per line,
 *     NRRD0004                       magic, NRRD0001..NRRD0005
 *     # comment
 *     type: float                    "field: value"
 *     sizes: 4 3 2                   per-axis fields, axis 0 (x) first = fastest
 *     my key:=my value               key/value pairs (ignored)
 *     <empty line>                   end of header; attached data follows
 * The voxels (x fastest, like our (z, y, x) C order) come after the empty line or
 * from `data file`, after `line skip` lines and `byte skip` bytes, raw, gzip or
 * ASCII encoded.
 *
 * The parser is written by hand: the format is a short text header, and teem's
 * nrrd library (Debian's libteem) would add a dependency for little gain and, like
 * nifticlib, reports errors through its own stack and trusts sizes when it
 * allocates. Every field NrrdIO knows is recognised (most are ignored: labels,
 * units, thicknesses, measurement frame, ...); an unknown field, a repeated field
 * or a field with the wrong number of entries is an error, as in NrrdIO. Values are
 * checked against the file's size before anything is allocated (for gzip data: at
 * most NNU_GZ_MAX_RATIO times the compressed bytes).
 *
 * Geometry follows NrrdImageIO::ReadImageInformation + ImageFileReader:
 *   space directions: spacing = |v| (sqrt of the sum of squares), direction
 *       column = v * (1 / |v|); RAS negates the x and y components, LAS the y
 *       component (ITK 5.4; LPS, scanner-xyz, 3D-right-handed, ... are taken as they are);
 *       space origin the same way; a "none" axis keeps spacing 1 and e_i.
 *   no space: `spacings` (NaN/absent: 1; negative: ITK flips the direction column),
 *       origin from `axis mins` (+ half a spacing for cell-centred axes, the
 *       default), spacing for that from `spacings` or (max - min) / (size or size-1).
 * Only scalar 2-D and 3-D images are read: axes of a non-domain kind (vector, RGB,
 * list, ...) make ITK read a multi-component image, which nnU-Net's SimpleITKIO
 * turns into a meaningless array; 4-D domain images (rare in NRRD) are not read
 * either. See docs/nrrd.md. */
#include "nnu_nrrd.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

/* The deflate format cannot expand data by more than ~1032:1 (as nnu_nifti.c). */
#define NNU_GZ_MAX_RATIO 1100
#define NRRD_DIM_MAX 16
#define NRRD_SPACE_DIM_MAX 8
#define NRRD_LINE_MAX (1 << 20)

/* ---- the vocabulary ---- */

enum { ENC_RAW = 1, ENC_ASCII, ENC_GZIP, ENC_HEX, ENC_BZIP2 };
enum { END_NONE = 0, END_LITTLE, END_BIG };

typedef struct nrrd_type {
    const char *names;          /* '|'-separated names NrrdIO accepts (case-insensitive) */
    int         size;           /* bytes on disk; 0: block */
    nnu_dtype   dtype;          /* tensor dtype it is read into */
    int         is_unsigned_wide;   /* 32: uint -> i64, 64: ulonglong -> i64 (range-checked) */
    const char *write_name;     /* what ITK writes */
} nrrd_type;

static const nrrd_type TYPES[] = {
    {"signed char|int8|int8_t", 1, NNU_DTYPE_I8, 0, "signed char"},
    {"uchar|unsigned char|uint8|uint8_t", 1, NNU_DTYPE_U8, 0, "unsigned char"},
    {"short|short int|signed short|signed short int|int16|int16_t", 2, NNU_DTYPE_I16, 0, "short"},
    {"ushort|unsigned short|unsigned short int|uint16|uint16_t", 2, NNU_DTYPE_U16, 0, "unsigned short"},
    {"int|signed int|int32|int32_t", 4, NNU_DTYPE_I32, 0, "int"},
    {"uint|unsigned int|uint32|uint32_t", 4, NNU_DTYPE_I64, 32, "unsigned int"},
    {"longlong|long long|long long int|signed long long|signed long long int|int64|int64_t", 8, NNU_DTYPE_I64,
     0, "long long int"},
    {"ulonglong|unsigned long long|unsigned long long int|uint64|uint64_t", 8, NNU_DTYPE_I64, 64,
     "unsigned long long int"},
    {"float", 4, NNU_DTYPE_F32, 0, "float"},
    {"double", 8, NNU_DTYPE_F64, 0, "double"},
    {"block", 0, NNU_DTYPE_U8, 0, NULL},
};

/* NrrdIO's spaces: dimension and the flips ITK applies to reach LPS */
typedef struct nrrd_space { const char *names; int dim; int flip_x, flip_y; } nrrd_space;

static const nrrd_space SPACES[] = {
    {"right-anterior-superior|RAS", 3, 1, 1},
    {"left-anterior-superior|LAS", 3, 0, 1},    /* ITK 5.4 flips y (A -> P); older ITK flipped x */
    {"left-posterior-superior|LPS", 3, 0, 0},
    {"right-anterior-superior-time|RAST", 4, 0, 0},
    {"left-anterior-superior-time|LAST", 4, 0, 0},
    {"left-posterior-superior-time|LPST", 4, 0, 0},
    {"scanner-xyz", 3, 0, 0},
    {"scanner-xyz-time", 4, 0, 0},
    {"3D-right-handed", 3, 0, 0},
    {"3D-left-handed", 3, 0, 0},
    {"3D-right-handed-time", 4, 0, 0},
    {"3D-left-handed-time", 4, 0, 0},
};

/* NrrdIO's kinds that are not domain axes (ITK reads them as pixel components) */
static const char RANGE_KINDS[] =
    "list|point|vector|covariant-vector|normal|stub|scalar|complex|2-vector|3-color|RGB-color|HSV-color|"
    "XYZ-color|4-color|RGBA-color|3-vector|3-gradient|3-normal|4-vector|quaternion|2D-symmetric-matrix|"
    "2D-masked-symmetric-matrix|2D-matrix|2D-masked-matrix|3D-symmetric-matrix|3D-masked-symmetric-matrix|"
    "3D-matrix|3D-masked-matrix";

/* 1 when s equals one of the '|'-separated names (case-insensitive) */
static int name_in(const char *s, const char *names) {
    size_t n = strlen(s);
    const char *p = names;
    while (*p) {
        const char *e = strchr(p, '|');
        size_t k = e ? (size_t)(e - p) : strlen(p);
        if (k == n && strncasecmp(s, p, n) == 0) return 1;
        if (!e) break;
        p = e + 1;
    }
    return 0;
}

/* The header fields NrrdIO knows (with its aliases). */
enum {
    F_CONTENT, F_NUMBER, F_TYPE, F_BLOCK_SIZE, F_DIMENSION, F_SPACE, F_SPACE_DIMENSION, F_SIZES, F_SPACINGS,
    F_THICKNESSES, F_AXIS_MINS, F_AXIS_MAXS, F_SPACE_DIRECTIONS, F_CENTERS, F_KINDS, F_LABELS, F_UNITS, F_MIN,
    F_MAX, F_OLD_MIN, F_OLD_MAX, F_ENDIAN, F_ENCODING, F_LINE_SKIP, F_BYTE_SKIP, F_SAMPLE_UNITS, F_SPACE_UNITS,
    F_SPACE_ORIGIN, F_MEASUREMENT_FRAME, F_DATA_FILE, F_COUNT
};

static const char *const FIELD_NAMES[F_COUNT] = {
    "content", "number", "type", "block size|blocksize", "dimension", "space", "space dimension", "sizes",
    "spacings", "thicknesses", "axis mins|axismins", "axis maxs|axismaxs", "space directions",
    "centers|centerings", "kinds", "labels", "units", "min", "max", "old min|oldmin", "old max|oldmax",
    "endian", "encoding", "line skip|lineskip", "byte skip|byteskip", "sample units", "space units",
    "space origin", "measurement frame", "data file|datafile",
};

/* ---- the parsed header ---- */

typedef struct nrrd_hdr {
    const char *path;
    char       *field[F_COUNT];     /* raw values (owned), NULL when absent */
    int         version;            /* 1..5 */
    int64_t     data_offset;        /* first byte after the header's empty line; -1: none */
    int64_t     file_size;
    /* parsed */
    int             dim;
    int64_t         sizes[NRRD_DIM_MAX];
    const nrrd_type *type;
    int             encoding, endian;
    const nrrd_space *space;
    int             space_dim;
    int             has_dir[NRRD_DIM_MAX];
    double          dir[NRRD_DIM_MAX][NRRD_SPACE_DIM_MAX];
    int             has_origin;
    double          origin[NRRD_SPACE_DIM_MAX];
    double          spacings[NRRD_DIM_MAX], mins[NRRD_DIM_MAX], maxs[NRRD_DIM_MAX];
    int             cell[NRRD_DIM_MAX];     /* 1 cell-centred (the default), 0 node */
    int64_t         line_skip, byte_skip;
    int64_t         nvox;
} nrrd_hdr;

static void hdr_free(nrrd_hdr *h) {
    for (int i = 0; i < F_COUNT; i++) free(h->field[i]);
    memset(h->field, 0, sizeof h->field);
}

/* One line of at most NRRD_LINE_MAX bytes without its "\n" / "\r\n"; *eof when
 * the file ended before any byte of it. */
static nnu_status read_line(FILE *f, const char *path, char **buf, size_t *cap, int *eof) {
    size_t n = 0;
    int c;
    *eof = 0;
    while ((c = getc(f)) != EOF && c != '\n') {
        NNU_CHECK(c != '\0', NNU_STATUS_ERR_FORMAT,
                  "cannot read '%s': binary data inside the NRRD header (no empty line before the data?)", path);
        NNU_CHECK(n < NRRD_LINE_MAX, NNU_STATUS_ERR_FORMAT, "cannot read '%s': NRRD header line longer than %d bytes",
                  path, NRRD_LINE_MAX);
        if (n + 2 > *cap) {
            size_t nc = *cap ? *cap * 2 : 256;
            char *nb = realloc(*buf, nc);
            NNU_CHECK(nb, NNU_STATUS_ERR_OOM, "cannot read '%s': out of memory", path);
            *buf = nb;
            *cap = nc;
        }
        (*buf)[n++] = (char)c;
    }
    NNU_CHECK(!ferror(f), NNU_STATUS_ERR_IO, "cannot read '%s': %s", path, strerror(errno));
    if (c == EOF && n == 0) { *eof = 1; }
    if (!*buf) {
        *buf = malloc(1);
        NNU_CHECK(*buf, NNU_STATUS_ERR_OOM, "cannot read '%s': out of memory", path);
        *cap = 1;
    }
    if (n > 0 && (*buf)[n - 1] == '\r') n--;
    (*buf)[n] = '\0';
    return NNU_STATUS_OK;
}

/* "field: value" -> stores value in h->field[]; key/value pairs and comments are skipped. */
static nnu_status parse_line(nrrd_hdr *h, char *line) {
    if (line[0] == '#') return NNU_STATUS_OK;
    char *colon = strstr(line, ": ");
    char *kv = strstr(line, ":=");
    if (kv && (!colon || kv < colon)) return NNU_STATUS_OK;          /* key:=value */
    NNU_CHECK(colon, NNU_STATUS_ERR_FORMAT, "cannot read '%s': NRRD header line \"%.60s\" is not \"field: value\"",
              h->path, line);
    *colon = '\0';
    char *value = colon + 2;
    while (*value == ' ' || *value == '\t') value++;
    size_t n = strlen(value);
    while (n > 0 && isspace((unsigned char)value[n - 1])) value[--n] = '\0';
    for (int i = 0; i < F_COUNT; i++) {
        if (!name_in(line, FIELD_NAMES[i])) continue;
        NNU_CHECK(!h->field[i], NNU_STATUS_ERR_FORMAT, "cannot read '%s': NRRD field \"%s\" given twice", h->path,
                  line);
        h->field[i] = strdup(value);
        NNU_CHECK(h->field[i], NNU_STATUS_ERR_OOM, "cannot read '%s': out of memory", h->path);
        return NNU_STATUS_OK;
    }
    return NNU_FAIL(NNU_STATUS_ERR_FORMAT, "cannot read '%s': unknown NRRD field \"%.60s\"", h->path, line);
}

/* Reads the header lines; leaves f positioned at the first data byte (attached data). */
static nnu_status read_header_lines(FILE *f, nrrd_hdr *h) {
    char *buf = NULL;
    size_t cap = 0;
    int eof;
    nnu_status st = read_line(f, h->path, &buf, &cap, &eof);
    if (st == NNU_STATUS_OK) {
        if (strncmp(buf, "NRRD", 4) != 0)
            st = NNU_FAIL(NNU_STATUS_ERR_FORMAT, "cannot read '%s': not a NRRD file (no \"NRRD000x\" magic)", h->path);
        else if (!(strlen(buf) == 8 && strspn(buf + 4, "0123456789") == 4))
            st = NNU_FAIL(NNU_STATUS_ERR_FORMAT, "cannot read '%s': bad NRRD magic \"%.12s\"", h->path, buf);
        else if (!(strncmp(buf, "NRRD000", 7) == 0 && buf[7] >= '1' && buf[7] <= '5'))
            st = NNU_FAIL(NNU_STATUS_ERR_UNSUPPORTED,
                          "cannot read '%s': NRRD magic \"%.12s\" (this program reads NRRD0001..NRRD0005)", h->path,
                          buf);
        else
            h->version = buf[7] - '0';
    }
    h->data_offset = -1;
    while (st == NNU_STATUS_OK) {
        st = read_line(f, h->path, &buf, &cap, &eof);
        if (st || eof) break;
        if (buf[0] == '\0') {               /* the empty line: attached data follows */
            h->data_offset = (int64_t)ftell(f);
            break;
        }
        st = parse_line(h, buf);
        const char *df = h->field[F_DATA_FILE];
        if (df && strncmp(df, "LIST", 4) == 0 && (df[4] == '\0' || df[4] == ' '))
            break;                          /* the file names follow: parse_fields refuses it */
    }
    free(buf);
    return st;
}

/* ---- field values ---- */

/* Splits s into at most max whitespace-separated tokens (in place). */
static int split_ws(char *s, char **tok, int max) {
    int n = 0;
    char *save = NULL;
    for (char *t = strtok_r(s, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
        if (n == max) return max + 1;
        tok[n++] = t;
    }
    return n;
}

static int parse_double(const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end) return 0;
    *out = v;
    return 1;
}

static int parse_int64(const char *s, int64_t *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end || errno) return 0;
    *out = v;
    return 1;
}

/* A per-axis field: exactly dim tokens (a copy of the value is split). */
static nnu_status axis_tokens(nrrd_hdr *h, int fid, char **copy, char **tok) {
    *copy = strdup(h->field[fid]);
    NNU_CHECK(*copy, NNU_STATUS_ERR_OOM, "cannot read '%s': out of memory", h->path);
    int n = split_ws(*copy, tok, NRRD_DIM_MAX);
    if (n != h->dim) {
        free(*copy);
        *copy = NULL;
        const char *name = FIELD_NAMES[fid];
        return NNU_FAIL(NNU_STATUS_ERR_FORMAT, "cannot read '%s': NRRD field \"%.*s\" has %d entries, expected %d "
                        "(dimension)", h->path, (int)strcspn(name, "|"), name, n > NRRD_DIM_MAX ? -1 : n, h->dim);
    }
    return NNU_STATUS_OK;
}

/* per-axis doubles (NaN allowed: "unknown") */
static nnu_status axis_doubles(nrrd_hdr *h, int fid, double *out) {
    for (int i = 0; i < NRRD_DIM_MAX; i++) out[i] = NAN;
    if (!h->field[fid]) return NNU_STATUS_OK;
    char *copy, *tok[NRRD_DIM_MAX + 1];
    NNU_TRY(axis_tokens(h, fid, &copy, tok));
    for (int i = 0; i < h->dim; i++)
        if (!parse_double(tok[i], &out[i])) {
            const char *name = FIELD_NAMES[fid];
            nnu_status st = NNU_FAIL(NNU_STATUS_ERR_FORMAT, "cannot read '%s': bad number \"%.40s\" in \"%.*s\"",
                                     h->path, tok[i], (int)strcspn(name, "|"), name);
            free(copy);
            return st;
        }
    free(copy);
    return NNU_STATUS_OK;
}

/* "(a,b,c)" with space_dim components, all finite. */
static int parse_vector(const char *s, int n, double *out) {
    const char *p = s;
    while (*p == ' ') p++;
    if (*p++ != '(') return 0;
    for (int i = 0; i < n; i++) {
        char *end;
        out[i] = strtod(p, &end);
        if (end == p || !isfinite(out[i])) return 0;
        p = end;
        while (*p == ' ') p++;
        if (*p++ != (i + 1 < n ? ',' : ')')) return 0;
        while (*p == ' ') p++;
    }
    while (*p == ' ') p++;
    return *p == '\0';
}

/* Splits "(..) none (..)" into dim tokens: vectors may contain no blanks we split on
 * only outside parentheses. */
static int split_vectors(char *s, char **tok, int max) {
    int n = 0;
    char *p = s;
    while (*p) {
        while (*p == ' ' || *p == '\t') p++;
        if (!*p) break;
        if (n == max) return max + 1;
        tok[n++] = p;
        int depth = 0;
        while (*p && (depth > 0 || (*p != ' ' && *p != '\t'))) {
            if (*p == '(') depth++;
            else if (*p == ')') depth--;
            p++;
        }
        if (*p) *p++ = '\0';
    }
    return n;
}

static nnu_status parse_fields(nrrd_hdr *h) {
    const char *path = h->path;
    static const int required[] = {F_TYPE, F_DIMENSION, F_SIZES, F_ENCODING};
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++)
        NNU_CHECK(h->field[required[i]], NNU_STATUS_ERR_FORMAT,
                  "cannot read '%s': NRRD header lacks the required field \"%s\"%s", path,
                  FIELD_NAMES[required[i]], h->data_offset < 0 ? " (the header ends early: truncated?)" : "");

    /* type */
    for (size_t i = 0; i < sizeof TYPES / sizeof TYPES[0]; i++)
        if (name_in(h->field[F_TYPE], TYPES[i].names)) h->type = &TYPES[i];
    NNU_CHECK(h->type, NNU_STATUS_ERR_FORMAT, "cannot read '%s': unknown NRRD type \"%.40s\"", path, h->field[F_TYPE]);
    NNU_CHECK(h->type->size > 0, NNU_STATUS_ERR_UNSUPPORTED,
              "cannot read '%s': NRRD type \"block\" is not supported (ITK does not read it either)", path);

    /* dimension and sizes */
    int64_t d;
    NNU_CHECK(parse_int64(h->field[F_DIMENSION], &d) && d >= 1 && d <= NRRD_DIM_MAX, NNU_STATUS_ERR_FORMAT,
              "cannot read '%s': bad NRRD dimension \"%.40s\" (must be 1..%d)", path, h->field[F_DIMENSION],
              NRRD_DIM_MAX);
    h->dim = (int)d;
    char *copy, *tok[NRRD_DIM_MAX + 1];
    NNU_TRY(axis_tokens(h, F_SIZES, &copy, tok));
    h->nvox = 1;
    for (int i = 0; i < h->dim; i++) {
        int64_t s = 0;
        int ok = parse_int64(tok[i], &s) && s >= 1;
        if (ok) ok = s <= (INT64_C(1) << 40) / h->nvox;
        if (!ok) {
            nnu_status st = NNU_FAIL(NNU_STATUS_ERR_FORMAT, "cannot read '%s': bad NRRD size \"%.40s\" (axis %d)%s",
                                     path, tok[i], i, s >= 1 ? ": sizes too large" : "");
            free(copy);
            return st;
        }
        h->sizes[i] = s;
        h->nvox *= s;
    }
    free(copy);

    /* encoding, endian */
    const char *e = h->field[F_ENCODING];
    if (name_in(e, "raw")) h->encoding = ENC_RAW;
    else if (name_in(e, "txt|text|ascii")) h->encoding = ENC_ASCII;
    else if (name_in(e, "gz|gzip")) h->encoding = ENC_GZIP;
    else if (name_in(e, "hex")) h->encoding = ENC_HEX;
    else if (name_in(e, "bz2|bzip2")) h->encoding = ENC_BZIP2;
    else return NNU_FAIL(NNU_STATUS_ERR_FORMAT, "cannot read '%s': unknown NRRD encoding \"%.40s\"", path, e);
    NNU_CHECK(h->encoding != ENC_HEX && h->encoding != ENC_BZIP2, NNU_STATUS_ERR_UNSUPPORTED,
              "cannot read '%s': NRRD encoding \"%s\" is not supported (this program reads raw, gzip and ascii)",
              path, e);
    if (h->field[F_ENDIAN]) {
        if (name_in(h->field[F_ENDIAN], "little")) h->endian = END_LITTLE;
        else if (name_in(h->field[F_ENDIAN], "big")) h->endian = END_BIG;
        else return NNU_FAIL(NNU_STATUS_ERR_FORMAT, "cannot read '%s': bad NRRD endian \"%.40s\"", path,
                             h->field[F_ENDIAN]);
    }
    NNU_CHECK(h->endian != END_NONE || h->type->size == 1 || h->encoding == ENC_ASCII, NNU_STATUS_ERR_FORMAT,
              "cannot read '%s': NRRD header lacks the field \"endian\" (required for type %s with %s encoding)", path,
              h->field[F_TYPE], e);

    /* skips */
    h->line_skip = 0;
    h->byte_skip = 0;
    if (h->field[F_LINE_SKIP])
        NNU_CHECK(parse_int64(h->field[F_LINE_SKIP], &h->line_skip) && h->line_skip >= 0, NNU_STATUS_ERR_FORMAT,
                  "cannot read '%s': bad NRRD line skip \"%.40s\"", path, h->field[F_LINE_SKIP]);
    if (h->field[F_BYTE_SKIP])
        NNU_CHECK(parse_int64(h->field[F_BYTE_SKIP], &h->byte_skip) && h->byte_skip >= -1, NNU_STATUS_ERR_FORMAT,
                  "cannot read '%s': bad NRRD byte skip \"%.40s\"", path, h->field[F_BYTE_SKIP]);
    NNU_CHECK(h->byte_skip >= 0 || h->encoding == ENC_RAW, NNU_STATUS_ERR_FORMAT,
              "cannot read '%s': NRRD byte skip -1 needs raw encoding", path);

    /* kinds: the axes must all be domain axes (scalar image) */
    if (h->field[F_KINDS]) {
        NNU_TRY(axis_tokens(h, F_KINDS, &copy, tok));
        for (int i = 0; i < h->dim; i++) {
            if (name_in(tok[i], "domain|space|time|???|none")) continue;
            nnu_status st = !name_in(tok[i], RANGE_KINDS)
                ? NNU_FAIL(NNU_STATUS_ERR_FORMAT, "cannot read '%s': unknown NRRD kind \"%.40s\"", path, tok[i])
                : NNU_FAIL(NNU_STATUS_ERR_UNSUPPORTED,
                           "cannot read '%s': NRRD axis %d has kind \"%.40s\": ITK reads this as a "
                           "multi-component (vector) image, which this program does not support", path, i, tok[i]);
            free(copy);
            return st;
        }
        free(copy);
    }
    NNU_CHECK(h->dim == 2 || h->dim == 3, NNU_STATUS_ERR_UNSUPPORTED,
              "cannot read '%s': %d-D NRRD images are not supported (this program reads scalar 2-D and 3-D images)",
              path, h->dim);

    /* centers */
    for (int i = 0; i < NRRD_DIM_MAX; i++) h->cell[i] = 1;
    if (h->field[F_CENTERS]) {
        NNU_TRY(axis_tokens(h, F_CENTERS, &copy, tok));
        for (int i = 0; i < h->dim; i++) {
            if (name_in(tok[i], "node")) h->cell[i] = 0;
            else if (!name_in(tok[i], "cell|???|none")) {
                nnu_status st = NNU_FAIL(NNU_STATUS_ERR_FORMAT, "cannot read '%s': bad NRRD center \"%.40s\"", path,
                                         tok[i]);
                free(copy);
                return st;
            }
        }
        free(copy);
    }
    NNU_TRY(axis_doubles(h, F_SPACINGS, h->spacings));
    NNU_TRY(axis_doubles(h, F_AXIS_MINS, h->mins));
    NNU_TRY(axis_doubles(h, F_AXIS_MAXS, h->maxs));

    /* space */
    if (h->field[F_SPACE]) {
        for (size_t i = 0; i < sizeof SPACES / sizeof SPACES[0]; i++)
            if (name_in(h->field[F_SPACE], SPACES[i].names)) h->space = &SPACES[i];
        NNU_CHECK(h->space, NNU_STATUS_ERR_FORMAT, "cannot read '%s': unknown NRRD space \"%.60s\"", path,
                  h->field[F_SPACE]);
        h->space_dim = h->space->dim;
    }
    if (h->field[F_SPACE_DIMENSION]) {
        NNU_CHECK(parse_int64(h->field[F_SPACE_DIMENSION], &d) && d >= 1 && d <= NRRD_SPACE_DIM_MAX,
                  NNU_STATUS_ERR_FORMAT, "cannot read '%s': bad NRRD space dimension \"%.40s\"", path,
                  h->field[F_SPACE_DIMENSION]);
        NNU_CHECK(!h->space || d == h->space_dim, NNU_STATUS_ERR_FORMAT,
                  "cannot read '%s': NRRD space dimension %lld disagrees with space \"%s\"", path, (long long)d,
                  h->field[F_SPACE]);
        h->space_dim = (int)d;
    }
    NNU_CHECK(h->space_dim || (!h->field[F_SPACE_DIRECTIONS] && !h->field[F_SPACE_ORIGIN]), NNU_STATUS_ERR_FORMAT,
              "cannot read '%s': NRRD space directions/origin given without \"space\" or \"space dimension\"", path);
    NNU_CHECK(h->space_dim == 0 || h->space_dim == h->dim, NNU_STATUS_ERR_UNSUPPORTED,
              "cannot read '%s': the NRRD image has %d axes but its space has %d dimensions (ITK does not read this)",
              path, h->dim, h->space_dim);
    if (h->field[F_SPACE_DIRECTIONS]) {
        copy = strdup(h->field[F_SPACE_DIRECTIONS]);
        NNU_CHECK(copy, NNU_STATUS_ERR_OOM, "cannot read '%s': out of memory", path);
        int n = split_vectors(copy, tok, NRRD_DIM_MAX);
        nnu_status st = NNU_STATUS_OK;
        if (n != h->dim)
            st = NNU_FAIL(NNU_STATUS_ERR_FORMAT, "cannot read '%s': NRRD space directions has %d entries, expected %d",
                          path, n > NRRD_DIM_MAX ? -1 : n, h->dim);
        for (int i = 0; i < h->dim && st == NNU_STATUS_OK; i++) {
            if (name_in(tok[i], "none")) continue;
            if (!parse_vector(tok[i], h->space_dim, h->dir[i]))
                st = NNU_FAIL(NNU_STATUS_ERR_FORMAT,
                              "cannot read '%s': bad NRRD space direction \"%.60s\" (expected %d finite numbers)", path,
                              tok[i], h->space_dim);
            else
                h->has_dir[i] = 1;
        }
        free(copy);
        NNU_TRY(st);
    }
    for (int i = 0; i < h->dim; i++)
        NNU_CHECK(!h->has_dir[i] || (isnan(h->spacings[i]) && isnan(h->mins[i]) && isnan(h->maxs[i])),
                  NNU_STATUS_ERR_FORMAT,
                  "cannot read '%s': NRRD axis %d has a space direction and also spacings/axis mins/axis maxs", path, i);
    for (int i = 0; i < h->dim; i++)
        NNU_CHECK(h->space_dim == 0 || isnan(h->spacings[i]), NNU_STATUS_ERR_FORMAT,
                  "cannot read '%s': NRRD spacings given together with a space (use space directions)", path);
    if (h->field[F_SPACE_ORIGIN]) {
        NNU_CHECK(parse_vector(h->field[F_SPACE_ORIGIN], h->space_dim, h->origin), NNU_STATUS_ERR_FORMAT,
                  "cannot read '%s': bad NRRD space origin \"%.60s\" (expected %d finite numbers)", path,
                  h->field[F_SPACE_ORIGIN], h->space_dim);
        h->has_origin = 1;
    }

    /* data file */
    if (h->field[F_DATA_FILE]) {
        const char *df = h->field[F_DATA_FILE];
        NNU_CHECK(df[0], NNU_STATUS_ERR_FORMAT, "cannot read '%s': empty NRRD data file name", path);
        NNU_CHECK(strncmp(df, "LIST", 4) != 0 || (df[4] && df[4] != ' '), NNU_STATUS_ERR_UNSUPPORTED,
                  "cannot read '%s': NRRD \"data file: LIST\" (several data files) is not supported", path);
        NNU_CHECK(!(strchr(df, '%') && strchr(df, ' ')), NNU_STATUS_ERR_UNSUPPORTED,
                  "cannot read '%s': NRRD data file pattern \"%.60s\" (several data files) is not supported", path, df);
    } else {
        NNU_CHECK(h->data_offset >= 0, NNU_STATUS_ERR_FORMAT,
                  "cannot read '%s': the NRRD header has no end (empty line) and no data file: truncated?", path);
    }
    return NNU_STATUS_OK;
}

/* ---- geometry as ITK derives it ---- */

static nnu_status compute_geometry(const nrrd_hdr *h, nnu_image_info *info) {
    const char *path = h->path;
    int n = h->dim;
    double sp[3] = {1, 1, 1}, org[3] = {0, 0, 0}, D[3][3] = {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}};   /* D[row][col] */
    for (int i = 0; i < n; i++) {
        if (h->space_dim > 0) {
            if (!h->has_dir[i]) continue;          /* "none": ITK's defaults stay */
            double nn = 0;
            for (int k = 0; k < h->space_dim; k++) nn += h->dir[i][k] * h->dir[i][k];
            double s = sqrt(nn);                     /* nrrdSpaceVecNorm */
            NNU_CHECK(s > 0, NNU_STATUS_ERR_FORMAT,
                      "cannot read '%s': NRRD space direction of axis %d is zero (zero spacing)", path, i);
            double inv = 1.0 / s;                    /* nrrdSpaceVecScale(v, 1/s, dir) */
            double v[3];
            for (int k = 0; k < n; k++) v[k] = inv * h->dir[i][k];
            if (h->space && h->space->flip_x) v[0] *= -1;
            if (h->space && h->space->flip_y) v[1] *= -1;
            sp[i] = s;
            for (int k = 0; k < n; k++) D[k][i] = v[k];
        } else if (!isnan(h->spacings[i])) {
            NNU_CHECK(isfinite(h->spacings[i]) && h->spacings[i] != 0, NNU_STATUS_ERR_FORMAT,
                      "cannot read '%s': NRRD spacing %g of axis %d (ITK needs a finite non-zero spacing)", path,
                      h->spacings[i], i);
            sp[i] = h->spacings[i];
        }
    }
    /* origin */
    if (h->space_dim > 0) {
        if (h->has_origin) {
            for (int k = 0; k < n; k++) org[k] = h->origin[k];
            if (h->space && h->space->flip_x) org[0] *= -1;
            if (h->space && h->space->flip_y) org[1] *= -1;
        }
    } else {
        int ok = 1;                                  /* nrrdOriginCalculate, default center cell */
        for (int i = 0; i < n; i++)
            if (isnan(h->mins[i]) || (isnan(h->maxs[i]) && isnan(h->spacings[i]))) ok = 0;
        for (int i = 0; ok && i < n; i++) {
            double denom = (double)(h->cell[i] ? h->sizes[i] : h->sizes[i] - 1);
            double s = !isnan(h->spacings[i]) ? h->spacings[i] : (h->maxs[i] - h->mins[i]) / denom;
            org[i] = h->mins[i] + (h->cell[i] ? s / 2 : 0);
            NNU_CHECK(isfinite(org[i]), NNU_STATUS_ERR_FORMAT,
                      "cannot read '%s': NRRD axis mins/maxs give no finite origin on axis %d", path, i);
        }
    }
    /* ImageFileReader: a negative spacing becomes positive with the direction column flipped */
    for (int i = 0; i < n; i++)
        if (sp[i] < 0) {
            sp[i] = -sp[i];
            for (int k = 0; k < n; k++) D[k][i] = -D[k][i];
        }
    double det = n == 2 ? D[0][0] * D[1][1] - D[0][1] * D[1][0]
                        : D[0][0] * (D[1][1] * D[2][2] - D[1][2] * D[2][1]) -
                              D[0][1] * (D[1][0] * D[2][2] - D[1][2] * D[2][0]) +
                              D[0][2] * (D[1][0] * D[2][1] - D[1][1] * D[2][0]);
    NNU_CHECK(det != 0, NNU_STATUS_ERR_FORMAT,
              "cannot read '%s': NRRD space directions are linearly dependent (singular direction matrix)", path);
    for (int i = 0; i < 3; i++) {
        info->spacing_itk[i] = sp[i];
        info->spacing[2 - i] = fabs(sp[i]);
        info->origin[i] = org[i];
        for (int j = 0; j < 3; j++) info->direction[3 * i + j] = D[i][j];
    }
    return NNU_STATUS_OK;
}

/* ---- reading ---- */

static nnu_status open_header(const char *path, FILE **out, int64_t *size) {
    *out = NULL;
    struct stat st;
    if (stat(path, &st) != 0) return NNU_FAIL(NNU_STATUS_ERR_IO, "cannot read '%s': %s", path, strerror(errno));
    NNU_CHECK(S_ISREG(st.st_mode), NNU_STATUS_ERR_IO, "cannot read '%s': not a regular file", path);
    *size = (int64_t)st.st_size;
    *out = fopen(path, "rb");
    NNU_CHECK(*out, NNU_STATUS_ERR_IO, "cannot read '%s': %s", path, strerror(errno));
    return NNU_STATUS_OK;
}

/* Parses the header of path into h and info; *f stays open (positioned after the header). */
static nnu_status read_header_open(const char *path, FILE **f, nrrd_hdr *h, nnu_image_info *info) {
    memset(h, 0, sizeof *h);
    memset(info, 0, sizeof *info);
    h->path = path;
    NNU_TRY(open_header(path, f, &h->file_size));
    NNU_TRY(read_header_lines(*f, h));
    NNU_TRY(parse_fields(h));
    NNU_TRY(compute_geometry(h, info));
    info->format = NNU_IMAGE_FORMAT_NRRD;
    info->ndim = 3;
    info->spatial_dims = h->dim;
    info->shape[0] = h->dim == 3 ? h->sizes[2] : 1;
    info->shape[1] = h->sizes[1];
    info->shape[2] = h->sizes[0];
    info->dtype = h->type->dtype;
    return NNU_STATUS_OK;
}

nnu_status nnu_nrrd_read_header(const char *path, nnu_image_info *info) {
    nnu_image_info local;
    if (!info) info = &local;
    FILE *f = NULL;
    nrrd_hdr h;
    nnu_status st = read_header_open(path, &f, &h, info);
    if (f) fclose(f);
    hdr_free(&h);
    return st;
}

/* The data file's path: relative names are relative to the header's folder. */
static nnu_status data_path(const nrrd_hdr *h, char *buf, size_t n) {
    const char *df = h->field[F_DATA_FILE];
    const char *slash = strrchr(h->path, '/');
    int k;
    if (df[0] == '/' || !slash) k = snprintf(buf, n, "%s", df);
    else k = snprintf(buf, n, "%.*s/%s", (int)(slash - h->path), h->path, df);
    NNU_CHECK(k >= 0 && (size_t)k < n, NNU_STATUS_ERR_ARG, "cannot read '%s': data file path too long", h->path);
    return NNU_STATUS_OK;
}

/* gzread loop with the errors of nnu_nifti.c's file_read; *got bytes arrived. */
static nnu_status gz_read(gzFile gz, const char *what, int64_t file_size, void *buf, int64_t n, int64_t *got) {
    *got = 0;
    char *p = buf;
    while (*got < n) {
        int64_t chunk = n - *got;
        if (chunk > (1 << 30)) chunk = 1 << 30;
        int r = gzread(gz, p + *got, (unsigned)chunk);
        if (r > 0) { *got += r; continue; }
        int errnum = 0;
        const char *msg = gzerror(gz, &errnum);
        if (r == 0 && errnum == Z_OK) return NNU_STATUS_OK;
        if (errnum == Z_BUF_ERROR || (msg && strstr(msg, "unexpected end")))
            return NNU_FAIL(NNU_STATUS_ERR_FORMAT, "cannot read %s: truncated gzip stream (the %lld-byte file ends early)",
                            what, (long long)file_size);
        if (errnum == Z_ERRNO) return NNU_FAIL(NNU_STATUS_ERR_IO, "cannot read %s: %s", what, strerror(errno));
        return NNU_FAIL(NNU_STATUS_ERR_FORMAT, "cannot read %s: corrupt gzip stream (%s)", what,
                        msg ? msg : "unknown zlib error");
    }
    return NNU_STATUS_OK;
}

/* ASCII data: nvox numbers separated by white space or commas. */
static nnu_status parse_ascii(const char *what, const nrrd_type *ty, char *text, int64_t nvox, void *dst) {
    char *p = text;
    for (int64_t i = 0; i < nvox; i++) {
        while (*p && (isspace((unsigned char)*p) || *p == ',')) p++;
        NNU_CHECK(*p, NNU_STATUS_ERR_FORMAT, "cannot read %s: ASCII data ends after %lld of %lld values", what,
                  (long long)i, (long long)nvox);
        char *end;
        int ok = 1;
        errno = 0;
        if (ty->dtype == NNU_DTYPE_F32) ((float *)dst)[i] = strtof(p, &end);
        else if (ty->dtype == NNU_DTYPE_F64) ((double *)dst)[i] = strtod(p, &end);
        else if (ty->is_unsigned_wide == 64) {
            unsigned long long v = strtoull(p, &end, 10);
            ok = *p != '-' && !errno;
            memcpy((char *)dst + i * 8, &v, 8);
        } else {
            long long v = strtoll(p, &end, 10);
            double lo, hi;
            switch (ty->size) {
            case 1: lo = ty->dtype == NNU_DTYPE_U8 ? 0 : -128; hi = ty->dtype == NNU_DTYPE_U8 ? 255 : 127; break;
            case 2: lo = ty->dtype == NNU_DTYPE_U16 ? 0 : -32768; hi = ty->dtype == NNU_DTYPE_U16 ? 65535 : 32767; break;
            case 4: lo = ty->is_unsigned_wide ? 0 : -2147483648.0; hi = ty->is_unsigned_wide ? 4294967295.0 : 2147483647.0; break;
            default: lo = -9.3e18; hi = 9.3e18; break;
            }
            ok = !errno && (double)v >= lo && (double)v <= hi;
            /* stored in the dtype the voxels are read into (uint32 straight to i64) */
            nnu_dtype dt = ty->is_unsigned_wide == 32 ? NNU_DTYPE_I64 : ty->dtype;
            if (dt == NNU_DTYPE_I64) ((int64_t *)dst)[i] = v;
            else nnu_dtype_store(dt, (char *)dst + i * (int64_t)nnu_dtype_size(dt), (double)v);
        }
        NNU_CHECK(end != p && ok && (*end == '\0' || isspace((unsigned char)*end) || *end == ','),
                  NNU_STATUS_ERR_FORMAT, "cannot read %s: bad ASCII value \"%.20s\" for type %s", what, p,
                  ty->write_name);
        p = end;
    }
    return NNU_STATUS_OK;
}

static int host_is_little(void) {
    const uint16_t one = 1;
    return *(const uint8_t *)&one == 1;
}

/* Checks the data's size against the file, then allocates *out (info's shape and
 * dtype) and reads the voxels into it: nvox * type size bytes as on disk (uint32
 * into the first half of the i64 buffer); ASCII values already in the dtype. */
static nnu_status read_data(nrrd_hdr *h, FILE *hf, const nnu_image_info *info, nnu_tensor **out) {
    void *dst = NULL;
    char dpath[4096], what[8300];
    FILE *f = hf;
    int64_t fsize = h->file_size;
    if (h->field[F_DATA_FILE]) {
        NNU_TRY(data_path(h, dpath, sizeof dpath));
        snprintf(what, sizeof what, "'%s' (data file '%s')", h->path, dpath);
        struct stat st;
        if (stat(dpath, &st) != 0)
            return NNU_FAIL(NNU_STATUS_ERR_IO, "cannot read '%s': data file '%s': %s", h->path, dpath, strerror(errno));
        NNU_CHECK(S_ISREG(st.st_mode), NNU_STATUS_ERR_IO, "cannot read '%s': data file '%s' is not a regular file",
                  h->path, dpath);
        fsize = (int64_t)st.st_size;
        f = fopen(dpath, "rb");
        NNU_CHECK(f, NNU_STATUS_ERR_IO, "cannot read '%s': data file '%s': %s", h->path, dpath, strerror(errno));
    } else {
        snprintf(what, sizeof what, "'%s'", h->path);
    }
    nnu_status st = NNU_STATUS_OK;
    int64_t nbytes = h->nvox * h->type->size;
    /* line skip: whole lines of the file, before any decoding */
    for (int64_t l = 0; l < h->line_skip && st == NNU_STATUS_OK; l++) {
        int c;
        while ((c = getc(f)) != EOF && c != '\n') {}
        if (c == EOF) st = NNU_FAIL(NNU_STATUS_ERR_FORMAT, "cannot read %s: line skip %lld beyond the end of the file",
                                    what, (long long)h->line_skip);
    }
    int64_t pos = (int64_t)ftell(f);
    if (st == NNU_STATUS_OK && h->encoding != ENC_GZIP) {
        if (h->byte_skip == -1) pos = fsize - nbytes;    /* the data are the last bytes */
        else pos += h->byte_skip;
        if (pos < 0 || pos > fsize)
            st = NNU_FAIL(NNU_STATUS_ERR_FORMAT, "cannot read %s: byte skip %lld beyond the end of the file", what,
                          (long long)h->byte_skip);
        else if (h->encoding == ENC_RAW && nbytes > fsize - pos)
            st = NNU_FAIL(NNU_STATUS_ERR_FORMAT,
                          "cannot read %s: header says %lld voxels of %s = %lld bytes but only %lld bytes of data",
                          what, (long long)h->nvox, h->type->write_name, (long long)nbytes, (long long)(fsize - pos));
        else if (h->encoding == ENC_ASCII && h->nvox > fsize - pos)
            st = NNU_FAIL(NNU_STATUS_ERR_FORMAT,
                          "cannot read %s: header says %lld voxels but only %lld bytes of ASCII data", what,
                          (long long)h->nvox, (long long)(fsize - pos));
        else if (fseek(f, (long)pos, SEEK_SET) != 0)
            st = NNU_FAIL(NNU_STATUS_ERR_IO, "cannot read %s: %s", what, strerror(errno));
    }
    if (st == NNU_STATUS_OK && h->encoding == ENC_GZIP && nbytes / NNU_GZ_MAX_RATIO > fsize - pos)
        st = NNU_FAIL(NNU_STATUS_ERR_FORMAT,
                      "cannot read %s: header says %lld voxels of %s = %lld bytes, more than %lld bytes of gzip "
                      "data can hold", what, (long long)h->nvox, h->type->write_name, (long long)nbytes,
                      (long long)(fsize - pos));
    /* the sizes are plausible: allocate */
    if (st == NNU_STATUS_OK) st = nnu_tensor_new(info->dtype, info->ndim, info->shape, out);
    if (st == NNU_STATUS_OK) dst = nnu_tensor_data(*out);
    if (st == NNU_STATUS_OK && h->encoding == ENC_RAW) {
        size_t got = fread(dst, 1, (size_t)nbytes, f);
        if (got != (size_t)nbytes)
            st = ferror(f) ? NNU_FAIL(NNU_STATUS_ERR_IO, "cannot read %s: %s", what, strerror(errno))
                           : NNU_FAIL(NNU_STATUS_ERR_FORMAT, "cannot read %s: data end after %zu of %lld bytes", what,
                                      got, (long long)nbytes);
    } else if (st == NNU_STATUS_OK && h->encoding == ENC_ASCII) {
        size_t len = (size_t)(fsize - pos);
        char *text = malloc(len + 1);
        if (!text) st = NNU_FAIL(NNU_STATUS_ERR_OOM, "cannot read %s: out of memory", what);
        else {
            size_t got = fread(text, 1, len, f);
            text[got] = '\0';
            if (ferror(f)) st = NNU_FAIL(NNU_STATUS_ERR_IO, "cannot read %s: %s", what, strerror(errno));
            else st = parse_ascii(what, h->type, text, h->nvox, dst);
            free(text);
        }
    } else if (st == NNU_STATUS_OK) {          /* gzip, from pos; byte skip counts decompressed bytes */
        int fd = dup(fileno(f));
        if (fd < 0 || lseek(fd, (off_t)pos, SEEK_SET) < 0)
            st = NNU_FAIL(NNU_STATUS_ERR_IO, "cannot read %s: %s", what, strerror(errno));
        gzFile gz = st == NNU_STATUS_OK ? gzdopen(fd, "rb") : NULL;
        if (st == NNU_STATUS_OK && !gz) st = NNU_FAIL(NNU_STATUS_ERR_OOM, "cannot read %s: out of memory", what);
        if (!gz && fd >= 0) close(fd);
        if (gz) {
            gzbuffer(gz, 1 << 17);
            char skip[4096];
            int64_t left = h->byte_skip, got = 0;
            while (st == NNU_STATUS_OK && left > 0) {
                int64_t k = left > (int64_t)sizeof skip ? (int64_t)sizeof skip : left;
                st = gz_read(gz, what, fsize, skip, k, &got);
                if (st == NNU_STATUS_OK && got < k)
                    st = NNU_FAIL(NNU_STATUS_ERR_FORMAT, "cannot read %s: byte skip %lld beyond the end of the data",
                                  what, (long long)h->byte_skip);
                left -= k;
            }
            if (st == NNU_STATUS_OK) st = gz_read(gz, what, fsize, dst, nbytes, &got);
            if (st == NNU_STATUS_OK && gzdirect(gz))
                st = NNU_FAIL(NNU_STATUS_ERR_FORMAT, "cannot read %s: encoding is gzip but the data is not gzip", what);
            if (st == NNU_STATUS_OK && got != nbytes)
                st = NNU_FAIL(NNU_STATUS_ERR_FORMAT,
                              "cannot read %s: header says %lld voxels of %s = %lld bytes but the gzip data hold "
                              "only %lld", what, (long long)h->nvox, h->type->write_name, (long long)nbytes,
                              (long long)got);
            /* one more byte makes zlib reach the end of the stream and check its CRC and length */
            char extra;
            if (st == NNU_STATUS_OK) st = gz_read(gz, what, fsize, &extra, 1, &got);
            gzclose(gz);
        }
    }
    if (f != hf) fclose(f);
    return st;
}

nnu_status nnu_nrrd_read(const char *path, nnu_image_info *info_out, nnu_tensor **out) {
    *out = NULL;
    nnu_image_info local, *info = info_out ? info_out : &local;
    FILE *f = NULL;
    nrrd_hdr h;
    nnu_status st = read_header_open(path, &f, &h, info);
    nnu_tensor *t = NULL;
    if (st == NNU_STATUS_OK) st = read_data(&h, f, info, &t);
    if (st == NNU_STATUS_OK) {
        void *buf = nnu_tensor_data(t);
        if (h.encoding != ENC_ASCII) {
            int big = h.endian == END_BIG;
            if (h.type->size > 1 && big == host_is_little()) nnu_image_swap_bytes(buf, h.nvox, h.type->size);
            if (h.type->is_unsigned_wide == 32) {
                const uint32_t *in = buf;
                int64_t *o = buf;
                for (int64_t i = h.nvox - 1; i >= 0; i--) o[i] = (int64_t)in[i];    /* backwards: in place */
            }
        }
        if (st == NNU_STATUS_OK && h.type->is_unsigned_wide == 64) {
            const uint64_t *in = buf;
            for (int64_t i = 0; i < h.nvox && st == NNU_STATUS_OK; i++)
                if (in[i] > (uint64_t)INT64_MAX)
                    st = NNU_FAIL(NNU_STATUS_ERR_UNSUPPORTED, "cannot read '%s': uint64 voxel %llu does not fit int64",
                                  path, (unsigned long long)in[i]);
        }
    }
    if (f) fclose(f);
    hdr_free(&h);
    if (st != NNU_STATUS_OK) {
        nnu_tensor_release(t);
        return st;
    }
    *out = t;
    return NNU_STATUS_OK;
}

/* ---- writing ---- */

static const char *write_type_name(nnu_dtype dt, int *size) {
    for (size_t i = 0; i < sizeof TYPES / sizeof TYPES[0]; i++)
        if (TYPES[i].dtype == dt && !TYPES[i].is_unsigned_wide && TYPES[i].size) {
            *size = TYPES[i].size;
            return TYPES[i].write_name;
        }
    *size = 0;
    return NULL;
}

/* "(a,b,c)" with %.17g, as NrrdIO writes vectors */
static void put_vector(FILE *f, const double *v, int n) {
    fputc('(', f);
    for (int i = 0; i < n; i++) fprintf(f, "%s%.17g", i ? "," : "", v[i]);
    fputc(')', f);
}

static nnu_status write_gz(const char *path, const char *tmp, const char *mode, const void *data, int64_t n) {
    gzFile gz = gzopen(tmp, mode);
    NNU_CHECK(gz, NNU_STATUS_ERR_IO, "cannot write '%s': %s", path, errno ? strerror(errno) : "gzopen failed");
    gzbuffer(gz, 1 << 17);
    nnu_status st = NNU_STATUS_OK;
    const char *p = data;
    while (n > 0 && st == NNU_STATUS_OK) {
        unsigned chunk = n > (1 << 30) ? 1u << 30 : (unsigned)n;
        int w = gzwrite(gz, p, chunk);
        if (w <= 0) {
            int errnum = 0;
            const char *msg = gzerror(gz, &errnum);
            st = NNU_FAIL(NNU_STATUS_ERR_IO, "cannot write '%s': %s", path, errnum == Z_ERRNO ? strerror(errno) : msg);
        }
        p += w > 0 ? w : 0;
        n -= w > 0 ? w : 0;
    }
    int rc = gzclose(gz);
    if (st == NNU_STATUS_OK && rc != Z_OK)
        st = NNU_FAIL(NNU_STATUS_ERR_IO, "cannot write '%s': %s", path,
                      rc == Z_ERRNO ? strerror(errno) : "zlib error on close");
    return st;
}

nnu_status nnu_nrrd_write(const char *path, const nnu_tensor *t, const nnu_image_info *ref,
                          const nnu_image_write_opts *opts) {
    NNU_TRY(nnu_image_check_writable(path, t));
    NNU_CHECK(t->ndim == 3 || t->ndim == 4, NNU_STATUS_ERR_SHAPE,
              "cannot write '%s': tensor must be (z, y, x), got %d dimensions", path, t->ndim);
    NNU_CHECK(t->ndim == 3, NNU_STATUS_ERR_UNSUPPORTED,
              "cannot write '%s': multi-channel (c, z, y, x) NRRD files are not supported (write one file per channel)",
              path);
    int detached = nnu_image_ends_with(path, ".nhdr");
    NNU_CHECK(detached || nnu_image_ends_with(path, ".nrrd"), NNU_STATUS_ERR_ARG,
              "cannot write '%s': the name must end in .nrrd or .nhdr", path);
    int dim = ref && ref->spatial_dims == 2 ? 2 : 3;
    NNU_CHECK(dim == 3 || t->shape[0] == 1, NNU_STATUS_ERR_SHAPE,
              "cannot write '%s': a 2-D reference needs a (1, y, x) tensor, got z = %lld", path, (long long)t->shape[0]);

    double sp[3] = {1, 1, 1}, org[3] = {0, 0, 0}, D[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
    if (ref) {
        memcpy(sp, ref->spacing_itk, sizeof sp);
        memcpy(org, ref->origin, sizeof org);
        memcpy(D, ref->direction, sizeof D);
    }
    nnu_tensor *w;
    NNU_TRY(nnu_image_storage_tensor(path, t, opts, &w));
    int nbyper;
    const char *tname = write_type_name(w->dtype, &nbyper);
    if (!tname) {
        nnu_tensor_release(w);
        return NNU_FAIL(NNU_STATUS_ERR_UNSUPPORTED, "cannot write '%s': dtype %s", path, nnu_dtype_name(w->dtype));
    }
    int level = opts && opts->compression > 0 && opts->compression <= 9 ? opts->compression : 6;
    char mode[8];
    snprintf(mode, sizeof mode, "%s%d", detached ? "wb" : "ab", level);

    /* detached data: "<base>.raw.gz" next to the header, named in it without folder (as ITK) */
    char data_name[4096] = "", data_full[4096] = "", data_tmp[4096] = "", tmp[4096];
    nnu_status st = nnu_image_temp_path(path, tmp, sizeof tmp);
    if (st == NNU_STATUS_OK && detached) {
        const char *slash = strrchr(path, '/');
        const char *base = slash ? slash + 1 : path;
        size_t blen = strlen(base) - 5;
        int k1 = snprintf(data_name, sizeof data_name, "%.*s.raw.gz", (int)blen, base);
        int k2 = snprintf(data_full, sizeof data_full, "%.*s.raw.gz", (int)(strlen(path) - 5), path);
        if (k1 < 0 || (size_t)k1 >= sizeof data_name || k2 < 0 || (size_t)k2 >= sizeof data_full)
            st = NNU_FAIL(NNU_STATUS_ERR_ARG, "cannot write '%s': path too long", path);
        if (st == NNU_STATUS_OK) st = nnu_image_temp_path(data_full, data_tmp, sizeof data_tmp);
    }
    if (st) {
        nnu_tensor_release(w);
        return st;
    }
    int64_t sizes[3] = {t->shape[2], t->shape[1], t->shape[0]};
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        nnu_tensor_release(w);
        return NNU_FAIL(NNU_STATUS_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
    }
    fprintf(f, "NRRD0004\n# Complete NRRD file format specification at:\n"
               "# http://teem.sourceforge.net/nrrd/format.html\n");
    fprintf(f, "type: %s\ndimension: %d\n", tname, dim);
    if (dim == 3) fprintf(f, "space: left-posterior-superior\n");
    else fprintf(f, "space dimension: 2\n");
    fprintf(f, "sizes:");
    for (int i = 0; i < dim; i++) fprintf(f, " %lld", (long long)sizes[i]);
    fprintf(f, "\nspace directions:");
    for (int j = 0; j < dim; j++) {             /* axis j: spacing_j * direction column j */
        double v[3];
        for (int i = 0; i < dim; i++) v[i] = sp[j] * D[3 * i + j];
        fputc(' ', f);
        put_vector(f, v, dim);
    }
    fprintf(f, "\nkinds:");
    for (int i = 0; i < dim; i++) fprintf(f, " domain");
    fprintf(f, "\n");
    if (nbyper > 1) fprintf(f, "endian: %s\n", host_is_little() ? "little" : "big");
    fprintf(f, "encoding: gzip\nspace origin: ");
    put_vector(f, org, dim);
    fprintf(f, "\n");
    if (detached) fprintf(f, "data file: %s\n", data_name);
    else fprintf(f, "\n");
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) st = NNU_FAIL(NNU_STATUS_ERR_IO, "cannot write '%s': %s", path, strerror(errno));

    int64_t nbytes = nnu_tensor_numel(w) * (int64_t)nbyper;
    if (st == NNU_STATUS_OK)
        st = write_gz(path, detached ? data_tmp : tmp, mode, nnu_tensor_data(w), nbytes);
    nnu_tensor_release(w);
    if (st == NNU_STATUS_OK && detached && rename(data_tmp, data_full) != 0)
        st = NNU_FAIL(NNU_STATUS_ERR_IO, "cannot write '%s': %s: %s", path, data_full, strerror(errno));
    if (st == NNU_STATUS_OK && rename(tmp, path) != 0)
        st = NNU_FAIL(NNU_STATUS_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
    if (st != NNU_STATUS_OK) {
        remove(tmp);
        if (detached) remove(data_tmp);
    }
    return st;
}
