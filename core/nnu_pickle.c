/* nnu_pickle.c: the document (node arena), the constructors, the restricted reader and
 * the inspection helpers of nnu_pickle.h. The writer is nnu_pickle_write.c.
 *
 * The reader is Python's pickle machine (Lib/pickle.py, _Unpickler) with every import
 * and call replaced by a node: a stack of values, a stack of MARK positions and a memo.
 * It is iterative (no recursion on the input's nesting), so the only bounds it needs
 * are the input's length: every opcode consumes at least one byte and pushes at most
 * one value, which bounds the stack, the node count and (see nnu_pickle.h) the memo. */
#include "nnu_pickle.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct nnu_pk_doc {
    nnu_pk **nodes;            /* every node of the document, for nnu_pk_doc_free */
    size_t   n, cap;
    int      oom;              /* a constructor ran out of memory (nnu_pickle_write says so) */
};

/* ------------------------------------------------------------------ the arena */

nnu_pk_doc *nnu_pk_doc_new(void) { return calloc(1, sizeof(nnu_pk_doc)); }

void nnu_pk_doc_free(nnu_pk_doc *d) {
    if (!d) return;
    for (size_t k = 0; k < d->n; k++) {
        nnu_pk *v = d->nodes[k];
        free(v->s);
        free(v->name);
        free(v->items);
        free(v->keys);
        free(v->vals);
        free(v);
    }
    free(d->nodes);
    free(d);
}

int nnu_pk_doc_oom_(const nnu_pk_doc *d);   /* for nnu_pickle_write.c */
int nnu_pk_doc_oom_(const nnu_pk_doc *d) { return d->oom; }

nnu_pk *nnu_pk_new(nnu_pk_doc *d, nnu_pk_type type) {
    if (!d) return NULL;
    if (d->n == d->cap) {
        size_t cap = d->cap ? 2 * d->cap : 64;
        nnu_pk **p = realloc(d->nodes, cap * sizeof *p);
        if (!p) { d->oom = 1; return NULL; }
        d->nodes = p;
        d->cap = cap;
    }
    nnu_pk *v = calloc(1, sizeof *v);
    if (!v) { d->oom = 1; return NULL; }
    v->type = type;
    d->nodes[d->n++] = v;
    return v;
}

/* doubles *cap (from 4) until need fits; arrays of pointers only */
static int grow(nnu_pk ***a, int *cap, int need) {
    if (need <= *cap) return 1;
    int c = *cap ? *cap : 4;
    while (c < need) {
        if (c > (1 << 28)) return 0;
        c *= 2;
    }
    nnu_pk **p = realloc(*a, (size_t)c * sizeof *p);
    if (!p) return 0;
    *a = p;
    *cap = c;
    return 1;
}

void nnu_pk_append(nnu_pk_doc *d, nnu_pk *seq, nnu_pk *item) {
    if (!d || !seq || !item) return;
    if (!grow(&seq->items, &seq->cap, seq->n + 1)) { d->oom = 1; return; }
    seq->items[seq->n++] = item;
}

void nnu_pk_setitem(nnu_pk_doc *d, nnu_pk *dict, nnu_pk *key, nnu_pk *val) {
    if (!d || !dict || !key || !val) return;
    if (dict->nkv == dict->capkv) {   /* keys and vals share one capacity */
        int c = dict->capkv ? 2 * dict->capkv : 4;
        nnu_pk **k = c < (1 << 28) ? realloc(dict->keys, (size_t)c * sizeof *k) : NULL;
        if (k) dict->keys = k;
        nnu_pk **v = k ? realloc(dict->vals, (size_t)c * sizeof *v) : NULL;
        if (!v) { d->oom = 1; return; }
        dict->vals = v;
        dict->capkv = c;
    }
    dict->keys[dict->nkv] = key;
    dict->vals[dict->nkv++] = val;
}

nnu_pk *nnu_pk_none(nnu_pk_doc *d) { return nnu_pk_new(d, NNU_PK_NONE); }

