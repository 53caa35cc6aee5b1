#!/usr/bin/python3
"""bench/torch_ddp.py: PyTorch DistributedDataParallel (gloo) on one training row, the peer of hw1-bench-ddp.
  torch_ddp.py --row resnet101-train-32 --ranks N --threads T [--iters I] [--warmup W]
N processes on this machine (torch.multiprocessing, TCP on 127.0.0.1), T threads each, the row's global batch
split evenly; SGD with momentum as hw1-bench. Prints one JSON line: global images/s and the median step; for N > 1
also the step under model.no_sync() (backward with no all-reduce) and one all-reduce of every gradient alone,
so that exposed = step - no_sync step and hidden = 1 - exposed / alone, as hw1-bench-ddp reports them."""
import argparse
import json
import os
import socket
import statistics
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torchvision


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def model_for(net, k):
    if net == "resnet101":
        return torchvision.models.resnet101(num_classes=k)
    if net == "resnet50":
        return torchvision.models.resnet50(num_classes=k)
    raise SystemExit("torch_ddp.py: rows of resnet101 / resnet50 only, got " + net)


def worker(rank, a, port, out):
    torch.set_num_threads(a.threads)
    world = a.ranks
    if world > 1:
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    net, _, size = a.row.split("-")[:3]
    size = int(size)
    batch = 64 if size == 32 else 8
    local = batch // world
    torch.manual_seed(rank)
    x = torch.randn(local, 3, size, size)
    y = torch.arange(local) % 50
    model = model_for(net, 50)
    ddp = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model
    opt = torch.optim.SGD(ddp.parameters(), lr=1e-4, momentum=0.9)

    def step():
        opt.zero_grad(set_to_none=False)
        torch.nn.functional.cross_entropy(ddp(x), y).backward()
        opt.step()

    def timed(f, n):
        for _ in range(a.warmup):
            f()
        t = []
        for _ in range(n):
            if world > 1:
                dist.barrier()
            t0 = time.perf_counter()
            f()
            t.append(time.perf_counter() - t0)
        return statistics.median(t)

    med = timed(step, a.iters)
    res = {"row": a.row, "impl": "pytorch", "ranks": world, "threads": a.threads, "batch": batch, "median_s": med,
           "img_per_s": batch / med, "torch": torch.__version__}
    if world > 1:
        def local_step():
            with ddp.no_sync():
                step()
        nosync = timed(local_step, a.iters)
        flat = torch.cat([p.grad.reshape(-1) for p in model.parameters()])
        alone = timed(lambda: dist.all_reduce(flat), max(3, a.iters))
        exposed = max(0.0, med - nosync)
        res.update({"allreduce_mib": flat.numel() * 4 >> 20, "nosync_s": nosync, "exposed_s": exposed,
                    "alone_s": alone, "hidden": max(0.0, min(1.0, 1 - exposed / alone)) if alone > 0 else 0.0})
        dist.destroy_process_group()
    if rank == 0:
        out.put(res)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--row", default="resnet101-train-32")
    p.add_argument("--ranks", type=int, default=1)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    a = p.parse_args()
    ctx = mp.get_context("spawn")
    out = ctx.SimpleQueue()
    port = free_port()
    procs = [ctx.Process(target=worker, args=(r, a, port, out)) for r in range(a.ranks)]
    for q in procs:
        q.start()
    for q in procs:
        q.join()
    if any(q.exitcode != 0 for q in procs):
        raise SystemExit("torch_ddp.py: a rank failed")
    print(json.dumps(out.get()))


if __name__ == "__main__":
    main()
