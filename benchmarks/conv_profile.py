"""Where one training step of a conv model spends its time, against the arithmetic floor of this machine.

    python benchmarks/conv_profile.py [--model conv-vae] [--dim 64] [--batch-size 128] [--steps 20]
                                      [--precision fp32|bf16] [--json]

Printed, for the model's step in NCHW and in NHWC (channels_last) memory format:

- the machine's throughput: a 2048x2048 matrix product in float32 (torch's own, MKL on x86, and oneDNN's inner
  product; the faster of the two sets the floor) and bfloat16, the best of several (512x512 in bfloat16 where the
  CPU has no avx512_bf16 or AMX and emulates it, tens of times slower);
- the step's floating-point operations, counted by torch.utils.flop_counter on one real step (convolutions,
  their backward passes and the matrix products: the work no implementation can skip), and the floor: those
  FLOPs at the measured matmul rate;
- the measured step time (genlab's step function: forward, backward, optimizer), its share of the floor;
- each convolution and transposed convolution timed alone at the model's shapes, forward and backward, with its
  GFLOP/s (for a thin transposed convolution that genlab runs through the output's phases, torch's own forward
  beside it, same weights and input); and the step's time by kind of operation from torch.profiler: convolution
  forward and backward, matrix products, the optimizer, layout copies and the rest.

--model is a genlab model name whose image shape comes from the data it is meant for: 1x28x28 (Fashion-MNIST) for
conv-vae, conv-vae-4x4 and dcgan; 3x64x64 for conv-vae-64, beta-vae-conv64 and dcgan --size 64.
"""
from __future__ import annotations

import argparse
import copy
import json
import platform
import time
from collections import defaultdict

import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile
from torch.utils.flop_counter import FlopCounterMode

from genlab import create_model
from genlab.models.contract import GAN
from genlab.models.registry import data_fields, model_spec
from genlab.nn import PHASE_MAX_OUT, ConvTranspose2d
from genlab.threads import emulates_bf16
from genlab.training.steps import make_optimizers, make_step

SHAPES = {"conv-vae": (1, 28, 28), "conv-vae-4x4": (1, 28, 28), "dcgan": (1, 28, 28),
          "conv-vae-64": (3, 64, 64), "beta-vae-conv64": (3, 64, 64)}
KINDS = (("conv backward", ("convolution_backward",)), ("conv forward", ("convolution", "conv2d", "conv_transpose")),
         ("matrix products", ("mm", "addmm", "bmm", "linear")), ("optimizer", ("Optimizer", "adam", "_foreach")),
         ("layout copies", ("copy_", "clone", "contiguous", "_to_copy")))

# oneDNN's inner product, where this torch build has it: the fastest float32 product on some x86 machines
ONEDNN_PRODUCT = getattr(torch.ops.mkldnn, "_linear_pointwise", None) if torch.backends.mkldnn.is_available() else None


