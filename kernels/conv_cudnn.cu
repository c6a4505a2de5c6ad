/* conv_cudnn.cu: convolution and transposed convolution on the GPU (R21: cuDNN
 * lives in this one translation unit). Twins of core/ops/conv.c and
 * core/ops/conv_transpose.c, same signatures and conventions:
 *   conv   x (N,Cin,in) -> y (N,Cout,out), w [Cout,Cin,k], "same" zero padding
 *   convt  x (N,Cin,in) -> y (N,Cout,in*k), w [Cin,Cout,k] (PyTorch), kernel = stride
 *   *_fwd writes y (+ bias), *_bwd_data writes gx (=), *_bwd_params adds (+=) gw, gb.
 * Activations must be plain (cblk 1): cuDNN has no nCdhw16c layout, so the
 * blocked layout is ERR_UNSUPPORTED here (nothing is silently reordered).
 *
 * One cuDNN convolution "C" per shape, seen from its own x/y (cx, cy):
 *   conv:  cx = x (N,Cin,in),  cy = y (N,Cout,out), filter [Cout,Cin,k]
 *   convt: cx = y (N,Cout,out), cy = x (N,Cin,in),  filter [Cin,Cout,k] (C maps the
 *          high-res tensor down with kernel = stride; its adjoint is the upsampling)
 * and three primitives FWD (cx -> cy), BWD_DATA (cy -> cx), BWD_FILTER (cx, cy -> w):
 *   conv_fwd = FWD,  conv_bwd_data = BWD_DATA,  conv_bwd_params = BWD_FILTER(x, gy)
 *   convt_fwd = BWD_DATA(x -> y), convt_bwd_data = FWD(gy -> gx),
 *   convt_bwd_params = BWD_FILTER(cx = gy, cy = x).
 * The cache (key: geometry + precision) holds the descriptors and, per primitive,
 * the algorithm found by cudnnFind* on first use (like PyTorch's
 * cudnn.benchmark = True; NNU_CUDNN_HEURISTIC=1 takes the heuristic's first choice
 * instead) and its workspace size; the workspace is one grow-once buffer.
 * NNU_CUDNN_API=graph (or nnu_cuda_conv_set_api) runs the same primitives through
 * the cuDNN graph (backend) API instead: engine heuristics + autotuned execution
 * plans, per entry and primitive (conv_cudnn_graph.inc, included below).
 *
 * 1x1 stride-1 convolutions (the segmentation heads) are GEMMs on cuBLAS:
 *   y[n] (Cout x S) = W (Cout x Cin) x[n] (Cin x S)    strided-batched over n
 *   gx[n] = W^T gy[n];  gW += sum_n gy[n] x[n]^T       (column-major calls below)
 *
 * Precision (nnu_cuda.h): FP32 = CUDNN_FMA_MATH / CUBLAS_COMPUTE_32F; TF32 =
 * cuDNN default math / CUBLAS_COMPUTE_32F_FAST_TF32; BF16/FP16 convert the
 * operands into grow-once low-precision buffers, run cuDNN in that type with fp32
 * accumulation, and convert the result back (adding the bias, or accumulating the
 * weight gradient) in the same pass; cuBLAS uses COMPUTE_32F_FAST_16BF/16F on the
 * fp32 data directly.
 *
 * 16-bit activation storage (BF16_ACT16/FP16_ACT16, contract in core/nnu_backend.h):
 * x, y, gy, gx are already bf16/fp16, so cuDNN reads and writes them directly (no
 * operand conversions); only the fp32 master weights are converted, once per call,
 * into LOW_W. The bias is added by an output pass on the 16-bit y (fp32 math, one
 * rounding), BWD_FILTER writes a 16-bit dW into LOW_W that is accumulated into the
 * fp32 gradient, and the bias gradient sums the 16-bit gy in double. The cuBLAS
 * heads (p->f32_out) read 16-bit x and write fp32 logits (A/B 16-bit, C fp32,
 * CUBLAS_COMPUTE_32F); their backward converts the fp32 glogits to 16 bits (LOW_B,
 * N*K*S elements) because A and B must share a type, writes a 16-bit gx and
 * accumulates the weight gradient in fp32 (C fp32, beta 1). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "act_store.cuh"
#include "cuda_common.h"

#pragma GCC diagnostic ignored "-Wdeprecated-declarations"  /* cuDNN 9 legacy conv API */
#pragma nv_diag_suppress 1444                               /* the same, nvcc's front end */

enum { PRIM_FWD = 0, PRIM_BWD_DATA = 1, PRIM_BWD_FILTER = 2 };
enum { KEY_LEN = 16 };

typedef struct conv_entry {
    int64_t key[KEY_LEN];
    int     gemm;                        /* 1x1 stride 1: cuBLAS, no descriptors */
    cudnnTensorDescriptor_t      cx, cy;
    cudnnFilterDescriptor_t      fw;
    cudnnConvolutionDescriptor_t cd;
    int     have[3];                     /* algorithm chosen for the primitive */
    int     algo[3];
    cudnnMathType_t math[3];
    size_t  ws[3];
    int64_t ncx, ncy, nw;                /* elements of cx, cy, filter */
    int64_t ccx, scx, ccy, scy;          /* channels and voxels of cx, cy */
    float   find_ms[3];                  /* cudnnFind's time of the chosen algorithm */
    nnu_cuda_precision prec;             /* the precision of the key */
    /* the same geometry for the graph API (int64 attributes): nd = 4 (2-D) or 5 dims,
     * dims of cx (N,Ccx,sp), cy (N,Ccy,sp), filter [Ccy,Ccx,k], per spatial dim pad/stride */
    int     nd;
    int64_t dcx[5], dcy[5], dw[5], pad[3], str[3];
    struct graph_prim *g[3];             /* graph-API plan per primitive (NULL: none yet) */
} conv_entry;

static conv_entry **cache;
static int cache_len, cache_cap;

int nnu_cuda_conv_cache_entries(void) { return cache_len; }

