/* nnu_png.c: placeholder until the PNG reader/writer lands (see nnu_png.h). */
#include "nnu_png.h"

#include <string.h>

nnu_status nnu_png_read_header(const char *path, nnu_image_info *info) {
    memset(info, 0, sizeof *info);
    return NNU_FAIL(NNU_STATUS_ERR_UNSUPPORTED, "cannot read '%s': PNG files are not supported yet", path);
}

nnu_status nnu_png_read(const char *path, nnu_image_info *info, nnu_tensor **out) {
    *out = NULL;
    if (info) memset(info, 0, sizeof *info);
    return NNU_FAIL(NNU_STATUS_ERR_UNSUPPORTED, "cannot read '%s': PNG files are not supported yet", path);
}

nnu_status nnu_png_write(const char *path, const nnu_tensor *t, const nnu_image_info *ref,
                          const nnu_image_write_opts *opts) {
    (void)t; (void)ref; (void)opts;
    return NNU_FAIL(NNU_STATUS_ERR_UNSUPPORTED, "cannot write '%s': PNG files are not supported yet", path);
}
