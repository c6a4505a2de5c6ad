/* test_checkpoint: the training checkpoint, a safetensors file (core/nnu_checkpoint.h,
 * core/nnu_safetensors.h).
 * Round trip bit for bit (layout, optimizer buffers, logs with NaN and inf, seeds);
 * the file parsed here by hand per the safetensors specification (8-byte little-endian
 * header length, JSON header with dtype/shape/data_offsets tiling the data,
 * __metadata__ of strings, the whole-file CRC recomputed with zlib); a file written by
 * Python (tests/gen/gen_checkpoint_ref.py: numpy + json, the spec's looser formatting)
 * loads with the values the script wrote; every kind of damage (truncation, trailing
 * bytes, bit flips in data and header, a wrong header, a foreign file, a broken
 * tiling, missing fields) is rejected with a message naming the file and the problem;
 * the architecture check names the first mismatching tensor; a crash between the
 * .tmp write and the rename leaves the previous checkpoint valid; kill -9 of a process
 * saving in a loop never leaves a corrupt file behind. */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "check.h"
#include "nnu_checkpoint.h"
#include "nnu_json.h"

static char dir[256];

static char *path_in(const char *name, char *buf) {
    snprintf(buf, 512, "%s/%s", dir, name);
    return buf;
}

/* A checkpoint whose every value depends on `tag`, so versions are told apart. The
 * layout: three tensors of a toy network over n parameters (n >= 40). */
typedef struct fixture {
    nnu_checkpoint ck;
    nnu_checkpoint_tensor lay[3];
    double logs[NNU_CKPT_NLOGS][3];
    double dice[3 * 2];
    char meta[64];
} fixture;

static void make_fixture(fixture *fx, int tag, int64_t n) {
    memset(fx, 0, sizeof *fx);
    nnu_checkpoint *ck = &fx->ck;
    snprintf(ck->trainer, sizeof ck->trainer, "nnUNetTrainer");
    snprintf(ck->identity, sizeof ck->identity, "Dataset004_Hippocampus/nnUNetPlans/3d_fullres");
    ck->plans_hash = 0xfedcba9876543210ull;
    ck->epoch = tag;
    ck->best_ema = tag == 0 ? NAN : 0.5 + tag * 0.01;
    ck->optim_steps = 250 * tag;
    int64_t shape[1] = {n};
    nnu_tensor_new(NNU_DTYPE_F32, 1, shape, &ck->params);
    nnu_tensor_new(NNU_DTYPE_F32, 1, shape, &ck->optim[0]);
    nnu_tensor_new(NNU_DTYPE_F32, 1, shape, &ck->optim[1]);
    float *p = nnu_tensor_data(ck->params), *m = nnu_tensor_data(ck->optim[0]), *v = nnu_tensor_data(ck->optim[1]);
    for (int64_t i = 0; i < n; i++) {
        p[i] = (float)tag + (float)i * 0.25f;
        m[i] = -(float)i / 7.0f;
        v[i] = (float)i * 1e-30f;
    }
    ck->n_optim = 2;
    snprintf(ck->optim_name[0], NNU_CKPT_NAME_LEN, "momentum");
    snprintf(ck->optim_name[1], NNU_CKPT_NAME_LEN, "exp_avg");
    /* conv weight (4,1,3,3,1) = 36, bias (4), the rest as one head weight (n - 40, 1) */
    fx->lay[0] = (nnu_checkpoint_tensor){"encoder.stages.0.0.convs.0.conv.weight", 5, {4, 1, 3, 3, 1}};
    fx->lay[1] = (nnu_checkpoint_tensor){"encoder.stages.0.0.convs.0.conv.bias", 1, {4}};
    fx->lay[2] = (nnu_checkpoint_tensor){"decoder.seg_layers.0.weight", 2, {n - 40, 1}};
    ck->tensors = fx->lay;
    ck->n_tensors = 3;
    ck->n_logged = 3;
    ck->n_classes = 2;
    for (int l = 0; l < NNU_CKPT_NLOGS; l++) {
        for (int e = 0; e < 3; e++) fx->logs[l][e] = tag * 100 + l * 10 + e + 0.1;   /* not exact in binary */
        ck->logs[l] = fx->logs[l];
    }
    fx->logs[NNU_CKPT_LOG_MEAN_FG_DICE][1] = NAN;
    fx->logs[NNU_CKPT_LOG_VAL_LOSS][2] = INFINITY;
    fx->logs[NNU_CKPT_LOG_TRAIN_LOSS][2] = -INFINITY;
    fx->logs[NNU_CKPT_LOG_LR][0] = 1e-2 * pow(1 - 1 / 3.0, 0.9);
    for (int i = 0; i < 6; i++) fx->dice[i] = i == 3 ? NAN : i / 10.0;
    ck->dice_per_class = fx->dice;
    ck->seed = 12345;
    ck->train_batches = 250 * tag;
    ck->val_batches = 50 * tag;
    snprintf(fx->meta, sizeof fx->meta, "{\"fold\": 0, \"tag\": %d, \"s\": \"a\\\"b\"}", tag);
    ck->meta = fx->meta;
    ck->meta_len = strlen(fx->meta);
}

