/* cuda_common.h: what every .cu file of the CUDA backend shares (C++ only).
 *   - the check macros (R17): NNU_CU (CUDA runtime), NNU_CU_LAUNCH (after every
 *     kernel launch), NNU_CUDNN, NNU_CUBLAS; each records the API name and
 *     file:line in the thread-local status message and returns the status;
 *   - the device context (stream, handles, grow-once buffers) of cuda_context.cu;
 *   - launch geometry and block reductions used by the kernels.
 * No Lua here (R4); the C headers of the core are included as C. */
#ifndef NNU_CUDA_COMMON_H
#define NNU_CUDA_COMMON_H

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

extern "C" {                 /* the core's headers are C and carry no guards of their own */
#include "nnu_backend.h"
#include "nnu_status.h"
}
#include "nnu_cuda.h"
#include "ops_cuda.h"

#define NNU_CUDA_STR_(x) #x
#define NNU_CUDA_STR(x) NNU_CUDA_STR_(x)

/* ---- error checks: the message names the API (text of the call up to '(') ---- */
nnu_status nnu_cuda_fail_rt(cudaError_t e, const char *call, const char *file, int line);
nnu_status nnu_cuda_fail_dnn(cudnnStatus_t e, const char *call, const char *file, int line);
nnu_status nnu_cuda_fail_blas(cublasStatus_t e, const char *call, const char *file, int line);

#define NNU_CU(call) do { cudaError_t e_ = (call); \
    if (e_ != cudaSuccess) return nnu_cuda_fail_rt(e_, #call, __FILE__, __LINE__); } while (0)
#define NNU_CU_LAUNCH(kernel_name) do { cudaError_t e_ = cudaGetLastError(); \
    if (e_ != cudaSuccess) return nnu_cuda_fail_rt(e_, "launch of " kernel_name, __FILE__, __LINE__); \
    } while (0)
#define NNU_CUDNN(call) do { cudnnStatus_t e_ = (call); \
    if (e_ != CUDNN_STATUS_SUCCESS) return nnu_cuda_fail_dnn(e_, #call, __FILE__, __LINE__); } while (0)
#define NNU_CUBLAS(call) do { cublasStatus_t e_ = (call); \
    if (e_ != CUBLAS_STATUS_SUCCESS) return nnu_cuda_fail_blas(e_, #call, __FILE__, __LINE__); \
    } while (0)

/* ---- the device context (one device, one stream) ---- */
typedef struct nnu_cuda_ctx {
    int            device, sm_count;
    cudaStream_t   stream;
    cudnnHandle_t  cudnn;
    cublasHandle_t cublas;
} nnu_cuda_ctx;

/* the initialised context (callers are ops, reached only through a table that
 * nnu_backend_cuda() returned, so init has succeeded) */
nnu_cuda_ctx *nnu_cuda_ctx_get(void);

/* Grow-once device buffers owned by the context (R8/R9: ops never allocate in a
 * steady state). A buffer is reallocated only when a larger request arrives,
 * which happens while the first step visits every shape. Stream order makes
 * reuse by consecutive ops safe. */
enum {
    NNU_CUDA_BUF_WORKSPACE = 0,  /* cuDNN workspace */
    NNU_CUDA_BUF_SCRATCH,        /* reduction partials of instnorm, loss, sumsq, bias grads */
    NNU_CUDA_BUF_LOW_A,          /* bf16/fp16 copies of convolution operands */
    NNU_CUDA_BUF_LOW_B,
    NNU_CUDA_BUF_LOW_W,
    NNU_CUDA_BUF_HOST,           /* pinned host staging for small results */
    NNU_CUDA_BUF_COUNT
};
nnu_status nnu_cuda_buffer(int which, size_t nbytes, void **out);

/* precision of the table the op was called through */
static inline nnu_cuda_precision nnu_cuda_prec(const nnu_backend *be) {
    int p = nnu_cuda_precision_of(be);
    return p < 0 ? NNU_CUDA_FP32 : (nnu_cuda_precision)p;
}

/* ---- launch geometry ---- */
enum { NNU_CUDA_THREADS = 256 };

/* blocks for a grid-stride loop over n elements: enough to fill the device a few
 * times, never more than needed */
static inline unsigned nnu_cuda_blocks(int64_t n, int per_thread = 1) {
    int64_t want = (n + (int64_t)NNU_CUDA_THREADS * per_thread - 1) /
                   ((int64_t)NNU_CUDA_THREADS * per_thread);
    int64_t cap = (int64_t)nnu_cuda_ctx_get()->sm_count * 16;
    if (want > cap) want = cap;
    return (unsigned)(want < 1 ? 1 : want);
}

/* Chunks per row for a reduction over `len` elements in each of `rows` rows:
 * enough blocks in total (about 4 per SM), at least 2048 elements per chunk. */
static inline int nnu_cuda_chunks(int64_t rows, int64_t len) {
    int64_t want = (4 * (int64_t)nnu_cuda_ctx_get()->sm_count + rows - 1) / rows;
    int64_t cap = (len + 2047) / 2048;
    if (want > cap) want = cap;
    if (want > 1024) want = 1024;
    return (int)(want < 1 ? 1 : want);
}

/* Block-wide sum of a double (all threads get the result). blockDim.x must be a
 * multiple of 32 and at most 1024; sh holds 32 doubles. */
__device__ __forceinline__ double nnu_block_sum(double v, double *sh) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, nw = blockDim.x >> 5;
    __syncthreads();                       /* sh may still be read by a previous call */
    if (lane == 0) sh[warp] = v;
    __syncthreads();
    double t = 0.0;
    for (int i = 0; i < nw; i++) t += sh[i];  /* fixed order: deterministic */
    return t;
}

/* channel of flat activation index i (layout cblk, C channels, S voxels) */
__device__ __forceinline__ int64_t nnu_act_channel(int64_t i, int64_t C, int64_t S, int cblk) {
    if (cblk == 1) return (i / S) % C;
    return ((i / (S * 16)) % (C / 16)) * 16 + (i & 15);
}

#endif
