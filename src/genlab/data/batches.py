"""Device-resident batching: a permutation per epoch and index gathers, no per-sample DataLoader."""
from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor


def to_unit_float(x: Tensor) -> Tensor:
    """uint8 images (N, C, H, W) -> float32 in [0, 1]."""
    return x.to(torch.float32).mul_(1 / 255)


def epoch_permutation(n: int, seed: int, epoch: int, device: torch.device | str) -> Tensor:
    """A shuffle of range(n) that depends only on (seed, epoch): resumed runs see the same order."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=generator).to(device)


def iter_batches(x: Tensor, perm: Tensor, batch_size: int, drop_last: bool = False) -> Iterator[Tensor]:
    """Float [0, 1] batches x[perm[i:i+B]], gathered on x's device (no host sync)."""
    stop = len(perm) - len(perm) % batch_size if drop_last else len(perm)
    for start in range(0, stop, batch_size):
        # index_select, not x[idx]: advanced indexing is ~10x slower for this gather on CPU
        yield to_unit_float(torch.index_select(x, 0, perm[start:start + batch_size]))


def iter_ordered(x: Tensor, batch_size: int) -> Iterator[Tensor]:
    """Float [0, 1] batches of x in order (evaluation)."""
    for start in range(0, x.shape[0], batch_size):
        yield to_unit_float(x[start:start + batch_size])