static void make_key(const nnu_conv_params *p, nnu_cuda_precision prec, int64_t *k) {
    memset(k, 0, KEY_LEN * sizeof *k);
    int i = 0;
    k[i++] = p->transposed; k[i++] = p->n; k[i++] = p->c_in; k[i++] = p->c_out; k[i++] = prec;
    for (int a = 0; a < 3; a++) { k[i++] = p->in[a]; k[i++] = p->kernel[a]; k[i++] = p->stride[a]; }
}

static int is_2d(const nnu_conv_params *p) {
    return p->in[0] == 1 && p->kernel[0] == 1 && p->stride[0] == 1;
}

/* the data type of the cuDNN operands (x, y, filter) of a precision: its compute
 * type (the -act16 modes store activations in that type, the others convert) */
static cudnnDataType_t dnn_type(nnu_cuda_precision prec) {
    const nnu_cuda_precision c = nnu_cuda_precision_compute(prec);
    return c == NNU_CUDA_BF16 ? CUDNN_DATA_BFLOAT16
         : c == NNU_CUDA_FP16 ? CUDNN_DATA_HALF : CUDNN_DATA_FLOAT;
}

static nnu_status set_tensor(cudnnTensorDescriptor_t d, cudnnDataType_t t, int nd, int64_t n,
                             int64_t c, const int64_t sp[3], int two_d) {
    int dims[5], strides[5], k = 0;
    dims[k++] = (int)n;
    dims[k++] = (int)c;
    for (int a = two_d ? 1 : 0; a < 3; a++) dims[k++] = (int)sp[a];
    strides[nd - 1] = 1;
    for (int i = nd - 2; i >= 0; i--) strides[i] = strides[i + 1] * dims[i + 1];
    NNU_CUDNN(cudnnSetTensorNdDescriptor(d, t, nd, dims, strides));
    return NNU_STATUS_OK;
}

