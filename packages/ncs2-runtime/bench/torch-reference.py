"""PyTorch reference of a bundle's U-Net for infer-bench.mjs: builds the architecture of brats-model.json in PyTorch,
loads the weights ONNX Runtime runs (the initializers of the bundle's model.onnx, read with python3-onnx; if that module
is missing, the TensorFlow.js weights the ONNX file was exported from, model.json + weights.bin read with numpy),
checks that it computes what ONNX Runtime computed on the same input, and times it with torch.set_num_threads(THREADS).

Usage: /usr/bin/python3 torch-reference.py BUNDLE_DIR WORK_DIR JSON_OPTIONS   (prints one JSON object)
"""
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

bundle, work, options = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
torch.set_num_threads(options["threads"])
manifest = json.load(open(os.path.join(bundle, "brats-model.json")))
arch = manifest["model"]
height, width, channels = arch["inputShape"]
files = manifest["files"]


def onnx_weights(path):
    """Initializers by name ("encodeAa/kernel", ...), already in PyTorch's layouts: Conv [out, in, kh, kw],
    ConvTranspose [in, out, kh, kw]."""
    from onnx import load, numpy_helper

    return {tensor.name: numpy_helper.to_array(tensor).astype(np.float32) for tensor in load(path).graph.initializer}


def tfjs_weights(path):
    """Weights of the tfjs layers model by name, turned into PyTorch's layouts: Conv2D [kh, kw, in, out] and
    Conv2DTranspose [kh, kw, out, in] both become [dim 3, dim 2, kh, kw] (torch Conv2d [out, in, kh, kw],
    ConvTranspose2d [in, out, kh, kw])."""
    model_json = json.load(open(path))
    blob = open(os.path.join(os.path.dirname(path), "weights.bin"), "rb").read()
    weights, offset = {}, 0
    for group in model_json["weightsManifest"]:
        for spec in group["weights"]:
            count = int(np.prod(spec["shape"])) if spec["shape"] else 1
            value = np.frombuffer(blob, dtype="<f4", count=count, offset=offset).reshape(spec["shape"])
            weights[spec["name"]] = np.ascontiguousarray(value.transpose(3, 2, 0, 1) if value.ndim == 4 else value)
            offset += 4 * count
    return weights


try:
    import onnx  # noqa: F401  (python3-onnx)

    weights, weights_from = onnx_weights(os.path.join(bundle, files["onnx"])), "model.onnx initializers"
except ImportError:
    if "tfjs" not in files:
        raise SystemExit("torch-reference.py: python3-onnx is missing and the bundle has no TensorFlow.js weights")
    weights, weights_from = tfjs_weights(os.path.join(bundle, files["tfjs"])), "tfjs weights.bin (python3-onnx missing)"


def upsample_asymmetric(x):
    """2x bilinear with TensorFlow's legacy pixel mapping (source = out / 2, last pixel repeated), which
    F.interpolate does not offer: even outputs copy, odd outputs average a pixel with its clamped neighbour."""
    n, c, h, w = x.shape
    right = torch.cat([x[..., 1:], x[..., -1:]], dim=3)
    x = torch.stack([x, (x + right) * 0.5], dim=4).reshape(n, c, h, 2 * w)
    below = torch.cat([x[:, :, 1:], x[:, :, -1:]], dim=2)
    return torch.stack([x, (x + below) * 0.5], dim=3).reshape(n, c, 2 * h, 2 * w)


class Unet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.params = {}
        for name in [k[: -len("/kernel")] for k in weights if k.endswith("/kernel")]:
            w, b = (torch.from_numpy(np.ascontiguousarray(weights[f"{name}/{part}"])) for part in ("kernel", "bias"))
            self.params[name] = (torch.nn.Parameter(w, requires_grad=False), torch.nn.Parameter(b, requires_grad=False))
        if arch["batchNorm"]:
            raise SystemExit("torch-reference.py: batch-norm bundles are not supported by this reference")

    def conv(self, x, name, relu=True):
        w, b = self.params[name]
        y = F.conv2d(x, w, b, padding=w.shape[-1] // 2)
        return F.relu(y) if relu else y

    def forward(self, x):
        depth = arch["depth"]
        skips = []
        for level in range(depth + 1):
            letter = chr(ord("A") + level)
            x = self.conv(self.conv(x, f"encode{letter}a"), f"encode{letter}b")  # dropout is the identity at inference
            if level < depth:
                skips.append(x)
                x = F.max_pool2d(x, 2)
        for level in range(depth - 1, -1, -1):
            letter = chr(ord("A") + level)
            if arch["upsampling"] == "bilinear":
                x = upsample_asymmetric(x)
            else:
                w, b = self.params[f"transconv{letter}"]
                x = F.conv_transpose2d(x, w, b, stride=2)
            x = torch.cat([x, skips[level]], dim=1)
            x = self.conv(self.conv(x, f"decode{letter}a"), f"decode{letter}b")
        return torch.sigmoid(self.conv(x, "PredictionMask", relu=False))


model = Unet().eval()
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
