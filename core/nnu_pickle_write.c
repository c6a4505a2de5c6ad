/* nnu_pickle_write.c: nodes -> a protocol-2 pickle (nnu_pickle.h), the opcodes
 * Python's own pickler emits at protocol 2 for the same values, which is what
 * torch.save writes (torch.serialization.DEFAULT_PROTOCOL = 2):
 *   None N, bools NEWTRUE/NEWFALSE, ints BININT1/BININT2/BININT/LONG1, floats BINFLOAT
 *   (big-endian), str BINUNICODE, tuples EMPTY_TUPLE/TUPLE1-3/MARK..TUPLE, lists and
 *   dicts EMPTY_* then MARK..APPENDS/SETITEMS in batches of 1000 (as pickle.py's
 *   _BATCHSIZE), globals GLOBAL "module\nname\n", calls callee args REDUCE [+ SETITEMS /
 *   APPENDS of their entries] [+ state BUILD], persistent ids pid BINPERSID.
 * bytes use BINBYTES (protocol 3, which every Python 3 unpickler reads whatever the
 * declared protocol). Sets, frozensets and keyword calls are not written. */
#include <stdlib.h>
#include <string.h>

#include "nnu_pickle.h"

int nnu_pk_doc_oom_(const nnu_pk_doc *d);   /* nnu_pickle.c */

#define BATCH 1000

typedef struct out {
    unsigned char *p;
    size_t         n, cap;
    int            oom;
} out;

static void put(out *o, const void *b, size_t n) {
    if (o->oom) return;
    if (o->n + n > o->cap) {
        size_t cap = o->cap ? o->cap : 4096;
        while (cap < o->n + n) cap *= 2;
        unsigned char *p = realloc(o->p, cap);
        if (!p) { o->oom = 1; return; }
        o->p = p;
        o->cap = cap;
    }
    memcpy(o->p + o->n, b, n);
    o->n += n;
}

static void put1(out *o, unsigned char c) { put(o, &c, 1); }

static void put_le(out *o, uint64_t v, int n) {
    unsigned char b[8];
    for (int k = 0; k < n; k++) b[k] = (unsigned char)(v >> (8 * k));
    put(o, b, (size_t)n);
}

static void put_int(out *o, int64_t v) {
    if (v >= 0 && v < 256) { put1(o, 'K'); put1(o, (unsigned char)v); return; }
    if (v >= 0 && v < 65536) { put1(o, 'M'); put_le(o, (uint64_t)v, 2); return; }
    if (v >= INT32_MIN && v <= INT32_MAX) { put1(o, 'J'); put_le(o, (uint64_t)v, 4); return; }
    /* LONG1 with the fewest bytes that keep the sign (pickle.encode_long) */
    int n = 8;
    while (n > 1) {
        int64_t lo = -((int64_t)1 << (8 * (n - 1) - 1)), hi = ((int64_t)1 << (8 * (n - 1) - 1)) - 1;
        if (v < lo || v > hi) break;
        n--;
    }
    put1(o, 0x8a);
    put1(o, (unsigned char)n);
    put_le(o, (uint64_t)v, n);
}

static nnu_status write_value(out *o, const nnu_pk *v, int depth);

/* MARK k v ... SETITEMS in batches (the dict or call is on the stack below) */
static nnu_status write_entries(out *o, const nnu_pk *v, int depth) {
    for (int k = 0; k < v->nkv; k += BATCH) {
        put1(o, '(');
        for (int j = k; j < v->nkv && j < k + BATCH; j++) {
            NNU_TRY(write_value(o, v->keys[j], depth + 1));
            NNU_TRY(write_value(o, v->vals[j], depth + 1));
        }
        put1(o, 'u');
    }
    return NNU_STATUS_OK;
}

static nnu_status write_items(out *o, const nnu_pk *v, int depth) {
    for (int k = 0; k < v->n; k += BATCH) {
        put1(o, '(');
        for (int j = k; j < v->n && j < k + BATCH; j++) NNU_TRY(write_value(o, v->items[j], depth + 1));
        put1(o, 'e');
    }
    return NNU_STATUS_OK;
}

