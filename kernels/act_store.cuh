/* act_store.cuh: element access to activation storage for the CUDA kernels
 * (contract: core/nnu_backend.h, "Activation storage"). A stored activation is a
 * float, an __nv_bfloat16 or an __half; kernels are templates over that storage
 * type T, load elements as float, compute in fp32 and round once on store
 * (round to nearest even, __float2bfloat16_rn / __float2half_rn). Defines:
 *   act_ld(p, i)          p[i] as float
 *   act_st(p, i, v)       p[i] = v rounded to T
 *   act_ld4 / act_st4     4 consecutive elements p[i..i+3]; i % 4 == 0 and p
 *                         16-byte aligned (float4) or 8-byte aligned (2 x 2 halves):
 *                         rows of S % 4 == 0 elements in allocator/arena memory
 *   ACT_F32 | ACT_BF16 | ACT_F16 and act_type(prec): the storage type of a table
 *   (host side), for the one switch per op that picks the template.
 * The float instantiations are the fp32-storage code paths (same loads, same
 * arithmetic), so the four fp32-storage tables are unchanged by the templates. */
#ifndef NNU_ACT_STORE_CUH
#define NNU_ACT_STORE_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "cuda_common.h"

enum { ACT_F32 = 0, ACT_BF16, ACT_F16 };

/* storage type of the activations of a table of precision prec */
static inline int act_type(nnu_cuda_precision prec) {
    if (!nnu_cuda_precision_act16(prec)) return ACT_F32;
    return nnu_cuda_precision_compute(prec) == NNU_CUDA_BF16 ? ACT_BF16 : ACT_F16;
}

__device__ __forceinline__ float act_ld(const float *p, int64_t i) { return p[i]; }
__device__ __forceinline__ float act_ld(const __nv_bfloat16 *p, int64_t i) {
    return __bfloat162float(p[i]);
}
__device__ __forceinline__ float act_ld(const __half *p, int64_t i) { return __half2float(p[i]); }

__device__ __forceinline__ void act_st(float *p, int64_t i, float v) { p[i] = v; }
__device__ __forceinline__ void act_st(__nv_bfloat16 *p, int64_t i, float v) {
    p[i] = __float2bfloat16_rn(v);
}
__device__ __forceinline__ void act_st(__half *p, int64_t i, float v) { p[i] = __float2half_rn(v); }

__device__ __forceinline__ void act_ld4(const float *p, int64_t i, float v[4]) {
    const float4 t = *(const float4 *)(p + i);
    v[0] = t.x; v[1] = t.y; v[2] = t.z; v[3] = t.w;
}
__device__ __forceinline__ void act_ld4(const __nv_bfloat16 *p, int64_t i, float v[4]) {
    const __nv_bfloat162 *q = (const __nv_bfloat162 *)(p + i);
    const float2 a = __bfloat1622float2(q[0]), b = __bfloat1622float2(q[1]);
    v[0] = a.x; v[1] = a.y; v[2] = b.x; v[3] = b.y;
}
__device__ __forceinline__ void act_ld4(const __half *p, int64_t i, float v[4]) {
    const __half2 *q = (const __half2 *)(p + i);
    const float2 a = __half22float2(q[0]), b = __half22float2(q[1]);
    v[0] = a.x; v[1] = a.y; v[2] = b.x; v[3] = b.y;
}

__device__ __forceinline__ void act_st4(float *p, int64_t i, const float v[4]) {
    *(float4 *)(p + i) = make_float4(v[0], v[1], v[2], v[3]);
}
__device__ __forceinline__ void act_st4(__nv_bfloat16 *p, int64_t i, const float v[4]) {
    __nv_bfloat162 *q = (__nv_bfloat162 *)(p + i);
    q[0] = __floats2bfloat162_rn(v[0], v[1]);
    q[1] = __floats2bfloat162_rn(v[2], v[3]);
}
__device__ __forceinline__ void act_st4(__half *p, int64_t i, const float v[4]) {
    __half2 *q = (__half2 *)(p + i);
    q[0] = __floats2half2_rn(v[0], v[1]);
    q[1] = __floats2half2_rn(v[2], v[3]);
}

#endif
