/* test_image.c: the format dispatch and reader-class rules of core/nnu_image.h
 * (the formats themselves are tested in test_nifti.c, test_metaimage.c, test_nrrd.c
 * and test_png_tiff.c).
 *
 *  1. Names: formats by ending, reader classes by the reference's names and the
 *     endings each class lists, Tiff3DIO's sidecar names.
 *  2. SimpleITKIO's 2-D rule on a 2-D NIfTI (dim[0] = 2): array (1, y, x), spacing
 *     (999 * max(sx, sy), sy, sx) (hand-computed), written back as a 2-D file.
 *  3. A case whose files hold different channel counts (a 4-D NIfTI and a 3-D
 *     one) reads as one (C, z, y, x) image; shape mismatches name the file.
 *  4. Unknown endings and classes that do not read a format fail clearly. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "testfiles.h"
#include "nnu_image.h"
#include "nnu_nifti.h"

/* a tensor of the given shape holding 0, 1, 2, ... (+ offset) */
static nnu_tensor *ramp(int ndim, const int64_t *shape, float offset) {
    nnu_tensor *t = NULL;
    CHECK_OK(nnu_tensor_new(NNU_DTYPE_F32, ndim, shape, &t));
    float *d = nnu_tensor_data(t);
    for (int64_t i = 0; i < nnu_tensor_numel(t); i++) d[i] = (float)i + offset;
    return t;
}

static void test_names(void) {
    CHECK(nnu_image_format_of("a/b.nii.gz") == NNU_IMAGE_FORMAT_NIFTI, ".nii.gz");
    CHECK(nnu_image_format_of("a/B.NII") == NNU_IMAGE_FORMAT_NIFTI, ".NII (case-insensitive)");
    CHECK(nnu_image_format_of("x.mha") == NNU_IMAGE_FORMAT_METAIMAGE && nnu_image_format_of("x.mhd") ==
          NNU_IMAGE_FORMAT_METAIMAGE, "MetaImage endings");
    CHECK(nnu_image_format_of("x.nrrd") == NNU_IMAGE_FORMAT_NRRD && nnu_image_format_of("x.nhdr") ==
          NNU_IMAGE_FORMAT_NRRD, "NRRD endings");
    CHECK(nnu_image_format_of("x.png") == NNU_IMAGE_FORMAT_PNG, ".png");
    CHECK(nnu_image_format_of("x.tif") == NNU_IMAGE_FORMAT_TIFF && nnu_image_format_of("x.tiff") ==
          NNU_IMAGE_FORMAT_TIFF, "TIFF endings");
    CHECK(nnu_image_format_of("x.jpg") == NNU_IMAGE_FORMAT_UNKNOWN, ".jpg unknown (lossy: the reference refuses it)");
    CHECK(nnu_image_format_of("x.gz") == NNU_IMAGE_FORMAT_UNKNOWN, ".gz alone is not NIfTI");

    const char *names[] = {"SimpleITKIO", "NibabelIO", "NaturalImage2DIO", "Tiff3DIO"};
    for (int i = 0; i < 4; i++)
        CHECK(strcmp(nnu_image_reader_name(nnu_image_reader_parse(names[i])), names[i]) == 0, "reader %s", names[i]);
    CHECK(nnu_image_reader_parse("NibabelIOWithReorient") == NNU_IMAGE_READER_AUTO, "unknown class -> AUTO");
    CHECK(nnu_image_reader_parse(NULL) == NNU_IMAGE_READER_AUTO, "NULL -> AUTO");

    /* the endings each class lists in the reference (plus ITK's siblings for SimpleITKIO) */
    CHECK(nnu_image_reader_supports(NNU_IMAGE_READER_SITK, "a.mha"), "SimpleITKIO reads .mha");
    CHECK(!nnu_image_reader_supports(NNU_IMAGE_READER_SITK, "a.png"), "SimpleITKIO: not .png");
    CHECK(nnu_image_reader_supports(NNU_IMAGE_READER_NIBABEL, "a.nii"), "NibabelIO reads .nii");
    CHECK(!nnu_image_reader_supports(NNU_IMAGE_READER_NIBABEL, "a.nrrd"), "NibabelIO: not .nrrd");
    CHECK(nnu_image_reader_supports(NNU_IMAGE_READER_NATURAL2D, "a.tif"), "NaturalImage2DIO reads .tif");
    CHECK(!nnu_image_reader_supports(NNU_IMAGE_READER_NATURAL2D, "a.tiff"), "NaturalImage2DIO: not .tiff");
    CHECK(nnu_image_reader_supports(NNU_IMAGE_READER_TIFF3D, "a.tiff"), "Tiff3DIO reads .tiff");

    char buf[256];
    CHECK_OK(nnu_image_sidecar_path("/d/imagesTr/case_7_0003.tif", 0, buf, sizeof buf));
    CHECK(strcmp(buf, "/d/imagesTr/case_7.json") == 0, "image sidecar: got %s", buf);
    CHECK_OK(nnu_image_sidecar_path("/d/labelsTr/case_7_0003.tif", 1, buf, sizeof buf));
    CHECK(strcmp(buf, "/d/labelsTr/case_7_0003.json") == 0, "label sidecar keeps the whole name: got %s", buf);
    /* the reference cuts 5 characters whatever they are */
    CHECK_OK(nnu_image_sidecar_path("/d/imagesTr/abcdefgh.tif", 0, buf, sizeof buf));
    CHECK(strcmp(buf, "/d/imagesTr/abc.json") == 0, "blind cut: got %s", buf);
    CHECK_FAILS(nnu_image_sidecar_path("ab.tif", 0, buf, sizeof buf), NNU_STATUS_ERR_ARG, "_XXXX");
    CHECK_FAILS(nnu_image_sidecar_path("/d.x/noending", 1, buf, sizeof buf), NNU_STATUS_ERR_ARG, "no file ending");
}

