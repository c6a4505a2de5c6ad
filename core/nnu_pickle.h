/* nnu_pickle: a restricted reader and a small writer of Python pickles (protocols 2-5),
 * for the data.pkl of PyTorch's torch.save files (nnu_torch_ckpt.h).
 *
 * Reading never executes anything. The pickle machine runs on a stack of value nodes;
 * what Python would import or call becomes data instead:
 *   GLOBAL / STACK_GLOBAL        -> NNU_PK_GLOBAL {module, name}   (a named reference)
 *   REDUCE / NEWOBJ / NEWOBJ_EX  -> NNU_PK_CALL {callee, args[, kwargs]}
 *   BUILD on a call              -> its `state`
 *   SETITEMS / APPENDS on a call -> its dict entries / sequence items (OrderedDict(),
 *                                   defaultdict, ... keep their contents)
 *   BINPERSID                    -> NNU_PK_PERSID {pid}   (torch: ('storage', ...))
 * so torch._utils._rebuild_tensor_v2(...), numpy scalars, torch.device, dtypes and
 * optimizer state survive as inspectable nodes.
 *
 * Nodes belong to a document (an arena): freeing the document frees them all, so a node
 * may be shared (memo GET) or even sit in a cycle (a list appended to itself) without
 * ownership questions. Consumers that recurse bound their depth (NNU_PK_MAX_DEPTH).
 *
 * Limits: the memo index must be below the pickle's length (pickle numbers its memo
 * entries 0, 1, ..., one per PUT opcode of at least 2 bytes, so this never rejects a
 * real pickle and keeps a hostile index from allocating gigabytes); integers wider
 * than 64 bits are kept as NNU_PK_INT with `big` = 1 and their little-endian two's
 * complement bytes in s/len. Every malformed or truncated input is an ERR_FORMAT
 * naming the input (`what`), the byte offset and the problem.
 *
 * Writing (nnu_pickle_write) serialises a tree of nodes built with the constructors
 * below at protocol 2, the protocol torch.save uses: None, bool, int, float, str,
 * bytes, tuple, list, dict, global, call (REDUCE, then BUILD with its state, SETITEMS
 * with its entries) and persid. Nodes are written as often as they are referenced (no
 * memo: a shared subtree is written twice, which Python reads as two equal objects). */
#ifndef NNU_PICKLE_H
#define NNU_PICKLE_H

#include <stddef.h>
#include <stdint.h>

#include "nnu_status.h"

#define NNU_PK_MAX_DEPTH 200          /* nesting bound of every recursive consumer */

typedef enum nnu_pk_type {
    NNU_PK_NONE = 0, NNU_PK_BOOL, NNU_PK_INT, NNU_PK_FLOAT, NNU_PK_STR, NNU_PK_BYTES,
    NNU_PK_TUPLE, NNU_PK_LIST, NNU_PK_DICT, NNU_PK_SET, NNU_PK_FROZENSET,
    NNU_PK_GLOBAL, NNU_PK_CALL, NNU_PK_PERSID,
    NNU_PK_MARK                       /* internal to the reader: never in a result */
} nnu_pk_type;

typedef struct nnu_pk nnu_pk;
struct nnu_pk {
    nnu_pk_type type;
    int64_t     i;                    /* BOOL (0/1), INT (when !big) */
    int         big;                  /* INT wider than 64 bits: bytes in s/len */
    double      f;                    /* FLOAT */
    char       *s;                    /* STR (UTF-8), BYTES, big INT; GLOBAL: module */
    size_t      len;                  /* bytes of s (s is NUL-terminated beyond them) */
    char       *name;                 /* GLOBAL: the name inside the module */
    int         n, cap;               /* items: TUPLE, LIST, SET, FROZENSET, CALL (APPENDS) */
    nnu_pk    **items;
    int         nkv, capkv;           /* entries: DICT, CALL (SETITEMS), in insertion order */
    nnu_pk    **keys, **vals;
    nnu_pk     *callee, *args;        /* CALL: callee (usually a GLOBAL) and its args tuple;
                                         PERSID: args is the persistent id */
    nnu_pk     *kwargs;               /* CALL from NEWOBJ_EX: the keyword dict */
    nnu_pk     *state;                /* CALL: the BUILD argument (NULL: none) */
};