static nnu_status write_value(out *o, const nnu_pk *v, int depth) {
    NNU_CHECK(v != NULL, NNU_STATUS_ERR_ARG, "pickle writer: a NULL node");
    NNU_CHECK(depth < NNU_PK_MAX_DEPTH, NNU_STATUS_ERR_ARG,
              "pickle writer: nesting deeper than %d (a cycle?)", NNU_PK_MAX_DEPTH);
    switch (v->type) {
    case NNU_PK_NONE: put1(o, 'N'); break;
    case NNU_PK_BOOL: put1(o, v->i ? 0x88 : 0x89); break;
    case NNU_PK_INT:
        if (!v->big) { put_int(o, v->i); break; }
        if (v->len < 256) { put1(o, 0x8a); put1(o, (unsigned char)v->len); }
        else { put1(o, 0x8b); put_le(o, v->len, 4); }
        put(o, v->s, v->len);
        break;
    case NNU_PK_FLOAT: {
        uint64_t u;
        unsigned char b[8];
        memcpy(&u, &v->f, sizeof u);
        for (int k = 0; k < 8; k++) b[k] = (unsigned char)(u >> (56 - 8 * k));
        put1(o, 'G');
        put(o, b, 8);
        break;
    }
    case NNU_PK_STR:
    case NNU_PK_BYTES:
        NNU_CHECK(v->len <= UINT32_MAX, NNU_STATUS_ERR_ARG, "pickle writer: a string of %zu bytes", v->len);
        put1(o, v->type == NNU_PK_STR ? 'X' : 'B');
        put_le(o, v->len, 4);
        put(o, v->s, v->len);
        break;
    case NNU_PK_TUPLE:
        if (v->n == 0) { put1(o, ')'); break; }
        if (v->n > 3) put1(o, '(');
        for (int k = 0; k < v->n; k++) NNU_TRY(write_value(o, v->items[k], depth + 1));
        put1(o, v->n > 3 ? 't' : (unsigned char)(0x84 + v->n));
        break;
    case NNU_PK_LIST:
        put1(o, ']');
        NNU_TRY(write_items(o, v, depth));
        break;
    case NNU_PK_DICT:
        put1(o, '}');
        NNU_TRY(write_entries(o, v, depth));
        break;
    case NNU_PK_GLOBAL:
        NNU_CHECK(!strchr(v->s, '\n') && !strchr(v->name, '\n'), NNU_STATUS_ERR_ARG,
                  "pickle writer: a global name with a newline");
        put1(o, 'c');
        put(o, v->s, strlen(v->s));
        put1(o, '\n');
        put(o, v->name, strlen(v->name));
        put1(o, '\n');
        break;
    case NNU_PK_CALL:
        NNU_CHECK(!v->kwargs, NNU_STATUS_ERR_ARG, "pickle writer: calls with keyword arguments are not written");
        NNU_CHECK(v->args && v->args->type == NNU_PK_TUPLE, NNU_STATUS_ERR_ARG,
                  "pickle writer: a call's arguments must be a tuple");
        NNU_TRY(write_value(o, v->callee, depth + 1));
        NNU_TRY(write_value(o, v->args, depth + 1));
        put1(o, 'R');
        NNU_TRY(write_items(o, v, depth));
        NNU_TRY(write_entries(o, v, depth));
        if (v->state) {
            NNU_TRY(write_value(o, v->state, depth + 1));
            put1(o, 'b');
        }
        break;
    case NNU_PK_PERSID:
        NNU_TRY(write_value(o, v->args, depth + 1));
        put1(o, 'Q');
        break;
    default:
        return NNU_FAIL(NNU_STATUS_ERR_ARG, "pickle writer: a %s is not written (protocol 2 subset)",
                        nnu_pk_type_name(v->type));
    }
    return NNU_STATUS_OK;
}

nnu_status nnu_pickle_write(const nnu_pk_doc *d, const nnu_pk *root, void **res, size_t *len) {
    *res = NULL;
    *len = 0;
    NNU_CHECK(d && !nnu_pk_doc_oom_(d), NNU_STATUS_ERR_OOM, "pickle writer: out of memory building the values");
    out o = {0};
    put1(&o, 0x80);   /* PROTO 2 */
    put1(&o, 2);
    nnu_status st = write_value(&o, root, 0);
    put1(&o, '.');    /* STOP */
    if (st == NNU_STATUS_OK && o.oom) st = NNU_FAIL(NNU_STATUS_ERR_OOM, "pickle writer: out of memory");
    if (st != NNU_STATUS_OK) {
        free(o.p);
        return st;
    }
    *res = o.p;
    *len = o.n;
    return NNU_STATUS_OK;
}