static void test_2d_nifti(void) {
    /* a 2-D image: spacing (0.5, 0.8) in ITK order (x, y), origin (3, -4) */
    nnu_image_info ref;
    memset(&ref, 0, sizeof ref);
    ref.spatial_dims = 2;
    ref.spacing_itk[0] = 0.5; ref.spacing_itk[1] = 0.8; ref.spacing_itk[2] = 1.0;
    ref.origin[0] = 3; ref.origin[1] = -4;
    for (int i = 0; i < 9; i++) ref.direction[i] = (i % 4 == 0);
    nnu_tensor *t = ramp(3, (int64_t[]){1, 4, 5}, 0);
    const char *p = tmp_path("flat.nii.gz");
    nnu_image_write_opts wo = {.segmentation = 1};
    CHECK_OK(nnu_image_write(p, t, &ref, &wo));

    nnu_image_info raw;
    CHECK_OK(nnu_nifti_read_header(p, &raw));
    CHECK(raw.hdr.dim[0] == 2, "written as a 2-D NIfTI: dim[0] = %lld", (long long)raw.hdr.dim[0]);
    CHECK(raw.spatial_dims == 2, "read back as 2-D");

    nnu_image_read_opts ro = {NNU_IMAGE_READER_SITK, 0};
    nnu_image_info info;
    nnu_tensor *r = NULL;
    CHECK_OK(nnu_image_read(p, &ro, &info, &r));
    if (r) {
        CHECK(r->ndim == 3 && r->shape[0] == 1 && r->shape[1] == 4 && r->shape[2] == 5, "shape (1, 4, 5)");
        const unsigned char *d = nnu_tensor_data(r);
        int same = r->dtype == NNU_DTYPE_U8;
        for (int i = 0; same && i < 20; i++) same = d[i] == i;
        CHECK(same, "voxels kept (u8 by the segmentation rule)");
    }
    /* SimpleITKIO: (999 * max(0.5, 0.8), 0.8, 0.5) */
    CHECK_CLOSE(info.spacing[0], 999.0 * (double)0.8f, 1e-9, 1e-12);   /* NIfTI stores float32 */
    CHECK_CLOSE(info.spacing[1], 0.8, 1e-6, 0);
    CHECK_CLOSE(info.spacing[2], 0.5, 1e-6, 0);
    CHECK_CLOSE(info.origin[0], 3, 1e-5, 0);
    CHECK_CLOSE(info.origin[1], -4, 1e-5, 0);

    /* NaturalImage2DIO does not read NIfTI */
    nnu_image_read_opts nat = {NNU_IMAGE_READER_NATURAL2D, 0};
    nnu_tensor *bad = NULL;
    CHECK_FAILS(nnu_image_read(p, &nat, NULL, &bad), NNU_STATUS_ERR_UNSUPPORTED, "NaturalImage2DIO reads .png");
    CHECK(bad == NULL, "no tensor on failure");
    nnu_tensor_release(r);
    nnu_tensor_release(t);
}

