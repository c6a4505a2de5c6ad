/* nnu_checkpoint: the training checkpoint file (checkpoint_latest/best/final.pth of a
 * fold folder; nnunet-behaviour.md §7.5 lists what the reference keeps), a
 * safetensors file (nnu_safetensors.h) that Python's safetensors library reads:
 *
 *   tensors (F32, in this order in the data section):
 *     <name>                        the network's parameters with their PyTorch names
 *                                   and shapes (the layout below; without one a single
 *                                   tensor "params" [n])
 *     optimizer.<buffer>.<name>     each optimizer buffer with the same layout:
 *                                   momentum (SGD), exp_avg, exp_avg_sq, max_exp_avg_sq (Adam)
 *   __metadata__ (strings):
 *     format "nnunet-checkpoint", format_version "1",
 *     nnunet_crc32   CRC-32 of the whole file (nnu_safetensors.h: any bit flip is caught)
 *     trainer        "nnUNetTrainer", ...
 *     identity       "Dataset004_Hippocampus/nnUNetPlans/3d_fullres"
 *     plans_hash     decimal u64: hash of the configuration the net was built from
 *     epoch          epochs completed (the reference's current_epoch): the next to run
 *     best_ema       JSON number, or null before the first epoch (the reference's None)
 *     sgd_steps      optimizer steps taken (SGD momentum init, Adam bias correction);
 *                    the same key as Net:save, so nnunet.net's Net:load reads these files
 *     n_classes      pseudo-Dice entries per epoch
 *     seed, train_batches, val_batches   the sampling seed and batches drawn so far
 *     trainer_state  JSON text of the trainer (init args, mirror axes, schedule state, ...)
 *     logs           JSON object of the reference logger's lists, one entry per epoch:
 *                    mean_fg_dice, ema_fg_dice, dice_per_class_or_region (lists of
 *                    n_classes), train_losses, val_losses, lrs, epoch_start_timestamps,
 *                    epoch_end_timestamps; numbers with 17 significant digits (exact
 *                    round trip), NaN as null, +-inf as +-1e999
 *
 * Saving is atomic (tmp + fsync + rename + fsync of the folder); loading validates the
 * container (nnu_st_open: size, header, CRC, tiling) and then every field, naming the
 * file and the problem: "checkpoint '<path>': <problem>". */
#ifndef NNU_CHECKPOINT_H
#define NNU_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "nnu_safetensors.h"
#include "nnu_tensor.h"

#define NNU_CKPT_FORMAT      "nnunet-checkpoint"
#define NNU_CKPT_VERSION     1
#define NNU_CKPT_CRC_KEY     "nnunet_crc32"
#define NNU_CKPT_MAX_OPTIM   4     /* optimizer buffers of n_params floats each */
#define NNU_CKPT_NAME_LEN    32    /* optimizer buffer names */
#define NNU_CKPT_TENSOR_NAME 128   /* parameter tensor names */

/* Logger arrays of one value per epoch (the reference logger's lists). */
enum {
    NNU_CKPT_LOG_TRAIN_LOSS = 0,   /* train_losses */
    NNU_CKPT_LOG_VAL_LOSS,         /* val_losses */
    NNU_CKPT_LOG_MEAN_FG_DICE,     /* mean_fg_dice (NaN allowed) */
    NNU_CKPT_LOG_EMA_FG_DICE,      /* ema_fg_dice */
    NNU_CKPT_LOG_LR,               /* lrs */
    NNU_CKPT_LOG_EPOCH_START,      /* epoch_start_timestamps (s since the epoch) */
    NNU_CKPT_LOG_EPOCH_END,        /* epoch_end_timestamps */
    NNU_CKPT_NLOGS
};
/* the logger's key of log i ("train_losses", ...) */
const char *nnu_checkpoint_log_name(int i);

/* One parameter tensor of the flat block: the tensors tile the block in order. */
typedef struct nnu_checkpoint_tensor {
    char    name[NNU_CKPT_TENSOR_NAME];   /* "encoder.stages.0.0.convs.0.conv.weight" */
    int     ndim;                         /* 0 .. NNU_ST_MAX_DIMS */
    int64_t shape[NNU_ST_MAX_DIMS];
} nnu_checkpoint_tensor;

typedef struct nnu_checkpoint {
    char        trainer[64];          /* "nnUNetTrainer" */
    char        identity[256];        /* e.g. "Dataset004_Hippocampus/nnUNetPlans/3d_fullres" */
    uint64_t    plans_hash;           /* hash of the configuration the net was built from */
    int64_t     epoch;                /* epochs completed: the next epoch to run */
    double      best_ema;             /* NaN: none yet (the reference's None) */
    int64_t     optim_steps;          /* optimizer steps taken (SGD momentum init, Adam bias) */
    nnu_tensor *params;               /* f32, contiguous, n_params elements (any shape) */
    int         n_tensors;            /* layout of params (0 on save: one tensor "params") */
    nnu_checkpoint_tensor *tensors;
    int         n_optim;              /* 0 .. NNU_CKPT_MAX_OPTIM */
    char        optim_name[NNU_CKPT_MAX_OPTIM][NNU_CKPT_NAME_LEN];   /* "momentum", ... */
    nnu_tensor *optim[NNU_CKPT_MAX_OPTIM];   /* f32, contiguous, as many elements as params */
    int64_t     n_logged;             /* entries of every log array */
    int         n_classes;            /* pseudo-Dice entries per epoch */
    double     *logs[NNU_CKPT_NLOGS]; /* n_logged each (NULL allowed when n_logged = 0) */
    double     *dice_per_class;       /* n_logged * n_classes, epoch-major */
    int64_t     seed;                 /* sampling seed */
    int64_t     train_batches, val_batches;   /* batches drawn so far (implied by epoch; kept
                                                 for inspection) */
    char       *meta;                 /* trainer state, JSON text (NUL-terminated after load) */
    size_t      meta_len;
} nnu_checkpoint;

typedef nnu_st_save_opts nnu_checkpoint_save_opts;   /* no_fsync, stop_before_rename */

/* Writes ck to path atomically (see top). Arrays are borrowed. opts may be NULL (its
 * crc_key is ignored: checkpoints always carry NNU_CKPT_CRC_KEY). */
nnu_status nnu_checkpoint_save(const char *path, const nnu_checkpoint *ck,
                               const nnu_checkpoint_save_opts *opts);

/* Reads and validates path into *ck (zeroed first). Everything in *ck is owned by the
 * caller afterwards: nnu_checkpoint_free. ck->tensors is the parameters' layout in the
 * file's order. On failure *ck is left empty and the message reads
 * "checkpoint '<path>': <problem>" (ERR_FORMAT; ERR_IO when it cannot be opened). */
nnu_status nnu_checkpoint_load(const char *path, nnu_checkpoint *ck);

/* Frees what nnu_checkpoint_load allocated (tensors released); zeroes *ck. */
void nnu_checkpoint_free(nnu_checkpoint *ck);

/* Compares a checkpoint's layout with a network's (same names, shapes and order);
 * ERR_SHAPE naming the first mismatching tensor, e.g. "checkpoint '<path>': tensor
 * 'decoder.seg_layers.0.weight' is [3,4,1,1,1], the network's is [2,4,1,1,1] (the
 * checkpoint does not match the plan's architecture)". */
nnu_status nnu_checkpoint_check_layout(const char *path, const nnu_checkpoint_tensor *got, int ngot,
                                       const nnu_checkpoint_tensor *want, int nwant);

#endif
