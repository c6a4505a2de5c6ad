/* test_pickle.c: the restricted pickle reader and writer (core/nnu_pickle.h).
 *
 *  - pickles written by Python's own pickle at protocols 2, 4 and 5 (one value covering
 *    ints of every width, floats, str, bytes, tuples, sets, memo sharing, a cycle,
 *    OrderedDict, a REDUCE'd object; tests/gen/make_torch_ckpt_fixture.py) read into the
 *    expected nodes;
 *  - hand-made malformed pickles fail with a message naming the input;
 *  - fuzz: every strict prefix of each fixture and of a real torch data.pkl fails cleanly,
 *    every byte of a fixture flipped reads or fails cleanly (no crash: run under ASan);
 *  - the writer's output reads back into the same tree. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zip.h>

#include "check.h"
#include "nnu_pickle.h"

#define DIR "tests/fixtures/torch_ckpt/"
#define REGEN "/tmp/refenv/bin/python tests/gen/make_torch_ckpt_fixture.py"

static unsigned char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) { fprintf(stderr, "cannot open %s\nHINT: regenerate with: %s\n", path, REGEN); return NULL; }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)n + 1);
    *len = fread(b, 1, (size_t)n, f);
    fclose(f);
    return b;
}

static const nnu_pk *item(const nnu_pk *v, int k) { return v && k < v->n ? v->items[k] : NULL; }

static int is_int(const nnu_pk *v, int64_t i) { return v && v->type == NNU_PK_INT && !v->big && v->i == i; }

/* a big int's little-endian bytes: top byte's value and length */
static int is_big(const nnu_pk *v, size_t len, unsigned char last) {
    return v && v->type == NNU_PK_INT && v->big && v->len == len && (unsigned char)v->s[len - 1] == last;
}

