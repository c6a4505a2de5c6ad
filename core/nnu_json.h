/* nnu_json: a small strict JSON reader (RFC 8259) into a tree of values, for file
 * headers read by the core (the safetensors header of nnu_safetensors.c and the JSON
 * texts in a checkpoint's metadata). Not a general-purpose library: no streaming, depth
 * limited to 64, the whole text in memory.
 *
 *   nnu_json *v = nnu_json_parse(text, len, err, sizeof err);   NULL + err on failure
 *   const nnu_json *e = nnu_json_get(v, "key");                 NULL when absent
 *   nnu_json_free(v);
 *
 * Strict: one value plus surrounding white space, no trailing commas, no NaN (write
 * null), duplicate object keys rejected (the safetensors spec forbids them), strings
 * must be valid UTF-8 after unescaping (\uXXXX surrogate pairs combined). Numbers are
 * kept as double; `is_int` marks an integer literal (no fraction or exponent) that fits
 * in int64, whose exact value is in `integer`. */
#ifndef NNU_JSON_H
#define NNU_JSON_H

#include <stddef.h>
#include <stdint.h>

typedef enum nnu_json_type {
    NNU_JSON_NULL = 0, NNU_JSON_BOOL, NNU_JSON_NUMBER, NNU_JSON_STRING, NNU_JSON_ARRAY, NNU_JSON_OBJECT
} nnu_json_type;

typedef struct nnu_json {
    nnu_json_type    type;
    int              boolean;
    double           number;
    int              is_int;       /* NUMBER: an integer literal within int64 */
    int64_t          integer;
    char            *string;       /* STRING: unescaped, NUL-terminated */
    size_t           len;          /* STRING: bytes (may contain NUL via \u0000) */
    size_t           pos;          /* byte offset of the value's first character in the text */
    int              n;            /* ARRAY / OBJECT: number of children */
    struct nnu_json *items;        /* the children */
    char           **keys;         /* OBJECT: key of each child (unescaped) */
} nnu_json;

/* Parses text[0..len). On failure returns NULL and writes "<problem> at byte <k>"
 * to err (errlen bytes). */
nnu_json *nnu_json_parse(const char *text, size_t len, char *err, size_t errlen);
void nnu_json_free(nnu_json *v);

/* member `key` of an object (NULL when absent or v is not an object) */
const nnu_json *nnu_json_get(const nnu_json *v, const char *key);

#endif
