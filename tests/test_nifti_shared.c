/* test_nifti_shared.c: every image and label of ../shared/data/Dataset004_Hippocampus
 * (460 files) and Dataset501_BraTS2013Sample (18 files) round-trips: read, write
 * with the file's own geometry (.nii.gz; the 240x240x155 BraTS volumes as .nii to
 * keep the test short), re-read -> identical voxel bytes, dtype, shape,
 * spacing/origin/direction and raw qform/sform fields. (All BraTS files and a
 * sample of the Hippocampus files are also checked against nibabel's values in
 * test_nifti.c.) Skipped when ../shared/data is absent. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "nnu_nifti.h"

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int roundtrip_dir(const char *dir, const char *out_gz, const char *out_nii) {
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
        nnu_image_info a, b;
        nnu_tensor *t = NULL, *r = NULL;
        CHECK_OK(nnu_nifti_read(path, &a, &t));
        if (t) {
            nnu_image_write_opts o = {.compression = 1};
            const char *out = nnu_tensor_numel(t) > 1000000 ? out_nii : out_gz;
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
    char buf[512], buf2[512];
    const char *root = check_shared_path("Dataset004_Hippocampus", buf, sizeof buf);
    const char *brats = check_shared_path("Dataset501_BraTS2013Sample", buf2, sizeof buf2);
    if (!root || !brats) return 77;
    char out_gz[256], out_nii[256], dir[600];
    snprintf(out_gz, sizeof out_gz, "/tmp/nnu_test_nifti_shared_%ld.nii.gz", (long)getpid());
    snprintf(out_nii, sizeof out_nii, "/tmp/nnu_test_nifti_shared_%ld.nii", (long)getpid());
    int n = 0, nb = 0;
    const char *subs[2] = {"imagesTr", "labelsTr"};
    for (int i = 0; i < 2; i++) {
        snprintf(dir, sizeof dir, "%s/%s", root, subs[i]);
        n += roundtrip_dir(dir, out_gz, out_nii);
        snprintf(dir, sizeof dir, "%s/%s", brats, subs[i]);
        nb += roundtrip_dir(dir, out_gz, out_nii);
    }
    CHECK(n == 460, "expected 460 Hippocampus files, found %d", n);
    CHECK(nb == 18, "expected 18 BraTS files, found %d", nb);
    remove(out_gz);
    remove(out_nii);
    fprintf(stderr, "%d Hippocampus and %d BraTS files round-tripped\n", n, nb);
    return check_report();
}
