/* nnu_tensor.c: storage, headers, views, copies and element access.
 * Reductions live in nnu_tensor_reduce.c. */
#include "nnu_tensor.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *cpu_alloc(size_t nbytes, void *ctx) {
    (void)ctx;
    /* 64-byte alignment suits AVX-512 loads and oneDNN's preferred alignment */
    return aligned_alloc(64, (nbytes + 63) & ~(size_t)63);
}
static void cpu_free(void *p, void *ctx) { (void)ctx; free(p); }

const nnu_memory_ops nnu_memory_cpu = {"cpu", cpu_alloc, cpu_free, NULL, 1};

static nnu_status check_shape(int ndim, const int64_t *shape, int64_t *numel) {
    NNU_CHECK(ndim >= 0 && ndim <= NNU_MAX_DIMS, NNU_STATUS_ERR_ARG,
              "tensor: %d dimensions (at most %d)", ndim, NNU_MAX_DIMS);
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        NNU_CHECK(shape[i] >= 0, NNU_STATUS_ERR_ARG, "tensor: negative size %lld on axis %d",
                  (long long)shape[i], i);
        NNU_CHECK(shape[i] == 0 || n <= INT64_MAX / shape[i], NNU_STATUS_ERR_ARG,
                  "tensor: element count overflows");
        n *= shape[i];
    }
    *numel = n;
    return NNU_STATUS_OK;
}

static void set_contiguous_strides(nnu_tensor *t) {
    int64_t s = 1;
    for (int i = t->ndim - 1; i >= 0; i--) { t->stride[i] = s; s *= t->shape[i]; }
}

static nnu_tensor *header_new(nnu_storage *st, nnu_dtype dt) {
    nnu_tensor *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->dtype = dt;
    t->storage = st;
    atomic_fetch_add((_Atomic int *)&st->refcount, 1);
    t->refcount = 1;
    return t;
}

static void storage_release(nnu_storage *st) {
    if (!st || atomic_fetch_sub((_Atomic int *)&st->refcount, 1) != 1) return;
    if (st->mem) st->mem->free(st->data, st->mem->ctx);
    free(st);
}

nnu_status nnu_tensor_new_on(const nnu_memory_ops *mem, nnu_dtype dt, int ndim,
                             const int64_t *shape, nnu_tensor **out) {
    *out = NULL;
    int64_t numel;
    NNU_TRY(check_shape(ndim, shape, &numel));
    NNU_CHECK((unsigned)dt < NNU_DTYPE_COUNT, NNU_STATUS_ERR_ARG, "tensor: bad dtype %d", (int)dt);
    size_t nbytes = (size_t)numel * nnu_dtype_size(dt);
    nnu_storage *st = calloc(1, sizeof *st);
    NNU_CHECK(st, NNU_STATUS_ERR_OOM, "tensor: out of memory");
    st->data = mem->alloc(nbytes ? nbytes : 1, mem->ctx);
    if (!st->data) {
        free(st);
        return NNU_FAIL(NNU_STATUS_ERR_OOM, "tensor: cannot allocate %zu bytes on %s", nbytes, mem->name);
    }
    if (mem->host_accessible) memset(st->data, 0, nbytes);
    st->nbytes = nbytes;
    st->mem = mem;
    nnu_tensor *t = header_new(st, dt);
    if (!t) { storage_release(st); return NNU_FAIL(NNU_STATUS_ERR_OOM, "tensor: out of memory"); }
    /* header_new took the first reference; the storage was created with 0 */
    t->ndim = ndim;
    if (ndim > 0) memcpy(t->shape, shape, (size_t)ndim * sizeof *shape);   /* shape may be NULL for a scalar */
    set_contiguous_strides(t);
    *out = t;
    return NNU_STATUS_OK;
}

nnu_status nnu_tensor_new(nnu_dtype dt, int ndim, const int64_t *shape, nnu_tensor **out) {
    return nnu_tensor_new_on(&nnu_memory_cpu, dt, ndim, shape, out);
}

