/* test_checkpoint: the training checkpoint file (core/nnu_checkpoint.h).
 * Round trip bit for bit; every kind of damage (truncation, trailing bytes, a bit
 * flip in payload or header, a wrong magic or version) is rejected with a message
 * naming the file and the problem; a crash between the .tmp write and the rename
 * leaves the previous checkpoint valid; kill -9 of a process saving in a loop
 * never leaves a corrupt file behind. */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "nnu_checkpoint.h"

static char dir[256];

static char *path_in(const char *name, char *buf) {
    snprintf(buf, 512, "%s/%s", dir, name);
    return buf;
}

/* A checkpoint whose every value depends on `tag`, so versions are told apart. */
typedef struct fixture {
    nnu_checkpoint ck;
    double logs[NNU_CKPT_NLOGS][3];
    double dice[3 * 2];
    uint8_t rng[37];
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
    float *p = nnu_tensor_data(ck->params), *m = nnu_tensor_data(ck->optim[0]);
    for (int64_t i = 0; i < n; i++) { p[i] = (float)tag + (float)i * 0.25f; m[i] = -(float)i / 7.0f; }
    ck->n_optim = 1;
    snprintf(ck->optim_name[0], NNU_CKPT_NAME_LEN, "momentum");
    ck->n_logged = 3;
    ck->n_classes = 2;
    for (int l = 0; l < NNU_CKPT_NLOGS; l++) {
        for (int e = 0; e < 3; e++) fx->logs[l][e] = tag * 100 + l * 10 + e + 0.125;
        ck->logs[l] = fx->logs[l];
    }
    for (int i = 0; i < 6; i++) fx->dice[i] = i == 3 ? NAN : i / 10.0;
    ck->dice_per_class = fx->dice;
    for (int i = 0; i < 37; i++) fx->rng[i] = (uint8_t)(i * 7 + tag);
    ck->rng = fx->rng;
    ck->rng_len = 37;
    snprintf(fx->meta, sizeof fx->meta, "{\"fold\": 0, \"tag\": %d}", tag);
    ck->meta = fx->meta;
    ck->meta_len = strlen(fx->meta);
}

static void free_fixture(fixture *fx) {
    nnu_tensor_release(fx->ck.params);
    nnu_tensor_release(fx->ck.optim[0]);
}

static int same_bits(double a, double b) { return memcmp(&a, &b, 8) == 0; }

static void check_equal(const nnu_checkpoint *a, const nnu_checkpoint *b) {
    CHECK(!strcmp(a->trainer, b->trainer), "trainer '%s'", b->trainer);
    CHECK(!strcmp(a->identity, b->identity), "identity '%s'", b->identity);
    CHECK(a->plans_hash == b->plans_hash, "plans_hash");
    CHECK(a->epoch == b->epoch, "epoch %lld vs %lld", (long long)a->epoch, (long long)b->epoch);
    CHECK(same_bits(a->best_ema, b->best_ema), "best_ema %g vs %g", a->best_ema, b->best_ema);
    CHECK(a->optim_steps == b->optim_steps, "optim_steps");
    int64_t n = nnu_tensor_numel(a->params);
    CHECK(b->params && nnu_tensor_numel(b->params) == n, "params size");
    CHECK(b->params && !memcmp(nnu_tensor_data(a->params), nnu_tensor_data(b->params), (size_t)n * 4),
          "params bits");
    CHECK(b->n_optim == 1 && !strcmp(b->optim_name[0], "momentum"), "optimizer buffer name");
    CHECK(b->n_optim == 1 && !memcmp(nnu_tensor_data(a->optim[0]), nnu_tensor_data(b->optim[0]), (size_t)n * 4),
          "momentum bits");
    CHECK(b->n_logged == 3 && b->n_classes == 2, "log sizes %lld %d", (long long)b->n_logged, b->n_classes);
    for (int l = 0; l < NNU_CKPT_NLOGS && b->n_logged == 3; l++)
        CHECK(!memcmp(a->logs[l], b->logs[l], 3 * 8), "log %s", nnu_checkpoint_log_name(l));
    CHECK(b->dice_per_class && !memcmp(a->dice_per_class, b->dice_per_class, 6 * 8), "dice_per_class bits");
    CHECK(b->rng_len == a->rng_len && !memcmp(a->rng, b->rng, a->rng_len), "rng bytes");
    CHECK(b->meta_len == a->meta_len && b->meta && !strcmp(a->meta, b->meta), "meta '%s'", b->meta ? b->meta : "");
}

