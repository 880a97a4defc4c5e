"""How this process hands freed memory back to the system: genlab asks glibc to keep it.

glibc adapts two thresholds as a program runs: a block above the mmap threshold (128 KB at first, raised as large
blocks are freed) is mapped on allocation and unmapped on free, and free memory at the top of a heap beyond the trim
threshold goes back to the kernel. A loop that frees and reallocates activations of a few MB each pass then takes
fresh pages on every pass, and the kernel zeroes each of them: the MLP VAE's k = 5000 likelihood estimate of six
images faulted in 45,718-74,652 pages this way, and 1-1,916 with the thresholds fixed (tests/test_heap.py); a
conv-vae k = 1000 estimate that faulted spent 1.8 s of its 3.1 s in the kernel (benchmarks/iwae_speed.py,
docs/benchmarks.md). `keep_freed_memory` fixes both thresholds: blocks of up to MMAP_THRESHOLD come from the heap,
and up to TRIM_THRESHOLD of free heap stays with the process for the next pass. Memory then in use is unchanged;
what is freed is reused instead of returned.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Mapping

MMAP_THRESHOLD = 32 * 2**20  # glibc's own ceiling for the adaptive threshold: larger blocks are still mapped
TRIM_THRESHOLD = 2**30  # free memory kept at a heap's top before any goes back to the kernel
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt's parameter numbers (malloc.h)


def keep_freed_memory(environ: Mapping[str, str] = os.environ) -> bool:
    """Fix glibc's mmap and trim thresholds as above, unless the user tuned malloc (a MALLOC_* variable is set) or
    the C library is not glibc; whether they were set."""
    if not sys.platform.startswith("linux") or any(name.startswith("MALLOC_") for name in environ):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # glibc's own symbol: musl and others have different malloc tunables
    except (OSError, AttributeError):
        return False
    return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(libc.mallopt(M_TRIM_THRESHOLD,
                                                                                      TRIM_THRESHOLD))