nnu_status nnu_tensor_wrap(void *data, nnu_dtype dt, int ndim, const int64_t *shape,
                           nnu_tensor **out) {
    *out = NULL;
    int64_t numel;
    NNU_TRY(check_shape(ndim, shape, &numel));
    nnu_storage *st = calloc(1, sizeof *st);
    NNU_CHECK(st, NNU_STATUS_ERR_OOM, "tensor: out of memory");
    st->data = data;
    st->nbytes = (size_t)numel * nnu_dtype_size(dt);
    nnu_tensor *t = header_new(st, dt);
    if (!t) { free(st); return NNU_FAIL(NNU_STATUS_ERR_OOM, "tensor: out of memory"); }
    t->ndim = ndim;
    if (ndim > 0) memcpy(t->shape, shape, (size_t)ndim * sizeof *shape);   /* shape may be NULL for a scalar */
    set_contiguous_strides(t);
    *out = t;
    return NNU_STATUS_OK;
}

void nnu_tensor_retain(nnu_tensor *t) {
    if (t) atomic_fetch_add((_Atomic int *)&t->refcount, 1);
}

void nnu_tensor_release(nnu_tensor *t) {
    if (!t || atomic_fetch_sub((_Atomic int *)&t->refcount, 1) != 1) return;
    storage_release(t->storage);
    free(t);
}

int64_t nnu_tensor_numel(const nnu_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

int nnu_tensor_is_contiguous(const nnu_tensor *t) {
    int64_t s = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        if (t->shape[i] != 1 && t->stride[i] != s) return 0;   /* size-1 axes may have any stride */
        s *= t->shape[i];
    }
    return 1;
}

void *nnu_tensor_data(const nnu_tensor *t) {
    return (char *)t->storage->data + t->offset * (int64_t)nnu_dtype_size(t->dtype);
}

char *nnu_shape_str(int ndim, const int64_t *shape, char *buf, size_t len) {
    size_t n = 0;
    n += (size_t)snprintf(buf + n, len - n, "[");
    for (int i = 0; i < ndim && n < len; i++)
        n += (size_t)snprintf(buf + n, len - n, i ? ",%lld" : "%lld", (long long)shape[i]);
    if (n < len) snprintf(buf + n, len - n, "]");
    return buf;
}

char *nnu_tensor_shape_str(const nnu_tensor *t, char *buf, size_t len) {
    return nnu_shape_str(t->ndim, t->shape, buf, len);
}

int nnu_tensor_same_shape(const nnu_tensor *a, const nnu_tensor *b) {
    if (a->ndim != b->ndim) return 0;
    for (int i = 0; i < a->ndim; i++) if (a->shape[i] != b->shape[i]) return 0;
    return 1;
}

/* A new header on t's storage with t's geometry; the caller edits it. */
static nnu_status view_of(nnu_tensor *t, nnu_tensor **out) {
    nnu_tensor *v = header_new(t->storage, t->dtype);
    NNU_CHECK(v, NNU_STATUS_ERR_OOM, "tensor view: out of memory");
    v->ndim = t->ndim;
    v->offset = t->offset;
    memcpy(v->shape, t->shape, sizeof v->shape);
    memcpy(v->stride, t->stride, sizeof v->stride);
    *out = v;
    return NNU_STATUS_OK;
}

nnu_status nnu_tensor_view_narrow(nnu_tensor *t, int axis, int64_t start, int64_t len,
                                  nnu_tensor **out) {
    *out = NULL;
    char s[96];
    NNU_CHECK(axis >= 0 && axis < t->ndim, NNU_STATUS_ERR_ARG,
              "narrow: axis %d out of range for %s", axis, nnu_tensor_shape_str(t, s, sizeof s));
    NNU_CHECK(start >= 0 && len >= 0 && start + len <= t->shape[axis], NNU_STATUS_ERR_ARG,
              "narrow: [%lld, %lld) out of range on axis %d of %s", (long long)start,
              (long long)(start + len), axis, nnu_tensor_shape_str(t, s, sizeof s));
    NNU_TRY(view_of(t, out));
    (*out)->offset += start * t->stride[axis];
    (*out)->shape[axis] = len;
    return NNU_STATUS_OK;
}

nnu_status nnu_tensor_view_select(nnu_tensor *t, int axis, int64_t index, nnu_tensor **out) {
    *out = NULL;
    char s[96];
    NNU_CHECK(axis >= 0 && axis < t->ndim && index >= 0 && index < t->shape[axis], NNU_STATUS_ERR_ARG,
              "select: index %lld on axis %d out of range for %s", (long long)index, axis,
              nnu_tensor_shape_str(t, s, sizeof s));
    NNU_TRY(view_of(t, out));
    nnu_tensor *v = *out;
    v->offset += index * t->stride[axis];
    for (int i = axis; i < t->ndim - 1; i++) { v->shape[i] = t->shape[i + 1]; v->stride[i] = t->stride[i + 1]; }
    v->ndim--;
    return NNU_STATUS_OK;
}