static nnu_status entry_create(const nnu_conv_params *p, nnu_cuda_precision prec,
                               conv_entry *e) {
    const int two_d = is_2d(p), nd = two_d ? 4 : 5, nsp = nd - 2;
    const int64_t si = p->in[0] * p->in[1] * p->in[2], so = p->out[0] * p->out[1] * p->out[2];
    const int64_t kv = (int64_t)p->kernel[0] * p->kernel[1] * p->kernel[2];
    /* cx/cy as seen by the cuDNN convolution (header comment) */
    const int64_t *sx = p->transposed ? p->out : p->in, *sy = p->transposed ? p->in : p->out;
    e->ccx = p->transposed ? p->c_out : p->c_in;
    e->ccy = p->transposed ? p->c_in : p->c_out;
    e->scx = p->transposed ? so : si;
    e->scy = p->transposed ? si : so;
    e->ncx = p->n * e->ccx * e->scx;
    e->ncy = p->n * e->ccy * e->scy;
    e->nw = p->c_in * p->c_out * kv;
    e->gemm = !p->transposed && kv == 1 && p->stride[0] == 1 && p->stride[1] == 1 &&
              p->stride[2] == 1;
    if (e->gemm) return NNU_STATUS_OK;
    const cudnnDataType_t t = dnn_type(prec);
    NNU_CUDNN(cudnnCreateTensorDescriptor(&e->cx));
    NNU_CUDNN(cudnnCreateTensorDescriptor(&e->cy));
    NNU_CUDNN(cudnnCreateFilterDescriptor(&e->fw));
    NNU_CUDNN(cudnnCreateConvolutionDescriptor(&e->cd));
    NNU_TRY(set_tensor(e->cx, t, nd, p->n, e->ccx, sx, two_d));
    NNU_TRY(set_tensor(e->cy, t, nd, p->n, e->ccy, sy, two_d));
    int fdims[5] = {(int)e->ccy, (int)e->ccx}, pad[3], str[3], dil[3] = {1, 1, 1};
    for (int a = two_d ? 1 : 0, k = 0; a < 3; a++, k++) {
        fdims[2 + k] = p->kernel[a];
        pad[k] = p->pad[a];
        str[k] = p->stride[a];
    }
    e->nd = nd;
    e->dcx[0] = e->dcy[0] = p->n;
    e->dcx[1] = e->ccx;
    e->dcy[1] = e->ccy;
    for (int k = 0; k < nd; k++) e->dw[k] = fdims[k];
    for (int a = two_d ? 1 : 0, k = 0; a < 3; a++, k++) {
        e->dcx[2 + k] = sx[a];
        e->dcy[2 + k] = sy[a];
        e->pad[k] = pad[k];
        e->str[k] = str[k];
    }
    NNU_CUDNN(cudnnSetFilterNdDescriptor(e->fw, t, CUDNN_TENSOR_NCHW, nd, fdims));
    NNU_CUDNN(cudnnSetConvolutionNdDescriptor(e->cd, nsp, pad, str, dil,
                                              CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    /* cuDNN's own output size must be the one nnu_conv_params_init computed */
    int od[5];
    NNU_CUDNN(cudnnGetConvolutionNdForwardOutputDim(e->cd, e->cx, e->fw, nd, od));
    for (int k = 0; k < nsp; k++)
        NNU_CHECK(od[2 + k] == (int)sy[(two_d ? 1 : 0) + k], NNU_STATUS_ERR_SHAPE,
                  "conv (cuDNN): output size %d != %lld on spatial axis %d", od[2 + k],
                  (long long)sy[(two_d ? 1 : 0) + k], k);
    return NNU_STATUS_OK;
}

static nnu_status entry_destroy(conv_entry *e);   /* conv_cudnn_graph.inc */

static nnu_status entry_get(const nnu_conv_params *p, nnu_cuda_precision prec,
                            conv_entry **out) {
    int64_t key[KEY_LEN];
    make_key(p, prec, key);
    for (int i = 0; i < cache_len; i++)
        if (!memcmp(cache[i]->key, key, sizeof key)) {
            *out = cache[i];
            return NNU_STATUS_OK;
        }
    NNU_CHECK(p->cblk_in == 1 && p->cblk_out == 1, NNU_STATUS_ERR_UNSUPPORTED,
              "%s on cuda: activation layout blocks (%d, %d); the CUDA backend needs plain "
              "layouts (cblk 1)", p->transposed ? "convt" : "conv", p->cblk_in, p->cblk_out);
    conv_entry *e = (conv_entry *)calloc(1, sizeof *e);
    NNU_CHECK(e, NNU_STATUS_ERR_OOM, "conv (cuda): out of host memory");
    memcpy(e->key, key, sizeof key);
    e->prec = prec;
    nnu_status st = entry_create(p, prec, e);
    if (st != NNU_STATUS_OK) {   /* the descriptors it created go too (st wins) */
        (void)entry_destroy(e);
        return st;
    }
    if (cache_len == cache_cap) {
        int nc = cache_cap ? 2 * cache_cap : 32;
        conv_entry **ncache = (conv_entry **)realloc(cache, (size_t)nc * sizeof *ncache);
        if (!ncache) (void)entry_destroy(e);
        NNU_CHECK(ncache, NNU_STATUS_ERR_OOM, "conv (cuda): out of host memory");
        cache = ncache;
        cache_cap = nc;
    }
    cache[cache_len++] = e;
    *out = e;
    return NNU_STATUS_OK;
}

/* ---- algorithm choice (once per entry and primitive) ---- */

static const size_t WS_LIMIT = (size_t)4 << 30;

static nnu_status legacy_choose(conv_entry *e, int prim, nnu_cuda_precision prec);

#include "conv_cudnn_graph.inc"

/* The legacy algorithm of a primitive, once. Under the graph API nothing is chosen
 * here: exec_prim builds the plan when it has the operands to autotune on, and
 * comes back here only for a primitive the graph API has no plan for. */
static nnu_status choose_algo(conv_entry *e, int prim, nnu_cuda_precision prec) {
    if (e->have[prim] || graph_wanted(e, prim)) return NNU_STATUS_OK;
    return legacy_choose(e, prim, prec);
}

/* cudnnFind* (or the heuristic) for primitive prim of e: algorithm, math, workspace */
static nnu_status legacy_choose(conv_entry *e, int prim, nnu_cuda_precision prec) {
    if (e->have[prim]) return NNU_STATUS_OK;
    const double t0 = host_ms();
    nnu_cuda_ctx *c = nnu_cuda_ctx_get();
    const cudnnMathType_t base = prec == NNU_CUDA_FP32   ? CUDNN_FMA_MATH
                               : prec == NNU_CUDA_TF32 ? CUDNN_DEFAULT_MATH
                                                       : CUDNN_TENSOR_OP_MATH;
    NNU_CUDNN(cudnnSetConvolutionMathType(e->cd, base));
    const char *h = getenv("NNU_CUDNN_HEURISTIC");
    const int heuristic = h && h[0] == '1';
    int n = 0, found = -1;
    /* results come sorted fastest first: take the first that ran and fits */
#define PICK(perf_t, COUNT, call)                                                        \
    do {                                                                                 \
        perf_t r[COUNT];                                                                 \
        NNU_CUDNN(call);                                                                 \
        for (int i = 0; i < n && found < 0; i++)                                         \
            if (r[i].status == CUDNN_STATUS_SUCCESS && r[i].memory <= WS_LIMIT &&        \
                (prec != NNU_CUDA_FP32 || (r[i].mathType != CUDNN_TENSOR_OP_MATH &&      \
                 r[i].mathType != CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION))) {             \
                found = i;                                                               \
                e->algo[prim] = (int)r[i].algo;                                          \
                e->math[prim] = prec == NNU_CUDA_FP32 ? CUDNN_FMA_MATH : r[i].mathType;  \
                e->ws[prim] = r[i].memory;                                               \
                e->find_ms[prim] = r[i].time;                                            \
            }                                                                            \
    } while (0)
    if (prim == PRIM_FWD) {
        if (heuristic)
            PICK(cudnnConvolutionFwdAlgoPerf_t, CUDNN_CONVOLUTION_FWD_ALGO_COUNT,
                 cudnnGetConvolutionForwardAlgorithm_v7(c->cudnn, e->cx, e->fw, e->cd, e->cy,
                                                        CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &n, r));
        else
            PICK(cudnnConvolutionFwdAlgoPerf_t, CUDNN_CONVOLUTION_FWD_ALGO_COUNT,
                 cudnnFindConvolutionForwardAlgorithm(c->cudnn, e->cx, e->fw, e->cd, e->cy,
                                                      CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &n, r));
    } else if (prim == PRIM_BWD_DATA) {
        if (heuristic)
            PICK(cudnnConvolutionBwdDataAlgoPerf_t, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT,
                 cudnnGetConvolutionBackwardDataAlgorithm_v7(
                     c->cudnn, e->fw, e->cy, e->cd, e->cx, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT,
                     &n, r));
        else
            PICK(cudnnConvolutionBwdDataAlgoPerf_t, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT,
                 cudnnFindConvolutionBackwardDataAlgorithm(
                     c->cudnn, e->fw, e->cy, e->cd, e->cx, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT,
                     &n, r));
    } else {
        if (heuristic)
            PICK(cudnnConvolutionBwdFilterAlgoPerf_t, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT,
                 cudnnGetConvolutionBackwardFilterAlgorithm_v7(
                     c->cudnn, e->cx, e->cy, e->cd, e->fw,
                     CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &n, r));
        else
            PICK(cudnnConvolutionBwdFilterAlgoPerf_t, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT,
                 cudnnFindConvolutionBackwardFilterAlgorithm(
                     c->cudnn, e->cx, e->cy, e->cd, e->fw,
                     CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &n, r));
    }
#undef PICK
    NNU_CHECK(found >= 0, NNU_STATUS_ERR_CUDNN,
              "cudnnFindConvolution*Algorithm: no algorithm for primitive %d of conv "
              "[%lld,%lld,...] -> %lld channels (%d candidates)\nHINT: try another precision",
              prim, (long long)e->key[1], (long long)e->key[2], (long long)e->key[3], n);
    e->have[prim] = 1;
    if (graph_log_level() > 0) {
        char name[160];
        entry_name(e, prim, name, sizeof name);
        fprintf(stderr, "cudnn legacy %s: algo %d math %d, %.3f ms, workspace %.1f MiB, "
                "chosen in %.1f ms\n", name, e->algo[prim], (int)e->math[prim],
                (double)e->find_ms[prim], (double)e->ws[prim] / (1 << 20), host_ms() - t0);
    }
    return NNU_STATUS_OK;
}

/* ---- small kernels: bias, bias gradient, precision conversion ---- */

/* y[n,c,s] += b[c] */
__global__ void k_bias_add(float *y, const float *b, int64_t C, int64_t S, int64_t total) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total;
         i += (int64_t)gridDim.x * blockDim.x)
        y[i] += b[(i / S) % C];
}

