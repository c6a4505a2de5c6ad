/* nnu_torch_ckpt: PyTorch checkpoint files (torch.save's zip format), read and written,
 * so trained models move both ways between the reference nnU-Net and this program.
 *
 * The container (torch.save since PyTorch 1.6; torch/serialization.py):
 *   a zip archive, entries STORED, all under one top folder <prefix>/ (torch uses the
 *   file's stem, we write "archive"):
 *     <prefix>/data.pkl       the saved object, a pickle (protocol 2) whose tensors are
 *                             torch._utils._rebuild_tensor_v2(storage, storage_offset,
 *                             size, stride, requires_grad, backward_hooks[, metadata]),
 *                             storage = persistent id ('storage', torch.FloatStorage |
 *                             HalfStorage | BFloat16Storage | DoubleStorage | ..., key,
 *                             location, numel)
 *     <prefix>/data/<key>     the storage's raw little-endian elements
 *     <prefix>/version        "3\n";  <prefix>/byteorder "little" (absent: little)
 * Tensors may be views (any offset and strides) and share storages (state-dict aliases).
 * The legacy format (a bare pickle stream, before 1.6) and TorchScript archives are
 * rejected with a message saying so.
 *
 * The reference nnU-Net checkpoint (nnUNetTrainer.save_checkpoint) is a dict:
 *   network_weights   OrderedDict name -> tensor (the network's state_dict, including
 *                     the aliases *.all_modules.<k>.* and decoder.encoder.*)
 *   optimizer_state, grad_scaler_state, logging (the logger's lists), _best_ema,
 *   current_epoch, init_args {plans, configuration, fold, dataset_json, device},
 *   trainer_name, inference_allowed_mirroring_axes (a tuple of ints)
 *
 * Loading one into an nnu_net (nnu_torch_ckpt_load): the state dict is the value of
 * `network_weights`, or the top-level object when that is itself a state dict; a key's
 * `_orig_mod.` prefix (torch.compile) is stripped, and `module.` (DataParallel) when the
 * name without it is the network's (as nnUNetTrainer.load_checkpoint); alias keys
 * (containing ".all_modules." or starting with "decoder.encoder.") are skipped; every
 * tensor of the net must be present with its shape; any other key is an error naming
 * it. Storages of float32, float16, bfloat16 and float64 are converted to float.
 *
 * Messages read "torch checkpoint '<path>': <problem>". */
#ifndef NNU_TORCH_CKPT_H
#define NNU_TORCH_CKPT_H

#include <stddef.h>
#include <stdint.h>

#include "nnu_net.h"
#include "nnu_pickle.h"
#include "nnu_status.h"

#define NNU_TORCH_MAX_DIMS 8

/* ---- the container ---- */

/* 1 when path starts with the zip magic "PK\3\4", 0 when not (or shorter), -1 when it
 * cannot be opened (errno set) */
int nnu_torch_is_zip(const char *path);

typedef struct nnu_torch_file nnu_torch_file;

/* Opens a torch.save zip and unpickles its data.pkl. */
nnu_status nnu_torch_open(const char *path, nnu_torch_file **out);
void       nnu_torch_close(nnu_torch_file *f);            /* NULL-safe */
const nnu_pk *nnu_torch_root(const nnu_torch_file *f);    /* the saved object */
const char   *nnu_torch_path(const nnu_torch_file *f);

/* A tensor of data.pkl, described (its elements are read by nnu_torch_tensor_read). */
typedef struct nnu_torch_tensor {
    char    storage_key[64];       /* the entry <prefix>/data/<key> */
    char    storage_type[32];      /* "FloatStorage", ... */
    int     elsize;                /* bytes per storage element */
    int64_t storage_numel;         /* from the persistent id */
    int64_t offset;                /* storage_offset, in elements */
    int     ndim;
    int64_t shape[NNU_TORCH_MAX_DIMS], stride[NNU_TORCH_MAX_DIMS];
    int64_t numel;
} nnu_torch_tensor;

/* 1 when v is a tensor node (_rebuild_tensor_v2, or _rebuild_parameter around one) */
int nnu_torch_is_tensor(const nnu_pk *v);
/* Describes tensor node v (`name` is for messages); ERR_FORMAT on a malformed one,
 * ERR_UNSUPPORTED on a storage type that is not a float type. */