nnu_status nnu_tensor_view_permute(nnu_tensor *t, const int *perm, nnu_tensor **out) {
    *out = NULL;
    int seen[NNU_MAX_DIMS] = {0};
    for (int i = 0; i < t->ndim; i++) {
        NNU_CHECK(perm[i] >= 0 && perm[i] < t->ndim && !seen[perm[i]], NNU_STATUS_ERR_ARG,
                  "permute: entry %d (%d) is not a permutation of 0..%d", i, perm[i], t->ndim - 1);
        seen[perm[i]] = 1;
    }
    NNU_TRY(view_of(t, out));
    for (int i = 0; i < t->ndim; i++) {
        (*out)->shape[i] = t->shape[perm[i]];
        (*out)->stride[i] = t->stride[perm[i]];
    }
    return NNU_STATUS_OK;
}

nnu_status nnu_tensor_view_reshape(nnu_tensor *t, int ndim, const int64_t *shape, nnu_tensor **out) {
    *out = NULL;
    char s[96];
    NNU_CHECK(nnu_tensor_is_contiguous(t), NNU_STATUS_ERR_ARG,
              "reshape: tensor %s is not contiguous (make a contiguous copy first)",
              nnu_tensor_shape_str(t, s, sizeof s));
    NNU_CHECK(ndim >= 0 && ndim <= NNU_MAX_DIMS, NNU_STATUS_ERR_ARG, "reshape: %d dimensions", ndim);
    int64_t known = 1, numel = nnu_tensor_numel(t), sh[NNU_MAX_DIMS];
    int infer = -1;
    for (int i = 0; i < ndim; i++) {
        sh[i] = shape[i];
        if (shape[i] == -1) {
            NNU_CHECK(infer < 0, NNU_STATUS_ERR_ARG, "reshape: more than one -1");
            infer = i;
        } else {
            NNU_CHECK(shape[i] >= 0, NNU_STATUS_ERR_ARG, "reshape: negative size");
            known *= shape[i];
        }
    }
    if (infer >= 0) {
        NNU_CHECK(known > 0 && numel % known == 0, NNU_STATUS_ERR_SHAPE,
                  "reshape: cannot infer axis %d of %s", infer, nnu_tensor_shape_str(t, s, sizeof s));
        sh[infer] = numel / known;
        known *= sh[infer];
    }
    NNU_CHECK(known == numel, NNU_STATUS_ERR_SHAPE, "reshape: %s has %lld elements, new shape has %lld",
              nnu_tensor_shape_str(t, s, sizeof s), (long long)numel, (long long)known);
    NNU_TRY(view_of(t, out));
    (*out)->ndim = ndim;
    memcpy((*out)->shape, sh, (size_t)ndim * sizeof *sh);
    set_contiguous_strides(*out);
    return NNU_STATUS_OK;
}

void nnu_tensor_foreach(const nnu_tensor *t, nnu_tensor_visit_fn fn, void *ctx) {
    int64_t n = nnu_tensor_numel(t);
    if (n == 0) return;
    size_t es = nnu_dtype_size(t->dtype);
    char *base = nnu_tensor_data(t);
    if (nnu_tensor_is_contiguous(t)) {
        for (int64_t i = 0; i < n; i++) fn(base + i * (int64_t)es, ctx);
        return;
    }
    int64_t idx[NNU_MAX_DIMS] = {0};
    int64_t off = 0;
    for (int64_t i = 0; i < n; i++) {
        fn(base + off * (int64_t)es, ctx);
        for (int d = t->ndim - 1; d >= 0; d--) {      /* odometer increment, last axis fastest */
            off += t->stride[d];
            if (++idx[d] < t->shape[d]) break;
            off -= t->stride[d] * t->shape[d];
            idx[d] = 0;
        }
    }
}

/* Offsets (in elements) of every element of t in C order, walked lazily. */
typedef struct { int64_t idx[NNU_MAX_DIMS], off; } walker;

static void walker_next(walker *w, const nnu_tensor *t) {
    for (int d = t->ndim - 1; d >= 0; d--) {
        w->off += t->stride[d];
        if (++w->idx[d] < t->shape[d]) return;
        w->off -= t->stride[d] * t->shape[d];
        w->idx[d] = 0;
    }
}

