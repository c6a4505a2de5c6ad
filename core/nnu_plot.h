/* nnu_plot: progress.png of a training fold, drawn with cairo like the
 * reference's nnUNetLogger.plot_progress_png (nnunet-behaviour.md §7.6).
 *
 * Three panels stacked vertically, x = epoch (0 .. n-1) in each:
 *   1. train loss (blue) and validation loss (red) on the left axis "loss";
 *      pseudo-Dice (green, dotted) and its EMA (green, solid) on a right axis
 *      "pseudo dice"; legends above the panel as the reference places them;
 *   2. epoch duration in seconds ("time [s]", y from 0);
 *   3. learning rate.
 * Style: seaborn's darkgrid (grey-blue axes, white grid lines, no spines) with
 * its "deep" colour codes, as `sns.set(font_scale=2.5)` gives the reference.
 * The reference figure is 30 x 54 inches at 100 dpi = 3000 x 5400 pixels; other
 * sizes scale fonts and line widths with the width. NaN values leave gaps.
 *
 * The file is written to "<path>.tmp" and renamed, so a viewer never sees half
 * a PNG. Without cairo at build time (NNUNET_HAVE_CAIRO undefined) the function
 * returns ERR_UNSUPPORTED. */
#ifndef NNU_PLOT_H
#define NNU_PLOT_H

#include <stdint.h>

#include "nnu_status.h"

#define NNU_PLOT_REF_WIDTH  3000
#define NNU_PLOT_REF_HEIGHT 5400

typedef struct nnu_progress_logs {
    int64_t       n;              /* epochs logged */
    const double *train_loss;     /* n values each */
    const double *val_loss;
    const double *mean_fg_dice;
    const double *ema_fg_dice;
    const double *epoch_time;     /* seconds (end - start timestamp) */
    const double *lr;
} nnu_progress_logs;

/* 1 if this build can draw (cairo found), else 0. */
int nnu_plot_available(void);

/* Draws the three panels into a width x height PNG at path (0, 0: the
 * reference's 3000 x 5400). n may be 0 (empty axes). */
nnu_status nnu_plot_progress(const char *path, const nnu_progress_logs *logs, int width, int height);

#endif
