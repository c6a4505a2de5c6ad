/* nnu_plot.c: progress.png with cairo (see nnu_plot.h).
 *
 * Geometry is designed at the reference's 3000 x 5400 pixels and scaled: fonts
 * and line widths by s = width / 3000, the panel layout by the actual size.
 * Sizes at s = 1 follow matplotlib + seaborn at font_scale 2.5 and 100 dpi:
 * labels 30 pt = 42 px, ticks and legends 27.5 pt = 38 px, curves 4 pt = 5.6 px
 * (the dotted pseudo-Dice 3 pt), dotted pattern 1 : 1.65 line widths. Axis
 * limits are the finite data range plus 5 % margins (matplotlib's autoscale);
 * ticks are "nice" steps (1, 2, 2.5, 5 x 10^k) with at most ~8 per axis. */
#include "nnu_plot.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#ifdef NNUNET_HAVE_CAIRO
#include <cairo.h>

int nnu_plot_available(void) { return 1; }

typedef struct rgb { double r, g, b; } rgb;
/* seaborn "deep" colour codes (sns.set(color_codes=True)): b, r, g */
static const rgb C_BLUE = {0x4c / 255.0, 0x72 / 255.0, 0xb0 / 255.0};
static const rgb C_RED = {0xc4 / 255.0, 0x4e / 255.0, 0x52 / 255.0};
static const rgb C_GREEN = {0x55 / 255.0, 0xa8 / 255.0, 0x68 / 255.0};
static const rgb C_AXES = {0xea / 255.0, 0xea / 255.0, 0xf2 / 255.0};   /* darkgrid face */
static const rgb C_TEXT = {0.15, 0.15, 0.15};                            /* seaborn ".15" */

typedef struct rect { double x0, y0, x1, y1; } rect;   /* pixels, y down */
typedef struct range { double lo, hi; } range;

typedef struct series {
    const double *y;
    rgb           color;
    double        width;    /* px at s = 1 */
    int           dotted;
    const char   *label;
} series;

static void set_rgb(cairo_t *cr, rgb c) { cairo_set_source_rgb(cr, c.r, c.g, c.b); }

/* finite min/max of up to k arrays of n values, 5 % margins; *ok = 0 if none finite */
static range data_range(const double *const *v, int k, int64_t n, int from_zero) {
    double lo = INFINITY, hi = -INFINITY;
    for (int j = 0; j < k; j++)
        for (int64_t i = 0; i < n; i++)
            if (v[j] && isfinite(v[j][i])) { lo = fmin(lo, v[j][i]); hi = fmax(hi, v[j][i]); }
    if (!(lo <= hi)) { lo = 0; hi = 1; }
    if (hi - lo <= 1e-12 * fmax(1.0, fabs(hi))) {  /* constant: matplotlib's singular expansion */
        double d = fabs(lo) > 0 ? 0.05 * fabs(lo) : 0.05;
        lo -= d;
        hi += d;
    }
    double m = 0.05 * (hi - lo);
    range r = {lo - m, hi + m};
    if (from_zero) r.lo = 0;
    if (from_zero && r.hi <= 0) r.hi = 1;
    return r;
}

/* step of "nice" ticks covering r with at most max_ticks */
static double nice_step(range r, int max_ticks) {
    double raw = (r.hi - r.lo) / max_ticks;
    double mag = pow(10.0, floor(log10(raw)));
    static const double mult[] = {1, 2, 2.5, 5, 10};
    for (int i = 0; i < 5; i++)
        if (mult[i] * mag >= raw) return mult[i] * mag;
    return 10 * mag;
}

/* decimals needed to print multiples of step exactly enough */
static int step_decimals(double step) {
    int d = 0;
    while (d < 12 && fabs(step * pow(10.0, d) - nearbyint(step * pow(10.0, d))) > 1e-6 * step * pow(10.0, d))
        d++;
    return d;
}

static void fmt_tick(char *buf, size_t len, double v, int dec) {
    if (fabs(v) < 1e-15) v = 0;       /* no "-0.00" */
    snprintf(buf, len, "%.*f", dec, v);
}