nnu_status nnu_tensor_copy(nnu_tensor *dst, const nnu_tensor *src) {
    char a[96], b[96];
    NNU_CHECK(nnu_tensor_numel(dst) == nnu_tensor_numel(src) && nnu_tensor_same_shape(dst, src),
              NNU_STATUS_ERR_SHAPE, "copy: destination %s vs source %s",
              nnu_tensor_shape_str(dst, a, sizeof a), nnu_tensor_shape_str(src, b, sizeof b));
    NNU_CHECK(dst->storage->mem == NULL || dst->storage->mem->host_accessible, NNU_STATUS_ERR_UNSUPPORTED,
              "copy: destination is not in host memory");
    int64_t n = nnu_tensor_numel(src);
    size_t des = nnu_dtype_size(dst->dtype), ses = nnu_dtype_size(src->dtype);
    char *d = nnu_tensor_data(dst);
    const char *s = nnu_tensor_data(src);
    if (dst->dtype == src->dtype && nnu_tensor_is_contiguous(dst) && nnu_tensor_is_contiguous(src)) {
        memmove(d, s, (size_t)n * des);
        return NNU_STATUS_OK;
    }
    if (dst->dtype == NNU_DTYPE_F32 && src->dtype == NNU_DTYPE_F32) {
        walker wd = {{0}, 0}, ws = {{0}, 0};
        for (int64_t i = 0; i < n; i++, walker_next(&wd, dst), walker_next(&ws, src))
            ((float *)(void *)d)[wd.off] = ((const float *)(const void *)s)[ws.off];
        return NNU_STATUS_OK;
    }
    walker wd = {{0}, 0}, ws = {{0}, 0};
    for (int64_t i = 0; i < n; i++, walker_next(&wd, dst), walker_next(&ws, src))
        nnu_dtype_store(dst->dtype, d + wd.off * (int64_t)des,
                        nnu_dtype_load(src->dtype, s + ws.off * (int64_t)ses));
    return NNU_STATUS_OK;
}

nnu_status nnu_tensor_to_dtype(const nnu_tensor *t, nnu_dtype dt, nnu_tensor **out) {
    NNU_TRY(nnu_tensor_new(dt, t->ndim, t->shape, out));
    nnu_status st = nnu_tensor_copy(*out, t);
    if (st != NNU_STATUS_OK) { nnu_tensor_release(*out); *out = NULL; }
    return st;
}

nnu_status nnu_tensor_clone(const nnu_tensor *t, nnu_tensor **out) {
    return nnu_tensor_to_dtype(t, t->dtype, out);
}

nnu_status nnu_tensor_contiguous(nnu_tensor *t, nnu_tensor **out) {
    if (nnu_tensor_is_contiguous(t)) { nnu_tensor_retain(t); *out = t; return NNU_STATUS_OK; }
    return nnu_tensor_clone(t, out);
}

typedef struct { nnu_dtype dt; double v; } fill_ctx;
static void fill_one(void *e, void *ctx) { fill_ctx *c = ctx; nnu_dtype_store(c->dt, e, c->v); }

nnu_status nnu_tensor_fill(nnu_tensor *t, double v) {
    fill_ctx c = {t->dtype, v};
    nnu_tensor_foreach(t, fill_one, &c);
    return NNU_STATUS_OK;
}

static nnu_status element_ptr(const nnu_tensor *t, const int64_t *index, char **p) {
    int64_t off = 0;
    char s[96];
    for (int i = 0; i < t->ndim; i++) {
        NNU_CHECK(index[i] >= 0 && index[i] < t->shape[i], NNU_STATUS_ERR_ARG,
                  "index %lld out of range on axis %d of %s", (long long)index[i], i,
                  nnu_tensor_shape_str(t, s, sizeof s));
        off += index[i] * t->stride[i];
    }
    *p = (char *)nnu_tensor_data(t) + off * (int64_t)nnu_dtype_size(t->dtype);
    return NNU_STATUS_OK;
}

nnu_status nnu_tensor_get(const nnu_tensor *t, const int64_t *index, double *out) {
    char *p;
    NNU_TRY(element_ptr(t, index, &p));
    *out = nnu_dtype_load(t->dtype, p);
    return NNU_STATUS_OK;
}

nnu_status nnu_tensor_set(nnu_tensor *t, const int64_t *index, double v) {
    char *p;
    NNU_TRY(element_ptr(t, index, &p));
    nnu_dtype_store(t->dtype, p, v);
    return NNU_STATUS_OK;
}
