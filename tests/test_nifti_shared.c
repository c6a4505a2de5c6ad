/* test_nifti_shared.c: every image and label of ../shared/data/Dataset004_Hippocampus
 * (460 files) round-trips: read, write .nii.gz with the file's own geometry,
 * re-read -> identical voxel bytes, dtype, shape, spacing/origin/direction and raw
 * qform/sform fields. (All BraTS files, and a sample of these, are also checked
 * against nibabel's values in test_nifti.c.) Skipped when ../shared/data is absent. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "nnu_nifti.h"

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int roundtrip_dir(const char *dir, const char *out) {
    DIR *d = opendir(dir);
    CHECK(d != NULL, "cannot list %s", dir);
    if (!d) return 0;
    char *names[1024];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 1024)
        if (strstr(e->d_name, ".nii.gz")) names[n++] = strdup(e->d_name);
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    for (int i = 0; i < n; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        nnu_nifti_info a, b;
        nnu_tensor *t = NULL, *r = NULL;
        CHECK_OK(nnu_nifti_read(path, &a, &t));
        if (t) {
            nnu_nifti_write_opts o = {.compression = 1};
            CHECK_OK(nnu_nifti_write(out, t, &a, &o));
            CHECK_OK(nnu_nifti_read(out, &b, &r));
        }
        if (t && r) {
            size_t nb = (size_t)nnu_tensor_numel(t) * nnu_dtype_size(t->dtype);
            CHECK(r->dtype == t->dtype && nnu_tensor_same_shape(t, r) &&
                      memcmp(nnu_tensor_data(t), nnu_tensor_data(r), nb) == 0,
                  "%s: voxels differ after the round trip", path);
            CHECK(memcmp(a.spacing, b.spacing, sizeof a.spacing) == 0 &&
                      memcmp(a.spacing_itk, b.spacing_itk, sizeof a.spacing_itk) == 0 &&
                      memcmp(a.origin, b.origin, sizeof a.origin) == 0 &&
                      memcmp(a.direction, b.direction, sizeof a.direction) == 0,
                  "%s: geometry differs after the round trip", path);
            CHECK(a.hdr.qform_code == b.hdr.qform_code && a.hdr.sform_code == b.hdr.sform_code &&
                      memcmp(a.hdr.srow, b.hdr.srow, sizeof a.hdr.srow) == 0 &&
                      a.hdr.quatern_b == b.hdr.quatern_b && a.hdr.quatern_c == b.hdr.quatern_c &&
                      a.hdr.quatern_d == b.hdr.quatern_d && a.hdr.qoffset_x == b.hdr.qoffset_x &&
                      a.hdr.qoffset_y == b.hdr.qoffset_y && a.hdr.qoffset_z == b.hdr.qoffset_z &&
                      memcmp(a.hdr.pixdim, b.hdr.pixdim, sizeof a.hdr.pixdim) == 0,
                  "%s: qform/sform fields differ after the round trip", path);
        }
        nnu_tensor_release(t);
        nnu_tensor_release(r);
        free(names[i]);
    }
    return n;
}

int main(void) {
    char buf[512];
    const char *root = check_shared_path("Dataset004_Hippocampus", buf, sizeof buf);
    if (!root) return 77;
    char out[256], dir[600];
    snprintf(out, sizeof out, "/tmp/nnu_test_nifti_shared_%ld.nii.gz", (long)getpid());
    snprintf(dir, sizeof dir, "%s/imagesTr", root);
    int n = roundtrip_dir(dir, out);
    snprintf(dir, sizeof dir, "%s/labelsTr", root);
    n += roundtrip_dir(dir, out);
    CHECK(n == 460, "expected 460 Hippocampus files, found %d", n);
    remove(out);
    fprintf(stderr, "%d files round-tripped\n", n);
    return check_report();
}