static void free_fixture(fixture *fx) {
    nnu_tensor_release(fx->ck.params);
    nnu_tensor_release(fx->ck.optim[0]);
    nnu_tensor_release(fx->ck.optim[1]);
}

static int same_bits(double a, double b) { return memcmp(&a, &b, 8) == 0 || (isnan(a) && isnan(b)); }

static void check_equal(const nnu_checkpoint *a, const nnu_checkpoint *b) {
    CHECK(!strcmp(a->trainer, b->trainer), "trainer '%s'", b->trainer);
    CHECK(!strcmp(a->identity, b->identity), "identity '%s'", b->identity);
    CHECK(a->plans_hash == b->plans_hash, "plans_hash");
    CHECK(a->epoch == b->epoch, "epoch %lld vs %lld", (long long)a->epoch, (long long)b->epoch);
    CHECK(same_bits(a->best_ema, b->best_ema), "best_ema %g vs %g", a->best_ema, b->best_ema);
    CHECK(a->optim_steps == b->optim_steps, "optim_steps");
    CHECK(a->seed == b->seed && a->train_batches == b->train_batches && a->val_batches == b->val_batches,
          "seed and batch counters");
    int64_t n = nnu_tensor_numel(a->params);
    CHECK(b->params && nnu_tensor_numel(b->params) == n, "params size");
    CHECK(b->params && !memcmp(nnu_tensor_data(a->params), nnu_tensor_data(b->params), (size_t)n * 4), "params bits");
    CHECK(b->n_tensors == a->n_tensors, "layout length %d", b->n_tensors);
    if (b->n_tensors == a->n_tensors)
        CHECK_OK(nnu_checkpoint_check_layout("x", b->tensors, b->n_tensors, a->tensors, a->n_tensors));
    CHECK(b->n_optim == a->n_optim, "optimizer buffers %d", b->n_optim);
    for (int i = 0; i < a->n_optim && i < b->n_optim; i++) {
        CHECK(!strcmp(b->optim_name[i], a->optim_name[i]), "optimizer buffer %d name '%s'", i, b->optim_name[i]);
        CHECK(!memcmp(nnu_tensor_data(a->optim[i]), nnu_tensor_data(b->optim[i]), (size_t)n * 4), "%s bits",
              a->optim_name[i]);
    }
    CHECK(b->n_logged == a->n_logged && b->n_classes == a->n_classes, "log sizes %lld %d", (long long)b->n_logged,
          b->n_classes);
    for (int l = 0; l < NNU_CKPT_NLOGS && b->n_logged == a->n_logged; l++)
        for (int e = 0; e < a->n_logged; e++)
            CHECK(same_bits(a->logs[l][e], b->logs[l][e]), "log %s[%d]: %.17g vs %.17g", nnu_checkpoint_log_name(l),
                  e, a->logs[l][e], b->logs[l][e]);
    for (int i = 0; i < a->n_logged * a->n_classes && b->dice_per_class; i++)
        CHECK(same_bits(a->dice_per_class[i], b->dice_per_class[i]), "dice_per_class[%d]", i);
    CHECK(b->meta_len == a->meta_len && b->meta && !strcmp(a->meta, b->meta), "meta '%s'", b->meta ? b->meta : "");
}

/* file helpers */
static long file_size(const char *p) { struct stat s; return stat(p, &s) ? -1 : (long)s.st_size; }

static unsigned char *read_all(const char *p, long *n) {
    *n = file_size(p);
    FILE *f = fopen(p, "rb");
    if (*n <= 0 || !f) { if (f) fclose(f); *n = 0; return calloc(1, 1); }
    unsigned char *b = malloc((size_t)*n + 1);
    if (fread(b, 1, (size_t)*n, f) != (size_t)*n) *n = -1;
    fclose(f);
    return b;
}