/* The same, one (n, c) row per blockIdx.y: no 64-bit division per element (which
 * costs more than the memory traffic of these passes on an H200). */
__global__ void k_bias_add_rows(float *y, const float *b, int64_t C, int64_t S) {
    const float bc = b[blockIdx.y % C];
    float *r = y + (int64_t)blockIdx.y * S;
    for (int64_t s = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; s < S;
         s += (int64_t)gridDim.x * blockDim.x)
        r[s] += bc;
}

/* grid for a row-wise pass over rows x S elements */
static dim3 rows_grid(int64_t rows, int64_t S) {
    int64_t bx = (S + NNU_CUDA_THREADS - 1) / NNU_CUDA_THREADS;
    int64_t cap = (16 * (int64_t)nnu_cuda_ctx_get()->sm_count + rows - 1) / rows;
    if (bx > cap) bx = cap;
    return dim3((unsigned)(bx < 1 ? 1 : bx), (unsigned)rows);
}

static nnu_status bias_add(float *y, const float *b, int64_t C, int64_t S, int64_t total) {
    cudaStream_t st = nnu_cuda_ctx_get()->stream;
    const int64_t rows = total / S;
    if (rows <= 65535) {
        k_bias_add_rows<<<rows_grid(rows, S), NNU_CUDA_THREADS, 0, st>>>(y, b, C, S);
        NNU_CU_LAUNCH("k_bias_add_rows");
    } else {
        k_bias_add<<<nnu_cuda_blocks(total), NNU_CUDA_THREADS, 0, st>>>(y, b, C, S, total);
        NNU_CU_LAUNCH("k_bias_add");
    }
    return NNU_STATUS_OK;
}

/* 16-bit storage: y[n,c,s] = round(y + b[c]) in fp32, one (n, c) row per blockIdx.y
 * (rows <= 65535), else grid-stride with the 64-bit channel division */
template <typename T>
__global__ void k_bias_add_act_rows(T *y, const float *b, int64_t C, int64_t S) {
    const float bc = b[blockIdx.y % C];
    T *r = y + (int64_t)blockIdx.y * S;
    for (int64_t s = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; s < S;
         s += (int64_t)gridDim.x * blockDim.x)
        act_st(r, s, act_ld(r, s) + bc);
}

template <typename T>
__global__ void k_bias_add_act(T *y, const float *b, int64_t C, int64_t S, int64_t total) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total;
         i += (int64_t)gridDim.x * blockDim.x)
        act_st(y, i, act_ld(y, i) + b[(i / S) % C]);
}

template <typename T>
static nnu_status bias_add_t(T *y, const float *b, int64_t C, int64_t S, int64_t total) {
    cudaStream_t st = nnu_cuda_ctx_get()->stream;
    const int64_t rows = total / S;
    if (rows <= 65535) {
        k_bias_add_act_rows<T><<<rows_grid(rows, S), NNU_CUDA_THREADS, 0, st>>>(y, b, C, S);
        NNU_CU_LAUNCH("k_bias_add_act_rows");
    } else {
        k_bias_add_act<T><<<nnu_cuda_blocks(total), NNU_CUDA_THREADS, 0, st>>>(y, b, C, S, total);
        NNU_CU_LAUNCH("k_bias_add_act");
    }
    return NNU_STATUS_OK;
}

/* y (N, C, S) of storage type st (ACT_*) += b[c]: fp32 y keeps the kernels above */
static nnu_status bias_add_st(int st, void *y, const float *b, int64_t C, int64_t S,
                              int64_t total) {
    if (st == ACT_BF16) return bias_add_t((__nv_bfloat16 *)y, b, C, S, total);
    if (st == ACT_F16) return bias_add_t((__half *)y, b, C, S, total);
    return bias_add((float *)y, b, C, S, total);
}

/* part[(n*C + c)*chunks + k] = sum of gy[n,c,s] over chunk k of s (double); gy is
 * float or 16-bit storage */
template <typename T>
__global__ void k_chan_partial(const T *gy, double *part, int64_t S, int chunks) {
    __shared__ double sh[32];
    const int64_t row = blockIdx.y, k = blockIdx.x;
    const int64_t len = (S + chunks - 1) / chunks, s0 = k * len;
    const int64_t s1 = s0 + len < S ? s0 + len : S;
    const T *r = gy + row * S;
    double acc = 0.0;
    for (int64_t s = s0 + threadIdx.x; s < s1; s += blockDim.x) acc += act_ld(r, s);
    acc = nnu_block_sum(acc, sh);
    if (threadIdx.x == 0) part[row * chunks + k] = acc;
}

/* gb[c] += sum over n and chunks, in a fixed order */
__global__ void k_bias_grad_finish(const double *part, float *gb, int64_t N, int64_t C,
                                   int chunks) {
    const int64_t c = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    if (c >= C) return;
    double t = 0.0;
    for (int64_t n = 0; n < N; n++)
        for (int k = 0; k < chunks; k++) t += part[(n * C + c) * chunks + k];
    gb[c] += (float)t;
}

