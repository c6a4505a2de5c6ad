/* nnu_checkpoint: the training checkpoint file (checkpoint_latest/best/final.pth
 * of a fold folder; nnunet-behaviour.md §7.5 lists what the reference keeps).
 *
 * What one file holds: the trainer name, the plans/configuration identity (text
 * + 64-bit hash, checked on resume), the epoch counter (the reference's
 * current_epoch = epochs completed), the best EMA pseudo-Dice, the optimizer step
 * count, the flat parameter block (R7), the optimizer buffers (SGD momentum, or
 * Adam's two moments), the logger arrays (one value per logged epoch), opaque RNG
 * state bytes and a JSON text for everything else (init args, mirror axes, ...).
 *
 * File layout (little-endian; every size checked on load):
 *   header, 64 bytes:
 *     0  magic "NNUCKPT\0"           8  u32 version (NNU_CKPT_VERSION)
 *     12 u32 header bytes (64)       16 u64 payload bytes
 *     24 u32 CRC-32 (zlib) of the payload   28 u32 number of sections
 *     32 u32 byte-order mark 0x01020304     36..59 zero
 *     60 u32 CRC-32 of bytes 0..59
 *   payload: sections, each
 *     char tag[24] (NUL-padded), u32 kind (1 f32, 2 f64, 3 i64, 4 bytes),
 *     u32 0, u64 element count, then count * element size bytes, zero-padded
 *     to a multiple of 8.
 *   The file size must equal 64 + payload bytes exactly.
 *
 * Atomicity: nnu_checkpoint_save writes "<path>.tmp", fsyncs it, renames it onto
 * <path> and fsyncs the folder. A kill -9 at any moment therefore leaves <path>
 * either absent, the previous complete checkpoint, or the new complete one; a
 * stale .tmp is overwritten by the next save and never read by the loader.
 *
 * Loading streams the file (CRC computed on the fly, arrays read straight into
 * their buffers) and rejects, naming the file and the problem: a wrong magic,
 * version or byte order, a header CRC mismatch, a truncated or over-long file, a
 * payload CRC mismatch (bit flips), unknown or malformed sections, missing
 * required sections and inconsistent sizes. */
#ifndef NNU_CHECKPOINT_H
#define NNU_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "nnu_tensor.h"

#define NNU_CKPT_VERSION     1
#define NNU_CKPT_HEADER      64
#define NNU_CKPT_MAX_OPTIM   4     /* optimizer buffers of n_params floats each */
#define NNU_CKPT_NAME_LEN    32

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
/* section tag of log i ("log.train_losses", ...) */
const char *nnu_checkpoint_log_name(int i);

typedef struct nnu_checkpoint {
    char        trainer[64];          /* "nnUNetTrainer" */
    char        identity[256];        /* e.g. "Dataset004_Hippocampus/nnUNetPlans/3d_fullres" */
    uint64_t    plans_hash;           /* hash of the configuration the net was built from */
    int64_t     epoch;                /* epochs completed: the next epoch to run */
    double      best_ema;             /* NaN: none yet (the reference's None) */
    int64_t     optim_steps;          /* optimizer steps taken (SGD momentum init, Adam bias) */
    nnu_tensor *params;               /* f32, contiguous, n_params elements (any shape) */
    int         n_optim;              /* 0 .. NNU_CKPT_MAX_OPTIM */
    char        optim_name[NNU_CKPT_MAX_OPTIM][NNU_CKPT_NAME_LEN];   /* "momentum", ... */
    nnu_tensor *optim[NNU_CKPT_MAX_OPTIM];   /* f32, contiguous, as many elements as params */
    int64_t     n_logged;             /* entries of every log array */
    int         n_classes;            /* pseudo-Dice entries per epoch */
    double     *logs[NNU_CKPT_NLOGS]; /* n_logged each (NULL allowed when n_logged = 0) */
    double     *dice_per_class;       /* n_logged * n_classes, epoch-major */
    uint8_t    *rng;                  /* opaque RNG state bytes */
    size_t      rng_len;
    char       *meta;                 /* JSON text (NUL-terminated after load) */
    size_t      meta_len;
} nnu_checkpoint;

/* Save options. */
typedef struct nnu_checkpoint_save_opts {
    int no_fsync;            /* 1: skip the fsyncs (tests; the rename stays atomic) */
    int stop_before_rename;  /* tests: write and sync the .tmp, then return without renaming
                                (what a crash between the two steps leaves behind) */
} nnu_checkpoint_save_opts;

/* Writes ck to path atomically (see top). Arrays are borrowed. opts may be NULL. */
nnu_status nnu_checkpoint_save(const char *path, const nnu_checkpoint *ck,
                               const nnu_checkpoint_save_opts *opts);

/* Reads and validates path into *ck (zeroed first). Everything in *ck is owned
 * by the caller afterwards: nnu_checkpoint_free. On failure *ck is left empty
 * and the message reads "checkpoint '<path>': <problem>". */
nnu_status nnu_checkpoint_load(const char *path, nnu_checkpoint *ck);

/* Frees what nnu_checkpoint_load allocated (tensors released); zeroes *ck. */
void nnu_checkpoint_free(nnu_checkpoint *ck);

/* zlib CRC-32 of n bytes continuing from crc (start with 0). */
uint32_t nnu_crc32(uint32_t crc, const void *data, size_t n);

#endif
