/* test_torch_ckpt.c: PyTorch checkpoints (core/nnu_torch_ckpt.h) against the reference.
 *
 *  - checkpoints written by nnU-Net v2's own code (tests/gen/make_torch_ckpt_fixture.py):
 *    loaded through nnu_net_load into CPU nets built from the same plans, the logits match
 *    PyTorch's (TOL_NET_OUT); the 2d one with "_orig_mod." keys, the float16 one with
 *    "module." keys and the bare bfloat16 one without aliases give the float32 weights
 *    rounded as torch rounds them; a 2d ResidualEncoderUNet gives PyTorch's logits too;
 *    the metadata (trainer, configuration, epoch, mirroring axes, keys) is read;
 *  - views.pth: transposed, sliced, offset, 0-d, expanded, empty views, shared storages
 *    and float16/bfloat16/float64 storages read as torch's .float().contiguous();
 *  - wrong architectures, the legacy format, non-zips, truncated and byte-flipped files
 *    fail with messages naming the file, and leave the net unchanged;
 *  - writing: a net saved with nnu_torch_ckpt_save reads back bit-identically, its
 *    state-dict keys are the reference's in the reference's order (aliases included),
 *    libzip accepts the archive and every data entry starts at a multiple of 64 bytes.
 * Seeds are fixed (nets: 1, 2, 3). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zip.h>

#include "check.h"
#include "fixture.h"
#include "nnu_torch_ckpt.h"
#include "tolerances.h"

#define DIR "tests/fixtures/torch_ckpt/"
#define REGEN "/tmp/refenv/bin/python tests/gen/make_torch_ckpt_fixture.py"

/* the plans of the fixtures (make_torch_ckpt_fixture.py) */
static nnu_net_config cfg3d(void) {
    nnu_net_config c = {.dim = 3, .n_stages = 3, .features = {4, 8, 16},
                        .kernel = {{1, 3, 3}, {3, 3, 3}, {3, 3, 3}}, .stride = {{1, 1, 1}, {1, 2, 2}, {2, 2, 2}},
                        .n_conv_enc = {1, 1, 1}, .n_conv_dec = {1, 1}, .in_channels = 2, .num_classes = 3,
                        .conv_bias = 1, .norm_eps = 1e-5f, .slope = 0.01f, .ignore_label = -1};
    return c;
}

static nnu_net_config cfg2d(void) {
    nnu_net_config c = {.dim = 2, .n_stages = 3, .features = {4, 8, 16},
                        .kernel = {{1, 3, 3}, {1, 3, 3}, {1, 3, 3}}, .stride = {{1, 1, 1}, {1, 2, 2}, {1, 2, 2}},
                        .n_conv_enc = {1, 1, 1}, .n_conv_dec = {1, 1}, .in_channels = 1, .num_classes = 2,
                        .conv_bias = 1, .norm_eps = 1e-5f, .slope = 0.01f, .ignore_label = -1};
    return c;
}

/* a 2d ResidualEncoderUNet: skips with projection (4 -> 8), none (8 -> 8, stride 1) and
 * pool-only (8 -> 8, stride 2) */
static nnu_net_config cfg_resenc(void) {
    nnu_net_config c = cfg2d();
    c.arch = NNU_NET_RESENC;
    c.features[2] = 8;
    c.n_blocks_enc[0] = 1;
    c.n_blocks_enc[1] = 2;
    c.n_blocks_enc[2] = 1;
    return c;
}

/* files the test writes live in a folder of its own (parallel runs do not collide) */
static char tmp_dir[64] = "/tmp/test_torch_ckpt_XXXXXX";
static const char *tmp_path(const char *name) {
    static char buf[8][128];   /* a few live at once in one expression */
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmp_dir, name);
    return buf[k];
}

static nnu_net *make(nnu_net_config c, uint64_t seed) {
    nnu_net *n = NULL;
    CHECK_OK(nnu_net_create(nnu_backend_cpu(), &c, seed, &n));
    return n;
}

static float *params_copy(nnu_net *n) {
    int64_t np = nnu_net_num_params(n);
    float *p = malloc((size_t)np * sizeof *p);
    memcpy(p, nnu_net_params(n), (size_t)np * sizeof *p);
    return p;
}

