#!/usr/bin/env python3
"""Plain-Python reference for `brats convert`, written for this project's benchmark (no code of the seed).

Does the same work as convertDataset with its defaults, one case at a time in one process, the way the seed's
converter works: read a Decathlon Task01 folder (dataset.json), split by case with numpy's legacy draws
(np.random.seed(seed); u < train -> training; the rest draw again, >= 0.5 -> validation, else testing), centre
crop i, j, k to `crop`, z-score each channel over the whole cropped block, mask = label > 0, and append the z
slices to imgs_<split> float32 [N, crop, crop, 4] and msks_<split> uint8 [N, crop, crop, 1] (one slice per gzip
chunk, axis 0 unlimited), with the per-slice tumour voxel count. Prints one JSON line: seconds, cases, peak RSS.

Usage: convert-reference.py DATASET_DIR OUT.h5 [--crop 144] [--seed 816] [--split 0.85] [--compression 1]
"""
import argparse
import json
import os
import resource
import time

import h5py
import nibabel as nib
import numpy as np


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dataset")
    parser.add_argument("out")
    parser.add_argument("--crop", type=int, default=144)
    parser.add_argument("--seed", type=int, default=816)
    parser.add_argument("--split", type=float, default=0.85)
    parser.add_argument("--compression", type=int, default=1)
    args = parser.parse_args()

    started = time.perf_counter()
    with open(os.path.join(args.dataset, "dataset.json")) as handle:
        entries = [e for e in json.load(handle)["training"] if "label" in e]
    np.random.seed(args.seed)
    first = np.random.random(len(entries))
    splits = ["train" if u < args.split else None for u in first]
    remaining = [i for i, split in enumerate(splits) if split is None]
    for i, v in zip(remaining, np.random.random(len(remaining))):
        splits[i] = "validation" if v >= 0.5 else "testing"

    crop = args.crop
    partial = args.out + ".partial"
    with h5py.File(partial, "w") as store:
        datasets = {}
        for split in ("train", "validation", "testing"):
            datasets[split] = (
                store.create_dataset(f"imgs_{split}", (0, crop, crop, 4), maxshape=(None, crop, crop, 4), dtype="float32",
                                     chunks=(1, crop, crop, 4), compression="gzip", compression_opts=args.compression),
                store.create_dataset(f"msks_{split}", (0, crop, crop, 1), maxshape=(None, crop, crop, 1), dtype="uint8",
                                     chunks=(1, crop, crop, 1), compression="gzip", compression_opts=args.compression),
                store.create_dataset(f"slice_tumour_voxels_{split}", (0,), maxshape=(None,), dtype="int32", chunks=(4096,)),
            )
        for entry, split in zip(entries, splits):
            image = np.asarray(nib.load(os.path.join(args.dataset, entry["image"])).dataobj, dtype=np.float32)
            label = np.asarray(nib.load(os.path.join(args.dataset, entry["label"])).dataobj)
            x, y, z = image.shape[:3]
            sx, sy, sz = x // 2 - crop // 2, y // 2 - crop // 2, z // 2 - crop // 2
            block = image[sx:sx + crop, sy:sy + crop, sz:sz + crop, :].astype(np.float64)
            block = (block - block.mean(axis=(0, 1, 2))) / block.std(axis=(0, 1, 2))
            slices = np.transpose(block, (2, 0, 1, 3)).astype(np.float32)
            mask = np.transpose(label[sx:sx + crop, sy:sy + crop, sz:sz + crop] > 0, (2, 0, 1))[..., None].astype(np.uint8)
            for dataset, values in zip(datasets[split], (slices, mask, mask.sum(axis=(1, 2, 3)).astype(np.int32))):
                row = dataset.shape[0]
                dataset.resize(row + len(values), axis=0)
                dataset[row:row + len(values)] = values
    os.replace(partial, args.out)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": time.perf_counter() - started, "cases": len(entries), "peak_rss_mb": peak_kib / 1024}))


if __name__ == "__main__":
    main()
