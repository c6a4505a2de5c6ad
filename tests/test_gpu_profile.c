/* test_gpu_profile.c: the per-op CUDA profiler (kernels/cuda_profile.c; label gpu,
 * exit 77 "SKIP: no GPU" without a CUDA build or device).
 *   - NNU_CUDA_PROFILE=1 (set here before the first nnu_backend_cuda) gives a
 *     wrapped table: same name and precision, every op slot of nnu_ops.def wrapped;
 *   - ops through it give the real ops' results (bit for bit: same kernels);
 *   - calls are counted exactly per op and per geometry, also past the event pool
 *     (5000 calls > POOL 4096 forces a collection in the middle);
 *   - the report lists the ops, their geometries and per-op subtotals; reset empties. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "nnu_backend.h"

#ifndef NNUNET_HAVE_CUDA
int main(void) {
    printf("SKIP: no GPU (built without the CUDA backend)\n");
    return 77;
}
#else
#include "nnu_cuda.h"
#include "ops_cuda.h"

static const nnu_backend *gpu;

static float *dev_from(const float *h, int64_t n) {
    float *d = gpu->mem->alloc((size_t)n * sizeof(float), gpu->mem->ctx);
    CHECK(d != NULL, "device alloc: %s", nnu_last_error());
    if (d) CHECK_OK(gpu->memcpy_(gpu, d, h, (size_t)n * sizeof(float)));
    return d;
}

/* the "profile op NAME calls N ..." subtotal of report text r, -1 if absent */
static long long subtotal_calls(const char *r, const char *op) {
    char key[64];
    snprintf(key, sizeof key, "profile op %-18s calls", op);
    const char *at = strstr(r, key);
    long long n = -1;
    if (at && sscanf(at + strlen(key), "%lld", &n) != 1) n = -1;
    return n;
}

