/* nnu_components.c: see nnu_components.h.
 *
 * Layout: the mask is cut into runs [x0, x1) of consecutive mask voxels along W,
 * stored row by row (row r = z·H + y, runs of row r at row_start[r] .. row_start[r+1]).
 * Two runs in rows that are 26-neighbours (same z and y±1, or z−1 and y−1..y+1) touch
 * iff their x ranges overlap after widening by one voxel: a.x0 ≤ b.x1 and b.x0 ≤ a.x1.
 * Each row is merged with its four already-visited neighbour rows by a two-pointer
 * sweep; a union-find over runs gives the components and their voxel counts. */
#include "nnu_components.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct runs {
    int64_t n, cap;
    int32_t *x0, *x1;
    int64_t *parent, *size;     /* union-find over runs; size valid at roots */
    int64_t *row_start;         /* D·H + 1 entries */
} runs;

static void runs_free(runs *r) {
    free(r->x0); free(r->x1); free(r->parent); free(r->size); free(r->row_start);
    memset(r, 0, sizeof *r);
}

static int runs_push(runs *r, int32_t a, int32_t b) {
    if (r->n == r->cap) {
        int64_t cap = r->cap ? r->cap * 2 : 1024;
        int32_t *x0 = realloc(r->x0, sizeof(int32_t) * (size_t)cap);
        if (!x0) return 0;
        r->x0 = x0;
        int32_t *x1 = realloc(r->x1, sizeof(int32_t) * (size_t)cap);
        if (!x1) return 0;
        r->x1 = x1;
        r->cap = cap;
    }
    r->x0[r->n] = a;
    r->x1[r->n] = b;
    r->n++;
    return 1;
}

static int64_t uf_find(int64_t *parent, int64_t i) {
    while (parent[i] != i) {
        parent[i] = parent[parent[i]];          /* path halving */
        i = parent[i];
    }
    return i;
}

static void uf_union(int64_t *parent, int64_t a, int64_t b) {
    a = uf_find(parent, a);
    b = uf_find(parent, b);
    if (a < b) parent[b] = a;
    else if (b < a) parent[a] = b;
}

static int in_set(double v, const int64_t *labels, int n) {
    for (int i = 0; i < n; i++)
        if (v == (double)labels[i]) return 1;
    return 0;
}

/* Merges the runs of row r with those of row q (both valid rows). */
static void merge_rows(runs *R, int64_t r, int64_t q) {
    int64_t i = R->row_start[r], ie = R->row_start[r + 1];
    int64_t j = R->row_start[q], je = R->row_start[q + 1];
    while (i < ie && j < je) {
        if (R->x0[i] <= R->x1[j] && R->x0[j] <= R->x1[i]) uf_union(R->parent, i, j);
        if (R->x1[i] < R->x1[j]) i++;
        else j++;
    }
}

