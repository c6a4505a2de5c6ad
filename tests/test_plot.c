/* test_plot: progress.png (core/nnu_plot.h). Draws synthetic training logs (with a
 * NaN pseudo-Dice gap), reads the file back with cairo's own PNG reader and checks
 * it is a valid PNG of the requested size, that the three panels carry the
 * darkgrid background and that the curves' colours appear. Skips without cairo. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "nnu_plot.h"

#ifdef NNUNET_HAVE_CAIRO
#include <cairo.h>

/* count of pixels within tol of (r, g, b) in rows [y0, y1) */
static long count_color(cairo_surface_t *s, int y0, int y1, int r, int g, int b, int tol) {
    int w = cairo_image_surface_get_width(s), stride = cairo_image_surface_get_stride(s);
    const unsigned char *d = cairo_image_surface_get_data(s);
    long n = 0;
    for (int y = y0; y < y1; y++)
        for (int x = 0; x < w; x++) {
            uint32_t px;
            memcpy(&px, d + (size_t)y * stride + (size_t)x * 4, 4);
            int pr = (px >> 16) & 255, pg = (px >> 8) & 255, pb = px & 255;
            if (abs(pr - r) <= tol && abs(pg - g) <= tol && abs(pb - b) <= tol) n++;
        }
    return n;
}

static void check_png(const char *path, int w, int h) {
    FILE *f = fopen(path, "rb");
    unsigned char sig[8] = {0};
    CHECK(f && fread(sig, 1, 8, f) == 8, "cannot read %s", path);
    if (f) fclose(f);
    CHECK(!memcmp(sig, "\x89PNG\r\n\x1a\n", 8), "no PNG signature");
    cairo_surface_t *s = cairo_image_surface_create_from_png(path);
    CHECK(cairo_surface_status(s) == CAIRO_STATUS_SUCCESS, "cairo cannot read it back: %s",
          cairo_status_to_string(cairo_surface_status(s)));
    if (cairo_surface_status(s) != CAIRO_STATUS_SUCCESS) { cairo_surface_destroy(s); return; }
    CHECK(cairo_image_surface_get_width(s) == w && cairo_image_surface_get_height(s) == h,
          "size %d x %d, wanted %d x %d", cairo_image_surface_get_width(s),
          cairo_image_surface_get_height(s), w, h);
    cairo_surface_flush(s);
    for (int p = 0; p < 3; p++) {       /* darkgrid face #EAEAF2 in every panel */
        long bg = count_color(s, p * h / 3, (p + 1) * h / 3, 0xea, 0xea, 0xf2, 2);
        CHECK(bg > (long)w * h / 30, "panel %d: %ld background pixels", p, bg);
        long blue = count_color(s, p * h / 3, (p + 1) * h / 3, 0x4c, 0x72, 0xb0, 12);
        CHECK(blue > 50, "panel %d: no blue curve (%ld pixels)", p, blue);
    }
    long red = count_color(s, 0, h / 3, 0xc4, 0x4e, 0x52, 12);
    long green = count_color(s, 0, h / 3, 0x55, 0xa8, 0x68, 12);
    CHECK(red > 50 && green > 50, "panel 1: red %ld, green %ld pixels", red, green);
    CHECK(count_color(s, h / 3, h, 0xc4, 0x4e, 0x52, 12) == 0, "red outside panel 1");
    cairo_surface_destroy(s);
}

int main(void) {
    enum { N = 40 };
    double tr[N], va[N], md[N], ema[N], t[N], lr[N];
    for (int e = 0; e < N; e++) {
        tr[e] = -0.2 - 0.6 * (1 - exp(-e / 8.0));
        va[e] = tr[e] + 0.05;
        md[e] = e == 5 ? NAN : 0.85 * (1 - exp(-e / 6.0));
        ema[e] = e ? 0.9 * ema[e - 1] + 0.1 * (isnan(md[e]) ? ema[e - 1] : md[e]) : md[0];
        t[e] = 30 + (e % 7);
        lr[e] = 0.01 * pow(1 - e / 1000.0, 0.9);
    }
    nnu_progress_logs logs = {N, tr, va, md, ema, t, lr};
    char dir[] = "/tmp/nnu_test_plot_XXXXXX", path[300];
    if (!mkdtemp(dir)) { perror("mkdtemp"); return 1; }
    snprintf(path, sizeof path, "%s/progress.png", dir);

    CHECK_OK(nnu_plot_progress(path, &logs, 600, 1080));
    check_png(path, 600, 1080);
    CHECK(access("progress.png.tmp", F_OK) != 0, "tmp left behind");
    /* the reference's size by default */
    CHECK_OK(nnu_plot_progress(path, &logs, 0, 0));
    check_png(path, NNU_PLOT_REF_WIDTH, NNU_PLOT_REF_HEIGHT);
    /* one epoch and zero epochs still give valid files */
    logs.n = 1;
    CHECK_OK(nnu_plot_progress(path, &logs, 300, 540));
    logs.n = 0;
    CHECK_OK(nnu_plot_progress(path, &logs, 300, 540));
    CHECK_FAILS(nnu_plot_progress(path, &logs, 10, 10), NNU_STATUS_ERR_ARG, "out of range");
    char bad[320];
    snprintf(bad, sizeof bad, "%s/no/such/dir/p.png", dir);
    CHECK_FAILS(nnu_plot_progress(bad, &logs, 300, 540), NNU_STATUS_ERR_IO, "p.png");

    unlink(path);
    rmdir(dir);
    return check_report();
}

#else

int main(void) {
    printf("SKIP: built without cairo (NNUNET_HAVE_CAIRO undefined)\n");
    return 77;
}

#endif