static void write_all(const char *p, const unsigned char *b, long n) {
    FILE *f = fopen(p, "wb");
    if (n) fwrite(b, 1, (size_t)n, f);
    fclose(f);
}

/* loads a damaged copy and checks the message names the file and the problem */
static void expect_reject(const char *p, const char *problem) {
    nnu_checkpoint ck;
    nnu_status st = nnu_checkpoint_load(p, &ck);
    CHECK(st == NNU_STATUS_ERR_FORMAT, "'%s' accepted or wrong status %s (%s)", problem, nnu_status_name(st),
          nnu_last_error());
    CHECK(strstr(nnu_last_error(), p) != NULL, "message does not name the file: %s", nnu_last_error());
    CHECK(strstr(nnu_last_error(), problem) != NULL, "message '%s' lacks '%s'", nnu_last_error(), problem);
    CHECK(ck.params == NULL && ck.logs[0] == NULL && ck.tensors == NULL, "failed load left data behind");
}

/* ------------------------------------------------------------------ the spec, by hand */

static uint64_t le64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* Parses b[0..n) per the safetensors specification and checks the checkpoint's
 * contents against fx: every entry, the tiling, the metadata strings, the CRC. */
static void check_spec(const unsigned char *b, long n, const fixture *fx) {
    CHECK(n > 8, "file too short");
    uint64_t N = le64(b);
    CHECK(N > 0 && 8 + N <= (uint64_t)n, "header length %llu", (unsigned long long)N);
    CHECK((8 + N) % 8 == 0, "data not 8-byte aligned (header length %llu)", (unsigned long long)N);
    CHECK(b[8] == '{', "the header starts with '{'");
    CHECK(b[8 + N - 1] == '}' || b[8 + N - 1] == ' ', "the header ends with '}' or padding spaces");
    char err[200];
    nnu_json *h = nnu_json_parse((const char *)b + 8, (size_t)N, err, sizeof err);
    CHECK(h && h->type == NNU_JSON_OBJECT, "header JSON: %s", h ? "not an object" : err);
    if (!h) return;
    const nnu_json *meta = nnu_json_get(h, "__metadata__");
    CHECK(meta && meta->type == NNU_JSON_OBJECT, "__metadata__ object");
    for (int i = 0; meta && i < meta->n; i++)
        CHECK(meta->items[i].type == NNU_JSON_STRING, "metadata '%s' is not a string", meta->keys[i]);
    const nnu_json *fmt = nnu_json_get(meta, "format"), *ep = nnu_json_get(meta, "epoch"),
                   *crc = nnu_json_get(meta, "nnunet_crc32"), *logs = nnu_json_get(meta, "logs");
    CHECK(fmt && !strcmp(fmt->string, "nnunet-checkpoint"), "format");
    char want[32];
    snprintf(want, sizeof want, "%lld", (long long)fx->ck.epoch);
    CHECK(ep && !strcmp(ep->string, want), "epoch '%s'", ep ? ep->string : "");
    /* logs: JSON text, NaN as null, inf as 1e999 */
    nnu_json *lj = logs ? nnu_json_parse(logs->string, logs->len, err, sizeof err) : NULL;
    CHECK(lj != NULL, "logs JSON: %s", err);
    const nnu_json *md = nnu_json_get(lj, "mean_fg_dice"), *vl = nnu_json_get(lj, "val_losses");
    CHECK(md && md->n == 3 && md->items[1].type == NNU_JSON_NULL, "NaN written as null");
    CHECK(vl && vl->n == 3 && isinf(vl->items[2].number) && vl->items[2].number > 0, "inf written as 1e999");
    nnu_json_free(lj);
    /* tensors: 3 parameters + 3 per optimizer buffer, F32, tiling the data in order */
    int count = 0;
    uint64_t pos = 0, data = (uint64_t)n - 8 - N;
    int64_t nparams = nnu_tensor_numel(fx->ck.params);
    for (int b2 = 0; b2 <= fx->ck.n_optim; b2++) {
        for (int i = 0; i < 3; i++) {
            char name[200];
            if (b2 == 0) snprintf(name, sizeof name, "%s", fx->lay[i].name);
            else snprintf(name, sizeof name, "optimizer.%s.%s", fx->ck.optim_name[b2 - 1], fx->lay[i].name);
            const nnu_json *e = nnu_json_get(h, name);
            CHECK(e && e->type == NNU_JSON_OBJECT, "tensor '%s' missing", name);
            if (!e) continue;
            const nnu_json *dt = nnu_json_get(e, "dtype"), *sh = nnu_json_get(e, "shape"),
                           *of = nnu_json_get(e, "data_offsets");
            CHECK(dt && !strcmp(dt->string, "F32"), "%s dtype", name);
            CHECK(sh && sh->n == fx->lay[i].ndim, "%s rank", name);
            int64_t numel = 1;
            for (int d = 0; sh && d < sh->n && d < fx->lay[i].ndim; d++) {
                CHECK(sh->items[d].integer == fx->lay[i].shape[d], "%s shape[%d]", name, d);
                numel *= sh->items[d].integer;
            }
            CHECK(of && of->n == 2 && (uint64_t)of->items[0].integer == pos &&
                  (uint64_t)of->items[1].integer == pos + (uint64_t)numel * 4, "%s data_offsets", name);
            /* the values: the flat block at this tensor's offset */
            const nnu_tensor *src = b2 == 0 ? fx->ck.params : fx->ck.optim[b2 - 1];
            int64_t off = i == 0 ? 0 : i == 1 ? 36 : 40;
            CHECK(!memcmp(b + 8 + N + pos, (const float *)nnu_tensor_data(src) + off, (size_t)numel * 4),
                  "%s data", name);
            pos += (uint64_t)numel * 4;
            count++;
        }
    }
    CHECK(pos == data && pos == (uint64_t)nparams * 4 * 3, "the tensors tile the data: %llu of %llu bytes",
          (unsigned long long)pos, (unsigned long long)data);
    CHECK(h->n == 1 + count, "no other header entries (%d)", h->n);
    /* the CRC: zlib over the whole file with the 8 digits read as "00000000" */
    CHECK(crc && crc->len == 8, "nnunet_crc32 of 8 hex digits");
    if (crc && crc->len == 8) {
        unsigned char *c = malloc((size_t)n);
        memcpy(c, b, (size_t)n);
        memcpy(c + 8 + crc->pos + 1, "00000000", 8);
        char got[9];
        snprintf(got, sizeof got, "%08lx", crc32(0, c, (uInt)n));
        CHECK(!strcmp(got, crc->string), "CRC: stored %s, recomputed %s", crc->string, got);
        free(c);
    }
    nnu_json_free(h);
}

