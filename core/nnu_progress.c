/* nnu_progress.c: see nnu_progress.h.
 * Layout of a TTY line:  "label  [#########.........]  42/230  18%  3.1 it/s  ETA 1m01s"
 * The ETA is remaining / (done / elapsed), i.e. the mean rate since the start
 * (workers finish items in bursts, so an instantaneous rate would jump around). */
#include "nnu_progress.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BAR_WIDTH 28
#define TTY_MIN_INTERVAL 0.1   /* seconds between in-place redraws */

struct nnu_progress {
    pthread_mutex_t mu;
    char     label[64];
    int64_t  total, done;
    double   t0, last_draw;
    int      tty, quiet, finished;
    int      last_decile;      /* non-TTY: last 10 % step printed */
};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

char *nnu_progress_format_seconds(double s, char *buf, int len) {
    if (s < 0 || s != s) s = 0;
    if (s < 60) snprintf(buf, (size_t)len, "%.1fs", s);
    else if (s < 3600) snprintf(buf, (size_t)len, "%dm%02ds", (int)(s / 60), (int)s % 60);
    else snprintf(buf, (size_t)len, "%dh%02dm", (int)(s / 3600), ((int)s % 3600) / 60);
    return buf;
}

nnu_status nnu_progress_new(const char *label, int64_t total, nnu_progress **out) {
    NNU_CHECK(out, NNU_STATUS_ERR_ARG, "progress: out is NULL");
    *out = NULL;
    NNU_CHECK(total > 0, NNU_STATUS_ERR_ARG, "progress '%s': total %lld must be > 0",
              label ? label : "", (long long)total);
    nnu_progress *p = calloc(1, sizeof *p);
    NNU_CHECK(p, NNU_STATUS_ERR_OOM, "progress: out of memory");
    pthread_mutex_init(&p->mu, NULL);
    snprintf(p->label, sizeof p->label, "%s", label ? label : "");
    p->total = total;
    p->t0 = p->last_draw = now_s();
    p->tty = isatty(STDERR_FILENO);
    const char *env = getenv("NNUNET_PROGRESS");
    p->quiet = env && strcmp(env, "0") == 0;
    p->last_decile = -1;
    *out = p;
    return NNU_STATUS_OK;
}

/* Prints the current state; caller holds the mutex. final: end the line. */
static void draw(nnu_progress *p, double t, int final) {
    double el = t - p->t0, frac = (double)p->done / (double)p->total;
    double rate = el > 0 ? (double)p->done / el : 0;
    char eta[32], elapsed[32];
    nnu_progress_format_seconds(rate > 0 ? (double)(p->total - p->done) / rate : 0, eta, sizeof eta);
    nnu_progress_format_seconds(el, elapsed, sizeof elapsed);
    if (p->tty) {
        char bar[BAR_WIDTH + 1];
        int filled = (int)(frac * BAR_WIDTH);
        for (int i = 0; i < BAR_WIDTH; i++) bar[i] = i < filled ? '#' : '.';
        bar[BAR_WIDTH] = 0;
        fprintf(stderr, "\r%s [%s] %lld/%lld %3d%% %.2f/s %s %s\033[K%s", p->label, bar,
                (long long)p->done, (long long)p->total, (int)(frac * 100), rate,
                final ? "in" : "ETA", final ? elapsed : eta, final ? "\n" : "");
    } else {
        if (final)
            fprintf(stderr, "%s: %lld/%lld done in %s\n", p->label, (long long)p->done,
                    (long long)p->total, elapsed);
        else
            fprintf(stderr, "%s: %lld/%lld (%d%%) elapsed %s, ETA %s\n", p->label,
                    (long long)p->done, (long long)p->total, (int)(frac * 100), elapsed, eta);
    }
    fflush(stderr);
    p->last_draw = t;
}

void nnu_progress_add(nnu_progress *p, int64_t n) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->done += n;
    if (p->done > p->total) p->done = p->total;
    if (!p->quiet && !p->finished) {
        double t = now_s();
        if (p->tty) {
            if (t - p->last_draw >= TTY_MIN_INTERVAL || p->done == p->total) draw(p, t, 0);
        } else {
            int decile = (int)(10 * p->done / p->total);
            if (decile > p->last_decile && p->done < p->total) {
                p->last_decile = decile;
                draw(p, t, 0);
            }
        }
    }
    pthread_mutex_unlock(&p->mu);
}

int64_t nnu_progress_done(const nnu_progress *p) {
    if (!p) return 0;
    pthread_mutex_lock((pthread_mutex_t *)&p->mu);
    int64_t d = p->done;
    pthread_mutex_unlock((pthread_mutex_t *)&p->mu);
    return d;
}

void nnu_progress_finish(nnu_progress *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    if (!p->finished && !p->quiet) draw(p, now_s(), 1);
    p->finished = 1;
    pthread_mutex_unlock(&p->mu);
}

void nnu_progress_free(nnu_progress *p) {
    if (!p) return;
    pthread_mutex_destroy(&p->mu);
    free(p);
}
