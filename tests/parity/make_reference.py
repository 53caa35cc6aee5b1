#!/usr/bin/python3
"""Generate PyTorch float64 reference data for the hw1 parity tests (see README.md in this folder).

  make_reference.py --model resnet101|resnet50|fcn32s|deeplabv3|deeplabv3_resnet50 --num-classes K --shape N,3,H,W --seed S \
                    --mode eval|train --out DIR [--input normal|smooth] [--threads T] [--pth SPEC]
  --pth SPEC writes the weights as DIR/weights.pth with torch.save instead of weights.safetensors; SPEC is a
  comma list of zip|legacy (the format), float32|float16 (the references then use the float16-rounded weights),
  bare|wrapped|module (the state_dict itself, inside {"epoch": 3, "state_dict": ...}, or with DataParallel's
  `module.` prefixes) and transposed (the largest 2-d weight saved as a transposed view, a 4-d one channels-last).
  make_reference.py --self-test
"""
import argparse
import collections
import copy
import os
import sys
import tempfile
import time

import numpy as np
import torch
from torch import nn
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402
from fcn32s_torch import FCN32s  # noqa: E402

STATS = ("running_mean", "running_var")
CLASSIFIERS = ("resnet101", "resnet50")
MODELS = CLASSIFIERS + ("fcn32s", "deeplabv3", "deeplabv3_resnet50")


def build(name, k):
    if name in CLASSIFIERS:
        return getattr(torchvision.models, name)(weights=None, num_classes=k)
    if name == "deeplabv3":
        return torchvision.models.segmentation.deeplabv3_resnet101(
            weights=None, weights_backbone=None, num_classes=k, aux_loss=False)
    if name == "deeplabv3_resnet50":
        return torchvision.models.segmentation.deeplabv3_resnet50(
            weights=None, weights_backbone=None, num_classes=k, aux_loss=False)
    if name == "fcn32s":
        return FCN32s(k)
    raise SystemExit(f"unknown model '{name}': use one of {', '.join(MODELS)}")


def forward(model, x):
    y = model(x)
    return y["out"] if isinstance(y, dict) else y  # torchvision segmentation models return a dict


def randomise(model, gen, calib):
    """Make every parameter and buffer carry information, keeping activations sane through 101 layers."""
    bns = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]

    def calibrate(m, inputs):
        # Running stats = +-20 % perturbation of the statistics this BN's eval-mode input really has, so the
        # perturbations do not compound through the depth and eval mode still differs from batch statistics.
        x = inputs[0]
        count = x.numel() // x.shape[1]
        mean = x.mean((0, 2, 3))
        var = x.var((0, 2, 3), unbiased=True) if count > 1 else torch.ones_like(mean)
        m.running_mean.copy_(mean * torch.empty_like(mean).uniform_(0.8, 1.2, generator=gen)
                             + torch.empty_like(mean).uniform_(-0.2, 0.2, generator=gen) * var.sqrt())
        m.running_var.copy_(var * torch.empty_like(var).uniform_(0.8, 1.2, generator=gen))

    with torch.no_grad():
        # torchvision zeroes VGG's conv biases; give them PyTorch's default bias init so bias bugs show in forward.
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)) and m.bias is not None and not m.bias.any():
                bound = nn.init._calculate_fan_in_and_fan_out(m.weight)[0] ** -0.5
                m.bias.uniform_(-bound, bound, generator=gen)
        for n, m in bns:
            # A bottleneck's last BN (bn3) scales its residual branch: small (cf. torchvision's zero_init_residual)
            # keeps the residual stream from growing ~30x over layer3, which makes float32 gradients so
            # ill-conditioned that ReLU sign flips dominate the PyTorch float32 error (see README.md).
            lo, hi = (0.1, 0.3) if n.endswith("bn3") else (0.5, 1.5)
            m.weight.uniform_(lo, hi, generator=gen)
            m.bias.uniform_(-0.3, 0.3, generator=gen)
        hooks = [m.register_forward_pre_hook(calibrate) for _, m in bns]
        model.eval()
        forward(model, calib)
        for h in hooks:
            h.remove()


