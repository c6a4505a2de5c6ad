/* cuda_context.cu: device 0's context and the caching allocator of the CUDA backend.
 *
 *   init      cudaGetDeviceCount -> cudaSetDevice(0) -> one non-blocking stream,
 *             one cuDNN and one cuBLAS handle bound to it; library versions are
 *             checked against the ones compiled in (R17), with a HINT.
 *   errors    nnu_cuda_fail_*: "<api>: <error name> (<text>)" + HINT into the
 *             thread-local status (nnu_fail adds file:line).
 *   allocator (nnu_cuda_memory_ops) free lists of device blocks: sizes rounded to
 *             512 B (small) or 2 MiB (large), best fit within 2x, cudaMalloc only
 *             on a miss; on cudaErrorMemoryAllocation the cache is emptied and the
 *             request retried once. Blocks are zero-filled (stream-ordered), as
 *             nnu_tensor_new promises. One stream: a block freed and handed out
 *             again is only touched after the earlier work on it (stream order).
 *   buffers   grow-once workspaces (cuda_common.h NNU_CUDA_BUF_*). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_common.h"

static nnu_cuda_ctx ctx;
static int ctx_state;                 /* 0: not tried, 1: ready, -1: failed */
static nnu_status ctx_status;
static char ctx_error[512];
static char device_info[256];
static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;

nnu_cuda_ctx *nnu_cuda_ctx_get(void) { return &ctx; }
const char *nnu_cuda_device_info(void) { return device_info; }
cudaStream_t nnu_cuda_stream(void) { return ctx.stream; }

/* ---- errors ---- */

static int api_len(const char *call) {
    int n = 0;
    while (call[n] && call[n] != '(') n++;
    return n;
}

nnu_status nnu_cuda_fail_rt(cudaError_t e, const char *call, const char *file, int line) {
    const char *hint = "";
    if (e == cudaErrorMemoryAllocation)
        hint = "\nHINT: the GPU is out of memory: lower the batch or patch size, or free other "
               "processes on the card (nvidia-smi)";
    else if (e == cudaErrorNoDevice || e == cudaErrorInsufficientDriver)
        hint = "\nHINT: no usable GPU: check nvidia-smi, CUDA_VISIBLE_DEVICES, and that the "
               "driver supports CUDA " NNU_CUDA_STR(CUDART_VERSION) " (or run with -device cpu)";
    cudaGetLastError();                   /* clear a sticky-free error for the next call */
    return nnu_fail(NNU_STATUS_ERR_CUDA, file, line, "%.*s: %s (%s)%s", api_len(call), call,
                    cudaGetErrorName(e), cudaGetErrorString(e), hint);
}

nnu_status nnu_cuda_fail_dnn(cudnnStatus_t e, const char *call, const char *file, int line) {
    const char *hint = "";
    if (e == CUDNN_STATUS_NOT_SUPPORTED)
        hint = "\nHINT: cuDNN has no kernel for this shape/precision: try another precision "
               "(fp32/tf32)";
    return nnu_fail(NNU_STATUS_ERR_CUDNN, file, line, "%.*s: %s%s", api_len(call), call,
                    cudnnGetErrorString(e), hint);
}

nnu_status nnu_cuda_fail_blas(cublasStatus_t e, const char *call, const char *file, int line) {
    return nnu_fail(NNU_STATUS_ERR_CUDA, file, line, "%.*s: %s (%s)", api_len(call), call,
                    cublasGetStatusName(e), cublasGetStatusString(e));
}

/* ---- init ---- */

int nnu_cuda_device_count(void) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError();
        return 0;
    }
    return n;
}

