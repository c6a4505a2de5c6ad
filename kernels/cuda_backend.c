/* cuda_backend.c: the CUDA backend tables, one per precision (nnu_cuda.h; the
 * -act16 ones store activations in 16 bits).
 * Generated from core/nnu_ops.def like the CPU table (R20): slot `name` =
 * nnu_<name>_cuda (ops_cuda.h). The ops find their precision from the table they
 * were called through (nnu_cuda_precision_of(be)), so the signatures stay those
 * of the CPU twins (R19). memset_ is the stream-ordered cudaMemsetAsync; act_block
 * is the plain layout (cuDNN has no nCdhw16c: nnu_net keeps every activation plain). */
#include <string.h>

#include "nnu_cuda.h"
#include "ops_cuda.h"

#define NNU_OP(name, ptype) .name = nnu_##name##_cuda,
/* every op of nnu_ops.def has its CUDA twin, the NNU_OP_NEW ones included */
#define NNU_OP_NEW(name, ptype) NNU_OP(name, ptype)
/* slot `name` = nnu_<name>_cuda; the X-macro is expanded once per table */
static const nnu_backend tables[NNU_CUDA_PRECISION_COUNT] = {
    { .name = "cuda:0", .mem = &nnu_cuda_memory_ops, .sync = nnu_cuda_sync,
      .memcpy_ = nnu_cuda_memcpy, .get_stats = nnu_cuda_get_stats,
      .memset_ = nnu_cuda_memset_slot, .act_block = NNU_LAYOUT_PLAIN,
#include "nnu_ops.def"
    },
    { .name = "cuda:0:tf32", .mem = &nnu_cuda_memory_ops, .sync = nnu_cuda_sync,
      .memcpy_ = nnu_cuda_memcpy, .get_stats = nnu_cuda_get_stats,
      .memset_ = nnu_cuda_memset_slot, .act_block = NNU_LAYOUT_PLAIN,
#include "nnu_ops.def"
    },
    { .name = "cuda:0:bf16", .mem = &nnu_cuda_memory_ops, .sync = nnu_cuda_sync,
      .memcpy_ = nnu_cuda_memcpy, .get_stats = nnu_cuda_get_stats,
      .memset_ = nnu_cuda_memset_slot, .act_block = NNU_LAYOUT_PLAIN,
#include "nnu_ops.def"
    },
    { .name = "cuda:0:fp16", .mem = &nnu_cuda_memory_ops, .sync = nnu_cuda_sync,
      .memcpy_ = nnu_cuda_memcpy, .get_stats = nnu_cuda_get_stats,
      .memset_ = nnu_cuda_memset_slot, .act_block = NNU_LAYOUT_PLAIN,
#include "nnu_ops.def"
    },
    /* 16-bit activation storage (nnu_backend.h): the same ops, which read their
     * storage type from the table (nnu_cuda_precision_act16) */
    { .name = "cuda:0:bf16-act16", .mem = &nnu_cuda_memory_ops, .sync = nnu_cuda_sync,
      .memcpy_ = nnu_cuda_memcpy, .get_stats = nnu_cuda_get_stats,
      .memset_ = nnu_cuda_memset_slot, .act_block = NNU_LAYOUT_PLAIN,
      .act_bytes = 2, .act_dtype = NNU_ACT_BF16, .upload_act = nnu_cuda_upload_act,
#include "nnu_ops.def"
    },
    { .name = "cuda:0:fp16-act16", .mem = &nnu_cuda_memory_ops, .sync = nnu_cuda_sync,
      .memcpy_ = nnu_cuda_memcpy, .get_stats = nnu_cuda_get_stats,
      .memset_ = nnu_cuda_memset_slot, .act_block = NNU_LAYOUT_PLAIN,
      .act_bytes = 2, .act_dtype = NNU_ACT_F16, .upload_act = nnu_cuda_upload_act,
#include "nnu_ops.def"
    },
};
#undef NNU_OP_NEW
#undef NNU_OP

static const char *const prec_names[NNU_CUDA_PRECISION_COUNT] = {"fp32", "tf32", "bf16", "fp16",
                                                                   "bf16-act16", "fp16-act16"};

nnu_status nnu_backend_cuda(nnu_cuda_precision prec, const nnu_backend **out) {
    *out = NULL;
    NNU_CHECK((unsigned)prec < NNU_CUDA_PRECISION_COUNT, NNU_STATUS_ERR_ARG,
              "CUDA backend: bad precision %d", (int)prec);
    NNU_TRY(nnu_cuda_init());
    *out = &tables[prec];
    if (nnu_cuda_profile_enabled()) *out = nnu_cuda_profile_wrap(*out);  /* NNU_CUDA_PROFILE=1 */
    return NNU_STATUS_OK;
}

int nnu_cuda_precision_of(const nnu_backend *be) {
    if (be >= tables && be < tables + NNU_CUDA_PRECISION_COUNT) return (int)(be - tables);
    return nnu_cuda_profile_precision_of(be);   /* a profiling copy, or -1 */
}

const char *nnu_cuda_precision_name(nnu_cuda_precision prec) {
    return (unsigned)prec < NNU_CUDA_PRECISION_COUNT ? prec_names[prec] : "unknown";
}

int nnu_cuda_precision_from_name(const char *name, nnu_cuda_precision *out) {
    for (int i = 0; i < NNU_CUDA_PRECISION_COUNT; i++)
        if (name && !strcmp(name, prec_names[i])) {
            *out = (nnu_cuda_precision)i;
            return 1;
        }
    return 0;
}
