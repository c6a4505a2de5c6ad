/* bench_engine.c: training-iteration and inference timings of the CPU engine for the
 * Hippocampus plans (../shared/reference/msd-plans/Dataset004_Hippocampus/plans.json:
 * 3d_fullres patch 40x56x40, batch 9, features 32/64/128/256, kernels 3^3, strides
 * 1,2,2,2; 2d patch 56x40, batch 366, features 32..256, strides 1,2,2,2), with 1 and 2
 * threads, each measurement in a forked child so peak RSS is its own.
 *
 *   bench_engine [--quick] [--reps R] [--torch bench/bench_torch.py] [--only CASE_INDEX]
 * The last cases repeat training/inference with bf16 convolutions (cpu:bf16), against
 * the same fp32 PyTorch runs.
 *
 * Prints one line per measurement:
 *   bench train3d batch=9 threads=2 median_s=... gflops=... peak_rss_mb=... reorders=...
 *   bench infer3d batch=4 threads=2 median_s_per_patch=... peak_rss_mb=...
 * and with --torch runs the identical PyTorch network (bench_torch.py, Debian
 * python3-torch) for the same cases and prints the ratios torch/ours.
 * A train iteration = zero_grad + forward + deep-supervision Dice+CE + backward +
 * clipped Nesterov SGD, on random data with random labels; 3 classes (Hippocampus's
 * background, anterior, posterior). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "nnu_net.h"

typedef struct bcase {
    const char *name;      /* train3d, infer3d, train2d, infer2d */
    int dim, train, batch, threads;
    int bf16;              /* 1: the cpu:bf16 table (bf16 convolutions) */
} bcase;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double cpu_time(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec * 1e-6;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* the Hippocampus architecture (identical for 3d_fullres and 2d but for dim) */
static nnu_net_config hippo(int dim) {
    nnu_net_config c;
    memset(&c, 0, sizeof c);
    c.dim = dim;
    c.n_stages = 4;
    for (int s = 0; s < 4; s++) {
        c.features[s] = 32 << s;
        for (int a = 0; a < 3; a++) {
            c.kernel[s][a] = (dim == 2 && a == 0) ? 1 : 3;
            c.stride[s][a] = (s == 0 || (dim == 2 && a == 0)) ? 1 : 2;
        }
        c.n_conv_enc[s] = 2;
        c.n_conv_dec[s] = 2;
    }
    c.in_channels = 1;
    c.num_classes = 3;     /* background, anterior, posterior */
    c.conv_bias = 1;
    c.norm_eps = 1e-5f;
    c.slope = 0.01f;
    c.deep_supervision = 1;
    c.batch_dice = 0;
    c.ignore_label = -1;
    return c;
}

/* multiply-adds x 2 of the convolutions of one forward pass */
static double fwd_flops(const nnu_net_config *c, const int64_t patch[3], int batch, int train) {
    double f = 0, sp[NNU_NET_MAX_STAGES];
    int64_t cur[3] = {patch[0], patch[1], patch[2]};
    for (int s = 0; s < c->n_stages; s++) {
        for (int a = 0; a < 3; a++) cur[a] /= c->stride[s][a];
        sp[s] = (double)cur[0] * cur[1] * cur[2];
    }
    for (int s = 0; s < c->n_stages; s++) {
        double k = c->kernel[s][0] * c->kernel[s][1] * c->kernel[s][2];
        for (int j = 0; j < c->n_conv_enc[s]; j++) {
            double cin = j ? c->features[s] : (s ? c->features[s - 1] : c->in_channels);
            f += 2.0 * batch * sp[s] * c->features[s] * cin * k;
        }
    }
    for (int r = c->n_stages - 2; r >= 0; r--) {
        double k = c->kernel[r][0] * c->kernel[r][1] * c->kernel[r][2], F = c->features[r];
        double ks = c->stride[r + 1][0] * c->stride[r + 1][1] * c->stride[r + 1][2];
        f += 2.0 * batch * sp[r + 1] * c->features[r + 1] * F * ks;      /* transposed conv */
        f += 2.0 * batch * sp[r] * F * 2 * F * k;                          /* first conv: 2F in */
        f += 2.0 * batch * sp[r] * F * F * k * (c->n_conv_dec[r] - 1);
        if (train || r == 0) f += 2.0 * batch * sp[r] * F * c->num_classes;   /* head */
    }
    return f;
}

/* runs one case in this process and prints its line */
static int run_case(const bcase *bc, int reps) {
    nnu_backend_cpu_set_threads(bc->threads);
    nnu_net_config c = hippo(bc->dim);
    int64_t patch[3] = {40, 56, 40};
    if (bc->dim == 2) { patch[0] = 1; patch[1] = 56; patch[2] = 40; }
    nnu_net *net = NULL;
    nnu_status st = nnu_net_create(bc->bf16 ? nnu_backend_cpu_bf16() : nnu_backend_cpu(), &c, 1,
                                   &net);
    if (st) { fprintf(stderr, "%s\n", nnu_last_error()); return 1; }
    const int64_t S = patch[0] * patch[1] * patch[2], N = bc->batch;
    float *x = malloc((size_t)(N * S) * sizeof *x);
    int64_t tshape[5] = {N, 1, patch[0], patch[1], patch[2]};
    nnu_tensor *t = NULL;
    nnu_tensor_new(NNU_DTYPE_I16, 5, tshape, &t);
    int16_t *tl = nnu_tensor_data(t);
    uint64_t r = 88172645463325252ull;
    for (int64_t i = 0; i < N * S; i++) {
        r ^= r << 13; r ^= r >> 7; r ^= r << 17;
        x[i] = (float)((double)(r >> 11) / 9007199254740992.0 * 2 - 1);
        tl[i] = (int16_t)((r >> 5) % 3);
    }
    nnu_sgd_config sc;
    nnu_sgd_config_default(&sc);
    double *times = calloc((size_t)reps, sizeof *times), loss = 0, cpu0 = 0;
    long flt0 = 0;
    nnu_backend_stats s0, s1;
    for (int it = -1; it < reps; it++) {   /* it = -1: warm-up (plans, primitives) */
        if (it == 0) {
            nnu_backend_cpu()->get_stats(nnu_backend_cpu(), &s0);
            cpu0 = cpu_time();
            struct rusage r0;
            getrusage(RUSAGE_SELF, &r0);
            flt0 = r0.ru_minflt;
        }
        double t0 = now();
        if (bc->train) st = nnu_net_train_step(net, x, N, patch, t, &sc, &loss);
        else st = nnu_net_forward(net, x, N, patch, 0);
        if (st) { fprintf(stderr, "%s\n", nnu_last_error()); return 1; }
        if (it >= 0) times[it] = now() - t0;
    }
    nnu_backend_cpu()->get_stats(nnu_backend_cpu(), &s1);
    /* CPU seconds per iteration (all threads): robust against other load on the machine */
    double cpu = (cpu_time() - cpu0) / reps;
    qsort(times, (size_t)reps, sizeof *times, cmp_d);
    double med = times[reps / 2];
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double rss = ru.ru_maxrss / 1024.0;
    /* page faults per timed iteration: ~0 when nothing is allocated inside a step */
    double faults = (double)(ru.ru_minflt - flt0) / reps;
    double fl = fwd_flops(&c, patch, bc->batch, bc->train);
    if (bc->train) {
        /* fwd + bwd data (not for the first layer, whose input needs no gradient) + bwd weights */
        fl = 3 * fl - 2.0 * N * S * c.features[0] * c.in_channels * 27;
        printf("bench %s%s batch=%d threads=%d median_s=%.3f cpu_s=%.3f gflops=%.1f peak_rss_mb=%.0f "
               "reorders_per_iter=%.0f faults_per_iter=%.0f loss=%.4f\n", bc->name,
               bc->bf16 ? "_bf16" : "", bc->batch, bc->threads, med, cpu, fl / med * 1e-9, rss,
               (double)(s1.reorders - s0.reorders) / reps, faults, loss);
    } else {
        printf("bench %s%s batch=%d threads=%d median_s_per_patch=%.4f cpu_s_per_patch=%.4f "
               "gflops=%.1f peak_rss_mb=%.0f\n", bc->name, bc->bf16 ? "_bf16" : "", bc->batch,
               bc->threads,
               med / bc->batch, cpu / bc->batch, fl / med * 1e-9, rss);
    }
    fflush(stdout);
    free(times);
    free(x);
    nnu_tensor_release(t);
    nnu_net_free(net);
    return 0;
}

/* forks, runs the case in the child, returns the child's line (or "" on failure) */
static void run_forked(const bcase *bc, int reps, char *line, size_t len) {
    int fd[2];
    line[0] = 0;
    if (pipe(fd)) return;
    pid_t pid = fork();
    if (pid == 0) {
        close(fd[0]);
        dup2(fd[1], 1);
        exit(run_case(bc, reps));
    }
    close(fd[1]);
    FILE *f = fdopen(fd[0], "r");
    if (f && fgets(line, (int)len, f)) fputs(line, stdout);
    fflush(stdout);
    if (f) fclose(f);
    waitpid(pid, NULL, 0);
}

static double field(const char *line, const char *key) {
    const char *p = strstr(line, key);
    return p ? atof(p + strlen(key)) : NAN;
}

int main(int argc, char **argv) {
    int reps = 3, quick = 0, only = -1;
    const char *torch = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) quick = 1;
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--torch") && i + 1 < argc) torch = argv[++i];
        else if (!strcmp(argv[i], "--only") && i + 1 < argc) only = atoi(argv[++i]);
        else { fprintf(stderr, "usage: %s [--quick] [--reps R] [--torch bench_torch.py]\n", argv[0]); return 2; }
    }
    if (reps < 1) reps = 1;
    bcase all[] = {
        {"train3d", 3, 1, 9, 2, 0}, {"train3d", 3, 1, 2, 2, 0}, {"train3d", 3, 1, 9, 1, 0},
        {"train3d", 3, 1, 2, 1, 0}, {"infer3d", 3, 0, 4, 2, 0}, {"infer3d", 3, 0, 4, 1, 0},
        {"train2d", 2, 1, 366, 2, 0}, {"infer2d", 2, 0, 64, 2, 0},
        /* mixed precision (bf16 convolutions); compared with PyTorch fp32 */
        {"train3d", 3, 1, 9, 2, 1}, {"train3d", 3, 1, 9, 1, 1}, {"infer3d", 3, 0, 4, 1, 1},
    };
    int ncase = quick ? 2 : (int)(sizeof all / sizeof all[0]);
    if (only >= 0 && only < (int)(sizeof all / sizeof all[0]))   /* in-process, for profilers */
        return run_case(&all[only], reps);
    char ours[16][512], theirs[16][512];
    for (int i = 0; i < ncase; i++) run_forked(&all[i], reps, ours[i], sizeof ours[i]);
    if (!torch) return 0;
    for (int i = 0; i < ncase; i++) {
        char cmd[1024];
        theirs[i][0] = 0;
        snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s --case %s --batch %d --threads %d --reps %d",
                 torch, all[i].name, all[i].batch, all[i].threads, reps);
        FILE *p = popen(cmd, "r");
        if (!p) continue;
        while (fgets(theirs[i], sizeof theirs[i], p))
            if (!strncmp(theirs[i], "torch ", 6)) { fputs(theirs[i], stdout); break; }
        pclose(p);
        fflush(stdout);
    }
    for (int i = 0; i < ncase; i++) {
        const char *key = all[i].train ? "median_s=" : "median_s_per_patch=";
        double a = field(ours[i], key), b = field(theirs[i], key);
        double ra = field(ours[i], "peak_rss_mb="), rb = field(theirs[i], "peak_rss_mb=");
        const char *ck = all[i].train ? "cpu_s=" : "cpu_s_per_patch=";
        printf("ratio %s%s batch=%d threads=%d torch/ours time=%.2f cpu=%.2f rss ours/torch=%.2f\n",
               all[i].name, all[i].bf16 ? "_bf16" : "", all[i].batch, all[i].threads, b / a,
               field(theirs[i], ck) / field(ours[i], ck), ra / rb);
    }
    return 0;
}
