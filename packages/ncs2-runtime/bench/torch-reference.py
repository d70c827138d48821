"""PyTorch reference of a bundle's U-Net for infer-bench.mjs: the U-Net of bundle_unet.py (the architecture of
brats-model.json with the weights ONNX Runtime runs), checked against what ONNX Runtime computed on the same input, and
timed with torch.set_num_threads(THREADS).

Usage: /usr/bin/python3 torch-reference.py BUNDLE_DIR WORK_DIR JSON_OPTIONS   (prints one JSON object)
"""
import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bundle_unet import load_unet  # noqa: E402

bundle, work, options = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
torch.set_num_threads(options["threads"])
model, manifest, weights_from = load_unet(bundle)
height, width, channels = manifest["model"]["inputShape"]
result = {"torch": torch.__version__, "threads": torch.get_num_threads(), "weightsFrom": weights_from}

with torch.inference_mode():
    # Same input as ONNX Runtime saw (NHWC float32), compared with ONNX Runtime's output.
    check = np.fromfile(os.path.join(work, "check-input.bin"), dtype="<f4").reshape(-1, height, width, channels)
    ort_out = np.fromfile(os.path.join(work, "check-output.bin"), dtype="<f4").reshape(check.shape[0], height, width, -1)
    torch_out = model(torch.from_numpy(check).permute(0, 3, 1, 2)).permute(0, 2, 3, 1).numpy()
    result["maxAbsDiffVsOnnxRuntime"] = float(np.abs(torch_out - ort_out).max())
    result["outputRange"] = [float(torch_out.min()), float(torch_out.max())]

    rng = np.random.default_rng(0)
    runs = {}
    for batch, iterations in options["batches"]:
        x = torch.from_numpy(rng.standard_normal((batch, channels, height, width), dtype=np.float32))
        for _ in range(options["warmup"]):
            model(x)
        samples = []
        for _ in range(iterations):
            start = time.perf_counter()
            model(x)
            samples.append((time.perf_counter() - start) * 1000)
        samples.sort()
        mean = sum(samples) / len(samples)
        runs[str(batch)] = {
            "latencyMs": {"mean": mean, "p50": samples[max(0, -(-len(samples) // 2) - 1)], "p95": samples[max(0, -(-len(samples) * 95 // 100) - 1)]},
            "slicesPerSecond": batch * 1000 / mean,
        }
    result["runs"] = runs

    scan_batch = options["scanBatch"]
    scan = torch.from_numpy(rng.standard_normal((144, channels, height, width), dtype=np.float32))
    start = time.perf_counter()
    for first in range(0, 144, scan_batch):
        model(scan[first : first + scan_batch])
    result["scanSeconds"] = time.perf_counter() - start

    # Achievable FP32 rate of this CPU with the same threads: a large single-precision matrix product (MKL/OpenBLAS).
    n = 2048
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    start = time.perf_counter()
    repeats = 5
    for _ in range(repeats):
        torch.mm(a, b)
    result["sgemmGflops"] = 2 * n**3 * repeats / (time.perf_counter() - start) / 1e9

print(json.dumps(result))