static void check_value(const nnu_pk *root, int proto) {
    CHECK(root && root->type == NNU_PK_DICT, "p%d: root is a dict", proto);
    const nnu_pk *ints = nnu_pk_get(root, "ints");
    CHECK(ints && ints->type == NNU_PK_LIST && ints->n == 16, "p%d: ints", proto);
    static const int64_t want[] = {0, 1, -1, 255, 256, 65535, 65536, -2147483648LL, 2147483647, 2147483648LL,
                                   -2147483649LL, INT64_MAX, INT64_MIN};
    for (int k = 0; k < 13; k++) CHECK(is_int(item(ints, k), want[k]), "p%d: ints[%d]", proto, k);
    CHECK(is_big(item(ints, 13), 9, 0x00), "p%d: 2**63 is a big int of 9 bytes", proto);
    CHECK(is_big(item(ints, 14), 9, 0x40), "p%d: 2**70 is a big int", proto);
    CHECK(is_big(item(ints, 15), 9, 0xc0), "p%d: -2**70 is a big int", proto);
    const nnu_pk *fl = nnu_pk_get(root, "floats");
    CHECK(fl && fl->n == 4 && item(fl, 0)->f == 1.5 && item(fl, 1)->f == 0 && signbit(item(fl, 1)->f) &&
          item(fl, 2)->f == 1e300 && isinf(item(fl, 3)->f), "p%d: floats", proto);
    CHECK(nnu_pk_is_str(nnu_pk_get(root, "str"), "h\xc3\xa9llo \xe2\x9c\x93"), "p%d: str (UTF-8)", proto);
    const nnu_pk *ls = nnu_pk_get(root, "long_str");
    CHECK(ls && ls->type == NNU_PK_STR && ls->len == 300, "p%d: long str", proto);
    const nnu_pk *by = nnu_pk_get(root, "bytes");
    if (proto == 2)   /* protocol 2 has no bytes opcode: Python writes _codecs.encode(s, 'latin1') */
        CHECK(by && by->type == NNU_PK_CALL && nnu_pk_is_global(by->callee, "_codecs", "encode"),
              "p2: bytes as a call to _codecs.encode");
    else
        CHECK(by && by->type == NNU_PK_BYTES && by->len == 3 && !memcmp(by->s, "\x00\x01\xff", 3), "p%d: bytes",
              proto);
    const nnu_pk *tu = nnu_pk_get(root, "tuples");
    for (int k = 0; k < 5; k++) {
        const nnu_pk *t = item(tu, k);
        CHECK(t && t->type == NNU_PK_TUPLE && t->n == k && (k == 0 || is_int(item(t, k - 1), k)), "p%d: tuple %d",
              proto, k);
    }
    CHECK(nnu_pk_get(root, "none") && nnu_pk_get(root, "none")->type == NNU_PK_NONE, "p%d: None", proto);
    CHECK(nnu_pk_get(root, "true")->type == NNU_PK_BOOL && nnu_pk_get(root, "true")->i == 1 &&
          nnu_pk_get(root, "false")->i == 0, "p%d: bools", proto);
    const nnu_pk *set = nnu_pk_get(root, "set"), *fs = nnu_pk_get(root, "frozenset");
    if (proto == 2) {   /* sets are REDUCE(builtins.set, ([3],)) before protocol 4 */
        CHECK(set && set->type == NNU_PK_CALL && nnu_pk_is_global(set->callee, "__builtin__", "set"),
              "p2: set (module renamed for Python 2 by fix_imports)");
        CHECK(fs && fs->type == NNU_PK_CALL && nnu_pk_is_global(fs->callee, "__builtin__", "frozenset"),
              "p2: frozenset");
    } else {
        CHECK(set && set->type == NNU_PK_SET && set->n == 1 && is_int(item(set, 0), 3), "p%d: set", proto);
        CHECK(fs && fs->type == NNU_PK_FROZENSET && nnu_pk_is_str(item(fs, 0), "f"), "p%d: frozenset", proto);
    }
    const nnu_pk *sh = nnu_pk_get(root, "shared");
    CHECK(sh && sh->n == 2 && item(sh, 0) == item(sh, 1) && is_int(item(item(sh, 0), 0), 7),
          "p%d: memo sharing keeps one node", proto);
    const nnu_pk *cy = nnu_pk_get(root, "cycle");
    CHECK(cy && cy->type == NNU_PK_LIST && cy->n == 1 && item(cy, 0) == cy, "p%d: a list containing itself", proto);
    const nnu_pk *od = nnu_pk_get(root, "odict");
    CHECK(nnu_pk_has_entries(od) && is_int(nnu_pk_get(od, "k"), 1) && nnu_pk_get(od, "j")->type == NNU_PK_LIST,
          "p%d: OrderedDict keeps its entries", proto);
    const nnu_pk *fr = nnu_pk_get(root, "fraction");
    CHECK(fr && fr->type == NNU_PK_CALL && nnu_pk_is_global(fr->callee, "fractions", "Fraction") &&
          is_int(item(fr->args, 0), 1) && is_int(item(fr->args, 1), 3), "p%d: Fraction(1, 3) is a call node",
          proto);
    const nnu_pk *bl = nnu_pk_get(root, "big_list");
    CHECK(bl && bl->n == 1200 && is_int(item(bl, 1199), 1199), "p%d: list over two APPENDS batches", proto);
}

static void test_python_pickles(void) {
    for (int proto = 2; proto <= 5; proto++) {
        if (proto == 3) continue;
        char path[128];
        snprintf(path, sizeof path, DIR "pickle_p%d.bin", proto);
        size_t len;
        unsigned char *b = slurp(path, &len);
        CHECK(b != NULL, "fixture %s", path);
        if (!b) continue;
        nnu_pk_doc *d;
        const nnu_pk *root;
        CHECK_OK(nnu_pickle_read(b, len, path, &d, &root));
        if (d) check_value(root, proto);
        nnu_pk_doc_free(d);
        /* fuzz: every strict prefix fails (the STOP is the last byte); flips never crash */
        int prefix_ok = 1, flips_bad = 0;
        for (size_t n = 0; n < len; n++) {
            nnu_status st = nnu_pickle_read(b, n, "prefix", &d, &root);
            if (st != NNU_STATUS_ERR_FORMAT || d || !strstr(nnu_last_error(), "prefix: byte")) prefix_ok = 0;
        }
        CHECK(prefix_ok, "%s: every truncation is an ERR_FORMAT naming the input", path);
        for (size_t k = 0; k < len; k++) {
            for (int m = 0; m < 2; m++) {
                unsigned char save = b[k];
                b[k] ^= m ? 0xff : 0x01;
                nnu_status st = nnu_pickle_read(b, len, "flipped", &d, &root);
                if (st != NNU_STATUS_OK && st != NNU_STATUS_ERR_FORMAT) flips_bad++;
                if ((st == NNU_STATUS_OK) != (d != NULL)) flips_bad++;
                nnu_pk_doc_free(d);
                b[k] = save;
            }
        }
        CHECK(flips_bad == 0, "%s: %d flipped inputs gave neither a tree nor ERR_FORMAT", path, flips_bad);
        free(b);
    }
}

