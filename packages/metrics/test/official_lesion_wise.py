"""The BraTS 2023 lesion-wise scorer's steps, in scipy, as an independent reference for @brats/metrics.

scipy's labelling (26-connected) stands in for cc3d, and HD95 is measured as @brats/metrics measures it (scipy's
erosion and exact distance transform), so that Dice, HD95 and the lesion counts can be compared exactly. Each step
follows the scorer: per lesion its own dilation, the matched components, the volume limit, the penalty.

argv: prediction.raw reference.raw shape(json) spacing(json) dilation volume_limit_mm3 penalty_mm [repeat]
(raw files: uint8, NIfTI i-j-k order). Prints one JSON document; with repeat > 0 it also times the scoring.
"""
import json
import sys
import time

import numpy as np
import scipy.ndimage as ndi

FULL = np.ones((3, 3, 3), dtype=bool)
STRUCT = ndi.generate_binary_structure(3, 2)


def hd95(a, b, spacing):
    ea, eb = a ^ ndi.binary_erosion(a), b ^ ndi.binary_erosion(b)
    d1 = ndi.distance_transform_edt(~eb, sampling=spacing)[ea]
    d2 = ndi.distance_transform_edt(~ea, sampling=spacing)[eb]
    return float(max(np.percentile(d1, 95), np.percentile(d2, 95)))


def dilate(mask, steps):
    # scipy repeats a dilation until nothing changes when iterations is 0, so 0 steps is the mask itself.
    return ndi.binary_dilation(mask, structure=STRUCT, iterations=steps) if steps > 0 else mask


def score(pred, gt, spacing, dil_factor, volume_limit, penalty):
    gt_cc, _ = ndi.label(gt, structure=FULL)
    pred_cc, _ = ndi.label(pred, structure=FULL)
    dilated_cc, count = ndi.label(dilate(gt, dil_factor), structure=FULL)
    combined = np.zeros_like(dilated_cc)
    for comp in range(1, count + 1):
        combined[(dilated_cc == comp) & (gt_cc > 0)] = comp
    tp, lesions = [], []
    for comp in range(1, count + 1):
        gt_tmp = combined == comp
        roi = dilate(gt_tmp, dil_factor)
        hits = [int(c) for c in np.unique(pred_cc[roi]) if c != 0]
        tp += hits
        pred_tmp = np.isin(pred_cc, hits) & (pred_cc > 0)
        dice = 2.0 * (pred_tmp & gt_tmp).sum() / (pred_tmp.sum() + gt_tmp.sum())
        hd = hd95(pred_tmp, gt_tmp, spacing) if hits else penalty
        lesions.append({'volume': float(gt_tmp.sum() * np.prod(spacing)), 'dice': float(dice), 'hd95': hd, 'hits': len(hits)})
    fp = len([c for c in np.unique(pred_cc) if c != 0 and c not in tp])
    kept = [lesion for lesion in lesions if lesion['volume'] > volume_limit]
    n = len(kept) + fp
    return {
        'dice': 1.0 if n == 0 else sum(lesion['dice'] for lesion in kept) / n,
        'hd95': 0.0 if n == 0 else (sum(lesion['hd95'] for lesion in kept) + fp * penalty) / n,
        'truePositives': len([lesion for lesion in kept if lesion['hits'] > 0]),
        'falsePositives': fp,
        'falseNegatives': len([lesion for lesion in kept if lesion['hits'] == 0]),
        'lesions': lesions,
    }


def main():
    pred_path, gt_path = sys.argv[1], sys.argv[2]
    shape, spacing = json.loads(sys.argv[3]), json.loads(sys.argv[4])
    dil_factor, volume_limit, penalty = int(sys.argv[5]), float(sys.argv[6]), float(sys.argv[7])
    repeat = int(sys.argv[8]) if len(sys.argv) > 8 else 0

    def load(path):
        return np.fromfile(path, dtype=np.uint8).reshape(shape, order='F').astype(bool)

    pred, gt = load(pred_path), load(gt_path)
    result = score(pred, gt, spacing, dil_factor, volume_limit, penalty)
    if repeat > 0:
        seconds = []
        for _ in range(repeat):
            start = time.perf_counter()
            score(pred, gt, spacing, dil_factor, volume_limit, penalty)
            seconds.append(time.perf_counter() - start)
        result['secondsMedian'] = sorted(seconds)[len(seconds) // 2]
    print(json.dumps(result))


if __name__ == '__main__':
    main()
