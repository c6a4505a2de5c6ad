/* nnu_backend.c: op names, support queries, conv geometry and the CPU table.
 * The CPU table is generated from nnu_ops.def: slot `name` = nnu_<name>_cpu
 * (declared in ops/ops_cpu.h, defined in ops/<family>.c). */
#include "nnu_backend.h"

#include <omp.h>
#include <stdatomic.h>
#include <string.h>

#include "ops/ops_cpu.h"

/* the CPU backend has every op, including the NNU_OP_NEW ones */
#define NNU_OP_NEW(name, ptype) NNU_OP(name, ptype)

static const char *const op_names[NNU_OP_COUNT] = {
#define NNU_OP(name, ptype) #name,
#include "nnu_ops.def"
#undef NNU_OP
};

const char *nnu_op_name(nnu_op op) {
    return (unsigned)op < NNU_OP_COUNT ? op_names[op] : "unknown_op";
}

/* The slots are consecutive function pointers in declaration order; read slot
 * `op` through the generated switch rather than pointer arithmetic. */
int nnu_backend_supports(const nnu_backend *be, nnu_op op) {
    if (!be) return 0;
    switch (op) {
#define NNU_OP(name, ptype) case NNU_OP_##name: return be->name != NULL;
#include "nnu_ops.def"
#undef NNU_OP
    case NNU_OP_COUNT: break;
    }
    return 0;
}

nnu_status nnu_backend_require(const nnu_backend *be, nnu_op op) {
    NNU_CHECK(nnu_backend_supports(be, op), NNU_STATUS_ERR_UNSUPPORTED,
              "op '%s' is not implemented on backend '%s'", nnu_op_name(op),
              be ? be->name : "(null)");
    return NNU_STATUS_OK;
}

nnu_status nnu_conv_params_init(nnu_conv_params *p, int64_t n, int64_t c_in, int64_t c_out,
                                const int64_t in[3], const int kernel[3], const int stride[3],
                                int transposed, int cblk_in, int cblk_out) {
    memset(p, 0, sizeof *p);
    NNU_CHECK(n > 0 && c_in > 0 && c_out > 0, NNU_STATUS_ERR_ARG,
              "conv: bad sizes n=%lld c_in=%lld c_out=%lld", (long long)n, (long long)c_in,
              (long long)c_out);
    NNU_CHECK((cblk_in == 1 || cblk_in == 16) && (cblk_out == 1 || cblk_out == 16),
              NNU_STATUS_ERR_ARG, "conv: layout blocks must be 1 or 16 (got %d, %d)", cblk_in,
              cblk_out);
    NNU_CHECK(c_in % cblk_in == 0 && c_out % cblk_out == 0, NNU_STATUS_ERR_SHAPE,
              "conv: channels %lld -> %lld do not fit the blocked layout (%d, %d)",
              (long long)c_in, (long long)c_out, cblk_in, cblk_out);
    p->n = n; p->c_in = c_in; p->c_out = c_out;
    p->transposed = transposed; p->cblk_in = cblk_in; p->cblk_out = cblk_out;
    p->has_bias = 1;
    for (int a = 0; a < 3; a++) {
        NNU_CHECK(in[a] > 0, NNU_STATUS_ERR_SHAPE, "conv: spatial size %lld on axis %d",
                  (long long)in[a], a);
        p->in[a] = in[a]; p->kernel[a] = kernel[a]; p->stride[a] = stride[a];
        if (transposed) {
            NNU_CHECK(kernel[a] == stride[a] && stride[a] >= 1, NNU_STATUS_ERR_UNSUPPORTED,
                      "transposed conv: kernel %d != stride %d on axis %d", kernel[a],
                      stride[a], a);
            p->pad[a] = 0;
            p->out[a] = in[a] * stride[a];
        } else {
            NNU_CHECK((kernel[a] == 1 || kernel[a] == 3) && (stride[a] == 1 || stride[a] == 2),
                      NNU_STATUS_ERR_UNSUPPORTED,
                      "conv: kernel %d / stride %d on axis %d (supported: kernel 1|3, stride 1|2)",
                      kernel[a], stride[a], a);
            p->pad[a] = (kernel[a] - 1) / 2;
            /* floor((in + 2p - k)/s) + 1 = ceil(in/s) for k = 2p + 1 */
            p->out[a] = (in[a] + 2 * p->pad[a] - kernel[a]) / stride[a] + 1;
        }
    }
    return NNU_STATUS_OK;
}