nnu_pk *nnu_pk_bool(nnu_pk_doc *d, int b) {
    nnu_pk *v = nnu_pk_new(d, NNU_PK_BOOL);
    if (v) v->i = b != 0;
    return v;
}

nnu_pk *nnu_pk_int(nnu_pk_doc *d, int64_t i) {
    nnu_pk *v = nnu_pk_new(d, NNU_PK_INT);
    if (v) v->i = i;
    return v;
}

nnu_pk *nnu_pk_float(nnu_pk_doc *d, double f) {
    nnu_pk *v = nnu_pk_new(d, NNU_PK_FLOAT);
    if (v) v->f = f;
    return v;
}

/* a node of type t holding a copy of p[0..len) (NUL-terminated) */
static nnu_pk *bytes_node(nnu_pk_doc *d, nnu_pk_type t, const void *p, size_t len) {
    nnu_pk *v = nnu_pk_new(d, t);
    if (!v) return NULL;
    v->s = malloc(len + 1);
    if (!v->s) { d->oom = 1; return NULL; }
    if (len) memcpy(v->s, p, len);
    v->s[len] = 0;
    v->len = len;
    return v;
}

nnu_pk *nnu_pk_strn(nnu_pk_doc *d, const char *s, size_t len) { return bytes_node(d, NNU_PK_STR, s, len); }
nnu_pk *nnu_pk_str(nnu_pk_doc *d, const char *s) { return nnu_pk_strn(d, s, strlen(s)); }
nnu_pk *nnu_pk_bytes(nnu_pk_doc *d, const void *p, size_t len) { return bytes_node(d, NNU_PK_BYTES, p, len); }

nnu_pk *nnu_pk_global(nnu_pk_doc *d, const char *module, const char *name) {
    nnu_pk *v = bytes_node(d, NNU_PK_GLOBAL, module, strlen(module));
    if (!v) return NULL;
    v->name = strdup(name);
    if (!v->name) { d->oom = 1; return NULL; }
    return v;
}

nnu_pk *nnu_pk_call(nnu_pk_doc *d, nnu_pk *callee, nnu_pk *args) {
    if (!callee) return NULL;
    if (!args) args = nnu_pk_new(d, NNU_PK_TUPLE);
    nnu_pk *v = args ? nnu_pk_new(d, NNU_PK_CALL) : NULL;
    if (v) {
        v->callee = callee;
        v->args = args;
    }
    return v;
}

nnu_pk *nnu_pk_persid(nnu_pk_doc *d, nnu_pk *pid) {
    nnu_pk *v = pid ? nnu_pk_new(d, NNU_PK_PERSID) : NULL;
    if (v) v->args = pid;
    return v;
}

nnu_pk *nnu_pk_tuple(nnu_pk_doc *d, int n, nnu_pk *const *items) {
    nnu_pk *t = nnu_pk_new(d, NNU_PK_TUPLE);
    for (int k = 0; k < n; k++) {
        if (!items[k]) return NULL;
        nnu_pk_append(d, t, items[k]);
    }
    return d && d->oom ? NULL : t;
}

/* ------------------------------------------------------------------ inspection */

const char *nnu_pk_type_name(nnu_pk_type t) {
    static const char *const names[] = {"None", "bool", "int", "float", "str", "bytes", "tuple", "list",
                                        "dict", "set", "frozenset", "global", "call", "persistent id",
                                        "mark"};
    return (unsigned)t < sizeof names / sizeof *names ? names[t] : "?";
}

int nnu_pk_has_entries(const nnu_pk *v) {
    return v && (v->type == NNU_PK_DICT ||
                 (v->type == NNU_PK_CALL && nnu_pk_is_global(v->callee, "collections", "OrderedDict")));
}

const nnu_pk *nnu_pk_get(const nnu_pk *v, const char *key) {
    if (!v || (v->type != NNU_PK_DICT && v->type != NNU_PK_CALL)) return NULL;
    for (int k = 0; k < v->nkv; k++)
        if (nnu_pk_is_str(v->keys[k], key)) return v->vals[k];
    return NULL;
}