def seconds_per_call(fn, repeats: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def matmul_rate(dtype: torch.dtype, size: int = 2048, onednn: bool = False) -> float:
    """FLOP/s of a size x size matrix product, the best of five timings of three products: torch's own (`a @ b`,
    MKL for float32 on x86) or, with onednn, oneDNN's inner product (a b^T, the op torch.compile's CPU backend
    calls for linear layers). On AMD processors MKL may take a narrower vector path than oneDNN: the faster of the
    two is what the machine can do."""
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    product = (lambda: ONEDNN_PRODUCT(a, b, None, "none", [], "")) if onednn else (lambda: a @ b)
    best = min(seconds_per_call(product, 3, warmup=1) for _ in range(5))
    return 2 * size ** 3 / best


def build(args) -> tuple[nn.Module, tuple[int, ...], dict]:
    shape = (3, args.size, args.size) if args.model == "dcgan" and args.size == 64 else SHAPES[args.model]
    extra = {"dim": args.dim} if args.model == "dcgan" else {}
    torch.manual_seed(0)
    model = create_model(args.model, **{**data_fields(args.model, shape, 10), **extra})
    train = model_spec(args.model).train_defaults
    return model, shape, train


def step_and_batch(args, channels_last: bool):
    model, shape, train = build(args)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model.to(memory_format=fmt)
    optimizers = make_optimizers(model, train.get("lr", 1e-3), train.get("beta1", 0.9))
    step = make_step(model, optimizers, args.precision)
    x = torch.rand(args.batch_size, *shape).contiguous(memory_format=fmt)
    return model, (lambda: step(x, None)), x


def count_flops(step) -> int:
    with FlopCounterMode(display=False) as counter:
        step()
    return counter.get_total_flops()


def kind_of(name: str) -> str:
    for kind, keys in KINDS:
        if any(key in name for key in keys):
            return kind
    return "other"


def time_by_kind(step, steps: int) -> dict[str, float]:
    """Seconds per step by kind of operation, from the self time of each aten op (no double counting)."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    totals: dict[str, float] = defaultdict(float)
    for event in prof.key_averages():
        totals[kind_of(event.key)] += event.self_cpu_time_total / 1e6 / steps
    return dict(totals)


def conv_layers(model: nn.Module, x: torch.Tensor, gan: bool) -> list[tuple[str, nn.Module, torch.Size]]:
    """(name, layer, input shape) of every conv and transposed conv, from one forward pass."""
    found, hooks = [], []
    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            hooks.append(module.register_forward_hook(
                lambda m, inputs, output, name=name: found.append((name, m, inputs[0].shape))))
    with torch.no_grad():
        model.loss(x) if not gan else model.discriminator(model.generate(x.shape[0]))
    for hook in hooks:
        hook.remove()
    return list({name: (name, m, s) for name, m, s in found}.values())


def torch_forward(layer: nn.Module, inp: torch.Tensor, repeats: int) -> float | None:
    """For a layer genlab runs its own way (genlab.nn.ConvTranspose2d on its phase path), the forward time of
    torch's nn.ConvTranspose2d with the same weights on the same input, in ms; None for the others."""
    if not isinstance(layer, ConvTranspose2d) or layer.out_channels > PHASE_MAX_OUT:
        return None
    plain = copy.deepcopy(layer)
    plain.__class__ = nn.ConvTranspose2d
    with torch.no_grad():
        return seconds_per_call(lambda: plain(inp), repeats) * 1e3


def layer_table(model: nn.Module, x: torch.Tensor, fmt: torch.memory_format, repeats: int) -> list[dict]:
    rows = []
    for name, layer, in_shape in conv_layers(model, x, isinstance(model, GAN)):
        first = in_shape[1] == x.shape[1] and in_shape[2:] == x.shape[2:]  # the image: no input gradient needed
        inp = torch.randn(in_shape).contiguous(memory_format=fmt).requires_grad_(not first)
        out = layer(inp)
        grad = torch.randn_like(out)

        def forward_backward() -> None:
            layer.zero_grad(set_to_none=True)
            inp.grad = None
            layer(inp).backward(grad)
        with FlopCounterMode(display=False) as fwd_count:
            layer(inp)
        with FlopCounterMode(display=False) as all_count:
            forward_backward()
        with torch.no_grad():
            forward = seconds_per_call(lambda: layer(inp), repeats)
        both = seconds_per_call(forward_backward, repeats)
        f_flops = fwd_count.get_total_flops()
        b_flops = all_count.get_total_flops() - f_flops
        backward = max(both - forward, 1e-9)
        rows.append({"layer": name, "type": type(layer).__name__, "in": list(in_shape),
                     "out": list(out.shape), "forward_ms": forward * 1e3, "backward_ms": backward * 1e3,
                     "forward_gflops": f_flops / forward / 1e9, "backward_gflops": b_flops / backward / 1e9,
                     "torch_forward_ms": torch_forward(layer, inp, repeats)})
    return rows


def measure(args, channels_last: bool, rate: float) -> dict:
    model, step, x = step_and_batch(args, channels_last)
    flops = count_flops(step)
    seconds = min(seconds_per_call(step, args.steps) for _ in range(3))
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    return {"layout": "NHWC" if channels_last else "NCHW", "step_ms": seconds * 1e3, "gflop": flops / 1e9,
            "floor_ms": flops / rate * 1e3, "share_of_floor": flops / rate / seconds,
            "by_kind_ms": {k: v * 1e3 for k, v in time_by_kind(step, max(3, args.steps // 4)).items()},
            "layers": layer_table(model, x, fmt, args.steps)}


def print_report(summary: dict) -> None:
    m = summary["machine"]
    print(f"{summary['model']} step, batch {summary['batch_size']}, {summary['precision']}, "
          f"{m['threads']} threads, torch {m['torch']}, {m['cpu']}")
    print(f"matrix product 2048x2048: {m['fp32_gflops']:.1f} GFLOP/s float32 (torch's {m['fp32_torch_gflops']:.1f}, "
          f"oneDNN's {m['fp32_onednn_gflops']:.1f}), {m['bf16_gflops']:.1f} bfloat16"
          f"{' (emulated: no avx512_bf16 or AMX; timed at 512x512)' if m['bf16_emulated'] else ''}; the floor "
          f"below uses the {summary['precision']} rate")
    for r in summary["layouts"]:
        print(f"\n{r['layout']}: step {r['step_ms']:.2f} ms, {r['gflop']:.3f} GFLOP, floor {r['floor_ms']:.2f} ms "
              f"-> {100 * r['share_of_floor']:.0f}% of the floor")
        kinds = ", ".join(f"{k} {v:.2f}" for k, v in sorted(r["by_kind_ms"].items(), key=lambda kv: -kv[1]))
        print(f"  by kind (ms per step, profiler self time): {kinds}")
        print(f"  {'layer':<24} {'in -> out':<34} {'fwd ms':>7} {'GF/s':>6} {'bwd ms':>7} {'GF/s':>6}"
              f"  torch's own fwd ms")
        for row in r["layers"]:
            shapes = f"{'x'.join(map(str, row['in'][1:]))} -> {'x'.join(map(str, row['out'][1:]))}"
            own = "" if row["torch_forward_ms"] is None else f"  {row['torch_forward_ms']:.2f}"
            print(f"  {row['type'][:4] + ' ' + row['layer']:<24} {shapes:<34} {row['forward_ms']:>7.2f} "
                  f"{row['forward_gflops']:>6.1f} {row['backward_ms']:>7.2f} {row['backward_gflops']:>6.1f}{own}")
    a, b = summary["layouts"]
    print(f"\nNHWC step / NCHW step: {b['step_ms'] / a['step_ms']:.2f} (speed-up {a['step_ms'] / b['step_ms']:.2f}x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="conv-vae", choices=sorted(SHAPES))
    parser.add_argument("--size", type=int, default=64, choices=(28, 64), help="dcgan: image side (default 64)")
    parser.add_argument("--dim", type=int, default=64, help="dcgan: width (default 64, Radford et al.'s)")
    parser.add_argument("--batch-size", type=int, help="default: the model's training batch (128; 64 for dcgan)")
    parser.add_argument("--steps", type=int, default=20, help="steps per timing (the best of three timings)")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16"))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    args.batch_size = args.batch_size or model_spec(args.model).train_defaults.get("batch_size", 128)
    fp32 = {"torch": matmul_rate(torch.float32)}
    if ONEDNN_PRODUCT is not None:
        fp32["onednn"] = matmul_rate(torch.float32, onednn=True)
    # the floor takes the faster of the two: what this machine has been seen to do
    # where bfloat16 is emulated a 2048x2048 product takes seconds to minutes: 512x512 tells the same story
    emulated = emulates_bf16(torch.device("cpu"))
    bf16_size = 512 if emulated else 2048
    rates = {"fp32": max(fp32.values()), "bf16": matmul_rate(torch.bfloat16, bf16_size)}
    summary = {"model": args.model if args.model != "dcgan" else f"dcgan {args.size}px dim {args.dim}",
               "batch_size": args.batch_size, "precision": args.precision,
               "machine": {"threads": torch.get_num_threads(), "torch": torch.__version__,
                           "cpu": platform.processor() or platform.machine(),
                           "fp32_gflops": rates["fp32"] / 1e9, "bf16_gflops": rates["bf16"] / 1e9,
                           "bf16_size": bf16_size, "bf16_emulated": emulated,
                           "fp32_torch_gflops": fp32["torch"] / 1e9,
                           "fp32_onednn_gflops": fp32.get("onednn", float("nan")) / 1e9},
               "layouts": [measure(args, cl, rates[args.precision]) for cl in (False, True)]}
    print(json.dumps(summary, indent=2) if args.json else "", end="")
    if not args.json:
        print_report(summary)


if __name__ == "__main__":
    main()
