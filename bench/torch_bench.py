#!/usr/bin/python3
"""PyTorch peer of hw1-bench: one row, one JSON line (same shapes, threads, warm-up and median), plus the row's
FLOPs (2 x multiply-adds of conv / transposed conv / linear layers; training counted as 3 x forward)."""
import argparse
import json
import os
import resource
import sys
import time

import torch
import torchvision

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "parity"))
from fcn32s_torch import FCN32s  # noqa: E402


def build(net, k):
    if net == "resnet101":
        return torchvision.models.resnet101(num_classes=k)
    if net == "fcn32s":
        return FCN32s(k)
    if net == "deeplabv3":
        return torchvision.models.segmentation.deeplabv3_resnet101(weights=None, weights_backbone=None,
                                                                   num_classes=k, aux_loss=False)
    raise SystemExit(f"unknown network {net}")


def count_flops(model, x):
    flops = [0]

    def hook(m, inp, out):
        if isinstance(m, torch.nn.Conv2d):
            flops[0] += 2 * out.numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]
        elif isinstance(m, torch.nn.ConvTranspose2d):
            flops[0] += 2 * inp[0].numel() * m.out_channels * m.kernel_size[0] * m.kernel_size[1]
        elif isinstance(m, torch.nn.Linear):
            flops[0] += 2 * out.numel() * m.in_features

    hs = [m.register_forward_hook(hook) for m in model.modules()]
    with torch.no_grad():
        model.eval()
        model(x)
    for h in hs:
        h.remove()
    return flops[0]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--row", required=True)
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    parts = a.row.split("-")
    net, mode, size = parts[0], parts[1], int(parts[2])
    train = mode == "train"
    batch = (64 if size == 32 else 8) if net == "resnet101" else (2 if train and size <= 256 else 1)
    if len(parts) == 4 and parts[3].startswith("b"):
        batch = int(parts[3][1:])
    k = 50 if net == "resnet101" else 7
    torch.manual_seed(0)
    model = build(net, k)
    x = torch.randn(batch, 3, size, size)
    flops = count_flops(model, x) * (3 if train else 1)

    def out_of(y):
        return y["out"] if isinstance(y, dict) else y

    if train:
        model.train()
        opt = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
        y0 = out_of(model(x))
        target = (torch.arange(y0.numel() // y0.shape[1]) % k).reshape(y0.shape[0], *y0.shape[2:])

        def step():
            y = out_of(model(x))
            loss = torch.nn.functional.cross_entropy(y, target)
            opt.zero_grad()
            loss.backward()
            opt.step()
    else:
        model.eval()

        def step():
            with torch.no_grad():
                model(x)

    for _ in range(a.warmup):
        step()
    t = []
    for _ in range(a.iters):
        t0 = time.perf_counter()
        step()
        t.append(time.perf_counter() - t0)
    t.sort()
    med = t[len(t) // 2]
    print(json.dumps({"row": a.row, "impl": "pytorch", "batch": batch, "median_s": med, "min_s": t[0],
                      "img_per_s": batch / med, "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "threads": torch.get_num_threads(), "flops": flops, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
