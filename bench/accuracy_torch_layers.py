#!/usr/bin/python3
"""PyTorch's own float32 error per 3x3 layer, the peer column of hw1-winograd-accuracy (docs/accuracy.md).

  bench/accuracy_torch_layers.py [--threads 2]

Same layer shapes and data kinds as bench/winograd_accuracy.cpp (the same distributions, other random draws):
torch.nn.functional.conv2d in float32 (PyTorch's CPU default, oneDNN where built with it) against float64, forward
and input gradient, max |err| / max |ref|. A test-time peer, never a dependency.
"""
import argparse
import json

import torch
import torch.nn.functional as F

LAYERS = [("vgg.conv1_2 b1 128", 1, 64, 128, 128, 64, 1, 1), ("vgg.conv2_2 b2 64", 2, 128, 64, 64, 128, 1, 1),
          ("vgg.conv3_2 b4 32", 4, 256, 32, 32, 256, 1, 1), ("vgg.conv3_2 b1 64", 1, 256, 64, 64, 256, 1, 1),
          ("vgg.conv4_2 b4 16", 4, 512, 16, 16, 512, 1, 1), ("vgg.conv4_2 b1 32", 1, 512, 32, 32, 512, 1, 1),
          ("vgg.conv5_2 b8 14", 8, 512, 14, 14, 512, 1, 1), ("resnet.layer1 b8 56", 8, 64, 56, 56, 64, 1, 1),
          ("resnet.layer2 b8 28", 8, 128, 28, 28, 128, 1, 1), ("resnet.layer3 b8 14", 8, 256, 14, 14, 256, 1, 1),
          ("resnet.layer3 b2 14", 2, 256, 14, 14, 256, 1, 1), ("deeplab.layer3 b2 32 d2", 2, 256, 32, 32, 256, 2, 2),
          ("deeplab.layer4 b2 32 d4", 2, 512, 32, 32, 512, 4, 4), ("deeplab.layer4 b1 64 d4", 1, 512, 64, 64, 512, 4, 4)]


def data(kind, shape, nonneg, gen):
    if kind in ("normal", "relu"):
        v = torch.randn(shape, generator=gen, dtype=torch.float64)
        return v.clamp(min=0) if kind == "relu" else v
    n, c, h, w = shape
    lo = torch.randn([n, c, h // 8 + 2, w // 8 + 2], generator=gen, dtype=torch.float64)
    z = F.interpolate(lo, size=(h // 8 * 8 + 8, w // 8 * 8 + 8), mode="bilinear", align_corners=True)[..., :h, :w]
    z = z + 0.1 * torch.randn(shape, generator=gen, dtype=torch.float64)
    return z.clamp(min=0) if nonneg else z


def rel(a, r):
    return ((a.double() - r).abs().max() / r.abs().max()).item()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--data", default="normal,relu,smooth")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    for name, n, c, h, w, o, pad, dil in LAYERS:
        for kind in a.data.split(","):
            gen = torch.Generator().manual_seed(1)
            wt = torch.randn([o, c, 3, 3], generator=gen, dtype=torch.float64) * (2.0 / (9 * c)) ** 0.5
            x = data(kind, [n, c, h, w], True, gen).float().double()
            wt = wt.float().double()
            y64 = F.conv2d(x, wt, padding=pad, dilation=dil)
            y32 = F.conv2d(x.float(), wt.float(), padding=pad, dilation=dil)
            g = data(kind, list(y64.shape), False, gen).float().double()
            x64 = x.clone().requires_grad_()
            F.conv2d(x64, wt, padding=pad, dilation=dil).backward(g)
            x32 = x.float().requires_grad_()
            F.conv2d(x32, wt.float(), padding=pad, dilation=dil).backward(g.float())
            for p, e in (("forward", rel(y32, y64)), ("dX", rel(x32.grad, x64.grad))):
                print(json.dumps({"layer": name, "data": kind, "pass": p, "torch": float(f"{e:.2e}"),
                                  "torch_version": torch.__version__}), flush=True)


if __name__ == "__main__":
    main()