int nnu_pk_is_global(const nnu_pk *v, const char *module, const char *name) {
    return v && v->type == NNU_PK_GLOBAL && !strcmp(v->s, module) && !strcmp(v->name, name);
}

int nnu_pk_is_str(const nnu_pk *v, const char *s) {
    return v && v->type == NNU_PK_STR && v->len == strlen(s) && !memcmp(v->s, s, v->len);
}

/* ------------------------------------------------------------------ the reader */

typedef struct reader {
    const unsigned char *p;
    size_t               len, pos, op_pos;   /* op_pos: offset of the current opcode */
    const char          *what;
    nnu_pk_doc          *doc;
    nnu_pk             **stack;
    int                  sn, scap;
    int                 *marks;              /* stack heights at each MARK */
    int                  mn, mcap;
    nnu_pk             **memo;               /* sparse, grown to the highest index + 1 */
    size_t               memo_cap, memo_count;
} reader;

#define BAD(r, ...) bad_((r), __FILE__, __LINE__, __VA_ARGS__)
static nnu_status bad_(const reader *r, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static nnu_status bad_(const reader *r, const char *file, int line, const char *fmt, ...) {
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return nnu_fail(NNU_STATUS_ERR_FORMAT, file, line, "%s: byte %zu: %s (not a valid pickle)", r->what,
                    r->op_pos, msg);
}

static nnu_status oom(const reader *r) {
    return NNU_FAIL(NNU_STATUS_ERR_OOM, "%s: out of memory reading the pickle", r->what);
}

/* n more bytes of argument, or a truncation error */
static nnu_status take(reader *r, size_t n, const unsigned char **out) {
    if (n > r->len - r->pos)
        return BAD(r, "truncated: opcode 0x%02x needs %zu more bytes, %zu left", r->p[r->op_pos], n,
                   r->len - r->pos);
    *out = r->p + r->pos;
    r->pos += n;
    return NNU_STATUS_OK;
}

static uint64_t le(const unsigned char *b, int n) {
    uint64_t v = 0;
    for (int k = n - 1; k >= 0; k--) v = v << 8 | b[k];
    return v;
}

/* a newline-terminated text argument (GLOBAL's module and name) */
static nnu_status take_line(reader *r, const char **s, size_t *n) {
    const unsigned char *start = r->p + r->pos;
    const unsigned char *nl = memchr(start, '\n', r->len - r->pos);
    if (!nl) return BAD(r, "truncated: a text argument without its newline");
    *s = (const char *)start;
    *n = (size_t)(nl - start);
    r->pos += *n + 1;
    return NNU_STATUS_OK;
}

static nnu_status push(reader *r, nnu_pk *v) {
    if (!v) return oom(r);
    if (!grow(&r->stack, &r->scap, r->sn + 1)) return oom(r);
    r->stack[r->sn++] = v;
    return NNU_STATUS_OK;
}

/* the top value (a MARK is not a value) */
static nnu_status top(reader *r, nnu_pk **v) {
    if (r->sn == 0 || (r->mn > 0 && r->marks[r->mn - 1] == r->sn)) return BAD(r, "stack underflow");
    *v = r->stack[r->sn - 1];
    return NNU_STATUS_OK;
}

static nnu_status pop(reader *r, nnu_pk **v) {
    NNU_TRY(top(r, v));
    r->sn--;
    return NNU_STATUS_OK;
}

/* the values above the last MARK: *first is their index in the stack; the mark is
 * dropped, the values stay until the caller sets r->sn = *first */
static nnu_status pop_mark(reader *r, int *first) {
    if (r->mn == 0) return BAD(r, "no MARK for opcode 0x%02x", r->p[r->op_pos]);
    *first = r->marks[--r->mn];
    return NNU_STATUS_OK;
}

static nnu_status memo_put(reader *r, uint64_t idx) {
    nnu_pk *v = NULL;
    NNU_TRY(top(r, &v));
    if (idx >= r->len) return BAD(r, "memo index %llu out of range", (unsigned long long)idx);
    if (idx >= r->memo_cap) {
        size_t cap = r->memo_cap ? r->memo_cap : 64;
        while (cap <= idx) cap *= 2;
        nnu_pk **m = realloc(r->memo, cap * sizeof *m);
        if (!m) return oom(r);
        memset(m + r->memo_cap, 0, (cap - r->memo_cap) * sizeof *m);
        r->memo = m;
        r->memo_cap = cap;
    }
    if (!r->memo[idx]) r->memo_count++;
    r->memo[idx] = v;
    return NNU_STATUS_OK;
}

static nnu_status memo_get(reader *r, uint64_t idx) {
    if (idx >= r->memo_cap || !r->memo[idx])
        return BAD(r, "memo entry %llu was never stored", (unsigned long long)idx);
    return push(r, r->memo[idx]);
}

/* LONG1 / LONG4: n bytes of little-endian two's complement */
static nnu_status push_long(reader *r, const unsigned char *b, size_t n) {
    int fits = n <= 8;
    if (!fits) {   /* wider encodings still fit when the extra bytes only extend the sign */
        unsigned char ext = (b[7] & 0x80) ? 0xff : 0x00;
        fits = 1;
        for (size_t k = 8; k < n && fits; k++) fits = b[k] == ext;
    }
    if (!fits) {
        nnu_pk *v = bytes_node(r->doc, NNU_PK_INT, b, n);
        if (v) v->big = 1;
        return push(r, v);
    }
    int m = n < 8 ? (int)n : 8;
    uint64_t u = m ? le(b, m) : 0;
    if (m > 0 && m < 8 && (b[m - 1] & 0x80)) u |= ~(uint64_t)0 << (8 * m);   /* sign extension */
    return push(r, nnu_pk_int(r->doc, (int64_t)u));
}

/* a container of type t from the values stack[first..sn) */
static nnu_status collect(reader *r, nnu_pk_type t, int first) {
    nnu_pk *v = nnu_pk_new(r->doc, t);
    if (!v) return oom(r);
    if (t == NNU_PK_DICT) {
        if ((r->sn - first) % 2) return BAD(r, "DICT with an odd number of items");
        for (int k = first; k < r->sn; k += 2) nnu_pk_setitem(r->doc, v, r->stack[k], r->stack[k + 1]);
    } else {
        for (int k = first; k < r->sn; k++) nnu_pk_append(r->doc, v, r->stack[k]);
    }
    if (r->doc->oom) return oom(r);
    r->sn = first;
    return push(r, v);
}

/* SETITEMS / SETITEM: pairs stack[first..sn) into the dict (or call) below them */
static nnu_status set_items(reader *r, int first) {
    if ((r->sn - first) % 2) return BAD(r, "SETITEMS with an odd number of items");
    if (first == 0 || (r->mn > 0 && r->marks[r->mn - 1] == first)) return BAD(r, "SETITEMS without a dict");
    nnu_pk *d = r->stack[first - 1];
    if (d->type != NNU_PK_DICT && d->type != NNU_PK_CALL)
        return BAD(r, "SETITEMS on a %s", nnu_pk_type_name(d->type));
    for (int k = first; k < r->sn; k += 2) nnu_pk_setitem(r->doc, d, r->stack[k], r->stack[k + 1]);
    r->sn = first;
    return r->doc->oom ? oom(r) : NNU_STATUS_OK;
}

/* APPENDS / APPEND / ADDITEMS: stack[first..sn) onto the sequence below them */
static nnu_status append_items(reader *r, int first, int sets) {
    if (first == 0 || (r->mn > 0 && r->marks[r->mn - 1] == first)) return BAD(r, "APPENDS without a list");
    nnu_pk *s = r->stack[first - 1];
    int ok = sets ? s->type == NNU_PK_SET : s->type == NNU_PK_LIST || s->type == NNU_PK_CALL;
    if (!ok) return BAD(r, "%s on a %s", sets ? "ADDITEMS" : "APPENDS", nnu_pk_type_name(s->type));
    for (int k = first; k < r->sn; k++) nnu_pk_append(r->doc, s, r->stack[k]);
    r->sn = first;
    return r->doc->oom ? oom(r) : NNU_STATUS_OK;
}

static nnu_status push_call(reader *r, nnu_pk *callee, nnu_pk *args, nnu_pk *kwargs) {
    if (args->type != NNU_PK_TUPLE)
        return BAD(r, "the arguments of a call are a %s, not a tuple", nnu_pk_type_name(args->type));
    nnu_pk *v = nnu_pk_call(r->doc, callee, args);
    if (v) v->kwargs = kwargs;
    return push(r, v);
}

/* one opcode; *stop = 1 at STOP */
static nnu_status step(reader *r, int *stop) {
    /* initialised: gcc cannot see that NNU_TRY returns before a failed call's outputs are used */
    const unsigned char *b = NULL;
    nnu_pk *v = NULL, *w = NULL, *x = NULL;
    int first = 0;
    r->op_pos = r->pos;
    const unsigned char op = r->p[r->pos++];
    switch (op) {
    case 0x80:   /* PROTO */
        NNU_TRY(take(r, 1, &b));
        if (b[0] < 2 || b[0] > 5) return BAD(r, "unsupported pickle protocol %d (2 to 5 are read)", b[0]);
        return NNU_STATUS_OK;
    case 0x95:   /* FRAME: a length prefix for buffered reading; the content is ordinary opcodes */
        return take(r, 8, &b);
    case '.':    /* STOP */
        NNU_TRY(top(r, &v));
        *stop = 1;
        return NNU_STATUS_OK;
    case 'N': return push(r, nnu_pk_none(r->doc));
    case 0x88: return push(r, nnu_pk_bool(r->doc, 1));   /* NEWTRUE */
    case 0x89: return push(r, nnu_pk_bool(r->doc, 0));   /* NEWFALSE */
    case 'J':    /* BININT: signed 32-bit */
        NNU_TRY(take(r, 4, &b));
        return push(r, nnu_pk_int(r->doc, (int32_t)(uint32_t)le(b, 4)));
    case 'K':    /* BININT1: unsigned 8-bit */
        NNU_TRY(take(r, 1, &b));
        return push(r, nnu_pk_int(r->doc, b[0]));
    case 'M':    /* BININT2: unsigned 16-bit */
        NNU_TRY(take(r, 2, &b));
        return push(r, nnu_pk_int(r->doc, (int64_t)le(b, 2)));
    case 0x8a:   /* LONG1 */
        NNU_TRY(take(r, 1, &b));
        { size_t n = b[0]; NNU_TRY(take(r, n, &b)); return push_long(r, b, n); }
    case 0x8b:   /* LONG4 */
        NNU_TRY(take(r, 4, &b));
        {
            int32_t n = (int32_t)(uint32_t)le(b, 4);
            if (n < 0) return BAD(r, "LONG4 with a negative length");
            NNU_TRY(take(r, (size_t)n, &b));
            return push_long(r, b, (size_t)n);
        }
    case 'G':    /* BINFLOAT: big-endian IEEE double */
        NNU_TRY(take(r, 8, &b));
        {
            uint64_t u = 0;
            double f;
            for (int k = 0; k < 8; k++) u = u << 8 | b[k];
            memcpy(&f, &u, sizeof f);
            return push(r, nnu_pk_float(r->doc, f));
        }
    case 0x8c: case 'X': case 0x8d:   /* SHORT_BINUNICODE, BINUNICODE, BINUNICODE8 */
    case 'U': case 'T':               /* SHORT_BINSTRING, BINSTRING (Python 2 str: read as text) */
    case 'C': case 'B': case 0x8e: case 0x96: {   /* SHORT_BINBYTES, BINBYTES, BINBYTES8, BYTEARRAY8 */
        int w8 = op == 0x8c || op == 'U' || op == 'C' ? 1 : op == 'X' || op == 'T' || op == 'B' ? 4 : 8;
        NNU_TRY(take(r, (size_t)w8, &b));
        uint64_t n = le(b, w8);
        if (op == 'T' && (int32_t)n < 0) return BAD(r, "BINSTRING with a negative length");
        if (n > r->len - r->pos)
            return BAD(r, "truncated: a string of %llu bytes, %zu left", (unsigned long long)n, r->len - r->pos);
        NNU_TRY(take(r, (size_t)n, &b));
        int text = op == 0x8c || op == 'X' || op == 0x8d || op == 'U' || op == 'T';
        return push(r, bytes_node(r->doc, text ? NNU_PK_STR : NNU_PK_BYTES, b, (size_t)n));
    }
    case ')': return push(r, nnu_pk_new(r->doc, NNU_PK_TUPLE));   /* EMPTY_TUPLE */
    case ']': return push(r, nnu_pk_new(r->doc, NNU_PK_LIST));    /* EMPTY_LIST */
    case '}': return push(r, nnu_pk_new(r->doc, NNU_PK_DICT));    /* EMPTY_DICT */
    case 0x8f: return push(r, nnu_pk_new(r->doc, NNU_PK_SET));    /* EMPTY_SET */
    case 0x85: case 0x86: case 0x87: {   /* TUPLE1, TUPLE2, TUPLE3 */
        int n = op - 0x84;
        for (int k = 0; k < n; k++)
            if (r->sn - k == 0 || (r->mn > 0 && r->marks[r->mn - 1] > r->sn - 1 - k)) return BAD(r, "stack underflow");
        return collect(r, NNU_PK_TUPLE, r->sn - n);
    }
    case 't': NNU_TRY(pop_mark(r, &first)); return collect(r, NNU_PK_TUPLE, first);
    case 'l': NNU_TRY(pop_mark(r, &first)); return collect(r, NNU_PK_LIST, first);
    case 'd': NNU_TRY(pop_mark(r, &first)); return collect(r, NNU_PK_DICT, first);
    case 0x91: NNU_TRY(pop_mark(r, &first)); return collect(r, NNU_PK_FROZENSET, first);
    case 'a':    /* APPEND */
        NNU_TRY(top(r, &v));
        return append_items(r, r->sn - 1, 0);
    case 'e': NNU_TRY(pop_mark(r, &first)); return append_items(r, first, 0);   /* APPENDS */
    case 0x90: NNU_TRY(pop_mark(r, &first)); return append_items(r, first, 1);  /* ADDITEMS */
    case 's':    /* SETITEM */
        if (r->sn < 2) return BAD(r, "stack underflow");
        NNU_TRY(top(r, &v));
        if (r->mn > 0 && r->marks[r->mn - 1] > r->sn - 2) return BAD(r, "stack underflow");
        return set_items(r, r->sn - 2);
    case 'u': NNU_TRY(pop_mark(r, &first)); return set_items(r, first);          /* SETITEMS */
    case '(':    /* MARK */
        if (!r->marks || r->mn == r->mcap) {
            int cap = r->mcap ? 2 * r->mcap : 16;
            int *m = realloc(r->marks, (size_t)cap * sizeof *m);
            if (!m) return oom(r);
            r->marks = m;
            r->mcap = cap;
        }
        r->marks[r->mn++] = r->sn;
        return NNU_STATUS_OK;
    case '0':    /* POP: the top value, or a MARK on top (as pickle.py's load_pop) */
        if (r->mn > 0 && r->marks[r->mn - 1] == r->sn) { r->mn--; return NNU_STATUS_OK; }
        return pop(r, &v);
    case '1': NNU_TRY(pop_mark(r, &first)); r->sn = first; return NNU_STATUS_OK;   /* POP_MARK */
    case '2': NNU_TRY(top(r, &v)); return push(r, v);   /* DUP */
    case 'c': {  /* GLOBAL: "module\nname\n" */
        const char *m = NULL, *n = NULL;
        size_t ml = 0, nl = 0;
        NNU_TRY(take_line(r, &m, &ml));
        NNU_TRY(take_line(r, &n, &nl));
        nnu_pk *g = bytes_node(r->doc, NNU_PK_GLOBAL, m, ml);
        if (g && !(g->name = strndup(n, nl))) return oom(r);
        return push(r, g);
    }
    case 0x93:   /* STACK_GLOBAL: module and name strings on the stack */
        NNU_TRY(pop(r, &w));
        NNU_TRY(pop(r, &v));
        if (v->type != NNU_PK_STR || w->type != NNU_PK_STR) return BAD(r, "STACK_GLOBAL needs two strings");
        return push(r, nnu_pk_global(r->doc, v->s, w->s));
    case 'R':    /* REDUCE: callee(*args) */
    case 0x81:   /* NEWOBJ: cls.__new__(cls, *args) */
        NNU_TRY(pop(r, &w));
        NNU_TRY(pop(r, &v));
        return push_call(r, v, w, NULL);
    case 0x92:   /* NEWOBJ_EX: cls, args, kwargs */
        NNU_TRY(pop(r, &x));
        NNU_TRY(pop(r, &w));
        NNU_TRY(pop(r, &v));
        if (x->type != NNU_PK_DICT) return BAD(r, "NEWOBJ_EX keyword arguments are not a dict");
        return push_call(r, v, w, x);
    case 'b':    /* BUILD: obj.__setstate__(state) */
        NNU_TRY(pop(r, &w));
        NNU_TRY(top(r, &v));
        if (v->type != NNU_PK_CALL) return BAD(r, "BUILD on a %s", nnu_pk_type_name(v->type));
        v->state = w;
        return NNU_STATUS_OK;
    case 'Q':    /* BINPERSID */
        NNU_TRY(pop(r, &v));
        return push(r, nnu_pk_persid(r->doc, v));
    case 'q': NNU_TRY(take(r, 1, &b)); return memo_put(r, b[0]);          /* BINPUT */
    case 'r': NNU_TRY(take(r, 4, &b)); return memo_put(r, le(b, 4));      /* LONG_BINPUT */
    case 0x94: return memo_put(r, r->memo_count);                         /* MEMOIZE */
    case 'h': NNU_TRY(take(r, 1, &b)); return memo_get(r, b[0]);          /* BINGET */
    case 'j': NNU_TRY(take(r, 4, &b)); return memo_get(r, le(b, 4));      /* LONG_BINGET */
    default:
        return BAD(r, "unsupported opcode 0x%02x%s", op,
                   op == 0x82 || op == 0x83 || op == 0x84 ? " (extension registry)"
                   : op == 0x97 || op == 0x98         ? " (out-of-band buffer)"
                                                      : "");
    }
}

nnu_status nnu_pickle_read(const void *data, size_t len, const char *what, nnu_pk_doc **doc,
                           const nnu_pk **root) {
    *doc = NULL;
    *root = NULL;
    reader r = {.p = data, .len = len, .what = what ? what : "pickle"};
    r.doc = nnu_pk_doc_new();
    if (!r.doc) return oom(&r);
    nnu_status st = NNU_STATUS_OK;
    int stop = 0;
    while (st == NNU_STATUS_OK && !stop) {
        if (r.pos >= r.len) {
            r.op_pos = r.pos;
            st = BAD(&r, "truncated: no STOP opcode");
            break;
        }
        st = step(&r, &stop);
    }
    if (st == NNU_STATUS_OK) {
        *root = r.stack[r.sn - 1];
        *doc = r.doc;
    } else {
        nnu_pk_doc_free(r.doc);
    }
    free(r.stack);
    free(r.marks);
    free(r.memo);
    return st;
}