/* gb[c] += sum over n, s of gy (N, C, S); gy of storage type st (ACT_*) */
static nnu_status bias_grad(int st, const void *gy, float *gb, int64_t N, int64_t C,
                            int64_t S) {
    nnu_cuda_ctx *c = nnu_cuda_ctx_get();
    NNU_CHECK(N * C <= 65535, NNU_STATUS_ERR_UNSUPPORTED,
              "conv bias gradient on cuda: N*C = %lld rows exceed the grid limit 65535",
              (long long)(N * C));
    const int chunks = nnu_cuda_chunks(N * C, S);
    void *part;
    NNU_TRY(nnu_cuda_buffer(NNU_CUDA_BUF_SCRATCH, (size_t)(N * C * chunks) * sizeof(double),
                            &part));
    const dim3 grid(chunks, (unsigned)(N * C));
    if (st == ACT_BF16)
        k_chan_partial<<<grid, NNU_CUDA_THREADS, 0, c->stream>>>((const __nv_bfloat16 *)gy,
                                                                 (double *)part, S, chunks);
    else if (st == ACT_F16)
        k_chan_partial<<<grid, NNU_CUDA_THREADS, 0, c->stream>>>((const __half *)gy,
                                                                 (double *)part, S, chunks);
    else
        k_chan_partial<<<grid, NNU_CUDA_THREADS, 0, c->stream>>>((const float *)gy,
                                                                 (double *)part, S, chunks);
    NNU_CU_LAUNCH("k_chan_partial");
    k_bias_grad_finish<<<(unsigned)((C + 127) / 128), 128, 0, c->stream>>>(
        (const double *)part, gb, N, C, chunks);
    NNU_CU_LAUNCH("k_bias_grad_finish");
    return NNU_STATUS_OK;
}

__device__ __forceinline__ void to_low(float v, __nv_bfloat16 *o) { *o = __float2bfloat16_rn(v); }
__device__ __forceinline__ void to_low(float v, __half *o) { *o = __float2half_rn(v); }
__device__ __forceinline__ float from_low(__nv_bfloat16 v) { return __bfloat162float(v); }
__device__ __forceinline__ float from_low(__half v) { return __half2float(v); }

template <typename T>
__global__ void k_to_low(const float *x, T *y, int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        to_low(x[i], y + i);
}

/* mode 0: y = low (+ b[c] if b), mode 1: y += low */
template <typename T>
__global__ void k_from_low(const T *x, float *y, const float *b, int64_t C, int64_t S,
                           int64_t n, int accumulate) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        float v = from_low(x[i]);
        if (accumulate) y[i] += v;
        else y[i] = b ? v + b[(i / S) % C] : v;
    }
}

/* y = low + b[c], one (n, c) row per blockIdx.y */
template <typename T>
__global__ void k_from_low_rows(const T *x, float *y, const float *b, int64_t C, int64_t S) {
    const float bc = b[blockIdx.y % C];
    const int64_t o = (int64_t)blockIdx.y * S;
    for (int64_t s = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; s < S;
         s += (int64_t)gridDim.x * blockDim.x)
        y[o + s] = from_low(x[o + s]) + bc;
}

/* x fp32 -> y in the 16-bit compute type of prec (bf16 for BF16 and BF16_ACT16) */
static nnu_status to_low_run(nnu_cuda_precision prec, const float *x, void *y, int64_t n) {
    cudaStream_t s = nnu_cuda_ctx_get()->stream;
    if (nnu_cuda_precision_compute(prec) == NNU_CUDA_BF16)
        k_to_low<__nv_bfloat16><<<nnu_cuda_blocks(n), NNU_CUDA_THREADS, 0, s>>>(
            x, (__nv_bfloat16 *)y, n);
    else
        k_to_low<__half><<<nnu_cuda_blocks(n), NNU_CUDA_THREADS, 0, s>>>(x, (__half *)y, n);
    NNU_CU_LAUNCH("k_to_low");
    return NNU_STATUS_OK;
}

static nnu_status from_low_run(nnu_cuda_precision prec, const void *x, float *y, const float *b,
                               int64_t C, int64_t S, int64_t n, int accumulate) {
    cudaStream_t s = nnu_cuda_ctx_get()->stream;
    const int bf = nnu_cuda_precision_compute(prec) == NNU_CUDA_BF16;
    if (b && !accumulate && n / S <= 65535) {
        const dim3 g = rows_grid(n / S, S);
        if (bf)
            k_from_low_rows<__nv_bfloat16><<<g, NNU_CUDA_THREADS, 0, s>>>(
                (const __nv_bfloat16 *)x, y, b, C, S);
        else
            k_from_low_rows<__half><<<g, NNU_CUDA_THREADS, 0, s>>>((const __half *)x, y, b, C, S);
        NNU_CU_LAUNCH("k_from_low_rows");
        return NNU_STATUS_OK;
    }
    if (bf)
        k_from_low<__nv_bfloat16><<<nnu_cuda_blocks(n), NNU_CUDA_THREADS, 0, s>>>(
            (const __nv_bfloat16 *)x, y, b, C, S, n, accumulate);
    else
        k_from_low<__half><<<nnu_cuda_blocks(n), NNU_CUDA_THREADS, 0, s>>>(
            (const __half *)x, y, b, C, S, n, accumulate);
    NNU_CU_LAUNCH("k_from_low");
    return NNU_STATUS_OK;
}

/* ---- running one primitive ---- */

/* The one place that executes a cuDNN primitive of entry e with the algorithm
 * chosen by choose_algo (its math type and workspace size):
 *   FWD:        a = cx data -> out = cy          (out = conv(a))
 *   BWD_DATA:   a = cy data -> out = cx          (out = conv^T(a))
 *   BWD_FILTER: a = cx, b = cy -> out = filter  (out = beta*out + dconv)
 * Operands are in e's data type (fp32, or bf16/fp16 for the low precisions);
 * FWD and BWD_DATA overwrite out (beta 0). Under the graph API the primitive runs
 * on its execution plan (built and autotuned on these operands at the first call);
 * a primitive without a plan falls back to the legacy algorithm below. */