/* ------------------------------------------------------------------ tests */

static void test_round_trip_and_spec(void) {
    char p[512], q[512];
    fixture fx;
    make_fixture(&fx, 3, 1001);
    CHECK_OK(nnu_checkpoint_save(path_in("a.pth", p), &fx.ck, NULL));
    CHECK(file_size(path_in("a.pth.tmp", q)) < 0, "tmp file left after a save");
    nnu_checkpoint got;
    CHECK_OK(nnu_checkpoint_load(p, &got));
    check_equal(&fx.ck, &got);
    nnu_checkpoint_free(&got);
    CHECK(got.params == NULL, "free zeroes");
    long n;
    unsigned char *b = read_all(p, &n);
    check_spec(b, n, &fx);
    free(b);
    /* a copy for tests/gen/gen_checkpoint_ref.py --check (the Python reader) */
    nnu_checkpoint_save("build/test_checkpoint_sample.pth", &fx.ck, &(nnu_checkpoint_save_opts){.no_fsync = 1});

    /* the NaN "no best EMA yet", empty logs and no layout (one tensor "params") */
    fixture fx0;
    make_fixture(&fx0, 0, 45);
    fx0.ck.n_logged = 0;
    fx0.ck.n_tensors = 0;
    fx0.ck.n_optim = 0;
    CHECK_OK(nnu_checkpoint_save(path_in("empty.pth", q), &fx0.ck, NULL));
    CHECK_OK(nnu_checkpoint_load(q, &got));
    CHECK(isnan(got.best_ema) && got.n_logged == 0 && got.n_optim == 0, "empty logs round trip");
    CHECK(got.n_tensors == 1 && !strcmp(got.tensors[0].name, "params") && got.tensors[0].ndim == 1 &&
          got.tensors[0].shape[0] == 45, "default layout: one tensor 'params' [45]");
    nnu_checkpoint_free(&got);
    free_fixture(&fx0);

    CHECK_FAILS(nnu_checkpoint_load(path_in("missing.pth", q), &got), NNU_STATUS_ERR_IO, "missing.pth");

    /* argument checks: wrong dtype, optimizer buffer of the wrong size, bad layout */
    nnu_tensor *bad;
    int64_t shape[1] = {7};
    nnu_tensor_new(NNU_DTYPE_F64, 1, shape, &bad);
    nnu_tensor *keep = fx.ck.params;
    fx.ck.params = bad;
    CHECK_FAILS(nnu_checkpoint_save(q, &fx.ck, NULL), NNU_STATUS_ERR_ARG, "f32");
    fx.ck.params = keep;
    nnu_tensor_release(bad);
    nnu_tensor_new(NNU_DTYPE_F32, 1, shape, &bad);
    keep = fx.ck.optim[0];
    fx.ck.optim[0] = bad;
    CHECK_FAILS(nnu_checkpoint_save(q, &fx.ck, NULL), NNU_STATUS_ERR_SHAPE, "momentum");
    fx.ck.optim[0] = keep;
    nnu_tensor_release(bad);
    fx.lay[2].shape[0]--;
    CHECK_FAILS(nnu_checkpoint_save(q, &fx.ck, NULL), NNU_STATUS_ERR_SHAPE, "layout");
    fx.lay[2].shape[0]++;
    free_fixture(&fx);
}