static nnu_status init_once(void) {
    int n = 0;
    NNU_CU(cudaGetDeviceCount(&n));
    NNU_CHECK(n > 0, NNU_STATUS_ERR_CUDA,
              "cudaGetDeviceCount: no CUDA device\nHINT: run with -device cpu, or check "
              "nvidia-smi and CUDA_VISIBLE_DEVICES");
    int drv = 0, rt = 0;
    NNU_CU(cudaDriverGetVersion(&drv));
    NNU_CU(cudaRuntimeGetVersion(&rt));
    NNU_CHECK(drv >= rt, NNU_STATUS_ERR_CUDA,
              "cudaDriverGetVersion: driver supports CUDA %d.%d, runtime is %d.%d\nHINT: update "
              "the NVIDIA driver", drv / 1000, drv % 1000 / 10, rt / 1000, rt % 1000 / 10);
    size_t dnn = cudnnGetVersion();
    NNU_CHECK(dnn / 10000 == CUDNN_MAJOR && dnn >= 90000, NNU_STATUS_ERR_CUDNN,
              "cudnnGetVersion: cuDNN %zu loaded, built against major %d\nHINT: put a cuDNN "
              "%d.x libcudnn.so.%d first on LD_LIBRARY_PATH", dnn, CUDNN_MAJOR, CUDNN_MAJOR,
              CUDNN_MAJOR);
    ctx.device = 0;
    NNU_CU(cudaSetDevice(0));
    cudaDeviceProp prop;
    NNU_CU(cudaGetDeviceProperties(&prop, 0));
    ctx.sm_count = prop.multiProcessorCount;
    NNU_CU(cudaStreamCreateWithFlags(&ctx.stream, cudaStreamNonBlocking));
    NNU_CUDNN(cudnnCreate(&ctx.cudnn));
    NNU_CUDNN(cudnnSetStream(ctx.cudnn, ctx.stream));
    NNU_CUBLAS(cublasCreate(&ctx.cublas));
    NNU_CUBLAS(cublasSetStream(ctx.cublas, ctx.stream));
    int blas = 0;
    NNU_CUBLAS(cublasGetVersion(ctx.cublas, &blas));
    snprintf(device_info, sizeof device_info,
             "%s (sm_%d%d, %d SMs, %.1f GiB), driver CUDA %d.%d, runtime %d.%d, cuDNN %zu, "
             "cuBLAS %d", prop.name, prop.major, prop.minor, prop.multiProcessorCount,
             (double)prop.totalGlobalMem / (1 << 30), drv / 1000, drv % 1000 / 10, rt / 1000,
             rt % 1000 / 10, dnn, blas);
    return NNU_STATUS_OK;
}

nnu_status nnu_cuda_init(void) {
    pthread_mutex_lock(&init_lock);
    if (ctx_state == 0) {
        ctx_status = init_once();
        ctx_state = ctx_status == NNU_STATUS_OK ? 1 : -1;
        if (ctx_state < 0) snprintf(ctx_error, sizeof ctx_error, "%s", nnu_last_error());
    }
    nnu_status st = ctx_status;
    pthread_mutex_unlock(&init_lock);
    if (st != NNU_STATUS_OK)  /* same message on every later call, from any thread */
        return NNU_FAIL(st, "CUDA backend unavailable: %s", ctx_error);
    return NNU_STATUS_OK;
}

nnu_status nnu_cuda_sync(const nnu_backend *be) {
    (void)be;
    NNU_CU(cudaStreamSynchronize(ctx.stream));
    return NNU_STATUS_OK;
}

nnu_status nnu_cuda_memcpy(const nnu_backend *be, void *dst, const void *src, size_t nbytes) {
    (void)be;
    if (nbytes == 0) return NNU_STATUS_OK;
    NNU_CU(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDefault, ctx.stream));
    NNU_CU(cudaStreamSynchronize(ctx.stream));  /* host memory may be read right after */
    return NNU_STATUS_OK;
}

nnu_status nnu_cuda_memset(void *dst, int value, size_t nbytes) {
    if (nbytes == 0) return NNU_STATUS_OK;
    NNU_CU(cudaMemsetAsync(dst, value, nbytes, ctx.stream));
    return NNU_STATUS_OK;
}

nnu_status nnu_cuda_memset_slot(const nnu_backend *be, void *dst, int value, size_t nbytes) {
    (void)be;
    return nnu_cuda_memset(dst, value, nbytes);
}

/* ---- caching allocator ---- */

typedef struct block { void *ptr; size_t size; int in_use; } block;
static pthread_mutex_t alloc_lock = PTHREAD_MUTEX_INITIALIZER;
static block *blocks;
static int n_blocks, cap_blocks;
static nnu_cuda_mem_stats mstats;

static size_t round_size(size_t n) {
    if (n < ((size_t)1 << 20)) return (n + 511) & ~(size_t)511;
    return (n + ((size_t)2 << 20) - 1) & ~(((size_t)2 << 20) - 1);
}

/* frees every cached block; alloc_lock held */
static cudaError_t trim_locked(void) {
    cudaError_t err = cudaSuccess;
    int j = 0;
    for (int i = 0; i < n_blocks; i++) {
        if (blocks[i].in_use) { blocks[j++] = blocks[i]; continue; }
        cudaError_t e = cudaFree(blocks[i].ptr);
        if (e != cudaSuccess) err = e;
        mstats.bytes_cached -= blocks[i].size;
    }
    n_blocks = j;
    return err;
}