typedef struct nnu_pk_doc nnu_pk_doc;

/* Reads the pickle data[0..len) into a new document; *root is its result (the value
 * on the stack at STOP). `what` names the input in messages ("'x.pth' data.pkl").
 * On failure *doc is NULL and the message reads "<what>: byte <k>: <problem>". */
nnu_status nnu_pickle_read(const void *data, size_t len, const char *what, nnu_pk_doc **doc,
                           const nnu_pk **root);

/* An empty document for building a tree to write; NULL when out of memory. */
nnu_pk_doc *nnu_pk_doc_new(void);
void        nnu_pk_doc_free(nnu_pk_doc *d);          /* NULL-safe; frees every node */

/* ---- constructors (for the writer) ----
 * Each returns a node of d, or NULL when out of memory; the document then remembers
 * the failure and nnu_pickle_write reports it, so a caller may build a whole tree and
 * check once. Strings are copied. Functions taking nodes accept NULL (doing nothing). */
nnu_pk *nnu_pk_none(nnu_pk_doc *d);
nnu_pk *nnu_pk_bool(nnu_pk_doc *d, int v);
nnu_pk *nnu_pk_int(nnu_pk_doc *d, int64_t v);
nnu_pk *nnu_pk_float(nnu_pk_doc *d, double v);
nnu_pk *nnu_pk_str(nnu_pk_doc *d, const char *s);
nnu_pk *nnu_pk_strn(nnu_pk_doc *d, const char *s, size_t len);
nnu_pk *nnu_pk_bytes(nnu_pk_doc *d, const void *p, size_t len);
nnu_pk *nnu_pk_new(nnu_pk_doc *d, nnu_pk_type type);      /* empty TUPLE, LIST, DICT, ... */
nnu_pk *nnu_pk_global(nnu_pk_doc *d, const char *module, const char *name);
/* callee(*args): args must be a TUPLE (NULL: an empty one) */
nnu_pk *nnu_pk_call(nnu_pk_doc *d, nnu_pk *callee, nnu_pk *args);
nnu_pk *nnu_pk_persid(nnu_pk_doc *d, nnu_pk *pid);
/* appends item to a sequence (or a call's items) */
void    nnu_pk_append(nnu_pk_doc *d, nnu_pk *seq, nnu_pk *item);
/* appends the entry key: val to a dict (or a call's entries); no duplicate check */
void    nnu_pk_setitem(nnu_pk_doc *d, nnu_pk *dict, nnu_pk *key, nnu_pk *val);
/* a TUPLE of n items */
nnu_pk *nnu_pk_tuple(nnu_pk_doc *d, int n, nnu_pk *const *items);

/* Writes root at protocol 2 into a new malloc'd buffer *out (*len bytes), which the
 * caller frees. ERR_OOM when the document's construction ran out of memory, ERR_ARG
 * on a node the writer does not support or nesting beyond NNU_PK_MAX_DEPTH. */
nnu_status nnu_pickle_write(const nnu_pk_doc *d, const nnu_pk *root, void **out, size_t *len);

/* ---- inspection ---- */
const char   *nnu_pk_type_name(nnu_pk_type t);           /* "dict", "call", ... */
/* the value under the string key `key` of a dict or of a call's entries; NULL when
 * absent or v has no entries */
const nnu_pk *nnu_pk_get(const nnu_pk *v, const char *key);
/* 1 when v is a GLOBAL module.name */
int           nnu_pk_is_global(const nnu_pk *v, const char *module, const char *name);
/* 1 when v is a STR equal to s */
int           nnu_pk_is_str(const nnu_pk *v, const char *s);
/* the entries of a dict, or of a call to collections.OrderedDict (the state dicts of
 * torch): 1 and *out = v when v holds them, else 0 */
int           nnu_pk_has_entries(const nnu_pk *v);

#endif
