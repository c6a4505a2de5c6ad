#!/usr/bin/python3
"""gen_predict_ref.py: inputs and expected segmentations for tests/lua/test_predict.lua
(the whole `nnunet predict` path with a fixed 1x1x1-convolution network).

The expected outputs replay nnU-Net v2's prediction of a raw case in numpy, step by step
as the reference code does it (nnunet-behaviour.md §9, Appendix C):
  DefaultPreprocessor.run_case: float32 read, transpose (a view), crop_to_nonzero (a view),
    normalization on the view (ZScore: image.mean()/image.std() in float32, in-place
    -=, /=; CT: clip, -= mean, /= std), resample_data_or_seg_to_shape (order 3, order_z 0)
  nnUNetPredictor: predict_sliding_window_return_logits per fold (Gaussian, mirroring,
    float16 accumulators: tests/gen/gen_slide_ref.py, with the network replaced), fold
    logits summed and divided in float16
  convert_predicted_logits_to_segmentation_with_correct_shape: resample the float16
    logits (order 1, order_z 0; current spacing = configuration spacing, 2d: [transposed
    original axis-0 spacing, 2d spacing]), argmax, un-crop into uint8 zeros, transpose back.
Resampling and sliding-window helpers are imported from gen_resample_ref.py and
gen_slide_ref.py (both checked against the reference's own outputs).

The network: logits[k] = ((b[k] + W[k,0] x[0]) + W[k,1] x[1]) in float32 (export.pointwise_net).

Writes tests/fixtures/predict/: plans.json, dataset.json, nets.json, in/CASE_000c.nii.gz,
expected/<config>/CASE.nii.gz.
Run:  /usr/bin/python3 tests/gen/gen_predict_ref.py
"""
import json
import os
import sys

import nibabel as nib
import numpy as np
from scipy.ndimage import binary_fill_holes

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import gen_resample_ref as rr  # noqa: E402
import gen_slide_ref as sr  # noqa: E402

OUT = os.path.join(HERE, "..", "fixtures", "predict")

# 2 channels: ZScore and CT; transpose_forward moves the coarse x axis first
PLANS = {
    "dataset_name": "Dataset990_PredictTest",
    "plans_name": "nnUNetPlans",
    "transpose_forward": [2, 0, 1],
    "transpose_backward": [1, 2, 0],
    "foreground_intensity_properties_per_channel": {
        "0": {"max": 9.0, "mean": 0.0, "median": 0.0, "min": -9.0, "percentile_00_5": -8.0,
              "percentile_99_5": 8.0, "std": 1.0},
        "1": {"max": 300.0, "mean": 40.5, "median": 35.0, "min": -100.0, "percentile_00_5": -50.25,
              "percentile_99_5": 180.75, "std": 61.25},
    },
    "configurations": {
        "3d_fullres": {
            "data_identifier": "nnUNetPlans_3d_fullres", "preprocessor_name": "DefaultPreprocessor",
            "batch_size": 2, "patch_size": [6, 12, 12], "median_image_size_in_voxels": [8, 16, 13],
            "spacing": [3.5, 1.1, 1.1],
            "normalization_schemes": ["ZScoreNormalization", "CTNormalization"],
            "use_mask_for_norm": [False, False],
            "resampling_fn_data": "resample_data_or_seg_to_shape",
            "resampling_fn_data_kwargs": {"is_seg": False, "order": 3, "order_z": 0, "force_separate_z": None},
            "resampling_fn_seg": "resample_data_or_seg_to_shape",
            "resampling_fn_seg_kwargs": {"is_seg": True, "order": 1, "order_z": 0, "force_separate_z": None},
            "resampling_fn_probabilities": "resample_data_or_seg_to_shape",
            "resampling_fn_probabilities_kwargs": {"is_seg": False, "order": 1, "order_z": 0,
                                                   "force_separate_z": None},
            "batch_dice": False,
        },
        "2d": {
            "inherits_from": "3d_fullres", "data_identifier": "nnUNetPlans_2d", "patch_size": [12, 8],
            "spacing": [0.9, 1.3], "batch_size": 12,
        },
    },
}
DATASET = {"channel_names": {"0": "A", "1": "CT"}, "labels": {"background": 0, "one": 1, "two": 2},
           "numTraining": 0, "file_ending": ".nii.gz"}