static void test_damage(void) {
    char p[512], d[512];
    fixture fx;
    make_fixture(&fx, 3, 1001);
    CHECK_OK(nnu_checkpoint_save(path_in("b.pth", p), &fx.ck, NULL));
    long n;
    unsigned char *b = read_all(p, &n);
    uint64_t N = le64(b);
    path_in("damaged.pth", d);
    unsigned char *c = malloc((size_t)n + 3);

    write_all(d, b, n - 10);
    expect_reject(d, "truncated");
    write_all(d, b, 40);
    expect_reject(d, "truncated");
    write_all(d, b, 5);
    expect_reject(d, "truncated");
    write_all(d, b, 0);
    expect_reject(d, "truncated");
    memcpy(c, b, (size_t)n);
    c[n] = 1; c[n + 1] = 2; c[n + 2] = 3;
    write_all(d, c, n + 3);
    expect_reject(d, "trailing bytes");
    /* one flipped bit: in the data (middle, last byte), the header's metadata (the
     * trainer name, a digit of the logs), a tensor's offsets, the length prefix */
    const char *hdr = (const char *)b + 8;
    long at_trainer = 8 + (long)(strstr(hdr, "nnUNetTrainer") - hdr) + 2;
    long at_logs = 8 + (long)(strstr(hdr, "\"train_losses\\\":[") - hdr) + 20;
    long at_offs = 8 + (long)(strstr(hdr, "data_offsets\":[144,") - hdr) + 17;
    long where[] = {8 + (long)N + (n - 8 - (long)N) / 2, n - 1, at_trainer, at_logs, at_offs, 0};
    for (int i = 0; i < (int)(sizeof where / sizeof where[0]); i++) {
        memcpy(c, b, (size_t)n);
        c[where[i]] ^= i == 5 ? 0x01 : 0x10;
        write_all(d, c, n);
        expect_reject(d, "CRC mismatch");
    }
    memcpy(c, b, (size_t)n);
    memcpy(c, "PK\3\4xxxx", 8);
    write_all(d, c, n);
    expect_reject(d, "not a safetensors file");
    memcpy(c, b, (size_t)n);
    c[8] = '[';
    write_all(d, c, n);
    expect_reject(d, "wrong header");
    /* the CRC digits themselves damaged: the key's name, a digit */
    memcpy(c, b, (size_t)n);
    long at_crc = 8 + (long)(strstr(hdr, "nnunet_crc32") - hdr);
    c[at_crc + 3] ^= 0x20;   /* "nnUnet_crc32": the key is gone */
    write_all(d, c, n);
    expect_reject(d, "no nnunet_crc32");
    memcpy(c, b, (size_t)n);
    c[at_crc + 15] = c[at_crc + 15] == '0' ? '1' : '0';
    write_all(d, c, n);
    expect_reject(d, "CRC mismatch");
    free(c);
    free(b);
    free_fixture(&fx);
}

