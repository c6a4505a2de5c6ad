/* nnu_cuda.h: the CUDA backend's public C API (STYLE R4, R18).
 *
 * The CUDA twin of every CPU op fills a struct nnu_backend with the same
 * signatures as nnu_backend_cpu() (the .cu files of kernels/, suffix _cuda). Pointers passed to
 * its ops are device pointers from its memory ops (be->mem: a caching allocator,
 * zero-filled like nnu_tensor_new). Host <-> device copies go through be->memcpy_
 * (direction inferred by unified addressing; synchronous). Everything runs on one
 * stream of device 0, so consecutive ops are ordered without synchronisation.
 *
 * Precision (chosen per table, parameters and every non-convolution op stay fp32):
 *   FP32  convolutions and GEMMs in strict fp32 (no tensor cores),
 *   TF32  fp32 data, tensor cores with tf32 rounding (PyTorch's cuDNN default),
 *   BF16  convolution inputs rounded to bf16, fp32 accumulation, fp32 outputs,
 *   FP16  the same in fp16; pair it with loss scaling (docs/cuda.md).
 * Activations and master weights are fp32 in memory in these four modes. The
 * ACT16 modes compute as BF16/FP16 but store activations and activation gradients
 * in 16 bits (act_bytes 2; the contract is in core/nnu_backend.h), so convolutions
 * read and write them without conversion passes:
 *   BF16_ACT16  "bf16-act16", table "cuda:0:bf16-act16"
 *   FP16_ACT16  "fp16-act16", table "cuda:0:fp16-act16" (needs loss scaling).
 *
 * Errors: every CUDA/cuDNN/cuBLAS call is checked; a failure returns
 * NNU_STATUS_ERR_CUDA or NNU_STATUS_ERR_CUDNN with the API name, file:line and a
 * HINT where the user can act (nnu_last_error()). Nothing exits or aborts. */
#ifndef NNU_CUDA_H
#define NNU_CUDA_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "nnu_backend.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum nnu_cuda_precision {
    NNU_CUDA_FP32 = 0,
    NNU_CUDA_TF32,
    NNU_CUDA_BF16,
    NNU_CUDA_FP16,
    NNU_CUDA_BF16_ACT16,        /* BF16 compute, 16-bit activation storage */
    NNU_CUDA_FP16_ACT16,        /* FP16 compute, 16-bit activation storage */
    NNU_CUDA_PRECISION_COUNT
} nnu_cuda_precision;

/* the compute type of a precision: FP32 | TF32 | BF16 | FP16 (an ACT16 mode
 * computes as its 16-bit type); code that asks "is this bf16?" asks this */
static inline nnu_cuda_precision nnu_cuda_precision_compute(nnu_cuda_precision prec) {
    return prec == NNU_CUDA_BF16_ACT16 ? NNU_CUDA_BF16
         : prec == NNU_CUDA_FP16_ACT16 ? NNU_CUDA_FP16 : prec;
}
/* 1 if activations are stored in 16 bits (act_bytes 2) */
static inline int nnu_cuda_precision_act16(nnu_cuda_precision prec) {
    return prec == NNU_CUDA_BF16_ACT16 || prec == NNU_CUDA_FP16_ACT16;
}

/* number of usable CUDA devices; 0 when there is none or no driver (never fails) */
int nnu_cuda_device_count(void);

/* Initialises device 0 once (stream, cuDNN and cuBLAS handles, version checks)
 * and returns the backend table of precision prec (name "cuda:0", "cuda:0:tf32",
 * "cuda:0:bf16", "cuda:0:fp16", "cuda:0:bf16-act16", "cuda:0:fp16-act16").
 * ERR_CUDA with a HINT when no GPU is usable. */
nnu_status nnu_backend_cuda(nnu_cuda_precision prec, const nnu_backend **out);

/* precision of a CUDA table (-1 for other backends) and its name ("fp32", ...) */
int         nnu_cuda_precision_of(const nnu_backend *be);
const char *nnu_cuda_precision_name(nnu_cuda_precision prec);
/* parses "fp32" | "tf32" | "bf16" | "fp16" | "bf16-act16" | "fp16-act16"; 1 if known */
int         nnu_cuda_precision_from_name(const char *name, nnu_cuda_precision *out);