typedef struct canvas {
    cairo_t *cr;
    double   s;               /* font/line scale */
} canvas;

static void text_at(canvas *c, const char *t, double x, double y, double size, double ax, double ay,
                    double angle) {
    cairo_t *cr = c->cr;
    cairo_text_extents_t e;
    cairo_set_font_size(cr, size * c->s);
    cairo_text_extents(cr, t, &e);
    cairo_save(cr);
    cairo_translate(cr, x, y);
    cairo_rotate(cr, angle);
    /* anchor (ax, ay) in [0, 1] of the text box: 0 = left/top */
    cairo_move_to(cr, -e.x_bearing - ax * e.width, -e.y_bearing - ay * e.height);
    set_rgb(cr, C_TEXT);
    cairo_show_text(cr, t);
    cairo_restore(cr);
}

static double px_x(rect a, range xr, double x) { return a.x0 + (x - xr.lo) / (xr.hi - xr.lo) * (a.x1 - a.x0); }
static double px_y(rect a, range yr, double y) { return a.y1 - (y - yr.lo) / (yr.hi - yr.lo) * (a.y1 - a.y0); }

/* axes background, grid lines and tick labels; side: 0 = left axis, 1 = right (labels only) */
static void draw_axis_y(canvas *c, rect a, range yr, int side, const char *label) {
    cairo_t *cr = c->cr;
    double step = nice_step(yr, 8);
    int dec = step_decimals(step);
    char buf[64];
    for (double v = ceil(yr.lo / step) * step; v <= yr.hi + 1e-9 * step; v += step) {
        double y = px_y(a, yr, v);
        if (!side) {
            cairo_set_source_rgb(cr, 1, 1, 1);
            cairo_set_line_width(cr, fmax(1.0, 1.4 * c->s));
            cairo_move_to(cr, a.x0, y);
            cairo_line_to(cr, a.x1, y);
            cairo_stroke(cr);
        }
        fmt_tick(buf, sizeof buf, v, dec);
        if (side) text_at(c, buf, a.x1 + 12 * c->s, y, 38, 0, 0.5, 0);
        else text_at(c, buf, a.x0 - 12 * c->s, y, 38, 1, 0.5, 0);
    }
    /* the label sits outside the widest tick label: estimate it from the range ends */
    cairo_set_font_size(cr, 38 * c->s);
    double wmax = 0;
    for (int i = 0; i < 2; i++) {
        cairo_text_extents_t e;
        fmt_tick(buf, sizeof buf, i ? yr.hi : yr.lo, dec);
        cairo_text_extents(cr, buf, &e);
        wmax = fmax(wmax, e.width);
    }
    double mid = 0.5 * (a.y0 + a.y1), off = 12 * c->s + wmax + 18 * c->s;
    if (side) text_at(c, label, a.x1 + off, mid, 42, 0.5, 0, -M_PI / 2);
    else text_at(c, label, a.x0 - off, mid, 42, 0.5, 1, -M_PI / 2);
}

static void draw_axis_x(canvas *c, rect a, range xr) {
    cairo_t *cr = c->cr;
    double step = nice_step(xr, 10);
    if (step < 1) step = 1;                      /* epochs are integers */
    int dec = step_decimals(step);
    char buf[64];
    for (double v = ceil(xr.lo / step) * step; v <= xr.hi + 1e-9 * step; v += step) {
        double x = px_x(a, xr, v);
        cairo_set_source_rgb(cr, 1, 1, 1);
        cairo_set_line_width(cr, fmax(1.0, 1.4 * c->s));
        cairo_move_to(cr, x, a.y0);
        cairo_line_to(cr, x, a.y1);
        cairo_stroke(cr);
        fmt_tick(buf, sizeof buf, v, dec);
        text_at(c, buf, x, a.y1 + 12 * c->s, 38, 0.5, 0, 0);
    }
    text_at(c, "epoch", 0.5 * (a.x0 + a.x1), a.y1 + 70 * c->s, 42, 0.5, 0, 0);
}