# two folds; K = 3 heads, C = 2 channels
NETS = [
    {"W": [[0.0, 0.0], [1.25, -0.5], [-1.0, 0.75]], "b": [0.0, 0.125, -0.25]},
    {"W": [[0.0, 0.25], [1.0, -0.25], [-1.5, 0.5]], "b": [0.5, 0.0, -0.125]},
]

# case name, array shape (z, y, x) as SimpleITK sees it, spacing (z, y, x)
CASES = [
    ("aniso", (20, 18, 7), (0.8, 0.8, 4.0)),
    ("tiny", (4, 5, 3), (0.8, 0.8, 4.0)),       # smaller than the patch on every axis
]


def case_images(shape, seed):
    rs = np.random.RandomState(seed)
    z, y, x = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij")
    a = (np.sin(3 * z + 2 * y) + 0.8 * np.cos(4 * x - y) + 0.3 * rs.randn(*shape)).astype(np.float32)
    b = (60 * np.cos(2 * z - 3 * x) + 40 * y + 25 * rs.randn(*shape) + 30).astype(np.float32)
    # a zero frame (both channels) so that the crop box is smaller than the image
    for im in (a, b):
        im[:, :, 0] = 0
        im[-1, :, :] = 0
        if shape[1] > 6:
            im[:, :2, :] = 0
    return np.stack([a, b])


def crop_to_nonzero(data):
    mask = np.zeros(data.shape[1:], dtype=bool)
    for c in range(data.shape[0]):
        mask |= data[c] != 0
    mask = binary_fill_holes(mask)
    w = np.where(mask)
    bbox = [[int(np.min(a)), int(np.max(a)) + 1] for a in w]
    sl = tuple(slice(a, b) for a, b in bbox)
    return data[(slice(None),) + sl], bbox


def zscore(image):
    image = image.astype(np.float32, copy=False)
    mean = image.mean()
    std = image.std()
    image -= mean
    image /= (max(std, 1e-8))
    return image


def ct(image, p):
    image = image.astype(np.float32, copy=False)
    np.clip(image, p["percentile_00_5"], p["percentile_99_5"], out=image)
    image -= p["mean"]
    image /= max(p["std"], 1e-8)
    return image


def make_network(net):
    W = np.array(net["W"], np.float32)
    b = np.array(net["b"], np.float32)

    def network(x, params):
        K, C = W.shape
        out = np.empty((1, K) + x.shape[2:], np.float32)
        for k in range(K):
            o = np.full(x.shape[2:], b[k], np.float32)
            for c in range(C):
                o = o + W[k, c] * x[0, c]
            out[0, k] = o
        return out
    return network


