/* nnu_tensor: N-d strided view over a refcounted storage (STYLE R5, R6).
 *
 * Axis order is (N, C, D, H, W), W fastest; see nnu_axes.h. A tensor header owns
 * one reference to its storage; views are new headers on the same storage and
 * allocate only the header. Strides and offset are counted in elements.
 *
 * Ownership: nnu_tensor_new*, nnu_tensor_view_*, nnu_tensor_clone and
 * nnu_tensor_contiguous return an owned reference that the caller drops with
 * nnu_tensor_release(). Arguments are borrowed. Reference counts are atomic, so
 * a tensor may be shared by worker threads; the elements themselves are not
 * synchronized. */
#ifndef NNU_TENSOR_H
#define NNU_TENSOR_H

#include <stdint.h>

#include "nnu_dtype.h"
#include "nnu_status.h"

#define NNU_MAX_DIMS 5

/* Where a storage's bytes live and how to free them. The CPU memory ops are
 * nnu_memory_cpu; the CUDA backend supplies its own (kernels/). */
typedef struct nnu_memory_ops {
    const char *name;                        /* "cpu", "cuda:0" */
    void *(*alloc)(size_t nbytes, void *ctx);
    void  (*free)(void *ptr, void *ctx);
    void  *ctx;
    int    host_accessible;                  /* element access from C is allowed */
} nnu_memory_ops;

extern const nnu_memory_ops nnu_memory_cpu;

typedef struct nnu_storage {
    void                 *data;
    size_t                nbytes;
    int                   refcount;          /* atomic */
    const nnu_memory_ops *mem;               /* frees data; NULL: data not owned (wrapped) */
} nnu_storage;

typedef struct nnu_tensor {
    nnu_dtype    dtype;
    int          ndim;                       /* 0..NNU_MAX_DIMS; 0 = scalar */
    int64_t      shape[NNU_MAX_DIMS];
    int64_t      stride[NNU_MAX_DIMS];       /* in elements */
    int64_t      offset;                     /* in elements */
    nnu_storage *storage;
    int          refcount;                   /* atomic */
} nnu_tensor;

/* --- creation (zero-filled, contiguous, CPU) --- */
nnu_status nnu_tensor_new(nnu_dtype dt, int ndim, const int64_t *shape, nnu_tensor **out);
nnu_status nnu_tensor_new_on(const nnu_memory_ops *mem, nnu_dtype dt, int ndim,
                             const int64_t *shape, nnu_tensor **out);
/* Wraps caller memory without copying; the caller keeps it alive and frees it. */
nnu_status nnu_tensor_wrap(void *data, nnu_dtype dt, int ndim, const int64_t *shape,
                           nnu_tensor **out);

void nnu_tensor_retain(nnu_tensor *t);
void nnu_tensor_release(nnu_tensor *t);      /* NULL-safe; drops one reference */

/* --- properties --- */
int64_t nnu_tensor_numel(const nnu_tensor *t);
int     nnu_tensor_is_contiguous(const nnu_tensor *t);
void   *nnu_tensor_data(const nnu_tensor *t);   /* address of element (0,...,0) */
/* "[2,1,128,128,128]" into buf; returns buf */
char   *nnu_tensor_shape_str(const nnu_tensor *t, char *buf, size_t len);
/* the same for any shape array (checkpoint tensors, network layouts) */
char   *nnu_shape_str(int ndim, const int64_t *shape, char *buf, size_t len);
int     nnu_tensor_same_shape(const nnu_tensor *a, const nnu_tensor *b);

/* --- views (share storage) --- */
/* t[..., start:start+len, ...] along axis */
nnu_status nnu_tensor_view_narrow(nnu_tensor *t, int axis, int64_t start, int64_t len,
                                  nnu_tensor **out);
/* axis `axis` fixed at index; ndim drops by one */
nnu_status nnu_tensor_view_select(nnu_tensor *t, int axis, int64_t index, nnu_tensor **out);
/* out.shape[i] = t.shape[perm[i]] */
nnu_status nnu_tensor_view_permute(nnu_tensor *t, const int *perm, nnu_tensor **out);
/* contiguous t only; one entry of shape may be -1 (inferred) */
nnu_status nnu_tensor_view_reshape(nnu_tensor *t, int ndim, const int64_t *shape,
                                   nnu_tensor **out);

/* --- copies and conversions --- */
/* Element-wise dst = src with dtype conversion (floats to integers truncate
 * toward zero, as numpy's astype); shapes must be equal; any strides. */
nnu_status nnu_tensor_copy(nnu_tensor *dst, const nnu_tensor *src);
nnu_status nnu_tensor_clone(const nnu_tensor *t, nnu_tensor **out);        /* contiguous copy */
nnu_status nnu_tensor_contiguous(nnu_tensor *t, nnu_tensor **out);         /* t itself, retained, if contiguous */
nnu_status nnu_tensor_to_dtype(const nnu_tensor *t, nnu_dtype dt, nnu_tensor **out);
nnu_status nnu_tensor_fill(nnu_tensor *t, double v);

/* --- element access (index has t->ndim entries, 0-based, bounds-checked) --- */
nnu_status nnu_tensor_get(const nnu_tensor *t, const int64_t *index, double *out);
nnu_status nnu_tensor_set(nnu_tensor *t, const int64_t *index, double v);

/* --- reductions over all elements (computed in double; NaN propagates) --- */
nnu_status nnu_tensor_sum(const nnu_tensor *t, double *out);
nnu_status nnu_tensor_mean(const nnu_tensor *t, double *out);
nnu_status nnu_tensor_min(const nnu_tensor *t, double *out);
nnu_status nnu_tensor_max(const nnu_tensor *t, double *out);
/* population std for ddof = 0 (numpy default), sample std for ddof = 1 */
nnu_status nnu_tensor_std(const nnu_tensor *t, int ddof, double *out);
/* numpy.percentile(..., method="linear") for each of n values q[i] in [0,100] */
nnu_status nnu_tensor_percentile(const nnu_tensor *t, const double *q, int n, double *out);

/* Percentile of an already sorted array, bit-exact with numpy's linear method
 * (see nnunet-behaviour.md, "Global numeric conventions"). */
double nnu_percentile_sorted(const double *x, int64_t n, double q);

/* Strided element walk: calls fn(ptr_to_element, ctx) for every element in
 * C order. Used by reductions and conversions; fast enough for I/O-side code. */
typedef void (*nnu_tensor_visit_fn)(void *elem, void *ctx);
void nnu_tensor_foreach(const nnu_tensor *t, nnu_tensor_visit_fn fn, void *ctx);

#endif