static void draw_series(canvas *c, rect a, range xr, range yr, const series *sr, int64_t n) {
    cairo_t *cr = c->cr;
    cairo_save(cr);
    cairo_rectangle(cr, a.x0, a.y0, a.x1 - a.x0, a.y1 - a.y0);
    cairo_clip(cr);
    set_rgb(cr, sr->color);
    double lw = sr->width * 1.39 * c->s;        /* points -> pixels at 100 dpi */
    cairo_set_line_width(cr, lw);
    cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
    if (sr->dotted) {
        double d[2] = {lw, 1.65 * lw};
        cairo_set_dash(cr, d, 2, 0);
    }
    int pen = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(sr->y[i])) { pen = 0; continue; }
        double x = px_x(a, xr, (double)i), y = px_y(a, yr, sr->y[i]);
        if (pen) cairo_line_to(cr, x, y);
        else cairo_move_to(cr, x, y);
        pen = 1;
    }
    cairo_stroke(cr);
    cairo_restore(cr);
}

/* legend box whose lower-left corner is at (x, y) (matplotlib loc=(fx, 1)) */
static void draw_legend(canvas *c, double x, double y, const series *sr, int k) {
    cairo_t *cr = c->cr;
    double fs = 38, line_h = fs * 1.45 * c->s, pad = 12 * c->s, sample = 70 * c->s;
    cairo_set_font_size(cr, fs * c->s);
    double wtext = 0;
    for (int i = 0; i < k; i++) {
        cairo_text_extents_t e;
        cairo_text_extents(cr, sr[i].label, &e);
        wtext = fmax(wtext, e.x_advance);
    }
    double w = 2 * pad + sample + 20 * c->s + wtext, h = 2 * pad + k * line_h;
    cairo_set_source_rgba(cr, 1, 1, 1, 0.8);
    cairo_rectangle(cr, x, y - h, w, h);
    cairo_fill_preserve(cr);
    cairo_set_source_rgb(cr, 0.8, 0.8, 0.8);
    cairo_set_line_width(cr, fmax(1.0, 1.4 * c->s));
    cairo_stroke(cr);
    for (int i = 0; i < k; i++) {
        double yy = y - h + pad + (i + 0.5) * line_h;
        cairo_save(cr);
        set_rgb(cr, sr[i].color);
        double lw = sr[i].width * 1.39 * c->s;
        cairo_set_line_width(cr, lw);
        if (sr[i].dotted) {
            double d[2] = {lw, 1.65 * lw};
            cairo_set_dash(cr, d, 2, 0);
        }
        cairo_move_to(cr, x + pad, yy);
        cairo_line_to(cr, x + pad + sample, yy);
        cairo_stroke(cr);
        cairo_restore(cr);
        text_at(c, sr[i].label, x + pad + sample + 20 * c->s, yy, fs, 0, 0.5, 0);
    }
}

static void fill_axes(canvas *c, rect a) {
    set_rgb(c->cr, C_AXES);
    cairo_rectangle(c->cr, a.x0, a.y0, a.x1 - a.x0, a.y1 - a.y0);
    cairo_fill(c->cr);
}