static nnu_status exec_prim(conv_entry *e, int prim, const void *a, const void *b,
                            const void *w, void *out, float beta) {
    if (graph_wanted(e, prim)) {
        int ran = 0;
        NNU_TRY(graph_exec(e, prim, a, b, w, out, beta, &ran));
        if (ran) return NNU_STATUS_OK;
        NNU_TRY(legacy_choose(e, prim, e->prec));   /* no plan: graph_exec said so once */
    }
    nnu_cuda_ctx *c = nnu_cuda_ctx_get();
    void *ws = NULL;
    if (e->ws[prim]) NNU_TRY(nnu_cuda_buffer(NNU_CUDA_BUF_WORKSPACE, e->ws[prim], &ws));
    NNU_CUDNN(cudnnSetConvolutionMathType(e->cd, e->math[prim]));
    const float one = 1.0f, zero = 0.0f;
    if (prim == PRIM_FWD)
        NNU_CUDNN(cudnnConvolutionForward(c->cudnn, &one, e->cx, a, e->fw, w, e->cd,
                                          (cudnnConvolutionFwdAlgo_t)e->algo[prim], ws,
                                          e->ws[prim], &zero, e->cy, out));
    else if (prim == PRIM_BWD_DATA)
        NNU_CUDNN(cudnnConvolutionBackwardData(c->cudnn, &one, e->fw, w, e->cy, a, e->cd,
                                               (cudnnConvolutionBwdDataAlgo_t)e->algo[prim],
                                               ws, e->ws[prim], &zero, e->cx, out));
    else
        NNU_CUDNN(cudnnConvolutionBackwardFilter(c->cudnn, &one, e->cx, a, e->cy, b, e->cd,
                                                 (cudnnConvolutionBwdFilterAlgo_t)e->algo[prim],
                                                 ws, e->ws[prim], &beta, e->fw, out));
    return NNU_STATUS_OK;
}

/* FWD: a = cx src -> out = cy;  BWD_DATA: a = cy src -> out = cx;
 * BWD_FILTER: a = cx, b = cy, out = w (+=). bias (FWD/BWD_DATA outputs) may be NULL. */
static nnu_status run_prim(const nnu_conv_params *p, nnu_cuda_precision prec, int prim,
                           const float *a, const float *b, float *out, const float *w,
                           const float *bias) {
    conv_entry *e = NULL;
    NNU_TRY(entry_get(p, prec, &e));
    NNU_TRY(choose_algo(e, prim, prec));
    const nnu_cuda_precision cp = nnu_cuda_precision_compute(prec);
    const int low = cp == NNU_CUDA_BF16 || cp == NNU_CUDA_FP16;
    /* output channels/voxels for the bias */
    const int64_t oc = prim == PRIM_FWD ? e->ccy : e->ccx, os = prim == PRIM_FWD ? e->scy : e->scx;
    const int64_t nout = prim == PRIM_FWD ? e->ncy : prim == PRIM_BWD_DATA ? e->ncx : e->nw;
    if (nnu_cuda_precision_act16(prec)) {
        /* 16-bit storage: a, b and (FWD/BWD_DATA) out are bf16/fp16 activations in
         * e's data type; only the fp32 weights are converted (header comment) */
        NNU_CHECK(!p->f32_out, NNU_STATUS_ERR_UNSUPPORTED,
                  "%s on cuda:%s: an fp32 output (f32_out) needs a 1x1 stride-1 convolution "
                  "(the cuBLAS heads)", p->transposed ? "convt" : "conv",
                  nnu_cuda_precision_name(prec));
        void *lw;
        NNU_TRY(nnu_cuda_buffer(NNU_CUDA_BUF_LOW_W, (size_t)e->nw * 2, &lw));
        if (prim != PRIM_BWD_FILTER) {
            NNU_TRY(to_low_run(prec, w, lw, e->nw));
            NNU_TRY(exec_prim(e, prim, a, NULL, lw, out, 0.0f));
            return bias ? bias_add_st(act_type(prec), out, bias, oc, os, nout) : NNU_STATUS_OK;
        }
        /* the 16-bit weight gradient is written (beta 0), then accumulated in fp32 */
        NNU_TRY(exec_prim(e, prim, a, b, NULL, lw, 0.0f));
        return from_low_run(prec, lw, out, NULL, 0, 1, nout, 1);
    }
    if (!low) {
        NNU_TRY(exec_prim(e, prim, a, b, w, out, 1.0f));
        if (bias) NNU_TRY(bias_add(out, bias, oc, os, nout));
        return NNU_STATUS_OK;
    }
    /* low precision: operands into the LOW buffers (2 bytes per element) */
    void *lx, *ly, *lw;
    NNU_TRY(nnu_cuda_buffer(NNU_CUDA_BUF_LOW_A, (size_t)e->ncx * 2, &lx));
    NNU_TRY(nnu_cuda_buffer(NNU_CUDA_BUF_LOW_B, (size_t)e->ncy * 2, &ly));
    NNU_TRY(nnu_cuda_buffer(NNU_CUDA_BUF_LOW_W, (size_t)e->nw * 2, &lw));
    if (prim == PRIM_FWD) {
        NNU_TRY(to_low_run(prec, a, lx, e->ncx));
        NNU_TRY(to_low_run(prec, w, lw, e->nw));
        NNU_TRY(exec_prim(e, prim, lx, NULL, lw, ly, 0.0f));
        return from_low_run(prec, ly, out, bias, oc, os, nout, 0);
    }
    if (prim == PRIM_BWD_DATA) {
        NNU_TRY(to_low_run(prec, a, ly, e->ncy));
        NNU_TRY(to_low_run(prec, w, lw, e->nw));
        NNU_TRY(exec_prim(e, prim, ly, NULL, lw, lx, 0.0f));
        return from_low_run(prec, lx, out, bias, oc, os, nout, 0);
    }
    /* the low-precision weight gradient is written (beta 0), then accumulated in fp32 */
    NNU_TRY(to_low_run(prec, a, lx, e->ncx));
    NNU_TRY(to_low_run(prec, b, ly, e->ncy));
    NNU_TRY(exec_prim(e, prim, lx, ly, NULL, lw, 0.0f));
    return from_low_run(prec, lw, out, NULL, 0, 1, nout, 1);
}

