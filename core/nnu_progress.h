/* nnu_progress: a thread-safe progress bar with ETA on stderr.
 *
 * When stderr is a terminal the bar is redrawn in place ("\r") at most ~10 times
 * a second; otherwise (logs, CI) a plain line is printed at each 10 % step and
 * at the end, so a log file gets about a dozen lines. Workers call
 * nnu_progress_add() from any thread; the bar only reads the clock and prints
 * while holding its mutex. Set the environment variable NNUNET_PROGRESS=0 to
 * silence every bar.
 *
 * Usage:
 *   nnu_progress *p; NNU_TRY(nnu_progress_new("fingerprint", n_cases, &p));
 *   ... nnu_progress_add(p, 1) per finished item (any thread) ...
 *   nnu_progress_finish(p); nnu_progress_free(p); */
#ifndef NNU_PROGRESS_H
#define NNU_PROGRESS_H

#include <stdint.h>

#include "nnu_status.h"

typedef struct nnu_progress nnu_progress;

/* label: shown before the bar (copied); total: number of units (> 0). */
nnu_status nnu_progress_new(const char *label, int64_t total, nnu_progress **out);
/* Adds n finished units; thread-safe; redraws when due. NULL-safe. */
void nnu_progress_add(nnu_progress *p, int64_t n);
/* Units done so far. */
int64_t nnu_progress_done(const nnu_progress *p);
/* Draws the final state with the elapsed time and ends the line. NULL-safe, idempotent. */
void nnu_progress_finish(nnu_progress *p);
void nnu_progress_free(nnu_progress *p);   /* NULL-safe; does not print */

/* "1h02m", "3m05s", "12.3s" for a duration in seconds (into buf; returns buf). */
char *nnu_progress_format_seconds(double s, char *buf, int len);

#endif