def predict_case(images, spacing, conf_name):
    conf = dict(PLANS["configurations"]["3d_fullres"])
    if conf_name != "3d_fullres":
        conf.update({k: v for k, v in PLANS["configurations"][conf_name].items() if k != "inherits_from"})
    tf = PLANS["transpose_forward"]
    tb = PLANS["transpose_backward"]
    data = images.astype(np.float32)
    data = data.transpose([0, *[i + 1 for i in tf]])
    original_spacing = [spacing[i] for i in tf]
    shape_before = data.shape[1:]
    data, bbox = crop_to_nonzero(data)
    shape_after_crop = data.shape[1:]
    target = list(conf["spacing"])
    if len(target) < 3:
        target = [original_spacing[0]] + target
    new_shape = rr.compute_new_shape(shape_after_crop, original_spacing, target)
    for c, scheme in enumerate(conf["normalization_schemes"]):
        if scheme == "ZScoreNormalization":
            data[c] = zscore(data[c])
        else:
            data[c] = ct(data[c], PLANS["foreground_intensity_properties_per_channel"][str(c)])
    data, _ = rr.resample_to_shape(data, new_shape, original_spacing, target, False, 3, 0)
    data = np.ascontiguousarray(data, dtype=np.float32)
    patch = conf["patch_size"]
    mirror = tuple(range(len(patch)))
    K = 3
    prediction = None
    for net in NETS:
        sr.network = make_network(net)
        logits = sr.predict_sliding_window(data, patch, 0.5, K, mirror, np.float16)
        if prediction is None:
            prediction = logits.copy()
        else:
            prediction = (prediction.astype(np.float32) + logits.astype(np.float32)).astype(np.float16)
    prediction = (prediction.astype(np.float32) / np.float32(len(NETS))).astype(np.float16)
    spacing_t = [spacing[i] for i in tf]
    current = conf["spacing"] if len(conf["spacing"]) == 3 else [spacing_t[0], *conf["spacing"]]
    logits, _ = rr.resample_to_shape(prediction, shape_after_crop, current, spacing_t, False, 1, 0)
    seg = np.argmax(logits, 0).astype(np.uint8)
    full = np.zeros(shape_before, np.uint8)
    full[tuple(slice(a, b) for a, b in bbox)] = seg
    return full.transpose(tb), data.shape, bbox


def affine_for(spacing_zyx, case_index):
    # a rotated, offset geometry (qform and sform) to check that it survives
    sx, sy, sz = spacing_zyx[2], spacing_zyx[1], spacing_zyx[0]
    th = 0.3 + 0.2 * case_index
    R = np.array([[np.cos(th), -np.sin(th), 0], [np.sin(th), np.cos(th), 0], [0, 0, 1]])
    A = np.eye(4)
    A[:3, :3] = R @ np.diag([sx, sy, sz])
    A[:3, 3] = [-12.5 + case_index, 7.25, 30.0]
    return A


def main():
    os.makedirs(os.path.join(OUT, "in"), exist_ok=True)
    for conf in ("3d_fullres", "2d"):
        os.makedirs(os.path.join(OUT, "expected", conf), exist_ok=True)
    with open(os.path.join(OUT, "plans.json"), "w") as f:
        json.dump(PLANS, f, indent=4)
    with open(os.path.join(OUT, "dataset.json"), "w") as f:
        json.dump(DATASET, f, indent=4)
    with open(os.path.join(OUT, "nets.json"), "w") as f:
        json.dump(NETS, f, indent=4)
    for ci, (name, shape, spacing) in enumerate(CASES):
        images = case_images(shape, 100 + ci)
        A = affine_for(spacing, ci)
        for c in range(images.shape[0]):
            img = nib.Nifti1Image(np.ascontiguousarray(images[c].transpose(2, 1, 0)), A)
            img.set_qform(A, code=1)
            img.set_sform(A, code=2)
            img.header.set_xyzt_units("mm", "sec")
            nib.save(img, os.path.join(OUT, "in", "%s_%04d.nii.gz" % (name, c)))
        # read back what was stored (float32 round trip of the affine is the writer's business)
        stored = np.stack([np.asarray(nib.load(os.path.join(OUT, "in", "%s_%04d.nii.gz" % (name, c))).dataobj,
                                      dtype=np.float32).transpose(2, 1, 0) for c in range(images.shape[0])])
        assert np.array_equal(stored, images)
        for conf in ("3d_fullres", "2d"):
            seg, pshape, bbox = predict_case(stored, spacing, conf)
            out = nib.Nifti1Image(np.ascontiguousarray(seg.transpose(2, 1, 0)), A)
            nib.save(out, os.path.join(OUT, "expected", conf, name + ".nii.gz"))
            print(name, conf, "preprocessed", pshape, "bbox", bbox, "labels", np.unique(seg, return_counts=True))


if __name__ == "__main__":
    main()