/* ---- 1x1 heads on cuBLAS (row-major tensors seen as column-major matrices) ---- */

/* cuBLAS compute type for fp32 operands; with 16-bit operands (the -act16 modes)
 * gemm_run uses CUBLAS_COMPUTE_32F, which is fp32 accumulation on tensor cores for
 * bf16/fp16 A and B (the FAST_16BF/16F types are for fp32 A/B only) */
static cublasComputeType_t blas_compute(nnu_cuda_precision prec) {
    if (nnu_cuda_precision_act16(prec)) return CUBLAS_COMPUTE_32F;
    switch (prec) {
    case NNU_CUDA_TF32: return CUBLAS_COMPUTE_32F_FAST_TF32;
    case NNU_CUDA_BF16: return CUBLAS_COMPUTE_32F_FAST_16BF;
    case NNU_CUDA_FP16: return CUBLAS_COMPUTE_32F_FAST_16F;
    default:            return CUBLAS_COMPUTE_32F;
    }
}

/* cuBLAS data type of activation storage type st (ACT_*) */
static cudaDataType_t blas_type(int st) {
    return st == ACT_BF16 ? CUDA_R_16BF : st == ACT_F16 ? CUDA_R_16F : CUDA_R_32F;
}

/* dir 0: y = W x (+b);  dir 1: gx = W^T gy;  dir 2: gW += gy x^T, gb += sum gy.
 * x, gx are activation storage; y, gy too unless p->f32_out (a head: fp32 logits);
 * W, b, gW, gb fp32. With 16-bit storage W is converted into LOW_W and an fp32 gy
 * into LOW_B (A and B of a GEMM share one type), the weight gradient stays C fp32. */
static nnu_status gemm_run(const nnu_conv_params *p, nnu_cuda_precision prec, int dir,
                           const float *a, const float *b, float *out, const float *w,
                           float *bias) {
    nnu_cuda_ctx *c = nnu_cuda_ctx_get();
    const int64_t S = p->in[0] * p->in[1] * p->in[2];
    const int ci = (int)p->c_in, co = (int)p->c_out;
    NNU_CHECK(S < (int64_t)1 << 31, NNU_STATUS_ERR_UNSUPPORTED,
              "conv 1x1 (cuBLAS): %lld voxels per sample exceed int", (long long)S);
    const float one = 1.0f, zero = 0.0f;
    const cublasComputeType_t ct = blas_compute(prec);
    const cublasGemmAlgo_t alg = CUBLAS_GEMM_DEFAULT;
    /* storage types: xs of x/gx, ys of y/gy, ws of the W operand, gs of the gy operand */
    const int xs = act_type(prec), ys = p->f32_out ? ACT_F32 : xs;
    const void *wop = w, *gop = dir == 0 ? NULL : (dir == 1 ? a : b);
    int gs = ys;
    if (xs != ACT_F32) {
        void *lw;
        if (dir != 2) {
            NNU_TRY(nnu_cuda_buffer(NNU_CUDA_BUF_LOW_W, (size_t)ci * co * 2, &lw));
            NNU_TRY(to_low_run(prec, w, lw, (int64_t)ci * co));
            wop = lw;
        }
        if (dir != 0 && ys == ACT_F32) {   /* fp32 glogits -> 16-bit, as x */
            void *lg;
            NNU_TRY(nnu_cuda_buffer(NNU_CUDA_BUF_LOW_B, (size_t)(p->n * co * S) * 2, &lg));
            NNU_TRY(to_low_run(prec, (const float *)gop, lg, p->n * co * S));
            gop = lg;
            gs = xs;
        }
    }
    const cudaDataType_t tx = blas_type(xs), tw = blas_type(xs), ty = blas_type(ys);
    const cudaDataType_t tg = blas_type(gs);
    const size_t ex = xs == ACT_F32 ? 4 : 2, eg = gs == ACT_F32 ? 4 : 2;
    if (dir == 0) {
        /* Y^T (S x Co) = X^T (S x Ci) * W^T (Ci x Co), batched over n */
        NNU_CUBLAS(cublasGemmStridedBatchedEx(
            c->cublas, CUBLAS_OP_N, CUBLAS_OP_N, (int)S, co, ci, &one, a, tx, (int)S,
            (long long)ci * S, wop, tw, ci, 0, &zero, out, ty, (int)S,
            (long long)co * S, (int)p->n, ct, alg));
        if (bias) NNU_TRY(bias_add_st(ys, out, bias, co, S, p->n * co * S));
    } else if (dir == 1) {
        /* gX^T (S x Ci) = gY^T (S x Co) * W (Co x Ci) */
        NNU_CUBLAS(cublasGemmStridedBatchedEx(
            c->cublas, CUBLAS_OP_N, CUBLAS_OP_T, (int)S, ci, co, &one, gop, tg, (int)S,
            (long long)co * S, wop, tw, ci, 0, &zero, out, tx, (int)S,
            (long long)ci * S, (int)p->n, ct, alg));
    } else {
        /* gW^T (Ci x Co) += X (Ci x S) * gY^T (S x Co), one call per sample (sum over
         * n); gW is fp32 (C type 32F with 16-bit A and B) */
        for (int64_t n = 0; n < p->n; n++)
            NNU_CUBLAS(cublasGemmEx(c->cublas, CUBLAS_OP_T, CUBLAS_OP_N, ci, co, (int)S, &one,
                                    (const char *)a + (size_t)(n * ci * S) * ex, tx, (int)S,
                                    (const char *)gop + (size_t)(n * co * S) * eg, tg, (int)S,
                                    &one, out, CUDA_R_32F, ci, ct, alg));
        /* the bias gradient sums the caller's gy (fp32 logit gradients of a head) */
        if (bias) NNU_TRY(bias_grad(ys, b, bias, p->n, co, S));
    }
    return NNU_STATUS_OK;
}

