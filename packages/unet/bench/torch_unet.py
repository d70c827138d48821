"""PyTorch reference of the seed 2D U-Net (same layers as buildUnet's defaults), timed like train-bench.mjs.

Prints one JSON document: training and forward slices per second at the given size and batch.
Run with the Debian interpreter: /usr/bin/python3 bench/torch_unet.py --size 144 --batch 8 --steps 3
"""
import argparse
import json
import time

import torch
from torch import nn
import torch.nn.functional as F


def conv_block(inputs, outputs, dropout):
    layers = [nn.Conv2d(inputs, outputs, 3, padding=1), nn.ReLU(inplace=True)]
    if dropout > 0:
        layers.append(nn.Dropout2d(dropout))
    layers += [nn.Conv2d(outputs, outputs, 3, padding=1), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


class Unet(nn.Module):
    def __init__(self, channels=4, filters=16, depth=4, outputs=1, dropout=0.2):
        super().__init__()
        self.encoders = nn.ModuleList()
        previous = channels
        for level in range(depth + 1):
            count = filters * 2 ** level
            self.encoders.append(conv_block(previous, count, dropout if depth - 2 <= level < depth else 0))
            previous = count
        self.decoders = nn.ModuleList()
        for level in reversed(range(depth)):
            count = filters * 2 ** level
            self.decoders.append(conv_block(previous + count, count, 0))
            previous = count
        self.head = nn.Conv2d(previous, outputs, 1)
        for module in self.modules():
            if isinstance(module, nn.Conv2d) and module.kernel_size == (3, 3):
                nn.init.kaiming_uniform_(module.weight, nonlinearity="relu")  # he_uniform
                nn.init.zeros_(module.bias)

    def forward(self, x):
        skips = []
        for index, encoder in enumerate(self.encoders):
            x = encoder(x)
            if index < len(self.encoders) - 1:
                skips.append(x)
                x = F.max_pool2d(x, 2)
        for decoder in self.decoders:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
            x = decoder(torch.cat([x, skips.pop()], dim=1))
        return torch.sigmoid(self.head(x))


def seed_loss(truth, prediction, smooth=1.0):
    intersection = (truth * prediction).sum(dim=(2, 3))
    total = truth.sum(dim=(2, 3)) + prediction.sum(dim=(2, 3))
    dice = -torch.log(2 * (intersection + smooth).mean()) + torch.log((total + smooth).mean())
    return 0.9 * dice + 0.1 * F.binary_cross_entropy(prediction.clamp(1e-7, 1 - 1e-7), truth)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=144)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    model = Unet()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    # NCHW is PyTorch's native layout; the tfjs model is NHWC, as the seed.
    images = torch.randn(args.batch, 4, args.size, args.size)
    masks = (torch.rand(args.batch, 1, args.size, args.size) > 0.9).float()

    def train_step():
        optimizer.zero_grad()
        loss = seed_loss(masks, model(images))
        loss.backward()
        optimizer.step()

    model.train()
    train_step()  # warm-up
    start = time.perf_counter()
    for _ in range(args.steps):
        train_step()
    train_seconds = (time.perf_counter() - start) / args.steps

    model.eval()
    with torch.no_grad():
        model(images)
        start = time.perf_counter()
        for _ in range(args.steps):
            model(images)
        forward_seconds = (time.perf_counter() - start) / args.steps

    print(json.dumps({
        "torch": torch.__version__,
        "threads": args.threads,
        "parameters": sum(p.numel() for p in model.parameters()),
        "trainSlicesPerSecond": args.batch / train_seconds,
        "forwardSlicesPerSecond": args.batch / forward_seconds,
    }))


if __name__ == "__main__":
    main()
