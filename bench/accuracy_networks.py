#!/usr/bin/python3
"""Whole-network float32 accuracy of hw1 against PyTorch float64, per Winograd F(4x4) setting (docs/accuracy.md).

  bench/accuracy_networks.py --build build [--work DIR] [--case MODEL:K:N,3,H,W:SEED:INPUT ...]

Per case: tests/parity/make_reference.py writes the float64 reference (train mode, PyTorch's own float32 run
beside it), hw1-forward runs the float32 forward + backward under HW1_WINOGRAD4=train (F(4x4) in training too),
unset (the default: F(4x4) in inference only) and 0 (never), and each run is held to the contract: outputs
max|err| / max|ref| <= max(1e-4, 10 x PyTorch's), gradients <= max(1e-3, 10 x PyTorch's), per tensor. One line per
run: worst output and gradient errors, how many tensors break the contract, and which algorithms ran
(hw1-forward --trace-algorithms). Needs Debian's python3-torch; a test-time oracle, never a dependency.
"""
import argparse
import os
import shutil
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "parity"))
import st  # noqa: E402

# Sizes where F(4x4) is picked at 2 threads (64+ tiles per thread on 64+ channel 3x3 layers).
CASES = ["fcn32s:7:4,3,70,45:12:normal", "fcn32s:7:4,3,70,45:13:smooth", "resnet101:50:2,3,224,224:11:smooth",
         "deeplabv3:7:2,3,256,256:14:smooth"]
SETTINGS = [("train", "F(4x4) in training too (HW1_WINOGRAD4=train)"),
            (None, "default: F(4x4) in inference only"), ("0", "no F(4x4) (HW1_WINOGRAD4=0)")]


def rel(a, r):
    den = np.abs(r).max()
    num = np.abs(a.astype(np.float64) - r).max()
    return num / den if den > 0 else num


def judge(d, ours_out, ours_grads):
    res = {}
    for kind, ours, bound in (("output", ours_out, 1e-4), ("grads", ours_grads, 1e-3)):
        ref = st.load(os.path.join(d, f"expected_{kind}.safetensors"))
        t32 = st.load(os.path.join(d, f"torch32_{kind}.safetensors"))
        a = st.load(ours)
        rows = sorted(((rel(a[n], r), rel(t32[n], r), n) for n, r in ref.items()), reverse=True)
        broken = [n for e, t, n in rows if e > max(bound, 10 * t)]
        torch_over = [n for e, t, n in rows if t > bound]  # PyTorch float32 itself past the fixed bound
        l2 = sorted(np.linalg.norm(a[n].astype(np.float64) - r) / max(np.linalg.norm(r), 1e-300) for n, r in ref.items())
        res[kind] = (rows[0], broken, len(rows), torch_over, l2[len(l2) // 2])
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", required=True)
    ap.add_argument("--work", default="/tmp/hw1-accuracy-networks")
    ap.add_argument("--case", action="append")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seeds", help="FIRST:LAST: every case once per seed in the range (overrides the seed)")
    a = ap.parse_args()
    forward = os.path.join(a.build, "examples", "hw1-forward")
    cases = []
    for case in a.case or CASES:
        model, k, shape, seed, kind = case.split(":")
        seeds = range(int(a.seeds.split(":")[0]), int(a.seeds.split(":")[1]) + 1) if a.seeds else [int(seed)]
        cases += [f"{model}:{k}:{shape}:{s}:{kind}" for s in seeds]
    tally = {label: [0, 0, 0] for _, label in SETTINGS}  # runs with a tensor outside, tensors outside, runs
    torch_runs = [0, 0]
    for case in cases:
        model, k, shape, seed, kind = case.split(":")
        d = os.path.join(a.work, case.replace(":", "_").replace(",", "x"))
        shutil.rmtree(d, ignore_errors=True)
        gen = subprocess.run([sys.executable, os.path.join(HERE, "..", "tests", "parity", "make_reference.py"),
                              "--model", model, "--num-classes", k, "--shape", shape, "--seed", seed, "--mode",
                              "train", "--input", kind, "--out", d, "--threads", str(a.threads)],
                             capture_output=True, text=True)
        if gen.returncode:
            raise SystemExit(gen.stdout + gen.stderr)
        print(f"## {model} train {shape} seed {seed} input {kind}", flush=True)
        for value, label in SETTINGS:
            env = dict(os.environ, OMP_NUM_THREADS=str(a.threads))
            env.pop("HW1_WINOGRAD4", None)
            if value is not None:
                env["HW1_WINOGRAD4"] = value
            out, grads = os.path.join(d, "hw1_out.safetensors"), os.path.join(d, "hw1_grads.safetensors")
            p = subprocess.run([forward, "--model", model, "--num-classes", k, "--weights",
                                os.path.join(d, "weights.safetensors"), "--input",
                                os.path.join(d, "input.safetensors"), "--output", out, "--grad-output",
                                os.path.join(d, "grad_output.safetensors"), "--grads", grads, "--train",
                                "--trace-algorithms"], env=env, capture_output=True, text=True)
            if p.returncode:
                raise SystemExit(p.stdout + p.stderr)
            algos = dict(kv.split("=") for kv in p.stdout.split("algorithms: ")[1].split())
            r = judge(d, out, grads)
            (oe, ot, on), ob, no, _, _ = r["output"]
            (ge, gt, gn), gb, ng, tover, l2med = r["grads"]
            tally[label][0] += bool(ob or gb)
            tally[label][1] += len(ob) + len(gb)
            tally[label][2] += 1
            if value is None:
                torch_runs[0] += bool(tover)
                torch_runs[1] += 1
            print(f"{label}: fwd_f4={algos['fwd_f4']} dx_f4={algos['dx_f4']} fwd_f2={algos['fwd_f2']} "
                  f"dx_f2={algos['dx_f2']} | output worst {oe:.2e} ({on}; PyTorch {ot:.2e}) | gradients worst "
                  f"{ge:.2e} ({gn}; PyTorch {gt:.2e}), median L2 {l2med:.1e} | PyTorch's own past 1e-3: {len(tover)} | tensors outside the contract: {len(ob) + len(gb)} of "
                  f"{ng + no}" + (f" ({', '.join((ob + gb)[:4])}{', ...' if len(ob + gb) > 4 else ''})"
                                                  if ob or gb else ""), flush=True)
        shutil.rmtree(d, ignore_errors=True)
    print("## summary")
    for label, (bad_runs, bad, runs) in tally.items():
        print(f"{label}: {bad_runs} of {runs} runs with a tensor outside the contract, {bad} tensors in all")
    print(f"PyTorch float32 itself: {torch_runs[0]} of {torch_runs[1]} runs with a gradient past 1e-3")


if __name__ == "__main__":
    main()