/* recomputes the nnunet_crc32 digits of a file image edited by hand */
static void fix_crc(unsigned char *b, long n) {
    char *cr = strstr((char *)b + 8, "\"nnunet_crc32\":\"") + 16;
    memcpy(cr, "00000000", 8);
    char dig[9];
    snprintf(dig, sizeof dig, "%08lx", crc32(0, b, (uInt)n));
    memcpy(cr, dig, 8);
}

/* Files with a valid container (and CRC) but wrong contents, written with the generic
 * writer: a foreign safetensors file, the engine's Net:save format, a gap in the data,
 * a missing metadata field, an incomplete optimizer buffer, a wrong dtype. */
static void test_contents(void) {
    char p[512];
    path_in("contents.pth", p);
    float w[12];
    for (int i = 0; i < 12; i++) w[i] = (float)i;
    nnu_st_tensor t[3] = {{.name = "a.weight", .dtype = "F32", .ndim = 2, .shape = {2, 3}, .data = w},
                          {.name = "optimizer.momentum.a.weight", .dtype = "F32", .ndim = 2, .shape = {2, 3}, .data = w + 6},
                          {.name = "b", .dtype = "F64", .ndim = 1, .shape = {0}, .data = NULL}};
    nnu_st_save_opts crc = {.crc_key = NNU_CKPT_CRC_KEY, .no_fsync = 1};
    const char *k[14] = {"format", "format_version", "trainer", "identity", "plans_hash", "epoch", "best_ema",
                         "sgd_steps", "n_classes", "seed", "train_batches", "val_batches", "trainer_state", "logs"};
    const char *v[14] = {NNU_CKPT_FORMAT, "1", "nnUNetTrainer", "D/p/c", "7", "2", "0.5", "4", "1", "1", "8", "2", "{}",
                         "{\"train_losses\":[1,2],\"val_losses\":[1,2],\"mean_fg_dice\":[1,null],\"ema_fg_dice\":[1,2],"
                         "\"lrs\":[1,2],\"epoch_start_timestamps\":[1,2],\"epoch_end_timestamps\":[1,2],"
                         "\"dice_per_class_or_region\":[[0.5],[null]]}"};
    /* the minimal valid one loads */
    CHECK_OK(nnu_st_save(p, t, 2, k, v, 14, &crc));
    nnu_checkpoint ck;
    CHECK_OK(nnu_checkpoint_load(p, &ck));
    CHECK(ck.n_tensors == 1 && ck.n_optim == 1 && ck.epoch == 2 && ck.n_logged == 2 && ck.n_classes == 1 &&
          isnan(ck.dice_per_class[1]) && ck.optim_steps == 4 && ((float *)nnu_tensor_data(ck.optim[0]))[5] == 11.0f,
          "hand-written checkpoint");
    nnu_checkpoint_free(&ck);

    CHECK_OK(nnu_st_save(p, t, 2, k, v, 14, &(nnu_st_save_opts){.no_fsync = 1}));
    expect_reject(p, "no nnunet_crc32");
    v[0] = "nnunet";                                /* what Net:save writes */
    CHECK_OK(nnu_st_save(p, t, 2, k, v, 14, &crc));
    expect_reject(p, "not an nnunet training checkpoint");
    v[0] = NNU_CKPT_FORMAT;
    v[1] = "2";
    CHECK_OK(nnu_st_save(p, t, 2, k, v, 14, &crc));
    expect_reject(p, "format version");
    v[1] = "1";
    CHECK_OK(nnu_st_save(p, t, 2, k, v, 13, &crc));  /* no logs */
    expect_reject(p, "'logs' is missing");
    v[5] = "-1";
    CHECK_OK(nnu_st_save(p, t, 2, k, v, 14, &crc));
    expect_reject(p, "'epoch' is missing or not a valid integer");
    v[5] = "2";
    CHECK_OK(nnu_st_save(p, t, 1, k, v, 14, &crc));   /* fine: no optimizer buffer */
    CHECK_OK(nnu_checkpoint_load(p, &ck));
    nnu_checkpoint_free(&ck);
    t[1].name = "optimizer.momentum.c";
    CHECK_OK(nnu_st_save(p, t, 2, k, v, 14, &crc));
    expect_reject(p, "has no parameter 'c'");
    t[1].name = "optimizer.momentum.a.weight";
    t[2].shape[0] = 0;
    CHECK_OK(nnu_st_save(p, t, 3, k, v, 14, &crc));
    expect_reject(p, "tensor 'b' is F64, not F32");

    /* a shape whose product wraps around to 0: refused by the writer and the reader */
    nnu_st_tensor huge = {.name = "h", .dtype = "F32", .ndim = 3, .shape = {1 << 30, 1 << 30, 1 << 30}};
    CHECK_FAILS(nnu_st_save(p, &huge, 1, NULL, NULL, 0, &crc), NNU_STATUS_ERR_ARG, "too large");

    /* a gap in the data: the header's offsets edited by hand and the CRC fixed */
    CHECK_OK(nnu_st_save(p, t, 2, k, v, 14, &crc));
    long n;
    unsigned char *b = read_all(p, &n);
    char *h = (char *)b + 8;
    char *o = strstr(h, "\"data_offsets\":[24,48]");
    CHECK(o != NULL, "offsets of the second tensor");
    if (o) {
        memcpy(o, "\"data_offsets\":[28,48]", 22);   /* a hole of 4 bytes, same size */
        fix_crc(b, n);
        write_all(p, b, n);
        expect_reject(p, "leaves a gap");
    }
    free(b);
    /* the reader's side of the wrapped product: [0, 2^16 x4] edited to [1, 2^16 x4] */
    huge = (nnu_st_tensor){.name = "h", .dtype = "F32", .ndim = 5, .shape = {0, 65536, 65536, 65536, 65536}};
    CHECK_OK(nnu_st_save(p, &huge, 1, NULL, NULL, 0, &crc));
    b = read_all(p, &n);
    o = strstr((char *)b + 8, "[0,65536");
    CHECK(o != NULL, "shape text");
    if (o) {
        o[1] = '1';
        fix_crc(b, n);
        write_all(p, b, n);
        expect_reject(p, "shape too large");
    }
    free(b);
}