nnu_status nnu_torch_tensor_of(const nnu_torch_file *f, const nnu_pk *v, const char *name,
                               nnu_torch_tensor *t);
/* Reads t's numel elements in C order (any strides) as floats into dst; checks that
 * the storage entry exists, is large enough for every element and its CRC. */
nnu_status nnu_torch_tensor_read(nnu_torch_file *f, const nnu_torch_tensor *t, const char *name,
                                 float *dst);

/* ---- nnU-Net checkpoints ---- */

/* The state dict of a checkpoint's saved object: root['network_weights'], or root
 * itself when every value is a tensor (a bare torch.save(net.state_dict())); NULL when
 * neither. */
const nnu_pk *nnu_torch_state_dict(const nnu_pk *root);

/* The index of net's tensor for a state-dict key, after stripping torch.compile's
 * `_orig_mod.` and (when the name without it is the net's, as
 * nnUNetTrainer.load_checkpoint does) DataParallel's `module.`; *name gets the stripped
 * name. -1: not the net's. */
int nnu_torch_key_to_tensor(const nnu_net *net, const char *key, const char **name);

/* What a checkpoint says besides its weights (absent fields: empty / -1). */
typedef struct nnu_torch_ckpt_info {
    char     trainer_name[128];          /* "" when absent */
    char     configuration[128];         /* init_args.configuration, "" when absent */
    int64_t  current_epoch;              /* -1 when absent */
    int      n_mirror;                   /* inference_allowed_mirroring_axes: -1 absent (or None) */
    int      mirror_axes[NNU_TORCH_MAX_DIMS];
    int      nkeys;                      /* the state dict's keys as stored, in order */
    char   **keys;
} nnu_torch_ckpt_info;

nnu_status nnu_torch_ckpt_info_read(const char *path, nnu_torch_ckpt_info *info);
void       nnu_torch_ckpt_info_free(nnu_torch_ckpt_info *info);   /* zeroes it */

/* Loads the state dict of path into net (rules at the top). Every check is made
 * before the first write, so a failing load leaves the net unchanged. The optimizer
 * state starts afresh (momentum zeroed, step count 0), as a weights-only load. */
nnu_status nnu_torch_ckpt_load(nnu_net *net, const char *path);
/* the same on an open file (info, when not NULL, is filled too) */
nnu_status nnu_torch_ckpt_load_file(nnu_net *net, nnu_torch_file *f, nnu_torch_ckpt_info *info);

/* The metadata written beside the weights. */
typedef struct nnu_torch_ckpt_meta {
    const char *trainer_name;            /* "nnUNetTrainer" (NULL: that) */
    const char *configuration;           /* "3d_fullres" (required) */
    int         fold;                    /* >= 0, or -1 for "all" */
    const char *plans_json;              /* the plans (JSON object text; required) */
    const char *dataset_json;            /* dataset.json (JSON object text; required) */
    int         n_mirror;                /* inference_allowed_mirroring_axes (-1: None) */
    const int  *mirror_axes;
    int64_t     current_epoch;           /* epochs completed */
    double      best_ema;                /* _best_ema (NaN: None) */
    int         no_fsync;                /* tests: skip the fsyncs */
} nnu_torch_ckpt_meta;

/* Writes net's weights and m as a reference checkpoint (nnUNetTrainer.save_checkpoint's
 * dict; optimizer_state and grad_scaler_state None, logging the logger's empty lists)
 * atomically: <path>.tmp, fsync, rename, fsync of the folder. Every key the reference
 * network's load_state_dict(strict=True) expects is written, the aliases pointing at
 * the storage of their primary. Data entries start at multiples of 64 bytes. */
nnu_status nnu_torch_ckpt_save(const nnu_net *net, const char *path, const nnu_torch_ckpt_meta *m);

/* JSON text -> pickle values (objects -> dict, arrays -> list, integer literals ->
 * int, other numbers -> float, true/false/null -> bool/None); `what` names the text
 * in messages */
nnu_status nnu_torch_json_to_pk(nnu_pk_doc *d, const char *json, const char *what, nnu_pk **out);

#endif