nnu_status nnu_pool_params_init(nnu_pool_params *p, int64_t n, int64_t c, const int64_t in[3],
                                const int stride[3], int cblk) {
    memset(p, 0, sizeof *p);
    NNU_CHECK(n > 0 && c > 0, NNU_STATUS_ERR_ARG, "avgpool: bad sizes n=%lld c=%lld",
              (long long)n, (long long)c);
    NNU_CHECK((cblk == 1 || cblk == 16) && c % cblk == 0, NNU_STATUS_ERR_ARG,
              "avgpool: %lld channels in layout block %d", (long long)c, cblk);
    p->n = n; p->c = c; p->cblk = cblk;
    for (int a = 0; a < 3; a++) {
        NNU_CHECK(stride[a] == 1 || stride[a] == 2, NNU_STATUS_ERR_ARG,
                  "avgpool: stride %d on axis %d (1 or 2)", stride[a], a);
        NNU_CHECK(in[a] > 0 && in[a] % stride[a] == 0, NNU_STATUS_ERR_SHAPE,
                  "avgpool: size %lld on axis %d is not divisible by the stride %d",
                  (long long)in[a], a, stride[a]);
        p->in[a] = in[a];
        p->stride[a] = stride[a];
        p->out[a] = in[a] / stride[a];
    }
    return NNU_STATUS_OK;
}

/* ---- CPU backend ---- */

static atomic_llong cpu_reorders, cpu_primitives;
void nnu_cpu_count_reorder(void) { atomic_fetch_add(&cpu_reorders, 1); }
void nnu_cpu_count_primitive(void) { atomic_fetch_add(&cpu_primitives, 1); }

static void cpu_get_stats(const nnu_backend *be, nnu_backend_stats *out) {
    (void)be;
    out->reorders = atomic_load(&cpu_reorders);
    out->primitives = atomic_load(&cpu_primitives);
}

static nnu_status cpu_sync(const nnu_backend *be) { (void)be; return NNU_STATUS_OK; }

static nnu_status cpu_memcpy(const nnu_backend *be, void *dst, const void *src, size_t nbytes) {
    (void)be;
    memmove(dst, src, nbytes);
    return NNU_STATUS_OK;
}

static nnu_status cpu_memset(const nnu_backend *be, void *dst, int value, size_t nbytes) {
    (void)be;
    memset(dst, value, nbytes);
    return NNU_STATUS_OK;
}

nnu_status nnu_backend_memset(const nnu_backend *be, void *dst, int value, size_t nbytes) {
    if (be->memset_) return be->memset_(be, dst, value, nbytes);
    if (be->mem->host_accessible) {
        memset(dst, value, nbytes);
        return NNU_STATUS_OK;
    }
    NNU_CHECK(value == 0 && be->memcpy_, NNU_STATUS_ERR_UNSUPPORTED,
              "backend '%s' has no memset_ (fill %d)", be->name, value);
    static const char zeros[65536];
    for (size_t off = 0; off < nbytes; off += sizeof zeros) {
        size_t n = nbytes - off < sizeof zeros ? nbytes - off : sizeof zeros;
        NNU_TRY(be->memcpy_(be, (char *)dst + off, zeros, n));
    }
    return NNU_STATUS_OK;
}

static const nnu_backend cpu_backend = {
    .name = "cpu",
    .mem = &nnu_memory_cpu,
    .sync = cpu_sync,
    .memcpy_ = cpu_memcpy,
    .get_stats = cpu_get_stats,
    .memset_ = cpu_memset,
    .act_block = 16,
#define NNU_OP(name, ptype) .name = nnu_##name##_cpu,
#include "nnu_ops.def"
#undef NNU_OP
};

const nnu_backend *nnu_backend_cpu(void) { return &cpu_backend; }

/* The same table under another name: the convolution ops see through `be` which
 * precision they were called with (as the CUDA tables do). */
static const nnu_backend cpu_bf16_backend = {
    .name = "cpu:bf16",
    .mem = &nnu_memory_cpu,
    .sync = cpu_sync,
    .memcpy_ = cpu_memcpy,
    .get_stats = cpu_get_stats,
    .memset_ = cpu_memset,
    .act_block = 16,
#define NNU_OP(name, ptype) .name = nnu_##name##_cpu,
#include "nnu_ops.def"
#undef NNU_OP
};

const nnu_backend *nnu_backend_cpu_bf16(void) { return &cpu_bf16_backend; }

int nnu_backend_is_bf16(const nnu_backend *be) { return be == &cpu_bf16_backend; }

void nnu_backend_cpu_set_threads(int n) {
    if (n > 0) omp_set_num_threads(n);
}

#undef NNU_OP_NEW