/* logits of net for the fixture's input against the fixture's (float64) logits */
static void check_logits(nnu_net *net, const char *fixture_path, const char *what) {
    fixture fx;
    if (!fixture_load(fixture_path, REGEN, &fx)) { CHECK(0, "fixture %s", fixture_path); return; }
    nnu_tensor *x = fixture_get(&fx, "input"), *ref = fixture_get(&fx, "logits");
    const int dim = nnu_net_get_config(net)->dim;
    int64_t patch[3] = {dim == 3 ? x->shape[2] : 1, x->shape[x->ndim - 2], x->shape[x->ndim - 1]};
    CHECK_OK(nnu_net_forward(net, nnu_tensor_data(x), x->shape[0], patch, 0));
    int64_t sh[5];
    const float *y = nnu_net_output(net, 0, sh);
    const double *r = nnu_tensor_data(ref);
    const int64_t n = nnu_tensor_numel(ref);
    CHECK(sh[0] * sh[1] * sh[2] * sh[3] * sh[4] == n, "%s: logits size", what);
    int64_t bad = 0, maxi = 0;
    double maxd = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs(y[i] - r[i]);
        if (d > maxd) { maxd = d; maxi = i; }
        if (!(d <= TOL_NET_OUT.atol + TOL_NET_OUT.rtol * fabs(r[i]))) bad++;
    }
    CHECK(bad == 0, "%s: %lld/%lld logits outside %s; max diff %.3g at %lld", what, (long long)bad, (long long)n,
          TOL_NET_OUT.name, maxd, (long long)maxi);
    printf("%s: %lld logits, max |diff| vs PyTorch %.3g\n", what, (long long)n, maxd);
    fixture_free(&fx);
}

static float round_f16(float x) { return nnu_f16_to_f32(nnu_f32_to_f16(x)); }

static float round_bf16(float x) {   /* round to nearest even, as torch's .bfloat16() */
    uint32_t u;
    memcpy(&u, &x, 4);
    u = (u + 0x7fff + ((u >> 16) & 1)) & 0xffff0000u;
    memcpy(&x, &u, 4);
    return x;
}

static void test_reference_3d(void) {
    nnu_net *net = make(cfg3d(), 1);
    if (!net) return;
    CHECK_OK(nnu_net_load(net, DIR "ref3d.pth"));
    check_logits(net, DIR "ref3d_logits.bin", "ref3d.pth");
    nnu_torch_ckpt_info info;
    CHECK_OK(nnu_torch_ckpt_info_read(DIR "ref3d.pth", &info));
    CHECK(!strcmp(info.trainer_name, "nnUNetTrainer") && !strcmp(info.configuration, "3d_fullres") &&
          info.current_epoch == 2, "info: '%s' '%s' %lld", info.trainer_name, info.configuration,
          (long long)info.current_epoch);
    CHECK(info.n_mirror == 3 && info.mirror_axes[0] == 0 && info.mirror_axes[2] == 2, "mirroring axes");
    /* the reference state dict: 2 primary + 2 alias tensors per conv and norm, twice for
     * the encoder (decoder.encoder), plus transpconvs and heads */
    const int nt = nnu_net_num_tensors(net);
    CHECK(info.nkeys > nt && !strcmp(info.keys[0], "encoder.stages.0.0.convs.0.conv.weight"),
          "keys: %d (net %d)", info.nkeys, nt);
    /* our writer gives the same keys in the same order */
    nnu_torch_ckpt_meta m = {.configuration = "3d_fullres", .fold = 0, .plans_json = "{}", .dataset_json = "{}",
                             .n_mirror = -1, .best_ema = NAN, .no_fsync = 1};
    CHECK_OK(nnu_torch_ckpt_save(net, tmp_path("test-keys.pth"), &m));
    nnu_torch_ckpt_info mine;
    CHECK_OK(nnu_torch_ckpt_info_read(tmp_path("test-keys.pth"), &mine));
    int same = mine.nkeys == info.nkeys;
    for (int k = 0; same && k < info.nkeys; k++) {
        same = !strcmp(mine.keys[k], info.keys[k]);
        if (!same) fprintf(stderr, "key %d: ours '%s', the reference's '%s'\n", k, mine.keys[k], info.keys[k]);
    }
    CHECK(same, "written state dict: %d keys, the reference's %d, same order", mine.nkeys, info.nkeys);
    CHECK(mine.n_mirror == -1 && mine.current_epoch == 0, "None mirroring axes read back as absent");
    nnu_torch_ckpt_info_free(&mine);
    nnu_torch_ckpt_info_free(&info);
    unlink(tmp_path("test-keys.pth"));
    nnu_net_free(net);
}