/* Contiguous data of seg, (D, H, W) and the runs with their components. */
static nnu_status build(const nnu_tensor *c, const int64_t *labels, int n_labels, int64_t *dhw,
                        runs *R) {
    memset(R, 0, sizeof *R);
    int nd = c->ndim;
    char buf[96];
    NNU_CHECK(nd >= 2, NNU_STATUS_ERR_SHAPE, "components: segmentation %s needs >= 2 axes",
              nnu_tensor_shape_str(c, buf, sizeof buf));
    for (int a = 0; a < nd - 3; a++)
        NNU_CHECK(c->shape[a] == 1, NNU_STATUS_ERR_SHAPE,
                  "components: segmentation %s: axes before the last three must have size 1",
                  nnu_tensor_shape_str(c, buf, sizeof buf));
    NNU_CHECK(n_labels >= 1, NNU_STATUS_ERR_ARG, "components: empty label set");
    dhw[0] = nd >= 3 ? c->shape[nd - 3] : 1;
    dhw[1] = c->shape[nd - 2];
    dhw[2] = c->shape[nd - 1];
    NNU_CHECK(dhw[2] < INT32_MAX, NNU_STATUS_ERR_SHAPE, "components: rows too long");
    int64_t rows = dhw[0] * dhw[1], W = dhw[2];
    R->row_start = malloc(sizeof(int64_t) * (size_t)(rows + 1));
    NNU_CHECK(R->row_start, NNU_STATUS_ERR_OOM, "components: out of memory");
    const char *base = nnu_tensor_data(c);
    size_t es = nnu_dtype_size(c->dtype);
    for (int64_t r = 0; r < rows; r++) {
        R->row_start[r] = R->n;
        const char *row = base + r * W * (int64_t)es;
        int64_t x = 0;
        while (x < W) {
            while (x < W && !in_set(nnu_dtype_load(c->dtype, row + x * (int64_t)es), labels, n_labels)) x++;
            if (x == W) break;
            int64_t x0 = x;
            while (x < W && in_set(nnu_dtype_load(c->dtype, row + x * (int64_t)es), labels, n_labels)) x++;
            if (!runs_push(R, (int32_t)x0, (int32_t)x)) {
                runs_free(R);
                return NNU_FAIL(NNU_STATUS_ERR_OOM, "components: out of memory");
            }
        }
    }
    R->row_start[rows] = R->n;
    R->parent = malloc(sizeof(int64_t) * (size_t)(R->n ? R->n : 1));
    R->size = malloc(sizeof(int64_t) * (size_t)(R->n ? R->n : 1));
    if (!R->parent || !R->size) {
        runs_free(R);
        return NNU_FAIL(NNU_STATUS_ERR_OOM, "components: out of memory");
    }
    for (int64_t i = 0; i < R->n; i++) R->parent[i] = i;
    int64_t H = dhw[1];
    for (int64_t z = 0; z < dhw[0]; z++)
        for (int64_t y = 0; y < H; y++) {
            int64_t r = z * H + y;
            if (R->row_start[r] == R->row_start[r + 1]) continue;
            if (y > 0) merge_rows(R, r, r - 1);                  /* (z, y−1) */
            if (z > 0)
                for (int64_t dy = -1; dy <= 1; dy++)             /* (z−1, y−1 .. y+1) */
                    if (y + dy >= 0 && y + dy < H) merge_rows(R, r, r - H + dy);
        }
    for (int64_t i = 0; i < R->n; i++) R->size[i] = 0;
    for (int64_t i = 0; i < R->n; i++) R->size[uf_find(R->parent, i)] += R->x1[i] - R->x0[i];
    return NNU_STATUS_OK;
}

nnu_status nnu_components_keep_largest(nnu_tensor *seg, const int64_t *labels, int n_labels,
                                       int64_t background, int64_t *n_removed) {
    if (n_removed) *n_removed = 0;
    nnu_tensor *c = NULL;
    NNU_TRY(nnu_tensor_contiguous(seg, &c));
    runs R;
    int64_t dhw[3];
    nnu_status st = build(c, labels, n_labels, dhw, &R);
    if (st) { nnu_tensor_release(c); return st; }
    int64_t vmax = 0, removed = 0;
    for (int64_t i = 0; i < R.n; i++)
        if (R.parent[i] == i && R.size[i] > vmax) vmax = R.size[i];
    char *base = nnu_tensor_data(c);
    size_t es = nnu_dtype_size(c->dtype);
    int64_t rows = dhw[0] * dhw[1];
    for (int64_t r = 0; r < rows; r++)
        for (int64_t i = R.row_start[r]; i < R.row_start[r + 1]; i++) {
            if (R.size[uf_find(R.parent, i)] == vmax) continue;   /* a largest one (ties kept) */
            for (int64_t x = R.x0[i]; x < R.x1[i]; x++)
                nnu_dtype_store(c->dtype, base + (r * dhw[2] + x) * (int64_t)es, (double)background);
            removed += R.x1[i] - R.x0[i];
        }
    runs_free(&R);
    if (c != seg && removed) st = nnu_tensor_copy(seg, c);   /* write back a strided input */
    nnu_tensor_release(c);
    if (!st && n_removed) *n_removed = removed;
    return st;
}

static int cmp_desc(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

nnu_status nnu_components_sizes(const nnu_tensor *seg, const int64_t *labels, int n_labels,
                                int64_t *sizes, int64_t cap, int64_t *n) {
    *n = 0;
    nnu_tensor *c = NULL;
    NNU_TRY(nnu_tensor_contiguous((nnu_tensor *)seg, &c));   /* read only */
    runs R;
    int64_t dhw[3];
    nnu_status st = build(c, labels, n_labels, dhw, &R);
    nnu_tensor_release(c);
    if (st) return st;
    int64_t m = 0;
    for (int64_t i = 0; i < R.n; i++)
        if (R.parent[i] == i) R.size[m++] = R.size[i];   /* compact root sizes in place */
    qsort(R.size, (size_t)m, sizeof(int64_t), cmp_desc);
    for (int64_t i = 0; i < m && i < cap; i++) sizes[i] = R.size[i];
    *n = m;
    runs_free(&R);
    return NNU_STATUS_OK;
}