/* file helpers */
static long file_size(const char *p) { struct stat s; return stat(p, &s) ? -1 : (long)s.st_size; }

static unsigned char *read_all(const char *p, long *n) {
    *n = file_size(p);
    FILE *f = fopen(p, "rb");
    if (*n <= 0 || !f) { if (f) fclose(f); *n = 0; return calloc(1, 1); }
    unsigned char *b = malloc((size_t)*n);
    if (fread(b, 1, (size_t)*n, f) != (size_t)*n) *n = -1;
    fclose(f);
    return b;
}

static void write_all(const char *p, const unsigned char *b, long n) {
    FILE *f = fopen(p, "wb");
    fwrite(b, 1, (size_t)n, f);
    fclose(f);
}

/* loads a damaged copy and checks the message names the file and the problem */
static void expect_reject(const char *p, const char *problem) {
    nnu_checkpoint ck;
    nnu_status st = nnu_checkpoint_load(p, &ck);
    CHECK(st == NNU_STATUS_ERR_FORMAT, "'%s' accepted or wrong status %s (%s)", problem,
          nnu_status_name(st), nnu_last_error());
    CHECK(strstr(nnu_last_error(), p) != NULL, "message does not name the file: %s", nnu_last_error());
    CHECK(strstr(nnu_last_error(), problem) != NULL, "message '%s' lacks '%s'", nnu_last_error(), problem);
    CHECK(ck.params == NULL && ck.logs[0] == NULL, "failed load left data behind");
}

static void test_round_trip_and_damage(void) {
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

    /* the NaN "no best EMA yet" and an empty log survive too */
    fixture fx0;
    make_fixture(&fx0, 0, 5);
    fx0.ck.n_logged = 0;
    fx0.ck.rng_len = 0;
    CHECK_OK(nnu_checkpoint_save(path_in("empty.pth", q), &fx0.ck, NULL));
    CHECK_OK(nnu_checkpoint_load(q, &got));
    CHECK(isnan(got.best_ema) && got.n_logged == 0 && got.rng_len == 0, "empty logs round trip");
    nnu_checkpoint_free(&got);
    free_fixture(&fx0);

    long n;
    unsigned char *b = read_all(p, &n);
    CHECK(n > 1001 * 8, "file size %ld", n);
    char d[512];
    path_in("damaged.pth", d);

    write_all(d, b, n - 10);
    expect_reject(d, "truncated");
    write_all(d, b, 40);
    expect_reject(d, "truncated");
    unsigned char *c = malloc((size_t)n + 3);
    memcpy(c, b, (size_t)n);
    c[n] = 1; c[n + 1] = 2; c[n + 2] = 3;
    write_all(d, c, n + 3);
    expect_reject(d, "trailing bytes");
    /* one flipped bit in the parameter block, in a section header, in the last byte */
    long where[3] = {n / 2, 64 + 3, n - 1};
    for (int i = 0; i < 3; i++) {
        memcpy(c, b, (size_t)n);
        c[where[i]] ^= 0x10;
        write_all(d, c, n);
        expect_reject(d, "payload CRC mismatch");
    }
    memcpy(c, b, (size_t)n);
    c[20] ^= 1;                      /* payload size field */
    write_all(d, c, n);
    expect_reject(d, "header CRC mismatch");
    memcpy(c, b, (size_t)n);
    memcpy(c, "PK\3\4xxxx", 8);
    write_all(d, c, n);
    expect_reject(d, "wrong magic");
    write_all(d, (const unsigned char *)"", 0);
    expect_reject(d, "truncated");
    free(c);
    free(b);

    CHECK_FAILS(nnu_checkpoint_load(path_in("missing.pth", q), &got), NNU_STATUS_ERR_IO, "missing.pth");

    /* argument checks: wrong dtype, optimizer buffer of the wrong size */
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
    free_fixture(&fx);
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

/* A child saves versions 1, 2, 3, ... of a 1 MB checkpoint in a loop; the parent
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
                make_fixture(&fx, v, 1 << 18);
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
        make_fixture(&want, (int)got.epoch, 1 << 18);
        check_equal(&want.ck, &got);
        free_fixture(&want);
        nnu_checkpoint_free(&got);
    }
    fprintf(stderr, "kill -9: %d of 8 rounds left a complete checkpoint, none a corrupt one\n", complete);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/nnu_test_ckpt_XXXXXX");
    if (!mkdtemp(dir)) { perror("mkdtemp"); return 1; }
    test_round_trip_and_damage();
    test_crash_before_rename();
    test_kill9();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return check_report();
}