static void *cuda_alloc(size_t nbytes, void *c) {
    (void)c;
    if (nnu_cuda_init() != NNU_STATUS_OK) return NULL;
    const size_t want = round_size(nbytes ? nbytes : 1);
    pthread_mutex_lock(&alloc_lock);
    int best = -1;
    for (int i = 0; i < n_blocks; i++)
        if (!blocks[i].in_use && blocks[i].size >= want && blocks[i].size <= 2 * want &&
            (best < 0 || blocks[i].size < blocks[best].size))
            best = i;
    void *p = NULL;
    if (best >= 0) {
        blocks[best].in_use = 1;
        p = blocks[best].ptr;
        mstats.bytes_cached -= blocks[best].size;
        mstats.bytes_in_use += blocks[best].size;
    } else {
        cudaError_t e = cudaMalloc(&p, want);
        if (e == cudaErrorMemoryAllocation) {
            cudaGetLastError();
            trim_locked();
            e = cudaMalloc(&p, want);
        }
        if (e != cudaSuccess) {
            nnu_cuda_fail_rt(e, "cudaMalloc", __FILE__, __LINE__);
            pthread_mutex_unlock(&alloc_lock);
            return NULL;
        }
        mstats.device_mallocs++;
        if (n_blocks == cap_blocks) {
            int nc = cap_blocks ? 2 * cap_blocks : 64;
            block *nb = (block *)realloc(blocks, (size_t)nc * sizeof *nb);
            if (!nb) {
                cudaFree(p);
                pthread_mutex_unlock(&alloc_lock);
                return NULL;
            }
            blocks = nb;
            cap_blocks = nc;
        }
        blocks[n_blocks++] = (block){p, want, 1};
        mstats.bytes_in_use += want;
    }
    if (mstats.bytes_in_use > mstats.peak_in_use) mstats.peak_in_use = mstats.bytes_in_use;
    pthread_mutex_unlock(&alloc_lock);
    if (cudaMemsetAsync(p, 0, nbytes ? nbytes : 1, ctx.stream) != cudaSuccess) {
        cudaGetLastError();
        return NULL;
    }
    return p;
}

static void cuda_free(void *p, void *c) {
    (void)c;
    if (!p) return;
    pthread_mutex_lock(&alloc_lock);
    for (int i = n_blocks - 1; i >= 0; i--)
        if (blocks[i].ptr == p && blocks[i].in_use) {
            blocks[i].in_use = 0;
            mstats.bytes_in_use -= blocks[i].size;
            mstats.bytes_cached += blocks[i].size;
            break;
        }
    pthread_mutex_unlock(&alloc_lock);
}

extern "C" const nnu_memory_ops nnu_cuda_memory_ops = {"cuda:0", cuda_alloc, cuda_free, NULL, 0};

const nnu_memory_ops *nnu_cuda_memory(void) { return &nnu_cuda_memory_ops; }

void nnu_cuda_get_mem_stats(nnu_cuda_mem_stats *out) {
    pthread_mutex_lock(&alloc_lock);
    *out = mstats;
    pthread_mutex_unlock(&alloc_lock);
}

nnu_status nnu_cuda_empty_cache(void) {
    pthread_mutex_lock(&alloc_lock);
    cudaError_t e = trim_locked();
    pthread_mutex_unlock(&alloc_lock);
    NNU_CU(e);
    return NNU_STATUS_OK;
}

/* ---- grow-once buffers ---- */

static void *buf_ptr[NNU_CUDA_BUF_COUNT];
static size_t buf_size[NNU_CUDA_BUF_COUNT];

nnu_status nnu_cuda_buffer(int which, size_t nbytes, void **out) {
    if (nbytes > buf_size[which]) {
        size_t want = round_size(nbytes + nbytes / 4);   /* headroom: fewer regrowths */
        /* the old buffer goes first: until the new one exists the size is 0, so a
         * failed growth is never followed by a smaller request that gets NULL with OK
         * (graph_trials in conv_cudnn_graph.inc skips a candidate on OOM and goes on) */
        buf_size[which] = 0;
        if (which == NNU_CUDA_BUF_HOST) {
            if (buf_ptr[which]) NNU_CU(cudaFreeHost(buf_ptr[which]));
            buf_ptr[which] = NULL;
            NNU_CU(cudaMallocHost(&buf_ptr[which], want));
        } else {
            /* the old buffer may still be read by queued work: the allocator's
             * stream order covers reuse, so it simply goes back to the cache */
            cuda_free(buf_ptr[which], NULL);
            buf_ptr[which] = cuda_alloc(want, NULL);
            NNU_CHECK(buf_ptr[which], NNU_STATUS_ERR_OOM,
                      "CUDA backend: cannot allocate a %zu-byte work buffer (%s)", want,
                      nnu_last_error());
        }
        buf_size[which] = want;
    }
    *out = buf_ptr[which];
    return NNU_STATUS_OK;
}

/* ---- backend stats: cuDNN plans cached (reorders do not exist here) ---- */
extern int nnu_cuda_conv_cache_entries(void);

void nnu_cuda_get_stats(const nnu_backend *be, nnu_backend_stats *out) {
    (void)be;
    out->reorders = 0;
    out->primitives = nnu_cuda_conv_cache_entries();
}