static void test_reference_2d(void) {
    nnu_net *net = make(cfg2d(), 2), *h = make(cfg2d(), 3);
    if (!net || !h) return;
    CHECK_OK(nnu_net_load(net, DIR "ref2d.pth"));   /* "_orig_mod." keys */
    check_logits(net, DIR "ref2d_logits.bin", "ref2d.pth");
    const int64_t np = nnu_net_num_params(net);
    const float *w = nnu_net_params(net);
    CHECK_OK(nnu_net_load(h, DIR "ref2d_fp16.pth"));  /* float16, "module." keys */
    int64_t bad = 0;
    for (int64_t i = 0; i < np; i++) bad += nnu_net_params(h)[i] != round_f16(w[i]);
    CHECK(bad == 0, "float16 storages: %lld weights differ from the float32 ones rounded", (long long)bad);
    CHECK_OK(nnu_net_load(h, DIR "ref2d_bf16.pth"));  /* bfloat16, a bare state dict without aliases */
    bad = 0;
    for (int64_t i = 0; i < np; i++) bad += nnu_net_params(h)[i] != round_bf16(w[i]);
    CHECK(bad == 0, "bfloat16 storages: %lld weights differ from the float32 ones rounded", (long long)bad);
    nnu_torch_ckpt_info info;
    CHECK_OK(nnu_torch_ckpt_info_read(DIR "ref2d_bf16.pth", &info));
    CHECK(info.trainer_name[0] == 0 && info.current_epoch == -1 && info.n_mirror == -1 &&
          info.nkeys == nnu_net_num_tensors(net), "a bare state dict has keys and no metadata");
    nnu_torch_ckpt_info_free(&info);
    nnu_net_free(net);
    nnu_net_free(h);
}

static void test_reference_resenc(void) {
    nnu_net *net = make(cfg_resenc(), 4);
    if (!net) return;
    CHECK_OK(nnu_net_load(net, DIR "resenc2d.pth"));
    check_logits(net, DIR "resenc2d_logits.bin", "resenc2d.pth");
    /* our writer gives the reference's keys (stem, blocks, skips, aliases) in its order */
    nnu_torch_ckpt_info ref, mine;
    nnu_torch_ckpt_meta m = {.configuration = "2d", .plans_json = "{}", .dataset_json = "{}", .n_mirror = -1,
                             .best_ema = NAN, .no_fsync = 1};
    CHECK_OK(nnu_torch_ckpt_save(net, tmp_path("test-resenc.pth"), &m));
    CHECK_OK(nnu_torch_ckpt_info_read(DIR "resenc2d.pth", &ref));
    CHECK_OK(nnu_torch_ckpt_info_read(tmp_path("test-resenc.pth"), &mine));
    int same = mine.nkeys == ref.nkeys;
    for (int k = 0; same && k < ref.nkeys; k++) same = !strcmp(mine.keys[k], ref.keys[k]);
    CHECK(same, "ResidualEncoderUNet: written keys (%d) are the reference's (%d), in order", mine.nkeys, ref.nkeys);
    nnu_torch_ckpt_info_free(&ref);
    nnu_torch_ckpt_info_free(&mine);
    unlink(tmp_path("test-resenc.pth"));
    nnu_net_free(net);
}

