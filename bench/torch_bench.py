#!/usr/bin/python3
"""PyTorch peer of hw1-bench: one row, one JSON line (same shapes, threads, warm-up and median), plus the row's
FLOPs (2 x multiply-adds of conv / transposed conv / linear layers; training counted as 3 x forward).
--device cuda: the peer of hw1-bench-gpu (batch default 8, cuDNN with benchmark mode, every step synchronised,
peak GPU memory from torch.cuda.max_memory_allocated / max_memory_reserved). --precision float32 turns TF32 off
(as hw1's default), tf32 on; fp16 / bf16 run under torch.autocast, fp16 training with a GradScaler."""
import argparse
import contextlib
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
    p.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    p.add_argument("--precision", default="float32", choices=["float32", "tf32", "fp16", "bf16"])
    a = p.parse_args()
    cuda = a.device.startswith("cuda")
    if not cuda and a.precision != "float32":
        raise SystemExit("torch_bench: --precision other than float32 needs --device cuda")
    if cuda and not torch.cuda.is_available():
        raise SystemExit("torch_bench: --device cuda, but this PyTorch has no usable CUDA device "
                         f"(torch {torch.__version__}; Debian's python3-torch is CPU-only)")
    device = torch.device(a.device)
    if cuda:
        torch.backends.cudnn.enabled = True
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = a.precision == "tf32"
        torch.backends.cudnn.allow_tf32 = a.precision == "tf32"
    amp_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(a.precision)
    torch.set_num_threads(a.threads)
    parts = a.row.split("-")
    net, mode, size = parts[0], parts[1], int(parts[2])
    train = mode == "train"
    if cuda:
        batch = 8
    else:
        batch = (64 if size == 32 else 8) if net == "resnet101" else (2 if train and size <= 256 else 1)
    if len(parts) == 4 and parts[3].startswith("b"):
        batch = int(parts[3][1:])
    k = 50 if net == "resnet101" else 7
    torch.manual_seed(0)
    model = build(net, k)
    x = torch.randn(batch, 3, size, size)
    # (on cuda, counted on the CPU with one image: a CPU forward of the whole GPU batch would take minutes)
    flops = (count_flops(model, x[:1]) * batch if cuda else count_flops(model, x)) * (3 if train else 1)
    model = model.to(device)
    x = x.to(device)

    def autocast():
        return torch.autocast("cuda", dtype=amp_dtype, enabled=amp_dtype is not None) if cuda else \
            contextlib.nullcontext()

    def sync():
        if cuda:
            torch.cuda.synchronize(device)

    def out_of(y):
        return y["out"] if isinstance(y, dict) else y

    if train:
        model.train()
        opt = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
        scaler = torch.cuda.amp.GradScaler(enabled=a.precision == "fp16") if cuda else None
        with autocast():
            y0 = out_of(model(x))
        target = (torch.arange(y0.numel() // y0.shape[1], device=device) % k).reshape(y0.shape[0], *y0.shape[2:])

        def step():
            with autocast():
                y = out_of(model(x))
                loss = torch.nn.functional.cross_entropy(y.float(), target)
            opt.zero_grad()
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()
            else:
                loss.backward()
                opt.step()
            sync()
    else:
        model.eval()

        def step():
            with torch.no_grad(), autocast():
                model(x)
            sync()

    if cuda:
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    for _ in range(a.warmup):
        step()
    t = []
    for _ in range(a.iters):
        t0 = time.perf_counter()
        step()
        t.append(time.perf_counter() - t0)
    t.sort()
    med = t[len(t) // 2]
    out = {"row": a.row, "impl": "pytorch", "batch": batch, "median_s": med, "min_s": t[0],
           "img_per_s": batch / med, "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
           "threads": torch.get_num_threads(), "flops": flops, "torch": torch.__version__}
    if cuda:
        out.update({"device": torch.cuda.get_device_name(device), "precision": a.precision,
                    "peak_alloc_mib": torch.cuda.max_memory_allocated(device) / 1048576,
                    "peak_reserved_mib": torch.cuda.max_memory_reserved(device) / 1048576,
                    "cudnn": torch.backends.cudnn.version()})
    print(json.dumps(out))


if __name__ == "__main__":
    main()
