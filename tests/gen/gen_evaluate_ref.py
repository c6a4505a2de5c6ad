#!/usr/bin/python3
"""gen_evaluate_ref.py: expected summary.json texts for tests/lua/test_evaluate_folder.lua.

A numpy transcription of nnunetv2/evaluation/evaluate_predictions.py
(compute_tp_fp_fn_tn, compute_metrics, compute_metrics_on_folder, save_summary_json
with label_or_region_to_key and recursive_fix_for_json_export) run on the inputs of
nnunet-behaviour.md L.7. Folders are written as REF_DIR / PRED_DIR (the test
substitutes its temporary folders). Two variants:
  labels.json          labels [1, 2, 3] (3 occurs nowhere), no ignore label
  regions_ignore.json  regions [(1, 2), 2] with ignore label 3 (the reference's 4s
                       of case a relabelled 3, since ignore must be max label + 1)

Run:  /usr/bin/python3 tests/gen/gen_evaluate_ref.py
"""
import json
import os
from copy import deepcopy

import numpy as np


def parse(s):
    return np.array([[[int(c) for c in row] for row in sl.strip().split("/")] for sl in s.split(";")], np.uint8)


CASES = {
    "case_a": (parse("0112/0112/0044 ; 0011/2200/0000"), parse("0111/0010/0011 ; 0111/0000/0000")),
    "case_b": (parse("1100/0000/0000 ; 0000/0000/0000"), parse("1100/0020/0000 ; 0000/0000/0000")),
}


def region_or_label_to_mask(seg, r):
    if np.isscalar(r):
        return seg == r
    mask = np.zeros_like(seg, dtype=bool)
    for x in r:
        mask[seg == x] = True
    return mask


def compute_tp_fp_fn_tn(mask_ref, mask_pred, ignore_mask=None):
    use_mask = np.ones_like(mask_ref) if ignore_mask is None else ~ignore_mask
    tp = np.sum((mask_ref & mask_pred) & use_mask)
    fp = np.sum(((~mask_ref) & mask_pred) & use_mask)
    fn = np.sum((mask_ref & (~mask_pred)) & use_mask)
    tn = np.sum(((~mask_ref) & (~mask_pred)) & use_mask)
    return tp, fp, fn, tn


def compute_metrics(ref_file, pred_file, seg_ref, seg_pred, labels_or_regions, ignore_label):
    ignore_mask = seg_ref == ignore_label if ignore_label is not None else None
    results = {"reference_file": ref_file, "prediction_file": pred_file, "metrics": {}}
    for r in labels_or_regions:
        results["metrics"][r] = {}
        mask_ref = region_or_label_to_mask(seg_ref, r)
        mask_pred = region_or_label_to_mask(seg_pred, r)
        tp, fp, fn, tn = compute_tp_fp_fn_tn(mask_ref, mask_pred, ignore_mask)
        if tp + fp + fn == 0:
            results["metrics"][r]["Dice"] = np.nan
            results["metrics"][r]["IoU"] = np.nan
        else:
            results["metrics"][r]["Dice"] = 2 * tp / (2 * tp + fp + fn)
            results["metrics"][r]["IoU"] = tp / (tp + fp + fn)
        results["metrics"][r]["FP"] = fp
        results["metrics"][r]["TP"] = tp
        results["metrics"][r]["FN"] = fn
        results["metrics"][r]["TN"] = tn
        results["metrics"][r]["n_pred"] = fp + tp
        results["metrics"][r]["n_ref"] = fn + tp
    return results


def label_or_region_to_key(r):
    return str(r)


def recursive_fix_for_json_export(d):
    for k in list(d.keys()):
        if isinstance(d[k], dict):
            recursive_fix_for_json_export(d[k])
        elif isinstance(d[k], (np.integer,)):
            d[k] = int(d[k])
        elif isinstance(d[k], (np.floating,)):
            d[k] = float(d[k])


def compute_metrics_on_folder(cases, labels_or_regions, ignore_label):
    metric_list = []
    for name in sorted(cases):
        ref, pred = cases[name]
        metric_list.append(compute_metrics("REF_DIR/" + name + ".nii.gz", "PRED_DIR/" + name + ".nii.gz",
                                           ref, pred, labels_or_regions, ignore_label))
    means = {}
    for r in labels_or_regions:
        means[r] = {}
        for m in metric_list[0]["metrics"][r].keys():
            means[r][m] = np.nanmean([i["metrics"][r][m] for i in metric_list])
    foreground_mean = {}
    for m in metric_list[0]["metrics"][labels_or_regions[0]].keys():
        values = []
        for k in means.keys():
            if k == 0 or k == "0":
                continue
            values.append(means[k][m])
        foreground_mean[m] = np.mean(values)
    [recursive_fix_for_json_export(i) for i in metric_list]
    recursive_fix_for_json_export(means)
    recursive_fix_for_json_export(foreground_mean)
    return {"metric_per_case": metric_list, "mean": means, "foreground_mean": foreground_mean}


def save_summary_json(results, path):
    results_converted = deepcopy(results)
    results_converted["mean"] = {label_or_region_to_key(k): results["mean"][k] for k in results["mean"].keys()}
    for i in range(len(results_converted["metric_per_case"])):
        results_converted["metric_per_case"][i]["metrics"] = {
            label_or_region_to_key(k): results["metric_per_case"][i]["metrics"][k]
            for k in results["metric_per_case"][i]["metrics"].keys()}
    with open(path, "w") as f:
        json.dump(results_converted, f, sort_keys=True, indent=4)


def main():
    import warnings
    warnings.simplefilter("ignore")
    here = os.path.join(os.path.dirname(__file__), "..", "fixtures", "evaluate")
    save_summary_json(compute_metrics_on_folder(CASES, [1, 2, 3], None), os.path.join(here, "labels.json"))
    relabelled = {k: (np.where(r == 4, 3, r).astype(np.uint8), p) for k, (r, p) in CASES.items()}
    save_summary_json(compute_metrics_on_folder(relabelled, [(1, 2), 2], 3), os.path.join(here, "regions_ignore.json"))
    print("wrote", os.path.normpath(here))


if __name__ == "__main__":
    main()
