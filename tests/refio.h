/* refio.h: reader of the committed fixture container written by tests/gen/refio.py
 * (magic "NNUREF1\0", u32 version 1, u32 count, then per array: name, dtype
 * string, ndim, int64 shape, raw C-order data; little endian). Header-only,
 * for the C tests. A failed load prints the command that regenerates the file. */
#ifndef REFIO_H
#define REFIO_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nnu_tensor.h"

/* Loads array `name` from path into a new tensor; NULL (and a message) on failure. */
static nnu_tensor *refio_load(const char *path, const char *name, const char *regen) {
    FILE *f = fopen(path, "rb");
    nnu_tensor *out = NULL;
    char magic[8];
    uint32_t ver = 0, count = 0;
    if (!f || fread(magic, 1, 8, f) != 8 || memcmp(magic, "NNUREF1", 8) != 0 ||
        fread(&ver, 4, 1, f) != 1 || fread(&count, 4, 1, f) != 1 || ver != 1) {
        fprintf(stderr, "cannot read fixture %s\nHINT: regenerate with: %s\n", path, regen);
        if (f) fclose(f);
        return NULL;
    }
    for (uint32_t i = 0; i < count && !out; i++) {
        uint32_t nl = 0, dl = 0, nd = 0;
        char nm[256] = {0}, dt[16] = {0};
        int64_t shape[NNU_MAX_DIMS] = {0};
        if (fread(&nl, 4, 1, f) != 1 || nl >= sizeof nm || fread(nm, 1, nl, f) != nl ||
            fread(&dl, 4, 1, f) != 1 || dl >= sizeof dt || fread(dt, 1, dl, f) != dl ||
            fread(&nd, 4, 1, f) != 1 || nd > NNU_MAX_DIMS || fread(shape, 8, nd, f) != nd)
            break;
        nnu_dtype dtype;
        if (!nnu_dtype_from_name(dt, &dtype)) break;
        int64_t n = 1;
        for (uint32_t a = 0; a < nd; a++) n *= shape[a];
        size_t nbytes = (size_t)n * nnu_dtype_size(dtype);
        if (strcmp(nm, name) != 0) {
            if (fseek(f, (long)nbytes, SEEK_CUR)) break;
            continue;
        }
        if (nnu_tensor_new(dtype, (int)nd, shape, &out) != NNU_STATUS_OK) break;
        if (fread(nnu_tensor_data(out), 1, nbytes, f) != nbytes) { nnu_tensor_release(out); out = NULL; break; }
    }
    fclose(f);
    if (!out) fprintf(stderr, "fixture %s has no array '%s'\nHINT: regenerate with: %s\n", path, name, regen);
    return out;
}

#endif
