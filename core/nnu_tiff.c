/* nnu_tiff.c: placeholder until the TIFF reader/writer lands (see nnu_tiff.h). */
#include "nnu_tiff.h"

#include <string.h>

nnu_status nnu_tiff_read_header(const char *path, nnu_image_info *info) {
    memset(info, 0, sizeof *info);
    return NNU_FAIL(NNU_STATUS_ERR_UNSUPPORTED, "cannot read '%s': TIFF files are not supported yet", path);
}

nnu_status nnu_tiff_read(const char *path, nnu_image_info *info, nnu_tensor **out) {
    *out = NULL;
    if (info) memset(info, 0, sizeof *info);
    return NNU_FAIL(NNU_STATUS_ERR_UNSUPPORTED, "cannot read '%s': TIFF files are not supported yet", path);
}

nnu_status nnu_tiff_write(const char *path, const nnu_tensor *t, const nnu_image_info *ref,
                          const nnu_image_write_opts *opts) {
    (void)t; (void)ref; (void)opts;
    return NNU_FAIL(NNU_STATUS_ERR_UNSUPPORTED, "cannot write '%s': TIFF files are not supported yet", path);
}