/* the data.pkl of a real torch checkpoint, truncated everywhere */
static void test_torch_pickle_prefixes(void) {
    int err = 0;
    zip_t *z = zip_open(DIR "ref3d.pth", ZIP_RDONLY, &err);
    CHECK(z != NULL, "open ref3d.pth (HINT: %s)", REGEN);
    if (!z) return;
    zip_stat_t sb;
    CHECK(zip_stat(z, "ref3d/data.pkl", 0, &sb) == 0, "ref3d/data.pkl present");
    unsigned char *b = malloc(sb.size);
    zip_file_t *zf = zip_fopen(z, "ref3d/data.pkl", 0);
    CHECK(zf && zip_fread(zf, b, sb.size) == (zip_int64_t)sb.size, "read data.pkl");
    if (zf) zip_fclose(zf);
    zip_discard(z);
    nnu_pk_doc *d;
    const nnu_pk *root;
    CHECK_OK(nnu_pickle_read(b, sb.size, "data.pkl", &d, &root));
    CHECK(d && nnu_pk_has_entries(nnu_pk_get(root, "network_weights")), "the checkpoint's state dict is found");
    nnu_pk_doc_free(d);
    int bad = 0;
    for (size_t n = 0; n < sb.size; n += 1 + n % 11) {   /* every 6th prefix on average: seconds under ASan */
        if (nnu_pickle_read(b, n, "data.pkl", &d, &root) != NNU_STATUS_ERR_FORMAT || d) bad++;
    }
    CHECK(bad == 0, "data.pkl: %d truncations did not fail cleanly", bad);
    free(b);
}

static void fails(const char *bytes, size_t len, const char *text) {
    nnu_pk_doc *d;
    const nnu_pk *root;
    nnu_status st = nnu_pickle_read(bytes, len, "hand.pkl", &d, &root);
    CHECK(st == NNU_STATUS_ERR_FORMAT && !d && strstr(nnu_last_error(), "hand.pkl") &&
          strstr(nnu_last_error(), text), "malformed pickle (%s): got %s '%s'", text, nnu_status_name(st),
          nnu_last_error());
    nnu_pk_doc_free(d);
}

static void test_malformed(void) {
    fails("", 0, "no STOP");
    fails("\x80\x02", 2, "no STOP");
    fails("\x80\x02N", 3, "no STOP");
    fails("\x80\x02.", 3, "stack underflow");
    fails("\x80\x06N.", 4, "protocol 6");
    fails("\x80\x02(.", 4, "stack underflow");                 /* STOP on a MARK */
    fails("\x80\x02h\x05.", 5, "memo entry 5");
    fails("\x80\x02Nr\xff\xff\xff\x7f.", 10, "memo index");     /* huge LONG_BINPUT */
    fails("\x80\x02X\xff\xff\xff\x7f", 7, "truncated");
    fails("\x80\x02}(Nu.", 7, "odd number");
    fails("\x80\x02N(NNu.", 8, "SETITEMS on a None");
    fails("\x80\x02Nb.", 5, "stack underflow");
    fails("\x80\x02NNb.", 6, "BUILD on a None");
    fails("\x80\x02t.", 4, "no MARK");
    fails("\x80\x02N\x86.", 5, "stack underflow");              /* TUPLE2 with one value */
    fails("\x80\x02(N\x86.", 6, "stack underflow");             /* TUPLE2 reaching below a MARK */
    fails("\x80\x02\x82\x01.", 5, "extension registry");
    fails("\x80\x02S'x'\n.", 8, "unsupported opcode 0x53");     /* protocol-0 text opcodes */
    fails("\x80\x02" "cos\nsystem", 12, "newline");     /* (split: \x02c would be one escape) */
    fails("\x80\x02NN\x93.", 6, "two strings");
    fails("\x80\x02" "cx\ny\nNR.", 10, "not a tuple");               /* REDUCE without an args tuple */
}

/* opcodes Python's pickler rarely emits: POP of a value and of a MARK, POP_MARK, DUP */
static void test_stack_opcodes(void) {
    nnu_pk_doc *d;
    const nnu_pk *root;
    CHECK_OK(nnu_pickle_read("\x80\x02K\x01N0(0(NN1K\x02" "2\x86.", 17, "ops", &d, &root));
    CHECK(d && root->type == NNU_PK_TUPLE && root->n == 2 && is_int(root->items[0], 2) && is_int(root->items[1], 2),
          "POP, POP of a MARK, POP_MARK, DUP");
    nnu_pk_doc_free(d);
}

