/* nnu_json.c: recursive-descent JSON reader (see nnu_json.h). */
#include "nnu_json.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 64

typedef struct parser {
    const char *s;
    size_t      n, i;
    char       *err;
    size_t      errlen;
    int         failed;
} parser;

static int fail(parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(parser *p, const char *fmt, ...) {
    if (p->failed) return 0;
    p->failed = 1;
    char msg[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (p->err && p->errlen) snprintf(p->err, p->errlen, "%s at byte %zu", msg, p->i);
    return 0;
}

static void skip_ws(parser *p) {
    while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' || p->s[p->i] == '\r'))
        p->i++;
}

static void free_value(nnu_json *v) {
    if (!v) return;
    free(v->string);
    for (int k = 0; k < v->n; k++) {
        free_value(&v->items[k]);
        if (v->keys) free(v->keys[k]);
    }
    free(v->items);
    free(v->keys);
    memset(v, 0, sizeof *v);
}

void nnu_json_free(nnu_json *v) {
    free_value(v);
    free(v);
}

static int hex4(parser *p, unsigned *out) {
    if (p->n - p->i < 4) return fail(p, "truncated \\u escape");
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
        char c = p->s[p->i++];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
        else return fail(p, "bad \\u escape");
    }
    *out = v;
    return 1;
}

static size_t put_utf8(char *o, unsigned cp) {
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) { o[0] = (char)(0xC0 | (cp >> 6)); o[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12)); o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18)); o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* length of a valid UTF-8 sequence at s (n bytes available), 0 if invalid */
static size_t utf8_len(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    size_t k = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (k == 0 || k > n) return 0;
    unsigned cp = k == 1 ? c : k == 2 ? (c & 0x1F) : k == 3 ? (c & 0x0F) : (c & 0x07);
    for (size_t j = 1; j < k; j++) {
        if ((s[j] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[j] & 0x3F);
    }
    static const unsigned min[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min[k] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return k;
}

/* p->s[p->i] is the opening quote; the unescaped text goes to *out (malloc'd) */
static int parse_string(parser *p, char **out, size_t *len) {
    p->i++;
    /* an upper bound of the decoded length: the raw span up to the closing quote
     * (every escape decodes to fewer bytes than it takes) */
    size_t j = p->i;
    while (j < p->n && p->s[j] != '"') j += p->s[j] == '\\' ? 2 : 1;
    if (j >= p->n) return fail(p, "unterminated string");
    size_t cap = j - p->i;
    char *o = malloc(cap + 1);
    if (!o) return fail(p, "out of memory");
    size_t k = 0;
    for (;;) {
        if (p->i >= p->n) { free(o); return fail(p, "unterminated string"); }
        unsigned char c = (unsigned char)p->s[p->i];
        if (c == '"') { p->i++; break; }
        if (c < 0x20) { free(o); return fail(p, "control character in a string"); }
        if (c == '\\') {
            p->i++;
            if (p->i >= p->n) { free(o); return fail(p, "unterminated string"); }
            char e = p->s[p->i++];
            switch (e) {
            case '"': o[k++] = '"'; break;
            case '\\': o[k++] = '\\'; break;
            case '/': o[k++] = '/'; break;
            case 'b': o[k++] = '\b'; break;
            case 'f': o[k++] = '\f'; break;
            case 'n': o[k++] = '\n'; break;
            case 'r': o[k++] = '\r'; break;
            case 't': o[k++] = '\t'; break;
            case 'u': {
                unsigned cp, lo;
                if (!hex4(p, &cp)) { free(o); return 0; }
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    if (p->n - p->i < 6 || p->s[p->i] != '\\' || p->s[p->i + 1] != 'u') {
                        free(o);
                        return fail(p, "unpaired surrogate");
                    }
                    p->i += 2;
                    if (!hex4(p, &lo)) { free(o); return 0; }
                    if (lo < 0xDC00 || lo > 0xDFFF) { free(o); return fail(p, "unpaired surrogate"); }
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                    free(o);
                    return fail(p, "unpaired surrogate");
                }
                k += put_utf8(o + k, cp);   /* <= 4 bytes from >= 6 escaped ones */
                break;
            }
            default: free(o); return fail(p, "bad escape '\\%c'", e);
            }
        } else {
            size_t u = utf8_len((const unsigned char *)p->s + p->i, p->n - p->i);
            if (!u) { free(o); return fail(p, "invalid UTF-8 in a string"); }
            memcpy(o + k, p->s + p->i, u);
            k += u;
            p->i += u;
        }
    }
    o[k] = 0;
    *out = o;
    *len = k;
    return 1;
}

static int parse_number(parser *p, nnu_json *v) {
    size_t b = p->i;
    int integral = 1;
    if (p->i < p->n && p->s[p->i] == '-') p->i++;
    if (p->i >= p->n || p->s[p->i] < '0' || p->s[p->i] > '9') return fail(p, "bad number");
    if (p->s[p->i] == '0') p->i++;
    else while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9') p->i++;
    if (p->i < p->n && p->s[p->i] == '.') {
        integral = 0;
        p->i++;
        if (p->i >= p->n || p->s[p->i] < '0' || p->s[p->i] > '9') return fail(p, "bad number");
        while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9') p->i++;
    }
    if (p->i < p->n && (p->s[p->i] == 'e' || p->s[p->i] == 'E')) {
        integral = 0;
        p->i++;
        if (p->i < p->n && (p->s[p->i] == '+' || p->s[p->i] == '-')) p->i++;
        if (p->i >= p->n || p->s[p->i] < '0' || p->s[p->i] > '9') return fail(p, "bad number");
        while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9') p->i++;
    }
    char buf[64];
    size_t L = p->i - b;
    if (L >= sizeof buf) {
        /* long literals (many digits): strtod needs them whole */
        char *t = malloc(L + 1);
        if (!t) return fail(p, "out of memory");
        memcpy(t, p->s + b, L);
        t[L] = 0;
        v->number = strtod(t, NULL);   /* overflow gives +-HUGE_VAL: 1e999 reads as inf */
        free(t);
        integral = 0;
    } else {
        memcpy(buf, p->s + b, L);
        buf[L] = 0;
        v->number = strtod(buf, NULL);
        if (integral) {
            errno = 0;
            long long x = strtoll(buf, NULL, 10);
            if (errno == 0) { v->is_int = 1; v->integer = (int64_t)x; }
        }
    }
    v->type = NNU_JSON_NUMBER;
    return 1;
}

static int parse_value(parser *p, nnu_json *v, int depth);

static int push_child(parser *p, nnu_json *v, int *cap, char *key) {
    if (v->n == *cap) {
        int nc = *cap ? *cap * 2 : 8;
        nnu_json *it = realloc(v->items, sizeof *it * (size_t)nc);
        if (!it) { free(key); return fail(p, "out of memory"); }
        v->items = it;
        if (v->type == NNU_JSON_OBJECT) {
            char **ks = realloc(v->keys, sizeof *ks * (size_t)nc);
            if (!ks) { free(key); return fail(p, "out of memory"); }
            v->keys = ks;
        }
        *cap = nc;
    }
    memset(&v->items[v->n], 0, sizeof v->items[v->n]);
    if (v->type == NNU_JSON_OBJECT) v->keys[v->n] = key;
    v->n++;
    return 1;
}

static int parse_container(parser *p, nnu_json *v, int depth) {
    int is_obj = p->s[p->i] == '{';
    char close = is_obj ? '}' : ']';
    v->type = is_obj ? NNU_JSON_OBJECT : NNU_JSON_ARRAY;
    p->i++;
    int cap = 0;
    skip_ws(p);
    if (p->i < p->n && p->s[p->i] == close) { p->i++; return 1; }
    for (;;) {
        char *key = NULL;
        skip_ws(p);
        if (is_obj) {
            size_t klen;
            if (p->i >= p->n || p->s[p->i] != '"') return fail(p, "expected a key string");
            if (!parse_string(p, &key, &klen)) return 0;
            for (int k = 0; k < v->n; k++)
                if (!strcmp(v->keys[k], key)) {
                    int r = fail(p, "duplicate key \"%.60s\"", key);
                    free(key);
                    return r;
                }
            skip_ws(p);
            if (p->i >= p->n || p->s[p->i] != ':') { free(key); return fail(p, "expected ':'"); }
            p->i++;
        }
        if (!push_child(p, v, &cap, key)) return 0;
        if (!parse_value(p, &v->items[v->n - 1], depth + 1)) return 0;
        skip_ws(p);
        if (p->i >= p->n) return fail(p, "unterminated %s", is_obj ? "object" : "array");
        if (p->s[p->i] == ',') { p->i++; continue; }
        if (p->s[p->i] == close) { p->i++; return 1; }
        return fail(p, "expected ',' or '%c'", close);
    }
}

static int literal(parser *p, const char *word) {
    size_t L = strlen(word);
    if (p->n - p->i < L || memcmp(p->s + p->i, word, L) != 0) return fail(p, "unexpected character");
    p->i += L;
    return 1;
}

static int parse_value(parser *p, nnu_json *v, int depth) {
    if (depth > MAX_DEPTH) return fail(p, "nesting deeper than %d", MAX_DEPTH);
    skip_ws(p);
    if (p->i >= p->n) return fail(p, "unexpected end of text");
    v->pos = p->i;
    char c = p->s[p->i];
    if (c == '{' || c == '[') return parse_container(p, v, depth);
    if (c == '"') { v->type = NNU_JSON_STRING; return parse_string(p, &v->string, &v->len); }
    if (c == 't') { v->type = NNU_JSON_BOOL; v->boolean = 1; return literal(p, "true"); }
    if (c == 'f') { v->type = NNU_JSON_BOOL; return literal(p, "false"); }
    if (c == 'n') { v->type = NNU_JSON_NULL; return literal(p, "null"); }
    if (c == '-' || (c >= '0' && c <= '9')) return parse_number(p, v);
    return fail(p, "unexpected character '%c'", c >= 0x20 && c < 0x7f ? c : '?');
}

nnu_json *nnu_json_parse(const char *text, size_t len, char *err, size_t errlen) {
    parser p = {text, len, 0, err, errlen, 0};
    if (err && errlen) err[0] = 0;
    nnu_json *v = calloc(1, sizeof *v);
    if (!v) { fail(&p, "out of memory"); return NULL; }
    if (parse_value(&p, v, 0)) {
        skip_ws(&p);
        if (p.i == p.n) return v;
        fail(&p, "text after the value");
    }
    nnu_json_free(v);
    return NULL;
}

const nnu_json *nnu_json_get(const nnu_json *v, const char *key) {
    if (!v || v->type != NNU_JSON_OBJECT) return NULL;
    for (int k = 0; k < v->n; k++)
        if (!strcmp(v->keys[k], key)) return &v->items[k];
    return NULL;
}