static void test_case_channels(void) {
    /* channel file 0: two channels in one 4-D file; file 1: one channel */
    nnu_tensor *a = ramp(4, (int64_t[]){2, 3, 4, 5}, 0);
    nnu_tensor *b = ramp(3, (int64_t[]){3, 4, 5}, 1000);
    nnu_tensor *lab = ramp(3, (int64_t[]){3, 4, 5}, 0);
    nnu_tensor *wrong = ramp(3, (int64_t[]){3, 4, 6}, 0);
    CHECK_OK(nnu_image_write(tmp_path("c_0000.nii.gz"), a, NULL, NULL));
    CHECK_OK(nnu_image_write(tmp_path("c_0001.nii.gz"), b, NULL, NULL));
    CHECK_OK(nnu_image_write(tmp_path("c.nii.gz"), lab, NULL, NULL));
    CHECK_OK(nnu_image_write(tmp_path("w.nii.gz"), wrong, NULL, NULL));

    char p0[512], p1[512], pl[512], pw[512];
    snprintf(p0, sizeof p0, "%s", tmp_path("c_0000.nii.gz"));
    snprintf(p1, sizeof p1, "%s", tmp_path("c_0001.nii.gz"));
    snprintf(pl, sizeof pl, "%s", tmp_path("c.nii.gz"));
    snprintf(pw, sizeof pw, "%s", tmp_path("w.nii.gz"));
    const char *files[2] = {p0, p1};
    nnu_tensor *img = NULL, *seg = NULL;
    nnu_image_info info;
    CHECK_OK(nnu_image_read_case(files, 2, pl, NNU_IMAGE_READER_SITK, &img, &seg, &info));
    if (img && seg) {
        CHECK(img->ndim == 4 && img->shape[0] == 3 && img->shape[1] == 3 && img->shape[3] == 5, "(3, 3, 4, 5)");
        const float *d = nnu_tensor_data(img);
        CHECK(d[0] == 0 && d[60] == 60 && d[119] == 119 && d[120] == 1000 && d[179] == 1059,
              "channels in file order: %g %g %g %g %g", d[0], d[60], d[119], d[120], d[179]);
        CHECK(seg->ndim == 4 && seg->shape[0] == 1 && seg->dtype == NNU_DTYPE_F32, "label (1, 3, 4, 5) f32");
        CHECK(info.ndim == 4 && info.shape[0] == 2, "info of the first file");
    }
    nnu_tensor_release(img);
    nnu_tensor_release(seg);
    img = seg = NULL;

    const char *mismatch[2] = {p0, pw};
    CHECK_FAILS(nnu_image_read_case(mismatch, 2, NULL, NNU_IMAGE_READER_AUTO, &img, NULL, NULL),
                NNU_STATUS_ERR_SHAPE, "w.nii.gz");
    CHECK(img == NULL, "no image on failure");
    CHECK_FAILS(nnu_image_read_case(files, 2, pw, NNU_IMAGE_READER_AUTO, &img, &seg, NULL), NNU_STATUS_ERR_SHAPE,
                "label");
    CHECK(img == NULL && seg == NULL, "nothing on failure");
    /* a label must have one channel */
    CHECK_FAILS(nnu_image_read_case(files + 1, 1, p0, NNU_IMAGE_READER_AUTO, &img, &seg, NULL),
                NNU_STATUS_ERR_SHAPE, "c_0000.nii.gz");
    nnu_tensor_release(a);
    nnu_tensor_release(b);
    nnu_tensor_release(lab);
    nnu_tensor_release(wrong);
}

static void test_unknown(void) {
    nnu_tensor *t = ramp(3, (int64_t[]){1, 2, 2}, 0), *r = NULL;
    CHECK_FAILS(nnu_image_write(tmp_path("x.jpg"), t, NULL, NULL), NNU_STATUS_ERR_UNSUPPORTED, "x.jpg");
    /* endings match without regard to case, for writing as for reading */
    CHECK_OK(nnu_image_write(tmp_path("UP.NII.GZ"), t, NULL, NULL));
    CHECK_OK(nnu_image_read(tmp_path("UP.NII.GZ"), NULL, NULL, &r));
    CHECK(r && r->shape[1] == 2, "UP.NII.GZ read back");
    nnu_tensor_release(r);
    r = NULL;
    CHECK_FAILS(nnu_image_read(tmp_path("x.jpg"), NULL, NULL, &r), NNU_STATUS_ERR_UNSUPPORTED, "unknown file type");
    CHECK_FAILS(nnu_image_read(tmp_path("absent.nii.gz"), NULL, NULL, &r), NNU_STATUS_ERR_IO, "absent.nii.gz");
    CHECK(r == NULL, "no tensor");
    /* Tiff3DIO does not read NIfTI */
    CHECK_OK(nnu_image_write(tmp_path("y.nii"), t, NULL, NULL));
    nnu_image_read_opts t3 = {NNU_IMAGE_READER_TIFF3D, 0};
    CHECK_FAILS(nnu_image_read_header(tmp_path("y.nii"), &t3, &(nnu_image_info){0}), NNU_STATUS_ERR_UNSUPPORTED,
                "Tiff3DIO");
    nnu_tensor_release(t);
}

int main(void) {
    tmpdir_make("image");
    test_names();
    test_2d_nifti();
    test_case_channels();
    test_unknown();
    tmpdir_remove();
    return check_report();
}