static void test_views(void) {
    fixture fx;
    if (!fixture_load(DIR "views.bin", REGEN, &fx)) { CHECK(0, "views.bin"); return; }
    nnu_torch_file *f;
    CHECK_OK(nnu_torch_open(DIR "views.pth", &f));
    if (!f) { fixture_free(&fx); return; }
    const nnu_pk *root = nnu_torch_root(f);
    CHECK(nnu_pk_has_entries(root) && root->nkv == fx.n, "views: %d tensors", root ? root->nkv : -1);
    for (int k = 0; root && k < root->nkv; k++) {
        const char *name = root->keys[k]->s;
        const nnu_tensor *ref = fixture_get(&fx, name);
        nnu_torch_tensor t;
        CHECK_OK(nnu_torch_tensor_of(f, root->vals[k], name, &t));
        /* (fixture.h gives a 0-d array one dimension) */
        CHECK(ref && t.numel == nnu_tensor_numel(ref) && (t.ndim == ref->ndim || (t.ndim == 0 && t.numel == 1)),
              "%s: shape (ndim %d numel %lld)",
              name, t.ndim, (long long)t.numel);
        if (!ref || t.numel != nnu_tensor_numel(ref)) continue;
        float *got = malloc((size_t)(t.numel + 1) * sizeof *got);
        CHECK_OK(nnu_torch_tensor_read(f, &t, name, got));
        CHECK(t.numel == 0 || !memcmp(got, nnu_tensor_data(ref), (size_t)t.numel * 4), "%s: values", name);
        free(got);
    }
    /* the same tensor pickled twice is one node (memo) */
    CHECK(nnu_pk_get(root, "same") == nnu_pk_get(root, "transposed"), "memo: 'same' is 'transposed'");
    nnu_torch_close(f);
    fixture_free(&fx);
}

static void write_file(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(p, 1, n, f);
        fclose(f);
    }
}

static unsigned char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(*len);
    if (fread(b, 1, *len, f) != *len) *len = 0;
    fclose(f);
    return b;
}

static void test_errors(void) {
    nnu_net *net = make(cfg3d(), 1);
    if (!net) return;
    float *before = params_copy(net);
    const size_t pbytes = (size_t)nnu_net_num_params(net) * sizeof(float);
    nnu_net_config c = cfg3d();
    c.num_classes = 2;
    nnu_net *other = make(c, 1);
    CHECK_FAILS(nnu_net_load(other, DIR "ref3d.pth"), NNU_STATUS_ERR_SHAPE, "decoder.seg_layers.0.weight");
    nnu_net_free(other);
    c = cfg3d();
    c.n_conv_enc[2] = 2;
    other = make(c, 1);
    CHECK_FAILS(nnu_net_load(other, DIR "ref3d.pth"), NNU_STATUS_ERR_FORMAT, "encoder.stages.2.0.convs.1.conv.weight");
    nnu_net_free(other);
    c = cfg3d();
    c.n_stages = 2;
    other = make(c, 1);
    CHECK_FAILS(nnu_net_load(other, DIR "ref3d.pth"), NNU_STATUS_ERR_FORMAT, "not in the network");
    nnu_net_free(other);
    CHECK_FAILS(nnu_net_load(net, DIR "ref2d.pth"), NNU_STATUS_ERR_SHAPE, "ref2d.pth");
    CHECK_FAILS(nnu_net_load(net, DIR "views.pth"), NNU_STATUS_ERR_FORMAT, "11 keys not in the network: 'base'");
    CHECK_FAILS(nnu_net_load(net, DIR "../checkpoint/python_written.pth"), NNU_STATUS_ERR_FORMAT, "is missing");
    CHECK(!memcmp(before, nnu_net_params(net), pbytes), "failed loads leave the net unchanged");

    /* the legacy format, a non-zip, a missing file */
    static const unsigned char legacy[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8,
                                           0x50, 0x19, 0x2e};
    write_file(tmp_path("legacy.pth"), legacy, sizeof legacy);
    nnu_torch_file *f = NULL;
    CHECK_FAILS(nnu_torch_open(tmp_path("legacy.pth"), &f), NNU_STATUS_ERR_FORMAT, "legacy PyTorch format");
    write_file(tmp_path("legacy.pth"), "hello, not a zip", 16);
    CHECK_FAILS(nnu_torch_open(tmp_path("legacy.pth"), &f), NNU_STATUS_ERR_FORMAT, "not a PyTorch checkpoint");
    unlink(tmp_path("legacy.pth"));
    CHECK_FAILS(nnu_torch_open("no/such/file.pth", &f), NNU_STATUS_ERR_IO, "no/such/file.pth");

    /* truncations: the zip's directory is at the end, so every one must fail; flips
     * either fail (CRC, pickle, structure) or load; neither may crash (ASan) */
    size_t len;
    unsigned char *b = slurp(DIR "ref3d.pth", &len);
    CHECK(b != NULL, "ref3d.pth");
    int bad = 0;
    for (size_t n = 0; b && n < len; n += n < 4096 ? 61 : 997) {
        write_file(tmp_path("cut.pth"), b, n);
        nnu_status st = nnu_net_load(net, tmp_path("cut.pth"));
        if (st == NNU_STATUS_OK || !strstr(nnu_last_error(), tmp_path("cut.pth"))) {
            bad++;
            fprintf(stderr, "truncated at %zu: %s %s\n", n, nnu_status_name(st), nnu_last_error());
        }
    }
    CHECK(bad == 0, "every truncation of ref3d.pth fails naming the file");
    int loaded = 0, failed = 0;
    bad = 0;
    for (size_t k = 0; b && k < len; k += 89) {
        b[k] ^= 0x5a;
        write_file(tmp_path("cut.pth"), b, len);
        b[k] ^= 0x5a;
        nnu_status st = nnu_net_load(net, tmp_path("cut.pth"));
        if (st == NNU_STATUS_OK) loaded++;
        else if (strstr(nnu_last_error(), tmp_path("cut.pth"))) failed++;
        else { bad++; fprintf(stderr, "flip at %zu: %s\n", k, nnu_last_error()); }
    }
    CHECK(bad == 0, "flipped bytes: messages name the file");
    printf("byte flips in ref3d.pth: %d rejected, %d loaded (padding, unused fields)\n", failed, loaded);
    unlink(tmp_path("cut.pth"));
    free(b);
    free(before);
    nnu_net_free(net);
}