static void test_layout_check(void) {
    nnu_checkpoint_tensor a[2] = {{"enc.w", 2, {4, 3}}, {"enc.b", 1, {4}}};
    nnu_checkpoint_tensor b[2] = {{"enc.w", 2, {4, 3}}, {"enc.b", 1, {4}}};
    CHECK_OK(nnu_checkpoint_check_layout("f.pth", a, 2, b, 2));
    b[1].shape[0] = 5;
    CHECK_FAILS(nnu_checkpoint_check_layout("f.pth", a, 2, b, 2), NNU_STATUS_ERR_SHAPE,
                "tensor 'enc.b' is [4], the network's is [5]");
    CHECK(strstr(nnu_last_error(), "f.pth") && strstr(nnu_last_error(), "architecture"), "%s", nnu_last_error());
    b[1].shape[0] = 4;
    snprintf(b[0].name, sizeof b[0].name, "enc.v");
    CHECK_FAILS(nnu_checkpoint_check_layout("f.pth", a, 2, b, 2), NNU_STATUS_ERR_SHAPE, "'enc.w', the network's is 'enc.v'");
    CHECK_FAILS(nnu_checkpoint_check_layout("f.pth", a, 1, a, 2), NNU_STATUS_ERR_SHAPE, "tensor 'enc.b' is missing");
    CHECK_FAILS(nnu_checkpoint_check_layout("f.pth", a, 2, a, 1), NNU_STATUS_ERR_SHAPE,
                "tensor 'enc.b' is not in the network");
}

/* tests/fixtures/checkpoint/python_written.pth: written by gen_checkpoint_ref.py with
 * numpy + json only (spaces after separators, keys sorted, tensors in name order,
 * header padded): params[i] = i / 8, momentum[i] = -i, epoch 5, best_ema 0.75 */
static void test_python_written(void) {
    const char *p = "tests/fixtures/checkpoint/python_written.pth";
    nnu_checkpoint ck;
    CHECK_OK(nnu_checkpoint_load(p, &ck));
    if (!ck.params) return;
    CHECK(!strcmp(ck.trainer, "nnUNetTrainer") && ck.epoch == 5 && ck.best_ema == 0.75 && ck.optim_steps == 20 &&
          ck.plans_hash == 18446744073709551615ull && ck.seed == 12345 && ck.n_classes == 2,
          "python file: scalars (epoch %lld)", (long long)ck.epoch);
    CHECK(ck.n_tensors == 2 && !strcmp(ck.tensors[0].name, "a.bias") && !strcmp(ck.tensors[1].name, "b.weight") &&
          ck.tensors[1].ndim == 3 && ck.tensors[1].shape[2] == 2, "python file: layout in data order");
    const float *w = nnu_tensor_data(ck.params), *m = ck.n_optim == 1 ? nnu_tensor_data(ck.optim[0]) : NULL;
    int ok = nnu_tensor_numel(ck.params) == 15 && m;
    for (int i = 0; ok && i < 15; i++) ok = w[i] == (float)i / 8 && m[i] == -(float)i;
    CHECK(ok, "python file: values");
    CHECK(ck.n_logged == 2 && ck.logs[NNU_CKPT_LOG_LR][1] == 0.009 && isnan(ck.logs[NNU_CKPT_LOG_MEAN_FG_DICE][0]) &&
          ck.dice_per_class[3] == 0.25, "python file: logs");
    CHECK(ck.meta && strstr(ck.meta, "\"inference_allowed_mirroring_axes\""), "python file: trainer_state");
    nnu_checkpoint_free(&ck);
}

