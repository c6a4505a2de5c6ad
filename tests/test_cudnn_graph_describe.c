/* test_cudnn_graph_describe.c: the cuDNN graph-API path's descriptors (kernels/
 * conv_cudnn_graph.inc) on a machine WITHOUT a GPU: for every convolution geometry the
 * networks use (3-D and 2-D, kernel 3 stride 1/2, transposed kernel = stride, odd and
 * tiny sizes) and every precision table, the tensor, convolution and operation
 * descriptors of FWD, BWD_DATA and BWD_FILTER (beta 0 and 1) must be accepted and
 * finalized by cuDNN, which validates attribute types, counts and the shapes against
 * each other (a wrong output size is CUDNN_STATUS_BAD_PARAM at the operation). The
 * operation graph, heuristics and plans need a handle (a GPU): test_gpu_ops --api graph.
 * Skips (77) without the CUDA backend. */
#include <stdio.h>

#include "check.h"
#include "nnu_backend.h"

#ifndef NNUNET_HAVE_CUDA
int main(void) {
    printf("SKIP: built without the CUDA backend\n");
    return 77;
}
#else
#include "nnu_cuda.h"

typedef struct geo {
    const char *name;
    int64_t n, cin, cout, in[3];
    int k[3], s[3], transposed;
} geo;

static const geo GEOS[] = {
    {"conv3d k3 s1 32->32 10x14x10", 2, 32, 32, {10, 14, 10}, {3, 3, 3}, {1, 1, 1}, 0},
    {"conv3d k3 s2 32->64 odd", 2, 32, 64, {9, 13, 7}, {3, 3, 3}, {2, 2, 2}, 0},
    {"conv3d k3 s1 1->32 D=1", 1, 1, 32, {1, 8, 8}, {3, 3, 3}, {1, 1, 1}, 0},
    {"conv3d anisotropic k133 s122", 2, 16, 32, {5, 12, 12}, {1, 3, 3}, {1, 2, 2}, 0},
    {"convt3d s2 64->32", 2, 64, 32, {5, 7, 5}, {2, 2, 2}, {2, 2, 2}, 1},
    {"convt3d s122 32->16", 1, 32, 16, {4, 6, 6}, {1, 2, 2}, {1, 2, 2}, 1},
    {"conv2d k3 s1 (D=1)", 2, 8, 16, {1, 20, 18}, {1, 3, 3}, {1, 1, 1}, 0},
    {"conv2d k3 s2 (D=1)", 2, 16, 32, {1, 20, 18}, {1, 3, 3}, {1, 2, 2}, 0},
    {"convt2d s2 (D=1)", 2, 32, 16, {1, 10, 9}, {1, 2, 2}, {1, 2, 2}, 1},
    {"head 1x1 (cuBLAS: nothing to describe)", 2, 32, 3, {4, 4, 4}, {1, 1, 1}, {1, 1, 1}, 0},
};

int main(void) {
    int total = 0;
    for (size_t i = 0; i < sizeof GEOS / sizeof *GEOS; i++) {
        const geo *g = &GEOS[i];
        nnu_conv_params p;
        CHECK_OK(nnu_conv_params_init(&p, g->n, g->cin, g->cout, g->in, g->k, g->s, g->transposed,
                                      1, 1));
        for (int prec = 0; prec < NNU_CUDA_PRECISION_COUNT; prec++) {
            int checked = -1;
            nnu_status st = nnu_cuda_conv_graph_describe_check(&p, prec, &checked);
            CHECK(st == NNU_STATUS_OK, "%s [%s]: %s", g->name,
                  nnu_cuda_precision_name((nnu_cuda_precision)prec), nnu_last_error());
            const int want = i == sizeof GEOS / sizeof *GEOS - 1 ? 0 : 4;   /* fwd, bwd_data, 2 x bwd_filter */
            CHECK(st != NNU_STATUS_OK || checked == want, "%s [%s]: %d descriptor sets (want %d)",
                  g->name, nnu_cuda_precision_name((nnu_cuda_precision)prec), checked, want);
            if (checked > 0) total += checked;
        }
    }
    printf("%d descriptor sets finalized by cuDNN\n", total);
    return check_report();
}
#endif
