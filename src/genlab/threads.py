"""The CPU threads torch uses in this process: --threads N, else $GENLAB_THREADS, else torch's own choice (one per
core; under torchrun the OMP_NUM_THREADS torchrun gives each process, 1 by default); and the line that says so."""
from __future__ import annotations

import os
from collections.abc import Mapping

import torch

from genlab.errors import ConfigError
from genlab.options import MAX_THREADS, THREADS_ENV

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
    wanted = requested_threads(threads, environ)
    if wanted is not None and wanted != torch.get_num_threads():
        torch.set_num_threads(wanted)
    return torch.get_num_threads()


def compute_line(device: torch.device, threads: int, processes: int = 1) -> str:
    """'genlab on cpu, 1 thread (--threads or GENLAB_THREADS to change)': the first line of a heavy command (not
    'genlab:', which starts the lines that say something went wrong)."""
    where = device.type if device.type != "cuda" else f"cuda ({torch.cuda.get_device_name(device)})"
    kind = "CPU thread" if device.type == "cuda" else "thread"
    count = f"{threads} {kind}{'s' if threads != 1 else ''}"
    if processes > 1:
        count = f"{processes} processes x {count} each"
    return f"genlab on {where}, {count} ({HOW_TO_CHANGE})"
