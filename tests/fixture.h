/* fixture.h: loader for the NNUFIX01 array files written by the tests/gen/ scripts
 * (format in tests/gen/gen_resample_ref.py: magic, version, count, then named
 * f32/f64 arrays). Header-only; each test includes it once. */
#ifndef FIXTURE_H
#define FIXTURE_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nnu_tensor.h"

typedef struct fixture_array { char name[33]; nnu_tensor *t; } fixture_array;
typedef struct fixture { int n; fixture_array *a; } fixture;

/* Loads path; on failure prints the command that regenerates it and returns 0. */
static int fixture_load(const char *path, const char *regen, fixture *fx) {
    memset(fx, 0, sizeof *fx);
    FILE *f = fopen(path, "rb");
    char magic[8];
    uint32_t ver = 0, count = 0;
    int ok = f && fread(magic, 1, 8, f) == 8 && memcmp(magic, "NNUFIX01", 8) == 0 &&
             fread(&ver, 4, 1, f) == 1 && ver == 1 && fread(&count, 4, 1, f) == 1;
    if (ok) fx->a = calloc(count, sizeof *fx->a);
    for (uint32_t i = 0; ok && i < count; i++) {
        uint32_t dt, nd;
        int64_t shape[NNU_MAX_DIMS];
        ok = fread(fx->a[i].name, 1, 32, f) == 32 && fread(&dt, 4, 1, f) == 1 && fread(&nd, 4, 1, f) == 1 &&
             nd <= NNU_MAX_DIMS && fread(shape, 8, nd, f) == nd && dt <= 1;
        if (ok) ok = nnu_tensor_new(dt ? NNU_DTYPE_F64 : NNU_DTYPE_F32, (int)nd, shape, &fx->a[i].t) == 0;
        if (ok) {
            size_t nb = (size_t)nnu_tensor_numel(fx->a[i].t) * (dt ? 8 : 4);
            ok = fread(nnu_tensor_data(fx->a[i].t), 1, nb, f) == nb;
        }
        fx->n = (int)i + 1;
    }
    if (f) fclose(f);
    if (!ok) fprintf(stderr, "cannot load fixture %s\nHINT: regenerate it with: %s\n", path, regen);
    return ok;
}

static nnu_tensor *fixture_get(const fixture *fx, const char *name) {
    for (int i = 0; i < fx->n; i++)
        if (strcmp(fx->a[i].name, name) == 0) return fx->a[i].t;
    return NULL;
}

static void fixture_free(fixture *fx) {
    for (int i = 0; i < fx->n; i++) nnu_tensor_release(fx->a[i].t);
    free(fx->a);
    memset(fx, 0, sizeof *fx);
}

#endif
