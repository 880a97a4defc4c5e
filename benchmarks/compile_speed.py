"""What `--compile` (torch.compile's CPU backend, inductor) does to genlab's training step, model by model.

    python benchmarks/compile_speed.py [--models vae conv-vae conv-vae-4x4 dcgan] [--steps 20] [--repeats 5] [--json]
    python benchmarks/compile_speed.py --profile conv-vae

For each model, on 1x28x28 Fashion-MNIST-shaped batches of the model's training batch size, in the memory format
`genlab train` picks on this machine: the same step function `genlab train` builds (forward, backward, Adam), once
eager and once compiled, from the same initial weights. Printed: the seconds the first two compiled steps took
(compilation), the eager and compiled step times (medians over --repeats timings of --steps steps each, the two
taking turns so that load on a shared machine hits both alike), and compiled / eager.

Also printed, as the diagnosis: one elementwise kernel that writes a boolean mask (`x > 0` on a 128x16x14x14
float32 tensor, the size of conv-vae's first activation), eager and compiled. Autograd keeps such masks for the
backward passes of ReLU, leaky ReLU and clamps, and inductor writes them from its generated C++.

--profile MODEL instead prints where the compiled step of MODEL spends its time: torch.profiler's self time per
operation over --steps steps, with inductor's kernel profiling on, so that each generated kernel (named
graph_N_cpp_fused_<the operations it fuses>) has its own line, and the sum over the generated kernels.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch

import genlab  # noqa: F401  (its thread and heap settings, as `genlab train` runs with them)
from genlab import TrainConfig, create_model
from genlab.models.registry import data_fields, model_spec
from genlab.nn import memory_format
from genlab.training.steps import make_optimizers, make_step

IMAGE_SHAPE = (1, 28, 28)


def step_time(step, x: torch.Tensor, steps: int) -> float:
    """Seconds per step over `steps` steps, ending on a read of the loss (so that every step has finished)."""
    start = time.perf_counter()
    for _ in range(steps):
        parts = step(x, None)
    parts["loss"].item()
    return (time.perf_counter() - start) / steps


def build(name: str, compile: bool, seed: int = 1):
    torch.manual_seed(seed)
    model = create_model(name, **data_fields(name, IMAGE_SHAPE, 10))
    preferred = {**vars(TrainConfig()), **model_spec(name).train_defaults}  # as `genlab train` settles them
    fmt = memory_format(model, torch.device("cpu"))
    model.to(memory_format=fmt)
    optimizers = make_optimizers(model, preferred["lr"], preferred["beta1"])
    x = torch.rand(preferred["batch_size"], *IMAGE_SHAPE).contiguous(memory_format=fmt)
    return make_step(model, optimizers, compile=compile), x, fmt


def measure_model(name: str, steps: int, repeats: int) -> dict:
    eager, x, fmt = build(name, compile=False)
    compiled, _, _ = build(name, compile=True)
    eager(x, None)
    start = time.perf_counter()
    compiled(x, None)
    compiled(x, None)
    compile_seconds = time.perf_counter() - start
    times: dict[str, list[float]] = {"eager": [], "compiled": []}
    for _ in range(repeats):
        times["eager"].append(step_time(eager, x, steps))
        times["compiled"].append(step_time(compiled, x, steps))
    eager_ms, compiled_ms = (statistics.median(times[k]) * 1e3 for k in ("eager", "compiled"))
    return {"model": name, "batch": x.shape[0], "layout": "NHWC" if fmt == torch.channels_last else "NCHW",
            "compile_seconds": compile_seconds, "eager_ms": eager_ms, "compiled_ms": compiled_ms,
            "compiled_over_eager": compiled_ms / eager_ms}


def measure_mask(repeats: int) -> dict:
    x = torch.randn(128, 16, 14, 14)

    def mask(t: torch.Tensor) -> torch.Tensor:
        return t > 0
    compiled = torch.compile(mask)
    result: dict[str, list[float]] = {"eager": [], "compiled": []}
    for fn in (mask, compiled):
        fn(x)
    for _ in range(repeats):
        for name, fn in (("eager", mask), ("compiled", compiled)):
            start = time.perf_counter()
            for _ in range(50):
                fn(x)
            result[name].append((time.perf_counter() - start) / 50)
    eager_ms, compiled_ms = (statistics.median(result[k]) * 1e3 for k in ("eager", "compiled"))
    return {"eager_ms": eager_ms, "compiled_ms": compiled_ms, "compiled_over_eager": compiled_ms / eager_ms}


def profile_compiled(name: str, steps: int, rows: int = 15) -> None:
    import torch._inductor.config as inductor
    from torch.profiler import ProfilerActivity, profile

    inductor.cpp.enable_kernel_profile = True  # read when the kernels are generated: set before the first step
    step, x, fmt = build(name, compile=True)
    for _ in range(3):
        step(x, None)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step_time(step, x, steps)
    table = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
    generated = sum(e.self_cpu_time_total for e in table if "cpp_fused" in e.key) / steps / 1e3
    layout = "NHWC" if fmt == torch.channels_last else "NCHW"
    print(f"compiled {name} step ({layout}, batch {x.shape[0]}), ms per step by profiler self time:")
    for event in table[:rows]:
        print(f"  {event.self_cpu_time_total / steps / 1e3:8.3f}  {event.key[:110]}")
    print(f"  {generated:8.3f}  all inductor-generated kernels together")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["vae", "conv-vae", "conv-vae-4x4", "dcgan"])
    parser.add_argument("--steps", type=int, default=20, help="steps per timing")
    parser.add_argument("--repeats", type=int, default=5, help="timings of each, taking turns; the median is kept")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--profile", metavar="MODEL", help="profile MODEL's compiled step instead")
    args = parser.parse_args()
    if args.profile:
        profile_compiled(args.profile, args.steps)
        return
    summary = {"machine": {"threads": torch.get_num_threads(), "torch": torch.__version__,
                           "cpu": platform.processor() or platform.machine(),
                           "capability": torch.backends.cpu.get_cpu_capability()},
               "mask_kernel": measure_mask(args.repeats),
               "models": [measure_model(name, args.steps, args.repeats) for name in args.models]}
    if args.json:
        print(json.dumps(summary, indent=2))
        return
    m, k = summary["machine"], summary["mask_kernel"]
    print(f"torch.compile vs eager, {m['threads']} threads, torch {m['torch']}, {m['cpu']} ({m['capability']})")
    print(f"boolean mask of 128x16x14x14 (x > 0): eager {k['eager_ms']:.3f} ms, compiled {k['compiled_ms']:.3f} ms, "
          f"compiled / eager {k['compiled_over_eager']:.2f}")
    print(f"{'model':<14} {'batch':>5} {'layout':>6} {'compile s':>9} {'eager ms':>9} {'compiled ms':>11} "
          f"{'compiled / eager':>16}")
    for r in summary["models"]:
        print(f"{r['model']:<14} {r['batch']:>5} {r['layout']:>6} {r['compile_seconds']:>9.1f} {r['eager_ms']:>9.2f} "
              f"{r['compiled_ms']:>11.2f} {r['compiled_over_eager']:>16.2f}")


if __name__ == "__main__":
    main()
