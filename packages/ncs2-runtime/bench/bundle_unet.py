"""The U-Net of a @brats model bundle in PyTorch, for the benchmarks' references (Debian python3-torch; never a
dependency of the product): the architecture of brats-model.json with the weights ONNX Runtime runs (the initializers
of the bundle's model.onnx, read with python3-onnx; without that module, the TensorFlow.js weights the ONNX file was
exported from, model.json + weights.bin read with numpy).

load_unet(bundle) -> (model in eval mode, manifest, where the weights came from)
"""
import json
import os

import numpy as np
import torch
import torch.nn.functional as F


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




def upsample_asymmetric(x):
    """2x bilinear with TensorFlow's legacy pixel mapping (source = out / 2, last pixel repeated), which
    F.interpolate does not offer: even outputs copy, odd outputs average a pixel with its clamped neighbour."""
    n, c, h, w = x.shape
    right = torch.cat([x[..., 1:], x[..., -1:]], dim=3)
    x = torch.stack([x, (x + right) * 0.5], dim=4).reshape(n, c, h, 2 * w)
    below = torch.cat([x[:, :, 1:], x[:, :, -1:]], dim=2)
    return torch.stack([x, (x + below) * 0.5], dim=3).reshape(n, c, 2 * h, 2 * w)


class Unet(torch.nn.Module):
    def __init__(self, weights, arch):
        super().__init__()
        self.arch = arch
        self.params = {}
        for name in [k[: -len("/kernel")] for k in weights if k.endswith("/kernel")]:
            w, b = (torch.from_numpy(np.ascontiguousarray(weights[f"{name}/{part}"])) for part in ("kernel", "bias"))
            self.params[name] = (torch.nn.Parameter(w, requires_grad=False), torch.nn.Parameter(b, requires_grad=False))
        if arch["batchNorm"]:
            raise SystemExit("bundle_unet.py: batch-norm bundles are not supported by this reference")

    def conv(self, x, name, relu=True):
        w, b = self.params[name]
        y = F.conv2d(x, w, b, padding=w.shape[-1] // 2)
        return F.relu(y) if relu else y

    def forward(self, x):
        arch = self.arch
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


def load_unet(bundle):
    manifest = json.load(open(os.path.join(bundle, "brats-model.json")))
    files = manifest["files"]
    try:
        import onnx  # noqa: F401  (python3-onnx)

        weights, weights_from = onnx_weights(os.path.join(bundle, files["onnx"])), "model.onnx initializers"
    except ImportError:
        if "tfjs" not in files:
            raise SystemExit("bundle_unet.py: python3-onnx is missing and the bundle has no TensorFlow.js weights")
        weights, weights_from = tfjs_weights(os.path.join(bundle, files["tfjs"])), "tfjs weights.bin (python3-onnx missing)"
    return Unet(weights, manifest["model"]).eval(), manifest, weights_from
