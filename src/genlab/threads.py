"""The CPU threads torch uses in this process: --threads N, else $GENLAB_THREADS, else torch's own choice (one per
core; under torchrun the OMP_NUM_THREADS torchrun gives each process, 1 by default); how they wait; and the line
that says so.

How they wait matters more than how many there are on a shared machine. Torch's OpenMP runtime (libgomp) lets a
thread that has finished its share of an operation spin for a while before it sleeps; when another job holds one
of the cores, the spinning threads take turns with it and each operation waits for the slowest. On this project's
2-core machine beside other jobs, a conv-vae step ran 9-12x slower on 2 spinning threads than on 2 threads that
sleep when they wait (benchmarks/threads.py, docs/benchmarks.md), with the same losses. So genlab asks for sleeping
threads (OMP_WAIT_POLICY=PASSIVE) when it is imported before torch, unless the user chose a wait policy
(OMP_WAIT_POLICY or GOMP_SPINCOUNT set); the runtime reads it once, when torch loads it.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Mapping, MutableMapping
from typing import TYPE_CHECKING

from genlab.errors import ConfigError
from genlab.options import MAX_THREADS, THREADS_ENV

if TYPE_CHECKING:
    import torch

WAIT_POLICY = "PASSIVE"  # OpenMP threads sleep when they wait (see above)
WAIT_CHOICES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")  # a user who set either has chosen how threads wait


def wait_quietly(environ: MutableMapping[str, str] = os.environ) -> bool:
    """Set OMP_WAIT_POLICY=PASSIVE for the OpenMP runtime torch will load, unless the user chose a policy or torch
    is already loaded (its runtime has read the environment then); whether it was set."""
    if any(name in environ for name in WAIT_CHOICES) or "torch" in sys.modules:
        return False
    environ["OMP_WAIT_POLICY"] = WAIT_POLICY
    return True


HOW_TO_CHANGE = f"--threads or {THREADS_ENV} to change"


def requested_threads(threads: int | None = None, environ: Mapping[str, str] = os.environ) -> int | None:
    """The count asked for: `threads` (the flag), else the environment variable, else None (torch chooses)."""
    if threads is not None:
        return threads
    text = environ.get(THREADS_ENV, "").strip()
    if not text:
        return None
    if not text.isdigit() or not 1 <= int(text) <= MAX_THREADS:
        raise ConfigError(f"{THREADS_ENV} must be a whole number of threads from 1 to {MAX_THREADS}, got {text!r}; "
                          f"set it to 1 on a machine shared with other jobs, or unset it to let torch choose")
    return int(text)


def use_threads(threads: int | None = None, environ: Mapping[str, str] = os.environ) -> int:
    """Set torch's intra-op threads for this process before any work (torch.set_num_threads); returns the count
    now in use. Nothing asked for leaves torch's choice as it is."""
    import torch

    wanted = requested_threads(threads, environ)
    if wanted is not None and wanted != torch.get_num_threads():
        torch.set_num_threads(wanted)
    return torch.get_num_threads()


def compute_line(device: torch.device, threads: int, processes: int = 1) -> str:
    """'genlab on cpu, 1 thread (--threads or GENLAB_THREADS to change)': the first line of a heavy command (not
    'genlab:', which starts the lines that say something went wrong)."""
    import torch

    where = device.type if device.type != "cuda" else f"cuda ({torch.cuda.get_device_name(device)})"
    kind = "CPU thread" if device.type == "cuda" else "thread"
    count = f"{threads} {kind}{'s' if threads != 1 else ''}"
    if processes > 1:
        count = f"{processes} processes x {count} each"
    return f"genlab on {where}, {count} ({HOW_TO_CHANGE})"


X86 = ("x86_64", "amd64", "i386", "i686")


def on_x86() -> bool:
    """Whether this machine is an x86 one (the only kind whose vector extensions genlab's CPU choices look at)."""
    import platform

    return platform.machine().lower() in X86


def without_avx512() -> bool:
    """Whether this is an x86 CPU whose torch kernels run without AVX-512 (AVX2 at best): the machine on which
    genlab's NHWC rule and its --compile warning were measured to differ (docs/benchmarks.md)."""
    import torch

    return on_x86() and not torch.backends.cpu.get_cpu_capability().startswith("AVX512")


def emulates_bf16(device: torch.device) -> bool:
    """Whether bfloat16 arithmetic on `device` would be emulated: an x86 CPU without avx512_bf16 or AMX, where
    oneDNN converts bfloat16 through float32 and `--precision bf16` slows a model down instead of speeding it up
    (an AVX2-only AMD EPYC: a 512x512 product at 1.1 GFLOP/s in bfloat16 against 82 in float32;
    benchmarks/conv_profile.py, docs/benchmarks.md). A torch without the checks counts as native."""
    import torch

    if device.type != "cpu" or not on_x86():
        return False
    checks = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    return all(check is not None and not check() for check in checks)


def precision_warning(device: torch.device, precision: str) -> str | None:
    """A warning line for a precision that `device` would run slower than float32, else None."""
    if precision == "bf16" and emulates_bf16(device):
        return ("genlab: warning: this CPU has no bfloat16 arithmetic (avx512_bf16 or AMX), so --precision bf16 is "
                "emulated here and runs slower than fp32 (many times slower without AVX-512); leave --precision out")
    return None


def compile_warning(device: torch.device, compile: bool, convolutional: bool) -> str | None:
    """A warning line for --compile of a conv model on an x86 CPU without AVX-512, else None. There inductor's
    generated kernels write the boolean masks that autograd keeps for ReLU-like backward passes about 15x slower
    than torch's own (128x16x14x14: 4.1-4.2 ms against 0.25-0.29), and a conv model's compiled step measured
    1.14-1.52x slower than its eager one (conv-vae 1.41-1.52x, the 28-pixel DCGAN 1.14-1.19x; the MLP VAE's
    0.90-0.97x: faster; benchmarks/compile_speed.py, docs/benchmarks.md)."""
    if compile and convolutional and device.type == "cpu" and without_avx512():
        return ("genlab: warning: on this CPU (x86 without AVX-512) torch.compile makes conv models train slower, "
                "not faster (conv-vae's step 1.4x slower); leave --compile out")
    return None
