/* nnu_npz: numpy .npz archives (zip of .npy members), written exactly as
 * numpy.savez_compressed does (numpy 1.24 / CPython zipfile): deflate level 6,
 * raw stream, date 1980-01-01, zip64 extra field in every local header,
 * zip64 records when an entry or offset exceeds 2^31 − 1 bytes. The file is
 * streamed: memory stays at one deflate window, whatever the array size.
 *
 * Used for --save_probabilities (docs/inference.md): CASE.npz holding
 * 'probabilities' (C, z, y, x) float32, next to CASE.json with the properties.
 *
 * The reader accepts stored and deflated members of any zip (also zip64) and
 * .npy version 1/2/3 headers with little-endian dtypes in C order. */
#ifndef NNU_NPZ_H
#define NNU_NPZ_H

#include "nnu_tensor.h"

typedef struct nnu_npz_writer nnu_npz_writer;

/* Creates (truncates) path. level: zlib level (-1 = default 6, 0 = stored in a
 * deflate stream, 1..9). */
nnu_status nnu_npz_create(const char *path, int level, nnu_npz_writer **out);
/* Appends member "<key>.npy" holding t (any strides; written in C order). */
nnu_status nnu_npz_add(nnu_npz_writer *w, const char *key, const nnu_tensor *t);
/* Writes the central directory and closes; frees w in every case. NULL-safe. */
nnu_status nnu_npz_close(nnu_npz_writer *w);

/* One-call form: n members keys[i] (without ".npy") = arrays[i]. */
nnu_status nnu_npz_save(const char *path, int n, const char *const *keys,
                        const nnu_tensor *const *arrays);

/* Reads member "<key>.npy" of an .npz into a new contiguous tensor. */
nnu_status nnu_npz_load(const char *path, const char *key, nnu_tensor **out);
/* A lone .npy file. */
nnu_status nnu_npy_load(const char *path, nnu_tensor **out);

/* The .npy header numpy writes for t (magic, version 1.0, dict, padding to 64):
 * into buf (at least 256 bytes); returns its length or -1 for unsupported dtypes. */
int nnu_npy_header(const nnu_tensor *t, char *buf, int cap);

#endif