int main(void) {
    if (nnu_cuda_device_count() == 0) {
        printf("SKIP: no GPU\n");
        return 77;
    }
    setenv("NNU_CUDA_PROFILE", "1", 1);
    CHECK_OK(nnu_backend_cuda(NNU_CUDA_FP32, &gpu));
    if (!gpu) return check_report();
    CHECK(nnu_cuda_profile_enabled(), "NNU_CUDA_PROFILE=1 not seen");
    CHECK(nnu_cuda_profile_precision_of(gpu) == NNU_CUDA_FP32 &&
          nnu_cuda_precision_of(gpu) == NNU_CUDA_FP32, "wrapped table lost its precision");
    CHECK(!strcmp(gpu->name, "cuda:0"), "wrapped table named '%s'", gpu->name);
    CHECK(nnu_cuda_profile_wrap(gpu) == gpu, "wrapping a wrapped table made another copy");
    /* every op slot is a wrapper, not the real op (R20: the list is nnu_ops.def) */
#define NNU_OP(name, ptype) \
    CHECK(gpu->name && gpu->name != nnu_##name##_cuda, "op %s is not profiled", #name);
#define NNU_OP_NEW(name, ptype) NNU_OP(name, ptype)   /* the CUDA tables take them too */
#include "nnu_ops.def"
#undef NNU_OP_NEW
#undef NNU_OP
    /* every precision gets its own wrapped table that keeps its precision, name and
     * activation storage (the ops read them from the table they are called through) */
    const nnu_backend *wt[NNU_CUDA_PRECISION_COUNT] = {0};
    for (int p = 0; p < NNU_CUDA_PRECISION_COUNT; p++) {
        const nnu_cuda_precision pr = (nnu_cuda_precision)p;
        CHECK_OK(nnu_backend_cuda(pr, &wt[p]));
        if (!wt[p]) return check_report();
        CHECK(nnu_cuda_precision_of(wt[p]) == p && nnu_cuda_profile_precision_of(wt[p]) == p,
              "wrapped %s table: precision %d", nnu_cuda_precision_name(pr),
              nnu_cuda_precision_of(wt[p]));
        CHECK(nnu_cuda_profile_wrap(wt[p]) == wt[p], "%s: rewrapping made another copy",
              nnu_cuda_precision_name(pr));
        CHECK(wt[p]->conv_fwd != nnu_conv_fwd_cuda && wt[p]->sumsq != nnu_sumsq_cuda,
              "%s: op slots not wrapped", nnu_cuda_precision_name(pr));
        CHECK((wt[p]->act_bytes == 2) == nnu_cuda_precision_act16(pr) &&
              (wt[p]->upload_act != NULL) == nnu_cuda_precision_act16(pr),
              "%s: activation storage of the wrapped table (act_bytes %d)",
              nnu_cuda_precision_name(pr), (int)wt[p]->act_bytes);
        for (int q = 0; q < p; q++)
            CHECK(wt[q] != wt[p], "%s and %s share a wrapped table",
                  nnu_cuda_precision_name((nnu_cuda_precision)q), nnu_cuda_precision_name(pr));
    }
    CHECK(wt[NNU_CUDA_FP32] == gpu, "fp32 wrapped table changed between calls");

    /* lrelu 3x + 5000x (one geometry), conv_fwd 2x + 1x (two geometries), axpy, sumsq */
    enum { NE = 1000 };
    float h[NE], got[NE], ref[NE];
    for (int i = 0; i < NE; i++) h[i] = (float)(i % 37) - 18.0f;
    float *x = dev_from(h, NE), *y = dev_from(h, NE), *y2 = dev_from(h, NE);
    if (!x || !y || !y2) return check_report();
    nnu_eltwise_params ep = {NE, 0.01f};
    CHECK_OK(nnu_cuda_profile_reset());
    for (int i = 0; i < 3; i++) CHECK_OK(gpu->lrelu_fwd(gpu, x, y, &ep));
    CHECK_OK(nnu_lrelu_fwd_cuda(gpu, x, y2, &ep));   /* the real op: not counted */
    CHECK_OK(gpu->memcpy_(gpu, got, y, sizeof got));
    CHECK_OK(gpu->memcpy_(gpu, ref, y2, sizeof ref));
    CHECK(!memcmp(got, ref, sizeof got), "lrelu through the profiler differs from the real op");
    CHECK(nnu_cuda_profile_calls("lrelu_fwd") == 3, "lrelu_fwd calls %lld, want 3",
          (long long)nnu_cuda_profile_calls("lrelu_fwd"));

    const int k3[3] = {3, 3, 3}, s1[3] = {1, 1, 1};
    nnu_conv_params pa, pb;
    CHECK_OK(nnu_conv_params_init(&pa, 1, 2, 3, (const int64_t[]){4, 5, 6}, k3, s1, 0, 1, 1));
    CHECK_OK(nnu_conv_params_init(&pb, 1, 2, 3, (const int64_t[]){3, 5, 6}, k3, s1, 0, 1, 1));
    float *w = dev_from(h, 2 * 3 * 27), *cy = dev_from(h, 3 * 4 * 5 * 6);
    for (int i = 0; i < 2; i++) CHECK_OK(gpu->conv_fwd(gpu, x, cy, w, NULL, &pa));
    CHECK_OK(gpu->conv_fwd(gpu, x, cy, w, NULL, &pb));
    nnu_eltwise_params ap = {NE, 0.5f};
    CHECK_OK(gpu->axpy(gpu, x, y, &ap));
    double ss = 0.0;
    CHECK_OK(gpu->sumsq(gpu, x, &ss, &ep));
    for (int i = 0; i < 5000; i++) {
        nnu_status st = gpu->lrelu_fwd(gpu, x, y, &ep);
        if (st != NNU_STATUS_OK) { CHECK_OK(st); break; }
    }
    CHECK(nnu_cuda_profile_calls("lrelu_fwd") == 5003, "lrelu_fwd calls %lld, want 5003",
          (long long)nnu_cuda_profile_calls("lrelu_fwd"));
    CHECK(nnu_cuda_profile_calls("conv_fwd") == 3, "conv_fwd calls %lld, want 3",
          (long long)nnu_cuda_profile_calls("conv_fwd"));
    CHECK(nnu_cuda_profile_calls("axpy") == 1 && nnu_cuda_profile_calls("sumsq") == 1,
          "axpy/sumsq calls %lld/%lld, want 1/1", (long long)nnu_cuda_profile_calls("axpy"),
          (long long)nnu_cuda_profile_calls("sumsq"));
    CHECK(nnu_cuda_profile_calls("instnorm_fwd") == 0, "instnorm_fwd counted without a call");

    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    CHECK(f != NULL, "open_memstream");
    if (!f) return check_report();
    CHECK_OK(nnu_cuda_profile_report(f));
    fclose(f);
    fputs(text, stdout);
    CHECK(subtotal_calls(text, "lrelu_fwd") == 5003, "report: lrelu_fwd subtotal");
    CHECK(subtotal_calls(text, "conv_fwd") == 3, "report: conv_fwd subtotal");
    CHECK(subtotal_calls(text, "sumsq") == 1, "report: sumsq subtotal");
    CHECK(strstr(text, "N=1 2->3 in=4x5x6 k=3x3x3 s=1x1x1") &&
          strstr(text, "N=1 2->3 in=3x5x6 k=3x3x3 s=1x1x1"), "report: conv geometries missing");
    CHECK(strstr(text, "numel=1000") != NULL, "report: eltwise geometry missing");
    CHECK(strstr(text, "profile total calls 5008 ") != NULL, "report: total calls");
    free(text);

    CHECK_OK(nnu_cuda_profile_reset());
    CHECK(nnu_cuda_profile_calls("lrelu_fwd") == 0, "reset left lrelu_fwd calls");
    const void *bufs[] = {x, y, y2, w, cy};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++)
        gpu->mem->free((void *)bufs[i], gpu->mem->ctx);
    return check_report();
}
#endif