def smooth(shape, gen):
    """Image-like input: N(0, 1) values 8 pixels apart, bilinearly interpolated, x1.5, plus 0.3 N(0, 1) noise.

    Spatially correlated, as natural images and their activations are (iid inputs are kinder to Winograd)."""
    n, c, h, w = shape
    lo = torch.randn([n, c, max(2, h // 8), max(2, w // 8)], generator=gen)
    up = nn.functional.interpolate(lo, size=(h, w), mode="bilinear", align_corners=False)
    return up * 1.5 + 0.3 * torch.randn(shape, generator=gen)


def run(model, x, gy, train, dtype):
    """One forward + backward in `dtype`; returns ({output [, running stats]}, {input, parameter grads})."""
    m = copy.deepcopy(model).to(dtype)
    m.train(train)
    xi = x.to(dtype, copy=True).requires_grad_()
    y = forward(m, xi)
    y.backward(gy.to(dtype))
    outs = {"output": y.detach()}
    if train:
        outs.update({n: t for n, t in m.state_dict().items() if n.endswith(STATS)})
    grads = {"input": xi.grad}
    for n, p in m.named_parameters():
        if p.grad is None:
            raise SystemExit(f"parameter {n} received no gradient")
        grads[n] = p.grad
    return outs, grads


def rel_err(a, ref):
    """max |a - ref| / max |ref| (absolute error when ref is all zero)."""
    den = ref.abs().max().item()
    num = (a.double() - ref).abs().max().item()
    return num / den if den > 0 else num


def rel_l2(a, ref):
    """||a - ref||_2 / ||ref||_2 (absolute when ref is all zero)."""
    den = ref.norm().item()
    num = (a.double() - ref).norm().item()
    return num / den if den > 0 else num


def np32(d):
    return {k: v.detach().float().contiguous().numpy() for k, v in d.items()}


def np64(d):
    return {k: v.detach().double().contiguous().numpy() for k, v in d.items()}


def generate(a):
    t0 = time.perf_counter()
    torch.set_num_threads(a.threads)
    torch.use_deterministic_algorithms(True)
    shape = [int(s) for s in a.shape.split(",")]
    if len(shape) != 4 or shape[1] != 3:
        raise SystemExit(f"--shape must be N,3,H,W, got {a.shape}")
    torch.manual_seed(a.seed)  # torchvision's default init draws from the global generator
    model = build(a.model, a.num_classes)
    gen = torch.Generator().manual_seed(a.seed + 1)
    for m in model.modules():
        if isinstance(m, (nn.Dropout, nn.Dropout2d)):
            m.p = 0.0  # dropout is the identity in eval and must be deterministic in train mode
    draw = (lambda: smooth(shape, gen)) if a.input == "smooth" else (lambda: torch.randn(shape, generator=gen))
    randomise(model, gen, draw())
    pth = parse_pth(a.pth) if a.pth else None
    if pth and pth["dtype"] == "float16":
        with torch.no_grad():  # the references see exactly the weights the float16 file holds
            for t in model.state_dict().values():
                if t.is_floating_point():
                    t.copy_(t.half().float())
    model.eval()
    x = draw()
    out_shape = [shape[0], a.num_classes] + ([] if a.model in CLASSIFIERS else shape[2:])
    gy = torch.randn(out_shape, generator=gen)

    train = a.mode == "train"
    outs64, grads64 = run(model, x, gy, train, torch.float64)
    outs32, grads32 = run(model, x, gy, train, torch.float32)

    y = outs64["output"]
    std = y.std().item()
    if not 1e-2 <= std <= 1e3:
        raise SystemExit(f"output std {std:.3g} is outside [1e-2, 1e3]: the randomised weights are not a useful test")
    for n, g in grads64.items():
        if not torch.isfinite(g).all():
            raise SystemExit(f"gradient {n} is not finite")

    os.makedirs(a.out, exist_ok=True)
    meta = {"model": a.model, "num_classes": str(a.num_classes), "shape": a.shape, "seed": str(a.seed),
            "mode": a.mode, "input": a.input, "torch": torch.__version__, "torchvision": torchvision.__version__}
    sd = {n: (t.numpy() if n.endswith("num_batches_tracked") else t.float().numpy())
          for n, t in model.state_dict().items()}
    p = lambda f: os.path.join(a.out, f)  # noqa: E731
    if pth:
        save_pth(p("weights.pth"), model.state_dict(), pth)
    else:
        st.save(p("weights.safetensors"), sd, meta)
    st.save(p("input.safetensors"), {"input": x.numpy()}, meta)
    st.save(p("grad_output.safetensors"), {"grad_output": gy.numpy()}, meta)
    st.save(p("expected_output.safetensors"), np64(outs64), meta)
    st.save(p("expected_grads.safetensors"), np64(grads64), meta)
    st.save(p("torch32_output.safetensors"), np32(outs32), meta)
    st.save(p("torch32_grads.safetensors"), np32(grads32), meta)

    e_out = rel_err(outs32["output"], y)
    stats = [rel_err(outs32[n], outs64[n]) for n in outs64 if n != "output"]  # none for FCN32s (no batch norm)
    e_stats = f" stats={max(stats):.1e}" if stats else ""
    e_max = {n: rel_err(grads32[n], g) for n, g in grads64.items()}
    e_l2 = sorted(rel_l2(grads32[n], g) for n, g in grads64.items())
    worst = max(e_max, key=e_max.get)
    print(f"{a.model} {a.mode} K={a.num_classes} in={shape} out={list(y.shape)} std={std:.3g} "
          f"max|ref|={y.abs().max().item():.3g} | torch32 max-rel err: out={e_out:.1e}{e_stats} "
          f"d_input={e_max['input']:.1e} grads median={sorted(e_max.values())[len(e_max) // 2]:.1e} "
          f"worst={e_max[worst]:.1e} ({worst}) | grads rel-L2 median={e_l2[len(e_l2) // 2]:.1e} "
          f"worst={e_l2[-1]:.1e} | {len(sd)} tensors, {time.perf_counter() - t0:.1f}s")


def parse_pth(spec):
    out = {"format": "zip", "dtype": "float32", "wrap": "bare", "transposed": False}
    for w in spec.split(","):
        if w in ("zip", "legacy"):
            out["format"] = w
        elif w in ("float32", "float16"):
            out["dtype"] = w
        elif w in ("bare", "wrapped", "module"):
            out["wrap"] = w
        elif w == "transposed":
            out["transposed"] = True
        else:
            raise SystemExit(f"--pth: unknown word '{w}' (zip|legacy, float32|float16, bare|wrapped|module, transposed)")
    return out


def save_pth(path, state, pth):
    """torch.save of the state_dict as SPEC says (a real checkpoint's layouts: views, prefixes, wrappers)."""
    sd = collections.OrderedDict()
    for n, t in state.items():
        sd[n] = t.half() if pth["dtype"] == "float16" and t.is_floating_point() else t.clone()
    sd._metadata = getattr(state, "_metadata", None)
    if pth["transposed"]:
        two = [n for n, t in sd.items() if t.dim() == 2]
        if two:
            n = max(two, key=lambda k: sd[k].numel())
            sd[n] = sd[n].t().contiguous().t()  # same values, strides (1, rows)
        four = [n for n, t in sd.items() if t.dim() == 4 and t.shape[1] > 1]
        n = four[0]
        sd[n] = sd[n].contiguous(memory_format=torch.channels_last)
        assert not sd[n].is_contiguous()
    if pth["wrap"] == "module":
        wrapped = collections.OrderedDict(("module." + n, t) for n, t in sd.items())
        wrapped._metadata = sd._metadata
        obj = wrapped
    elif pth["wrap"] == "wrapped":
        obj = {"epoch": 3, "state_dict": sd, "best_metric": 0.5, "args": {"lr": 0.1, "arch": "hw1"}}
    else:
        obj = sd
    torch.save(obj, path, _use_new_zipfile_serialization=pth["format"] == "zip")


def self_test():
    rng = np.random.default_rng(0)
    cases = {
        "f64": rng.standard_normal((3, 4)),
        "f32": rng.standard_normal((2, 3, 5)).astype(np.float32),
        "f16": rng.standard_normal(7).astype(np.float16),
        "i64": rng.integers(-2**62, 2**62, (4, 2), dtype=np.int64),
        "i32": rng.integers(-2**31, 2**31 - 1, 9, dtype=np.int32),
        "u8": rng.integers(0, 256, (2, 2, 2), dtype=np.uint8),
        "scalar": np.array(3.5, dtype=np.float64),
        "empty": np.zeros((0, 3), dtype=np.float32),
        "big_endian": np.arange(5, dtype=">f4"),
        "strided": rng.standard_normal((4, 6))[:, ::2],
    }
    bf_src = np.array([1.0, -2.5, 3.14159, 1e-30, 65504.0, np.inf, -0.0, 1.00390625], dtype=np.float32)
    bf = st.BF16(bf_src)
    # 1.00390625 = 1 + 2^-8 is a tie between bf16 neighbours 1 and 1 + 2^-7: round to even gives 1.
    expect_bf = np.array([1.0, -2.5, 3.140625, 1e-30, 65536.0, np.inf, -0.0, 1.0], dtype=np.float32)
    if not np.allclose(bf.to_float32()[:3], expect_bf[:3]) or bf.to_float32()[7] != 1.0 \
            or bf.to_float32()[5] != np.inf or bf.to_float32()[4] != 65536.0:
        raise SystemExit(f"BF16 rounding wrong: {bf.to_float32()}")
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "t.safetensors")
        st.save(path, {**cases, "bf16": bf}, {"who": "self-test"})
        with open(path, "rb") as f:
            n = int.from_bytes(f.read(8), "little")
        if n % 8:
            raise SystemExit(f"header length {n} is not a multiple of 8")
        back, meta = st.load(path, with_metadata=True)
        if meta != {"who": "self-test"} or list(back) != list(cases) + ["bf16"]:
            raise SystemExit(f"metadata or names not preserved: {meta}, {list(back)}")
        for k, v in cases.items():
            r = back[k]
            if r.dtype != v.dtype.newbyteorder("=") or r.shape != v.shape or r.tobytes() != np.ascontiguousarray(
                    v, dtype=r.dtype).tobytes():
                raise SystemExit(f"round trip of '{k}' changed it: {v!r} -> {r!r}")
        if back["bf16"].dtype != np.float32 or back["bf16"].tobytes() != bf.to_float32().tobytes():
            raise SystemExit("BF16 round trip changed values")
        if st.load(path, raw_bf16=True)["bf16"].bits.tobytes() != bf.bits.tobytes():
            raise SystemExit("BF16 raw round trip changed bits")
        # Re-writing what was read must reproduce the file byte for byte.
        again = os.path.join(d, "u.safetensors")
        st.save(again, {**back, "bf16": st.load(path, raw_bf16=True)["bf16"]}, meta)
        if open(again, "rb").read() != open(path, "rb").read():
            raise SystemExit("re-writing a loaded file did not reproduce it")
        # Truncated files must be rejected, not silently read.
        with open(again, "r+b") as f:
            f.truncate(os.path.getsize(again) - 1)
        try:
            st.load(again)
        except ValueError:
            pass
        else:
            raise SystemExit("truncated file was accepted")
    print(f"st.py self-test passed: {len(cases) + 1} tensors, dtypes F64 F32 F16 BF16 I64 I32 U8")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--self-test", action="store_true")
    ap.add_argument("--model", choices=MODELS)
    ap.add_argument("--num-classes", type=int, default=7)
    ap.add_argument("--shape", default="2,3,67,45")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--mode", choices=["eval", "train"], default="eval")
    ap.add_argument("--out")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--input", choices=["normal", "smooth"], default="normal",
                    help="input (and calibration batch): iid N(0, 1), or image-like spatially correlated values")
    ap.add_argument("--pth", help="write the weights as weights.pth (torch.save) as SPEC says: see the top of this file")
    a = ap.parse_args()
    if a.self_test:
        return self_test()
    if not a.model or not a.out:
        ap.error("--model and --out are required (or --self-test)")
    try:
        generate(a)
    except ValueError as e:  # e.g. train-mode BN on one value per channel (DeepLab's image pooling at N=1)
        raise SystemExit(f"PyTorch rejected this configuration ({e}); train mode needs N >= 2") from None


if __name__ == "__main__":
    main()