/* every local header of a zip written by us: data offsets aligned to 64 */
static int aligned_entries(const char *path, int *n_entries) {
    size_t len;
    unsigned char *b = slurp(path, &len);
    int ok = b != NULL;
    size_t p = 0;
    *n_entries = 0;
    while (ok && p + 30 <= len && !memcmp(b + p, "PK\3\4", 4)) {
        size_t size = b[p + 18] | b[p + 19] << 8 | (size_t)b[p + 20] << 16 | (size_t)b[p + 21] << 24;
        size_t nl = b[p + 26] | b[p + 27] << 8, el = b[p + 28] | b[p + 29] << 8;
        size_t data = p + 30 + nl + el;
        if (data % 64) ok = 0;
        p = data + size;
        ++*n_entries;
    }
    free(b);
    return ok;
}

static void test_write_round_trip(void) {
    size_t jl;
    unsigned char *plans = slurp(DIR "plans_3d.json", &jl);
    unsigned char *dj = plans ? slurp(DIR "dataset_3d.json", &jl) : NULL;
    char *pj = plans ? realloc(plans, 8192) : NULL;   /* NUL-terminate the JSON texts */
    if (!pj || !dj) { CHECK(0, "plans_3d.json / dataset_3d.json (HINT: %s)", REGEN); free(pj); free(dj); return; }
    size_t pl;
    free(slurp(DIR "plans_3d.json", &pl));
    pj[pl] = 0;
    char *djs = realloc(dj, jl + 1);
    djs[jl] = 0;
    nnu_net *a = make(cfg3d(), 11), *b = make(cfg3d(), 12);
    const int axes[2] = {1, 2};
    nnu_torch_ckpt_meta m = {.trainer_name = "nnUNetTrainer_5epochs", .configuration = "3d_fullres", .fold = 3,
                             .plans_json = pj, .dataset_json = djs, .n_mirror = 2, .mirror_axes = axes,
                             .current_epoch = 5, .best_ema = 0.75};
    char path[128];
    snprintf(path, sizeof path, "%s", tmp_path("roundtrip.pth"));
    CHECK_OK(nnu_torch_ckpt_save(a, path, &m));
    CHECK(access(tmp_path("roundtrip.pth.tmp"), F_OK) != 0, "no .tmp left behind");
    CHECK_OK(nnu_net_load(b, path));
    CHECK(!memcmp(nnu_net_params(a), nnu_net_params(b), (size_t)nnu_net_num_params(a) * sizeof(float)),
          "written weights read back bit-identically");
    nnu_torch_ckpt_info info;
    CHECK_OK(nnu_torch_ckpt_info_read(path, &info));
    CHECK(!strcmp(info.trainer_name, "nnUNetTrainer_5epochs") && !strcmp(info.configuration, "3d_fullres") &&
          info.current_epoch == 5 && info.n_mirror == 2 && info.mirror_axes[1] == 2, "metadata read back");
    nnu_torch_ckpt_info_free(&info);
    /* the pickle holds what the reference's loaders read */
    nnu_torch_file *f;
    CHECK_OK(nnu_torch_open(path, &f));
    if (f) {
        const nnu_pk *r = nnu_torch_root(f), *ia = nnu_pk_get(r, "init_args");
        const nnu_pk *pl2 = nnu_pk_get(ia, "plans");
        CHECK(nnu_pk_is_str(nnu_pk_get(pl2, "dataset_name"), "Dataset999_Tiny"), "init_args.plans from JSON");
        const nnu_pk *fold = nnu_pk_get(ia, "fold"), *be = nnu_pk_get(r, "_best_ema");
        CHECK(fold && fold->type == NNU_PK_INT && fold->i == 3 && be && be->f == 0.75, "fold, _best_ema");
        CHECK(nnu_pk_get(r, "optimizer_state")->type == NNU_PK_NONE &&
              nnu_pk_get(nnu_pk_get(r, "logging"), "train_losses")->type == NNU_PK_LIST, "optimizer None, logging");
        nnu_torch_close(f);
    }
    int zerr = 0, n = 0;
    zip_t *z = zip_open(path, ZIP_RDONLY | ZIP_CHECKCONS, &zerr);
    CHECK(z != NULL, "libzip accepts the archive with ZIP_CHECKCONS (error %d)", zerr);
    if (z) {
        CHECK(zip_name_locate(z, "archive/data.pkl", 0) >= 0 && zip_name_locate(z, "archive/version", 0) >= 0 &&
              zip_name_locate(z, "archive/byteorder", 0) >= 0 && zip_name_locate(z, "archive/data/0", 0) >= 0,
              "entries archive/{data.pkl,version,byteorder,data/0}");
        zip_discard(z);
    }
    CHECK(aligned_entries(path, &n) && n == nnu_net_num_tensors(a) + 3, "%d entries, data at multiples of 64", n);
    /* fold "all", no mirroring axes, None best EMA */
    m.fold = -1;
    m.n_mirror = -1;
    m.best_ema = NAN;
    m.no_fsync = 1;
    CHECK_OK(nnu_torch_ckpt_save(a, path, &m));
    CHECK_OK(nnu_torch_open(path, &f));
    if (f) {
        CHECK(nnu_pk_is_str(nnu_pk_get(nnu_pk_get(nnu_torch_root(f), "init_args"), "fold"), "all") &&
              nnu_pk_get(nnu_torch_root(f), "_best_ema")->type == NNU_PK_NONE, "fold 'all', _best_ema None");
        nnu_torch_close(f);
    }
    m.plans_json = "{not json";
    CHECK_FAILS(nnu_torch_ckpt_save(a, path, &m), NNU_STATUS_ERR_ARG, "plans_json is not valid JSON");
    m.plans_json = "[1]";
    CHECK_FAILS(nnu_torch_ckpt_save(a, path, &m), NNU_STATUS_ERR_ARG, "JSON objects");
    CHECK_FAILS(nnu_torch_ckpt_save(a, "no/such/dir/x.pth", &m), NNU_STATUS_ERR_ARG, "JSON objects");
    m.plans_json = pj;
    CHECK_FAILS(nnu_torch_ckpt_save(a, "no/such/dir/x.pth", &m), NNU_STATUS_ERR_IO, "no/such/dir/x.pth.tmp");
    unlink(path);
    nnu_net_free(a);
    nnu_net_free(b);
    free(pj);
    free(djs);
}

int main(void) {
    if (!mkdtemp(tmp_dir)) { perror(tmp_dir); return 1; }
    test_reference_3d();
    test_reference_2d();
    test_reference_resenc();
    test_views();
    test_errors();
    test_write_round_trip();
    rmdir(tmp_dir);
    return check_report();
}