static void test_writer_round_trip(void) {
    nnu_pk_doc *d = nnu_pk_doc_new();
    nnu_pk *root = nnu_pk_new(d, NNU_PK_DICT);
    static const int64_t ints[] = {0, 255, 256, 65535, 65536, -1, INT32_MIN, INT32_MAX, (int64_t)1 << 40,
                                   INT64_MIN, INT64_MAX};
    nnu_pk *l = nnu_pk_new(d, NNU_PK_LIST);
    for (size_t k = 0; k < sizeof ints / sizeof *ints; k++) nnu_pk_append(d, l, nnu_pk_int(d, ints[k]));
    for (int k = 0; k < 2500; k++) nnu_pk_append(d, l, nnu_pk_float(d, k * 0.5));   /* three APPENDS batches */
    nnu_pk_setitem(d, root, nnu_pk_str(d, "list"), l);
    nnu_pk *t4[4] = {nnu_pk_none(d), nnu_pk_bool(d, 1), nnu_pk_str(d, "\xc3\xa9"), nnu_pk_bytes(d, "\0z", 2)};
    nnu_pk_setitem(d, root, nnu_pk_str(d, "t4"), nnu_pk_tuple(d, 4, t4));
    nnu_pk_setitem(d, root, nnu_pk_str(d, "t1"), nnu_pk_tuple(d, 1, t4));
    nnu_pk *od = nnu_pk_call(d, nnu_pk_global(d, "collections", "OrderedDict"), NULL);
    nnu_pk_setitem(d, od, nnu_pk_str(d, "w"), nnu_pk_persid(d, nnu_pk_tuple(d, 1, t4)));
    od->state = nnu_pk_new(d, NNU_PK_DICT);
    nnu_pk_setitem(d, root, nnu_pk_str(d, "od"), od);
    void *buf;
    size_t len;
    CHECK_OK(nnu_pickle_write(d, root, &buf, &len));
    nnu_pk_doc *d2;
    const nnu_pk *r2;
    CHECK_OK(nnu_pickle_read(buf, len, "written", &d2, &r2));
    if (d2) {
        const nnu_pk *l2 = nnu_pk_get(r2, "list");
        int ok = l2 && l2->n == l->n;
        for (int k = 0; ok && k < l->n; k++)
            ok = l2->items[k]->type == l->items[k]->type && l2->items[k]->i == l->items[k]->i &&
                 l2->items[k]->f == l->items[k]->f;
        CHECK(ok, "ints and floats survive the round trip");
        const nnu_pk *a = nnu_pk_get(r2, "t4");
        CHECK(a && a->type == NNU_PK_TUPLE && a->n == 4 && a->items[0]->type == NNU_PK_NONE &&
              a->items[1]->i == 1 && nnu_pk_is_str(a->items[2], "\xc3\xa9") && a->items[3]->type == NNU_PK_BYTES &&
              a->items[3]->len == 2, "tuple of None, bool, str, bytes");
        CHECK(nnu_pk_get(r2, "t1")->n == 1, "TUPLE1");
        const nnu_pk *o = nnu_pk_get(r2, "od");
        CHECK(nnu_pk_has_entries(o) && o->state && o->state->type == NNU_PK_DICT &&
              nnu_pk_get(o, "w")->type == NNU_PK_PERSID, "call with entries, state and a persistent id");
    }
    nnu_pk_doc_free(d2);
    free(buf);
    /* unsupported nodes and cycles are refused, not looped over */
    nnu_pk *cyc = nnu_pk_new(d, NNU_PK_LIST);
    nnu_pk_append(d, cyc, cyc);
    CHECK_FAILS(nnu_pickle_write(d, cyc, &buf, &len), NNU_STATUS_ERR_ARG, "nesting deeper");
    CHECK_FAILS(nnu_pickle_write(d, nnu_pk_new(d, NNU_PK_SET), &buf, &len), NNU_STATUS_ERR_ARG, "set");
    nnu_pk_doc_free(d);
}

int main(void) {
    test_python_pickles();
    test_torch_pickle_prefixes();
    test_malformed();
    test_stack_opcodes();
    test_writer_round_trip();
    return check_report();
}