/* the caching device allocator (also be->mem of every CUDA table) */
const nnu_memory_ops *nnu_cuda_memory(void);

/* stream-ordered memset of device memory */
nnu_status nnu_cuda_memset(void *dst, int value, size_t nbytes);

typedef struct nnu_cuda_mem_stats {
    size_t  bytes_in_use;      /* handed out by alloc, not yet freed */
    size_t  bytes_cached;      /* held in the free lists */
    size_t  peak_in_use;
    int64_t device_mallocs;    /* cudaMalloc calls so far (the cache makes this small) */
} nnu_cuda_mem_stats;
void nnu_cuda_get_mem_stats(nnu_cuda_mem_stats *out);
/* returns every cached free block to the driver */
nnu_status nnu_cuda_empty_cache(void);

/* "NVIDIA H200 (sm_90, 132 SMs), driver 13.0, cuDNN 91900, cuBLAS 130100" after init */
const char *nnu_cuda_device_info(void);

/* ---- cuDNN convolution API (conv_cudnn.cu) ----
 * "legacy": cudnnFind* + cudnnConvolution* (the default); "graph": the cuDNN graph
 * (backend) API, engine heuristics + autotuned execution plans per shape. Chosen by
 * NNU_CUDNN_API=legacy|graph at the first convolution, or by nnu_cuda_conv_set_api,
 * which also empties the convolution cache (descriptors, algorithms, plans; after
 * a stream synchronisation) so that later calls choose again. ERR_ARG for an
 * unknown name. */
const char *nnu_cuda_conv_api(void);
nnu_status  nnu_cuda_conv_set_api(const char *name);
/* primitives (cached shape x fwd/bwd_data/bwd_filter) running on a graph-API plan,
 * and those that found none and run on the legacy API (each reported on stderr) */
int nnu_cuda_conv_graph_plans(void);
int nnu_cuda_conv_graph_fallbacks(void);
/* CI check that needs cuDNN but no GPU: builds and finalizes, for each primitive of
 * p in precision prec (BWD_FILTER with beta 0 and 1), the graph path's tensor,
 * convolution and operation descriptors exactly as it does on a GPU (the operation
 * graph and what follows need a cuDNN handle). *checked = descriptor sets finalized
 * (0 for the 1x1 heads, which run on cuBLAS). */
nnu_status nnu_cuda_conv_graph_describe_check(const nnu_conv_params *p, int prec, int *checked);

/* ---- per-op profiler (cuda_profile.c) ----
 * With NNU_CUDA_PROFILE=1 in the environment, nnu_backend_cuda() returns a wrapped
 * copy of the table (same name and precision) whose slots time every op with CUDA
 * events on the stream (no synchronisation per op; collected when read) and call
 * the real op. Times aggregate per op and geometry. One thread at a time. */
int nnu_cuda_profile_enabled(void);                    /* NNU_CUDA_PROFILE=1, read once */
/* the backend's one stream (a cudaStream_t; NULL before init), for events from C */
struct CUstream_st *nnu_cuda_stream(void);
/* the profiling copy of CUDA table real (itself if already one); NULL for others */
const nnu_backend *nnu_cuda_profile_wrap(const nnu_backend *real);
/* precision of a profiling table, -1 for any other (nnu_cuda_precision_of uses it) */
int nnu_cuda_profile_precision_of(const nnu_backend *be);
/* drops every time collected so far (after the warm-up) */
nnu_status nnu_cuda_profile_reset(void);
/* lines "profile <op> <geometry> calls total_ms mean_ms %total", sorted by total,
 * then a subtotal per op ("profile op <op> ...") and the total */
nnu_status nnu_cuda_profile_report(FILE *f);
/* calls of op (nnu_op_name) since the last reset, -1 on a CUDA error */
int64_t nnu_cuda_profile_calls(const char *op);

#ifdef __cplusplus
}
#endif

#endif