static void draw(cairo_t *cr, const nnu_progress_logs *L, int W, int H) {
    canvas c = {cr, W / (double)NNU_PLOT_REF_WIDTH};
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    int64_t n = L->n;
    range xr = {-0.05 * (n > 1 ? n - 1 : 1), (n > 1 ? n - 1 : 0) + 0.05 * (n > 1 ? n - 1 : 1)};
    /* vertical slots: legend strip (2 entries), axes, x tick labels + "epoch" */
    double slot = H / 3.0, top = 150 * c.s, bottom = 140 * c.s;
    double left = 0.09 * W, right = W - 0.09 * W;
    for (int p = 0; p < 3; p++) {
        rect a = {left, p * slot + top, right, (p + 1) * slot - bottom};
        if (a.y1 <= a.y0 + 4) a.y1 = a.y0 + 4;      /* tiny images: keep drawing sane */
        fill_axes(&c, a);
        if (p == 0) {
            const double *loss[2] = {L->train_loss, L->val_loss};
            const double *dice[2] = {L->mean_fg_dice, L->ema_fg_dice};
            range yl = data_range(loss, 2, n, 0), yd = data_range(dice, 2, n, 0);
            series sl[2] = {{L->train_loss, C_BLUE, 4, 0, "loss_tr"}, {L->val_loss, C_RED, 4, 0, "loss_val"}};
            series sd[2] = {{L->mean_fg_dice, C_GREEN, 3, 1, "pseudo dice"},
                            {L->ema_fg_dice, C_GREEN, 4, 0, "pseudo dice (mov. avg.)"}};
            draw_axis_x(&c, a, xr);
            draw_axis_y(&c, a, yl, 0, "loss");
            draw_axis_y(&c, a, yd, 1, "pseudo dice");
            for (int i = 0; i < 2; i++) if (sl[i].y) draw_series(&c, a, xr, yl, &sl[i], n);
            for (int i = 0; i < 2; i++) if (sd[i].y) draw_series(&c, a, xr, yd, &sd[i], n);
            draw_legend(&c, a.x0, a.y0, sl, 2);
            draw_legend(&c, a.x0 + 0.2 * (a.x1 - a.x0), a.y0, sd, 2);
        } else {
            const double *v = p == 1 ? L->epoch_time : L->lr;
            range yr = data_range(&v, 1, n, p == 1);
            series sr = {v, C_BLUE, 4, 0, p == 1 ? "epoch duration" : "learning rate"};
            draw_axis_x(&c, a, xr);
            draw_axis_y(&c, a, yr, 0, p == 1 ? "time [s]" : "learning rate");
            if (v) draw_series(&c, a, xr, yr, &sr, n);
            draw_legend(&c, a.x0, a.y0, &sr, 1);
        }
    }
}

nnu_status nnu_plot_progress(const char *path, const nnu_progress_logs *logs, int width, int height) {
    NNU_CHECK(path && logs && logs->n >= 0, NNU_STATUS_ERR_ARG, "plot_progress: bad arguments");
    if (width <= 0 || height <= 0) { width = NNU_PLOT_REF_WIDTH; height = NNU_PLOT_REF_HEIGHT; }
    NNU_CHECK(width >= 60 && height >= 60 && width <= 20000 && height <= 20000, NNU_STATUS_ERR_ARG,
              "plot_progress: size %d x %d out of range (60 .. 20000)", width, height);
    char tmp[4096];
    NNU_CHECK(snprintf(tmp, sizeof tmp, "%s.tmp", path) < (int)sizeof tmp, NNU_STATUS_ERR_ARG,
              "plot path too long");
    cairo_surface_t *sf = cairo_image_surface_create(CAIRO_FORMAT_RGB24, width, height);
    if (cairo_surface_status(sf) != CAIRO_STATUS_SUCCESS) {
        cairo_surface_destroy(sf);
        return NNU_FAIL(NNU_STATUS_ERR_OOM, "cairo surface %d x %d: out of memory", width, height);
    }
    cairo_t *cr = cairo_create(sf);
    draw(cr, logs, width, height);
    cairo_status_t cs = cairo_status(cr);
    cairo_destroy(cr);
    if (cs == CAIRO_STATUS_SUCCESS) cs = cairo_surface_write_to_png(sf, tmp);
    cairo_surface_destroy(sf);
    if (cs != CAIRO_STATUS_SUCCESS) {
        remove(tmp);
        return NNU_FAIL(NNU_STATUS_ERR_IO, "cannot write '%s': %s", path, cairo_status_to_string(cs));
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        remove(tmp);
        return NNU_FAIL(NNU_STATUS_ERR_IO, "cannot rename '%s' to '%s': %s", tmp, path, strerror(e));
    }
    return NNU_STATUS_OK;
}

#else  /* no cairo */

int nnu_plot_available(void) { return 0; }

nnu_status nnu_plot_progress(const char *path, const nnu_progress_logs *logs, int width, int height) {
    (void)logs; (void)width; (void)height;
    return NNU_FAIL(NNU_STATUS_ERR_UNSUPPORTED, "cannot draw '%s': built without cairo", path ? path : "");
}

#endif