static void test_crash_before_rename(void) {
    char p[512], t[512];
    fixture v1, v2, v3;
    make_fixture(&v1, 1, 300);
    make_fixture(&v2, 2, 300);
    make_fixture(&v3, 3, 300);
    path_in("latest.pth", p);
    snprintf(t, sizeof t, "%s.tmp", p);
    CHECK_OK(nnu_checkpoint_save(p, &v1.ck, NULL));
    nnu_checkpoint_save_opts crash = {.stop_before_rename = 1};
    CHECK_OK(nnu_checkpoint_save(p, &v2.ck, &crash));
    CHECK(file_size(t) > 0, "the crashed save left no .tmp");
    nnu_checkpoint got;
    CHECK_OK(nnu_checkpoint_load(p, &got));
    check_equal(&v1.ck, &got);                  /* the previous checkpoint, intact */
    nnu_checkpoint_free(&got);
    /* a half-written .tmp (crash during the write) changes nothing either */
    CHECK(truncate(t, 100) == 0, "truncate .tmp");
    CHECK_OK(nnu_checkpoint_load(p, &got));
    check_equal(&v1.ck, &got);
    nnu_checkpoint_free(&got);
    /* the next save overwrites the stale .tmp and lands */
    CHECK_OK(nnu_checkpoint_save(p, &v3.ck, NULL));
    CHECK(file_size(t) < 0, "stale .tmp not replaced");
    CHECK_OK(nnu_checkpoint_load(p, &got));
    check_equal(&v3.ck, &got);
    nnu_checkpoint_free(&got);
    free_fixture(&v1);
    free_fixture(&v2);
    free_fixture(&v3);
}

/* A child saves versions 1, 2, 3, ... of a 0.8 MB checkpoint in a loop; the parent
 * kills it with SIGKILL at pseudo-random moments. Whatever is on disk afterwards
 * must be absent or a complete version (params consistent with its epoch). */
static void test_kill9(void) {
    char p[512];
    path_in("killed.pth", p);
    srand(12345);
    int complete = 0;
    for (int round = 0; round < 8; round++) {
        unlink(p);
        pid_t pid = fork();
        if (pid == 0) {
            fixture fx;
            nnu_checkpoint_save_opts o = {.no_fsync = 1};
            for (int v = 1;; v++) {
                make_fixture(&fx, v, 1 << 16);
                nnu_checkpoint_save(p, &fx.ck, &o);
                free_fixture(&fx);
            }
        }
        struct timespec ts = {0, (long)(rand() % 40 + 1) * 1000000L};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        nnu_checkpoint got;
        nnu_status st = nnu_checkpoint_load(p, &got);
        if (st == NNU_STATUS_ERR_IO && file_size(p) < 0) continue;   /* killed before the first rename */
        CHECK(st == NNU_STATUS_OK, "round %d: %s", round, nnu_last_error());
        if (st) continue;
        complete++;
        fixture want;
        make_fixture(&want, (int)got.epoch, 1 << 16);
        check_equal(&want.ck, &got);
        free_fixture(&want);
        nnu_checkpoint_free(&got);
    }
    fprintf(stderr, "kill -9: %d of 8 rounds left a complete checkpoint, none a corrupt one\n", complete);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/nnu_test_ckpt_XXXXXX");
    if (!mkdtemp(dir)) { perror("mkdtemp"); return 1; }
    test_round_trip_and_spec();
    test_damage();
    test_contents();
    test_layout_check();
    test_python_written();
    test_crash_before_rename();
    test_kill9();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return check_report();
}