/* ---- the six slots ---- */

static nnu_status check(const nnu_conv_params *p, int transposed) {
    NNU_CHECK(p->transposed == transposed, NNU_STATUS_ERR_ARG,
              "%s: params describe a %s convolution", transposed ? "convt" : "conv",
              transposed ? "plain" : "transposed");
    NNU_CHECK(p->n > 0 && p->c_in > 0 && p->c_out > 0 && p->out[0] > 0, NNU_STATUS_ERR_ARG,
              "%s: params not initialised (use nnu_conv_params_init)",
              transposed ? "convt" : "conv");
    NNU_CHECK(p->cblk_in == 1 && p->cblk_out == 1, NNU_STATUS_ERR_UNSUPPORTED,
              "%s on cuda: activation layout blocks (%d, %d); the CUDA backend needs plain "
              "layouts (cblk 1)", transposed ? "convt" : "conv", p->cblk_in, p->cblk_out);
    return NNU_STATUS_OK;
}

static int use_gemm(const nnu_conv_params *p) {
    return !p->transposed && p->kernel[0] == 1 && p->kernel[1] == 1 && p->kernel[2] == 1 &&
           p->stride[0] == 1 && p->stride[1] == 1 && p->stride[2] == 1;
}

nnu_status nnu_conv_fwd_cuda(const nnu_backend *be, const float *x, float *y, const float *w,
                             const float *b, const nnu_conv_params *p) {
    NNU_TRY(check(p, 0));
    const float *bias = p->has_bias ? b : NULL;
    if (use_gemm(p)) return gemm_run(p, nnu_cuda_prec(be), 0, x, NULL, y, w, (float *)bias);
    return run_prim(p, nnu_cuda_prec(be), PRIM_FWD, x, NULL, y, w, bias);
}

nnu_status nnu_conv_bwd_data_cuda(const nnu_backend *be, const float *gy, float *gx,
                                  const float *w, const nnu_conv_params *p) {
    NNU_TRY(check(p, 0));
    if (use_gemm(p)) return gemm_run(p, nnu_cuda_prec(be), 1, gy, NULL, gx, w, NULL);
    return run_prim(p, nnu_cuda_prec(be), PRIM_BWD_DATA, gy, NULL, gx, w, NULL);
}

nnu_status nnu_conv_bwd_params_cuda(const nnu_backend *be, const float *x, const float *gy,
                                    float *gw, float *gb, const nnu_conv_params *p) {
    NNU_TRY(check(p, 0));
    if (use_gemm(p)) return gemm_run(p, nnu_cuda_prec(be), 2, x, gy, gw, NULL, gb);
    NNU_TRY(run_prim(p, nnu_cuda_prec(be), PRIM_BWD_FILTER, x, gy, gw, NULL, NULL));
    if (gb) {
        const int64_t so = p->out[0] * p->out[1] * p->out[2];
        NNU_TRY(bias_grad(act_type(nnu_cuda_prec(be)), gy, gb, p->n, p->c_out, so));
    }
    return NNU_STATUS_OK;
}

nnu_status nnu_convt_fwd_cuda(const nnu_backend *be, const float *x, float *y, const float *w,
                              const float *b, const nnu_conv_params *p) {
    NNU_TRY(check(p, 1));
    return run_prim(p, nnu_cuda_prec(be), PRIM_BWD_DATA, x, NULL, y, w, p->has_bias ? b : NULL);
}

nnu_status nnu_convt_bwd_data_cuda(const nnu_backend *be, const float *gy, float *gx,
                                   const float *w, const nnu_conv_params *p) {
    NNU_TRY(check(p, 1));
    return run_prim(p, nnu_cuda_prec(be), PRIM_FWD, gy, NULL, gx, w, NULL);
}

nnu_status nnu_convt_bwd_params_cuda(const nnu_backend *be, const float *x, const float *gy,
                                     float *gw, float *gb, const nnu_conv_params *p) {
    NNU_TRY(check(p, 1));
    NNU_TRY(run_prim(p, nnu_cuda_prec(be), PRIM_BWD_FILTER, gy, x, gw, NULL, NULL));
    if (gb) {
        const int64_t so = p->out[0] * p->out[1] * p->out[2];
        NNU_TRY(bias_grad(act_type(nnu_cuda_prec(be)), gy, gb, p->n, p->c_out, so));
    }
    return NNU_STATUS_OK;
}

/* ---- upload into activation storage (the -act16 tables' upload_act slot) ---- */

/* The fp32 host values are copied into the LOW_A buffer (fp32 staging; the -act16
 * tables never use LOW_A for convolution operands), then converted into dst by one
 * kernel. The copy is synchronous, so host may be reused on return; the conversion
 * is ordered before every later op on the stream. fp32 storage: a plain copy. */
nnu_status nnu_cuda_upload_act(const nnu_backend *be, void *dst, const float *host, int64_t n) {
    const nnu_cuda_precision prec = nnu_cuda_prec(be);
    if (n <= 0) return NNU_STATUS_OK;
    if (!nnu_cuda_precision_act16(prec))
        return nnu_cuda_memcpy(be, dst, host, (size_t)n * sizeof(float));
    void *stage;
    NNU_TRY(nnu_cuda_buffer(NNU_CUDA_BUF_LOW_A, (size_t)n * sizeof(float), &stage));
    NNU_TRY(nnu_cuda_memcpy(be, stage, host, (size_t)n * sizeof(float)));
    return to_low_run(prec, (const float *)stage, dst, n);
}
