/* mirror.c: mirroring (§8.2 step 10), MaskImage (11), RemoveLabel (12) and the
 * deep-supervision seg downsampling (15). All exact integer / copy operations. */
#include <string.h>

#include "aug_internal.h"

/* Reverses axis `axis` of every (D, H, W) volume of n_vol consecutive volumes of
 * element size es, in place. */
static void flip_axis(void *base, size_t es, int n_vol, const int64_t s[3], int axis) {
    int64_t nv = s[0] * s[1] * s[2];
    char *p = base;
    char tmp[8];
    for (int v = 0; v < n_vol; v++, p += (size_t)nv * es) {
        if (axis == 2) {
            for (int64_t r = 0; r < s[0] * s[1]; r++) {
                char *row = p + (size_t)(r * s[2]) * es;
                for (int64_t i = 0, j = s[2] - 1; i < j; i++, j--) {
                    memcpy(tmp, row + i * es, es);
                    memcpy(row + i * es, row + j * es, es);
                    memcpy(row + j * es, tmp, es);
                }
            }
            continue;
        }
        /* swap whole rows (axis 1) or planes (axis 0) */
        int64_t outer = axis == 1 ? s[0] : 1, n = s[axis], inner = axis == 1 ? s[2] : s[1] * s[2];
        size_t nb = (size_t)inner * es;
        for (int64_t o = 0; o < outer; o++)
            for (int64_t i = 0, j = n - 1; i < j; i++, j--) {
                char *a = p + (size_t)((o * n + i) * inner) * es, *b = p + (size_t)((o * n + j) * inner) * es;
                for (size_t k = 0; k < nb; k += 8) {   /* swap in 8-byte pieces */
                    size_t m = nb - k < 8 ? nb - k : 8;
                    memcpy(tmp, a + k, m);
                    memcpy(a + k, b + k, m);
                    memcpy(b + k, tmp, m);
                }
            }
    }
}

void nnu_aug_mirror(nnu_aug_buf *b, int axes) {
    for (int a = 0; a < 3; a++) {
        if (!(axes & (1 << a)) || b->shape[a] < 2) continue;
        flip_axis(b->data, sizeof(float), b->c, b->shape, a);
        if (b->cs && b->seg) flip_axis(b->seg, sizeof(int16_t), b->cs, b->shape, a);
    }
}

void nnu_aug_mask(nnu_aug_buf *b, unsigned channels) {
    if (!b->seg || b->cs < 1) return;
    int64_t n = b->shape[0] * b->shape[1] * b->shape[2];
    for (int c = 0; c < b->c && c < 32; c++) {
        if (!(channels & (1u << c))) continue;
        float *x = b->data + c * n;
        for (int64_t i = 0; i < n; i++)
            if (b->seg[i] < 0) x[i] = 0.0f;
    }
}

void nnu_aug_remove_label(int16_t *seg, int64_t n, int16_t from, int16_t to) {
    for (int64_t i = 0; i < n; i++)
        if (seg[i] == from) seg[i] = to;
}

static inline int64_t nearest_exact(int64_t o, int64_t in, int64_t out) {
    float scale = (float)in / (float)out;
    int64_t s = (int64_t)__builtin_floorf(((float)o + 0.5f) * scale);
    return s < in - 1 ? s : in - 1;
}

void nnu_aug_downsample_seg(const int16_t *in, const int64_t si[3], int16_t *out, const int64_t so[3]) {
    for (int64_t d = 0; d < so[0]; d++) {
        int64_t sd = nearest_exact(d, si[0], so[0]);
        for (int64_t h = 0; h < so[1]; h++) {
            const int16_t *row = in + (sd * si[1] + nearest_exact(h, si[1], so[1])) * si[2];
            int16_t *o = out + (d * so[1] + h) * so[2];
            for (int64_t w = 0; w < so[2]; w++) o[w] = row[nearest_exact(w, si[2], so[2])];
        }
    }
}
