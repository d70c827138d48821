"""The Python reference of latency-bench.mjs: scans to masks as a plain script would do it, one process for all the
cases given. Per case: nibabel reads the four modalities (FLAIR, T1w, T1gd, T2w), a centre crop of the bundle's size,
z-score per channel over the cropped block (or over its non-zero voxels, as the bundle says), the bundle's U-Net in
PyTorch (bundle_unet.py, the weights ONNX Runtime runs) over the slices in batches of 16, threshold, the mask put back
on the scan's grid and written with nibabel.
Import of torch counts: it is part of what a user waits for. Benchmark tool only (Debian python3-torch,
python3-nibabel); never a dependency of the product.

Usage: /usr/bin/python3 scan-to-mask.py BUNDLE OUT_DIR THREADS CASE_DIR...   (prints one JSON line of timings)
"""
import json
import os
import sys
import time

started = time.perf_counter()
import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "..", "..", "packages", "ncs2-runtime", "bench"))
from bundle_unet import load_unet  # noqa: E402

bundle, out, threads, cases = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
torch.set_num_threads(threads)
model, manifest, _ = load_unet(bundle)
imported = time.perf_counter() - started
height, width, depth = manifest["preprocessing"]["cropSize"]
threshold = manifest["threshold"]
nonzero = manifest["preprocessing"].get("normalize") == "nonzero"
SUFFIXES = ["flair", "t1", "t1ce", "t2"]
totals = {"read": 0.0, "preprocess": 0.0, "forward": 0.0, "write": 0.0}

os.makedirs(out, exist_ok=True)
with torch.inference_mode():
    for case in cases:
        case_id = os.path.basename(os.path.normpath(case))
        t0 = time.perf_counter()
        images = [nib.load(os.path.join(case, f"{case_id}_{suffix}.nii.gz")) for suffix in SUFFIXES]
        volumes = [np.asarray(image.dataobj, dtype=np.float32) for image in images]
        t1 = time.perf_counter()
        nx, ny, nz = volumes[0].shape
        i0, j0, k0 = (nx - height) // 2, (ny - width) // 2, (nz - depth) // 2
        channels = []
        for volume in volumes:
            block = volume[i0 : i0 + height, j0 : j0 + width, k0 : k0 + depth]
            if nonzero:
                # The bundle's nonzero normalisation: statistics over the brain's voxels, the background kept at 0.
                inside = block != 0
                values = block[inside]
                channels.append(np.where(inside, (block - values.mean()) / values.std(), 0).astype(np.float32))
            else:
                channels.append((block - block.mean()) / block.std())
        # [k][i][j] slices, channels first for PyTorch.
        x = torch.from_numpy(np.ascontiguousarray(np.stack(channels, axis=0).transpose(3, 0, 1, 2)))
        t2 = time.perf_counter()
        probabilities = torch.cat([model(x[first : first + 16]) for first in range(0, depth, 16)])
        t3 = time.perf_counter()
        mask = np.zeros((nx, ny, nz), dtype=np.uint8)
        mask[i0 : i0 + height, j0 : j0 + width, k0 : k0 + depth] = (probabilities[:, 0].numpy() > threshold).transpose(1, 2, 0)
        nib.save(nib.Nifti1Image(mask, images[0].affine), os.path.join(out, f"{case_id}.nii.gz"))
        t4 = time.perf_counter()
        for key, seconds in zip(totals, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            totals[key] += seconds

print(json.dumps({"cases": len(cases), "importSeconds": imported, "seconds": totals, "torch": torch.__version__, "threads": threads}))
